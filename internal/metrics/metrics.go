// Package metrics owns the provisioner's Prometheus metric set (own registry, injected, never the global
// one) and the HTTP server for /metrics, /healthz and /readyz.
//
// Every label takes its value from a closed list fixed when the Metrics is built (see Options). A value
// outside its list is recorded as "other", so a caller's mistake can neither grow the number of series
// nor put a tenant's name, an id or a secret into a label. Every listed label combination is created at
// New, so each series exists at 0 before its first event and rate() and absent() behave from the start.
//
// A nil *Metrics records nothing: packages under test may pass nil instead of building a registry.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/provisioner-dev/provisioner/contract"
)

const namespace = "provisioner"

// OtherLabel is the label value recorded for a value missing from its closed list.
const OtherLabel = "other"

// BuildInfo is exported as the labels of provisioner_build_info.
type BuildInfo struct {
	Version   string
	Commit    string
	GoVersion string // runtime.Version() when empty
}

// Options fixes the closed list of values of each label and the clock. A nil list takes its default
// from DefaultOptions.
type Options struct {
	Kinds          []string // label kind of the request metrics
	Outcomes       []string // label outcome of provisioner_requests_finished_total
	Reasons        []string // label reason of provisioner_dead_letters_total (the error codes)
	Messages       []string // label message of provisioner_results_published_total
	Operations     []string // label operation of the Airbyte client metrics
	TokenKinds     []string // label kind of the token metrics
	SecretBackends []string // label backend of provisioner_secret_fetches_total
	SecretOutcomes []string // label outcome of provisioner_secret_fetches_total

	// Now is the clock of the request durations and of the longest running request; time.Now when nil.
	Now func() time.Time
}

// DefaultOptions returns the label lists the provisioner uses, as fresh slices a caller may extend.
func DefaultOptions() Options {
	return Options{
		Kinds: []string{"credentials_submitted", "customer_onboarded", "connector_disconnected", "customer_offboarded", "unknown"},
		Outcomes: []string{
			"created", "adopted", "updated", "replaced", "deleted", "offboarded", "superseded",
			"credentials_rejected", "replayed", "workspace_ready", "permanent_error", "retry", "nats_unavailable", "dead_letter",
		},
		Reasons: reasons(),
		Messages: []string{
			"source_created", "source_create_error", "workspace_ready", "workspace_error",
			"source_updated", "source_update_error", "source_deleted", "source_delete_error",
			"workspace_offboarded", "workspace_offboard_error",
		},
		Operations: []string{
			"token", "scoped_token", "scoped_token_info", "widget_token",
			"connectors_create", "connectors_list", "connectors_get", "connectors_update",
			"connectors_delete", "connectors_check",
			"sources_create", "sources_list", "sources_get", "sources_update", "sources_delete",
			"source_templates_list", "workspaces_list", "workspaces_get",
			"workspaces_update", "workspaces_delete",
		},
		TokenKinds:     []string{"application", "scoped", "widget"},
		SecretBackends: []string{"file", "env", "vault"},
		SecretOutcomes: []string{"ok", "not_found", "permission_denied", "unavailable", "invalid"},
	}
}

// reasons are the error codes of the contract, as a fresh slice.
func reasons() []string {
	out := make([]string, len(contract.Codes))
	for i, c := range contract.Codes {
		out[i] = string(c)
	}
	return out
}

// withDefaults fills every unset field of o from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	fill := func(dst *[]string, def []string) {
		if *dst == nil {
			*dst = def
		}
	}
	fill(&o.Kinds, d.Kinds)
	fill(&o.Outcomes, d.Outcomes)
	fill(&o.Reasons, d.Reasons)
	fill(&o.Messages, d.Messages)
	fill(&o.Operations, d.Operations)
	fill(&o.TokenKinds, d.TokenKinds)
	fill(&o.SecretBackends, d.SecretBackends)
	fill(&o.SecretOutcomes, d.SecretOutcomes)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// closedList maps a label value to itself when listed and to OtherLabel otherwise.
type closedList map[string]struct{}

func newClosedList(values []string) closedList {
	l := make(closedList, len(values))
	for _, v := range values {
		l[v] = struct{}{}
	}
	return l
}

func (l closedList) value(v string) string {
	if _, ok := l[v]; ok {
		return v
	}
	return OtherLabel
}

