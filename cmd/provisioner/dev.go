package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// demoSecrets are the file secrets dev mode seeds (made-up values).
var demoSecrets = map[string]map[string]string{
	"customers/acme/github.json":         {"token": "ghp_demo_not_a_real_token"},
	"customers/acme/github-rotated.json": {"token": "ghp_demo_rotated_not_real"},
	"customers/acme/hubspot.json":        {"client_id": "demo-client-id", "client_secret": "demo-client-secret", "refresh_token": "demo-refresh-token"},
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("provisioner dev", flag.ContinueOnError)
	devHelp.install(fs, stderr)
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "embedded NATS listen address (port 0 = any free port)")
	sandboxListen := fs.String("sandbox-listen", "127.0.0.1:8081", "Airbyte sandbox listen address")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9090", "metrics and health address")
	dir := fs.String("dir", "", "working directory for NATS data and secrets (default: a new temporary directory, removed on exit)")
	noDemo := fs.Bool("no-demo", false, "do not publish the demo batch")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	traces := fs.Bool("traces", false, "print each request's span tree when its verdict arrives (no collector needed)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: must be debug, info, warn or error, got %q", *logLevel)
	}
	logger := newLogger(stderr, "auto", *logLevel)

	work := *dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "provisioner-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	secretsDir := filepath.Join(work, "secrets")
	for rel, v := range demoSecrets {
		p := filepath.Join(secretsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}

	sb := sandbox.New(sandbox.Config{StrictAuth: true, Logger: logger.With("component", "sandbox")})
	sbCtx, stopSandbox := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSandbox()
	sandboxURL, sandboxDone, err := sb.Serve(sbCtx, *sandboxListen)
	if err != nil {
		return err // "sandbox listen: ..." names itself
	}

	cfg := config.Default()
	cfg.NATSListen = *natsListen
	cfg.NATSStoreDir = filepath.Join(work, "nats")
	cfg.AirbyteURL = sandboxURL
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secretsDir
	cfg.SecretPathPolicy = "customers/{workspace_name}/"
	cfg.MetricsAddr = *metricsAddr
	cfg.LogLevel = *logLevel
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}

	var printer []sdktrace.SpanProcessor
	if *traces {
		printer = append(printer, tracing.NewTreePrinter(stdout))
	}
	tp, stopTracing, err := startTracing(ctx, "dev", logger, printer...)
	if err != nil {
		return err
	}
	defer stopTracing()

	started := make(chan app.Endpoints, 1)
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- app.Run(ctx, cfg, app.Options{Logger: logger, Build: buildInfo(), Owner: "dev", UserAgent: "provisioner/" + version,
			TracerProvider: tp, Started: func(ep app.Endpoints) { started <- ep }})
	}()
	var ep app.Endpoints
	select {
	case ep = <-started:
	case err := <-workerDone:
		return err
	}
	fmt.Fprintf(stdout, "provisioner dev is up:\n")
	fmt.Fprintf(stdout, "  nats      %s (embedded, JetStream in %s)\n", ep.NATSURL, cfg.NATSStoreDir)
	fmt.Fprintf(stdout, "  sandbox   %s (Airbyte API emulator; client id %s)\n", sandboxURL, sandbox.DefaultClientID)
	fmt.Fprintf(stdout, "  secrets   %s (file backend; policy %s)\n", secretsDir, cfg.SecretPathPolicy)
	if ep.MetricsAddr != "" {
		fmt.Fprintf(stdout, "  metrics   http://%s/metrics  (health /healthz, /readyz)\n", ep.MetricsAddr)
	}
	fmt.Fprintf(stdout, "publish more with: %s publish credentials --nats-url %s --workspace acme --connector-type github --credentials-ref file:customers/acme/github.json\n",
		selfCommand(os.Executable, exec.LookPath), ep.NATSURL)
	fmt.Fprintf(stdout, "results as they arrive (Ctrl-C drains and exits):\n")

	nc, err := nats.Connect(ep.NATSURL, nats.Name("provisioner-dev-cli"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := app.Topology(cfg)
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		stream, err := js.Stream(followCtx, topo.ResultsStream)
		if err != nil {
			close(ready)
			followDone <- err
			return
		}
		cons, err := stream.OrderedConsumer(followCtx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			close(ready)
			followDone <- err
			return
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { printResult(stdout, m.Data(), false) })
		close(ready)
		if err != nil {
			followDone <- err
			return
		}
		<-followCtx.Done()
		cc.Stop()
		followDone <- nil
	}()
	<-ready

	if !*noDemo {
		demo, err := client.New(nc, client.WithSubjectPrefix(cfg.SubjectPrefix), client.WithRequestsStream(cfg.RequestsStream),
			client.WithResultsStream(cfg.ResultsStream), client.WithTracerProvider(tp))
		if err != nil {
			return err
		}
		if err := publishDemo(ctx, js, demo, topo.RequestSubject, tp); err != nil && ctx.Err() == nil {
			return err
		}
	}

	err = <-workerDone // returns after ctx ends and the worker drained
	stopFollow()
	<-followDone
	stopSandbox()
	<-sandboxDone
	if err == nil {
		fmt.Fprintln(stdout, "drained; bye")
	}
	return err
}

