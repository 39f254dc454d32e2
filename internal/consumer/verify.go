package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/event"
)

// DriftKind says what a difference between the streams as found and as this replica would make them
// means, and so what start-up may do about it.
type DriftKind int

// Drift kinds, from the most to the least serious.
const (
	// DriftMissing: the stream, consumer or bucket does not exist. Setup creates it unless it only
	// verifies (--manage-streams=false).
	DriftMissing DriftKind = iota + 1
	// DriftIncompatible: a setting the provisioner cannot work with and JetStream cannot change in
	// place (subjects, retention, storage, ack policy, filter). Never applied; start-up stops.
	DriftIncompatible
	// DriftShared: a change to what every replica shares — fewer stream or bucket replicas, or the
	// consumer's ack wait, max deliver, max ack pending or backoff. Refused unless reconciling.
	DriftShared
	// DriftAdjust: a change that loses nothing (more replicas, the limits the provisioner keeps on
	// its own streams). Setup applies it and says so.
	DriftAdjust
)

func (k DriftKind) String() string {
	switch k {
	case DriftMissing:
		return "missing"
	case DriftIncompatible:
		return "incompatible"
	case DriftShared:
		return "shared"
	case DriftAdjust:
		return "adjust"
	}
	return "unknown"
}

// Drift is one difference between the JetStream objects as found and as this replica would make them.
type Drift struct {
	Object  string // "stream PROVISIONER_REQUESTS", "consumer provisioner", "bucket provisioner_ledger"
	Setting string // the setting's name in JetStream's terms ("num_replicas", "ack_wait"), or "exists"
	Found   string // the value found ("" when the object is missing)
	Want    string // the value this replica would set
	Kind    DriftKind
}

// Error describes the drift in one line, naming the setting and both values.
func (d Drift) Error() string {
	if d.Kind == DriftMissing {
		return d.Object + " is missing"
	}
	return fmt.Sprintf("%s: %s is %s, this replica's settings want %s", d.Object, d.Setting, d.Found, d.Want)
}

// DriftError is start-up refusing drift: configuration that would be changed under the other
// replicas, or that cannot be changed at all. It is a configuration mistake (exit 2).
type DriftError struct {
	Drifts []Drift
	// Reconcilable is true when every refused drift would be applied with --reconcile-streams.
	Reconcilable bool
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Drifts))
	for i, d := range e.Drifts {
		parts[i] = d.Error()
	}
	hint := ""
	if e.Reconcilable {
		hint = " (start with --reconcile-streams to apply this replica's settings)"
	}
	return "configuration drift" + hint + ": " + strings.Join(parts, "; ")
}

// Stream limits the provisioner keeps on its own streams.
const (
	// RequestMaxMsgSize is the requests stream's max_msg_size: the documented request limit
	// (event.MaxRequestBytes, 64 KiB, headers included). The stream refuses a larger request at
	// publish, so the publisher learns at once.
	RequestMaxMsgSize = event.MaxRequestBytes
	// DLQMaxMsgSize is the dead-letter stream's max_msg_size: a dead letter's body is cut to
	// DeadLetterBodyLimit and its headers are bounded, so one always fits.
	DLQMaxMsgSize = 32 << 10
	// DefaultDLQMaxBytes caps the dead-letter stream; the oldest dead letters go first.
	DefaultDLQMaxBytes = 256 << 20
)

// shortCall bounds one JetStream read or create: 1s plus up to 500ms of jitter. A cluster answers in
// milliseconds once it has leaders; a call stuck on an election, or a create that lost the race to
// another replica's identical create (the server answers only one of them), is better retried
// than waited out. Replicas starting together thus retry out of step.
func shortCall(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Second+rand.N(500*time.Millisecond))
}

// streamConfigs are the three streams as this replica would create them.
func streamConfigs(t Topology) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        t.RequestsStream,
			Description: "provisioner requests (work queue: a request leaves when it is acked or terminated)",
			Subjects:    []string{t.SubjectPrefix + ".requests.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
			MaxMsgSize:  RequestMaxMsgSize,
		},
		{
			Name:        t.ResultsStream,
			Description: "provisioner results, one per request (deduplicated by Nats-Msg-Id)",
			Subjects:    []string{t.SubjectPrefix + ".results.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
			MaxAge:      t.ResultsMaxAge,
		},
		{
			Name:        t.DLQStream,
			Description: "provisioner dead letters: the redacted, size-capped body and headers plus the reason",
			Subjects:    []string{t.SubjectPrefix + ".dlq.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
			MaxAge:      t.DLQMaxAge,
			MaxBytes:    t.DLQMaxBytes,
			MaxMsgSize:  DLQMaxMsgSize,
			Discard:     jetstream.DiscardOld,
		},
	}
}

// consumerConfig is the shared durable consumer as this replica would create it.
func consumerConfig(t Topology, p ConsumerPolicy) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "provisioner workers (all replicas share it)",
		FilterSubject: t.SubjectPrefix + ".requests.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.AckWait,
		MaxDeliver:    p.MaxDeliver + serverMaxDeliverReserve,
		MaxAckPending: max(p.MaxAckPending, 1),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Verify compares the streams, the shared consumer and (when t.LedgerBucket is set) the ledger
// bucket with what this replica would create, and returns every difference. It changes nothing.
// A missing object is a drift of kind DriftMissing; an error means JetStream could not be asked.
func Verify(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy) ([]Drift, error) {
	t = t.WithDefaults()
	var drifts []Drift
	for _, want := range streamConfigs(t) {
		found, err := streamConfig(ctx, js, want.Name)
		if err != nil {
			return nil, err
		}
		if found == nil {
			drifts = append(drifts, Drift{Object: "stream " + want.Name, Setting: "exists", Found: "no", Want: "yes", Kind: DriftMissing})
			continue
		}
		drifts = append(drifts, streamDrifts(*found, want)...)
	}
	cd, err := consumerDrifts(ctx, js, t, p)
	if err != nil {
		return nil, err
	}
	drifts = append(drifts, cd...)
	if t.LedgerBucket != "" {
		bd, err := bucketDrifts(ctx, js, t)
		if err != nil {
			return nil, err
		}
		drifts = append(drifts, bd...)
	}
	return drifts, nil
}

