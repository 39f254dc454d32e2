package vault

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/vault/api"
)

// Login states of the Vault backend, as reported to an Observer.
const (
	// StateLoggedIn: the backend holds a valid token with time to spare.
	StateLoggedIn = "logged_in"
	// StateRenewing: the token is still valid but renewing or replacing it has not succeeded
	// yet (Vault sealed or unreachable meanwhile, a replacement login refused); retried.
	StateRenewing = "renewing"
	// StateFailing: the backend holds no valid token (not logged in yet, token expired or
	// revoked, logins failing); reads answer secret_backend_unavailable.
	StateFailing = "failing"
)

// Status is the Vault backend's login state.
type Status struct {
	State string
	// Reason says in a few fixed words why the state is not logged_in ("Vault is sealed",
	// "Vault unreachable", "login rejected (HTTP 400)", "token revoked or expired"); "" when it
	// is. It carries no URL, token or secret and may be served by /readyz.
	Reason string
	// HasToken is true while a token is held; ExpiresAt is its expiry, zero when it never expires.
	HasToken  bool
	ExpiresAt time.Time
}

// Observer learns the Vault backend's state. Calls come from the backend's goroutines, one at
// a time, and must not block.
type Observer interface {
	// VaultStatus is called at every change of the state or of the token's expiry.
	VaultStatus(Status)
	// VaultLogin is called after every login attempt.
	VaultLogin(ok bool)
}

type nopObserver struct{}

func (nopObserver) VaultStatus(Status) {}
func (nopObserver) VaultLogin(bool)    {}

// renewFraction of a lease passes before the token is renewed or replaced: the remaining third
// leaves room for a slow or failed attempt and a retry before the token expires.
const renewFraction = 2.0 / 3

// newLoginBackOff paces login attempts after failures only; it is reset by every successful
// login, so that a run of short-lived tokens never accumulates waits.
func newLoginBackOff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(time.Minute),
		backoff.WithMaxElapsedTime(0))
}

// loginOnce logs in and installs the new token; errors are *loginError. Reads waiting for a
// token wait for the attempt to end.
func (v *vaultBackend) loginOnce(ctx context.Context) error {
	v.mu.Lock()
	v.loggingIn = true
	v.notifyLocked()
	v.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	g, err := v.login(ctx)
	now := v.clock.Now()
	v.obs.VaultLogin(err == nil)

	v.mu.Lock()
	defer v.mu.Unlock()
	v.loggingIn = false
	v.attempts++
	if err != nil {
		le := newLoginError(v.auth, err)
		if v.tok != nil && !v.tok.expired(now) {
			v.setStatusLocked(StateRenewing, le.reason())
		} else {
			v.tok = nil
			v.setStatusLocked(StateFailing, le.reason())
		}
		return le
	}
	v.gen++
	t := &token{client: g.client, gen: v.gen, increment: g.increment, renewable: g.renewable}
	if g.lease > 0 {
		t.expiresAt = now.Add(g.lease)
		t.renewAt = now.Add(time.Duration(float64(g.lease) * renewFraction))
	}
	v.tok = t
	v.setStatusLocked(StateLoggedIn, "")
	v.logger.Info("vault login succeeded", "renewable", g.renewable, "ttl", g.lease)
	return nil
}

// setStatusLocked records and reports the state; v.mu is held.
func (v *vaultBackend) setStatusLocked(state, reason string) {
	st := Status{State: state, Reason: reason}
	if v.tok != nil {
		st.HasToken, st.ExpiresAt = true, v.tok.expiresAt
	}
	v.status = st
	v.obs.VaultStatus(st)
	v.notifyLocked()
}