// Metrics records the provisioner's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	now func() time.Time

	kinds, outcomes, reasons, messages, operations closedList
	tokenKinds, secretBackends, secretOutcomes     closedList

	requestsReceived    *prometheus.CounterVec
	requestsRedelivered *prometheus.CounterVec
	requestsFinished    *prometheus.CounterVec
	requestDuration     *prometheus.HistogramVec
	requestsInFlight    prometheus.Gauge
	deadLetters         *prometheus.CounterVec
	resultsPublished    *prometheus.CounterVec

	airbyteRequests     *prometheus.CounterVec
	airbyteDuration     *prometheus.HistogramVec
	airbyteInFlight     prometheus.Gauge
	tokenMints          *prometheus.CounterVec
	tokenCacheHits      *prometheus.CounterVec
	secretFetches       *prometheus.CounterVec
	ledgerConflicts     prometheus.Counter
	leaseTakeovers      prometheus.Counter
	consumerPending     prometheus.Gauge
	consumerAckPending  prometheus.Gauge
	consumerRedelivered prometheus.Gauge
	natsConnected       prometheus.Gauge
	vaultLoginState     *prometheus.GaugeVec
	vaultLogins         *prometheus.CounterVec
	vaultToken          vaultToken
	running             runningRequests
}

// Vault login states, the values of the state label of provisioner_vault_login_state.
var vaultLoginStates = []string{"logged_in", "renewing", "failing"}

// vaultToken is what provisioner_vault_token_expiry_seconds is computed from at scrape.
type vaultToken struct {
	mu        sync.Mutex
	held      bool
	expiresAt time.Time // zero: never expires
}

// runningRequests keeps the start time of every running request, so the longest running one is exact
// rather than sampled.
type runningRequests struct {
	mu     sync.Mutex
	nextID uint64
	starts map[uint64]time.Time
}

func (f *runningRequests) add(start time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.starts[f.nextID] = start
	return f.nextID
}

func (f *runningRequests) remove(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.starts, id)
}

// oldest returns the earliest start time, false when nothing runs.
func (f *runningRequests) oldest() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var oldest time.Time
	found := false
	for _, start := range f.starts {
		if !found || start.Before(oldest) {
			oldest, found = start, true
		}
	}
	return oldest, found
}

// Buckets of the end-to-end request duration: 1ms (a replayed result) to 2min (a create that waited out
// its whole retry budget).
var requestDurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// Buckets of one Airbyte HTTP call: 5ms (sandbox, loopback) to 30s (the client's timeout).
var airbyteDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New registers every metric on reg, plus the Go and process collectors and provisioner_build_info,
// with the label lists of DefaultOptions.
func New(reg *prometheus.Registry, build BuildInfo) (*Metrics, error) {
	return NewWithOptions(reg, build, Options{})
}

