package sandbox_test

import (
	"bytes"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// TestSpecRoutes: the read routes of the spec a client may call are served, with bodies the
// contract check accepts.
func TestSpecRoutes(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	gh := createGitHub(t, c, op, "acme", "", "ghp_routes")
	c.scopedToken(op, "beta")
	r := c.do("GET", "/api/v1/workspaces?name_contains=beta", op, nil)
	var l struct{ Data []workspaceBody }
	r.decode(t, &l)
	if r := c.do("PUT", "/api/v1/workspaces/"+l.Data[0].ID, op, map[string]any{"status": "inactive"}); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	tests := []struct {
		name, method, path string
		body               any
		wantOp             string
		wantIn             []string // substrings of the answer
	}{
		{"templates", "GET", "/api/v1/integrations/templates/sources", nil, sandbox.OpSourceTemplatesList,
			[]string{`"connector_name":"zendesk-support"`, `"name":"Jira Service Management"`, `"organization_id":"` + sandbox.DefaultOrganizationID}},
		{"templates by tag", "GET", "/api/v1/integrations/templates/sources?tags=testing", nil, sandbox.OpSourceTemplatesList,
			[]string{`"name":"Salesforce Sandbox"`}},
		{"global templates flag", "GET", "/api/v1/integrations/templates/sources?use_global=true", nil, sandbox.OpSourceTemplatesList,
			[]string{`"organization_id":null`}},
		{"global templates", "GET", "/api/v1/integrations/templates/sources/global", nil, sandbox.OpSourceTemplatesList,
			[]string{`"name":"GitHub"`}},
		{"template", "GET", "/api/v1/integrations/templates/sources/" + hubspotTemplate, nil, sandbox.OpSourceTemplatesGet,
			[]string{`"connector_name":"hubspot"`, `"refresh_token"`, `"access_token"`}},
		{"embedded template", "GET", "/api/v1/embedded/source-templates/" + hubspotTemplate, nil, sandbox.OpSourceTemplatesGet,
			[]string{`"source_definition_id":"` + hubspotDefinition}},
		{"definitions", "GET", "/api/v1/integrations/definitions/sources", nil, sandbox.OpSourceDefinitionsList,
			[]string{`"sourceDefinitionId":"` + githubDefinition, `"dockerRepository":"airbyte/source-zendesk-support"`}},
		{"definitions by name", "GET", "/api/v1/integrations/definitions/sources?name=zendesk", nil, sandbox.OpSourceDefinitionsList,
			[]string{`"name":"Zendesk Support"`}},
		{"definition", "GET", "/api/v1/integrations/definitions/sources/" + githubDefinition, nil, sandbox.OpSourceDefinitionsGet,
			[]string{`"id":"` + githubDefinition, `"personal_access_token"`}},
		{"execute", "POST", "/api/v1/integrations/connectors/" + gh.ID + "/execute", map[string]any{"entity": "issues", "action": "list"}, sandbox.OpConnectorsExecute,
			[]string{`"status":"success"`, `"connector_instance_id":"` + gh.ID, `"records":[]`}},
		{"workspace stats", "GET", "/api/v1/workspaces/stats", nil, sandbox.OpWorkspacesStats,
			[]string{`"active_count":1`, `"inactive_count":1`, `"total_count":2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().Requests[tt.wantOp]
			r := c.do(tt.method, tt.path, op, tt.body)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			for _, want := range tt.wantIn {
				if !bytes.Contains(r.body, []byte(want)) {
					t.Fatalf("answer lacks %s: %s", want, r.body)
				}
			}
			if srv.Stats().Requests[tt.wantOp] != before+1 {
				t.Fatalf("not counted as %s", tt.wantOp)
			}
		})
	}
	t.Run("unknown ids", func(t *testing.T) {
		for _, p := range []string{"/api/v1/integrations/templates/sources/", "/api/v1/integrations/definitions/sources/"} {
			if r := c.do("GET", p+"11111111-2222-4333-8444-555555555555", op, nil); r.status != 404 {
				t.Fatalf("%s: %d %s", p, r.status, r.body)
			}
		}
	})
}

// TestMalformedPathIDs: a path id that is not a UUID answers 422, as FastAPI's validation does,
// on every route with one.
func TestMalformedPathIDs(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/v1/integrations/connectors/not-a-uuid"},
		{"PUT", "/api/v1/integrations/connectors/1234"},
		{"DELETE", "/api/v1/integrations/connectors/zzzzzzzz-2222-4333-8444-555555555555"},
		{"POST", "/api/v1/integrations/connectors/abc/check"},
		{"POST", "/api/v1/integrations/connectors/abc/execute"},
		{"GET", "/api/v1/integrations/templates/sources/github"},
		{"GET", "/api/v1/integrations/definitions/sources/github"},
		{"GET", "/api/v1/workspaces/acme"},
		{"PUT", "/api/v1/workspaces/acme"},
		{"DELETE", "/api/v1/workspaces/acme"},
		{"GET", "/api/v1/embedded/sources/x"},
		{"GET", "/api/v1/embedded/source-templates/x"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			// Sent raw: the contract check would (rightly) refuse the request itself.
			r := rawDo(t, base, tt.method, tt.path, op, map[string]any{})
			if r.status != 422 || !bytes.Contains(r.body, []byte(`"uuid_parsing"`)) {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// TestTrailingSlash: a collection path with a trailing slash is served as without it.
func TestTrailingSlash(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	createGitHub(t, c, op, "acme", "", "ghp_slash")
	for _, tt := range []struct {
		method, path string
		body         any
		want         string
	}{
		{"GET", "/api/v1/integrations/connectors/?workspace_name=acme", nil, `"name":"GitHub"`},
		{"POST", "/api/v1/integrations/connectors/", map[string]any{"workspace_name": "acme", "connector_type": "slack", "credentials": map[string]string{"token": "xoxb"}}, `"name":"Slack"`},
		{"GET", "/api/v1/workspaces/", nil, `"name":"acme"`},
		{"GET", "/api/v1/integrations/templates/sources/", nil, `"name":"GitHub"`},
		{"GET", "/api/v1/integrations/definitions/sources/", nil, `"name":"GitHub"`},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := c.do(tt.method, tt.path, op, tt.body)
			if r.status != 200 || !bytes.Contains(r.body, []byte(tt.want)) {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}
