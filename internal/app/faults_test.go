package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// counter sums a counter's series on a registry whose labels include every given pair.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return sumSeries(t, reg, name, labels, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

// sumSeries sums value over the series of metric name on reg whose labels include every given pair.
func sumSeries(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				sum += value(m)
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// connectorIDOf reads the connector id of a source_created result.
func connectorIDOf(t *testing.T, r contract.Result) string {
	t.Helper()
	var d struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.ID == "" {
		t.Fatalf("result %s has no connector id: %s", r.RequestID, r.Data)
	}
	return d.ID
}

// assertOneConnectorPerIdentity checks the sandbox holds exactly one connector per (workspace, name).
func (e *env) assertOneConnectorPerIdentity(workspaces []string, wantPerWorkspace int) {
	e.t.Helper()
	for _, ws := range workspaces {
		seen := map[string]int{}
		for _, c := range e.sandbox.Connectors(ws) {
			seen[c.ConnectorType+"/"+c.Name]++
		}
		if len(seen) != wantPerWorkspace {
			e.t.Errorf("workspace %s: %d identities, want %d (%v)", ws, len(seen), wantPerWorkspace, seen)
		}
		for id, n := range seen {
			if n != 1 {
				e.t.Errorf("workspace %s: %d connectors for %s", ws, n, id)
			}
		}
	}
}

// Duplicates of one request and different requests for one identity, in flight at once on two
// replicas: one result per request id, exactly one source_created, the others updates of the same
// identity or superseded, and at the end one connector: the one the ledger recorded last.
func TestConcurrentDuplicatesCreateOneConnector(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpAll: {Latency: 5 * time.Millisecond, LatencyJitter: 10 * time.Millisecond},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-dup"})
	e.start(nil)
	e.start(nil)
	ids := map[string]bool{}
	for i := range 30 {
		id := fmt.Sprintf("req-%d", i%10) // each id three times, no Nats-Msg-Id: all reach the workers
		ids[id] = true
		e.publish("credentials.submitted", credentialsRequest(id, "acme", "github", "file:acme/github.json"))
	}
	results := e.results(10, 60*time.Second)
	byID := e.byRequest(results)
	if len(byID) != len(ids) {
		t.Fatalf("%d results for %d request ids", len(byID), len(ids))
	}
	created := 0
	for id, r := range byID {
		switch {
		case r.Message == contract.MessageSourceCreated:
			created++
		case r.Message == contract.MessageSourceUpdated:
		case r.Error != nil && r.Error.Code == contract.CodeSuperseded:
		default:
			t.Fatalf("%s: %+v", id, r)
		}
	}
	if created != 1 {
		t.Fatalf("%d source_created results for one identity", created)
	}
	waitFor(t, 20*time.Second, "the queue to empty", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })
	waitFor(t, 10*time.Second, "replaced connectors to go", func() bool { return len(e.sandbox.Connectors("acme")) == 1 })
	e.assertOneConnectorPerIdentity([]string{"acme"}, 1)
	led, err := ledger.Open(context.Background(), e.js, ledger.Config{Bucket: "provisioner_ledger", LeaseTTL: time.Second, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	entry, _, err := led.Get(context.Background(), ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "github"})
	if err != nil || entry.State != ledger.StateActive {
		t.Fatalf("ledger entry %+v %v", entry, err)
	}
	if live := e.sandbox.Connectors("acme")[0].ID; live != entry.Connector || connectorIDOf(t, byID[entry.RequestID]) != live {
		t.Fatalf("the connector %s is not the one the last applied request %s recorded (%s)", live, entry.RequestID, entry.Connector)
	}
	if got := e.streamCount("PROVISIONER_RESULTS"); got != len(ids) {
		t.Fatalf("%d results stored for %d request ids (re-published results must collapse)", got, len(ids))
	}
}

// The sandbox commits creates and then fails the response: the worker must adopt, not create again.
func TestCommitThenFailAdoptsInsteadOfDuplicating(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 7, Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {CommitThenFail: 0.5},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-ctf"})
	r := e.start(nil)
	const n = 20
	for i := range n {
		req := credentialsRequest(fmt.Sprintf("req-%d", i), "acme", "github", "file:acme/github.json")
		req["name"] = fmt.Sprintf("GitHub %d", i)
		e.publish("credentials.submitted", req)
	}
	byID := e.byRequest(e.results(n, 60*time.Second))
	for id, res := range byID {
		if res.Message != contract.MessageSourceCreated {
			t.Fatalf("%s: %+v", id, res)
		}
	}
	if e.sandbox.Stats().CommittedThenFailed == 0 {
		t.Fatal("the fault never fired; the test proves nothing")
	}
	e.assertOneConnectorPerIdentity([]string{"acme"}, n)
	if adopted := counter(t, r.registry, "provisioner_requests_finished_total", map[string]string{"outcome": "adopted"}); adopted == 0 {
		t.Fatal("no request was adopted")
	}
}

// A worker died after Airbyte created the connector but before it recorded completion: its lease is
// left behind. The next worker waits for the lease to lapse, takes over, lists, and adopts.
func TestCrashAfterCreateIsAdoptedAfterLeaseExpiry(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-crash"})
	ctx := context.Background()

	// the dead worker: it claimed the identity with a short lease and created the connector
	dead, err := ledger.Open(ctx, e.js, ledger.Config{Bucket: "provisioner_ledger", LeaseTTL: 2 * time.Second, Owner: "dead-worker"})
	if err != nil {
		t.Fatal(err)
	}
	id := ledger.Identity{WorkspaceName: "acme", ConnectorKind: "type:github", Name: "github"}
	if c, err := dead.Claim(ctx, id, ledger.Request{ID: "req-crash"}); err != nil || c.Outcome != ledger.Claimed {
		t.Fatalf("claim: %+v %v", c, err)
	}
	client, err := airbyte.New(airbyte.Config{BaseURL: e.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.CreateConnector(ctx, airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: "github", ConnectorType: "github",
		Credentials: secret.NewFields(map[string]string{"token": "t-crash"})})
	if err != nil {
		t.Fatal(err)
	}

	r := e.start(nil)
	e.publish("credentials.submitted", credentialsRequest("req-crash", "acme", "github", "file:acme/github.json"))
	res := e.byRequest(e.results(1, 30*time.Second))["req-crash"]
	if res.Message != contract.MessageSourceCreated || connectorIDOf(t, res) != created.ID {
		t.Fatalf("result %+v, want the connector %s the dead worker created", res, created.ID)
	}
	e.assertOneConnectorPerIdentity([]string{"acme"}, 1)
	if counter(t, r.registry, "provisioner_ledger_lease_takeovers_total", nil) != 1 {
		t.Fatal("no lease takeover counted")
	}
	if counter(t, r.registry, "provisioner_requests_finished_total", map[string]string{"outcome": "adopted"}) != 1 {
		t.Fatal("the connector was not adopted")
	}
}

// A worker is stopped while its create call is in flight; another finishes the request with one
// connector and one result.
func TestWorkerStoppedMidRequest(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {Latency: 1500 * time.Millisecond},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-mid"})
	first := e.start(func(c *config.Config) { c.ShutdownTimeout = 50 * time.Millisecond; c.AirbyteTimeout = 3 * time.Second })
	e.publish("credentials.submitted", credentialsRequest("req-mid", "acme", "github", "file:acme/github.json"))
	waitFor(t, 10*time.Second, "the create call", func() bool { return e.sandbox.Stats().Requests[sandbox.OpConnectorsCreate] >= 1 })
	first.stop(t) // interrupts the in-flight create

	e.start(nil)
	res := e.byRequest(e.results(1, 30*time.Second))["req-mid"]
	if res.Message != contract.MessageSourceCreated {
		t.Fatalf("result %+v", res)
	}
	waitFor(t, 10*time.Second, "the create to settle", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })
	e.assertOneConnectorPerIdentity([]string{"acme"}, 1)
}

// SIGTERM during a burst: nothing lost, nothing duplicated.
func TestGracefulShutdownDuringBurst(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpAll: {Latency: 10 * time.Millisecond, LatencyJitter: 10 * time.Millisecond},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-burst"})
	const n = 150
	for i := range n {
		req := credentialsRequest(fmt.Sprintf("req-%d", i), "acme", "github", "file:acme/github.json")
		req["name"] = fmt.Sprintf("gh-%d", i)
		e.publish("credentials.submitted", req)
	}
	first := e.start(nil)
	waitFor(t, 30*time.Second, "a third of the burst", func() bool { return e.streamCount("PROVISIONER_RESULTS") >= n/3 })
	first.stop(t)
	if done := e.streamCount("PROVISIONER_RESULTS"); done >= n {
		t.Fatalf("the burst finished before shutdown (%d); make it longer", done)
	}
	e.start(nil)
	byID := e.byRequest(e.results(n, 60*time.Second))
	for id, r := range byID {
		if r.Message != contract.MessageSourceCreated {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	if len(byID) != n {
		t.Fatalf("%d results for %d requests", len(byID), n)
	}
	e.assertOneConnectorPerIdentity([]string{"acme"}, n)
}

// The connection survives a NATS restart: the consumer resumes without operator action.
func TestSurvivesNATSRestart(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-restart"})
	e.start(nil)
	e.publish("credentials.submitted", credentialsRequest("before", "acme", "github", "file:acme/github.json"))
	e.results(1, 20*time.Second)

	e.nats.Restart()
	// the test's own connection reconnects too; publish once it has
	waitFor(t, 20*time.Second, "the test client to reconnect", func() bool { return e.nc.IsConnected() })
	req := credentialsRequest("after", "acme", "hubspot-like", "file:acme/github.json")
	req["connector_type"] = "stripe"
	e.publish("credentials.submitted", req)
	byID := e.byRequest(e.results(2, 60*time.Second))
	if byID["after"].Message != contract.MessageSourceCreated {
		t.Fatalf("after restart: %+v", byID["after"])
	}
}

// The last allowed delivery of a request that keeps failing ends it: retryable error result, dead
// letter, Term.
func TestLastDeliveryDeadLetters(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {ErrorRates: map[int]float64{503: 1}},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-last"})
	r := e.start(func(c *config.Config) {
		c.MaxDeliver = 2
		c.AckWait = 2 * time.Second
		c.AirbyteTimeout = time.Second
	})
	e.publish("credentials.submitted", credentialsRequest("req-last", "acme", "github", "file:acme/github.json"))
	res := e.byRequest(e.results(1, 60*time.Second))["req-last"]
	if res.Error == nil || res.Error.Code != contract.CodeAirbyteUnavailable || !res.Error.Retryable || res.Attempts != 2 {
		t.Fatalf("result %+v", res)
	}
	waitFor(t, 10*time.Second, "the dead letter", func() bool { return e.streamCount("PROVISIONER_DLQ") == 1 })
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })
	if len(e.sandbox.Connectors("acme")) != 0 {
		t.Fatal("a connector exists although every create failed")
	}
	if counter(t, r.registry, "provisioner_requests_finished_total", map[string]string{"outcome": "retry"}) < 1 {
		t.Fatal("the first delivery was not retried")
	}
	dl, err := consumer.NewDeadLetters(e.js, consumer.Topology{}).List(context.Background(), 0)
	if err != nil || len(dl) != 1 || dl[0].Reason != string(contract.CodeAirbyteUnavailable) || dl[0].Deliveries != 2 || dl[0].RequestID != "req-last" {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
}

// A dead letter is listed with its reason and, once the cause is fixed, replayed to success.
func TestDeadLetterReplay(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.start(nil)
	msg := credentialsRequest("req-replay", "acme", "github", "file:acme/late.json")
	data, _ := json.Marshal(msg)
	if _, err := e.js.PublishMsg(context.Background(), natsMsg("provisioner.requests.credentials.submitted", data, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-App": "crm"})); err != nil {
		t.Fatal(err)
	}
	first := e.byRequest(e.results(1, 20*time.Second))["req-replay"]
	if first.Error == nil || first.Error.Code != contract.CodeSecretNotFound {
		t.Fatalf("first result %+v", first)
	}
	dlq := consumer.NewDeadLetters(e.js, consumer.Topology{})
	var entries []consumer.DeadLetterEntry
	waitFor(t, 10*time.Second, "the dead letter", func() bool {
		entries, _ = dlq.List(context.Background(), 0)
		return len(entries) == 1
	})
	got := entries[0]
	if got.Reason != "secret_not_found" || got.OriginalSubject != "provisioner.requests.credentials.submitted" || string(got.Body) != string(data) ||
		got.Header.Get("X-App") != "crm" || got.Header.Get("traceparent") == "" || got.Deliveries != 1 || got.Time.IsZero() {
		t.Fatalf("dead letter %+v", got)
	}

	e.writeSecret("acme/late.json", map[string]string{"token": "t-late"})
	if err := dlq.Replay(context.Background(), got.ID); err != nil {
		t.Fatal(err)
	}
	rs := e.results(2, 20*time.Second)
	var created bool
	for _, r := range rs {
		created = created || (r.RequestID == "req-replay" && r.Message == contract.MessageSourceCreated && r.Revision == 2)
	}
	if !created || first.Revision != 1 {
		t.Fatalf("replay did not create with revision 2 after revision 1: %+v", rs)
	}
	if final := e.byRequest(rs)["req-replay"]; final.Message != contract.MessageSourceCreated {
		t.Fatalf("the highest revision is not the replay's: %+v", final)
	}
	if n := e.streamCount("PROVISIONER_DLQ"); n != 0 {
		t.Fatalf("%d dead letters left after replay", n)
	}
}

// Two replicas sharing the consumer split the work.
func TestReplicasShareTheWork(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpAll: {Latency: 20 * time.Millisecond},
	}}})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-share"})
	a := e.start(func(c *config.Config) { c.Concurrency = 4 })
	b := e.start(func(c *config.Config) { c.Concurrency = 4 })
	const n = 80
	for i := range n {
		req := credentialsRequest(fmt.Sprintf("req-%d", i), "acme", "github", "file:acme/github.json")
		req["name"] = fmt.Sprintf("gh-%d", i)
		e.publish("credentials.submitted", req)
	}
	if got := len(e.byRequest(e.results(n, 60*time.Second))); got != n {
		t.Fatalf("%d results", got)
	}
	na := counter(t, a.registry, "provisioner_requests_finished_total", nil)
	nb := counter(t, b.registry, "provisioner_requests_finished_total", nil)
	if na == 0 || nb == 0 || na+nb != n {
		t.Fatalf("replica a handled %v, b %v of %d", na, nb, n)
	}
	e.assertOneConnectorPerIdentity([]string{"acme"}, n)
}

