package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Vault auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// Defaults applied by New to unset VaultConfig fields.
const (
	DefaultMount        = defaultMount
	DefaultAppRoleMount = "approle"
	DefaultK8sMount     = "kubernetes"
	DefaultK8sTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultVaultTimeout = 10 * time.Second
)

// Config selects and configures the backends. A backend whose setting is empty is off.
type Config struct {
	// FileDir is the file backend's root directory; "" turns the file backend off.
	FileDir string
	// EnvEnabled turns the env backend on. With EnvPrefix set, only variables with that prefix
	// may be referenced.
	EnvEnabled bool
	EnvPrefix  string
	// LookupEnv reads environment variables for the env backend; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Vault configures the HashiCorp Vault KV v2 backend; Addr "" turns it off.
	Vault VaultConfig
	// VaultObserver learns the Vault backend's login state (readiness, metrics); nil: nobody.
	VaultObserver Observer
	// Clock times the Vault token's life; nil means the real time.
	Clock Clock
}

// VaultConfig configures the Vault backend. The client never reads VAULT_* environment
// variables itself: all settings come from here, so what runs is what was configured.
type VaultConfig struct {
	Addr      string
	Namespace string
	// Mount is the KV v2 mount; default "secret".
	Mount string
	// Auth is "token" (the default), "approle" or "kubernetes".
	Auth  string
	Token secret.Value

	RoleID       string
	SecretID     secret.Value
	AppRoleMount string // default "approle"

	K8sRole      string
	K8sMount     string // default "kubernetes"
	K8sTokenPath string // default /var/run/secrets/kubernetes.io/serviceaccount/token; read at every login

	CACert, ClientCert, ClientKey, TLSServerName string

	// Timeout bounds every Vault request; default 10s.
	Timeout time.Duration
}

// Validate reports the first bad setting by its command-line name.
func (c *Config) Validate() error {
	if c.FileDir == "" && !c.EnvEnabled && c.Vault.Addr == "" {
		return errors.New("secrets-dir: no secret backend is on: set --secrets-dir, --secrets-env or --vault-addr")
	}
	if c.EnvPrefix != "" && !isEnvName(c.EnvPrefix) {
		return errors.New("secrets-env-prefix: must be letters, digits and '_', not starting with a digit")
	}
	if c.Vault.Addr == "" {
		return nil
	}
	return c.Vault.validate()
}

func (v *VaultConfig) validate() error {
	u, err := url.Parse(v.Addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("vault-addr: must be an http:// or https:// URL")
	}
	if v.Mount != "" && validatePath(v.Mount) != nil {
		return errors.New("vault-mount: must be a relative path of letters, digits, '_', '-' or '.'")
	}
	if v.Namespace != "" && validatePath(strings.TrimSuffix(v.Namespace, "/")) != nil {
		return errors.New("vault-namespace: must be a relative path of letters, digits, '_', '-' or '.'")
	}
	switch v.Auth {
	case "", AuthToken:
		if v.Token.IsZero() {
			return errors.New("vault-token: required with --vault-auth token")
		}
	case AuthAppRole:
		if v.RoleID == "" {
			return errors.New("vault-role-id: required with --vault-auth approle")
		}
		if v.SecretID.IsZero() {
			return errors.New("vault-secret-id: required with --vault-auth approle")
		}
		if v.AppRoleMount != "" && validatePath(v.AppRoleMount) != nil {
			return errors.New("vault-approle-mount: must be a relative path of letters, digits, '_', '-' or '.'")
		}
	case AuthKubernetes:
		if v.K8sRole == "" {
			return errors.New("vault-k8s-role: required with --vault-auth kubernetes")
		}
		if v.K8sMount != "" && validatePath(v.K8sMount) != nil {
			return errors.New("vault-k8s-mount: must be a relative path of letters, digits, '_', '-' or '.'")
		}
	default:
		return errors.New("vault-auth: must be token, approle or kubernetes")
	}
	if (v.ClientCert == "") != (v.ClientKey == "") {
		return errors.New("vault-client-cert: --vault-client-cert and --vault-client-key go together")
	}
	if v.Timeout < 0 {
		return errors.New("vault timeout: must not be negative")
	}
	return nil
}

