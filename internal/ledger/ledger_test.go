package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/ledger/ledgertest"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// clock is a settable clock for one ledger (each host has its own).
type clock struct{ ns atomic.Int64 }

func newClock(offset time.Duration) *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(offset).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

const ttl = 30 * time.Second

func bucket(t *testing.T, srv *natsembedtest.Server) jetstream.KeyValue {
	t.Helper()
	_, js := srv.Connect(t)
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "ledger_test", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func newLedger(t *testing.T, kv ledger.KV, owner string, now func() time.Time) *ledger.Ledger {
	t.Helper()
	l, err := ledger.New(kv, ledger.Config{LeaseTTL: ttl, Owner: owner, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func open(t *testing.T, srv *natsembedtest.Server, owner string, clk *clock) *ledger.Ledger {
	t.Helper()
	return newLedger(t, bucket(t, srv), owner, clk.Now)
}

var acme = ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"}

func req(id string, seq uint64) ledger.Request { return ledger.Request{ID: id, Sequence: seq} }

func mustClaim(t *testing.T, l *ledger.Ledger, id ledger.Identity, r ledger.Request, want ledger.Outcome) ledger.Claim {
	t.Helper()
	c, err := l.Claim(context.Background(), id, r)
	if err != nil || c.Outcome != want {
		t.Fatalf("claim %s: %v, %v; want %v", r.ID, c.Outcome, err, want)
	}
	return c
}

// The state machine, step by step: absent -> leased -> active -> leased -> active' -> leased ->
// deleted, with replays of recorded verdicts and refusals of older requests on the way.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock(0)
	a := open(t, srv, "worker-a", clk)
	b := open(t, srv, "worker-b", clk)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"create: absent -> leased -> active", func(t *testing.T) {
			c := mustClaim(t, a, acme, req("r1", 10), ledger.Claimed)
			defer c.Lease.Close()
			if c.Entry.Settled != ledger.StateAbsent || c.TookOver {
				t.Fatalf("claim of a new identity: %+v", c)
			}
			mustClaim(t, b, acme, req("r2", 11), ledger.Busy)
			if err := c.Lease.Activate(ctx, "conn-1", json.RawMessage(`{"v":1}`)); err != nil {
				t.Fatal(err)
			}
		}},
		{"the same request replays its verdict", func(t *testing.T) {
			c := mustClaim(t, b, acme, req("r1", 10), ledger.Recorded)
			if string(c.Verdict.Record) != `{"v":1}` || c.Entry.Connector != "conn-1" {
				t.Fatalf("%+v", c)
			}
		}},
		{"an older request is superseded", func(t *testing.T) {
			c := mustClaim(t, b, acme, req("r0", 9), ledger.Superseded)
			if c.Newer != "r1" {
				t.Fatalf("newer = %q", c.Newer)
			}
		}},
		{"update: active -> leased -> active'", func(t *testing.T) {
			c := mustClaim(t, b, acme, req("r2", 11), ledger.Claimed)
			defer c.Lease.Close()
			if c.Entry.Settled != ledger.StateActive || c.Entry.Connector != "conn-1" {
				t.Fatalf("claim of an active identity: %+v", c.Entry)
			}
			if err := c.Lease.Activate(ctx, "conn-2", json.RawMessage(`{"v":2}`)); err != nil {
				t.Fatal(err)
			}
		}},
		{"an earlier applied request still replays its own verdict", func(t *testing.T) {
			c := mustClaim(t, a, acme, req("r1", 10), ledger.Recorded)
			if string(c.Verdict.Record) != `{"v":1}` {
				t.Fatalf("%+v", c.Verdict)
			}
		}},
		{"a released lease returns to the state it came from", func(t *testing.T) {
			c := mustClaim(t, a, acme, req("r3", 12), ledger.Claimed)
			if err := c.Lease.SetProgress(ctx, json.RawMessage(`{"step":"x"}`)); err != nil {
				t.Fatal(err)
			}
			if err := c.Lease.Release(ctx, nil); err != nil {
				t.Fatal(err)
			}
			c.Lease.Close()
			e, _, err := a.Get(ctx, acme)
			if err != nil || e.State != ledger.StateActive || e.Connector != "conn-2" || string(e.Progress) != `{"step":"x"}` || e.ProgressBy != "r3" {
				t.Fatalf("after release: %+v %v", e, err)
			}
		}},
		{"disconnect: active -> leased -> deleted", func(t *testing.T) {
			c := mustClaim(t, b, acme, req("r4", 13), ledger.Claimed)
			defer c.Lease.Close()
			if string(c.Entry.Progress) != `{"step":"x"}` {
				t.Fatalf("the next holder does not see the released progress: %+v", c.Entry)
			}
			if err := c.Lease.Delete(ctx, json.RawMessage(`{"deleted":true}`)); err != nil {
				t.Fatal(err)
			}
			e, _, _ := b.Get(ctx, acme)
			if e.State != ledger.StateDeleted || e.Connector != "" || e.Sequence != 13 || e.Progress != nil {
				t.Fatalf("tombstone: %+v", e)
			}
		}},
		{"a late create cannot resurrect the tombstone", func(t *testing.T) {
			mustClaim(t, a, acme, req("r3", 12), ledger.Superseded)
		}},
		{"a newer create may: deleted -> leased", func(t *testing.T) {
			c := mustClaim(t, a, acme, req("r5", 14), ledger.Claimed)
			defer c.Lease.Close()
			if c.Entry.Settled != ledger.StateDeleted {
				t.Fatalf("%+v", c.Entry)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.name, s.run)
	}
}

// Writes that leave the leased state end the lease: the holder cannot write again.
func TestNoTransitionOutOfASettledState(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	a := open(t, srv, "worker-a", newClock(0))
	c := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
	defer c.Lease.Close()
	if err := c.Lease.Activate(ctx, "conn", nil); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"renew":    func() error { return c.Lease.Renew(ctx) },
		"activate": func() error { return c.Lease.Activate(ctx, "other", nil) },
		"delete":   func() error { return c.Lease.Delete(ctx, nil) },
		"release":  func() error { return c.Lease.Release(ctx, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			if err := write(); err == nil {
				t.Fatal("a settled entry was written by its old lease")
			}
		})
	}
	if e, _, _ := a.Get(ctx, acme); e.State != ledger.StateActive || e.Connector != "conn" {
		t.Fatalf("entry changed: %+v", e)
	}
}

// Expiry is judged on the observer's own clock, from when it saw the lease's revision: however far
// the holder's and the observer's clocks disagree, a renewed lease is never taken over, and an
// abandoned one is taken over one TTL after the observer saw it.
func TestExpiryIgnoresClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{0, 2 * ttl, -2 * ttl, 24 * time.Hour} {
		t.Run(fmt.Sprintf("observer skewed by %v", skew), func(t *testing.T) {
			ctx := context.Background()
			srv := natsembedtest.Start(t)
			holderClock, observerClock := newClock(0), newClock(skew)
			kv := bucket(t, srv)
			a := newLedger(t, kv, "worker-a", holderClock.Now)
			b := newLedger(t, kv, "worker-b", observerClock.Now)

			held := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
			defer held.Lease.Close()
			for range 5 { // the holder renews every third of the TTL
				if c := mustClaim(t, b, acme, req("r2", 2), ledger.Busy); c.RetryAfter <= 0 || c.RetryAfter > ttl {
					t.Fatalf("retry after %v", c.RetryAfter)
				}
				holderClock.Advance(ttl / 3)
				observerClock.Advance(ttl / 3)
				if err := held.Lease.Renew(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// the holder dies: the observer sees the last revision, then a TTL passes on its clock
			mustClaim(t, b, acme, req("r2", 2), ledger.Busy)
			observerClock.Advance(ttl - time.Second)
			mustClaim(t, b, acme, req("r2", 2), ledger.Busy)
			observerClock.Advance(time.Second)
			c := mustClaim(t, b, acme, req("r2", 2), ledger.Claimed)
			defer c.Lease.Close()
			if !c.TookOver {
				t.Fatal("not counted as a takeover")
			}
			if err := held.Lease.Renew(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
				t.Fatalf("the old holder may still write: %v", err)
			}
		})
	}
}

// A worker recognises its own lease: a write whose reply is lost is read back and adopted, and a
// lease of a previous delivery in this process, whose holder gave up, is taken over at once.
func TestOwnLeaseRecognised(t *testing.T) {
	ctx := context.Background()
	t.Run("lost replies", func(t *testing.T) {
		for _, op := range []string{"create", "update"} {
			t.Run(op, func(t *testing.T) {
				srv := natsembedtest.Start(t)
				kv := ledgertest.NewLostReplies(bucket(t, srv))
				a := newLedger(t, kv, "worker-a", newClock(0).Now)
				if op == "update" { // the identity exists: the claim is an update
					c := mustClaim(t, a, acme, req("r0", 1), ledger.Claimed)
					if err := c.Lease.Activate(ctx, "conn-0", nil); err != nil {
						t.Fatal(err)
					}
					c.Lease.Close()
				}
				kv.Drop(func(o, _ string, _ []byte) bool { return o == op })
				c := mustClaim(t, a, acme, req("r1", 2), ledger.Claimed)
				defer c.Lease.Close()
				kv.Drop(func(o, _ string, _ []byte) bool { return true })
				for _, w := range []struct {
					name  string
					write func() error
				}{
					{"renew", func() error { return c.Lease.Renew(ctx) }},
					{"progress", func() error { return c.Lease.SetProgress(ctx, json.RawMessage(`{"n":1}`)) }},
					{"activate", func() error { return c.Lease.Activate(ctx, "conn-1", json.RawMessage(`{"v":1}`)) }},
				} {
					if err := w.write(); err != nil {
						t.Fatalf("%s with its reply lost: %v", w.name, err)
					}
				}
				kv.Drop(nil)
				if kv.Dropped() < 4 {
					t.Fatalf("only %d replies were lost; the test proves nothing", kv.Dropped())
				}
				if e, _, _ := a.Get(ctx, acme); e.State != ledger.StateActive || e.Connector != "conn-1" || e.RequestID != "r1" {
					t.Fatalf("entry %+v", e)
				}
			})
		}
	})
	t.Run("a write that never landed is sent again", func(t *testing.T) {
		srv := natsembedtest.Start(t)
		kv := ledgertest.NewLostReplies(bucket(t, srv))
		a := newLedger(t, kv, "worker-a", newClock(0).Now)
		c := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
		defer c.Lease.Close()
		var failed atomic.Int32
		kv.Fail(func(string, string, []byte) bool { return failed.Add(1) <= 2 })
		if err := c.Lease.Activate(ctx, "conn-1", nil); err != nil {
			t.Fatal(err)
		}
		if e, _, _ := a.Get(ctx, acme); e.State != ledger.StateActive {
			t.Fatalf("entry %+v", e)
		}
	})
	t.Run("a dead lease of this process is taken over at once", func(t *testing.T) {
		srv := natsembedtest.Start(t)
		kv := bucket(t, srv)
		a := newLedger(t, kv, "worker-a", newClock(0).Now)
		first := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
		// a second delivery of the same request while the first still runs: busy
		mustClaim(t, a, acme, req("r1", 1), ledger.Busy)
		// the first gives up without being able to release (the KV was unreachable)
		first.Lease.Close()
		again := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
		defer again.Lease.Close()
		if !again.TookOver {
			t.Fatal("not a takeover")
		}
		// another process still waits for it to lapse
		b := newLedger(t, kv, "worker-b", newClock(0).Now)
		again.Lease.Close()
		mustClaim(t, b, acme, req("r1", 1), ledger.Busy)
	})
	t.Run("an abandoned lease is held for the settle time in this process too", func(t *testing.T) {
		srv := natsembedtest.Start(t)
		clk := newClock(0)
		a := newLedger(t, bucket(t, srv), "worker-a", clk.Now)
		c := mustClaim(t, a, acme, req("r1", 1), ledger.Claimed)
		if err := c.Lease.Abandon(ctx, 5*time.Second, nil); err != nil {
			t.Fatal(err)
		}
		c.Lease.Close()
		mustClaim(t, a, acme, req("r1", 1), ledger.Busy)
		clk.Advance(5 * time.Second)
		mustClaim(t, a, acme, req("r1", 1), ledger.Claimed).Lease.Close()
	})
}

// Replicas with clocks skewed by more than the TTL, both ways, contend for identities on real
// time; some holders die mid-work. Never do two hold one identity at once, and every request is
// applied exactly once.
func TestContentionWithSkewedClocks(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	kv := bucket(t, srv)
	const leaseTTL = 3 * time.Second // far above any stall of a live holder, even on a loaded machine
	var ledgers []*ledger.Ledger
	for i, skew := range []time.Duration{0, 3 * leaseTTL, -3 * leaseTTL} {
		l, err := ledger.New(kv, ledger.Config{LeaseTTL: leaseTTL, Owner: fmt.Sprintf("worker-%d", i), Now: func() time.Time { return time.Now().Add(skew) }})
		if err != nil {
			t.Fatal(err)
		}
		ledgers = append(ledgers, l)
	}
	const identities, requestsPer = 6, 4
	var holders [identities]atomic.Int32
	var applied sync.Map // request id -> times applied
	var overlaps, crashes atomic.Int32
	var wg sync.WaitGroup
	for i := range identities {
		id := ledger.Identity{WorkspaceName: "skew", ConnectorKind: "type:github", Name: fmt.Sprint(i)}
		for r := range requestsPer {
			for replica := range ledgers { // every request is delivered to every replica: duplicates
				wg.Add(1)
				go func() {
					defer wg.Done()
					rq := req(fmt.Sprintf("req-%d-%d", i, r), uint64(r+1))
					deadline := time.Now().Add(30 * time.Second)
					for time.Now().Before(deadline) {
						c, err := ledgers[replica].Claim(ctx, id, rq)
						if err != nil {
							t.Error(err)
							return
						}
						switch c.Outcome {
						case ledger.Recorded, ledger.Superseded:
							return
						case ledger.Busy:
							time.Sleep(min(c.RetryAfter, 50*time.Millisecond))
							continue
						}
						if holders[i].Add(1) > 1 {
							overlaps.Add(1)
						}
						if replica == 1 && crashes.Add(1) <= 2 {
							holders[i].Add(-1) // this holder dies: it never writes again
							c.Lease.Close()
							return // its duplicates on the other replicas must finish the request
						}
						for range 3 {
							time.Sleep(10 * time.Millisecond)
							if err := c.Lease.Renew(ctx); err != nil {
								t.Errorf("renew: %v", err)
							}
						}
						holders[i].Add(-1)
						n, _ := applied.LoadOrStore(rq.ID, new(atomic.Int32))
						n.(*atomic.Int32).Add(1)
						if err := c.Lease.Activate(ctx, "conn-"+rq.ID, nil); err != nil {
							t.Errorf("activate: %v", err)
						}
						c.Lease.Close()
						return
					}
					t.Errorf("%s: never finished", rq.ID)
				}()
			}
		}
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d times two workers held one identity", n)
	}
	if crashes.Load() == 0 {
		t.Fatal("no holder died; the test proves nothing about expiry")
	}
	// Each request was applied at most once; a request can also be superseded by a newer one.
	applied.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("%s applied %d times", k, n)
		}
		return true
	})
	for i := range identities {
		id := ledger.Identity{WorkspaceName: "skew", ConnectorKind: "type:github", Name: fmt.Sprint(i)}
		e, _, err := ledgers[0].Get(ctx, id)
		if err != nil || e.State != ledger.StateActive || e.Sequence != requestsPer {
			t.Errorf("identity %d ends %+v %v; want the last request applied", i, e, err)
		}
	}
}

