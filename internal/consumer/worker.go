package consumer

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/logattr"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// Handler is the domain step. Implemented by *provision.Service.
type Handler interface {
	Handle(ctx context.Context, req event.Request, d provision.Delivery) provision.Decision
}

// Metrics is what the worker counts. Implemented by *metrics.Metrics.
type Metrics interface {
	RequestReceived(kind string, redelivered bool)
	RequestStarted(kind string) (done func(outcome string))
	DeadLettered(reason string)
	ResultPublished(message string)
	SetConsumerLag(pending, ackPending, redelivered uint64)
}

// OutcomeNATSUnavailable is the metrics outcome of a delivery returned because JetStream or the
// ledger was briefly unreachable.
const OutcomeNATSUnavailable = "nats_unavailable"

// Readiness receives the worker's readiness condition. Implemented by *metrics.Health.
type Readiness interface {
	Set(condition string, ok bool, reason string)
}

// Config configures a Worker.
type Config struct {
	Topology Topology
	Policy   ConsumerPolicy
	// Concurrency is how many requests one worker handles at once.
	Concurrency int
	// NakDelay is the delay before redelivery after a retryable failure, from the delivery number.
	// Default: exponential from 1s, doubling, capped at 2m, with jitter. (The consumer's own BackOff
	// does not apply to Nak, so the worker computes it.)
	NakDelay func(delivery int) time.Duration
	// ShutdownTimeout bounds the drain: in-flight requests get this long to finish, then are interrupted
	// and Nak'd.
	ShutdownTimeout time.Duration
	// LagPollInterval is how often consumer info is read for the lag metrics; default 5s.
	LagPollInterval time.Duration
	// Pull tunes the pull loop's leader-loss detection; zero values take the defaults.
	Pull   PullConfig
	Source string // CloudEvents source of results
	Now    func() time.Time
	// TracerProvider records a span per delivery and its children; nil = tracing off.
	TracerProvider trace.TracerProvider
}

// Worker pulls requests from the durable consumer and handles them.
type Worker struct {
	js        jetstream.JetStream
	cfg       Config
	handler   Handler
	decoder   *event.Decoder
	publisher *Publisher
	metrics   Metrics
	ready     Readiness
	logger    *slog.Logger
}

