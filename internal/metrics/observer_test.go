package metrics_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/metrics"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Metrics is the Airbyte client's Observer.
var _ airbyte.Observer = (*metrics.Metrics)(nil)

// The real client against the sandbox: its operation names are the default list (nothing lands in
// "other"), its token events are counted, and the workspace name appears in no label.
func TestAirbyteClientAgainstTheSandbox(t *testing.T) {
	const workspace = "acme-metrics-workspace"
	_, baseURL := sandboxtest.Start(t, sandbox.Config{ClientID: "id", ClientSecret: "shh", StrictAuth: true})
	m, reg := newMetrics(t, nil)
	client, err := airbyte.New(airbyte.Config{
		BaseURL:       baseURL,
		ClientID:      "id",
		ClientSecret:  secret.New("shh"),
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper { return m.InstrumentTransport(rt, airbyte.Operation) },
		Observer:      m,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := client.CreateConnector(ctx, airbyte.ConnectorSourceCreateRequest{
		WorkspaceName: workspace, ConnectorType: "github", Name: "GitHub",
		Credentials: secret.NewFields(map[string]string{"token": "ghp_never_in_metrics"}),
	}); err != nil {
		t.Fatalf("CreateConnector: %v", err)
	}
	if _, err := client.ListConnectors(ctx, airbyte.ListConnectorsParams{WorkspaceName: workspace}); err != nil {
		t.Fatalf("ListConnectors: %v", err)
	}

	for _, op := range []string{"connectors_create", "connectors_list"} {
		if got := sample(t, reg, "provisioner_airbyte_requests_total", "operation", op, "code", "2xx"); got != 1 {
			t.Errorf("%s 2xx = %v, want 1", op, got)
		}
	}
	if got := sample(t, reg, "provisioner_token_mints_total", "kind", "scoped"); got != 1 {
		t.Errorf("scoped mints = %v, want 1", got)
	}
	if got := sample(t, reg, "provisioner_token_cache_hits_total", "kind", "application"); got < 2 {
		t.Errorf("application cache hits = %v, want >= 2 (the create and the list reused the token the scoped mint used)", got)
	}
	assertLabelsClosed(t, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetValue() == metrics.OtherLabel && s.GetCounter().GetValue() > 0 {
					t.Errorf("%s{%s=other} counted: a client operation is missing from the default list", mf.GetName(), lp.GetName())
				}
				if strings.Contains(lp.GetValue(), "acme") || strings.Contains(lp.GetValue(), "ghp_") {
					t.Errorf("%s has label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}
