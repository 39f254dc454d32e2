package vault_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
	"github.com/provisioner-dev/provisioner/internal/vault/vaulttest"
)

const (
	recordings = "testdata/openbao-2.6.2-dev.json"
	// shapes are responses derived from the recordings for cases they lack (sealed logins,
	// revoked tokens, capped renewals, the KV preflight); each says so in its note
	shapes    = "testdata/openbao-2.6.2-shapes.json"
	rootToken = "hvs.test-root-token-0001"
	secretID  = "b9ebb7fe-1c1b-87e6-ff0c-adae7eec1758"
	roleID    = "2eff6816-e28e-7b2d-3109-907efa3d50dd"
	k8sJWT    = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"

	pathGithub  = "/v1/secret/data/customers/acme/github"
	pathHubspot = "/v1/secret/data/customers/acme/hubspot"
	lookupSelf  = "/v1/auth/token/lookup-self"
	renewSelf   = "/v1/auth/token/renew-self"
	appRoleIn   = "/v1/auth/approle/login"
	k8sIn       = "/v1/auth/kubernetes/login"
)

// secretValues are every secret the recordings and these tests use. None may appear in an
// error string or a log line.
var secretValues = []string{
	"ghp_example_not_real", "cid-example", "csecret-example", "rt-example",
	"s.ysHw37F0R8plOudbakIae8Ng", rootToken, secretID, roleID, k8sJWT, "token-A-0001", "token-B-0002", "token-C-",
	"ghp_file_", "ghp_env_", "ghp_outside", "ghp_locked", "app-secret", "cid-file", "csecret-file", "rt-file",
	"cid-env", "csecret-env", "rt-env",
}

// syncBuffer collects log output written by the store's background goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs a store against a replaying server and, when the test ends, scans every log
// line and every error the test reported through it for secret values.
type harness struct {
	t     *testing.T
	srv   *vaulttest.Server
	recs  vaulttest.Recordings
	clock *vaulttest.Clock
	obs   *vaulttest.Observer
	logs  *syncBuffer
	mu    sync.Mutex
	errs  []string
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, srv: vaulttest.NewServer(t), recs: vaulttest.MustLoad(t, recordings, shapes),
		clock: vaulttest.NewClock(), obs: &vaulttest.Observer{}, logs: &syncBuffer{}}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		assertNoSecrets(t, "logs", h.logs.String())
		for _, e := range h.errs {
			assertNoSecrets(t, "error", e)
		}
	})
	return h
}

func assertNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secretValues {
		if strings.Contains(text, s) {
			t.Errorf("%s contains secret %q: %s", what, s, text)
		}
	}
}

// logger logs as the worker does: JSON, under the component the worker gives the store.
func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "secrets")
}

// rec returns a named recording.
func (h *harness) rec(name string) vaulttest.Recording { return h.recs.Get(h.t, name) }

func (h *harness) tokenConfig() vault.Config {
	return vault.Config{Vault: vault.VaultConfig{Addr: h.srv.URL, Token: secret.New(rootToken)}}
}

