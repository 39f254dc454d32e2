package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte/openapitest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// outcomes runs n token requests and returns what each one got: a status, or 0 for a dropped
// connection.
func outcomes(t *testing.T, seed int64, rule sandbox.FaultRule, n int) []int {
	t.Helper()
	_, base := sandboxtest.Start(t, sandbox.Config{Seed: seed, Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpToken: rule}}})
	c := newClient(t, base)
	out := make([]int, n)
	for i := range out {
		r, err := c.try("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret})
		if err == nil {
			out[i] = r.status
		}
	}
	return out
}

func TestFaultsAreDeterministic(t *testing.T) {
	rule := sandbox.FaultRule{ErrorRates: map[int]float64{500: 0.2, 503: 0.2}, DropConnection: 0.1}
	tests := []struct {
		name         string
		seedA, seedB int64
		wantSame     bool
	}{
		{"same seed", 42, 42, true},
		{"other seed", 42, 43, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := outcomes(t, tt.seedA, rule, 60), outcomes(t, tt.seedB, rule, 60)
			if slices.Equal(a, b) != tt.wantSame {
				t.Fatalf("same = %v, want %v:\n%v\n%v", !tt.wantSame, tt.wantSame, a, b)
			}
			seen := map[int]bool{}
			for _, s := range a {
				seen[s] = true
			}
			for _, want := range []int{0, 200, 500, 503} {
				if !seen[want] {
					t.Fatalf("outcome %d never happened in %v", want, a)
				}
			}
		})
	}
}

func TestRateLimitBurst(t *testing.T) {
	got := outcomes(t, 1, sandbox.FaultRule{RateLimitBurst: sandbox.RateLimitBurst{Every: 4, Length: 2, RetryAfter: 1500 * time.Millisecond}}, 8)
	want := []int{200, 200, 429, 429, 200, 200, 429, 429}
	if !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	srv, base := sandboxtest.Start(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpAll: {RateLimitBurst: sandbox.RateLimitBurst{Every: 1, Length: 1, RetryAfter: 1500 * time.Millisecond}},
	}}})
	c := newClient(t, base)
	r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=x", "", nil)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("status %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if st := srv.Stats(); st.Faults[sandbox.FaultRateLimit] != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCommitThenFail(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{Seed: 7})
	c := newClient(t, base)
	op := c.operatorToken()
	srv.SetFaults(sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpConnectorsCreate: {CommitThenFail: 1}}})
	const n = 12
	var dropped, failed int
	for range n {
		r, err := c.try("POST", "/api/v1/integrations/connectors", op, map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "t"}})
		switch {
		case err != nil:
			dropped++
		case r.status == 500:
			failed++
		default:
			t.Fatalf("create answered %d: %s", r.status, r.body)
		}
	}
	if dropped == 0 || failed == 0 {
		t.Fatalf("dropped %d, 500 %d: want both ways of failing", dropped, failed)
	}
	if got := len(srv.Connectors("acme")); got != n {
		t.Fatalf("connectors = %d, want %d: every create committed", got, n)
	}
	if st := srv.Stats(); st.CommittedThenFailed != n || st.Created != n {
		t.Fatalf("stats = %+v", st)
	}
	srv.SetFaults(sandbox.Faults{})
	r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", op, nil)
	var l struct{ Data []any }
	r.decode(t, &l)
	if len(l.Data) != n {
		t.Fatalf("listed %d, want %d", len(l.Data), n)
	}
}

func TestDropConnectionAndLatency(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {DropConnection: 1},
		sandbox.OpAll:              {Latency: time.Millisecond, LatencyJitter: time.Millisecond},
	}}})
	c := newClient(t, base)
	op := c.operatorToken()
	if _, err := c.try("POST", "/api/v1/integrations/connectors", op, map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "t"}}); err == nil {
		t.Fatalf("create answered; want a dropped connection")
	}
	st := srv.Stats()
	if st.Created != 0 || st.Faults[sandbox.FaultDrop] != 1 || st.Faults[sandbox.FaultLatency] != 1 || st.Requests[sandbox.OpConnectorsCreate] != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestMiddleware serves the sandbox behind the server-side validator, faults included.
func TestMiddleware(t *testing.T) {
	srv := sandbox.New(sandbox.Config{Seed: 3})
	v := openapitest.New(t)
	hs := httptest.NewServer(v.Middleware(t, srv.Handler()))
	t.Cleanup(hs.Close)
	c := newClient(t, hs.URL)
	op := c.operatorToken()
	sc := c.scopedToken(op, "acme")
	createGitHub(t, c, sc, "acme", "", "t")
	srv.SetFaults(sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {CommitThenFail: 1},
		sandbox.OpConnectorsList:   {ErrorRates: map[int]float64{503: 1}},
	}})
	for range 4 {
		_, _ = c.try("POST", "/api/v1/integrations/connectors", sc, map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": "t"}})
	}
	if r := c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", sc, nil); r.status != 503 {
		t.Fatalf("list: %d", r.status)
	}
	und := v.Undeclared()
	if und["GET /api/v1/integrations/connectors 503"] != 1 {
		t.Fatalf("undeclared = %v", und)
	}
}

func TestFaultsJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    sandbox.Faults
		wantErr bool
	}{
		{name: "full", in: `{"rules":{"*":{"latency":"50ms","latency_jitter":"10ms","error_rates":{"503":0.05},"rate_limit_burst":{"every":10,"length":2,"retry_after":"1s"},"commit_then_fail":0.1,"drop_connection":0.01}}}`,
			want: sandbox.Faults{Rules: map[string]sandbox.FaultRule{"*": {Latency: 50 * time.Millisecond, LatencyJitter: 10 * time.Millisecond,
				ErrorRates: map[int]float64{503: 0.05}, RateLimitBurst: sandbox.RateLimitBurst{Every: 10, Length: 2, RetryAfter: time.Second},
				CommitThenFail: 0.1, DropConnection: 0.01}}}},
		{name: "empty", in: `{}`, want: sandbox.Faults{}},
		{name: "check statuses", in: `{"rules":{"connectors_check":{"check_statuses":{"pending":0.25,"inconclusive":0.5},"check_latency":"2s"}}}`,
			want: sandbox.Faults{Rules: map[string]sandbox.FaultRule{"connectors_check": {
				CheckStatuses: map[string]float64{"pending": 0.25, "inconclusive": 0.5}, CheckLatency: 2 * time.Second}}}},
		{name: "unknown check status", in: `{"rules":{"*":{"check_statuses":{"succeeded":0.5}}}}`, wantErr: true},
		{name: "check statuses above one", in: `{"rules":{"*":{"check_statuses":{"pending":0.6,"running":0.6}}}}`, wantErr: true},
		{name: "bad duration", in: `{"rules":{"*":{"latency":"soon"}}}`, wantErr: true},
		{name: "bad status", in: `{"rules":{"*":{"error_rates":{"200":0.5}}}}`, wantErr: true},
		{name: "bad probability", in: `{"rules":{"*":{"drop_connection":2}}}`, wantErr: true},
		{name: "unknown field", in: `{"rules":{"*":{"latency_ms":5}}}`, wantErr: true},
		{name: "burst longer than window", in: `{"rules":{"*":{"rate_limit_burst":{"every":1,"length":2}}}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sandbox.Faults
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again sandbox.Faults
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip: %v %+v", err, again)
			}
		})
	}
}

func FuzzFaultsJSON(f *testing.F) {
	f.Add([]byte(`{"rules":{"*":{"latency":"50ms","error_rates":{"503":0.05},"rate_limit_burst":{"every":10,"length":2,"retry_after":"1s"}}}}`))
	f.Add([]byte(`{"rules":{"connectors_create":{"commit_then_fail":1}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"rules":{"connectors_check":{"check_statuses":{"pending":0.5},"check_latency":"1s"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl sandbox.Faults
		if err := json.Unmarshal(b, &fl); err != nil {
			return
		}
		out, err := json.Marshal(fl)
		if err != nil {
			t.Fatalf("marshal accepted faults: %v", err)
		}
		var again sandbox.Faults
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("re-read %s: %v", out, err)
		}
		if !reflect.DeepEqual(normalize(fl), normalize(again)) {
			t.Fatalf("round trip changed the plan: %+v vs %+v", fl, again)
		}
	})
}

// normalize maps empty collections to nil, which JSON does not tell apart.
func normalize(f sandbox.Faults) sandbox.Faults {
	if len(f.Rules) == 0 {
		return sandbox.Faults{}
	}
	out := sandbox.Faults{Rules: map[string]sandbox.FaultRule{}}
	for k, r := range f.Rules {
		if len(r.ErrorRates) == 0 {
			r.ErrorRates = nil
		}
		if len(r.CheckStatuses) == 0 {
			r.CheckStatuses = nil
		}
		if r.RateLimitBurst.Every == 0 {
			r.RateLimitBurst = sandbox.RateLimitBurst{}
		}
		out.Rules[k] = r
	}
	return out
}

func TestAdminEndpoints(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	createGitHub(t, c, op, "acme", "Mine", "ghp_admin_secret")

	get := func(path string) response { return c.do("GET", path, "", nil) }
	if r := get("/_sandbox/healthz"); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	var st sandbox.Stats
	get("/_sandbox/stats").decode(t, &st)
	if st.Created != 1 || st.TokensMinted["application"] != 1 || st.Requests["connectors_create"] != 1 {
		t.Fatalf("stats = %+v", st)
	}
	r := get("/_sandbox/connectors?workspace_name=acme")
	var conns []sandbox.Connector
	r.decode(t, &conns)
	if len(conns) != 1 || conns[0].Name != "Mine" || !slices.Equal(conns[0].CredentialKeys, []string{"token"}) || conns[0].ConnectorType != "github" {
		t.Fatalf("connectors = %s", r.body)
	}
	if bytes.Contains(r.body, []byte("ghp_admin_secret")) {
		t.Fatalf("admin endpoint leaks the secret")
	}
	if r := get("/_sandbox/connectors"); r.status != 400 {
		t.Fatalf("connectors without workspace: %d", r.status)
	}
	r = c.do("PUT", "/_sandbox/faults", "", json.RawMessage(`{"rules":{"token":{"error_rates":{"503":1}}}}`))
	if r.status != 200 {
		t.Fatalf("put faults: %d %s", r.status, r.body)
	}
	if r := c.do("PUT", "/_sandbox/faults", "", json.RawMessage(`{"rules":{"token":{"latency":"x"}}}`)); r.status != 400 {
		t.Fatalf("bad faults: %d", r.status)
	}
	if r, _ := c.try("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret}); r.status != 503 {
		t.Fatalf("token after PUT faults: %d", r.status)
	}
	if r := get("/_sandbox/faults"); !bytes.Contains(r.body, []byte(`"503":1`)) {
		t.Fatalf("get faults: %s", r.body)
	}
	if r := c.do("POST", "/_sandbox/reset", "", nil); r.status != 204 {
		t.Fatalf("reset: %d", r.status)
	}
	if got := srv.Stats(); got.Created != 0 || got.Connectors != 0 || len(srv.Connectors("acme")) != 0 {
		t.Fatalf("after reset: %+v", got)
	}
}

// TestNoSecretInLogs runs traffic with debug logging and checks no secret or token is logged.
func TestNoSecretInLogs(t *testing.T) {
	var buf syncBuffer
	_, base := sandboxtest.Start(t, sandbox.Config{ClientSecret: "client-secret-xyz", Logger: newDebugLogger(&buf)})
	c := newClient(t, base)
	r := c.do("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": "client-secret-xyz"})
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tr)
	sc := c.scopedToken(tr.AccessToken, "acme")
	createGitHub(t, c, sc, "acme", "", "ghp_log_secret")
	_ = c.do("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": "x", "client_secret": "wrong-secret-abc"})
	logs := buf.String()
	if logs == "" {
		t.Fatalf("nothing logged at debug level")
	}
	for _, s := range []string{"client-secret-xyz", "wrong-secret-abc", "ghp_log_secret", tr.AccessToken, sc} {
		if bytes.Contains([]byte(logs), []byte(s)) {
			t.Fatalf("log contains a secret: %s", logs)
		}
	}
}

