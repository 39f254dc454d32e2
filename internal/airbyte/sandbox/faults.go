package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"time"
)

// Operation names, the keys of Faults.Rules and Stats.Requests.
const (
	OpToken                 = "token"
	OpScopedToken           = "scoped_token"
	OpScopedTokenInfo       = "scoped_token_info"
	OpWidgetToken           = "widget_token"
	OpConnectorsCreate      = "connectors_create"
	OpConnectorsList        = "connectors_list"
	OpConnectorsGet         = "connectors_get"
	OpConnectorsUpdate      = "connectors_update"
	OpConnectorsDelete      = "connectors_delete"
	OpConnectorsCheck       = "connectors_check"
	OpSourcesCreate         = "sources_create"
	OpSourcesList           = "sources_list"
	OpSourcesGet            = "sources_get"
	OpSourcesUpdate         = "sources_update"
	OpSourcesDelete         = "sources_delete"
	OpSourceTemplatesList   = "source_templates_list"
	OpSourceTemplatesGet    = "source_templates_get"
	OpSourceDefinitionsList = "source_definitions_list"
	OpSourceDefinitionsGet  = "source_definitions_get"
	OpConnectorsExecute     = "connectors_execute"
	OpWorkspacesStats       = "workspaces_stats"
	OpWorkspacesList        = "workspaces_list"
	OpWorkspacesGet         = "workspaces_get"
	OpWorkspacesUpdate      = "workspaces_update"
	OpWorkspacesDelete      = "workspaces_delete"
	// OpAll is the rule key that applies to every operation without a rule of its own.
	OpAll = "*"
)

// Fault kinds, the keys of Stats.Faults.
const (
	FaultLatency        = "latency"
	FaultError          = "error"
	FaultRateLimit      = "rate_limit"
	FaultDrop           = "drop_connection"
	FaultCommitThenFail = "commit_then_fail"
	FaultCheckStatus    = "check_status" // a check answered a status the plan forced
)

// Faults is a plan of injected failures, per operation.
type Faults struct {
	// Rules by operation name (the Op* constants); OpAll applies to operations without a rule.
	Rules map[string]FaultRule `json:"rules,omitempty"`
}

// FaultRule describes what goes wrong with one operation. Every random decision is derived from
// (Config.Seed, operation, the operation's request number), so a run is reproducible.
type FaultRule struct {
	// Latency is added to every call.
	Latency time.Duration
	// LatencyJitter adds a uniform [0, LatencyJitter) on top of Latency.
	LatencyJitter time.Duration
	// ErrorRates maps an HTTP status to the probability of answering it (with an error body)
	// instead of doing the work, e.g. {500: 0.05, 503: 0.05}.
	ErrorRates map[int]float64
	// RateLimitBurst answers 429 with Retry-After in deterministic bursts.
	RateLimitBurst RateLimitBurst
	// CommitThenFail is the probability that a create commits the resource and then the client
	// sees a 500 or a dropped connection: the case no idempotency key protects against.
	CommitThenFail float64
	// DropConnection is the probability of closing the connection without any response, before
	// doing anything.
	DropConnection float64
	// CheckStatuses maps a check status Airbyte may answer besides succeeded/failed ("pending",
	// "running", "cancelled", "inconclusive", "skipped") to the probability that a check
	// (connectors_check) answers it, whatever the credentials.
	CheckStatuses map[string]float64
	// CheckLatency delays a check answered with one of CheckStatuses, on top of Latency: a
	// check that stays pending or ends inconclusive usually took its time.
	CheckLatency time.Duration
}

// forcedCheckStatuses are the CheckStatus values a fault plan may force; succeeded and failed
// follow the credentials.
var forcedCheckStatuses = []string{"cancelled", "inconclusive", "pending", "running", "skipped"}

// RateLimitBurst throttles the last Length of every Every requests of an operation (requests are
// numbered from 1): with Every 10 and Length 3, requests 8, 9, 10, 18, 19, 20, ... get 429.
type RateLimitBurst struct {
	Every, Length int
	// RetryAfter is sent as Retry-After in whole seconds, at least 1.
	RetryAfter time.Duration
}