// streamConfig is a stream's configuration, or nil when it does not exist.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	ctx, cancel := shortCall(ctx)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	// the info the lookup returned: no second round trip
	cfg := s.CachedInfo().Config
	return &cfg, nil
}

func streamDrifts(found, want jetstream.StreamConfig) []Drift {
	obj := "stream " + want.Name
	var out []Drift
	add := func(setting string, f, w any, kind DriftKind) {
		out = append(out, Drift{Object: obj, Setting: setting, Found: fmt.Sprint(f), Want: fmt.Sprint(w), Kind: kind})
	}
	if !slices.Equal(found.Subjects, want.Subjects) {
		add("subjects", found.Subjects, want.Subjects, DriftIncompatible)
	}
	if found.Retention != want.Retention {
		add("retention", found.Retention, want.Retention, DriftIncompatible)
	}
	if found.Storage != want.Storage {
		add("storage", found.Storage, want.Storage, DriftIncompatible)
	}
	switch {
	case found.Replicas > want.Replicas:
		add("num_replicas", found.Replicas, want.Replicas, DriftShared)
	case found.Replicas < want.Replicas:
		add("num_replicas", found.Replicas, want.Replicas, DriftAdjust)
	}
	if found.Duplicates != want.Duplicates {
		add("duplicate_window", found.Duplicates, want.Duplicates, DriftAdjust)
	}
	if found.MaxAge != want.MaxAge {
		add("max_age", limitText(found.MaxAge), limitText(want.MaxAge), DriftAdjust)
	}
	if found.MaxBytes != want.MaxBytes && !(found.MaxBytes <= 0 && want.MaxBytes <= 0) {
		add("max_bytes", limitText(found.MaxBytes), limitText(want.MaxBytes), DriftAdjust)
	}
	if found.MaxMsgSize != want.MaxMsgSize && !(found.MaxMsgSize <= 0 && want.MaxMsgSize <= 0) {
		add("max_msg_size", limitText(found.MaxMsgSize), limitText(want.MaxMsgSize), DriftAdjust)
	}
	return out
}

// limitText prints a limit, with 0 (or -1) as "unlimited".
func limitText[T int32 | int64 | time.Duration](v T) string {
	if v <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

func consumerDrifts(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy) ([]Drift, error) {
	obj := "consumer " + t.Consumer
	callCtx, cancel := shortCall(ctx)
	defer cancel()
	c, err := js.Consumer(callCtx, t.RequestsStream, t.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return []Drift{{Object: obj, Setting: "exists", Found: "no", Want: "yes", Kind: DriftMissing}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj, err)
	}
	found, want := c.CachedInfo().Config, consumerConfig(t, p)
	var out []Drift
	add := func(setting string, f, w any, kind DriftKind) {
		out = append(out, Drift{Object: obj, Setting: setting, Found: fmt.Sprint(f), Want: fmt.Sprint(w), Kind: kind})
	}
	if found.FilterSubject != want.FilterSubject || len(found.FilterSubjects) > 0 {
		add("filter_subject", strings.Join(append([]string{found.FilterSubject}, found.FilterSubjects...), ","), want.FilterSubject, DriftIncompatible)
	}
	if found.AckPolicy != want.AckPolicy {
		add("ack_policy", found.AckPolicy, want.AckPolicy, DriftIncompatible)
	}
	if found.AckWait != want.AckWait {
		add("ack_wait", found.AckWait, want.AckWait, DriftShared)
	}
	if found.MaxDeliver != want.MaxDeliver {
		// what an operator sets is --max-deliver; the server holds it plus the reserve
		add("max_deliver", fmt.Sprintf("%d (--max-deliver %d)", found.MaxDeliver, found.MaxDeliver-serverMaxDeliverReserve),
			fmt.Sprintf("%d (--max-deliver %d)", want.MaxDeliver, p.MaxDeliver), DriftShared)
	}
	if found.MaxAckPending != want.MaxAckPending {
		add("max_ack_pending", found.MaxAckPending, want.MaxAckPending, DriftShared)
	}
	if !slices.Equal(found.BackOff, want.BackOff) {
		add("backoff", found.BackOff, want.BackOff, DriftShared)
	}
	return out, nil
}

// bucketDrifts compares the ledger bucket's replicas. The ledger creates the bucket; Verify only
// makes sure a replica does not lower what the others rely on.
func bucketDrifts(ctx context.Context, js jetstream.JetStream, t Topology) ([]Drift, error) {
	obj := "bucket " + t.LedgerBucket
	found, err := streamConfig(ctx, js, "KV_"+t.LedgerBucket)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj, err)
	}
	if found == nil {
		return []Drift{{Object: obj, Setting: "exists", Found: "no", Want: "yes", Kind: DriftMissing}}, nil
	}
	switch {
	case found.Replicas > t.Replicas:
		return []Drift{{Object: obj, Setting: "num_replicas", Found: fmt.Sprint(found.Replicas), Want: fmt.Sprint(t.Replicas), Kind: DriftShared}}, nil
	case found.Replicas < t.Replicas:
		return []Drift{{Object: obj, Setting: "num_replicas", Found: fmt.Sprint(found.Replicas), Want: fmt.Sprint(t.Replicas), Kind: DriftAdjust}}, nil
	}
	return nil, nil
}
