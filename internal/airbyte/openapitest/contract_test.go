package openapitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/openapitest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// everyOperation is every operation of Airbyte's specs the client calls or the sandbox serves.
var everyOperation = []string{
	"POST /api/v1/account/applications/token",
	"POST /api/v1/account/applications/scoped-token",
	"POST /api/v1/account/applications/widget-token",
	"GET /api/v1/account/applications/scoped-token/info",
	"POST /api/v1/embedded/scoped-token",
	"POST /api/v1/embedded/widget-token",
	"GET /api/v1/embedded/scoped-token/info",
	"GET /api/v1/embedded/scoped-token-info",
	"POST /api/v1/integrations/connectors",
	"GET /api/v1/integrations/connectors",
	"GET /api/v1/integrations/connectors/{id}",
	"PUT /api/v1/integrations/connectors/{id}",
	"DELETE /api/v1/integrations/connectors/{id}",
	"POST /api/v1/integrations/connectors/check",
	"POST /api/v1/integrations/connectors/{id}/check",
	"POST /api/v1/integrations/connectors/{id}/execute",
	"GET /api/v1/integrations/templates/sources",
	"GET /api/v1/integrations/templates/sources/global",
	"GET /api/v1/integrations/templates/sources/{id}",
	"GET /api/v1/integrations/definitions/sources",
	"GET /api/v1/integrations/definitions/sources/{id}",
	"POST /api/v1/embedded/sources",
	"GET /api/v1/embedded/sources",
	"GET /api/v1/embedded/sources/{id}",
	"PUT /api/v1/embedded/sources/{id}",
	"DELETE /api/v1/embedded/sources/{id}",
	"GET /api/v1/embedded/source-templates",
	"GET /api/v1/embedded/source-templates/{id}",
	"POST /api/v1/integrations/sources",
	"GET /api/v1/integrations/sources",
	"GET /api/v1/integrations/sources/{id}",
	"PUT /api/v1/integrations/sources/{id}",
	"DELETE /api/v1/integrations/sources/{id}",
	"GET /api/v1/workspaces",
	"GET /api/v1/workspaces/stats",
	"GET /api/v1/workspaces/{workspace_id}",
	"PUT /api/v1/workspaces/{workspace_id}",
	"DELETE /api/v1/workspaces/{workspace_id}",
}

