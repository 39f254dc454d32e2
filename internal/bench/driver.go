package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// headerRequestID carries the request id on results: the product's ce-subject, which the floor
// copies, so that the driver reads it without decoding the body.
const headerRequestID = "ce-subject"

// load is one batch of requests for the driver to publish and wait for.
type load struct {
	runID    string // prefix of every request id
	subject  string // where requests are published
	results  string // subject (with wildcard) results arrive on
	requests int
	inflight int
	body     func(i int, id string) []byte
}

// outcome is what the driver saw of one batch.
type outcome struct {
	elapsed   time.Duration   // first publish to last result
	latencies []time.Duration // publish to result, one per request
	failed    int             // error results
	repeated  int             // results seen again for a request already answered
	messages  map[string]int  // first results by message (messageOf)
}

// drive publishes l.requests requests, never more than l.inflight outstanding, and returns once
// every request has its result (or ctx ends). Results are received on a plain subscription, so that
// the driver costs the same in every phase.
func drive(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, l load) (outcome, error) {
	start := time.Now()
	sent := make([]atomic.Int64, l.requests) // publish time, as an offset from start
	var (
		mu       sync.Mutex
		answered = make([]bool, l.requests)
		out      = outcome{latencies: make([]time.Duration, 0, l.requests), messages: map[string]int{}}
		lastAt   time.Duration
	)
	slots := make(chan struct{}, l.inflight)
	done := make(chan struct{})
	prefix := l.runID + "-"
	sub, err := nc.Subscribe(l.results, func(m *nats.Msg) {
		at := time.Since(start)
		i, err := strconv.Atoi(strings.TrimPrefix(m.Header.Get(headerRequestID), prefix))
		if err != nil || i < 0 || i >= l.requests {
			return // not ours
		}
		mu.Lock()
		defer mu.Unlock()
		if answered[i] {
			out.repeated++
			return
		}
		answered[i] = true
		out.latencies = append(out.latencies, at-time.Duration(sent[i].Load()))
		lastAt = at
		message := messageOf(m.Subject)
		out.messages[message]++
		if strings.HasSuffix(message, "_error") {
			out.failed++
		}
		<-slots
		if len(out.latencies) == l.requests {
			close(done)
		}
	})
	if err != nil {
		return outcome{}, fmt.Errorf("subscribe to results: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// every result must be seen: never drop one as a slow consumer
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return outcome{}, fmt.Errorf("subscribe to results: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return outcome{}, fmt.Errorf("subscribe to results: %w", err)
	}

	for i := range l.requests {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return outcome{}, waitError(ctx, &mu, out.latencies, l.requests)
		}
		id := prefix + strconv.Itoa(i)
		msg := &nats.Msg{Subject: l.subject, Data: l.body(i, id), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		sent[i].Store(int64(time.Since(start)))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return outcome{}, fmt.Errorf("publish request %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return outcome{}, waitError(ctx, &mu, out.latencies, l.requests)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return outcome{}, waitError(ctx, &mu, out.latencies, l.requests)
	}
	mu.Lock()
	defer mu.Unlock()
	out.elapsed = lastAt
	slices.Sort(out.latencies)
	return out, nil
}

func waitError(ctx context.Context, mu *sync.Mutex, got []time.Duration, want int) error {
	mu.Lock()
	defer mu.Unlock()
	return fmt.Errorf("%d of %d results arrived: %w", len(got), want, context.Cause(ctx))
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// messageOf is the result message a result subject names: <prefix>.results.<message>[.<request token>].
func messageOf(subject string) string {
	_, rest, ok := strings.Cut(subject, ".results.")
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, ".")
	return msg
}
