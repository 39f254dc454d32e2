package airbyte_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

func benchClient(b *testing.B) *airbyte.Client {
	b.Helper()
	_, base := sandboxtest.Start(b, sandbox.Config{})
	c, err := airbyte.New(airbyte.Config{BaseURL: base, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret), MaxConns: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return c
}

// BenchmarkTokenCacheHit measures the hot path of every request after a workspace's first: the
// workspace and its scoped token served from the cache, with no call, alone and under concurrent
// readers of 100 workspaces. (BenchmarkScopedTokenCacheHit in sandbox_test.go is the plain read.)
func BenchmarkTokenCacheHit(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	const workspaces = 100
	for w := range workspaces {
		if _, err := c.ScopedToken(ctx, "acme-"+strconv.Itoa(w)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("workspace", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Workspace(ctx, "acme-7"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel over 100 workspaces", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := c.ScopedToken(ctx, "acme-"+strconv.Itoa(i%workspaces)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
