package vault_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
	"github.com/provisioner-dev/provisioner/internal/vault/vaulttest"
)

// distinctLogins are n AppRole login responses, each issuing a token of its own (as Vault does)
// with the given lease, renewable.
func distinctLogins(t *testing.T, login vaulttest.Recording, n, leaseSeconds int) []vaulttest.Recording {
	logins := make([]vaulttest.Recording, n)
	for i := range logins {
		logins[i] = login.WithAuth(t, fmt.Sprintf("token-C-%04d", i), leaseSeconds, true)
	}
	return logins
}

func (h *harness) appRoleConfig() vault.Config {
	return vault.Config{Vault: vault.VaultConfig{Addr: h.srv.URL, Auth: vault.AuthAppRole,
		RoleID: roleID, SecretID: secret.New(secretID)}}
}

// TestVaultShortLivedTokensNeverLapse runs three minutes of an AppRole with token_ttl 10s and
// token_max_ttl 20s: each token is renewed once at two thirds of its lease, the next renewal is
// capped by the max TTL, and the store logs in again at once. At every step a read succeeds
// with the current token (the server refuses any other), the state never fails, and no wait
// grows: every wait the store asks for is at most two thirds of a lease.
func TestVaultShortLivedTokensNeverLapse(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, distinctLogins(t, login, 40, 10)...)
	h.srv.HandleCycle("POST", renewSelf, h.rec("token_renew_self").WithAuth(t, "", 10, true), h.rec("token_renew_self_capped"))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"))
	s := h.mustStore(h.appRoleConfig())

	start := h.clock.Now()
	steps := 0
	for h.clock.Now().Sub(start) < 3*time.Minute {
		next := h.clock.NextTimer(t) // the store has done its step and planned the next
		if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
			t.Fatalf("read at +%s: %v", h.clock.Now().Sub(start), err)
		}
		st := h.obs.Last()
		if st.State == vault.StateFailing || !st.HasToken {
			t.Fatalf("state at +%s: %+v", h.clock.Now().Sub(start), st)
		}
		if !next.Before(st.ExpiresAt) {
			t.Fatalf("at +%s the next step (%s) is not before the token's expiry (%s)",
				h.clock.Now().Sub(start), next.Sub(start), st.ExpiresAt.Sub(start))
		}
		h.clock.AdvanceToNextTimer(t)
		steps++
	}
	h.clock.NextTimer(t)
	for _, d := range h.clock.Waits() {
		if d > 10*time.Second*2/3 {
			t.Fatalf("the store waited %s; waits %v", d, h.clock.Waits())
		}
	}
	logins, renewals := h.srv.Count("POST", appRoleIn), h.srv.Count("POST", renewSelf)
	// a token's life: login, renew at 6.67s, capped renewal at 13.33s, login at once
	if logins < 13 || renewals < 2*(logins-1) {
		t.Fatalf("%d logins and %d renewals in %d steps", logins, renewals, steps)
	}
	for _, st := range h.obs.Statuses() {
		if st.State == vault.StateFailing {
			t.Fatalf("state failing: %+v", st)
		}
	}
}

// TestVaultLoginBackoffResetsAfterEverySuccess: logins failing at start-up wait longer and
// longer; after a successful login, the first failure waits the initial interval again.
func TestVaultLoginBackoffResetsAfterEverySuccess(t *testing.T) {
	h := newHarness(t)
	sealed, ok := h.rec("approle_login_sealed"), h.rec("approle_login").WithAuth(t, "token-A-0001", 9, false)
	h.srv.Handle("POST", appRoleIn, sealed, sealed, sealed, sealed, sealed, ok, sealed, ok)
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"))
	s := h.mustStore(h.appRoleConfig())

	// 1 failure in New, 4 in the background, each after a longer wait
	var grown time.Duration
	for range 4 {
		grown = h.clock.AdvanceToNextTimer(t)
	}
	// initial 500ms, factor 1.5, jitter ±50%: the fourth wait is at least 843ms
	if grown < 843*time.Millisecond {
		t.Fatalf("fourth wait %s: the backoff did not grow", grown)
	}
	h.clock.AdvanceToNextTimer(t) // the successful login
	h.clock.NextTimer(t)
	if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
		t.Fatal(err)
	}
	if d := h.clock.AdvanceToNextTimer(t); d != 6*time.Second {
		t.Fatalf("replacement login after %s, want 6s", d)
	}
	// the replacement login failed: the token is still valid and the retry waits the initial interval
	retry := h.clock.AdvanceToNextTimer(t)
	if retry > 750*time.Millisecond {
		t.Fatalf("after a successful login the first retry waited %s, want at most 750ms", retry)
	}
	h.clock.NextTimer(t)
	if got := h.obs.Logins(); len(got) != 8 || !got[5] || got[6] || !got[7] {
		t.Fatalf("logins %v", got)
	}
	for _, st := range h.obs.Statuses()[len(h.obs.Statuses())-3:] {
		if st.State == vault.StateFailing {
			t.Fatalf("failing while the token was valid: %+v", st)
		}
	}
}

