package sandbox

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// opHandler serves one operation once the fault plan has let the request through; d tells it
// whether a create must fail after committing.
type opHandler func(w http.ResponseWriter, r *http.Request, d decision)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, op string, h opHandler) {
		mux.Handle(pattern, s.withFaults(op, s.requireToken(documentedToken(pattern), uuidParams(pattern, h))))
	}

	const app = "/api/v1/account/applications"
	handle("POST "+app+"/token", OpToken, s.handleToken)
	for _, prefix := range []string{app, "/api/v1/embedded"} {
		handle("POST "+prefix+"/scoped-token", OpScopedToken, s.handleScopedToken)
		handle("POST "+prefix+"/widget-token", OpWidgetToken, s.handleWidgetToken)
		handle("GET "+prefix+"/scoped-token/info", OpScopedTokenInfo, s.handleScopedTokenInfo)
	}
	handle("GET /api/v1/embedded/scoped-token-info", OpScopedTokenInfo, s.handleScopedTokenInfo)

	const conn = "/api/v1/integrations/connectors"
	handle("POST "+conn, OpConnectorsCreate, s.handleConnectorCreate)
	handle("GET "+conn, OpConnectorsList, s.handleConnectorList)
	handle("POST "+conn+"/check", OpConnectorsCheck, s.handleConnectorCheck)
	handle("GET "+conn+"/{id}", OpConnectorsGet, s.handleConnectorGet)
	handle("PUT "+conn+"/{id}", OpConnectorsUpdate, s.handleConnectorUpdate)
	handle("DELETE "+conn+"/{id}", OpConnectorsDelete, s.handleConnectorDelete)
	handle("POST "+conn+"/{id}/check", OpConnectorsCheck, s.handleConnectorCheckID)
	handle("POST "+conn+"/{id}/execute", OpConnectorsExecute, s.handleConnectorExecute)

	const integrations = "/api/v1/integrations"
	handle("GET "+integrations+"/templates/sources", OpSourceTemplatesList, s.handleIntegrationTemplates)
	handle("GET "+integrations+"/templates/sources/global", OpSourceTemplatesList, s.handleGlobalTemplates)
	handle("GET "+integrations+"/templates/sources/{id}", OpSourceTemplatesGet, s.handleTemplateGet)
	handle("GET /api/v1/embedded/source-templates/{id}", OpSourceTemplatesGet, s.handleTemplateGet)
	handle("GET "+integrations+"/definitions/sources", OpSourceDefinitionsList, s.handleDefinitions)
	handle("GET "+integrations+"/definitions/sources/{id}", OpSourceDefinitionsGet, s.handleDefinitionGet)

	for _, prefix := range []string{"/api/v1/embedded/sources", "/api/v1/integrations/sources"} {
		handle("POST "+prefix, OpSourcesCreate, s.handleSourceCreate)
		handle("GET "+prefix, OpSourcesList, s.handleSourceList)
		handle("GET "+prefix+"/{id}", OpSourcesGet, s.handleSourceGet)
		handle("PUT "+prefix+"/{id}", OpSourcesUpdate, s.handleSourceUpdate)
		handle("DELETE "+prefix+"/{id}", OpSourcesDelete, s.handleSourceDelete)
	}
	handle("GET /api/v1/embedded/source-templates", OpSourceTemplatesList, s.handleSourceTemplates)
	handle("GET /api/v1/workspaces", OpWorkspacesList, s.handleWorkspaceList)
	handle("GET /api/v1/workspaces/stats", OpWorkspacesStats, s.handleWorkspaceStats)
	handle("GET /api/v1/workspaces/{workspace_id}", OpWorkspacesGet, s.handleWorkspaceGet)
	handle("PUT /api/v1/workspaces/{workspace_id}", OpWorkspacesUpdate, s.handleWorkspaceUpdate)
	handle("DELETE /api/v1/workspaces/{workspace_id}", OpWorkspacesDelete, s.handleWorkspaceDelete)

	mux.HandleFunc("GET /_sandbox/healthz", s.adminHealthz)
	mux.HandleFunc("GET /_sandbox/stats", s.adminStats)
	mux.HandleFunc("GET /_sandbox/connectors", s.adminConnectors)
	mux.HandleFunc("PUT /_sandbox/faults", s.adminPutFaults)
	mux.HandleFunc("GET /_sandbox/faults", s.adminGetFaults)
	mux.HandleFunc("POST /_sandbox/reset", s.adminReset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "not_found", "no route for "+r.Method+" "+r.URL.Path)
	})
	return withoutTrailingSlash(mux)
}