// Many workers on separate connections race for the same identities: exactly one claim wins each.
func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock(0)
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
				c, err := ledgers[j%len(ledgers)].Claim(ctx, id, req(fmt.Sprintf("req-%d-%d", i, j), uint64(j+1)))
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

// Offboarding finds a workspace's identities with a filtered listing, and its marker tombstones a
// never-settled identity claimed by an older request.
func TestWorkspaceIdentitiesAndOffboarding(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	a := open(t, srv, "worker-a", newClock(0))
	var want []string
	for _, ws := range []string{"acme", "acme2", "globex"} {
		for i := range 3 {
			id := ledger.Identity{WorkspaceName: ws, ConnectorKind: "type:github", Name: fmt.Sprint(i)}
			c := mustClaim(t, a, id, req(ws+fmt.Sprint(i), 5), ledger.Claimed)
			if err := c.Lease.Activate(ctx, "c", nil); err != nil {
				t.Fatal(err)
			}
			c.Lease.Close()
			if ws == "acme" {
				want = append(want, id.Key())
			}
		}
	}
	got, err := a.WorkspaceIdentities(ctx, "acme")
	if err != nil || strings.Join(got, ",") != strings.Join(sorted(want), ",") {
		t.Fatalf("identities of acme: %v %v, want %v", got, err, want)
	}
	for _, k := range got {
		c, err := a.ClaimKey(ctx, "acme", k, req("off-1", 10))
		if err != nil || c.Outcome != ledger.Claimed {
			t.Fatalf("claim %s: %v %v", k, c.Outcome, err)
		}
		c.Lease.Close()
	}
	if _, err := a.ClaimKey(ctx, "acme", got[0][:len(got[0])-1]+"x", req("off-1", 10)); err != nil {
		t.Fatal(err) // a key of the workspace, never seen: still claimable
	}
	if _, err := a.ClaimKey(ctx, "globex", got[0], req("off-1", 10)); err == nil {
		t.Fatal("a key of acme was claimed as globex's")
	}

	if _, ok, err := a.MarkOffboarded(ctx, "acme", req("off-1", 10)); !ok || err != nil {
		t.Fatalf("mark: %v %v", ok, err)
	}
	if o, ok, _ := a.MarkOffboarded(ctx, "acme", req("off-0", 9)); ok || o.RequestID != "off-1" {
		t.Fatalf("an older offboarding replaced a newer one: %+v", o)
	}
	late := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:hubspot", Name: "late"}
	if c := mustClaim(t, a, late, req("late-create", 8), ledger.Superseded); c.Newer != "off-1" {
		t.Fatalf("newer = %q", c.Newer)
	}
	if e, _, _ := a.Get(ctx, late); e.State != ledger.StateDeleted || e.Sequence != 10 {
		t.Fatalf("the late identity is not a tombstone: %+v", e)
	}
	fresh := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:hubspot", Name: "after"}
	mustClaim(t, a, fresh, req("new-create", 11), ledger.Claimed).Lease.Close()
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestKeyLayout(t *testing.T) {
	a := ledger.Identity{WorkspaceName: "a|b", ConnectorKind: "c", Name: "d"}
	b := ledger.Identity{WorkspaceName: "a", ConnectorKind: "b|c", Name: "d"}
	if a.Key() == b.Key() {
		t.Fatal("different identities share a key")
	}
	x := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:x", Name: "1"}
	y := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:y", Name: "2"}
	if x.Key()[:strings.LastIndex(x.Key(), ".c.")] != y.Key()[:strings.LastIndex(y.Key(), ".c.")] {
		t.Fatalf("one workspace, two prefixes: %s %s", x.Key(), y.Key())
	}
	odd := ledger.Identity{WorkspaceName: "ünï/cödé .. *>", ConnectorKind: "type:x", Name: "\x00"}
	for _, r := range odd.Key() {
		if !(r == '.' || r >= 'a' && r <= 'f' || r >= '0' && r <= '9' || r == 'c' || r == 'w') {
			t.Fatalf("key %q has %q", odd.Key(), r)
		}
	}
}

// A duplicate published later, with its own newer sequence, replays its request's verdict even
// after many newer requests' verdicts were recorded (applied, or noted as superseded): a short
// history would forget it and give the duplicate a contradicting verdict. Sixteen is more than the
// ten requests for one identity that internal/app's TestConcurrentDuplicatesCreateOneConnector
// interleaves.
func TestVerdictReplayedAfterManyNewerVerdicts(t *testing.T) {
	const newer = 16
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// record puts r0's verdict, then newer verdicts of other requests, in the entry
		record func(t *testing.T, l *ledger.Ledger)
	}{
		{"applied", func(t *testing.T, l *ledger.Ledger) {
			for i := range newer + 1 {
				c := mustClaim(t, l, acme, req(fmt.Sprintf("r%d", i), uint64(i+1)), ledger.Claimed)
				if err := c.Lease.Activate(ctx, fmt.Sprintf("conn-%d", i), json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))); err != nil {
					t.Fatal(err)
				}
				c.Lease.Close()
			}
		}},
		{"noted as superseded", func(t *testing.T, l *ledger.Ledger) {
			c := mustClaim(t, l, acme, req("top", 1000), ledger.Claimed)
			if err := c.Lease.Activate(ctx, "conn-top", json.RawMessage(`{"v":"top"}`)); err != nil {
				t.Fatal(err)
			}
			c.Lease.Close()
			for i := range newer + 1 {
				if n, err := l.Note(ctx, acme, req(fmt.Sprintf("r%d", i), uint64(i+1)), json.RawMessage(fmt.Sprintf(`{"v":%d}`, i))); err != nil || n.Outcome != ledger.Recorded {
					t.Fatalf("note r%d: %v %v", i, n.Outcome, err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, natsembedtest.Start(t), "worker-a", newClock(0))
			tc.record(t, l)
			c := mustClaim(t, l, acme, req("r0", 5000), ledger.Recorded)
			if string(c.Verdict.Record) != `{"v":0}` {
				t.Fatalf("replayed %s, want r0's own verdict", c.Verdict.Record)
			}
		})
	}
}

