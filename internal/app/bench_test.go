package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// discardSpans is an exporter that drops every span.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing measures a worker end to end — real NATS, the sandbox over HTTP, a file secret,
// the ledger — with tracing off (no provider: the default) and on (every span recorded, always
// sampled, batched to an exporter that drops them). One op is one credentials request answered,
// at concurrency 16; run with a fixed count, e.g. -benchtime 2000x.
func BenchmarkTracing(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			var tp trace.TracerProvider
			if mode == "on" {
				p := tracing.NewProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardSpans{}))
				b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
				tp = p
			}
			benchWorker(b, tp)
		})
	}
}

func benchWorker(b *testing.B, tp trace.TracerProvider) {
	srv := natsembedtest.Start(b)
	nc, js := srv.Connect(b)
	_, sandboxURL := sandboxtest.Start(b, sandbox.Config{})
	secrets := b.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "acme"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "acme", "github.json"), []byte(`{"token":"t-bench"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.NATSURL, cfg.AirbyteURL, cfg.SecretsDir = srv.URL, sandboxURL, secrets
	cfg.AirbyteClientID, cfg.AirbyteClientSecret = sandbox.DefaultClientID, secretValue(sandbox.DefaultClientSecret)
	cfg.MetricsAddr, cfg.Concurrency, cfg.LogLevel = "", 16, "warn"
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	if _, err := consumer.Setup(context.Background(), js, app.Topology(cfg), consumer.ConsumerPolicy{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending}); err != nil {
		b.Fatal(err)
	}
	var answered atomic.Int64
	all := make(chan struct{})
	sub, err := nc.Subscribe("provisioner.results.>", func(*nats.Msg) {
		if answered.Add(1) == int64(b.N) {
			close(all)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), TracerProvider: tp, Started: func(app.Endpoints) { close(started) }})
	}()
	select {
	case <-started:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() { cancel(); <-done }()

	bodies := make([][]byte, b.N)
	for i := range bodies {
		req := credentialsRequest(fmt.Sprintf("bench-%d", i), "acme", "github", "file:acme/github.json")
		req["name"] = fmt.Sprintf("gh-%d", i)
		bodies[i], _ = json.Marshal(req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for _, body := range bodies {
		if _, err := js.PublishAsync("provisioner.requests.credentials.submitted", body); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d answered", answered.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "req/s")
}
