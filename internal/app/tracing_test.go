package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/tracing"
	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// recordTraces makes every replica started from now on record its spans, and returns the exporter
// that holds them. The same provider plays the app that publishes requests.
func (e *env) recordTraces() (*tracetest.InMemoryExporter, *tracing.Provider) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(sdktrace.WithSyncer(exp))
	e.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.tracer = tp
	return exp, tp
}

// publishTraced submits a credentials request with the public client, as an app with tracing
// does: in a producer span of the client's, with the app's baggage, the context in the request's
// headers. It returns the producer span's context.
func (e *env) publishTraced(tp trace.TracerProvider, exp *tracetest.InMemoryExporter, req map[string]any) trace.SpanContext {
	e.t.Helper()
	body, _ := json.Marshal(req)
	member, _ := baggage.NewMember("tenant", "acme-tenant")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	c, err := client.New(e.nc, client.WithTracerProvider(tp))
	if err != nil {
		e.t.Fatal(err)
	}
	sub, err := c.SubmitJSON(ctx, contract.KindCredentialsSubmitted, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindProducer && attr(s, natstrace.AttrMessageID) == sub.RequestID {
			return s.SpanContext
		}
	}
	e.t.Fatalf("the client made no producer span for %s", sub.RequestID)
	return trace.SpanContext{}
}

// resultMsg returns the stored result message of a request.
func (e *env) resultMsg(requestID string) *jetstream.RawStreamMsg {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "PROVISIONER_RESULTS")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		var r contract.Result
		if json.Unmarshal(m.Data, &r) == nil && r.RequestID == requestID {
			return m
		}
	}
	e.t.Fatalf("no result for %s", requestID)
	return nil
}

// processSpans waits until the request's verdict span (a process span with a final outcome) has
// ended, and returns every process span of the request, in delivery order.
func processSpans(t *testing.T, exp *tracetest.InMemoryExporter, requestID string) []tracetest.SpanStub {
	t.Helper()
	var out []tracetest.SpanStub
	waitFor(t, 30*time.Second, "the verdict span of "+requestID, func() bool {
		out = out[:0]
		final := false
		for _, s := range exp.GetSpans() {
			if s.SpanKind != trace.SpanKindConsumer || attr(s, tracing.AttrRequestID) != requestID {
				continue
			}
			out = append(out, s)
			final = final || (attr(s, tracing.AttrOutcome) != "" && attr(s, tracing.AttrOutcome) != "retry")
		}
		return final
	})
	slices.SortFunc(out, func(a, b tracetest.SpanStub) int {
		return strings.Compare(attr(a, natstrace.AttrDeliveryCount), attr(b, natstrace.AttrDeliveryCount))
	})
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// children returns the spans whose parent is p, by name.
func children(spans tracetest.SpanStubs, p trace.SpanContext) map[string][]tracetest.SpanStub {
	out := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.Parent.SpanID() == p.SpanID() && s.Parent.TraceID() == p.TraceID() {
			out[s.Name] = append(out[s.Name], s)
		}
	}
	return out
}

// wantAttrs fails unless s has every attribute in want.
func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]string) {
	t.Helper()
	for k, v := range want {
		if got := attr(s, k); got != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name, k, got, v)
		}
	}
}

