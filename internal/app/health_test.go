package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A running worker is alive and ready; its metrics lint clean and count its work; once stopped,
// nothing answers. While NATS is down, /readyz says why.
func TestHealthAndMetricsOfARunningWorker(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.writeSecret("acme/github.json", map[string]string{"token": "t-health"})
	r := e.start(nil)
	base := "http://" + r.metrics

	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	waitFor(t, 10*time.Second, "/readyz 200", func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK })

	e.publish("credentials.submitted", credentialsRequest("req-h", "acme", "github", "file:acme/github.json"))
	e.results(1, 20*time.Second)
	waitFor(t, 10*time.Second, "the request to be counted", func() bool {
		return counter(t, r.registry, "provisioner_requests_finished_total", map[string]string{"kind": "credentials_submitted", "outcome": "created"}) == 1
	})
	if problems, err := testutil.GatherAndLint(r.registry); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
	_, body := get(t, base+"/metrics")
	for _, want := range []string{"provisioner_build_info", "provisioner_airbyte_requests_total", `provisioner_token_mints_total{kind="scoped"} 1`, "provisioner_nats_connected 1", `provisioner_secret_fetches_total{backend="file",outcome="ok"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "acme") {
		t.Error("a workspace name reached a metric")
	}

	e.nats.Stop()
	waitFor(t, 10*time.Second, "/readyz 503 while NATS is down", func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "nats")
	})
	e.nats.Restart()
	waitFor(t, 20*time.Second, "/readyz 200 after reconnect", func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK })

	r.stop(t)
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("metrics server still answers after shutdown")
	}
}
