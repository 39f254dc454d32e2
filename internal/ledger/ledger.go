// Package ledger is the provisioner's per-identity state machine on NATS KV: one entry per connector
// identity (workspace, connector kind, name) that says which connector Airbyte holds for it, which
// request put it there (and in which order), and who is changing it now.
//
// The states and their transitions, each one KV revision CAS (see transitions below):
//
//	absent  --claim-->   leased
//	active  --claim-->   leased
//	deleted --claim-->   leased
//	leased  --renew, progress, take over-->  leased
//	leased  --activate-->  active{connector, request, sequence}
//	leased  --delete-->    deleted{request, sequence}   (a tombstone: never removed)
//	leased  --release-->   the state it was claimed from (absent, active or deleted)
//	active  --note-->      active    (the verdict of a superseded request is kept beside the others)
//	deleted --note-->      deleted
//
// Requests are ordered by their original stream sequence: a claim by a request older than the last
// applied one is refused as superseded, so a late create cannot resurrect a deleted identity.
//
// Lease expiry does not depend on clocks agreeing across hosts. A lease carries a duration, not a
// deadline; an observer judges it expired when it has seen the same revision of the entry, unchanged,
// for that long on its own monotonic clock. Every renewal writes a new revision.
//
// A holder recognises its own lease: after a write whose outcome it does not know (a KV leader
// change mid-write) it reads the entry back and adopts the write if it landed; and a lease written by
// this process whose holder is no longer running (a previous delivery that gave up) is taken over at
// once rather than waited out.
//
// Keys are laid out by workspace (w.<hash(workspace)>.c.<hash(identity)>), so a workspace's
// identities are found with one filtered key listing, never a scan of the whole ledger.
package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/tracing"
)

// State of an entry.
type State string

// States.
const (
	StateAbsent  State = "absent" // stored only after a lease on a never-settled identity is released
	StateLeased  State = "leased"
	StateActive  State = "active"
	StateDeleted State = "deleted"
)

// transitions is the state machine: every write of an entry moves it along one of these edges.
var transitions = map[State][]State{
	StateAbsent:  {StateLeased},
	StateActive:  {StateLeased, StateActive},
	StateDeleted: {StateLeased, StateDeleted},
	StateLeased:  {StateLeased, StateActive, StateDeleted, StateAbsent},
}

// legal reports whether from -> to is an edge of the state machine. The empty state is a key that
// does not exist yet: it may only become leased (a claim) or deleted (an offboarding tombstone).
func legal(from, to State) bool {
	if from == "" {
		from = StateAbsent
	}
	return slices.Contains(transitions[from], to)
}

// Identity is what makes two requests ask for the same connector.
type Identity struct {
	WorkspaceName string
	ConnectorKind string // e.g. "type:github", "definition:<uuid>"
	Name          string
}

// Key is the KV key: hashes, because workspace names and connector names may hold any character
// while KV keys may not. The identity's hash is over an unambiguous encoding of its three parts.
func (id Identity) Key() string {
	b, _ := json.Marshal([3]string{id.WorkspaceName, id.ConnectorKind, id.Name})
	sum := sha256.Sum256(b)
	return workspacePrefix(id.WorkspaceName) + "c." + hex.EncodeToString(sum[:20])
}

func workspacePrefix(workspace string) string {
	sum := sha256.Sum256([]byte(workspace))
	return "w." + hex.EncodeToString(sum[:16]) + "."
}

// offboardKey holds a workspace's offboarding marker.
func offboardKey(workspace string) string { return workspacePrefix(workspace) + "offboarded" }

// Request is the request claiming an identity: its id and its original stream sequence (its place in
// the app's publish order; 0 = unknown, which orders before nothing and after nothing).
type Request struct {
	ID       string
	Sequence uint64
}

