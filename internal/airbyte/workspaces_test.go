package airbyte_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/airbytetest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// TestUpdateAndDeleteWorkspace: PUT /workspaces/{id} changes status and name as Airbyte then
// shows them, and DELETE /workspaces/{id} removes the workspace with its connectors; a later
// mint of the same name makes a new workspace.
func TestUpdateAndDeleteWorkspace(t *testing.T) {
	srv, c, _ := withSandbox(t, sandbox.Config{}, nil)
	ctx := testCtx(t)
	ref, err := c.Workspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConnector(ctx, githubRequest("acme", "GitHub", "ghp_ws_update_0001")); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name       string
		req        airbyte.WorkspaceUpdateRequest
		wantName   string
		wantStatus string
	}{
		{"deactivate", airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceInactive}, "acme", airbyte.WorkspaceInactive},
		{"reactivate", airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceActive}, "acme", airbyte.WorkspaceActive},
		{"deactivate again", airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceInactive}, "acme", airbyte.WorkspaceInactive},
		{"rename keeps the status", airbyte.WorkspaceUpdateRequest{Name: "acme-renamed"}, "acme-renamed", airbyte.WorkspaceInactive},
		{"rename back", airbyte.WorkspaceUpdateRequest{Name: "acme"}, "acme", airbyte.WorkspaceInactive},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := c.UpdateWorkspace(ctx, ref.ID, st.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != ref.ID || got.Name != st.wantName || got.Status != st.wantStatus {
				t.Fatalf("update answered %+v", got)
			}
			read, err := c.GetWorkspace(ctx, ref.ID)
			if err != nil || read.Name != st.wantName || read.Status != st.wantStatus {
				t.Fatalf("GET shows %+v, %v", read, err)
			}
			for _, status := range []string{airbyte.WorkspaceActive, airbyte.WorkspaceInactive} {
				l, err := c.ListWorkspaces(ctx, airbyte.WorkspaceListParams{Status: status})
				if err != nil {
					t.Fatal(err)
				}
				listed := len(l.Data) == 1 && l.Data[0].ID == ref.ID
				if listed != (status == st.wantStatus) {
					t.Fatalf("list status=%s: %+v", status, l.Data)
				}
			}
		})
	}
	// An inactive workspace keeps its connectors until it is deleted.
	if n := len(srv.Connectors("acme")); n != 1 {
		t.Fatalf("inactive workspace holds %d connectors, want 1", n)
	}

	del, err := c.DeleteWorkspace(ctx, ref.ID)
	if err != nil || del.ID != ref.ID || del.DeletedAt.IsZero() {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	if n := len(srv.Connectors("acme")); n != 0 {
		t.Fatalf("deleted workspace still holds %d connectors", n)
	}
	after := []struct {
		name   string
		status int
		call   func() error
	}{
		{"get", http.StatusNotFound, func() error { _, err := c.GetWorkspace(ctx, ref.ID); return err }},
		{"update", http.StatusNotFound, func() error {
			_, err := c.UpdateWorkspace(ctx, ref.ID, airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceActive})
			return err
		}},
		{"delete again", http.StatusNotFound, func() error { _, err := c.DeleteWorkspace(ctx, ref.ID); return err }},
	}
	for _, tc := range after {
		t.Run("after delete: "+tc.name, func(t *testing.T) {
			var apiErr *airbyte.APIError
			if err := tc.call(); !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Retryable() {
				t.Fatalf("want a permanent %d, got %v", tc.status, err)
			}
		})
	}
	again, err := c.Workspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == ref.ID {
		t.Fatal("the client reused the deleted workspace's scoped token")
	}
	if l, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}); err != nil || len(l.Data) != 0 {
		t.Fatalf("new workspace lists %+v, %v", l, err)
	}
}

