package provision

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// record is what the ledger keeps for a done identity: enough to publish the same result again.
type record struct {
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// sourceData is the "data" of a source_created result: the widget's SourceRead, credentials redacted.
type sourceData struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	SourceTemplate    sourceTemplate `json:"source_template"`
	ReplicationConfig map[string]any `json:"replication_config"`
	CreatedAt         *time.Time     `json:"created_at,omitempty"`
	UpdatedAt         *time.Time     `json:"updated_at,omitempty"`
}

type sourceTemplate struct {
	ID                 string `json:"id,omitempty"`
	Name               string `json:"name,omitempty"`
	SourceDefinitionID string `json:"source_definition_id"`
	Mode               string `json:"mode,omitempty"`
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
	claim, err := s.claim(ctx, id, r.ID, d)
	if err != nil {
		return s.fail(req, d, classifyNATS("ledger claim", err))
	}
	switch claim.Outcome {
	case ledger.Done:
		return s.replay(req, d, claim.Entry)
	case ledger.Busy:
		s.observer.LedgerConflict()
		err := event.Coded(contract.CodeLeaseUnavailable, true, fmt.Errorf("another worker is provisioning this connector (lease until %s)", claim.Entry.LeaseExpires.UTC().Format(time.RFC3339)))
		dec := s.fail(req, d, err)
		dec.RetryAfter = min(max(claim.Entry.LeaseExpires.Sub(s.cfg.Now()), 100*time.Millisecond), 5*time.Second)
		return dec
	}
	if claim.TookOver {
		s.observer.LeaseTakeover()
		d.Logger.Info("took over an expired lease", "previous_attempts", claim.Entry.Attempts-1)
	}
	return s.provision(ctx, req, d, claim, ref)
}

// claim claims the identity. On the last delivery a lease held by someone else is waited out (within
// the budget), so the request gets its real outcome rather than lease_unavailable.
func (s *Service) claim(ctx context.Context, id ledger.Identity, requestID string, d Delivery) (ledger.Claim, error) {
	deadline := s.cfg.Now().Add(s.cfg.Budget)
	for {
		c, err := s.ledger.Claim(ctx, id, requestID)
		if err != nil || c.Outcome != ledger.Busy || !d.Final {
			return c, err
		}
		wait := c.Entry.LeaseExpires.Sub(s.cfg.Now()) + 50*time.Millisecond
		if s.cfg.Now().Add(wait).After(deadline) {
			return c, nil
		}
		s.observer.LedgerConflict()
		select {
		case <-ctx.Done():
			return c, nil
		case <-time.After(wait):
		}
	}
}

// replay answers a request whose identity is already done with the recorded connector.
func (s *Service) replay(req event.Request, d Delivery, e ledger.Entry) Decision {
	var rec record
	if err := json.Unmarshal(e.Record, &rec); err != nil {
		return s.fail(req, d, event.Coded(contract.CodeInternal, false, fmt.Errorf("ledger record: %w", err)))
	}
	r := req.CredentialsSubmitted
	return Decision{Action: Ack, Outcome: OutcomeReplayed, Result: &contract.Result{
		Type: contract.ResultType, Message: contract.MessageSourceCreated, Data: rec.Data,
		RequestID: r.ID, WorkspaceName: r.WorkspaceName, WorkspaceID: rec.WorkspaceID,
		Attempts: max(d.Number, 1), ProducedAt: s.cfg.Now().UTC(),
	}}
}