type faultRuleJSON struct {
	Latency        string             `json:"latency,omitempty"`
	LatencyJitter  string             `json:"latency_jitter,omitempty"`
	ErrorRates     map[string]float64 `json:"error_rates,omitempty"`
	RateLimitBurst *rateLimitJSON     `json:"rate_limit_burst,omitempty"`
	CommitThenFail float64            `json:"commit_then_fail,omitempty"`
	DropConnection float64            `json:"drop_connection,omitempty"`
	CheckStatuses  map[string]float64 `json:"check_statuses,omitempty"`
	CheckLatency   string             `json:"check_latency,omitempty"`
}

type rateLimitJSON struct {
	Every      int    `json:"every"`
	Length     int    `json:"length"`
	RetryAfter string `json:"retry_after,omitempty"`
}

// MarshalJSON writes durations as Go duration strings ("50ms").
func (r FaultRule) MarshalJSON() ([]byte, error) {
	j := faultRuleJSON{CommitThenFail: r.CommitThenFail, DropConnection: r.DropConnection, CheckStatuses: maps.Clone(r.CheckStatuses)}
	if r.CheckLatency != 0 {
		j.CheckLatency = r.CheckLatency.String()
	}
	if r.Latency != 0 {
		j.Latency = r.Latency.String()
	}
	if r.LatencyJitter != 0 {
		j.LatencyJitter = r.LatencyJitter.String()
	}
	if len(r.ErrorRates) > 0 {
		j.ErrorRates = make(map[string]float64, len(r.ErrorRates))
		for status, p := range r.ErrorRates {
			j.ErrorRates[fmt.Sprint(status)] = p
		}
	}
	if r.RateLimitBurst.Every > 0 {
		j.RateLimitBurst = &rateLimitJSON{Every: r.RateLimitBurst.Every, Length: r.RateLimitBurst.Length}
		if r.RateLimitBurst.RetryAfter != 0 {
			j.RateLimitBurst.RetryAfter = r.RateLimitBurst.RetryAfter.String()
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads durations as Go duration strings ("50ms") and validates the rule.
func (r *FaultRule) UnmarshalJSON(b []byte) error {
	var j faultRuleJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault rule: %w", err)
	}
	var out FaultRule
	var err error
	if out.Latency, err = parseDuration("latency", j.Latency); err != nil {
		return err
	}
	if out.LatencyJitter, err = parseDuration("latency_jitter", j.LatencyJitter); err != nil {
		return err
	}
	if len(j.ErrorRates) > 0 {
		out.ErrorRates = make(map[int]float64, len(j.ErrorRates))
		for k, p := range j.ErrorRates {
			var status int
			if _, err := fmt.Sscanf(k, "%d", &status); err != nil || status < 400 || status > 599 {
				return fmt.Errorf("fault rule: error_rates key %q is not an HTTP error status", k)
			}
			out.ErrorRates[status] = p
		}
	}
	if j.RateLimitBurst != nil {
		out.RateLimitBurst.Every = j.RateLimitBurst.Every
		out.RateLimitBurst.Length = j.RateLimitBurst.Length
		if out.RateLimitBurst.RetryAfter, err = parseDuration("retry_after", j.RateLimitBurst.RetryAfter); err != nil {
			return err
		}
	}
	out.CommitThenFail = j.CommitThenFail
	out.DropConnection = j.DropConnection
	out.CheckStatuses = j.CheckStatuses
	if out.CheckLatency, err = parseDuration("check_latency", j.CheckLatency); err != nil {
		return err
	}
	if err := out.validate(); err != nil {
		return err
	}
	*r = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault rule: %s: %w", field, err)
	}
	return d, nil
}

func (r FaultRule) validate() error {
	probs := []float64{r.CommitThenFail, r.DropConnection}
	for _, p := range r.ErrorRates {
		probs = append(probs, p)
	}
	sum := 0.0
	for st, p := range r.CheckStatuses {
		if !slices.Contains(forcedCheckStatuses, st) {
			return fmt.Errorf("fault rule: check_statuses key %q is not one of %v", st, forcedCheckStatuses)
		}
		probs = append(probs, p)
		sum += p
	}
	for _, p := range probs {
		if p < 0 || p > 1 {
			return fmt.Errorf("fault rule: probability %v outside [0, 1]", p)
		}
	}
	if sum > 1 {
		return fmt.Errorf("fault rule: check_statuses probabilities add up to %v > 1", sum)
	}
	if r.Latency < 0 || r.LatencyJitter < 0 || r.RateLimitBurst.RetryAfter < 0 || r.CheckLatency < 0 {
		return fmt.Errorf("fault rule: negative duration")
	}
	if r.RateLimitBurst.Every < 0 || r.RateLimitBurst.Length < 0 || r.RateLimitBurst.Length > r.RateLimitBurst.Every {
		return fmt.Errorf("fault rule: rate limit burst needs 0 <= length <= every")
	}
	return nil
}

func (f Faults) clone() Faults {
	out := Faults{Rules: make(map[string]FaultRule, len(f.Rules))}
	for op, r := range f.Rules {
		r.ErrorRates = maps.Clone(r.ErrorRates)
		r.CheckStatuses = maps.Clone(r.CheckStatuses)
		out.Rules[op] = r
	}
	return out
}

func (f Faults) rule(op string) (FaultRule, bool) {
	if r, ok := f.Rules[op]; ok {
		return r, true
	}
	r, ok := f.Rules[OpAll]
	return r, ok
}

// decision is what the fault plan says about one request.
type decision struct {
	delay          time.Duration
	drop           bool
	status         int // an injected error status, 0 for none
	retryAfter     time.Duration
	commitThenFail bool
	failByDrop     bool          // how a commit-then-fail shows: a dropped connection, else a 500
	checkStatus    string        // a check status to answer whatever the credentials, "" for none
	checkDelay     time.Duration // waited before answering checkStatus
}

// decide derives the fate of request number n of op from the seed alone, so that the same seed
// gives the same decisions whatever the interleaving of operations.
func decide(seed int64, op string, n uint64, r FaultRule) decision {
	var d decision
	rnd := newDecisionRand(seed, op, n)
	d.delay = r.Latency
	if r.LatencyJitter > 0 {
		d.delay += time.Duration(rnd.float() * float64(r.LatencyJitter))
	} else {
		rnd.float()
	}
	if rnd.float() < r.DropConnection {
		d.drop = true
		return d
	}
	if b := r.RateLimitBurst; b.Every > 0 && b.Length > 0 {
		if int((n-1)%uint64(b.Every)) >= b.Every-b.Length {
			d.status = 429
			d.retryAfter = b.RetryAfter
			return d
		}
	}
	// Statuses in a fixed order so that map iteration order cannot change a decision.
	statuses := make([]int, 0, len(r.ErrorRates))
	for s := range r.ErrorRates {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	u := rnd.float()
	for _, s := range statuses {
		p := r.ErrorRates[s]
		if u < p {
			d.status = s
			if s == 429 {
				d.retryAfter = r.RateLimitBurst.RetryAfter
			}
			return d
		}
		u -= p
	}
	d.commitThenFail = rnd.float() < r.CommitThenFail
	d.failByDrop = rnd.float() < 0.5
	// Drawn last, so that adding check statuses to a plan changes no earlier decision.
	u = rnd.float()
	for _, st := range forcedCheckStatuses {
		p := r.CheckStatuses[st]
		if u < p {
			d.checkStatus, d.checkDelay = st, r.CheckLatency
			break
		}
		u -= p
	}
	return d
}

// decisionRand is a splitmix64 stream seeded from a hash of the decision's inputs.
type decisionRand struct{ state uint64 }

func newDecisionRand(seed int64, op string, n uint64) *decisionRand {
	h := fnv.New64a()
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], uint64(seed))
	binary.LittleEndian.PutUint64(buf[8:], n)
	_, _ = h.Write(buf[:])
	_, _ = h.Write([]byte(op))
	return &decisionRand{state: h.Sum64()}
}

func (r *decisionRand) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a uniform value in [0, 1).
func (r *decisionRand) float() float64 { return float64(r.next()>>11) / (1 << 53) }
