package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/vault/api"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
	"github.com/provisioner-dev/provisioner/internal/vault/vaulttest"
)

// realVault is what the integration test made on a real server: everything named per run, and
// everything removed by the test's cleanup (tokens revoked, mounts, auth mounts and policies
// deleted).
type realVault struct {
	admin                                        *api.Client
	addr                                         string
	run                                          string
	mount, kv1Mount, appRoleMount, k8sMount      string
	policy                                       string
	roleID, secretID, shortRoleID, shortSecretID string
	childToken                                   string
	logs                                         *syncBuffer
	secrets                                      []string // every secret value the test put in or got out
	unsealKey                                    string
}

// TestIntegrationVault runs every auth method and read path against a real Vault or OpenBao
// server (see README.md), then the token's faults: short-lived tokens under steady reads, a
// revoked token, a policy denial, and (with PROVISIONER_TEST_VAULT_UNSEAL_KEY) a seal and
// unseal during reads. Each case is a subtest of its own.
func TestIntegrationVault(t *testing.T) {
	addr, rootTok := os.Getenv("PROVISIONER_TEST_VAULT_ADDR"), os.Getenv("PROVISIONER_TEST_VAULT_TOKEN")
	if addr == "" || rootTok == "" {
		t.Skip("set PROVISIONER_TEST_VAULT_ADDR and PROVISIONER_TEST_VAULT_TOKEN (a root or admin token) to run against a real Vault")
	}
	rv := &realVault{addr: addr, run: "provisioner-it-" + uuid.NewString()[:8], logs: &syncBuffer{},
		unsealKey: os.Getenv("PROVISIONER_TEST_VAULT_UNSEAL_KEY")}
	parent := t
	if !t.Run("setup", func(t *testing.T) { rv.setup(t, parent, rootTok) }) {
		t.Fatal("setup failed; nothing else runs")
	}
	t.Cleanup(func() {
		for _, s := range append(rv.secrets, rv.roleID, rv.secretID, rv.shortRoleID, rv.shortSecretID, rv.childToken, rootTok) {
			if s != "" && strings.Contains(rv.logs.String(), s) {
				t.Errorf("a secret, token or id reached the logs")
			}
		}
	})

	base := vault.VaultConfig{Addr: addr, Mount: rv.mount, Timeout: 5 * time.Second}
	methods := []struct {
		name   string
		cfg    vault.VaultConfig
		policy bool // the token is bound by the test's policy (the root token is not)
	}{
		{"root token", with(base, func(c *vault.VaultConfig) { c.Token = secret.New(rootTok) }), false},
		{"renewable token", with(base, func(c *vault.VaultConfig) { c.Token = secret.New(rv.childToken) }), true},
		{"approle", rv.appRole(base, rv.roleID, rv.secretID), true},
	}
	reads := []struct {
		ref, code, detail, want string
	}{
		{ref: "vault:customers/acme/github", want: "ghp_it_0001"},
		{ref: "vault:customers/acme/github#token", want: "ghp_it_0001"},
		{ref: "vault:customers/acme/hubspot"},
		{ref: "vault:customers/acme/missing", code: vault.CodeNotFound},
		{ref: "vault:customers/acme/deleted", code: vault.CodeNotFound, detail: "version deleted"},
		{ref: "vault:customers/acme/destroyed", code: vault.CodeNotFound, detail: "version destroyed"},
		{ref: "vault:customers/acme/hubspot#x", code: vault.CodeNotFound, detail: "no field x"},
		{ref: "vault:secret/data/customers/acme/github", code: vault.CodeInvalidRef},
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			s := rv.store(t, m.cfg)
			for _, r := range reads {
				t.Run(r.ref, func(t *testing.T) {
					f, err := rv.get(t, s, r.ref)
					if r.code != "" {
						wantCode(t, err, r.code)
						if !strings.Contains(err.Error(), r.detail) {
							t.Fatalf("error %q lacks %q", err, r.detail)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if v, _ := f.Get("token"); r.want != "" && v.Reveal() != r.want {
						t.Fatal("wrong token")
					}
				})
			}
			t.Run("outside the policy", func(t *testing.T) {
				if !m.policy {
					t.Skip("the root token has no policy")
				}
				_, err := rv.get(t, s, "vault:other/thing")
				wantCode(t, err, vault.CodePermissionDenied)
			})
		})
	}

	t.Run("KV v1 mount", func(t *testing.T) {
		s := rv.store(t, with(base, func(c *vault.VaultConfig) { c.Token, c.Mount = secret.New(rootTok), rv.kv1Mount }))
		_, err := rv.get(t, s, "vault:customers/acme/github")
		wantCode(t, err, vault.CodeNotFound)
		if !strings.Contains(err.Error(), "KV v1 mount") {
			t.Fatalf("error %q does not say KV v1 mount", err)
		}
	})

	t.Run("approle wrong secret id", func(t *testing.T) {
		_, err := vault.New(t.Context(), vault.Config{Vault: rv.appRole(base, rv.roleID, "00000000-0000-0000-0000-000000000000")}, rv.logger())
		if err == nil || !strings.Contains(err.Error(), "rejected: HTTP 400") {
			t.Fatalf("New = %v", err)
		}
	})

	t.Run("kubernetes audience mismatch", func(t *testing.T) {
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(k8sJWT), 0o600); err != nil {
			t.Fatal(err)
		}
		vc := with(base, func(c *vault.VaultConfig) {
			c.Auth, c.K8sMount, c.K8sRole, c.K8sTokenPath = vault.AuthKubernetes, rv.k8sMount, "provisioner", tokenFile
		})
		_, err := vault.New(t.Context(), vault.Config{Vault: vc}, rv.logger())
		if err == nil || !strings.Contains(err.Error(), "rejected: HTTP 403") {
			t.Fatalf("New = %v", err)
		}
	})

	t.Run("namespace", func(t *testing.T) {
		rv.namespace(t, rootTok)
	})

	t.Run("short-lived approle tokens under steady reads", func(t *testing.T) {
		soak := 45 * time.Second
		if v := os.Getenv("PROVISIONER_TEST_VAULT_SOAK"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("PROVISIONER_TEST_VAULT_SOAK: %v", err)
			}
			soak = d
		}
		obs := &vaulttest.Observer{}
		s := rv.storeObserved(t, rv.appRole(base, rv.shortRoleID, rv.shortSecretID), obs)
		end := time.Now().Add(soak)
		reads := 0
		for time.Now().Before(end) {
			if _, err := rv.get(t, s, "vault:customers/acme/github"); err != nil {
				t.Fatalf("read %d failed: %v", reads, err)
			}
			reads++
			time.Sleep(100 * time.Millisecond) // steady traffic, not a wait for a condition
		}
		logins := 0
		for _, ok := range obs.Logins() {
			if !ok {
				t.Error("a login failed")
			}
			logins++
		}
		// token_max_ttl 20s: a new token at least every 20s
		if want := int(soak/(20*time.Second)) + 1; logins < want {
			t.Fatalf("%d logins in %s, want at least %d", logins, soak, want)
		}
		for _, st := range obs.Statuses() {
			if st.State == vault.StateFailing {
				t.Fatalf("state failing: %+v", st)
			}
		}
	})

	t.Run("revoked approle token", func(t *testing.T) {
		obs := &vaulttest.Observer{}
		s := rv.storeObserved(t, rv.appRole(base, rv.roleID, rv.secretID), obs)
		if _, err := rv.get(t, s, "vault:customers/acme/github"); err != nil {
			t.Fatal(err)
		}
		// revoke every token the AppRole mount issued, the store's among them
		if _, err := rv.admin.Logical().WriteWithContext(t.Context(), "sys/leases/revoke-prefix/auth/"+rv.appRoleMount+"/login", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := rv.get(t, s, "vault:customers/acme/github"); err != nil {
			t.Fatalf("read after revocation: %v", err)
		}
		if got := len(obs.Logins()); got != 2 {
			t.Fatalf("%d logins, want 2", got)
		}
		_, err := rv.get(t, s, "vault:other/thing")
		wantCode(t, err, vault.CodePermissionDenied)
	})

	t.Run("revoked configured token", func(t *testing.T) {
		tok, err := rv.admin.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
			Policies: []string{rv.policy}, TTL: "10m", Renewable: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		rv.secrets = append(rv.secrets, tok.Auth.ClientToken)
		t.Cleanup(func() { _ = rv.admin.Auth().Token().RevokeTreeWithContext(context.Background(), tok.Auth.ClientToken) })
		s := rv.store(t, with(base, func(c *vault.VaultConfig) { c.Token = secret.New(tok.Auth.ClientToken) }))
		if err := rv.admin.Auth().Token().RevokeTreeWithContext(t.Context(), tok.Auth.ClientToken); err != nil {
			t.Fatal(err)
		}
		_, err = rv.get(t, s, "vault:customers/acme/github")
		wantCode(t, err, vault.CodeUnavailable) // retryable: an operator can replace the token
	})

	t.Run("seal and unseal during reads", func(t *testing.T) {
		if rv.unsealKey == "" {
			t.Skip("set PROVISIONER_TEST_VAULT_UNSEAL_KEY (a dev server prints it) to seal and unseal the server")
		}
		s := rv.store(t, rv.appRole(base, rv.roleID, rv.secretID))
		if _, err := rv.get(t, s, "vault:customers/acme/github"); err != nil {
			t.Fatal(err)
		}
		if err := rv.admin.Sys().SealWithContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		unsealed := false
		unseal := func() {
			if !unsealed {
				unsealed = true
				if _, err := rv.admin.Sys().UnsealWithContext(context.Background(), rv.unsealKey); err != nil {
					t.Errorf("unseal: %v", err)
				}
			}
		}
		t.Cleanup(unseal)
		_, err := rv.get(t, s, "vault:customers/acme/github")
		wantCode(t, err, vault.CodeUnavailable)
		if !strings.Contains(err.Error(), "sealed") {
			t.Fatalf("error %q does not say sealed", err)
		}
		unseal()
		eventually(t, "reads after the unseal", func() bool {
			_, err := rv.get(t, s, "vault:customers/acme/github")
			return err == nil
		})
	})
}

