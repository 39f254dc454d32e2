// Package sandboxtest starts an Airbyte sandbox for tests, over real HTTP on loopback.
package sandboxtest

import (
	"context"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// Start serves a sandbox configured by cfg on 127.0.0.1:0 and returns it with its base URL
// (http://127.0.0.1:PORT, without /api/v1). It shuts down on t.Cleanup.
func Start(t testing.TB, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	srv := sandbox.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	base, done, err := srv.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("sandboxtest: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sandboxtest: serve: %v", err)
		}
	})
	return srv, base
}
