package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPTransport wraps next with otelhttp: every call made with a context that carries a span gets a
// client span after the HTTP semantic conventions, named "<method> <operation>" (operation from
// the context, e.g. "connectors.create"), and sends W3C traceparent to the server (never baggage: it
// is the app's, and the server is a third party). Calls without a span pass straight through, so a
// worker with tracing off pays one context lookup per call. otelhttp records no headers or bodies,
// so tokens and credentials stay out of the spans.
func HTTPTransport(next http.RoundTripper, operation func(context.Context) string) http.RoundTripper {
	return otelhttp.NewTransport(next,
		otelhttp.WithFilter(func(r *http.Request) bool { return trace.SpanContextFromContext(r.Context()).IsValid() }),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // the metrics package counts calls
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if op := operation(r.Context()); op != "" {
				return r.Method + " " + op
			}
			return r.Method
		}),
	)
}