// TestVaultRefusedToken covers 403s: a revoked token (the server no longer accepts it) makes
// the store log in again and retry the read; a valid token refused by policy is
// secret_permission_denied; a configured token that is revoked, or a lookup that Vault cannot
// answer, is secret_backend_unavailable (retryable).
func TestVaultRefusedToken(t *testing.T) {
	t.Run("approle token revoked", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RequireToken("")
		login := h.rec("approle_login")
		h.srv.Handle("POST", appRoleIn, login.WithAuth(t, "token-A-0001", 3600, true), login.WithAuth(t, "token-B-0002", 3600, true))
		h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_lookup_self"), h.rec("token_renew_self"))
		s := h.mustStore(h.appRoleConfig())
		if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
			t.Fatal(err)
		}
		h.srv.RequireToken("nobody") // token-A-0001 revoked
		got, err := h.get(s, "vault:customers/acme/hubspot")
		if err != nil {
			t.Fatalf("read after revocation: %v", err)
		}
		if got["client_id"] != "cid-example" {
			t.Fatal("wrong secret")
		}
		if n := h.srv.Count("POST", appRoleIn); n != 2 {
			t.Fatalf("%d logins, want 2", n)
		}
		if !strings.Contains(h.logs.String(), "token revoked or expired") {
			t.Fatal("no log line about the revoked token")
		}
		if st := h.obs.Last(); st.State != vault.StateLoggedIn {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("approle token revoked, login fails", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RequireToken("")
		h.srv.Handle("POST", appRoleIn, h.rec("approle_login").WithAuth(t, "token-A-0001", 3600, true), h.rec("approle_login_sealed"))
		h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_lookup_self"), h.rec("token_renew_self"))
		s := h.mustStore(h.appRoleConfig())
		h.srv.RequireToken("nobody")
		_, err := h.get(s, "vault:customers/acme/hubspot")
		wantCode(t, err, vault.CodeUnavailable)
		if !strings.Contains(err.Error(), "Vault is sealed") {
			t.Fatalf("error %q does not say why", err)
		}
		var ue *vault.UnavailableError
		if !errors.As(err, &ue) || !ue.Retryable() {
			t.Fatal("not retryable")
		}
		if st := h.obs.Last(); st.State != vault.StateFailing || st.Reason != "Vault is sealed" {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("renewal finds the token revoked", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RequireToken("")
		login := h.rec("approle_login")
		h.srv.Handle("POST", appRoleIn, login.WithAuth(t, "token-A-0001", 60, true), login.WithAuth(t, "token-B-0002", 60, true))
		h.srv.Handle("POST", renewSelf, h.rec("token_renew_self_revoked"))
		h.srv.HandleRecorded(h.rec("kv2_read_as_approle"))
		s := h.mustStore(h.appRoleConfig())
		h.clock.AdvanceToNextTimer(t) // renewal at 40s: 403
		h.clock.NextTimer(t)          // logged in again, next renewal planned
		if n := h.srv.Count("POST", appRoleIn); n != 2 {
			t.Fatalf("%d logins, want 2", n)
		}
		if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("policy denies a valid token", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RequireToken(rootToken)
		h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("kv2_read_forbidden"))
		s := h.mustStore(h.tokenConfig())
		_, err := h.get(s, "vault:other/thing")
		wantCode(t, err, vault.CodePermissionDenied)
		if !strings.Contains(err.Error(), "policy") {
			t.Fatalf("error %q does not name the policy", err)
		}
		if n := h.srv.Count("GET", lookupSelf); n != 2 {
			t.Fatalf("%d lookups, want 2 (login, check)", n)
		}
	})
	t.Run("configured token revoked", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RequireToken(rootToken)
		h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("kv2_read"))
		s := h.mustStore(h.tokenConfig())
		h.srv.RequireToken("nobody")
		_, err := h.get(s, "vault:customers/acme/github")
		wantCode(t, err, vault.CodeUnavailable)
		if st := h.obs.Last(); st.State != vault.StateFailing || !strings.Contains(st.Reason, "403") {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("lookup unanswered", func(t *testing.T) {
		h := newHarness(t)
		h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("kv2_read_bad_token"))
		s := h.mustStore(h.tokenConfig())
		h.srv.HandleRecorded(h.rec("token_lookup_self_sealed"))
		_, err := h.get(s, "vault:customers/acme/hubspot")
		wantCode(t, err, vault.CodeUnavailable)
	})
}

// TestVaultErrorTexts: errors say what happened.
func TestVaultErrorTexts(t *testing.T) {
	t.Run("KV v1 mount", func(t *testing.T) {
		h := newHarness(t)
		h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("sys_ui_mounts_kv1"))
		h.srv.Handle("GET", "/v1/kv1/data/customers/acme/github", h.rec("kv2_read_missing"))
		cfg := h.tokenConfig()
		cfg.Vault.Mount = "kv1"
		s := h.mustStore(cfg)
		for range 2 { // the second answer comes from the cache
			_, err := h.get(s, "vault:customers/acme/github")
			wantCode(t, err, vault.CodeNotFound)
			if !strings.Contains(err.Error(), "KV v1 mount") {
				t.Fatalf("error %q does not say KV v1 mount", err)
			}
		}
		if n := h.srv.Count("GET", "/v1/sys/internal/ui/mounts/kv1"); n != 1 {
			t.Fatalf("%d mount lookups, want 1", n)
		}
	})
	t.Run("KV v2 mount, missing secret", func(t *testing.T) {
		h := newHarness(t)
		h.srv.HandleRecorded(h.rec("token_lookup_self"), h.rec("sys_ui_mounts_kv2"), h.rec("kv2_read_missing"))
		s := h.mustStore(h.tokenConfig())
		_, err := h.get(s, "vault:customers/acme/salesforce")
		wantCode(t, err, vault.CodeNotFound)
		if strings.Contains(err.Error(), "KV v1") {
			t.Fatalf("error %q", err)
		}
	})
	t.Run("sealed login", func(t *testing.T) {
		h := newHarness(t)
		h.srv.HandleRecorded(h.rec("approle_login_sealed"))
		_, err := h.newStore(h.appRoleConfig())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(h.logs.String(), "vault login with approle auth failed: Vault is sealed (HTTP 503)") {
			t.Fatalf("logs: %s", h.logs.String())
		}
		if strings.Contains(h.logs.String(), "rejected") {
			t.Fatal("a sealed server is reported as a rejection")
		}
	})
	t.Run("unreachable read", func(t *testing.T) {
		h := newHarness(t)
		h.srv.HandleRecorded(h.rec("token_lookup_self"))
		s := h.mustStore(h.tokenConfig())
		h.srv.Close()
		_, err := h.get(s, "vault:customers/acme/github")
		wantCode(t, err, vault.CodeUnavailable)
		if !strings.Contains(err.Error(), "Vault unreachable") {
			t.Fatalf("error %q", err)
		}
	})
}

// TestVaultLogKeysUnique: no JSON log line of the store has a key twice (the worker names the
// component; the backend must not name it again).
func TestVaultLogKeysUnique(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, h.rec("approle_login_sealed"), login.WithAuth(t, "token-A-0001", 60, true), login.WithAuth(t, "token-B-0002", 60, true))
	h.srv.Handle("POST", renewSelf, h.rec("token_renew_self_capped"))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_lookup_self"))
	s := h.mustStore(h.appRoleConfig())
	h.clock.AdvanceToNextTimer(t) // login
	h.clock.AdvanceToNextTimer(t) // capped renewal, login again
	h.clock.NextTimer(t)
	h.srv.RequireToken("nobody")
	_, _ = h.get(s, "vault:customers/acme/hubspot")

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
	for sc.Scan() {
		lines++
		if key := duplicateKey(t, sc.Bytes()); key != "" {
			t.Errorf("key %q twice in %s", key, sc.Text())
		}
	}
	if lines < 5 {
		t.Fatalf("only %d log lines", lines)
	}
}

