package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

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
	l, err := c.listen(requestID)
	if err != nil {
		return nil, err
	}
	defer l.stop()
	return c.wait(ctx, l, true)
}

// listener is one request's subscription to its results, and what was found so far.
type listener struct {
	requestID, filter string
	sub               *nats.Subscription
	live              chan *nats.Msg
	found             waiter
}

// listen subscribes to the results of one request. Whatever the connection sends after it (a
// lookup, the request itself) reaches the server after the subscription, so nothing published
// from then on is missed.
func (c *Client) listen(requestID string) (*listener, error) {
	l := &listener{requestID: requestID, filter: contract.ResultFilter(c.opts.prefix, requestID), live: make(chan *nats.Msg, 8)}
	sub, err := c.nc.ChanSubscribe(l.filter, l.live)
	if err != nil {
		return nil, fmt.Errorf("await request %s: %w", requestID, err)
	}
	l.sub = sub
	return l, nil
}

func (l *listener) stop() { _ = l.sub.Unsubscribe() }

// wait returns the verdict l hears, or finds stored: first (lookFirst) and then every recheck
// interval, in case it was published when the connection was down. A lookup that fails for a
// reason that may pass (a timeout, a stream without a leader during an election) is retried
// sooner, with backoff; one that cannot (no such stream, no JetStream) ends the wait.
func (c *Client) wait(ctx context.Context, l *listener, lookFirst bool) (*contract.Result, error) {
	next := c.opts.recheck
	if lookFirst {
		next = 0
	} else {
		c.waiting(l.requestID)
	}
	timer := time.NewTimer(next)
	defer timer.Stop()
	waiting, failures := !lookFirst, 0
	for {
		select {
		case <-ctx.Done():
			return nil, c.ended(ctx, l.requestID, ctx.Err())
		case m := <-l.live:
			var r contract.Result
			if json.Unmarshal(m.Data, &r) == nil && r.RequestID == l.requestID {
				// the newest verdict there is: nothing was stored when it was listened for
				return verdict(&r)
			}
		case <-timer.C:
			err := c.lookup(ctx, l.filter, l.requestID, &l.found)
			switch {
			case err == nil && l.found.best != nil:
				return verdict(l.found.best)
			case err == nil:
				failures, next = 0, c.opts.recheck
				if !waiting {
					waiting = true
					c.waiting(l.requestID)
				}
			case ctx.Err() != nil:
				return nil, c.ended(ctx, l.requestID, ctx.Err())
			case permanent(err):
				return nil, c.ended(ctx, l.requestID, err)
			default:
				failures++
				next = min(lookupRetry<<min(failures, 10), c.opts.recheck)
			}
			timer.Reset(next)
		}
	}
}

// lookupRetry is the first delay before a failed lookup is tried again.
const lookupRetry = 50 * time.Millisecond

// waiting tells a test that an Await found nothing stored and waits.
func (c *Client) waiting(requestID string) {
	if c.lookedUp != nil {
		c.lookedUp(requestID)
	}
}

// waiter is what lookups found so far.
type waiter struct {
	best    *contract.Result
	bestSeq uint64
}

// lookup reads the last stored result on filter, the request's latest verdict, with one request to
// the JetStream API (the server finds it by subject and sends nothing else): a request's verdicts
// are published in revision order (a replay follows the dead letter of the verdict it supersedes),
// so the last stored has the highest revision. If that result is another request's (an id with the
// same token), it reads the filter's results one by one and keeps the highest revision.
func (c *Client) lookup(ctx context.Context, filter, requestID string, w *waiter) error {
	m, err := c.getResult(ctx, msgGetRequest{LastBySubject: filter})
	if err != nil || m == nil {
		return err
	}
	if w.consider(m, requestID) {
		return nil
	}
	for seq := uint64(1); ; {
		m, err := c.getResult(ctx, msgGetRequest{Seq: seq, NextBySubject: filter})
		if err != nil || m == nil {
			return err
		}
		w.consider(m, requestID)
		seq = m.Sequence + 1
	}
}

// consider keeps m if it is a result of requestID that supersedes the best so far, and reports
// whether it is a result of requestID.
func (w *waiter) consider(m *storedMsg, requestID string) bool {
	var r contract.Result
	if json.Unmarshal(m.Data, &r) != nil || r.RequestID != requestID {
		return false
	}
	if w.best == nil || supersedes(&r, m.Sequence, w.best, w.bestSeq) {
		w.best, w.bestSeq = &r, m.Sequence
	}
	return true
}

// supersedes reports whether result a (stored at sequence aSeq) is a later verdict than b: the
// higher revision (a replayed dead letter's verdict), else the later stored one.
func supersedes(a *contract.Result, aSeq uint64, b *contract.Result, bSeq uint64) bool {
	if a.Revision != b.Revision {
		return a.Revision > b.Revision
	}
	return aSeq > bSeq
}

// msgGetRequest is the JetStream API's STREAM.MSG.GET request.
type msgGetRequest struct {
	Seq           uint64 `json:"seq,omitempty"`
	LastBySubject string `json:"last_by_subj,omitempty"`
	NextBySubject string `json:"next_by_subj,omitempty"`
}

// storedMsg is a stored message as the API returns it.
type storedMsg struct {
	Subject  string `json:"subject"`
	Sequence uint64 `json:"seq"`
	Data     []byte `json:"data"`
}

// JetStream API error codes Await tells apart.
const (
	jsErrNoMessage      = 10037 // no message found
	jsErrStreamNotFound = 10059 // no such stream: a wrong name, which waiting does not fix
)

// apiError is an error answer of the JetStream API.
type apiError struct {
	Code        int
	ErrCode     int
	Description string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// permanent reports whether a failed lookup cannot succeed by waiting: the stream does not exist,
// or nothing answers JetStream API requests on this connection.
func permanent(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.ErrCode == jsErrStreamNotFound || errors.Is(err, nats.ErrNoResponders)
}

// getResult asks the results stream for one message; nil when there is none.
func (c *Client) getResult(ctx context.Context, req msgGetRequest) (*storedMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	reply, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+c.opts.resultsStream, body)
	if err != nil {
		return nil, fmt.Errorf("read results stream %s: %w", c.opts.resultsStream, err)
	}
	m, err := parseMsgGet(reply.Data)
	if err != nil {
		return nil, fmt.Errorf("read results stream %s: %w", c.opts.resultsStream, err)
	}
	return m, nil
}

// parseMsgGet decodes the JetStream API's answer to a STREAM.MSG.GET: the message, or nil when there
// is none.
func parseMsgGet(data []byte) (*storedMsg, error) {
	var resp struct {
		Message *storedMsg `json:"message"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == jsErrNoMessage:
		return nil, nil
	case resp.Error != nil:
		return nil, &apiError{Code: resp.Error.Code, ErrCode: resp.Error.ErrCode, Description: resp.Error.Description}
	case resp.Message == nil:
		return nil, errors.New("empty answer")
	}
	return resp.Message, nil
}

// apiTimeout bounds one JetStream API request when ctx allows longer.
const apiTimeout = 10 * time.Second

// ended is the error of an Await that stopped before a verdict.
func (c *Client) ended(ctx context.Context, requestID string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("await request %s: %w: %w", requestID, ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("await request %s: %w", requestID, err)
}