// NewWorker returns a Worker. Call Setup first (Run does not create streams).
func NewWorker(js jetstream.JetStream, cfg Config, h Handler, dec *event.Decoder, m Metrics, ready Readiness, logger *slog.Logger) (*Worker, error) {
	if js == nil || h == nil || dec == nil || m == nil || ready == nil || logger == nil {
		return nil, errors.New("consumer: every dependency is required")
	}
	cfg.Topology = cfg.Topology.WithDefaults()
	if cfg.Concurrency <= 0 {
		return nil, errors.New("consumer: concurrency must be positive")
	}
	if cfg.NakDelay == nil {
		cfg.NakDelay = DefaultNakDelay
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 25 * time.Second
	}
	if cfg.LagPollInterval <= 0 {
		cfg.LagPollInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Pull = cfg.Pull.withDefaults()
	return &Worker{
		js: js, cfg: cfg, handler: h, decoder: dec, metrics: m, ready: ready, logger: logger,
		publisher: NewPublisher(js, cfg.Topology, cfg.Source),
	}, nil
}

// DefaultNakDelay is 1s doubling per delivery, capped at 2m, with ±20% jitter.
func DefaultNakDelay(delivery int) time.Duration {
	d := time.Second << min(max(delivery-1, 0), 7)
	d = min(d, 2*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// handle processes one message end to end.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		w.logger.Error("message without metadata; terminating it", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	suffix, _ := strings.CutPrefix(msg.Subject(), w.cfg.Topology.SubjectPrefix+".requests.")
	kind := contract.KindFromSuffix(suffix)
	delivery := int(meta.NumDelivered)
	final := delivery >= w.cfg.Policy.MaxDeliver
	w.metrics.RequestReceived(string(kind), delivery > 1)
	done := w.metrics.RequestStarted(string(kind))
	outcome := provision.OutcomeRetry
	defer func() { done(outcome) }()

	ctx, span := tracing.StartProcess(ctx, w.cfg.TracerProvider, tracing.Delivery{Subject: msg.Subject(), Header: msg.Headers(), BodySize: len(msg.Data()), Stream: meta.Stream, Sequence: meta.Sequence.Stream, Stored: meta.Timestamp, Consumer: meta.Consumer, Number: delivery})
	var dec provision.Decision
	defer func() { span.End(outcome, errorCode(dec.Err)) }()
	logger := w.logger.With(append([]any{"kind", kind, "stream_seq", meta.Sequence.Stream, "delivery", delivery}, tracing.LogAttrs(ctx)...)...)

	// Keep the message ours while we work: AckWait restarts at every InProgress.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		t := time.NewTicker(max(w.cfg.Policy.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()

	order := orderOf(msg, meta)
	req, err := w.decoder.Decode(kind, msg.Data())
	if err != nil {
		id, ws := event.PeekID(msg.Data())
		if id == "" {
			// the publisher's de-duplication id is the request id the app knows (publish and the client set it)
			id = msg.Headers().Get(jetstream.MsgIDHeader)
		}
		if id == "" || len(id) > 128 {
			id = "seq-" + strconv.FormatUint(meta.Sequence.Stream, 10)
		}
		code, _ := event.CodeOf(err)
		if kind == contract.KindUnknown {
			kind = contract.KindCredentialsSubmitted // error results of unknown subjects use source_create_error
		}
		// the error result says it (dev prints it); one line per verdict, so this one is debug
		logger.Debug("invalid request", "request_id", id, "code", code, "error", err)
		dec = provision.Decision{
			Action: provision.DeadLetter, Outcome: provision.OutcomeDeadLetter, Err: err,
			Result: event.ErrorResult(kind, id, ws, delivery, code, errorText(err), false, w.cfg.Now()),
		}
		stampRevision(dec.Result, order.revision)
	} else {
		attrs := []slog.Attr{slog.String("request_id", req.ID()), slog.String("workspace", req.WorkspaceName())}
		switch {
		case req.CredentialsSubmitted != nil:
			attrs = append(attrs, slog.String("connector_kind", req.CredentialsSubmitted.ConnectorKind()))
		case req.ConnectorDisconnected != nil:
			attrs = append(attrs, slog.String("connector_kind", req.ConnectorDisconnected.ConnectorKind()))
		}
		span.SetRequest(req.ID(), req.WorkspaceName())
		logger = slog.New(logger.Handler().WithAttrs(attrs))
		// lines logged with the request's context (the Airbyte client, the secret store) carry them too
		reqCtx := logattr.With(ctx, attrs...)
		dec = w.handler.Handle(reqCtx, req, provision.Delivery{Number: delivery, Final: final, Sequence: order.sequence, Revision: order.revision, Logger: logger})
	}
	stopHB()

	interrupted := ctx.Err() != nil
	switch {
	case interrupted && dec.Action != provision.Ack:
		// shutdown cut the work short: not the request's fault, whatever the delivery count
		logger.Info("interrupted by shutdown; returning the request", "error", dec.Err)
		_ = msg.Nak()
	case dec.Action == provision.Ack:
		outcome = dec.Outcome
		if !w.finish(ctx, msg, logger, dec, delivery, nil) {
			outcome = OutcomeNATSUnavailable // returned, not finished: the next delivery says how it ended
		}
	case dec.Action == provision.DeadLetter:
		outcome = dec.Outcome
		if !w.finish(ctx, msg, logger, dec, delivery, &deadLetterOrder{deliveries: meta.NumDelivered, order: order}) {
			outcome = OutcomeNATSUnavailable
		}
	default:
		if code, _ := event.CodeOf(dec.Err); code == contract.CodeNATSUnavailable {
			outcome = OutcomeNATSUnavailable
		}
		delay := w.cfg.NakDelay(delivery)
		if dec.RetryAfter > 0 {
			delay = dec.RetryAfter
		}
		logger.Info("will retry", "error", dec.Err, "delay", delay)
		if err := msg.NakWithDelay(delay); err != nil {
			logger.Warn("nak failed; the request returns after AckWait", "error", err)
		}
	}
}

// finish publishes the decision's result (and dead letter), then acks or terminates. If a publish
// fails, the request is Nak'd: the ledger makes the next delivery publish the same result again.
// It reports whether the request was finished (false: returned because JetStream did not take a
// publish).
func (w *Worker) finish(ctx context.Context, msg jetstream.Msg, logger *slog.Logger, dec provision.Decision, delivery int, deadLetter *deadLetterOrder) bool {
	pubCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.publisher.PublishResult(pubCtx, dec.Result, msg.Headers().Get(HeaderTraceparent)); err != nil {
		logger.Error("result not published; returning the request", "error", err)
		_ = msg.NakWithDelay(w.cfg.NakDelay(delivery))
		return false
	}
	w.metrics.ResultPublished(dec.Result.Message)
	if deadLetter == nil {
		if err := msg.Ack(); err != nil {
			logger.Warn("ack failed; a redelivery will replay the result", "error", err)
		}
		return true
	}
	code, _ := event.CodeOf(dec.Err)
	if err := w.publisher.PublishDeadLetter(pubCtx, msg, DeadLetter{
		Reason: code, Error: errorText(dec.Err), RequestID: dec.Result.RequestID, Deliveries: deadLetter.deliveries,
		OriginalSequence: deadLetter.order.sequence, Revision: deadLetter.order.revision,
	}, w.cfg.Now()); err != nil {
		logger.Error("dead letter not published; returning the request", "error", err)
		_ = msg.NakWithDelay(w.cfg.NakDelay(delivery))
		return false
	}
	w.metrics.DeadLettered(string(code))
	// the verdict is the result event (and the dead-letter metric); the log line is for debugging
	logger.Debug("request failed", "code", code, "retryable", dec.Result.Error.Retryable, "error", dec.Err)
	if err := msg.TermWithReason(string(code)); err != nil {
		logger.Warn("term failed; a redelivery will dead-letter it again (deduplicated)", "error", err)
	}
	return true
}

// errorCode is the code of a failed decision's error, "" for none.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	code, _ := event.CodeOf(err)
	return string(code)
}

// order is a request's place in the publish order and the revision its verdict gets.
type order struct {
	sequence uint64
	revision int
}

// deadLetterOrder is what a dead letter keeps of its request's delivery.
type deadLetterOrder struct {
	deliveries uint64
	order      order
}

// orderOf reads a message's order: its stream sequence and revision 1, or, for a replayed dead
// letter, the sequence it was first published with and the revision its replay raised.
func orderOf(msg jetstream.Msg, meta *jetstream.MsgMetadata) order {
	o := order{sequence: meta.Sequence.Stream, revision: 1}
	h := msg.Headers()
	if !strings.HasPrefix(h.Get(jetstream.MsgIDHeader), "replay:") {
		return o
	}
	if seq, err := strconv.ParseUint(h.Get(HeaderOriginalSequence), 10, 64); err == nil && seq > 0 {
		o.sequence = seq
	}
	if rev, err := strconv.Atoi(h.Get(HeaderRevision)); err == nil && rev > 1 {
		o.revision = rev
	}
	return o
}

// stampRevision sets an error result's revision (the provision step sets its own results').
func stampRevision(res *contract.Result, revision int) { res.Revision = max(revision, 1) }

func errorText(err error) string {
	var ce *event.CodedError
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
