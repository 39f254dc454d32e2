// Package vaulttest replays responses recorded from a real Vault-compatible server (OpenBao)
// over real HTTP, so that the vault backend and its callers can be tested without one.
//
// A test loads the recordings, routes method+path pairs to them and points the client at
// Server.URL. With RequireToken the server also behaves like Vault about tokens: requests that
// the recording made with a token must present the current one, and a login response that
// issues a token makes that token the current one.
//
// Clock drives a backend's time by hand (vault.Config.Clock), so token lifetimes are tested
// without waiting; Observer records the login states a backend reports.
package vaulttest

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
)

// Recording is one recorded request/response pair.
type Recording struct {
	Name     string   `json:"name"`
	Note     string   `json:"note"`
	Request  Request  `json:"request"`
	Response Response `json:"response"`
}

// Request is the recorded request. Tokens are shown as "<token>".
type Request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// Response is the recorded response.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// Recordings are loaded recordings, looked up by name.
type Recordings map[string]Recording

// Load reads a recordings file (a JSON array of Recording).
func Load(path string) (Recordings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []Recording
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("recordings %s: %w", path, err)
	}
	rs := make(Recordings, len(list))
	for _, r := range list {
		rs[r.Name] = r
	}
	return rs, nil
}

// MustLoad is Load of every path, failing tb on error; a later file's recording replaces an
// earlier one of the same name.
func MustLoad(tb testing.TB, paths ...string) Recordings {
	tb.Helper()
	all := make(Recordings)
	for _, path := range paths {
		rs, err := Load(path)
		if err != nil {
			tb.Fatal(err)
		}
		for name, r := range rs {
			all[name] = r
		}
	}
	return all
}

// Get returns the named recording, failing tb if there is none.
func (rs Recordings) Get(tb testing.TB, name string) Recording {
	tb.Helper()
	r, ok := rs[name]
	if !ok {
		tb.Fatalf("no recording named %q", name)
	}
	return r
}

// WithAuth returns a copy of r whose response's auth block carries the given token, lease and
// renewability: a way to drive short leases and token rotation.
func (r Recording) WithAuth(tb testing.TB, clientToken string, leaseSeconds int, renewable bool) Recording {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal(r.Response.Body, &body); err != nil {
		tb.Fatalf("recording %s: %v", r.Name, err)
	}
	auth, ok := body["auth"].(map[string]any)
	if !ok {
		tb.Fatalf("recording %s has no auth block", r.Name)
	}
	auth["client_token"] = clientToken
	auth["lease_duration"] = leaseSeconds
	auth["renewable"] = renewable
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	r.Response.Body = b
	return r
}

// WithData returns a copy of a KV v2 read recording r that serves data as the secret
// (data.data), at path (the request path, e.g. /v1/secret/data/provisioner/airbyte).
func (r Recording) WithData(tb testing.TB, path string, data map[string]string) Recording {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal(r.Response.Body, &body); err != nil {
		tb.Fatalf("recording %s: %v", r.Name, err)
	}
	outer, ok := body["data"].(map[string]any)
	if !ok {
		tb.Fatalf("recording %s has no data block", r.Name)
	}
	outer["data"] = data
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	r.Response.Body = b
	r.Request.Path = path
	return r
}

// Seen is a request the server received.
type Seen struct {
	Method, Path, Token, Namespace string
	Body                           []byte
}

// Server is a replaying Vault server on a loopback listener.
type Server struct {
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	routes   map[string]*route
	token    string
	checkTok bool
	seen     []Seen
}

type route struct {
	responses []Recording
	served    int
	cycle     bool // start over after the last response instead of repeating it
}

// NewServer starts a plain HTTP server, closed when the test ends.
func NewServer(tb testing.TB) *Server {
	s := &Server{routes: make(map[string]*route)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// NewTLSServer starts an HTTPS server, closed when the test ends; Certificate is its certificate.
func NewTLSServer(tb testing.TB) *Server {
	s := &Server{routes: make(map[string]*route)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// Certificate returns the TLS server's certificate (nil for plain HTTP).
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// Close stops the server; later requests fail with a transport error.
func (s *Server) Close() { s.srv.Close() }

// Handle routes method and path (with query, as recorded) to responses: the n-th request gets
// responses[n], the last one repeating. PUT and POST are the same method here, as in Vault (the
// Go client writes with PUT where the recordings show POST); Count and Requests report POST.
func (s *Server) Handle(method, path string, responses ...Recording) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[writeAsPost(method)+" "+path] = &route{responses: responses}
}

func writeAsPost(method string) string {
	if method == http.MethodPut {
		return http.MethodPost
	}
	return method
}

// HandleCycle routes method and path to responses in turn, starting over after the last.
func (s *Server) HandleCycle(method, path string, responses ...Recording) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[writeAsPost(method)+" "+path] = &route{responses: responses, cycle: true}
}

// HandleRecorded routes each recording at its own recorded method and path.
func (s *Server) HandleRecorded(recs ...Recording) {
	for _, r := range recs {
		s.Handle(r.Request.Method, r.Request.Path, r)
	}
}

// RequireToken makes token the only one accepted by routes recorded with a token; other
// tokens get Vault's 403. A served login response replaces it with the token it issues.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.checkTok = token, true
}

// Count returns how many requests reached method and path.
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.seen {
		if r.Method == writeAsPost(method) && r.Path == path {
			n++
		}
	}
	return n
}

// Requests returns every request received so far.
func (s *Server) Requests() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.seen...)
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	method := writeAsPost(req.Method)
	path := req.URL.RequestURI()
	token := req.Header.Get("X-Vault-Token")

	s.mu.Lock()
	s.seen = append(s.seen, Seen{Method: method, Path: path, Token: token,
		Namespace: req.Header.Get("X-Vault-Namespace"), Body: body})
	rt, ok := s.routes[method+" "+path]
	var rec Recording
	if ok {
		if rt.cycle {
			rec = rt.responses[rt.served%len(rt.responses)]
		} else {
			rec = rt.responses[min(rt.served, len(rt.responses)-1)]
		}
		rt.served++
	}
	_, needsToken := rec.Request.Headers["X-Vault-Token"]
	denied := ok && needsToken && s.checkTok && token != s.token
	if ok && !denied && rec.Response.Status == http.StatusOK {
		if issued := issuedToken(rec.Response.Body); issued != "" && rec.Request.Path != "/v1/auth/token/renew-self" {
			s.token = issued
		}
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	switch {
	case !ok:
		w.WriteHeader(http.StatusNotImplemented)
		_, _ = fmt.Fprintf(w, `{"errors":["vaulttest: no route for %s %s"]}`, method, req.URL.Path)
	case denied:
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errors":["permission denied"]}`)
	default:
		for k, v := range rec.Response.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rec.Response.Status)
		if len(rec.Response.Body) > 0 && string(rec.Response.Body) != "null" {
			_, _ = w.Write(rec.Response.Body)
		}
	}
}

func issuedToken(body []byte) string {
	var b struct {
		Auth *struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if json.Unmarshal(body, &b) != nil || b.Auth == nil {
		return ""
	}
	return b.Auth.ClientToken
}
