package ledger_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// BenchmarkClaim measures the ledger's round trips to a real NATS server over loopback: claiming a
// new identity (one KV create), claiming and completing it (create, then a revision CAS), and
// claiming an identity already recorded (create refused, then a read).
func BenchmarkClaim(b *testing.B) {
	srv := natsembedtest.Start(b)
	_, js := srv.Connect(b)
	l, err := ledger.Open(context.Background(), js, ledger.Config{Bucket: "bench_ledger", LeaseTTL: time.Minute, Owner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	record := json.RawMessage(`{"workspace_id":"0c5e8f0e-1c1b-4f7e-8a55-2f8d8d1b6f11","data":{"id":"7b3e4a52","name":"GitHub"}}`)
	identity := func(run string, i int) ledger.Identity {
		return ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: run + "-" + strconv.Itoa(i)}
	}

	b.Run("new identity", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if c, err := l.Claim(ctx, identity("new", i), ledger.Request{ID: "req", Sequence: 1}); err != nil || c.Outcome != ledger.Claimed {
				b.Fatalf("claim: %v, %v", c.Outcome, err)
			}
		}
	})
	b.Run("claim and complete", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			c, err := l.Claim(ctx, identity("complete", i), ledger.Request{ID: "req", Sequence: 1})
			if err != nil || c.Outcome != ledger.Claimed {
				b.Fatalf("claim: %v, %v", c.Outcome, err)
			}
			if err := c.Lease.Activate(ctx, "7b3e4a52", record); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("already done", func(b *testing.B) {
		done := identity("done", 0)
		c, err := l.Claim(ctx, done, ledger.Request{ID: "req", Sequence: 1})
		if err != nil || c.Lease == nil {
			b.Fatalf("claim: %v", err)
		}
		if err := c.Lease.Activate(ctx, "7b3e4a52", record); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if c, err := l.Claim(ctx, done, ledger.Request{ID: "req", Sequence: 1}); err != nil || c.Outcome != ledger.Recorded {
				b.Fatalf("claim: %v, %v", c.Outcome, err)
			}
		}
	})
	var next atomic.Int64 // out here: RunParallel runs the function again for each round of b.N
	b.Run("new identity parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if c, err := l.Claim(ctx, identity("parallel", int(next.Add(1))), ledger.Request{ID: "req", Sequence: 1}); err != nil || c.Outcome != ledger.Claimed {
					b.Errorf("claim: %v, %v", c.Outcome, err)
					return
				}
			}
		})
	})
}
