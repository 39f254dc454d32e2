// Package client is the app side of the provisioner: it submits requests (typed, from package
// contract) to NATS JetStream and awaits their verdicts.
//
// Submit validates a request against the same JSON Schemas the worker uses, publishes it with
// Nats-Msg-Id = the request id (the idempotency key) and returns once JetStream has stored it.
// Await returns a request's verdict: the one already stored (also long after it was published, and
// from a process that did not submit the request, as after a restart) or the one still to come. It
// reads only that request's results, by their subject, and leaves nothing behind on the server: no
// consumer, and its one subscription ends when Await returns.
//
// The Client uses the caller's *nats.Conn and is safe for concurrent use.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// Client submits requests and awaits verdicts over one NATS connection.
type Client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	dec  *event.Decoder
	opts options

	lookedUp func(requestID string) // tests: called when an Await found nothing stored and waits
}

type options struct {
	prefix         string
	requestsStream string
	resultsStream  string
	recheck        time.Duration
	tracer         trace.TracerProvider // nil: no spans (see WithTracerProvider)
}

// Option configures a Client.
type Option func(*options)

// WithSubjectPrefix sets the prefix of every subject (the worker's --subject-prefix); default
// "provisioner".
func WithSubjectPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithRequestsStream names the stream requests must land in (the worker's --requests-stream); Submit
// fails if JetStream stored a request anywhere else. Default PROVISIONER_REQUESTS.
func WithRequestsStream(name string) Option { return func(o *options) { o.requestsStream = name } }

// WithResultsStream names the stream Await reads verdicts from (the worker's --results-stream);
// default PROVISIONER_RESULTS.
func WithResultsStream(name string) Option { return func(o *options) { o.resultsStream = name } }

// WithRecheckInterval sets how often a pending Await looks in the results stream again, besides
// listening: a verdict published while the connection was down reaches Await this way. Default 5s.
func WithRecheckInterval(d time.Duration) Option { return func(o *options) { o.recheck = d } }

// New returns a Client that uses nc, which stays the caller's to close.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client: nil *nats.Conn")
	}
	o := options{
		prefix:         contract.DefaultSubjectPrefix,
		requestsStream: contract.DefaultRequestsStream,
		resultsStream:  contract.DefaultResultsStream,
		recheck:        5 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.prefix == "", o.requestsStream == "", o.resultsStream == "":
		return nil, errors.New("client: empty subject prefix or stream name")
	case o.recheck <= 0:
		return nil, errors.New("client: recheck interval must be positive")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	dec, err := event.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{nc: nc, js: js, dec: dec, opts: o}, nil
}

// Submission is what JetStream said about a submitted request.
type Submission struct {
	RequestID string // the request's id: the caller's, or the one Submit generated
	Subject   string
	Stream    string
	Sequence  uint64
	// Duplicate is true when JetStream already held a request with this id (within its duplicate
	// window) and dropped this one: the earlier request's verdict is this one's.
	Duplicate bool
}

// Submit validates req against its JSON Schema and publishes it. A request without an id gets a
// new UUID (see Submission.RequestID); a caller-chosen id is the idempotency key: submitting the
// same id again is reported as a duplicate and not processed twice. An invalid request returns an
// *InvalidRequestError and publishes nothing.
func (c *Client) Submit(ctx context.Context, req contract.Request) (*Submission, error) {
	kind, body, id, err := c.prepare(req)
	if err != nil {
		return nil, err
	}
	return c.publish(ctx, kind, body, id)
}

// SubmitJSON validates a request body of the given kind (plain JSON, or a CloudEvents structured-mode
// envelope with the request as data) and publishes it as it is. The body must carry its id.
func (c *Client) SubmitJSON(ctx context.Context, kind contract.Kind, body []byte) (*Submission, error) {
	id, err := c.validate(kind, body)
	if err != nil {
		return nil, err
	}
	return c.publish(ctx, kind, body, id)
}

// SubmitAndAwait submits req and awaits its verdict; see Submit and Await. It listens for the verdict
// before it submits, so that it reads the results stream only for a duplicate.
func (c *Client) SubmitAndAwait(ctx context.Context, req contract.Request) (*contract.Result, error) {
	kind, body, id, err := c.prepare(req)
	if err != nil {
		return nil, err
	}
	l, err := c.listen(id)
	if err != nil {
		return nil, err
	}
	defer l.stop()
	sub, err := c.publish(ctx, kind, body, id)
	if err != nil {
		return nil, err
	}
	// a request new to JetStream has its verdict still to come, and it is listened for already
	return c.wait(ctx, l, sub.Duplicate)
}

// prepare encodes req, gives it an id if it has none, and validates it.
func (c *Client) prepare(req contract.Request) (contract.Kind, []byte, string, error) {
	if req == nil {
		return "", nil, "", &InvalidRequestError{Code: contract.CodeSchemaViolation, Err: errors.New("nil request")}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", nil, "", &InvalidRequestError{Code: contract.CodeInvalidJSON, Err: err}
	}
	if body, err = withID(body); err != nil {
		return "", nil, "", &InvalidRequestError{Code: contract.CodeInvalidJSON, Err: err}
	}
	id, err := c.validate(req.Kind(), body)
	return req.Kind(), body, id, err
}

// validate checks body against its kind's schema, as the worker will, and returns its id.
func (c *Client) validate(kind contract.Kind, body []byte) (string, error) {
	r, err := c.dec.Decode(kind, body)
	if err != nil {
		code, _ := event.CodeOf(err)
		return "", &InvalidRequestError{Code: code, Err: err}
	}
	return r.ID(), nil
}

// publish publishes a valid request with Nats-Msg-Id = its id and awaits the PubAck.
func (c *Client) publish(ctx context.Context, kind contract.Kind, body []byte, id string) (*Submission, error) {
	msg := &nats.Msg{Subject: contract.RequestSubject(c.opts.prefix, kind), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set("content-type", "application/json")
	ctx, end := c.startPublish(ctx, msg)
	ack, err := c.js.PublishMsg(ctx, msg)
	end(err)
	if err != nil {
		return nil, fmt.Errorf("submit request %s: %w", id, err)
	}
	if ack.Stream != c.opts.requestsStream {
		return nil, fmt.Errorf("submit request %s: stored in stream %s, not %s: check the subject prefix and stream names", id, ack.Stream, c.opts.requestsStream)
	}
	return &Submission{RequestID: id, Subject: msg.Subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// withID gives a request body without an id a new one.
func withID(body []byte) ([]byte, error) {
	var has struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(body, &has); err != nil {
		return nil, err
	}
	if id, ok := has.ID.(string); has.ID != nil && (!ok || id != "") {
		return body, nil // an id, or something the schema will refuse
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	fields["id"], _ = json.Marshal(uuid.NewString())
	return json.Marshal(fields)
}
