package sandbox

import (
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"

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

// connectorCreate is a validated create (or check) body: the template it resolves to, and the
// credentials gathered from wherever the caller put them.
type connectorCreate struct {
	connectorCreateRequest
	entry       *catalogEntry
	config      map[string]any // replication_config without its credentials
	credentials map[string]any
}

// parseConnectorCreate validates a create (or check) body and resolves the connector kind.
func parseConnectorCreate(r *http.Request) (connectorCreate, *requestError) {
	var out connectorCreate
	obj, err := decodeObject(r)
	if err != nil {
		return out, unprocessable("body", "value_error", err.Error())
	}
	var unknown []string
	for k := range obj {
		if !connectorCreateFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return out, unprocessable(unknown[0], "extra_forbidden",
			"unknown top-level fields "+strings.Join(unknown, ", ")+": connector settings belong under replication_config")
	}
	req := &out.connectorCreateRequest
	if field, ok := decodeInto(obj, req); !ok {
		return out, unprocessable(field, "value_error", "invalid request body")
	}
	if req.workspaceNameOf() == "" {
		return out, unprocessable("workspace_name", "missing", "field required: workspace_name")
	}
	entry, rerr := resolveKind(req.ConnectorType, req.DefinitionID, req.SourceTemplateID)
	if rerr != nil {
		return out, rerr
	}
	out.entry = entry
	if out.config, out.credentials, rerr = gatherCredentials(entry.connectorDef, *req); rerr != nil {
		return out, rerr
	}
	return out, nil
}

func (req connectorCreateRequest) workspaceNameOf() string {
	for _, n := range []string{req.WorkspaceName, req.CustomerName, req.ExternalUserID} {
		if n != "" {
			return n
		}
	}
	return ""
}

// resolveKind finds the template the kind fields name. They may come together (the CLI sends
// connector_type with source_template_id, the SDK definition_id with it) and then must name the
// same connector. Without a template the connector must have exactly one: "source_template_id
// is required when multiple templates exist". Every refusal is a 422, the status the spec
// declares for the create endpoint.
func resolveKind(connectorType, definitionID, templateID *string) (*catalogEntry, *requestError) {
	given := func(p *string) bool { return p != nil && *p != "" }
	if !given(connectorType) && !given(definitionID) && !given(templateID) {
		return nil, unprocessable("connector_type", "missing", "one of connector_type, definition_id or source_template_id is required")
	}
	var d *connectorDef
	if given(connectorType) {
		if d = lookupType(*connectorType); d == nil {
			return nil, unprocessable("connector_type", "not_found", "unknown connector_type")
		}
	}
	if given(definitionID) {
		byID := lookupDefinition(*definitionID)
		switch {
		case byID == nil:
			return nil, unprocessable("definition_id", "not_found", "unknown definition_id")
		case d != nil && d != byID:
			return nil, unprocessable("definition_id", "value_error", "connector_type and definition_id name different connectors")
		}
		d = byID
	}
	if given(templateID) {
		t := lookupTemplate(*templateID)
		switch {
		case t == nil:
			return nil, unprocessable("source_template_id", "not_found", "unknown source_template_id")
		case d != nil && d != t.connectorDef:
			return nil, unprocessable("source_template_id", "value_error", "source_template_id is a template of another connector than "+d.displayName)
		}
		return t, nil
	}
	templates := templatesOf(d)
	if len(templates) != 1 {
		return nil, unprocessable("source_template_id", "missing",
			"several templates exist for "+d.displayName+": source_template_id is required")
	}
	return templates[0], nil
}

// gatherCredentials takes the credentials from where the caller put them: the top-level
// credentials member, replication_config.credentials (where REPLICATION-mode configs and the
// CLI's OAuth output keep them), or neither when server_side_oauth_secret_id stands in for
// them. Both members given are merged, the top-level one winning per field. None of the three
// (and no replication_config at all) is a 422; credentials that fit no auth scheme of the
// connector are a 400.
func gatherCredentials(d *connectorDef, req connectorCreateRequest) (config, creds map[string]any, rerr *requestError) {
	config = maps.Clone(req.ReplicationConfig)
	if config == nil {
		config = map[string]any{}
	}
	creds = map[string]any{}
	if raw, ok := config["credentials"]; ok {
		inner, isObject := raw.(map[string]any)
		if !isObject && raw != nil {
			return nil, nil, unprocessable("replication_config", "value_error", "replication_config.credentials must be an object")
		}
		maps.Copy(creds, inner)
		delete(config, "credentials")
	}
	maps.Copy(creds, req.Credentials)
	oauthSecret := req.ServerSideOAuthSecretID != nil && *req.ServerSideOAuthSecretID != ""
	if req.ReplicationConfig == nil && req.Credentials == nil && !oauthSecret {
		return nil, nil, unprocessable("credentials", "missing",
			"at least one of replication_config, credentials or server_side_oauth_secret_id must be provided")
	}
	if rerr := fitCredentials(d, creds, oauthSecret); rerr != nil {
		return nil, nil, rerr
	}
	return config, creds, nil
}

// fitCredentials refuses credentials that fit no auth scheme of the connector (400). An OAuth
// secret id stands in for missing credentials of a connector that offers OAuth.
func fitCredentials(d *connectorDef, creds map[string]any, oauthSecret bool) *requestError {
	if len(creds) == 0 && oauthSecret && d.oauth() {
		return nil
	}
	if _, ok := d.fits(creds); ok {
		return nil
	}
	var want []string
	for _, s := range d.schemes {
		want = append(want, s.name+" {"+strings.Join(s.fields, ", ")+"}")
	}
	return &requestError{status: http.StatusBadRequest, field: "credentials", code: "invalid_credentials",
		msg: "credentials match no auth scheme of " + d.displayName + "; it accepts " + strings.Join(want, " or ")}
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
	req, rerr := parseConnectorCreate(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	ws, err := s.resolveWorkspace(p, req.workspaceNameOf(), !s.cfg.StrictAuth)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	if ws == nil { // strict mode: only a scoped-token mint creates a workspace (AGENTIC-1140)
		writeError(w, http.StatusNotFound, "workspace_name", "not_found", "workspace not found: mint a scoped token for it first")
		return
	}
	now := s.now().UTC()
	src := &source{
		id: uuid.NewString(), ws: ws, entry: req.entry, createdAt: now, updatedAt: now,
		name: req.entry.displayName, config: req.config, credentials: req.credentials, entities: req.Entities,
	}
	if req.Name != nil && *req.Name != "" {
		src.name = *req.Name
	}
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

// checkOutcome is the check rule the package comment states: a status the fault plan forces
// (pending, running, inconclusive, ...) wins; otherwise a credential value starting with
// "invalid" fails the check and anything else succeeds.
func (s *Server) checkOutcome(creds map[string]any, d decision) checkResponseStatus {
	if d.checkStatus != "" {
		return checkResponseStatus{status: d.checkStatus}
	}
	for _, v := range creds {
		if str, ok := v.(string); ok && strings.HasPrefix(str, "invalid") {
			return checkResponseStatus{status: "failed", message: "the source rejected the credentials", failedAt: s.now()}
		}
	}
	return checkResponseStatus{status: "succeeded"}
}

type checkResponseStatus struct {
	status, message string
	failedAt        time.Time
}

func (c checkResponseStatus) response(id string) checkResponse {
	out := checkResponse{ID: id, Status: c.status}
	if c.message != "" {
		out.ErrorMessage = &c.message
		retryable := false
		out.FailureReason = &failureReason{
			Timestamp: c.failedAt.UnixMilli(), FailureOrigin: "source", FailureType: "config_error",
			ExternalMessage: c.message, Retryable: &retryable,
		}
	}
	return out
}

// answerCheck waits the check latency the fault plan gives a forced status, then answers.
func (s *Server) answerCheck(w http.ResponseWriter, r *http.Request, id string, c checkResponseStatus, d decision) {
	if d.checkStatus != "" {
		s.faultsHit[FaultCheckStatus].Add(1)
	}
	if d.checkDelay > 0 {
		t := time.NewTimer(d.checkDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	writeJSON(w, http.StatusOK, c.response(id))
}

func (s *Server) handleConnectorCheck(w http.ResponseWriter, r *http.Request, d decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	req, rerr := parseConnectorCreate(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	if _, err := s.resolveWorkspace(p, req.workspaceNameOf(), false); err != nil {
		writeAuthError(w, err)
		return
	}
	s.answerCheck(w, r, uuid.NewString(), s.checkOutcome(req.credentials, d), d)
}

func (s *Server) handleConnectorCheckID(w http.ResponseWriter, r *http.Request, d decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	if _, rerr := parseConnectorUpdate(r); rerr != nil {
		rerr.write(w)
		return
	}
	v := src.view()
	s.answerCheck(w, r, v.id, s.checkOutcome(v.credentials, d), d)
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
	return connectorListItem{
		ID:                       v.id,
		Name:                     v.name,
		SummarizedSourceTemplate: s.templateListItem(v.entry, false),
		CreatedAt:                v.createdAt,
		UpdatedAt:                v.updatedAt,
	}
}

// detailedTemplate is the DetailedSourceTemplate of a catalog entry; its spec offers each auth
// scheme of the connector as one option of credentials (a oneOf, as real connector specs do).
func detailedTemplate(e *catalogEntry) detailedSourceTemplate {
	icon := e.icon()
	return detailedSourceTemplate{
		ID:                   e.templateID,
		Name:                 e.templateName,
		Icon:                 &icon,
		SourceDefinitionID:   e.definitionID,
		UserConfigSpec:       e.spec(),
		PartialDefaultConfig: map[string]any{},
		Tags:                 e.tags,
		Mode:                 "DIRECT",
	}
}

// spec is the connector's ConnectorSpecification.
func (c *connectorDef) spec() connectorSpecification {
	options := make([]any, 0, len(c.schemes))
	for _, sc := range c.schemes {
		props := map[string]any{"option_title": map[string]any{"type": "string", "const": sc.name}}
		for _, f := range sc.fields {
			props[f] = map[string]any{"type": "string", "airbyte_secret": true, "title": f}
		}
		options = append(options, map[string]any{"type": "object", "title": sc.name, "required": sc.fields, "properties": props})
	}
	return connectorSpecification{
		DocumentationURL: "https://docs.airbyte.com/integrations/sources/" + c.connectorType,
		ConnectionSpecification: connectionSpecification{
			Schema:     "http://json-schema.org/draft-07/schema#",
			Type:       "object",
			Title:      c.displayName + " Spec",
			Required:   []string{"credentials"},
			Properties: map[string]any{"credentials": map[string]any{"type": "object", "title": "Authentication", "oneOf": options}},
		},
	}
}
