package sandbox

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, _ decision) {
	if org := r.Header.Get("X-Organization-Id"); org != "" && !strings.EqualFold(org, s.cfg.OrganizationID) {
		writeAuthError(w, forbidden("the application does not belong to the organization in X-Organization-Id"))
		return
	}
	var req tokenRequest
	if !decodeRequest(w, r, &req, "client_id", "client_secret") {
		return
	}
	idOK := subtle.ConstantTimeCompare([]byte(req.ClientID), []byte(s.cfg.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(req.ClientSecret), []byte(s.cfg.ClientSecret)) == 1
	if !idOK || !secretOK {
		writeError(w, http.StatusUnauthorized, "", "invalid_client", "invalid client credentials")
		return
	}
	now := s.now()
	tok, err := s.mintApplicationToken(now)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "internal_error", "cannot mint token")
		return
	}
	s.minted[kindApplication].Add(1)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:    tok,
		TokenType:      "bearer",
		ExpiresIn:      int64(s.cfg.ExpiresIn.Seconds()),
		OrganizationID: s.cfg.OrganizationID,
	})
}

// decodeRequest reads the body into v and answers 422 when it cannot: the body is not a JSON
// object, a required member is missing or null ("missing"), or a member does not fit v.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any, required ...string) bool {
	obj, err := decodeObject(r)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "body", "value_error", err.Error())
		return false
	}
	field, ok := decodeInto(obj, v, required...)
	switch {
	case ok:
		return true
	case len(required) > 0:
		writeError(w, http.StatusUnprocessableEntity, field, "missing", "field required: "+field)
	default:
		writeError(w, http.StatusUnprocessableEntity, field, "value_error", "invalid request body")
	}
	return false
}

// decodeInto unmarshals obj into v after checking that the required members are present and
// not null; it returns the first missing field.
func decodeInto(obj rawObject, v any, required ...string) (string, bool) {
	for _, f := range required {
		if raw, ok := obj[f]; !ok || string(raw) == "null" {
			return f, false
		}
	}
	b, _ := json.Marshal(obj) // re-encoding raw members cannot fail
	if err := json.Unmarshal(b, v); err != nil {
		return "body", false
	}
	return "", true
}

// workspaceNameOf returns the customer key under any of its three names.
func (req scopedTokenRequest) workspaceNameOf() string {
	for _, n := range []string{req.WorkspaceName, req.CustomerName, req.ExternalUserID} {
		if n != "" {
			return n
		}
	}
	return ""
}

// scopedTokenFor validates a scoped/widget token request and mints the token, creating the
// workspace when it does not exist.
func (s *Server) scopedTokenFor(w http.ResponseWriter, r *http.Request, widget bool) (string, *workspace, scopedTokenRequest, bool) {
	var req scopedTokenRequest
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return "", nil, req, false
	}
	if err := requireOperator(p); err != nil {
		writeAuthError(w, err)
		return "", nil, req, false
	}
	if !decodeRequest(w, r, &req) {
		return "", nil, req, false
	}
	name := req.workspaceNameOf()
	if name == "" {
		writeError(w, http.StatusUnprocessableEntity, "workspace_name", "missing", "field required: workspace_name")
		return "", nil, req, false
	}
	if widget && (req.AllowedOrigin == nil || *req.AllowedOrigin == "") {
		writeError(w, http.StatusUnprocessableEntity, "allowed_origin", "missing", "field required: allowed_origin")
		return "", nil, req, false
	}
	if req.RegionID != nil && !knownRegion(*req.RegionID) {
		writeError(w, http.StatusBadRequest, "region_id", "invalid_region", "unknown region id")
		return "", nil, req, false
	}
	now := s.now()
	region := ""
	if req.RegionID != nil {
		region = *req.RegionID
	}
	ws := s.state().ensureWorkspace(name, region, now)
	tok, err := s.mintScopedToken(now, p.userID, ws)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "internal_error", "cannot mint token")
		return "", nil, req, false
	}
	return tok, ws, req, true
}

// Region ids Airbyte documents.
const (
	RegionUS = "645a183f-b12b-4c6e-8ad3-99e165603450"
	RegionEU = "b9e48d61-f082-4a14-a8d0-799a907938cb"
)

func knownRegion(id string) bool {
	return strings.EqualFold(id, RegionUS) || strings.EqualFold(id, RegionEU)
}

func (s *Server) handleScopedToken(w http.ResponseWriter, r *http.Request, _ decision) {
	tok, _, _, ok := s.scopedTokenFor(w, r, false)
	if !ok {
		return
	}
	s.minted[kindScoped].Add(1)
	writeJSON(w, http.StatusOK, tokenOnlyResponse{Token: tok})
}

func (s *Server) handleWidgetToken(w http.ResponseWriter, r *http.Request, _ decision) {
	tok, ws, req, ok := s.scopedTokenFor(w, r, true)
	if !ok {
		return
	}
	s.minted[kindWidget].Add(1)
	payload, _ := json.Marshal(widgetTokenPayload{ // two strings always marshal
		Token:     tok,
		WidgetURL: s.widgetURL(r, ws.id, *req.AllowedOrigin),
	})
	writeJSON(w, http.StatusOK, tokenOnlyResponse{Token: base64.StdEncoding.EncodeToString(payload)})
}

func (s *Server) widgetURL(r *http.Request, workspaceID, origin string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := url.Values{}
	q.Set("workspaceId", workspaceID)
	q.Set("allowedOrigin", origin)
	return scheme + "://" + r.Host + "/embedded-widget?" + q.Encode()
}

func (s *Server) handleScopedTokenInfo(w http.ResponseWriter, r *http.Request, _ decision) {
	p, err := s.authenticate(r)
	if err != nil {
		writeAuthError(w, err)
		return
	}
	if p.isOperator() {
		writeError(w, http.StatusForbidden, "", "forbidden", "this operation needs a scoped token")
		return
	}
	writeJSON(w, http.StatusOK, scopedTokenInfoResponse{
		OrganizationID: s.cfg.OrganizationID,
		WorkspaceID:    p.workspace.id,
		WorkspaceName:  p.workspace.nameNow(),
	})
}
