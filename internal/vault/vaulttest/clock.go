package vaulttest

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Clock is a hand-driven clock for vault.Config.Clock: time moves only when the test says, so a
// token's 10-second lease is tested without waiting ten seconds, and every wait the backend
// asks for is recorded.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	waits   []time.Duration
	changed chan struct{}
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

// NewClock returns a clock standing at a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// TimerAt registers a timer firing at at; one already due fires at once.
func (c *Clock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: at, c: make(chan time.Time, 1)}
	c.waits = append(c.waits, at.Sub(c.now))
	if !at.After(c.now) {
		t.stopped = true
		t.c <- c.now
		return t.c, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		c.timers = slices.DeleteFunc(c.timers, func(o *fakeTimer) bool { return o == t })
		c.notifyLocked()
		return was
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Waits returns, for every timer set, how far ahead of the clock it was set, in order.
func (c *Clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// Advance moves the clock by d and fires the timers due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

func (c *Clock) fireLocked() {
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.stopped = true
		t.c <- c.now
	}
	c.timers = kept
	c.notifyLocked()
}

// NextTimer waits (up to a generous deadline, failing tb after it) until a timer is pending
// and returns the time it is due.
func (c *Clock) NextTimer(tb testing.TB) time.Time {
	tb.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.timers) > 0 {
			at := c.timers[0].at
			for _, t := range c.timers[1:] {
				if t.at.Before(at) {
					at = t.at
				}
			}
			c.mu.Unlock()
			return at
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatal("vaulttest: no timer was set")
			return time.Time{}
		}
	}
}

// AdvanceToNextTimer waits for a pending timer, moves the clock to it and fires it; it returns
// how far the clock moved.
func (c *Clock) AdvanceToNextTimer(tb testing.TB) time.Duration {
	tb.Helper()
	at := c.NextTimer(tb)
	c.mu.Lock()
	defer c.mu.Unlock()
	d := at.Sub(c.now)
	if d > 0 {
		c.now = at
	}
	c.fireLocked()
	return max(d, 0)
}
