package sandbox

import (
	"net/http"
	"slices"

	"github.com/google/uuid"
)

// sourceCreateRequest is the embedded API's SourceCreateRequest.
type sourceCreateRequest struct {
	Name             *string        `json:"name"`
	WorkspaceID      string         `json:"workspace_id"`
	SourceTemplateID string         `json:"source_template_id"`
	SourceConfig     map[string]any `json:"source_config"`
}

type sourceUpdateRequest struct {
	Name         *string        `json:"name"`
	SourceConfig map[string]any `json:"source_config"`
}

// splitSourceConfig separates the secret part of an embedded source_config: its "credentials"
// object when present, else the top-level fields the connector's auth scheme names.
func splitSourceConfig(entry *catalogEntry, cfg map[string]any) (plain, creds map[string]any) {
	plain = make(map[string]any, len(cfg))
	creds = map[string]any{}
	if c, ok := cfg["credentials"].(map[string]any); ok {
		for k, v := range cfg {
			if k != "credentials" {
				plain[k] = v
			}
		}
		for k, v := range c {
			creds[k] = v
		}
		return plain, creds
	}
	secret := entry.secretFields()
	for k, v := range cfg {
		if slices.Contains(secret, k) {
			creds[k] = v
		} else {
			plain[k] = v
		}
	}
	return plain, creds
}

func (s *Server) sourceResponse(v sourceView) sourceResponse {
	cfg := make(map[string]any, len(v.config)+1)
	for k, val := range v.config {
		cfg[k] = val
	}
	if len(v.credentials) > 0 {
		cfg["credentials"] = redactedCredentials(v.credentials)
	}
	return sourceResponse{
		ID: v.id, Name: v.name, SourceTemplate: detailedTemplate(v.entry), SourceConfig: cfg,
		CreatedAt: v.createdAt, UpdatedAt: v.updatedAt,
	}
}

func (s *Server) handleSourceCreate(w http.ResponseWriter, r *http.Request, d decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	var req sourceCreateRequest
	if !decodeRequest(w, r, &req, "workspace_id", "source_template_id", "source_config") {
		return
	}
	ws, err := s.workspaceByIDFor(p, req.WorkspaceID)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	if ws == nil {
		writeError(w, http.StatusNotFound, "workspace_id", "not_found", "workspace not found")
		return
	}
	entry := lookupTemplate(req.SourceTemplateID)
	if entry == nil {
		writeError(w, http.StatusUnprocessableEntity, "source_template_id", "not_found", "unknown source_template_id")
		return
	}
	plain, creds := splitSourceConfig(entry, req.SourceConfig)
	if rerr := fitCredentials(entry.connectorDef, creds, false); rerr != nil {
		rerr.write(w)
		return
	}
	now := s.now().UTC()
	src := &source{id: uuid.NewString(), ws: ws, entry: entry, createdAt: now, updatedAt: now,
		name: entry.displayName, config: plain, credentials: creds}
	if req.Name != nil && *req.Name != "" {
		src.name = *req.Name
	}
	s.commit(w, ws, src, d, func(v sourceView) any { return s.sourceResponse(v) })
}

func (s *Server) handleSourceList(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	var ws *workspace
	if id := r.URL.Query().Get("workspace_id"); id != "" {
		if ws, err = s.workspaceByIDFor(p, id); err != nil {
			writeAuthError(w, err)
			return
		}
	} else if !p.isOperator() {
		ws = p.workspace // a scoped token names its workspace
	} else {
		writeError(w, http.StatusBadRequest, "workspace_id", "missing", "workspace_id is required")
		return
	}
	out := listResponse[sourceListItem]{Data: []sourceListItem{}}
	if ws != nil { // scope already checked: by workspaceByIDFor, or the token's own workspace
		for _, v := range ws.list("") {
			icon := v.entry.icon()
			out.Data = append(out.Data, sourceListItem{
				ID: v.id, Name: v.name,
				SummarizedSourceTemplate: embeddedTemplateItem{ID: v.entry.templateID, Name: v.entry.templateName, Icon: &icon, Tags: v.entry.tags},
				CreatedAt:                v.createdAt, UpdatedAt: v.updatedAt,
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSourceGet(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.sourceResponse(src.view()))
}

func (s *Server) handleSourceUpdate(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	var req sourceUpdateRequest
	if !decodeRequest(w, r, &req) {
		return
	}
	var plain, creds map[string]any
	if req.SourceConfig != nil {
		plain, creds = splitSourceConfig(src.entry, req.SourceConfig)
		if len(creds) > 0 {
			if rerr := fitCredentials(src.entry.connectorDef, creds, false); rerr != nil {
				rerr.write(w)
				return
			}
		}
	}
	src.ws.mu.Lock()
	if req.Name != nil && *req.Name != "" {
		src.name = *req.Name
	}
	if req.SourceConfig != nil {
		src.config = plain
		if len(creds) > 0 {
			src.credentials = creds
		}
	}
	src.updatedAt = s.now().UTC()
	v := src.viewLocked()
	src.ws.mu.Unlock()
	writeJSON(w, http.StatusOK, s.sourceResponse(v))
}

func (s *Server) handleSourceDelete(w http.ResponseWriter, r *http.Request, _ decision) {
	_, src, ok := s.connectorByPath(w, r)
	if !ok {
		return
	}
	if s.state().removeNow(src) {
		s.deleted.Add(1)
		s.live.Add(-1)
	}
	writeJSON(w, http.StatusOK, sourceDeleteResponse{ID: src.id, DeletedAt: s.now().UTC()})
}

func (s *Server) handleSourceTemplates(w http.ResponseWriter, r *http.Request, _ decision) {
	if _, err := s.authenticate(r); err != nil {
		writeAuthError(w, err)
		return
	}
	q := r.URL.Query()
	tags := q["tags"]
	all := q.Get("tags_mode") != "any" // the spec's default is "all"
	out := listResponse[embeddedTemplateItem]{Data: []embeddedTemplateItem{}}
	for i := range catalog {
		if e := &catalog[i]; tagsMatch(e.tags, tags, all) {
			out.Data = append(out.Data, e.embeddedTemplateItem())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// embeddedTemplateItem is the embedded spec's SourceTemplateListItem of a catalog entry.
func (e *catalogEntry) embeddedTemplateItem() embeddedTemplateItem {
	icon := e.icon()
	return embeddedTemplateItem{ID: e.templateID, Name: e.templateName, Icon: &icon, Tags: e.tags}
}

func tagsMatch(have, want []string, all bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, t := range want {
		if slices.Contains(have, t) != all {
			return !all
		}
	}
	return all
}
