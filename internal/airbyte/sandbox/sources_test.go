package sandbox_test

import (
	"bytes"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

const githubTemplate = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01"

func TestEmbeddedSources(t *testing.T) {
	for _, prefix := range []string{"/api/v1/embedded/sources", "/api/v1/integrations/sources"} {
		t.Run(prefix, func(t *testing.T) {
			srv, base := sandboxtest.Start(t, sandbox.Config{})
			c := newClient(t, base)
			op := c.operatorToken()
			sc := c.scopedToken(op, "acme")
			other := c.scopedToken(op, "other")
			var info map[string]string
			c.do("GET", "/api/v1/account/applications/scoped-token/info", sc, nil).decode(t, &info)
			wsID := info["workspace_id"]

			r := c.do("POST", prefix, sc, map[string]any{"workspace_id": wsID, "source_template_id": githubTemplate, "name": "Repo",
				"source_config": map[string]any{"credentials": map[string]string{"token": "ghp_src"}, "repositories": []string{"a/b"}}})
			if r.status != 200 || bytes.Contains(r.body, []byte("ghp_src")) {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			var src struct{ ID string }
			r.decode(t, &src)
			if creds, ok := srv.ConnectorCredentials(src.ID); !ok || creds["token"] != "ghp_src" {
				t.Fatalf("credentials = %v", creds)
			}
			if r := c.do("POST", prefix, other, map[string]any{"workspace_id": wsID, "source_template_id": githubTemplate, "source_config": map[string]any{"token": "x"}}); r.status != 403 {
				t.Fatalf("cross-workspace create: %d", r.status)
			}
			if r := c.do("POST", prefix, sc, map[string]any{"workspace_id": wsID, "source_template_id": githubTemplate, "source_config": map[string]any{"api_key": "x"}}); r.status != 400 {
				t.Fatalf("bad credentials: %d", r.status)
			}
			if r := c.do("GET", prefix+"?workspace_id="+wsID, sc, nil); r.status != 200 || !bytes.Contains(r.body, []byte(src.ID)) {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			if r := c.do("GET", prefix+"/"+src.ID, sc, nil); r.status != 200 {
				t.Fatalf("get: %d %s", r.status, r.body)
			}
			if r := c.do("GET", prefix+"/"+src.ID, other, nil); r.status != 403 {
				t.Fatalf("cross-workspace get: %d", r.status)
			}
			if r := c.do("PUT", prefix+"/"+src.ID, sc, map[string]any{"name": "Renamed"}); r.status != 200 || !bytes.Contains(r.body, []byte("Renamed")) {
				t.Fatalf("update: %d %s", r.status, r.body)
			}
			if r := c.do("DELETE", prefix+"/"+src.ID, sc, nil); r.status != 200 || !bytes.Contains(r.body, []byte("deleted_at")) {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
			if r := c.do("GET", prefix+"/"+src.ID, sc, nil); r.status != 404 {
				t.Fatalf("get after delete: %d", r.status)
			}
		})
	}
}

func TestTemplatesAndWorkspaces(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	sc := c.scopedToken(op, "acme")
	c.scopedToken(op, "beta")
	var info map[string]string
	c.do("GET", "/api/v1/account/applications/scoped-token/info", sc, nil).decode(t, &info)

	tests := []struct {
		name, path, token string
		wantStatus        int
		wantCount         int
	}{
		{"all templates", "/api/v1/embedded/source-templates", sc, 200, 12},
		{"templates any tag", "/api/v1/embedded/source-templates?tags=crm&tags=payments&tags_mode=any", sc, 200, 4},
		{"templates all tags", "/api/v1/embedded/source-templates?tags=crm&tags=payments&tags_mode=all", sc, 200, 0},
		{"templates default mode all", "/api/v1/embedded/source-templates?tags=crm", sc, 200, 3},
		{"workspaces as operator", "/api/v1/workspaces", op, 200, 2},
		{"workspaces paged", "/api/v1/workspaces?limit=1", op, 200, 1},
		{"workspaces as scoped", "/api/v1/workspaces", sc, 200, 1},
		{"workspace get", "/api/v1/workspaces/" + info["workspace_id"], sc, 200, -1},
		{"workspace unknown", "/api/v1/workspaces/11111111-2222-4333-8444-555555555555", op, 404, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("GET", tt.path, tt.token, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if tt.wantCount >= 0 {
				var l struct{ Data []any }
				r.decode(t, &l)
				if len(l.Data) != tt.wantCount {
					t.Fatalf("count %d, want %d: %s", len(l.Data), tt.wantCount, r.body)
				}
			}
		})
	}
}
