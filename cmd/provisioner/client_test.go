package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

func TestPublishResultsAndDLQCommands(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	topo := consumer.Topology{}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 10}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISIONER_NATS_URL", srv.URL)
	cmd := func(args ...string) (int, string, string) {
		var stdout, stderr lockedBuffer
		code := dispatch(ctx, args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	t.Run("publish from flags", func(t *testing.T) {
		code, out, errOut := cmd("publish", "credentials", "--id", "cli-1", "--workspace", "acme", "--connector-type", "github",
			"--credentials-ref", "file:customers/acme/github.json", "--replication-config", `{"repositories":["acme/app"]}`)
		if code != exitOK || !strings.Contains(out, "published request cli-1 to provisioner.requests.credentials.submitted") {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
		// a second publish of the same request is dropped by JetStream
		code, out, _ = cmd("publish", "credentials", "--id", "cli-1", "--workspace", "acme", "--connector-type", "github", "--credentials-ref", "file:customers/acme/github.json")
		if code != exitOK || !strings.Contains(out, "duplicate") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("publish from a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "req.json")
		os.WriteFile(f, []byte(`{"id":"cli-2","workspace_name":"globex"}`), 0o600)
		if code, out, errOut := cmd("publish", "--kind", "onboarded", "--file", f); code != exitOK {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
		s, _ := js.Stream(ctx, topo.RequestsStream)
		info, _ := s.Info(ctx)
		if info.State.Msgs != 2 {
			t.Fatalf("%d requests queued", info.State.Msgs)
		}
	})
	t.Run("results --json --all", func(t *testing.T) {
		res := event.ErrorResult(contract.KindCredentialsSubmitted, "cli-1", "acme", 1, contract.CodeSecretNotFound, "gone", false, time.Now())
		if err := consumer.NewPublisher(js, topo, "test").PublishResult(ctx, res, ""); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		var stdout, stderr lockedBuffer
		done := make(chan int, 1)
		go func() { done <- dispatch(rctx, []string{"results", "--json", "--all"}, &stdout, &stderr) }()
		waitLine(t, &stdout)
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		var got contract.Result
		if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &got); err != nil || got.RequestID != "cli-1" {
			t.Fatalf("line %q: %v", stdout.String(), err)
		}
	})
	t.Run("dlq list and replay", func(t *testing.T) {
		m := &nats.Msg{Subject: "provisioner.dlq.credentials.submitted", Data: []byte(`{"id":"cli-3"}`), Header: nats.Header{}}
		m.Header.Set(consumer.HeaderDLQSubject, "provisioner.requests.credentials.submitted")
		m.Header.Set(consumer.HeaderDLQReason, "secret_not_found")
		m.Header.Set(consumer.HeaderDLQRequestID, "cli-3")
		m.Header.Set(consumer.HeaderDLQDeliveries, "1")
		m.Header.Set(consumer.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		code, out, _ := cmd("dlq", "list")
		if code != exitOK || !strings.Contains(out, "request=cli-3 reason=secret_not_found") || !strings.Contains(out, "1 dead letter(s)") {
			t.Fatalf("exit %d: %s", code, out)
		}
		if code, _, errOut := cmd("dlq", "replay"); code != exitUsage {
			t.Fatalf("replay without --id/--all: exit %d %s", code, errOut)
		}
		code, out, errOut := cmd("dlq", "replay", "--id", jsonNumber(ack.Sequence))
		if code != exitOK || !strings.Contains(out, "replayed dead letter") {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
		code, out, _ = cmd("dlq", "list")
		if code != exitOK || !strings.Contains(out, "0 dead letter(s)") {
			t.Fatalf("after replay: %s", out)
		}
		s, _ := js.Stream(ctx, topo.RequestsStream)
		info, _ := s.Info(ctx)
		if info.State.Msgs != 3 {
			t.Fatalf("%d requests queued after replay", info.State.Msgs)
		}
	})
	t.Run("dlq purge", func(t *testing.T) {
		var seqs []uint64
		for _, id := range []string{"cli-4", "cli-5", "cli-6"} {
			m := &nats.Msg{Subject: "provisioner.dlq.credentials.submitted", Data: []byte(`{"id":"` + id + `"}`), Header: nats.Header{}}
			m.Header.Set(consumer.HeaderDLQRequestID, id)
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, ack.Sequence)
		}
		code, out, errOut := cmd("dlq", "purge", "--id", jsonNumber(seqs[0]))
		if code != exitOK || !strings.Contains(out, "purged dead letter") {
			t.Fatalf("purge --id: exit %d: %s %s", code, out, errOut)
		}
		if _, out, _ = cmd("dlq", "list"); strings.Contains(out, "cli-4") || !strings.Contains(out, "2 dead letter(s)") {
			t.Fatalf("after purge --id: %s", out)
		}
		if code, out, errOut = cmd("dlq", "purge"); code != exitOK || !strings.Contains(out, "purged 2 dead letter(s)") {
			t.Fatalf("purge: exit %d: %s %s", code, out, errOut)
		}
		if _, out, _ = cmd("dlq", "list"); !strings.Contains(out, "0 dead letter(s)") {
			t.Fatalf("after purge: %s", out)
		}
	})
}

func waitLine(t *testing.T, b *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatal("no output")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
