package provision

import (
	"context"
	"encoding/json"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// customerOnboarded makes the customer's workspace exist (idempotent at Airbyte: no ledger needed).
func (s *Service) customerOnboarded(ctx context.Context, req event.Request, d Delivery) Decision {
	r := req.CustomerOnboarded
	if s.cfg.Policy.UsesWorkspaceName() {
		// refused here, once, rather than at every credentials request of a workspace no secret fits
		if err := vault.CheckWorkspaceName(r.WorkspaceName); err != nil {
			return s.fail(req, d, event.Coded(contract.CodeSchemaViolation, false, err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Budget)
	defer cancel()
	ws, err := s.airbyte.EnsureWorkspace(ctx, r.WorkspaceName, r.RegionID)
	if err != nil {
		return s.fail(req, d, classifyAirbyte("workspace", err))
	}
	data, err := json.Marshal(struct {
		WorkspaceID    string `json:"workspace_id"`
		WorkspaceName  string `json:"workspace_name"`
		OrganizationID string `json:"organization_id,omitempty"`
	}{ws.ID, ws.Name, ws.OrganizationID})
	if err != nil {
		return s.fail(req, d, event.Coded(contract.CodeInternal, false, err))
	}
	d.Logger.Debug("workspace ready", "workspace_id", ws.ID)
	return Decision{Action: Ack, Outcome: OutcomeWorkspaceReady, Result: &contract.Result{
		Type: contract.ResultType, Message: contract.MessageWorkspaceReady, Data: data,
		RequestID: r.ID, WorkspaceName: r.WorkspaceName, WorkspaceID: ws.ID,
	}}
}
