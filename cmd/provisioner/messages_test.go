package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// Golden texts of what the commands tell a person who got something wrong.
func TestMessagesGolden(t *testing.T) {
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if _, err := consumer.Setup(ctx, js, consumer.Topology{}, consumer.ConsumerPolicy{AckWait: time.Second, MaxDeliver: 1, MaxAckPending: 10}); err != nil {
		t.Fatal(err)
	}
	// one dead letter, replayed once: its id is gone afterwards
	m := &nats.Msg{Subject: "provisioner.dlq.credentials.submitted", Data: []byte(`{"id":"gone-1"}`), Header: nats.Header{}}
	m.Header.Set(consumer.HeaderDLQSubject, "provisioner.requests.credentials.submitted")
	m.Header.Set(consumer.HeaderDLQReason, "secret_not_found")
	m.Header.Set(consumer.HeaderDLQRequestID, "gone-1")
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := json.Marshal(ack.Sequence)

	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"run without a path policy", []string{"run", "--nats-url", srv.URL, "--airbyte-client-id", "x", "--airbyte-client-secret", "y"}, exitUsage, "messages/run-without-policy.txt"},
		{"publish a name no secret path can hold", []string{"publish", "onboarded", "--nats-url", srv.URL, "--id", "r1", "--workspace", "Acme Corp"}, exitUsage, "messages/publish-bad-workspace-name.txt"},
		{"publish without a connector kind", []string{"publish", "credentials", "--nats-url", srv.URL, "--id", "r1", "--workspace", "acme", "--credentials-ref", "file:customers/acme/x.json"}, exitUsage, "messages/publish-no-kind.txt"},
		{"dlq replay", []string{"dlq", "replay", "--nats-url", srv.URL, "--id", string(id)}, exitOK, ""},
		{"dlq replay of an id that is gone", []string{"dlq", "replay", "--nats-url", srv.URL, "--id", string(id)}, exitFailed, "messages/dlq-replay-gone.txt"},
		{"dlq purge of an id that is gone", []string{"dlq", "purge", "--nats-url", srv.URL, "--id", string(id)}, exitFailed, "messages/dlq-purge-gone.txt"},
		{"dlq without a subcommand", []string{"dlq"}, exitUsage, "messages/dlq-no-subcommand.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			code := dispatch(ctx, tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.golden != "" {
				golden(t, tc.golden, stderr.String())
			}
			if strings.Contains(stderr.String(), "nats: message not found") || strings.Contains(stderr.String(), "err_code=") {
				t.Errorf("a raw JetStream error reached the person: %s", stderr.String())
			}
		})
	}
}
