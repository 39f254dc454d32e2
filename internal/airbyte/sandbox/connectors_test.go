package sandbox_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

const (
	githubDefinition  = "ef69ef6e-aa7f-4af1-a01d-ef775033524e"
	hubspotDefinition = "36c891d9-4bd9-43ac-bad2-10e12756272c"
	hubspotTemplate   = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e03"
)

type created struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	SourceTemplate map[string]any `json:"source_template"`
	Replication    map[string]any `json:"replication_config"`
}

func createGitHub(t *testing.T, c *client, tok, ws, name, secret string) created {
	t.Helper()
	body := map[string]any{"workspace_name": ws, "connector_type": "github", "credentials": map[string]string{"token": secret},
		"replication_config": map[string]any{"repositories": []string{"acme/app"}}}
	if name != "" {
		body["name"] = name
	}
	r := c.do("POST", "/api/v1/integrations/connectors", tok, body)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var out created
	r.decode(t, &out)
	return out
}

func TestConnectorLifecycle(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	sc := c.scopedToken(op, "acme")

	gh := createGitHub(t, c, sc, "acme", "", "ghp_one")
	if gh.Name != "GitHub" || gh.SourceTemplate["source_definition_id"] != githubDefinition || gh.SourceTemplate["mode"] != "DIRECT" {
		t.Fatalf("created = %+v", gh)
	}
	if creds := gh.Replication["credentials"].(map[string]any); creds["token"] != "**********" {
		t.Fatalf("credentials not redacted: %v", creds)
	}
	named := createGitHub(t, c, op, "acme", "GitHub 2", "ghp_two")
	hub := c.do("POST", "/api/v1/integrations/connectors", sc, map[string]any{"workspace_name": "acme", "connector_type": "HUBSPOT", "name": "CRM",
		"credentials": map[string]string{"client_id": "cid", "client_secret": "cs", "refresh_token": "rt"}})
	if hub.status != 200 {
		t.Fatalf("hubspot: %d %s", hub.status, hub.body)
	}

	t.Run("list with definition filter", func(t *testing.T) {
		r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme&definition_id="+githubDefinition, sc, nil)
		var l struct{ Data []created }
		r.decode(t, &l)
		if len(l.Data) != 2 || l.Data[0].ID != gh.ID || l.Data[1].ID != named.ID {
			t.Fatalf("list = %s", r.body)
		}
	})
	t.Run("list by workspace id and old names", func(t *testing.T) {
		wsID := srv.Connectors("acme")[0].WorkspaceID
		for _, q := range []string{"workspace_id=" + wsID, "customer_name=acme", "external_user_id=acme"} {
			r := c.do("GET", "/api/v1/integrations/connectors?"+q, sc, nil)
			var l struct{ Data []created }
			r.decode(t, &l)
			if r.status != 200 || len(l.Data) != 3 {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
		}
	})
	t.Run("get", func(t *testing.T) {
		r := c.do("GET", "/api/v1/integrations/connectors/"+named.ID, sc, nil)
		var got created
		r.decode(t, &got)
		if r.status != 200 || got.Name != "GitHub 2" {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
	})
	t.Run("update", func(t *testing.T) {
		r := c.do("PUT", "/api/v1/integrations/connectors/"+named.ID, sc, map[string]any{"name": "Renamed", "replication_config": map[string]any{"repositories": []string{"acme/web"}}})
		var got created
		r.decode(t, &got)
		if r.status != 200 || got.Name != "Renamed" || fmt.Sprint(got.Replication["repositories"]) != "[acme/web]" {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		if creds, _ := srv.ConnectorCredentials(named.ID); creds["token"] != "ghp_two" {
			t.Fatalf("update lost the credentials: %v", creds)
		}
	})
	t.Run("check", func(t *testing.T) {
		r := c.do("POST", "/api/v1/integrations/connectors/"+gh.ID+"/check", sc, map[string]any{})
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"succeeded"`)) {
			t.Fatalf("check id: %d %s", r.status, r.body)
		}
		r = c.do("POST", "/api/v1/integrations/connectors/check", sc, map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "invalid-token"}})
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"failed"`)) {
			t.Fatalf("check: %d %s", r.status, r.body)
		}
	})
	t.Run("delete is asynchronous", func(t *testing.T) {
		r := c.do("DELETE", "/api/v1/integrations/connectors/"+gh.ID, sc, nil)
		if r.status != 202 || !bytes.Contains(r.body, []byte("job_id")) {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := c.do("GET", "/api/v1/integrations/connectors/"+gh.ID, sc, nil); r.status != 404 {
			t.Fatalf("get after delete: %d", r.status)
		}
		listed := func() bool {
			r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", sc, nil)
			return bytes.Contains(r.body, []byte(gh.ID))
		}
		if !listed() {
			t.Fatalf("deleted connector gone from the first list; Airbyte deletes asynchronously")
		}
		if listed() {
			t.Fatalf("deleted connector still listed on the second list")
		}
		st := srv.Stats()
		if st.Created != 3 || st.Deleted != 1 || st.Connectors != 2 || len(srv.Connectors("acme")) != 2 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestConnectorErrors(t *testing.T) {
	clk := newClock()
	srv, base := sandboxtest.Start(t, sandbox.Config{SigningKey: testKey, Now: clk.Now})
	c := newClient(t, base)
	op := c.operatorToken()
	acme := c.scopedToken(op, "acme")
	other := c.scopedToken(op, "other")
	gh := createGitHub(t, c, acme, "acme", "", "ghp_x")
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aud": "airbyte-server", "exp": clk.Now().Add(time.Hour).Unix()}).SignedString([]byte("not-the-key"))
	if err != nil {
		t.Fatal(err)
	}
	ghBody := func(extra map[string]any) map[string]any {
		b := map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "t"}}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
				continue
			}
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name, method, path, token string
		body                      any
		header                    http.Header
		wantStatus                int
	}{
		{"missing token", "GET", "/api/v1/integrations/connectors?workspace_name=acme", "", nil, nil, 401},
		{"malformed token", "GET", "/api/v1/integrations/connectors?workspace_name=acme", "not.a.jwt", nil, nil, 401},
		{"forged token", "GET", "/api/v1/integrations/connectors?workspace_name=acme", forged, nil, nil, 401},
		{"cross-workspace list", "GET", "/api/v1/integrations/connectors?workspace_name=acme", other, nil, nil, 403},
		{"cross-workspace create", "POST", "/api/v1/integrations/connectors", other, ghBody(nil), nil, 403},
		{"cross-workspace get", "GET", "/api/v1/integrations/connectors/" + gh.ID, other, nil, nil, 403},
		{"cross-workspace delete", "DELETE", "/api/v1/integrations/connectors/" + gh.ID, other, nil, nil, 403},
		{"wrong organization header", "GET", "/api/v1/integrations/connectors?workspace_name=acme", op, nil, http.Header{"X-Organization-Id": {"11111111-2222-4333-8444-555555555555"}}, 403},
		{"right organization header", "GET", "/api/v1/integrations/connectors?workspace_name=acme", op, nil, http.Header{"X-Organization-Id": {sandbox.DefaultOrganizationID}}, 200},
		{"scoped token cannot mint", "POST", "/api/v1/account/applications/scoped-token", acme, map[string]string{"workspace_name": "x"}, nil, 403},
		{"list without workspace", "GET", "/api/v1/integrations/connectors", acme, nil, nil, 400},
		{"bad credentials token scheme", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"credentials": map[string]string{"api_key": "k"}}), nil, 400},
		{"bad credentials oauth scheme", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": "hubspot", "credentials": map[string]string{"client_id": "a"}}), nil, 400},
		{"none of credentials, replication_config, oauth secret", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"credentials": nil}), nil, 422},
		{"replication_config without credentials", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"credentials": nil, "replication_config": map[string]any{"repositories": []string{"a/b"}}}), nil, 400},
		{"oauth secret for a connector without oauth", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": "stripe", "credentials": nil, "server_side_oauth_secret_id": "oauth-secret-1"}), nil, 400},
		{"no kind", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": nil}), nil, 422},
		{"type and definition of different connectors", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"definition_id": hubspotDefinition}), nil, 422},
		{"type and template of different connectors", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"source_template_id": hubspotTemplate}), nil, 422},
		{"definition and template of different connectors", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": nil, "definition_id": githubDefinition, "source_template_id": hubspotTemplate}), nil, 422},
		{"type of several templates without one", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": "jira"}), nil, 422},
		{"unknown template", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"source_template_id": "11111111-2222-4333-8444-555555555555"}), nil, 422},
		{"unknown type", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": "nope"}), nil, 422},
		{"unknown definition", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": nil, "definition_id": "11111111-2222-4333-8444-555555555555"}), nil, 422},
		{"by definition id", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"connector_type": nil, "definition_id": githubDefinition}), nil, 200},
		{"settings at top level", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"repositories": []string{"a/b"}}), nil, 422},
		{"no workspace", "POST", "/api/v1/integrations/connectors", acme, ghBody(map[string]any{"workspace_name": nil}), nil, 422},
		{"update credentials", "PUT", "/api/v1/integrations/connectors/" + gh.ID, acme, map[string]any{"credentials": map[string]string{"token": "new"}}, nil, 422},
		{"unknown id", "GET", "/api/v1/integrations/connectors/11111111-2222-4333-8444-555555555555", acme, nil, nil, 404},
		{"unknown route", "GET", "/api/v1/integrations/nothing/here", acme, nil, nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c
			if tt.name == "no workspace" || tt.name == "unknown route" {
				cl = &client{t: t, base: base, hc: &http.Client{}} // the request itself breaks the spec on purpose
			}
			r := cl.doWithHeader(tt.method, tt.path, tt.token, tt.body, tt.header)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if r.status >= 400 && !bytes.Contains(r.body, []byte(`"errors"`)) {
				t.Fatalf("error body is not an ApiErrorResponse: %s", r.body)
			}
			if bytes.Contains(r.body, []byte("ghp_x")) {
				t.Fatalf("response leaks a secret: %s", r.body)
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		clk.Advance(21 * time.Minute) // past both the operator's 15m and the scoped 20m
		for _, tok := range []string{op, acme} {
			r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", tok, nil)
			if r.status != 401 || !strings.Contains(string(r.body), "expired") {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		}
	})
	t.Run("scoped token after reset", func(t *testing.T) {
		op2 := c.operatorToken()
		sc := c.scopedToken(op2, "acme")
		srv.Reset()
		if r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", sc, nil); r.status != 401 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// TestConcurrentTraffic runs creates, lists and mints from hundreds of goroutines.
func TestConcurrentTraffic(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	const workers, perWorker = 200, 2
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			ws := fmt.Sprintf("ws-%d", i%10)
			r, err := c.try("POST", "/api/v1/account/applications/scoped-token", op, map[string]string{"workspace_name": ws})
			if err != nil || r.status != 200 {
				t.Errorf("mint: %v %d", err, r.status)
				return
			}
			var tr struct{ Token string }
			r.decode(t, &tr)
			for j := range perWorker {
				r, err := c.try("POST", "/api/v1/integrations/connectors", tr.Token, map[string]any{"workspace_name": ws, "connector_type": "github",
					"name": fmt.Sprintf("c-%d-%d", i, j), "credentials": map[string]string{"token": "t"}})
				if err != nil || r.status != 200 {
					t.Errorf("create: %v %d", err, r.status)
				}
				if r, err := c.try("GET", "/api/v1/integrations/connectors?workspace_name="+ws, tr.Token, nil); err != nil || r.status != 200 {
					t.Errorf("list: %v %d", err, r.status)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for i := range 10 {
		total += len(srv.Connectors(fmt.Sprintf("ws-%d", i)))
	}
	st := srv.Stats()
	if total != workers*perWorker || st.Created != workers*perWorker || st.Connectors != total {
		t.Fatalf("connectors = %d, stats = %+v", total, st)
	}
	if st.TokensMinted["scoped"] != workers || st.Requests["connectors_list"] != workers*perWorker {
		t.Fatalf("stats = %+v", st)
	}
}
