package provision_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/ledger/ledgertest"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// A new secret for an identity that has a connector is applied: in place for an embedded source,
// by replace for an Agent Engine connector. Each request id keeps its own verdict.
func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		request  func(id, ref string) event.Request
		replaces bool
	}{
		{"agent engine connector is replaced", submit, true},
		{"embedded source is updated in place", submitTemplate, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			w := r.worker(workerOpts{owner: "a"})
			first := expect(t, w.until(t, tc.request("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated)
			old := connectorID(t, first)

			d := w.until(t, tc.request("r2", r.secret("acme/v2.json", "ghp_two")), r.next())
			res := expect(t, d, provision.Ack, contract.MessageSourceUpdated)
			now := r.only(t)
			holding(t, now, "ghp_two")
			if connectorID(t, res) != now.ID || res.Revision != 1 {
				t.Fatalf("result names %s (revision %d); Airbyte holds %s", connectorID(t, res), res.Revision, now.ID)
			}
			switch {
			case tc.replaces && (now.ID == old || res.ReplacedID != old || d.Outcome != provision.OutcomeReplaced):
				t.Fatalf("replace: old %s, now %s, replaced_id %q, outcome %s", old, now.ID, res.ReplacedID, d.Outcome)
			case !tc.replaces && (now.ID != old || res.ReplacedID != "" || d.Outcome != provision.OutcomeUpdated):
				t.Fatalf("in place: old %s, now %s, replaced_id %q, outcome %s", old, now.ID, res.ReplacedID, d.Outcome)
			}

			t.Run("the same request id replays its verdict", func(t *testing.T) {
				again := expect(t, w.handle(tc.request("r2", "file:acme/v2.json"), 2, 2, false), provision.Ack, contract.MessageSourceUpdated)
				if connectorID(t, again) != now.ID || again.ReplacedID != res.ReplacedID {
					t.Fatalf("replay %s, first %s", resultText(again), resultText(res))
				}
				earlier := expect(t, w.handle(tc.request("r1", "file:acme/v1.json"), 1, 3, false), provision.Ack, contract.MessageSourceCreated)
				if connectorID(t, earlier) != old {
					t.Fatalf("r1 replayed %s, first %s", resultText(earlier), resultText(first))
				}
				if r.only(t).ID != now.ID {
					t.Fatal("a replay changed Airbyte")
				}
			})
		})
	}
}

// A worker killed at any step of a replace leaves the identity for the next worker to finish: one
// connector with the new credentials, one verdict, never two new connectors, never none.
func TestReplaceCrashPoints(t *testing.T) {
	for _, step := range []provision.Step{
		provision.StepCreated, provision.StepRecordedNew, provision.StepBeforeDeletes,
		provision.StepDeletedOld, provision.StepBeforeRecord,
	} {
		t.Run(string(step), func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			killed := errors.New("killed")
			var crashed bool
			a := r.worker(workerOpts{owner: "a", leaseTTL: time.Second, atStep: func(s provision.Step) error {
				if s == step && !crashed {
					crashed = true
					return killed
				}
				return nil
			}})
			old := connectorID(t, expect(t, a.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated))
			crashed = false
			ref, seq := r.secret("acme/v2.json", "ghp_two"), r.next()

			d := a.handle(submit("r2", ref), seq, 1, false)
			if !crashed || d.Action != provision.Retry || d.Result != nil {
				t.Fatalf("the worker was not killed at %s: %v %s", step, d.Action, resultText(d.Result))
			}
			// redelivery to a fresh worker: it must wait out the dead lease, then finish
			b := r.worker(workerOpts{owner: "b", leaseTTL: time.Second})
			res := expect(t, b.until(t, submit("r2", ref), seq), provision.Ack, contract.MessageSourceUpdated)
			now := r.only(t)
			holding(t, now, "ghp_two")
			if now.ID == old || connectorID(t, res) != now.ID || res.ReplacedID != old {
				t.Fatalf("after a kill at %s: Airbyte holds %s (old %s); result %s", step, now.ID, old, resultText(res))
			}
			entry, _, err := b.ledger.Get(t.Context(), ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"})
			if err != nil || entry.State != ledger.StateActive || entry.Connector != now.ID || entry.RequestID != "r2" {
				t.Fatalf("ledger %+v %v", entry, err)
			}
			if created := r.sandbox.Stats().Created; created != 2 {
				t.Fatalf("%d connectors were created for two requests", created)
			}
			// the killed worker's own later delivery replays the same verdict
			again := expect(t, a.handle(submit("r2", ref), seq, 3, false), provision.Ack, contract.MessageSourceUpdated)
			if connectorID(t, again) != now.ID {
				t.Fatalf("second verdict %s differs from %s", resultText(again), resultText(res))
			}
		})
	}
}

// With --lookup always, a connector made outside the provisioner is given the request's
// credentials; a worker killed at any step of that leaves the identity for the next worker to
// finish: one connector with the request's credentials, answered source_updated — never the foreign
// connector adopted as the killed worker's create, never two connectors.
func TestForeignConnectorCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		kind string
		step provision.Step
	}{
		{"agent engine", provision.StepCreated},
		{"agent engine", provision.StepRecordedNew},
		{"agent engine", provision.StepBeforeDeletes},
		{"agent engine", provision.StepDeletedOld},
		{"agent engine", provision.StepBeforeRecord},
		{"embedded", provision.StepUpdated},
		{"embedded", provision.StepBeforeRecord},
	} {
		t.Run(tc.kind+"/"+string(tc.step), func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			embedded := tc.kind == "embedded"
			client, err := airbyte.New(airbyte.Config{BaseURL: r.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
			if err != nil {
				t.Fatal(err)
			}
			create := airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "GitHub", ConnectorType: "github",
				Credentials: secret.NewFields(map[string]string{"token": "ghp_foreign"})}
			req := submit("r1", r.secret("acme/v1.json", "ghp_request"))
			if embedded {
				create.ConnectorType, create.SourceTemplateID = "", githubTemplate
				req = submitTemplate("r1", "file:acme/v1.json")
			}
			foreign, err := client.CreateConnector(t.Context(), create)
			if err != nil {
				t.Fatal(err)
			}
			killed := errors.New("killed")
			var crashed bool
			a := r.worker(workerOpts{owner: "a", leaseTTL: time.Second, lookup: provision.LookupAlways, atStep: func(s provision.Step) error {
				if s == tc.step && !crashed {
					crashed = true
					return killed
				}
				return nil
			}})
			seq := r.next()
			if d := a.handle(req, seq, 1, false); !crashed || d.Action != provision.Retry || d.Result != nil {
				t.Fatalf("the worker was not killed at %s: %v %s", tc.step, d.Action, resultText(d.Result))
			}
			b := r.worker(workerOpts{owner: "b", leaseTTL: time.Second, lookup: provision.LookupAlways})
			res := expect(t, b.until(t, req, seq), provision.Ack, contract.MessageSourceUpdated)
			now := r.only(t)
			holding(t, now, "ghp_request")
			switch {
			case connectorID(t, res) != now.ID:
				t.Fatalf("result %s, Airbyte holds %s", resultText(res), now.ID)
			case embedded && (now.ID != foreign.ID || res.ReplacedID != ""):
				t.Fatalf("embedded source %s (foreign %s) not updated in place: %s", now.ID, foreign.ID, resultText(res))
			case !embedded && (now.ID == foreign.ID || res.ReplacedID != foreign.ID):
				t.Fatalf("connector %s does not replace the foreign %s: %s", now.ID, foreign.ID, resultText(res))
			}
			if !embedded {
				if created := r.sandbox.Stats().Created; created != 2 {
					t.Fatalf("%d connectors were created: the foreign one and one replacement expected", created)
				}
			}
		})
	}
}

