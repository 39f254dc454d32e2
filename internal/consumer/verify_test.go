package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

var basePolicy = consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 100}

func driftText(ds []consumer.Drift) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Error()
	}
	return strings.Join(parts, "\n")
}

// A fresh server has nothing: every object is reported missing, and after Setup nothing drifts.
func TestVerifyMissingThenClean(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	topo := consumer.Topology{LedgerBucket: "ledger_test"}.WithDefaults()

	drifts, err := consumer.Verify(ctx, js, topo, basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, d := range drifts {
		if d.Kind != consumer.DriftMissing {
			t.Errorf("unexpected drift on a fresh server: %v", d)
		}
		missing = append(missing, d.Object)
	}
	want := []string{"stream PROVISIONER_REQUESTS", "stream PROVISIONER_RESULTS", "stream PROVISIONER_DLQ", "consumer provisioner", "bucket ledger_test"}
	if !slices.Equal(missing, want) {
		t.Fatalf("missing %q, want %q", missing, want)
	}

	if _, err := consumer.SetupWith(ctx, js, topo, basePolicy, consumer.Manage); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ledger_test"}); err != nil {
		t.Fatal(err)
	}
	if drifts, err = consumer.Verify(ctx, js, topo, basePolicy); err != nil || len(drifts) != 0 {
		t.Fatalf("after Setup: drifts %v, err %v", driftText(drifts), err)
	}
}

// A replica whose consumer settings differ from the shared consumer stops with a *DriftError naming
// the setting and both values, and changes nothing; with Reconcile it applies them.
func TestSetupRefusesChangingTheSharedConsumer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  consumer.ConsumerPolicy
		backoff []time.Duration // set on the existing consumer by someone else
		want    string
	}{
		{"ack wait", consumer.ConsumerPolicy{AckWait: 45 * time.Second, MaxDeliver: 8, MaxAckPending: 100}, nil, "consumer provisioner: ack_wait is 30s, this replica's settings want 45s"},
		{"max deliver", consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 100}, nil, "max_deliver is 11 (--max-deliver 8), this replica's settings want 8 (--max-deliver 5)"},
		{"max ack pending", consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 1000}, nil, "max_ack_pending is 100, this replica's settings want 1000"},
		{"backoff", basePolicy, []time.Duration{time.Second, 5 * time.Second}, "backoff is [1s 5s], this replica's settings want []"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := natsembedtest.Start(t)
			_, js := srv.Connect(t)
			topo := consumer.Topology{}.WithDefaults()
			report, err := consumer.SetupWith(ctx, js, topo, basePolicy, consumer.Manage)
			if err != nil {
				t.Fatal(err)
			}
			if tc.backoff != nil {
				cfg := report.Consumer.CachedInfo().Config
				cfg.BackOff = tc.backoff
				cfg.MaxDeliver = 11
				if _, err := js.UpdateConsumer(ctx, topo.RequestsStream, cfg); err != nil {
					t.Fatal(err)
				}
			}
			before := consumerConfig(t, js, topo)

			_, err = consumer.SetupWith(ctx, js, topo, tc.policy, consumer.Manage)
			var drift *consumer.DriftError
			if !errors.As(err, &drift) || !strings.Contains(err.Error(), tc.want) || !drift.Reconcilable {
				t.Fatalf("Setup: %v, want a reconcilable drift error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "--reconcile-streams") {
				t.Errorf("the error does not say how to apply: %v", err)
			}
			if after := consumerConfig(t, js, topo); !sameConsumer(before, after) {
				t.Fatalf("a refused drift changed the consumer: %+v -> %+v", before, after)
			}

			if _, err := consumer.SetupWith(ctx, js, topo, tc.policy, consumer.Reconcile); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if drifts, err := consumer.Verify(ctx, js, topo, tc.policy); err != nil || len(drifts) != 0 {
				t.Fatalf("after reconcile: %v, %v", driftText(drifts), err)
			}
		})
	}
}

