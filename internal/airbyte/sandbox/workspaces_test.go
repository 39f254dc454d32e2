package sandbox_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

type workspaceBody struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func TestWorkspaceUpdateAndDelete(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	sc := c.scopedToken(op, "acme")
	createGitHub(t, c, op, "acme", "", "ghp_ws_delete")
	c.scopedToken(op, "other")
	wsID := srv.Connectors("acme")[0].WorkspaceID
	path := "/api/v1/workspaces/" + wsID

	cases := []struct {
		name       string
		token      string
		body       any
		raw        bool // outside the spec on purpose: sent without the contract check
		wantStatus int
		wantWS     workspaceBody
	}{
		{"inactive", op, map[string]any{"status": "inactive"}, false, 200, workspaceBody{wsID, "acme", "inactive"}},
		{"cache setting only", op, map[string]any{"cache_enabled": true}, false, 200, workspaceBody{wsID, "acme", "inactive"}},
		{"active", op, map[string]any{"status": "active"}, false, 200, workspaceBody{wsID, "acme", "active"}},
		{"rename", op, map[string]any{"name": "acme-2"}, false, 200, workspaceBody{wsID, "acme-2", "active"}},
		{"rename back", op, map[string]any{"name": "acme", "status": "inactive"}, false, 200, workspaceBody{wsID, "acme", "inactive"}},
		{"rename onto another workspace", op, map[string]any{"name": "other"}, false, 400, workspaceBody{}},
		{"unknown status", op, map[string]any{"status": "paused"}, true, 422, workspaceBody{}},
		{"unknown field", op, map[string]any{"tombstone": true}, true, 422, workspaceBody{}},
		{"scoped token may not change its workspace", sc, map[string]any{"status": "active"}, false, 403, workspaceBody{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.raw {
				r = rawDo(t, base, "PUT", path, tc.token, tc.body)
			} else {
				r = c.do("PUT", path, tc.token, tc.body)
			}
			if r.status != tc.wantStatus {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			if tc.wantStatus != 200 {
				return
			}
			for _, got := range []response{r, c.do("GET", path, op, nil)} {
				var ws workspaceBody
				got.decode(t, &ws)
				if ws != tc.wantWS {
					t.Fatalf("workspace = %s, want %+v", got.body, tc.wantWS)
				}
			}
		})
	}

	t.Run("inactive is listed under its status", func(t *testing.T) {
		for q, want := range map[string]int{"status=inactive": 1, "status=active": 1, "": 2} {
			r := c.do("GET", "/api/v1/workspaces?"+q, op, nil)
			var l struct{ Data []workspaceBody }
			r.decode(t, &l)
			if len(l.Data) != want {
				t.Fatalf("%q: %s", q, r.body)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		if r := c.do("DELETE", path, sc, nil); r.status != 403 {
			t.Fatalf("scoped delete: %d %s", r.status, r.body)
		}
		r := c.do("DELETE", path, op, nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(wsID)) || !bytes.Contains(r.body, []byte("deleted_at")) {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if st := srv.Stats(); st.Connectors != 0 || st.Deleted != 1 {
			t.Fatalf("stats after delete: %+v", st)
		}
		for _, tc := range []struct {
			method, path, token string
			want                int
		}{
			{"GET", path, op, 404},
			{"DELETE", path, op, 404},
			{"GET", "/api/v1/account/applications/scoped-token/info", sc, 401},
		} {
			if r := c.do(tc.method, tc.path, tc.token, nil); r.status != tc.want {
				t.Fatalf("%s %s after delete: %d %s", tc.method, tc.path, r.status, r.body)
			}
		}
		c.scopedToken(op, "acme")
		if conns := srv.Connectors("acme"); len(conns) != 0 {
			t.Fatalf("a new acme holds the old connectors: %+v", conns)
		}
	})
}

// TestCredentialsSHA256: the admin endpoint proves which credentials a connector holds, as the
// SHA-256 of their compact, key-sorted JSON, without showing them.
func TestCredentialsSHA256(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	cases := []struct {
		name  string
		creds map[string]string
		json  string // written out by hand: the definition, not a second call of json.Marshal
	}{
		{"token", map[string]string{"token": "ghp_sha_1"}, `{"token":"ghp_sha_1"}`},
		{"oauth, keys sorted", map[string]string{"refresh_token": "rt", "client_secret": "cs", "client_id": "cid"},
			`{"client_id":"cid","client_secret":"cs","refresh_token":"rt"}`},
		{"escaping as json.Marshal does", map[string]string{"token": `a"b<c>&é`}, `{"token":"a\"b\u003cc\u003e\u0026é"}`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := fmt.Sprintf("sha-%d", i)
			typ := "github"
			if len(tc.creds) == 3 {
				typ = "hubspot"
			}
			r := c.do("POST", "/api/v1/integrations/connectors", op, map[string]any{"workspace_name": ws, "connector_type": typ, "credentials": tc.creds})
			if r.status != 200 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			r = c.do("GET", "/_sandbox/connectors?workspace_name="+ws, "", nil)
			var conns []sandbox.Connector
			r.decode(t, &conns)
			sum := sha256.Sum256([]byte(tc.json))
			want := hex.EncodeToString(sum[:])
			if len(conns) != 1 || conns[0].CredentialsSHA256 != want {
				t.Fatalf("connectors = %s, want credentials_sha256 %s", r.body, want)
			}
			if got := sandbox.CredentialsSHA256(tc.creds); got != want {
				t.Fatalf("CredentialsSHA256 = %s, want %s", got, want)
			}
			for _, v := range tc.creds {
				if bytes.Contains(r.body, []byte(v)) {
					t.Fatalf("admin endpoint shows a credential value: %s", r.body)
				}
			}
		})
	}
}

// TestWorkspacePagination: next is the full URL of the next page, filters and limit kept, and
// following it as it is walks every matching workspace once; the last page has no next.
func TestWorkspacePagination(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	for i := range 7 {
		c.scopedToken(op, fmt.Sprintf("page-%d", i))
	}
	c.scopedToken(op, "unrelated")
	tests := []struct {
		name, query string
		wantPages   int
		wantTotal   int
	}{
		{"limit 3", "limit=3", 3, 8},
		{"limit 3 with a filter", "limit=3&name_contains=page", 3, 7},
		{"limit 7 with a filter", "limit=7&name_contains=PAGE&status=active", 1, 7},
		{"default limit", "", 1, 8},
		{"inactive only", "status=inactive&limit=1", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			pages := 0
			for next := base + "/api/v1/workspaces?" + tt.query; next != ""; pages++ {
				if !strings.HasPrefix(next, base+"/api/v1/workspaces?") {
					t.Fatalf("next %q is not a URL of this API", next)
				}
				r := c.do("GET", strings.TrimPrefix(next, base), op, nil)
				var page struct {
					Next *string
					Data []workspaceBody
				}
				r.decode(t, &page)
				if r.status != 200 {
					t.Fatalf("page %d: %d %s", pages, r.status, r.body)
				}
				for _, ws := range page.Data {
					if seen[ws.ID] {
						t.Fatalf("workspace %s listed twice", ws.Name)
					}
					seen[ws.ID] = true
				}
				next = ""
				if page.Next != nil {
					next = *page.Next
				}
			}
			if pages != tt.wantPages || len(seen) != tt.wantTotal {
				t.Fatalf("%d pages, %d workspaces; want %d, %d", pages, len(seen), tt.wantPages, tt.wantTotal)
			}
		})
	}
}