// Applied is a request whose verdict the entry recorded.
type Applied struct {
	RequestID string          `json:"request_id"`
	Sequence  uint64          `json:"sequence,omitempty"`
	Record    json.RawMessage `json:"record,omitempty"`
}

// recentCap bounds how many earlier verdicts an entry keeps, so that a late redelivery of a request
// that was applied before a newer one replays its own verdict instead of being called superseded.
const recentCap = 8

// LeaseInfo is the lease part of a leased entry.
type LeaseInfo struct {
	ID        string `json:"id"` // unique per claim: how a holder recognises its own write
	Owner     string `json:"owner"`
	RequestID string `json:"request_id"`
	Sequence  uint64 `json:"sequence,omitempty"`
	// TTLMillis is how long the lease holds without a new revision, on the observer's own clock.
	TTLMillis int64 `json:"ttl_ms"`
	// Renewals makes every renewal a new revision (observers restart their count on it).
	Renewals int `json:"renewals,omitempty"`
}

// TTL is the lease's duration.
func (li *LeaseInfo) TTL() time.Duration { return time.Duration(li.TTLMillis) * time.Millisecond }

// Entry is the stored value.
type Entry struct {
	State State `json:"state"`
	// Settled is, while leased, the state the entry was claimed from: where a release returns it.
	Settled State `json:"settled,omitempty"`
	// Connector is the connector Airbyte holds for the identity (active).
	Connector string `json:"connector,omitempty"`
	// RequestID, Sequence and Record are the last applied request and its verdict (opaque here).
	RequestID string          `json:"request_id,omitempty"`
	Sequence  uint64          `json:"sequence,omitempty"`
	Record    json.RawMessage `json:"record,omitempty"`
	Recent    []Applied       `json:"recent,omitempty"`
	Lease     *LeaseInfo      `json:"lease,omitempty"`
	// Progress is what an unfinished operation recorded before each step whose effect would survive
	// a crash (opaque here); ProgressBy names its request. It outlives a takeover and a release and
	// is cleared when a request is applied.
	Progress   json.RawMessage `json:"progress,omitempty"`
	ProgressBy string          `json:"progress_by,omitempty"`
	Attempts   int             `json:"attempts,omitempty"`
}

// SettledState is the state the identity is in apart from any lease: absent, active or deleted.
func (e Entry) SettledState() State { return e.settled() }

// settled is the state a lease on e returns to.
func (e Entry) settled() State {
	if e.State == StateLeased {
		return e.Settled
	}
	if e.State == "" {
		return StateAbsent
	}
	return e.State
}

// verdictOf returns the recorded verdict of a request, if the entry holds one.
func (e Entry) verdictOf(requestID string) (Applied, bool) {
	if e.RequestID == requestID && e.settled() != StateAbsent {
		return Applied{RequestID: e.RequestID, Sequence: e.Sequence, Record: e.Record}, true
	}
	for _, a := range e.Recent {
		if a.RequestID == requestID {
			return a, true
		}
	}
	return Applied{}, false
}

// KV is what the ledger needs of a JetStream key-value bucket. Implemented by jetstream.KeyValue.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error)
}

// Config configures a Ledger.
type Config struct {
	Bucket   string
	Replicas int
	// LeaseTTL is how long a lease holds without renewal; keep it well above one Airbyte call's timeout.
	LeaseTTL time.Duration
	// Owner identifies this process in leases (hostname + random suffix).
	Owner string
	// Now is the clock; nil = time.Now. Only differences between its readings are used, so a clock
	// set wrong (another host's, skewed) changes nothing; keep its monotonic reading (time.Now().Add).
	Now func() time.Time
}

// Ledger is the KV-backed ledger. It is safe for concurrent use.
type Ledger struct {
	kv    KV
	owner string
	ttl   time.Duration
	now   func() time.Time

	mu sync.Mutex
	// seen is, per leased key this process is waiting on, the revision it saw and when it first
	// saw it (its own clock): the basis of lease expiry.
	seen map[string]sighting
	// live holds the ids of the leases this process holds, and until when a released-but-held
	// lease must still count as live (zero: while the holder runs).
	live map[string]time.Time
}

