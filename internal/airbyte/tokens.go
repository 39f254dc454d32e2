package airbyte

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// ErrMalformedToken is returned when the API hands out a token the client cannot use: not a JWT,
// no workspace scope, or scoped to another workspace than the one asked for.
var ErrMalformedToken = errors.New("malformed token")

// operatorKey is the cache key of the application token; scoped tokens are keyed by their
// workspace name, which is never empty.
const operatorKey = ""

// cachedToken is a minted token and when to stop using it.
type cachedToken struct {
	value     secret.Value
	refreshAt time.Time    // mint a new one from here on
	workspace WorkspaceRef // scoped tokens only
	orgID     string       // application tokens: the organization the API reported
}

// tokenCache holds the application token and one scoped token per workspace. Reads take a read
// lock only, so the hot path (a cached token) neither blocks nor allocates.
type tokenCache struct {
	mu     sync.RWMutex
	tokens map[string]*cachedToken
	flight singleflight.Group // one mint in flight per key
}

func newTokenCache() *tokenCache { return &tokenCache{tokens: make(map[string]*cachedToken)} }

// fresh returns the cached token for key if it is still before its refresh time.
func (tc *tokenCache) fresh(key string, now time.Time) *cachedToken {
	tc.mu.RLock()
	t := tc.tokens[key]
	tc.mu.RUnlock()
	if t != nil && now.Before(t.refreshAt) {
		return t
	}
	return nil
}

func (tc *tokenCache) get(key string) *cachedToken {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	return tc.tokens[key]
}

func (tc *tokenCache) put(key string, t *cachedToken) {
	tc.mu.Lock()
	tc.tokens[key] = t
	tc.mu.Unlock()
}

// invalidate drops key's token if it is still the one the server rejected; a token minted since by
// another caller stays, so a burst of 401s costs one mint, not one each.
func (tc *tokenCache) invalidate(key, rejected string) {
	tc.mu.Lock()
	if t := tc.tokens[key]; t != nil && t.value.Reveal() == rejected {
		delete(tc.tokens, key)
	}
	tc.mu.Unlock()
}

// forgetWorkspace drops the scoped tokens of the workspace with this id (it was deleted: a new
// mint of its name creates another workspace).
func (tc *tokenCache) forgetWorkspace(id string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for k, t := range tc.tokens {
		if k != operatorKey && strings.EqualFold(t.workspace.ID, id) {
			delete(tc.tokens, k)
		}
	}
}

// ApplicationToken returns the organization-wide application (operator) token, minting it when the
// cached one is missing or about to expire.
func (c *Client) ApplicationToken(ctx context.Context) (secret.Value, error) {
	t, err := c.operatorToken(ctx)
	if err != nil {
		return secret.Value{}, err
	}
	return t.value, nil
}

// ScopedToken returns the scoped token of a workspace, minting it (which creates the workspace if
// it does not exist) when the cached one is missing or about to expire.
func (c *Client) ScopedToken(ctx context.Context, workspaceName string) (secret.Value, error) {
	t, err := c.scopedToken(ctx, workspaceName)
	if err != nil {
		return secret.Value{}, err
	}
	return t.value, nil
}

// Workspace returns the workspace the scoped token of workspaceName belongs to, read from the token's
// claims (minting the token, and so creating the workspace, if needed). It makes no other call.
func (c *Client) Workspace(ctx context.Context, workspaceName string) (WorkspaceRef, error) {
	return c.EnsureWorkspace(ctx, workspaceName, "")
}

// EnsureWorkspace is Workspace for a customer being onboarded: if the workspace does not exist yet,
// the mint that creates it asks for regionID (RegionUS, RegionEU; "" = Airbyte's default). A workspace
// that exists keeps its region.
func (c *Client) EnsureWorkspace(ctx context.Context, workspaceName, regionID string) (WorkspaceRef, error) {
	t, err := c.scopedTokenIn(ctx, workspaceName, regionID)
	if err != nil {
		return WorkspaceRef{}, err
	}
	return t.workspace, nil
}

