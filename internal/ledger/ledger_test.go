package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// clock is a settable clock shared by ledgers in a test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func open(t *testing.T, srv *natsembedtest.Server, owner string, clk *clock) *ledger.Ledger {
	t.Helper()
	_, js := srv.Connect(t)
	l, err := ledger.Open(context.Background(), js, ledger.Config{Bucket: "ledger_test", LeaseTTL: 30 * time.Second, Owner: owner, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var acme = ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"}

func TestClaimLifecycle(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock()
	a := open(t, srv, "worker-a", clk)
	b := open(t, srv, "worker-b", clk)

	c, err := a.Claim(ctx, acme, "req-1")
	if err != nil || c.Outcome != ledger.Claimed || c.MustLookup || c.TookOver {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	t.Run("busy while leased", func(t *testing.T) {
		for _, l := range []*ledger.Ledger{a, b} {
			got, err := l.Claim(ctx, acme, "req-2")
			if err != nil || got.Outcome != ledger.Busy || got.Entry.Owner != "worker-a" {
				t.Fatalf("claim during lease: %+v %v", got, err)
			}
		}
	})
	t.Run("renew extends", func(t *testing.T) {
		before := c.Lease.Expires()
		clk.Advance(10 * time.Second)
		if err := c.Lease.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if !c.Lease.Expires().After(before) {
			t.Fatal("renew did not extend")
		}
	})
	t.Run("complete then replay", func(t *testing.T) {
		if err := c.Lease.Complete(ctx, json.RawMessage(`{"connector_id":"x"}`)); err != nil {
			t.Fatal(err)
		}
		got, err := b.Claim(ctx, acme, "req-3")
		if err != nil || got.Outcome != ledger.Done || string(got.Entry.Record) != `{"connector_id":"x"}` || got.Entry.RequestID != "req-1" {
			t.Fatalf("claim after done: %+v %v", got, err)
		}
		if err := c.Lease.Renew(ctx); err != nil {
			t.Fatalf("the holder may still touch its own completed entry: %v", err)
		}
	})
}

func TestExpiredLeaseIsTakenOverAndMustLookUp(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock()
	a := open(t, srv, "worker-a", clk)
	b := open(t, srv, "worker-b", clk)

	ca, err := a.Claim(ctx, acme, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second) // worker-a "crashed": no renewals
	if ca.Lease.Valid(0) {
		t.Fatal("lease should have lapsed")
	}
	cb, err := b.Claim(ctx, acme, "req-1")
	if err != nil || cb.Outcome != ledger.Claimed || !cb.TookOver || !cb.MustLookup || cb.Entry.Attempts != 2 {
		t.Fatalf("takeover: %+v %v", cb, err)
	}
	// the old holder wakes up: every write fails, so it cannot record a second result
	for name, write := range map[string]func() error{
		"renew":    func() error { return ca.Lease.Renew(ctx) },
		"complete": func() error { return ca.Lease.Complete(ctx, json.RawMessage(`{}`)) },
		"release":  func() error { return ca.Lease.Release(ctx, false) },
	} {
		if err := write(); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Fatalf("%s after takeover: %v", name, err)
		}
	}
}

func TestReleaseKeepsCreateSent(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock()
	a := open(t, srv, "worker-a", clk)
	for _, tc := range []struct {
		name       string
		markSent   bool
		releaseArg bool
		wantLookup bool
	}{
		{"nothing sent", false, false, false},
		{"marked before create", true, false, true},
		{"reported at release", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ledger.Identity{WorkspaceName: "w-" + tc.name, ConnectorKind: "type:github", Name: "n"}
			c, err := a.Claim(ctx, id, "r")
			if err != nil {
				t.Fatal(err)
			}
			if tc.markSent {
				if err := c.Lease.MarkCreateSent(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Lease.Release(ctx, tc.releaseArg); err != nil {
				t.Fatal(err)
			}
			again, err := a.Claim(ctx, id, "r")
			if err != nil || again.Outcome != ledger.Claimed || again.TookOver || again.MustLookup != tc.wantLookup {
				t.Fatalf("claim after release: %+v %v", again, err)
			}
		})
	}
}

// Many workers on separate connections race for the same identities: exactly one claim wins each.
func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock()
	var ledgers []*ledger.Ledger
	for i := range 3 {
		ledgers = append(ledgers, open(t, srv, fmt.Sprintf("worker-%d", i), clk))
	}
	const identities, contenders = 20, 12
	var wins [identities]atomic.Int32
	var wg sync.WaitGroup
	for i := range identities {
		id := ledger.Identity{WorkspaceName: fmt.Sprintf("ws-%d", i), ConnectorKind: "type:github", Name: "GitHub"}
		for j := range contenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := ledgers[j%len(ledgers)].Claim(ctx, id, fmt.Sprintf("req-%d-%d", i, j))
				if err != nil {
					t.Error(err)
					return
				}
				if c.Outcome == ledger.Claimed {
					wins[i].Add(1)
				}
			}()
		}
	}
	wg.Wait()
	for i := range identities {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("identity %d: %d winners", i, n)
		}
	}
}

func TestKeyIsUnambiguousAndValid(t *testing.T) {
	a := ledger.Identity{WorkspaceName: "a|b", ConnectorKind: "c", Name: "d"}
	b := ledger.Identity{WorkspaceName: "a", ConnectorKind: "b|c", Name: "d"}
	if a.Key() == b.Key() {
		t.Fatal("different identities share a key")
	}
	odd := ledger.Identity{WorkspaceName: "ünï/cödé .. *>", ConnectorKind: "type:x", Name: "\x00"}
	for _, r := range odd.Key() {
		if !(r == '.' || r >= 'a' && r <= 'f' || r >= '0' && r <= '9' || r == 'c') {
			t.Fatalf("key %q has %q", odd.Key(), r)
		}
	}
}
