package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

type checkBody struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	ErrorMessage  *string `json:"error_message"`
	FailureReason *struct {
		Timestamp     int64  `json:"timestamp"`
		FailureOrigin string `json:"failure_origin"`
		FailureType   string `json:"failure_type"`
	} `json:"failure_reason"`
}

// TestCheckStatuses: both check endpoints answer succeeded, or failed with error_message and
// failure_reason, by the documented rule (a credential starting with "invalid" fails), and the
// fault plan can force the spec's other statuses.
func TestCheckStatuses(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	good := createGitHub(t, c, op, "acme", "good", "ghp_check_ok")
	bad := createGitHub(t, c, op, "acme", "bad", "invalid-ghp")
	configBody := func(token string) map[string]any {
		return map[string]any{"workspace_name": "acme", "connector_type": "github", "credentials": map[string]string{"token": token}}
	}
	tests := []struct {
		name       string
		forced     map[string]float64
		path       string
		body       any
		wantStatus string
	}{
		{"config succeeds", nil, "/api/v1/integrations/connectors/check", configBody("ghp_ok"), "succeeded"},
		{"config fails", nil, "/api/v1/integrations/connectors/check", configBody("invalid-token"), "failed"},
		{"connector succeeds", nil, "/api/v1/integrations/connectors/" + good.ID + "/check", map[string]any{}, "succeeded"},
		{"connector fails", nil, "/api/v1/integrations/connectors/" + bad.ID + "/check", map[string]any{}, "failed"},
		{"forced pending", map[string]float64{"pending": 1}, "/api/v1/integrations/connectors/check", configBody("invalid-token"), "pending"},
		{"forced inconclusive", map[string]float64{"inconclusive": 1}, "/api/v1/integrations/connectors/" + good.ID + "/check", map[string]any{}, "inconclusive"},
		{"forced running", map[string]float64{"running": 1}, "/api/v1/integrations/connectors/check", configBody("ghp_ok"), "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetFaults(sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpConnectorsCheck: {CheckStatuses: tt.forced}}})
			hits := srv.Stats().Faults[sandbox.FaultCheckStatus]
			r := c.do("POST", tt.path, op, tt.body)
			var got checkBody
			r.decode(t, &got)
			if r.status != 200 || got.Status != tt.wantStatus || got.ID == "" {
				t.Fatalf("check: %d %s", r.status, r.body)
			}
			failed := got.Status == "failed"
			if failed != (got.ErrorMessage != nil) || failed != (got.FailureReason != nil) {
				t.Fatalf("error_message/failure_reason must come with failed, and only then: %s", r.body)
			}
			if failed && (got.FailureReason.FailureType != "config_error" || got.FailureReason.FailureOrigin != "source" || got.FailureReason.Timestamp == 0) {
				t.Fatalf("failure_reason = %s", r.body)
			}
			if forced := srv.Stats().Faults[sandbox.FaultCheckStatus] - hits; forced != int64(len(tt.forced)) {
				t.Fatalf("check_status faults counted %d", forced)
			}
		})
	}

	// A forced status waits the rule's check latency: one longer than the caller will wait
	// leaves the caller without an answer; the same status without it answers at once.
	t.Run("check latency", func(t *testing.T) {
		for _, tc := range []struct {
			latency  time.Duration
			wantWait bool
		}{{0, false}, {time.Hour, true}} {
			srv.SetFaults(sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpConnectorsCheck: {
				CheckStatuses: map[string]float64{"inconclusive": 1}, CheckLatency: tc.latency}}})
			wait := 30 * time.Second
			if tc.wantWait {
				wait = 200 * time.Millisecond // an hour's latency outlasts it whatever the machine's load
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/integrations/connectors/"+good.ID+"/check", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+op)
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if tc.wantWait {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("latency %v: want the caller's deadline, got %v", tc.latency, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("latency %v: %v", tc.latency, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("latency %v: status %d", tc.latency, resp.StatusCode)
			}
		}
	})
}
