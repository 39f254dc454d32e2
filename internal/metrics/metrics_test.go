package metrics_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/provisioner-dev/provisioner/internal/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testBuild = metrics.BuildInfo{Version: "v1.2.3", Commit: "abc1234", GoVersion: "go1.26.0"}

func newMetrics(t *testing.T, clock *testClock) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := metrics.Options{}
	if clock != nil {
		opts.Now = clock.Now
	}
	m, err := metrics.NewWithOptions(reg, testBuild, opts)
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	return m, reg
}

// family gathers reg and returns the family called name.
func family(t *testing.T, reg prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

// sample returns the value of the series of name with exactly the labels given as name/value pairs:
// a counter's or gauge's value, a histogram's sample count.
func sample(t *testing.T, reg prometheus.Gatherer, name string, labelPairs ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		want[labelPairs[i]] = labelPairs[i+1]
	}
	for _, m := range family(t, reg, name).GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if !equalMaps(got, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestExpositionLintsClean(t *testing.T) {
	m, reg := newMetrics(t, nil)
	// Some events too, so lint sees histograms with observations.
	m.RequestStarted("credentials_submitted")("created")
	m.DeadLettered("schema_violation")

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Every metric of the README's metrics section with the number of series it has before any event.
var wantFamilies = []struct {
	name   string
	typ    dto.MetricType
	series int
}{
	{"provisioner_requests_received_total", dto.MetricType_COUNTER, 5},
	{"provisioner_requests_redelivered_total", dto.MetricType_COUNTER, 5},
	{"provisioner_requests_finished_total", dto.MetricType_COUNTER, 5 * 14},
	{"provisioner_request_duration_seconds", dto.MetricType_HISTOGRAM, 5},
	{"provisioner_requests_in_flight", dto.MetricType_GAUGE, 1},
	{"provisioner_longest_running_request_seconds", dto.MetricType_GAUGE, 1},
	{"provisioner_dead_letters_total", dto.MetricType_COUNTER, 19},
	{"provisioner_results_published_total", dto.MetricType_COUNTER, 10},
	{"provisioner_airbyte_requests_total", dto.MetricType_COUNTER, 20 * 4},
	{"provisioner_airbyte_request_duration_seconds", dto.MetricType_HISTOGRAM, 20},
	{"provisioner_airbyte_requests_in_flight", dto.MetricType_GAUGE, 1},
	{"provisioner_token_mints_total", dto.MetricType_COUNTER, 3},
	{"provisioner_token_cache_hits_total", dto.MetricType_COUNTER, 3},
	{"provisioner_secret_fetches_total", dto.MetricType_COUNTER, 3 * 5},
	{"provisioner_ledger_conflicts_total", dto.MetricType_COUNTER, 1},
	{"provisioner_ledger_lease_takeovers_total", dto.MetricType_COUNTER, 1},
	{"provisioner_consumer_pending_messages", dto.MetricType_GAUGE, 1},
	{"provisioner_consumer_ack_pending_messages", dto.MetricType_GAUGE, 1},
	{"provisioner_consumer_redelivered_messages", dto.MetricType_GAUGE, 1},
	{"provisioner_nats_connected", dto.MetricType_GAUGE, 1},
	{"provisioner_vault_login_state", dto.MetricType_GAUGE, 3},
	{"provisioner_vault_logins_total", dto.MetricType_COUNTER, 2},
	{"provisioner_vault_token_expiry_seconds", dto.MetricType_GAUGE, 1},
	{"provisioner_build_info", dto.MetricType_GAUGE, 1},
}

func TestEverySeriesExistsAtZeroBeforeAnyEvent(t *testing.T) {
	_, reg := newMetrics(t, nil)
	for _, want := range wantFamilies {
		t.Run(want.name, func(t *testing.T) {
			mf := family(t, reg, want.name)
			if mf.GetType() != want.typ {
				t.Errorf("type = %v, want %v", mf.GetType(), want.typ)
			}
			if got := len(mf.GetMetric()); got != want.series {
				t.Errorf("%d series, want %d", got, want.series)
			}
			if want.name == "provisioner_build_info" {
				return
			}
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
				if v != 0 {
					t.Errorf("series %v = %v, want 0", m.GetLabel(), v)
				}
			}
		})
	}
	t.Run("go and process collectors", func(t *testing.T) {
		family(t, reg, "go_goroutines")
		if _, err := os.Stat("/proc/self/stat"); err == nil {
			family(t, reg, "process_cpu_seconds_total")
		}
	})
	t.Run("build info", func(t *testing.T) {
		if got := sample(t, reg, "provisioner_build_info", "version", "v1.2.3", "commit", "abc1234", "goversion", "go1.26.0"); got != 1 {
			t.Errorf("build_info = %v, want 1", got)
		}
	})
}

func TestBuildInfoDefaultsGoVersionToTheRuntime(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.BuildInfo{Version: "dev"}); err != nil {
		t.Fatal(err)
	}
	m := family(t, reg, "provisioner_build_info").GetMetric()[0]
	for _, lp := range m.GetLabel() {
		if lp.GetName() == "goversion" && !strings.HasPrefix(lp.GetValue(), "go") {
			t.Errorf("goversion = %q", lp.GetValue())
		}
	}
}

func TestNewReportsRegistrationFailure(t *testing.T) {
	tests := []struct {
		name string
		reg  func() *prometheus.Registry
	}{
		{"nil registry", func() *prometheus.Registry { return nil }},
		{"registered twice", func() *prometheus.Registry {
			reg := prometheus.NewRegistry()
			if _, err := metrics.New(reg, testBuild); err != nil {
				t.Fatal(err)
			}
			return reg
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := metrics.New(tt.reg(), testBuild)
			if err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
		})
	}
}

func TestMethodsCount(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *metrics.Metrics)
		metric string
		labels []string
		want   float64
	}{
		{"received", func(m *metrics.Metrics) { m.RequestReceived("customer_onboarded", false) },
			"provisioner_requests_received_total", []string{"kind", "customer_onboarded"}, 1},
		{"received redelivery counts as received", func(m *metrics.Metrics) { m.RequestReceived("credentials_submitted", true) },
			"provisioner_requests_received_total", []string{"kind", "credentials_submitted"}, 1},
		{"redelivered", func(m *metrics.Metrics) {
			m.RequestReceived("credentials_submitted", true)
			m.RequestReceived("credentials_submitted", false)
		}, "provisioner_requests_redelivered_total", []string{"kind", "credentials_submitted"}, 1},
		{"finished", func(m *metrics.Metrics) { m.RequestStarted("credentials_submitted")("adopted") },
			"provisioner_requests_finished_total", []string{"kind", "credentials_submitted", "outcome", "adopted"}, 1},
		{"finished once however often done is called", func(m *metrics.Metrics) {
			done := m.RequestStarted("credentials_submitted")
			done("retry")
			done("retry")
			done("created")
		}, "provisioner_requests_finished_total", []string{"kind", "credentials_submitted", "outcome", "retry"}, 1},
		{"duration observed", func(m *metrics.Metrics) { m.RequestStarted("unknown")("permanent_error") },
			"provisioner_request_duration_seconds", []string{"kind", "unknown"}, 1},
		{"in flight while running", func(m *metrics.Metrics) {
			m.RequestStarted("credentials_submitted")
			m.RequestStarted("customer_onboarded")
			m.RequestStarted("customer_onboarded")("workspace_ready")
		}, "provisioner_requests_in_flight", nil, 2},
		{"dead lettered", func(m *metrics.Metrics) { m.DeadLettered("forbidden_secret_ref") },
			"provisioner_dead_letters_total", []string{"reason", "forbidden_secret_ref"}, 1},
		{"result published", func(m *metrics.Metrics) { m.ResultPublished("workspace_error") },
			"provisioner_results_published_total", []string{"message", "workspace_error"}, 1},
		{"token minted", func(m *metrics.Metrics) { m.TokenMinted("application") },
			"provisioner_token_mints_total", []string{"kind", "application"}, 1},
		{"token cache hit", func(m *metrics.Metrics) { m.TokenCacheHit("scoped"); m.TokenCacheHit("scoped") },
			"provisioner_token_cache_hits_total", []string{"kind", "scoped"}, 2},
		{"secret fetched", func(m *metrics.Metrics) { m.SecretFetched("vault", "permission_denied") },
			"provisioner_secret_fetches_total", []string{"backend", "vault", "outcome", "permission_denied"}, 1},
		{"ledger conflict", func(m *metrics.Metrics) { m.LedgerConflict() },
			"provisioner_ledger_conflicts_total", nil, 1},
		{"lease takeover", func(m *metrics.Metrics) { m.LeaseTakeover(); m.LeaseTakeover() },
			"provisioner_ledger_lease_takeovers_total", nil, 2},
		{"nats connected", func(m *metrics.Metrics) { m.SetNATSConnected(true) },
			"provisioner_nats_connected", nil, 1},
		{"nats disconnected", func(m *metrics.Metrics) { m.SetNATSConnected(true); m.SetNATSConnected(false) },
			"provisioner_nats_connected", nil, 0},
		{"vault logged in", func(m *metrics.Metrics) { m.SetVaultLoginState("logged_in", true, time.Time{}) },
			"provisioner_vault_login_state", []string{"state", "logged_in"}, 1},
		{"vault state replaced", func(m *metrics.Metrics) {
			m.SetVaultLoginState("logged_in", true, time.Time{})
			m.SetVaultLoginState("failing", false, time.Time{})
		}, "provisioner_vault_login_state", []string{"state", "logged_in"}, 0},
		{"vault failing", func(m *metrics.Metrics) { m.SetVaultLoginState("failing", false, time.Time{}) },
			"provisioner_vault_login_state", []string{"state", "failing"}, 1},
		{"vault login failed", func(m *metrics.Metrics) { m.VaultLogin(false); m.VaultLogin(true); m.VaultLogin(false) },
			"provisioner_vault_logins_total", []string{"outcome", "failed"}, 2},
		{"consumer pending", func(m *metrics.Metrics) { m.SetConsumerLag(42, 3, 1) },
			"provisioner_consumer_pending_messages", nil, 42},
		{"consumer ack pending", func(m *metrics.Metrics) { m.SetConsumerLag(42, 3, 1) },
			"provisioner_consumer_ack_pending_messages", nil, 3},
		{"consumer redelivered", func(m *metrics.Metrics) { m.SetConsumerLag(42, 3, 1) },
			"provisioner_consumer_redelivered_messages", nil, 1},
		{"consumer lag replaced, not added", func(m *metrics.Metrics) { m.SetConsumerLag(42, 3, 1); m.SetConsumerLag(5, 0, 0) },
			"provisioner_consumer_pending_messages", nil, 5},
		{"unlisted kind is other", func(m *metrics.Metrics) { m.RequestReceived("acme-corp", false) },
			"provisioner_requests_received_total", []string{"kind", metrics.OtherLabel}, 1},
		{"unlisted outcome is other", func(m *metrics.Metrics) { m.RequestStarted("customer_onboarded")("acme-corp") },
			"provisioner_requests_finished_total", []string{"kind", "customer_onboarded", "outcome", metrics.OtherLabel}, 1},
		{"unlisted reason is other", func(m *metrics.Metrics) { m.DeadLettered("secret/data/customers/acme") },
			"provisioner_dead_letters_total", []string{"reason", metrics.OtherLabel}, 1},
		{"unlisted message is other", func(m *metrics.Metrics) { m.ResultPublished("acme") },
			"provisioner_results_published_total", []string{"message", metrics.OtherLabel}, 1},
		{"unlisted token kind is other", func(m *metrics.Metrics) { m.TokenMinted("acme") },
			"provisioner_token_mints_total", []string{"kind", metrics.OtherLabel}, 1},
		{"unlisted secret backend and outcome are other", func(m *metrics.Metrics) { m.SecretFetched("acme", "acme") },
			"provisioner_secret_fetches_total", []string{"backend", metrics.OtherLabel, "outcome", metrics.OtherLabel}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t, nil)
			tt.record(m)
			if got := sample(t, reg, tt.metric, tt.labels...); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestLongestRunningRequest(t *testing.T) {
	clock := newTestClock()
	m, reg := newMetrics(t, clock)
	longest := func() float64 { return sample(t, reg, "provisioner_longest_running_request_seconds") }

	var doneFirst, doneSecond func(string)
	steps := []struct {
		name string
		act  func()
		want float64
	}{
		{"none running", func() {}, 0},
		{"first started", func() { doneFirst = m.RequestStarted("credentials_submitted") }, 0},
		{"first runs 10s", func() { clock.Advance(10 * time.Second) }, 10},
		{"second starts, 5s pass", func() {
			doneSecond = m.RequestStarted("customer_onboarded")
			clock.Advance(5 * time.Second)
		}, 15},
		{"first ends: the second is the oldest", func() { doneFirst("created") }, 5},
		{"second ends", func() { doneSecond("workspace_ready") }, 0},
	}
	for _, step := range steps {
		step.act()
		if got := longest(); got != step.want {
			t.Fatalf("%s: longest running = %v, want %v", step.name, got, step.want)
		}
	}
}

// The seconds to the Vault token's expiry are computed at scrape from the injected clock.
func TestVaultTokenExpirySeconds(t *testing.T) {
	clock := newTestClock()
	m, reg := newMetrics(t, clock)
	expiry := func() float64 { return sample(t, reg, "provisioner_vault_token_expiry_seconds") }
	steps := []struct {
		name string
		do   func()
		want float64
	}{
		{"no token", func() {}, 0},
		{"10s lease", func() { m.SetVaultLoginState("logged_in", true, clock.Now().Add(10*time.Second)) }, 10},
		{"4s later", func() { clock.Advance(4 * time.Second) }, 6},
		{"renewing", func() { m.SetVaultLoginState("renewing", true, clock.Now().Add(6*time.Second)) }, 6},
		{"past expiry", func() { clock.Advance(time.Minute) }, 0},
		{"never expires", func() { m.SetVaultLoginState("logged_in", true, time.Time{}) }, math.Inf(1)},
		{"dropped", func() { m.SetVaultLoginState("failing", false, time.Time{}) }, 0},
	}
	for _, step := range steps {
		step.do()
		if got := expiry(); got != step.want {
			t.Fatalf("%s: expiry = %v, want %v", step.name, got, step.want)
		}
	}
}

// The request durations come from the injected clock, so the exposition is exact and golden.
func TestRequestScenarioGolden(t *testing.T) {
	clock := newTestClock()
	m, reg := newMetrics(t, clock)

	m.SetNATSConnected(true)
	m.SetConsumerLag(7, 2, 1)
	m.VaultLogin(false)
	m.VaultLogin(true)
	m.SetVaultLoginState("logged_in", true, clock.Now().Add(time.Hour))
	m.RequestReceived("credentials_submitted", false)
	done := m.RequestStarted("credentials_submitted")
	m.LedgerConflict()
	m.SecretFetched("vault", "ok")
	m.TokenMinted("application")
	m.TokenMinted("scoped")
	m.TokenCacheHit("scoped")
	clock.Advance(1500 * time.Millisecond)
	m.ResultPublished("source_created")
	done("created")

	m.RequestReceived("credentials_submitted", true)
	m.RequestStarted("credentials_submitted")("replayed")

	m.RequestReceived("customer_onboarded", false)
	done = m.RequestStarted("customer_onboarded")
	clock.Advance(3 * time.Millisecond)
	done("workspace_ready")
	m.ResultPublished("workspace_ready")

	m.RequestReceived("unknown", false)
	done = m.RequestStarted("unknown")
	m.DeadLettered("unsupported_subject")
	done("dead_letter")

	m.RequestStarted("credentials_submitted") // still running at the scrape
	clock.Advance(2 * time.Second)
	m.LeaseTakeover()

	names := []string{
		"provisioner_requests_received_total", "provisioner_requests_redelivered_total",
		"provisioner_requests_finished_total", "provisioner_request_duration_seconds",
		"provisioner_requests_in_flight", "provisioner_longest_running_request_seconds",
		"provisioner_dead_letters_total", "provisioner_results_published_total",
		"provisioner_token_mints_total", "provisioner_token_cache_hits_total",
		"provisioner_secret_fetches_total", "provisioner_ledger_conflicts_total",
		"provisioner_ledger_lease_takeovers_total", "provisioner_consumer_pending_messages",
		"provisioner_consumer_ack_pending_messages", "provisioner_consumer_redelivered_messages",
		"provisioner_nats_connected", "provisioner_build_info",
		"provisioner_vault_login_state", "provisioner_vault_logins_total", "provisioner_vault_token_expiry_seconds",
	}
	compareGolden(t, reg, filepath.Join("testdata", "request_scenario.prom"), names...)
}

// compareGolden compares the named families of reg with a golden file in the Prometheus text format;
// -update rewrites the file.
func compareGolden(t *testing.T, reg prometheus.Gatherer, golden string, names ...string) {
	t.Helper()
	if *update {
		got, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, names...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.RequestReceived("credentials_submitted", true)
	m.RequestStarted("credentials_submitted")("created")
	m.DeadLettered("internal_error")
	m.ResultPublished("source_created")
	m.TokenMinted("scoped")
	m.TokenCacheHit("scoped")
	m.SecretFetched("file", "ok")
	m.LedgerConflict()
	m.LeaseTakeover()
	m.SetNATSConnected(true)
	m.SetConsumerLag(1, 2, 3)
	m.SetVaultLoginState("logged_in", true, time.Time{})
	m.VaultLogin(true)
	if rt := m.InstrumentTransport(nil, nil); rt != nil {
		t.Errorf("InstrumentTransport on nil Metrics = %v, want next unchanged", rt)
	}
}

// Whatever the callers pass, every label value is one of the closed lists (or "other"): a workspace
// name, a request id or a secret can never become a series.
func TestLabelValuesStayInTheirClosedLists(t *testing.T) {
	const tenant = "acme-workspace"
	m, reg := newMetrics(t, nil)
	recordEverything(m, tenant)
	assertLabelsClosed(t, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if strings.Contains(lp.GetValue(), "acme") {
					t.Errorf("%s has label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func FuzzLabelValuesStayInTheirClosedLists(f *testing.F) {
	for _, seed := range []string{"", "credentials_submitted", "acme", "other", "vault:secret/data/customers/acme/github", "ghp_0123456789abcdef", "\xff\x00", strings.Repeat("x", 300)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		m, reg := newMetrics(t, nil)
		recordEverything(m, value)
		assertLabelsClosed(t, reg)
	})
}

// recordEverything calls every method with value in every label position.
func recordEverything(m *metrics.Metrics, value string) {
	m.RequestReceived(value, true)
	m.RequestStarted(value)(value)
	m.RequestStarted("credentials_submitted")(value)
	m.DeadLettered(value)
	m.ResultPublished(value)
	m.TokenMinted(value)
	m.TokenCacheHit(value)
	m.SecretFetched(value, value)
	m.SecretFetched("vault", value)
	m.SetVaultLoginState(value, true, time.Time{})
}

// assertLabelsClosed fails when a label of a provisioner_* series is outside its default list.
func assertLabelsClosed(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	d := metrics.DefaultOptions()
	allowed := map[string][]string{ // family/label -> values
		"provisioner_requests_received_total/kind":               d.Kinds,
		"provisioner_requests_redelivered_total/kind":            d.Kinds,
		"provisioner_requests_finished_total/kind":               d.Kinds,
		"provisioner_requests_finished_total/outcome":            d.Outcomes,
		"provisioner_request_duration_seconds/kind":              d.Kinds,
		"provisioner_dead_letters_total/reason":                  d.Reasons,
		"provisioner_results_published_total/message":            d.Messages,
		"provisioner_token_mints_total/kind":                     d.TokenKinds,
		"provisioner_token_cache_hits_total/kind":                d.TokenKinds,
		"provisioner_secret_fetches_total/backend":               d.SecretBackends,
		"provisioner_secret_fetches_total/outcome":               d.SecretOutcomes,
		"provisioner_airbyte_requests_total/operation":           d.Operations,
		"provisioner_airbyte_requests_total/code":                {"1xx", "2xx", "3xx", "4xx", "5xx", "error"},
		"provisioner_airbyte_request_duration_seconds/operation": d.Operations,
		"provisioner_vault_login_state/state":                    {"logged_in", "renewing", "failing"},
		"provisioner_vault_logins_total/outcome":                 {"ok", "failed"},
		"provisioner_build_info/version":                         {testBuild.Version},
		"provisioner_build_info/commit":                          {testBuild.Commit},
		"provisioner_build_info/goversion":                       {testBuild.GoVersion},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "provisioner_") {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				key := mf.GetName() + "/" + lp.GetName()
				values, ok := allowed[key]
				if !ok {
					t.Errorf("unexpected label %s", key)
					continue
				}
				if v := lp.GetValue(); v != metrics.OtherLabel && !slices.Contains(values, v) {
					t.Errorf("%s = %q, not in its closed list", key, v)
				}
			}
		}
	}
}

func TestOptionsExtendTheLists(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := metrics.DefaultOptions()
	opts.Kinds = append(opts.Kinds, "credentials_updated")
	opts.Operations = []string{"connectors_create"}
	m, err := metrics.NewWithOptions(reg, testBuild, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := sample(t, reg, "provisioner_requests_received_total", "kind", "credentials_updated"); got != 0 {
		t.Errorf("pre-created credentials_updated = %v, want 0", got)
	}
	m.RequestReceived("credentials_updated", false)
	if got := sample(t, reg, "provisioner_requests_received_total", "kind", "credentials_updated"); got != 1 {
		t.Errorf("credentials_updated = %v, want 1", got)
	}
	if got := len(family(t, reg, "provisioner_airbyte_request_duration_seconds").GetMetric()); got != 1 {
		t.Errorf("%d airbyte duration series, want 1 (only the listed operation)", got)
	}
	// DefaultOptions hands out fresh slices: extending one does not change the next.
	if slices.Contains(metrics.DefaultOptions().Kinds, "credentials_updated") {
		t.Error("DefaultOptions shares its slices")
	}
}

// The README's metrics section documents every provisioner_* metric, and only those.
func TestDocsListEveryMetric(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## Metrics, health and readiness\n"
	start := strings.Index(string(readme), heading)
	if start < 0 {
		t.Fatal("README has no metrics section")
	}
	doc := string(readme[start+len(heading):])
	if end := strings.Index(doc, "\n## "); end >= 0 {
		doc = doc[:end]
	}
	documented := map[string]bool{}
	for _, match := range regexp.MustCompile("`(provisioner_[a-z_]+)`").FindAllStringSubmatch(doc, -1) {
		documented[match[1]] = true
	}
	_, reg := newMetrics(t, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "provisioner_") {
			registered[name] = true
			if !documented[name] {
				t.Errorf("%s is not in the README's metrics section", name)
			}
		}
	}
	for name := range documented {
		if !registered[name] {
			t.Errorf("the README's metrics section lists %s, which is not registered", name)
		}
	}
}

// The Helm chart's Grafana dashboard charts Vault's login state, logins and token expiry.
func TestDashboardChartsVaultMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "helm", "provisioner", "dashboards", "provisioner.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs strings.Builder
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	_, reg := newMetrics(t, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	charted := 0
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "provisioner_vault_") {
			charted++
			if !strings.Contains(exprs.String(), name) {
				t.Errorf("no dashboard panel queries %s", name)
			}
		}
	}
	if charted != 3 {
		t.Fatalf("%d vault metrics registered, want 3", charted)
	}
}
