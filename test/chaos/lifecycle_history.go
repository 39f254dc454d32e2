package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

// History is what every connector the sandbox ever held was, and which credentials it held, as
// read from the sandbox's own state right after each call that may change a connector (a create,
// an update, a delete) and before its answer leaves: the truth a verdict about a connector that is
// gone by the end (replaced, updated again, disconnected) is checked against.
type History struct {
	sb         *sandbox.Server
	workspaces []string // the plan's: where to look when a call does not say

	mu   sync.Mutex
	held map[string]*Held // by connector id
	wsOf map[string]string
}

// Held is one connector the sandbox held at some point.
type Held struct {
	Identity Identity
	// Credentials are the credentials_sha256 values it held.
	Credentials map[string]bool
}

// NewHistory records the history of the connectors of the given workspaces.
func NewHistory(sb *sandbox.Server, workspaces []string) *History {
	return &History{sb: sb, workspaces: workspaces, held: map[string]*Held{}, wsOf: map[string]string{}}
}

// Held returns what was recorded, by connector id.
func (h *History) Held() map[string]Held {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Held, len(h.held))
	for id, c := range h.held {
		creds := make(map[string]bool, len(c.Credentials))
		for k := range c.Credentials {
			creds[k] = true
		}
		out[id] = Held{Identity: c.Identity, Credentials: creds}
	}
	return out
}

// Wrap puts the recording in front of the sandbox's API.
func (h *History) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mutatesConnectors(r) {
			next.ServeHTTP(w, r)
			return
		}
		workspace := h.workspaceOf(r)
		tw := &tapWriter{ResponseWriter: w, snap: func() { h.snapshot(workspace) }}
		// after the handler too: a create whose answer is a dropped connection never writes one
		defer tw.snapOnce()
		next.ServeHTTP(tw, r)
	})
}

// mutatesConnectors reports whether a call may create, change or delete a connector or source.
func mutatesConnectors(r *http.Request) bool {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/api/v1/integrations/connectors") && !strings.HasPrefix(p, "/api/v1/embedded/sources") &&
		!strings.HasPrefix(p, "/api/v1/integrations/sources") {
		return false
	}
	switch r.Method {
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	case http.MethodPost:
		return !strings.HasSuffix(p, "/check") && !strings.HasSuffix(p, "/execute")
	}
	return false
}

// workspaceOf is the workspace a call acts on, "" when it cannot tell (then every one is read).
func (h *History) workspaceOf(r *http.Request) string {
	if r.Method == http.MethodPost && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return ""
		}
		var body struct {
			WorkspaceName string `json:"workspace_name"`
			WorkspaceID   string `json:"workspace_id"`
		}
		_ = json.Unmarshal(b, &body) // the sandbox answers a malformed body; nothing changes then
		if body.WorkspaceName != "" {
			return body.WorkspaceName
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.wsOf[body.WorkspaceID]
	}
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.held[strings.ToLower(id)]; c != nil {
		return c.Identity.Workspace
	}
	return ""
}

// snapshot records the connectors a workspace holds now (every workspace when "").
func (h *History) snapshot(workspace string) {
	wss := []string{workspace}
	if workspace == "" {
		wss = h.workspaces
	}
	for _, ws := range wss {
		cs := h.sb.Connectors(ws)
		h.mu.Lock()
		for _, c := range cs {
			h.wsOf[c.WorkspaceID] = ws
			held := h.held[c.ID]
			if held == nil {
				held = &Held{Identity: Identity{Workspace: c.WorkspaceName, ConnectorType: c.ConnectorType, Name: c.Name}, Credentials: map[string]bool{}}
				h.held[c.ID] = held
			}
			held.Credentials[c.CredentialsSHA256] = true
		}
		h.mu.Unlock()
	}
}

// tapWriter takes the snapshot before the first byte of the answer leaves.
type tapWriter struct {
	http.ResponseWriter
	snap func()
	once sync.Once
}

func (t *tapWriter) snapOnce() { t.once.Do(t.snap) }

func (t *tapWriter) WriteHeader(code int) {
	t.snapOnce()
	t.ResponseWriter.WriteHeader(code)
}

func (t *tapWriter) Write(b []byte) (int, error) {
	t.snapOnce()
	return t.ResponseWriter.Write(b)
}

// Hijack is the dropped-connection fault taking the connection: the snapshot comes first.
func (t *tapWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.snapOnce()
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the writer's other features.
func (t *tapWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
