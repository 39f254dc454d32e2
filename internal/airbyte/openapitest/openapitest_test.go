package openapitest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recordingTB collects the failures a Validator reports instead of failing the test, so that
// the tests can prove violations are caught.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

const (
	uuidA  = "0b7e5c4e-4a55-4d38-9bd6-0f2f5c3f0a11"
	jsonCT = "application/json"
)

func TestValidateRequest(t *testing.T) {
	v := New(t)
	tests := []struct {
		name, method, path, body string
		wantErr                  bool
	}{
		{"token ok", "POST", "/api/v1/account/applications/token", `{"client_id":"a","client_secret":"b"}`, false},
		{"token missing secret", "POST", "/api/v1/account/applications/token", `{"client_id":"a"}`, true},
		{"scoped token ok", "POST", "/api/v1/account/applications/scoped-token", `{"workspace_name":"acme"}`, false},
		{"scoped token region null", "POST", "/api/v1/account/applications/scoped-token", `{"workspace_name":"acme","region_id":null}`, false},
		{"scoped token bad region", "POST", "/api/v1/account/applications/scoped-token", `{"workspace_name":"acme","region_id":"not-a-uuid"}`, true},
		{"connector create ok", "POST", "/api/v1/integrations/connectors", `{"workspace_name":"acme","connector_type":"github","credentials":{"token":"x"}}`, false},
		{"connector create no workspace", "POST", "/api/v1/integrations/connectors", `{"connector_type":"github"}`, true},
		{"connector create bad entities", "POST", "/api/v1/integrations/connectors", `{"workspace_name":"acme","entities":[{"modes":["read"]}]}`, true},
		{"connector list ok", "GET", "/api/v1/integrations/connectors?workspace_name=acme", ``, false},
		{"connector get bad id", "GET", "/api/v1/integrations/connectors/not-a-uuid", ``, true},
		{"embedded source create ok", "POST", "/api/v1/embedded/sources", `{"workspace_id":"` + uuidA + `","source_template_id":"` + uuidA + `","source_config":{}}`, false},
		{"embedded source create missing config", "POST", "/api/v1/embedded/sources", `{"workspace_id":"` + uuidA + `","source_template_id":"` + uuidA + `"}`, true},
		{"unknown path", "GET", "/api/v1/nothing", ``, true},
		{"admin path ignored", "GET", "/_sandbox/stats", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				r.Header.Set("Content-Type", jsonCT)
			}
			v.ValidateRequest(rec, r, []byte(tt.body))
			if got := len(rec.failures()) > 0; got != tt.wantErr {
				t.Fatalf("violation = %v, want %v: %v", got, tt.wantErr, rec.failures())
			}
		})
	}
}

