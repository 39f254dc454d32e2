package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// The lookup that adopts matches connector_type against the listed connector's slug or display
// name, in any case: a request saying "Zendesk Support" adopts the connector created as
// zendesk-support (made outside the provisioner, so it is replaced by one holding the request's
// credentials: source_updated), and a request of another type does not.
func TestLookupMatchesSlugOrDisplayName(t *testing.T) {
	for _, tc := range []struct {
		connectorType  string
		wantConnectors int
	}{
		{"Zendesk Support", 1},
		{"zendesk-support", 1},
		{"ZENDESK SUPPORT", 1},
		{"github", 2},
	} {
		t.Run(tc.connectorType, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			creds := map[string]string{"email": "ops@example.com", "api_token": "zd-adopt-0001", "token": "ghp_adopt_0001"}
			e.writeSecret("acme/support.json", creds)
			client, err := airbyte.New(airbyte.Config{BaseURL: e.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
			if err != nil {
				t.Fatal(err)
			}
			foreign, err := client.CreateConnector(context.Background(), airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "Support",
				ConnectorType: "zendesk-support", Credentials: secret.NewFields(creds)})
			if err != nil {
				t.Fatal(err)
			}
			e.start(func(c *config.Config) { c.Lookup = "always" })
			req := credentialsRequest("req-adopt", "acme", tc.connectorType, "file:acme/support.json")
			req["name"] = "Support"
			e.publish("credentials.submitted", req)
			res := e.byRequest(e.results(1, 20*time.Second))["req-adopt"]
			adopt := tc.wantConnectors == 1
			if want := map[bool]string{true: contract.MessageSourceUpdated, false: contract.MessageSourceCreated}[adopt]; res.Message != want {
				t.Fatalf("result %s %s %+v, want %s", res.Message, res.Data, res.Error, want)
			}
			if got := len(e.sandbox.Connectors("acme")); got != tc.wantConnectors {
				t.Fatalf("%d connectors, want %d", got, tc.wantConnectors)
			}
			if adopted := res.ReplacedID == foreign.ID; adopted != adopt {
				t.Fatalf("adopted (replaced) the foreign connector: %v (replaced_id %q)", adopted, res.ReplacedID)
			}
		})
	}
}
