package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Config configures a Server. The zero value is a working sandbox.
type Config struct {
	// ClientID is the accepted application client id; default "sandbox-client".
	ClientID string
	// ClientSecret is the accepted application client secret; default "sandbox-secret".
	ClientSecret string
	// SigningKey is the HS256 key of every token; default: random per server.
	SigningKey []byte
	// OrganizationID is the one organization the sandbox serves; default DefaultOrganizationID.
	OrganizationID string
	// OperatorTTL is the JWT lifetime of application tokens; default 15m.
	OperatorTTL time.Duration
	// ExpiresIn is the expires_in reported for application tokens; default OperatorTTL. Set it
	// larger than OperatorTTL to reproduce airbytehq/airbyte#55784.
	ExpiresIn time.Duration
	// ScopedTTL is the JWT lifetime of scoped and widget tokens; default 20m.
	ScopedTTL time.Duration
	// Faults is the initial fault plan; SetFaults changes it at run time.
	Faults Faults
	// Seed makes every random fault decision deterministic.
	Seed int64
	// StrictAuth enforces each operation's documented bearer token: an application token for
	// /integrations/*, the token mints, /integrations/sources* and /workspaces*; a scoped token
	// for scoped-token info, /embedded/sources* and /embedded/source-templates*. The other kind
	// answers 403. It also answers 404 to a connector create naming a workspace no scoped-token
	// mint has created (AGENTIC-1140) instead of creating it. Off, either token is accepted
	// wherever the caller may act on the workspace, as the seed docs' examples assume.
	StrictAuth bool
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger
	// Now is the clock for token lifetimes and timestamps; nil is time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultClientID       = "sandbox-client"
	DefaultClientSecret   = "sandbox-secret"
	DefaultOrganizationID = "6b1f3d2e-6a40-4c0e-9d57-5a8f0e1c2b3a"
	DefaultOperatorTTL    = 15 * time.Minute
	DefaultScopedTTL      = 20 * time.Minute
)

// Server is an in-memory emulator of the Airbyte Agent Engine / Embedded API.
type Server struct {
	cfg    Config
	key    []byte
	userID string // the application's user id, the sub of every token
	now    func() time.Time
	log    *slog.Logger

	st     atomic.Pointer[store]
	faults atomic.Pointer[Faults]

	// counters; the maps are fixed at construction, so reads need no lock.
	opCount   map[string]*atomic.Uint64 // per operation, numbers requests for fault decisions
	requests  map[string]*atomic.Int64
	faultsHit map[string]*atomic.Int64
	minted    map[string]*atomic.Int64
	created   atomic.Int64
	deleted   atomic.Int64
	ctf       atomic.Int64
	live      atomic.Int64

	handler http.Handler
}

var operations = []string{
	OpToken, OpScopedToken, OpScopedTokenInfo, OpWidgetToken,
	OpConnectorsCreate, OpConnectorsList, OpConnectorsGet, OpConnectorsUpdate, OpConnectorsDelete, OpConnectorsCheck,
	OpSourcesCreate, OpSourcesList, OpSourcesGet, OpSourcesUpdate, OpSourcesDelete, OpSourceTemplatesList,
	OpWorkspacesList, OpWorkspacesGet, OpWorkspacesUpdate, OpWorkspacesDelete,
	OpSourceTemplatesGet, OpSourceDefinitionsList, OpSourceDefinitionsGet, OpConnectorsExecute, OpWorkspacesStats,
}

