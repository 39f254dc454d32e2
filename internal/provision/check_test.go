package provision_test

import (
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/provision"
)

// The credential check runs before anything changes at Airbyte. Failed credentials are rejected
// for good; a check that cannot decide (inconclusive, skipped, cancelled) does not block them; a
// check still pending when the budget runs out is retried later, with nothing changed.
func TestCredentialCheck(t *testing.T) {
	checkFaults := func(status string, p float64) sandbox.Config {
		return sandbox.Config{Seed: 11, Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
			sandbox.OpConnectorsCheck: {CheckStatuses: map[string]float64{status: p}},
		}}}
	}
	t.Run("rejected on create, asked by the request", func(t *testing.T) {
		r := newRig(t, sandbox.Config{})
		w := r.worker(workerOpts{owner: "a"})
		req := submit("r1", r.secret("acme/bad.json", "invalid_token"))
		req.CredentialsSubmitted.Check = true
		d := w.until(t, req, r.next())
		res := expect(t, d, provision.DeadLetter, contract.MessageSourceCreateError)
		if res.Error.Code != contract.CodeCredentialsRejected || res.Error.Retryable || d.Outcome != provision.OutcomeRejected {
			t.Fatalf("result %s", resultText(res))
		}
		if contains(res.Error.Message, "invalid_token") {
			t.Fatal("the error message quotes the credential")
		}
		if n := len(r.sandbox.Connectors("acme")); n != 0 || r.sandbox.Stats().Created != 0 {
			t.Fatalf("%d connectors after rejected credentials", n)
		}
	})
	t.Run("rejected rotation leaves the connector as it was", func(t *testing.T) {
		r := newRig(t, sandbox.Config{})
		w := r.worker(workerOpts{owner: "a", check: true})
		old := connectorID(t, expect(t, w.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated))
		res := expect(t, w.until(t, submit("r2", r.secret("acme/v2.json", "invalid_two")), r.next()), provision.DeadLetter, contract.MessageSourceUpdateError)
		if res.Error.Code != contract.CodeCredentialsRejected {
			t.Fatalf("result %s", resultText(res))
		}
		now := r.only(t)
		holding(t, now, "ghp_one")
		if now.ID != old || r.sandbox.Stats().Created != 1 {
			t.Fatal("a rejected rotation changed Airbyte")
		}
	})
	for _, status := range []string{"inconclusive", "skipped", "cancelled"} {
		t.Run(status+" does not block", func(t *testing.T) {
			r := newRig(t, checkFaults(status, 1))
			w := r.worker(workerOpts{owner: "a", check: true})
			expect(t, w.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated)
			holding(t, r.only(t), "ghp_one")
		})
	}
	t.Run("pending is asked again", func(t *testing.T) {
		r := newRig(t, checkFaults("pending", 0.6))
		w := r.worker(workerOpts{owner: "a", check: true})
		expect(t, w.until(t, submit("r1", r.secret("acme/v1.json", "ghp_one")), r.next()), provision.Ack, contract.MessageSourceCreated)
		if r.sandbox.Stats().Requests[sandbox.OpConnectorsCheck] < 2 {
			t.Fatal("the check was never pending; the test proves nothing")
		}
	})
	t.Run("pending past the budget changes nothing and is retried", func(t *testing.T) {
		r := newRig(t, checkFaults("pending", 1))
		w := r.worker(workerOpts{owner: "a", check: true, budget: 500 * time.Millisecond})
		ref, seq := r.secret("acme/v1.json", "ghp_one"), r.next()
		d := w.handle(submit("r1", ref), seq, 1, false)
		if d.Action != provision.Retry || d.Result != nil {
			t.Fatalf("decision %v %s", d.Action, resultText(d.Result))
		}
		last := expect(t, w.handle(submit("r1", ref), seq, 8, true), provision.DeadLetter, contract.MessageSourceCreateError)
		if last.Error.Code != contract.CodeAirbyteUnavailable || !last.Error.Retryable {
			t.Fatalf("last delivery %s", resultText(last))
		}
		if r.sandbox.Stats().Created != 0 {
			t.Fatal("a connector was created without a decided check")
		}
	})
}
