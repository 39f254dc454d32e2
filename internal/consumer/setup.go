// Package consumer owns the provisioner's side of NATS JetStream: the streams and the durable pull
// consumer (verified at start-up, created or updated as the setup mode allows, never deleted; drift
// refused), the pull loop with bounded concurrency, the
// ack policy (ack after the result's PubAck, Nak with delay, Term), result and dead-letter publishing,
// dead-letter inspection and replay, and draining on shutdown.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
)

// Topology names the streams, subjects and the consumer.
type Topology struct {
	SubjectPrefix  string // default "provisioner"
	RequestsStream string // default PROVISIONER_REQUESTS
	ResultsStream  string // default PROVISIONER_RESULTS
	DLQStream      string // default PROVISIONER_DLQ
	Consumer       string // durable name, default "provisioner"
	Replicas       int    // stream replicas (1 for a single server)
	// DuplicateWindow is how long the results stream remembers Nats-Msg-Ids; a result re-published
	// within it is stored once. Default 2m.
	DuplicateWindow time.Duration
	// ResultsMaxAge and DLQMaxAge bound retention; 0 = 7 and 30 days.
	ResultsMaxAge, DLQMaxAge time.Duration
	// DLQMaxBytes caps the dead-letter stream (the oldest go first); 0 = DefaultDLQMaxBytes.
	DLQMaxBytes int64
	// LedgerBucket is the ledger's KV bucket; when set, Verify and Setup check its replicas too.
	// No default: the ledger creates the bucket.
	LedgerBucket string
}

// WithDefaults fills unset names.
func (t Topology) WithDefaults() Topology {
	if t.SubjectPrefix == "" {
		t.SubjectPrefix = "provisioner"
	}
	if t.RequestsStream == "" {
		t.RequestsStream = "PROVISIONER_REQUESTS"
	}
	if t.ResultsStream == "" {
		t.ResultsStream = "PROVISIONER_RESULTS"
	}
	if t.DLQStream == "" {
		t.DLQStream = "PROVISIONER_DLQ"
	}
	if t.Consumer == "" {
		t.Consumer = "provisioner"
	}
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	if t.DuplicateWindow <= 0 {
		t.DuplicateWindow = 2 * time.Minute
	}
	if t.ResultsMaxAge <= 0 {
		t.ResultsMaxAge = 7 * 24 * time.Hour
	}
	if t.DLQMaxAge <= 0 {
		t.DLQMaxAge = 30 * 24 * time.Hour
	}
	if t.DLQMaxBytes <= 0 {
		t.DLQMaxBytes = DefaultDLQMaxBytes
	}
	return t
}

// RequestSubject is the subject of a request kind's suffix ("credentials.submitted").
func (t Topology) RequestSubject(suffix string) string {
	return t.SubjectPrefix + ".requests." + suffix
}

// ResultSubject is the subject of a request's result message: <prefix>.results.<message>.<request
// token>, so that an app can await one request's verdict (see contract.ResultSubject).
func (t Topology) ResultSubject(message, requestID string) string {
	return contract.ResultSubject(t.SubjectPrefix, message, requestID)
}

// DLQSubject is the dead-letter subject of a request subject's suffix.
func (t Topology) DLQSubject(suffix string) string { return t.SubjectPrefix + ".dlq." + suffix }

// ConsumerPolicy is the durable consumer's delivery policy.
type ConsumerPolicy struct {
	AckWait time.Duration
	// MaxDeliver is how many deliveries a request gets; the last one ends it (error result, dead
	// letter, Term). The server is told a few more, kept in reserve for a worker that crashes during
	// the last one, so that even then the request is not stranded without a result.
	MaxDeliver    int
	MaxAckPending int
}

// serverMaxDeliverReserve is how many deliveries past MaxDeliver the server still makes.
const serverMaxDeliverReserve = 3

// SetupMode says what start-up may do to the streams, the consumer and the ledger bucket.
type SetupMode int

// Setup modes.
const (
	// Manage (the default): create what is missing and apply what loses nothing (more replicas, the
	// limits of the provisioner's own streams); refuse lowering replicas or changing the shared
	// consumer, and anything JetStream cannot change in place.
	Manage SetupMode = iota
	// Reconcile (--reconcile-streams): as Manage, and apply this replica's replicas and consumer
	// settings even where they differ from what the other replicas share.
	Reconcile
	// VerifyOnly (--manage-streams=false): create and change nothing; the streams, consumer and bucket
	// were made by a platform team. Anything missing or incompatible stops start-up; their own
	// replicas and limits are the platform team's choice and are only reported.
	VerifyOnly
)

// SetupReport is what Setup found and did.
type SetupReport struct {
	Consumer jetstream.Consumer
	// Applied lists the drifts Setup changed or created; Tolerated the ones it left as they are
	// (VerifyOnly). Both are for the log.
	Applied, Tolerated []Drift
	// BucketReplicas is the ledger bucket's replica count as found (0 when it is missing or not
	// checked): the ledger should open it with that count unless this replica applied its own.
	BucketReplicas int
}

// Setup creates or updates the three streams and the durable consumer as Manage does, and returns
// the consumer.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy) (jetstream.Consumer, error) {
	r, err := SetupWith(ctx, js, t, p, Manage)
	return r.Consumer, err
}

