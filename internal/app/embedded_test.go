package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// Without a NATS URL the worker starts an embedded server whose store persists across restarts.
func TestEmbeddedNATSPersists(t *testing.T) {
	_, baseURL := sandboxtest.Start(t, sandbox.Config{StrictAuth: true})
	secrets := t.TempDir()
	store := filepath.Join(t.TempDir(), "nats")
	cfg := config.Default()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSStoreDir = store
	cfg.AirbyteURL = baseURL
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secretValue(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secrets
	cfg.SecretPathPolicy = config.NoSecretPathPolicy
	cfg.MetricsAddr = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	// the first run handles a request; the second, on the same store, still has its result
	runOnce := func(publish bool) int {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan app.Endpoints, 1)
		done := make(chan error, 1)
		go func() {
			done <- app.Run(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Started: func(ep app.Endpoints) { started <- ep }})
		}()
		var ep app.Endpoints
		select {
		case ep = <-started:
		case err := <-done:
			t.Fatal(err)
		}
		if !ep.Embedded {
			t.Fatal("not embedded")
		}
		nc, err := nats.Connect(ep.NATSURL)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if publish {
			body, _ := json.Marshal(map[string]string{"id": "emb-1", "workspace_name": "acme"})
			if _, err := js.Publish(ctx, "provisioner.requests.customer.onboarded", body); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		waitFor(t, 20*time.Second, "a stored result", func() bool {
			s, err := js.Stream(ctx, "PROVISIONER_RESULTS")
			if err != nil {
				return false
			}
			info, err := s.Info(ctx)
			n = int(info.State.Msgs)
			return err == nil && n >= 1
		})
		nc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := runOnce(true); n != 1 {
		t.Fatalf("%d results", n)
	}
	if n := runOnce(false); n != 1 {
		t.Fatalf("after restart: %d results, want the 1 stored before", n)
	}
}
