// Package config is the provisioner worker's configuration: one struct filled from flags and
// PROVISIONER_* environment variables (flags win), with defaults and Validate.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// EnvPrefix prefixes every environment variable: --nats-url is PROVISIONER_NATS_URL.
const EnvPrefix = "PROVISIONER_"

// Config is everything `provisioner run` can be told.
type Config struct {
	NATSURL      string
	NATSListen   string
	NATSStoreDir string
	// NATSSync is the embedded server's fsync policy: "always", or an interval such as "2m".
	NATSSync     string
	NATSCreds    string
	NATSUser     string
	NATSPassword secret.Value
	NATSToken    secret.Value
	NATSTLSCA    string
	NATSTLSCert  string
	NATSTLSKey   string

	SubjectPrefix  string
	RequestsStream string
	ResultsStream  string
	DLQStream      string
	Consumer       string
	LedgerBucket   string
	StreamReplicas int
	// DuplicateWindow is how long the streams remember Nats-Msg-Ids (a re-published result is stored once).
	DuplicateWindow time.Duration
	// ManageStreams: create what is missing at start-up (false: only verify what a platform team made).
	ManageStreams bool
	// ReconcileStreams: apply this replica's replicas and consumer settings even where they differ
	// from what the other replicas share (otherwise such drift stops start-up).
	ReconcileStreams bool

	Concurrency   int
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int

	AirbyteURL             string
	AirbyteClientID        string
	AirbyteClientSecret    secret.Value
	AirbyteClientSecretRef string
	AirbyteOrganizationID  string
	AirbyteTimeout         time.Duration
	AirbyteRateLimit       float64
	// AirbyteConnectorToken is the bearer token of connector operations: "application" (what
	// Airbyte's spec documents) or "scoped" (the seed docs' style).
	AirbyteConnectorToken string

	SecretsDir       string
	SecretsEnv       bool
	SecretsEnvPrefix string
	Vault            vault.VaultConfig
	SecretPathPolicy string
	Lookup           string
	CheckCredentials bool

	MetricsAddr string
	LogFormat   string
	LogLevel    string
	// ClockSkew shifts this process's wall clock (tests and the chaos soak only): leases and token
	// caches must not depend on hosts' clocks agreeing.
	ClockSkew       time.Duration
	ShutdownTimeout time.Duration
}

// Default returns the defaults.
func Default() Config {
	return Config{
		NATSStoreDir: "./.provisioner/nats", NATSListen: "127.0.0.1:4222", NATSSync: "2m",
		SubjectPrefix:  "provisioner",
		RequestsStream: "PROVISIONER_REQUESTS", ResultsStream: "PROVISIONER_RESULTS", DLQStream: "PROVISIONER_DLQ",
		Consumer: "provisioner", LedgerBucket: "provisioner_ledger", StreamReplicas: 1, DuplicateWindow: 2 * time.Minute,
		ManageStreams: true,
		Concurrency:   16, AckWait: 30 * time.Second, MaxDeliver: 8, MaxAckPending: 1000,
		AirbyteURL: "https://api.airbyte.ai", AirbyteTimeout: 10 * time.Second, AirbyteConnectorToken: "application",
		Vault:       vault.VaultConfig{Mount: "secret", Auth: "token", AppRoleMount: "approle", K8sMount: "kubernetes", K8sTokenPath: "/var/run/secrets/kubernetes.io/serviceaccount/token"},
		Lookup:      "recovery",
		MetricsAddr: ":9090", LogFormat: "auto", LogLevel: "info", ShutdownTimeout: 25 * time.Second,
	}
}

// secretFlag is a flag.Value for secret.Value that never prints its value (not even in -help).
type secretFlag struct{ v *secret.Value }

func (s secretFlag) String() string {
	if s.v == nil || s.v.IsZero() {
		return ""
	}
	return secret.Redacted
}
func (s secretFlag) Set(v string) error { *s.v = secret.New(v); return nil }

