package vault

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// vaultBackend reads HashiCorp Vault (or OpenBao) KV v2 secrets. It owns one goroutine that
// keeps the client's token alive: the lifetime watcher renews it, and when renewal ends (max TTL
// reached, renewal refused) the backend logs in again.
type vaultBackend struct {
	client  *api.Client
	mount   string
	timeout time.Duration
	logger  *slog.Logger

	auth string
	// login obtains a token, sets it on client and returns the auth secret to watch.
	login func(ctx context.Context) (*api.Secret, error)

	loggedIn atomic.Bool
	// expiresAt is the token's expiry in Unix nanoseconds, 0 for a token that does not expire.
	expiresAt atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
}

// loginError reports a failed login by status only: a response body is not ours to repeat.
type loginError struct {
	auth   string
	status int   // HTTP status, 0 when no response arrived
	err    error // the cause when no response arrived (transport, file, option errors)
}

func (e *loginError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("vault login with %s auth rejected: HTTP %d", e.auth, e.status)
	}
	return fmt.Sprintf("vault login with %s auth: %v", e.auth, e.err)
}

func (e *loginError) Unwrap() error { return e.err }

// transient reports whether trying again later may succeed.
func (e *loginError) transient() bool {
	if e.status != 0 {
		return retryableStatus(e.status)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(e.err, &certErr) {
		return false // a CA or server name mismatch is configuration, not weather
	}
	// *url.Error is what the HTTP client returns for transport failures; a file or option error
	// (a missing service account token) is not worth retrying
	var urlErr *url.Error
	return errors.As(e.err, &urlErr) || errors.Is(e.err, context.DeadlineExceeded)
}

func newLoginError(auth string, err error) *loginError {
	var respErr *api.ResponseError
	if errors.As(err, &respErr) {
		return &loginError{auth: auth, status: respErr.StatusCode}
	}
	return &loginError{auth: auth, err: err}
}

func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed || status >= 500
}

