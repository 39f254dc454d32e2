package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// Errors from real JetStream and KV calls: those of a cluster that has lost its quorum or a client
// whose server is gone are nats_unavailable (retryable); refusals a retry would meet again are
// internal_error.
func TestClassifyNATS(t *testing.T) {
	ctx := context.Background()
	cluster := natsclustertest.StartInProcess(t, 3)
	_, cjs := cluster.Connect(t)
	ckv, err := cjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "classify", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ckv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}

	single := natsembedtest.Start(t)
	_, sjs := single.Connect(t, nats.MaxReconnects(-1))
	skv, err := sjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "classify"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := skv.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}

	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	for _, tc := range []struct {
		name string
		call func() error
		want contract.Code
	}{
		{"key not found", func() error { _, err := skv.Get(ctx, "missing"); return err }, contract.CodeInternal},
		{"wrong revision", func() error { _, err := skv.Update(ctx, "k", []byte("x"), rev+10); return err }, contract.CodeInternal},
		{"stream not found", func() error { _, err := sjs.Stream(ctx, "NOPE"); return err }, contract.CodeInternal},
		{"cluster without quorum: put", func() error {
			cluster.Shutdown(1)
			cluster.Shutdown(2)
			c, cancel := short()
			defer cancel()
			_, err := ckv.Put(c, "k", []byte("w"))
			return err
		}, contract.CodeNATSUnavailable},
		{"cluster without quorum: create", func() error {
			c, cancel := short()
			defer cancel()
			_, err := ckv.Create(c, "new", []byte("w"))
			return err
		}, contract.CodeNATSUnavailable},
		{"server gone: get", func() error {
			single.Stop()
			c, cancel := short()
			defer cancel()
			_, err := skv.Get(c, "k")
			return err
		}, contract.CodeNATSUnavailable},
		{"server gone: publish", func() error {
			c, cancel := short()
			defer cancel()
			_, err := sjs.Publish(c, "provisioner.results.x", []byte("{}"))
			return err
		}, contract.CodeNATSUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("the call succeeded")
			}
			got := classifyNATS("ledger claim", err)
			code, retryable := event.CodeOf(got)
			if code != tc.want || retryable != (tc.want == contract.CodeNATSUnavailable) {
				t.Fatalf("%v -> %s (retryable %v), want %s", err, code, retryable, tc.want)
			}
			if !errors.Is(got, err) {
				t.Fatalf("the classified error does not wrap %v", err)
			}
		})
	}
}