// fetcher reads the object a reference's path points to. Field selection and validation are
// the Store's job, except for env, where a field reference names a bare value.
type fetcher interface {
	fetch(ctx context.Context, ref Ref) (map[string]any, error)
}

// Store fetches secrets by reference, dispatching on the scheme to the configured backends.
type Store struct {
	file  *fileBackend
	env   *envBackend
	vault *vaultBackend

	closeOnce sync.Once
	closeErr  error
}

// New builds the backends whose configuration is set. With Vault it logs in before returning:
// a rejected login (bad secret id, unknown role) fails New, while an unreachable or sealed
// server is retried in the background, reads answering *UnavailableError meanwhile. Renewal
// runs until Close or until ctx is done.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{}
	if cfg.FileDir != "" {
		fb, err := newFileBackend(cfg.FileDir)
		if err != nil {
			return nil, err
		}
		s.file = fb
	}
	if cfg.EnvEnabled {
		lookup := cfg.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		s.env = &envBackend{prefix: cfg.EnvPrefix, lookup: lookup}
	}
	if cfg.Vault.Addr != "" {
		vb, err := newVaultBackend(ctx, cfg.Vault, cfg.Clock, cfg.VaultObserver, logger)
		if err != nil {
			s.closeFile()
			return nil, err
		}
		s.vault = vb
	}
	return s, nil
}

// Get fetches the secret ref points to and returns it as an Airbyte credentials object. Errors
// are the package's typed errors; none carries secret content.
func (s *Store) Get(ctx context.Context, ref Ref) (secret.Fields, error) {
	obj, err := s.fetch(ctx, ref)
	if err != nil {
		return secret.Fields{}, err
	}
	return credentials(ref, obj)
}

// Backend names the backend serving ref ("file", "env", "vault"), for metrics labels; "unknown"
// for a malformed reference.
func (s *Store) Backend(ref Ref) string {
	switch ref.Scheme {
	case SchemeFile, SchemeEnv, SchemeVault:
		return ref.Scheme
	}
	return "unknown"
}

// Close stops Vault token renewal and releases the file directory.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.vault != nil {
			s.vault.close()
		}
		s.closeErr = s.closeFile()
	})
	return s.closeErr
}

func (s *Store) closeFile() error {
	if s.file == nil {
		return nil
	}
	return s.file.close()
}

// ResolveValue fetches a single value by reference, for the provisioner's own settings (the
// Airbyte client secret, say: vault:provisioner/airbyte#client_secret). The reference must
// name a field; no path policy and no credentials shape apply.
func ResolveValue(ctx context.Context, s *Store, ref string) (secret.Value, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return secret.Value{}, err
	}
	if r.Field == "" {
		return secret.Value{}, &RefError{Reason: "a single value needs a #field"}
	}
	obj, err := s.fetch(ctx, r)
	if err != nil {
		return secret.Value{}, err
	}
	v, ok := obj[r.Field].(string)
	if !ok || v == "" {
		return secret.Value{}, &InvalidCredentialsError{Ref: r, Missing: []string{r.Field}}
	}
	return secret.New(v), nil
}

// fetch returns the object ref points to, reduced to ref.Field when one is named.
func (s *Store) fetch(ctx context.Context, ref Ref) (map[string]any, error) {
	if err := ref.validate(); err != nil {
		return nil, err
	}
	var f fetcher
	switch ref.Scheme {
	case SchemeFile:
		if s.file != nil {
			f = s.file
		}
	case SchemeEnv:
		if s.env != nil {
			f = s.env
		}
	case SchemeVault:
		if s.vault != nil {
			f = s.vault
		}
	}
	if f == nil {
		return nil, &RefError{Reason: fmt.Sprintf("the %s backend is not enabled", ref.Scheme)}
	}
	obj, err := f.fetch(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.Field == "" {
		return obj, nil
	}
	v, ok := obj[ref.Field]
	if !ok {
		return nil, &NotFoundError{Ref: ref, Detail: "no field " + ref.Field}
	}
	return map[string]any{ref.Field: v}, nil
}