func newVaultBackend(ctx context.Context, cfg VaultConfig, logger *slog.Logger) (*vaultBackend, error) {
	cfg = withVaultDefaults(cfg)
	client, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	v := &vaultBackend{
		client:  client,
		mount:   cfg.Mount,
		timeout: cfg.Timeout,
		logger:  logger.With("component", "vault", "auth", cfg.Auth),
		auth:    cfg.Auth,
		done:    make(chan struct{}),
	}
	if v.login, err = v.loginFunc(cfg); err != nil {
		return nil, err
	}

	authSecret, err := v.loginOnce(ctx)
	if err != nil {
		var le *loginError
		if !errors.As(err, &le) || !le.transient() {
			return nil, err
		}
		v.logger.Warn("vault login failed, retrying in the background", "err", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	v.cancel = cancel
	go v.run(runCtx, authSecret)
	return v, nil
}

func withVaultDefaults(cfg VaultConfig) VaultConfig {
	if cfg.Mount == "" {
		cfg.Mount = DefaultMount
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthToken
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = DefaultAppRoleMount
	}
	if cfg.K8sMount == "" {
		cfg.K8sMount = DefaultK8sMount
	}
	if cfg.K8sTokenPath == "" {
		cfg.K8sTokenPath = DefaultK8sTokenPath
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultVaultTimeout
	}
	return cfg
}

// newVaultClient builds a client from cfg alone. api.NewClient reads VAULT_TOKEN and
// VAULT_NAMESPACE from the environment, so both are reset here; retries are left to the caller,
// whose retry policy knows the message's budget.
func newVaultClient(cfg VaultConfig) (*api.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	conf := &api.Config{
		Address: cfg.Addr,
		HttpClient: &http.Client{
			Transport: transport,
			// the api client follows one redirect itself, keeping the token on the same scheme
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Timeout:    cfg.Timeout,
		MaxRetries: 0,
	}
	if cfg.CACert != "" || cfg.ClientCert != "" || cfg.TLSServerName != "" {
		err := conf.ConfigureTLS(&api.TLSConfig{
			CACert:        cfg.CACert,
			ClientCert:    cfg.ClientCert,
			ClientKey:     cfg.ClientKey,
			TLSServerName: cfg.TLSServerName,
		})
		if err != nil {
			return nil, fmt.Errorf("vault-ca-cert, vault-client-cert: %w", err)
		}
	}
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault-addr: %w", err)
	}
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// loginFunc returns how this backend obtains a token. AppRole and Kubernetes logins go through
// a token-less clone: a login must not carry an expired token, and the Kubernetes auth reads
// the (rotating) service account token file at every login.
func (v *vaultBackend) loginFunc(cfg VaultConfig) (func(context.Context) (*api.Secret, error), error) {
	if cfg.Auth == AuthToken {
		token := cfg.Token
		return func(ctx context.Context) (*api.Secret, error) {
			v.client.SetToken(token.Reveal())
			self, err := v.client.Auth().Token().LookupSelfWithContext(ctx)
			if err != nil {
				return nil, err
			}
			ttl, err := self.TokenTTL()
			if err != nil {
				return nil, err
			}
			renewable, err := self.TokenIsRenewable()
			if err != nil {
				return nil, err
			}
			return &api.Secret{Auth: &api.SecretAuth{
				ClientToken:   token.Reveal(),
				Renewable:     renewable,
				LeaseDuration: int(ttl / time.Second),
			}}, nil
		}, nil
	}
	loginClient, err := v.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault-addr: %w", err)
	}
	loginClient.ClearToken()
	loginClient.SetNamespace(cfg.Namespace)
	var method func() (api.AuthMethod, error)
	switch cfg.Auth {
	case AuthAppRole:
		method = func() (api.AuthMethod, error) {
			return approle.NewAppRoleAuth(cfg.RoleID, &approle.SecretID{FromString: cfg.SecretID.Reveal()},
				approle.WithMountPath(cfg.AppRoleMount))
		}
	case AuthKubernetes:
		method = func() (api.AuthMethod, error) {
			return kubernetes.NewKubernetesAuth(cfg.K8sRole,
				kubernetes.WithServiceAccountTokenPath(cfg.K8sTokenPath),
				kubernetes.WithMountPath(cfg.K8sMount))
		}
	default:
		return nil, errors.New("vault-auth: must be token, approle or kubernetes")
	}
	return func(ctx context.Context) (*api.Secret, error) {
		m, err := method()
		if err != nil {
			return nil, err
		}
		s, err := m.Login(ctx, loginClient)
		if err != nil {
			return nil, err
		}
		if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
			return nil, errors.New("login response carries no token")
		}
		v.client.SetToken(s.Auth.ClientToken)
		return s, nil
	}, nil
}

// loginOnce logs in and records the token's expiry; errors are *loginError.
func (v *vaultBackend) loginOnce(ctx context.Context) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	s, err := v.login(ctx)
	if err != nil {
		return nil, newLoginError(v.auth, err)
	}
	v.setExpiry(s.Auth.LeaseDuration)
	v.loggedIn.Store(true)
	v.logger.Info("vault login succeeded", "renewable", s.Auth.Renewable, "ttl", time.Duration(s.Auth.LeaseDuration)*time.Second)
	return s, nil
}

func (v *vaultBackend) setExpiry(leaseSeconds int) {
	if leaseSeconds <= 0 {
		v.expiresAt.Store(0)
		return
	}
	v.expiresAt.Store(time.Now().Add(time.Duration(leaseSeconds) * time.Second).UnixNano())
}

func (v *vaultBackend) close() {
	v.cancel()
	<-v.done
}

// run keeps a valid token until ctx ends: watch the current one, log in again when it can no
// longer be renewed. A token given by configuration cannot be replaced; it is used until it expires.
func (v *vaultBackend) run(ctx context.Context, authSecret *api.Secret) {
	defer close(v.done)
	// paces logins after the first, so that a server issuing very short leases is not hammered
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(time.Minute),
		backoff.WithMaxElapsedTime(0))
	for {
		if authSecret == nil {
			authSecret = v.loginUntilDone(ctx, bo)
			if authSecret == nil {
				return
			}
		}
		watched := time.Now()
		v.watch(ctx, authSecret)
		if time.Since(watched) > time.Minute {
			bo.Reset() // the token lived a normal life: log in again promptly
		}
		if ctx.Err() != nil {
			return
		}
		if v.auth == AuthToken {
			v.logger.Warn("vault token can no longer be renewed; reads fail once it expires")
			return
		}
		authSecret = nil
	}
}

