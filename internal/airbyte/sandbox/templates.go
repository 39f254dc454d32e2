package sandbox

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// The read-only catalog routes of the spec (templates and definitions), workspace stats, and
// the canned connector execute.

// templateGetResponse is SourceTemplateGetResponse (a DetailedSourceTemplate with its slug).
type templateGetResponse struct {
	detailedSourceTemplate
	ConnectorName *string `json:"connector_name"`
}

// definitionSummary is ConnectorDefinitionSummarized; definitionDetail ConnectorDefinition.
type definitionSummary struct {
	SourceDefinitionID string  `json:"sourceDefinitionId"`
	Name               string  `json:"name"`
	DockerRepository   string  `json:"dockerRepository"`
	IconURL            *string `json:"iconUrl"`
	Custom             bool    `json:"custom"`
	SupportLevel       string  `json:"supportLevel"`
}

type definitionDetail struct {
	definitionSummary
	Spec connectorSpecification `json:"spec"`
}

type definitionListResponse struct {
	Definitions []definitionSummary `json:"definitions"`
}

type definitionGetResponse struct {
	ID         string           `json:"id"`
	Definition definitionDetail `json:"definition"`
}

type workspaceStatsResponse struct {
	ActiveCount   int `json:"active_count"`
	InactiveCount int `json:"inactive_count"`
	TotalCount    int `json:"total_count"`
}

// executeRequest is ConnectorExecuteRequest.
type executeRequest struct {
	Entity string         `json:"entity"`
	Action string         `json:"action"`
	Params map[string]any `json:"params"`
}

type executeMetadata struct {
	ConnectorInstanceID string `json:"connector_instance_id"`
	ExecutionTimeMS     int64  `json:"execution_time_ms"`
}

// executeResponse is ConnectorExecuteResponse.
type executeResponse struct {
	Status            string          `json:"status"`
	Result            any             `json:"result"`
	ConnectorMetadata any             `json:"connector_metadata"`
	ExecutionMetadata executeMetadata `json:"execution_metadata"`
}

// templateListItem is the agent spec's SourceTemplateListItem, whose schema is the same as
// SummarizedSourceTemplate's: global leaves organization_id null.
func (s *Server) templateListItem(e *catalogEntry, global bool) summarizedSourceTemplate {
	icon, slug := e.icon(), e.connectorType
	item := summarizedSourceTemplate{ID: e.templateID, Name: e.templateName, Icon: &icon, ConnectorName: &slug,
		ActorDefinitionID: e.definitionID, Tags: e.tags, Mode: "DIRECT"}
	if !global {
		org := s.cfg.OrganizationID
		item.OrganizationID = &org
	}
	return item
}

// handleIntegrationTemplates serves GET /integrations/templates/sources: the organization's
// templates, or with use_global=true Airbyte's global ones (the same catalog, owned by no
// organization), filtered by tags as the embedded list is.
func (s *Server) handleIntegrationTemplates(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	q := r.URL.Query()
	global := strings.EqualFold(q.Get("use_global"), "true")
	out := listResponse[summarizedSourceTemplate]{Data: []summarizedSourceTemplate{}}
	for i := range catalog {
		if e := &catalog[i]; tagsMatch(e.tags, q["tags"], q.Get("tags_mode") != "any") {
			out.Data = append(out.Data, s.templateListItem(e, global))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleGlobalTemplates serves GET /integrations/templates/sources/global (embedded spec).
func (s *Server) handleGlobalTemplates(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	out := listResponse[embeddedTemplateItem]{Data: []embeddedTemplateItem{}}
	for i := range catalog {
		out.Data = append(out.Data, catalog[i].embeddedTemplateItem())
	}
	writeJSON(w, http.StatusOK, out)
}

// handleTemplateGet serves GET /integrations/templates/sources/{id} and
// /embedded/source-templates/{id}.
func (s *Server) handleTemplateGet(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	e := lookupTemplate(r.PathValue("id"))
	if e == nil {
		writeError(w, http.StatusNotFound, "id", "not_found", "source template not found")
		return
	}
	slug := e.connectorType
	writeJSON(w, http.StatusOK, templateGetResponse{detailedSourceTemplate: detailedTemplate(e), ConnectorName: &slug})
}

func (d *connectorDef) summary() definitionSummary {
	icon := d.icon()
	return definitionSummary{SourceDefinitionID: d.definitionID, Name: d.displayName,
		DockerRepository: "airbyte/source-" + d.connectorType, IconURL: &icon, SupportLevel: "certified"}
}

// handleDefinitions serves GET /integrations/definitions/sources[?name=]: name filters by a
// case-insensitive partial match of the display name or slug.
func (s *Server) handleDefinitions(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	name := strings.ToLower(r.URL.Query().Get("name"))
	out := definitionListResponse{Definitions: []definitionSummary{}}
	for _, d := range definitions {
		if strings.Contains(strings.ToLower(d.displayName), name) || strings.Contains(d.connectorType, name) {
			out.Definitions = append(out.Definitions, d.summary())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDefinitionGet(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	d := lookupDefinition(r.PathValue("id"))
	if d == nil {
		writeError(w, http.StatusNotFound, "id", "not_found", "source definition not found")
		return
	}
	writeJSON(w, http.StatusOK, definitionGetResponse{ID: d.definitionID, Definition: definitionDetail{definitionSummary: d.summary(), Spec: d.spec()}})
}

// handleConnectorExecute serves POST /integrations/connectors/{id}/execute with a canned
// answer: status "success", result {"entity", "action", "records": []} (the sandbox holds no
// data), connector_metadata {"connector_type", "connector_id"}, execution_metadata with the
// connector's id and 0 ms. entity and action are required (422).
func (s *Server) handleConnectorExecute(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	var req executeRequest
	if !decodeRequest(w, r, &req, "entity", "action") {
		return
	}
	writeJSON(w, http.StatusOK, executeResponse{
		Status:            "success",
		Result:            map[string]any{"entity": req.Entity, "action": req.Action, "records": []any{}},
		ConnectorMetadata: map[string]any{"connector_type": src.entry.connectorType, "connector_id": src.id},
		ExecutionMetadata: executeMetadata{ConnectorInstanceID: src.id},
	})
}

// handleWorkspaceStats serves GET /workspaces/stats: counts of the workspaces the caller sees
// (all of the organization's for an application token).
func (s *Server) handleWorkspaceStats(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	var out workspaceStatsResponse
	for _, ws := range s.state().workspaces() {
		if !p.isOperator() && ws != p.workspace {
			continue
		}
		out.TotalCount++
		if ws.meta().status == workspaceInactive {
			out.InactiveCount++
		} else {
			out.ActiveCount++
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// validUUID is FastAPI's check of a uuid path parameter.
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
