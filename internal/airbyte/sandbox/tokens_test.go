package sandbox_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox/sandboxtest"
)

// clock is a settable time for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// claimsOf decodes a JWT's claims, verifying it with key.
func claimsOf(t *testing.T, tok string, key []byte, now time.Time) map[string]any {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return claims
}

func sortedKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestApplicationToken(t *testing.T) {
	tests := []struct {
		name          string
		cfg           sandbox.Config
		wantTTL       time.Duration
		wantExpiresIn int64
	}{
		{"defaults", sandbox.Config{}, 15 * time.Minute, 900},
		{"issue 55784: expires_in longer than the JWT", sandbox.Config{OperatorTTL: 3 * time.Minute, ExpiresIn: 15 * time.Minute}, 3 * time.Minute, 900},
		{"custom ttl", sandbox.Config{OperatorTTL: time.Minute}, time.Minute, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.cfg.Now, tt.cfg.SigningKey = clk.Now, testKey
			_, base := sandboxtest.Start(t, tt.cfg)
			c := newClient(t, base)
			r := c.do("POST", "/api/v1/account/applications/token", "", map[string]string{"client_id": sandbox.DefaultClientID, "client_secret": sandbox.DefaultClientSecret})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var tr struct {
				AccessToken    string `json:"access_token"`
				TokenType      string `json:"token_type"`
				ExpiresIn      int64  `json:"expires_in"`
				OrganizationID string `json:"organization_id"`
			}
			r.decode(t, &tr)
			if tr.TokenType != "bearer" || tr.ExpiresIn != tt.wantExpiresIn || tr.OrganizationID != sandbox.DefaultOrganizationID {
				t.Fatalf("response = %+v", tr)
			}
			claims := claimsOf(t, tr.AccessToken, testKey, clk.Now())
			if claims["aud"] != "airbyte-server" || claims["iss"] == "" || claims["typ"] == "" {
				t.Fatalf("claims = %v", claims)
			}
			if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "ORGANIZATION_ADMIN" {
				t.Fatalf("roles = %v", claims["roles"])
			}
			exp := time.Unix(int64(claims["exp"].(float64)), 0)
			if got := exp.Sub(clk.Now()); got != tt.wantTTL {
				t.Fatalf("exp - now = %v, want %v", got, tt.wantTTL)
			}
			if exp.Sub(clk.Now()) > time.Duration(tr.ExpiresIn)*time.Second {
				t.Fatalf("JWT outlives expires_in")
			}
		})
	}
}

func TestApplicationTokenBadCredentials(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{ClientID: "id", ClientSecret: "the-secret"})
	c := newClient(t, base)
	tests := []struct {
		name       string
		body       map[string]string
		wantStatus int
	}{
		{"wrong secret", map[string]string{"client_id": "id", "client_secret": "nope"}, 401},
		{"wrong id", map[string]string{"client_id": "other", "client_secret": "the-secret"}, 401},
		{"right", map[string]string{"client_id": "id", "client_secret": "the-secret"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", "/api/v1/account/applications/token", "", tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if strings.Contains(string(r.body), "the-secret") {
				t.Fatalf("response echoes the secret: %s", r.body)
			}
		})
	}
}

