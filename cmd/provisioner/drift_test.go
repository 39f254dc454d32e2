package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// A replica whose settings would change the shared consumer, or that finds nothing to verify with
// --manage-streams=false, stops before it consumes: exit 2, naming the setting and both values.
func TestRunRefusesDriftWithExit2(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	base := []string{"run", "--nats-url", srv.URL, "--metrics-addr", "", "--airbyte-url", "http://127.0.0.1:1",
		"--airbyte-client-id", "id", "--airbyte-client-secret", "secret", "--secrets-dir", t.TempDir(), "--secret-path-policy", "none"}
	for _, tc := range []struct {
		name  string
		setup bool // streams and consumer made first with the defaults
		args  []string
		want  string
	}{
		{"manage-streams=false on an empty server", false, []string{"--manage-streams=false"}, "stream PROVISIONER_REQUESTS is missing"},
		{"ack wait of the shared consumer", true, []string{"--ack-wait", "45s"}, "consumer provisioner: ack_wait is 30s, this replica's settings want 45s"},
		{"max deliver of the shared consumer", true, []string{"--max-deliver", "3"}, "max_deliver is 11 (--max-deliver 8), this replica's settings want 6 (--max-deliver 3)"},
		{"reconcile without managing", false, []string{"--manage-streams=false", "--reconcile-streams"}, "--reconcile-streams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup {
				if _, err := consumer.Setup(context.Background(), js, consumer.Topology{}, consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 1000}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr lockedBuffer
			code := dispatch(ctx, append(append([]string{}, base...), tc.args...), &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %s; want exit 2 naming %q", code, stderr.String(), tc.want)
			}
		})
	}
}
