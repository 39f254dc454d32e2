package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/bench"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// workerEnv, when set, turns the test binary into a `provisioner run` worker: the subprocess mode
// of the benchmark runs this binary, configured through PROVISIONER_* variables as it would run
// the real one.
const workerEnv = "BENCH_TEST_RUN_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(runWorker())
	}
	os.Exit(m.Run())
}

func runWorker() int {
	cfg := config.Default()
	fs := cfg.FlagSet("worker")
	if err := cfg.Parse(fs, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := app.Run(ctx, cfg, app.Options{Logger: logger}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A tiny run of every part, so that the benchmark cannot rot. It checks what was counted, never
// how fast.
func TestRunSmoke(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(workerEnv, "1") // read by the worker subprocesses only; this process is past TestMain
	for _, tc := range []struct {
		name   string
		cfg    bench.Config
		mode   string
		rssFor string
	}{
		{"in-process replicas", bench.Config{Requests: 50, Workspaces: 5, Replicas: 2, Concurrency: 4}, "in-process", "this process"},
		{"replicas as processes", bench.Config{Requests: 30, Workspaces: 3, Replicas: 2, Concurrency: 4, Binary: exe, SkipFloor: true}, "processes", "largest worker"},
		{"lookup always with latency", bench.Config{Requests: 20, Workspaces: 2, Replicas: 1, Concurrency: 8, Latency: time.Millisecond, Lookup: "always", SkipAwait: true}, "in-process", "this process"},
		{"rotate", bench.Config{Scenario: bench.ScenarioRotate, Requests: 30, Workspaces: 3, Replicas: 2, Concurrency: 4}, "in-process", "this process"},
		{"rotate embedded", bench.Config{Scenario: bench.ScenarioRotate, Embedded: true, Requests: 30, Workspaces: 3, Replicas: 2, Concurrency: 4, SkipAwait: true}, "in-process", "this process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logw := &syncWriter{w: &logs}
			tc.cfg.Dir = t.TempDir()
			tc.cfg.Timeout = time.Minute
			rep, err := bench.Run(t.Context(), tc.cfg, slog.New(slog.NewTextHandler(logw, nil)))
			if err != nil {
				t.Fatalf("%v\nlogs:\n%s", err, logs.String())
			}
			n := tc.cfg.Requests
			if tc.cfg.Scenario == bench.ScenarioRotate {
				checkRotate(t, rep)
				return
			}
			if rep.Connectors != n || rep.Errors != 0 || rep.Created != int64(n) {
				t.Errorf("connectors %d, errors %d, created at the sandbox %d; want %d, 0, %d", rep.Connectors, rep.Errors, rep.Created, n, n)
			}
			if rep.Mode != tc.mode || !strings.HasPrefix(rep.RSSScope, tc.rssFor) {
				t.Errorf("mode %q, rss scope %q", rep.Mode, rep.RSSScope)
			}
			if got := rep.APICallsPerConnector[sandbox.OpConnectorsCreate]; got != 1 {
				t.Errorf("creates per connector %v, want 1 (exactly one connector per request)", got)
			}
			// each replica mints at most one scoped token per workspace and one application token
			if s, a := rep.TokenMints["scoped"], rep.TokenMints["application"]; s < int64(tc.cfg.Workspaces) || s > int64(tc.cfg.Replicas*tc.cfg.Workspaces) || a < 1 || a > int64(tc.cfg.Replicas) {
				t.Errorf("token mints %v for %d workspaces and %d replicas", rep.TokenMints, tc.cfg.Workspaces, tc.cfg.Replicas)
			}
			if tc.cfg.Lookup == "always" && rep.APICallsPerConnector[sandbox.OpConnectorsList] != 1 {
				t.Errorf("lists per connector %v under lookup=always, want 1", rep.APICallsPerConnector[sandbox.OpConnectorsList])
			}
			if rep.ThroughputPerS <= 0 || rep.P50Ms <= 0 || rep.P99Ms < rep.P50Ms || rep.CPUSPer1k <= 0 || rep.PeakRSSMiB <= 0 {
				t.Errorf("measures missing: %+v", rep)
			}
			if (tc.cfg.Latency > 0) != (rep.BoundPerS > 0) {
				t.Errorf("bound %v with latency %s", rep.BoundPerS, tc.cfg.Latency)
			}
			if !tc.cfg.SkipFloor && (rep.FloorPerS <= 0 || rep.RatioToFloor <= 0 || rep.FloorErrors != 0) {
				t.Errorf("floor %v/s, ratio %v, errors %d", rep.FloorPerS, rep.RatioToFloor, rep.FloorErrors)
			}
			if !tc.cfg.SkipAwait && (rep.AwaitStoredPerS <= 0 || rep.AwaitStoredP99Ms < rep.AwaitStoredP50Ms || rep.AwaitPerS <= 0 || rep.AwaitP50Ms <= 0 || rep.AwaitP99Ms < rep.AwaitP50Ms) {
				t.Errorf("await path not measured: %+v", rep)
			}
			if !tc.cfg.SkipAwait && !tc.cfg.SkipFloor && rep.AwaitRatioToFloor <= 0 {
				t.Errorf("await ratio to floor %v", rep.AwaitRatioToFloor)
			}
			logw.mu.Lock()
			defer logw.mu.Unlock()
			checkOutput(t, rep, logs.String())
		})
	}
}

// checkRotate checks what a rotate run counted: every request an update, of an Agent Engine
// connector by replace (one create and one delete at the sandbox) or of an embedded source by one
// PUT, and the floor making the same raw calls.
func checkRotate(t *testing.T, rep *bench.Report) {
	t.Helper()
	n := rep.Requests
	replaced, ops := int64(n), []string{sandbox.OpConnectorsCreate, sandbox.OpConnectorsDelete}
	if rep.Embedded {
		replaced, ops = 0, []string{sandbox.OpSourcesUpdate}
		if got := rep.APICallsPerUpdate[sandbox.OpConnectorsCreate] + rep.APICallsPerUpdate[sandbox.OpConnectorsDelete]; got != 0 {
			t.Errorf("an embedded source's rotation made %v creates and deletes per update, want 0: %v", got, rep.APICallsPerUpdate)
		}
	}
	if rep.Updates != n || rep.Connectors != 0 || rep.Errors != 0 || rep.Created != replaced || rep.Deleted != replaced {
		t.Errorf("updates %d, connectors %d, errors %d, created %d, deleted %d at the sandbox; want %d, 0, 0, %d, %d",
			rep.Updates, rep.Connectors, rep.Errors, rep.Created, rep.Deleted, n, replaced, replaced)
	}
	for _, op := range ops {
		if got := rep.APICallsPerUpdate[op]; got != 1 {
			t.Errorf("%s per update %v, want 1", op, got)
		}
		if got := rep.FloorAPICallsPerRequest[op]; got != 1 {
			t.Errorf("the floor's %s per update %v, want 1", op, got)
		}
	}
	if got := rep.APICallsPerConnector[sandbox.OpConnectorsCreate]; got != 1 {
		t.Errorf("creates per connector in the setup %v, want 1", got)
	}
	if rep.APICallsPerUpdateTotal < float64(len(ops)) || rep.APICallsPerUpdateRatioToFloor < 1 || rep.ThroughputPerS <= 0 || rep.FloorPerS <= 0 || rep.FloorErrors != 0 {
		t.Errorf("measures missing: %+v", rep)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario rotate", "updates/s", "airbyte calls/update", "floor calls/request"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report without %q:\n%s", want, text.String())
		}
	}
	checkOutput(t, rep, "")
}

