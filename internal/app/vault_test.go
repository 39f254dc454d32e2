package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
	"github.com/provisioner-dev/provisioner/internal/vault/vaulttest"
)

const (
	vaultRoleID   = "2eff6816-e28e-7b2d-3109-907efa3d50dd"
	vaultSecretID = "b9ebb7fe-1c1b-87e6-ff0c-adae7eec1758"
	vaultLogin    = "/v1/auth/approle/login"
)

// freeAddr returns a loopback address nothing listens on, for a metrics server whose address
// the test must know before the worker has started.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// A worker whose Airbyte client secret and customers' secrets are in Vault, started while Vault
// is sealed, waits it out: it does not exit, /readyz and the metrics say Vault is sealed, a log
// line says what it waits for; once Vault answers it starts and provisions from Vault. No
// secret, token, secret id or role id reaches a log line, and no log line has a key twice.
func TestWorkerWaitsOutASealedVault(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	recs := vaulttest.MustLoad(t, "../vault/testdata/openbao-2.6.2-dev.json", "../vault/testdata/openbao-2.6.2-shapes.json")
	vs := vaulttest.NewServer(t)
	vs.RequireToken("")
	vs.Handle("POST", vaultLogin, recs.Get(t, "approle_login_sealed"))
	vs.HandleRecorded(recs.Get(t, "token_renew_self"))
	vs.Handle("GET", "/v1/secret/data/provisioner/airbyte",
		recs.Get(t, "kv2_read_as_approle").WithData(t, "/v1/secret/data/provisioner/airbyte", map[string]string{"client_secret": sandbox.DefaultClientSecret}))
	vs.Handle("GET", "/v1/secret/data/acme/github", recs.Get(t, "kv2_read_as_approle").WithData(t, "/v1/secret/data/acme/github",
		map[string]string{"token": "ghp_example_not_real_0001"}))

	cfg := e.config()
	cfg.AirbyteClientSecret = secret.Value{}
	cfg.AirbyteClientSecretRef = "vault:provisioner/airbyte#client_secret"
	cfg.SecretsDir = ""
	cfg.Vault = config.Default().Vault
	cfg.Vault.Addr, cfg.Vault.Auth, cfg.Vault.RoleID = vs.URL, vault.AuthAppRole, vaultRoleID
	cfg.Vault.SecretID = secret.New(vaultSecretID)
	cfg.MetricsAddr = freeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	started := make(chan app.Endpoints, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Logger: logger, Registry: reg, Started: func(ep app.Endpoints) { started <- ep }})
	}()
	base := "http://" + cfg.MetricsAddr

	var served strings.Builder // everything the worker served, for the leak scan
	waitFor(t, 30*time.Second, "/readyz to say Vault is sealed", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body := new(strings.Builder)
		_, _ = bufio.NewReader(resp.Body).WriteTo(body)
		served.WriteString(body.String())
		return resp.StatusCode == http.StatusServiceUnavailable &&
			strings.Contains(body.String(), "vault: Vault is sealed") &&
			strings.Contains(body.String(), "airbyte_client_secret: waiting for the secret store")
	})
	waitFor(t, 30*time.Second, "a log line about the client secret", func() bool {
		return strings.Contains(e.logs.String(), "airbyte client secret not readable yet")
	})
	if got := gaugeValue(t, reg, "provisioner_vault_login_state", map[string]string{"state": "failing"}); got != 1 {
		t.Fatalf("vault failing = %v", got)
	}
	select {
	case err := <-done:
		t.Fatalf("worker exited while Vault was sealed: %v", err)
	default:
	}

	vs.Handle("POST", vaultLogin, recs.Get(t, "approle_login")) // unsealed
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("worker exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not start once Vault was unsealed")
	}
	waitFor(t, 10*time.Second, "/readyz 200", func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK })
	if got := gaugeValue(t, reg, "provisioner_vault_login_state", map[string]string{"state": "logged_in"}); got != 1 {
		t.Fatalf("vault logged_in = %v", got)
	}
	if got := gaugeValue(t, reg, "provisioner_vault_token_expiry_seconds", nil); got <= 0 || got > 3600 {
		t.Fatalf("token expiry %v s", got)
	}

	e.publish("credentials.submitted", credentialsRequest("req-v", "acme", "github", "vault:acme/github"))
	r := e.byRequest(e.results(1, 30*time.Second))["req-v"]
	if r.Message != contract.MessageSourceCreated {
		t.Fatalf("result %+v", r)
	}
	_, metricsText := get(t, base+"/metrics")
	served.WriteString(metricsText)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	logs := e.logs.String()
	result, _ := json.Marshal(r)
	for _, s := range []string{vaultRoleID, vaultSecretID, "s.ysHw37F0R8plOudbakIae8Ng", sandbox.DefaultClientSecret, "ghp_example_not_real"} {
		for what, text := range map[string]string{"logs": logs, "/readyz or /metrics": served.String(), "the result": string(result)} {
			if strings.Contains(text, s) {
				t.Errorf("%q reached %s", s, what)
			}
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if key := repeatedKey(t, sc.Bytes()); key != "" {
			t.Errorf("key %q twice in %s", key, sc.Text())
		}
	}
}

// gaugeValue sums a gauge's series whose labels include every given pair.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return sumSeries(t, reg, name, labels, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// repeatedKey returns a top-level key found twice in a JSON log line, "" if none.
func repeatedKey(t *testing.T, line []byte) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(line)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return ""
}