// Requests for one identity apply in publish order, whatever order they are delivered in; an older
// one is superseded and changes nothing, and a tombstone keeps a late create from resurrecting a
// disconnected identity.
func TestOutOfOrderDelivery(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	w := r.worker(workerOpts{owner: "a"})
	ref1, ref2 := r.secret("acme/v1.json", "ghp_one"), r.secret("acme/v2.json", "ghp_two")
	seq1, seq2, seq3, seq4 := r.next(), r.next(), r.next(), r.next()

	// r2 (published second) is delivered first
	created := connectorID(t, expect(t, w.until(t, submit("r2", ref2), seq2), provision.Ack, contract.MessageSourceCreated))
	stats := r.sandbox.Stats()
	d := w.until(t, submit("r1", ref1), seq1)
	res := expect(t, d, provision.Ack, contract.MessageSourceUpdateError)
	if res.Error.Code != contract.CodeSuperseded || res.Error.Retryable || d.Outcome != provision.OutcomeSuperseded {
		t.Fatalf("late r1: %s", resultText(res))
	}
	if want := "r2"; !contains(res.Error.Message, want) {
		t.Fatalf("superseded message %q does not name %s", res.Error.Message, want)
	}
	if after := r.sandbox.Stats(); after.Created != stats.Created || after.Deleted != stats.Deleted || r.only(t).ID != created {
		t.Fatal("a superseded request changed Airbyte")
	}
	holding(t, r.only(t), "ghp_two")
	// the same superseded request, published again with a newer sequence, keeps its verdict
	dup := expect(t, w.until(t, submit("r1", ref1), seq4), provision.Ack, contract.MessageSourceUpdateError)
	if dup.Error.Code != contract.CodeSuperseded || r.only(t).ID != created {
		t.Fatalf("duplicate of a superseded request: %s", resultText(dup))
	}

	// a disconnect (seq3) and then a create published before it (seq1.5 stands in: an id never seen)
	del := expect(t, w.until(t, disconnect("d3"), seq3), provision.Ack, contract.MessageSourceDeleted)
	if del.AlreadyAbsent == nil || *del.AlreadyAbsent || connectorID(t, del) != created {
		t.Fatalf("disconnect: %s", resultText(del))
	}
	waitGone(t, r)
	late := expect(t, w.until(t, submit("r-late", ref1), seq2), provision.Ack, contract.MessageSourceCreateError)
	if late.Error.Code != contract.CodeSuperseded || len(r.sandbox.Connectors("acme")) != 0 {
		t.Fatalf("a late create resurrected a disconnected identity: %s, %d connectors", resultText(late), len(r.sandbox.Connectors("acme")))
	}
	// a newer create may
	back := expect(t, w.until(t, submit("r5", ref2), r.next()), provision.Ack, contract.MessageSourceCreated)
	if r.only(t).ID != connectorID(t, back) {
		t.Fatal("the newer create is not what Airbyte holds")
	}
}

