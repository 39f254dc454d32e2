package airbyte_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/airbytetest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/openapitest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// sandboxSecret is unusual on purpose: the leak scans look for it.
const sandboxSecret = "sbx-secret-5d8e2c41-do-not-log"

// withSandbox starts a sandbox in strict-auth mode (each operation takes only the token Airbyte
// documents for it) and a client for it with the default connector token, logging at debug
// level into the returned buffer.
func withSandbox(t testing.TB, scfg sandbox.Config, mutate func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer) {
	t.Helper()
	scfg.StrictAuth = true
	return startWithClient(t, scfg, mutate)
}

// withScopedSandbox is withSandbox for the seed docs' style: connector operations carry the
// workspace's scoped token, which only a sandbox outside strict mode accepts.
func withScopedSandbox(t testing.TB, scfg sandbox.Config, mutate func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer) {
	t.Helper()
	return startWithClient(t, scfg, func(cfg *airbyte.Config) {
		cfg.ConnectorToken = airbyte.ConnectorTokenScoped
		if mutate != nil {
			mutate(cfg)
		}
	})
}

func startWithClient(t testing.TB, scfg sandbox.Config, mutate func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer) {
	t.Helper()
	scfg.ClientSecret = sandboxSecret
	srv, base := sandboxtest.Start(t, scfg)
	logs := &airbytetest.LogBuffer{}
	cfg := airbyte.Config{
		BaseURL:       base,
		ClientID:      sandbox.DefaultClientID,
		ClientSecret:  secret.New(sandboxSecret),
		MaxConns:      32,
		Backoff:       fastRetries(10),
		MaxRetryAfter: time.Millisecond,
		Logger:        logs.Logger(),
		Clock:         scfg.Now,
		WrapTransport: contractTransport(t),
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

// contractTransport validates every request the client sends and every response it reads against
// Airbyte's OpenAPI specs.
func contractTransport(t testing.TB) func(http.RoundTripper) http.RoundTripper {
	v := openapitest.New(t)
	return func(next http.RoundTripper) http.RoundTripper { return v.Transport(t, next) }
}

func githubRequest(workspace, name, token string) airbyte.ConnectorSourceCreateRequest {
	return airbyte.ConnectorSourceCreateRequest{
		WorkspaceName:     workspace,
		Name:              name,
		ConnectorType:     "github",
		ReplicationConfig: map[string]any{"repositories": []string{workspace + "/app"}},
		Credentials:       secret.NewFields(map[string]string{"token": token}),
	}
}

// TestEveryOperation walks every operation of the client against the sandbox, happy path and the
// error statuses each can answer.
func TestEveryOperation(t *testing.T) {
	srv, c, _ := withSandbox(t, sandbox.Config{}, nil)
	ctx := testCtx(t)
	const ws = "acme"

	ref, err := c.Workspace(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ScopedTokenInfo(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if info.WorkspaceID != ref.ID || info.WorkspaceName != ws || ref.OrganizationID != sandbox.DefaultOrganizationID {
		t.Fatalf("claims say %+v, info says %+v", ref, info)
	}
	widget, err := c.WidgetToken(ctx, airbyte.WidgetTokenCreateRequest{WorkspaceName: ws, AllowedOrigin: "https://app.example"})
	if err != nil || widget.Token.IsZero() {
		t.Fatalf("widget token: %v", err)
	}

	created, err := c.CreateConnector(ctx, githubRequest(ws, "GitHub", "ghp_every_op_0001"))
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.Name != "GitHub" || strings.Contains(string(created.ReplicationConfig), "ghp_every_op_0001") {
		t.Fatalf("created = %+v", created)
	}
	if creds, ok := srv.ConnectorCredentials(created.ID); !ok || creds["token"] != "ghp_every_op_0001" {
		t.Fatal("the sandbox must have received the plain credentials")
	}
	list, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: ws, DefinitionID: created.SourceTemplate.SourceDefinitionID})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != created.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	got, err := c.GetConnector(ctx, ws, created.ID)
	if err != nil || got.ID != created.ID {
		t.Fatalf("get = %+v, %v", got, err)
	}
	updated, err := c.UpdateConnector(ctx, ws, created.ID, airbyte.ConnectorSourceUpdateRequest{Name: "GitHub 2"})
	if err != nil || updated.Name != "GitHub 2" {
		t.Fatalf("update = %+v, %v", updated, err)
	}
	check, err := c.CheckConnectorConfig(ctx, airbyte.ConnectorSourceCheckConfigRequest(githubRequest(ws, "", "invalid-token")))
	if err != nil || check.Status != "failed" {
		t.Fatalf("check config = %+v, %v", check, err)
	}
	if check, err = c.CheckConnector(ctx, ws, created.ID, airbyte.ConnectorSourceCheckConfigUpdateRequest{}); err != nil || check.Status != "succeeded" {
		t.Fatalf("check = %+v, %v", check, err)
	}
	if del, err := c.DeleteConnector(ctx, ws, created.ID); err != nil || del.JobID == "" {
		t.Fatalf("delete = %+v, %v", del, err)
	}

	templates, err := c.ListSourceTemplates(ctx, airbyte.SourceTemplateListParams{WorkspaceName: ws, Tags: []string{"engineering"}, TagsMode: airbyte.TagSelectionAny})
	if err != nil || len(templates.Data) == 0 {
		t.Fatalf("templates = %+v, %v", templates, err)
	}
	src, err := c.CreateSource(ctx, ws, airbyte.SourceCreateRequest{
		Name: "GitHub source", SourceTemplateID: templates.Data[0].ID,
		SourceConfig: map[string]any{"repositories": []string{"acme/app"}},
		Credentials:  secret.NewFields(map[string]string{"token": "ghp_source_0002"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(src.SourceConfig), "ghp_source_0002") {
		t.Fatalf("source config came back with the plain credential: %s", src.SourceConfig)
	}
	sources, err := c.ListSources(ctx, ws)
	if err != nil || !slices.ContainsFunc(sources.Data, func(s airbyte.SourceListItem) bool { return s.ID == src.ID }) {
		t.Fatalf("sources = %+v, %v", sources, err)
	}
	if s, err := c.GetSource(ctx, ws, src.ID); err != nil || s.ID != src.ID {
		t.Fatalf("get source = %+v, %v", s, err)
	}
	if s, err := c.UpdateSource(ctx, ws, src.ID, airbyte.SourceUpdateRequest{Name: "renamed"}); err != nil || s.Name != "renamed" {
		t.Fatalf("update source = %+v, %v", s, err)
	}
	if d, err := c.DeleteSource(ctx, ws, src.ID); err != nil || d.ID != src.ID || d.DeletedAt.IsZero() {
		t.Fatalf("delete source = %+v, %v", d, err)
	}

	wsList, err := c.ListWorkspaces(ctx, airbyte.WorkspaceListParams{NameContains: "ac", Limit: 10})
	if err != nil || len(wsList.Data) != 1 || wsList.Data[0].ID != ref.ID {
		t.Fatalf("workspaces = %+v, %v", wsList, err)
	}
	if w, err := c.GetWorkspace(ctx, ref.ID); err != nil || w.Name != ws {
		t.Fatalf("workspace = %+v, %v", w, err)
	}

	// Every operation went over the wire (and through the contract check).
	requests := srv.Stats().Requests
	for _, op := range []string{
		sandbox.OpToken, sandbox.OpScopedToken, sandbox.OpScopedTokenInfo, sandbox.OpWidgetToken,
		sandbox.OpConnectorsCreate, sandbox.OpConnectorsList, sandbox.OpConnectorsGet, sandbox.OpConnectorsUpdate,
		sandbox.OpConnectorsDelete, sandbox.OpConnectorsCheck, sandbox.OpSourcesCreate, sandbox.OpSourcesList,
		sandbox.OpSourcesGet, sandbox.OpSourcesUpdate, sandbox.OpSourcesDelete, sandbox.OpSourceTemplatesList,
		sandbox.OpWorkspacesList, sandbox.OpWorkspacesGet,
	} {
		if requests[op] == 0 {
			t.Errorf("operation %s was not exercised", op)
		}
	}

	// Error statuses, each a typed, permanent APIError.
	const missing = "00000000-0000-4000-8000-000000000000"
	errCases := []struct {
		name   string
		status int
		call   func() error
	}{
		{"create without a type", 422, func() error {
			r := githubRequest(ws, "x", "ghp_1")
			r.ConnectorType = ""
			_, err := c.CreateConnector(ctx, r)
			return err
		}},
		{"create with unfit credentials", 400, func() error {
			r := githubRequest(ws, "x", "ghp_1")
			r.Credentials = secret.NewFields(map[string]string{"password": "pw-not-a-token"})
			_, err := c.CreateConnector(ctx, r)
			return err
		}},
		{"get unknown connector", 404, func() error { _, err := c.GetConnector(ctx, ws, missing); return err }},
		{"get deleted connector", 404, func() error { _, err := c.GetConnector(ctx, ws, created.ID); return err }},
		{"update unknown connector", 404, func() error {
			_, err := c.UpdateConnector(ctx, ws, missing, airbyte.ConnectorSourceUpdateRequest{Name: "y"})
			return err
		}},
		{"delete unknown connector", 404, func() error { _, err := c.DeleteConnector(ctx, ws, missing); return err }},
		{"get unknown source", 404, func() error { _, err := c.GetSource(ctx, ws, missing); return err }},
		{"get unknown workspace", 404, func() error { _, err := c.GetWorkspace(ctx, missing); return err }},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *airbyte.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Retryable() {
				t.Fatalf("want a permanent %d, got %v", tc.status, err)
			}
		})
	}
}

// TestTenantIsolation: a connector of one workspace is invisible through another's scoped token.
func TestTenantIsolation(t *testing.T) {
	t.Run("scoped tokens", func(t *testing.T) {
		_, c, _ := withScopedSandbox(t, sandbox.Config{}, nil)
		ctx := testCtx(t)
		created, err := c.CreateConnector(ctx, githubRequest("acme", "GitHub", "ghp_tenant_a"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetConnector(ctx, "globex", created.ID)
		var apiErr *airbyte.APIError
		if !errors.As(err, &apiErr) || (apiErr.StatusCode != 403 && apiErr.StatusCode != 404) {
			t.Fatalf("globex must not read acme's connector: %v", err)
		}
	})
	t.Run("application token", func(t *testing.T) {
		// One token for the organization: isolation is by workspace_name, which every list and
		// create names.
		_, c, _ := withSandbox(t, sandbox.Config{}, nil)
		ctx := testCtx(t)
		created, err := c.CreateConnector(ctx, githubRequest("acme", "GitHub", "ghp_tenant_a"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateConnector(ctx, githubRequest("globex", "GitHub", "ghp_tenant_b")); err != nil {
			t.Fatal(err)
		}
		l, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "globex"})
		if err != nil || len(l.Data) != 1 || l.Data[0].ID == created.ID {
			t.Fatalf("globex lists %+v, %v", l, err)
		}
		src := airbyte.SourceCreateRequest{WorkspaceID: "00000000-0000-4000-8000-000000000000", SourceTemplateID: "x"}
		if _, err := c.CreateSource(ctx, "acme", src); err == nil {
			t.Fatal("a source in another workspace's id must be refused")
		}
	})
}

// TestOneMintUnderLoad: 1,000 concurrent callers for one workspace cause exactly one application
// token and one scoped token mint at the server, with either connector token style.
func TestOneMintUnderLoad(t *testing.T) {
	for _, start := range []struct {
		style string
		with  func(testing.TB, sandbox.Config, func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer)
	}{{airbyte.ConnectorTokenApplication, withSandbox}, {airbyte.ConnectorTokenScoped, withScopedSandbox}} {
		t.Run(start.style, func(t *testing.T) {
			// Without the contract check: validating 1,000 responses under -race is slower than the point.
			srv, c, _ := start.with(t, sandbox.Config{}, func(cfg *airbyte.Config) { cfg.WrapTransport = nil })
			ctx := testCtx(t)
			const callers = 1000
			var wg sync.WaitGroup
			begin := make(chan struct{})
			errs := make(chan error, callers)
			for range callers {
				wg.Go(func() {
					<-begin
					// The worker's pattern: the workspace (from its scoped token), then the list.
					if _, err := c.Workspace(ctx, "acme"); err != nil {
						errs <- err
						return
					}
					if _, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}); err != nil {
						errs <- err
					}
				})
			}
			close(begin)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.TokensMinted["application"] != 1 || st.TokensMinted["scoped"] != 1 {
				t.Fatalf("mints = %v, want one application and one scoped", st.TokensMinted)
			}
			if st.Requests[sandbox.OpConnectorsList] != callers {
				t.Fatalf("list requests = %d", st.Requests[sandbox.OpConnectorsList])
			}
		})
	}
}

// TestTokenLifetimes runs the token traps on a clock shared by the client and the sandbox.
func TestTokenLifetimes(t *testing.T) {
	t.Run("exp sooner than expires_in", func(t *testing.T) {
		clock := newFakeClock()
		srv, c, _ := withSandbox(t, sandbox.Config{Now: clock.Now, OperatorTTL: 180 * time.Second, ExpiresIn: 900 * time.Second}, nil)
		ctx := testCtx(t)
		for range 2 {
			if _, err := c.ListWorkspaces(ctx, airbyte.WorkspaceListParams{}); err != nil {
				t.Fatal(err)
			}
			clock.Advance(150 * time.Second) // past exp - margin, long before expires_in
		}
		st := srv.Stats()
		if st.TokensMinted["application"] != 2 || st.Requests[sandbox.OpWorkspacesList] != 2 {
			t.Fatalf("want a proactive refresh and no 401 replay: %+v", st)
		}
	})
	t.Run("expired at the server: 401, refresh once", func(t *testing.T) {
		for _, tc := range []struct {
			style      string
			with       func(testing.TB, sandbox.Config, func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer)
			wantScoped int64
		}{{airbyte.ConnectorTokenApplication, withSandbox, 0}, {airbyte.ConnectorTokenScoped, withScopedSandbox, 2}} {
			t.Run(tc.style, func(t *testing.T) {
				clientClock, serverClock := newFakeClock(), newFakeClock()
				srv, c, _ := tc.with(t, sandbox.Config{Now: serverClock.Now}, func(cfg *airbyte.Config) { cfg.Clock = clientClock.Now })
				ctx := testCtx(t)
				if _, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}); err != nil {
					t.Fatal(err)
				}
				// The server's clock runs ahead: the client's cached tokens look fresh but have expired.
				serverClock.Advance(30 * time.Minute)
				clientClock.Advance(30 * time.Second)
				if _, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: "acme"}); err != nil {
					t.Fatal(err)
				}
				st := srv.Stats()
				if st.Requests[sandbox.OpConnectorsList] != 3 || st.TokensMinted["scoped"] != tc.wantScoped || st.TokensMinted["application"] != 2 {
					t.Fatalf("want one 401 and one replay after refreshing: %+v", st)
				}
			})
		}
	})
	t.Run("tokens of a forgotten workspace", func(t *testing.T) {
		for _, tc := range []struct {
			style string
			with  func(testing.TB, sandbox.Config, func(*airbyte.Config)) (*sandbox.Server, *airbyte.Client, *airbytetest.LogBuffer)
		}{{airbyte.ConnectorTokenApplication, withSandbox}, {airbyte.ConnectorTokenScoped, withScopedSandbox}} {
			t.Run(tc.style, func(t *testing.T) {
				srv, c, _ := tc.with(t, sandbox.Config{}, nil)
				ctx := testCtx(t)
				before, err := c.Workspace(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				// Every workspace is gone: scoped tokens minted before answer 401, and a create
				// with the application token answers 404 until a mint makes the workspace again.
				srv.Reset()
				if _, err := c.CreateConnector(ctx, githubRequest("acme", "GitHub", "ghp_forgotten")); err != nil {
					t.Fatal(err)
				}
				after, err := c.Workspace(ctx, "acme")
				if err != nil || after.ID == before.ID {
					t.Fatalf("want a new workspace from a new token: before %v after %v (%v)", before, after, err)
				}
				if conns := srv.Connectors("acme"); len(conns) != 1 || conns[0].WorkspaceID != after.ID {
					t.Fatalf("connectors of the new acme: %+v", conns)
				}
			})
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		srv, c, _ := withSandbox(t, sandbox.Config{}, func(cfg *airbyte.Config) { cfg.ClientSecret = secret.New("wrong-secret-value-77") })
		_, err := c.ListConnectors(testCtx(t), airbyte.ListConnectorsParams{WorkspaceName: "acme"})
		var apiErr *airbyte.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Operation != "token" || apiErr.Retryable() {
			t.Fatalf("want a permanent 401 from token, got %v", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-value-77") {
			t.Fatal("the client secret leaked into the error")
		}
		if n := srv.Stats().Requests[sandbox.OpToken]; n != 1 {
			t.Fatalf("token requests = %d: a rejected client secret is not retried", n)
		}
	})
}

// ensureConnector is the worker's pattern the client's ambiguous errors are for: list, adopt by
// name, else create; after an ambiguous create, list again instead of creating again.
func ensureConnector(ctx context.Context, c *airbyte.Client, req airbyte.ConnectorSourceCreateRequest) (string, []error, error) {
	var seen []error
	for range 20 {
		list, err := c.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: req.WorkspaceName})
		if err != nil {
			seen = append(seen, err)
			if airbyte.IsRetryable(err) {
				continue
			}
			return "", seen, err
		}
		for _, it := range list.Data {
			if it.Name == req.Name {
				return it.ID, seen, nil
			}
		}
		created, err := c.CreateConnector(ctx, req)
		if err == nil {
			return created.ID, seen, nil
		}
		seen = append(seen, err)
		if !airbyte.IsRetryable(err) {
			return "", seen, err
		}
	}
	return "", seen, errors.New("gave up")
}

