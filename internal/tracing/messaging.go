package tracing

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/provisioner-dev/provisioner/internal/tracing/natstrace"
)

// AttrLinkFirstDelivery marks a redelivery's link to the first delivery (value "first_delivery").
const AttrLinkFirstDelivery = attribute.Key("messaging.nats.link")

const linkFirstDelivery = "first_delivery"

// StartPublish starts the producer span of publishing msg and injects its context into msg's
// headers (see natstrace.StartPublish). requestToken is the subject's last token when it names one
// request (a result's subject; the span is then named after the subject with "{request}" in its
// place), "" for a static subject. tp nil means the provider of the span in ctx; with tp nil and no
// recording span in ctx no span is started, and an unsampled context is passed on as it is.
func StartPublish(ctx context.Context, tp trace.TracerProvider, msg *nats.Msg, requestToken string) (context.Context, Span) {
	var tracer trace.Tracer
	switch {
	case tp != nil:
		tracer = tp.Tracer(ScopeName)
	case recording(ctx):
		tracer = tracerFrom(ctx)
	default:
		if msg.Header == nil {
			msg.Header = nats.Header{}
		}
		if trace.SpanContextFromContext(ctx).IsValid() {
			natstrace.Inject(ctx, msg.Header)
		}
		return ctx, Span{}
	}
	var template string
	if requestToken != "" {
		template = strings.TrimSuffix(msg.Subject, requestToken) + "{request}"
	}
	ctx, span := natstrace.StartPublish(ctx, tracer, msg, template)
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
	parent := natstrace.Extract(ctx, d.Header)
	attrs := []attribute.KeyValue{
		natstrace.MessagingSystem,
		natstrace.AttrDestination.String(d.Subject),
		natstrace.AttrConsumerGroup.String(d.Consumer),
		natstrace.AttrOperationType.String(natstrace.OperationProcess),
		natstrace.AttrOperationName.String("process"),
		natstrace.AttrDeliveryCount.Int(d.Number),
		natstrace.AttrStream.String(d.Stream),
		natstrace.AttrStreamSequence.Int64(int64(d.Sequence)),
		natstrace.AttrBodySize.Int(d.BodySize),
	}
	if id := d.Header.Get(natstrace.HeaderMsgID); id != "" {
		attrs = append(attrs, natstrace.AttrMessageID.String(id))
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
	ctx, span := tp.Tracer(ScopeName).Start(parent, "process "+d.Subject, opts...)
	// children get ordinary ids
	ctx = context.WithValue(ctx, firstDeliveryKey{}, "")
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