// Note never writes under a live lease: its holder must find the entry as it left it, or its
// verdict could not be recorded. Once the lease has lapsed (as the noting process sees it), the
// note is written and the entry returns to the state the lease was claimed from.
func TestNoteWaitsForALiveLease(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	clk := newClock(0)
	a := open(t, srv, "worker-a", clk)
	b := open(t, srv, "worker-b", clk)

	c := mustClaim(t, a, acme, req("r1", 5), ledger.Claimed)
	if err := c.Lease.Activate(ctx, "conn-1", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	c.Lease.Close()

	held := mustClaim(t, a, acme, req("r3", 12), ledger.Claimed)
	if n, err := b.Note(ctx, acme, req("r2", 8), json.RawMessage(`{"v":2}`)); err != nil || n.Outcome != ledger.Busy {
		t.Fatalf("note under a live lease: %v, %v; want busy", n.Outcome, err)
	}
	if err := held.Lease.Activate(ctx, "conn-3", json.RawMessage(`{"v":3}`)); err != nil {
		t.Fatalf("the holder's verdict after a note was refused: %v", err)
	}
	held.Lease.Close()
	if n, err := b.Note(ctx, acme, req("r2", 8), json.RawMessage(`{"v":2}`)); err != nil || n.Outcome != ledger.Recorded || string(n.Verdict.Record) != `{"v":2}` {
		t.Fatalf("note after the lease settled: %v, %v", n.Outcome, err)
	}

	// a lease whose holder stopped renewing: busy until it has lapsed on b's clock, then noted
	stalled := mustClaim(t, a, acme, req("r5", 20), ledger.Claimed)
	if n, _ := b.Note(ctx, acme, req("r4", 15), json.RawMessage(`{"v":4}`)); n.Outcome != ledger.Busy {
		t.Fatalf("note under a fresh lease: %v; want busy", n.Outcome)
	}
	clk.Advance(ttl)
	n, err := b.Note(ctx, acme, req("r4", 15), json.RawMessage(`{"v":4}`))
	if err != nil || n.Outcome != ledger.Recorded || n.Entry.State != ledger.StateActive || n.Entry.Lease != nil || n.Entry.Connector != "conn-3" {
		t.Fatalf("note after the lease lapsed: %v, %v, %+v", n.Outcome, err, n.Entry)
	}
	if err := stalled.Lease.Activate(ctx, "conn-5", nil); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("the lapsed holder wrote after the note: %v", err)
	}
	stalled.Lease.Close()
}