// ScopedTokenInfo asks the API which workspace the scoped token of workspaceName belongs to.
func (c *Client) ScopedTokenInfo(ctx context.Context, workspaceName string) (*ScopedTokenInfoGetResponse, error) {
	if workspaceName == "" {
		return nil, errNoWorkspace
	}
	var out ScopedTokenInfoGetResponse
	err := c.do(ctx, &call{op: "scoped_token_info", method: http.MethodGet,
		path: "/api/v1/account/applications/scoped-token/info", auth: authScoped, workspace: workspaceName}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// WidgetToken mints a token for the embedded widget in an end user's browser. Widget tokens are
// handed out, not used by the client, so they are never cached.
func (c *Client) WidgetToken(ctx context.Context, req WidgetTokenCreateRequest) (*WidgetTokenCreateResponse, error) {
	if req.WorkspaceName == "" || req.AllowedOrigin == "" {
		return nil, errors.New("airbyte widget_token: workspace name and allowed origin are required")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("airbyte widget_token: %w", err)
	}
	var out WidgetTokenCreateResponse
	err = c.do(ctx, &call{op: "widget_token", method: http.MethodPost,
		path: "/api/v1/account/applications/widget-token", body: body, auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	if out.Token.IsZero() {
		return nil, fmt.Errorf("airbyte widget_token: %w: empty", ErrMalformedToken)
	}
	c.observer.TokenMinted(KindWidget)
	return &out, nil
}

func (c *Client) operatorToken(ctx context.Context) (*cachedToken, error) {
	if t := c.tokens.fresh(operatorKey, c.now()); t != nil {
		c.observer.TokenCacheHit(KindApplication)
		return t, nil
	}
	return c.mint(ctx, operatorKey, KindApplication, c.mintApplication)
}

func (c *Client) scopedToken(ctx context.Context, workspace string) (*cachedToken, error) {
	return c.scopedTokenIn(ctx, workspace, "")
}

// scopedTokenIn returns the workspace's scoped token; a mint, if needed, names regionID.
func (c *Client) scopedTokenIn(ctx context.Context, workspace, regionID string) (*cachedToken, error) {
	if workspace == "" {
		return nil, errNoWorkspace
	}
	if t := c.tokens.fresh(workspace, c.now()); t != nil {
		c.observer.TokenCacheHit(KindScoped)
		return t, nil
	}
	return c.mint(ctx, workspace, KindScoped, func(ctx context.Context) (*cachedToken, error) {
		return c.mintScoped(ctx, workspace, regionID)
	})
}

// mint runs fn once per cache key however many callers ask at the same time, and caches its token. The
// mint runs on a context detached from any one caller (bounded by mintBudget), so that a caller
// giving up does not fail the others waiting on the same mint.
func (c *Client) mint(ctx context.Context, key, kind string, fn func(context.Context) (*cachedToken, error)) (*cachedToken, error) {
	ch := c.tokens.flight.DoChan(kind+":"+key, func() (any, error) {
		// A caller that saw a stale cache may arrive just after another mint finished.
		if t := c.tokens.fresh(key, c.now()); t != nil {
			c.observer.TokenCacheHit(kind)
			return t, nil
		}
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.mintBudget())
		defer cancel()
		t, err := fn(mctx)
		if err != nil {
			return nil, err
		}
		c.tokens.put(key, t)
		c.observer.TokenMinted(kind)
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*cachedToken), nil
	case <-ctx.Done():
		return nil, &TransportError{Operation: mintOperation(kind), Timeout: errors.Is(ctx.Err(), context.DeadlineExceeded),
			Err: fmt.Errorf("waiting for token: %w", ctx.Err())}
	}
}

// mintBudget bounds one mint, retries included: two attempts and one honoured Retry-After.
func (c *Client) mintBudget() time.Duration { return 2*c.timeout + c.maxRetryAfter }

func mintOperation(kind string) string {
	if kind == KindScoped {
		return "scoped_token"
	}
	return "token"
}

func (c *Client) mintApplication(ctx context.Context) (*cachedToken, error) {
	secretText := c.clientSecret.Reveal()
	body, err := json.Marshal(struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}{c.clientID, secretText})
	if err != nil {
		return nil, fmt.Errorf("airbyte token: %w", err)
	}
	var out TokenResponse
	err = c.do(ctx, &call{op: "token", method: http.MethodPost, path: "/api/v1/account/applications/token",
		body: body, auth: authNone, secrets: []string{secretText}}, &out)
	if err != nil {
		return nil, err
	}
	if out.AccessToken.IsZero() {
		return nil, fmt.Errorf("airbyte token: %w: empty", ErrMalformedToken)
	}
	now := c.now()
	// Expiry is the earlier of expires_in and the JWT's own exp: the API has said 900 s while the
	// JWT expired in 180 s (airbytehq/airbyte#55784).
	expires := now.Add(time.Duration(out.ExpiresIn) * time.Second)
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(out.AccessToken.Reveal(), &claims); err == nil &&
		claims.ExpiresAt != nil && (out.ExpiresIn <= 0 || claims.ExpiresAt.Before(expires)) {
		expires = claims.ExpiresAt.Time
	}
	return &cachedToken{value: out.AccessToken, refreshAt: c.refreshAt(now, expires), orgID: out.OrganizationID}, nil
}

// scopedClaims are the claims of a scoped token the client reads.
type scopedClaims struct {
	jwt.RegisteredClaims
	WorkspaceScope struct {
		WorkspaceID string `json:"workspaceId"`
	} `json:"io.airbyte.auth.workspace_scope"`
	Act struct {
		Sub string `json:"sub"`
	} `json:"act"`
}

func (c *Client) mintScoped(ctx context.Context, workspace, regionID string) (*cachedToken, error) {
	body, err := json.Marshal(ScopedTokenCreateRequest{WorkspaceName: workspace, RegionID: regionID})
	if err != nil {
		return nil, fmt.Errorf("airbyte scoped_token: %w", err)
	}
	var out ScopedTokenCreateResponse
	err = c.do(ctx, &call{op: "scoped_token", method: http.MethodPost,
		path: "/api/v1/account/applications/scoped-token", body: body, auth: authOperator}, &out)
	if err != nil {
		return nil, err
	}
	// The response carries no expiry and the signature is the server's business: read the claims
	// without verifying.
	var claims scopedClaims
	if _, _, err := jwt.NewParser().ParseUnverified(out.Token.Reveal(), &claims); err != nil {
		return nil, fmt.Errorf("airbyte scoped_token: %w: not a JWT", ErrMalformedToken)
	}
	switch {
	case claims.WorkspaceScope.WorkspaceID == "":
		return nil, fmt.Errorf("airbyte scoped_token: %w: no workspace scope", ErrMalformedToken)
	case claims.ExpiresAt == nil:
		return nil, fmt.Errorf("airbyte scoped_token: %w: no exp", ErrMalformedToken)
	}
	// The workspace is the one io.airbyte.auth.workspace_scope names. act.sub is the workspace
	// name on Airbyte's platform, but the documented example token carries a UUID there: a
	// difference is worth a debug line, never a refusal.
	if claims.Act.Sub != "" && claims.Act.Sub != workspace {
		c.log.LogAttrs(ctx, slog.LevelDebug, "scoped token act.sub differs from the workspace name",
			slog.String("workspace_name", workspace), slog.String("act_sub", claims.Act.Sub),
			slog.String("workspace_id", claims.WorkspaceScope.WorkspaceID))
	}
	orgID := c.orgID
	if orgID == "" {
		if op := c.tokens.get(operatorKey); op != nil {
			orgID = op.orgID
		}
	}
	return &cachedToken{
		value:     out.Token,
		refreshAt: c.refreshAt(c.now(), claims.ExpiresAt.Time),
		workspace: WorkspaceRef{ID: claims.WorkspaceScope.WorkspaceID, Name: workspace, OrganizationID: orgID},
	}, nil
}

// refreshAt is when to stop using a token that expires at expires: RefreshMargin early, but never
// more than half its remaining lifetime early, so that a short-lived token is still reused.
func (c *Client) refreshAt(now, expires time.Time) time.Time {
	lifetime := expires.Sub(now)
	if lifetime <= 0 {
		return now
	}
	return expires.Add(-min(c.refreshMargin, lifetime/2))
}

var errNoWorkspace = errors.New("airbyte: workspace name is required")