// FuzzConnectorCreate feeds arbitrary bodies to the create decoder: it must answer a documented
// status with a JSON error body, and never echo a credential.
func FuzzConnectorCreate(f *testing.F) {
	f.Add([]byte(`{"workspace_name":"acme","connector_type":"github","credentials":{"token":"fuzz-secret"}}`))
	f.Add([]byte(`{"workspace_name":"acme","definition_id":"` + githubDefinition + `","credentials":{"token":1}}`))
	f.Add([]byte(`{"workspace_name":"acme","connector_type":"hubspot","credentials":{"client_id":"a","client_secret":"fuzz-secret"},"repositories":[]}`))
	f.Add([]byte(`[]`))
	srv := sandbox.New(sandbox.Config{})
	h := srv.Handler()
	rec := httptest.NewRecorder()
	tokReq := httptest.NewRequest("POST", "/api/v1/account/applications/token", bytes.NewReader([]byte(`{"client_id":"sandbox-client","client_secret":"sandbox-secret"}`)))
	h.ServeHTTP(rec, tokReq)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		srv.Reset() // keep memory flat over millions of creates
		req := httptest.NewRequest("POST", "/api/v1/integrations/connectors", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 422:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("response is not JSON: %s", rec.Body.Bytes())
		}
		if rec.Code == 200 {
			var out struct {
				ReplicationConfig struct {
					Credentials map[string]any `json:"credentials"`
				} `json:"replication_config"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			for k, v := range out.ReplicationConfig.Credentials {
				if v != "**********" {
					t.Fatalf("credential %q not redacted: %s", k, rec.Body.Bytes())
				}
			}
			return
		}
		var in struct {
			Credentials map[string]any `json:"credentials"`
		}
		_ = json.Unmarshal(body, &in) // bodies that are not objects carry no credentials
		for _, v := range in.Credentials {
			// Long values only: short ones occur in any error text by chance.
			if s, ok := v.(string); ok && len(s) >= 16 && bytes.Contains(rec.Body.Bytes(), []byte(s)) {
				t.Fatalf("error echoes the credential %q: %s", s, rec.Body.Bytes())
			}
		}
	})
}
