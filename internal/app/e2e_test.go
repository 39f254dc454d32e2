package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// The first complete path: credentials in, connector out; a missing secret, bad JSON, a schema
// violation and a customer onboarding, all through a real worker.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	const ghToken = "ghp_e2e_secret_token_0001"
	e.writeSecret("acme/github.json", map[string]string{"token": ghToken})
	e.writeSecret("acme/hubspot.yaml", map[string]string{"client_id": "cid-e2e", "client_secret": "csecret-e2e-0002", "refresh_token": "rt-e2e-0003"})
	e.start(nil)

	e.publish("customer.onboarded", map[string]any{"id": "onb-1", "workspace_name": "acme"})
	gh := credentialsRequest("req-gh", "acme", "github", "file:acme/github.json")
	gh["name"] = "GitHub"
	gh["replication_config"] = map[string]any{"repositories": []string{"acme/app"}}
	e.publish("credentials.submitted", gh)
	e.publish("credentials.submitted", credentialsRequest("req-hs", "acme", "HubSpot", "file:acme/hubspot.yaml"))
	e.publish("credentials.submitted", credentialsRequest("req-missing", "acme", "github", "file:acme/missing.json"))
	e.publish("credentials.submitted", `{"id": "req-broken", `)
	e.publish("credentials.submitted", `{"id":"req-inline","workspace_name":"acme","connector_type":"github","credentials_ref":"file:acme/github.json","credentials":{"token":"x"}}`)
	e.publish("customer.renamed", `{"id":"req-unsupported","workspace_name":"acme"}`)

	byID := e.byRequest(e.results(7, 30*time.Second))

	t.Run("workspace ready", func(t *testing.T) {
		r := byID["onb-1"]
		if r.Message != contract.MessageWorkspaceReady || r.WorkspaceID == "" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("source created", func(t *testing.T) {
		r := byID["req-gh"]
		if r.Message != contract.MessageSourceCreated || r.WorkspaceName != "acme" || r.WorkspaceID != byID["onb-1"].WorkspaceID || r.Attempts != 1 {
			t.Fatalf("got %+v", r)
		}
		var data struct {
			ID                string         `json:"id"`
			Name              string         `json:"name"`
			ReplicationConfig map[string]any `json:"replication_config"`
		}
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Name != "GitHub" || data.ReplicationConfig["credentials"] != contract.RedactedCredentials {
			t.Fatalf("data %s", r.Data)
		}
		// the right secret reached Airbyte
		creds, ok := e.sandbox.ConnectorCredentials(data.ID)
		if !ok || creds["token"] != ghToken {
			t.Fatalf("sandbox holds credentials %v for %s", ok, data.ID)
		}
	})
	t.Run("oauth connector", func(t *testing.T) {
		if r := byID["req-hs"]; r.Message != contract.MessageSourceCreated {
			t.Fatalf("got %+v", r)
		}
	})
	for id, code := range map[string]contract.Code{
		"req-missing":     contract.CodeSecretNotFound,
		"req-broken":      contract.CodeInvalidJSON,
		"req-inline":      contract.CodeSchemaViolation,
		"req-unsupported": contract.CodeUnsupportedSubject,
	} {
		t.Run("error "+string(code), func(t *testing.T) {
			r, ok := byID[id]
			if !ok {
				// a body that is not JSON has no id to correlate: it is named after its sequence
				for k, v := range byID {
					if strings.HasPrefix(k, "seq-") && v.Error != nil && v.Error.Code == code {
						r, ok = v, true
					}
				}
			}
			if !ok || r.Error == nil || r.Error.Code != code || r.Error.Retryable {
				t.Fatalf("result for %s: %+v", id, r)
			}
		})
	}
	t.Run("dead letters", func(t *testing.T) {
		waitFor(t, 10*time.Second, "4 dead letters", func() bool { return e.streamCount("PROVISIONER_DLQ") == 4 })
	})
	t.Run("nothing left", func(t *testing.T) {
		waitFor(t, 10*time.Second, "an empty work queue", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })
	})
	t.Run("exactly the connectors asked for", func(t *testing.T) {
		if got := len(e.sandbox.Connectors("acme")); got != 2 {
			t.Fatalf("%d connectors in acme", got)
		}
	})
	t.Run("no secret in logs", func(t *testing.T) {
		logs := e.logs.String()
		for _, s := range []string{ghToken, "csecret-e2e-0002", "rt-e2e-0003", sandbox.DefaultClientSecret} {
			if strings.Contains(logs, s) {
				t.Fatalf("secret %q in logs", s)
			}
		}
		if !strings.Contains(logs, `"request_id":"req-gh"`) {
			t.Fatal("request lines do not carry the request id")
		}
		// every line about a request names it, including the Airbyte client's own lines
		var airbyteLines int
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, `"msg":"airbyte call"`) && strings.Contains(line, `"operation":"connectors_create"`) {
				airbyteLines++
				for _, attr := range []string{`"request_id":`, `"workspace":"acme"`, `"connector_kind":`} {
					if !strings.Contains(line, attr) {
						t.Errorf("airbyte line without %s: %s", attr, line)
					}
				}
			}
		}
		if airbyteLines == 0 {
			t.Fatal("no airbyte call lines at debug level")
		}
	})
}

// A customer onboarded with a region gets its workspace created there.
func TestOnboardingHonoursTheRegion(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.start(nil)
	e.publish("customer.onboarded", map[string]any{"id": "onb-eu", "workspace_name": "globex", "region_id": sandbox.RegionEU})
	e.publish("customer.onboarded", map[string]any{"id": "onb-default", "workspace_name": "initech"})
	byID := e.byRequest(e.results(2, 20*time.Second))
	for id, ws := range map[string]string{"onb-eu": "globex", "onb-default": "initech"} {
		if r := byID[id]; r.Message != contract.MessageWorkspaceReady || r.WorkspaceName != ws {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	for ws, want := range map[string]string{"globex": sandbox.RegionEU, "initech": sandbox.RegionUS} {
		if got, ok := e.sandbox.WorkspaceRegion(ws); !ok || got != want {
			t.Errorf("workspace %s in region %q, want %q", ws, got, want)
		}
	}
}

// --airbyte-connector-token reaches the client: against a sandbox that takes only the documented
// token (strict auth), the default application token creates the connector, and the scoped
// style is refused.
func TestConnectorTokenFlag(t *testing.T) {
	for _, tc := range []struct {
		style    string
		wantCode contract.Code // "" = created
	}{
		{"application", ""},
		{"scoped", contract.CodeAirbyteForbidden},
	} {
		t.Run(tc.style, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			e.writeSecret("acme/github.json", map[string]string{"token": "ghp_flag_0001"})
			e.start(func(c *config.Config) { c.AirbyteConnectorToken = tc.style })
			e.publish("credentials.submitted", credentialsRequest("req-flag", "acme", "github", "file:acme/github.json"))
			r := e.byRequest(e.results(1, 30*time.Second))["req-flag"]
			switch {
			case tc.wantCode == "" && r.Message != contract.MessageSourceCreated:
				t.Fatalf("got %+v", r)
			case tc.wantCode != "" && (r.Error == nil || r.Error.Code != tc.wantCode):
				t.Fatalf("got %+v", r)
			}
			if n := len(e.sandbox.Connectors("acme")); (n == 1) != (tc.wantCode == "") {
				t.Fatalf("sandbox holds %d connectors", n)
			}
		})
	}
}