// NewWithOptions is New with the label lists and clock of opts (unset fields take their defaults).
// Every label combination is created, so every series starts at 0.
func NewWithOptions(reg *prometheus.Registry, build BuildInfo, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registry")
	}
	opts = opts.withDefaults()
	m := &Metrics{
		now:            opts.Now,
		kinds:          newClosedList(opts.Kinds),
		outcomes:       newClosedList(opts.Outcomes),
		reasons:        newClosedList(opts.Reasons),
		messages:       newClosedList(opts.Messages),
		operations:     newClosedList(opts.Operations),
		tokenKinds:     newClosedList(opts.TokenKinds),
		secretBackends: newClosedList(opts.SecretBackends),
		secretOutcomes: newClosedList(opts.SecretOutcomes),
		running:        runningRequests{starts: make(map[uint64]time.Time)},

		requestsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_received_total",
			Help: "Request messages received from JetStream, redeliveries included.",
		}, []string{"kind"}),
		requestsRedelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_redelivered_total",
			Help: "Request messages received again after an earlier delivery (NumDelivered > 1).",
		}, []string{"kind"}),
		requestsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_finished_total",
			Help: "Request deliveries whose handling ended, by outcome.",
		}, []string{"kind", "outcome"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Time from the start of a delivery's handling to its end (ack, nak or term).",
			Buckets: requestDurationBuckets,
		}, []string{"kind"}),
		requestsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "requests_in_flight",
			Help: "Request deliveries being handled now.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Requests copied to the dead-letter stream, by error code.",
		}, []string{"reason"}),
		resultsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "results_published_total",
			Help: "Result events published and acknowledged by JetStream, by message.",
		}, []string{"message"}),

		airbyteRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "airbyte_requests_total",
			Help: "HTTP calls to the Airbyte API, by operation and status class (error: no response).",
		}, []string{"operation", "code"}),
		airbyteDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "airbyte_request_duration_seconds",
			Help:    "Duration of the HTTP calls to the Airbyte API that got a response.",
			Buckets: airbyteDurationBuckets,
		}, []string{"operation"}),
		airbyteInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "airbyte_requests_in_flight",
			Help: "HTTP calls to the Airbyte API waiting for their response now.",
		}),
		tokenMints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_mints_total",
			Help: "Airbyte tokens minted, by kind.",
		}, []string{"kind"}),
		tokenCacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_cache_hits_total",
			Help: "Airbyte tokens served from the cache instead of minted, by kind.",
		}, []string{"kind"}),
		secretFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "secret_fetches_total",
			Help: "Secret reads from the secret store, by backend and outcome.",
		}, []string{"backend", "outcome"}),
		ledgerConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "ledger_conflicts_total",
			Help: "Claims that found the connector identity leased by another live worker.",
		}),
		leaseTakeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "ledger_lease_takeovers_total",
			Help: "Expired ledger leases taken over from a worker that stopped.",
		}),
		consumerPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "consumer_pending_messages",
			Help: "Messages in the stream not yet delivered to the consumer (lag), from the last consumer info.",
		}),
		consumerAckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "consumer_ack_pending_messages",
			Help: "Messages delivered and not yet acknowledged, from the last consumer info.",
		}),
		consumerRedelivered: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "consumer_redelivered_messages",
			Help: "Messages delivered more than once and not yet acknowledged, from the last consumer info.",
		}),
		natsConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "nats_connected",
			Help: "1 while the NATS connection is up, else 0.",
		}),
		vaultLoginState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "vault_login_state",
			Help: "1 for the Vault backend's current login state (logged_in, renewing, failing), 0 for the others; all 0 without Vault.",
		}, []string{"state"}),
		vaultLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "vault_logins_total",
			Help: "Vault login attempts, by outcome (ok, failed).",
		}, []string{"outcome"}),
	}

	goVersion := build.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "goversion": goVersion},
	})
	buildInfo.Set(1)
	longestRunning := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "longest_running_request_seconds",
		Help: "How long the oldest request delivery being handled has been running; 0 when none.",
	}, m.longestRunning)
	vaultExpiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "vault_token_expiry_seconds",
		Help: "Seconds until the Vault token expires; 0 without a token, +Inf for a token that never expires.",
	}, m.vaultTokenExpiry)

	collectorsToRegister := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, longestRunning, vaultExpiry,
		m.requestsReceived, m.requestsRedelivered, m.requestsFinished, m.requestDuration,
		m.requestsInFlight, m.deadLetters, m.resultsPublished,
		m.airbyteRequests, m.airbyteDuration, m.airbyteInFlight, m.tokenMints, m.tokenCacheHits,
		m.secretFetches, m.ledgerConflicts, m.leaseTakeovers,
		m.consumerPending, m.consumerAckPending, m.consumerRedelivered, m.natsConnected,
		m.vaultLoginState, m.vaultLogins,
	}
	for _, c := range collectorsToRegister {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}

	for _, kind := range opts.Kinds {
		m.requestsReceived.WithLabelValues(kind)
		m.requestsRedelivered.WithLabelValues(kind)
		m.requestDuration.WithLabelValues(kind)
		for _, outcome := range opts.Outcomes {
			m.requestsFinished.WithLabelValues(kind, outcome)
		}
	}
	for _, reason := range opts.Reasons {
		m.deadLetters.WithLabelValues(reason)
	}
	for _, message := range opts.Messages {
		m.resultsPublished.WithLabelValues(message)
	}
	for _, op := range opts.Operations {
		m.airbyteDuration.WithLabelValues(op)
		for _, code := range precreatedCodes {
			m.airbyteRequests.WithLabelValues(op, code)
		}
	}
	for _, kind := range opts.TokenKinds {
		m.tokenMints.WithLabelValues(kind)
		m.tokenCacheHits.WithLabelValues(kind)
	}
	for _, backend := range opts.SecretBackends {
		for _, outcome := range opts.SecretOutcomes {
			m.secretFetches.WithLabelValues(backend, outcome)
		}
	}
	for _, state := range vaultLoginStates {
		m.vaultLoginState.WithLabelValues(state)
	}
	m.vaultLogins.WithLabelValues("ok")
	m.vaultLogins.WithLabelValues("failed")
	return m, nil
}

// vaultTokenExpiry is the value of provisioner_vault_token_expiry_seconds.
func (m *Metrics) vaultTokenExpiry() float64 {
	m.vaultToken.mu.Lock()
	defer m.vaultToken.mu.Unlock()
	switch {
	case !m.vaultToken.held:
		return 0
	case m.vaultToken.expiresAt.IsZero():
		return math.Inf(1)
	}
	return max(m.vaultToken.expiresAt.Sub(m.now()).Seconds(), 0)
}

// longestRunning is the value of provisioner_longest_running_request_seconds.
func (m *Metrics) longestRunning() float64 {
	oldest, ok := m.running.oldest()
	if !ok {
		return 0
	}
	return max(m.now().Sub(oldest).Seconds(), 0)
}

