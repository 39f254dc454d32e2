package vault_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// writeFiles creates files (relative path -> content) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func newStore(t *testing.T, cfg vault.Config) *vault.Store {
	t.Helper()
	s, err := vault.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func revealed(f secret.Fields) map[string]string {
	m := map[string]string{}
	f.RevealEach(func(k, v string) { m[k] = v })
	return m
}

// wantCode checks err is one of the package's typed errors with the given code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var coded interface {
		Code() string
		Retryable() bool
	}
	if !errors.As(err, &coded) {
		t.Fatalf("error %v (%T) has no code, want %s", err, err, code)
	}
	if coded.Code() != code {
		t.Fatalf("code %s (%v), want %s", coded.Code(), err, code)
	}
	if coded.Retryable() != (code == vault.CodeUnavailable) {
		t.Fatalf("%s: retryable %v", code, coded.Retryable())
	}
}

func TestFileBackend(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"customers/acme/github.json":   `{"token": "ghp_file_0001"}`,
		"customers/acme/hubspot.yaml":  "client_id: cid-file\nclient_secret: csecret-file\nrefresh_token: rt-file\n",
		"customers/acme/extra.yml":     "token: ghp_file_0002\noption_title: PAT Credentials\n",
		"customers/acme/partial.json":  `{"client_id": "cid-file", "client_secret": "csecret-file"}`,
		"customers/acme/number.yaml":   "token: 12345\n",
		"customers/acme/emptytok.json": `{"token": ""}`,
		"customers/acme/array.json":    `["ghp_file_0003"]`,
		"customers/acme/broken.json":   `{"token": "ghp_file_0004"`,
		"customers/acme/yaml.json":     "token: ghp_file_0005\n",
		"customers/acme/nested.json":   `{"token": "ghp_file_0006", "extra": {"a": 1}}`,
		"customers/acme/null.json":     `null`,
		"customers/acme/dir.json/x":    `{}`,
	})
	writeFiles(t, outside, map[string]string{"globex.json": `{"token": "ghp_outside_0001"}`})
	if err := os.Symlink(filepath.Join(outside, "globex.json"), filepath.Join(dir, "customers/acme/escape.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "customers/escapedir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("github.json", filepath.Join(dir, "customers/acme/alias.json")); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, vault.Config{FileDir: dir})

	tests := []struct {
		ref  string
		want map[string]string
		code string
	}{
		{ref: "file:customers/acme/github.json", want: map[string]string{"token": "ghp_file_0001"}},
		{ref: "file:customers/acme/github.json#token", want: map[string]string{"token": "ghp_file_0001"}},
		{ref: "file:customers/acme/hubspot.yaml", want: map[string]string{"client_id": "cid-file", "client_secret": "csecret-file", "refresh_token": "rt-file"}},
		{ref: "file:customers/acme/extra.yml", want: map[string]string{"token": "ghp_file_0002", "option_title": "PAT Credentials"}},
		{ref: "file:customers/acme/alias.json", want: map[string]string{"token": "ghp_file_0001"}},
		{ref: "file:customers/acme/missing.json", code: vault.CodeNotFound},
		{ref: "file:customers/nobody/github.json", code: vault.CodeNotFound},
		{ref: "file:customers/acme/github.json#nope", code: vault.CodeNotFound},
		{ref: "file:customers/acme/dir.json", code: vault.CodeNotFound},
		{ref: "file:customers/acme/escape.json", code: vault.CodePermissionDenied},
		{ref: "file:customers/escapedir/globex.json", code: vault.CodePermissionDenied},
		{ref: "file:customers/acme/github.json/x.json", code: vault.CodePermissionDenied},
		{ref: "file:customers/acme/hubspot.yaml#client_id", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/partial.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/number.yaml", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/emptytok.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/array.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/broken.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/yaml.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/nested.json", code: vault.CodeInvalidCredentials},
		{ref: "file:customers/acme/null.json", code: vault.CodeInvalidCredentials},
		{ref: "env:ACME", code: vault.CodeInvalidRef},
		{ref: "vault:customers/acme/github", code: vault.CodeInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			ref, err := vault.ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(t.Context(), ref)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := revealed(got); !mapsEqual(m, tt.want) {
				t.Fatalf("got fields %v, want %v", got.Names(), tt.want)
			}
		})
	}
}

func TestFileBackendUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file modes do not deny reads")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/locked.json": `{"token": "ghp_locked"}`})
	if err := os.Chmod(filepath.Join(dir, "a/locked.json"), 0); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, vault.Config{FileDir: dir})
	_, err := s.Get(t.Context(), vault.Ref{Scheme: "file", Path: "a/locked.json"})
	wantCode(t, err, vault.CodePermissionDenied)
}

