package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// Names of the product's streams and consumer (the worker's defaults).
const (
	requestsStream    = "PROVISIONER_REQUESTS"
	resultsStream     = "PROVISIONER_RESULTS"
	dlqStream         = "PROVISIONER_DLQ"
	workerConsumer    = "provisioner"
	requestSubject    = "provisioner.requests.credentials.submitted"
	disconnectSubject = "provisioner.requests.connector.disconnected"
	verifierDurable   = "chaos-verifier"
)

// Timeline keeps what the soak itself saw happen to each request id, for the report of a failure.
type Timeline struct {
	mu     sync.Mutex
	events map[string][]string
}

// NewTimeline returns an empty Timeline.
func NewTimeline() *Timeline { return &Timeline{events: map[string][]string{}} }

// Add records an event of a request id.
func (t *Timeline) Add(id, format string, a ...any) {
	line := time.Now().UTC().Format("15:04:05.000") + " soak: " + fmt.Sprintf(format, a...)
	t.mu.Lock()
	t.events[id] = append(t.events[id], line)
	t.mu.Unlock()
}

// Of returns the events of a request id.
func (t *Timeline) Of(id string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.events[id]...)
}

// Publish publishes the plan's sends at up to perSecond (0 = as fast as the broker takes them),
// retrying each until JetStream acknowledges it. Every send carries its own Nats-Msg-Id, so a
// retried publish is stored once while a deliberate resend is stored again.
func Publish(ctx context.Context, js jetstream.JetStream, p *Plan, perSecond float64, tl *Timeline, published func(int), logger *slog.Logger) error {
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	lim := rate.NewLimiter(limit, 16)
	for i, s := range p.Sends {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		r := p.Requests[s.Request]
		msg := &nats.Msg{Subject: r.Subject(), Data: r.Body(time.Now()), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, s.MsgID)
		for attempt := 1; ; attempt++ {
			pubCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ack, err := js.PublishMsg(pubCtx, msg)
			cancel()
			if err == nil {
				tl.Add(r.ID, "published copy %d (msg id %s) as request stream seq %d (duplicate=%t)", s.Copy, s.MsgID, ack.Sequence, ack.Duplicate)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt == 1 || attempt%20 == 0 {
				logger.Info("publish failed; retrying", "request_id", r.ID, "attempt", attempt, "error", err)
			}
			select {
			case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		published(i + 1)
	}
	return nil
}

// ResultReader follows the results stream through a durable consumer of its own, so that it
// resumes where it was after the NATS server restarts.
type ResultReader struct {
	cons    jetstream.Consumer
	needles []string // secrets and token prefixes no result may contain
	logger  *slog.Logger

	mu      sync.Mutex
	seen    map[uint64]bool
	bySeq   map[uint64]Result
	ids     map[string]bool
	invalid []string
	leaks   map[string]int
}

// NewResultReader creates (or finds) the soak's consumer on the results stream.
func NewResultReader(ctx context.Context, js jetstream.JetStream, needles []string, logger *slog.Logger) (*ResultReader, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, resultsStream, jetstream.ConsumerConfig{
		Durable:     verifierDurable,
		Description: "the chaos soak's reader of every result",
		// explicit acks: a batch in flight when the server restarts comes back instead of being lost
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       5 * time.Second,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("results reader: %w", err)
	}
	return &ResultReader{cons: cons, needles: needles, logger: logger, seen: map[uint64]bool{}, bySeq: map[uint64]Result{}, ids: map[string]bool{}, leaks: map[string]int{}}, nil
}

// Run reads until ctx ends.
func (rr *ResultReader) Run(ctx context.Context, tl *Timeline) {
	for ctx.Err() == nil {
		if _, err := rr.fetch(ctx, tl); err != nil && ctx.Err() == nil {
			rr.logger.Debug("reading results failed; retrying", "error", err)
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// CatchUp reads until the consumer has nothing more to give.
func (rr *ResultReader) CatchUp(ctx context.Context, tl *Timeline) error {
	for {
		info, err := rr.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("results reader: %w", err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		if _, err := rr.fetch(ctx, tl); err != nil {
			return err
		}
	}
}

func (rr *ResultReader) fetch(ctx context.Context, tl *Timeline) (int, error) {
	wait := 500 * time.Millisecond
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(d), 10*time.Millisecond))
	}
	batch, err := rr.cons.Fetch(512, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, err
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := meta.Sequence.Stream
		res, err := parseResult(seq, msg.Data())
		res.Stored = meta.Timestamp
		rr.mu.Lock()
		first := !rr.seen[seq]
		if first {
			rr.seen[seq] = true
			if err != nil {
				rr.invalid = append(rr.invalid, err.Error())
			}
			for k, n := range Leaks(rr.needles, map[string][]byte{fmt.Sprintf("result #%d", seq): msg.Data()}) {
				rr.leaks[k] += n
			}
			if res.RequestID != "" {
				rr.bySeq[seq] = res
				rr.ids[res.RequestID] = true
			}
		}
		rr.mu.Unlock()
		_ = msg.Ack() // unacked, it would come back (and be skipped by sequence)
		if first && res.RequestID != "" {
			tl.Add(res.RequestID, "result #%d %s %s%s attempts=%d (msg id %s)", seq, res.Message, res.ConnectorID, res.ErrorCode, res.Attempts, msg.Headers().Get(jetstream.MsgIDHeader))
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return n, err
	}
	return n, nil
}

// Answered is how many distinct request ids have a result.
func (rr *ResultReader) Answered() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.ids)
}

// Has reports whether a request id has a result.
func (rr *ResultReader) Has(id string) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.ids[id]
}

// Results returns every result read, in stream order, and the bodies that could not be read.
func (rr *ResultReader) Results() ([]Result, []string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	out := make([]Result, 0, len(rr.bySeq))
	for _, r := range rr.bySeq {
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out, append([]string(nil), rr.invalid...)
}

// Leaks counts the secrets and tokens found in results, by result and value.
func (rr *ResultReader) Leaks() map[string]int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return maps.Clone(rr.leaks)
}

// Backlog is the workers' consumer's NumPending + NumAckPending, and how many messages the
// requests stream still holds beyond those (stranded: delivered too often to be delivered again).
func Backlog(ctx context.Context, js jetstream.JetStream) (pending, stranded uint64, err error) {
	cons, err := js.Consumer(ctx, requestsStream, workerConsumer)
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", workerConsumer, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", workerConsumer, err)
	}
	pending = info.NumPending + uint64(info.NumAckPending)
	stream, err := js.Stream(ctx, requestsStream)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", requestsStream, err)
	}
	sinfo, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", requestsStream, err)
	}
	if sinfo.State.Msgs > pending {
		stranded = sinfo.State.Msgs - pending
	}
	return pending, stranded, nil
}

