package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
)

// fetchOne publishes a request (unless msg is nil) and returns the next one as the worker's consumer delivers it.
func fetchOne(t *testing.T, js jetstream.JetStream, cons jetstream.Consumer, msg *nats.Msg) jetstream.Msg {
	t.Helper()
	if msg != nil {
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		return m
	}
	t.Fatalf("no message: %v", batch.Error())
	return nil
}

// A refused request's dead letter holds no credentials object and no header that may carry a
// credential, and keeps the app's other headers; it can be replayed, deleted by id and purged.
func TestDeadLettersHoldNoSecrets(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	topo := consumer.Topology{}.WithDefaults()
	cons, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 3, MaxAckPending: 10})
	if err != nil {
		t.Fatal(err)
	}
	pub := consumer.NewPublisher(js, topo, "test")
	dl := consumer.NewDeadLetters(js, topo)

	for _, tc := range []struct {
		name, body string
		treatment  string
		replayable bool
	}{
		{"inline credentials", `{"id":"inline","workspace_name":"acme","connector_type":"github","credentials_ref":"file:a.json","replication_config":{"credentials":{"token":"ghp_DLQ_CANARY"}}}`, "redacted", true},
		{"broken JSON with credentials", `{"id":"broken","credentials":{"token":"ghp_DLQ_CANARY"`, "dropped", false},
		{"too long", `{"id":"long","workspace_name":"` + strings.Repeat("x", 40<<10) + `"}`, "cut", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: topo.RequestSubject("credentials.submitted"), Data: []byte(tc.body), Header: nats.Header{}}
			msg.Header.Set("Authorization", "Bearer DLQ_HEADER_CANARY")
			msg.Header.Set("X-Api-Key", "DLQ_HEADER_CANARY")
			msg.Header.Set("X-App", "crm")
			msg.Header.Set("traceparent", "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01")
			msg.Header.Set(jetstream.MsgIDHeader, tc.name)
			m := fetchOne(t, js, cons, msg)
			if err := pub.PublishDeadLetter(ctx, m, consumer.DeadLetter{Reason: contract.CodeSchemaViolation, Error: "refused", RequestID: tc.name, Deliveries: 1}, time.Now()); err != nil {
				t.Fatal(err)
			}
			_ = m.Term()
			entries, err := dl.List(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			e := entries[len(entries)-1]
			var all strings.Builder
			all.Write(e.Body)
			for k, vs := range e.Header {
				all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
			}
			for _, canary := range []string{"DLQ_CANARY", "DLQ_HEADER_CANARY", "Authorization", "X-Api-Key"} {
				if strings.Contains(all.String(), canary) {
					t.Errorf("the dead letter keeps %s:\n%s", canary, all.String())
				}
			}
			if got := e.Header.Get(consumer.HeaderDLQBody); got != tc.treatment {
				t.Errorf("body treatment %q, want %q", got, tc.treatment)
			}
			if len(e.Body) > consumer.DeadLetterBodyLimit || e.Header.Get("traceparent") == "" || e.Header.Get("X-App") != "crm" {
				t.Errorf("body %d bytes, headers %v", len(e.Body), e.Header)
			}
			err = dl.Replay(ctx, e.ID)
			if (err == nil) != tc.replayable {
				t.Fatalf("replay: %v, want replayable=%v", err, tc.replayable)
			}
			if tc.replayable {
				replayed := fetchOne(t, js, cons, nil)
				if strings.Contains(string(replayed.Data()), "credentials\"") {
					t.Errorf("the replayed request carries credentials: %s", replayed.Data())
				}
				_ = replayed.Term()
			}
		})
	}

	entries, err := dl.List(ctx, 0)
	if err != nil || len(entries) != 2 {
		t.Fatalf("dead letters %d, %v; want the two that cannot be replayed", len(entries), err)
	}
	if err := dl.Delete(ctx, entries[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := dl.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if entries, err := dl.List(ctx, 0); err != nil || len(entries) != 0 {
		t.Fatalf("after purge: %d, %v", len(entries), err)
	}
}

// The requests stream refuses a request over the documented limit at publish; the dead-letter
// stream is capped in bytes and per message.
func TestStreamLimits(t *testing.T) {
	ctx := context.Background()
	srv := natsembedtest.Start(t)
	_, js := srv.Connect(t)
	topo := consumer.Topology{}.WithDefaults()
	if _, err := consumer.Setup(ctx, js, topo, consumer.ConsumerPolicy{AckWait: 30 * time.Second, MaxDeliver: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := js.Publish(ctx, topo.RequestSubject("credentials.submitted"), make([]byte, event.MaxRequestBytes+1))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamMessageExceedsMaximum {
		t.Fatalf("a request over %d bytes: %v", event.MaxRequestBytes, err)
	}
	for _, tc := range []struct {
		stream     string
		maxMsgSize int32
		maxBytes   int64
	}{
		{topo.RequestsStream, event.MaxRequestBytes, -1},
		{topo.DLQStream, consumer.DLQMaxMsgSize, consumer.DefaultDLQMaxBytes},
	} {
		s, err := js.Stream(ctx, tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CachedInfo().Config; c.MaxMsgSize != tc.maxMsgSize || c.MaxBytes != tc.maxBytes {
			t.Errorf("%s: max_msg_size %d, max_bytes %d; want %d, %d", tc.stream, c.MaxMsgSize, c.MaxBytes, tc.maxMsgSize, tc.maxBytes)
		}
	}
}
