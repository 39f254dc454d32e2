package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// replace gives an Agent Engine connector new credentials, which its PUT cannot change: create the
// new connector, record it, then delete the old one. Each step is recorded before it is taken, so
// a worker killed anywhere leaves enough in the ledger for the next one to finish the same replace
// — never a second new connector, never the customer without one:
//
//   - killed after the create, before recording it: the progress says a create was sent; the next
//     holder lists and adopts the connector that is not the old one;
//   - killed after recording it: the next holder skips the create;
//   - killed before or after the delete: the delete is sent again (a 404 means it is done).
//
// Connectors left by another request's unfinished attempt are deleted too: they hold its
// credentials, and the identity must end with exactly one connector.
func (s *Service) replace(ctx context.Context, u *upsert, old string) (record, error) {
	var newData *sourceData
	newID := ""
	ours := u.prev.CreateBy == u.r.ID
	switch {
	case ours && u.prev.NewConnector != "":
		newID = u.prev.NewConnector
	case ours && u.prev.CreateSent:
		ms, err := s.matches(ctx, u.t)
		if err != nil {
			return record{}, classifyAirbyte("list connectors", err)
		}
		for _, m := range ms {
			if m.ID != old && !u.past[m.ID] {
				newID, newData = m.ID, listedData(m, u.r.ReplicationConfig)
				break
			}
		}
	}
	if newID == "" {
		if u.check {
			if err := s.checkCredentials(ctx, u); err != nil {
				return record{}, err
			}
		}
		data, _, err := s.createConnector(ctx, u, old)
		if err != nil {
			return record{}, err
		}
		newID, newData = data.ID, data
	}
	if err := u.w.setProgress(ctx, progress{CreateSent: true, CreateBy: u.r.ID, NewConnector: newID, Old: old, Foreign: u.foreign}); err != nil {
		return record{}, err
	}
	if err := s.at(StepRecordedNew); err != nil {
		return record{}, err
	}
	if err := s.at(StepBeforeDeletes); err != nil {
		return record{}, err
	}
	if _, err := s.deleteConnector(ctx, u.w, u.r.WorkspaceName, old); err != nil {
		return record{}, err
	}
	if err := s.at(StepDeletedOld); err != nil {
		return record{}, err
	}
	// Any other connector of the identity is a leftover of an unfinished attempt: delete it. Only an
	// unfinished attempt (recorded, or a lease taken over) can have left one, so only then is the
	// workspace listed. The list may still show the old one for a while (deletes complete later).
	var ms []airbyte.ConnectorSourceListItem
	if u.prev.CreateSent || newData == nil {
		var err error
		if ms, err = s.matches(ctx, u.t); err != nil {
			return record{}, classifyAirbyte("list connectors", err)
		}
	}
	for _, m := range ms {
		switch m.ID {
		case newID:
			if newData == nil {
				newData = listedData(m, u.r.ReplicationConfig)
			}
		case old:
		default:
			u.d.Logger.Info("deleting a leftover connector of the identity", "connector_id", m.ID)
			if _, err := s.deleteConnector(ctx, u.w, u.r.WorkspaceName, m.ID); err != nil {
				return record{}, err
			}
		}
	}
	if newData == nil {
		return record{}, event.Coded(contract.CodeAirbyteUnavailable, true, fmt.Errorf("the new connector %s is not listed yet", newID))
	}
	b, _ := json.Marshal(newData)
	return record{Message: contract.MessageSourceUpdated, WorkspaceID: u.ws.ID, Data: b, ReplacedID: old, Outcome: OutcomeReplaced}, nil
}

// deleteConnector deletes a connector; one that is already gone (404) counts as deleted, and
// existed says which it was.
func (s *Service) deleteConnector(ctx context.Context, w *work, workspace, id string) (existed bool, _ error) {
	w.sending()
	_, err := s.airbyte.DeleteConnector(ctx, workspace, id)
	var apiErr *airbyte.APIError
	switch {
	case err == nil:
		w.answered()
		return true, nil
	case errors.As(err, &apiErr) && apiErr.StatusCode == 404:
		w.answered()
		return false, nil
	case errors.As(err, &apiErr) && !airbyte.IsAmbiguous(err):
		w.answered()
	}
	return false, classifyAirbyte("delete connector", err)
}
