package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// Setup creates or updates, never deletes: reconciling to a new policy keeps queued requests.
func TestSetupIsIdempotentAndKeepsData(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	topo := consumer.Topology{}.WithDefaults()

	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 100}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, topo.RequestSubject("credentials.submitted"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	report, err := consumer.SetupWith(ctx, js, topo, consumer.ConsumerPolicy{AckWait: 45 * time.Second, MaxDeliver: 5, MaxAckPending: 200}, consumer.Reconcile)
	if err != nil {
		t.Fatal(err)
	}
	cons := report.Consumer
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.AckWait != 45*time.Second || info.Config.MaxAckPending != 200 || info.Config.MaxDeliver <= 5 || info.NumPending != 3 {
		t.Fatalf("consumer after update: %+v pending %d", info.Config, info.NumPending)
	}
	for _, tc := range []struct {
		stream    string
		retention jetstream.RetentionPolicy
		subject   string
	}{
		{topo.RequestsStream, jetstream.WorkQueuePolicy, "provisioner.requests.>"},
		{topo.ResultsStream, jetstream.LimitsPolicy, "provisioner.results.>"},
		{topo.DLQStream, jetstream.LimitsPolicy, "provisioner.dlq.>"},
	} {
		t.Run(tc.stream, func(t *testing.T) {
			s, err := js.Stream(ctx, tc.stream)
			if err != nil {
				t.Fatal(err)
			}
			si, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if si.Config.Retention != tc.retention || len(si.Config.Subjects) != 1 || si.Config.Subjects[0] != tc.subject || si.Config.Duplicates != 2*time.Minute {
				t.Fatalf("stream config %+v", si.Config)
			}
		})
	}
}

func TestSetupRejectsAnIncompatibleStream(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	// someone else owns the subjects with a different retention: report it, do not replace it
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROVISIONER_REQUESTS", Subjects: []string{"provisioner.requests.>"}, Retention: jetstream.InterestPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.Setup(ctx, js, consumer.Topology{}, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1}); err == nil {
		t.Fatal("Setup replaced or accepted an incompatible stream")
	}
	if _, err := js.Stream(ctx, "PROVISIONER_REQUESTS"); err != nil {
		t.Fatalf("the existing stream is gone: %v", err)
	}
}

func TestDefaultNakDelay(t *testing.T) {
	for _, tc := range []struct {
		delivery int
		lo, hi   time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{4, 6400 * time.Millisecond, 9600 * time.Millisecond},
		{20, 96 * time.Second, 144 * time.Second},
	} {
		for range 50 {
			if d := consumer.DefaultNakDelay(tc.delivery); d < tc.lo || d > tc.hi {
				t.Fatalf("delivery %d: delay %s outside [%s, %s]", tc.delivery, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestTopologySubjects(t *testing.T) {
	topo := consumer.Topology{SubjectPrefix: "acme"}.WithDefaults()
	for got, want := range map[string]string{
		topo.RequestSubject("customer.onboarded"):     "acme.requests.customer.onboarded",
		topo.ResultSubject("source_created", "req-7"): "acme.results.source_created.req-7",
		topo.ResultSubject("source_created", "req.7"): "acme.results.source_created.sha256-d8e10534297243fd095169e340830ee3",
		topo.DLQSubject("credentials.submitted"):      "acme.dlq.credentials.submitted",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
