package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterEntry is one message of the dead-letter stream.
type DeadLetterEntry struct {
	ID              uint64    `json:"id"` // the dead-letter stream sequence
	Subject         string    `json:"subject"`
	OriginalSubject string    `json:"original_subject"`
	RequestID       string    `json:"request_id,omitempty"`
	Reason          string    `json:"reason"`
	Error           string    `json:"error"`
	Deliveries      int       `json:"deliveries"`
	Time            time.Time `json:"time"`
	Body            []byte    `json:"body"`
	Header          nats.Header
}

// DeadLetters reads and replays the dead-letter stream.
type DeadLetters struct {
	js   jetstream.JetStream
	topo Topology
}

// NewDeadLetters returns a DeadLetters for the topology.
func NewDeadLetters(js jetstream.JetStream, t Topology) *DeadLetters {
	return &DeadLetters{js: js, topo: t.WithDefaults()}
}

// List returns up to limit dead letters, oldest first (limit <= 0: all).
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadLetterEntry, error) {
	stream, err := d.js.Stream(ctx, d.topo.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", d.topo.DLQStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", d.topo.DLQStream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	// an ordered consumer reads the stream without leaving state behind
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	var out []DeadLetterEntry
	for {
		want := int(info.State.Msgs) - len(out)
		if limit > 0 {
			want = min(want, limit-len(out))
		}
		if want <= 0 {
			break
		}
		batch, err := cons.Fetch(min(want, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, fmt.Errorf("read dead letters: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			out = append(out, entryOf(msg))
			if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
				return out, nil
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return out, fmt.Errorf("read dead letters: %w", batch.Error())
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

func entryOf(msg jetstream.Msg) DeadLetterEntry {
	h := msg.Headers()
	e := DeadLetterEntry{
		Subject: msg.Subject(), OriginalSubject: h.Get(HeaderDLQSubject), RequestID: h.Get(HeaderDLQRequestID),
		Reason: h.Get(HeaderDLQReason), Error: h.Get(HeaderDLQError), Body: msg.Data(), Header: h,
	}
	if meta, err := msg.Metadata(); err == nil {
		e.ID = meta.Sequence.Stream
	}
	e.Deliveries, _ = strconv.Atoi(h.Get(HeaderDLQDeliveries))
	e.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime))
	return e
}

// Replay re-submits the dead letter with stream sequence id to its original subject, with its
// original headers, and removes it from the dead-letter stream once the request stream has it.
func (d *DeadLetters) Replay(ctx context.Context, id uint64) error {
	stream, err := d.js.Stream(ctx, d.topo.DLQStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", d.topo.DLQStream, err)
	}
	raw, err := stream.GetMsg(ctx, id)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", id, err)
	}
	if t := raw.Header.Get(HeaderDLQBody); t == "cut" || t == "dropped" {
		return fmt.Errorf("dead letter %d: its body was %s (%s bytes) and cannot be replayed; publish the request again", id, t, raw.Header.Get(HeaderDLQBodyCut))
	}
	subject := raw.Header.Get(HeaderDLQSubject)
	if !strings.HasPrefix(subject, d.topo.SubjectPrefix+".requests.") {
		return fmt.Errorf("dead letter %d: original subject %q is not a request subject", id, subject)
	}
	msg := &nats.Msg{Subject: subject, Data: raw.Data, Header: nats.Header{}}
	for k, vs := range raw.Header {
		if strings.HasPrefix(k, "Provisioner-Dlq-") || k == jetstream.MsgIDHeader || !keepHeader(k) {
			continue
		}
		msg.Header[k] = vs
	}
	// a fresh id: the original's is still in the duplicate window if it failed recently
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay:%s:%d", d.topo.DLQStream, id))
	// the replay's verdict supersedes the dead letter's: one revision higher
	rev, err := strconv.Atoi(raw.Header.Get(HeaderRevision))
	if err != nil || rev < 1 {
		rev = 1
	}
	msg.Header.Set(HeaderRevision, strconv.Itoa(rev+1))
	if _, err := d.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	if err := stream.DeleteMsg(ctx, id); err != nil {
		return fmt.Errorf("replayed dead letter %d but could not remove it: %w", id, err)
	}
	return nil
}

// ReplayAll replays every dead letter and returns how many were replayed.
func (d *DeadLetters) ReplayAll(ctx context.Context) (int, error) {
	entries, err := d.List(ctx, 0)
	if err != nil {
		return 0, err
	}
	for i, e := range entries {
		if err := d.Replay(ctx, e.ID); err != nil {
			return i, err
		}
	}
	return len(entries), nil
}

// DeadLetterBodyLimit is how much of a refused request's body a dead letter keeps (after its
// credentials are removed); the rest is cut and HeaderDLQBodyCut says how long the body was.
const DeadLetterBodyLimit = 16 << 10

// Headers of a dead letter's body.
const (
	// HeaderDLQBody says what was done to the body: "redacted" (credentials removed), "cut"
	// (redacted if need be, then cut to DeadLetterBodyLimit), "dropped" (not JSON, and it mentions
	// credentials, so nothing of it is kept).
	HeaderDLQBody = "Provisioner-Dlq-Body"
	// HeaderDLQBodyCut is the original body's length when it was cut or dropped.
	HeaderDLQBodyCut = "Provisioner-Dlq-Body-Length"
)

// deadLetterBody is what a dead letter keeps of a request body: every "credentials" member removed
// wherever it appears (at any depth, inside a CloudEvents envelope too), then cut to
// DeadLetterBodyLimit. A body that is not JSON cannot be searched member by member: if it mentions
// credentials at all, none of it is kept. treatment is "" when the body is kept as it came.
func deadLetterBody(body []byte) (kept []byte, treatment string) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		if bytes.Contains(bytes.ToLower(body), []byte("credentials")) {
			return nil, "dropped"
		}
		return cut(body, "")
	}
	if !removeCredentials(doc) {
		return cut(body, "")
	}
	redacted, err := json.Marshal(doc)
	if err != nil {
		return nil, "dropped"
	}
	return cut(redacted, "redacted")
}

func cut(body []byte, treatment string) ([]byte, string) {
	if len(body) <= DeadLetterBodyLimit {
		return body, treatment
	}
	return body[:DeadLetterBodyLimit], "cut"
}

// removeCredentials deletes every member named "credentials" from the JSON value v, at any depth,
// and reports whether it removed one.
func removeCredentials(v any) bool {
	removed := false
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if strings.EqualFold(k, "credentials") {
				delete(t, k)
				removed = true
				continue
			}
			removed = removeCredentials(child) || removed
		}
	case []any:
		for _, child := range t {
			removed = removeCredentials(child) || removed
		}
	}
	return removed
}

