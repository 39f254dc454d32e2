package vault_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/vault/api"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// TestIntegrationVault runs every auth method and read path against a real Vault or OpenBao
// server (see README.md). It works in mounts of its own, named per run, and removes them.
func TestIntegrationVault(t *testing.T) {
	addr, rootTok := os.Getenv("PROVISIONER_TEST_VAULT_ADDR"), os.Getenv("PROVISIONER_TEST_VAULT_TOKEN")
	if addr == "" || rootTok == "" {
		t.Skip("set PROVISIONER_TEST_VAULT_ADDR and PROVISIONER_TEST_VAULT_TOKEN (a root or admin token) to run against a real Vault")
	}
	admin, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	admin.SetToken(rootTok)
	ctx := t.Context()
	run := "provisioner-it-" + uuid.NewString()[:8]
	mount, appRoleMount, k8sMount, policyName := run+"-kv", run+"-approle", run+"-k8s", run

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	t.Cleanup(func() { _ = admin.Sys().UnmountWithContext(context.Background(), mount) })
	must(admin.Sys().EnableAuthWithOptionsWithContext(ctx, appRoleMount, &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { _ = admin.Sys().DisableAuthWithContext(context.Background(), appRoleMount) })
	must(admin.Sys().EnableAuthWithOptionsWithContext(ctx, k8sMount, &api.EnableAuthOptions{Type: "kubernetes"}))
	t.Cleanup(func() { _ = admin.Sys().DisableAuthWithContext(context.Background(), k8sMount) })
	must(admin.Sys().PutPolicyWithContext(ctx, policyName,
		fmt.Sprintf(`path "%s/data/customers/*" { capabilities = ["read"] }`, mount)))
	t.Cleanup(func() { _ = admin.Sys().DeletePolicyWithContext(context.Background(), policyName) })

	kv := admin.KVv2(mount)
	put := func(path string, data map[string]any) {
		t.Helper()
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

	_, err = admin.Logical().WriteWithContext(ctx, "auth/"+appRoleMount+"/role/provisioner", map[string]any{
		"token_policies": []string{policyName}, "token_ttl": "1h", "token_max_ttl": "4h"})
	must(err)
	roleIDResp, err := admin.Logical().ReadWithContext(ctx, "auth/"+appRoleMount+"/role/provisioner/role-id")
	must(err)
	secretIDResp, err := admin.Logical().WriteWithContext(ctx, "auth/"+appRoleMount+"/role/provisioner/secret-id", nil)
	must(err)
	childTok, err := admin.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{policyName}, TTL: "1h", Renewable: ptr(true)})
	must(err)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := vault.VaultConfig{Addr: addr, Mount: mount, Timeout: 5 * time.Second}
	configs := map[string]vault.VaultConfig{
		"root token": with(base, func(c *vault.VaultConfig) { c.Token = secret.New(rootTok) }),
		"renewable token": with(base, func(c *vault.VaultConfig) {
			c.Token = secret.New(childTok.Auth.ClientToken)
		}),
		"approle": with(base, func(c *vault.VaultConfig) {
			c.Auth, c.AppRoleMount = vault.AuthAppRole, appRoleMount
			c.RoleID = roleIDResp.Data["role_id"].(string)
			c.SecretID = secret.New(secretIDResp.Data["secret_id"].(string))
		}),
	}
	for name, vc := range configs {
		t.Run(name, func(t *testing.T) {
			s, err := vault.New(t.Context(), vault.Config{Vault: vc}, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			get := func(ref string) (secret.Fields, error) {
				r, err := vault.ParseRef(ref)
				if err != nil {
					t.Fatal(err)
				}
				return s.Get(t.Context(), r)
			}
			if f, err := get("vault:customers/acme/github"); err != nil {
				t.Fatal(err)
			} else if v, _ := f.Get("token"); v.Reveal() != "ghp_it_0001" {
				t.Fatal("wrong token")
			}
			if _, err := get("vault:customers/acme/hubspot"); err != nil {
				t.Fatal(err)
			}
			if _, err := get("vault:customers/acme/github#token"); err != nil {
				t.Fatal(err)
			}
			for ref, code := range map[string]string{
				"vault:customers/acme/missing":   vault.CodeNotFound,
				"vault:customers/acme/deleted":   vault.CodeNotFound,
				"vault:customers/acme/destroyed": vault.CodeNotFound,
				"vault:customers/acme/hubspot#x": vault.CodeNotFound,
			} {
				_, err := get(ref)
				wantCode(t, err, code)
			}
			if name != "root token" {
				_, err := get("vault:other/thing")
				wantCode(t, err, vault.CodePermissionDenied)
			}
		})
	}

	t.Run("approle wrong secret id", func(t *testing.T) {
		vc := configs["approle"]
		vc.SecretID = secret.New("00000000-0000-0000-0000-000000000000")
		_, err := vault.New(t.Context(), vault.Config{Vault: vc}, logger)
		if err == nil || !strings.Contains(err.Error(), "rejected") {
			t.Fatalf("New = %v", err)
		}
	})

	t.Run("kubernetes audience mismatch", func(t *testing.T) {
		_, err := admin.Logical().WriteWithContext(ctx, "auth/"+k8sMount+"/config", map[string]any{
			"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true})
		must(err)
		_, err = admin.Logical().WriteWithContext(ctx, "auth/"+k8sMount+"/role/provisioner", map[string]any{
			"bound_service_account_names": []string{"provisioner"}, "bound_service_account_namespaces": []string{"default"},
			"token_policies": []string{policyName}, "audience": "vault"})
		must(err)
		tokenFile := filepath.Join(t.TempDir(), "token")
		must(os.WriteFile(tokenFile, []byte(k8sJWT), 0o600))
		vc := with(base, func(c *vault.VaultConfig) {
			c.Auth, c.K8sMount, c.K8sRole, c.K8sTokenPath = vault.AuthKubernetes, k8sMount, "provisioner", tokenFile
		})
		_, err = vault.New(t.Context(), vault.Config{Vault: vc}, logger)
		if err == nil || !strings.Contains(err.Error(), "rejected") {
			t.Fatalf("New = %v", err)
		}
	})
}

func with(c vault.VaultConfig, f func(*vault.VaultConfig)) vault.VaultConfig {
	f(&c)
	return c
}

func ptr[T any](v T) *T { return &v }