// TestFaultsSoak drives many create-or-adopt flows through 5xx, 429 bursts with Retry-After,
// dropped connections, latency and "committed, then failed" creates, and proves exactly one
// connector per identity, and that no secret reached a log line or an error.
func TestFaultsSoak(t *testing.T) {
	faults := sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpAll: {
			Latency: time.Millisecond, LatencyJitter: time.Millisecond,
			ErrorRates:     map[int]float64{502: 0.05, 503: 0.05, 504: 0.05},
			RateLimitBurst: sandbox.RateLimitBurst{Every: 10, Length: 2, RetryAfter: 2 * time.Second},
			DropConnection: 0.03,
		},
		sandbox.OpConnectorsCreate: {
			ErrorRates:     map[int]float64{503: 0.1},
			RateLimitBurst: sandbox.RateLimitBurst{Every: 7, Length: 1, RetryAfter: time.Second},
			CommitThenFail: 0.3,
			DropConnection: 0.05,
		},
	}}
	srv, c, logs := withSandbox(t, sandbox.Config{Faults: faults, Seed: 42}, nil)
	ctx := testCtx(t)

	const workspaces, perWorkspace = 5, 8
	type outcome struct {
		workspace, name, id string
		errs                []error
		err                 error
	}
	results := make(chan outcome, workspaces*perWorkspace)
	var wg sync.WaitGroup
	var credentials []string
	for w := range workspaces {
		for n := range perWorkspace {
			ws, name := fmt.Sprintf("tenant-%d", w), fmt.Sprintf("conn-%d", n)
			cred := fmt.Sprintf("ghp_soak_%d_%d_secretvalue", w, n)
			credentials = append(credentials, cred)
			wg.Go(func() {
				id, seen, err := ensureConnector(ctx, c, githubRequest(ws, name, cred))
				results <- outcome{ws, name, id, seen, err}
			})
		}
	}
	wg.Wait()
	close(results)

	var allErrs []error
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s/%s: %v", r.workspace, r.name, r.err)
		}
		allErrs = append(allErrs, r.errs...)
	}
	for w := range workspaces {
		ws := fmt.Sprintf("tenant-%d", w)
		names := map[string]int{}
		for _, conn := range srv.Connectors(ws) {
			names[conn.Name]++
		}
		for n := range perWorkspace {
			if got := names[fmt.Sprintf("conn-%d", n)]; got != 1 {
				t.Fatalf("%s/conn-%d exists %d times, want exactly 1", ws, n, got)
			}
		}
	}
	st := srv.Stats()
	if st.CommittedThenFailed == 0 || st.Faults[sandbox.FaultRateLimit] == 0 || st.Faults[sandbox.FaultDrop] == 0 || st.Faults[sandbox.FaultError] == 0 {
		t.Fatalf("the soak must hit every fault kind: %+v", st)
	}
	ambiguous := 0
	for _, err := range allErrs {
		if airbyte.IsAmbiguous(err) {
			ambiguous++
		}
	}
	if ambiguous == 0 {
		t.Fatal("want ambiguous creates handed back to the caller")
	}

	// Leak scan: the client secret, every credential, and any JWT (tokens start with "eyJ").
	forbidden := append([]string{sandboxSecret, "eyJ"}, credentials...)
	texts := []string{logs.String()}
	for _, err := range allErrs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
	}
	for _, text := range texts {
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Fatalf("%q leaked into %s", f, text)
			}
		}
	}
	if !strings.Contains(logs.String(), `"operation":"connectors_create"`) {
		t.Fatal("want debug lines per call")
	}
}

