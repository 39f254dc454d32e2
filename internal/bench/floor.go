package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Names of the floor's streams, consumer and bucket: apart from the product's.
const (
	floorPrefix   = "benchfloor"
	floorRequests = "BENCH_FLOOR_REQUESTS"
	floorResults  = "BENCH_FLOOR_RESULTS"
	floorConsumer = "benchfloor"
	floorBucket   = "bench_floor_ledger"
)

// setupFloor creates the floor's streams, consumer and bucket like consumer.Setup and ledger.Open
// create the product's (file storage, work-queue requests, deduplicated results, explicit acks).
func setupFloor(ctx context.Context, js jetstream.JetStream, maxAckPending, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: floorRequests, Subjects: []string{floorPrefix + ".requests.>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, Replicas: replicas,
	}); err != nil {
		return fmt.Errorf("floor stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: floorResults, Subjects: []string{floorPrefix + ".results.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, Replicas: replicas,
	}); err != nil {
		return fmt.Errorf("floor stream: %w", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, floorRequests, jetstream.ConsumerConfig{
		Durable: floorConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxAckPending: maxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		return fmt.Errorf("floor consumer: %w", err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: floorBucket, History: 1, Storage: jetstream.FileStorage, Replicas: replicas}); err != nil {
		return fmt.Errorf("floor bucket: %w", err)
	}
	return nil
}

// floorWorker is the floor: per request the NATS round trips of the product (pull, one KV create,
// one result publish awaiting its PubAck, ack) and its Airbyte round trips (one application token
// per worker, one scoped token per workspace, one create per request, a list first under
// lookup=always), with none of the product's logic: no schema, no policy, no secret fetch, no
// lease, no retries, no metrics.
//
// A request for an identity the floor's bucket already holds is a rotation, made as the product
// makes it: a KV get; for an Agent Engine connector the create of the new connector and the delete
// of the old one (a replace), for an embedded source one PUT of its config; and a KV revision CAS
// recording the connector.
type floorWorker struct {
	js          jetstream.JetStream
	kv          jetstream.KeyValue
	api         *floorAPI
	concurrency int
	listFirst   bool
	// record keeps each created connector's id under its identity (the rotate scenario's setup,
	// which is not measured), so that a rotation knows which connector to replace.
	record bool
}

// run consumes until ctx ends, then waits for the requests it started.
func (w *floorWorker) run(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, floorRequests, floorConsumer)
	if err != nil {
		return fmt.Errorf("floor consumer: %w", err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(w.concurrency))
	if err != nil {
		return fmt.Errorf("floor consume: %w", err)
	}
	defer iter.Stop()
	slots := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("floor pull: %w", err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			w.handle(ctx, msg)
		})
	}
}

// floorRequest is the part of a request the floor reads.
type floorRequest struct {
	ID               string `json:"id"`
	WorkspaceName    string `json:"workspace_name"`
	Name             string `json:"name"`
	SourceTemplateID string `json:"source_template_id"`
}

func (w *floorWorker) handle(ctx context.Context, msg jetstream.Msg) {
	var req floorRequest
	if err := json.Unmarshal(msg.Data(), &req); err != nil {
		_ = msg.Term()
		return
	}
	message, err := w.work(ctx, req)
	if err != nil {
		message += "_error"
	}
	res := &nats.Msg{Subject: floorPrefix + ".results." + message + "." + req.ID, Header: nats.Header{},
		Data: fmt.Appendf(nil, `{"type":"end_user_action_result","message":%q,"request_id":%q}`, message, req.ID)}
	res.Header.Set(jetstream.MsgIDHeader, req.ID+":"+message)
	res.Header.Set(headerRequestID, req.ID)
	if _, err := w.js.PublishMsg(ctx, res); err != nil {
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}

// work makes the request's calls and says which result they earn: source_created or source_updated.
func (w *floorWorker) work(ctx context.Context, req floorRequest) (string, error) {
	key := floorKey(req)
	if _, err := w.kv.Create(ctx, key, []byte(`{"state":"leased"}`)); errors.Is(err, jetstream.ErrKeyExists) {
		return "source_update", w.rotate(ctx, req, key)
	} else if err != nil {
		return "source_create", err
	}
	token, err := w.token(ctx, req.WorkspaceName)
	if err != nil {
		return "source_create", err
	}
	if w.listFirst {
		if err := w.api.call(ctx, http.MethodGet, connectorsPath+"?workspace_name="+url.QueryEscape(req.WorkspaceName), token, nil, nil); err != nil {
			return "source_create", err
		}
	}
	id, err := w.create(ctx, req, token, w.record)
	if err == nil && w.record {
		_, err = w.kv.Put(ctx, key, []byte(id))
	}
	return "source_created", err
}

// rotate replaces the identity's connector: the new one first, then the old one goes.
func (w *floorWorker) rotate(ctx context.Context, req floorRequest, key string) error {
	entry, err := w.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	token, err := w.token(ctx, req.WorkspaceName)
	if err != nil {
		return err
	}
	old := string(entry.Value())
	if req.SourceTemplateID != "" {
		// embedded: the source's own PUT changes its credentials, with the workspace's scoped token
		scoped, err := w.api.scopedToken(ctx, req.WorkspaceName)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]any{"source_config": map[string]any{"token": floorRotatedCredential}})
		if err := w.api.call(ctx, http.MethodPut, sourcesPath+"/"+old, scoped, body, nil); err != nil {
			return err
		}
		_, err = w.kv.Update(ctx, key, []byte(old), entry.Revision())
		return err
	}
	id, err := w.create(ctx, req, token, true)
	if err != nil {
		return err
	}
	if err := w.api.call(ctx, http.MethodDelete, connectorsPath+"/"+old, token, nil, nil); err != nil {
		return err
	}
	_, err = w.kv.Update(ctx, key, []byte(id), entry.Revision())
	return err
}

