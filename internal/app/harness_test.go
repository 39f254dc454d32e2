package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/schemas"
)

// env is one end-to-end environment: a real NATS server, the sandbox over HTTP, a secrets directory.
type env struct {
	t        *testing.T
	nats     *natsembedtest.Server
	natsURL  string // the server's, or a cluster's URLs
	streamR  int    // stream and bucket replicas; 0 = 1
	nc       *nats.Conn
	js       jetstream.JetStream
	sandbox  *sandbox.Server
	baseURL  string
	secrets  string
	logs     *syncBuffer
	schemas  *schemas.Set
	replicas []*replica
	tracer   trace.TracerProvider // given to every replica started after it is set; nil = off
}

type replica struct {
	cancel   context.CancelFunc
	done     chan error
	registry *prometheus.Registry
	metrics  string
}

// syncBuffer collects every log line of every replica, for leak scans.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts NATS and a sandbox in strict-auth mode: the provisioner's own traffic must carry
// the token Airbyte documents for each operation.
func newEnv(t *testing.T, sb sandbox.Config) *env {
	t.Helper()
	sb.StrictAuth = true
	e := &env{t: t, nats: natsembedtest.Start(t), secrets: t.TempDir(), logs: &syncBuffer{}}
	e.natsURL = e.nats.URL
	e.sandbox, e.baseURL = sandboxtest.Start(t, sb)
	e.nc, e.js = e.nats.Connect(t)
	e.setupStreams()
	return e
}

// setupStreams creates the streams and the consumer before any worker starts, so tests can queue a
// backlog first, and compiles the schemas.
func (e *env) setupStreams() {
	t := e.t
	// the streams exist before any worker starts, so tests can queue a backlog first
	cfg := e.config()
	if _, err := consumer.Setup(context.Background(), e.js, app.Topology(cfg), consumer.ConsumerPolicy{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending}); err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	e.schemas = set
}

// writeSecret writes a file secret under the secrets directory.
func (e *env) writeSecret(rel string, v any) {
	e.t.Helper()
	p := filepath.Join(e.secrets, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) config() config.Config {
	cfg := config.Default()
	cfg.NATSURL = e.natsURL
	cfg.StreamReplicas = max(e.streamR, 1)
	cfg.AirbyteURL = e.baseURL
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secretValue(sandbox.DefaultClientSecret)
	cfg.SecretsDir = e.secrets
	cfg.SecretPathPolicy = config.NoSecretPathPolicy // tests that need isolation set a policy
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Concurrency = 8
	cfg.AckWait = 5 * time.Second
	cfg.AirbyteTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogLevel = "debug"
	return cfg
}

// start runs a worker replica and waits until it is consuming.
func (e *env) start(mutate func(*config.Config)) *replica {
	e.t.Helper()
	cfg := e.config()
	if mutate != nil {
		mutate(&cfg)
		// a test that changes the delivery policy deploys it over the env's consumer on purpose
		cfg.ReconcileStreams = cfg.ManageStreams
	}
	if err := cfg.Validate(); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan error, 1), registry: prometheus.NewRegistry()}
	started := make(chan app.Endpoints, 1)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		r.done <- app.Run(ctx, cfg, app.Options{Logger: logger, Registry: r.registry, TracerProvider: e.tracer, Started: func(ep app.Endpoints) { started <- ep }})
	}()
	select {
	case ep := <-started:
		r.metrics = ep.MetricsAddr
	case err := <-r.done:
		e.t.Fatalf("worker failed to start: %v", err)
	case <-time.After(30 * time.Second):
		e.t.Fatal("worker did not start")
	}
	e.replicas = append(e.replicas, r)
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("worker exited with %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Error("worker did not stop")
	}
}

// publish publishes a request body to a request subject suffix.
func (e *env) publish(suffix string, body any) {
	e.t.Helper()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		data, _ = json.Marshal(b)
	}
	if _, err := e.js.Publish(context.Background(), "provisioner.requests."+suffix, data); err != nil {
		e.t.Fatal(err)
	}
}

// results waits until n results are in the results stream (or the deadline passes) and returns
// them, each validated against its schema.
func (e *env) results(n int, timeout time.Duration) []contract.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var msgs []jetstream.RawStreamMsg
	for {
		s, err := e.js.Stream(ctx, "PROVISIONER_RESULTS")
		if err == nil {
			info, err := s.Info(ctx)
			if err == nil && int(info.State.Msgs) >= n {
				msgs = msgs[:0]
				for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
					m, err := s.GetMsg(ctx, seq)
					if err == nil {
						msgs = append(msgs, *m)
					}
				}
				break
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("waited %s for %d results", timeout, n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	var out []contract.Result
	for _, m := range msgs {
		var r contract.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			e.t.Fatalf("result is not JSON: %v", err)
		}
		name, ok := schemas.ResultSchema(r.Message)
		if !ok {
			e.t.Fatalf("result message %q has no schema", r.Message)
		}
		if err := e.schemas.ValidateJSON(name, m.Data); err != nil {
			e.t.Fatalf("result breaks its schema: %v\n%s", err, m.Data)
		}
		if got, want := m.Header.Get(jetstream.MsgIDHeader), r.MsgID(); got != want || r.Revision < 1 {
			e.t.Fatalf("Nats-Msg-Id %q, want %q (revision %d)", got, want, r.Revision)
		}
		for _, h := range []string{"ce-specversion", "ce-type", "ce-source", "ce-id", "ce-time", "traceparent"} {
			if m.Header.Get(h) == "" {
				e.t.Fatalf("result without header %s", h)
			}
		}
		out = append(out, r)
	}
	return out
}

// byRequest indexes results by request id, keeping the highest revision (the consumers' rule), and
// failing on a second result of one revision for one request.
func (e *env) byRequest(rs []contract.Result) map[string]contract.Result {
	e.t.Helper()
	m := map[string]contract.Result{}
	for _, r := range rs {
		if prev, dup := m[r.RequestID]; dup {
			if prev.Revision == r.Revision {
				e.t.Fatalf("two results of revision %d for request %s: %s and %s", r.Revision, r.RequestID, prev.Message, r.Message)
			}
			if prev.Revision > r.Revision {
				continue
			}
		}
		m[r.RequestID] = r
	}
	return m
}

// streamCount returns the number of messages in a stream.
func (e *env) streamCount(name string) int {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(info.State.Msgs)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func credentialsRequest(id, workspace, connectorType, ref string) map[string]any {
	return map[string]any{"id": id, "workspace_name": workspace, "connector_type": connectorType, "credentials_ref": ref, "occurred_at": "2026-11-21T10:00:00Z"}
}
