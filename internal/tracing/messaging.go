package tracing

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Messaging attributes, after OpenTelemetry's messaging semantic conventions. The conventions have
// no value of messaging.system for NATS and no generic delivery count; like their vendor-specific
// ones (messaging.servicebus.message.delivery_count) the NATS-specific attributes are under
// messaging.nats.
const (
	AttrMessagingSystem       = attribute.Key("messaging.system")
	AttrDestination           = attribute.Key("messaging.destination.name")
	AttrConsumerGroup         = attribute.Key("messaging.consumer.group.name")
	AttrMessageID             = attribute.Key("messaging.message.id")
	AttrOperationType         = attribute.Key("messaging.operation.type")
	AttrOperationName         = attribute.Key("messaging.operation.name")
	AttrBodySize              = attribute.Key("messaging.message.body.size")
	AttrDeliveryCount         = attribute.Key("messaging.nats.message.delivery_count")
	AttrStream                = attribute.Key("messaging.nats.stream.name")
	AttrStreamSequence        = attribute.Key("messaging.nats.stream.sequence")
	AttrLinkFirstDelivery     = attribute.Key("messaging.nats.link")
	linkFirstDelivery         = "first_delivery"
	operationSend             = "send"
	operationProcess          = "process"
	operationNamePublish      = "publish"
	operationNameProcess      = "process"
	messagingSystemNATS       = "nats"
	headerNATSMsgID           = "Nats-Msg-Id"
	firstDeliverySeedUnsetVal = ""
)

// MessagingSystem is messaging.system=nats.
var MessagingSystem = AttrMessagingSystem.String(messagingSystemNATS)

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

// StartPublish starts the producer span of publishing msg and injects its context into msg's
// headers, so the receiver continues the trace. tp nil means the provider of the span in ctx. The
// span's attributes follow the messaging conventions (operation type send, destination = subject,
// message id = Nats-Msg-Id). End it with the publish's error once the PubAck (or failure) is in.
// With tp nil and no recording span in ctx, no span is started.
func StartPublish(ctx context.Context, tp trace.TracerProvider, msg *nats.Msg) (context.Context, Span) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	var tracer trace.Tracer
	switch {
	case tp != nil:
		tracer = tp.Tracer(ScopeName)
	case recording(ctx):
		tracer = tracerFrom(ctx)
	default: // nothing to record; pass on whatever context there is (an unsampled one)
		if trace.SpanContextFromContext(ctx).IsValid() {
			Inject(ctx, msg.Header)
		}
		return ctx, Span{}
	}
	attrs := []attribute.KeyValue{
		MessagingSystem,
		AttrDestination.String(msg.Subject),
		AttrOperationType.String(operationSend),
		AttrOperationName.String(operationNamePublish),
		AttrBodySize.Int(len(msg.Data)),
	}
	if id := msg.Header.Get(headerNATSMsgID); id != "" {
		attrs = append(attrs, AttrMessageID.String(id))
	}
	ctx, span := tracer.Start(ctx, operationNamePublish+" "+msg.Subject,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	Inject(ctx, msg.Header)
	return ctx, Span{span}
}

// Delivery describes one delivery of a JetStream message to the worker.
type Delivery struct {
	Subject   string
	Header    nats.Header
	BodySize  int
	Stream    string
	Sequence  uint64    // stream sequence
	Stored    time.Time // when the stream stored the message (the same for every delivery)
	Consumer  string    // the durable: the consumer group
	Number    int       // 1 for the first delivery
	RequestID string    // "" until decoded
}

// ProcessSpan is the consumer span of one delivery.
type ProcessSpan struct{ span trace.Span }

// StartProcess starts the consumer span of processing one delivery, as a child of the context the
// message's headers carry (a message without one starts a new trace). tp nil, a no-op provider or
// a Provider that is off mean off: ctx is returned as it is, and nothing is extracted.
//
// Redeliveries are linked to the first delivery: the first delivery's span id (and, when the message
// carried no context, its trace id) is derived from the message's identity in its stream by the
// provider's ID generator (see NewProvider), so a redelivery on any replica can name it without
// shared state.
func StartProcess(ctx context.Context, tp trace.TracerProvider, d Delivery) (context.Context, ProcessSpan) {
	if !active(tp) {
		return ctx, ProcessSpan{trace.SpanFromContext(ctx)}
	}
	parent := Extract(ctx, d.Header)
	attrs := []attribute.KeyValue{
		MessagingSystem,
		AttrDestination.String(d.Subject),
		AttrConsumerGroup.String(d.Consumer),
		AttrOperationType.String(operationProcess),
		AttrOperationName.String(operationNameProcess),
		AttrDeliveryCount.Int(d.Number),
		AttrStream.String(d.Stream),
		AttrStreamSequence.Int64(int64(d.Sequence)),
		AttrBodySize.Int(d.BodySize),
	}
	if id := d.Header.Get(headerNATSMsgID); id != "" {
		attrs = append(attrs, AttrMessageID.String(id))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	seed := deliverySeed(d.Stream, d.Sequence, d.Stored)
	if d.Number > 1 {
		opts = append(opts, trace.WithLinks(trace.Link{
			SpanContext: firstDeliverySpanContext(trace.SpanContextFromContext(parent), seed),
			Attributes:  []attribute.KeyValue{AttrLinkFirstDelivery.String(linkFirstDelivery)},
		}))
	} else {
		parent = context.WithValue(parent, firstDeliveryKey{}, seed)
	}
	ctx, span := tp.Tracer(ScopeName).Start(parent, operationNameProcess+" "+d.Subject, opts...)
	// children get ordinary ids
	ctx = context.WithValue(ctx, firstDeliveryKey{}, firstDeliverySeedUnsetVal)
	return ctx, ProcessSpan{span}
}

// SetRequest names the request and workspace the delivery carries (allowed on spans; never metric
// labels).
func (s ProcessSpan) SetRequest(requestID, workspace string) {
	if !s.span.IsRecording() {
		return
	}
	s.span.SetAttributes(AttrRequestID.String(requestID), AttrWorkspace.String(workspace))
}

// End ends the span with the delivery's outcome ("created", "retry", …) and, when it failed, its
// error code.
func (s ProcessSpan) End(outcome, code string) {
	if s.span.IsRecording() {
		s.span.SetAttributes(AttrOutcome.String(outcome))
		if code != "" {
			s.span.SetAttributes(AttrErrorCode.String(code), attrErrorType.String(code))
			s.span.SetStatus(codes.Error, code)
		}
	}
	s.span.End()
}

// deliverySeed identifies a message in its stream for the lifetime of the stream (the stored time
// tells a recreated stream's sequence numbers apart).
func deliverySeed(stream string, seq uint64, stored time.Time) string {
	return stream + "\x00" + strconv.FormatUint(seq, 10) + "\x00" + strconv.FormatInt(stored.UnixNano(), 10)
}

// active reports whether tp records spans at all.
func active(tp trace.TracerProvider) bool {
	switch p := tp.(type) {
	case nil:
		return false
	case *Provider:
		return p.Enabled()
	case noop.TracerProvider:
		return false
	}
	return true
}

// SpanContext is the span's context (invalid when tracing is off).
func (s ProcessSpan) SpanContext() trace.SpanContext { return s.span.SpanContext() }
