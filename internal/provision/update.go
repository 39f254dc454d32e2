package provision

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
)

// update applies a request's credentials and settings to the identity's existing connector: in
// place for an embedded source (PUT source_config, which does change credentials), by replace for
// an Agent Engine connector (whose PUT cannot). Nothing changes if the check rejects them.
func (s *Service) update(ctx context.Context, u *upsert, connector string) (record, error) {
	if !u.t.embedded() {
		return s.replace(ctx, u, connector)
	}
	if u.check {
		if err := s.checkCredentials(ctx, u); err != nil {
			return record{}, err
		}
	}
	resp, err := s.airbyte.UpdateSource(ctx, u.r.WorkspaceName, connector, airbyte.SourceUpdateRequest{
		SourceConfig: replicationConfig(u.r.ReplicationConfig), Credentials: u.creds,
	})
	var apiErr *airbyte.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 404 {
		// deleted behind the ledger's back: the request's connector must exist, so create it
		u.d.Logger.Warn("the recorded source is gone at Airbyte; creating it again", "connector_id", connector)
		data, _, err := s.createConnector(ctx, u, connector)
		if err != nil {
			return record{}, err
		}
		b, _ := json.Marshal(data)
		return record{Message: contract.MessageSourceUpdated, WorkspaceID: u.ws.ID, Data: b, ReplacedID: connector, Outcome: OutcomeReplaced}, nil
	}
	if err != nil {
		return record{}, classifyAirbyte("update source", err)
	}
	if err := s.at(StepUpdated); err != nil {
		return record{}, err
	}
	b, _ := json.Marshal(updatedData(resp, u.creds))
	return record{Message: contract.MessageSourceUpdated, WorkspaceID: u.ws.ID, Data: b, Outcome: OutcomeUpdated}, nil
}
