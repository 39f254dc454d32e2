package sandbox_test

import (
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// TestStrictAuth: in strict mode each operation takes only the bearer token its spec documents;
// the other kind answers 403. Off, both kinds pass wherever the caller may act.
func TestStrictAuth(t *testing.T) {
	for _, strict := range []bool{true, false} {
		_, base := sandboxtest.Start(t, sandbox.Config{StrictAuth: strict})
		c := newClient(t, base)
		op := c.operatorToken()
		sc := c.scopedToken(op, "acme")
		gh := createGitHub(t, c, op, "acme", "", "ghp_strict")
		var info struct {
			WorkspaceID string `json:"workspace_id"`
		}
		c.do("GET", "/api/v1/account/applications/scoped-token/info", sc, nil).decode(t, &info)
		ghBody := map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "ghp_strict_2"}}

		tests := []struct {
			name, method, path string
			body               any
			wantApp, wantScope int // strict mode; off, both get what the application token gets
		}{
			{"connectors create", "POST", "/api/v1/integrations/connectors", ghBody, 200, 403},
			{"connectors list", "GET", "/api/v1/integrations/connectors?workspace_name=acme", nil, 200, 403},
			{"connectors get", "GET", "/api/v1/integrations/connectors/" + gh.ID, nil, 200, 403},
			{"connectors update", "PUT", "/api/v1/integrations/connectors/" + gh.ID, map[string]any{"name": "x"}, 200, 403},
			{"connectors check", "POST", "/api/v1/integrations/connectors/check", ghBody, 200, 403},
			{"connector check", "POST", "/api/v1/integrations/connectors/" + gh.ID + "/check", map[string]any{}, 200, 403},
			{"connector execute", "POST", "/api/v1/integrations/connectors/" + gh.ID + "/execute", map[string]any{"entity": "issues", "action": "list"}, 200, 403},
			{"templates", "GET", "/api/v1/integrations/templates/sources", nil, 200, 403},
			{"definitions", "GET", "/api/v1/integrations/definitions/sources", nil, 200, 403},
			{"workspace get", "GET", "/api/v1/workspaces/" + info.WorkspaceID, nil, 200, 403},
			{"workspace stats", "GET", "/api/v1/workspaces/stats", nil, 200, 403},
			{"integrations sources list", "GET", "/api/v1/integrations/sources?workspace_id=" + info.WorkspaceID, nil, 200, 403},
			{"scoped token info", "GET", "/api/v1/account/applications/scoped-token/info", nil, 403, 200},
			{"embedded sources list", "GET", "/api/v1/embedded/sources?workspace_id=" + info.WorkspaceID, nil, 403, 200},
			{"embedded templates", "GET", "/api/v1/embedded/source-templates", nil, 403, 200},
		}
		for _, tt := range tests {
			name := tt.name
			if !strict {
				name += " (not strict)"
			}
			t.Run(name, func(t *testing.T) {
				wantApp, wantScope := tt.wantApp, tt.wantScope
				if !strict {
					wantApp, wantScope = 200, 200
					if tt.name == "scoped token info" {
						wantApp = 403 // an application token has no workspace to tell about
					}
				}
				if r := c.do(tt.method, tt.path, op, tt.body); r.status != wantApp {
					t.Fatalf("application token: %d %s", r.status, r.body)
				}
				if r := c.do(tt.method, tt.path, sc, tt.body); r.status != wantScope {
					t.Fatalf("scoped token: %d %s", r.status, r.body)
				}
			})
		}
		t.Run("create in a workspace no mint made", func(t *testing.T) {
			body := map[string]any{"workspace_name": "never-minted", "connector_type": "github", "credentials": map[string]string{"token": "t"}}
			want := 200
			if strict {
				want = 404
			}
			if r := c.do("POST", "/api/v1/integrations/connectors", op, body); r.status != want {
				t.Fatalf("strict=%v: %d %s", strict, r.status, r.body)
			}
		})
	}
}
