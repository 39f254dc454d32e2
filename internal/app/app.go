// Package app assembles a provisioner worker process from its configuration: the NATS connection
// (or an embedded server), streams and consumer, ledger, secret store, Airbyte client, metrics and
// health server, and the worker itself; and it runs them until the context ends, then drains.
// `provisioner run`, `provisioner dev` and the benchmark all start workers through it.
package app

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/logattr"
	"github.com/provisioner-dev/provisioner/internal/metrics"
	"github.com/provisioner-dev/provisioner/internal/natsembed"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/tracing"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// Options are what a process gives the worker beyond its configuration.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil = a new one
	Build    metrics.BuildInfo
	// Owner names this worker in ledger leases; default hostname + random suffix.
	Owner string
	// Started is called once everything is up, with where it listens.
	Started func(Endpoints)
	// UserAgent of Airbyte calls.
	UserAgent string
	// TracerProvider records the worker's spans (built by the process, see tracing.FromEnv); nil =
	// off. Run flushes it once the worker has drained; the process shuts it down.
	TracerProvider trace.TracerProvider
}

// Endpoints are the addresses a started worker serves or uses.
type Endpoints struct {
	NATSURL     string // the server the worker is connected to (embedded or not)
	Embedded    bool
	MetricsAddr string // "" when off
}

// Topology derives the stream topology from the configuration.
func Topology(cfg config.Config) consumer.Topology {
	return consumer.Topology{
		SubjectPrefix: cfg.SubjectPrefix, RequestsStream: cfg.RequestsStream, ResultsStream: cfg.ResultsStream,
		DLQStream: cfg.DLQStream, Consumer: cfg.Consumer, Replicas: cfg.StreamReplicas,
		DuplicateWindow: cfg.DuplicateWindow, LedgerBucket: cfg.LedgerBucket,
	}.WithDefaults()
}

