package provision

import (
	"context"
	"encoding/json"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
)

// deletedData is the "data" of a source_deleted result.
type deletedData struct {
	ID         string   `json:"id,omitempty"`
	Name       string   `json:"name,omitempty"`
	DeletedIDs []string `json:"deleted_ids"`
}

// connectorDisconnected makes the identity have no connector: the recorded one and any other
// Airbyte lists under the identity's name and kind (leftovers of interrupted attempts, or made
// outside the provisioner). The identity keeps a tombstone with the request's sequence, so an older
// create delivered late is superseded instead of bringing the connector back.
func (s *Service) connectorDisconnected(ctx context.Context, req event.Request, d Delivery) Decision {
	r := req.ConnectorDisconnected
	id := ledger.Identity{WorkspaceName: r.WorkspaceName, ConnectorKind: r.ConnectorKind(), Name: r.ConnectorName()}
	c, err := s.claim(ctx, id, r.ID, d)
	if err != nil {
		return s.fail(req, d, err)
	}
	workCtx, w, dec, done := s.begin(ctx, id, req, d, c, contract.MessageSourceDeleteError)
	if done {
		return dec
	}
	defer w.end()
	rec, err := s.disconnect(workCtx, r, c, w)
	if err != nil {
		err = withCause(workCtx, err)
		w.giveBack(ctx, d, err)
		return s.fail(req, d, err)
	}
	return s.settle(ctx, req, d, w, func(ctx context.Context) error { return w.lease.Delete(ctx, rec.marshal()) }, rec)
}

func (s *Service) disconnect(ctx context.Context, r *contract.ConnectorDisconnected, c ledger.Claim, w *work) (record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Budget)
	defer cancel()
	ws, err := s.airbyte.Workspace(ctx, r.WorkspaceName)
	if err != nil {
		return record{}, classifyAirbyte("workspace", err)
	}
	prev := progressOf(c.Entry.Progress)
	known := ""
	if c.Entry.SettledState() == ledger.StateActive {
		known = c.Entry.Connector
	}
	p := progress{DeleteBy: r.ID, CreateSent: prev.CreateSent, CreateBy: prev.CreateBy, NewConnector: prev.NewConnector, Old: prev.Old}
	if prev.DeleteBy == r.ID {
		p.Deleted = prev.Deleted
	}
	if err := w.setProgress(ctx, p); err != nil {
		return record{}, err
	}
	data := deletedData{Name: r.ConnectorName(), DeletedIDs: []string{}}
	gone := map[string]bool{}
	if known != "" {
		existed, err := s.deleteConnector(ctx, w, r.WorkspaceName, known)
		if err != nil {
			return record{}, err
		}
		gone[known] = true
		// deleted now, or by an earlier attempt of this same request that stopped before recording
		if existed || prev.DeleteBy == r.ID {
			data.ID = known
			data.DeletedIDs = append(data.DeletedIDs, known)
		}
	}
	// connectors whose delete Airbyte accepted from an earlier attempt of this request: it may
	// no longer list them, or answer 404, but this request deleted them
	for _, id := range p.Deleted {
		if gone[id] {
			continue
		}
		gone[id] = true
		data.DeletedIDs = append(data.DeletedIDs, id)
		if data.ID == "" {
			data.ID = id
		}
	}
	t := target{Workspace: r.WorkspaceName, ConnectorType: r.ConnectorType, DefinitionID: r.DefinitionID, SourceTemplateID: r.SourceTemplateID, Name: r.ConnectorName()}
	ms, err := s.matches(ctx, t)
	if err != nil {
		return record{}, classifyAirbyte("list connectors", err)
	}
	for _, m := range ms {
		if gone[m.ID] {
			continue // a delete completes later: the list may still show it
		}
		existed, err := s.deleteConnector(ctx, w, r.WorkspaceName, m.ID)
		if err != nil {
			return record{}, err
		}
		gone[m.ID] = true
		if existed {
			// a redelivery after a crash must know that this request deleted it
			p.Deleted = append(p.Deleted, m.ID)
			if err := w.setProgress(ctx, p); err != nil {
				return record{}, err
			}
			data.DeletedIDs = append(data.DeletedIDs, m.ID)
			if data.ID == "" {
				data.ID = m.ID
			}
		}
	}
	if err := s.at(StepDeleted); err != nil {
		return record{}, err
	}
	b, _ := json.Marshal(data)
	return record{
		Message: contract.MessageSourceDeleted, WorkspaceID: ws.ID, Data: b,
		AlreadyAbsent: len(data.DeletedIDs) == 0, Outcome: OutcomeDeleted,
	}, nil
}
