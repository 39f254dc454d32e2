// Package airbytetest holds test helpers for the airbyte client: a scripted HTTP server that answers
// exactly what a test tells it (for failure shapes the sandbox does not produce on demand, such as
// FastAPI error bodies, malformed tokens or a body cut short), unsigned JWTs, and a log sink that can
// be scanned for leaked secrets.
package airbytetest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Response is one scripted answer.
type Response struct {
	Status int
	Header map[string]string
	Body   string
	// Drop closes the connection after the request was read, without answering.
	Drop bool
	// Hang answers nothing until the client gives up.
	Hang bool
	// Truncate announces a longer body than it sends, then closes the connection.
	Truncate bool
}

// Request is what the server received.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// Server answers each "METHOD /path" (the escaped path) with its script in order; the last response repeats.
// Unscripted routes answer 404.
type Server struct {
	URL string

	mu       sync.Mutex
	scripts  map[string][]Response
	requests map[string][]Request
}

// NewServer starts a scripted server on loopback; it closes on t.Cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{scripts: map[string][]Response{}, requests: map[string][]Request{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// On scripts the answers to method + path (for example "POST", "/api/v1/integrations/connectors").
func (s *Server) On(method, path string, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[method+" "+path] = rs
}

// Requests returns what method + path received, in order.
func (s *Server) Requests(method, path string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests[method+" "+path]...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.EscapedPath()
	s.mu.Lock()
	n := len(s.requests[key])
	s.requests[key] = append(s.requests[key], Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	script := s.scripts[key]
	s.mu.Unlock()
	if len(script) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"not found"}`)
		return
	}
	resp := script[min(n, len(script)-1)]
	switch {
	case resp.Drop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	case resp.Hang:
		<-r.Context().Done()
		return
	case resp.Truncate:
		if conn, buf, err := http.NewResponseController(w).Hijack(); err == nil {
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":")
			_ = buf.Flush()
			_ = conn.Close()
		}
		return
	}
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(cmp.Or(resp.Status, http.StatusOK))
	_, _ = io.WriteString(w, resp.Body)
}

// JWT returns an unsigned-looking HS256 JWT with claims (the signature is junk: the client never
// verifies it).
func JWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("airbytetest: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not-a-signature"))
}

// ScopedClaims returns the claims of a scoped token for workspace (id, name) expiring at exp.
func ScopedClaims(workspaceID, workspaceName string, exp time.Time) map[string]any {
	return map[string]any{
		"aud":                             "airbyte-server",
		"sub":                             "user-1",
		"io.airbyte.auth.workspace_scope": map[string]string{"workspaceId": workspaceID},
		"act":                             map[string]string{"sub": workspaceName},
		"roles":                           []string{"EMBEDDED_END_USER"},
		"iss":                             "airbytetest",
		"typ":                             "io.airbyte.auth.embedded_v1",
		"exp":                             exp.Unix(),
	}
}

// LogBuffer collects log output from concurrent goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a debug-level JSON logger writing to b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Observer counts the client's token events by kind; it implements airbyte.Observer.
type Observer struct {
	mu     sync.Mutex
	minted map[string]int
	hits   map[string]int
}

// TokenMinted implements airbyte.Observer.
func (o *Observer) TokenMinted(kind string) { o.add(&o.minted, kind) }

// TokenCacheHit implements airbyte.Observer.
func (o *Observer) TokenCacheHit(kind string) { o.add(&o.hits, kind) }

func (o *Observer) add(m *map[string]int, kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[kind]++
}

// Minted returns how many tokens of kind were minted.
func (o *Observer) Minted(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.minted[kind]
}

// Hits returns how many times a cached token of kind was used.
func (o *Observer) Hits(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[kind]
}
