package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startStreams runs a real server with the product's three streams and the workers' consumer.
func startStreams(t *testing.T) (*broker, jetstream.JetStream) {
	t.Helper()
	b, err := startBroker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, sc := range []jetstream.StreamConfig{
		{Name: requestsStream, Subjects: []string{"provisioner.requests.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: time.Minute},
		{Name: resultsStream, Subjects: []string{"provisioner.results.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute},
		{Name: dlqStream, Subjects: []string{"provisioner.dlq.>"}, Storage: jetstream.FileStorage},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateConsumer(ctx, requestsStream, jetstream.ConsumerConfig{Durable: workerConsumer, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	return b, js
}

// publishRetrying publishes until the (possibly reconnecting) server takes it.
func publishRetrying(t *testing.T, js jetstream.JetStream, msg *nats.Msg) {
	t.Helper()
	eventually(t, 10*time.Second, "publish "+msg.Subject, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, msg)
		return err == nil
	})
}

func resultMsg(id, body string) *nats.Msg {
	m := nats.NewMsg("provisioner.results.source_created")
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(body)
	return m
}

func TestResultReaderAcrossRestart(t *testing.T) {
	b, js := startStreams(t)
	const secret = "chaos-secret-0123456789abcdef"
	rr, err := NewResultReader(t.Context(), js, []string{secret, jwtPrefix}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); rr.Run(ctx, tl) }()

	publishRetrying(t, js, resultMsg("a:source_created", `{"type":"end_user_action_result","message":"source_created","request_id":"req-a","attempts":1,"data":{"id":"conn-1"}}`))
	publishRetrying(t, js, resultMsg("b:source_create_error", `{"type":"end_user_action_result","message":"source_create_error","request_id":"req-b","attempts":3,"error":{"code":"secret_not_found","retryable":false}}`))
	publishRetrying(t, js, resultMsg("x", `not json`))
	eventually(t, 10*time.Second, "two results read", func() bool { return rr.Answered() == 2 })

	if err := b.Restart(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	publishRetrying(t, js, resultMsg("c:source_created", `{"type":"end_user_action_result","message":"source_created","request_id":"req-c","attempts":1,"data":{"id":"conn-2","replication_config":{"credentials":"`+secret+`"}}}`))
	publishRetrying(t, js, resultMsg("a:source_created", `{"message":"dropped by the duplicate window"}`))
	cancel()
	<-done

	catchCtx, cancelCatch := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelCatch()
	if err := rr.CatchUp(catchCtx, tl); err != nil {
		t.Fatal(err)
	}
	results, invalid := rr.Results()
	var got []string
	for _, r := range results {
		got = append(got, fmt.Sprintf("%d %s %s %s%s", r.Seq, r.RequestID, r.Message, r.ConnectorID, r.ErrorCode))
	}
	want := []string{"1 req-a source_created conn-1", "2 req-b source_create_error secret_not_found", "4 req-c source_created conn-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results = %q, want %q", got, want)
	}
	if len(invalid) != 1 || !strings.Contains(invalid[0], "result 3") {
		t.Errorf("invalid = %q, want the body of result 3", invalid)
	}
	if leaks := rr.Leaks(); len(leaks) != 1 || leaks["result #4: chao…(29 chars)"] != 1 {
		t.Errorf("leaks = %v, want the secret in result #4, named without its value", leaks)
	}
	if ev := tl.Of("req-c"); len(ev) != 1 || !strings.Contains(ev[0], "result #4 source_created conn-2") {
		t.Errorf("timeline of req-c = %q", ev)
	}
}

func TestPublishBacklogAndDeadLetters(t *testing.T) {
	_, js := startStreams(t)
	p, err := NewPlan(PlanConfig{Requests: 20, Workspaces: 2, Resends: 0.25, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline()
	var last int
	logger := slog.New(slog.DiscardHandler)
	if err := Publish(t.Context(), js, p, 0, tl, func(n int) { last = n }, logger); err != nil {
		t.Fatal(err)
	}
	// a second pass is what retried publishes look like: every one is a duplicate
	if err := Publish(t.Context(), js, p, 0, tl, func(int) {}, logger); err != nil {
		t.Fatal(err)
	}
	if last != len(p.Sends) {
		t.Errorf("published callback ended at %d, want %d", last, len(p.Sends))
	}
	// The consumer's pending count catches up with the stream asynchronously on a busy server.
	var pending, stranded uint64
	eventually(t, 10*time.Second, "the backlog counts every send", func() bool {
		var err error
		pending, stranded, err = Backlog(t.Context(), js)
		if err != nil {
			t.Fatal(err)
		}
		return pending == uint64(len(p.Sends)) && stranded == 0
	})
	if ev := tl.Of(p.Requests[0].ID); len(ev) < 2 || !strings.Contains(ev[1], "duplicate=true") {
		t.Errorf("timeline of %s = %q, want the second publish marked duplicate", p.Requests[0].ID, ev)
	}

	dl := nats.NewMsg("provisioner.dlq.credentials.submitted")
	dl.Header.Set("Provisioner-Dlq-Request-Id", "req-000003")
	dl.Header.Set("Provisioner-Dlq-Reason", "secret_not_found")
	dl.Header.Set("Provisioner-Dlq-Deliveries", "1")
	publishRetrying(t, js, dl)
	got, err := ReadDeadLetters(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	want := []DeadLetter{{Seq: 1, RequestID: "req-000003", Reason: "secret_not_found", Deliveries: "1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dead letters = %+v, want %+v", got, want)
	}
	if n, err := StoredMessages(t.Context(), js, dlqStream); err != nil || n != 1 {
		t.Errorf("stored dead letters = %d, %v; want 1", n, err)
	}
}

func TestLogLines(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"worker-0.0.log": `{"msg":"connector ready","request_id":"req-000001"}` + "\n" + `{"msg":"will retry","request_id":"req-0000011"}` + "\n",
		"worker-1.0.log": `{"msg":"request failed","request_id":"req-000002"}` + "\n" + `{"msg":"consuming"}` + "\n",
	}
	var paths []string
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	paths = append(paths, filepath.Join(dir, "gone.log"))
	tests := []struct {
		id   string
		want []string
	}{
		{"req-000001", []string{`worker-0.0.log: {"msg":"connector ready","request_id":"req-000001"}`}},
		{"req-000002", []string{`worker-1.0.log: {"msg":"request failed","request_id":"req-000002"}`}},
		{"req-000009", nil},
	}
	got := LogLines(paths, []string{"req-000001", "req-000002", "req-000009"}, os.ReadFile)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if !reflect.DeepEqual(got[tt.id], tt.want) {
				t.Errorf("lines = %q, want %q", got[tt.id], tt.want)
			}
		})
	}
}

func TestLeaks(t *testing.T) {
	tests := []struct {
		name  string
		texts map[string][]byte
		want  map[string]int
	}{
		{"clean", map[string][]byte{"a.log": []byte(`{"msg":"ok","token":"[REDACTED]"}`)}, map[string]int{}},
		{"a secret twice", map[string][]byte{"a.log": []byte("x chaos-secret-aa y chaos-secret-aa")}, map[string]int{"a.log: chao…(15 chars)": 2}},
		{"a token", map[string][]byte{"b.log": []byte(`"authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"`)}, map[string]int{"b.log: eyJh…(8 chars)": 1}},
		{"a short needle is not repeated", map[string][]byte{"c.log": []byte("pw=hunter")}, map[string]int{"c.log: ******": 1}},
	}
	needles := []string{"chaos-secret-aa", jwtPrefix, "hunter"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Leaks(needles, tt.texts); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Leaks = %v, want %v", got, tt.want)
			}
		})
	}
}
