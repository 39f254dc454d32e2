package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/provisioner-dev/provisioner/internal/metrics"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

type startedServer struct {
	url    string
	reg    *prometheus.Registry
	m      *metrics.Metrics
	health *metrics.Health
	logs   *bytes.Buffer
	srv    *metrics.Server
}

func startServer(t *testing.T) *startedServer {
	t.Helper()
	m, reg := newMetrics(t, nil)
	health := metrics.NewHealth()
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := metrics.NewServer("127.0.0.1:0", reg, health, logger)
	addr, err := srv.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &startedServer{url: "http://" + addr, reg: reg, m: m, health: health, logs: logs, srv: srv}
}

func get(t *testing.T, url string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestServerHealthAndReadiness(t *testing.T) {
	s := startServer(t)
	steps := []struct {
		name       string
		act        func(h *metrics.Health)
		wantStatus int
		wantBody   string
	}{
		{"not ready before connecting", func(*metrics.Health) {}, http.StatusServiceUnavailable,
			"consumer: not bound yet\nnats: not connected yet\n"},
		{"nats connected, consumer not bound", func(h *metrics.Health) { h.Set(metrics.ConditionNATS, true, "") },
			http.StatusServiceUnavailable, "consumer: not bound yet\n"},
		{"ready", func(h *metrics.Health) { h.Set(metrics.ConditionConsumer, true, "") }, http.StatusOK, "ok\n"},
		{"nats disconnected", func(h *metrics.Health) { h.Set(metrics.ConditionNATS, false, "disconnected") },
			http.StatusServiceUnavailable, "nats: disconnected\n"},
		{"reconnected", func(h *metrics.Health) { h.Set(metrics.ConditionNATS, true, "ignored when ok") }, http.StatusOK, "ok\n"},
		{"draining", func(h *metrics.Health) { h.Set(metrics.ConditionDraining, false, "shutting down") },
			http.StatusServiceUnavailable, "draining: shutting down\n"},
		{"draining and disconnected, no reason given", func(h *metrics.Health) { h.Set(metrics.ConditionNATS, false, "") },
			http.StatusServiceUnavailable, "draining: shutting down\nnats: not ready\n"},
	}
	for _, step := range steps {
		step.act(s.health)
		status, _, body := get(t, s.url+"/readyz", nil)
		if status != step.wantStatus || body != step.wantBody {
			t.Errorf("%s: /readyz = %d %q, want %d %q", step.name, status, body, step.wantStatus, step.wantBody)
		}
		// Liveness does not depend on readiness.
		if status, _, body := get(t, s.url+"/healthz", nil); status != http.StatusOK || body != "ok\n" {
			t.Errorf("%s: /healthz = %d %q, want 200 ok", step.name, status, body)
		}
	}
}

func TestServerMetricsPrometheusText(t *testing.T) {
	s := startServer(t)
	s.m.RequestStarted("credentials_submitted")("created")

	status, header, body := get(t, s.url+"/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics = %d", status)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	for _, want := range wantFamilies {
		if _, ok := families[want.name]; !ok {
			t.Errorf("/metrics lacks %s", want.name)
		}
	}
	mf := families["provisioner_requests_finished_total"]
	var created float64
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["kind"] == "credentials_submitted" && labels["outcome"] == "created" {
			created = m.GetCounter().GetValue()
		}
	}
	if created != 1 {
		t.Errorf("scraped finished{credentials_submitted,created} = %v, want 1", created)
	}
}

// The lines an OpenMetrics 1.0 exposition may hold (metadata, samples, the final # EOF).
var (
	openMetricsMeta   = regexp.MustCompile(`^# (HELP|TYPE|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]* ?.*$`)
	openMetricsSample = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? [^ ]+( [^ ]+)?$`)
	openMetricsType   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|gaugehistogram|stateset|info|summary|unknown)$`)
)