// Run runs a worker until ctx ends, then drains it and releases everything. It returns nil after a
// clean drain.
func Run(ctx context.Context, cfg config.Config, opts Options) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = slog.New(tracing.NewLogHandler(logattr.NewHandler(logger.Handler())))
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := metrics.New(reg, opts.Build)
	if err != nil {
		return err
	}
	health := metrics.NewHealth()
	owner := opts.Owner
	if owner == "" {
		owner = DefaultOwner()
	}

	var ep Endpoints
	var srv *metrics.Server
	if cfg.MetricsAddr != "" {
		srv = metrics.NewServer(cfg.MetricsAddr, reg, health, logger)
		if ep.MetricsAddr, err = srv.Start(); err != nil {
			return err // says "metrics server: listen on ..." itself
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}

	natsURL := cfg.NATSURL
	if natsURL == "" {
		embedded, err := startEmbedded(cfg)
		if err != nil {
			return err
		}
		defer embedded.Shutdown()
		natsURL, ep.Embedded = embedded.ClientURL(), true
	}
	ep.NATSURL = natsURL

	nc, err := Connect(cfg, natsURL, "provisioner "+owner, logger, func(up bool, reason string) {
		m.SetNATSConnected(up)
		health.Set(metrics.ConditionNATS, up, reason)
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	m.SetNATSConnected(true)
	health.Set(metrics.ConditionNATS, true, "")

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	topo := Topology(cfg)
	leaseTTL := 2 * cfg.AckWait
	clock := time.Now
	if skew := cfg.ClockSkew; skew != 0 {
		clock = func() time.Time { return time.Now().Add(skew) }
		logger.Warn("this process's clock is shifted (--clock-skew, for tests only)", "skew", skew)
	}
	var led *ledger.Ledger
	mode := SetupMode(cfg)
	delivery := consumer.ConsumerPolicy{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending}
	// JetStream may be briefly unavailable (a server restarting, a cluster electing a leader): retry
	// the start-up calls until they succeed or the process is told to stop, rather than exit.
	// SetupWith bounds each of its calls with a short, jittered timeout (replicas starting together
	// on a fresh cluster race to create the same streams); a round is bounded more loosely, since
	// changing a stream's replicas waits on the cluster.
	var report consumer.SetupReport
	err = backoff.RetryNotify(func() error {
		roundCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := consumer.SetupWith(roundCtx, js, topo, delivery, mode)
		if err != nil {
			var drift *consumer.DriftError
			if errors.As(err, &drift) {
				return backoff.Permanent(err)
			}
			return fmt.Errorf("set up streams: %w", err)
		}
		report = r
		return nil
	}, backoff.WithContext(startupBackOff(), ctx), func(err error, next time.Duration) {
		logger.Warn("jetstream not ready; retrying", "error", err, "in", next)
	})
	if err != nil {
		return err
	}
	for _, d := range report.Applied {
		if d.Kind == consumer.DriftMissing { // a first start: nothing to warn about
			logger.Info("created "+d.Object, "object", d.Object)
			continue
		}
		logger.Warn("applied this replica's stream settings", "object", d.Object, "setting", d.Setting, "found", d.Found, "want", d.Want)
	}
	for _, d := range report.Tolerated {
		logger.Warn("stream settings differ from this replica's; left as the platform made them", "object", d.Object, "setting", d.Setting, "found", d.Found, "want", d.Want)
	}
	bucketReplicas := cfg.StreamReplicas
	if mode == consumer.VerifyOnly && report.BucketReplicas > 0 {
		bucketReplicas = report.BucketReplicas // leave the platform's bucket as it is
	}
	// The ledger creates its bucket: the same race, so the same short, jittered timeout per call.
	err = backoff.RetryNotify(func() error {
		callCtx, cancel := context.WithTimeout(ctx, startupCallTimeout())
		defer cancel()
		l, err := ledger.Open(callCtx, js, ledger.Config{Bucket: cfg.LedgerBucket, Replicas: bucketReplicas, LeaseTTL: leaseTTL, Owner: owner, Now: clock})
		if err != nil {
			return err
		}
		led = l
		return nil
	}, backoff.WithContext(startupBackOff(), ctx), func(err error, next time.Duration) {
		logger.Warn("ledger not ready; retrying", "error", err, "in", next)
	})
	if err != nil {
		return err
	}

	storeCfg := cfg.VaultStoreConfig()
	if cfg.Vault.Addr != "" {
		health.Set(metrics.ConditionVault, false, "not logged in yet")
		storeCfg.VaultObserver = vaultObserver{metrics: m, health: health}
	}
	secretsLogger := logger.With("component", "secrets")
	store, err := vault.New(ctx, storeCfg, secretsLogger)
	if err != nil {
		return fmt.Errorf("secret store: %w", err)
	}
	defer store.Close()
	clientSecret := cfg.AirbyteClientSecret
	if cfg.AirbyteClientSecretRef != "" {
		if clientSecret, err = resolveClientSecret(ctx, store, cfg.AirbyteClientSecretRef, health, secretsLogger); err != nil {
			return err
		}
	}
	client, err := airbyte.New(airbyte.Config{
		BaseURL: cfg.AirbyteURL, ClientID: cfg.AirbyteClientID, ClientSecret: clientSecret,
		OrganizationID: cfg.AirbyteOrganizationID, Timeout: cfg.AirbyteTimeout, UserAgent: opts.UserAgent,
		MaxConns: cfg.Concurrency * 2, RateLimit: cfg.AirbyteRateLimit, ConnectorToken: cfg.AirbyteConnectorToken,
		WrapTransport: func(next http.RoundTripper) http.RoundTripper {
			return tracing.HTTPTransport(m.InstrumentTransport(next, airbyte.Operation), airbyte.Operation)
		},
		Observer: m, Logger: logger.With("component", "airbyte"), Clock: clock,
	})
	if err != nil {
		return fmt.Errorf("airbyte client: %w", err)
	}
	defer client.CloseIdleConnections()

	policy, err := cfg.PathPolicy()
	if err != nil {
		return fmt.Errorf("--secret-path-policy: %w", err)
	}
	if cfg.SecretPathPolicy == config.NoSecretPathPolicy || cfg.SecretPathPolicy == "" {
		logger.Warn("no secret path policy: any request may use any secret reference, there is no tenant isolation; set --secret-path-policy, e.g. customers/{workspace_name}/")
	}
	svc, err := provision.New(client, tracedSecrets{store}, tracedLedger{led}, m, provision.Config{
		Policy: policy, Lookup: provision.LookupMode(cfg.Lookup), CheckCredentials: cfg.CheckCredentials,
		Budget:          cfg.AckWait * 2 / 3,
		LeaseRenewEvery: leaseTTL / 4,
		LeaseMargin:     cfg.AirbyteTimeout + time.Second,
		CreateSettle:    2 * cfg.AirbyteTimeout,
	})
	if err != nil {
		return err
	}
	dec, err := event.NewDecoder()
	if err != nil {
		return err
	}
	worker, err := consumer.NewWorker(js, consumer.Config{
		Topology: topo, Policy: delivery,
		Concurrency: cfg.Concurrency, ShutdownTimeout: cfg.ShutdownTimeout, Source: "provisioner/" + owner,
		TracerProvider: opts.TracerProvider,
	}, svc, dec, m, health, logger)
	if err != nil {
		return err
	}
	health.Set(metrics.ConditionDraining, true, "")
	if opts.Started != nil {
		opts.Started(ep)
	}
	logger.Info("worker started", "nats", RedactURL(natsURL), "embedded_nats", ep.Embedded, "metrics", ep.MetricsAddr, "owner", owner)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return worker.Run(gctx) })
	if err := g.Wait(); err != nil {
		return err
	}
	// the worker has drained; flush what the connection still buffers, and the spans
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		logger.Warn("nats drain", "error", err)
	}
	flushTraces(ctx, opts.TracerProvider, logger)
	return nil
}

