package client

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// WithTracerProvider makes Submit start a producer span ("publish <subject>", OpenTelemetry's
// messaging conventions with messaging.system=nats) with tp, as a child of the span in Submit's
// context, and put its W3C trace context (traceparent, tracestate, baggage) in the request's NATS
// headers: the worker continues the trace, and the verdict's headers carry it back. Without it,
// Submit starts no span but still passes on the context's span and baggage, if any. The Client never
// uses OpenTelemetry's global provider or propagator.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tracer = tp } }

// startPublish starts the request's producer span (with a provider) and injects the trace context
// into msg's headers. end records the publish's outcome and ends the span.
func (c *Client) startPublish(ctx context.Context, msg *nats.Msg) (_ context.Context, end func(error)) {
	if c.opts.tracer == nil {
		natstrace.Inject(ctx, msg.Header)
		return ctx, func(error) {}
	}
	ctx, span := natstrace.StartPublish(ctx, c.opts.tracer.Tracer(natstrace.ScopeName), msg, "")
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
}
