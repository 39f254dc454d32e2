package provision_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
	"github.com/provisioner-dev/provisioner/internal/event"
	"github.com/provisioner-dev/provisioner/internal/ledger"
	"github.com/provisioner-dev/provisioner/internal/metrics"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsembedtest"
	"github.com/provisioner-dev/provisioner/internal/provision"
	"github.com/provisioner-dev/provisioner/internal/secret"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// rig is one test's real parts: a nats-server with the ledger bucket, the Airbyte sandbox over
// HTTP, and a directory of file secrets. Workers made from it are separate processes in all but
// name: each has its own ledger owner, Airbyte client and clock.
type rig struct {
	t       *testing.T
	nats    *natsembedtest.Server
	sandbox *sandbox.Server
	baseURL string
	secrets string
	seq     uint64
	mu      sync.Mutex
}

const githubTemplate = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01"

func newRig(t *testing.T, sb sandbox.Config) *rig {
	t.Helper()
	r := &rig{t: t, nats: natsembedtest.Start(t), secrets: t.TempDir()}
	sb.StrictAuth = true // only the tokens Airbyte documents for each operation
	r.sandbox, r.baseURL = sandboxtest.Start(t, sb)
	return r
}

// secret writes a file secret and returns its reference.
func (r *rig) secret(rel, token string) string {
	r.t.Helper()
	p := filepath.Join(r.secrets, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		r.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"token": token})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	return "file:" + rel
}

// next is the next stream sequence: the order the app published in.
func (r *rig) next() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

type workerOpts struct {
	owner    string
	leaseTTL time.Duration
	atStep   func(provision.Step) error
	check    bool
	lookup   provision.LookupMode
	budget   time.Duration
	kv       func(jetstream.KeyValue) ledger.KV
	// clock is the ledger's clock (this replica's host); nil = time.Now
	clock func() time.Time
}

// worker is one replica's provision service.
type worker struct {
	svc    *provision.Service
	ledger *ledger.Ledger
}

func (r *rig) worker(o workerOpts) *worker {
	r.t.Helper()
	ctx := context.Background()
	if o.leaseTTL == 0 {
		o.leaseTTL = 3 * time.Second
	}
	if o.budget == 0 {
		o.budget = 8 * time.Second
	}
	_, js := r.nats.Connect(r.t)
	led, err := ledger.Open(ctx, js, ledger.Config{Bucket: "provisioner_ledger", LeaseTTL: o.leaseTTL, Owner: o.owner, Now: o.clock})
	if err != nil {
		r.t.Fatal(err)
	}
	if o.kv != nil {
		kv, err := js.KeyValue(ctx, "provisioner_ledger")
		if err != nil {
			r.t.Fatal(err)
		}
		if led, err = ledger.New(o.kv(kv), ledger.Config{LeaseTTL: o.leaseTTL, Owner: o.owner, Now: o.clock}); err != nil {
			r.t.Fatal(err)
		}
	}
	client, err := airbyte.New(airbyte.Config{BaseURL: r.baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: secret.New(sandbox.DefaultClientSecret), Timeout: 2 * time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	store, err := vault.New(ctx, vault.Config{FileDir: r.secrets}, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = store.Close() })
	m, err := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	if err != nil {
		r.t.Fatal(err)
	}
	svc, err := provision.New(client, store, led, m, provision.Config{
		Budget: o.budget, LeaseRenewEvery: o.leaseTTL / 4, LeaseMargin: 500 * time.Millisecond,
		CreateSettle: 4 * time.Second, CheckCredentials: o.check, AtStep: o.atStep, Lookup: o.lookup,
		NewBackOff: func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 20*time.Millisecond, 200*time.Millisecond, 0
			return b
		},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return &worker{svc: svc, ledger: led}
}

// submit is a credentials.submitted request.
func submit(id, ref string) event.Request {
	return event.Request{Kind: contract.KindCredentialsSubmitted, CredentialsSubmitted: &contract.CredentialsSubmitted{
		ID: id, WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub", CredentialsRef: ref,
		ReplicationConfig: json.RawMessage(`{"repositories":["acme/app"]}`),
	}}
}

// submitTemplate is a credentials.submitted request for an embedded (template-based) source.
func submitTemplate(id, ref string) event.Request {
	return event.Request{Kind: contract.KindCredentialsSubmitted, CredentialsSubmitted: &contract.CredentialsSubmitted{
		ID: id, WorkspaceName: "acme", SourceTemplateID: githubTemplate, Name: "GitHub", CredentialsRef: ref,
	}}
}

func disconnect(id string) event.Request {
	return event.Request{Kind: contract.KindConnectorDisconnected, ConnectorDisconnected: &contract.ConnectorDisconnected{
		ID: id, WorkspaceName: "acme", ConnectorType: "github", Name: "GitHub",
	}}
}

// handle delivers a request once.
func (w *worker) handle(req event.Request, seq uint64, delivery int, final bool) provision.Decision {
	return w.svc.Handle(context.Background(), req, provision.Delivery{Number: delivery, Final: final, Sequence: seq, Revision: 1})
}

// until delivers a request until it is acked or dead-lettered, as the consumer would (a bounded
// number of deliveries, the last one final).
func (w *worker) until(t *testing.T, req event.Request, seq uint64) provision.Decision {
	t.Helper()
	const maxDeliver = 8
	for n := 1; n <= maxDeliver; n++ {
		d := w.handle(req, seq, n, n == maxDeliver)
		if d.Action != provision.Retry {
			return d
		}
		time.Sleep(min(max(d.RetryAfter, 50*time.Millisecond), time.Second)) // the consumer's NakWithDelay
	}
	t.Fatalf("%s: no verdict after %d deliveries", req.ID(), maxDeliver)
	return provision.Decision{}
}

func connectorID(t *testing.T, res *contract.Result) string {
	t.Helper()
	var d struct {
		ID string `json:"id"`
	}
	if res == nil || json.Unmarshal(res.Data, &d) != nil || d.ID == "" {
		t.Fatalf("result without a connector: %+v", res)
	}
	return d.ID
}

// only returns the identity's only live connector at the sandbox, failing if there is not exactly one.
func (r *rig) only(t *testing.T) sandbox.Connector {
	t.Helper()
	cs := r.sandbox.Connectors("acme")
	if len(cs) != 1 {
		t.Fatalf("%d connectors at Airbyte, want exactly one: %+v", len(cs), cs)
	}
	return cs[0]
}

// holding fails unless the connector holds exactly the token (by the sandbox's credentials digest).
func holding(t *testing.T, c sandbox.Connector, token string) {
	t.Helper()
	if want := sandbox.CredentialsSHA256(map[string]string{"token": token}); c.CredentialsSHA256 != want {
		t.Fatalf("connector %s holds other credentials than the last request's", c.ID)
	}
}

func expect(t *testing.T, d provision.Decision, action provision.Action, message string) *contract.Result {
	t.Helper()
	if d.Action != action || d.Result == nil || d.Result.Message != message {
		t.Fatalf("decision %v %s (%v), want %v %s", d.Action, resultText(d.Result), d.Err, action, message)
	}
	return d.Result
}

func resultText(r *contract.Result) string {
	if r == nil {
		return "<no result>"
	}
	b, _ := json.Marshal(r)
	return string(b)
}