// resolveClientSecret reads the Airbyte client secret from the secret store. A store that cannot
// answer yet (Vault sealed or unreachable) is waited out, with readiness false and the reason,
// until it answers or ctx ends; an answer that will not change (no such secret, no permission)
// ends start-up.
func resolveClientSecret(ctx context.Context, store *vault.Store, ref string, health *metrics.Health, logger *slog.Logger) (secret.Value, error) {
	health.Set(metrics.ConditionAirbyteClientSecret, false, "not read yet")
	var value secret.Value
	err := backoff.RetryNotify(func() error {
		v, err := vault.ResolveValue(ctx, store, ref)
		var retryable interface{ Retryable() bool }
		switch {
		case err == nil:
			value = v
			return nil
		case errors.As(err, &retryable) && retryable.Retryable():
			return err
		}
		return backoff.Permanent(err)
	}, backoff.WithContext(startupBackOff(), ctx), func(err error, next time.Duration) {
		reason := "waiting for the secret store"
		var unavailable *vault.UnavailableError
		if errors.As(err, &unavailable) && unavailable.Detail != "" {
			reason += ": " + unavailable.Detail // fixed words: no reference, no secret
		}
		health.Set(metrics.ConditionAirbyteClientSecret, false, reason)
		logger.Warn("airbyte client secret not readable yet; waiting for the secret store (the worker consumes nothing meanwhile)",
			"error", err, "in", next)
	})
	if err != nil {
		return secret.Value{}, fmt.Errorf("--airbyte-client-secret-ref: %w", err)
	}
	health.Set(metrics.ConditionAirbyteClientSecret, true, "")
	return value, nil
}

// vaultObserver reports the Vault backend's login state to readiness and metrics.
type vaultObserver struct {
	metrics *metrics.Metrics
	health  *metrics.Health
}