func TestValidateResponse(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		wantErr            bool
		wantUndeclared     string
	}{
		{name: "token ok", method: "POST", path: "/api/v1/account/applications/token", status: 200,
			body: `{"access_token":"x","token_type":"bearer","expires_in":900,"organization_id":"` + uuidA + `"}`},
		{name: "token missing access_token", method: "POST", path: "/api/v1/account/applications/token", status: 200,
			body: `{"token_type":"bearer","expires_in":900}`, wantErr: true},
		{name: "token expires_in string", method: "POST", path: "/api/v1/account/applications/token", status: 200,
			body: `{"access_token":"x","token_type":"bearer","expires_in":"900"}`, wantErr: true},
		{name: "list ok", method: "GET", path: "/api/v1/integrations/connectors?workspace_name=a", status: 200,
			body: `{"data":[{"id":"` + uuidA + `","name":"n","summarized_source_template":{"id":"` + uuidA + `","name":"GitHub","icon":null,"actor_definition_id":"` + uuidA + `"}}]}`},
		{name: "list item without icon", method: "GET", path: "/api/v1/integrations/connectors?workspace_name=a", status: 200,
			body: `{"data":[{"id":"` + uuidA + `","name":"n","summarized_source_template":{"id":"` + uuidA + `","name":"GitHub","actor_definition_id":"` + uuidA + `"}}]}`, wantErr: true},
		{name: "declared 400", method: "GET", path: "/api/v1/integrations/connectors", status: 400,
			body: `{"message":"workspace required","errors":[]}`},
		{name: "delete 202", method: "DELETE", path: "/api/v1/integrations/connectors/" + uuidA, status: 202,
			body: `{"job_id":"` + uuidA + `"}`},
		{name: "undeclared 401 error body", method: "GET", path: "/api/v1/integrations/connectors", status: 401,
			body:           `{"message":"token expired","errors":[{"field":null,"message":"token expired","error_code":"unauthorized","details":{}}]}`,
			wantUndeclared: "GET /api/v1/integrations/connectors 401"},
		{name: "undeclared 404 not an error body", method: "GET", path: "/api/v1/integrations/connectors/" + uuidA, status: 404,
			body: `{"message":1}`, wantErr: true, wantUndeclared: "GET /api/v1/integrations/connectors/{id} 404"},
		{name: "429 with retry-after", method: "POST", path: "/api/v1/integrations/connectors", status: 429,
			header: http.Header{"Retry-After": {"2"}}, body: `{"message":"slow down","errors":[]}`,
			wantUndeclared: "POST /api/v1/integrations/connectors 429"},
		{name: "429 without retry-after", method: "POST", path: "/api/v1/integrations/connectors", status: 429,
			body: `{"message":"slow down","errors":[]}`, wantErr: true, wantUndeclared: "POST /api/v1/integrations/connectors 429"},
		{name: "503 not json", method: "POST", path: "/api/v1/integrations/connectors", status: 503,
			body: `<html>bad gateway</html>`, wantErr: true, wantUndeclared: "POST /api/v1/integrations/connectors 503"},
		{name: "embedded source delete ok", method: "DELETE", path: "/api/v1/embedded/sources/" + uuidA, status: 200,
			body: `{"id":"` + uuidA + `","deleted_at":"2026-01-02T03:04:05Z"}`},
		{name: "embedded source delete bad time", method: "DELETE", path: "/api/v1/embedded/sources/" + uuidA, status: 200,
			body: `{"id":"` + uuidA + `","deleted_at":"yesterday"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := New(t)
			rec := &recordingTB{TB: t}
			h := http.Header{"Content-Type": {jsonCT}}
			for k, vals := range tt.header {
				h[k] = vals
			}
			r := httptest.NewRequest(tt.method, tt.path, nil)
			v.ValidateResponse(rec, r, tt.status, h, []byte(tt.body))
			if got := len(rec.failures()) > 0; got != tt.wantErr {
				t.Fatalf("violation = %v, want %v: %v", got, tt.wantErr, rec.failures())
			}
			und := v.Undeclared()
			if tt.wantUndeclared == "" && len(und) > 0 {
				t.Fatalf("undeclared = %v, want none", und)
			}
			if tt.wantUndeclared != "" && und[tt.wantUndeclared] != 1 {
				t.Fatalf("undeclared = %v, want %q once", und, tt.wantUndeclared)
			}
		})
	}
}

// TestTransportAndMiddleware runs real HTTP through both wrappers.
func TestTransportAndMiddleware(t *testing.T) {
	tests := []struct {
		name    string
		respond string
		wantErr bool
	}{
		{"conforming", `{"access_token":"x","token_type":"bearer","expires_in":900}`, false},
		{"violating", `{"token_type":"bearer"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := New(t)
			serverTB := &recordingTB{TB: t}
			clientTB := &recordingTB{TB: t}
			srv := httptest.NewServer(v.Middleware(serverTB, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", jsonCT)
				_, _ = io.WriteString(w, tt.respond)
			})))
			t.Cleanup(srv.Close)
			hc := &http.Client{Transport: v.Transport(clientTB, nil)}
			resp, err := hc.Post(srv.URL+"/api/v1/account/applications/token", jsonCT, strings.NewReader(`{"client_id":"a","client_secret":"b"}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(b) != tt.respond {
				t.Fatalf("body = %s, want %s", b, tt.respond)
			}
			for _, rec := range []*recordingTB{serverTB, clientTB} {
				if got := len(rec.failures()) > 0; got != tt.wantErr {
					t.Fatalf("violation = %v, want %v: %v", got, tt.wantErr, rec.failures())
				}
			}
		})
	}
}