// One trace runs from the app's publish (with the public client) to the result: the worker continues the request's context,
// its spans form the expected tree with the messaging attributes, and the result's headers carry
// the context of the result's own publish span (and the app's baggage), so the app's trace
// continues from the verdict. A request without context starts a new trace of its own.
func TestOneTraceFromPublishToResult(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-trace"})
	exp, tp := e.recordTraces()
	r := e.start(nil)

	cases := []struct {
		name        string
		withContext bool
	}{
		{"the app's publish starts the trace", true},
		{"a request without context starts a new trace", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("trace-%d", i)
			req := credentialsRequest(id, "acme", "github", "file:acme/github.json")
			req["name"] = "gh-" + id
			var producer trace.SpanContext
			if tc.withContext {
				producer = e.publishTraced(tp, exp, req)
			} else {
				e.publish("credentials.submitted", req)
			}
			procs := processSpans(t, exp, id)
			if len(procs) != 1 {
				t.Fatalf("%d process spans, want 1", len(procs))
			}
			proc := procs[0]
			tid := proc.SpanContext.TraceID()
			if tc.withContext {
				if tid != producer.TraceID() || proc.Parent.SpanID() != producer.SpanID() || !proc.Parent.IsRemote() {
					t.Fatalf("process span's parent %v, want the producer span %v", proc.Parent, producer)
				}
			} else if proc.Parent.IsValid() {
				t.Fatalf("a request without context got parent %v, want a new trace", proc.Parent)
			}
			want := map[attribute.Key]string{
				natstrace.AttrMessagingSystem: "nats", natstrace.AttrDestination: "provisioner.requests.credentials.submitted",
				natstrace.AttrConsumerGroup: "provisioner", natstrace.AttrOperationType: "process",
				natstrace.AttrDeliveryCount: "1", natstrace.AttrStream: "PROVISIONER_REQUESTS", tracing.AttrOutcome: "created",
				tracing.AttrRequestID: id, tracing.AttrWorkspace: "acme",
			}
			if tc.withContext { // the app set Nats-Msg-Id
				want[natstrace.AttrMessageID] = id
			}
			wantAttrs(t, proc, want)
			if proc.SpanKind != trace.SpanKindConsumer || len(proc.Links) != 0 {
				t.Errorf("process span kind %v with %d links, want consumer with none", proc.SpanKind, len(proc.Links))
			}

			var spans tracetest.SpanStubs
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID() == tid {
					spans = append(spans, s)
				}
			}
			kids := children(spans, proc.SpanContext)
			for _, name := range []string{"ledger claim", "secret fetch", "POST connectors_create", "ledger complete", "publish provisioner.results.source_created.{request}"} {
				if len(kids[name]) != 1 {
					t.Errorf("%d %q spans under the process span, want 1 (children: %v)", len(kids[name]), name, keys(kids))
				}
			}
			if t.Failed() {
				return
			}
			wantAttrs(t, kids["ledger claim"][0], map[attribute.Key]string{tracing.AttrLedgerOutcome: "claimed"})
			wantAttrs(t, kids["secret fetch"][0], map[attribute.Key]string{tracing.AttrSecretBackend: "file"})
			wantAttrs(t, kids["POST connectors_create"][0], map[attribute.Key]string{"http.request.method": "POST", "http.response.status_code": "200"})
			pub := kids["publish provisioner.results.source_created.{request}"][0]
			wantAttrs(t, pub, map[attribute.Key]string{
				natstrace.AttrMessagingSystem: "nats", natstrace.AttrOperationType: "send",
				natstrace.AttrDestination: "provisioner.results.source_created." + id, natstrace.AttrDestinationTmpl: "provisioner.results.source_created.{request}",
				natstrace.AttrMessageID: id + ":source_created",
			})
			if pub.SpanKind != trace.SpanKindProducer {
				t.Errorf("result publish span kind %v, want producer", pub.SpanKind)
			}
			// every span of the trace hangs off the tree: no orphans, and one root
			ids := map[trace.SpanID]bool{}
			for _, s := range spans {
				ids[s.SpanContext.SpanID()] = true
			}
			roots := 0
			for _, s := range spans {
				if !ids[s.Parent.SpanID()] {
					roots++
				}
			}
			if want := 1; roots != want {
				t.Errorf("%d roots in the trace, want %d", roots, want)
			}

			// the request's log lines name its trace
			var logged bool
			for _, line := range strings.Split(e.logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != id {
					continue
				}
				if rec["trace_id"] != tid.String() || rec["span_id"] == nil {
					t.Errorf("log line of %s without its trace: %s", id, line)
				}
				logged = true
			}
			if !logged {
				t.Errorf("no log line names %s", id)
			}

			// the result continues the trace from its publish span
			res := e.resultMsg(id)
			if got, want := res.Header.Get("traceparent"), fmt.Sprintf("00-%s-%s-01", tid, pub.SpanContext.SpanID()); got != want {
				t.Errorf("result traceparent %q, want %q", got, want)
			}
			// the app's baggage comes back as it went, and the worker adds none
			wantBaggage := ""
			if tc.withContext {
				wantBaggage = "tenant=acme-tenant"
			}
			if got := res.Header.Get("baggage"); got != wantBaggage {
				t.Errorf("result baggage %q, want %q", got, wantBaggage)
			}
		})
	}

	// request ids and workspace names are span attributes, never metric labels
	mfs, err := r.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); v == "acme" || strings.HasPrefix(v, "trace-") {
					t.Errorf("metric %s has label %s=%q", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A redelivery's process span links to the first delivery's, which may have run on another
// replica: with and without the app's context. The first delivery meets a lease another worker
// holds (it lapses soon), so the request is answered on a later delivery.
func TestRedeliveriesLinkToTheFirstDelivery(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-links"})
	exp, tp := e.recordTraces()
	e.start(func(c *config.Config) { c.Concurrency = 2 })

	dec, err := event.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	// a lease a little longer than a delivery watches one (the lease TTL and a second): the first
	// delivery gives the request back, the redelivery sees the lease lapse and takes it over
	other, err := ledger.Open(context.Background(), e.js, ledger.Config{Bucket: cfg.LedgerBucket, LeaseTTL: 2*cfg.AckWait + 2*time.Second, Owner: "another-worker"})
	if err != nil {
		t.Fatal(err)
	}
	for i, withContext := range []bool{true, false} {
		t.Run(fmt.Sprintf("with context %v", withContext), func(t *testing.T) {
			id := fmt.Sprintf("links-%d", i)
			req := credentialsRequest(id, "acme", "github", "file:acme/github.json")
			req["name"] = "gh-" + id
			body, _ := json.Marshal(req)
			parsed, err := dec.Decode(contract.KindCredentialsSubmitted, body)
			if err != nil {
				t.Fatal(err)
			}
			identity := ledger.Identity{WorkspaceName: "acme", ConnectorKind: parsed.CredentialsSubmitted.ConnectorKind(), Name: parsed.CredentialsSubmitted.ConnectorName()}
			if c, err := other.Claim(context.Background(), identity, ledger.Request{ID: "someone-else"}); err != nil || c.Outcome != ledger.Claimed {
				t.Fatalf("pre-claim: %+v, %v", c, err)
			}
			if withContext {
				e.publishTraced(tp, exp, req)
			} else {
				e.publish("credentials.submitted", req)
			}
			procs := processSpans(t, exp, id)
			if len(procs) < 2 {
				t.Fatalf("%d deliveries traced, want a redelivery", len(procs))
			}
			first := procs[0]
			if attr(first, natstrace.AttrDeliveryCount) != "1" || len(first.Links) != 0 {
				t.Fatalf("first delivery span: delivery %s, %d links", attr(first, natstrace.AttrDeliveryCount), len(first.Links))
			}
			if got := attr(first, tracing.AttrOutcome); got != "retry" {
				t.Errorf("first delivery outcome %q, want retry", got)
			}
			if got := attr(first, tracing.AttrErrorCode); got != string(contract.CodeLeaseUnavailable) {
				t.Errorf("first delivery error code %q, want %s", got, contract.CodeLeaseUnavailable)
			}
			for _, p := range procs[1:] {
				if len(p.Links) != 1 {
					t.Fatalf("delivery %s has %d links, want 1", attr(p, natstrace.AttrDeliveryCount), len(p.Links))
				}
				l := p.Links[0]
				if !l.SpanContext.Equal(first.SpanContext.WithTraceFlags(l.SpanContext.TraceFlags())) {
					t.Errorf("delivery %s links to %v, want the first delivery %v", attr(p, natstrace.AttrDeliveryCount), l.SpanContext, first.SpanContext)
				}
				if len(l.Attributes) != 1 || l.Attributes[0] != tracing.AttrLinkFirstDelivery.String("first_delivery") {
					t.Errorf("link attributes %v", l.Attributes)
				}
				if withContext && !p.Parent.Equal(first.Parent) {
					t.Errorf("redelivery's parent %v, want the producer %v like the first", p.Parent, first.Parent)
				}
			}
			if got := attr(procs[len(procs)-1], tracing.AttrOutcome); got != "adopted" && got != "created" {
				t.Errorf("last delivery outcome %q", got)
			}
		})
	}
}

// dumpSpans writes out everything an exporter would send of spans — names, attributes, events,
// links, status, resource — for leak scans. It fails if there is nothing to scan.
func dumpSpans(t *testing.T, spans tracetest.SpanStubs) string {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans recorded: the leak scan would see nothing")
	}
	var b strings.Builder
	kvs := func(kv []attribute.KeyValue) {
		for _, a := range kv {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.String())
		}
	}
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %s %s:", s.Name, s.Status.Code, s.Status.Description)
		kvs(s.Attributes)
		for _, ev := range s.Events {
			b.WriteString(" event " + ev.Name)
			kvs(ev.Attributes)
		}
		for _, l := range s.Links {
			b.WriteString(" link " + l.SpanContext.TraceState().String())
			kvs(l.Attributes)
		}
		b.WriteString(" tracestate " + s.SpanContext.TraceState().String())
		if s.Resource != nil {
			kvs(s.Resource.Attributes())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// A worker flushes its spans once it has drained: spans batched for export (here for an hour) are
// exported before Run returns, not lost with the process.
func TestSpansAreFlushedOnDrain(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-flush"})
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour), sdktrace.WithMaxExportBatchSize(1<<20)))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.tracer = tp
	r := e.start(nil)
	e.publish("credentials.submitted", credentialsRequest("flush-1", "acme", "github", "file:acme/github.json"))
	e.results(1, 30*time.Second)
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans exported before the drain; the batch should still hold them", n)
	}
	r.stop(t)
	var processed bool
	for _, s := range exp.GetSpans() {
		processed = processed || (s.SpanKind == trace.SpanKindConsumer && attr(s, tracing.AttrRequestID) == "flush-1")
	}
	if !processed {
		t.Fatalf("the request's process span was not exported by the drain (%d spans)", len(exp.GetSpans()))
	}
}