// Disconnecting an identity without a connector succeeds as already absent and leaves a tombstone.
func TestDisconnectAbsent(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	w := r.worker(workerOpts{owner: "a"})
	seq := r.next()
	res := expect(t, w.until(t, disconnect("d1"), seq), provision.Ack, contract.MessageSourceDeleted)
	if res.AlreadyAbsent == nil || !*res.AlreadyAbsent {
		t.Fatalf("result %s", resultText(res))
	}
	entry, _, err := w.ledger.Get(t.Context(), ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"})
	if err != nil || entry.State != ledger.StateDeleted || entry.Sequence != seq {
		t.Fatalf("tombstone %+v %v", entry, err)
	}
}

// A rotation and a disconnect of one identity race on two replicas: Airbyte ends as the later of
// the two in publish order says, and each request gets one verdict that tells the truth.
func TestRotationRacesDisconnect(t *testing.T) {
	for _, disconnectLast := range []bool{true, false} {
		name := "disconnect published last"
		if !disconnectLast {
			name = "rotation published last"
		}
		t.Run(name, func(t *testing.T) {
			for round := range 4 {
				r := newRig(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
					sandbox.OpAll: {Latency: 5 * time.Millisecond, LatencyJitter: 20 * time.Millisecond},
				}}})
				a, b := r.worker(workerOpts{owner: "a"}), r.worker(workerOpts{owner: "b"})
				first := connectorID(t, expect(t, a.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated))
				ref := r.secret("acme/v2.json", "ghp_two")
				rotSeq, discSeq := r.next(), r.next()
				if !disconnectLast {
					rotSeq, discSeq = discSeq, rotSeq
				}
				var rot, disc provision.Decision
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); rot = a.until(t, submit("r2", ref), rotSeq) }()
				go func() { defer wg.Done(); disc = b.until(t, disconnect("d2"), discSeq) }()
				wg.Wait()

				if disc.Action != provision.Ack || disc.Result.Message != contract.MessageSourceDeleted && !superseded(disc.Result) {
					t.Fatalf("round %d: disconnect %s", round, resultText(disc.Result))
				}
				if rot.Action != provision.Ack || rot.Result.Message != contract.MessageSourceUpdated && rot.Result.Message != contract.MessageSourceCreated && !superseded(rot.Result) {
					t.Fatalf("round %d: rotation %s", round, resultText(rot.Result))
				}
				if disconnectLast {
					if superseded(disc.Result) {
						t.Fatalf("round %d: the later disconnect was superseded", round)
					}
					waitGone(t, r)
				} else {
					if superseded(rot.Result) {
						t.Fatalf("round %d: the later rotation was superseded", round)
					}
					now := r.only(t)
					holding(t, now, "ghp_two")
					if now.ID == first || connectorID(t, rot.Result) != now.ID {
						t.Fatalf("round %d: Airbyte holds %s; rotation says %s (first %s)", round, now.ID, resultText(rot.Result), first)
					}
				}
			}
		})
	}
}

