package client_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
)

// With a tracer provider, Submit publishes in a producer span of its own (a child of the caller's)
// and the request's headers carry that span's W3C context; without one, they carry the caller's
// span context, if any; with neither, no trace context.
func TestSubmitCarriesTraceContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	cases := []struct {
		name       string
		opts       []client.Option
		callerSpan bool
		want       string // "producer", "caller" or "" (no traceparent)
	}{
		{"a provider", []client.Option{client.WithTracerProvider(tp)}, true, "producer"},
		{"a provider, no caller span", []client.Option{client.WithTracerProvider(tp)}, false, "producer"},
		{"no provider, a caller span", nil, true, "caller"},
		{"neither", nil, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			c, nc, _ := connect(t, tc.opts...)
			copies, err := nc.SubscribeSync(contract.RequestSubject(contract.DefaultSubjectPrefix, contract.KindCustomerOnboarded))
			if err != nil {
				t.Fatal(err)
			}
			ctx := deadline(t, 30*time.Second)
			var caller trace.Span
			if tc.callerSpan {
				ctx, caller = tp.Tracer("app").Start(ctx, "signup")
			}
			sub, err := c.Submit(ctx, contract.CustomerOnboarded{WorkspaceName: "initech"})
			if err != nil {
				t.Fatal(err)
			}
			if caller != nil {
				caller.End()
			}
			msg, err := copies.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got := msg.Header.Get("traceparent")
			var producer *tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanKind == trace.SpanKindProducer {
					producer = &s
				}
			}
			switch tc.want {
			case "producer":
				if producer == nil {
					t.Fatal("no producer span")
				}
				if want := traceparent(producer.SpanContext); got != want {
					t.Errorf("traceparent %q, want the producer span's %q", got, want)
				}
				if producer.Name != "publish "+msg.Subject || !hasAttr(producer, "messaging.system", "nats") || !hasAttr(producer, "messaging.message.id", sub.RequestID) {
					t.Errorf("producer span %q %v", producer.Name, producer.Attributes)
				}
				if tc.callerSpan && producer.Parent.SpanID() != caller.SpanContext().SpanID() {
					t.Errorf("producer span's parent %v, want the caller's span", producer.Parent)
				}
			case "caller":
				if producer != nil {
					t.Errorf("a producer span without a provider: %q", producer.Name)
				}
				if want := traceparent(caller.SpanContext()); got != want {
					t.Errorf("traceparent %q, want the caller's %q", got, want)
				}
			default:
				if got != "" {
					t.Errorf("traceparent %q without any span", got)
				}
			}
			if _, err := c.Await(ctx, sub.RequestID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

func hasAttr(s *tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.String() == value {
			return true
		}
	}
	return false
}