type sighting struct {
	rev uint64
	at  time.Time
}

// Open creates or updates the bucket (never deletes it) and returns the ledger.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Ledger, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("ledger: bucket is required")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "provisioner ledger: one entry per connector identity",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: bucket %s: %w", cfg.Bucket, err)
	}
	return New(kv, cfg)
}

// New returns a ledger over an existing bucket.
func New(kv KV, cfg Config) (*Ledger, error) {
	if kv == nil || cfg.Owner == "" || cfg.LeaseTTL <= 0 {
		return nil, errors.New("ledger: bucket, owner and lease ttl are required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Ledger{kv: kv, owner: cfg.Owner, ttl: cfg.LeaseTTL, now: now, seen: map[string]sighting{}, live: map[string]time.Time{}}, nil
}

// Outcome of a claim.
type Outcome int

// Claim outcomes.
const (
	// Claimed: this worker holds the lease and must do the work.
	Claimed Outcome = iota + 1
	// Recorded: the request was applied before; Verdict holds its recorded verdict.
	Recorded
	// Superseded: a newer request (Newer) was applied to the identity; this one must change nothing.
	Superseded
	// Busy: another live worker holds the lease; try again after RetryAfter.
	Busy
)

func (o Outcome) String() string {
	switch o {
	case Claimed:
		return "claimed"
	case Recorded:
		return "recorded"
	case Superseded:
		return "superseded"
	case Busy:
		return "busy"
	}
	return "unknown"
}

// Claim is the answer to a claim.
type Claim struct {
	Outcome Outcome
	// Entry is the entry as the claim found it (Claimed: as it is now, with the lease).
	Entry Entry
	// Lease is set when Outcome is Claimed; Close it when done.
	Lease *Lease
	// TookOver: a lease of another holder (expired, or a dead one of this process) was taken over;
	// Previous is that lease.
	TookOver bool
	Previous *LeaseInfo
	// Verdict is the recorded verdict (Recorded).
	Verdict Applied
	// Newer names the newer request (Superseded).
	Newer string
	// RetryAfter is how long until the holder's lease lapses, as this process sees it (Busy).
	RetryAfter time.Duration
}

// ErrLeaseLost means the entry changed under the holder: the lease was taken over (it had expired).
var ErrLeaseLost = errors.New("ledger: lease lost")

// UnavailableError is a KV failure that may pass (no response, a leader election): the outcome of
// the write, if any, could not be learnt.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "ledger unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

func unavailable(op string, err error) error {
	return &UnavailableError{Err: fmt.Errorf("%s: %w", op, err)}
}

// maxRounds bounds the optimistic-concurrency rounds of one claim.
const maxRounds = 8

// Claim tries to take the identity's lease for req.
func (l *Ledger) Claim(ctx context.Context, id Identity, req Request) (Claim, error) {
	return l.claim(ctx, id.Key(), id.WorkspaceName, req)
}

// ClaimKey claims one of workspace's identities by its key (offboarding knows keys, not identities).
func (l *Ledger) ClaimKey(ctx context.Context, workspace, key string, req Request) (Claim, error) {
	if !strings.HasPrefix(key, workspacePrefix(workspace)+"c.") {
		return Claim{}, fmt.Errorf("ledger: key %s is not an identity of the workspace", key)
	}
	return l.claim(ctx, key, workspace, req)
}

func (l *Ledger) claim(ctx context.Context, key, workspace string, req Request) (Claim, error) {
	for range maxRounds {
		// The lease counts as live in this process from before it is written: another delivery here
		// must never read it as the dead lease of an earlier one.
		lease := l.newLeaseInfo(req)
		c, again, err := l.claimRound(ctx, key, workspace, req, lease)
		if c.Lease == nil {
			l.unlive(lease.ID)
		}
		if !again {
			return c, err
		}
	}
	return Claim{}, unavailable("claim", errors.New("too much contention on one identity"))
}

// claimRound is one round of optimistic concurrency; again says to look afresh.
func (l *Ledger) claimRound(ctx context.Context, key, workspace string, req Request, lease *LeaseInfo) (_ Claim, again bool, _ error) {
	fresh := Entry{State: StateLeased, Settled: StateAbsent, Lease: lease, Attempts: 1}
	b := mustJSON(fresh)
	rev, err := l.kv.Create(ctx, key, b)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		// unknown outcome: did our create land?
		kve, gerr := l.kv.Get(ctx, key)
		switch {
		case gerr == nil && ownWrite(kve, lease.ID):
			rev, err = kve.Revision(), nil
		case gerr == nil, errors.Is(gerr, jetstream.ErrKeyNotFound):
			return Claim{}, true, nil // not ours: decide again from the top
		default:
			return Claim{}, false, unavailable("claim", err)
		}
	}
	if err == nil {
		ls := l.hold(key, rev, fresh)
		return l.checkOffboardedRound(ctx, workspace, req, Claim{Outcome: Claimed, Entry: fresh, Lease: ls})
	}

	kve, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Claim{}, true, nil
	}
	if err != nil {
		return Claim{}, false, unavailable("read", err)
	}
	var cur Entry
	if err := json.Unmarshal(kve.Value(), &cur); err != nil {
		return Claim{}, false, fmt.Errorf("ledger: entry %s is corrupt: %w", key, err)
	}
	if v, ok := cur.verdictOf(req.ID); ok {
		l.forget(key)
		return Claim{Outcome: Recorded, Entry: cur, Verdict: v}, false, nil
	}
	if req.Sequence > 0 && cur.Sequence > req.Sequence && cur.settled() != StateAbsent {
		l.forget(key)
		return Claim{Outcome: Superseded, Entry: cur, Newer: cur.RequestID}, false, nil
	}
	tookOver := false
	if cur.State == StateLeased && cur.Lease != nil {
		if wait, busy := l.busy(key, kve.Revision(), cur.Lease); busy {
			return Claim{Outcome: Busy, Entry: cur, RetryAfter: wait}, false, nil
		}
		tookOver = true
	}
	next := cur
	next.State, next.Settled, next.Lease, next.Attempts = StateLeased, cur.settled(), lease, cur.Attempts+1
	if !legal(cur.State, next.State) {
		return Claim{}, false, fmt.Errorf("ledger: entry %s: no transition %s -> %s", key, cur.State, next.State)
	}
	b = mustJSON(next)
	rev, err = l.kv.Update(ctx, key, b, kve.Revision())
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		kve2, gerr := l.kv.Get(ctx, key)
		if gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return Claim{}, false, unavailable("claim", err)
		}
		if gerr == nil && ownWrite(kve2, lease.ID) {
			rev, err = kve2.Revision(), nil
		}
	}
	if err != nil {
		return Claim{}, true, nil // someone else moved first (or our write did not land): look again
	}
	l.forget(key)
	ls := l.hold(key, rev, next)
	c := Claim{Outcome: Claimed, Entry: next, Lease: ls, TookOver: tookOver}
	if tookOver {
		c.Previous = cur.Lease
	}
	if next.Settled == StateAbsent {
		return l.checkOffboardedRound(ctx, workspace, req, c)
	}
	return c, false, nil
}

