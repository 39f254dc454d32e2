package natsclustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
)

// A SIGKILLed leader is replaced by another node, the stream keeps what it acknowledged, and the
// node comes back on its ports and store.
func TestKillTheLeaderAndRestartIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := natsclustertest.StartProcessesT(t, 3)
	_, js := c.Connect(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	leader, err := natsclustertest.StreamLeader(ctx, js, "T")
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Index(leader)
	if err := c.Kill(victim); err != nil || c.Running(victim) {
		t.Fatalf("kill %s: %v", leader, err)
	}
	var next string
	for next == "" || next == leader {
		callCtx, cancelCall := context.WithTimeout(ctx, time.Second)
		next, _ = natsclustertest.StreamLeader(callCtx, js, "T")
		cancelCall()
		if ctx.Err() != nil {
			t.Fatalf("no new leader after %s was killed", leader)
		}
	}
	if err := c.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for {
		callCtx, cancelCall := context.WithTimeout(ctx, time.Second)
		s, err := js.Stream(callCtx, "T")
		cancelCall()
		if err == nil && s.CachedInfo().State.Msgs == 1 && len(s.CachedInfo().Cluster.Replicas) == 2 && allCurrent(s.CachedInfo().Cluster) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the restarted node did not catch up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func allCurrent(ci *jetstream.ClusterInfo) bool {
	for _, p := range ci.Replicas {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}
