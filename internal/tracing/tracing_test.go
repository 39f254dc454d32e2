package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing"
	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

var update = flag.Bool("update", false, "rewrite golden files")

func recorder(t testing.TB, opts ...sdktrace.TracerProviderOption) (*tracetest.InMemoryExporter, *tracing.Provider) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSyncer(exp)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp, tp
}

func TestOn(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set: off", nil, false},
		{"otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{"an endpoint alone", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"a traces endpoint alone", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"an endpoint but exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{"sdk disabled", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracing.On(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("On = %v, want %v", got, tc.want)
			}
		})
	}
}

// The process's provider follows OTEL_* (no t.Parallel: the variables are the process's).
func TestFromEnv(t *testing.T) {
	cases := []struct {
		name        string
		env         map[string]string
		extra       bool
		wantEnabled bool
		wantErr     bool
	}{
		{"off by default", nil, false, false, false},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, false, true, false},
		{"otlp over http to an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false, true, false},
		{"otlp over grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false, true, false},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false, false, false},
		{"none with the dev printer", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, true, true, false},
		{"an unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin-ish"}, false, false, true},
		{"an unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, false, false, true},
	}
	vars := []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, tc.env[v])
			}
			var extra []sdktrace.SpanProcessor
			if tc.extra {
				extra = append(extra, tracing.NewTreePrinter(&bytes.Buffer{}))
			}
			tp, err := tracing.FromEnv(context.Background(), tracing.Service{Name: "provisioner", Version: "test"}, extra...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer func() {
				// an OTLP exporter with no collector behind it gives up on its last batch at once
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = tp.Shutdown(ctx)
			}()
			if tp.Enabled() != tc.wantEnabled {
				t.Errorf("Enabled = %v, want %v", tp.Enabled(), tc.wantEnabled)
			}
			_, span := tp.Tracer("t").Start(context.Background(), "s")
			if span.IsRecording() != tc.wantEnabled {
				t.Errorf("span recording = %v, want %v", span.IsRecording(), tc.wantEnabled)
			}
			span.End()
		})
	}
}

// Roots are sampled by default, and a parent's decision is followed either way.
func TestSamplingFollowsTheParent(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	exp, tp := recorder(t)
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		h := nats.Header{}
		h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"+flags.String()[1:])
		_, span := tracing.StartProcess(context.Background(), tp, tracing.Delivery{Subject: "s", Header: h, Number: 1})
		if span.SpanContext().IsSampled() != flags.IsSampled() {
			t.Errorf("parent flags %s: sampled %v", flags, span.SpanContext().IsSampled())
		}
		span.End("created", "")
	}
	_, root := tracing.StartProcess(context.Background(), tp, tracing.Delivery{Subject: "s", Number: 1})
	root.End("created", "")
	if n := len(exp.GetSpans()); n != 2 {
		t.Errorf("%d spans exported, want the sampled child and the root", n)
	}
}

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	_, tp := recorder(t)
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	cases := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"with a span", ctx, true},
		{"without", context.Background(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(tracing.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
			logger.InfoContext(tc.ctx, "hello")
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			sc := span.SpanContext()
			if tc.want && (rec["trace_id"] != sc.TraceID().String() || rec["span_id"] != sc.SpanID().String()) {
				t.Errorf("record %v lacks the span's ids", rec)
			}
			if !tc.want && (rec["trace_id"] != nil || rec["span_id"] != nil) {
				t.Errorf("record %v has ids without a span", rec)
			}
			if rec["component"] != "x" {
				t.Errorf("record %v lost its attributes", rec)
			}
		})
	}
}

// The Airbyte client's calls get client spans and send traceparent, never baggage; calls without a
// span pass through untouched.
func TestHTTPTransport(t *testing.T) {
	seen := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	exp, tp := recorder(t)
	type opKey struct{}
	client := &http.Client{Transport: tracing.HTTPTransport(http.DefaultTransport, func(ctx context.Context) string {
		op, _ := ctx.Value(opKey{}).(string)
		return op
	})}
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	traced, parent := tp.Tracer("t").Start(baggage.ContextWithBaggage(context.Background(), bag), "process")
	defer parent.End()

	cases := []struct {
		name     string
		ctx      context.Context
		wantSpan string
	}{
		{"in a request's span", context.WithValue(traced, opKey{}, "connectors_list"), "GET connectors_list"},
		{"outside any span", context.Background(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodGet, srv.URL+"/api/v1/integrations/connectors?workspace_name=acme", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := <-seen
			if h.Get("baggage") != "" {
				t.Errorf("baggage %q sent to a third party", h.Get("baggage"))
			}
			spans := exp.GetSpans()
			if tc.wantSpan == "" {
				if len(spans) != 0 || h.Get("traceparent") != "" {
					t.Fatalf("untraced call made %d spans, traceparent %q", len(spans), h.Get("traceparent"))
				}
				return
			}
			if len(spans) != 1 || spans[0].Name != tc.wantSpan || spans[0].SpanKind != trace.SpanKindClient {
				t.Fatalf("spans %v, want one client span %q", spans, tc.wantSpan)
			}
			s := spans[0]
			if s.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("HTTP span's parent %v, want the request's span", s.Parent)
			}
			if want := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"; h.Get("traceparent") != want {
				t.Errorf("traceparent %q, want %q", h.Get("traceparent"), want)
			}
			var status string
			for _, a := range s.Attributes {
				if a.Key == "http.response.status_code" {
					status = a.Value.String()
				}
			}
			if status != "204" {
				t.Errorf("status attribute %q", status)
			}
		})
	}
}

