package airbyte_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/airbytetest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// TestConnectorTokenStyles: connector operations carry the application token by default, with
// the workspace named by workspace_name, as the spec and Airbyte's clients do; the scoped style
// carries the workspace's scoped token. Either way a create is preceded by the scoped-token mint
// that makes sure the workspace exists, once per workspace.
func TestConnectorTokenStyles(t *testing.T) {
	tests := []struct {
		style      string // "" is the default
		wantBearer string // "application" or "scoped"
	}{
		{"", "application"},
		{airbyte.ConnectorTokenApplication, "application"},
		{airbyte.ConnectorTokenScoped, "scoped"},
	}
	for _, tt := range tests {
		t.Run("style "+tt.style, func(t *testing.T) {
			srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.ConnectorToken = tt.style })
			appTok := airbytetest.JWT(t, map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()})
			srv.On("POST", tokenP, airbytetest.Response{Body: fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":900}`, appTok)})
			srv.On("POST", connectorsP, airbytetest.Response{Body: connectorBody})
			srv.On("GET", connectorsP, airbytetest.Response{Body: `{"data":[]}`})
			srv.On("GET", connectorsP+"/0b0e4b9c-5f5e-4a0e-8d3b-1a2b3c4d5e6f", airbytetest.Response{Body: connectorBody})
			ctx := testCtx(t)
			for range 2 {
				if _, err := c.CreateConnector(ctx, airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", ConnectorType: "github",
					Credentials: secret.NewFields(map[string]string{"token": "ghp_style"})}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetConnector(ctx, "acme", "0b0e4b9c-5f5e-4a0e-8d3b-1a2b3c4d5e6f"); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.Requests("POST", scopedP)); n != 1 {
				t.Fatalf("scoped mints = %d, want 1 (the workspace is ensured once)", n)
			}
			var calls []airbytetest.Request
			for _, k := range [][2]string{{"POST", connectorsP}, {"GET", connectorsP}, {"GET", connectorsP + "/0b0e4b9c-5f5e-4a0e-8d3b-1a2b3c4d5e6f"}} {
				calls = append(calls, srv.Requests(k[0], k[1])...)
			}
			for _, r := range calls {
				bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				isApp := bearer == appTok
				if isApp != (tt.wantBearer == "application") {
					t.Fatalf("%s %s carried the wrong token kind (application: %v)", r.Method, r.Path, isApp)
				}
			}
			var body map[string]any
			if err := json.Unmarshal(srv.Requests("POST", connectorsP)[0].Body, &body); err != nil || body["workspace_name"] != "acme" {
				t.Fatalf("create body %s", srv.Requests("POST", connectorsP)[0].Body)
			}
			if q := srv.Requests("GET", connectorsP)[0].RawQuery; q != "workspace_name=acme" {
				t.Fatalf("list query %q", q)
			}
		})
	}
	t.Run("unknown style", func(t *testing.T) {
		if _, err := airbyte.New(airbyte.Config{BaseURL: "http://x", ClientID: "a", ClientSecret: secret.New("b"), ConnectorToken: "widget"}); err == nil {
			t.Fatal("want an error")
		}
	})
}

// TestScopedTokenActSub: the workspace comes from io.airbyte.auth.workspace_scope; an act.sub
// other than the workspace name (the documented example token has a UUID there) is logged at
// debug level and never refused.
func TestScopedTokenActSub(t *testing.T) {
	const actSub = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	tests := []struct {
		name    string
		actSub  string
		wantLog bool
	}{
		{"workspace name", "acme", false},
		{"a uuid, as in the spec's example", actSub, true},
		{"absent", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, logs := scripted(t, nil)
			claims := airbytetest.ScopedClaims(workspaceID, tt.actSub, time.Now().Add(time.Hour))
			if tt.actSub == "" {
				delete(claims, "act")
			}
			srv.On("POST", scopedP, airbytetest.Response{Body: fmt.Sprintf(`{"token":%q}`, airbytetest.JWT(t, claims))})
			ref, err := c.Workspace(testCtx(t), "acme")
			if err != nil || ref.ID != workspaceID || ref.Name != "acme" {
				t.Fatalf("ref = %+v, %v", ref, err)
			}
			if got := strings.Contains(logs.String(), "act.sub differs"); got != tt.wantLog {
				t.Fatalf("debug line logged: %v, want %v\n%s", got, tt.wantLog, logs)
			}
		})
	}
}
