package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// connect opens a new connection (as a new process would) and a client on it.
func connect(t *testing.T, opts ...client.Option) (*client.Client, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, nc, js
}

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// stored returns the results stored for a request id, oldest first.
func stored(t *testing.T, js jetstream.JetStream, id string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), contract.DefaultResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(t.Context(), seq, jetstream.WithGetMsgSubject(contract.ResultFilter(contract.DefaultSubjectPrefix, id)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// waitStored waits until n results of the request are stored.
func waitStored(t *testing.T, js jetstream.JetStream, id string, n int) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for len(stored(t, js, id)) < n {
		if time.Now().After(end) {
			t.Fatalf("request %s: fewer than %d results stored after 30s", id, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSubmitAndAwait(t *testing.T) {
	writeSecret("umbrella", "github.json")
	for _, tc := range []struct {
		name    string
		req     contract.Request
		message string
		code    contract.Code // "" = success
	}{
		{"onboarded", &contract.CustomerOnboarded{ID: "t-sa-onboard", WorkspaceName: "umbrella"}, contract.MessageWorkspaceReady, ""},
		{"credentials created", &contract.CredentialsSubmitted{ID: "t-sa-github", WorkspaceName: "umbrella", ConnectorType: "github", CredentialsRef: "file:umbrella/github.json"}, contract.MessageSourceCreated, ""},
		{"credentials updated", contract.CredentialsSubmitted{ID: "t-sa-github-2", WorkspaceName: "umbrella", ConnectorType: "github", CredentialsRef: "file:umbrella/github.json"}, contract.MessageSourceUpdated, ""},
		{"disconnected", &contract.ConnectorDisconnected{ID: "t-sa-disconnect", WorkspaceName: "umbrella", ConnectorType: "github"}, contract.MessageSourceDeleted, ""},
		{"id with dots and a colon", &contract.CustomerOnboarded{ID: "orders.v2:umbrella/1", WorkspaceName: "umbrella"}, contract.MessageWorkspaceReady, ""},
		{"error verdict", &contract.CredentialsSubmitted{ID: "t-sa-missing", WorkspaceName: "umbrella", ConnectorType: "github", Name: "GitHub without a secret", CredentialsRef: "file:umbrella/none.json"}, contract.MessageSourceCreateError, contract.CodeSecretNotFound},
		{"forbidden reference", &contract.CredentialsSubmitted{ID: "t-sa-forbidden", WorkspaceName: "umbrella", ConnectorType: "github", Name: "GitHub of another workspace", CredentialsRef: "file:acme/github.json"}, contract.MessageSourceCreateError, contract.CodeForbiddenSecretRef},
		{"offboarded", &contract.CustomerOffboarded{ID: "t-sa-offboard", WorkspaceName: "umbrella", Workspace: contract.WorkspaceDelete}, contract.MessageWorkspaceOffboarded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := connect(t)
			res, err := c.SubmitAndAwait(deadline(t, 30*time.Second), tc.req)
			var re *client.ResultError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.code != "" && !errors.As(err, &re):
				t.Fatalf("error %v, want a *client.ResultError", err)
			case tc.code != "" && (re.Code != tc.code || re.Result != res || re.RequestID != res.RequestID || re.Retryable):
				t.Fatalf("result error %+v, want code %s", re, tc.code)
			}
			if res == nil || res.Message != tc.message || res.Type != contract.ResultType {
				t.Fatalf("verdict %+v, want %s", res, tc.message)
			}
		})
	}
}

func TestSubmitGeneratesAnID(t *testing.T) {
	c, _, _ := connect(t)
	ctx := deadline(t, 30*time.Second)
	sub, err := c.Submit(ctx, contract.CustomerOnboarded{WorkspaceName: "hooli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(sub.RequestID); err != nil || sub.Duplicate || sub.Stream != contract.DefaultRequestsStream || sub.Sequence == 0 {
		t.Fatalf("submission %+v: %v", sub, err)
	}
	res, err := c.Await(ctx, sub.RequestID)
	if err != nil || res.RequestID != sub.RequestID || res.WorkspaceName != "hooli" {
		t.Fatalf("verdict %+v, %v", res, err)
	}
}

func TestSubmitRefusesInvalidRequests(t *testing.T) {
	c, _, js := connect(t)
	requests, err := js.Stream(t.Context(), contract.DefaultRequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := requests.Info(context.Background()) // also from Cleanup
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	before := lastSeq()
	t.Cleanup(func() {
		if after := lastSeq(); after != before {
			t.Errorf("invalid requests were published: the requests stream went from sequence %d to %d", before, after)
		}
	})
	for _, tc := range []struct {
		name string
		req  contract.Request
		code contract.Code
	}{
		{"no workspace", &contract.CustomerOnboarded{ID: "t-inv-1"}, contract.CodeSchemaViolation},
		{"two connector kinds", &contract.CredentialsSubmitted{ID: "t-inv-2", WorkspaceName: "acme", ConnectorType: "github", DefinitionID: uuid.NewString(), CredentialsRef: "file:acme/github.json"}, contract.CodeSchemaViolation},
		{"inline credentials", &contract.CredentialsSubmitted{ID: "t-inv-3", WorkspaceName: "acme", ConnectorType: "github", CredentialsRef: "file:acme/github.json", ReplicationConfig: []byte(`{"credentials":{"token":"ghp_inline"}}`)}, contract.CodeSchemaViolation},
		{"id with a space", &contract.CustomerOnboarded{ID: "t inv 4", WorkspaceName: "acme"}, contract.CodeSchemaViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Submit(t.Context(), tc.req)
			var ie *client.InvalidRequestError
			if !errors.As(err, &ie) || ie.Code != tc.code {
				t.Fatalf("error %v, want an invalid request with %s", err, tc.code)
			}
		})
	}
	t.Run("SubmitJSON needs an id", func(t *testing.T) {
		_, err := c.SubmitJSON(t.Context(), contract.KindCustomerOnboarded, []byte(`{"workspace_name":"acme"}`))
		var ie *client.InvalidRequestError
		if !errors.As(err, &ie) || ie.Code != contract.CodeSchemaViolation {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("SubmitJSON refuses an unknown kind", func(t *testing.T) {
		_, err := c.SubmitJSON(t.Context(), contract.KindUnknown, []byte(`{"id":"x","workspace_name":"acme"}`))
		var ie *client.InvalidRequestError
		if !errors.As(err, &ie) || ie.Code != contract.CodeUnsupportedSubject {
			t.Fatalf("error %v", err)
		}
	})
}

func TestAwaitAfterTheVerdict(t *testing.T) {
	c, _, js := connect(t)
	sub, err := c.Submit(t.Context(), &contract.CustomerOnboarded{ID: "t-after", WorkspaceName: "stark"})
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, js, sub.RequestID, 1)
	for _, tc := range []struct {
		name string
		c    *client.Client
	}{
		{"same client", c},
		{"fresh connection, as after a restart", func() *client.Client { c, _, _ := connect(t); return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.c.Await(deadline(t, 30*time.Second), sub.RequestID)
			if err != nil || res.Message != contract.MessageWorkspaceReady || res.RequestID != "t-after" {
				t.Fatalf("verdict %+v, %v", res, err)
			}
		})
	}
}

func TestAwaitFromAFreshConnection(t *testing.T) {
	c, _, _ := connect(t)
	const id = "t-fresh"
	// the awaiting process is not the one that submits, and starts before the verdict exists
	other, _, _ := connect(t)
	got := make(chan error, 1)
	go func() {
		res, err := other.Await(deadline(t, 30*time.Second), id)
		if err == nil && res.Message != contract.MessageWorkspaceReady {
			err = fmt.Errorf("verdict %s", res.Message)
		}
		got <- err
	}()
	if _, err := c.Submit(t.Context(), &contract.CustomerOnboarded{ID: id, WorkspaceName: "wayne"}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateSubmit(t *testing.T) {
	c, _, js := connect(t)
	writeSecret("tyrell", "github.json")
	req := &contract.CredentialsSubmitted{ID: "t-dup", WorkspaceName: "tyrell", ConnectorType: "github", CredentialsRef: "file:tyrell/github.json"}
	ctx := deadline(t, 30*time.Second)
	first, err := c.Submit(ctx, req)
	if err != nil || first.Duplicate {
		t.Fatalf("first submission %+v, %v", first, err)
	}
	second, err := c.Submit(ctx, req)
	if err != nil || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second submission %+v, %v (first %+v)", second, err, first)
	}
	res, err := c.Await(ctx, req.ID)
	if err != nil || res.Message != contract.MessageSourceCreated {
		t.Fatalf("verdict %+v, %v", res, err)
	}
	// SubmitAndAwait of a duplicate reads the stored verdict (no recheck would come in time here)
	slow, _, _ := connect(t, client.WithRecheckInterval(time.Hour))
	again, err := slow.SubmitAndAwait(ctx, req)
	if err != nil || again.Message != contract.MessageSourceCreated || again.RequestID != req.ID {
		t.Fatalf("verdict of a duplicate %+v, %v", again, err)
	}
	if n := len(stored(t, js, req.ID)); n != 1 {
		t.Fatalf("%d results stored for one request submitted three times", n)
	}
}

func TestAwaitTimesOut(t *testing.T) {
	c, nc, _ := connect(t)
	baseSubs := nc.NumSubscriptions() // the connection's JetStream reply subscription, if any
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		res, err := c.Await(ctx, "t-never-submitted")
		if res != nil || !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("verdict %+v, error %v; want a timeout", res, err)
		}
	})
	t.Run("cancel is not a timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.Await(ctx, "t-never-submitted")
		if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrTimeout) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("no subscription left", func(t *testing.T) {
		// the connection's one JetStream reply subscription may have been made by Await
		if n := nc.NumSubscriptions(); n > max(baseSubs, 1) {
			t.Fatalf("%d subscriptions left on the connection, %d before", n, baseSubs)
		}
	})
}

// A replayed dead letter gets a second verdict with a higher revision, and Await returns it: when
// the cause was fixed (another message), and when it was not (the same message again).
func TestReplayedDeadLetterWins(t *testing.T) {
	for _, tc := range []struct {
		name, id, workspace string
		fix                 bool
		message             string
	}{
		{"fixed", "t-replay-fixed", "cyberdyne", true, contract.MessageSourceCreated},
		{"not fixed", "t-replay-same", "soylent", false, contract.MessageSourceCreateError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, js := connect(t)
			req := &contract.CredentialsSubmitted{ID: tc.id, WorkspaceName: tc.workspace, ConnectorType: "github", CredentialsRef: "file:" + tc.workspace + "/github.json"}
			ctx := deadline(t, 60*time.Second)
			_, err := c.SubmitAndAwait(ctx, req)
			var re *client.ResultError
			if !errors.As(err, &re) || re.Code != contract.CodeSecretNotFound || re.Result.Revision != 1 {
				t.Fatalf("first verdict: %v (%+v)", err, re)
			}
			if tc.fix {
				writeSecret(tc.workspace, "github.json")
			}
			// the verdict is published before the dead letter: wait for it
			dl := consumer.NewDeadLetters(js, consumer.Topology{}.WithDefaults())
			var dead uint64
			for end := time.Now().Add(30 * time.Second); dead == 0; time.Sleep(20 * time.Millisecond) {
				entries, err := dl.List(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.RequestID == tc.id {
						dead = e.ID
					}
				}
				if dead == 0 && time.Now().After(end) {
					t.Fatal("no dead letter for the request after 30s")
				}
			}
			if err := dl.Replay(ctx, dead); err != nil {
				t.Fatal(err)
			}
			waitStored(t, js, tc.id, 2)
			for _, a := range []struct {
				name string
				c    *client.Client
			}{
				{"same client", c},
				{"fresh connection", func() *client.Client { c, _, _ := connect(t); return c }()},
			} {
				t.Run(a.name, func(t *testing.T) {
					res, err := a.c.Await(ctx, tc.id)
					if res == nil || res.Message != tc.message || res.Revision != 2 || (tc.fix != (err == nil)) {
						t.Fatalf("verdict %+v, %v; want the replay's %s, revision 2", res, err, tc.message)
					}
				})
			}
		})
	}
}

// connSubscriptions is what the server holds for one client connection.
func connSubscriptions(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	cz, err := natsServer.Connz(&server.ConnzOptions{CID: cid, Subscriptions: true})
	if err != nil || len(cz.Conns) != 1 {
		t.Fatalf("connz: %v (%d connections)", err, len(cz.Conns))
	}
	return int(cz.Conns[0].NumSubs)
}

// consumers counts the consumers of every stream.
func consumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	info, err := js.AccountInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Consumers
}

func TestConcurrentAwaitsLeaveNothingBehind(t *testing.T) {
	c, nc, js := connect(t)
	pub := consumer.NewPublisher(js, consumer.Topology{}.WithDefaults(), "client-test")
	publish := func(id string) {
		res := event.ErrorResult(contract.KindCustomerOnboarded, id, "crowd", 1, contract.CodeAirbyteUnavailable, "synthetic verdict", true, time.Now())
		if i := id[len(id)-1]; i%2 == 0 { // half of them succeed
			res = &contract.Result{Type: contract.ResultType, Message: contract.MessageWorkspaceReady, RequestID: id, WorkspaceName: "crowd", Attempts: 1, ProducedAt: time.Now().UTC()}
		}
		if err := pub.PublishResult(t.Context(), res, ""); err != nil {
			t.Error(err)
		}
	}
	// warm up: the connection's one JetStream reply subscription exists from now on
	publish("t-crowd-warmup")
	if _, err := c.Await(deadline(t, 10*time.Second), "t-crowd-warmup"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	baseSubs, baseClientSubs, baseConsumers := connSubscriptions(t, nc), nc.NumSubscriptions(), consumers(t, js)

	const n = 1000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t-crowd-%04d", i)
	}
	for _, id := range ids[:n/2] { // half of the verdicts exist before their Await starts
		publish(id)
	}
	ctx := deadline(t, 120*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, id := range ids {
		wg.Go(func() {
			res, err := c.Await(ctx, id)
			var re *client.ResultError
			switch {
			case errors.As(err, &re) && re.Code == contract.CodeAirbyteUnavailable && res.RequestID == id:
			case err == nil && res.RequestID == id && res.Message == contract.MessageWorkspaceReady:
			default:
				errs <- fmt.Errorf("await %s: %+v, %w", id, res, err)
			}
		})
	}
	// the other half is published while their Awaits wait; no consumer is made for any of them
	for _, id := range ids[n/2:] {
		publish(id)
	}
	if got := consumers(t, js); got != baseConsumers {
		t.Errorf("%d consumers while awaits were pending, %d before", got, baseConsumers)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := nc.NumSubscriptions(); got != baseClientSubs {
		t.Errorf("%d subscriptions left on the client, %d before", got, baseClientSubs)
	}
	if got := consumers(t, js); got != baseConsumers {
		t.Errorf("%d consumers after, %d before", got, baseConsumers)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := connSubscriptions(t, nc); got != baseSubs {
		t.Errorf("the server holds %d subscriptions of the connection, %d before", got, baseSubs)
	}
}

// Two ids can share a request token only deliberately: one id spelled as the other's hashed token.
// Await still returns each request's own verdict, and of several, the highest revision, wherever it
// is stored.
func TestAwaitTellsApartIDsOfOneToken(t *testing.T) {
	c, _, js := connect(t)
	const hashed = "t.collide/1" // not a plain token: its token is sha256-…
	plain := contract.RequestToken(hashed)
	if contract.RequestToken(plain) != plain {
		t.Fatalf("%q is not its own token", plain)
	}
	publish := func(id, message string, revision int) {
		body, _ := json.Marshal(map[string]any{"type": contract.ResultType, "message": message, "request_id": id, "attempts": 1, "revision": revision,
			"produced_at": time.Now().UTC()})
		m := &nats.Msg{Subject: contract.ResultSubject(contract.DefaultSubjectPrefix, message, id), Data: body, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:%s:%d", id, message, revision))
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish(hashed, contract.MessageWorkspaceReady, 2)
	publish(hashed, contract.MessageWorkspaceError, 1) // stored later, superseded
	publish(plain, contract.MessageWorkspaceError, 1)  // the last stored on the shared subject
	for _, tc := range []struct {
		id, message string
	}{
		{hashed, contract.MessageWorkspaceReady},
		{plain, contract.MessageWorkspaceError},
	} {
		t.Run(tc.id, func(t *testing.T) {
			res, err := c.Await(deadline(t, 10*time.Second), tc.id)
			if res == nil || res.RequestID != tc.id || res.Message != tc.message {
				t.Fatalf("verdict %+v, %v; want %s", res, err, tc.message)
			}
		})
	}
}