// Note records the verdict of a request that changed nothing (superseded), so that every later
// delivery of the same request id — a duplicate published again, with its own sequence — gets the
// same verdict. It answers Recorded with the verdict now recorded for the request (this one, or one
// recorded before), or Busy while a lease is held: a lease's holder must find the entry as it left it.
func (l *Ledger) Note(ctx context.Context, id Identity, req Request, rec json.RawMessage) (Claim, error) {
	key := id.Key()
	for range maxRounds {
		kve, err := l.kv.Get(ctx, key)
		if err != nil {
			return Claim{}, unavailable("read", err)
		}
		var cur Entry
		if err := json.Unmarshal(kve.Value(), &cur); err != nil {
			return Claim{}, fmt.Errorf("ledger: entry %s is corrupt: %w", key, err)
		}
		if v, ok := cur.verdictOf(req.ID); ok {
			return Claim{Outcome: Recorded, Entry: cur, Verdict: v}, nil
		}
		if cur.State == StateLeased && cur.Lease != nil {
			if wait, busy := l.busy(key, kve.Revision(), cur.Lease); busy {
				return Claim{Outcome: Busy, Entry: cur, RetryAfter: wait}, nil
			}
			cur.State, cur.Lease, cur.Settled = cur.Settled, nil, "" // a dead lease: its holder writes no more
		}
		if !legal(cur.State, cur.State) {
			return Claim{}, fmt.Errorf("ledger: entry %s: no transition %s -> %s", key, cur.State, cur.State)
		}
		v := Applied{RequestID: req.ID, Sequence: req.Sequence, Record: rec}
		next := cur
		next.Recent = append([]Applied{v}, cur.Recent...)
		next.Recent = next.Recent[:min(len(next.Recent), recentCap)]
		b := mustJSON(next)
		_, err = l.kv.Update(ctx, key, b, kve.Revision())
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if kve2, gerr := l.kv.Get(ctx, key); gerr == nil && string(kve2.Value()) == string(b) {
				err = nil
			} else if gerr != nil {
				return Claim{}, unavailable("note", err)
			}
		}
		if err == nil {
			l.forget(key)
			return Claim{Outcome: Recorded, Entry: next, Verdict: v}, nil
		}
	}
	return Claim{}, unavailable("note", errors.New("too much contention on one identity"))
}

