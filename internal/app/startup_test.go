package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// A worker that connects while JetStream is not available yet (a server restarting, a leader being
// elected) waits for it instead of exiting.
func TestStartupWaitsForJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	_, baseURL := sandboxtest.Start(t, sandbox.Config{StrictAuth: true})
	cfg := config.Default()
	cfg.NATSURL = srv.ClientURL()
	cfg.AirbyteURL = baseURL
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secretValue(sandbox.DefaultClientSecret)
	cfg.SecretsDir = t.TempDir()
	cfg.MetricsAddr = ""

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan app.Endpoints, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Started: func(ep app.Endpoints) { started <- ep }})
	}()
	waitFor(t, 30*time.Second, "the worker to wait for JetStream", func() bool { return strings.Contains(logs.String(), "jetstream not ready; retrying") })
	select {
	case err := <-done:
		t.Fatalf("worker exited while JetStream was off: %v", err)
	default:
	}
	if err := srv.EnableJetStream(&server.JetStreamConfig{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("worker exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not start once JetStream was on")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