// deadLetterHeaderBudget bounds the request headers a dead letter copies; with the body limit and
// the provisioner's own headers (each at most 1 KiB) a dead letter stays below DLQMaxMsgSize.
const deadLetterHeaderBudget = 4 << 10

// keepHeader: a dead letter keeps the request's own headers (tracing, CloudEvents, the app's), each
// bounded, except any whose name suggests it carries a credential (an Authorization header, an API
// key, a cookie, a session or signature), which is not copied.
func keepHeader(name string) bool {
	n := strings.ToLower(name)
	for _, secretish := range []string{"auth", "token", "secret", "passw", "cookie", "credential", "key", "signature", "session"} {
		if strings.Contains(n, secretish) {
			return false
		}
	}
	return true
}

// Purge removes every dead letter and returns how many there were.
func (d *DeadLetters) Purge(ctx context.Context) (uint64, error) {
	stream, err := d.js.Stream(ctx, d.topo.DLQStream)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream %s: %w", d.topo.DLQStream, err)
	}
	n := stream.CachedInfo().State.Msgs
	if err := stream.Purge(ctx); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return n, nil
}

// Delete removes the dead letter with stream sequence id.
func (d *DeadLetters) Delete(ctx context.Context, id uint64) error {
	stream, err := d.js.Stream(ctx, d.topo.DLQStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", d.topo.DLQStream, err)
	}
	if err := stream.DeleteMsg(ctx, id); err != nil {
		return fmt.Errorf("delete dead letter %d: %w", id, err)
	}
	return nil
}