// loginUntilDone logs in, pacing attempts with bo; nil once ctx is done.
func (v *vaultBackend) loginUntilDone(ctx context.Context, bo backoff.BackOff) *api.Secret {
	for {
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		s, err := v.loginOnce(ctx)
		if err == nil {
			return s
		}
		if ctx.Err() != nil {
			return nil
		}
		v.logger.Warn("vault login failed, retrying", "err", err)
	}
}

// watch renews authSecret until renewal ends or ctx is done.
func (v *vaultBackend) watch(ctx context.Context, authSecret *api.Secret) {
	if authSecret.Auth.LeaseDuration <= 0 {
		<-ctx.Done() // a token without TTL (a root token) never needs renewal
		return
	}
	w, err := v.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: authSecret})
	if err != nil {
		v.logger.Warn("vault token renewal not started", "err", err)
		return
	}
	go w.Start()
	for {
		select {
		case <-ctx.Done():
			w.Stop()
			<-w.DoneCh()
			return
		case err := <-w.DoneCh():
			if err != nil {
				v.logger.Warn("vault token renewal stopped", "err", err)
			} else {
				v.logger.Info("vault token reached the end of its renewable life")
			}
			return
		case r := <-w.RenewCh():
			if r.Secret != nil && r.Secret.Auth != nil {
				v.setExpiry(r.Secret.Auth.LeaseDuration)
				v.logger.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

// kvResponse is the part of a KV v2 read response the backend looks at.
type kvResponse struct {
	Data *struct {
		Data     map[string]any `json:"data"`
		Metadata struct {
			DeletionTime string `json:"deletion_time"`
			Destroyed    bool   `json:"destroyed"`
		} `json:"metadata"`
	} `json:"data"`
}

func (v *vaultBackend) fetch(ctx context.Context, ref Ref) (map[string]any, error) {
	if ref.mount != "" && ref.mount != v.mount {
		return nil, &RefError{Reason: "reference names KV mount " + ref.mount + " but the store reads mount " + v.mount}
	}
	if !v.loggedIn.Load() {
		return nil, &UnavailableError{Ref: ref, Detail: "not logged in to Vault yet"}
	}
	if exp := v.expiresAt.Load(); exp != 0 && time.Now().UnixNano() >= exp {
		return nil, &UnavailableError{Ref: ref, Detail: "Vault token expired, logging in again"}
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	resp, err := v.client.Logical().ReadRawWithContext(ctx, v.mount+"/data/"+ref.Path)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		// transport errors name the URL (mount and path), never the token or a secret
		return nil, &UnavailableError{Ref: ref, Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	switch {
	case status == http.StatusOK:
		body, err := decodeKV(resp.Body)
		if err != nil || body.Data == nil || body.Data.Data == nil {
			return nil, &UnavailableError{Ref: ref, Detail: "malformed KV v2 response"}
		}
		return body.Data.Data, nil
	case status == http.StatusNotFound:
		return nil, &NotFoundError{Ref: ref, Detail: notFoundDetail(resp.Body)}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &PermissionError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status)}
	case status == http.StatusServiceUnavailable:
		return nil, &UnavailableError{Ref: ref, Detail: "HTTP 503, Vault sealed or in maintenance"}
	case retryableStatus(status):
		return nil, &UnavailableError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status)}
	default:
		// an unexpected answer: let the bounded redelivery policy decide, rather than guess permanence
		return nil, &UnavailableError{Ref: ref, Detail: "unexpected HTTP " + strconv.Itoa(status)}
	}
}

// decodeKV parses a KV v2 body; decoder errors are dropped by the caller since they may quote it.
func decodeKV(r io.Reader) (kvResponse, error) {
	var body kvResponse
	err := json.NewDecoder(io.LimitReader(r, maxSecretBytes)).Decode(&body)
	return body, err
}

// notFoundDetail tells a never-written path from a deleted or destroyed latest version: Vault
// answers 404 to all three, the latter two with the version's metadata.
func notFoundDetail(r io.Reader) string {
	body, err := decodeKV(r)
	switch {
	case err != nil || body.Data == nil:
		return ""
	case body.Data.Metadata.Destroyed:
		return "version destroyed"
	case body.Data.Metadata.DeletionTime != "":
		return "version deleted"
	}
	return ""
}
