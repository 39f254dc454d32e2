package provision

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/cenkalti/backoff/v4"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// create makes the identity's connector exist when the ledger knows of none. It lists first when an
// earlier attempt may have created one (or --lookup always says so): a connector created by this
// request is adopted; one created by another request's unfinished attempt holds that request's
// credentials, so it is updated with ours; one that no attempt created (made outside the
// provisioner, found by --lookup always) may hold any credentials, so it is updated with ours and
// the answer says so (source_updated).
func (s *Service) create(ctx context.Context, u *upsert) (record, error) {
	if u.prev.Foreign != "" {
		// an earlier attempt was giving a foreign connector our credentials: finish that
		u.foreign = u.prev.Foreign
		return s.update(ctx, u, u.foreign)
	}
	mustLookup := u.prev.CreateSent || s.cfg.Lookup == LookupAlways
	if mustLookup {
		ms, err := s.matches(ctx, u.t)
		if err != nil {
			return record{}, classifyAirbyte("list connectors", err)
		}
		ms = slices.DeleteFunc(ms, func(m airbyte.ConnectorSourceListItem) bool { return u.past[m.ID] })
		if len(ms) > 0 {
			found := ms[0]
			if !u.prev.CreateSent {
				return s.updateForeign(ctx, u, found.ID)
			}
			if u.prev.CreateBy == u.r.ID {
				return s.created(u, listedData(found, u.r.ReplicationConfig), OutcomeAdopted), nil
			}
			rec, err := s.update(ctx, u, found.ID)
			rec.Message, rec.ReplacedID = contract.MessageSourceCreated, ""
			return rec, err
		}
	}
	if u.check {
		if err := s.checkCredentials(ctx, u); err != nil {
			return record{}, err
		}
	}
	data, adopted, err := s.createConnector(ctx, u, "")
	if err != nil {
		return record{}, err
	}
	outcome := OutcomeCreated
	if adopted {
		outcome = OutcomeAdopted
	}
	return s.created(u, data, outcome), nil
}

// updateForeign gives a connector made outside the provisioner the request's credentials, like an
// upsert of an existing connector (in place, or by replace). It is recorded first: a holder that
// dies mid-way leaves a lease taken over as "a create may have been sent", and the next holder must
// not adopt the foreign connector as that create's.
func (s *Service) updateForeign(ctx context.Context, u *upsert, id string) (record, error) {
	u.d.Logger.Info("giving a connector made outside the provisioner the request's credentials", "connector_id", id)
	u.foreign = id
	p := progress{Foreign: id}
	if err := u.w.setProgress(ctx, p); err != nil {
		return record{}, err
	}
	u.w.note(p)
	return s.update(ctx, u, id)
}

func (s *Service) created(u *upsert, data *sourceData, outcome string) record {
	b, _ := json.Marshal(data)
	return record{Message: contract.MessageSourceCreated, WorkspaceID: u.ws.ID, Data: b, Outcome: outcome}
}

// createConnector sends the create, retrying within the budget. A failure that may have created
// the connector anyway (a timeout, a 5xx, a lost connection) is followed by a listing before the
// next create: the connector found there — not except, and none the identity's history names
// (a deleted one may still be listed) — is adopted.
func (s *Service) createConnector(ctx context.Context, u *upsert, except string) (*sourceData, bool, error) {
	// No ledger write before the create: a holder that dies leaves its lease, and whoever takes it
	// over counts a create of the lease's request as sent; one that gives up hands this over.
	u.w.note(progress{CreateSent: true, CreateBy: u.r.ID, Old: except, Foreign: u.foreign})
	mustLookup := false
	var adopted bool
	attempt := func() (*sourceData, error) {
		if mustLookup {
			ms, err := s.matches(ctx, u.t)
			if err != nil {
				return nil, permanentUnlessRetryable(classifyAirbyte("list connectors", err))
			}
			for _, m := range ms {
				if m.ID != except && !u.past[m.ID] {
					adopted = true
					return listedData(m, u.r.ReplicationConfig), nil
				}
			}
		}
		if !u.w.lease.Valid(s.cfg.LeaseMargin) {
			return nil, backoff.Permanent(event.Coded(contract.CodeLeaseUnavailable, true, errors.New("lease about to lapse; not creating")))
		}
		u.w.sending()
		resp, err := s.airbyte.CreateConnector(ctx, airbyte.ConnectorSourceCreateRequest{
			Name: u.r.ConnectorName(), WorkspaceName: u.r.WorkspaceName, ConnectorType: u.r.ConnectorType,
			DefinitionID: u.r.DefinitionID, SourceTemplateID: u.r.SourceTemplateID,
			ReplicationConfig: replicationConfig(u.r.ReplicationConfig), Credentials: u.creds,
		})
		if err != nil {
			// The connector may exist now even though we saw a failure: look before the next create.
			if airbyte.IsAmbiguous(err) || !errors.As(err, new(*airbyte.APIError)) {
				mustLookup = true
				u.w.createUnknown()
			} else {
				u.w.answered() // a definite answer: this create made nothing
			}
			return nil, permanentUnlessRetryable(classifyAirbyte("create connector", err))
		}
		u.w.answered()
		return createdData(resp, u.creds), nil
	}
	data, err := backoff.RetryWithData(attempt, backoff.WithContext(s.cfg.NewBackOff(), ctx))
	if err != nil {
		return nil, false, classifyAirbyte("create connector", err)
	}
	if err := s.at(StepCreated); err != nil {
		return nil, false, err
	}
	return data, adopted, nil
}

// permanentUnlessRetryable stops the in-process retry loop for errors that cannot pass.
func permanentUnlessRetryable(err error) error {
	if _, retryable := event.CodeOf(err); retryable {
		return err
	}
	return backoff.Permanent(err)
}

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}