func (v *vaultBackend) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// invalidate drops the token of generation gen (a read found Vault no longer knows it) and
// wakes run to log in again at once. A token already replaced is left alone.
func (v *vaultBackend) invalidate(gen uint64, reason string) {
	v.mu.Lock()
	if v.tok == nil || v.tok.gen != gen {
		v.mu.Unlock()
		return
	}
	v.tok = nil
	v.attemptsAtDrop = v.attempts
	v.setStatusLocked(StateFailing, reason)
	v.mu.Unlock()
	v.logger.Warn("vault refused the token: " + reason + "; logging in again")
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// awaitToken returns a token newer than generation after, waiting for a login in progress (one
// login round trip at most); *UnavailableError when there is none.
func (v *vaultBackend) awaitToken(ctx context.Context, ref Ref, after uint64) (*token, error) {
	for {
		// the token and the time are read together: a token renewed since would otherwise look
		// expired to a clock read after
		v.mu.Lock()
		now := v.clock.Now()
		tok, loggingIn, status, changed := v.tok, v.loggingIn, v.status, v.changed
		noAttemptSinceDrop := v.attempts == v.attemptsAtDrop
		v.mu.Unlock()
		if tok != nil && tok.gen > after && !tok.expired(now) {
			return tok, nil
		}
		// after a refused token, wait for the login that replaces it (run starts it at once)
		waitForLogin := loggingIn || (after != 0 && tok == nil && noAttemptSinceDrop)
		if !waitForLogin {
			reason := status.Reason
			switch {
			case tok != nil && tok.expired(now):
				reason = "token expired, logging in again"
			case reason == "":
				reason = "not logged in yet"
			}
			return nil, &UnavailableError{Ref: ref, Detail: "no valid Vault token: " + reason}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, &UnavailableError{Ref: ref, Detail: "no valid Vault token: waiting for a login", Err: ctx.Err()}
		}
	}
}

// step is what run does next with the token.
type step int

const (
	stepNone  step = iota // nothing until the token expires, a read refuses it, or ctx ends
	stepLogin             // obtain a new token
	stepRenew             // renew the current token
)

// run keeps a valid token until ctx ends. With no token it logs in: at once after a token's
// end, after the backoff's wait when the last attempt failed. A renewable token is renewed at
// two thirds of its lease; a token that cannot be renewed (further) is replaced by a new login
// at two thirds of its lease, or at once when renewal reached the max TTL. A configured token
// cannot be replaced: it is renewed while it can be and used until it expires. A failed renewal
// or login is retried, paced by the backoff, while the token lasts; every success resets the
// backoff.
func (v *vaultBackend) run(ctx context.Context) {
	defer close(v.done)
	bo := newLoginBackOff()
	var retryAt time.Time // when to try again after a failed attempt; zero after a success
	if v.currentToken() == nil {
		retryAt = v.clock.Now().Add(bo.NextBackOff()) // New's own attempt failed
	}
	for {
		now := v.clock.Now()
		tok := v.currentToken()
		if tok != nil && tok.expired(now) {
			v.dropExpired(tok)
			tok = nil
		}
		next, at := v.plan(tok, now)
		if !retryAt.IsZero() && next != stepNone {
			at = retryAt
			if tok != nil {
				at = minTime(retryAt, tok.expiresAt)
			}
		}

		kicked, ok := v.wait(ctx, at)
		if !ok {
			return
		}
		if kicked || v.currentToken() != tok {
			// a read found the token refused: log in at once
			if v.currentToken() == nil {
				retryAt = time.Time{}
			}
			continue
		}
		if tok != nil && tok.expired(v.clock.Now()) {
			continue
		}

		var failed bool
		switch next {
		case stepLogin:
			err := v.loginOnce(ctx)
			if ctx.Err() != nil {
				return
			}
			if failed = err != nil; failed {
				v.logLoginFailure(err, tok, bo)
			}
		case stepRenew:
			failed = !v.renew(ctx, tok)
		case stepNone:
			continue
		}
		if failed {
			retryAt = v.clock.Now().Add(bo.NextBackOff())
		} else {
			bo.Reset()
			retryAt = time.Time{}
		}
	}
}

// plan says what to do next with tok, and when; a zero time waits for a kick or ctx only.
func (v *vaultBackend) plan(tok *token, now time.Time) (step, time.Time) {
	switch {
	case tok == nil:
		return stepLogin, now
	case tok.expiresAt.IsZero():
		return stepNone, time.Time{} // a token without TTL (a root token) never needs renewal
	case tok.renewable && !tok.final:
		return stepRenew, tok.renewAt
	case v.auth == AuthToken:
		return stepNone, tok.expiresAt // cannot be replaced: dropped when it expires
	}
	return stepLogin, tok.renewAt
}

func (v *vaultBackend) logLoginFailure(err error, tok *token, bo *backoff.ExponentialBackOff) {
	var le *loginError
	if !errors.As(err, &le) {
		return
	}
	now := v.clock.Now()
	if tok != nil && !tok.expired(now) {
		v.logger.Warn("vault login to replace the token failed; the current token is used meanwhile",
			"reason", le.reason(), "err", err, "expires_in", tok.expiresAt.Sub(now))
		return
	}
	v.logger.Warn("vault login failed; retrying", "reason", le.reason(), "err", err)
}

// renew renews tok once; false when it failed and should be retried. A renewal that cannot
// extend the token (max TTL reached) or that Vault refuses makes it final: run then logs in
// again at once. A token Vault no longer knows is dropped.
func (v *vaultBackend) renew(ctx context.Context, tok *token) bool {
	rctx, cancel := context.WithTimeout(ctx, v.timeout)
	s, err := tok.client.Auth().Token().RenewSelfWithContext(rctx, int(tok.increment/time.Second))
	cancel()
	now := v.clock.Now()
	var respErr *api.ResponseError
	switch {
	case err == nil && s != nil && s.Auth != nil:
		lease := time.Duration(s.Auth.LeaseDuration) * time.Second
		renewed := *tok
		renewed.expiresAt = now.Add(lease)
		renewed.renewAt = now.Add(time.Duration(float64(lease) * renewFraction))
		if lease < tok.increment {
			// capped by the token's max TTL: no renewal will extend it again
			renewed.final, renewed.renewAt = true, now
		}
		switch {
		case !renewed.final:
			v.replace(tok, &renewed, StateLoggedIn, "")
			v.logger.Debug("vault token renewed", "ttl", lease)
		case v.auth == AuthToken:
			v.replace(tok, &renewed, StateLoggedIn, "")
			v.logger.Warn("the configured vault token reached its max TTL; reads fail once it expires", "expires_in", lease)
		default:
			v.replace(tok, &renewed, StateRenewing, "token reached its max TTL")
			v.logger.Info("vault token reached its max TTL; logging in again", "expires_in", lease)
		}
		return true
	case errors.As(err, &respErr) && (respErr.StatusCode == http.StatusForbidden || respErr.StatusCode == http.StatusUnauthorized):
		v.invalidate(tok.gen, "token revoked or expired")
		return true
	case errors.As(err, &respErr) && !retryableStatus(respErr.StatusCode):
		final := *tok
		final.final, final.renewAt = true, now
		reason := "renewal refused (HTTP " + strconv.Itoa(respErr.StatusCode) + ")"
		v.replace(tok, &final, StateRenewing, reason)
		v.logger.Warn("vault refused to renew the token; logging in again", "reason", reason)
		return true
	}
	le := newLoginError(v.auth, err)
	v.mu.Lock()
	if v.tok == tok {
		v.setStatusLocked(StateRenewing, le.reason())
	}
	v.mu.Unlock()
	v.logger.Warn("vault token renewal failed; retrying while the token lasts", "reason", le.reason(),
		"expires_in", tok.expiresAt.Sub(now))
	return false
}

// replace installs next in place of old, unless old is no longer current.
func (v *vaultBackend) replace(old, next *token, state, reason string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tok != old {
		return
	}
	v.tok = next
	v.setStatusLocked(state, reason)
}

// wait waits until at (zero: indefinitely), a kick or ctx's end; ok is false when ctx ended.
func (v *vaultBackend) wait(ctx context.Context, at time.Time) (kicked, ok bool) {
	var timer <-chan time.Time
	if !at.IsZero() {
		if !at.After(v.clock.Now()) {
			return false, ctx.Err() == nil
		}
		c, stop := v.clock.TimerAt(at)
		defer stop()
		timer = c
	}
	select {
	case <-ctx.Done():
		return false, false
	case <-timer:
		return false, true
	case <-v.kick:
		return true, true
	}
}

func (v *vaultBackend) currentToken() *token {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tok
}

// dropExpired forgets tok once it has expired.
func (v *vaultBackend) dropExpired(tok *token) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tok != tok {
		return
	}
	v.tok = nil
	v.attemptsAtDrop = v.attempts
	v.setStatusLocked(StateFailing, "token expired")
	v.logger.Warn("vault token expired; logging in again")
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}
