package sandbox

import (
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// connectorCreateFields are the members ConnectorSourceCreateRequest declares (plus the customer
// key's two older names); anything else at top level is a connector setting in the wrong place.
var connectorCreateFields = map[string]bool{
	"name": true, "workspace_name": true, "customer_name": true, "external_user_id": true,
	"connector_type": true, "definition_id": true, "source_template_id": true,
	"replication_config": true, "credentials": true, "environment": true, "entities": true,
	"server_side_oauth_secret_id": true, "selected_connection_template_tags": true,
	"selected_connection_template_tags_mode": true,
}

var connectorUpdateFields = map[string]bool{"name": true, "replication_config": true, "entities": true}

// connectorCreateRequest is ConnectorSourceCreateRequest (and ConnectorSourceCheckConfigRequest).
type connectorCreateRequest struct {
	Name                    *string           `json:"name"`
	WorkspaceName           string            `json:"workspace_name"`
	CustomerName            string            `json:"customer_name"`
	ExternalUserID          string            `json:"external_user_id"`
	ConnectorType           *string           `json:"connector_type"`
	DefinitionID            *string           `json:"definition_id"`
	SourceTemplateID        *string           `json:"source_template_id"`
	ReplicationConfig       map[string]any    `json:"replication_config"`
	Credentials             map[string]any    `json:"credentials"`
	Environment             map[string]any    `json:"environment"`
	Entities                []requestedEntity `json:"entities"`
	ServerSideOAuthSecretID *string           `json:"server_side_oauth_secret_id"`
}

type connectorUpdateRequest struct {
	Name              *string           `json:"name"`
	ReplicationConfig map[string]any    `json:"replication_config"`
	Entities          []requestedEntity `json:"entities"`
}

// requestError is a rejected request: status, the offending field and a message.
type requestError struct {
	status      int
	field, code string
	msg         string
}

func (e *requestError) Error() string { return e.msg }

func (e *requestError) write(w http.ResponseWriter) { writeError(w, e.status, e.field, e.code, e.msg) }

func unprocessable(field, code, msg string) *requestError {
	return &requestError{status: http.StatusUnprocessableEntity, field: field, code: code, msg: msg}
}

// parseConnectorCreate validates a create (or check) body and resolves the connector kind.
func parseConnectorCreate(r *http.Request) (connectorCreateRequest, *catalogEntry, *requestError) {
	var req connectorCreateRequest
	obj, err := decodeObject(r)
	if err != nil {
		return req, nil, unprocessable("body", "value_error", err.Error())
	}
	var unknown []string
	for k := range obj {
		if !connectorCreateFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return req, nil, unprocessable(unknown[0], "extra_forbidden",
			"unknown top-level fields "+strings.Join(unknown, ", ")+": connector settings belong under replication_config")
	}
	if field, ok := decodeInto(obj, &req); !ok {
		return req, nil, unprocessable(field, "value_error", "invalid request body")
	}
	if req.workspaceNameOf() == "" {
		return req, nil, unprocessable("workspace_name", "missing", "field required: workspace_name")
	}
	entry, rerr := resolveKind(req.ConnectorType, req.DefinitionID, req.SourceTemplateID)
	if rerr != nil {
		return req, nil, rerr
	}
	if rerr := checkCredentials(entry, req.Credentials, req.ServerSideOAuthSecretID); rerr != nil {
		return req, nil, rerr
	}
	return req, entry, nil
}

func (req connectorCreateRequest) workspaceNameOf() string {
	for _, n := range []string{req.WorkspaceName, req.CustomerName, req.ExternalUserID} {
		if n != "" {
			return n
		}
	}
	return ""
}

// resolveKind finds the catalog entry named by exactly one of the three kind fields. Unknown
// kinds answer 422, because the spec declares 422 (not 404) for the create endpoint.
func resolveKind(connectorType, definitionID, templateID *string) (*catalogEntry, *requestError) {
	given := 0
	for _, p := range []*string{connectorType, definitionID, templateID} {
		if p != nil && *p != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, unprocessable("connector_type", "missing", "one of connector_type, definition_id or source_template_id is required")
	case given > 1:
		return nil, unprocessable("connector_type", "value_error", "give only one of connector_type, definition_id or source_template_id")
	}
	var entry *catalogEntry
	var field string
	switch {
	case connectorType != nil && *connectorType != "":
		entry, field = lookupType(*connectorType), "connector_type"
	case definitionID != nil && *definitionID != "":
		entry, field = lookupDefinition(*definitionID), "definition_id"
	default:
		entry, field = lookupTemplate(*templateID), "source_template_id"
	}
	if entry == nil {
		return nil, unprocessable(field, "not_found", "unknown "+field)
	}
	return entry, nil
}

// checkCredentials refuses credentials that fit no auth scheme of the connector.
func checkCredentials(entry *catalogEntry, creds map[string]any, oauthSecretID *string) *requestError {
	if len(creds) == 0 && entry.auth == authOAuth && oauthSecretID != nil && *oauthSecretID != "" {
		return nil
	}
	var missing []string
	for _, f := range entry.auth.requiredCredentials() {
		if v, ok := creds[f].(string); !ok || v == "" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return &requestError{status: http.StatusBadRequest, field: "credentials", code: "invalid_credentials",
			msg: "credentials match no auth scheme of " + entry.displayName + ": missing " + strings.Join(missing, ", ")}
	}
	return nil
}

// resolveWorkspace finds the workspace a request names and checks the caller may act on it.
// Operators get the workspace created when it does not exist (as the scoped-token mint does)
// [inferred]; scoped callers can only name their own.
func (s *Server) resolveWorkspace(p principal, name string, create bool) (*workspace, error) {
	st := s.state()
	if !p.isOperator() {
		if p.workspace.nameNow() != name {
			return nil, forbidden("the token is not scoped to this workspace")
		}
		return p.workspace, nil
	}
	if create {
		return st.ensureWorkspace(name, "", s.now()), nil
	}
	return st.workspaceByName(name), nil
}

func (s *Server) handleConnectorCreate(w http.ResponseWriter, r *http.Request, d decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	req, entry, rerr := parseConnectorCreate(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	ws, err := s.resolveWorkspace(p, req.workspaceNameOf(), true)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	now := s.now().UTC()
	src := &source{
		id: uuid.NewString(), ws: ws, entry: entry, createdAt: now, updatedAt: now,
		name: entry.displayName, config: req.ReplicationConfig, credentials: req.Credentials, entities: req.Entities,
	}
	if req.Name != nil && *req.Name != "" {
		src.name = *req.Name
	}
	if src.config == nil {
		src.config = map[string]any{}
	}
	delete(src.config, "credentials") // the credentials member is the only place for them
	s.commit(w, ws, src, d, func(v sourceView) any { return s.connectorResponse(v) })
}

// commit stores a new connector or source and answers with it, or, when the fault plan says so,
// fails after the commit: the case no idempotency key protects against.
func (s *Server) commit(w http.ResponseWriter, ws *workspace, src *source, d decision, answer func(sourceView) any) {
	if !s.state().add(ws, src) {
		writeError(w, http.StatusNotFound, "workspace_name", "not_found", "workspace was deleted")
		return
	}
	s.created.Add(1)
	s.live.Add(1)
	if d.commitThenFail {
		s.failAfterCommit(w, d)
		return
	}
	writeJSON(w, http.StatusOK, answer(src.view()))
}

func (s *Server) handleConnectorList(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	q := r.URL.Query()
	var ws *workspace
	switch {
	case q.Get("workspace_id") != "":
		if ws, err = s.workspaceByIDFor(p, q.Get("workspace_id")); err != nil {
			writeAuthError(w, err)
			return
		}
	default:
		name := firstNonEmpty(q.Get("workspace_name"), q.Get("customer_name"), q.Get("external_user_id"))
		if name == "" {
			writeError(w, http.StatusBadRequest, "workspace_name", "missing", "workspace_name or workspace_id is required")
			return
		}
		if ws, err = s.resolveWorkspace(p, name, false); err != nil {
			writeAuthError(w, err)
			return
		}
	}
	out := listResponse[connectorListItem]{Data: []connectorListItem{}}
	if ws != nil {
		for _, v := range ws.list(q.Get("definition_id")) {
			out.Data = append(out.Data, s.connectorListItem(v))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// connectorByPath authenticates and finds the {id} of the path, writing the failure if any.
func (s *Server) connectorByPath(w http.ResponseWriter, r *http.Request) (principal, *source, bool) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return p, nil, false
	}
	src := s.state().lookup(r.PathValue("id"))
	if src == nil {
		writeError(w, http.StatusNotFound, "id", "not_found", "connector not found")
		return p, nil, false
	}
	if err := allowWorkspace(p, src.ws); err != nil {
		writeAuthError(w, err)
		return p, nil, false
	}
	return p, src, true
}

func (s *Server) handleConnectorGet(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.connectorResponse(src.view()))
}

func (s *Server) handleConnectorUpdate(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	req, rerr := parseConnectorUpdate(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	src.ws.mu.Lock()
	if req.Name != nil && *req.Name != "" {
		src.name = *req.Name
	}
	if req.ReplicationConfig != nil {
		delete(req.ReplicationConfig, "credentials")
		src.config = req.ReplicationConfig
	}
	if req.Entities != nil {
		src.entities = req.Entities
	}
	src.updatedAt = s.now().UTC()
	v := src.viewLocked()
	src.ws.mu.Unlock()
	writeJSON(w, http.StatusOK, s.connectorResponse(v))
}

// parseConnectorUpdate reads ConnectorSourceUpdateRequest; credentials cannot change here.
func parseConnectorUpdate(r *http.Request) (connectorUpdateRequest, *requestError) {
	var req connectorUpdateRequest
	obj, err := decodeObject(r)
	if err != nil {
		return req, unprocessable("body", "value_error", err.Error())
	}
	if _, ok := obj["credentials"]; ok {
		return req, unprocessable("credentials", "extra_forbidden", "credentials cannot be changed by an update; create a new connector")
	}
	for k := range obj {
		if !connectorUpdateFields[k] {
			return req, unprocessable(k, "extra_forbidden", "unknown field "+k)
		}
	}
	if field, ok := decodeInto(obj, &req); !ok {
		return req, unprocessable(field, "value_error", "invalid request body")
	}
	return req, nil
}

func (s *Server) handleConnectorDelete(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	if s.state().markDeleted(src) {
		s.deleted.Add(1)
		s.live.Add(-1)
	}
	writeJSON(w, http.StatusAccepted, deleteAcceptedResponse{JobID: uuid.NewString()})
}

// Check outcome rule, documented in the package comment: a credential value starting with
// "invalid" fails the check; anything else succeeds.
func checkOutcome(creds map[string]any) checkResponseStatus {
	for _, v := range creds {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "invalid") {
			return checkResponseStatus{status: "failed", message: "the source rejected the credentials"}
		}
	}
	return checkResponseStatus{status: "succeeded"}
}

type checkResponseStatus struct{ status, message string }

func (c checkResponseStatus) response(id string) checkResponse {
	out := checkResponse{ID: id, Status: c.status}
	if c.message != "" {
		out.ErrorMessage = &c.message
	}
	return out
}

func (s *Server) handleConnectorCheck(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	req, _, rerr := parseConnectorCreate(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	if _, err := s.resolveWorkspace(p, req.workspaceNameOf(), false); err != nil {
		writeAuthError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, checkOutcome(req.Credentials).response(uuid.NewString()))
}

func (s *Server) handleConnectorCheckID(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	if _, rerr := parseConnectorUpdate(r); rerr != nil {
		rerr.write(w)
		return
	}
	v := src.view()
	writeJSON(w, http.StatusOK, checkOutcome(v.credentials).response(v.id))
}

// redactedCredentials replaces every credential value with Airbyte's mask.
func redactedCredentials(creds map[string]any) map[string]any {
	out := make(map[string]any, len(creds))
	for k := range creds {
		out[k] = redactedSecretOut
	}
	return out
}

func (s *Server) connectorResponse(v sourceView) connectorResponse {
	cfg := make(map[string]any, len(v.config)+1)
	for k, val := range v.config {
		cfg[k] = val
	}
	if len(v.credentials) > 0 {
		cfg["credentials"] = redactedCredentials(v.credentials)
	}
	return connectorResponse{
		ID:                v.id,
		Name:              v.name,
		SourceTemplate:    detailedTemplate(v.entry),
		ReplicationConfig: cfg,
		Entities:          v.entities,
		CreatedAt:         v.createdAt,
		UpdatedAt:         v.updatedAt,
	}
}

func (s *Server) connectorListItem(v sourceView) connectorListItem {
	icon := v.entry.icon()
	connectorName := v.entry.connectorType
	org := s.cfg.OrganizationID
	return connectorListItem{
		ID:   v.id,
		Name: v.name,
		SummarizedSourceTemplate: summarizedSourceTemplate{
			ID: v.entry.templateID, Name: v.entry.displayName, Icon: &icon, ConnectorName: &connectorName,
			OrganizationID: &org, ActorDefinitionID: v.entry.definitionID, Tags: v.entry.tags, Mode: "DIRECT",
		},
		CreatedAt: v.createdAt,
		UpdatedAt: v.updatedAt,
	}
}

// detailedTemplate is the DetailedSourceTemplate of a catalog entry.
func detailedTemplate(e *catalogEntry) detailedSourceTemplate {
	icon := e.icon()
	props := map[string]any{}
	for _, f := range e.auth.requiredCredentials() {
		props[f] = map[string]any{"type": "string", "airbyte_secret": true, "title": f}
	}
	return detailedSourceTemplate{
		ID:                 e.templateID,
		Name:               e.displayName,
		Icon:               &icon,
		SourceDefinitionID: e.definitionID,
		UserConfigSpec: connectorSpecification{
			DocumentationURL: "https://docs.airbyte.com/integrations/sources/" + e.connectorType,
			ConnectionSpecification: connectionSpecification{
				Schema:   "http://json-schema.org/draft-07/schema#",
				Type:     "object",
				Title:    e.displayName + " Spec",
				Required: []string{"credentials"},
				Properties: map[string]any{
					"credentials": map[string]any{"type": "object", "required": e.auth.requiredCredentials(), "properties": props},
				},
			},
		},
		PartialDefaultConfig: map[string]any{},
		Tags:                 e.tags,
		Mode:                 "DIRECT",
	}
}
