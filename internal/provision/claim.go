package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
)

// Step is a point of an operation whose effect would survive a crash of the worker.
type Step string

// Steps, in the order an update by replace passes them.
const (
	StepCreated       Step = "created"        // Airbyte created the new connector; nothing recorded yet
	StepRecordedNew   Step = "recorded_new"   // the new connector is recorded as the replace's progress
	StepDeletedOld    Step = "deleted_old"    // the old connector's delete was accepted
	StepUpdated       Step = "updated"        // an embedded source took the new configuration
	StepDeleted       Step = "deleted"        // a disconnect's deletes were accepted
	StepBeforeRecord  Step = "before_record"  // the operation is done at Airbyte; the ledger not yet written
	StepBeforeDeletes Step = "before_deletes" // a replace is about to delete the old connector
)

// CrashError stops a handler at a step (Config.AtStep) as if the worker had been killed there.
type CrashError struct {
	Step Step
	Err  error
}

func (e *CrashError) Error() string { return fmt.Sprintf("stopped at step %s: %v", e.Step, e.Err) }
func (e *CrashError) Unwrap() error { return e.Err }

// at passes a step: the test hook may stop the handler there.
func (s *Service) at(step Step) error {
	if s.cfg.AtStep == nil {
		return nil
	}
	if err := s.cfg.AtStep(step); err != nil {
		return &CrashError{Step: step, Err: err}
	}
	return nil
}

// claim claims the identity for the request, in its publish order. A lease held by another worker
// is watched from here, within LeaseWait, until it is released, settles or lapses: expiry is judged
// by how long this process has seen the lease unchanged, so the delivery that starts watching must
// be the one that keeps watching (a redelivery to another replica, or a restarted one, would start
// counting again).
func (s *Service) claim(ctx context.Context, id ledger.Identity, requestID string, d Delivery) (ledger.Claim, error) {
	deadline := s.cfg.Now().Add(s.cfg.LeaseWait)
	for conflicts := 0; ; conflicts++ {
		c, err := s.ledger.Claim(ctx, id, ledger.Request{ID: requestID, Sequence: d.Sequence})
		if err != nil {
			return c, classifyLedger(err)
		}
		if c.Outcome != ledger.Busy {
			return c, nil
		}
		if conflicts == 0 {
			s.observer.LedgerConflict()
		}
		wait := min(c.RetryAfter+50*time.Millisecond, 250*time.Millisecond)
		if s.cfg.Now().Add(wait).After(deadline) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, nil
		case <-time.After(wait):
		}
	}
}

// classifyLedger gives a ledger failure its result code: KV unavailability (a write whose outcome
// could not be learnt, a leader election) is nats_unavailable; a lease lost to another worker is
// lease_unavailable; both may pass.
func classifyLedger(err error) error {
	var un *ledger.UnavailableError
	switch {
	case errors.Is(err, ledger.ErrLeaseLost):
		return event.Coded(contract.CodeLeaseUnavailable, true, err)
	case errors.As(err, &un):
		return event.Coded(contract.CodeNATSUnavailable, true, err)
	}
	return classifyNATS("ledger", err)
}

// settledClaim answers the claims that need no work: a recorded verdict is published again; an
// older request than the last applied ends as superseded; a busy identity is retried later.
func (s *Service) settledClaim(ctx context.Context, id ledger.Identity, req event.Request, d Delivery, c ledger.Claim, errMessage string) (Decision, bool) {
	switch c.Outcome {
	case ledger.Recorded:
		var rec record
		if err := json.Unmarshal(c.Verdict.Record, &rec); err != nil || rec.Message == "" {
			return s.failAs(errMessage, req, d, event.Coded(contract.CodeInternal, false, fmt.Errorf("ledger record of %s is unreadable", c.Verdict.RequestID))), true
		}
		return Decision{Action: Ack, Outcome: OutcomeReplayed, Result: s.resultOf(req, rec)}, true
	case ledger.Superseded:
		// The verdict is recorded like any other, so that a duplicate of this request published
		// later (with its own, newer sequence) gets this verdict too, never a contradicting one.
		d.Logger.Info("superseded by a newer request", "newer_request_id", c.Newer)
		rec := record{Message: errMessage, Outcome: OutcomeSuperseded, Error: &contract.ErrorBody{
			Code: contract.CodeSuperseded, Retryable: false,
			Message: fmt.Sprintf("superseded by request %s, applied after this one was published", c.Newer),
		}}
		n, err := s.ledger.Note(ctx, id, ledger.Request{ID: req.ID(), Sequence: d.Sequence}, rec.marshal())
		if err != nil {
			return s.failAs(errMessage, req, d, classifyLedger(err)), true
		}
		if n.Outcome == ledger.Recorded && n.Verdict.Sequence == d.Sequence && string(n.Verdict.Record) == string(rec.marshal()) {
			return Decision{Action: Ack, Outcome: OutcomeSuperseded, Result: s.resultOf(req, rec)}, true
		}
		return s.settledClaim(ctx, id, req, d, n, errMessage)
	case ledger.Busy:
		err := event.Coded(contract.CodeLeaseUnavailable, true, errors.New("another worker is changing this connector"))
		dec := s.failAs(errMessage, req, d, err)
		dec.RetryAfter = min(max(c.RetryAfter, 100*time.Millisecond), 5*time.Second)
		return dec, true
	}
	return Decision{}, false
}

