package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
)

// Await returns the verdict of the request with this id: the result with the highest revision (the
// latest stored, when revisions tie). If it is an error result, the error is a *ResultError.
// If ctx ends first, the error matches ErrTimeout (deadline) or context.Canceled.
//
// It works whenever the verdict was published: before Await began (it is read from the results
// stream, by the request's subject only), while Await waits (it listens on that subject), or while
// the connection was down (it looks again every recheck interval). It creates no consumer; its one
// subscription ends when it returns.
func (c *Client) Await(ctx context.Context, requestID string) (*contract.Result, error) {
	if requestID == "" {
		return nil, errors.New("await: empty request id")
	}
	filter := contract.ResultFilter(c.opts.prefix, requestID)
	// listen before looking, so that a verdict published in between is heard
	live := make(chan *nats.Msg, 8)
	sub, err := c.nc.ChanSubscribe(filter, live)
	if err != nil {
		return nil, fmt.Errorf("await request %s: %w", requestID, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.flush(ctx); err != nil {
		return nil, c.ended(ctx, requestID, err)
	}
	var w waiter
	if err := c.lookup(ctx, filter, requestID, &w); err != nil {
		return nil, c.ended(ctx, requestID, err)
	}
	if w.best != nil {
		return verdict(w.best)
	}
	recheck := time.NewTicker(c.opts.recheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, c.ended(ctx, requestID, ctx.Err())
		case m := <-live:
			var r contract.Result
			if json.Unmarshal(m.Data, &r) == nil && r.RequestID == requestID {
				// the newest verdict there is: it was published after the lookup found none
				return verdict(&r)
			}
		case <-recheck.C:
			if err := c.lookup(ctx, filter, requestID, &w); err != nil && ctx.Err() == nil {
				continue // the connection may be down; listening goes on, and so do rechecks
			}
			if w.best != nil {
				return verdict(w.best)
			}
		}
	}
}

// waiter is what lookups found so far.
type waiter struct {
	best    *contract.Result
	bestSeq uint64
	next    uint64 // the stream sequence the next lookup starts at
}

// lookup reads the stored results on filter from w.next on, one by one (the server finds each by
// subject; it does not send the others), and keeps the best one for requestID.
func (c *Client) lookup(ctx context.Context, filter, requestID string, w *waiter) error {
	stream, err := c.resultsStream(ctx)
	if err != nil {
		return err
	}
	for {
		m, err := stream.GetMsg(ctx, max(w.next, 1), jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		w.next = m.Sequence + 1
		var r contract.Result
		if json.Unmarshal(m.Data, &r) != nil || r.RequestID != requestID {
			continue // another id with the same token, or not a result
		}
		if w.best == nil || supersedes(&r, m.Sequence, w.best, w.bestSeq) {
			w.best, w.bestSeq = &r, m.Sequence
		}
	}
}

// supersedes reports whether result a (stored at sequence aSeq) is a later verdict than b: the
// later stored one.
func supersedes(_ *contract.Result, aSeq uint64, _ *contract.Result, bSeq uint64) bool {
	return aSeq > bSeq
}

// resultsStream returns the results stream's handle, looked up once.
func (c *Client) resultsStream(ctx context.Context) (jetstream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.results != nil {
		return c.results, nil
	}
	s, err := c.js.Stream(ctx, c.opts.resultsStream)
	if err != nil {
		return nil, fmt.Errorf("results stream %s: %w", c.opts.resultsStream, err)
	}
	c.results = s
	return s, nil
}

// flushTimeout bounds the wait for the server to confirm a subscription when ctx has no deadline.
const flushTimeout = 10 * time.Second

// flush returns once the server has every subscription made so far.
func (c *Client) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	return c.nc.FlushWithContext(ctx)
}

// ended is the error of an Await that stopped before a verdict.
func (c *Client) ended(ctx context.Context, requestID string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("await request %s: %w: %w", requestID, ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("await request %s: %w", requestID, err)
}
