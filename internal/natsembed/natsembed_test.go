package natsembed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/natsembed"
)

func start(t testing.TB, cfg natsembed.Config) *natsembed.Server {
	t.Helper()
	cfg.Port, cfg.StoreDir = -1, t.TempDir()
	srv, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// The fsync policy given is the one JetStream runs with.
func TestSyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          natsembed.Config
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"server default", natsembed.Config{}, false, natsembed.DefaultSyncInterval},
		{"interval", natsembed.Config{SyncInterval: 10 * time.Second}, false, 10 * time.Second},
		{"always", natsembed.Config{SyncAlways: true}, true, natsembed.DefaultSyncInterval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			always, interval := start(t, tc.cfg).Sync()
			if always != tc.wantAlways || interval != tc.wantInterval {
				t.Fatalf("sync always=%v interval=%s, want %v %s", always, interval, tc.wantAlways, tc.wantInterval)
			}
		})
	}
}

// BenchmarkPublishSync measures the cost of the fsync policy: one synchronous publish to a file
// stream (what a worker does for each result) per operation.
func BenchmarkPublishSync(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  natsembed.Config
	}{
		{"interval=2m", natsembed.Config{}},
		{"always", natsembed.Config{SyncAlways: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := start(b, tc.cfg)
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"type":"widget","message":"source_created","request_id":"r","data":{"id":"x"}}`)
			for i := 0; b.Loop(); i++ {
				if _, err := js.Publish(ctx, fmt.Sprintf("bench.%d", i%100), body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
