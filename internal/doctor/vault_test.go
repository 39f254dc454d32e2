package doctor_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/doctor"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault/vaulttest"
)

// The Vault check logs in as the worker would and reads an absent secret under the path policy:
// 404 means reachable, logged in and allowed to read there. Vault's answers are replayed from a
// recording of a real server.
func TestVaultCheck(t *testing.T) {
	recs := vaulttest.MustLoad(t, "../vault/testdata/openbao-2.6.2-dev.json")
	const probe = "/v1/secret/data/customers/provisioner-doctor/doctor-probe.json"
	_, airbyteURL := sandboxtest.Start(t, sandbox.Config{})
	tests := []struct {
		name   string
		lookup string // recording of the token lookup (the token auth login)
		read   string // recording answering the probe read
		want   string
	}{
		{"reachable and allowed", "token_lookup_self", "kv2_read_missing", "ok    secrets vault: "},
		{"policy refuses the path", "token_lookup_self", "kv2_read_forbidden", "FAIL  secrets vault: "},
		{"sealed", "token_lookup_self", "kv2_read_sealed", "FAIL  secrets vault: "},
		{"token refused", "kv2_read_bad_token", "kv2_read_missing", "FAIL  secrets vault: "},
	}
	fixes := map[string]string{
		"policy refuses the path": "deploy/vault/provisioner.hcl is the policy it needs",
		"sealed":                  "check that the backend is reachable",
		"token refused":           "check --vault-addr and the auth settings",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := vaulttest.NewServer(t)
			srv.Handle("GET", "/v1/auth/token/lookup-self", recs.Get(t, tc.lookup))
			srv.Handle("GET", probe, recs.Get(t, tc.read))
			cfg := config.Default()
			cfg.NATSURL = "nats://127.0.0.1:1" // not what this test is about: fails fast
			cfg.SecretsDir = ""
			cfg.Vault.Addr = srv.URL
			cfg.Vault.Token = secret.New("hvs.doctor-test-token")
			cfg.AirbyteURL = airbyteURL
			cfg.AirbyteClientID = sandbox.DefaultClientID
			cfg.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
			cfg.SecretPathPolicy = "customers/{workspace_name}/"
			cfg.MetricsAddr = ""
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			rep := doctor.Run(context.Background(), cfg, doctor.Options{Timeout: 3 * time.Second})
			var out bytes.Buffer
			rep.Write(&out)
			var line string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "secrets vault:") {
					line = l
				}
			}
			if !strings.HasPrefix(line, tc.want) {
				t.Fatalf("vault line %q, want it to start with %q\n%s", line, tc.want, out.String())
			}
			if fix := fixes[tc.name]; fix != "" && !strings.Contains(line, fix) {
				t.Errorf("vault line %q does not say %q", line, fix)
			}
			if srv.Count("GET", probe) == 0 && tc.lookup == "token_lookup_self" {
				t.Error("doctor did not read under the path policy")
			}
			if strings.Contains(out.String(), "hvs.doctor-test-token") {
				t.Fatal("doctor printed the token")
			}
		})
	}
}