// FlagSet registers every setting on a new FlagSet bound to c.
func (c *Config) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server URL(s), comma-separated; empty starts an embedded server")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "listen address of the embedded server (port 0 = any free port)")
	fs.StringVar(&c.NATSStoreDir, "nats-store-dir", c.NATSStoreDir, "JetStream directory of the embedded server")
	fs.StringVar(&c.NATSSync, "nats-sync", c.NATSSync, "how often the embedded server fsyncs JetStream: an interval (a power loss loses up to that much acknowledged work) or always (every write, slower)")
	fs.StringVar(&c.NATSCreds, "nats-creds", c.NATSCreds, "NATS credentials file (user JWT and nkey seed)")
	fs.StringVar(&c.NATSUser, "nats-user", c.NATSUser, "NATS user")
	fs.Var(secretFlag{&c.NATSPassword}, "nats-password", "NATS password")
	fs.Var(secretFlag{&c.NATSToken}, "nats-token", "NATS token")
	fs.StringVar(&c.NATSTLSCA, "nats-tls-ca", c.NATSTLSCA, "CA certificate file for NATS TLS")
	fs.StringVar(&c.NATSTLSCert, "nats-tls-cert", c.NATSTLSCert, "client certificate file for NATS TLS")
	fs.StringVar(&c.NATSTLSKey, "nats-tls-key", c.NATSTLSKey, "client key file for NATS TLS")
	fs.StringVar(&c.SubjectPrefix, "subject-prefix", c.SubjectPrefix, "prefix of every subject")
	fs.StringVar(&c.RequestsStream, "requests-stream", c.RequestsStream, "stream of requests")
	fs.StringVar(&c.ResultsStream, "results-stream", c.ResultsStream, "stream of results")
	fs.StringVar(&c.DLQStream, "dlq-stream", c.DLQStream, "stream of dead letters")
	fs.StringVar(&c.Consumer, "consumer", c.Consumer, "durable consumer name shared by all replicas")
	fs.StringVar(&c.LedgerBucket, "ledger-bucket", c.LedgerBucket, "KV bucket of the idempotency ledger")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", c.StreamReplicas, "replicas of the streams and the ledger bucket (1 for a single server)")
	fs.DurationVar(&c.DuplicateWindow, "duplicate-window", c.DuplicateWindow, "how long the streams remember Nats-Msg-Ids: a result re-published within it is stored once (consumers dedupe on request_id beyond it)")
	fs.BoolVar(&c.ManageStreams, "manage-streams", c.ManageStreams, "create missing streams, consumer and bucket at start-up (false: only verify what a platform team made)")
	fs.BoolVar(&c.ReconcileStreams, "reconcile-streams", c.ReconcileStreams, "apply this replica's replicas and consumer settings where they differ from what the other replicas share (otherwise start-up stops, exit 2)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "requests in flight per replica")
	fs.DurationVar(&c.AckWait, "ack-wait", c.AckWait, "how long a delivery may go without an ack or progress before redelivery")
	fs.IntVar(&c.MaxDeliver, "max-deliver", c.MaxDeliver, "deliveries a request gets; the last one ends it with an error result and a dead letter")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", c.MaxAckPending, "requests outstanding across all replicas")
	fs.StringVar(&c.AirbyteURL, "airbyte-url", c.AirbyteURL, "Airbyte API base URL")
	fs.StringVar(&c.AirbyteClientID, "airbyte-client-id", c.AirbyteClientID, "Airbyte application client id")
	fs.Var(secretFlag{&c.AirbyteClientSecret}, "airbyte-client-secret", "Airbyte application client secret")
	fs.StringVar(&c.AirbyteClientSecretRef, "airbyte-client-secret-ref", c.AirbyteClientSecretRef, "secret reference holding the client secret (e.g. vault:provisioner/airbyte#client_secret)")
	fs.StringVar(&c.AirbyteOrganizationID, "airbyte-organization-id", c.AirbyteOrganizationID, "Airbyte organization id (X-Organization-Id)")
	fs.DurationVar(&c.AirbyteTimeout, "airbyte-timeout", c.AirbyteTimeout, "timeout of one Airbyte HTTP attempt")
	fs.Float64Var(&c.AirbyteRateLimit, "airbyte-rate-limit", c.AirbyteRateLimit, "client-side Airbyte requests per second per replica (0 = no limit)")
	fs.StringVar(&c.AirbyteConnectorToken, "airbyte-connector-token", c.AirbyteConnectorToken, "bearer token of connector operations: application (as Airbyte's spec documents) or scoped (the workspace's scoped token)")
	fs.StringVar(&c.SecretsDir, "secrets-dir", c.SecretsDir, "directory of the file secret backend (file: references); off unless given")
	fs.BoolVar(&c.SecretsEnv, "secrets-env", c.SecretsEnv, "enable the env secret backend (env:NAME references)")
	fs.StringVar(&c.SecretsEnvPrefix, "secrets-env-prefix", c.SecretsEnvPrefix, "only environment variables with this prefix may be referenced")
	fs.StringVar(&c.Vault.Addr, "vault-addr", c.Vault.Addr, "HashiCorp Vault address (empty = Vault backend off)")
	fs.StringVar(&c.Vault.Auth, "vault-auth", c.Vault.Auth, "Vault auth method: token, approle or kubernetes")
	fs.Var(secretFlag{&c.Vault.Token}, "vault-token", "Vault token (token auth)")
	fs.StringVar(&c.Vault.RoleID, "vault-role-id", c.Vault.RoleID, "AppRole role id")
	fs.Var(secretFlag{&c.Vault.SecretID}, "vault-secret-id", "AppRole secret id")
	fs.StringVar(&c.Vault.AppRoleMount, "vault-approle-mount", c.Vault.AppRoleMount, "AppRole auth mount")
	fs.StringVar(&c.Vault.K8sRole, "vault-k8s-role", c.Vault.K8sRole, "Kubernetes auth role")
	fs.StringVar(&c.Vault.K8sMount, "vault-k8s-mount", c.Vault.K8sMount, "Kubernetes auth mount")
	fs.StringVar(&c.Vault.K8sTokenPath, "vault-k8s-token-path", c.Vault.K8sTokenPath, "service account token file")
	fs.StringVar(&c.Vault.Namespace, "vault-namespace", c.Vault.Namespace, "Vault namespace")
	fs.StringVar(&c.Vault.Mount, "vault-mount", c.Vault.Mount, "KV v2 mount")
	fs.StringVar(&c.Vault.CACert, "vault-ca-cert", c.Vault.CACert, "CA certificate file for Vault TLS")
	fs.StringVar(&c.Vault.ClientCert, "vault-client-cert", c.Vault.ClientCert, "client certificate file for Vault TLS")
	fs.StringVar(&c.Vault.ClientKey, "vault-client-key", c.Vault.ClientKey, "client key file for Vault TLS")
	fs.StringVar(&c.Vault.TLSServerName, "vault-tls-server-name", c.Vault.TLSServerName, "server name to verify Vault's certificate against")
	fs.StringVar(&c.SecretPathPolicy, "secret-path-policy", c.SecretPathPolicy, "path template every secret reference of a request must fall under, e.g. customers/{workspace_name}/; required (none = no tenant isolation, said explicitly)")
	fs.StringVar(&c.Lookup, "lookup", c.Lookup, "when to list a workspace's connectors before creating: recovery (after an interrupted attempt) or always")
	fs.BoolVar(&c.CheckCredentials, "check-credentials", c.CheckCredentials, "run Airbyte's credential check before every create or replace, as if each credentials.submitted said \"check\": true")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "address of /metrics, /healthz and /readyz (empty = off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "auto (text on a terminal, else json), text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.ClockSkew, "clock-skew", c.ClockSkew, "testing only: run with this process's clock shifted by this much (the chaos soak skews one worker)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight requests get to finish on shutdown")
	return fs
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse applies PROVISIONER_* variables (via lookupEnv), then the flags in args. The error names
// the setting at fault.
func (c *Config) Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				// the value is not quoted: it may be a secret
				errs = append(errs, fmt.Errorf("%s: invalid value for --%s: %w", EnvName(f.Name), f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// Validate checks the configuration and names the first setting at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flagName, format string, a ...any) {
		errs = append(errs, settingError(flagName, fmt.Sprintf(format, a...)))
	}
	if c.NATSURL != "" {
		errs = append(errs, c.validateNATSURL())
	} else {
		if c.NATSStoreDir == "" {
			bad("nats-store-dir", "required when --nats-url is empty (the embedded server persists there)")
		}
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			bad("nats-listen", "%q is not host:port", c.NATSListen)
		}
		if _, _, err := c.EmbeddedSync(); err != nil {
			bad("nats-sync", "%v", err)
		}
	}
	errs = append(errs, c.validateNATSAuth())
	for name, v := range map[string]string{"subject-prefix": c.SubjectPrefix, "requests-stream": c.RequestsStream, "results-stream": c.ResultsStream, "dlq-stream": c.DLQStream, "consumer": c.Consumer, "ledger-bucket": c.LedgerBucket} {
		if v == "" || strings.ContainsAny(v, " \t\r\n*>") || (name != "subject-prefix" && strings.Contains(v, ".")) {
			bad(name, "%q is not a valid name", v)
		}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("stream-replicas", "must be between 1 and 5, got %d", c.StreamReplicas)
	}
	if c.ReconcileStreams && !c.ManageStreams {
		bad("reconcile-streams", "cannot apply settings with --manage-streams=false")
	}
	if c.DuplicateWindow < time.Second || c.DuplicateWindow > 24*time.Hour {
		bad("duplicate-window", "must be between 1s and 24h, got %s", c.DuplicateWindow)
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		bad("concurrency", "must be between 1 and 4096, got %d", c.Concurrency)
	}
	if c.AckWait < time.Second {
		bad("ack-wait", "must be at least 1s, got %s", c.AckWait)
	}
	if c.MaxDeliver < 1 {
		bad("max-deliver", "must be at least 1, got %d", c.MaxDeliver)
	}
	if c.MaxAckPending < c.Concurrency {
		bad("max-ack-pending", "must be at least --concurrency (%d), got %d", c.Concurrency, c.MaxAckPending)
	}
	if u, err := url.Parse(c.AirbyteURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("airbyte-url", "%q is not an http(s) URL", c.AirbyteURL)
	}
	if c.AirbyteClientID == "" {
		bad("airbyte-client-id", "required")
	}
	switch {
	case c.AirbyteClientSecret.IsZero() && c.AirbyteClientSecretRef == "":
		bad("airbyte-client-secret", "required (or --airbyte-client-secret-ref)")
	case !c.AirbyteClientSecret.IsZero() && c.AirbyteClientSecretRef != "":
		bad("airbyte-client-secret", "give either the secret or --airbyte-client-secret-ref, not both")
	case c.AirbyteClientSecretRef != "":
		if _, err := vault.ParseRef(c.AirbyteClientSecretRef); err != nil {
			bad("airbyte-client-secret-ref", "%v", err)
		}
	}
	if c.AirbyteTimeout <= 0 || c.AirbyteTimeout >= c.AckWait {
		bad("airbyte-timeout", "must be positive and below --ack-wait (%s), got %s", c.AckWait, c.AirbyteTimeout)
	}
	if c.AirbyteRateLimit < 0 {
		bad("airbyte-rate-limit", "must not be negative")
	}
	if c.AirbyteConnectorToken != "application" && c.AirbyteConnectorToken != "scoped" {
		bad("airbyte-connector-token", "must be application or scoped, got %q", c.AirbyteConnectorToken)
	}
	switch c.SecretPathPolicy {
	case "":
		bad("secret-path-policy", "required: give the path every secret reference of a workspace must fall under, "+
			"e.g. --secret-path-policy='customers/{workspace_name}/' (store each customer's secrets under its workspace name), "+
			"or --secret-path-policy=%s to let any request use any secret (no tenant isolation)", NoSecretPathPolicy)
	case NoSecretPathPolicy:
	default:
		if _, err := vault.NewPolicy(c.SecretPathPolicy); err != nil {
			bad("secret-path-policy", "%v", err)
		}
	}
	if c.SecretsDir == "" && !c.SecretsEnv && c.Vault.Addr == "" {
		bad("secrets-dir", "no secret backend is on: set --secrets-dir, --secrets-env or --vault-addr")
	} else if vc := c.VaultStoreConfig(); vc.Validate() != nil {
		errs = append(errs, fmt.Errorf("--%w", vc.Validate()))
	}
	if c.Lookup != "recovery" && c.Lookup != "always" {
		bad("lookup", "must be recovery or always, got %q", c.Lookup)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics-addr", "%q is not host:port", c.MetricsAddr)
		}
	}
	if !slices.Contains([]string{"auto", "text", "json"}, c.LogFormat) {
		bad("log-format", "must be auto, text or json, got %q", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log-level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive")
	}
	return errors.Join(errs...)
}