// StoredMessages is a stream's message count.
func StoredMessages(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	return info.State.Msgs, nil
}

// ReadDeadLetters reads the whole dead-letter stream.
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, dlqStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", dlqStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", dlqStream, err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return nil, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		out = append(out, DeadLetter{
			Seq:        seq,
			RequestID:  m.Header.Get("Provisioner-Dlq-Request-Id"),
			Reason:     m.Header.Get("Provisioner-Dlq-Reason"),
			Deliveries: m.Header.Get("Provisioner-Dlq-Deliveries"),
		})
	}
	return out, nil
}

// WaitForConsumer waits until the workers have set up the streams and their consumer.
func WaitForConsumer(ctx context.Context, js jetstream.JetStream) error {
	for {
		_, err := js.Consumer(ctx, requestsStream, workerConsumer)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the workers did not set up consumer %s: %w", workerConsumer, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogLines returns the lines of the log files that mention any of ids, by id, each prefixed
// with its file's base name.
func LogLines(files []string, ids []string, readFile func(string) ([]byte, error)) map[string][]string {
	out := map[string][]string{}
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		name := f[strings.LastIndex(f, "/")+1:]
		for line := range strings.Lines(string(b)) {
			for _, id := range ids {
				if strings.Contains(line, `"`+id+`"`) {
					out[id] = append(out[id], name+": "+strings.TrimRight(line, "\n"))
				}
			}
		}
	}
	return out
}

// Leaks counts, per needle, the occurrences in the given texts.
func Leaks(needles []string, texts map[string][]byte) map[string]int {
	out := map[string]int{}
	for name, t := range texts {
		for _, n := range needles {
			if c := strings.Count(string(t), n); c > 0 {
				out[name+": "+redactNeedle(n)] += c
			}
		}
	}
	return out
}

// redactNeedle names a leaked value without repeating it.
func redactNeedle(s string) string {
	if len(s) <= 6 {
		return "******"
	}
	return s[:4] + "…(" + fmt.Sprint(len(s)) + " chars)"
}
