package consumer

import (
	"context"
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
	subject := raw.Header.Get(HeaderDLQSubject)
	if !strings.HasPrefix(subject, d.topo.SubjectPrefix+".requests.") {
		return fmt.Errorf("dead letter %d: original subject %q is not a request subject", id, subject)
	}
	msg := &nats.Msg{Subject: subject, Data: raw.Data, Header: nats.Header{}}
	for k, vs := range raw.Header {
		if strings.HasPrefix(k, "Provisioner-Dlq-") || k == jetstream.MsgIDHeader {
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
