package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
	"github.com/provisioner-dev/provisioner/schemas"
)

// newClusterEnv is an env on a 3-node cluster of nats-server processes with R3 streams and bucket.
func newClusterEnv(t *testing.T) (*env, *natsclustertest.Processes) {
	t.Helper()
	cluster := natsclustertest.StartProcessesT(t, 3)
	e := &env{t: t, natsURL: cluster.URL(), streamR: 3, secrets: t.TempDir(), logs: &syncBuffer{}}
	e.sandbox, e.baseURL = sandboxtest.Start(t, sandbox.Config{})
	e.nc, e.js = cluster.Connect(t)
	e.setupStreams()
	return e, cluster
}

// publishRetrying publishes a request, retrying while the cluster elects a leader for the stream.
func (e *env) publishRetrying(suffix string, body map[string]any) {
	e.t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: "provisioner.requests." + suffix, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, body["id"].(string))
	waitFor(e.t, 30*time.Second, "publishing "+body["id"].(string), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := e.js.PublishMsg(ctx, msg)
		return err == nil
	})
}

// clusterResults waits until n results are stored, asking with short per-call timeouts (a call
// that lands on a stream electing its leader gets no answer), then returns them.
func (e *env) clusterResults(n int, timeout time.Duration) []contract.Result {
	e.t.Helper()
	waitFor(e.t, timeout, fmt.Sprintf("%d results", n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := e.js.Stream(ctx, "PROVISIONER_RESULTS")
		return err == nil && int(s.CachedInfo().State.Msgs) >= n
	})
	return e.results(n, 10*time.Second)
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, metricsAddr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Killing the node that leads the consumer stalls the pull loop only until the cluster elects a new
// leader: /readyz says the pull loop is stalled, then ready again, and processing resumes well
// before the 30s a pull request used to wait on a dead leader.
func TestConsumerLeaderLossResumesWithinSeconds(t *testing.T) {
	e, cluster := newClusterEnv(t)
	e.writeSecret("acme/github.json", map[string]string{"token": "t-1"})
	ctx := context.Background()

	leader, err := natsclustertest.ConsumerLeader(ctx, e.js, "PROVISIONER_REQUESTS", "provisioner")
	if err != nil {
		t.Fatal(err)
	}
	victim := cluster.Index(leader)
	// the worker talks to the two other nodes: its connection survives, only the pull loses its leader
	var survivors []*natsclustertest.Node
	for i, n := range cluster.Nodes {
		if i != victim {
			survivors = append(survivors, n)
		}
	}
	r := e.start(func(c *config.Config) { c.NATSURL = natsclustertest.URLs(survivors) })
	waitFor(t, 10*time.Second, "ready", func() bool { code, _ := readyz(t, r.metrics); return code == http.StatusOK })

	for i := range 5 {
		e.publishRetrying("credentials.submitted", credentialsRequest(fmt.Sprintf("before-%d", i), fmt.Sprintf("ws-before-%d", i), "github", "file:acme/github.json"))
	}
	e.clusterResults(5, 30*time.Second)

	if err := cluster.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, 15*time.Second, "/readyz to report the stalled pull loop", func() bool {
		code, body := readyz(t, r.metrics)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "pull: stalled")
	})
	for i := range 5 {
		e.publishRetrying("credentials.submitted", credentialsRequest(fmt.Sprintf("after-%d", i), fmt.Sprintf("ws-after-%d", i), "github", "file:acme/github.json"))
	}
	// The server elects a new consumer leader 4-9s after losing one (nats-server's raft election
	// timeout); the worker pulls again within two heartbeats of that. 25s stays below the 30s a
	// pull used to wait on the dead leader, so the old loop fails here.
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if !strings.Contains(l, `"level":"DEBUG"`) {
					t.Log(l)
				}
			}
		}
	})
	rs := e.byRequest(e.clusterResults(10, 25*time.Second-time.Since(killed)))
	t.Logf("10 results %.1fs after the consumer leader was killed", time.Since(killed).Seconds())
	for i := range 5 {
		if got := rs[fmt.Sprintf("after-%d", i)]; got.Message != contract.MessageSourceCreated {
			t.Errorf("after-%d: %+v", i, got)
		}
	}
	waitFor(t, 10*time.Second, "/readyz ok after recovery", func() bool { code, _ := readyz(t, r.metrics); return code == http.StatusOK })
	if err := cluster.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
}

