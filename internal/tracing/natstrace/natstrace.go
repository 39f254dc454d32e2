// Package natstrace carries W3C trace context (traceparent, tracestate, baggage) in NATS message
// headers and starts the producer span of a publish, after OpenTelemetry's messaging semantic
// conventions with messaging.system=nats. It uses the OpenTelemetry API alone, no SDK, so that the
// public client package can depend on it without pulling exporters into an app's build; the
// worker's side (the process spans, the provider) is in package tracing.
package natstrace

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the provisioner's spans.
const ScopeName = "github.com/provisioner-dev/provisioner"

// Messaging attributes, after OpenTelemetry's messaging semantic conventions. The conventions have
// no value of messaging.system for NATS and no generic delivery count; like their vendor-specific
// ones (messaging.servicebus.message.delivery_count) the NATS-specific attributes are under
// messaging.nats.
const (
	AttrMessagingSystem = attribute.Key("messaging.system")
	AttrDestination     = attribute.Key("messaging.destination.name")
	AttrDestinationTmpl = attribute.Key("messaging.destination.template")
	AttrConsumerGroup   = attribute.Key("messaging.consumer.group.name")
	AttrMessageID       = attribute.Key("messaging.message.id")
	AttrOperationType   = attribute.Key("messaging.operation.type")
	AttrOperationName   = attribute.Key("messaging.operation.name")
	AttrBodySize        = attribute.Key("messaging.message.body.size")
	AttrDeliveryCount   = attribute.Key("messaging.nats.message.delivery_count")
	AttrStream          = attribute.Key("messaging.nats.stream.name")
	AttrStreamSequence  = attribute.Key("messaging.nats.stream.sequence")
	// OperationSend and OperationProcess are values of messaging.operation.type.
	OperationSend    = "send"
	OperationProcess = "process"
	// HeaderMsgID is JetStream's deduplication id, the message id of the conventions.
	HeaderMsgID = "Nats-Msg-Id"
)

// MessagingSystem is messaging.system=nats.
var MessagingSystem = AttrMessagingSystem.String("nats")

// HeaderCarrier carries W3C trace context in NATS message headers. NATS header names are case
// sensitive; traceparent, tracestate and baggage are written and read in lower case, as W3C and
// every other OpenTelemetry carrier spells them.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces key's values with value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// propagator is W3C trace context and W3C baggage. It holds no state.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Inject writes ctx's span context and baggage into h (traceparent, tracestate, baggage). With no
// valid span in ctx it writes no traceparent.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the remote span context and baggage h carries, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, HeaderCarrier(h))
}

// StartPublish starts, with tracer, the producer span of publishing msg and injects its context
// into msg's headers, so that the receiver continues the trace. The span's attributes follow the
// messaging conventions: operation type send, destination = subject, message id = Nats-Msg-Id (set
// it first). A subject that names one request (a result's) is no span name: template is its
// low-cardinality form (e.g. "provisioner.results.source_created.{request}"), the span's name and
// messaging.destination.template; "" when the subject is static. End the span once the PubAck (or
// the failure) is in.
func StartPublish(ctx context.Context, tracer trace.Tracer, msg *nats.Msg, template string) (context.Context, trace.Span) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	attrs := []attribute.KeyValue{
		MessagingSystem,
		AttrDestination.String(msg.Subject),
		AttrOperationType.String(OperationSend),
		AttrOperationName.String("publish"),
		AttrBodySize.Int(len(msg.Data)),
	}
	if id := msg.Header.Get(HeaderMsgID); id != "" {
		attrs = append(attrs, AttrMessageID.String(id))
	}
	name := msg.Subject
	if template != "" {
		name = template
		attrs = append(attrs, AttrDestinationTmpl.String(template))
	}
	ctx, span := tracer.Start(ctx, "publish "+name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	Inject(ctx, msg.Header)
	return ctx, span
}
