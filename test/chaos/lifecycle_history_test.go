package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// TestHistory: every credential a connector held on the way is recorded, also after the connector
// is gone, through the real sandbox's API.
func TestHistory(t *testing.T) {
	tests := []struct {
		name   string
		kind   map[string]any // connector_type or source_template_id
		update func(t *testing.T, c *apiClient, id string)
		want   []string // tokens held
	}{
		{
			name: "an Agent Engine connector, deleted",
			kind: map[string]any{"connector_type": "github"},
			update: func(t *testing.T, c *apiClient, id string) {
				c.do(t, http.MethodDelete, "/api/v1/integrations/connectors/"+id, nil, nil)
			},
			want: []string{"one"},
		},
		{
			name: "an embedded source, updated in place, then deleted",
			kind: map[string]any{"source_template_id": kinds[0].Template},
			update: func(t *testing.T, c *apiClient, id string) {
				c.do(t, http.MethodPut, "/api/v1/embedded/sources/"+id, map[string]any{"source_config": map[string]any{"token": "two"}}, nil)
				c.do(t, http.MethodDelete, "/api/v1/embedded/sources/"+id, nil, nil)
			},
			want: []string{"one", "two"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{})
			h := NewHistory(sb, []string{"acme"})
			srv := httptest.NewServer(h.Wrap(sb.Handler()))
			defer srv.Close()
			c := &apiClient{base: srv.URL}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			c.do(t, http.MethodPost, "/api/v1/account/applications/token", map[string]any{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret}, &tok)
			c.token = tok.AccessToken
			body := map[string]any{"workspace_name": "acme", "name": "gh", "credentials": map[string]any{"token": "one"}}
			for k, v := range tt.kind {
				body[k] = v
			}
			var created struct {
				ID string `json:"id"`
			}
			c.do(t, http.MethodPost, "/api/v1/integrations/connectors", body, &created)
			if tt.kind["source_template_id"] != nil { // embedded sources take the scoped token
				var scoped struct {
					Token string `json:"token"`
				}
				c.do(t, http.MethodPost, "/api/v1/account/applications/scoped-token", map[string]any{"workspace_name": "acme"}, &scoped)
				c.token = scoped.Token
			}
			tt.update(t, c, created.ID)

			if n := len(sb.Connectors("acme")); n != 0 {
				t.Fatalf("%d connectors left", n)
			}
			got, ok := h.Held()[created.ID]
			if !ok || got.Identity != (Identity{Workspace: "acme", ConnectorType: "github", Name: "gh"}) {
				t.Fatalf("held %+v (recorded %t), want connector %s of acme/github/gh", got, ok, created.ID)
			}
			for _, tok := range tt.want {
				if !got.Credentials[credentialsSHA256(map[string]string{"token": tok})] {
					t.Errorf("the history lacks credentials %q: %v", tok, got.Credentials)
				}
			}
			if len(got.Credentials) != len(tt.want) {
				t.Errorf("the history holds %d credentials, want %d", len(got.Credentials), len(tt.want))
			}
		})
	}
}

// apiClient makes the sandbox calls of TestHistory.
type apiClient struct{ base, token string }

func (c *apiClient) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}
