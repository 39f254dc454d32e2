package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// `provisioner publish` starts the request's trace when the environment asks for traces, and puts
// its W3C context in the request's headers; by default it adds none.
func TestPublishInjectsTraceContext(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	topo := consumer.Topology{}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 10}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISIONER_NATS_URL", srv.URL)
	cases := []struct {
		name       string
		env        map[string]string
		want       bool
		wantStderr string // an export failure is reported in the log format
	}{
		{"off by default", nil, false, ""},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"console exporter", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true, ""},
		{"a collector that is not there", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "200"}, true, "level=WARN"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TIMEOUT"} {
				t.Setenv(v, tc.env[v])
			}
			var stdout, stderr lockedBuffer
			if code := dispatch(ctx, []string{"publish", "onboarded", "--workspace", "acme", "--id", "traced-" + string(rune('a'+i))}, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if tc.wantStderr != "" && !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
			s, err := js.Stream(ctx, topo.RequestsStream)
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.GetLastMsgForSubject(ctx, topo.RequestSubject("customer.onboarded"))
			if err != nil {
				t.Fatal(err)
			}
			tp := m.Header.Get("traceparent")
			if got := tp != ""; got != tc.want {
				t.Fatalf("traceparent %q, want one: %v", tp, tc.want)
			}
			if tc.want && (!strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-01") || len(tp) != 55) {
				t.Errorf("traceparent %q is not a sampled W3C traceparent", tp)
			}
			if m.Header.Get(jetstream.MsgIDHeader) != "traced-"+string(rune('a'+i)) {
				t.Errorf("Nats-Msg-Id %q", m.Header.Get(jetstream.MsgIDHeader))
			}
		})
	}
}

// `provisioner dev --traces` prints each demo request's span tree, from the demo's publish to its
// result, when its verdict arrives: no collector needed.
func TestDevTracesPrintsEachRequestsSpanTree(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- dispatch(ctx, []string{"dev", "--traces", "--nats-listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--dir", t.TempDir()}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(stdout.String(), "\ntrace ") < 6 { // the first batch, then the rotation and the disconnect
		select {
		case c := <-code:
			t.Fatalf("dev exited early with %d\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("span trees did not arrive\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Fatalf("exit %d after interrupt\nstderr:\n%s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not drain and exit")
	}
	out := stdout.String()
	for _, want := range []struct {
		line  string
		count int
	}{
		{"  publish provisioner.requests.credentials.submitted ", 4},
		{"  publish provisioner.requests.customer.onboarded ", 1},
		{"  publish provisioner.requests.connector.disconnected ", 1},
		{"└─ process provisioner.requests.credentials.submitted ", 4},
		{"└─ process provisioner.requests.connector.disconnected ", 1},
		{"secret fetch ", 4},
		{"POST connectors_create ", 3},
		{"DELETE connectors_delete ", 2},
		{"publish provisioner.results.source_created.{request} ", 2},
		{"publish provisioner.results.source_updated.{request} ", 1},
		{"publish provisioner.results.source_deleted.{request} ", 1},
		{"publish provisioner.results.workspace_ready.{request} ", 1},
		{"outcome=permanent_error code=secret_not_found", 1},
	} {
		if n := strings.Count(out, want.line); n != want.count {
			t.Errorf("%d lines with %q, want %d:\n%s", n, want.line, want.count, out)
		}
	}
}