func TestServerMetricsOpenMetrics(t *testing.T) {
	s := startServer(t)
	s.m.RequestReceived("customer_onboarded", false)

	status, header, body := get(t, s.url+"/metrics", http.Header{"Accept": {"application/openmetrics-text;version=1.0.0"}})
	if status != http.StatusOK {
		t.Fatalf("/metrics = %d", status)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type = %q, want OpenMetrics", ct)
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Fatal("exposition does not end with # EOF")
	}
	types := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(strings.TrimSuffix(body, "# EOF\n")))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if match := openMetricsType.FindStringSubmatch(line); match != nil {
			types[match[1]] = match[2]
		}
		if !openMetricsMeta.MatchString(line) && !openMetricsSample.MatchString(line) {
			t.Errorf("not an OpenMetrics line: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range wantFamilies {
		// OpenMetrics names a counter's family without its _total suffix.
		name := strings.TrimSuffix(want.name, "_total")
		if types[name] == "" {
			t.Errorf("OpenMetrics exposition lacks a TYPE for %s", name)
		}
	}
	if !strings.Contains(body, `provisioner_requests_received_total{kind="customer_onboarded"} 1`) {
		t.Error("OpenMetrics exposition lacks the counted request")
	}
}

func TestServerNeverShowsSecrets(t *testing.T) {
	s := startServer(t)
	token := secret.New("eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig")
	// Callers that wrongly pass a secret or a tenant where a label belongs: the closed lists drop it.
	s.m.RequestReceived(token.Reveal(), true)
	s.m.DeadLettered(token.Reveal())
	s.m.SecretFetched("vault", "acme-workspace")
	s.m.TokenMinted(token.Reveal())

	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		_, _, body := get(t, s.url+path, nil)
		for _, leaked := range []string{token.Reveal(), "acme-workspace"} {
			if strings.Contains(body, leaked) {
				t.Errorf("%s shows %q", path, leaked)
			}
		}
	}
	if strings.Contains(s.logs.String(), token.Reveal()) {
		t.Error("the logs show the token")
	}
}

func TestServerStartAndShutdown(t *testing.T) {
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)

	t.Run("address in use fails at Start", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		srv := metrics.NewServer(ln.Addr().String(), reg, metrics.NewHealth(), logger)
		if _, err := srv.Start(); err == nil {
			t.Fatal("Start on a busy address succeeded")
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown after a failed Start: %v", err)
		}
	})
	t.Run("malformed address fails at Start", func(t *testing.T) {
		srv := metrics.NewServer("not-an-address", reg, metrics.NewHealth(), logger)
		if _, err := srv.Start(); err == nil {
			t.Fatal("Start on a malformed address succeeded")
		}
	})
	t.Run("shutdown before start", func(t *testing.T) {
		srv := metrics.NewServer("127.0.0.1:0", reg, metrics.NewHealth(), logger)
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	})
	t.Run("start twice", func(t *testing.T) {
		srv := metrics.NewServer("127.0.0.1:0", reg, metrics.NewHealth(), logger)
		if _, err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		if _, err := srv.Start(); err == nil {
			t.Fatal("second Start succeeded")
		}
	})
	t.Run("shutdown stops serving", func(t *testing.T) {
		srv := metrics.NewServer("127.0.0.1:0", reg, metrics.NewHealth(), logger)
		addr, err := srv.Start()
		if err != nil {
			t.Fatal(err)
		}
		if status, _, _ := get(t, "http://"+addr+"/healthz", nil); status != http.StatusOK {
			t.Fatalf("/healthz = %d", status)
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		// The listener is closed, so connecting fails (or the port is already someone else's).
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			t.Errorf("served after Shutdown: %s", resp.Status)
		}
	})
	t.Run("only GET", func(t *testing.T) {
		srv := metrics.NewServer("127.0.0.1:0", reg, metrics.NewHealth(), logger)
		addr, err := srv.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
		}
	})
}