// SetupWith verifies the streams, the consumer and the ledger bucket (when t.LedgerBucket is set)
// and, as mode allows, creates or updates them. It never deletes anything. Refused drift is a
// *DriftError naming each setting with the value found and the value wanted. Replicas starting
// together may race to create the same objects: a create that loses the race, or gets no answer
// within its short timeout, is verified again, as long as ctx allows.
func SetupWith(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy, mode SetupMode) (SetupReport, error) {
	t = t.WithDefaults()
	if p.AckWait <= 0 || p.MaxDeliver <= 0 {
		return SetupReport{}, errors.New("consumer: ack wait and max deliver must be positive")
	}
	var report SetupReport
	for attempt := 0; ; attempt++ {
		drifts, err := Verify(ctx, js, t, p)
		if unanswered(ctx, err) {
			continue // a read stuck on an election or behind a create: ask again
		}
		if err != nil {
			return SetupReport{}, err
		}
		report.BucketReplicas = bucketReplicas(ctx, js, t)
		var refused, apply []Drift
		for _, d := range drifts {
			switch {
			case d.Kind == DriftIncompatible:
				refused = append(refused, d)
			case mode == VerifyOnly && (d.Kind == DriftMissing || d.Object == "consumer "+t.Consumer):
				// the worker relies on the consumer's delivery policy matching its own
				refused = append(refused, d)
			case mode == VerifyOnly:
				report.Tolerated = append(report.Tolerated, d)
			case d.Kind == DriftShared && mode != Reconcile:
				refused = append(refused, d)
			case d.Kind == DriftMissing && d.Object == "bucket "+t.LedgerBucket:
				// the ledger creates its bucket
			default:
				apply = append(apply, d)
			}
		}
		if len(refused) > 0 {
			reconcilable := mode != VerifyOnly
			for _, d := range refused {
				reconcilable = reconcilable && d.Kind == DriftShared
			}
			return SetupReport{}, &DriftError{Drifts: refused, Reconcilable: reconcilable}
		}
		raced, err := applyDrifts(ctx, js, t, p, apply)
		if err != nil {
			return SetupReport{}, err
		}
		if raced {
			// another replica created it first, or the create went unanswered: verify what is there
			if err := ctx.Err(); err != nil {
				return SetupReport{}, fmt.Errorf("set up streams after %d attempts: %w", attempt+1, err)
			}
			continue
		}
		report.Applied = apply
		callCtx, cancel := shortCall(ctx)
		report.Consumer, err = js.Consumer(callCtx, t.RequestsStream, t.Consumer)
		cancel()
		if unanswered(ctx, err) {
			continue // a consumer just created may not answer until it has a leader
		}
		if err != nil {
			return SetupReport{}, fmt.Errorf("consumer %s: %w", t.Consumer, err)
		}
		return report, nil
	}
}

// applyDrifts writes the objects the drifts name. raced is true when a create found that another
// replica had just created the object.
func applyDrifts(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy, drifts []Drift) (raced bool, err error) {
	touched := map[string]DriftKind{}
	for _, d := range drifts {
		if k, ok := touched[d.Object]; !ok || d.Kind < k {
			touched[d.Object] = d.Kind
		}
	}
	for _, sc := range streamConfigs(t) {
		kind, ok := touched["stream "+sc.Name]
		if !ok {
			continue
		}
		if kind == DriftMissing {
			callCtx, cancel := shortCall(ctx)
			_, err = js.CreateStream(callCtx, sc)
			cancel()
		} else {
			_, err = js.UpdateStream(ctx, sc)
		}
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse), kind == DriftMissing && unanswered(ctx, err):
			raced = true
		case err != nil:
			return false, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	if t.LedgerBucket != "" {
		if kind, ok := touched["bucket "+t.LedgerBucket]; ok && kind != DriftMissing {
			if err := setBucketReplicas(ctx, js, t); err != nil {
				return false, err
			}
		}
	}
	kind, ok := touched["consumer "+t.Consumer]
	if !ok {
		return raced, nil
	}
	cc := consumerConfig(t, p)
	if kind == DriftMissing {
		callCtx, cancel := shortCall(ctx)
		_, err = js.CreateConsumer(callCtx, t.RequestsStream, cc)
		cancel()
	} else {
		_, err = js.UpdateConsumer(ctx, t.RequestsStream, cc)
	}
	switch {
	case errors.Is(err, jetstream.ErrConsumerExists), kind == DriftMissing && unanswered(ctx, err):
		raced = true
	case err != nil:
		return false, fmt.Errorf("consumer %s: %w", t.Consumer, err)
	}
	return raced, nil
}

// unanswered: a call's own short timeout ran out while ctx is still alive.
func unanswered(ctx context.Context, err error) bool {
	return ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
}

// bucketReplicas is the ledger bucket's replica count, 0 when unknown.
func bucketReplicas(ctx context.Context, js jetstream.JetStream, t Topology) int {
	if t.LedgerBucket == "" {
		return 0
	}
	cfg, err := streamConfig(ctx, js, "KV_"+t.LedgerBucket)
	if err != nil || cfg == nil {
		return 0
	}
	return cfg.Replicas
}

// setBucketReplicas changes only the bucket stream's replicas; the ledger owns the rest of it.
func setBucketReplicas(ctx context.Context, js jetstream.JetStream, t Topology) error {
	cfg, err := streamConfig(ctx, js, "KV_"+t.LedgerBucket)
	if err != nil || cfg == nil {
		return fmt.Errorf("bucket %s: %w", t.LedgerBucket, errors.Join(err, jetstream.ErrStreamNotFound))
	}
	cfg.Replicas = t.Replicas
	if _, err := js.UpdateStream(ctx, *cfg); err != nil {
		return fmt.Errorf("bucket %s: %w", t.LedgerBucket, err)
	}
	return nil
}