// Secrets never leave the worker: not in logs, results, dead letters, metrics or spans.
func TestNoSecretLeavesTheWorker(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 3, Faults: sandbox.Faults{Rules: map[string]sandbox.FaultRule{
		sandbox.OpConnectorsCreate: {CommitThenFail: 0.3, ErrorRates: map[int]float64{503: 0.2}},
	}}})
	secrets := map[string]string{
		"acme/github.json":  `{"token":"ghp_LEAK_CANARY_0001"}`,
		"acme/hubspot.json": `{"client_id":"cid_LEAK_CANARY_0002","client_secret":"cs_LEAK_CANARY_0003","refresh_token":"rt_LEAK_CANARY_0004"}`,
		"acme/partial.json": `{"client_id":"cid_LEAK_CANARY_0005"}`,
	}
	for p, v := range secrets {
		var m map[string]string
		_ = json.Unmarshal([]byte(v), &m)
		e.writeSecret(p, m)
	}
	spans, _ := e.recordTraces()
	r := e.start(func(c *config.Config) { c.LogLevel = "debug" })
	e.publish("credentials.submitted", credentialsRequest("ok-gh", "acme", "github", "file:acme/github.json"))
	e.publish("credentials.submitted", credentialsRequest("ok-hs", "acme", "hubspot", "file:acme/hubspot.json"))
	e.publish("credentials.submitted", credentialsRequest("bad-creds", "acme", "hubspot", "file:acme/partial.json"))
	e.publish("credentials.submitted", credentialsRequest("wrong-kind", "acme", "hubspot", "file:acme/github.json"))
	e.publish("credentials.submitted", `{"id":"inline","workspace_name":"acme","connector_type":"github","credentials_ref":"file:acme/github.json","replication_config":{"credentials":{"token":"ghp_LEAK_CANARY_0006"}}}`)
	e.results(5, 60*time.Second)
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })

	var everything strings.Builder
	everything.WriteString(e.logs.String())
	for _, stream := range []string{"PROVISIONER_RESULTS", "PROVISIONER_DLQ"} {
		s, err := e.js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(context.Background())
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(context.Background(), seq)
			if err != nil {
				continue
			}
			everything.WriteString(m.Subject)
			everything.Write(m.Data)
			for k, vs := range m.Header {
				everything.WriteString(k + strings.Join(vs, ","))
			}
		}
	}
	mfs, _ := r.registry.Gather()
	for _, mf := range mfs {
		everything.WriteString(mf.String())
	}
	spanText := dumpSpans(t, spans.GetSpans())
	if strings.Contains(spanText, ".json") {
		t.Error("a secret reference's path reached a span")
	}
	everything.WriteString(spanText)
	all := everything.String()
	// LEAK_CANARY_0006 was inline in a refused request: its dead letter keeps the body with every
	// credentials object removed
	for _, canary := range []string{"LEAK_CANARY_0001", "LEAK_CANARY_0002", "LEAK_CANARY_0003", "LEAK_CANARY_0004", "LEAK_CANARY_0005", "LEAK_CANARY_0006", sandbox.DefaultClientSecret} {
		if strings.Contains(all, canary) {
			i := strings.Index(all, canary)
			t.Errorf("secret %s leaked: …%s…", canary, all[max(0, i-200):min(len(all), i+50)])
		}
	}
	if strings.Contains(all, "Bearer ey") || strings.Contains(all, `"access_token"`) {
		t.Error("a token reached the logs, results or dead letters")
	}
}