// TestListWorkspacesFollowsNext: ListWorkspaces walks every page by GETting each next URL as
// the sandbox gives it, one request per page.
func TestListWorkspacesFollowsNext(t *testing.T) {
	srv, c, _ := withSandbox(t, sandbox.Config{}, nil)
	ctx := testCtx(t)
	var ids []string
	for i := range 7 {
		ref, err := c.Workspace(ctx, fmt.Sprintf("tenant-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ref.ID)
	}
	tests := []struct {
		name      string
		params    airbyte.WorkspaceListParams
		wantIDs   []string
		wantPages int64
	}{
		{"pages of 2", airbyte.WorkspaceListParams{Limit: 2}, ids, 4},
		{"pages of 3 with a filter", airbyte.WorkspaceListParams{Limit: 3, NameContains: "tenant-"}, ids, 3},
		{"one page", airbyte.WorkspaceListParams{Limit: 100}, ids, 1},
		{"filter leaves one", airbyte.WorkspaceListParams{Limit: 1, NameContains: "tenant-6"}, ids[6:], 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().Requests[sandbox.OpWorkspacesList]
			l, err := c.ListWorkspaces(ctx, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range l.Data {
				got = append(got, w.ID)
			}
			if !slices.Equal(got, tt.wantIDs) || l.Next != "" {
				t.Fatalf("listed %v (next %q), want %v", got, l.Next, tt.wantIDs)
			}
			if pages := srv.Stats().Requests[sandbox.OpWorkspacesList] - before; pages != tt.wantPages {
				t.Fatalf("%d requests, want %d", pages, tt.wantPages)
			}
		})
	}
}

// TestListWorkspacesRefusesForeignNext: a next link elsewhere would carry the application token
// there, and one that never ends would never return; both are errors.
func TestListWorkspacesRefusesForeignNext(t *testing.T) {
	const page = `{"data":[{"id":"0b0e4b9c-5f5e-4a0e-8d3b-1a2b3c4d5e6f","name":"a","organization_id":"6b1f3d2e-6a40-4c0e-9d57-5a8f0e1c2b3a","status":"active","cache_enabled":null,"tombstone":false,"visibility":"private","color":null,"created_at":"2026-11-21T10:00:00Z","updated_at":"2026-11-21T10:00:00Z"}],"next":%q}`
	tests := []struct {
		name      string
		next      func(base string) string
		wantErr   bool
		wantQuery string // the second request's query, sent as the link gave it
	}{
		{"other host", func(string) string { return "https://elsewhere.example/api/v1/workspaces?cursor=1" }, true, ""},
		{"other path", func(base string) string { return base + "/api/v1/integrations/connectors?cursor=1" }, true, ""},
		{"other scheme", func(base string) string {
			return strings.Replace(base, "http://", "https://", 1) + "/api/v1/workspaces?cursor=1"
		}, true, ""},
		{"relative link", func(string) string { return "/api/v1/workspaces?limit=1&cursor=1" }, false, "limit=1&cursor=1"},
		{"absolute link", func(base string) string { return base + "/api/v1/workspaces?limit=1&cursor=1" }, false, "limit=1&cursor=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := scripted(t, nil)
			srv.On("GET", "/api/v1/workspaces",
				airbytetest.Response{Body: fmt.Sprintf(page, tt.next(srv.URL))},
				airbytetest.Response{Body: fmt.Sprintf(page, "")})
			l, err := c.ListWorkspaces(testCtx(t), airbyte.WorkspaceListParams{Limit: 1})
			reqs := srv.Requests("GET", "/api/v1/workspaces")
			if tt.wantErr {
				if err == nil || len(reqs) != 1 {
					t.Fatalf("followed a foreign next: %v, %d requests", err, len(reqs))
				}
				return
			}
			if err != nil || len(l.Data) != 2 || len(reqs) != 2 || reqs[1].RawQuery != tt.wantQuery {
				t.Fatalf("list = %+v, %v; requests %+v", l, err, reqs)
			}
		})
	}
	t.Run("links that never end", func(t *testing.T) {
		srv, c, _ := scripted(t, nil)
		srv.On("GET", "/api/v1/workspaces", airbytetest.Response{Body: fmt.Sprintf(page, "/api/v1/workspaces?cursor=1")})
		if _, err := c.ListWorkspaces(testCtx(t), airbyte.WorkspaceListParams{}); err == nil {
			t.Fatal("want an error")
		}
	})
}

// TestRenamedWorkspaceTokenNotReused: tenant isolation across a rename. After workspace "acme"
// is renamed, the name "acme" belongs to no one (or to a new workspace): the scoped token cached
// under it, which is the renamed workspace's, must not be used for "acme" again.
func TestRenamedWorkspaceTokenNotReused(t *testing.T) {
	_, c, _ := withSandbox(t, sandbox.Config{}, nil)
	ctx := testCtx(t)
	ref, err := c.Workspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateWorkspace(ctx, ref.ID, airbyte.WorkspaceUpdateRequest{Name: "acme-moved"}); err != nil {
		t.Fatal(err)
	}
	again, err := c.Workspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == ref.ID {
		t.Fatal(`"acme" still resolves to the renamed workspace through its cached scoped token`)
	}
}