func consumerConfig(t *testing.T, js jetstream.JetStream, topo consumer.Topology) jetstream.ConsumerConfig {
	t.Helper()
	c, err := js.Consumer(context.Background(), topo.RequestsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo().Config
}

func sameConsumer(a, b jetstream.ConsumerConfig) bool {
	return a.AckWait == b.AckWait && a.MaxDeliver == b.MaxDeliver && a.MaxAckPending == b.MaxAckPending && slices.Equal(a.BackOff, b.BackOff)
}

// --manage-streams=false creates nothing: missing objects are named; streams a platform team made
// with its own limits are used as they are, and only a differing consumer stops start-up.
func TestVerifyOnlyCreatesNothing(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	topo := consumer.Topology{LedgerBucket: "ledger_test"}.WithDefaults()

	_, err := consumer.SetupWith(ctx, js, topo, basePolicy, consumer.VerifyOnly)
	var drift *consumer.DriftError
	if !errors.As(err, &drift) || drift.Reconcilable || len(drift.Drifts) != 5 || !strings.Contains(err.Error(), "stream PROVISIONER_REQUESTS is missing") {
		t.Fatalf("verify-only on an empty server: %v", err)
	}
	if names := streamNames(t, js); len(names) != 0 {
		t.Fatalf("verify-only created %v", names)
	}

	// the platform team's own streams: same subjects and retention, its own limits and descriptions
	for _, sc := range []jetstream.StreamConfig{
		{Name: topo.RequestsStream, Subjects: []string{"provisioner.requests.>"}, Retention: jetstream.WorkQueuePolicy},
		{Name: topo.ResultsStream, Subjects: []string{"provisioner.results.>"}, MaxAge: time.Hour},
		{Name: topo.DLQStream, Subjects: []string{"provisioner.dlq.>"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ledger_test"}); err != nil {
		t.Fatal(err)
	}
	_, err = consumer.SetupWith(ctx, js, topo, basePolicy, consumer.VerifyOnly)
	if !errors.As(err, &drift) || len(drift.Drifts) != 1 || drift.Drifts[0].Object != "consumer provisioner" {
		t.Fatalf("without the consumer: %v", err)
	}
	if _, err := js.CreateConsumer(ctx, topo.RequestsStream, jetstream.ConsumerConfig{
		Durable: topo.Consumer, FilterSubject: "provisioner.requests.>", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 11, MaxAckPending: 100,
	}); err != nil {
		t.Fatal(err)
	}
	report, err := consumer.SetupWith(ctx, js, topo, basePolicy, consumer.VerifyOnly)
	if err != nil {
		t.Fatalf("platform-made objects refused: %v", err)
	}
	if len(report.Applied) != 0 || len(report.Tolerated) == 0 {
		t.Fatalf("applied %v, tolerated %v", report.Applied, report.Tolerated)
	}
	s, err := js.Stream(ctx, topo.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Fatalf("verify-only changed the platform's results max_age to %s", got)
	}

	// a consumer the provisioner cannot work with: never applied, not even by reconciling
	cfg := consumerConfig(t, js, topo)
	cfg.FilterSubject = "provisioner.requests.customer.>"
	if _, err := js.UpdateConsumer(ctx, topo.RequestsStream, cfg); err != nil {
		t.Fatal(err)
	}
	_, err = consumer.SetupWith(ctx, js, topo, basePolicy, consumer.Reconcile)
	if !errors.As(err, &drift) || drift.Reconcilable || !strings.Contains(err.Error(), "filter_subject is provisioner.requests.customer.>") {
		t.Fatalf("incompatible filter: %v", err)
	}
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var names []string
	l := js.StreamNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	return names
}

// On a 3-node cluster: a replica configured for fewer replicas than the streams and the ledger
// bucket have stops and lowers nothing; raising replicas is applied; reconciling lowers them.
func TestSetupRefusesLoweringReplicas(t *testing.T) {
	ctx := context.Background()
	cluster := natsclustertest.StartInProcess(t, 3)
	_, js := cluster.Connect(t)
	r1 := consumer.Topology{Replicas: 1, LedgerBucket: "ledger_test"}.WithDefaults()
	r3 := r1
	r3.Replicas = 3

	if _, err := consumer.SetupWith(ctx, js, r1, basePolicy, consumer.Manage); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ledger_test", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	// raising loses nothing: applied
	report, err := consumer.SetupWith(ctx, js, r3, basePolicy, consumer.Manage)
	if err != nil {
		t.Fatalf("raising replicas: %v", err)
	}
	if len(report.Applied) != 4 {
		t.Errorf("applied %v, want the three streams and the bucket", driftText(report.Applied))
	}
	streams := []string{r1.RequestsStream, r1.ResultsStream, r1.DLQStream, "KV_ledger_test"}
	assertReplicas(t, js, streams, 3)

	_, err = consumer.SetupWith(ctx, js, r1, basePolicy, consumer.Manage)
	var drift *consumer.DriftError
	if !errors.As(err, &drift) || len(drift.Drifts) != 4 || !drift.Reconcilable {
		t.Fatalf("lowering replicas: %v", err)
	}
	for _, obj := range []string{"stream PROVISIONER_REQUESTS", "stream PROVISIONER_RESULTS", "stream PROVISIONER_DLQ", "bucket ledger_test"} {
		if want := obj + ": num_replicas is 3, this replica's settings want 1"; !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	assertReplicas(t, js, streams, 3)

	// scaling a replicated stream down waits on the cluster: give it more than the default 5s
	slowCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := consumer.SetupWith(slowCtx, js, r1, basePolicy, consumer.Reconcile); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	assertReplicas(t, js, streams, 1)
}

func assertReplicas(t *testing.T, js jetstream.JetStream, streams []string, want int) {
	t.Helper()
	for _, name := range streams {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != want {
			t.Errorf("%s has %d replicas, want %d", name, got, want)
		}
	}
}

// Replicas starting together on a fresh cluster race to create the same streams and consumer: every
// one of them succeeds, and the objects are created once.
func TestSetupToleratesTheConcurrentCreateRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster := natsclustertest.StartInProcess(t, 3)
	topo := consumer.Topology{Replicas: 3}.WithDefaults()
	const replicas = 3
	errs := make(chan error, replicas)
	for i := range replicas {
		_, js := cluster.Connect(t)
		go func() {
			_, err := consumer.SetupWith(ctx, js, topo, basePolicy, consumer.Manage)
			errs <- fmt.Errorf("replica %d: %w", i, err)
		}()
	}
	for range replicas {
		if err := <-errs; errors.Unwrap(err) != nil {
			t.Error(err)
		}
	}
	_, js := cluster.Connect(t)
	if drifts, err := consumer.Verify(ctx, js, topo, basePolicy); err != nil || len(drifts) != 0 {
		t.Fatalf("after the race: %v, %v", driftText(drifts), err)
	}
}
