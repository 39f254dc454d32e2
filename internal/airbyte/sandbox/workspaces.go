package sandbox

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var workspaceUpdateFields = map[string]bool{"name": true, "status": true, "cache_enabled": true}

// workspaceUpdateRequest is WorkspaceUpdateRequest.
type workspaceUpdateRequest struct {
	Name         *string `json:"name"`
	Status       *string `json:"status"`
	CacheEnabled *bool   `json:"cache_enabled"`
}

type workspaceDeleteResponse struct {
	ID        string `json:"id"`
	DeletedAt string `json:"deleted_at"`
}

func (s *Server) workspaceItem(ws *workspace) workspaceItem {
	m := ws.meta()
	return workspaceItem{
		ID: ws.id, Name: m.name, OrganizationID: s.cfg.OrganizationID, Status: m.status,
		Visibility: "private", CreatedAt: ws.createdAt.UTC(), UpdatedAt: m.updatedAt.UTC(),
	}
}

func (s *Server) handleWorkspaceList(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	q := r.URL.Query()
	limit := 20
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusUnprocessableEntity, "limit", "value_error", "limit must be an integer in [1, 100]")
			return
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, "cursor", "value_error", "invalid cursor")
			return
		}
		offset = n
	}
	status := q.Get("status")
	if status != "" && status != workspaceActive && status != workspaceInactive {
		writeError(w, http.StatusUnprocessableEntity, "status", "enum", "status must be active or inactive")
		return
	}
	var matching []workspaceItem
	for _, ws := range s.state().workspaces() {
		if !p.isOperator() && ws != p.workspace {
			continue
		}
		item := s.workspaceItem(ws)
		if nc := q.Get("name_contains"); nc != "" && !strings.Contains(strings.ToLower(item.Name), strings.ToLower(nc)) {
			continue
		}
		if status != "" && item.Status != status {
			continue
		}
		matching = append(matching, item)
	}
	out := workspaceListResponse{Data: []workspaceItem{}}
	for i := offset; i < len(matching) && i < offset+limit; i++ {
		out.Data = append(out.Data, matching[i])
	}
	if offset+limit < len(matching) {
		next := nextPageURL(r, offset+limit)
		out.Next = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// nextPageURL is the full URL of the page at offset: this request's URL, filters and limit kept,
// with the cursor moved. Clients GET it as it is.
func nextPageURL(r *http.Request, offset int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := r.URL.Query()
	q.Set("cursor", strconv.Itoa(offset))
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// workspaceByPath authenticates and finds the {workspace_id} of the path, writing the failure if
// any. operatorOnly refuses scoped tokens: an end user may read its workspace, not change it.
func (s *Server) workspaceByPath(w http.ResponseWriter, r *http.Request, operatorOnly bool) (*workspace, bool) {
	p, err := s.authenticate(r)
	if err == nil && operatorOnly {
		err = requireOperator(p)
	}
	if err != nil {
		writeAuthError(w, err)
		return nil, false
	}
	ws, err := s.workspaceByIDFor(p, r.PathValue("workspace_id"))
	if err != nil {
		writeAuthError(w, err)
		return nil, false
	}
	if ws == nil {
		writeError(w, http.StatusNotFound, "workspace_id", "not_found", "workspace not found")
		return nil, false
	}
	return ws, true
}

func (s *Server) handleWorkspaceGet(w http.ResponseWriter, r *http.Request, _ decision) {
	ws, ok := s.workspaceByPath(w, r, false)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.workspaceItem(ws))
}

// handleWorkspaceUpdate serves PUT /workspaces/{id}: a new name and/or status. An inactive
// workspace stays readable and listed with status "inactive" (Airbyte disables its connections;
// the sandbox has none to disable).
func (s *Server) handleWorkspaceUpdate(w http.ResponseWriter, r *http.Request, _ decision) {
	ws, ok := s.workspaceByPath(w, r, true)
	if !ok {
		return
	}
	obj, err := decodeObject(r)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "body", "value_error", err.Error())
		return
	}
	for k := range obj {
		if !workspaceUpdateFields[k] {
			writeError(w, http.StatusUnprocessableEntity, k, "extra_forbidden", "unknown field "+k)
			return
		}
	}
	var req workspaceUpdateRequest
	if field, ok := decodeInto(obj, &req); !ok {
		writeError(w, http.StatusUnprocessableEntity, field, "value_error", "invalid request body")
		return
	}
	status := ""
	if req.Status != nil {
		status = *req.Status
		if status != workspaceActive && status != workspaceInactive {
			writeError(w, http.StatusUnprocessableEntity, "status", "enum", "status must be active or inactive")
			return
		}
	}
	if req.Name != nil && strings.TrimSpace(*req.Name) == "" {
		writeError(w, http.StatusUnprocessableEntity, "name", "value_error", "name must not be empty")
		return
	}
	if err := s.state().updateWorkspace(ws, req.Name, status, s.now().UTC()); err != nil {
		if errors.Is(err, errNameTaken) {
			writeError(w, http.StatusBadRequest, "name", "value_error", err.Error())
			return
		}
		writeError(w, http.StatusNotFound, "workspace_id", "not_found", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.workspaceItem(ws))
}

// handleWorkspaceDelete serves DELETE /workspaces/{id}: the workspace and its connectors are gone
// at once (GET answers 404, scoped tokens of it 401); a later mint of the same name creates a new
// workspace with a new id.
func (s *Server) handleWorkspaceDelete(w http.ResponseWriter, r *http.Request, _ decision) {
	ws, ok := s.workspaceByPath(w, r, true)
	if !ok {
		return
	}
	live, ok := s.state().deleteWorkspace(ws)
	if !ok {
		writeError(w, http.StatusNotFound, "workspace_id", "not_found", "workspace not found")
		return
	}
	s.deleted.Add(int64(live))
	s.live.Add(-int64(live))
	writeJSON(w, http.StatusOK, workspaceDeleteResponse{ID: ws.id, DeletedAt: s.now().UTC().Format(time.RFC3339Nano)})
}