// A write whose outcome the worker does not learn (a KV leader change mid-write) never makes a
// created connector fail: the worker reads its lease back, a later delivery in the same process
// takes over its own dead lease at once and finishes with the same connector, and on the last
// delivery the true result is published even if the ledger cannot be written.
func TestLedgerWriteOutcomeUnknown(t *testing.T) {
	id := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"}
	activate := func(op, _ string, value []byte) bool {
		return op == "update" && contains(string(value), `"state":"active"`)
	}
	t.Run("every reply lost", func(t *testing.T) {
		r := newRig(t, sandbox.Config{})
		var lost *ledgertest.LostReplies
		w := r.worker(workerOpts{owner: "a", kv: func(kv jetstream.KeyValue) ledger.KV {
			lost = ledgertest.NewLostReplies(kv)
			lost.Drop(func(string, string, []byte) bool { return true })
			return lost
		}})
		res := expect(t, w.handle(submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next(), 1, false), provision.Ack, contract.MessageSourceCreated)
		if lost.Dropped() < 2 || r.only(t).ID != connectorID(t, res) { // the claim and the record
			t.Fatalf("%d replies lost; result %s", lost.Dropped(), resultText(res))
		}
		if e, _, err := w.ledger.Get(t.Context(), id); err != nil || e.State != ledger.StateActive || e.Connector != connectorID(t, res) {
			t.Fatalf("ledger %+v %v", e, err)
		}
	})
	t.Run("ledger unwritable, then back", func(t *testing.T) {
		r := newRig(t, sandbox.Config{})
		var lost *ledgertest.LostReplies
		// a long lease: waiting it out would outlast every delivery's budget
		w := r.worker(workerOpts{owner: "a", leaseTTL: time.Minute, kv: func(kv jetstream.KeyValue) ledger.KV {
			lost = ledgertest.NewLostReplies(kv)
			lost.Fail(activate)
			return lost
		}})
		ref, seq := r.secret("acme/v1.json", "ghp_one"), r.next()
		d := w.handle(submit("r1", ref), seq, 1, false)
		if d.Action != provision.Retry || d.Result != nil {
			t.Fatalf("first delivery: %v %s, want a retry and no verdict yet", d.Action, resultText(d.Result))
		}
		created := r.only(t).ID
		lost.Fail(nil)
		res := expect(t, w.handle(submit("r1", ref), seq, 2, false), provision.Ack, contract.MessageSourceCreated)
		if connectorID(t, res) != created || r.only(t).ID != created || r.sandbox.Stats().Created != 1 {
			t.Fatalf("second delivery: %s; Airbyte created %d", resultText(res), r.sandbox.Stats().Created)
		}
	})
	t.Run("ledger unwritable on the last delivery", func(t *testing.T) {
		r := newRig(t, sandbox.Config{})
		w := r.worker(workerOpts{owner: "a", kv: func(kv jetstream.KeyValue) ledger.KV {
			lost := ledgertest.NewLostReplies(kv)
			lost.Fail(activate)
			return lost
		}})
		res := expect(t, w.handle(submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next(), 8, true), provision.Ack, contract.MessageSourceCreated)
		if r.only(t).ID != connectorID(t, res) {
			t.Fatalf("result %s", resultText(res))
		}
	})
}

// takenOver is a ledger whose entry another worker rewrites just before this one records its
// outcome (a takeover after a stall longer than the lease): the record's CAS then fails on the
// server, as it would after a real takeover.
type takenOver struct {
	jetstream.KeyValue
	mu    sync.Mutex
	armed bool
}

func (k *takenOver) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	k.mu.Lock()
	takeOver := k.armed && contains(string(value), `"state":"active"`)
	if takeOver {
		k.armed = false
	}
	k.mu.Unlock()
	if takeOver {
		e, err := k.KeyValue.Get(ctx, key)
		if err != nil {
			return 0, err
		}
		if _, err := k.KeyValue.Put(ctx, key, e.Value()); err != nil {
			return 0, err
		}
	}
	return k.KeyValue.Update(ctx, key, value, revision)
}

