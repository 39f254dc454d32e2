package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// A verdict that is stored while Await does not hear it (as when its connection was down) is found
// by the next recheck. Here the verdict enters the results stream through a stream source, which
// stores it without publishing it on the results subject, so no subscriber ever hears it.
func TestAwaitRechecksWhatItDidNotHear(t *testing.T) {
	srv := natsembedtest.Start(t)
	nc, js := srv.Connect(t)
	ctx := deadline(t, 30*time.Second)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STAGED", Subjects: []string{"staged.results.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "QUIET_RESULTS", Sources: []*jetstream.StreamSource{{
		Name:              "STAGED",
		SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "staged.results.>", Destination: "quiet.results.>"}},
	}}}); err != nil {
		t.Fatal(err)
	}
	stage := func(id string) {
		body, _ := json.Marshal(contract.Result{Type: contract.ResultType, Message: contract.MessageWorkspaceReady, RequestID: id, Attempts: 1, ProducedAt: time.Now().UTC()})
		if _, err := js.Publish(ctx, contract.ResultSubject("staged", contract.MessageWorkspaceReady, id), body); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		recheck time.Duration
		wait    time.Duration
		found   bool
	}{
		{"found by a recheck", 50 * time.Millisecond, 20 * time.Second, true},
		{"not heard, not rechecked in time", time.Hour, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(nc, client.WithSubjectPrefix("quiet"), client.WithResultsStream("QUIET_RESULTS"), client.WithRecheckInterval(tc.recheck))
			if err != nil {
				t.Fatal(err)
			}
			id := "quiet-" + tc.name[:5]
			actx, cancel := context.WithTimeout(ctx, tc.wait)
			defer cancel()
			type answer struct {
				res *contract.Result
				err error
			}
			waiting := make(chan struct{})
			client.OnWaiting(c, func(string) { close(waiting) })
			got := make(chan answer, 1)
			go func() { res, err := c.Await(actx, id); got <- answer{res, err} }()
			// stage the verdict once Await has looked and found nothing
			select {
			case <-waiting:
			case a := <-got:
				t.Fatalf("Await returned before waiting: %+v, %v", a.res, a.err)
			}
			stage(id)
			a := <-got
			switch {
			case tc.found && (a.err != nil || a.res.RequestID != id):
				t.Fatalf("verdict %+v, %v", a.res, a.err)
			case !tc.found && !errors.Is(a.err, client.ErrTimeout):
				t.Fatalf("verdict %+v, %v; want a timeout", a.res, a.err)
			}
		})
	}
}