// Copies of a failing request (same id) end in one error result and one dead letter.
func TestOneDeadLetterPerRequest(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.start(nil)
	for range 3 {
		e.publish("credentials.submitted", credentialsRequest("req-gone", "acme", "github", "file:acme/nowhere.json"))
	}
	e.publish("credentials.submitted", credentialsRequest("req-gone-2", "acme", "github", "file:acme/nowhere.json"))
	byID := e.byRequest(e.results(2, 20*time.Second))
	if len(byID) != 2 || byID["req-gone"].Error == nil || byID["req-gone"].Error.Code != contract.CodeSecretNotFound {
		t.Fatalf("results %+v", byID)
	}
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return e.streamCount("PROVISIONER_REQUESTS") == 0 })
	if n := e.streamCount("PROVISIONER_DLQ"); n != 2 {
		t.Fatalf("%d dead letters for 2 request ids", n)
	}
	if n := e.streamCount("PROVISIONER_RESULTS"); n != 2 {
		t.Fatalf("%d results stored for 2 request ids", n)
	}
}

// With --lookup always, a connector made outside the provisioner (by the widget, say) is adopted
// and given the request's credentials like any existing connector: in place for an embedded source,
// by replace for an Agent Engine connector; the answer is source_updated. With the default, only the
// ledger's own history triggers a lookup, and the foreign connector is left alone.
func TestLookupAlwaysAdoptsForeignConnectors(t *testing.T) {
	const jiraServiceManagement = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e0b"
	foreignCreds := map[string]string{"token": "t-foreign"}
	requestCreds := map[string]string{"token": "t-request"}
	for _, tc := range []struct {
		name, lookup, connectorType, template string
		wantMessage, wantOutcome              string
		wantConnectors                        int
		wantSameID                            bool // the identity's connector is the foreign one, updated in place
	}{
		{"always agent engine", "always", "github", "", contract.MessageSourceUpdated, "replaced", 1, false},
		{"always embedded", "always", "jira", jiraServiceManagement, contract.MessageSourceUpdated, "updated", 1, true},
		{"recovery", "recovery", "github", "", contract.MessageSourceCreated, "created", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			e.writeSecret("acme/creds.json", requestCreds)
			client, err := airbyte.New(airbyte.Config{BaseURL: e.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret)})
			if err != nil {
				t.Fatal(err)
			}
			foreign, err := client.CreateConnector(context.Background(), airbyte.ConnectorSourceCreateRequest{WorkspaceName: "acme", Name: tc.connectorType,
				ConnectorType: tc.connectorType, SourceTemplateID: tc.template, Credentials: secret.NewFields(foreignCreds)})
			if err != nil {
				t.Fatal(err)
			}
			r := e.start(func(c *config.Config) { c.Lookup = tc.lookup })
			req := credentialsRequest("req-foreign", "acme", tc.connectorType, "file:acme/creds.json")
			if tc.template != "" {
				req["source_template_id"] = tc.template
			}
			e.publish("credentials.submitted", req)
			res := e.byRequest(e.results(1, 20*time.Second))["req-foreign"]
			if res.Message != tc.wantMessage {
				t.Fatalf("result %s %s %+v, want %s", res.Message, res.Data, res.Error, tc.wantMessage)
			}
			conns := sandboxConnectors(t, e.baseURL, "acme")
			if len(conns) != tc.wantConnectors {
				t.Fatalf("%d connectors, want %d: %+v", len(conns), tc.wantConnectors, conns)
			}
			id := connectorIDOf(t, res)
			var held string
			for _, c := range conns {
				if c.ID == id {
					held = c.CredentialsSHA256
				}
			}
			if want := sandbox.CredentialsSHA256(requestCreds); held != want {
				t.Fatalf("the identity's connector %s holds credentials %q, want the request's %q: %+v", id, held, want, conns)
			}
			if tc.lookup == "always" {
				switch {
				case tc.wantSameID && (id != foreign.ID || res.ReplacedID != ""):
					t.Fatalf("connector %s replaced %q, want the foreign %s updated in place", id, res.ReplacedID, foreign.ID)
				case !tc.wantSameID && (id == foreign.ID || res.ReplacedID != foreign.ID):
					t.Fatalf("connector %s replaced %q, want a new connector replacing the foreign %s", id, res.ReplacedID, foreign.ID)
				}
			}
			// The outcome is counted after the ack, a moment after the result is visible.
			waitFor(t, 10*time.Second, "outcome "+tc.wantOutcome+" counted", func() bool {
				return counter(t, r.registry, "provisioner_requests_finished_total", map[string]string{"outcome": tc.wantOutcome}) == 1
			})
		})
	}
}

// sandboxConnectors reads a workspace's live connectors from the sandbox's admin endpoint.
func sandboxConnectors(t *testing.T, baseURL, workspace string) []sandbox.Connector {
	t.Helper()
	resp, err := http.Get(baseURL + "/_sandbox/connectors?workspace_name=" + url.QueryEscape(workspace))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_sandbox/connectors: %s", resp.Status)
	}
	var conns []sandbox.Connector
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
		t.Fatal(err)
	}
	return conns
}
