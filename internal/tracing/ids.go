package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// firstDeliveryKey marks, in the context given to Start, the process span of a message's first
// delivery; its value is the message's seed (see deliverySeed), "" for none.
type firstDeliveryKey struct{}

// idGenerator makes random trace and span ids, except for the process span of a first delivery,
// whose ids derive from the message's identity: a redelivery can then link to it without any state
// shared between replicas.
type idGenerator struct{}

var _ sdktrace.IDGenerator = idGenerator{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if seed, _ := ctx.Value(firstDeliveryKey{}).(string); seed != "" {
		tid := seededTraceID(seed)
		return tid, seededSpanID(seed, tid)
	}
	return randomTraceID(), randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	if seed, _ := ctx.Value(firstDeliveryKey{}).(string); seed != "" {
		return seededSpanID(seed, traceID)
	}
	return randomSpanID()
}

// firstDeliverySpanContext is the span context of the process span of the first delivery of the
// message identified by seed, whose parent was parent (invalid: the message carried no context).
func firstDeliverySpanContext(parent trace.SpanContext, seed string) trace.SpanContext {
	tid, flags := parent.TraceID(), parent.TraceFlags()
	if !parent.IsValid() {
		tid, flags = seededTraceID(seed), trace.FlagsSampled // a root is sampled unless the sampler says otherwise
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: seededSpanID(seed, tid), TraceFlags: flags})
}

func seededTraceID(seed string) trace.TraceID {
	sum := sha256.Sum256([]byte("provisioner trace\x00" + seed))
	var tid trace.TraceID
	copy(tid[:], sum[:])
	if !tid.IsValid() {
		tid[15] = 1
	}
	return tid
}

func seededSpanID(seed string, tid trace.TraceID) trace.SpanID {
	sum := sha256.Sum256(append([]byte("provisioner span\x00"+seed+"\x00"), tid[:]...))
	var sid trace.SpanID
	copy(sid[:], sum[:])
	if !sid.IsValid() {
		sid[7] = 1
	}
	return sid
}

func randomTraceID() trace.TraceID {
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}
