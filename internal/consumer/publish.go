package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// Headers the provisioner writes.
const (
	HeaderDLQReason      = "Provisioner-Dlq-Reason"
	HeaderDLQError       = "Provisioner-Dlq-Error"
	HeaderDLQSubject     = "Provisioner-Dlq-Subject"
	HeaderDLQStream      = "Provisioner-Dlq-Stream"
	HeaderDLQSequence    = "Provisioner-Dlq-Sequence"
	HeaderDLQDeliveries  = "Provisioner-Dlq-Deliveries"
	HeaderDLQTime        = "Provisioner-Dlq-Time"
	HeaderDLQRequestID   = "Provisioner-Dlq-Request-Id"
	HeaderDLQOriginalMsg = "Provisioner-Dlq-Original-Msg-Id"
	HeaderTraceparent    = "traceparent"
	// HeaderOriginalSequence and HeaderRevision travel with a dead letter and its replay: the
	// request's place in the publish order, and the revision of the verdict it last got. The worker
	// reads them only on a replayed message (Nats-Msg-Id "replay:…").
	HeaderOriginalSequence = "Provisioner-Original-Sequence"
	HeaderRevision         = "Provisioner-Revision"
)

// Publisher publishes results and dead letters and waits for each PubAck.
type Publisher struct {
	js     jetstream.JetStream
	topo   Topology
	source string
}

// NewPublisher returns a Publisher; source is the CloudEvents source of results (e.g. "provisioner").
func NewPublisher(js jetstream.JetStream, t Topology, source string) *Publisher {
	if source == "" {
		source = "provisioner"
	}
	return &Publisher{js: js, topo: t.WithDefaults(), source: source}
}

// PublishResult publishes a result with Nats-Msg-Id = request id + message, CloudEvents attributes
// and trace context, and returns once JetStream has stored it (or dropped it as a duplicate of an
// earlier publish, which is the same thing for the caller). With tracing on, the result's publish
// span (a child of ctx's) is what its headers carry; with tracing off, the request's traceparent,
// or a new one.
func (p *Publisher) PublishResult(ctx context.Context, res *contract.Result, traceparent string) (err error) {
	body, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	msg := &nats.Msg{Subject: p.topo.ResultSubject(res.Message, res.RequestID), Data: body, Header: nats.Header{}}
	id := res.MsgID()
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-id", id)
	msg.Header.Set("ce-type", "dev.provisioner.result.v1."+res.Message)
	msg.Header.Set("ce-source", p.source)
	msg.Header.Set("ce-subject", res.RequestID)
	msg.Header.Set("ce-time", res.ProducedAt.UTC().Format(time.RFC3339Nano))
	msg.Header.Set("content-type", "application/json")
	ctx, span := tracing.StartPublish(ctx, nil, msg, contract.RequestToken(res.RequestID))
	defer func() { span.End(err, "") }()
	if msg.Header.Get(HeaderTraceparent) == "" { // no span recording: carry the request's trace on
		if traceparent == "" {
			traceparent = newTraceparent()
		}
		msg.Header.Set(HeaderTraceparent, traceparent)
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish result %s: %w", msg.Subject, err)
	}
	return nil
}

// DeadLetter describes why a request is dead-lettered.
type DeadLetter struct {
	Reason     contract.Code
	Error      string
	RequestID  string
	Deliveries uint64
	// OriginalSequence is the request's place in the publish order; Revision the revision of the
	// verdict published with this dead letter. A replay keeps the first and raises the second.
	OriginalSequence uint64
	Revision         int
}

// PublishDeadLetter copies a request to the dead-letter stream plus the reason: its body with every
// credentials object removed and cut to DeadLetterBodyLimit, and its headers but those that may
// carry a credential (keepHeader). Its Nats-Msg-Id is derived from the request id, so a redelivery or a second copy
// of the request that dead-letters again does not store a second dead letter.
func (p *Publisher) PublishDeadLetter(ctx context.Context, orig jetstream.Msg, dl DeadLetter, now time.Time) error {
	body, treatment := deadLetterBody(orig.Data())
	msg := &nats.Msg{Subject: p.topo.DLQSubject(p.suffix(orig.Subject())), Data: body, Header: nats.Header{}}
	budget := deadLetterHeaderBudget // so that a dead letter always fits DLQMaxMsgSize
	for k, vs := range orig.Headers() {
		if len(vs) == 0 {
			continue
		}
		v := headerSafe(vs[0])
		switch {
		case k == jetstream.MsgIDHeader:
			msg.Header.Set(HeaderDLQOriginalMsg, v)
		case keepHeader(k) && len(k)+len(v) <= budget:
			msg.Header.Set(k, v)
			budget -= len(k) + len(v)
		}
	}
	if treatment != "" {
		msg.Header.Set(HeaderDLQBody, treatment)
		if treatment != "redacted" {
			msg.Header.Set(HeaderDLQBodyCut, strconv.Itoa(len(orig.Data())))
		}
	}
	var seq uint64
	stream := p.topo.RequestsStream
	if meta, err := orig.Metadata(); err == nil {
		seq, stream = meta.Sequence.Stream, meta.Stream
	}
	// one dead letter per request: copies of a request (same id) and redeliveries collapse within the
	// duplicate window; a body without a readable id is keyed on its stream sequence
	dlqID := "dlq:" + stream + ":" + strconv.FormatUint(seq, 10)
	if dl.RequestID != "" && !strings.HasPrefix(dl.RequestID, "seq-") {
		dlqID = "dlq:" + dl.RequestID
	}
	msg.Header.Set(jetstream.MsgIDHeader, dlqID)
	msg.Header.Set(HeaderDLQReason, string(dl.Reason))
	msg.Header.Set(HeaderDLQError, headerSafe(dl.Error))
	msg.Header.Set(HeaderDLQSubject, orig.Subject())
	msg.Header.Set(HeaderDLQStream, stream)
	msg.Header.Set(HeaderDLQSequence, strconv.FormatUint(seq, 10))
	msg.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(dl.Deliveries, 10))
	msg.Header.Set(HeaderDLQTime, now.UTC().Format(time.RFC3339Nano))
	if dl.OriginalSequence == 0 {
		dl.OriginalSequence = seq
	}
	msg.Header.Set(HeaderOriginalSequence, strconv.FormatUint(dl.OriginalSequence, 10))
	msg.Header.Set(HeaderRevision, strconv.Itoa(max(dl.Revision, 1)))
	if dl.RequestID != "" {
		msg.Header.Set(HeaderDLQRequestID, headerSafe(dl.RequestID))
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish dead letter %s: %w", msg.Subject, err)
	}
	return nil
}

// suffix is the part of a request subject after "<prefix>.requests.".
func (p *Publisher) suffix(subject string) string {
	if s, ok := strings.CutPrefix(subject, p.topo.SubjectPrefix+".requests."); ok && s != "" {
		return s
	}
	return "unknown"
}

// headerSafe keeps a header value on one line and bounded.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = s[:1021] + "..."
	}
	return s
}

// newTraceparent starts a W3C trace for a request that came without one.
func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}