func TestEnvBackend(t *testing.T) {
	env := map[string]string{
		"PROV_ACME_GITHUB":  `{"token": "ghp_env_0001"}`,
		"PROV_ACME_HUBSPOT": `{"client_id": "cid-env", "client_secret": "csecret-env", "refresh_token": "rt-env"}`,
		"PROV_ACME_BARE":    "ghp_env_bare_0002",
		"PROV_ACME_EMPTY":   "",
		"PROV_ACME_BROKEN":  `{"token": "ghp_env_0003"`,
		"OTHER_GITHUB":      `{"token": "ghp_env_other_0004"}`,
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s := newStore(t, vault.Config{EnvEnabled: true, EnvPrefix: "PROV_", LookupEnv: lookup})

	tests := []struct {
		ref  string
		want map[string]string
		code string
	}{
		{ref: "env:PROV_ACME_GITHUB", want: map[string]string{"token": "ghp_env_0001"}},
		{ref: "env:PROV_ACME_HUBSPOT", want: map[string]string{"client_id": "cid-env", "client_secret": "csecret-env", "refresh_token": "rt-env"}},
		{ref: "env:PROV_ACME_BARE#token", want: map[string]string{"token": "ghp_env_bare_0002"}},
		{ref: "env:PROV_ACME_GITHUB#token", want: map[string]string{"token": `{"token": "ghp_env_0001"}`}},
		{ref: "env:PROV_ACME_MISSING", code: vault.CodeNotFound},
		{ref: "env:PROV_ACME_BARE", code: vault.CodeInvalidCredentials},
		{ref: "env:PROV_ACME_EMPTY#token", code: vault.CodeInvalidCredentials},
		{ref: "env:PROV_ACME_EMPTY", code: vault.CodeInvalidCredentials},
		{ref: "env:PROV_ACME_BROKEN", code: vault.CodeInvalidCredentials},
		{ref: "env:PROV_ACME_BARE#client_id", code: vault.CodeInvalidCredentials},
		{ref: "env:OTHER_GITHUB", code: vault.CodeForbiddenRef},
		{ref: "file:x.json", code: vault.CodeInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			ref, err := vault.ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(t.Context(), ref)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := revealed(got); !mapsEqual(m, tt.want) {
				t.Fatalf("got fields %v", got.Names())
			}
		})
	}
}