// TestEveryOperationBothDirections drives every operation against a strict-auth sandbox: each
// request and response is validated by the client's transport (what the client sends and reads)
// and by middleware around the sandbox (what the sandbox accepts and answers). Both sides must
// have seen every operation.
func TestEveryOperationBothDirections(t *testing.T) {
	clientSide, serverSide := openapitest.New(t), openapitest.New(t)
	sb := sandbox.New(sandbox.Config{StrictAuth: true})
	hs := httptest.NewServer(serverSide.Middleware(t, sb.Handler()))
	t.Cleanup(hs.Close)
	transport := clientSide.Transport(t, nil)
	c, err := airbyte.New(airbyte.Config{BaseURL: hs.URL, ClientID: sandbox.DefaultClientID,
		ClientSecret: secret.New(sandbox.DefaultClientSecret), WrapTransport: func(http.RoundTripper) http.RoundTripper { return transport }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The client's own operations.
	ref, err := c.EnsureWorkspace(ctx, "acme", sandbox.RegionEU)
	must(ref, err)
	must(c.ScopedTokenInfo(ctx, "acme"))
	must(c.WidgetToken(ctx, airbyte.WidgetTokenCreateRequest{WorkspaceName: "acme", AllowedOrigin: "https://app.example"}))
	created, err := c.CreateConnector(ctx, airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "GitHub",
		ConnectorType: "github", SourceTemplateID: "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01",
		ReplicationConfig: map[string]any{"repositories": []string{"acme/app"}},
		Credentials:       secret.NewFields(map[string]string{"token": "ghp_contract_0001"})})
	must(created, err)
	must(c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}))
	must(c.GetConnector(ctx, "acme", created.ID))
	must(c.UpdateConnector(ctx, "acme", created.ID, airbyte.ConnectorSourceUpdateRequest{Name: "GitHub 2"}))
	must(c.CheckConnectorConfig(ctx, airbyte.ConnectorSourceCheckConfigRequest{WorkspaceName: "acme", ConnectorType: "hubspot",
		Credentials: secret.NewFields(map[string]string{"access_token": "pat-contract"})}))
	must(c.CheckConnector(ctx, "acme", created.ID, airbyte.ConnectorSourceCheckConfigUpdateRequest{}))
	templates, err := c.ListSourceTemplates(ctx, airbyte.SourceTemplateListParams{WorkspaceName: "acme"})
	must(templates, err)
	src, err := c.CreateSource(ctx, "acme", airbyte.SourceCreateRequest{SourceTemplateID: templates.Data[0].ID,
		SourceConfig: map[string]any{}, Credentials: secret.NewFields(map[string]string{"token": "ghp_contract_0002"})})
	must(src, err)
	must(c.ListSources(ctx, "acme"))
	must(c.GetSource(ctx, "acme", src.ID))
	must(c.UpdateSource(ctx, "acme", src.ID, airbyte.SourceUpdateRequest{Name: "renamed"}))
	must(c.DeleteSource(ctx, "acme", src.ID))
	must(c.ListWorkspaces(ctx, airbyte.WorkspaceListParams{Limit: 1}))
	must(c.GetWorkspace(ctx, ref.ID))
	must(c.UpdateWorkspace(ctx, ref.ID, airbyte.WorkspaceUpdateRequest{Status: airbyte.WorkspaceInactive}))

	// What the sandbox serves beyond the client: sent through the same validating transport.
	hc := &http.Client{Transport: transport}
	appTok, err := c.ApplicationToken(ctx)
	must(appTok, err)
	scoped, err := c.ScopedToken(ctx, "acme")
	must(scoped, err)
	raw := func(method, path string, tok secret.Value, body any) []byte {
		t.Helper()
		var rd io.Reader = http.NoBody
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, hs.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if !tok.IsZero() {
			req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
		return out
	}
	const hubspotDefinition = "36c891d9-4bd9-43ac-bad2-10e12756272c"
	raw("POST", "/api/v1/embedded/scoped-token", appTok, map[string]string{"workspace_name": "beta"})
	raw("POST", "/api/v1/embedded/widget-token", appTok, map[string]string{"workspace_name": "beta", "allowed_origin": "https://app.example"})
	raw("GET", "/api/v1/embedded/scoped-token/info", scoped, nil)
	raw("GET", "/api/v1/embedded/scoped-token-info", scoped, nil)
	raw("POST", "/api/v1/integrations/connectors/"+created.ID+"/execute", appTok, map[string]any{"entity": "issues", "action": "list"})
	raw("GET", "/api/v1/integrations/templates/sources?tags=crm", appTok, nil)
	raw("GET", "/api/v1/integrations/templates/sources/global", appTok, nil)
	raw("GET", "/api/v1/integrations/templates/sources/"+templates.Data[0].ID, appTok, nil)
	raw("GET", "/api/v1/integrations/definitions/sources?name=hub", appTok, nil)
	raw("GET", "/api/v1/integrations/definitions/sources/"+hubspotDefinition, appTok, nil)
	raw("GET", "/api/v1/embedded/source-templates/"+templates.Data[0].ID, scoped, nil)
	var isrc struct{ ID string }
	if err := json.Unmarshal(raw("POST", "/api/v1/integrations/sources", appTok, map[string]any{"workspace_id": ref.ID,
		"source_template_id": templates.Data[0].ID, "source_config": map[string]any{"credentials": map[string]string{"token": "ghp_contract_0003"}}}), &isrc); err != nil {
		t.Fatal(err)
	}
	raw("GET", "/api/v1/integrations/sources?workspace_id="+ref.ID, appTok, nil)
	raw("GET", "/api/v1/integrations/sources/"+isrc.ID, appTok, nil)
	raw("PUT", "/api/v1/integrations/sources/"+isrc.ID, appTok, map[string]any{"name": "renamed"})
	raw("DELETE", "/api/v1/integrations/sources/"+isrc.ID, appTok, nil)
	raw("GET", "/api/v1/workspaces/stats", appTok, nil)

	// Deletes last.
	must(c.DeleteConnector(ctx, "acme", created.ID))
	must(c.DeleteWorkspace(ctx, ref.ID))

	for side, v := range map[string]*openapitest.Validator{"client": clientSide, "sandbox": serverSide} {
		covered := v.Covered()
		for _, op := range everyOperation {
			if covered[op] == 0 {
				t.Errorf("%s side: %s was not validated in both directions", side, op)
			}
		}
		for op := range covered {
			if !slices.Contains(everyOperation, op) {
				t.Errorf("%s side: %s is missing from everyOperation", side, op)
			}
		}
		if und := v.Undeclared(); len(und) > 0 {
			t.Errorf("%s side: undeclared statuses %v", side, und)
		}
	}
}
