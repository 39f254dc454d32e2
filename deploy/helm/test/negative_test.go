package helmtest

import (
	"strings"
	"testing"
)

// minimalValues are the least a release needs (the defaults refuse to render).
const minimalValues = chartDir + "/ci/minimal-values.yaml"

// TestRenderRefuses proves that invalid values fail the render with a message naming the value,
// both for the schema and for the cross-field rules in _helpers.tpl.
func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string // substrings the error must contain
	}{
		// What `provisioner run` would refuse, refused before anything is deployed.
		{"the defaults alone", nil, []string{"airbyte.clientId is required"}},
		{"no Airbyte client id", []string{"--set", "airbyte.clientId="}, []string{"airbyte.clientId is required: the Airbyte application's client id"}},
		{"no secret backend", []string{"--set", "fileSecrets.existingSecret="},
			[]string{"no secret backend: set vault.enabled=true (with vault.addr), fileSecrets.existingSecret or envSecrets.enabled=true"}},
		{"no path policy", []string{"--set", "config.secretPathPolicy="}, []string{"config.secretPathPolicy is required", `"none" turns tenant isolation off`}},
		{"KEDA without an account", []string{"--set", "autoscaling.keda.enabled=true"}, []string{"autoscaling.keda.account is required"}},

		{"HPA and KEDA both on", []string{"--set", "autoscaling.hpa.enabled=true", "--set", "autoscaling.keda.enabled=true", "--set", "autoscaling.keda.account=A"},
			[]string{"autoscaling.hpa.enabled and autoscaling.keda.enabled are both true"}},
		{"all-on values plus KEDA", []string{"-f", chartDir + "/ci/all-on-values.yaml", "-f", chartDir + "/ci/keda-values.yaml"},
			[]string{"enable only one"}},
		{"grace period equal to the shutdown timeout", []string{"--set", "terminationGracePeriodSeconds=25"},
			[]string{"terminationGracePeriodSeconds (25s) must be greater than config.shutdownTimeout (25s)"}},
		{"shutdown timeout in minutes above the grace period", []string{"--set", "config.shutdownTimeout=1m5s"},
			[]string{"config.shutdownTimeout (1m5s)"}},
		{"Airbyte timeout not below AckWait", []string{"--set", "airbyte.timeout=30s"},
			[]string{"airbyte.timeout (30s) must be below config.ackWait (30s)"}},
		{"max ack pending below concurrency", []string{"--set", "config.maxAckPending=8"},
			[]string{"config.maxAckPending must be at least config.concurrency"}},
		{"no Airbyte client secret", []string{"--set", "airbyte.clientSecret.existingSecret="},
			[]string{"airbyte.clientSecret.existingSecret or airbyte.clientSecret.ref is required"}},
		{"Vault without an address", []string{"--set", "vault.enabled=true"},
			[]string{"vault.addr is required"}},
		{"Vault token auth without a Secret", []string{"--set", "vault.enabled=true", "--set", "vault.addr=https://vault:8200", "--set", "vault.auth.method=token"},
			[]string{"vault.auth.token.existingSecret is required"}},
		{"NATS creds and user together", []string{"--set", "nats.auth.existingSecret=n", "--set", "nats.auth.credsKey=c", "--set", "nats.auth.userKey=u"},
			[]string{"use one of credsKey"}},
		{"NATS client cert without key", []string{"--set", "nats.tls.existingSecret=t", "--set", "nats.tls.certKey=tls.crt"},
			[]string{"nats.tls.certKey and nats.tls.keyKey go together"}},

		// The schema.
		{"negative replicas", []string{"--set", "replicaCount=-1"}, []string{"replicaCount", "minimum"}},
		{"unknown top-level value", []string{"--set", "replicas=3"}, []string{"replicas"}},
		{"unknown nested value", []string{"--set", "config.concurency=3"}, []string{"concurency"}},
		{"log level outside the enum", []string{"--set", "config.logLevel=verbose"}, []string{"logLevel"}},
		{"lookup outside the enum", []string{"--set", "config.lookup=never"}, []string{"lookup"}},
		{"duration without a unit", []string{"--set-string", "config.shutdownTimeout=25"}, []string{"shutdownTimeout"}},
		{"concurrency as a string", []string{"--set-string", "config.concurrency=16"}, []string{"concurrency"}},
		{"NATS URL with an HTTP scheme", []string{"--set", "nats.url=http://nats:4222"}, []string{"nats", "url"}},
		{"empty NATS URL", []string{"--set", "nats.url="}, []string{"url"}},
		{"stream name with a dot", []string{"--set", "config.requestsStream=a.b"}, []string{"requestsStream"}},
		{"unknown Vault auth method", []string{"--set", "vault.auth.method=ldap"}, []string{"method"}},
		{"image pull policy outside the enum", []string{"--set", "image.pullPolicy=Sometimes"}, []string{"pullPolicy"}},
		{"malformed digest", []string{"--set", "image.digest=latest"}, []string{"digest"}},
		{"stream replicas above 5", []string{"--set", "config.streamReplicas=7"}, []string{"streamReplicas"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args != nil { // on top of the least a release needs, so that only tc's mistake is left
				args = append([]string{"-f", minimalValues}, args...)
			}
			out, err := render(t, args...)
			if err == nil {
				t.Fatalf("render succeeded, want an error containing %q; rendered %d bytes", tc.wantErr, len(out))
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestLint runs helm lint --strict with the default values and with every CI values file.
func TestLint(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"minimal values", []string{"-f", minimalValues}},
		{"every optional part on", []string{"-f", chartDir + "/ci/all-on-values.yaml"}},
		{"KEDA", []string{"-f", chartDir + "/ci/keda-values.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}, tc.args...)
			if out, err := runHelm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestConfigChecksumRollsPods proves that a configuration change changes the pod template, so
// that helm upgrade restarts the pods, and that an unrelated change does not.
func TestConfigChecksumRollsPods(t *testing.T) {
	checksum := func(args ...string) string {
		t.Helper()
		out, err := render(t, args...)
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "checksum/config: "); ok {
				return v
			}
		}
		t.Fatal("no checksum/config annotation")
		return ""
	}
	base := checksum("-f", minimalValues)
	tests := []struct {
		name     string
		args     []string
		wantSame bool
	}{
		{"log level changed", []string{"--set", "config.logLevel=debug"}, false},
		{"Airbyte URL changed", []string{"--set", "airbyte.url=https://airbyte.example.com"}, false},
		{"replica count changed", []string{"--set", "replicaCount=5"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checksum(append([]string{"-f", minimalValues}, tc.args...)...); (got == base) != tc.wantSame {
				t.Errorf("checksum %s vs base %s, want same=%v", got, base, tc.wantSame)
			}
		})
	}
}
