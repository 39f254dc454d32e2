package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// The package's tests and examples share one environment that TestMain starts: a real NATS server
// with JetStream over TCP, the Airbyte sandbox over HTTP, file secrets, and a provisioner worker.
var (
	natsURL    string         // where the examples' app connects
	natsServer *server.Server // asked how many subscriptions and consumers are left
	secretsDir string         // the worker's file secrets; credentials_ref "file:<workspace>/<file>"
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "provisioner-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stop, err := startEnvironment(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		return 1
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		return 1
	}
	return code
}

func startEnvironment(dir string) (stop func() error, err error) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "nats"), NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats server did not start")
	}
	natsServer, natsURL = ns, ns.ClientURL()

	sb := sandbox.New(sandbox.Config{StrictAuth: true, Logger: slog.New(slog.DiscardHandler)})
	sctx, stopSandbox := context.WithCancel(context.Background())
	base, sandboxDone, err := sb.Serve(sctx, "127.0.0.1:0")
	if err != nil {
		stopSandbox()
		ns.Shutdown()
		return nil, err
	}

	secretsDir = filepath.Join(dir, "secrets")
	writeSecret("acme", "github.json")
	cfg := config.Default()
	cfg.NATSURL = natsURL
	cfg.AirbyteURL = base
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secretsDir
	cfg.SecretPathPolicy = "{workspace_name}/"
	cfg.MetricsAddr = ""
	cfg.AckWait = 5 * time.Second
	cfg.AirbyteTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		stopSandbox()
		ns.Shutdown()
		return nil, err
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	started, workerDone := make(chan struct{}), make(chan error, 1)
	go func() {
		workerDone <- app.Run(wctx, cfg, app.Options{
			Logger:  slog.New(slog.DiscardHandler),
			Started: func(app.Endpoints) { close(started) },
		})
	}()
	stopAll := func() error {
		stopWorker()
		werr := <-workerDone
		stopSandbox()
		serr := <-sandboxDone
		ns.Shutdown()
		ns.WaitForShutdown()
		if werr != nil {
			return fmt.Errorf("worker: %w", werr)
		}
		return serr
	}
	select {
	case <-started:
		return stopAll, nil
	case err := <-workerDone:
		workerDone <- err
		_ = stopAll()
		return nil, fmt.Errorf("worker did not start: %w", err)
	case <-time.After(60 * time.Second):
		_ = stopAll()
		return nil, fmt.Errorf("worker did not start")
	}
}

// writeSecret stores a GitHub token as the file secret <workspace>/<name>.
func writeSecret(workspace, name string) {
	p := filepath.Join(secretsDir, workspace, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]string{"token": "ghp_client_test_" + workspace})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		panic(err)
	}
}