// tokenKind is the bearer token an operation documents.
type tokenKind int

const (
	tokenNone        tokenKind = iota // the application token mint itself
	tokenApplication                  // "Requires an Access Token as the bearer token"
	tokenScoped                       // "Requires a Scoped Token as the bearer token"
)

// documentedToken is the token the specs document for a route pattern ("METHOD /path").
func documentedToken(pattern string) tokenKind {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case path == "/api/v1/account/applications/token":
		return tokenNone
	case strings.HasSuffix(path, "/scoped-token/info"), path == "/api/v1/embedded/scoped-token-info",
		strings.HasPrefix(path, "/api/v1/embedded/sources"), strings.HasPrefix(path, "/api/v1/embedded/source-templates"):
		return tokenScoped
	default:
		return tokenApplication
	}
}

type principalKey struct{}

// requireToken, in strict mode, authenticates the request and refuses the token kind the
// operation does not document (403); the principal rides in the context to the handler, which
// then does not verify the token again.
func (s *Server) requireToken(kind tokenKind, h opHandler) opHandler {
	if !s.cfg.StrictAuth || kind == tokenNone {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, d decision) {
		p, err := s.authenticate(r)
		switch {
		case err != nil:
		case kind == tokenApplication && !p.isOperator():
			err = forbidden("this operation requires an application (access) token as the bearer token")
		case kind == tokenScoped && p.isOperator():
			err = forbidden("this operation requires a scoped token as the bearer token")
		}
		if err != nil {
			writeAuthError(w, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), d)
	}
}

// withoutTrailingSlash serves /api/v1/x/ as /api/v1/x, as Airbyte does.
func withoutTrailingSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; strings.HasPrefix(p, "/api/") && strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path = strings.TrimRight(p, "/")
			u.RawPath = strings.TrimRight(u.RawPath, "/")
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// uuidParams answers 422, as FastAPI's validation does, when a {wildcard} of pattern (every path
// id of the API is a UUID) is not a UUID.
func uuidParams(pattern string, h opHandler) opHandler {
	var names []string
	for rest := pattern; ; {
		i := strings.Index(rest, "{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "}")
		names = append(names, rest[i+1:i+j])
		rest = rest[i+j:]
	}
	if len(names) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, d decision) {
		for _, n := range names {
			if !validUUID(r.PathValue(n)) {
				writeError(w, http.StatusUnprocessableEntity, n, "uuid_parsing", "path parameter "+n+" is not a valid UUID")
				return
			}
		}
		h(w, r, d)
	}
}

// withFaults counts the request, applies the fault plan, and otherwise runs h.
func (s *Server) withFaults(op string, h opHandler) http.Handler {
	requests, counter := s.requests[op], s.opCount[op]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := counter.Add(1)
		var d decision
		if rule, ok := s.faults.Load().rule(op); ok {
			d = decide(s.cfg.Seed, op, n, rule)
		}
		s.log.DebugContext(r.Context(), "sandbox request", "op", op, "method", r.Method, "path", r.URL.Path)
		if d.delay > 0 {
			s.faultsHit[FaultLatency].Add(1)
			t := time.NewTimer(d.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		switch {
		case d.drop:
			s.faultsHit[FaultDrop].Add(1)
			dropConnection(w)
		case d.status == http.StatusTooManyRequests:
			s.faultsHit[FaultRateLimit].Add(1)
			writeRateLimited(w, d.retryAfter)
		case d.status != 0:
			s.faultsHit[FaultError].Add(1)
			writeError(w, d.status, "", "injected_fault", "sandbox: injected "+strconv.Itoa(d.status)+" "+http.StatusText(d.status))
		default:
			h(w, r, d)
		}
	})
}

func writeRateLimited(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, "", "rate_limited", "rate limit exceeded, retry later")
}

// dropConnection closes the connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close() // the point is that the client sees nothing
}

// failAfterCommit is how a committed create reaches the client when the fault plan says so.
func (s *Server) failAfterCommit(w http.ResponseWriter, d decision) {
	s.ctf.Add(1)
	s.faultsHit[FaultCommitThenFail].Add(1)
	if d.failByDrop {
		dropConnection(w)
		return
	}
	writeError(w, http.StatusInternalServerError, "", "internal_error", "sandbox: injected failure after commit")
}
