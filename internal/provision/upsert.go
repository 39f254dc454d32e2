package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// upsert is one credentials.submitted under a held lease: the identity's connector should exist
// with these credentials. Absent (or deleted): create. Present: update in place (embedded sources)
// or replace (Agent Engine connectors, whose credentials cannot change).
type upsert struct {
	r     *contract.CredentialsSubmitted
	t     target
	d     Delivery
	w     *work
	entry ledger.Entry    // as claimed
	prev  progress        // what an earlier, unfinished holder recorded
	past  map[string]bool // connectors the identity's history names (pastConnectors)
	creds secret.Fields
	ws    airbyte.WorkspaceRef
	check bool
	// foreign is the connector made outside the provisioner whose credentials this upsert replaces
	// ("" if none); every progress recorded carries it.
	foreign string
}

func (s *Service) credentialsSubmitted(ctx context.Context, req event.Request, d Delivery) Decision {
	r := req.CredentialsSubmitted
	ref, err := vault.ParseRef(r.CredentialsRef)
	if err != nil {
		return s.fail(req, d, classifySecret(err))
	}
	if s.cfg.Policy != nil {
		if err := s.cfg.Policy.Check(ref, r.WorkspaceName); err != nil {
			return s.fail(req, d, classifySecret(err))
		}
	}

	id := ledger.Identity{WorkspaceName: r.WorkspaceName, ConnectorKind: r.ConnectorKind(), Name: r.ConnectorName()}
	c, err := s.claim(ctx, id, r.ID, d)
	if err != nil {
		return s.fail(req, d, err)
	}
	errMessage := contract.MessageSourceCreateError
	if c.Entry.SettledState() == ledger.StateActive {
		errMessage = contract.MessageSourceUpdateError
	}
	workCtx, w, dec, done := s.begin(ctx, id, req, d, c, errMessage)
	if done {
		return dec
	}
	defer w.end()

	u := &upsert{r: r, t: targetOf(r), d: d, w: w, entry: c.Entry, prev: priorProgress(c), past: pastConnectors(c.Entry),
		check: s.cfg.CheckCredentials || requestsCheck(r)}
	rec, err := s.upsert(workCtx, u, ref)
	if err != nil {
		err = withCause(workCtx, err)
		w.giveBack(ctx, d, err)
		dec := s.failAs(errMessage, req, d, err)
		if code, _ := event.CodeOf(err); code == contract.CodeCredentialsRejected {
			dec.Outcome = OutcomeRejected
		}
		return dec
	}
	return s.settle(ctx, req, d, w, func(ctx context.Context) error {
		return w.lease.Activate(ctx, rec.connectorID(), rec.marshal())
	}, rec)
}

func (s *Service) upsert(ctx context.Context, u *upsert, ref vault.Ref) (record, error) {
	creds, err := s.secrets.Get(ctx, ref)
	s.observer.SecretFetched(s.secrets.Backend(ref), secretOutcome(err))
	if err != nil {
		return record{}, classifySecret(err)
	}
	u.creds = creds
	budgetCtx, cancel := context.WithTimeout(ctx, s.cfg.Budget)
	defer cancel()
	if u.ws, err = s.airbyte.Workspace(budgetCtx, u.r.WorkspaceName); err != nil {
		return record{}, classifyAirbyte("workspace", err)
	}
	if u.entry.SettledState() == ledger.StateActive && u.entry.Connector != "" {
		return s.update(budgetCtx, u, u.entry.Connector)
	}
	return s.create(budgetCtx, u)
}

// settle records the operation's outcome in the ledger and answers with its result. The result is
// true whatever happens to the write: Airbyte holds the state it reports. If the write's outcome
// cannot be learnt, a later delivery finishes the record (its progress says what exists); on the
// last delivery the result is published anyway, since it is true.
func (s *Service) settle(ctx context.Context, req event.Request, d Delivery, w *work, write func(context.Context) error, rec record) Decision {
	res := s.resultOf(req, rec)
	if err := s.at(StepBeforeRecord); err != nil {
		return s.failAs(res.Message, req, d, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Budget)
	defer cancel()
	err := write(wctx)
	switch {
	case err == nil:
	case d.Final:
		// Airbyte holds the state: an error verdict would be false, and a duplicate that took the
		// lease over finishes from our progress to the same verdict
		d.Logger.Warn("could not record the outcome; publishing it anyway, it is true", "error", err)
	case errors.Is(err, ledger.ErrLeaseLost):
		// another worker took the identity over while we stalled; it finishes from our progress
		return s.failAs(errorMessageOf(res.Message), req, d, event.Coded(contract.CodeLeaseUnavailable, true, fmt.Errorf("record the outcome: %w", err)))
	default:
		return s.failAs(errorMessageOf(res.Message), req, d, classifyLedger(fmt.Errorf("record the outcome: %w", err)))
	}
	d.Logger.Debug("connector state applied", "message", rec.Message, "outcome", rec.Outcome, "workspace_id", rec.WorkspaceID)
	return Decision{Action: Ack, Outcome: rec.Outcome, Result: res}
}

// errorMessageOf is the error message that goes with a success message.
func errorMessageOf(message string) string {
	switch message {
	case contract.MessageSourceUpdated:
		return contract.MessageSourceUpdateError
	case contract.MessageSourceDeleted:
		return contract.MessageSourceDeleteError
	case contract.MessageWorkspaceOffboarded:
		return contract.MessageWorkspaceOffboardError
	}
	return contract.MessageSourceCreateError
}

// connectorID is the connector a record says the identity holds ("" after a delete).
func (rec record) connectorID() string {
	if rec.Message == contract.MessageSourceDeleted {
		return ""
	}
	var d struct {
		ID string `json:"id"`
	}
	_ = jsonUnmarshal(rec.Data, &d)
	return d.ID
}
