// Package tracing is the provisioner's OpenTelemetry tracing: building the tracer provider from the
// standard OTEL_* environment (off unless asked for), carrying W3C trace context (traceparent,
// tracestate, baggage) in NATS headers, starting spans that follow OpenTelemetry's messaging
// semantic conventions for NATS JetStream (messaging.system=nats), the Airbyte client's HTTP
// spans, the slog handler that puts trace_id and span_id on log lines, and the span-tree printer of
// `provisioner dev --traces`.
//
// No OpenTelemetry instrumentation for NATS is maintained elsewhere, and the conventions have no
// `nats` value yet; this package is the provisioner's reference for both. It never touches
// OpenTelemetry's global provider or propagator: the provider is built by the process and injected,
// and code below the worker derives its tracer from the span in its context, so a library called
// without a span records nothing and costs next to nothing.
//
// Nothing secret goes into a span: attributes name subjects, durables, request ids, workspaces,
// secret backends and error codes, never a secret reference's path, a credential, a token or an
// error's text.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// ScopeName is the instrumentation scope of every span this package starts.
const ScopeName = natstrace.ScopeName

// Attribute keys of the provisioner's own span attributes (the messaging ones are in natstrace).
const (
	AttrRequestID     = attribute.Key("provisioner.request.id")
	AttrWorkspace     = attribute.Key("provisioner.workspace.name")
	AttrOutcome       = attribute.Key("provisioner.outcome")
	AttrErrorCode     = attribute.Key("provisioner.error.code")
	AttrSecretBackend = attribute.Key("provisioner.secret.backend")
	AttrLedgerOutcome = attribute.Key("provisioner.ledger.outcome")
	attrErrorType     = attribute.Key("error.type")
	attrDBSystem      = attribute.Key("db.system.name")
	attrDBOperation   = attribute.Key("db.operation.name")
	// errorTypeUnnamed is the conventions' error.type for an error without a known type.
	errorTypeUnnamed = "_OTHER"
)

// tracerFrom returns the tracer of the span in ctx: the provider the worker was given, or a no-op
// one when ctx carries no span (tracing off, or a call outside any request).
func tracerFrom(ctx context.Context) trace.Tracer {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(ScopeName)
}

// recording reports whether ctx's span records: only then do the helpers start children. (Under a
// parent that is not sampled every child would be dropped too; with tracing off there is no span.)
func recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// Span is a started span that ends with the outcome of the work it covers. The zero Span, which
// the helpers return when nothing is recorded, does nothing.
type Span struct{ span trace.Span }

// End ends the span; a non-nil err marks it failed with code as its error type. The error's text is
// never recorded: it may name a secret's path.
func (s Span) End(err error, code string) {
	if s.span == nil {
		return
	}
	if err != nil {
		if code == "" {
			code = errorTypeUnnamed
		}
		s.span.SetAttributes(attrErrorType.String(code))
		s.span.SetStatus(codes.Error, code)
	}
	s.span.End()
}

// Recording reports whether the span records: attributes worth computing only for a recorded span
// are computed only then.
func (s Span) Recording() bool { return s.span != nil && s.span.IsRecording() }

// SetAttributes adds attributes to the span.
func (s Span) SetAttributes(kv ...attribute.KeyValue) {
	if s.span != nil {
		s.span.SetAttributes(kv...)
	}
}

// StartSecretFetch starts the span of one secret fetch. It names the backend ("file", "env",
// "vault") and nothing of the reference.
func StartSecretFetch(ctx context.Context, backend string) (context.Context, Span) {
	if !recording(ctx) {
		return ctx, Span{}
	}
	ctx, span := tracerFrom(ctx).Start(ctx, "secret fetch", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrSecretBackend.String(backend)))
	return ctx, Span{span}
}

// StartLedger starts the span of one ledger operation ("claim", "complete").
func StartLedger(ctx context.Context, op string) (context.Context, Span) {
	if !recording(ctx) {
		return ctx, Span{}
	}
	ctx, span := tracerFrom(ctx).Start(ctx, "ledger "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrDBSystem.String("nats"), attrDBOperation.String(op)))
	return ctx, Span{span}
}
