package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConditionPull is the readiness condition of the pull loop: false while it is stalled (the server
// leading the consumer went away, or work is pending and nothing arrives).
const ConditionPull = "pull"

// PullConfig tunes how fast the pull loop notices that the server leading the consumer is gone.
// A pull request lives on that server: when it dies, nothing says so except missing heartbeats.
type PullConfig struct {
	// Expiry is how long one pull request waits on the server; default 5s (the library's default
	// is 30s, which is how long a leader loss used to stall the loop).
	Expiry time.Duration
	// Heartbeat is how often the server confirms a waiting pull; two missed heartbeats make the loop
	// pull again, from the new leader. Default 1s; at most half of Expiry.
	Heartbeat time.Duration
	// StallAfter: work pending at the consumer, this replica has room, and nothing has arrived for
	// this long — the loop is stalled even without an error; it reports so and pulls afresh.
	// Default 10s.
	StallAfter time.Duration
}

func (p PullConfig) withDefaults() PullConfig {
	if p.Expiry <= 0 {
		p.Expiry = 5 * time.Second
	}
	if p.Heartbeat <= 0 {
		p.Heartbeat = time.Second
	}
	p.Heartbeat = min(p.Heartbeat, p.Expiry/2)
	if p.StallAfter <= 0 {
		p.StallAfter = 10 * time.Second
	}
	return p
}

// pullState is what the pull loop and its watchdog share.
type pullState struct {
	lastActivity atomic.Int64 // unix nanos of the last message, or of the (re)start of the pull
	lastError    atomic.Int64 // unix nanos of the last pull error, 0 = none since recovery
	stalled      atomic.Bool
	free         atomic.Int64 // slots this replica has free
	mu           sync.Mutex
	iter         jetstream.MessagesContext // the current iterator, for the watchdog to restart
	restart      atomic.Bool               // the watchdog stopped iter to pull afresh
}

func (s *pullState) touch(now time.Time) { s.lastActivity.Store(now.UnixNano()) }

// Run consumes until ctx is cancelled, then drains: it stops fetching, lets in-flight requests
// finish with a context that is not cancelled (bounded by ShutdownTimeout, after which they are
// interrupted and Nak'd), Naks what was fetched but not started, and returns.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.bind(ctx)
	if err != nil {
		w.ready.Set("consumer", false, "not bound")
		if ctx.Err() != nil {
			return nil // stopped before it began: nothing to drain
		}
		return fmt.Errorf("bind consumer %s: %w", w.cfg.Topology.Consumer, err)
	}
	st := &pullState{}
	iter, err := w.openPull(cons, st)
	if err != nil {
		return err
	}
	w.ready.Set("consumer", true, "")
	w.ready.Set(ConditionPull, true, "")
	w.logger.Info("consuming", "stream", w.cfg.Topology.RequestsStream, "consumer", w.cfg.Topology.Consumer, "concurrency", w.cfg.Concurrency)

	// In-flight requests outlive ctx: shutdown waits for them, then interrupts them.
	workCtx, interrupt := context.WithCancel(context.WithoutCancel(ctx))
	defer interrupt()
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go w.pollLag(lagCtx, cons)
	go w.watchPull(lagCtx, cons, st)

	slots := make(chan struct{}, w.cfg.Concurrency)
	st.free.Store(int64(w.cfg.Concurrency))
	var inflight sync.WaitGroup
	var loopErr error
loop:
	for {
		select {
		case slots <- struct{}{}:
			st.free.Add(-1)
		case <-ctx.Done():
			break loop
		}
		msg, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-slots
			st.free.Add(1)
			if ctx.Err() != nil {
				break loop
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && st.restart.Swap(false) {
				// the watchdog stopped a stalled iterator: pull afresh
				if iter, err = w.openPull(cons, st); err != nil {
					loopErr = err
					break loop
				}
				continue
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				loopErr = errors.New("consumer: message iterator closed")
				break loop
			}
			// Missed heartbeats (the server leading the consumer went away), a leadership change or
			// a reconnect: the library pulls again at the next Next, from whichever server leads
			// now. Report the stall until the watchdog sees the consumer answer again.
			st.lastError.Store(time.Now().UnixNano())
			if !st.stalled.Swap(true) {
				w.logger.Warn("pull loop stalled; pulling again", "error", err)
			}
			w.ready.Set(ConditionPull, false, "stalled: "+pullErrorReason(err))
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				select { // not a heartbeat the library re-pulls after: do not spin
				case <-time.After(200 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			continue
		}
		st.touch(time.Now())
		if st.stalled.Swap(false) {
			w.logger.Info("pull loop recovered")
			st.lastError.Store(0)
			w.ready.Set(ConditionPull, true, "")
		}
		inflight.Add(1)
		go func() {
			defer func() { <-slots; st.free.Add(1); inflight.Done() }()
			w.handle(workCtx, msg)
		}()
	}

	w.ready.Set("draining", false, "shutting down")
	w.ready.Set("consumer", false, "draining")
	st.mu.Lock()
	iter = st.iter
	st.mu.Unlock()
	iter.Drain()
	// Whatever was fetched but not started goes back at once rather than after AckWait.
	nakCtx, cancelNak := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	for {
		msg, err := iter.Next(jetstream.NextContext(nakCtx))
		if err != nil {
			break
		}
		_ = msg.Nak()
	}
	cancelNak()

	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.logger.Warn("shutdown timeout: interrupting in-flight requests", "timeout", w.cfg.ShutdownTimeout)
		interrupt()
		<-done
	}
	w.logger.Info("drained")
	return loopErr
}

// bind looks the consumer up, asking again while a cluster elects its leader (a call then goes
// unanswered) rather than failing the worker.
func (w *Worker) bind(ctx context.Context) (jetstream.Consumer, error) {
	for {
		callCtx, cancel := shortCall(ctx)
		cons, err := w.js.Consumer(callCtx, w.cfg.Topology.RequestsStream, w.cfg.Topology.Consumer)
		cancel()
		if !unanswered(ctx, err) {
			return cons, err
		}
	}
}

// openPull starts a pull iterator. It buffers no more than the worker can start (a buffered
// message's AckWait is already running) and reports missed heartbeats to the loop.
func (w *Worker) openPull(cons jetstream.Consumer, st *pullState) (jetstream.MessagesContext, error) {
	iter, err := cons.Messages(
		jetstream.PullMaxMessages(w.cfg.Concurrency),
		jetstream.PullExpiry(w.cfg.Pull.Expiry),
		jetstream.PullHeartbeat(w.cfg.Pull.Heartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true),
	)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	st.mu.Lock()
	st.iter = iter
	st.mu.Unlock()
	st.touch(time.Now())
	return iter, nil
}

// pullErrorReason names a pull error for /readyz (no server addresses, nothing variable).
func pullErrorReason(err error) string {
	switch {
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		return "no heartbeat from the consumer's leader"
	case errors.Is(err, jetstream.ErrConsumerLeadershipChanged):
		return "consumer leader changed"
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return "disconnected"
	}
	return "pull failed"
}

// watchPull watches the pull loop every heartbeat. After a pull error it declares the loop
// recovered once the consumer answers again and no error followed for two heartbeats. Without an
// error, work pending at the consumer that does not reach a replica with room for StallAfter is a
// stall too: it is reported and the iterator is replaced.
func (w *Worker) watchPull(ctx context.Context, cons jetstream.Consumer, st *pullState) {
	pc := w.cfg.Pull
	t := time.NewTicker(pc.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if st.stalled.Load() {
			if last := st.lastError.Load(); last == 0 || now.Sub(time.Unix(0, last)) < 2*pc.Heartbeat+pc.Heartbeat/2 {
				continue
			}
			if _, err := w.consumerInfo(ctx, cons); err != nil {
				continue
			}
			if st.stalled.Swap(false) {
				w.logger.Info("pull loop recovered")
				w.ready.Set(ConditionPull, true, "")
			}
			continue
		}
		if now.Sub(time.Unix(0, st.lastActivity.Load())) < pc.StallAfter || st.free.Load() == 0 {
			continue
		}
		info, err := w.consumerInfo(ctx, cons)
		if err != nil {
			continue
		}
		ackRoom := info.Config.MaxAckPending <= 0 || info.NumAckPending < info.Config.MaxAckPending
		if info.NumPending == 0 || !ackRoom {
			st.touch(now) // idle, or every delivery is out: not a stall
			continue
		}
		w.logger.Warn("pull loop stalled: work is pending and nothing arrives; pulling afresh",
			"pending", info.NumPending, "idle", now.Sub(time.Unix(0, st.lastActivity.Load())).Round(time.Second))
		st.stalled.Store(true)
		st.lastError.Store(now.UnixNano())
		w.ready.Set(ConditionPull, false, "stalled: work pending, nothing received")
		st.mu.Lock()
		st.restart.Store(true)
		st.iter.Stop()
		st.mu.Unlock()
	}
}

func (w *Worker) consumerInfo(ctx context.Context, cons jetstream.Consumer) (*jetstream.ConsumerInfo, error) {
	infoCtx, cancel := context.WithTimeout(ctx, w.cfg.Pull.Heartbeat)
	defer cancel()
	return cons.Info(infoCtx)
}

// pollLag reads the consumer's pending counts for the lag metrics.
func (w *Worker) pollLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(w.cfg.LagPollInterval)
	defer t.Stop()
	for {
		infoCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(infoCtx)
		cancel()
		if err == nil {
			w.metrics.SetConsumerLag(info.NumPending, uint64(info.NumAckPending), uint64(info.NumRedelivered))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