// busy decides whether a lease seen at rev is still live, and if so for how long at most.
func (l *Ledger) busy(key string, rev uint64, li *LeaseInfo) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if li.Owner == l.owner {
		until, ok := l.live[li.ID]
		if !ok || (!until.IsZero() && !now.Before(until)) {
			return 0, false // ours, and its holder has given up: no need to wait it out
		}
		return max(until.Sub(now), 100*time.Millisecond), true
	}
	s, ok := l.seen[key]
	if !ok || s.rev != rev {
		l.seen[key] = sighting{rev: rev, at: now}
		return li.TTL(), true
	}
	if elapsed := now.Sub(s.at); elapsed < li.TTL() {
		return li.TTL() - elapsed, true
	}
	delete(l.seen, key)
	return 0, false
}

func (l *Ledger) forget(key string) {
	l.mu.Lock()
	delete(l.seen, key)
	l.mu.Unlock()
}

func (l *Ledger) newLeaseInfo(req Request) *LeaseInfo {
	var b [12]byte
	_, _ = rand.Read(b[:])
	li := &LeaseInfo{ID: hex.EncodeToString(b[:]), Owner: l.owner, RequestID: req.ID, Sequence: req.Sequence, TTLMillis: l.ttl.Milliseconds()}
	l.mu.Lock()
	l.live[li.ID] = time.Time{}
	l.mu.Unlock()
	return li
}

func (l *Ledger) unlive(id string) {
	l.mu.Lock()
	delete(l.live, id)
	l.mu.Unlock()
}

func (l *Ledger) checkOffboardedRound(ctx context.Context, workspace string, req Request, c Claim) (Claim, bool, error) {
	c, err := l.checkOffboarded(ctx, workspace, req, c)
	return c, false, err
}