// duplicateKey returns a top-level key that occurs twice in a JSON object, "" if none.
func duplicateKey(t *testing.T, line []byte) string {
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
		key := tok.(string)
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

// TestVaultShortLivedTokensUnderConcurrentReads is the three-minute short-TTL run with reads in
// flight while the store renews and logs in again. The replaying server is stricter than Vault:
// a new login makes the previous token unknown at once, so a read can meet a token replaced
// under it; the store must then find out (lookup-self), take the new token and read again. No
// read fails. Each read spans at most one step of the clock (the test moves it only after a
// read that ended since the last move), so at most one token change.
func TestVaultShortLivedTokensUnderConcurrentReads(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, distinctLogins(t, login, 40, 10)...)
	h.srv.HandleCycle("POST", renewSelf, h.rec("token_renew_self").WithAuth(t, "", 10, true), h.rec("token_renew_self_capped"))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_lookup_self"))
	s := h.mustStore(h.appRoleConfig())

	// the reader reports, after each read, the step of the clock at which the read started
	var step atomic.Int64
	readFrom := make(chan int64, 1)
	stop := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			started := step.Load()
			r, _ := vault.ParseRef("vault:customers/acme/hubspot")
			if _, err := s.Get(t.Context(), r); err != nil {
				h.noteErr(err)
				failed <- err
				return
			}
			select {
			case <-readFrom:
			default:
			}
			readFrom <- started
		}
	}()
	defer close(stop)

	start := h.clock.Now()
	for h.clock.Now().Sub(start) < 3*time.Minute {
		// move the clock only after a read that started since the last move has ended
		for done := false; !done; {
			select {
			case started := <-readFrom:
				done = started == step.Load()
			case err := <-failed:
				t.Fatalf("read at +%s: %v", h.clock.Now().Sub(start), err)
			case <-time.After(15 * time.Second):
				t.Fatal("no read finished")
			}
		}
		h.clock.AdvanceToNextTimer(t)
		step.Add(1)
	}
	h.clock.NextTimer(t)
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	if n := h.srv.Count("POST", appRoleIn); n < 13 {
		t.Fatalf("%d logins in three minutes", n)
	}
}