// setup makes everything the cases use. What it makes is removed when the whole test ends
// (cleanups are registered on parent: a subtest's own would run before the cases), last made
// first: tokens, then auth mounts (which revoke the tokens they issued), policies and mounts.
func (rv *realVault) setup(t, parent *testing.T, rootTok string) {
	admin, err := api.NewClient(&api.Config{Address: rv.addr})
	if err != nil {
		t.Fatal(err)
	}
	admin.SetToken(rootTok)
	rv.admin = admin
	ctx := t.Context()
	bg := context.Background()
	rv.mount, rv.kv1Mount = rv.run+"-kv", rv.run+"-kv1"
	rv.appRoleMount, rv.k8sMount, rv.policy = rv.run+"-approle", rv.run+"-k8s", rv.run
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cleanupParent := func(what string, f func() error) {
		parent.Cleanup(func() {
			if err := f(); err != nil {
				parent.Errorf("cleanup: %s: %v", what, err)
			}
		})
	}
	must(admin.Sys().MountWithContext(ctx, rv.mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	cleanupParent("unmount "+rv.mount, func() error { return admin.Sys().UnmountWithContext(bg, rv.mount) })
	must(admin.Sys().MountWithContext(ctx, rv.kv1Mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	cleanupParent("unmount "+rv.kv1Mount, func() error { return admin.Sys().UnmountWithContext(bg, rv.kv1Mount) })
	must(admin.Sys().PutPolicyWithContext(ctx, rv.policy, fmt.Sprintf(
		"path %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }",
		rv.mount+"/data/customers/*", rv.mount+"/metadata/customers/*", rv.kv1Mount+"/customers/*")))
	cleanupParent("delete policy "+rv.policy, func() error { return admin.Sys().DeletePolicyWithContext(bg, rv.policy) })
	must(admin.Sys().EnableAuthWithOptionsWithContext(ctx, rv.appRoleMount, &api.EnableAuthOptions{Type: "approle"}))
	cleanupParent("disable auth "+rv.appRoleMount, func() error { return admin.Sys().DisableAuthWithContext(bg, rv.appRoleMount) })
	// runs before the auth mount goes (cleanups run last first): revoke what the stores' logins got
	cleanupParent("revoke the AppRole logins' tokens", func() error {
		_, err := admin.Logical().WriteWithContext(bg, "sys/leases/revoke-prefix/auth/"+rv.appRoleMount+"/login", nil)
		return err
	})
	must(admin.Sys().EnableAuthWithOptionsWithContext(ctx, rv.k8sMount, &api.EnableAuthOptions{Type: "kubernetes"}))
	cleanupParent("disable auth "+rv.k8sMount, func() error { return admin.Sys().DisableAuthWithContext(bg, rv.k8sMount) })

	kv := admin.KVv2(rv.mount)
	put := func(path string, data map[string]any) {
		t.Helper()
		for _, v := range data {
			rv.secrets = append(rv.secrets, v.(string))
		}
		// a fresh KV v2 mount may still be upgrading for a moment
		eventually(t, "a KV write to "+path, func() bool {
			_, err := kv.Put(ctx, path, data)
			return err == nil
		})
	}
	put("customers/acme/github", map[string]any{"token": "ghp_it_0001"})
	put("customers/acme/hubspot", map[string]any{"client_id": "cid-it", "client_secret": "csecret-it", "refresh_token": "rt-it"})
	put("customers/acme/deleted", map[string]any{"token": "ghp_it_0002"})
	must(kv.Delete(ctx, "customers/acme/deleted"))
	put("customers/acme/destroyed", map[string]any{"token": "ghp_it_0003"})
	must(kv.Destroy(ctx, "customers/acme/destroyed", []int{1}))
	put("other/thing", map[string]any{"token": "ghp_it_0004"})
	_, err = admin.Logical().WriteWithContext(ctx, rv.kv1Mount+"/customers/acme/github", map[string]any{"token": "ghp_it_0005"})
	must(err)
	rv.secrets = append(rv.secrets, "ghp_it_0005")

	rv.roleID, rv.secretID = rv.appRoleWithTTL(t, "provisioner", "1h", "4h")
	rv.shortRoleID, rv.shortSecretID = rv.appRoleWithTTL(t, "short", "10s", "20s")

	child, err := admin.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{rv.policy}, TTL: "1h", Renewable: ptr(true)})
	must(err)
	rv.childToken = child.Auth.ClientToken
	cleanupParent("revoke the child token", func() error { return admin.Auth().Token().RevokeTreeWithContext(bg, rv.childToken) })

	// OpenBao refuses disable_local_ca_jwt without kubernetes_ca_cert: give a CA of our own
	_, err = admin.Logical().WriteWithContext(ctx, "auth/"+rv.k8sMount+"/config", map[string]any{
		"kubernetes_host": "https://127.0.0.1:1", "kubernetes_ca_cert": selfSignedCA(t), "disable_local_ca_jwt": true})
	must(err)
	_, err = admin.Logical().WriteWithContext(ctx, "auth/"+rv.k8sMount+"/role/provisioner", map[string]any{
		"bound_service_account_names": []string{"provisioner"}, "bound_service_account_namespaces": []string{"default"},
		"token_policies": []string{rv.policy}, "audience": "vault"})
	must(err)
}

func (rv *realVault) appRoleWithTTL(t *testing.T, role, ttl, maxTTL string) (roleID, secretID string) {
	t.Helper()
	ctx := t.Context()
	_, err := rv.admin.Logical().WriteWithContext(ctx, "auth/"+rv.appRoleMount+"/role/"+role, map[string]any{
		"token_policies": []string{rv.policy}, "token_ttl": ttl, "token_max_ttl": maxTTL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := rv.admin.Logical().ReadWithContext(ctx, "auth/"+rv.appRoleMount+"/role/"+role+"/role-id")
	if err != nil {
		t.Fatal(err)
	}
	s, err := rv.admin.Logical().WriteWithContext(ctx, "auth/"+rv.appRoleMount+"/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data["role_id"].(string), s.Data["secret_id"].(string)
}

func (rv *realVault) appRole(base vault.VaultConfig, roleID, secretID string) vault.VaultConfig {
	return with(base, func(c *vault.VaultConfig) {
		c.Auth, c.AppRoleMount, c.RoleID, c.SecretID = vault.AuthAppRole, rv.appRoleMount, roleID, secret.New(secretID)
	})
}

func (rv *realVault) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(rv.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "secrets")
}

func (rv *realVault) store(t *testing.T, vc vault.VaultConfig) *vault.Store {
	return rv.storeObserved(t, vc, nil)
}

func (rv *realVault) storeObserved(t *testing.T, vc vault.VaultConfig, obs vault.Observer) *vault.Store {
	t.Helper()
	s, err := vault.New(t.Context(), vault.Config{Vault: vc, VaultObserver: obs}, rv.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (rv *realVault) get(t *testing.T, s *vault.Store, ref string) (secret.Fields, error) {
	t.Helper()
	r, err := vault.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Get(t.Context(), r)
	if err != nil {
		for _, v := range rv.secrets {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error shows a secret: %v", err)
			}
		}
	}
	return f, err
}

// namespace reads through a namespace of the test's own; servers without namespaces (Vault
// community edition) skip it.
func (rv *realVault) namespace(t *testing.T, rootTok string) {
	ctx, bg := t.Context(), context.Background()
	ns := rv.run
	if _, err := rv.admin.Logical().WriteWithContext(ctx, "sys/namespaces/"+ns, nil); err != nil {
		t.Skipf("the server has no namespaces: %v", err)
	}
	t.Cleanup(func() {
		if _, err := rv.admin.Logical().DeleteWithContext(bg, "sys/namespaces/"+ns); err != nil {
			t.Errorf("cleanup: delete namespace: %v", err)
		}
	})
	in := rv.admin.WithNamespace(ns)
	if err := in.Sys().MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Sys().UnmountWithContext(bg, "kv"); err != nil {
			t.Errorf("cleanup: unmount in namespace: %v", err)
		}
	})
	rv.secrets = append(rv.secrets, "ghp_it_ns_0001")
	eventually(t, "a KV write in the namespace", func() bool {
		_, err := in.KVv2("kv").Put(ctx, "customers/acme/github", map[string]any{"token": "ghp_it_ns_0001"})
		return err == nil
	})
	s := rv.store(t, vault.VaultConfig{Addr: rv.addr, Namespace: ns, Mount: "kv", Token: secret.New(rootTok), Timeout: 5 * time.Second})
	f, err := rv.get(t, s, "vault:customers/acme/github")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("token"); v.Reveal() != "ghp_it_ns_0001" {
		t.Fatal("wrong token")
	}
}

// selfSignedCA is a PEM CA certificate for the Kubernetes auth config; no cluster is reached.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provisioner-it-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func with(c vault.VaultConfig, f func(*vault.VaultConfig)) vault.VaultConfig {
	f(&c)
	return c
}

func ptr[T any](v T) *T { return &v }