// New returns a sandbox with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.OrganizationID == "" {
		cfg.OrganizationID = DefaultOrganizationID
	}
	if cfg.OperatorTTL <= 0 {
		cfg.OperatorTTL = DefaultOperatorTTL
	}
	if cfg.ExpiresIn <= 0 {
		cfg.ExpiresIn = cfg.OperatorTTL
	}
	if cfg.ScopedTTL <= 0 {
		cfg.ScopedTTL = DefaultScopedTTL
	}
	s := &Server{
		cfg:       cfg,
		key:       slices.Clone(cfg.SigningKey),
		userID:    uuid.NewSHA1(uuid.NameSpaceURL, []byte("airbyte-sandbox:"+cfg.OrganizationID+":"+cfg.ClientID)).String(),
		now:       cfg.Now,
		log:       cfg.Logger,
		opCount:   map[string]*atomic.Uint64{},
		requests:  map[string]*atomic.Int64{},
		faultsHit: map[string]*atomic.Int64{},
		minted:    map[string]*atomic.Int64{},
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key) // crypto/rand.Read never fails
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, op := range operations {
		s.opCount[op] = new(atomic.Uint64)
		s.requests[op] = new(atomic.Int64)
	}
	for _, k := range []string{FaultLatency, FaultError, FaultRateLimit, FaultDrop, FaultCommitThenFail, FaultCheckStatus} {
		s.faultsHit[k] = new(atomic.Int64)
	}
	for _, k := range []string{kindApplication, kindScoped, kindWidget} {
		s.minted[k] = new(atomic.Int64)
	}
	s.st.Store(newStore())
	s.SetFaults(cfg.Faults)
	s.handler = s.routes()
	return s
}

// Handler returns the API (under /api/v1/) and the admin endpoints (under /_sandbox/).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve listens on addr ("127.0.0.1:0" picks a port) and serves until ctx ends, then shuts down
// gracefully. done receives the outcome once (nil after a clean shutdown) and is closed.
func (s *Server) Serve(ctx context.Context, addr string) (baseURL string, done <-chan error, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("sandbox listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	out := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx) // Serve below reports what matters
	}()
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		wg.Wait()
		out <- err
		close(out)
	}()
	return "http://" + ln.Addr().String(), out, nil
}

// SetFaults replaces the fault plan; requests already past their fault decision are unaffected.
func (s *Server) SetFaults(f Faults) {
	c := f.clone()
	s.faults.Store(&c)
}

// Stats is a snapshot of the sandbox's counters.
type Stats struct {
	// Requests by operation (Op* constants).
	Requests map[string]int64 `json:"requests"`
	// Created counts connectors and sources committed; Deleted those deleted.
	Created int64 `json:"created"`
	Deleted int64 `json:"deleted"`
	// CommittedThenFailed counts creates committed whose client saw a failure.
	CommittedThenFailed int64 `json:"committed_then_failed"`
	// Faults counts injected faults by kind (Fault* constants).
	Faults map[string]int64 `json:"faults"`
	// TokensMinted by kind: application, scoped, widget.
	TokensMinted map[string]int64 `json:"tokens_minted"`
	// Connectors is the number of live connectors and sources now.
	Connectors int `json:"connectors"`
}

// Stats returns the counters; safe to call concurrently with requests.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:            snapshot(s.requests),
		Created:             s.created.Load(),
		Deleted:             s.deleted.Load(),
		CommittedThenFailed: s.ctf.Load(),
		Faults:              snapshot(s.faultsHit),
		TokensMinted:        snapshot(s.minted),
		Connectors:          int(s.live.Load()),
	}
	return st
}

func snapshot(m map[string]*atomic.Int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v.Load()
	}
	return out
}