// newStore builds a store on the harness's clock and observer.
func (h *harness) newStore(cfg vault.Config) (*vault.Store, error) {
	if cfg.Clock == nil {
		cfg.Clock = h.clock
	}
	if cfg.VaultObserver == nil {
		cfg.VaultObserver = h.obs
	}
	s, err := vault.New(h.t.Context(), cfg, h.logger())
	h.noteErr(err)
	if err == nil {
		h.t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

func (h *harness) mustStore(cfg vault.Config) *vault.Store {
	h.t.Helper()
	s, err := h.newStore(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) get(s *vault.Store, ref string) (map[string]string, error) {
	h.t.Helper()
	r, err := vault.ParseRef(ref)
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := s.Get(h.t.Context(), r)
	h.noteErr(err)
	if err != nil {
		return nil, err
	}
	return revealed(f), nil
}

func (h *harness) noteErr(err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, err.Error(), strings.ReplaceAll(strings.ReplaceAll(err.Error(), "\n", ""), "\t", ""))
}

// eventually waits for cond, failing after a generous deadline; it never asserts on timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestVaultTokenAuthReads(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken(rootToken)
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("token_renew_self"), h.rec("kv2_read"),
		h.rec("kv2_read_oauth"), h.rec("kv2_read_missing"), h.rec("kv2_read_forbidden"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/deleted", h.rec("kv2_read_deleted"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/destroyed", h.rec("kv2_read_destroyed"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/sealed", h.rec("kv2_read_sealed"))
	h.srv.Handle("GET", "/v1/secret/data/customers/acme/badtoken", h.rec("kv2_read_bad_token"))
	s := h.mustStore(h.tokenConfig())

	tests := []struct {
		ref    string
		want   map[string]string
		code   string
		detail string
	}{
		{ref: "vault:customers/acme/github", want: map[string]string{"token": "ghp_example_not_real_0001"}},
		{ref: "vault:customers/acme/github#token", want: map[string]string{"token": "ghp_example_not_real_0001"}},
		{ref: "vault:secret/data/customers/acme/github", want: map[string]string{"token": "ghp_example_not_real_0001"}},
		{ref: "vault:customers/acme/hubspot", want: map[string]string{"client_id": "cid-example", "client_secret": "csecret-example", "refresh_token": "rt-example"}},
		{ref: "vault:customers/acme/hubspot#client_secret", code: vault.CodeInvalidCredentials},
		{ref: "vault:customers/acme/github#nope", code: vault.CodeNotFound, detail: "no field nope"},
		{ref: "vault:customers/acme/salesforce", code: vault.CodeNotFound},
		{ref: "vault:customers/acme/deleted", code: vault.CodeNotFound, detail: "version deleted"},
		{ref: "vault:customers/acme/destroyed", code: vault.CodeNotFound, detail: "version destroyed"},
		{ref: "vault:other/thing", code: vault.CodePermissionDenied},
		{ref: "vault:customers/acme/badtoken", code: vault.CodePermissionDenied},
		{ref: "vault:customers/acme/sealed", code: vault.CodeUnavailable, detail: "sealed"},
		{ref: "vault:customers/acme/unrouted", code: vault.CodeUnavailable, detail: "HTTP 501"},
		{ref: "file:a.json", code: vault.CodeInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := h.get(s, tt.ref)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				if !strings.Contains(err.Error(), tt.detail) {
					t.Fatalf("error %q lacks %q", err, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !mapsEqual(got, tt.want) {
				t.Fatalf("got fields %v", got)
			}
		})
	}
	// the recorded token has an hour to live: it is renewed at two thirds of it
	if d := h.clock.AdvanceToNextTimer(t); d != 40*time.Minute {
		t.Fatalf("renewal after %s, want 40m", d)
	}
	h.clock.NextTimer(t) // the renewal is done once the next one is planned
	if n := h.srv.Count("POST", renewSelf); n != 1 {
		t.Fatalf("%d renewals, want 1", n)
	}
	for _, r := range h.srv.Requests() {
		if r.Token != rootToken {
			t.Errorf("%s %s sent another token", r.Method, r.Path)
		}
	}
}

func TestVaultUnknownTokenFailsNew(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("some-other-token")
	h.srv.HandleRecorded(h.rec("token_lookup_self"))
	_, err := h.newStore(h.tokenConfig())
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("New = %v, want a rejected login", err)
	}
}

func TestVaultNamespaceMountAndAPIPathForm(t *testing.T) {
	h := newHarness(t)
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("token_renew_self"))
	h.srv.Handle("GET", "/v1/kv/data/customers/acme/github", h.rec("kv2_read"))
	cfg := h.tokenConfig()
	cfg.Vault.Mount, cfg.Vault.Namespace = "kv", "team-a"
	s := h.mustStore(cfg)

	if _, err := h.get(s, "vault:customers/acme/github"); err != nil {
		t.Fatal(err)
	}
	_, err := h.get(s, "vault:secret/data/customers/acme/github")
	wantCode(t, err, vault.CodeInvalidRef)
	for _, r := range h.srv.Requests() {
		if r.Namespace != "team-a" {
			t.Errorf("%s %s: namespace %q", r.Method, r.Path, r.Namespace)
		}
	}
}

func TestVaultAppRoleLogin(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	h.srv.HandleRecorded(h.rec("approle_login"), h.rec("kv2_read_as_approle"), h.rec("token_renew_self"))
	s := h.mustStore(vault.Config{Vault: vault.VaultConfig{Addr: h.srv.URL, Auth: "approle",
		RoleID: roleID, SecretID: secret.New(secretID)}})

	got, err := h.get(s, "vault:customers/acme/hubspot")
	if err != nil {
		t.Fatal(err)
	}
	if got["client_secret"] != "csecret-example" {
		t.Fatal("wrong secret")
	}
	var login struct{ RoleID, SecretID string }
	for _, r := range h.srv.Requests() {
		if r.Path == appRoleIn {
			if err := json.Unmarshal(r.Body, &struct {
				RoleID   *string `json:"role_id"`
				SecretID *string `json:"secret_id"`
			}{&login.RoleID, &login.SecretID}); err != nil {
				t.Fatal(err)
			}
			if r.Token != "" {
				t.Error("login carried a token")
			}
		}
	}
	if login.RoleID != roleID || login.SecretID != secretID {
		t.Fatalf("login sent role %q", login.RoleID)
	}
}

func TestVaultLoginRejected(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(k8sJWT), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rec  string
		cfg  vault.VaultConfig
		want string
	}{
		{name: "approle wrong secret id", rec: "approle_login_bad",
			cfg:  vault.VaultConfig{Auth: "approle", RoleID: roleID, SecretID: secret.New(secretID)},
			want: "vault login with approle auth rejected: HTTP 400"},
		{name: "kubernetes audience mismatch", rec: "k8s_login_bad_jwt",
			cfg:  vault.VaultConfig{Auth: "kubernetes", K8sRole: "provisioner", K8sTokenPath: tokenFile},
			want: "vault login with kubernetes auth rejected: HTTP 403"},
		{name: "kubernetes token file missing", rec: "k8s_login_bad_jwt",
			cfg:  vault.VaultConfig{Auth: "kubernetes", K8sRole: "provisioner", K8sTokenPath: filepath.Join(t.TempDir(), "none")},
			want: "unable to read service account token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.HandleRecorded(h.rec(tt.rec))
			tt.cfg.Addr = h.srv.URL
			_, err := h.newStore(vault.Config{Vault: tt.cfg})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestVaultKubernetesLogin(t *testing.T) {
	h := newHarness(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(k8sJWT), 0o600); err != nil {
		t.Fatal(err)
	}
	h.srv.RequireToken("")
	h.srv.Handle("POST", "/v1/auth/k8s/login", h.rec("approle_login").WithAuth(t, "token-A-0001", 3600, true))
	h.srv.HandleRecorded(h.rec("kv2_read"), h.rec("token_renew_self"))
	s := h.mustStore(vault.Config{Vault: vault.VaultConfig{Addr: h.srv.URL, Auth: "kubernetes",
		K8sRole: "provisioner", K8sMount: "k8s", K8sTokenPath: tokenFile}})
	if _, err := h.get(s, "vault:customers/acme/github"); err != nil {
		t.Fatal(err)
	}
	var body struct{ Role, JWT string }
	for _, r := range h.srv.Requests() {
		if r.Path == "/v1/auth/k8s/login" {
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if body.Role != "provisioner" || body.JWT != k8sJWT {
		t.Fatalf("login sent role %q", body.Role)
	}
}

// TestVaultLogsInAgainBeforeANonRenewableTokenExpires drives a short, non-renewable lease: the
// store must log in again before it expires and read with the new token (the server refuses
// the old one from then on).
func TestVaultLogsInAgainBeforeANonRenewableTokenExpires(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, login.WithAuth(t, "token-A-0001", 9, false), login.WithAuth(t, "token-B-0002", 3600, true))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_renew_self"))
	s := h.mustStore(vault.Config{Vault: vault.VaultConfig{Addr: h.srv.URL, Auth: "approle",
		RoleID: roleID, SecretID: secret.New(secretID)}})

	if d := h.clock.AdvanceToNextTimer(t); d != 6*time.Second {
		t.Fatalf("second login after %s, want 6s (two thirds of the 9s lease)", d)
	}
	h.clock.NextTimer(t)
	if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Count("POST", appRoleIn); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
	if n := h.srv.Count("POST", renewSelf); n != 0 {
		t.Fatalf("%d renewals of a non-renewable token", n)
	}
}

// TestVaultNotReadyAtStartup: a sealed or unreachable server does not fail New; reads are
// retryable, say what is wrong, and the state says it too, until the background login succeeds.
func TestVaultNotReadyAtStartup(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		broken func(h *harness)
		fixed  func(h *harness)
		reason string
		err    string
	}{
		{name: "token auth, sealed", auth: vault.AuthToken, reason: "Vault is sealed", err: "Vault is sealed",
			broken: func(h *harness) { h.srv.HandleRecorded(h.rec("token_lookup_self_sealed")) },
			fixed:  func(h *harness) { h.srv.HandleRecorded(h.rec("token_lookup_self")) }},
		{name: "approle, sealed", auth: vault.AuthAppRole, reason: "Vault is sealed", err: "Vault is sealed",
			broken: func(h *harness) { h.srv.HandleRecorded(h.rec("approle_login_sealed")) },
			fixed:  func(h *harness) { h.srv.HandleRecorded(h.rec("approle_login")) }},
		{name: "approle, unreachable", auth: vault.AuthAppRole, reason: "Vault unreachable", err: "Vault unreachable",
			broken: func(h *harness) {
				h.srv.HandleRecorded(h.rec("approle_login"))
				h.srv.Close()
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.HandleRecorded(h.rec("kv2_read"), h.rec("token_renew_self"))
			tt.broken(h)
			cfg := h.tokenConfig()
			if tt.auth == vault.AuthAppRole {
				cfg.Vault = vault.VaultConfig{Addr: h.srv.URL, Auth: "approle", RoleID: roleID, SecretID: secret.New(secretID)}
			}
			s := h.mustStore(cfg)

			_, err := h.get(s, "vault:customers/acme/github")
			wantCode(t, err, vault.CodeUnavailable)
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q does not say %q", err, tt.err)
			}
			if st := h.obs.Last(); st.State != vault.StateFailing || st.Reason != tt.reason {
				t.Fatalf("state %+v, want failing: %s", st, tt.reason)
			}
			if !strings.Contains(h.logs.String(), "vault not ready at start-up") || !strings.Contains(h.logs.String(), tt.reason) {
				t.Fatalf("no clear log line: %s", h.logs.String())
			}
			if tt.fixed == nil {
				return
			}
			// a second failure, then the fix
			h.clock.AdvanceToNextTimer(t)
			h.clock.NextTimer(t)
			tt.fixed(h)
			h.clock.AdvanceToNextTimer(t)
			h.clock.NextTimer(t)
			if _, err := h.get(s, "vault:customers/acme/github"); err != nil {
				t.Fatal(err)
			}
			if st := h.obs.Last(); st.State != vault.StateLoggedIn || !st.HasToken {
				t.Fatalf("state %+v, want logged in", st)
			}
			if got := h.obs.Logins(); !slices.Equal(got, []bool{false, false, true}) {
				t.Fatalf("logins %v", got)
			}
		})
	}
}

func TestVaultUnreachable(t *testing.T) {
	h := newHarness(t)
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("token_renew_self"))
	s := h.mustStore(h.tokenConfig())
	h.srv.Close()
	_, err := h.get(s, "vault:customers/acme/github")
	wantCode(t, err, vault.CodeUnavailable)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestVaultTLS(t *testing.T) {
	recs := vaulttest.MustLoad(t, recordings)
	srv := vaulttest.NewTLSServer(t)
	srv.HandleRecorded(recs.Get(t, "token_lookup_self"), recs.Get(t, "token_renew_self"), recs.Get(t, "kv2_read"))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)

	t.Run("trusted CA", func(t *testing.T) {
		s, err := vault.New(t.Context(), vault.Config{Vault: vault.VaultConfig{Addr: srv.URL,
			Token: secret.New(rootToken), CACert: caFile, TLSServerName: "example.com"}}, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Get(t.Context(), vault.Ref{Scheme: "vault", Path: "customers/acme/github"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown CA fails New", func(t *testing.T) {
		_, err := vault.New(t.Context(), vault.Config{Vault: vault.VaultConfig{Addr: srv.URL,
			Token: secret.New(rootToken)}}, logger)
		if err == nil {
			t.Fatal("New trusted an unknown certificate")
		}
	})
}

func TestVaultErrorTypes(t *testing.T) {
	h := newHarness(t)
	h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("token_renew_self"), h.rec("kv2_read_sealed"))
	s := h.mustStore(h.tokenConfig())
	_, err := h.get(s, "vault:customers/acme/hubspot")
	var ue *vault.UnavailableError
	if !errors.As(err, &ue) || !ue.Retryable() {
		t.Fatalf("sealed read = %v", err)
	}
}
