package client_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// On a 3-node cluster with R3 streams: the app on another node than the worker's hears its verdict,
// and a verdict stored before the results stream's leader went down is found from another node.
func TestAwaitOnACluster(t *testing.T) {
	cluster := natsclustertest.StartInProcess(t, 3)
	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "acme"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "acme", "github.json"), []byte(`{"token":"ghp_cluster"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := sandboxtest.Start(t, sandbox.Config{StrictAuth: true, Logger: slog.New(slog.DiscardHandler)})
	cfg := config.Default()
	cfg.NATSURL = cluster.URL()
	cfg.StreamReplicas = 3
	cfg.AirbyteURL = base
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secrets
	cfg.SecretPathPolicy = "{workspace_name}/"
	cfg.MetricsAddr = ""
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- app.Run(wctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Started: func(app.Endpoints) { close(started) }})
	}()
	t.Cleanup(func() {
		stopWorker()
		<-done // the worker may see the node it used go away: its exit error is not this test's subject
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not start")
	}

	// the app's connection is to one node only
	appConn := func(node int) *client.Client {
		nc, err := nats.Connect(cluster.Nodes[node].URL(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		c, err := client.New(nc, client.WithRecheckInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := deadline(t, 90*time.Second)
	req := &contract.CredentialsSubmitted{ID: "cluster-1", WorkspaceName: "acme", ConnectorType: "github", CredentialsRef: "file:acme/github.json"}
	res, err := appConn(2).SubmitAndAwait(ctx, req)
	if err != nil || res.Message != contract.MessageSourceCreated {
		t.Fatalf("verdict %+v, %v", res, err)
	}

	// a verdict stored before the results stream's leader went down is found from another node
	_, js := cluster.Connect(t)
	leader, err := natsclustertest.StreamLeader(ctx, js, contract.DefaultResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	down := cluster.Index(leader)
	cluster.Shutdown(down)
	t.Cleanup(func() { cluster.Start(down) })
	res, err = appConn((down+1)%len(cluster.Nodes)).Await(ctx, req.ID)
	if err != nil || res.Message != contract.MessageSourceCreated || res.RequestID != req.ID {
		t.Fatalf("verdict after the results leader %s went down: %+v, %v", leader, res, err)
	}
}

// A results stream that does not exist ends Await at once, not at its deadline.
func TestAwaitWithoutTheStreamFailsFast(t *testing.T) {
	c, _, _ := connect(t, client.WithResultsStream("NO_SUCH_RESULTS"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.Await(ctx, "t-no-stream")
	if err == nil || errors.Is(err, client.ErrTimeout) || ctx.Err() != nil {
		t.Fatalf("error %v after %s; want an immediate error", err, time.Since(start))
	}
}
