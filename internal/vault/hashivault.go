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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// vaultBackend reads HashiCorp Vault (or OpenBao) KV v2 secrets. One goroutine (run, in
// token.go) keeps its token alive; reads take the current token and, when Vault refuses it,
// find out whether the token or the policy is at fault.
type vaultBackend struct {
	client  *api.Client // carries no token: each token gets a clone of its own (newTokenClient)
	cfg     VaultConfig
	mount   string
	timeout time.Duration
	logger  *slog.Logger
	clock   Clock
	obs     Observer

	auth string
	// login obtains a token.
	login func(ctx context.Context) (grant, error)

	// mu guards the token state below; changed is closed (and replaced) at every change of it,
	// so that reads can wait for a login in progress.
	mu        sync.Mutex
	tok       *token
	gen       uint64
	loggingIn bool
	attempts  uint64 // login attempts finished
	// attemptsAtDrop is attempts when the last token was dropped (revoked, expired)
	attemptsAtDrop uint64
	status         Status
	changed        chan struct{}

	// kick wakes run: a read found the current token revoked or expired.
	kick chan struct{}

	// kvVersion caches what a 404 made the backend find out about the mount: 0 unknown, 1 KV v1,
	// 2 anything else (KV v2, or Vault would not say).
	kvVersion atomic.Int32

	cancel context.CancelFunc
	done   chan struct{}
}

// token is one Vault token and what the backend knows of its life.
type token struct {
	client    *api.Client // sends this token and no other
	gen       uint64
	expiresAt time.Time     // zero: never expires
	increment time.Duration // asked for at renewal: the lease granted at login
	renewable bool
	// renewAt is when to renew, or log in again, so that a new token exists before this one expires.
	renewAt time.Time
	// final: renewal cannot extend this token any more (max TTL reached, renewal refused).
	final bool
}

func (t *token) expired(now time.Time) bool {
	return !t.expiresAt.IsZero() && !now.Before(t.expiresAt)
}

// loginError reports a failed login by status only: a response body is not ours to repeat,
// except for Vault's fixed "Vault is sealed".
type loginError struct {
	auth   string
	status int   // HTTP status, 0 when no response arrived
	sealed bool  // the server said it is sealed
	err    error // the cause when no response arrived (transport, file, option errors)
}

func (e *loginError) Error() string {
	prefix := "vault login with " + e.auth + " auth"
	switch {
	case e.sealed:
		return prefix + " failed: Vault is sealed (HTTP 503)"
	case e.status != 0 && retryableStatus(e.status):
		return prefix + " failed: Vault unavailable (HTTP " + strconv.Itoa(e.status) + ")"
	case e.status != 0:
		return prefix + " rejected: HTTP " + strconv.Itoa(e.status)
	case e.unreachable():
		return prefix + " failed: Vault unreachable: " + e.err.Error()
	}
	return prefix + ": " + e.err.Error()
}

func (e *loginError) Unwrap() error { return e.err }

// reason is the short form of the error for readiness and metrics: no URL, no detail.
func (e *loginError) reason() string {
	switch {
	case e.sealed:
		return "Vault is sealed"
	case e.status != 0 && retryableStatus(e.status):
		return "Vault unavailable (HTTP " + strconv.Itoa(e.status) + ")"
	case e.status != 0:
		return "login rejected (HTTP " + strconv.Itoa(e.status) + ")"
	case e.unreachable():
		return "Vault unreachable"
	}
	return "login failed"
}