func BenchmarkScopedTokenCacheHit(b *testing.B) {
	_, c, _ := withSandbox(b, sandbox.Config{}, func(cfg *airbyte.Config) { cfg.Logger, cfg.WrapTransport = nil, nil })
	ctx := context.Background()
	if _, err := c.ScopedToken(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.ScopedToken(ctx, "acme"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateConnector(b *testing.B) {
	_, c, _ := withSandbox(b, sandbox.Config{}, func(cfg *airbyte.Config) { cfg.Logger, cfg.WrapTransport = nil, nil })
	ctx := context.Background()
	req := githubRequest("bench", "", "ghp_bench_token")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req.Name = fmt.Sprintf("conn-%d", i)
		if _, err := c.CreateConnector(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestObserver(t *testing.T) {
	obs := &airbytetest.Observer{}
	_, c, _ := withSandbox(t, sandbox.Config{}, func(cfg *airbyte.Config) { cfg.Observer = obs })
	ctx := testCtx(t)
	for range 3 {
		if _, err := c.ScopedTokenInfo(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WidgetToken(ctx, airbyte.WidgetTokenCreateRequest{WorkspaceName: "acme", AllowedOrigin: "https://app.example"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind         string
		minted, hits int
	}{
		{airbyte.KindApplication, 1, 1}, // the widget mint reuses the application token
		{airbyte.KindScoped, 1, 2},
		{airbyte.KindWidget, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got, hits := obs.Minted(tt.kind), obs.Hits(tt.kind); got != tt.minted || hits != tt.hits {
				t.Fatalf("minted %d hits %d, want %d %d", got, hits, tt.minted, tt.hits)
			}
		})
	}
}

// TestCreateScopedTokenOnce: a create looks the workspace's scoped token up once, in either
// token style: the first create mints it, each later one is one cache hit.
func TestCreateScopedTokenOnce(t *testing.T) {
	for _, style := range []string{airbyte.ConnectorTokenApplication, airbyte.ConnectorTokenScoped} {
		t.Run(style, func(t *testing.T) {
			obs := &airbytetest.Observer{}
			_, c, _ := startWithClient(t, sandbox.Config{StrictAuth: style == airbyte.ConnectorTokenApplication}, func(cfg *airbyte.Config) {
				cfg.ConnectorToken = style
				cfg.Observer = obs
			})
			ctx := testCtx(t)
			for i := range 3 {
				if _, err := c.CreateConnector(ctx, githubRequest("acme", fmt.Sprintf("GitHub %d", i), "ghp_once")); err != nil {
					t.Fatal(err)
				}
			}
			if minted, hits := obs.Minted(airbyte.KindScoped), obs.Hits(airbyte.KindScoped); minted != 1 || hits != 2 {
				t.Fatalf("scoped tokens: minted %d, cache hits %d; want 1 and 2", minted, hits)
			}
		})
	}
}
