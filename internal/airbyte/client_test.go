package airbyte_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/airbytetest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

const (
	clientSecret = "cs-3b1f9a77-never-print-me"
	workspaceID  = "6f0c2a8e-2f4b-4c59-9a2e-0b8a1e2f3c4d"
	connectorsP  = "/api/v1/integrations/connectors"
	tokenP       = "/api/v1/account/applications/token"
	scopedP      = "/api/v1/account/applications/scoped-token"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fastRetries retries at once, at most n times: the policy under test is which failures are retried,
// not how long the client waits.
func fastRetries(n uint64) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, n) }
}

// scripted returns a scripted server that mints tokens, and a client for it.
func scripted(t *testing.T, mutate func(*airbyte.Config)) (*airbytetest.Server, *airbyte.Client, *airbytetest.LogBuffer) {
	t.Helper()
	srv := airbytetest.NewServer(t)
	exp := time.Now().Add(15 * time.Minute)
	srv.On("POST", tokenP, airbytetest.Response{Body: fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":900}`,
		airbytetest.JWT(t, map[string]any{"sub": "user-1", "exp": exp.Unix()}))})
	srv.On("POST", scopedP, scopedTokenResponse(t, "acme", time.Now().Add(20*time.Minute)))
	logs := &airbytetest.LogBuffer{}
	cfg := airbyte.Config{
		BaseURL:      srv.URL,
		ClientID:     "client-1",
		ClientSecret: secret.New(clientSecret),
		Backoff:      fastRetries(3),
		Logger:       logs.Logger(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := airbyte.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return srv, c, logs
}

func scopedTokenResponse(t *testing.T, workspace string, exp time.Time) airbytetest.Response {
	return airbytetest.Response{Body: fmt.Sprintf(`{"token":%q}`,
		airbytetest.JWT(t, airbytetest.ScopedClaims(workspaceID, workspace, exp)))}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const connectorBody = `{"id":"0b0e4b9c-5f5e-4a0e-8d3b-1a2b3c4d5e6f","name":"GitHub","source_template":{"id":"3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01","name":"GitHub","source_definition_id":"ef69ef6e-aa7f-4af1-a01d-ef775033524e","user_config_spec":{"connectionSpecification":{"type":"object"}},"partial_default_config":{},"mode":"DIRECT"},"replication_config":{"repositories":["acme/app"],"credentials":"**********"},"created_at":"2026-11-21T10:00:00","updated_at":"2026-11-21T10:00:00Z"}`

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  airbyte.Config
	}{
		{"no base url", airbyte.Config{ClientID: "a", ClientSecret: secret.New("b")}},
		{"bad scheme", airbyte.Config{BaseURL: "ftp://x", ClientID: "a", ClientSecret: secret.New("b")}},
		{"no secret", airbyte.Config{BaseURL: "http://x", ClientID: "a"}},
		{"negative", airbyte.Config{BaseURL: "http://x", ClientID: "a", ClientSecret: secret.New("b"), MaxConns: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := airbyte.New(tt.cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantMsg    string
		wantField  string
		retryable  bool
		wantCalls  int // list is idempotent: retryable statuses are tried 1 + 3 times
		retryAfter string
	}{
		{"400 airbyte body", 400, `{"message":"bad credentials","errors":[{"field":"credentials","message":"no auth scheme fits","error_code":"value_error","details":{"input":"x"}}]}`, "bad credentials", "credentials", false, 1, ""},
		{"403", 403, `{"message":"forbidden"}`, "forbidden", "", false, 1, ""},
		{"404 fastapi string", 404, `{"detail":"Not Found"}`, "Not Found", "", false, 1, ""},
		{"422 fastapi list", 422, `{"detail":[{"loc":["body","connector_type"],"msg":"field required","type":"missing","input":{"token":"x"}}]}`, "validation error", "body.connector_type", false, 1, ""},
		{"500 not json", 500, `<html>oops</html>`, "Internal Server Error", "", false, 1, ""},
		{"429", 429, `{"message":"slow down"}`, "slow down", "", true, 4, "0"},
		{"502", 502, ``, "Bad Gateway", "", true, 4, ""},
		{"503", 503, `{"message":"unavailable"}`, "unavailable", "", true, 4, ""},
		{"504", 504, `{}`, "Gateway Timeout", "", true, 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := scripted(t, nil)
			resp := airbytetest.Response{Status: tt.status, Body: tt.body}
			if tt.retryAfter != "" {
				resp.Header = map[string]string{"Retry-After": tt.retryAfter}
			}
			srv.On("GET", connectorsP, resp)
			_, err := c.ListConnectors(testCtx(t), airbyte.ListConnectorsParams{WorkspaceName: "acme"})
			var apiErr *airbyte.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("want *APIError, got %T %v", err, err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Message != tt.wantMsg || apiErr.Operation != "connectors_list" {
				t.Fatalf("got %+v", apiErr)
			}
			if tt.wantField != "" && (len(apiErr.Errors) == 0 || apiErr.Errors[0].Field != tt.wantField || len(apiErr.Errors[0].Details) != 0) {
				t.Fatalf("errors = %+v", apiErr.Errors)
			}
			if apiErr.Retryable() != tt.retryable || airbyte.IsRetryable(err) != tt.retryable || airbyte.IsAmbiguous(err) {
				t.Fatalf("retryable = %v, ambiguous = %v", apiErr.Retryable(), airbyte.IsAmbiguous(err))
			}
			var tErr *airbyte.TransportError
			if errors.As(err, &tErr) {
				t.Fatal("an API error is not a transport error")
			}
			if got := len(srv.Requests("GET", connectorsP)); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	srv, c, _ := scripted(t, nil)
	srv.On("GET", connectorsP,
		airbytetest.Response{Status: 503},
		airbytetest.Response{Drop: true},
		airbytetest.Response{Status: 429, Header: map[string]string{"Retry-After": "0"}},
		airbytetest.Response{Body: `{"data":[]}`})
	got, err := c.ListConnectors(testCtx(t), airbyte.ListConnectorsParams{WorkspaceName: "acme", DefinitionID: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data == nil || len(got.Data) != 0 {
		t.Fatalf("data = %#v", got.Data)
	}
	reqs := srv.Requests("GET", connectorsP)
	if len(reqs) != 4 || reqs[3].RawQuery != "definition_id=d-1&workspace_name=acme" {
		t.Fatalf("requests = %d, last query %q", len(reqs), reqs[len(reqs)-1].RawQuery)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name          string
		maxRetryAfter time.Duration
		retryAfter    string
		wantCalls     int
		wantErr       bool
	}{
		// Retry-After 120 s capped at 1 ms: the client waits 1 ms and succeeds.
		{"capped", time.Millisecond, "120", 2, false},
		{"http date capped", time.Millisecond, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 2, false},
		// Honoured in full, it outlives the caller's deadline: the client returns at once.
		{"beyond the deadline", time.Hour, "120", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.MaxRetryAfter = tt.maxRetryAfter })
			srv.On("GET", connectorsP,
				airbytetest.Response{Status: 429, Header: map[string]string{"Retry-After": tt.retryAfter}},
				airbytetest.Response{Body: `{"data":[]}`})
			_, err := c.ListConnectors(testCtx(t), airbyte.ListConnectorsParams{WorkspaceName: "acme"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var apiErr *airbyte.APIError
			if tt.wantErr && (!errors.As(err, &apiErr) || apiErr.RetryAfter != 120*time.Second || !apiErr.Retryable()) {
				t.Fatalf("want a retryable 429 with RetryAfter 120s, got %v", err)
			}
			if got := len(srv.Requests("GET", connectorsP)); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestCreateIsNotReplayedWhenAmbiguous: a create that may have reached the server is handed back,
// marked ambiguous, so that the caller lists and adopts instead of creating a duplicate.
func TestCreateIsNotReplayedWhenAmbiguous(t *testing.T) {
	tests := []struct {
		name      string
		script    []airbytetest.Response
		wantCalls int
		ambiguous bool
		transport bool
		timeout   bool
	}{
		{"500", []airbytetest.Response{{Status: 500}}, 1, true, false, false},
		{"502", []airbytetest.Response{{Status: 502}}, 1, true, false, false},
		{"503", []airbytetest.Response{{Status: 503}}, 1, true, false, false},
		{"504", []airbytetest.Response{{Status: 504}}, 1, true, false, false},
		{"connection dropped", []airbytetest.Response{{Drop: true}}, 1, true, true, false},
		{"body cut short", []airbytetest.Response{{Truncate: true}}, 1, true, true, false},
		{"timeout", []airbytetest.Response{{Hang: true}}, 1, true, true, true},
		{"2xx not decodable", []airbytetest.Response{{Body: `{"id":`}}, 1, true, true, false},
		{"429 is replayed", []airbytetest.Response{{Status: 429, Header: map[string]string{"Retry-After": "0"}}, {Body: connectorBody}}, 2, false, false, false},
		{"422 is permanent", []airbytetest.Response{{Status: 422, Body: `{"message":"connector_type required"}`}}, 1, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.Timeout = 200 * time.Millisecond })
			srv.On("POST", connectorsP, tt.script...)
			_, err := c.CreateConnector(testCtx(t), airbyte.ConnectorSourceCreateRequest{
				WorkspaceName: "acme", ConnectorType: "github", Credentials: secret.NewFields(map[string]string{"token": "ghp_x"}),
			})
			if got := len(srv.Requests("POST", connectorsP)); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d (err %v)", got, tt.wantCalls, err)
			}
			if tt.name == "429 is replayed" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			if airbyte.IsAmbiguous(err) != tt.ambiguous {
				t.Fatalf("ambiguous = %v, want %v: %v", airbyte.IsAmbiguous(err), tt.ambiguous, err)
			}
			if tt.ambiguous && !airbyte.IsRetryable(err) {
				t.Fatalf("an ambiguous create must be retryable (after list-and-adopt): %v", err)
			}
			var tErr *airbyte.TransportError
			if errors.As(err, &tErr) != tt.transport {
				t.Fatalf("transport error = %v, want %v: %T %v", !tt.transport, tt.transport, err, err)
			}
			if tt.transport && tErr.Timeout != tt.timeout {
				t.Fatalf("timeout = %v, want %v", tErr.Timeout, tt.timeout)
			}
		})
	}
}

// TestIdempotentCallsAreReplayed: the same failures on a read are simply retried.
func TestIdempotentCallsAreReplayed(t *testing.T) {
	srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.Timeout = 200 * time.Millisecond })
	srv.On("GET", connectorsP+"/c-1",
		airbytetest.Response{Drop: true}, airbytetest.Response{Truncate: true}, airbytetest.Response{Hang: true},
		airbytetest.Response{Body: connectorBody})
	got, err := c.GetConnector(testCtx(t), "acme", "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "GitHub" || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() || got.SourceTemplate.Mode != "DIRECT" {
		t.Fatalf("got %+v", got)
	}
	if n := len(srv.Requests("GET", connectorsP+"/c-1")); n != 4 {
		t.Fatalf("calls = %d", n)
	}
}

// TestDialErrorsAreReplayedForCreates: nothing was sent, so even a create is retried.
func TestDialErrorsAreReplayedForCreates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: every dial is refused
	var attempts atomic.Int32
	c, err := airbyte.New(airbyte.Config{
		BaseURL: "http://" + addr, ClientID: "a", ClientSecret: secret.New(clientSecret), Backoff: fastRetries(2),
		WrapTransport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				attempts.Add(1)
				return next.RoundTrip(r)
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateConnector(testCtx(t), airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", ConnectorType: "github"})
	var tErr *airbyte.TransportError
	if !errors.As(err, &tErr) || tErr.Ambiguous() || !tErr.Retryable() || tErr.Operation != "token" {
		t.Fatalf("want a retryable, unambiguous token transport error, got %T %v", err, err)
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("attempts = %d, want 3", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUnauthorizedRefreshesOnceAndReplaysOnce(t *testing.T) {
	tests := []struct {
		name      string
		script    []airbytetest.Response
		wantErr   bool
		wantCalls int
	}{
		{"recovers", []airbytetest.Response{{Status: 401, Body: `{"message":"expired"}`}, {Body: `{"data":[]}`}}, false, 2},
		{"persistent", []airbytetest.Response{{Status: 401, Body: `{"message":"invalid token"}`}}, true, 2},
	}
	// Either connector token style: the token the call carried is the one refreshed.
	styles := []struct {
		style, mintPath string
	}{
		{airbyte.ConnectorTokenApplication, tokenP},
		{airbyte.ConnectorTokenScoped, scopedP},
	}
	for _, st := range styles {
		for _, tt := range tests {
			t.Run(st.style+" "+tt.name, func(t *testing.T) {
				srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.ConnectorToken = st.style })
				exp := time.Now().Add(20 * time.Minute)
				srv.On("POST", scopedP, scopedTokenResponse(t, "acme", exp), scopedTokenResponse(t, "acme", exp.Add(time.Second)))
				srv.On("POST", tokenP, applicationTokenResponse(t, exp), applicationTokenResponse(t, exp.Add(time.Second)))
				srv.On("GET", connectorsP, tt.script...)
				_, err := c.ListConnectors(testCtx(t), airbyte.ListConnectorsParams{WorkspaceName: "acme"})
				if (err != nil) != tt.wantErr {
					t.Fatalf("err = %v", err)
				}
				var apiErr *airbyte.APIError
				if tt.wantErr && (!errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Retryable()) {
					t.Fatalf("want a permanent 401, got %v", err)
				}
				reqs := srv.Requests("GET", connectorsP)
				if len(reqs) != tt.wantCalls {
					t.Fatalf("calls = %d, want %d", len(reqs), tt.wantCalls)
				}
				if reqs[0].Header.Get("Authorization") == reqs[1].Header.Get("Authorization") {
					t.Fatal("the replay must carry a freshly minted token")
				}
				if n := len(srv.Requests("POST", st.mintPath)); n != 2 {
					t.Fatalf("mints = %d, want 2", n)
				}
			})
		}
	}
}

func applicationTokenResponse(t *testing.T, exp time.Time) airbytetest.Response {
	return airbytetest.Response{Body: fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":900}`,
		airbytetest.JWT(t, map[string]any{"sub": "user-1", "exp": exp.Unix()}))}
}

func TestMalformedScopedTokens(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims map[string]any // nil: not a JWT at all
	}{
		{"not a jwt", nil},
		{"no workspace scope", map[string]any{"exp": exp, "act": map[string]string{"sub": "acme"}}},
		{"no exp", map[string]any{"io.airbyte.auth.workspace_scope": map[string]string{"workspaceId": workspaceID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, _ := scripted(t, nil)
			token := "opaque-token-value-0001"
			if tt.claims != nil {
				token = airbytetest.JWT(t, tt.claims)
			}
			srv.On("POST", scopedP, airbytetest.Response{Body: fmt.Sprintf(`{"token":%q}`, token)})
			_, err := c.Workspace(testCtx(t), "acme")
			if !errors.Is(err, airbyte.ErrMalformedToken) {
				t.Fatalf("want ErrMalformedToken, got %v", err)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the token leaked into %q", err)
			}
		})
	}
}

func TestWorkspaceFromClaims(t *testing.T) {
	srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.OrganizationID = "org-1" })
	ref, err := c.Workspace(testCtx(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if ref != (airbyte.WorkspaceRef{ID: workspaceID, Name: "acme", OrganizationID: "org-1"}) {
		t.Fatalf("ref = %+v", ref)
	}
	var body map[string]any
	reqs := srv.Requests("POST", scopedP)
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body["workspace_name"] != "acme" {
		t.Fatalf("scoped token request = %s", reqs[0].Body)
	}
	if h := reqs[0].Header; h.Get("X-Organization-Id") != "org-1" || !strings.HasPrefix(h.Get("User-Agent"), "provisioner/") ||
		!strings.HasPrefix(h.Get("Authorization"), "Bearer ") {
		t.Fatalf("headers = %v", h)
	}
}

// TestExpiryTrap: the application token says expires_in 900 but its JWT expires in 180 s
// (airbytehq/airbyte#55784). The client must believe the JWT.
func TestExpiryTrap(t *testing.T) {
	clock := newFakeClock()
	srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.Clock = clock.Now })
	srv.On("POST", tokenP, airbytetest.Response{Body: fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":900}`,
		airbytetest.JWT(t, map[string]any{"exp": clock.Now().Add(180 * time.Second).Unix()}))})
	ctx := testCtx(t)
	steps := []struct {
		advance   time.Duration
		wantMints int
	}{
		{0, 1},
		{100 * time.Second, 1}, // 80 s left: still more than the 60 s margin
		{30 * time.Second, 2},  // 50 s left: refresh, long before expires_in would say so
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if _, err := c.ApplicationToken(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.Requests("POST", tokenP)); n != s.wantMints {
			t.Fatalf("after +%v: mints = %d, want %d", s.advance, n, s.wantMints)
		}
	}
}

func TestCredentialsOnTheWireOnly(t *testing.T) {
	const token = "ghp_plain_credential_42"
	srv, c, logs := scripted(t, nil)
	srv.On("POST", connectorsP, airbytetest.Response{Status: 400,
		Body: `{"message":"credentials {\"token\": \"` + token + `\"} fit no auth scheme","errors":[{"field":"credentials","message":"bad ` + token + `"}]}`})
	_, err := c.CreateConnector(testCtx(t), airbyte.ConnectorSourceCreateRequest{
		WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub",
		ReplicationConfig: map[string]any{"repositories": []string{"acme/app"}},
		Credentials:       secret.NewFields(map[string]string{"token": token}),
	})
	if err == nil {
		t.Fatal("want an error")
	}
	reqs := srv.Requests("POST", connectorsP)
	var wire struct {
		Credentials       map[string]string `json:"credentials"`
		ReplicationConfig map[string]any    `json:"replication_config"`
		WorkspaceName     string            `json:"workspace_name"`
	}
	if err := json.Unmarshal(reqs[0].Body, &wire); err != nil {
		t.Fatal(err)
	}
	if wire.Credentials["token"] != token || wire.WorkspaceName != "acme" || wire.ReplicationConfig["repositories"] == nil {
		t.Fatalf("wire body = %s", reqs[0].Body)
	}
	for name, text := range map[string]string{"error": err.Error(), "%+v": fmt.Sprintf("%+v", err), "logs": logs.String()} {
		if strings.Contains(text, token) {
			t.Fatalf("credential leaked into %s: %s", name, text)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("want the echoed credential redacted in %q", err)
	}
}

func TestOperationInContext(t *testing.T) {
	var mu sync.Mutex
	var ops []string
	srv, c, _ := scripted(t, func(cfg *airbyte.Config) {
		cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				ops = append(ops, airbyte.Operation(r.Context()))
				mu.Unlock()
				return next.RoundTrip(r)
			})
		}
	})
	srv.On("DELETE", connectorsP+"/c-1%2F..%2Fx", airbytetest.Response{Status: 202, Body: `{"job_id":"j-1"}`})
	got, err := c.DeleteConnector(testCtx(t), "acme", "c-1/../x") // an id never escapes its path segment
	if err != nil || got.JobID != "j-1" {
		t.Fatalf("delete = %+v, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(ops, ",") != "token,connectors_delete" { // the application token, as the spec documents
		t.Fatalf("operations = %v", ops)
	}
	if airbyte.Operation(context.Background()) != "" {
		t.Fatal("a plain context has no operation")
	}
}

// TestClientSideRateLimit: a caller that cannot wait for the limiter fails at once, sending nothing.
func TestClientSideRateLimit(t *testing.T) {
	srv, c, _ := scripted(t, func(cfg *airbyte.Config) { cfg.RateLimit, cfg.RateBurst = 0.001, 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The burst of one goes to the application token; the scoped token would wait ~1,000 s.
	_, err := c.Workspace(ctx, "acme")
	var tErr *airbyte.TransportError
	if !errors.As(err, &tErr) || tErr.Operation != "scoped_token" || !tErr.Timeout {
		t.Fatalf("want a scoped_token timeout from the limiter, got %v", err)
	}
	if n, m := len(srv.Requests("POST", tokenP)), len(srv.Requests("POST", scopedP)); n != 1 || m != 0 {
		t.Fatalf("requests: token %d, scoped %d; want 1, 0", n, m)
	}
}
