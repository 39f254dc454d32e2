// Package airbyte is the provisioner's client for the Airbyte Agent Engine / Embedded API.
//
// It owns everything about talking to Airbyte: the operator and scoped tokens (minted, cached
// until just before they expire, refreshed once per key however many callers ask), the keep-alive
// connection pool, the client-side rate limit, the retry policy, and the typed errors the worker
// decides on. Secrets (the client secret, tokens, connector credentials) travel as secret.Value and
// secret.Fields and are revealed only when written to the wire; they never reach a log line, an
// error string or a metric.
//
// Tokens: connector operations carry the application token and name the workspace by
// workspace_name, as the spec documents and Airbyte's official clients do (Config.ConnectorToken
// "scoped" keeps the seed docs' style of the workspace's scoped token). The scoped-token mint is
// still how a workspace comes to exist: Workspace/EnsureWorkspace, and CreateConnector before
// the first create in a workspace. A scoped token's workspace is the one its
// io.airbyte.auth.workspace_scope claim names; act.sub is not relied on.
//
// Retries: 429 (honouring Retry-After, capped), 502, 503, 504, transport errors and per-attempt
// timeouts are retried with exponential backoff and jitter, bounded by the caller's context.
// 400, 403, 404, 422 and 500 are returned at once. A 401 forces one token refresh and one replay.
// Creating a connector or a source is not idempotent (the API has no idempotency key), so for those
// two operations only failures that certainly happened before the request left (429, dial errors)
// are retried; anything ambiguous is returned with Ambiguous() == true so that the caller can list
// and adopt before it creates again.
package airbyte

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Config configures a Client. Only BaseURL, ClientID and ClientSecret are required.
type Config struct {
	BaseURL        string       // e.g. https://api.airbyte.ai (paths are under /api/v1)
	ClientID       string       // the application's client id
	ClientSecret   secret.Value // the application's client secret
	OrganizationID string       // sent as X-Organization-Id when set
	// ConnectorToken is the bearer token of the connector operations (/integrations/connectors*):
	// ConnectorTokenApplication (the default) or ConnectorTokenScoped.
	ConnectorToken string
	Timeout        time.Duration
	UserAgent      string // default "provisioner/<module version>"
	// MaxConns sizes the keep-alive pool per host (MaxIdleConnsPerHost and MaxConnsPerHost); size
	// it to the worker's concurrency. 0 leaves the pool unbounded with Go's idle default.
	MaxConns      int
	RateLimit     float64       // client-side requests per second across the client; 0 = unlimited
	RateBurst     int           // default: max(1, RateLimit)
	RefreshMargin time.Duration // refresh tokens this long before they expire; default 60s
	MaxRetryAfter time.Duration // cap on an honoured Retry-After; default 30s
	// Backoff returns a fresh retry schedule per call; default exponential with jitter. Whatever
	// it returns, the caller's context bounds the retries.
	Backoff       func() backoff.BackOff
	WrapTransport func(http.RoundTripper) http.RoundTripper // applied around the pooled transport
	Observer      Observer                                  // optional hooks for metrics
	Logger        *slog.Logger                              // nil = discard
	// Clock returns the current time, for token expiry; nil = time.Now. Tests share a fake clock
	// with the sandbox to prove expiry handling without waiting.
	Clock func() time.Time
}

// Observer receives token events for metrics. It is declared here and implemented by the metrics
// package; kind is "application", "scoped" or "widget".
type Observer interface {
	TokenMinted(kind string)
	TokenCacheHit(kind string)
}

// Connector token styles (Config.ConnectorToken).
const (
	// ConnectorTokenApplication sends the application token, with the workspace named by
	// workspace_name: what the spec documents for every /integrations/connectors* operation and
	// what Airbyte's official CLI and SDK send. A scoped-token mint still ensures a workspace
	// exists before the first create in it (the mint creates a missing workspace; a create
	// alone may answer 404).
	ConnectorTokenApplication = "application"
	// ConnectorTokenScoped sends the workspace's scoped token, as the seed docs' examples do.
	ConnectorTokenScoped = "scoped"
)

// Token kinds reported to the Observer.
const (
	KindApplication = "application"
	KindScoped      = "scoped"
	KindWidget      = "widget"
)