// priorProgress is what the claim tells of unfinished earlier attempts. A lease taken over without
// any recorded progress still counts as a create that may have been sent by its request: its holder
// died at an unknown point.
func priorProgress(c ledger.Claim) progress {
	p := progressOf(c.Entry.Progress)
	if c.TookOver && !p.CreateSent && c.Previous != nil {
		p.CreateSent, p.CreateBy = true, c.Previous.RequestID
	}
	return p
}

// resultOf builds the result of a recorded verdict.
func (s *Service) resultOf(req event.Request, rec record) *contract.Result {
	res := &contract.Result{
		Type: contract.ResultType, Message: rec.Message, Data: rec.Data, Error: rec.Error,
		RequestID: req.ID(), WorkspaceName: req.WorkspaceName(), WorkspaceID: rec.WorkspaceID,
	}
	stampRecord(res, rec)
	return res
}

// work is a held lease with its renewal loop: losing the lease (taken over after a stall) cancels
// the work's context. A step that may still be running at Airbyte when the work gives up is
// reported with unsettled, so the lease is held until it has settled instead of released.
type work struct {
	s         *Service
	lease     *ledger.Lease
	stop      context.CancelCauseFunc
	renewDone chan struct{}
	// unsettledAt is when a call whose outcome is unknown (a create, a delete) was sent; 0: none.
	unsettledAt atomic.Int64
	// progress is what the next holder must know if this one gives up: it is written with the
	// release (a holder that dies leaves its lease, and a lease taken over implies a create sent).
	mu       sync.Mutex
	progress *progress
}

// note keeps p to hand over with the lease if the work gives up.
func (w *work) note(p progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.progress = &p
}

func (s *Service) startWork(ctx context.Context, lease *ledger.Lease) (context.Context, *work) {
	workCtx, stop := context.WithCancelCause(ctx)
	w := &work{s: s, lease: lease, stop: stop, renewDone: make(chan struct{})}
	go func() {
		defer close(w.renewDone)
		t := time.NewTicker(s.cfg.LeaseRenewEvery)
		defer t.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-t.C:
				if err := lease.Renew(workCtx); err != nil && workCtx.Err() == nil {
					stop(fmt.Errorf("renew lease: %w", err))
					return
				}
			}
		}
	}()
	return workCtx, w
}

// end stops the renewal loop and lets the lease go in this process.
func (w *work) end() {
	w.stop(nil)
	<-w.renewDone
	w.lease.Close()
}

func (w *work) sending()  { w.unsettledAt.Store(w.s.cfg.Now().UnixNano()) }
func (w *work) answered() { w.unsettledAt.Store(0) }

// giveBack returns the lease after a failure (with the progress recorded so far), so the next
// delivery on any replica can claim it without waiting for it to lapse — unless a call may still
// be running at Airbyte: then the lease is held until it has settled.
func (w *work) giveBack(ctx context.Context, d Delivery, cause error) {
	var crash *CrashError
	if errors.As(cause, &crash) {
		return // a killed worker writes nothing more
	}
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var p json.RawMessage
	w.mu.Lock()
	if w.progress != nil {
		p = w.progress.marshal()
	}
	w.mu.Unlock()
	var err error
	if sent := w.unsettledAt.Load(); sent != 0 {
		settle := time.Unix(0, sent).Add(w.s.cfg.CreateSettle).Sub(w.s.cfg.Now())
		err = w.lease.Abandon(relCtx, max(settle, time.Millisecond), p)
	} else {
		err = w.lease.Release(relCtx, p)
	}
	if err != nil {
		d.Logger.Warn("could not give the lease back; it will lapse", "error", err)
	}
}

// setProgress records the operation's progress before a step; failing to is a retryable failure.
func (w *work) setProgress(ctx context.Context, p progress) error {
	if err := w.lease.SetProgress(ctx, p.marshal()); err != nil {
		return classifyLedger(fmt.Errorf("record progress: %w", err))
	}
	return nil
}

// withCause prefers the reason the work context was cancelled (a lost lease) over the bare error.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && errors.Is(err, context.Canceled) {
		return event.Coded(contract.CodeLeaseUnavailable, true, cause)
	}
	return err
}