var devHelp = help{
	usage: []string{"provisioner dev [flags]"},
	about: "Run everything in one process: an embedded NATS server, the Airbyte sandbox, seeded file secrets\n" +
		"(policy customers/{workspace_name}/), the worker and its metrics. Publishes a demo batch, prints every\n" +
		"result once as it arrives, and drains on Ctrl-C. Worker log lines of each verdict are at --log-level debug.",
}

// selfCommand is how a person runs this program again from a shell: its name when that is what PATH
// finds, "go run ./cmd/provisioner" when it was built by go run (a temporary binary nobody can
// name), else its absolute path.
func selfCommand(executable func() (string, error), lookPath func(string) (string, error)) string {
	const goRun = "go run ./cmd/provisioner"
	exe, err := executable()
	if err != nil {
		return goRun
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	if strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return goRun
	}
	name := filepath.Base(exe)
	if found, err := lookPath(name); err == nil {
		if resolved, err := filepath.EvalSymlinks(found); err == nil && resolved == exe {
			return name
		}
	}
	return exe
}

// publishDemo publishes the demo batch: a customer onboarded, credentials for two connector types,
// and one request whose secret is missing; then, once the two connectors exist, a rotation of the
// GitHub credentials (the connector is replaced by one holding the new secret) and a disconnect of
// HubSpot.
func publishDemo(ctx context.Context, js jetstream.JetStream, c *client.Client, subject func(string) string, tp trace.TracerProvider) error {
	run := uuid.NewString()[:8]
	now := time.Now().UTC().Format(time.RFC3339)
	batch := []struct {
		suffix string
		body   map[string]any
	}{
		{"customer.onboarded", map[string]any{"id": "demo-" + run + "-onboard", "workspace_name": "acme", "occurred_at": now}},
		{"credentials.submitted", map[string]any{"id": "demo-" + run + "-github", "workspace_name": "acme", "connector_type": "github", "name": "GitHub",
			"credentials_ref": "file:customers/acme/github.json", "replication_config": map[string]any{"repositories": []string{"acme/app"}}, "occurred_at": now}},
		{"credentials.submitted", map[string]any{"id": "demo-" + run + "-hubspot", "workspace_name": "acme", "connector_type": "hubspot", "name": "HubSpot",
			"credentials_ref": "file:customers/acme/hubspot.json", "occurred_at": now}},
		{"credentials.submitted", map[string]any{"id": "demo-" + run + "-missing", "workspace_name": "acme", "connector_type": "stripe", "name": "Stripe",
			"credentials_ref": "file:customers/acme/stripe.json", "occurred_at": now}},
	}
	for _, b := range batch {
		data, _ := json.Marshal(b.body)
		msg := &nats.Msg{Subject: subject(b.suffix), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, b.body["id"].(string))
		pubCtx, span := tracing.StartPublish(ctx, tp, msg, "")
		_, err := js.PublishMsg(pubCtx, msg)
		span.End(err, "")
		if err != nil {
			return fmt.Errorf("publish demo: %w", err)
		}
	}
	// the rest of the connectors' life, once they exist
	for _, id := range []string{"demo-" + run + "-github", "demo-" + run + "-hubspot"} {
		if _, err := c.Await(ctx, id); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	for _, req := range []contract.Request{
		&contract.CredentialsSubmitted{ID: "demo-" + run + "-rotate-github", WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub",
			CredentialsRef: "file:customers/acme/github-rotated.json", ReplicationConfig: json.RawMessage(`{"repositories":["acme/app"]}`)},
		&contract.ConnectorDisconnected{ID: "demo-" + run + "-disconnect-hubspot", WorkspaceName: "acme", ConnectorType: "hubspot", Name: "HubSpot"},
	} {
		if _, err := c.Submit(ctx, req); err != nil {
			return fmt.Errorf("publish demo: %w", err)
		}
	}
	return nil
}