func ownWrite(kve jetstream.KeyValueEntry, leaseID string) bool {
	var e Entry
	return json.Unmarshal(kve.Value(), &e) == nil && e.Lease != nil && e.Lease.ID == leaseID
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

func (l *Ledger) hold(key string, rev uint64, e Entry) *Lease {
	now := l.now()
	l.mu.Lock()
	if len(l.live) > 1024 { // abandoned leases, long settled
		for id, until := range l.live {
			if !until.IsZero() && now.After(until) {
				delete(l.live, id)
			}
		}
	}
	l.mu.Unlock()
	return &Lease{l: l, key: key, id: e.Lease.ID, rev: rev, entry: e, wrote: l.now()}
}

// Lease is a held claim. Its methods are safe for concurrent use (a renewal loop runs beside the work).
type Lease struct {
	l   *Ledger
	key string
	id  string

	mu    sync.Mutex
	rev   uint64
	entry Entry
	wrote time.Time // when the last successful write was sent (this process's clock)
	lost  bool
	done  bool // the entry left the leased state
}

// Entry is the entry as the holder last wrote it.
func (ls *Lease) Entry() Entry {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.entry
}

// Valid reports whether the lease is still ours with at least margin to spare, on this process's
// clock, counted from when the last write was sent (observers count from when they saw it: later).
func (ls *Lease) Valid(margin time.Duration) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return !ls.lost && !ls.done && ls.l.now().Sub(ls.wrote)+margin < ls.entry.Lease.TTL()
}

// Renew writes a new revision, which every observer's count of the lease starts again from.
func (ls *Lease) Renew(ctx context.Context) error {
	return ls.write(ctx, StateLeased, func(e *Entry) { e.Lease.Renewals++ })
}

// SetProgress records the operation's progress before a step whose effect would survive a crash.
func (ls *Lease) SetProgress(ctx context.Context, progress json.RawMessage) error {
	return ls.write(ctx, StateLeased, func(e *Entry) { e.Progress, e.ProgressBy = progress, e.Lease.RequestID })
}

// Activate records that Airbyte holds connector for the identity, put there by the lease's request,
// whose verdict is record: leased -> active.
func (ls *Lease) Activate(ctx context.Context, connector string, record json.RawMessage) (err error) {
	ctx, span := tracing.StartLedger(ctx, "complete")
	defer func() { span.End(err, "") }()
	return ls.write(ctx, StateActive, func(e *Entry) { e.apply(connector, record) })
}

// Delete records that the identity has no connector, by the lease's request: leased -> deleted.
func (ls *Lease) Delete(ctx context.Context, record json.RawMessage) (err error) {
	ctx, span := tracing.StartLedger(ctx, "complete")
	defer func() { span.End(err, "") }()
	return ls.write(ctx, StateDeleted, func(e *Entry) { e.apply("", record) })
}

func (e *Entry) apply(connector string, record json.RawMessage) {
	if e.settled() != StateAbsent && e.RequestID != "" {
		e.Recent = append([]Applied{{RequestID: e.RequestID, Sequence: e.Sequence, Record: e.Record}}, e.Recent...)
		e.Recent = e.Recent[:min(len(e.Recent), recentCap)]
	}
	e.Connector, e.RequestID, e.Record = connector, e.Lease.RequestID, record
	e.Sequence = max(e.Sequence, e.Lease.Sequence)
	e.Lease, e.Settled, e.Progress, e.ProgressBy = nil, "", nil, ""
}

// Release gives the lease up so that the next delivery, on any replica, can claim it at once: the
// entry returns to the state it was claimed from, with progress (nil: the progress recorded so far)
// for the next holder.
func (ls *Lease) Release(ctx context.Context, progress json.RawMessage) error {
	ls.mu.Lock()
	to := ls.entry.Settled
	ls.mu.Unlock()
	return ls.write(ctx, to, func(e *Entry) {
		if progress != nil {
			e.Progress, e.ProgressBy = progress, e.Lease.RequestID
		}
		e.Lease, e.Settled = nil, ""
	})
}