// TestVaultSealedDuringTraffic: Vault seals while the store holds a valid token. Renewals fail
// and are retried (state renewing, still ready) while the token lasts; reads say "sealed"; when
// the token expires the state fails; once Vault is unsealed the store logs in again and reads.
func TestVaultSealedDuringTraffic(t *testing.T) {
	h := newHarness(t)
	h.srv.RequireToken("")
	login := h.rec("approle_login")
	h.srv.Handle("POST", appRoleIn, login.WithAuth(t, "token-A-0001", 60, true))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_renew_self"))
	s := h.mustStore(h.appRoleConfig())
	if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
		t.Fatal(err)
	}

	sealed := h.rec("kv2_read_sealed")
	h.srv.Handle("POST", renewSelf, sealed)
	h.srv.Handle("GET", pathHubspot, sealed)
	h.srv.Handle("POST", appRoleIn, h.rec("approle_login_sealed"))
	expiry := h.obs.Last().ExpiresAt
	renewals := 0
	for h.clock.NextTimer(t).Before(expiry) {
		h.clock.AdvanceToNextTimer(t)
		h.clock.NextTimer(t)
		renewals++
		st := h.obs.Last()
		if st.State != vault.StateRenewing || st.Reason != "Vault is sealed" || !st.HasToken {
			t.Fatalf("state while the token lasts: %+v", st)
		}
		_, err := h.get(s, "vault:customers/acme/hubspot")
		wantCode(t, err, vault.CodeUnavailable)
		if !strings.Contains(err.Error(), "Vault is sealed") {
			t.Fatalf("error %q", err)
		}
	}
	if renewals < 5 {
		t.Fatalf("%d renewal attempts before the token expired", renewals)
	}
	if at := h.clock.NextTimer(t); !at.Equal(expiry) {
		t.Fatalf("the last wait ends at %s, not at the token's expiry", at.Sub(expiry))
	}
	h.clock.AdvanceToNextTimer(t) // the token expires; the login fails (sealed)
	h.clock.NextTimer(t)
	if st := h.obs.Last(); st.State != vault.StateFailing || st.HasToken {
		t.Fatalf("state after the expiry: %+v", st)
	}

	// unsealed
	h.srv.Handle("POST", appRoleIn, login.WithAuth(t, "token-B-0002", 60, true))
	h.srv.HandleRecorded(h.rec("kv2_read_as_approle"), h.rec("token_renew_self"))
	h.clock.AdvanceToNextTimer(t)
	h.clock.NextTimer(t)
	if st := h.obs.Last(); st.State != vault.StateLoggedIn {
		t.Fatalf("state after the unseal: %+v", st)
	}
	if _, err := h.get(s, "vault:customers/acme/hubspot"); err != nil {
		t.Fatal(err)
	}
}