// Three replicas starting together on a fresh 3-node cluster race to create the R3 streams, the
// consumer and the ledger bucket. The server answers only one of two identical concurrent creates;
// short, jittered per-call timeouts make the others verify again at once instead of waiting out a
// long timeout (21-32s before), so all three are ready within seconds.
func TestThreeReplicasStartTogetherOnAFreshCluster(t *testing.T) {
	cluster := natsclustertest.StartProcessesT(t, 3)
	e := &env{t: t, natsURL: cluster.URL(), streamR: 3, secrets: t.TempDir(), logs: &syncBuffer{}}
	e.sandbox, e.baseURL = sandboxtest.Start(t, sandbox.Config{})
	e.nc, e.js = cluster.Connect(t)
	e.writeSecret("acme/github.json", map[string]string{"token": "t-1"})
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	e.schemas = set // no setupStreams: the cluster stays empty until the replicas start

	const replicas = 3
	type started struct {
		i       int
		metrics string
		err     error
	}
	ready := make(chan started, 2*replicas)
	begin := time.Now()
	for i := range replicas {
		cfg := e.config()
		ctx, cancel := context.WithCancel(context.Background())
		exited := make(chan struct{})
		logger := slog.New(slog.NewJSONHandler(e.logs, nil))
		go func() {
			defer close(exited)
			err := app.Run(ctx, cfg, app.Options{Logger: logger, Registry: prometheus.NewRegistry(), Started: func(ep app.Endpoints) {
				ready <- started{i: i, metrics: ep.MetricsAddr}
			}})
			if err != nil {
				select {
				case ready <- started{i: i, err: err}:
				default:
				}
			}
		}()
		t.Cleanup(func() { cancel(); <-exited })
	}
	var slowest time.Duration
	for range replicas {
		select {
		case s := <-ready:
			if s.err != nil {
				t.Fatalf("replica %d: %v", s.i, s.err)
			}
			waitFor(t, 10*time.Second, "/readyz", func() bool { code, _ := readyz(t, s.metrics); return code == http.StatusOK })
			slowest = max(slowest, time.Since(begin))
		case <-time.After(10 * time.Second):
			t.Fatalf("not every replica ready within 10s of starting together (before: 21-32s)\n%s", e.logs.String())
		}
	}
	t.Logf("three replicas ready %.2fs after starting together on a fresh cluster", slowest.Seconds())
	for _, stream := range []string{"PROVISIONER_REQUESTS", "PROVISIONER_RESULTS", "PROVISIONER_DLQ", "KV_provisioner_ledger"} {
		s, err := e.js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Replicas; got != 3 {
			t.Errorf("%s has %d replicas", stream, got)
		}
	}
	e.publishRetrying("credentials.submitted", credentialsRequest("cold-1", "acme", "github", "file:acme/github.json"))
	if r := e.byRequest(e.clusterResults(1, 20*time.Second))["cold-1"]; r.Message != contract.MessageSourceCreated {
		t.Fatalf("result %+v", r)
	}
}

// While the ledger's bucket is unreachable (the only server holding it is down), a request is
// returned for a later delivery as nats_unavailable — counted with that outcome, never answered
// internal_error — and completes once the bucket is back. The streams and the consumer are R3 and
// made beforehand, the bucket R1: the worker runs with --manage-streams=false, so it uses them as
// they are.
func TestLedgerUnavailableIsRetriedAsNATSUnavailable(t *testing.T) {
	e, cluster := newClusterEnv(t)
	e.writeSecret("acme/github.json", map[string]string{"token": "t-1"})
	ctx := context.Background()
	if _, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "provisioner_ledger", History: 1, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(c *config.Config) { c.ManageStreams = false })
	e.publishRetrying("credentials.submitted", credentialsRequest("first", "ws-first", "github", "file:acme/github.json"))
	e.clusterResults(1, 30*time.Second)

	holder, err := natsclustertest.StreamLeader(ctx, e.js, "KV_provisioner_ledger")
	if err != nil {
		t.Fatal(err)
	}
	victim := cluster.Index(holder)
	if err := cluster.Kill(victim); err != nil {
		t.Fatal(err)
	}
	e.publishRetrying("credentials.submitted", credentialsRequest("second", "ws-second", "github", "file:acme/github.json"))
	waitFor(t, 60*time.Second, "a delivery returned as nats_unavailable", func() bool {
		return metricValue(t, r.metrics, `provisioner_requests_finished_total{kind="credentials_submitted",outcome="nats_unavailable"}`) >= 1
	})
	if err := cluster.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	res := e.byRequest(e.clusterResults(2, 60*time.Second))["second"]
	if res.Message != contract.MessageSourceCreated || res.Attempts < 2 {
		t.Fatalf("after the bucket came back: %+v", res)
	}
	if n := metricValue(t, r.metrics, `provisioner_dead_letters_total{reason="internal_error"}`); n != 0 {
		t.Fatalf("%v internal_error dead letters", n)
	}
}

// metricValue reads one series from a replica's /metrics (0 when absent).
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, _ = fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// A result JetStream does not take (no stream answers: a leader election, here a missing results
// stream) returns the request, counted as nats_unavailable rather than as the outcome it did not
// finish with; once the stream answers again the request ends with its result.
func TestUnpublishedResultIsCountedAsNATSUnavailable(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-1"})
	r := e.start(nil)
	ctx := context.Background()
	if err := e.js.DeleteStream(ctx, "PROVISIONER_RESULTS"); err != nil {
		t.Fatal(err)
	}
	e.publish("credentials.submitted", credentialsRequest("unpublished", "acme", "github", "file:acme/github.json"))
	waitFor(t, 30*time.Second, "a delivery returned as nats_unavailable", func() bool {
		return metricValue(t, r.metrics, `provisioner_requests_finished_total{kind="credentials_submitted",outcome="nats_unavailable"}`) >= 1
	})
	if n := metricValue(t, r.metrics, `provisioner_requests_finished_total{kind="credentials_submitted",outcome="created"}`); n != 0 {
		t.Fatalf("counted %v created while no result was published", n)
	}
	e.setupStreams()
	if res := e.byRequest(e.results(1, 60*time.Second))["unpublished"]; res.Message != contract.MessageSourceCreated {
		t.Fatalf("result %+v", res)
	}
}