func TestScopedToken(t *testing.T) {
	clk := newClock()
	_, base := sandboxtest.Start(t, sandbox.Config{SigningKey: testKey, Now: clk.Now, ScopedTTL: 20 * time.Minute})
	c := newClient(t, base)
	op := c.operatorToken()
	tests := []struct {
		name, mintPath, infoPath, key string
	}{
		{"current", "/api/v1/account/applications/scoped-token", "/api/v1/account/applications/scoped-token/info", "workspace_name"},
		{"deprecated alias", "/api/v1/embedded/scoped-token", "/api/v1/embedded/scoped-token/info", "workspace_name"},
		{"customer_name", "/api/v1/account/applications/scoped-token", "/api/v1/account/applications/scoped-token/info", "customer_name"},
		{"external_user_id", "/api/v1/account/applications/scoped-token", "/api/v1/embedded/scoped-token-info", "external_user_id"},
	}
	var firstWorkspace string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Older keys are not in the current spec; send them around the validator.
			var r response
			if tt.key == "workspace_name" {
				r = c.do("POST", tt.mintPath, op, map[string]string{tt.key: "acme"})
			} else {
				r = rawDo(t, base, "POST", tt.mintPath, op, map[string]string{tt.key: "acme"})
			}
			if r.status != 200 {
				t.Fatalf("mint: %d %s", r.status, r.body)
			}
			var tr struct{ Token string }
			r.decode(t, &tr)
			claims := claimsOf(t, tr.Token, testKey, clk.Now())
			want := []string{"act", "aud", "exp", "io.airbyte.auth.workspace_scope", "iss", "roles", "sub", "typ"}
			if got := sortedKeys(claims); !slices.Equal(got, want) {
				t.Fatalf("claim names = %v, want exactly %v", got, want)
			}
			if claims["aud"] != "airbyte-server" || claims["typ"] != "io.airbyte.auth.embedded_v1" {
				t.Fatalf("claims = %v", claims)
			}
			if act := claims["act"].(map[string]any); act["sub"] != "acme" {
				t.Fatalf("act = %v", act)
			}
			if roles := claims["roles"].([]any); len(roles) != 1 || roles[0] != "EMBEDDED_END_USER" {
				t.Fatalf("roles = %v", roles)
			}
			opClaims := claimsOf(t, op, testKey, clk.Now())
			if claims["sub"] != opClaims["sub"] {
				t.Fatalf("sub = %v, want the operator's user id %v", claims["sub"], opClaims["sub"])
			}
			if exp := time.Unix(int64(claims["exp"].(float64)), 0); exp.Sub(clk.Now()) != 20*time.Minute {
				t.Fatalf("exp = %v", exp)
			}
			wsID := claims["io.airbyte.auth.workspace_scope"].(map[string]any)["workspaceId"].(string)
			if firstWorkspace == "" {
				firstWorkspace = wsID
			} else if wsID != firstWorkspace {
				t.Fatalf("workspace id %s, want the same workspace %s for the same name", wsID, firstWorkspace)
			}
			info := c.do("GET", tt.infoPath, tr.Token, nil)
			var ir struct{ OrganizationID, WorkspaceID, WorkspaceName string }
			if err := json.Unmarshal(info.body, &map[string]any{}); err != nil || info.status != 200 {
				t.Fatalf("info: %d %s", info.status, info.body)
			}
			var raw map[string]string
			info.decode(t, &raw)
			ir.OrganizationID, ir.WorkspaceID, ir.WorkspaceName = raw["organization_id"], raw["workspace_id"], raw["workspace_name"]
			if ir.OrganizationID != sandbox.DefaultOrganizationID || ir.WorkspaceID != wsID || ir.WorkspaceName != "acme" {
				t.Fatalf("info = %+v", ir)
			}
		})
	}
}

func TestWidgetToken(t *testing.T) {
	tests := []struct{ name, path string }{
		{"current", "/api/v1/account/applications/widget-token"},
		{"deprecated alias", "/api/v1/embedded/widget-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := sandboxtest.Start(t, sandbox.Config{SigningKey: testKey})
			c := newClient(t, base)
			r := c.do("POST", tt.path, c.operatorToken(), map[string]any{"workspace_name": "acme", "allowed_origin": "https://app.example.com/x?y"})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var tr struct{ Token string }
			r.decode(t, &tr)
			raw, err := base64.StdEncoding.DecodeString(tr.Token)
			if err != nil {
				t.Fatalf("token is not standard base64: %v", err)
			}
			var payload struct {
				Token     string `json:"token"`
				WidgetURL string `json:"widgetUrl"`
			}
			if err := json.Unmarshal(raw, &payload); err != nil {
				t.Fatal(err)
			}
			claims := claimsOf(t, payload.Token, testKey, time.Now())
			wsID := claims["io.airbyte.auth.workspace_scope"].(map[string]any)["workspaceId"].(string)
			u, err := url.Parse(payload.WidgetURL)
			if err != nil || u.Path != "/embedded-widget" || u.Query().Get("workspaceId") != wsID || u.Query().Get("allowedOrigin") != "https://app.example.com/x?y" {
				t.Fatalf("widgetUrl = %q", payload.WidgetURL)
			}
			if !strings.Contains(payload.WidgetURL, "allowedOrigin=https%3A%2F%2Fapp.example.com") {
				t.Fatalf("allowedOrigin not url-encoded: %q", payload.WidgetURL)
			}
			if got := srv.Stats().TokensMinted["widget"]; got != 1 {
				t.Fatalf("widget tokens minted = %d", got)
			}
		})
	}
}

// TestConcurrentMintsCreateOneWorkspace races many mints for a new name.
func TestConcurrentMintsCreateOneWorkspace(t *testing.T) {
	_, base := sandboxtest.Start(t, sandbox.Config{SigningKey: testKey})
	c := newClient(t, base)
	op := c.operatorToken()
	const n = 200
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := c.try("POST", "/api/v1/account/applications/scoped-token", op, map[string]string{"workspace_name": "race"})
			if err != nil || r.status != 200 {
				t.Errorf("mint: %v %d", err, r.status)
				return
			}
			var tr struct{ Token string }
			if err := json.Unmarshal(r.body, &tr); err != nil {
				t.Error(err)
				return
			}
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(tr.Token, claims); err != nil {
				t.Error(err)
				return
			}
			ids[i] = claims["io.airbyte.auth.workspace_scope"].(map[string]any)["workspaceId"].(string)
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("workspace ids differ: %s vs %s", id, ids[0])
		}
	}
	r := c.do("GET", "/api/v1/workspaces?name_contains=race", op, nil)
	var wl struct{ Data []map[string]any }
	r.decode(t, &wl)
	if len(wl.Data) != 1 {
		t.Fatalf("workspaces named race: %d", len(wl.Data))
	}
}
