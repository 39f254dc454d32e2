package airbyte_test

import (
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

func TestListItemMatches(t *testing.T) {
	zendesk := airbyte.SummarizedSourceTemplate{Name: "Zendesk Support", ConnectorName: "zendesk-support"}
	tests := []struct {
		name          string
		tmpl          airbyte.SummarizedSourceTemplate
		connectorType string
		want          bool
	}{
		{"slug", zendesk, "zendesk-support", true},
		{"slug, other case", zendesk, "Zendesk-Support", true},
		{"display name", zendesk, "Zendesk Support", true},
		{"display name, other case", zendesk, "zendesk support", true},
		{"another type", zendesk, "github", false},
		{"a prefix is not a match", zendesk, "zendesk", false},
		{"no slug: nothing tells them apart", airbyte.SummarizedSourceTemplate{Name: "GitHub"}, "hubspot", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (airbyte.ConnectorSourceListItem{SummarizedSourceTemplate: tt.tmpl}).Matches(tt.connectorType); got != tt.want {
				t.Fatalf("Matches(%q) = %v, want %v", tt.connectorType, got, tt.want)
			}
		})
	}
}

// TestListItemMatchesOverTheWire: what the sandbox lists for a connector created by its slug is
// matched by its display name too.
func TestListItemMatchesOverTheWire(t *testing.T) {
	_, c, _ := withSandbox(t, sandbox.Config{}, nil)
	ctx := testCtx(t)
	req := githubRequest("acme", "Support", "unused")
	req.ConnectorType, req.ReplicationConfig = "zendesk-support", nil
	req.Credentials = secret.NewFields(map[string]string{"email": "ops@example.com", "api_token": "zd-0001"})
	if _, err := c.CreateConnector(ctx, req); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"})
	if err != nil || len(l.Data) != 1 {
		t.Fatalf("list = %+v, %v", l, err)
	}
	for typ, want := range map[string]bool{"Zendesk Support": true, "zendesk-support": true, "GitHub": false} {
		if got := l.Data[0].Matches(typ); got != want {
			t.Errorf("Matches(%q) = %v, want %v", typ, got, want)
		}
	}
}
