package app_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
)

// What an operator and an app developer see: the warning when isolation is off, the request id of
// undecodable input, a workspace name no secret could live under, and the metric outcomes.
func TestOperatorFacingBehaviour(t *testing.T) {
	t.Run("policy none warns at start", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{})
		e.start(func(c *config.Config) { c.SecretPathPolicy = config.NoSecretPathPolicy })
		if !strings.Contains(e.logs.String(), "no secret path policy") || !strings.Contains(e.logs.String(), `"level":"WARN"`) {
			t.Fatalf("no warning in the logs:\n%s", e.logs.String())
		}
	})
	t.Run("a policy does not warn", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{})
		e.start(func(c *config.Config) { c.SecretPathPolicy = "{workspace_name}/" })
		if strings.Contains(e.logs.String(), "no secret path policy") {
			t.Fatalf("warned although a policy is set:\n%s", e.logs.String())
		}
	})

	e := newEnv(t, sandbox.Config{})
	r := e.start(func(c *config.Config) { c.SecretPathPolicy = "customers/{workspace_name}/" })
	ctx := context.Background()
	// undecodable, with the app's de-duplication id
	if _, err := e.js.PublishMsg(ctx, natsMsg("provisioner.requests.credentials.submitted", []byte(`{"id": "req-62", `), map[string]string{jetstream.MsgIDHeader: "req-62"})); err != nil {
		t.Fatal(err)
	}
	e.publish("customer.onboarded", map[string]any{"id": "onb-bad-name", "workspace_name": "Acme Corp"})
	e.publish("customer.onboarded", map[string]any{"id": "onb-ok", "workspace_name": "acme-corp"})
	e.writeSecret("customers/acme-corp/x.json", map[string]string{"token": "tok-operator-test"})
	e.publish("credentials.submitted", credentialsRequest("req-unknown-kind", "acme-corp", "no-such-connector", "file:customers/acme-corp/x.json"))
	byID := e.byRequest(e.results(4, 30*time.Second))

	t.Run("undecodable input keeps its Nats-Msg-Id as request id", func(t *testing.T) {
		got, ok := byID["req-62"]
		if !ok || got.Error == nil || got.Error.Code != contract.CodeInvalidJSON {
			t.Fatalf("results %+v", byID)
		}
	})
	t.Run("onboarding refuses a name the policy cannot use", func(t *testing.T) {
		got := byID["onb-bad-name"]
		if got.Message != contract.MessageWorkspaceError || got.Error == nil || got.Error.Retryable ||
			!strings.Contains(got.Error.Message, `contains a space at position 5`) || !strings.Contains(got.Error.Message, "e.g. acme or acme-corp") {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("an Airbyte error carries each prefix once", func(t *testing.T) {
		got := byID["req-unknown-kind"]
		if got.Error == nil || got.Error.Code != contract.CodeAirbyteBadRequest {
			t.Fatalf("got %+v", got)
		}
		golden(t, "messages/airbyte-bad-request.txt", got.Error.Message+"\n")
		parts := strings.Split(got.Error.Message, ": ")
		for i := 1; i < len(parts); i++ {
			if parts[i] == parts[i-1] || strings.Contains(parts[i-1], "create") && strings.Contains(parts[i], "create") {
				t.Errorf("message repeats a prefix: %q", got.Error.Message)
			}
		}
	})
	t.Run("metric outcomes", func(t *testing.T) {
		waitFor(t, 10*time.Second, "outcomes counted", func() bool {
			return outcomeCount(t, r, "customer_onboarded", "workspace_ready") == 1 &&
				outcomeCount(t, r, "credentials_submitted", "permanent_error") == 1 &&
				outcomeCount(t, r, "credentials_submitted", "dead_letter") == 1
		})
		if n := outcomeCount(t, r, "customer_onboarded", "created"); n != 0 {
			t.Fatalf("onboarding counted as created %v times", n)
		}
		// the one permanent_error is Airbyte refusing the unknown connector; bad input is dead_letter
		if n := outcomeCount(t, r, "credentials_submitted", "permanent_error"); n != 1 {
			t.Fatalf("permanent_error counted %v times, want 1 (bad input is dead_letter)", n)
		}
	})
}

// outcomeCount reads provisioner_requests_finished_total{kind, outcome} from a replica's registry.
func outcomeCount(t *testing.T, r *replica, kind, outcome string) float64 {
	t.Helper()
	mfs, err := r.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "provisioner_requests_finished_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:  %q\nwant: %q", path, got, want)
	}
}