// A lease lost just before the record: Airbyte holds the connector, so the verdict is never an
// error. Before the last delivery the request is retried (the next delivery replays whatever the
// identity's new holder records); on the last one the true result is published anyway.
func TestLeaseLostBeforeTheRecord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final bool
	}{
		{"not the last delivery", false},
		{"the last delivery", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			kv := &takenOver{armed: true}
			w := r.worker(workerOpts{owner: "a", kv: func(jkv jetstream.KeyValue) ledger.KV {
				kv.KeyValue = jkv
				return kv
			}})
			d := w.handle(submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next(), 8, tc.final)
			if kv.armed {
				t.Fatal("the record was never attempted")
			}
			if !tc.final {
				if d.Action != provision.Retry || d.Result != nil {
					t.Fatalf("decision %v %s, want a retry and no verdict yet", d.Action, resultText(d.Result))
				}
				return
			}
			res := expect(t, d, provision.Ack, contract.MessageSourceCreated)
			if r.only(t).ID != connectorID(t, res) {
				t.Fatalf("result %s", resultText(res))
			}
		})
	}
}

// Three replicas, two of them with clocks skewed by more than the lease both ways, each get every
// request of several identities at once (duplicates racing): each identity ends with exactly one
// connector, every request gets one true verdict, and no replica took a live lease.
func TestReplicasWithSkewedClocks(t *testing.T) {
	r := newRig(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {Latency: 100 * time.Millisecond}, // creates in flight while others claim
	}}})
	const leaseTTL = 2 * time.Second
	var workers []*worker
	for i, skew := range []time.Duration{0, 3 * leaseTTL, -3 * leaseTTL} {
		workers = append(workers, r.worker(workerOpts{owner: fmt.Sprintf("w%d", i), leaseTTL: leaseTTL,
			clock: func() time.Time { return time.Now().Add(skew) }}))
	}
	const identities = 6
	type verdict struct {
		id  string
		res *contract.Result
	}
	verdicts := make(chan verdict, identities*len(workers))
	var wg sync.WaitGroup
	for i := range identities {
		req := submit(fmt.Sprintf("r%d", i), r.secret(fmt.Sprintf("acme/%d.json", i), fmt.Sprintf("ghp_%d", i)))
		req.CredentialsSubmitted.Name = fmt.Sprintf("GitHub %d", i)
		seq := r.next()
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := w.until(t, req, seq)
				verdicts <- verdict{req.ID(), d.Result}
			}()
		}
	}
	wg.Wait()
	close(verdicts)
	named := map[string]string{}
	for v := range verdicts {
		if v.res == nil || v.res.Message != contract.MessageSourceCreated {
			t.Fatalf("%s: %s", v.id, resultText(v.res))
		}
		if prev, ok := named[v.id]; ok && prev != connectorID(t, v.res) {
			t.Fatalf("%s: verdicts name %s and %s", v.id, prev, connectorID(t, v.res))
		}
		named[v.id] = connectorID(t, v.res)
	}
	cs := r.sandbox.Connectors("acme")
	if len(cs) != identities || r.sandbox.Stats().Created != identities {
		t.Fatalf("%d connectors (%d created) for %d identities: a lease was taken while live", len(cs), r.sandbox.Stats().Created, identities)
	}
	for _, c := range cs {
		if named[fmt.Sprintf("r%s", c.Name[len("GitHub "):])] != c.ID {
			t.Fatalf("connector %s (%s) is not the one its verdicts name", c.ID, c.Name)
		}
	}
}

func superseded(r *contract.Result) bool {
	return r != nil && r.Error != nil && r.Error.Code == contract.CodeSuperseded
}