// provision does the work under a held lease: fetch, token, lookup-or-create, record.
func (s *Service) provision(ctx context.Context, req event.Request, d Delivery, claim ledger.Claim, ref vault.Ref) Decision {
	r := req.CredentialsSubmitted
	lease := claim.Lease
	var createSent atomic.Bool
	// createUnsettledAt is when the last create whose outcome we do not know was sent (0: none).
	var createUnsettledAt atomic.Int64

	// The lease is renewed beside the work; losing it (taken over after a stall) stops the work.
	workCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(s.cfg.LeaseRenewEvery)
		defer t.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-t.C:
				if err := lease.Renew(workCtx); err != nil && workCtx.Err() == nil {
					stop(fmt.Errorf("renew lease: %w", err))
					return
				}
			}
		}
	}()
	defer func() { stop(nil); <-renewDone }()

	// A failure gives the lease back at once (with what we know of a create in flight), so the next
	// delivery on any replica can claim it without waiting for it to lapse.
	release := func(cause error) Decision {
		relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var err error
		if sent := createUnsettledAt.Load(); sent != 0 {
			// a create may still be running at Airbyte: keep others from listing until it has settled
			err = lease.HoldUntil(relCtx, time.Unix(0, sent).Add(s.cfg.CreateSettle))
		} else {
			err = lease.Release(relCtx, createSent.Load())
		}
		if err != nil {
			d.Logger.Warn("could not release the lease; it will lapse", "error", err)
		}
		return s.fail(req, d, cause)
	}

	creds, err := s.secrets.Get(workCtx, ref)
	s.observer.SecretFetched(s.secrets.Backend(ref), secretOutcome(err))
	if err != nil {
		return release(classifySecret(err))
	}

	budgetCtx, cancel := context.WithTimeout(workCtx, s.cfg.Budget)
	defer cancel()
	ws, err := s.airbyte.Workspace(budgetCtx, r.WorkspaceName)
	if err != nil {
		return release(classifyAirbyte("workspace", withCause(workCtx, err)))
	}

	mustLookup := claim.MustLookup || s.cfg.Lookup == LookupAlways
	var adopted bool
	attempt := func() (*sourceData, error) {
		if mustLookup {
			found, err := s.lookup(budgetCtx, r)
			if err != nil {
				return nil, permanentUnlessRetryable(classifyAirbyte("list connectors", withCause(workCtx, err)))
			}
			if found != nil {
				adopted = true
				return found, nil
			}
		}
		if !lease.Valid(s.cfg.LeaseMargin) {
			return nil, backoff.Permanent(event.Coded(contract.CodeLeaseUnavailable, true, errors.New("lease about to lapse; not creating")))
		}
		createSent.Store(true)
		createUnsettledAt.Store(s.cfg.Now().UnixNano())
		resp, err := s.airbyte.CreateConnector(budgetCtx, airbyte.ConnectorSourceCreateRequest{
			Name: r.ConnectorName(), WorkspaceName: r.WorkspaceName, ConnectorType: r.ConnectorType,
			DefinitionID: r.DefinitionID, SourceTemplateID: r.SourceTemplateID,
			ReplicationConfig: replicationConfig(r.ReplicationConfig), Credentials: creds,
		})
		if err != nil {
			// The connector may exist now even though we saw a failure: look before the next create.
			if airbyte.IsAmbiguous(err) || !errors.As(err, new(*airbyte.APIError)) {
				mustLookup = true
			} else {
				createUnsettledAt.Store(0) // a definite answer: nothing was created
			}
			return nil, permanentUnlessRetryable(classifyAirbyte("create connector", withCause(workCtx, err)))
		}
		createUnsettledAt.Store(0)
		return createdData(resp, creds), nil
	}
	data, err := backoff.RetryWithData(attempt, backoff.WithContext(s.cfg.NewBackOff(), budgetCtx))
	if err != nil {
		return release(classifyAirbyte("provision", withCause(workCtx, err)))
	}

	body, err := json.Marshal(data)
	if err != nil {
		return release(event.Coded(contract.CodeInternal, false, err))
	}
	rec, _ := json.Marshal(record{WorkspaceID: ws.ID, Data: body})
	if err := lease.Complete(workCtx, rec); err != nil {
		// Another worker took the identity over while we stalled; it will adopt what we created.
		return s.fail(req, d, event.Coded(contract.CodeLeaseUnavailable, true, fmt.Errorf("record completion: %w", err)))
	}
	outcome := OutcomeCreated
	if adopted {
		outcome = OutcomeAdopted
	}
	d.Logger.Debug("connector ready", "connector_id", data.ID, "outcome", outcome, "workspace_id", ws.ID)
	return Decision{Action: Ack, Outcome: outcome, Result: &contract.Result{
		Type: contract.ResultType, Message: contract.MessageSourceCreated, Data: body,
		RequestID: r.ID, WorkspaceName: r.WorkspaceName, WorkspaceID: ws.ID,
		Attempts: max(d.Number, 1), ProducedAt: s.cfg.Now().UTC(),
	}}
}