// ValidateNATSClient checks the settings a NATS client needs (URL, credentials, TLS): what the
// client commands (publish, results, dlq) take from run's configuration.
func (c *Config) ValidateNATSClient() error {
	if c.NATSURL == "" {
		return errors.Join(settingError("nats-url", "required"), c.validateNATSAuth())
	}
	return errors.Join(c.validateNATSURL(), c.validateNATSAuth())
}

func settingError(flagName, msg string) error {
	return fmt.Errorf("--%s (%s): %s", flagName, EnvName(flagName), msg)
}

func (c *Config) validateNATSURL() error {
	var errs []error
	for _, u := range strings.Split(c.NATSURL, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
			errs = append(errs, settingError("nats-url", fmt.Sprintf("%q is not a nats://, tls://, ws:// or wss:// URL", u)))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateNATSAuth() error {
	var errs []error
	if c.NATSCreds != "" && (c.NATSUser != "" || !c.NATSToken.IsZero()) {
		errs = append(errs, settingError("nats-creds", "use one of a credentials file, a user/password or a token"))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, settingError("nats-tls-cert", "a client certificate needs --nats-tls-key, and the other way round"))
	}
	return errors.Join(errs...)
}

// NoSecretPathPolicy is the --secret-path-policy that turns tenant isolation off. It must be said
// explicitly: an empty policy is refused, and the worker warns at every start when it is off.
const NoSecretPathPolicy = "none"

// PathPolicy is the secret path policy the configuration asks for; a policy without segments
// (no restriction) for NoSecretPathPolicy or an empty setting (which Validate refuses).
func (c *Config) PathPolicy() (*vault.Policy, error) {
	if c.SecretPathPolicy == NoSecretPathPolicy {
		return vault.NewPolicy("")
	}
	return vault.NewPolicy(c.SecretPathPolicy)
}

// EmbeddedSync is the embedded server's fsync policy from --nats-sync: always, or an interval.
func (c *Config) EmbeddedSync() (always bool, interval time.Duration, err error) {
	if c.NATSSync == "always" {
		return true, 0, nil
	}
	d, err := time.ParseDuration(c.NATSSync)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("%q is neither always nor a positive duration", c.NATSSync)
	}
	return false, d, nil
}

// VaultStoreConfig is the secret store's configuration.
func (c *Config) VaultStoreConfig() vault.Config {
	return vault.Config{FileDir: c.SecretsDir, EnvEnabled: c.SecretsEnv, EnvPrefix: c.SecretsEnvPrefix, Vault: c.Vault}
}
