package natstrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// W3C trace context and baggage cross a real NATS server in message headers, exactly.
func TestContextTravelsInNATSHeaders(t *testing.T) {
	srv := natsembedtest.Start(t)
	nc, _ := srv.Connect(t)
	sub, err := nc.SubscribeSync("ctx.>")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()

	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	state, _ := trace.ParseTraceState("vendor=opaque")
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true,
	})
	cases := []struct {
		name        string
		ctx         context.Context
		wantContext bool
	}{
		{"no context", context.Background(), false},
		{"a span", func() context.Context { ctx, _ := tp.Tracer("t").Start(context.Background(), "s"); return ctx }(), true},
		{"a span with tracestate", trace.ContextWithRemoteSpanContext(context.Background(), remote), true},
		{"baggage", baggage.ContextWithBaggage(trace.ContextWithRemoteSpanContext(context.Background(), remote), bag), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: "ctx.test", Header: nats.Header{}}
			natstrace.Inject(tc.ctx, msg.Header)
			if err := nc.PublishMsg(msg); err != nil {
				t.Fatal(err)
			}
			got, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ctx := natstrace.Extract(context.Background(), got.Header)
			want := trace.SpanContextFromContext(tc.ctx)
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != tc.wantContext {
				t.Fatalf("extracted %v, want valid=%v (headers %v)", sc, tc.wantContext, got.Header)
			}
			if tc.wantContext && !sc.Equal(want.WithRemote(true)) {
				t.Errorf("extracted %v, want %v", sc, want)
			}
			if gotBag, wantBag := baggage.FromContext(ctx).String(), baggage.FromContext(tc.ctx).String(); gotBag != wantBag {
				t.Errorf("baggage %q, want %q", gotBag, wantBag)
			}
		})
	}
}

// A publish's producer span has the messaging attributes, and its context is what the headers carry.
func TestStartPublish(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	msg := &nats.Msg{Subject: "provisioner.requests.customer.onboarded", Data: []byte(`{"id":"r1"}`)}
	msg.Header = nats.Header{}
	msg.Header.Set(natstrace.HeaderMsgID, "r1")
	ctx, span := natstrace.StartPublish(context.Background(), tp.Tracer("t"), msg, "")
	span.End()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name != "publish provisioner.requests.customer.onboarded" || s.SpanKind != trace.SpanKindProducer {
		t.Errorf("span %q kind %v", s.Name, s.SpanKind)
	}
	want := map[attribute.Key]string{
		natstrace.AttrMessagingSystem: "nats", natstrace.AttrDestination: msg.Subject, natstrace.AttrOperationType: "send",
		natstrace.AttrOperationName: "publish", natstrace.AttrMessageID: "r1", natstrace.AttrBodySize: "11",
	}
	got := map[attribute.Key]string{}
	for _, a := range s.Attributes {
		got[a.Key] = a.Value.String()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	sc := trace.SpanContextFromContext(ctx)
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; msg.Header.Get("traceparent") != want {
		t.Errorf("traceparent %q, want %q", msg.Header.Get("traceparent"), want)
	}
}

// Whatever the headers say, extracting never panics, and a context it accepts travels on intact.
func FuzzExtract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE", "tenant=acme")
	f.Add("00-00000000000000000000000000000000-0000000000000000-00", "", "")
	f.Add("ff-zz", "=,=,", "%%%;;;")
	f.Fuzz(func(t *testing.T, traceparent, tracestate, bag string) {
		h := nats.Header{}
		h.Set("traceparent", traceparent)
		h.Set("tracestate", tracestate)
		h.Set("baggage", bag)
		ctx := natstrace.Extract(context.Background(), h)
		sc := trace.SpanContextFromContext(ctx)
		again := nats.Header{}
		natstrace.Inject(ctx, again)
		if !sc.IsValid() {
			if again.Get("traceparent") != "" {
				t.Fatalf("an invalid context injected traceparent %q", again.Get("traceparent"))
			}
			return
		}
		sc2 := trace.SpanContextFromContext(natstrace.Extract(context.Background(), again))
		if !sc.Equal(sc2) {
			t.Fatalf("round trip changed %v into %v", sc, sc2)
		}
	})
}
