package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
)

// offboardedData is the "data" of a workspace_offboarded result.
type offboardedData struct {
	WorkspaceID   string   `json:"workspace_id,omitempty"`
	WorkspaceName string   `json:"workspace_name"`
	DeletedIDs    []string `json:"deleted_ids"`
	Workspace     string   `json:"workspace"` // kept | deactivated | deleted
}

// customerOffboarded deletes every connector of the workspace — all that Airbyte lists, not only
// the provisioner's — then keeps, deactivates or deletes the workspace, and leaves every identity
// of the workspace a tombstone.
//
// Order: the workspace's offboarding marker is written first, then its identities are listed (one
// filtered key listing) and claimed. An identity created concurrently is either listed, or finds
// the marker when it is claimed and becomes a tombstone itself; an identity a newer request changed
// after the offboarding was published is left alone, its connector kept.
func (s *Service) customerOffboarded(ctx context.Context, req event.Request, d Delivery) Decision {
	r := req.CustomerOffboarded
	lreq := ledger.Request{ID: r.ID, Sequence: d.Sequence}
	o, ours, err := s.ledger.MarkOffboarded(ctx, r.WorkspaceName, lreq)
	if err != nil {
		return s.fail(req, d, classifyLedger(err))
	}
	if !ours {
		rec := record{Message: contract.MessageWorkspaceOffboardError, Outcome: OutcomeSuperseded, Error: &contract.ErrorBody{
			Code: contract.CodeSuperseded, Message: fmt.Sprintf("superseded by offboarding %s, published after this one", o.RequestID),
		}}
		return Decision{Action: Ack, Outcome: OutcomeSuperseded, Result: s.resultOf(req, rec)}
	}
	if len(o.Record) > 0 {
		var rec record
		if err := json.Unmarshal(o.Record, &rec); err == nil && rec.Message != "" {
			return Decision{Action: Ack, Outcome: OutcomeReplayed, Result: s.resultOf(req, rec)}
		}
	}

	keys, err := s.ledger.WorkspaceIdentities(ctx, r.WorkspaceName)
	if err != nil {
		return s.fail(req, d, classifyLedger(err))
	}
	var held []*work
	defer func() {
		for _, w := range held {
			w.end()
		}
	}()
	keep := map[string]bool{} // connectors of identities a newer request changed
	giveBack := func(err error) Decision {
		for _, w := range held {
			w.giveBack(ctx, d, err)
		}
		return s.fail(req, d, err)
	}
	for _, key := range keys {
		c, err := s.ledger.ClaimKey(ctx, r.WorkspaceName, key, lreq)
		if err != nil {
			return giveBack(classifyLedger(err))
		}
		switch c.Outcome {
		case ledger.Claimed:
			_, w := s.startWork(ctx, c.Lease)
			held = append(held, w)
		case ledger.Superseded:
			if c.Entry.SettledState() == ledger.StateActive {
				keep[c.Entry.Connector] = true
			}
		case ledger.Busy:
			s.observer.LedgerConflict()
			dec := giveBack(event.Coded(contract.CodeLeaseUnavailable, true, errors.New("another worker is changing a connector of the workspace")))
			dec.RetryAfter = min(max(c.RetryAfter, 100*time.Millisecond), 5*time.Second)
			return dec
		}
	}

	rec, err := s.offboard(ctx, r, held, keep)
	if err != nil {
		return giveBack(err)
	}
	tomb := record{Message: contract.MessageWorkspaceOffboarded, Outcome: OutcomeOffboarded}.marshal()
	for _, w := range held {
		if err := w.lease.Delete(ctx, tomb); err != nil {
			return giveBack(classifyLedger(fmt.Errorf("tombstone: %w", err)))
		}
	}
	if err := s.at(StepBeforeRecord); err != nil {
		return s.fail(req, d, err)
	}
	o.Record = rec.marshal()
	if err := s.ledger.RecordOffboarded(ctx, r.WorkspaceName, o); err != nil && !d.Final {
		return s.fail(req, d, classifyLedger(err))
	}
	d.Logger.Debug("workspace offboarded", "workspace_id", rec.WorkspaceID, "identities", len(held))
	return Decision{Action: Ack, Outcome: OutcomeOffboarded, Result: s.resultOf(req, rec)}
}

func (s *Service) offboard(ctx context.Context, r *contract.CustomerOffboarded, held []*work, keep map[string]bool) (record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Budget)
	defer cancel()
	ws, err := s.airbyte.Workspace(ctx, r.WorkspaceName)
	if err != nil {
		return record{}, classifyAirbyte("workspace", err)
	}
	list, err := s.airbyte.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: r.WorkspaceName})
	if err != nil {
		return record{}, classifyAirbyte("list connectors", err)
	}
	data := offboardedData{WorkspaceID: ws.ID, WorkspaceName: r.WorkspaceName, DeletedIDs: []string{}}
	var w *work
	if len(held) > 0 {
		w = held[0]
	} else {
		w = &work{s: s}
	}
	for _, c := range list.Data {
		if keep[c.ID] {
			continue
		}
		existed, err := s.deleteConnector(ctx, w, r.WorkspaceName, c.ID)
		if err != nil {
			return record{}, err
		}
		if existed {
			data.DeletedIDs = append(data.DeletedIDs, c.ID)
		}
	}
	if err := s.at(StepDeleted); err != nil {
		return record{}, err
	}
	switch r.WorkspaceAction() {
	case contract.WorkspaceDeactivate:
		if _, err := s.airbyte.UpdateWorkspace(ctx, ws.ID, airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceInactive}); err != nil {
			return record{}, classifyAirbyte("deactivate workspace", err)
		}
		data.Workspace = "deactivated"
	case contract.WorkspaceDelete:
		_, err := s.airbyte.DeleteWorkspace(ctx, ws.ID)
		var apiErr *airbyte.APIError
		if err != nil && !(errors.As(err, &apiErr) && apiErr.StatusCode == 404) {
			return record{}, classifyAirbyte("delete workspace", err)
		}
		data.Workspace = "deleted"
	default:
		data.Workspace = "kept"
	}
	b, _ := json.Marshal(data)
	return record{Message: contract.MessageWorkspaceOffboarded, WorkspaceID: ws.ID, Data: b, Outcome: OutcomeOffboarded}, nil
}