// checkOutput checks the JSON keys the issue promises and that no secret reaches any output.
func checkOutput(t *testing.T, rep *bench.Report, logs string) {
	t.Helper()
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"throughput_per_s", "p50_ms", "p99_ms", "api_calls_per_connector", "token_mints", "cpu_s_per_1k", "peak_rss_mib",
		"requests", "workspaces", "replicas", "concurrency", "inflight", "latency_ms", "lookup", "mode"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON report without %q: %s", k, js)
		}
	}
	if rep.AwaitPerS > 0 {
		for _, k := range []string{"await_stored_per_s", "await_per_s", "await_p50_ms", "await_p99_ms"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("JSON report without %q: %s", k, js)
			}
		}
	}
	if rep.FloorPerS > 0 {
		for _, k := range []string{"floor_per_s", "ratio_to_floor"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("JSON report without %q: %s", k, js)
			}
		}
	}
	for _, out := range []string{text.String(), string(js), logs} {
		for _, s := range []string{bench.Credential, bench.RotatedCredential, bench.FloorCredential, bench.FloorRotatedCredential, sandbox.DefaultClientSecret, "eyJ"} {
			if strings.Contains(out, s) {
				t.Errorf("output holds a secret (%.6s...):\n%s", s, out)
			}
		}
	}
}

// syncWriter serialises writes from replicas, the sandbox and the driver.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestConfigValidate(t *testing.T) {
	good := bench.Config{Requests: 1, Workspaces: 1, Replicas: 1, Concurrency: 1}
	for _, tc := range []struct {
		name   string
		mutate func(*bench.Config)
		want   string // "" = valid
	}{
		{"minimal", func(*bench.Config) {}, ""},
		{"no requests", func(c *bench.Config) { c.Requests = 0 }, "requests"},
		{"no workspaces", func(c *bench.Config) { c.Workspaces = 0 }, "workspaces"},
		{"too many replicas", func(c *bench.Config) { c.Replicas = 65 }, "replicas"},
		{"no concurrency", func(c *bench.Config) { c.Concurrency = 0 }, "concurrency"},
		{"negative inflight", func(c *bench.Config) { c.InFlight = -1 }, "inflight"},
		{"negative latency", func(c *bench.Config) { c.Latency = -time.Millisecond }, "latency"},
		{"unknown lookup", func(c *bench.Config) { c.Lookup = "sometimes" }, "lookup"},
		{"rotate", func(c *bench.Config) { c.Scenario = bench.ScenarioRotate }, ""},
		{"unknown scenario", func(c *bench.Config) { c.Scenario = "delete" }, "scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			case tc.want != "" && len(strings.Split(err.Error(), "\n")) != 1:
				t.Fatalf("error %q, want the setting at fault named once", err)
			}
		})
	}
}