func TestEnvBackendReadsProcessEnvironment(t *testing.T) {
	t.Setenv("PROVISIONER_VAULT_TEST_GITHUB", `{"token": "ghp_setenv_0001"}`)
	s := newStore(t, vault.Config{EnvEnabled: true})
	got, err := s.Get(t.Context(), vault.Ref{Scheme: "env", Path: "PROVISIONER_VAULT_TEST_GITHUB"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Get("token"); v.Reveal() != "ghp_setenv_0001" {
		t.Fatal("wrong token")
	}
}

func TestCredentialsErrorsNameFieldsOnly(t *testing.T) {
	tests := []struct {
		body    string
		missing []string
	}{
		{`{}`, []string{"token"}},
		{`{"password": "pw_0001"}`, []string{"token"}},
		{`{"client_id": "cid_0001"}`, []string{"client_secret", "refresh_token"}},
		{`{"client_id": "cid_0001", "client_secret": "", "refresh_token": "rt_0001"}`, []string{"client_secret"}},
		{`{"token": 7, "client_id": "cid_0001"}`, []string{"token"}},
		{`{"email": "me@example.com"}`, []string{"api_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			s := newStore(t, vault.Config{EnvEnabled: true, LookupEnv: func(string) (string, bool) { return tt.body, true }})
			_, err := s.Get(t.Context(), vault.Ref{Scheme: "env", Path: "X"})
			var ice *vault.InvalidCredentialsError
			if !errors.As(err, &ice) {
				t.Fatalf("Get = %v", err)
			}
			if !slices.Equal(ice.Missing, tt.missing) {
				t.Fatalf("missing %v, want %v", ice.Missing, tt.missing)
			}
			for _, leak := range []string{"0001", "pw_", "cid_", "rt_"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("error %q shows a value", err)
				}
			}
		})
	}
}

// TestCredentialShapesOfRealConnectors: every auth scheme the sandbox's catalog (and Airbyte's
// connectors) takes is accepted whole, with extra fields kept.
func TestCredentialShapesOfRealConnectors(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"token", `{"token": "tok_0001"}`},
		{"GitHub personal access token", `{"personal_access_token": "ghp_0001", "option_title": "PAT Credentials"}`},
		{"HubSpot private app", `{"access_token": "pat-na1-0001"}`},
		{"Zendesk API token", `{"email": "me@example.com", "api_token": "zd_0001"}`},
		{"OAuth", `{"client_id": "cid_0001", "client_secret": "cs_0001", "refresh_token": "rt_0001"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, vault.Config{EnvEnabled: true, LookupEnv: func(string) (string, bool) { return tt.body, true }})
			got, err := s.Get(t.Context(), vault.Ref{Scheme: "env", Path: "X"})
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]string
			if err := json.Unmarshal([]byte(tt.body), &want); err != nil {
				t.Fatal(err)
			}
			if m := revealed(got); !mapsEqual(m, want) {
				t.Fatalf("got fields %v", got.Names())
			}
		})
	}
}

func TestResolveValue(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"provisioner/airbyte.yaml": "client_id: app-id\nclient_secret: app-secret-0001\n"})
	env := map[string]string{"AIRBYTE_CLIENT_SECRET": "app-secret-env-0002"}
	s := newStore(t, vault.Config{FileDir: dir, EnvEnabled: true,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})

	tests := []struct {
		ref, want, code string
	}{
		{ref: "file:provisioner/airbyte.yaml#client_secret", want: "app-secret-0001"},
		{ref: "env:AIRBYTE_CLIENT_SECRET#client_secret", want: "app-secret-env-0002"},
		{ref: "file:provisioner/airbyte.yaml", code: vault.CodeInvalidRef},
		{ref: "file:provisioner/airbyte.yaml#nope", code: vault.CodeNotFound},
		{ref: "env:NOPE#x", code: vault.CodeNotFound},
		{ref: "nonsense", code: vault.CodeInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			v, err := vault.ResolveValue(t.Context(), s, tt.ref)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Reveal() != tt.want {
				t.Fatal("wrong value")
			}
		})
	}
}

func TestBackend(t *testing.T) {
	s := newStore(t, vault.Config{EnvEnabled: true})
	for ref, want := range map[vault.Ref]string{
		{Scheme: "vault", Path: "a"}: "vault",
		{Scheme: "file", Path: "a"}:  "file",
		{Scheme: "env", Path: "A"}:   "env",
		{Scheme: "s3", Path: "a"}:    "unknown",
	} {
		if got := s.Backend(ref); got != want {
			t.Errorf("Backend(%v) = %q, want %q", ref, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tok := secret.New("hvs.root")
	tests := []struct {
		name    string
		cfg     vault.Config
		setting string // "" = valid
	}{
		{"file only", vault.Config{FileDir: "/x"}, ""},
		{"env only", vault.Config{EnvEnabled: true, EnvPrefix: "PROV_"}, ""},
		{"vault token", vault.Config{Vault: vault.VaultConfig{Addr: "https://vault:8200", Token: tok}}, ""},
		{"vault approle", vault.Config{Vault: vault.VaultConfig{Addr: "http://vault:8200", Auth: "approle", RoleID: "r", SecretID: secret.New("s")}}, ""},
		{"vault kubernetes", vault.Config{Vault: vault.VaultConfig{Addr: "http://vault:8200", Auth: "kubernetes", K8sRole: "provisioner"}}, ""},
		{"nothing", vault.Config{}, "secrets-dir"},
		{"bad env prefix", vault.Config{EnvEnabled: true, EnvPrefix: "A-"}, "secrets-env-prefix"},
		{"bad addr", vault.Config{Vault: vault.VaultConfig{Addr: "vault:8200", Token: tok}}, "vault-addr"},
		{"bad auth", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Auth: "ldap"}}, "vault-auth"},
		{"no token", vault.Config{Vault: vault.VaultConfig{Addr: "http://v"}}, "vault-token"},
		{"no role id", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Auth: "approle", SecretID: secret.New("s")}}, "vault-role-id"},
		{"no secret id", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Auth: "approle", RoleID: "r"}}, "vault-secret-id"},
		{"no k8s role", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Auth: "kubernetes"}}, "vault-k8s-role"},
		{"bad mount", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Token: tok, Mount: "/secret/"}}, "vault-mount"},
		{"cert without key", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Token: tok, ClientCert: "c.pem"}}, "vault-client-cert"},
		{"negative timeout", vault.Config{Vault: vault.VaultConfig{Addr: "http://v", Token: tok, Timeout: -1}}, "vault timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.setting == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.setting+":") {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.setting)
			}
			if strings.Contains(err.Error(), "hvs.root") {
				t.Fatal("error shows the token")
			}
		})
	}
}

func TestNewFailsOnMissingFileDir(t *testing.T) {
	_, err := vault.New(context.Background(), vault.Config{FileDir: filepath.Join(t.TempDir(), "nope")}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), "secrets-dir:") {
		t.Fatalf("New = %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