// Abandon keeps the lease, unrenewed, for settle more (as every observer will see it), then lets
// it lapse. A worker that gives up while a call may still be running at Airbyte uses it instead of
// Release: no one may list the workspace (and miss the connector still being created) before the
// call has settled.
func (ls *Lease) Abandon(ctx context.Context, settle time.Duration, progress json.RawMessage) error {
	err := ls.write(ctx, StateLeased, func(e *Entry) {
		if progress != nil {
			e.Progress, e.ProgressBy = progress, e.Lease.RequestID
		}
		e.Lease.TTLMillis = max(settle.Milliseconds(), 1)
		e.Lease.Renewals++
	})
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.l.mu.Lock()
	defer ls.l.mu.Unlock()
	if _, ok := ls.l.live[ls.id]; ok {
		ls.l.live[ls.id] = ls.wrote.Add(settle)
	}
	ls.done = true
	return err
}

// Close ends the holder's run: a lease still in the entry after it is taken over at once by this
// process's next claim (other processes wait for it to lapse). Always call it.
func (ls *Lease) Close() {
	ls.l.mu.Lock()
	defer ls.l.mu.Unlock()
	if until, ok := ls.l.live[ls.id]; ok && until.IsZero() {
		delete(ls.l.live, ls.id)
	}
}

// write moves the entry along one edge with one revision CAS. A write whose outcome is unknown is
// read back: if it landed, it is adopted; if the entry still holds our last revision, it is sent
// again; anything else means the lease was lost.
func (ls *Lease) write(ctx context.Context, to State, change func(*Entry)) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lost {
		return ErrLeaseLost
	}
	if ls.done || ls.entry.State != StateLeased || !legal(ls.entry.State, to) {
		return fmt.Errorf("ledger: entry %s: no transition %s -> %s", ls.key, ls.entry.State, to)
	}
	next := ls.entry
	if next.Lease != nil {
		li := *next.Lease
		next.Lease = &li
	}
	next.Recent = slices.Clone(next.Recent)
	change(&next)
	next.State = to
	b := mustJSON(next)
	sent := ls.l.now()
	var lastErr error
	for attempt := range 6 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return unavailable("write "+ls.key, errors.Join(lastErr, ctx.Err()))
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			}
		}
		rev, err := ls.l.kv.Update(ctx, ls.key, b, ls.rev)
		if err == nil {
			ls.adopt(rev, next, sent)
			return nil
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt == 0 {
			ls.lost = true
			return ErrLeaseLost
		}
		lastErr = err
		// Unknown outcome (or a mismatch after one): read it back.
		kve, gerr := ls.l.kv.Get(ctx, ls.key)
		switch {
		case gerr != nil:
			lastErr = errors.Join(err, gerr)
			continue // cannot tell yet; the next round sends it again or reads again
		case kve.Revision() == ls.rev:
			continue // it did not land: send it again
		case string(kve.Value()) == string(b):
			ls.adopt(kve.Revision(), next, sent)
			return nil
		default:
			ls.lost = true
			return ErrLeaseLost
		}
	}
	return unavailable("write "+ls.key, lastErr)
}

func (ls *Lease) adopt(rev uint64, next Entry, sent time.Time) {
	ls.rev, ls.entry, ls.wrote = rev, next, sent
	if next.State != StateLeased {
		ls.done = true
	}
}

// Offboarding is a workspace's offboarding marker: identities claimed from absent by a request older
// than it are tombstoned instead.
type Offboarding struct {
	RequestID string          `json:"request_id"`
	Sequence  uint64          `json:"sequence,omitempty"`
	Record    json.RawMessage `json:"record,omitempty"`
}