// unreachable reports a transport failure: no answer from the server.
func (e *loginError) unreachable() bool {
	if e.err == nil {
		return false
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

// transient reports whether trying again later may succeed.
func (e *loginError) transient() bool {
	if e.status != 0 {
		return retryableStatus(e.status)
	}
	return e.unreachable()
}

func newLoginError(auth string, err error) *loginError {
	var respErr *api.ResponseError
	if errors.As(err, &respErr) {
		return &loginError{auth: auth, status: respErr.StatusCode, sealed: sealedAnswer(respErr.StatusCode, respErr.Errors)}
	}
	return &loginError{auth: auth, err: err}
}

// sealedText is the error Vault and OpenBao answer with while sealed (consts.ErrSealed). It
// only picks the words of a message: 503 is retried whatever its text.
const sealedText = "Vault is sealed"

func sealedAnswer(status int, errs []string) bool {
	return status == http.StatusServiceUnavailable && slices.Contains(errs, sealedText)
}

func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed || status >= 500
}

func newVaultBackend(ctx context.Context, cfg VaultConfig, clock Clock, obs Observer, logger *slog.Logger) (*vaultBackend, error) {
	cfg = withVaultDefaults(cfg)
	client, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = systemClock{}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	v := &vaultBackend{
		client:  client,
		cfg:     cfg,
		mount:   cfg.Mount,
		timeout: cfg.Timeout,
		// the caller names the component; the backend adds what it is
		logger:  logger.With("backend", "vault", "auth", cfg.Auth),
		clock:   clock,
		obs:     obs,
		auth:    cfg.Auth,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if v.login, err = v.loginFunc(cfg); err != nil {
		return nil, err
	}

	if err := v.loginOnce(ctx); err != nil {
		var le *loginError
		if !errors.As(err, &le) || !le.transient() {
			return nil, err
		}
		v.logger.Warn("vault not ready at start-up; reads answer secret_backend_unavailable while the login is retried in the background",
			"reason", le.reason(), "err", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	v.cancel = cancel
	go v.run(runCtx)
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

// newTokenClient returns a client that sends tok: a clone sharing the HTTP client (connections,
// TLS), so that a request and the token it carries can never be mixed up by a concurrent login.
// "" gives a client without a token, for logins.
func (v *vaultBackend) newTokenClient(tok string) (*api.Client, error) {
	c, err := v.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault-addr: %w", err)
	}
	// Clone runs api.NewClient, which reads VAULT_TOKEN and VAULT_NAMESPACE again
	c.ClearToken()
	c.ClearNamespace()
	if v.cfg.Namespace != "" {
		c.SetNamespace(v.cfg.Namespace)
	}
	if tok != "" {
		c.SetToken(tok)
	}
	return c, nil
}

// loginFunc returns how this backend obtains a token. AppRole and Kubernetes logins go through
// a token-less client: a login must not carry an expired token, and the Kubernetes auth reads
// the (rotating) service account token file at every login. Token auth "logs in" by looking
// the configured token up.
func (v *vaultBackend) loginFunc(cfg VaultConfig) (func(context.Context) (grant, error), error) {
	if cfg.Auth == AuthToken {
		configured := cfg.Token
		return func(ctx context.Context) (grant, error) {
			c, err := v.newTokenClient(configured.Reveal())
			if err != nil {
				return grant{}, err
			}
			self, err := c.Auth().Token().LookupSelfWithContext(ctx)
			if err != nil {
				return grant{}, err
			}
			ttl, err := self.TokenTTL()
			if err != nil {
				return grant{}, err
			}
			renewable, err := self.TokenIsRenewable()
			if err != nil {
				return grant{}, err
			}
			// renewal asks for the token's own TTL again (creation_ttl), not the time it has left
			increment := ttl
			if n, ok := self.Data["creation_ttl"].(json.Number); ok {
				if secs, err := n.Int64(); err == nil && secs > 0 {
					increment = time.Duration(secs) * time.Second
				}
			}
			return grant{client: c, lease: ttl, increment: increment, renewable: renewable}, nil
		}, nil
	}
	loginClient, err := v.newTokenClient("")
	if err != nil {
		return nil, err
	}
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
	return func(ctx context.Context) (grant, error) {
		m, err := method()
		if err != nil {
			return grant{}, err
		}
		s, err := m.Login(ctx, loginClient)
		if err != nil {
			return grant{}, err
		}
		if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
			return grant{}, errors.New("login response carries no token")
		}
		c, err := v.newTokenClient(s.Auth.ClientToken)
		if err != nil {
			return grant{}, err
		}
		lease := time.Duration(s.Auth.LeaseDuration) * time.Second
		return grant{client: c, lease: lease, increment: lease, renewable: s.Auth.Renewable}, nil
	}, nil
}

// grant is what a login obtained: a client carrying the new token, and its lease.
type grant struct {
	client    *api.Client
	lease     time.Duration // 0: the token never expires
	increment time.Duration // what to ask for at renewal
	renewable bool
}

func (v *vaultBackend) close() {
	v.cancel()
	<-v.done
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

// fetch reads ref with the current token. When Vault refuses the token (401, 403) it asks Vault
// about the token itself: a revoked or expired token is replaced and the read tried once more;
// only a valid token refused by its policy is a *PermissionError.
func (v *vaultBackend) fetch(ctx context.Context, ref Ref) (map[string]any, error) {
	if ref.mount != "" && ref.mount != v.mount {
		return nil, &RefError{Reason: "reference names KV mount " + ref.mount + " but the store reads mount " + v.mount}
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	tok, err := v.awaitToken(ctx, ref, 0)
	if err != nil {
		return nil, err
	}
	obj, status, err := v.read(ctx, tok, ref)
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return obj, err
	}
	valid, lookupErr := v.tokenValid(ctx, tok)
	switch {
	case lookupErr != nil:
		return nil, &UnavailableError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status) + ", and Vault could not say whether the token is valid", Err: lookupErr}
	case valid:
		return nil, &PermissionError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status) + ", the Vault policy does not allow this path"}
	}
	v.invalidate(tok.gen, "token revoked or expired")
	tok, err = v.awaitToken(ctx, ref, tok.gen)
	if err != nil {
		return nil, err
	}
	obj, status, err = v.read(ctx, tok, ref)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		// a token issued a moment ago: the policy is at fault
		return nil, &PermissionError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status) + ", the Vault policy does not allow this path"}
	}
	return obj, err
}

