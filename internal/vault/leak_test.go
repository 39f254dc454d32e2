package vault_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// TestNoSecretInErrorsOrLogs drives every error path of every backend with secrets present
// nearby (in the file, the variable, the Vault response, the configuration) and scans each
// error in every text form, and every log line, for them.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken(rootToken)
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("token_renew_self"), h.rec("kv2_read"),
		h.rec("kv2_read_oauth"), h.rec("kv2_read_missing"), h.rec("kv2_read_forbidden"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/deleted", h.rec("kv2_read_deleted"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/sealed", h.rec("kv2_read_sealed"))

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"customers/acme/partial.json": `{"client_id": "cid-file", "client_secret": "csecret-file"}`,
		"customers/acme/broken.json":  `{"token": "ghp_file_broken"`,
		"customers/acme/broken.yaml":  "token: [ghp_file_yaml\n",
		"customers/acme/bare.yaml":    "ghp_file_bare_yaml",
		"customers/acme/number.yaml":  "ghp_file_key: 1\n",
		"customers/acme/big.json":     `{"token": "ghp_file_big", "pad": "` + strings.Repeat("x", 1<<20) + `"}`,
	})
	if err := os.Symlink(filepath.Join(t.TempDir(), "ghp_outside.json"), filepath.Join(dir, "customers/acme/link.json")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PROV_BARE":    "ghp_env_bare",
		"PROV_BROKEN":  `{"token": "ghp_env_broken"`,
		"PROV_PARTIAL": `{"client_id": "cid-env", "refresh_token": "rt-env"}`,
		"OTHER":        `{"token": "ghp_env_other"}`,
	}
	cfg := h.tokenConfig()
	cfg.FileDir = dir
	cfg.EnvEnabled, cfg.EnvPrefix = true, "PROV_"
	cfg.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s := h.mustStore(cfg)
	policy, err := vault.NewPolicy("customers/{workspace_name}/")
	if err != nil {
		t.Fatal(err)
	}

	var errs []error
	for _, ref := range []string{
		"vault:customers/acme/hubspot#client_id", "vault:customers/acme/github#client_secret",
		"vault:customers/acme/salesforce", "vault:customers/acme/deleted", "vault:other/thing",
		"vault:customers/acme/sealed", "vault:customers/acme/unrouted",
		"file:customers/acme/partial.json", "file:customers/acme/broken.json", "file:customers/acme/broken.yaml",
		"file:customers/acme/bare.yaml", "file:customers/acme/number.yaml", "file:customers/acme/big.json",
		"file:customers/acme/link.json", "file:customers/acme/none.json",
		"env:PROV_BARE", "env:PROV_BROKEN", "env:PROV_PARTIAL", "env:OTHER", "env:PROV_NONE",
	} {
		r, err := vault.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), r); err == nil {
			t.Errorf("Get(%s) succeeded", ref)
		} else {
			errs = append(errs, err)
		}
	}
	for _, bad := range []string{"ghp_pasted_secret_0001", "vault:customers/acme/ghp pasted", "env:ghp-pasted#x", "s3:ghp_pasted"} {
		_, err := vault.ParseRef(bad)
		errs = append(errs, err)
		_, err = vault.ResolveValue(t.Context(), s, bad)
		errs = append(errs, err)
	}
	errs = append(errs, policy.Check(vault.Ref{Scheme: "vault", Path: "customers/globex/x"}, "acme"))
	secretValues := slices.Concat(secretValues, []string{"ghp_pasted"})

	var logs strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, err := range errs {
		if err == nil {
			t.Fatal("an error path succeeded")
		}
		logger.Error("fetch failed", "err", err)
		for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			for _, v := range secretValues {
				if strings.Contains(text, v) {
					t.Errorf("error shows secret %q: %s", v, text)
				}
			}
		}
	}
	for _, v := range secretValues {
		if strings.Contains(logs.String(), v) {
			t.Errorf("log shows secret %q", v)
		}
	}
}

// credentialsError is the whole shape of an invalid credentials message: fixed text, field
// names from the fixed set, counts. Anything else would be content from the secret.
var credentialsError = regexp.MustCompile(`^secret env:X is not valid credentials` +
	`(: (not a JSON or YAML object|want token, or client_id, client_secret and refresh_token|\d+ other field\(s\) are not non-empty strings))?` +
	`(: missing or empty (token|client_id|client_secret|refresh_token)(, (token|client_id|client_secret|refresh_token))*)?$`)