// withCause prefers the reason the work context was cancelled (a lost lease) over the bare error.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && errors.Is(err, context.Canceled) {
		return event.Coded(contract.CodeLeaseUnavailable, true, cause)
	}
	return err
}

// permanentUnlessRetryable stops the in-process retry loop for errors that cannot pass.
func permanentUnlessRetryable(err error) error {
	if _, retryable := event.CodeOf(err); retryable {
		return err
	}
	return backoff.Permanent(err)
}

// lookup finds the identity's connector among the workspace's: same name and same kind. Names are not
// unique at Airbyte; if several match, the oldest is adopted, deterministically on every replica.
func (s *Service) lookup(ctx context.Context, r *contract.CredentialsSubmitted) (*sourceData, error) {
	list, err := s.airbyte.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: r.WorkspaceName, DefinitionID: r.DefinitionID})
	if err != nil {
		return nil, err
	}
	name := r.ConnectorName()
	var matches []airbyte.ConnectorSourceListItem
	for _, c := range list.Data {
		if c.Name == name && sameKind(r, c.SummarizedSourceTemplate) {
			matches = append(matches, c)
		}
	}
	if len(matches) == 0 {
		return nil, nil
	}
	slices.SortFunc(matches, func(a, b airbyte.ConnectorSourceListItem) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt.Time), strings.Compare(a.ID, b.ID))
	})
	c := matches[0]
	t := c.SummarizedSourceTemplate
	return &sourceData{
		ID: c.ID, Name: c.Name,
		SourceTemplate:    sourceTemplate{ID: t.ID, Name: t.Name, SourceDefinitionID: t.ActorDefinitionID, Mode: string(t.Mode)},
		ReplicationConfig: redactedConfig(r.ReplicationConfig, nil),
		CreatedAt:         timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt),
	}, nil
}

// sameKind compares what the list tells of a connector's kind with the request's.
func sameKind(r *contract.CredentialsSubmitted, t airbyte.SummarizedSourceTemplate) bool {
	switch {
	case r.ConnectorType != "":
		return t.Matches(r.ConnectorType)
	case r.DefinitionID != "":
		return strings.EqualFold(t.ActorDefinitionID, r.DefinitionID)
	default:
		return strings.EqualFold(t.ID, r.SourceTemplateID)
	}
}

// createdData builds the result data from a create response, with every trace of the credentials
// replaced: the credentials key, and any value equal to a credential wherever Airbyte echoed it.
func createdData(resp *airbyte.ConnectorSourceCreateResponse, creds secret.Fields) *sourceData {
	var values []string
	creds.RevealEach(func(_, v string) { values = append(values, v) })
	t := resp.SourceTemplate
	return &sourceData{
		ID: resp.ID, Name: resp.Name,
		SourceTemplate:    sourceTemplate{ID: t.ID, Name: t.Name, SourceDefinitionID: t.SourceDefinitionID, Mode: string(t.Mode)},
		ReplicationConfig: redactedConfig(resp.ReplicationConfig, values),
		CreatedAt:         timePtr(resp.CreatedAt), UpdatedAt: timePtr(resp.UpdatedAt),
	}
}

// redactedConfig is a replication_config fit for a result: the credentials key replaced, and any
// string holding one of the secrets scrubbed wherever it appears.
func redactedConfig(raw json.RawMessage, secrets []string) map[string]any {
	cfg := map[string]any{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &cfg)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	for k, v := range cfg {
		cfg[k] = scrub(v, secrets)
	}
	cfg["credentials"] = contract.RedactedCredentials
	return cfg
}

func scrub(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		for _, s := range secrets {
			if s != "" && strings.Contains(x, s) {
				return contract.RedactedCredentials
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = scrub(e, secrets)
		}
	case []any:
		for i, e := range x {
			x[i] = scrub(e, secrets)
		}
	}
	return v
}

func replicationConfig(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func timePtr(t airbyte.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