// The spans of a secret fetch and of the ledger name the backend and the operation; a failure is
// recorded by its code, never its text (which may name the secret's path).
func TestDomainSpansRecordCodesNotText(t *testing.T) {
	exp, tp := recorder(t)
	ctx, parent := tp.Tracer("t").Start(context.Background(), "process")
	_, s := tracing.StartSecretFetch(ctx, "vault")
	s.End(errors.New("secret vault:kv/data/customers/acme/github#token not found"), "secret_not_found")
	_, l := tracing.StartLedger(ctx, "claim")
	l.End(nil, "")
	parent.End()
	// a library called without a span records nothing
	_, none := tracing.StartSecretFetch(context.Background(), "file")
	none.End(nil, "")

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	for _, sp := range spans {
		text := sp.Status.Description
		for _, a := range sp.Attributes {
			text += " " + string(a.Key) + "=" + a.Value.String()
		}
		for _, ev := range sp.Events {
			text += " " + ev.Name
		}
		if strings.Contains(text, "customers/acme") {
			t.Errorf("span %q records the secret's path: %s", sp.Name, text)
		}
		switch sp.Name {
		case "secret fetch":
			if sp.Status.Description != "secret_not_found" || !hasAttr(sp, "error.type", "secret_not_found") || !hasAttr(sp, "provisioner.secret.backend", "vault") {
				t.Errorf("secret fetch span: %s %v", sp.Status.Description, sp.Attributes)
			}
		case "ledger claim":
			if sp.Status.Code != 0 || !hasAttr(sp, "db.operation.name", "claim") {
				t.Errorf("ledger span: %v %v", sp.Status, sp.Attributes)
			}
		}
	}
}

func hasAttr(s tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.String() == value {
			return true
		}
	}
	return false
}

// The dev span tree, from fixed spans (golden file).
func TestRenderTree(t *testing.T) {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tid := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sc := func(n byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{0, 0, 0, 0, 0, 0, 0, n}, TraceFlags: trace.FlagsSampled})
	}
	span := func(n, parent byte, name string, kind trace.SpanKind, from, to time.Duration, attrs ...attribute.KeyValue) tracetest.SpanStub {
		s := tracetest.SpanStub{Name: name, SpanContext: sc(n), SpanKind: kind, StartTime: base.Add(from), EndTime: base.Add(to), Attributes: attrs}
		if parent != 0 {
			s.Parent = sc(parent)
		}
		return s
	}
	stubs := tracetest.SpanStubs{
		span(6, 2, "publish provisioner.results.source_created.{request}", trace.SpanKindProducer, 40*time.Millisecond, 41*time.Millisecond),
		span(1, 0, "publish provisioner.requests.credentials.submitted", trace.SpanKindProducer, 0, 900*time.Microsecond),
		span(2, 1, "process provisioner.requests.credentials.submitted", trace.SpanKindConsumer, 2*time.Millisecond, 42*time.Millisecond,
			tracing.AttrRequestID.String("req-1"), tracing.AttrWorkspace.String("acme"), natstrace.AttrDeliveryCount.Int(2), tracing.AttrOutcome.String("created")),
		span(3, 2, "ledger claim", trace.SpanKindClient, 3*time.Millisecond, 4*time.Millisecond, tracing.AttrLedgerOutcome.String("took_over")),
		span(4, 2, "secret fetch", trace.SpanKindClient, 5*time.Millisecond, 6*time.Millisecond, tracing.AttrSecretBackend.String("file")),
		span(5, 2, "POST connectors_create", trace.SpanKindClient, 7*time.Millisecond, 1207*time.Millisecond, attribute.Int("http.response.status_code", 200)),
	}
	stubs[2].Links = []sdktrace.Link{{SpanContext: sc(9)}}
	got := tracing.RenderTree(stubs.Snapshots())
	golden := filepath.Join("testdata", "tree.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("tree:\n%s\nwant:\n%s", got, want)
	}
}

// The printer prints a trace when its request reaches a verdict, not on a retry.
func TestTreePrinterPrintsOnVerdict(t *testing.T) {
	var out bytes.Buffer
	tp := tracing.NewProvider(sdktrace.WithSpanProcessor(tracing.NewTreePrinter(&out)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	msg := &nats.Msg{Subject: "provisioner.requests.credentials.submitted", Header: nats.Header{}}
	_, pub := tracing.StartPublish(context.Background(), tp, msg, "")
	pub.End(nil, "")
	d := tracing.Delivery{Subject: msg.Subject, Header: msg.Header, Stream: "R", Sequence: 1, Consumer: "provisioner"}
	for n, outcome := range []string{"retry", "created"} {
		d.Number = n + 1
		ctx, p := tracing.StartProcess(context.Background(), tp, d)
		_, l := tracing.StartLedger(ctx, "claim")
		l.End(nil, "")
		p.End(outcome, map[string]string{"retry": "lease_unavailable"}[outcome])
		if printed := out.Len() > 0; printed != (outcome != "retry") {
			t.Fatalf("after outcome %s: printed %q", outcome, out.String())
		}
	}
	if got := out.String(); strings.Count(got, "process provisioner.requests.credentials.submitted") != 2 || strings.Count(got, "ledger claim") != 2 ||
		!strings.Contains(got, "code=lease_unavailable") || !strings.Contains(got, "links=1") {
		t.Errorf("tree:\n%s", got)
	}
}
