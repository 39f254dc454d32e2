package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// startWorker runs a worker against a real NATS server and the sandbox, with file secrets in a
// temporary directory, and points the commands at it through PROVISIONER_NATS_URL.
func startWorker(t *testing.T) (secretsDir string, js jetstream.JetStream) {
	t.Helper()
	srv := natsembedtest.Start(t)
	_, js = srv.Connect(t)
	_, base := sandboxtest.Start(t, sandbox.Config{StrictAuth: true, Logger: slog.New(slog.DiscardHandler)})
	secretsDir = t.TempDir()
	cfg := config.Default()
	cfg.NATSURL = srv.URL
	cfg.AirbyteURL = base
	cfg.AirbyteClientID = sandbox.DefaultClientID
	cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	cfg.SecretsDir = secretsDir
	cfg.SecretPathPolicy = config.NoSecretPathPolicy
	cfg.MetricsAddr = ""
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Started: func(app.Endpoints) { close(started) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("worker did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not start")
	}
	t.Setenv("PROVISIONER_NATS_URL", srv.URL)
	return secretsDir, js
}

func TestPublishWaitAndResultsID(t *testing.T) {
	secrets, js := startWorker(t)
	if err := os.MkdirAll(filepath.Join(secrets, "acme"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "acme", "github.json"), []byte(`{"token":"ghp_cli_wait"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cmd := func(args ...string) (int, string, string) {
		var stdout, stderr lockedBuffer
		code := dispatch(ctx, args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
	}{
		{"success verdict", []string{"publish", "credentials", "--id", "wait-ok", "--workspace", "acme", "--connector-type", "github", "--credentials-ref", "file:acme/github.json", "--wait"},
			exitOK, []string{"published request wait-ok", "source_created", "request=wait-ok"}},
		{"error verdict", []string{"publish", "credentials", "--id", "wait-err", "--workspace", "acme", "--connector-type", "hubspot", "--credentials-ref", "file:acme/hubspot.json", "--wait"},
			exitFailed, []string{"source_create_error", "code=secret_not_found"}},
		{"bad input", []string{"publish", "credentials", "--id", "wait-bad", "--workspace", "acme", "--wait"},
			exitUsage, nil},
		{"onboarded as JSON", []string{"publish", "onboarded", "--id", "wait-json", "--workspace", "acme", "--wait", "--json"},
			exitOK, []string{`"message":"workspace_ready"`, `"request_id":"wait-json"`}},
		{"a rotation, checked", []string{"publish", "credentials", "--id", "wait-rotate", "--workspace", "acme", "--connector-type", "github", "--credentials-ref", "file:acme/github.json", "--check", "--wait"},
			exitOK, []string{"source_updated", "request=wait-rotate"}},
		{"a disconnect", []string{"publish", "disconnected", "--id", "wait-disconnect", "--workspace", "acme", "--connector-type", "github", "--wait", "--json"},
			exitOK, []string{`"message":"source_deleted"`, `"already_absent":false`}},
		{"an offboarding", []string{"publish", "offboarded", "--id", "wait-offboard", "--workspace", "acme", "--workspace-action", "deactivate", "--wait", "--json"},
			exitOK, []string{`"message":"workspace_offboarded"`, `"workspace":"deactivated"`}},
		{"results --id of a past verdict", []string{"results", "--id", "wait-ok"},
			exitOK, []string{"source_created", "request=wait-ok"}},
		{"results --id of an error verdict", []string{"results", "--id", "wait-err", "--json"},
			exitFailed, []string{`"code":"secret_not_found"`}},
		{"results --id times out", []string{"results", "--id", "wait-never", "--timeout", "300ms"},
			exitTimeout, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cmd(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
	t.Run("publish --wait times out", func(t *testing.T) {
		// streams of a deployment whose workers are all down: the request is stored, no verdict comes
		nobody := consumer.Topology{SubjectPrefix: "nobody", RequestsStream: "NOBODY_REQUESTS", ResultsStream: "NOBODY_RESULTS", DLQStream: "NOBODY_DLQ", Consumer: "nobody"}
		if _, err := consumer.Setup(ctx, js, nobody, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 1}); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := cmd("publish", "onboarded", "--id", "wait-orphan", "--workspace", "acme", "--subject-prefix", "nobody",
			"--requests-stream", "NOBODY_REQUESTS", "--results-stream", "NOBODY_RESULTS", "--wait", "--timeout", "300ms")
		if code != exitTimeout || !strings.Contains(out, "published request wait-orphan") || !strings.Contains(errOut, "no verdict before the deadline") {
			t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitTimeout, out, errOut)
		}
	})
}

// results without --id prints each verdict once, even one stored twice (re-published after the
// duplicate window, here with a different Nats-Msg-Id).
func TestResultsFollowPrintsAVerdictOnce(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	topo := consumer.Topology{}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 10}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISIONER_NATS_URL", srv.URL)
	body, _ := json.Marshal(contract.Result{Type: contract.ResultType, Message: contract.MessageWorkspaceReady, RequestID: "follow-1", Attempts: 1, ProducedAt: time.Now().UTC()})
	other, _ := json.Marshal(contract.Result{Type: contract.ResultType, Message: contract.MessageWorkspaceReady, RequestID: "follow-2", Attempts: 1, ProducedAt: time.Now().UTC()})
	// a replayed dead letter's verdict: same request and message, a higher revision, printed too
	var fields map[string]any
	_ = json.Unmarshal(body, &fields)
	fields["revision"] = 2
	replayed, _ := json.Marshal(fields)
	for i, b := range [][]byte{body, body, replayed, other} {
		m := &nats.Msg{Subject: topo.ResultSubject(contract.MessageWorkspaceReady, "follow"), Data: b, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, "copy-"+string(rune('a'+i)))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- dispatch(rctx, []string{"results", "--json", "--all"}, &stdout, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "follow-2") {
		if time.Now().After(deadline) {
			t.Fatalf("follow-2 not printed: %s", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), `"request_id":"follow-1"`); n != 2 {
		t.Fatalf("follow-1 printed %d times, want its first verdict once and its replay's once:\n%s", n, stdout.String())
	}
}