func waitGone(t *testing.T, r *rig) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.sandbox.Connectors("acme")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connectors left: %+v", r.sandbox.Connectors("acme"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Airbyte deletes asynchronously: a list may still show a connector an earlier rotation deleted.
// A replace whose create fails ambiguously (committed, answer lost) must adopt the connector it
// created, never that deleted one.
func TestAmbiguousCreateIgnoresDeletedConnectorsStillListed(t *testing.T) {
	r := newRig(t, sandbox.Config{Seed: 1})
	w := r.worker(workerOpts{owner: "a"})
	first := connectorID(t, expect(t, w.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated))
	expect(t, w.until(t, submit("r2", r.secret("acme/v2.json", "ghp_two")), r.next()), provision.Ack, contract.MessageSourceUpdated)
	// r1's connector is deleted but still listed by the next list call
	r.sandbox.SetFaults(sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpConnectorsCreate: {CommitThenFail: 1}}})
	res := expect(t, w.until(t, submit("r3", r.secret("acme/v3.json", "ghp_three")), r.next()), provision.Ack, contract.MessageSourceUpdated)
	if r.sandbox.Stats().CommittedThenFailed == 0 {
		t.Fatal("no create was committed then failed; the test proves nothing")
	}
	now := r.only(t)
	holding(t, now, "ghp_three")
	if got := connectorID(t, res); got != now.ID || got == first {
		t.Fatalf("result names %s; Airbyte holds %s (r1's deleted connector was %s)", got, now.ID, first)
	}
}

// A dead worker's lease is seen to lapse by the delivery that found it: it watches the lease for its
// whole duration (on its own clock) and takes it over, rather than handing the message to another
// replica that would start counting again.
func TestDeadLeaseTakenOverWithinOneDelivery(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	dead := r.worker(workerOpts{owner: "dead", leaseTTL: time.Second})
	ref, seq := r.secret("acme/v1.json", "ghp_one"), r.next()
	id := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"}
	if c, err := dead.ledger.Claim(t.Context(), id, ledger.Request{ID: "r1", Sequence: seq}); err != nil || c.Outcome != ledger.Claimed {
		t.Fatalf("claim: %v %v", c.Outcome, err)
	} // and the dead worker never writes again

	live := r.worker(workerOpts{owner: "live", leaseTTL: time.Second})
	d := live.handle(submit("r1", ref), seq, 2, false)
	res := expect(t, d, provision.Ack, contract.MessageSourceCreated)
	if r.only(t).ID != connectorID(t, res) {
		t.Fatalf("result %s", resultText(res))
	}
}

// A create that failed ambiguously (a 500: Airbyte may still commit it) keeps the lease held for
// CreateSettle when the delivery gives up, even if a later call of the same delivery got a
// definite answer: that answer settles only its own call. Released at once instead, the next
// holder could list before the first create commits, miss it, and create a second connector (or
// leave it behind, holding the customer's credentials).
func TestAmbiguousCreateStaysUnsettledAfterALaterDefiniteAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seed   int64                        // decides each call's fate from the sandbox's fault plan
		faults map[string]sandbox.FaultRule // by operation
		first  bool                         // r1 is expected to end the delivery (no earlier connector)
		code   contract.Code                // the error the delivery ends with
		calls  map[string]int64             // requests by operation the scenario must have made
	}{
		{
			// seed 2: the first create answers 500, the second 400
			name: "create, then a create's 400", seed: 2, first: true, code: contract.CodeAirbyteBadRequest,
			faults: map[string]sandbox.FaultRule{sandbox.OpConnectorsCreate: {ErrorRates: map[int]float64{400: 0.5, 500: 0.5}}},
			calls:  map[string]int64{sandbox.OpConnectorsCreate: 2},
		},
		{
			// seed 5: r1's create succeeds; r2's replace gets a 500, then a new connector, then a
			// 403 deleting the old one
			name: "replace, then a delete's 403", seed: 5, code: contract.CodeAirbyteForbidden,
			faults: map[string]sandbox.FaultRule{
				sandbox.OpConnectorsCreate: {ErrorRates: map[int]float64{500: 0.5}},
				sandbox.OpConnectorsDelete: {ErrorRates: map[int]float64{403: 1}},
			},
			calls: map[string]int64{sandbox.OpConnectorsCreate: 3, sandbox.OpConnectorsDelete: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, sandbox.Config{Seed: tc.seed, Faults: sandbox.Faults{Rules: tc.faults}})
			w := r.worker(workerOpts{owner: "a"})
			req, message := submit("r1", r.secret("acme/v1.json", "ghp_one")), contract.MessageSourceCreateError
			if !tc.first {
				expect(t, w.until(t, req, r.next()), provision.Ack, contract.MessageSourceCreated)
				req, message = submit("r2", r.secret("acme/v2.json", "ghp_two")), contract.MessageSourceUpdateError
			}
			d := w.handle(req, r.next(), 1, false)
			expect(t, d, provision.DeadLetter, message)
			if code, _ := event.CodeOf(d.Err); code != tc.code {
				t.Fatalf("error %v, want %s", d.Err, tc.code)
			}
			st := r.sandbox.Stats()
			for op, n := range tc.calls {
				if st.Requests[op] != n {
					t.Fatalf("%d requests of %s, want %d: the scenario did not happen", st.Requests[op], op, n)
				}
			}
			e, _, err := w.ledger.Get(t.Context(), ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "GitHub"})
			if err != nil {
				t.Fatal(err)
			}
			if e.State != ledger.StateLeased || e.Lease == nil {
				t.Fatalf("entry %s (lease %+v): want the lease held for CreateSettle after the ambiguous create", e.State, e.Lease)
			}
		})
	}
}