// FuzzCredentials feeds arbitrary secret content through the env (JSON) and file (YAML)
// decoders and the credentials check: no panic, and an error never carries the content.
func FuzzCredentials(f *testing.F) {
	for _, s := range []string{
		`{"token": "t"}`, `{"client_id": "a", "client_secret": "b", "refresh_token": "c"}`,
		`{"token": ""}`, `{"token": 1}`, `[]`, `null`, `"x"`, "token: t\n", "a: [b\n", `{"token": "t", "x": {}}`,
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		if err := os.WriteFile(filepath.Join(dir, "X.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := vault.New(t.Context(), vault.Config{FileDir: dir, EnvEnabled: true,
			LookupEnv: func(string) (string, bool) { return content, true }}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, ref := range []vault.Ref{{Scheme: "env", Path: "X"}, {Scheme: "file", Path: "X.yaml"}} {
			fields, err := s.Get(t.Context(), ref)
			if err != nil {
				msg := strings.Replace(err.Error(), "file:X.yaml", "env:X", 1)
				if !credentialsError.MatchString(msg) {
					t.Fatalf("unexpected error text: %q", msg)
				}
				continue
			}
			fields.RevealEach(func(name, value string) {
				if value == "" {
					t.Fatalf("empty field %s accepted", name)
				}
			})
			_, hasTok := fields.Get("token")
			_, hasID := fields.Get("client_id")
			if !hasTok && !hasID {
				t.Fatal("accepted credentials without token or client_id")
			}
			if fmt.Sprint(fields) != secret.Redacted {
				t.Fatal("fields print")
			}
		}
	})
}

// TestNoSecretInTokenLifeLogs drives the token's whole life through its failures (sealed and
// refused logins, a capped renewal, a revoked token, a KV v1 mount, an unreachable server) and
// scans every log line, every state reported (served by /readyz) and every error, in every
// text form, for secrets, tokens, the secret id and the role id.
func TestNoSecretInTokenLifeLogs(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, h.rec("approle_login_sealed"), login.WithAuth(t, "token-A-0001", 60, true),
		h.rec("approle_login_bad"), login.WithAuth(t, "token-B-0002", 60, true))
	h.srv.Handle("POST", renewSelf, h.rec("token_renew_self_capped"))
	h.srv.Handle("GET", "/v1/kv1/data/customers/acme/hubspot", h.rec("kv2_read_missing"))
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("sys_ui_mounts_kv1"))
	cfg := h.appRoleConfig()
	cfg.Vault.Mount = "kv1"
	s := h.mustStore(cfg)

	var errs []error
	get := func() {
		r, err := vault.ParseRef("vault:customers/acme/hubspot")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), r); err != nil {
			errs = append(errs, err)
		}
	}
	get()                         // sealed at start-up
	h.clock.AdvanceToNextTimer(t) // login
	h.clock.NextTimer(t)
	get()                         // KV v1 mount
	h.clock.AdvanceToNextTimer(t) // capped renewal, login refused (HTTP 400)
	h.clock.AdvanceToNextTimer(t) // login again
	h.clock.NextTimer(t)
	h.srv.RequireToken("nobody")
	get() // revoked: lookup, login (the server then accepts the new token)
	h.srv.Close()
	get() // unreachable

	if len(errs) < 3 {
		t.Fatalf("only %d errors", len(errs))
	}
	texts := []string{h.logs.String()}
	for _, err := range errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	for _, st := range h.obs.Statuses() {
		texts = append(texts, fmt.Sprintf("%#v", st))
	}
	for _, text := range texts {
		for _, v := range secretValues {
			if strings.Contains(text, v) {
				t.Errorf("%q shows up in: %s", v, text)
			}
		}
	}
	for _, want := range []string{"Vault is sealed", "KV v1 mount", "login rejected (HTTP 400)", "token revoked or expired", "Vault unreachable"} {
		if !strings.Contains(strings.Join(texts, "\n"), want) {
			t.Errorf("nothing says %q", want)
		}
	}
}