// Connector is what the sandbox holds for one connector, minus the secret values.
type Connector struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	WorkspaceID    string    `json:"workspace_id"`
	WorkspaceName  string    `json:"workspace_name"`
	ConnectorType  string    `json:"connector_type"`
	DefinitionID   string    `json:"definition_id"`
	TemplateID     string    `json:"source_template_id"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	CredentialKeys []string  `json:"credential_keys"` // sorted field names, never values
	// CredentialsSHA256 is the hex SHA-256 of the credentials as Go's json.Marshal writes a
	// map[string]string (compact, keys sorted; non-string values in their JSON form): it proves
	// which credentials a connector holds without showing them.
	CredentialsSHA256 string `json:"credentials_sha256"`
}

// WorkspaceRegion returns the region a workspace was created in (the region_id of the mint that
// created it, or the US default), for tests; the API itself does not show it.
func (s *Server) WorkspaceRegion(workspaceName string) (string, bool) {
	ws := s.state().workspaceByName(workspaceName)
	if ws == nil {
		return "", false
	}
	return ws.regionID, true
}

// Connectors returns the live connectors (and embedded sources) of a workspace, oldest first.
func (s *Server) Connectors(workspaceName string) []Connector {
	ws := s.state().workspaceByName(workspaceName)
	if ws == nil {
		return []Connector{}
	}
	views := ws.live()
	wsName := ws.nameNow()
	out := make([]Connector, 0, len(views))
	for _, v := range views {
		keys := slices.Collect(maps.Keys(v.credentials))
		sort.Strings(keys)
		out = append(out, Connector{
			ID: v.id, Name: v.name, WorkspaceID: ws.id, WorkspaceName: wsName,
			ConnectorType: v.entry.connectorType, DefinitionID: v.entry.definitionID, TemplateID: v.entry.templateID,
			CreatedAt: v.createdAt, UpdatedAt: v.updatedAt, CredentialKeys: keys,
			CredentialsSHA256: CredentialsSHA256(credentialStrings(v.credentials)),
		})
	}
	return out
}

// CredentialsSHA256 is the digest Connector.CredentialsSHA256 reports for creds: the hex SHA-256
// of json.Marshal(creds).
func CredentialsSHA256(creds map[string]string) string {
	b, _ := json.Marshal(creds) // a map[string]string always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// credentialStrings gives stored credentials as strings; non-string values in their JSON form.
func credentialStrings(creds map[string]any) map[string]string {
	out := make(map[string]string, len(creds))
	for k, val := range creds {
		if str, ok := val.(string); ok {
			out[k] = str
			continue
		}
		b, _ := json.Marshal(val) // values came from JSON, they marshal back
		out[k] = string(b)
	}
	return out
}

// ConnectorCredentials returns the credentials stored for a live connector, for tests that prove
// the right secret arrived. Non-string values are given in their JSON form.
func (s *Server) ConnectorCredentials(id string) (map[string]string, bool) {
	src := s.state().lookup(id)
	if src == nil {
		return nil, false
	}
	return credentialStrings(src.view().credentials), true
}

// Reset forgets every workspace, connector and counter (not the fault plan). Tokens minted
// before stay valid for the organization; scoped tokens of forgotten workspaces get 401.
func (s *Server) Reset() {
	s.st.Store(newStore())
	for _, m := range []map[string]*atomic.Int64{s.requests, s.faultsHit, s.minted} {
		for _, v := range m {
			v.Store(0)
		}
	}
	for _, v := range s.opCount {
		v.Store(0)
	}
	s.created.Store(0)
	s.deleted.Store(0)
	s.ctf.Store(0)
	s.live.Store(0)
}

func (s *Server) state() *store { return s.st.Load() }

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"sandbox: cannot encode response","errors":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers an ApiErrorResponse with one error entry.
func writeError(w http.ResponseWriter, status int, field, code, msg string) {
	e := apiError{Message: &msg, Details: map[string]any{}}
	if field != "" {
		e.Field = &field
	}
	if code != "" {
		e.ErrorCode = &code
	}
	writeJSON(w, status, apiErrorResponse{Message: msg, Errors: []apiError{e}})
}

// writeAuthError answers err, an *authError or anything else as a 500.
func writeAuthError(w http.ResponseWriter, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		code := "unauthorized"
		if ae.status == http.StatusForbidden {
			code = "forbidden"
		}
		writeError(w, ae.status, "", code, ae.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "", "internal_error", "internal error")
}

// maxBody bounds request bodies; Airbyte's own limit is larger, nothing here needs more.
const maxBody = 1 << 20

// decodeObject reads the body as a JSON object of raw members.
func decodeObject(r *http.Request) (rawObject, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxBody {
		return nil, errors.New("body too large")
	}
	var obj rawObject
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, errors.New("body is not a JSON object")
	}
	if obj == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return obj, nil
}
