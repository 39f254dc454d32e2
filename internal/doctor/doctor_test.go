package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/doctor"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

const (
	workerPassword = "worker-pw-doctor-test"
	appPassword    = "app-pw-doctor-test"
)

// startNATSWithShippedPermissions runs a real nats-server whose only users are the ones
// deploy/nats/provisioner.conf defines.
func startNATSWithShippedPermissions(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	shipped, err := os.ReadFile("../../deploy/nats/provisioner.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "provisioner.conf"), shipped, 0o600); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf("host: 127.0.0.1\nport: -1\njetstream { store_dir: %q }\ninclude ./provisioner.conf\n", filepath.Join(dir, "js"))
	if err := os.WriteFile(filepath.Join(dir, "main.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISIONER_NATS_PASSWORD", workerPassword)
	t.Setenv("PROVISIONER_APP_NATS_PASSWORD", appPassword)
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/provisioner.conf does not load: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.ClientURL()
}

func workerConfig(t *testing.T, natsURL, airbyteURL string) config.Config {
	t.Helper()
	secrets := t.TempDir()
	p := filepath.Join(secrets, "customers", "acme", "github.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"token":"ghp_doctor_test"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.NATSURL = natsURL
	cfg.NATSUser = "provisioner"
	cfg.NATSPassword = secret.New(workerPassword)
	cfg.AirbyteURL = airbyteURL
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secrets
	cfg.SecretPathPolicy = "customers/{workspace_name}/"
	cfg.MetricsAddr = ""
	cfg.AckWait = 5 * time.Second
	cfg.AirbyteTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The permissions shipped in deploy/nats are enough for a worker to do its whole job, and doctor
// finds nothing wrong with them; a user without them fails doctor's permission checks.
func TestShippedNATSPermissions(t *testing.T) {
	natsURL := startNATSWithShippedPermissions(t)
	_, airbyteURL := sandboxtest.Start(t, sandbox.Config{})
	cfg := workerConfig(t, natsURL, airbyteURL)

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan app.Endpoints, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Owner: "doctor-test", Started: func(ep app.Endpoints) { started <- ep }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the worker did not start with the shipped permissions: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not start")
	}

	// the app, as the app user: publish a request, read its result
	nc, err := nats.Connect(natsURL, nats.UserInfo("app", appPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	app, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := app.SubmitJSON(ctx, contract.KindCredentialsSubmitted, []byte(`{"id":"perm-1","workspace_name":"acme","connector_type":"github","credentials_ref":"file:customers/acme/github.json"}`))
	if err != nil {
		t.Fatalf("the app may not submit a request: %v", err)
	}
	awaitCtx, stopAwait := context.WithTimeout(ctx, 30*time.Second)
	result, err := app.Await(awaitCtx, sub.RequestID)
	stopAwait()
	if err != nil {
		t.Fatalf("the app may not await its verdict: %v", err)
	}
	if result.Message != contract.MessageSourceCreated || result.RequestID != "perm-1" {
		t.Fatalf("result %+v", result)
	}

	t.Run("doctor finds the worker's permissions complete", func(t *testing.T) {
		rep := doctor.Run(context.Background(), cfg, doctor.Options{Timeout: 3 * time.Second})
		var out bytes.Buffer
		rep.Write(&out)
		if !rep.OK() {
			t.Fatalf("doctor failed:\n%s", out.String())
		}
		for _, want := range []string{"permission to publish results", "permission to publish dead letters", "permission to write the ledger", "permission to pull requests", "permission to read the ledger"} {
			if !strings.Contains(out.String(), "ok    "+want+":") {
				t.Errorf("no ok line for %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("doctor names what the app user may not do", func(t *testing.T) {
		appCfg := cfg
		appCfg.NATSUser, appCfg.NATSPassword = "app", secret.New(appPassword)
		rep := doctor.Run(context.Background(), appCfg, doctor.Options{Timeout: 2 * time.Second})
		var out bytes.Buffer
		rep.Write(&out)
		if rep.OK() {
			t.Fatalf("doctor passed a user without the worker's permissions:\n%s", out.String())
		}
		for _, want := range []string{
			`FAIL  permission to publish dead letters: permission denied for publish to "provisioner.dlq.credentials.submitted" — allow the worker's user to publish to provisioner.dlq.credentials.submitted`,
			`FAIL  permission to write the ledger: permission denied for publish to "$KV.provisioner_ledger.doctor"`,
			`FAIL  permission to pull requests: permission denied for publish to "$JS.API.CONSUMER.MSG.NEXT.PROVISIONER_REQUESTS.provisioner"`,
			"allow the worker's user to publish to provisioner.results.source_created.doctor-probe",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("doctor output lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), appPassword) {
			t.Fatal("doctor printed the password")
		}
	})
}