func (o vaultObserver) VaultStatus(s vault.Status) {
	o.metrics.SetVaultLoginState(s.State, s.HasToken, s.ExpiresAt)
	o.health.Set(metrics.ConditionVault, s.State != vault.StateFailing, s.Reason)
}

func (o vaultObserver) VaultLogin(ok bool) { o.metrics.VaultLogin(ok) }

// SetupMode is what start-up may do to the streams, the consumer and the bucket under cfg
// (--manage-streams, --reconcile-streams).
func SetupMode(cfg config.Config) consumer.SetupMode {
	switch {
	case !cfg.ManageStreams:
		return consumer.VerifyOnly
	case cfg.ReconcileStreams:
		return consumer.Reconcile
	}
	return consumer.Manage
}

// startupCallTimeout bounds one start-up call: 1s plus up to 1s of jitter. A cluster answers in
// milliseconds once it has a leader; a call stuck on an election, or a create that lost the race
// to another replica's identical create (the server answers only one), is better retried.
func startupCallTimeout() time.Duration {
	return time.Second + rand.N(time.Second)
}

// startupBackOff retries start-up calls without end; the context bounds it.
func startupBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.RandomizationFactor = 0.5
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = 0
	return b
}

func startEmbedded(cfg config.Config) (*natsembed.Server, error) {
	host, portText, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen: %w", err)
	}
	if port == 0 {
		port = -1 // natsembed: any free port
	} else if err := ProbeListen(cfg.NATSListen); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.NATSStoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("--nats-store-dir: %w", err)
	}
	always, interval, err := cfg.EmbeddedSync()
	if err != nil {
		return nil, fmt.Errorf("--nats-sync: %w", err)
	}
	s, err := natsembed.Start(natsembed.Config{Host: host, Port: port, StoreDir: cfg.NATSStoreDir, SyncAlways: always, SyncInterval: interval})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return s, nil
}

// ProbeListen fails at once, naming the address and the reason, when the embedded server could not
// listen on addr: nats-server itself only logs a bind error and never becomes ready. (Another process
// may still take the port between the probe and the server's own listen; then the start-up times out.)
func ProbeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err // "bind: address already in use", without repeating the address
		}
		return fmt.Errorf("embedded nats cannot listen on %s (--nats-listen): %w", addr, err)
	}
	return ln.Close()
}

// Connect opens a NATS connection that reconnects forever, reporting its state through state.
// extra options come last and win (doctor collects the server's asynchronous errors with one).
func Connect(cfg config.Config, url, name string, logger *slog.Logger, state func(up bool, reason string), extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own close or drain
				logger.Warn("nats disconnected", "error", err)
			}
			if state != nil {
				state(false, "disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "server", RedactURL(c.ConnectedUrl()))
			if state != nil {
				state(true, "")
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			if state != nil {
				state(false, "closed")
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats async error", "error", err)
		}),
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword.Reveal()))
	}
	if !cfg.NATSToken.IsZero() {
		opts = append(opts, nats.Token(cfg.NATSToken.Reveal()))
	}
	if cfg.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", RedactURL(url), err)
	}
	return nc, nil
}

// RedactURL drops the user info (user, password, token) from a URL, or from each of a
// comma-separated list of them, before it is logged or put in an error.
func RedactURL(u string) string {
	parts := strings.Split(u, ",")
	for n, p := range parts {
		j := strings.Index(p, "://")
		if j < 0 {
			continue
		}
		host := p[j+3:]
		if k := strings.Index(host, "/"); k >= 0 {
			host = host[:k]
		}
		if i := strings.LastIndex(host, "@"); i >= 0 {
			parts[n] = p[:j+3] + "[REDACTED]@" + p[j+3+i+1:]
		}
	}
	return strings.Join(parts, ",")
}

// DefaultOwner is hostname plus a random suffix: two processes on one host are different owners.
func DefaultOwner() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = crand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
