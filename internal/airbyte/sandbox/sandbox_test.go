package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/airbyte/openapitest"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// client is a tiny raw HTTP client for the tests: the sandbox must be exercised on the wire.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// newClient returns a client whose every request and response is checked against Airbyte's
// OpenAPI specs.
func newClient(t testing.TB, base string) *client {
	v := openapitest.New(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Hundreds of goroutines share a bounded pool of connections, as a real client does.
	tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 64, 64
	return &client{t: t, base: base, hc: &http.Client{Transport: v.Transport(t, tr)}}
}

// try is do without failing on transport errors, for faults that cut connections.
func (c *client) try(method, path, token string, body any) (response, error) {
	c.t.Helper()
	return c.tryWithHeader(method, path, token, body, nil)
}

func (c *client) doWithHeader(method, path, token string, body any, h http.Header) response {
	c.t.Helper()
	r, err := c.tryWithHeader(method, path, token, body, h)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) tryWithHeader(method, path, token string, body any, h http.Header) (response, error) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (c *client) do(method, path, token string, body any) response {
	c.t.Helper()
	r, err := c.try(method, path, token, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) operatorToken() string {
	c.t.Helper()
	r := c.do("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret})
	if r.status != 200 {
		c.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(c.t, &tr)
	return tr.AccessToken
}

func (c *client) scopedToken(op, workspace string) string {
	c.t.Helper()
	r := c.do("POST", "/api/v1/account/applications/scoped-token", op, map[string]string{"workspace_name": workspace})
	if r.status != 200 {
		c.t.Fatalf("scoped token: %d %s", r.status, r.body)
	}
	var tr struct {
		Token string `json:"token"`
	}
	r.decode(c.t, &tr)
	return tr.Token
}

func TestSmoke(t *testing.T) {
	srv, base := sandboxtest.Start(t, sandbox.Config{})
	c := newClient(t, base)
	op := c.operatorToken()
	sc := c.scopedToken(op, "acme")
	r := c.do("GET", "/api/v1/account/applications/scoped-token/info", sc, nil)
	if r.status != 200 {
		t.Fatalf("info: %d %s", r.status, r.body)
	}
	r = c.do("POST", "/api/v1/integrations/connectors", sc, map[string]any{
		"workspace_name": "acme", "connector_type": "GitHub", "credentials": map[string]string{"token": "ghp_secret"},
	})
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if bytes.Contains(r.body, []byte("ghp_secret")) {
		t.Fatalf("create response leaks the credential: %s", r.body)
	}
	var created struct{ ID string }
	r.decode(t, &created)
	r = c.do("GET", "/api/v1/integrations/connectors?workspace_name=acme", sc, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(created.ID)) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	creds, ok := srv.ConnectorCredentials(created.ID)
	if !ok || creds["token"] != "ghp_secret" {
		t.Fatalf("stored credentials: %v %v", ok, creds)
	}
}

// rawDo sends a request without the contract validator, for inputs the current spec no longer
// describes (the customer key's older names).
func rawDo(t testing.TB, base, method, path, token string, body any) response {
	t.Helper()
	c := &client{t: t, base: base, hc: &http.Client{}}
	return c.do(method, path, token, body)
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newDebugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
