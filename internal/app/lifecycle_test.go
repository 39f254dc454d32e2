package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/consumer"
)

// The connector's life over NATS: created, rotated (replaced, with the new credentials at Airbyte),
// disconnected; then a create that was dead-lettered before a second disconnect is replayed: it
// keeps its place in the publish order, so it is superseded (revision 2) instead of resurrecting
// the connector.
func TestLifecycleOverNATS(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/v1.json", map[string]string{"token": "ghp_one"})
	e.writeSecret("acme/v2.json", map[string]string{"token": "ghp_two"})
	e.start(nil)
	want := 0
	next := func(suffix string, body map[string]any) contract.Result {
		t.Helper()
		e.publish(suffix, body)
		want++
		rs := e.results(want, 30*time.Second)
		return e.byRequest(rs)[body["id"].(string)]
	}

	created := next("credentials.submitted", credentialsRequest("r1", "acme", "github", "file:acme/v1.json"))
	if created.Message != contract.MessageSourceCreated || created.Revision != 1 {
		t.Fatalf("create: %+v", created)
	}
	rotated := next("credentials.submitted", credentialsRequest("r2", "acme", "github", "file:acme/v2.json"))
	if rotated.Message != contract.MessageSourceUpdated || rotated.ReplacedID != connectorIDOf(t, created) {
		t.Fatalf("rotation: %+v", rotated)
	}
	waitFor(t, 10*time.Second, "the replaced connector to go", func() bool { return len(e.sandbox.Connectors("acme")) == 1 })
	if c := e.sandbox.Connectors("acme")[0]; c.ID != connectorIDOf(t, rotated) || c.CredentialsSHA256 != sandbox.CredentialsSHA256(map[string]string{"token": "ghp_two"}) {
		t.Fatalf("Airbyte holds %+v after the rotation", c)
	}
	gone := next("connector.disconnected", map[string]any{"id": "d3", "workspace_name": "acme", "connector_type": "github"})
	if gone.Message != contract.MessageSourceDeleted || gone.AlreadyAbsent == nil || *gone.AlreadyAbsent {
		t.Fatalf("disconnect: %+v", gone)
	}
	waitFor(t, 10*time.Second, "the connector to go", func() bool { return len(e.sandbox.Connectors("acme")) == 0 })

	// r4 fails (its secret is not there yet) and is dead-lettered; d5 is published after it
	failed := next("credentials.submitted", credentialsRequest("r4", "acme", "github", "file:acme/late.json"))
	if failed.Error == nil || failed.Error.Code != contract.CodeSecretNotFound || failed.Revision != 1 {
		t.Fatalf("r4: %+v", failed)
	}
	absent := next("connector.disconnected", map[string]any{"id": "d5", "workspace_name": "acme", "connector_type": "github"})
	if absent.Message != contract.MessageSourceDeleted || absent.AlreadyAbsent == nil || !*absent.AlreadyAbsent {
		t.Fatalf("d5: %+v", absent)
	}
	e.writeSecret("acme/late.json", map[string]string{"token": "ghp_late"})
	dlq := consumer.NewDeadLetters(e.js, consumer.Topology{})
	var entries []consumer.DeadLetterEntry
	waitFor(t, 10*time.Second, "r4's dead letter", func() bool {
		entries, _ = dlq.List(context.Background(), 0)
		return len(entries) == 1
	})
	if err := dlq.Replay(context.Background(), entries[0].ID); err != nil {
		t.Fatal(err)
	}
	want++
	replayed := e.byRequest(e.results(want, 30*time.Second))["r4"]
	if replayed.Revision != 2 || replayed.Error == nil || replayed.Error.Code != contract.CodeSuperseded {
		t.Fatalf("replayed r4: %+v; want revision 2, superseded by d5", replayed)
	}
	if n := len(e.sandbox.Connectors("acme")); n != 0 {
		t.Fatalf("the replayed create resurrected the disconnected connector (%d connectors)", n)
	}
}