// MarkOffboarded records that req offboards workspace, unless a newer offboarding is recorded (then
// that one is returned with ok false). It must be written before the workspace's identities are
// listed: an identity created concurrently is then either listed, or sees the marker when claimed.
func (l *Ledger) MarkOffboarded(ctx context.Context, workspace string, req Request) (Offboarding, bool, error) {
	key := offboardKey(workspace)
	want := Offboarding{RequestID: req.ID, Sequence: req.Sequence}
	for range maxRounds {
		kve, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := l.kv.Create(ctx, key, mustJSON(want)); err == nil {
				return want, true, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return Offboarding{}, false, unavailable("mark offboarded", err)
			}
			continue
		}
		if err != nil {
			return Offboarding{}, false, unavailable("mark offboarded", err)
		}
		var cur Offboarding
		if err := json.Unmarshal(kve.Value(), &cur); err != nil {
			return Offboarding{}, false, fmt.Errorf("ledger: offboarding marker is corrupt: %w", err)
		}
		switch {
		case cur.RequestID == req.ID:
			return cur, true, nil
		case req.Sequence > 0 && cur.Sequence > req.Sequence:
			return cur, false, nil
		}
		if _, err := l.kv.Update(ctx, key, mustJSON(want), kve.Revision()); err == nil {
			return want, true, nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Offboarding{}, false, unavailable("mark offboarded", err)
		}
	}
	return Offboarding{}, false, unavailable("mark offboarded", errors.New("too much contention"))
}

// RecordOffboarded stores the offboarding's verdict in the marker (for a redelivery to replay).
func (l *Ledger) RecordOffboarded(ctx context.Context, workspace string, o Offboarding) error {
	key := offboardKey(workspace)
	kve, err := l.kv.Get(ctx, key)
	if err != nil {
		return unavailable("record offboarded", err)
	}
	var cur Offboarding
	if err := json.Unmarshal(kve.Value(), &cur); err != nil || cur.RequestID != o.RequestID {
		return ErrLeaseLost // a newer offboarding took the marker
	}
	if _, err := l.kv.Update(ctx, key, mustJSON(o), kve.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return ErrLeaseLost
		}
		return unavailable("record offboarded", err)
	}
	return nil
}

// Offboarded reads a workspace's offboarding marker.
func (l *Ledger) Offboarded(ctx context.Context, workspace string) (Offboarding, bool, error) {
	kve, err := l.kv.Get(ctx, offboardKey(workspace))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Offboarding{}, false, nil
	}
	if err != nil {
		return Offboarding{}, false, unavailable("read offboarding", err)
	}
	var o Offboarding
	if err := json.Unmarshal(kve.Value(), &o); err != nil {
		return Offboarding{}, false, fmt.Errorf("ledger: offboarding marker is corrupt: %w", err)
	}
	return o, true, nil
}

// checkOffboarded turns a claim of a never-settled identity by a request older than its workspace's
// offboarding into a tombstone: the offboarding is newer, so the identity must stay deleted.
func (l *Ledger) checkOffboarded(ctx context.Context, workspace string, req Request, c Claim) (Claim, error) {
	o, ok, err := l.Offboarded(ctx, workspace)
	if err != nil {
		c.Lease.Close()
		return Claim{}, err
	}
	if !ok || req.Sequence == 0 || o.Sequence <= req.Sequence {
		return c, nil
	}
	err = c.Lease.write(ctx, StateDeleted, func(e *Entry) {
		e.Lease.RequestID, e.Lease.Sequence = o.RequestID, o.Sequence
		e.apply("", nil)
	})
	c.Lease.Close()
	if err != nil {
		return Claim{}, err
	}
	return Claim{Outcome: Superseded, Entry: c.Lease.Entry(), Newer: o.RequestID}, nil
}

// WorkspaceIdentities lists the keys of a workspace's identities, with one filtered listing.
func (l *Ledger) WorkspaceIdentities(ctx context.Context, workspace string) ([]string, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, workspacePrefix(workspace)+"c.*")
	if err != nil {
		return nil, unavailable("list identities", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // ledger values always marshal
	}
	return b
}