const (
	defaultTimeout       = 30 * time.Second
	defaultRefreshMargin = 60 * time.Second
	defaultMaxRetryAfter = 30 * time.Second
	// maxBodyBytes bounds what is read from any response.
	maxBodyBytes = 8 << 20
)

// Client calls the Airbyte API. It is safe for concurrent use; create one per process.
type Client struct {
	base          *url.URL
	clientID      string
	clientSecret  secret.Value
	orgID         string
	userAgent     string
	timeout       time.Duration
	refreshMargin time.Duration
	maxRetryAfter time.Duration
	newBackoff    func() backoff.BackOff
	limiter       *rate.Limiter // nil = unlimited
	http          *http.Client
	observer      Observer
	log           *slog.Logger
	now           func() time.Time
	tokens        *tokenCache
	connectorAuth authKind // authOperator or authScoped, from Config.ConnectorToken
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("airbyte: base url is required")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("airbyte: base url: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("airbyte: base url %q: want http(s)://host", cfg.BaseURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret.IsZero() {
		return nil, errors.New("airbyte: client id and client secret are required")
	}
	connectorAuth := authOperator
	switch cfg.ConnectorToken {
	case "", ConnectorTokenApplication:
	case ConnectorTokenScoped:
		connectorAuth = authScoped
	default:
		return nil, fmt.Errorf("airbyte: connector token %q: want %s or %s", cfg.ConnectorToken, ConnectorTokenApplication, ConnectorTokenScoped)
	}
	if cfg.MaxConns < 0 || cfg.RateLimit < 0 || cfg.RateBurst < 0 || cfg.Timeout < 0 ||
		cfg.RefreshMargin < 0 || cfg.MaxRetryAfter < 0 {
		return nil, errors.New("airbyte: negative limits are not allowed")
	}
	c := &Client{
		base:          base,
		clientID:      cfg.ClientID,
		clientSecret:  cfg.ClientSecret,
		orgID:         cfg.OrganizationID,
		userAgent:     cmp.Or(cfg.UserAgent, "provisioner/"+moduleVersion()),
		timeout:       cmp.Or(cfg.Timeout, defaultTimeout),
		refreshMargin: cmp.Or(cfg.RefreshMargin, defaultRefreshMargin),
		maxRetryAfter: cmp.Or(cfg.MaxRetryAfter, defaultMaxRetryAfter),
		newBackoff:    cfg.Backoff,
		observer:      cfg.Observer,
		log:           cfg.Logger,
		now:           cfg.Clock,
		tokens:        newTokenCache(),
		connectorAuth: connectorAuth,
	}
	if c.newBackoff == nil {
		c.newBackoff = defaultBackoff
	}
	if c.observer == nil {
		c.observer = nopObserver{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.RateLimit > 0 {
		burst := cfg.RateBurst
		if burst == 0 {
			burst = max(1, int(cfg.RateLimit))
		}
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), burst)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.MaxConns > 0 {
		transport.MaxIdleConns = max(transport.MaxIdleConns, cfg.MaxConns)
		transport.MaxIdleConnsPerHost = cfg.MaxConns
		transport.MaxConnsPerHost = cfg.MaxConns
	}
	var rt http.RoundTripper = transport
	if cfg.WrapTransport != nil {
		rt = cfg.WrapTransport(rt)
	}
	// Timeouts are per attempt (a context deadline), so the http.Client has none of its own, and
	// redirects are not followed: an API answering 3xx is misconfigured, and following one would
	// resend the bearer token elsewhere.
	c.http = &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// CloseIdleConnections closes the pool's idle keep-alive connections (on shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

type operationKey struct{}

// Operation returns the operation name the client stored in a request's context (for example
// "token", "scoped_token", "connectors_create", "connectors_list"), so that transport middleware
// such as promhttp.WithLabelFromCtx can label metrics by operation. It is "" for other contexts.
func Operation(ctx context.Context) string {
	op, _ := ctx.Value(operationKey{}).(string)
	return op
}

func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = 0 // the caller's context is the bound
	return b
}

// moduleVersion is the main module's version from the build info, "devel" when unknown.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

type nopObserver struct{}

func (nopObserver) TokenMinted(string)   {}
func (nopObserver) TokenCacheHit(string) {}

// drain reads what is left of a body (bounded) so that the connection can be reused.
func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxBodyBytes))
	_ = r.Close()
}
