package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/bench"
)

// bench --cluster 3 runs the product and the floor on a 3-node cluster of nats-server processes
// with R3 streams and bucket, and every request becomes one connector.
func TestRunOnACluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Requests: 60, Workspaces: 6, Replicas: 2, Concurrency: 4, Cluster: 3, SkipAwait: true, Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cluster != 3 || rep.StreamReplicas != 3 || rep.Connectors != 60 || rep.Created != 60 || rep.Errors != 0 || rep.FloorPerS <= 0 {
		t.Fatalf("report %+v", rep)
	}
}
