package provision_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

func offboard(id, action string) event.Request {
	return event.Request{Kind: contract.KindCustomerOffboarded, CustomerOffboarded: &contract.CustomerOffboarded{ID: id, WorkspaceName: "acme", Workspace: action}}
}

// Offboarding deletes every connector of the workspace (the provisioner's and any made outside it),
// applies the workspace action, leaves every identity a tombstone, and touches no other workspace.
func TestOffboarding(t *testing.T) {
	for _, tc := range []struct {
		action, want, status string
	}{
		{"", "kept", "active"},
		{contract.WorkspaceDeactivate, "deactivated", "inactive"},
		{contract.WorkspaceDelete, "deleted", ""},
	} {
		t.Run(tc.want, func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			w := r.worker(workerOpts{owner: "a"})
			ref := r.secret("acme/v1.json", "ghp_one")
			expect(t, w.until(t, submit("gh", ref), r.next()), provision.Ack, contract.MessageSourceCreated)
			tmpl := submitTemplate("tpl", ref)
			tmpl.CredentialsSubmitted.Name = "Docs"
			expect(t, w.until(t, tmpl, r.next()), provision.Ack, contract.MessageSourceCreated)
			client, err := airbyte.New(airbyte.Config{BaseURL: r.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
			if err != nil {
				t.Fatal(err)
			}
			outside, err := client.CreateConnector(t.Context(), airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "made in the widget", ConnectorType: "gitlab",
				Credentials: secret.NewFields(map[string]string{"token": "glpat"})})
			if err != nil {
				t.Fatal(err)
			}
			other := submit("globex-gh", ref)
			other.CredentialsSubmitted.WorkspaceName = "globex"
			expect(t, w.until(t, other, r.next()), provision.Ack, contract.MessageSourceCreated)
			var before []string
			for _, c := range r.sandbox.Connectors("acme") {
				before = append(before, c.ID)
			}
			wsID := r.sandbox.Connectors("acme")[0].WorkspaceID

			seq := r.next()
			res := expect(t, w.until(t, offboard("off-1", tc.action), seq), provision.Ack, contract.MessageWorkspaceOffboarded)
			var data struct {
				DeletedIDs []string `json:"deleted_ids"`
				Workspace  string   `json:"workspace"`
			}
			if err := json.Unmarshal(res.Data, &data); err != nil || data.Workspace != tc.want {
				t.Fatalf("result %s", resultText(res))
			}
			slices.Sort(before)
			slices.Sort(data.DeletedIDs)
			if !slices.Equal(before, data.DeletedIDs) || !slices.Contains(before, outside.ID) {
				t.Fatalf("deleted %v, the workspace had %v", data.DeletedIDs, before)
			}
			waitGone(t, r)
			if len(r.sandbox.Connectors("globex")) != 1 {
				t.Fatal("another workspace's connector was touched")
			}
			ws, err := client.GetWorkspace(t.Context(), wsID)
			switch {
			case tc.status == "" && err == nil && !ws.Tombstone:
				t.Fatalf("workspace not deleted: %+v", ws)
			case tc.status != "" && (err != nil || ws.Status != tc.status):
				t.Fatalf("workspace %+v %v, want status %s", ws, err, tc.status)
			}
			for _, id := range []ledger.Identity{
				{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"},
				{WorkspaceName: "acme", ConnectorKind: "template:" + githubTemplate, Name: "Docs"},
			} {
				if e, _, err := w.ledger.Get(t.Context(), id); err != nil || e.State != ledger.StateDeleted || e.Sequence != seq {
					t.Fatalf("identity %+v: %+v %v, want a tombstone", id, e, err)
				}
			}

			again := expect(t, w.handle(offboard("off-1", tc.action), seq, 2, false), provision.Ack, contract.MessageWorkspaceOffboarded)
			if string(again.Data) != string(res.Data) {
				t.Fatalf("replay %s, first %s", again.Data, res.Data)
			}
			if tc.status == "" {
				return // a deleted workspace: later creates make a new one, nothing more to see here
			}
			// creates published before the offboarding, delivered late: superseded, known or not
			late := expect(t, w.until(t, submit("gh-late", ref), seq-1), provision.Ack, contract.MessageSourceCreateError)
			lateNew := submit("new-late", ref)
			lateNew.CredentialsSubmitted.Name = "Never seen"
			lateNewRes := expect(t, w.until(t, lateNew, seq-1), provision.Ack, contract.MessageSourceCreateError)
			if !superseded(late) || !superseded(lateNewRes) || len(r.sandbox.Connectors("acme")) != 0 {
				t.Fatalf("late creates: %s, %s", resultText(late), resultText(lateNewRes))
			}
			expect(t, w.until(t, submit("gh-new", ref), r.next()), provision.Ack, contract.MessageSourceCreated)
		})
	}
}
