package config_test

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/config"
)

func valid() config.Config {
	c := config.Default()
	c.AirbyteClientID = "id"
	c.AirbyteClientSecret.UnmarshalText([]byte("s3cr3t-value"))
	c.SecretsDir = "/var/lib/provisioner/secrets"
	c.SecretPathPolicy = "customers/{workspace_name}/"
	return c
}

func TestDefaultsPlusCredentialsAndABackendAreValid(t *testing.T) {
	for name, backend := range map[string]func(*config.Config){
		"file": func(c *config.Config) {},
		"env":  func(c *config.Config) { c.SecretsDir, c.SecretsEnv = "", true },
		"vault": func(c *config.Config) {
			c.SecretsDir, c.Vault.Addr = "", "https://vault:8200"
			c.Vault.Token.UnmarshalText([]byte("hvs.x"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := valid()
			backend(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The file backend is off unless --secrets-dir is given: the defaults turn no backend on, and
// the error names the flags that do.
func TestFileBackendOffByDefault(t *testing.T) {
	c := config.Default()
	if c.SecretsDir != "" {
		t.Fatalf("default --secrets-dir %q", c.SecretsDir)
	}
	c.AirbyteClientID = "id"
	c.AirbyteClientSecret.UnmarshalText([]byte("s3cr3t-value"))
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "set --secrets-dir, --secrets-env or --vault-addr") {
		t.Fatalf("Validate() = %v", err)
	}
	if vc := c.VaultStoreConfig(); vc.FileDir != "" {
		t.Fatal("the store gets a file directory")
	}
}

// Every error about a secret backend setting names flags of run, and only those.
func TestSecretBackendErrorsNameRealFlags(t *testing.T) {
	flags := map[string]bool{}
	c := config.Default()
	c.FlagSet("run").VisitAll(func(f *flag.Flag) { flags[f.Name] = true })
	flagRef := regexp.MustCompile(`--([a-z0-9-]+)|^([a-z0-9-]+):`)
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"no backend", func(c *config.Config) { c.SecretsDir = "" }},
		{"env prefix", func(c *config.Config) { c.SecretsEnv, c.SecretsEnvPrefix = true, "A-" }},
		{"vault addr", func(c *config.Config) { c.Vault.Addr = "vault:8200" }},
		{"vault token", func(c *config.Config) { c.Vault.Addr = "http://v" }},
		{"vault role id", func(c *config.Config) { c.Vault.Addr, c.Vault.Auth = "http://v", "approle" }},
		{"vault k8s role", func(c *config.Config) { c.Vault.Addr, c.Vault.Auth = "http://v", "kubernetes" }},
		{"vault auth", func(c *config.Config) { c.Vault.Addr, c.Vault.Auth = "http://v", "ldap" }},
		{"vault mount", func(c *config.Config) { c.Vault.Addr, c.Vault.Mount = "http://v", "/x/" }},
		{"vault client cert", func(c *config.Config) {
			c.Vault.Addr, c.Vault.ClientCert = "http://v", "c.pem"
			c.Vault.Token.UnmarshalText([]byte("hvs.x"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			named := 0
			for _, line := range strings.Split(err.Error(), "\n") {
				for _, m := range flagRef.FindAllStringSubmatch(line, -1) {
					name := m[1] + m[2]
					named++
					if !flags[name] {
						t.Errorf("%q names --%s, which is no flag", line, name)
					}
				}
			}
			if named == 0 {
				t.Fatalf("%q names no flag", err)
			}
		})
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"client id", func(c *config.Config) { c.AirbyteClientID = "" }, "--airbyte-client-id (PROVISIONER_AIRBYTE_CLIENT_ID)"},
		{"nats url scheme", func(c *config.Config) { c.NATSURL = "http://nats:4222" }, "--nats-url"},
		{"embedded listen", func(c *config.Config) { c.NATSListen = "nope" }, "--nats-listen"},
		{"concurrency", func(c *config.Config) { c.Concurrency = 0 }, "--concurrency"},
		{"ack wait", func(c *config.Config) { c.AckWait = 0 }, "--ack-wait"},
		{"timeout above ack wait", func(c *config.Config) { c.AirbyteTimeout = time.Minute }, "--airbyte-timeout"},
		{"both secrets", func(c *config.Config) { c.AirbyteClientSecretRef = "vault:a/b#c" }, "--airbyte-client-secret"},
		{"bad secret ref", func(c *config.Config) { c.AirbyteClientSecret = valid().NATSToken; c.AirbyteClientSecretRef = "nope" }, "--airbyte-client-secret-ref"},
		{"no backend", func(c *config.Config) { c.SecretsDir = "" }, "--secrets-dir"},
		{"vault auth", func(c *config.Config) { c.Vault.Addr = "http://vault:8200"; c.Vault.Auth = "magic" }, "vault-auth"},
		{"policy", func(c *config.Config) { c.SecretPathPolicy = "/abs/{workspace_name}" }, "--secret-path-policy"},
		{"no policy", func(c *config.Config) { c.SecretPathPolicy = "" }, "--secret-path-policy (PROVISIONER_SECRET_PATH_POLICY): required"},
		{"lookup", func(c *config.Config) { c.Lookup = "sometimes" }, "--lookup"},
		{"connector token", func(c *config.Config) { c.AirbyteConnectorToken = "widget" }, "--airbyte-connector-token"},
		{"log format", func(c *config.Config) { c.LogFormat = "xml" }, "--log-format"},
		{"stream name", func(c *config.Config) { c.RequestsStream = "A.B" }, "--requests-stream"},
		{"max ack pending", func(c *config.Config) { c.MaxAckPending = 1 }, "--max-ack-pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to name %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Fatal("error shows the secret")
			}
		})
	}
}

func TestEnvThenFlags(t *testing.T) {
	env := map[string]string{
		"PROVISIONER_CONCURRENCY":           "32",
		"PROVISIONER_ACK_WAIT":              "45s",
		"PROVISIONER_AIRBYTE_CLIENT_SECRET": "from-env-secret",
		"PROVISIONER_NATS_URL":              "nats://env:4222",
	}
	c := config.Default()
	fs := c.FlagSet("run")
	if err := c.Parse(fs, []string{"--nats-url", "nats://flag:4222"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 32 || c.AckWait != 45*time.Second || c.NATSURL != "nats://flag:4222" || c.AirbyteClientSecret.Reveal() != "from-env-secret" {
		t.Fatalf("got %+v", c)
	}
	// -help output never shows a secret's value
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if strings.Contains(help.String(), "from-env-secret") {
		t.Fatal("help shows the secret")
	}
}

func TestBadEnvValueNamesTheVariableNotTheValue(t *testing.T) {
	c := config.Default()
	fs := c.FlagSet("run")
	fs.SetOutput(new(strings.Builder))
	err := c.Parse(fs, nil, func(k string) (string, bool) {
		if k == "PROVISIONER_MAX_DELIVER" {
			return "lots-and-lots", true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "PROVISIONER_MAX_DELIVER") || strings.Contains(err.Error(), "lots-and-lots") {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		t.Fatal("not a help request")
	}
}

// Every PROVISIONER_* variable the Helm chart sets is a setting of run.
func TestHelmChartSetsOnlyRealSettings(t *testing.T) {
	known := map[string]bool{}
	c := config.Default()
	c.FlagSet("run").VisitAll(func(f *flag.Flag) { known[config.EnvName(f.Name)] = true })
	var files []string // every template, tests/ included
	err := filepath.WalkDir(filepath.Join("..", "..", "deploy", "helm", "provisioner", "templates"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no chart templates: %v", err)
	}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`PROVISIONER_[A-Z0-9_]+`).FindAllString(string(b), -1) {
			seen++
			if !known[name] {
				t.Errorf("%s sets %s, which is not a setting of provisioner run", filepath.Base(f), name)
			}
		}
	}
	if seen == 0 {
		t.Fatal("the chart sets no PROVISIONER_* variable")
	}
}

// Tenant isolation is on unless turned off in so many words.
func TestSecretPathPolicyIsRequired(t *testing.T) {
	tests := []struct {
		name          string
		policy        string
		wantErr       string // "" = valid
		wantUsesNames bool
	}{
		{"missing", "", "or --secret-path-policy=none", false},
		{"explicitly none", config.NoSecretPathPolicy, "", false},
		{"per workspace", "customers/{workspace_name}/", "", true},
		{"shared prefix", "shared/", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			c.SecretPathPolicy = tc.policy
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "customers/{workspace_name}/") {
					t.Fatalf("Validate() = %v, want a message saying how to choose (containing %q)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.PathPolicy()
			if err != nil {
				t.Fatal(err)
			}
			if p.UsesWorkspaceName() != tc.wantUsesNames {
				t.Fatalf("UsesWorkspaceName = %v", p.UsesWorkspaceName())
			}
		})
	}
}
