// Package consumer owns the provisioner's side of NATS JetStream: the streams and the durable pull
// consumer (created or updated at start-up, never deleted), the pull loop with bounded concurrency, the
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

// Setup creates or updates the three streams and the durable consumer. It never deletes anything;
// a stream whose existing configuration cannot be changed in place is reported, not replaced.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy) (jetstream.Consumer, error) {
	t = t.WithDefaults()
	streams := []jetstream.StreamConfig{
		{
			Name:        t.RequestsStream,
			Description: "provisioner requests (work queue: a request leaves when it is acked or terminated)",
			Subjects:    []string{t.SubjectPrefix + ".requests.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
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
			Description: "provisioner dead letters: original body and headers plus the reason",
			Subjects:    []string{t.SubjectPrefix + ".dlq.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
			MaxAge:      t.DLQMaxAge,
		},
	}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	if p.AckWait <= 0 || p.MaxDeliver <= 0 {
		return nil, errors.New("consumer: ack wait and max deliver must be positive")
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, t.RequestsStream, jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "provisioner workers (all replicas share it)",
		FilterSubject: t.SubjectPrefix + ".requests.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.AckWait,
		MaxDeliver:    p.MaxDeliver + serverMaxDeliverReserve,
		MaxAckPending: max(p.MaxAckPending, 1),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", t.Consumer, err)
	}
	return cons, nil
}
