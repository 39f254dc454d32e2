// Package ledger is the provisioner's idempotency ledger: one NATS KV entry per connector identity
// (workspace, connector kind, name) that says who is creating it now (a lease) and what came of it
// (the recorded result). The Airbyte API has no idempotency key; this ledger, plus a lookup before
// create after any interrupted attempt, is what makes "exactly one connector" hold.
//
// An entry moves through: absent -> leased (Create) -> done (Complete, CAS on the lease's revision).
// A lease that failed in a way that may pass is released (CAS) so any replica can claim it at once;
// a lease whose holder died expires and is taken over with a revision CAS. Done entries are never
// rewritten, so every later request for the identity replays the recorded result.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// State of an entry.
type State string

// States.
const (
	StateLeased   State = "leased"
	StateReleased State = "released"
	StateDone     State = "done"
)

// Identity is what makes two requests ask for the same connector.
type Identity struct {
	WorkspaceName string
	ConnectorKind string // e.g. "type:github", "definition:<uuid>"
	Name          string
}

// Key is the KV key: a hash, because workspace names and connector names may hold any character
// while KV keys may not. The hash is over an unambiguous encoding of the three parts.
func (id Identity) Key() string {
	b, _ := json.Marshal([3]string{id.WorkspaceName, id.ConnectorKind, id.Name})
	sum := sha256.Sum256(b)
	return "c." + hex.EncodeToString(sum[:20])
}

// Entry is the stored value.
type Entry struct {
	State     State  `json:"state"`
	Owner     string `json:"owner,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// LeaseExpires is when another worker may take the lease over.
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
	// CreateSent records that a create call may have reached Airbyte under some lease; the next
	// holder must list the workspace's connectors before creating.
	CreateSent bool `json:"create_sent,omitempty"`
	// Record is what a done entry recorded (opaque to the ledger).
	Record    json.RawMessage `json:"record,omitempty"`
	Attempts  int             `json:"attempts"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Config configures a Ledger.
type Config struct {
	Bucket   string
	Replicas int
	// LeaseTTL is how long a lease holds without renewal; keep it well above one Airbyte call's timeout.
	LeaseTTL time.Duration
	// Owner identifies this process in leases (hostname + random suffix).
	Owner string
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Ledger is the KV-backed ledger.
type Ledger struct {
	kv    jetstream.KeyValue
	owner string
	ttl   time.Duration
	now   func() time.Time
}

// Open creates or updates the bucket (never deletes it) and returns the ledger.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Ledger, error) {
	if cfg.Bucket == "" || cfg.Owner == "" || cfg.LeaseTTL <= 0 {
		return nil, errors.New("ledger: bucket, owner and lease ttl are required")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "provisioner idempotency ledger: one entry per connector identity",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: bucket %s: %w", cfg.Bucket, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Ledger{kv: kv, owner: cfg.Owner, ttl: cfg.LeaseTTL, now: now}, nil
}

// Outcome of a claim.
type Outcome int

// Claim outcomes.
const (
	// Claimed: this worker holds the lease and must do the work.
	Claimed Outcome = iota + 1
	// Done: the identity was completed; Entry.Record holds the result.
	Done
	// Busy: another live worker holds the lease; try again later (Entry.LeaseExpires says when it lapses).
	Busy
)

// Claim is the answer to a claim.
type Claim struct {
	Outcome Outcome
	Entry   Entry
	// Lease is set when Outcome is Claimed.
	Lease *Lease
	// TookOver: an expired lease of another worker was taken over.
	TookOver bool
	// MustLookup: an earlier attempt may have created the connector; list before create.
	MustLookup bool
}

// ErrLeaseLost means the lease was taken over (it had expired) or the entry changed under us.
var ErrLeaseLost = errors.New("ledger: lease lost")

// Claim tries to take the identity's lease for requestID.
func (l *Ledger) Claim(ctx context.Context, id Identity, requestID string) (Claim, error) {
	key := id.Key()
	for range 5 { // a few rounds of optimistic concurrency; each round is one KV op or two
		now := l.now()
		fresh := Entry{State: StateLeased, Owner: l.owner, RequestID: requestID, LeaseExpires: now.Add(l.ttl), Attempts: 1, UpdatedAt: now}
		rev, err := l.kv.Create(ctx, key, mustJSON(fresh))
		if err == nil {
			return Claim{Outcome: Claimed, Entry: fresh, Lease: l.lease(key, rev, fresh)}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Claim{}, fmt.Errorf("ledger: claim: %w", err)
		}
		kve, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted between the two calls
		}
		if err != nil {
			return Claim{}, fmt.Errorf("ledger: read: %w", err)
		}
		var cur Entry
		if err := json.Unmarshal(kve.Value(), &cur); err != nil {
			return Claim{}, fmt.Errorf("ledger: entry %s is corrupt: %w", key, err)
		}
		switch {
		case cur.State == StateDone:
			return Claim{Outcome: Done, Entry: cur}, nil
		case cur.State == StateLeased && now.Before(cur.LeaseExpires):
			return Claim{Outcome: Busy, Entry: cur}, nil
		}
		// released, or leased but expired: take it over with a revision CAS.
		tookOver := cur.State == StateLeased
		next := Entry{
			State: StateLeased, Owner: l.owner, RequestID: requestID, LeaseExpires: now.Add(l.ttl),
			// an expired lease's holder may have sent a create we never heard back about
			CreateSent: cur.CreateSent || tookOver,
			Attempts:   cur.Attempts + 1, UpdatedAt: now,
		}
		rev, err = l.kv.Update(ctx, key, mustJSON(next), kve.Revision())
		if isWrongRevision(err) {
			continue // someone else moved first; look again
		}
		if err != nil {
			return Claim{}, fmt.Errorf("ledger: take over: %w", err)
		}
		return Claim{Outcome: Claimed, Entry: next, Lease: l.lease(key, rev, next), TookOver: tookOver, MustLookup: next.CreateSent}, nil
	}
	return Claim{}, errors.New("ledger: claim: too much contention on one identity")
}

// Get reads an identity's entry (tools and tests).
func (l *Ledger) Get(ctx context.Context, id Identity) (Entry, uint64, error) {
	kve, err := l.kv.Get(ctx, id.Key())
	if err != nil {
		return Entry{}, 0, err
	}
	var e Entry
	err = json.Unmarshal(kve.Value(), &e)
	return e, kve.Revision(), err
}

func (l *Ledger) lease(key string, rev uint64, e Entry) *Lease {
	return &Lease{l: l, key: key, rev: rev, entry: e}
}

// Lease is a held claim. Its methods are safe for concurrent use (a renewal loop runs beside the work).
type Lease struct {
	l   *Ledger
	key string

	mu    sync.Mutex
	rev   uint64
	entry Entry
	lost  bool
}

// Expires is when the lease lapses unless renewed.
func (ls *Lease) Expires() time.Time {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.entry.LeaseExpires
}

// Valid reports whether the lease is still ours with at least margin to spare.
func (ls *Lease) Valid(margin time.Duration) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return !ls.lost && ls.l.now().Add(margin).Before(ls.entry.LeaseExpires)
}