// A disconnect killed after its deletes, before the ledger recorded them, is finished by the next
// worker with the same, true verdict: the connector was deleted by this request (its id, not
// already_absent), even though Airbyte now answers that it is gone.
func TestDisconnectCrashPoints(t *testing.T) {
	for _, step := range []provision.Step{provision.StepDeleted, provision.StepBeforeRecord} {
		t.Run(string(step), func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			killed := errors.New("killed")
			var crashed bool
			a := r.worker(workerOpts{owner: "a", leaseTTL: time.Second, atStep: func(s provision.Step) error {
				if s == step && !crashed {
					crashed = true
					return killed
				}
				return nil
			}})
			created := connectorID(t, expect(t, a.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated))
			crashed = false
			seq := r.next()
			if d := a.handle(disconnect("d1"), seq, 1, false); !crashed || d.Action != provision.Retry || d.Result != nil {
				t.Fatalf("the worker was not killed at %s: %v %s", step, d.Action, resultText(d.Result))
			}
			b := r.worker(workerOpts{owner: "b", leaseTTL: time.Second})
			res := expect(t, b.until(t, disconnect("d1"), seq), provision.Ack, contract.MessageSourceDeleted)
			if res.AlreadyAbsent == nil || *res.AlreadyAbsent || connectorID(t, res) != created {
				t.Fatalf("after a kill at %s: result %s, want %s deleted by this request", step, resultText(res), created)
			}
			if cs := r.sandbox.Connectors("acme"); len(cs) != 0 {
				t.Fatalf("%d connectors left after the disconnect", len(cs))
			}
		})
	}
}

// The same for a connector the ledger did not name (made outside the provisioner, or left by an
// interrupted create): a disconnect killed after Airbyte accepted its delete is finished by the next
// worker as this request's delete, never as already_absent.
func TestDisconnectOfAnUnrecordedConnectorCrashPoints(t *testing.T) {
	for _, step := range []provision.Step{provision.StepDeleted, provision.StepBeforeRecord} {
		t.Run(string(step), func(t *testing.T) {
			r := newRig(t, sandbox.Config{})
			client, err := airbyte.New(airbyte.Config{BaseURL: r.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
			if err != nil {
				t.Fatal(err)
			}
			foreign, err := client.CreateConnector(t.Context(), airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "GitHub", ConnectorType: "github",
				Credentials: secret.NewFields(map[string]string{"token": "ghp_foreign"})})
			if err != nil {
				t.Fatal(err)
			}
			killed := errors.New("killed")
			var crashed bool
			a := r.worker(workerOpts{owner: "a", leaseTTL: time.Second, atStep: func(s provision.Step) error {
				if s == step && !crashed {
					crashed = true
					return killed
				}
				return nil
			}})
			seq := r.next()
			if d := a.handle(disconnect("d1"), seq, 1, false); !crashed || d.Action != provision.Retry || d.Result != nil {
				t.Fatalf("the worker was not killed at %s: %v %s", step, d.Action, resultText(d.Result))
			}
			b := r.worker(workerOpts{owner: "b", leaseTTL: time.Second})
			res := expect(t, b.until(t, disconnect("d1"), seq), provision.Ack, contract.MessageSourceDeleted)
			if res.AlreadyAbsent == nil || *res.AlreadyAbsent || connectorID(t, res) != foreign.ID {
				t.Fatalf("after a kill at %s: result %s, want %s deleted by this request", step, resultText(res), foreign.ID)
			}
			if cs := r.sandbox.Connectors("acme"); len(cs) != 0 {
				t.Fatalf("%d connectors left after the disconnect", len(cs))
			}
		})
	}
}