// RequestReceived counts a delivered request message; redelivered is NumDelivered > 1.
// kind: "credentials_submitted" | "customer_onboarded" | "unknown".
func (m *Metrics) RequestReceived(kind string, redelivered bool) {
	if m == nil {
		return
	}
	kind = m.kinds.value(kind)
	m.requestsReceived.WithLabelValues(kind).Inc()
	if redelivered {
		m.requestsRedelivered.WithLabelValues(kind).Inc()
	}
}

// RequestStarted marks the start of handling one delivery. The returned done ends it: it counts the
// outcome (one of Options.Outcomes) and observes the duration. Only the first call of done counts.
func (m *Metrics) RequestStarted(kind string) (done func(outcome string)) {
	if m == nil {
		return func(string) {}
	}
	kind = m.kinds.value(kind)
	start := m.now()
	id := m.running.add(start)
	m.requestsInFlight.Inc()
	var once sync.Once
	return func(outcome string) {
		once.Do(func() {
			m.running.remove(id)
			m.requestsInFlight.Dec()
			m.requestsFinished.WithLabelValues(kind, m.outcomes.value(outcome)).Inc()
			m.requestDuration.WithLabelValues(kind).Observe(max(m.now().Sub(start).Seconds(), 0))
		})
	}
}

// DeadLettered counts a request copied to the dead-letter stream; reason is its error code.
func (m *Metrics) DeadLettered(reason string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(m.reasons.value(reason)).Inc()
}

// ResultPublished counts an acknowledged result event; message is the result's message, e.g.
// "source_created".
func (m *Metrics) ResultPublished(message string) {
	if m == nil {
		return
	}
	m.resultsPublished.WithLabelValues(m.messages.value(message)).Inc()
}

// TokenMinted counts an Airbyte token minted; kind: "application" | "scoped" | "widget".
// It implements the Airbyte client's Observer.
func (m *Metrics) TokenMinted(kind string) {
	if m == nil {
		return
	}
	m.tokenMints.WithLabelValues(m.tokenKinds.value(kind)).Inc()
}

// TokenCacheHit counts an Airbyte token served from the cache; kind as for TokenMinted.
func (m *Metrics) TokenCacheHit(kind string) {
	if m == nil {
		return
	}
	m.tokenCacheHits.WithLabelValues(m.tokenKinds.value(kind)).Inc()
}

// SecretFetched counts a secret read. backend: "file" | "env" | "vault"; outcome: "ok" | "not_found" |
// "permission_denied" | "unavailable" | "invalid".
func (m *Metrics) SecretFetched(backend, outcome string) {
	if m == nil {
		return
	}
	m.secretFetches.WithLabelValues(m.secretBackends.value(backend), m.secretOutcomes.value(outcome)).Inc()
}

// LedgerConflict counts a claim that found the identity leased by another live worker.
func (m *Metrics) LedgerConflict() {
	if m == nil {
		return
	}
	m.ledgerConflicts.Inc()
}

// LeaseTakeover counts an expired lease taken over.
func (m *Metrics) LeaseTakeover() {
	if m == nil {
		return
	}
	m.leaseTakeovers.Inc()
}

// SetNATSConnected records the state of the NATS connection.
func (m *Metrics) SetNATSConnected(connected bool) {
	if m == nil {
		return
	}
	if connected {
		m.natsConnected.Set(1)
		return
	}
	m.natsConnected.Set(0)
}

// SetVaultLoginState records the Vault backend's login state ("logged_in" | "renewing" |
// "failing") and its token: held or not, and when it expires (zero: never).
func (m *Metrics) SetVaultLoginState(state string, held bool, expiresAt time.Time) {
	if m == nil {
		return
	}
	for _, s := range vaultLoginStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.vaultLoginState.WithLabelValues(s).Set(v)
	}
	m.vaultToken.mu.Lock()
	defer m.vaultToken.mu.Unlock()
	m.vaultToken.held, m.vaultToken.expiresAt = held, expiresAt
}

// VaultLogin counts a Vault login attempt.
func (m *Metrics) VaultLogin(ok bool) {
	if m == nil {
		return
	}
	outcome := "failed"
	if ok {
		outcome = "ok"
	}
	m.vaultLogins.WithLabelValues(outcome).Inc()
}

// SetConsumerLag records the counts of the last consumer info: NumPending, NumAckPending and
// NumRedelivered.
func (m *Metrics) SetConsumerLag(pending, ackPending uint64, redelivered uint64) {
	if m == nil {
		return
	}
	m.consumerPending.Set(float64(pending))
	m.consumerAckPending.Set(float64(ackPending))
	m.consumerRedelivered.Set(float64(redelivered))
}
