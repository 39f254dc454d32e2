package airbyte_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
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