// token is the token of the connector calls. As the product does: the scoped-token mint ensures
// the workspace exists, and the connector calls carry the application token, as Airbyte's spec
// documents.
func (w *floorWorker) token(ctx context.Context, workspace string) (secret.Value, error) {
	if _, err := w.api.scopedToken(ctx, workspace); err != nil {
		return secret.Value{}, err
	}
	return w.api.appToken(ctx)
}

// create makes the connector; it reads the answer only when the id is wanted, as the create
// scenario's floor never did.
func (w *floorWorker) create(ctx context.Context, req floorRequest, token secret.Value, wantID bool) (string, error) {
	create := map[string]any{
		"name": req.Name, "workspace_name": req.WorkspaceName, "connector_type": "github",
		"credentials": map[string]string{"token": floorCredential},
	}
	if req.SourceTemplateID != "" {
		delete(create, "connector_type")
		create["source_template_id"] = req.SourceTemplateID
	}
	body, _ := json.Marshal(create)
	if !wantID {
		return "", w.api.call(ctx, http.MethodPost, connectorsPath, token, body, nil)
	}
	var out struct {
		ID string `json:"id"`
	}
	err := w.api.call(ctx, http.MethodPost, connectorsPath, token, body, &out)
	return out.ID, err
}

// floorKey is the identity's key in the floor's bucket.
func floorKey(req floorRequest) string {
	sum := sha256.Sum256([]byte(req.WorkspaceName + "\x00" + req.Name))
	return "c." + hex.EncodeToString(sum[:16])
}

// floorCredential is the made-up GitHub token of the floor's connectors, and
// floorRotatedCredential the one its rotations of embedded sources put.
const (
	floorCredential        = "ghp_bench_floor_not_a_real_token"
	floorRotatedCredential = "ghp_bench_floor_rotated_not_a_real_token"
)

const (
	connectorsPath = "/api/v1/integrations/connectors"
	sourcesPath    = "/api/v1/embedded/sources"
)

// floorAPI makes the floor's Airbyte calls over a plain keep-alive HTTP client, with the tokens
// minted once (per worker and per workspace) as the product's cache does.
type floorAPI struct {
	base         string
	http         *http.Client
	clientID     string
	clientSecret secret.Value

	mu        sync.Mutex
	app       *tokenOnce
	workspace map[string]*tokenOnce
}

// tokenOnce is one token, minted by the first caller and awaited by the others.
type tokenOnce struct {
	once  sync.Once
	value secret.Value
	err   error
}

func newFloorAPI(base, clientID string, clientSecret secret.Value, maxConns int) *floorAPI {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = maxConns, maxConns
	return &floorAPI{
		base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		clientID: clientID, clientSecret: clientSecret,
		app: &tokenOnce{}, workspace: map[string]*tokenOnce{},
	}
}

func (a *floorAPI) appToken(ctx context.Context) (secret.Value, error) {
	a.app.once.Do(func() {
		body, _ := json.Marshal(map[string]string{"client_id": a.clientID, "client_secret": a.clientSecret.Reveal()})
		var out struct {
			AccessToken string `json:"access_token"`
		}
		a.app.err = a.call(ctx, http.MethodPost, "/api/v1/account/applications/token", secret.Value{}, body, &out)
		a.app.value = secret.New(out.AccessToken)
	})
	return a.app.value, a.app.err
}

func (a *floorAPI) scopedToken(ctx context.Context, workspace string) (secret.Value, error) {
	a.mu.Lock()
	t := a.workspace[workspace]
	if t == nil {
		t = &tokenOnce{}
		a.workspace[workspace] = t
	}
	a.mu.Unlock()
	t.once.Do(func() {
		app, err := a.appToken(ctx)
		if err != nil {
			t.err = err
			return
		}
		body, _ := json.Marshal(map[string]string{"workspace_name": workspace})
		var out struct {
			Token string `json:"token"`
		}
		t.err = a.call(ctx, http.MethodPost, "/api/v1/account/applications/scoped-token", app, body, &out)
		t.value = secret.New(out.Token)
	})
	return t.value, t.err
}

// errStatus is an Airbyte answer other than 2xx. It carries the status only: bodies may echo secrets.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("floor: airbyte answered %d", int(e)) }

func (a *floorAPI) call(ctx context.Context, method, path string, token secret.Value, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("floor: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("floor: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return errStatus(resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("floor: decode %s: %w", path, err)
		}
	}
	return nil
}

func (a *floorAPI) close() { a.http.CloseIdleConnections() }