// Renew extends the lease by the TTL.
func (ls *Lease) Renew(ctx context.Context) error {
	return ls.write(ctx, func(e *Entry) { e.LeaseExpires = ls.l.now().Add(ls.l.ttl) })
}

// MarkCreateSent records, before the create call goes out, that a connector may exist after it.
func (ls *Lease) MarkCreateSent(ctx context.Context) error {
	ls.mu.Lock()
	sent := ls.entry.CreateSent
	ls.mu.Unlock()
	if sent {
		return nil
	}
	return ls.write(ctx, func(e *Entry) { e.CreateSent = true })
}

// Complete records the result; every later claim of the identity gets Done with this record.
func (ls *Lease) Complete(ctx context.Context, record json.RawMessage) (err error) {
	ctx, span := tracing.StartLedger(ctx, "complete")
	defer func() { span.End(err, "") }()
	return ls.write(ctx, func(e *Entry) {
		e.State, e.Record, e.LeaseExpires = StateDone, record, time.Time{}
	})
}

// HoldUntil keeps the lease, unrenewed, until t, and marks that a create was sent. A worker that
// gives up while a create call may still be running at Airbyte uses it instead of Release: no one
// may list the workspace (and miss the connector still being created) before the call has settled.
// After t the lease lapses and the next holder takes it over and lists first.
func (ls *Lease) HoldUntil(ctx context.Context, t time.Time) error {
	return ls.write(ctx, func(e *Entry) { e.LeaseExpires, e.CreateSent = t, true })
}

// Release gives the lease up so that the next delivery, on any replica, can claim it at once.
// createSent must say whether a create call may have reached Airbyte under this lease.
func (ls *Lease) Release(ctx context.Context, createSent bool) error {
	return ls.write(ctx, func(e *Entry) {
		e.State, e.LeaseExpires, e.CreateSent = StateReleased, time.Time{}, e.CreateSent || createSent
	})
}

func (ls *Lease) write(ctx context.Context, change func(*Entry)) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lost {
		return ErrLeaseLost
	}
	next := ls.entry
	change(&next)
	next.UpdatedAt = ls.l.now()
	rev, err := ls.l.kv.Update(ctx, ls.key, mustJSON(next), ls.rev)
	if isWrongRevision(err) {
		ls.lost = true
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("ledger: write %s: %w", ls.key, err)
	}
	ls.rev, ls.entry = rev, next
	return nil
}

func isWrongRevision(err error) bool { return errors.Is(err, jetstream.ErrKeyRevisionMismatch) }

func mustJSON(e Entry) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // Entry always marshals
	}
	return b
}