// read is one KV v2 read with tok; status is the HTTP status, 0 when none came back.
func (v *vaultBackend) read(ctx context.Context, tok *token, ref Ref) (map[string]any, int, error) {
	resp, err := tok.client.Logical().ReadRawWithContext(ctx, v.mount+"/data/"+ref.Path)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		// transport errors name the URL (mount and path), never the token or a secret
		return nil, 0, &UnavailableError{Ref: ref, Detail: "Vault unreachable", Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	switch {
	case status == http.StatusOK:
		body, err := decodeKV(resp.Body)
		if err != nil || body.Data == nil || body.Data.Data == nil {
			return nil, status, &UnavailableError{Ref: ref, Detail: "malformed KV v2 response"}
		}
		return body.Data.Data, status, nil
	case status == http.StatusNotFound:
		detail := notFoundDetail(resp.Body)
		if detail == "" && v.isKVv1(ctx, tok) {
			detail = "mount " + v.mount + " is a KV v1 mount; the store reads KV v2 mounts only (--vault-mount)"
		}
		return nil, status, &NotFoundError{Ref: ref, Detail: detail}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, status, &PermissionError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status)}
	case status == http.StatusServiceUnavailable:
		if sealedAnswer(status, errorsOf(resp.Body)) {
			return nil, status, &UnavailableError{Ref: ref, Detail: "Vault is sealed (HTTP 503)"}
		}
		return nil, status, &UnavailableError{Ref: ref, Detail: "Vault unavailable (HTTP 503)"}
	case retryableStatus(status):
		return nil, status, &UnavailableError{Ref: ref, Detail: "HTTP " + strconv.Itoa(status)}
	default:
		// an unexpected answer: let the bounded redelivery policy decide, rather than guess permanence
		return nil, status, &UnavailableError{Ref: ref, Detail: "unexpected HTTP " + strconv.Itoa(status)}
	}
}

// tokenValid asks Vault about tok (lookup-self): false when Vault no longer knows it (revoked,
// expired), an error when Vault could not answer.
func (v *vaultBackend) tokenValid(ctx context.Context, tok *token) (bool, error) {
	_, err := tok.client.Auth().Token().LookupSelfWithContext(ctx)
	var respErr *api.ResponseError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &respErr) && (respErr.StatusCode == http.StatusForbidden || respErr.StatusCode == http.StatusUnauthorized):
		return false, nil
	case errors.As(err, &respErr):
		// status only: the body is the server's to word
		return false, errors.New("token lookup answered HTTP " + strconv.Itoa(respErr.StatusCode))
	}
	return false, err
}

// isKVv1 reports whether the mount is a KV version 1 mount, whose reads under data/ all answer
// 404. Vault's preflight endpoint answers any token with a capability below the mount; the
// answer is cached, and an unknown answer counts as not v1.
func (v *vaultBackend) isKVv1(ctx context.Context, tok *token) bool {
	if known := v.kvVersion.Load(); known != 0 {
		return known == 1
	}
	s, err := tok.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+v.mount)
	var respErr *api.ResponseError
	switch {
	case errors.As(err, &respErr):
		v.kvVersion.Store(2) // Vault will not say (an old server, a policy): do not ask again
		return false
	case err != nil || s == nil || s.Data == nil:
		return false
	}
	if typ, _ := s.Data["type"].(string); typ != "kv" {
		v.kvVersion.Store(2)
		return false
	}
	version := "1" // a kv mount without a version option is version 1
	if opts, ok := s.Data["options"].(map[string]any); ok {
		if ver, ok := opts["version"].(string); ok && ver != "" {
			version = ver
		}
	}
	if version == "1" {
		v.kvVersion.Store(1)
		return true
	}
	v.kvVersion.Store(2)
	return false
}

// decodeKV parses a KV v2 body; decoder errors are dropped by the caller since they may quote it.
func decodeKV(r io.Reader) (kvResponse, error) {
	var body kvResponse
	err := json.NewDecoder(io.LimitReader(r, maxSecretBytes)).Decode(&body)
	return body, err
}

// errorsOf reads Vault's {"errors": [...]} body; nil when it is something else.
func errorsOf(r io.Reader) []string {
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&body) != nil {
		return nil
	}
	return body.Errors
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
