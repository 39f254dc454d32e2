package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT claim values, as Airbyte sets them.
const (
	tokenAudience     = "airbyte-server"
	tokenIssuer       = "https://api.airbyte.ai"
	typApplication    = "io.airbyte.auth.application_v1" // [inferred]
	typEmbedded       = "io.airbyte.auth.embedded_v1"
	claimWorkspace    = "io.airbyte.auth.workspace_scope"
	roleOrgAdmin      = "ORGANIZATION_ADMIN"
	roleEmbeddedUser  = "EMBEDDED_END_USER"
	kindApplication   = "application"
	kindScoped        = "scoped"
	kindWidget        = "widget"
	redactedSecretOut = "**********"
)

// applicationClaims are the claims of an operator (application) token.
type applicationClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	Roles     []string         `json:"roles"`
	Type      string           `json:"typ"`
}

type workspaceScope struct {
	WorkspaceID string `json:"workspaceId"`
}

type actor struct {
	Subject string `json:"sub"`
}

// scopedClaims are exactly the claims of a scoped (and widget) token: no iat, nbf or jti.
type scopedClaims struct {
	Audience  string           `json:"aud"`
	Subject   string           `json:"sub"`
	Scope     workspaceScope   `json:"io.airbyte.auth.workspace_scope"`
	Act       actor            `json:"act"`
	Roles     []string         `json:"roles"`
	Issuer    string           `json:"iss"`
	Type      string           `json:"typ"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
}

// verifiedClaims is the union read back when verifying either kind.
type verifiedClaims struct {
	jwt.RegisteredClaims
	Roles []string        `json:"roles"`
	Type  string          `json:"typ"`
	Scope *workspaceScope `json:"io.airbyte.auth.workspace_scope"`
	Act   *actor          `json:"act"`
}

// principal is who made a request.
type principal struct {
	userID string
	// workspace is set for scoped tokens: the only workspace the caller may touch.
	workspace *workspace
}

func (p principal) isOperator() bool { return p.workspace == nil }

func (s *Server) sign(claims jwt.Claims) (string, error) {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

func (c applicationClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c applicationClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c applicationClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c applicationClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c applicationClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c applicationClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

func (c scopedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c scopedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c scopedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c scopedClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c scopedClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c scopedClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

func (s *Server) mintApplicationToken(now time.Time) (string, error) {
	return s.sign(applicationClaims{
		Issuer:    tokenIssuer,
		Subject:   s.userID,
		Audience:  tokenAudience,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.OperatorTTL)),
		Roles:     []string{roleOrgAdmin},
		Type:      typApplication,
	})
}

func (s *Server) mintScopedToken(now time.Time, userID string, ws *workspace) (string, error) {
	return s.sign(scopedClaims{
		Audience:  tokenAudience,
		Subject:   userID,
		Scope:     workspaceScope{WorkspaceID: ws.id},
		Act:       actor{Subject: ws.nameNow()},
		Roles:     []string{roleEmbeddedUser},
		Issuer:    tokenIssuer,
		Type:      typEmbedded,
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.ScopedTTL)),
	})
}

// authError is a failed authentication (401) or authorization (403).
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

func unauthorized(msg string) error { return &authError{status: http.StatusUnauthorized, msg: msg} }
func forbidden(msg string) error    { return &authError{status: http.StatusForbidden, msg: msg} }

// authenticate verifies the bearer token and the optional X-Organization-Id header (once: in
// strict mode requireToken has done it and left the principal in the context).
func (s *Server) authenticate(r *http.Request) (principal, error) {
	if p, ok := r.Context().Value(principalKey{}).(principal); ok {
		return p, nil
	}
	if org := r.Header.Get("X-Organization-Id"); org != "" && !strings.EqualFold(org, s.cfg.OrganizationID) {
		return principal{}, forbidden("the caller does not belong to the organization in X-Organization-Id")
	}
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || strings.TrimSpace(raw) == "" {
		return principal{}, unauthorized("missing bearer token")
	}
	var claims verifiedClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), &claims, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(tokenAudience),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return principal{}, unauthorized("token expired")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return principal{}, unauthorized("invalid token signature")
	case err != nil:
		return principal{}, unauthorized("invalid token")
	}
	switch claims.Type {
	case typApplication:
		return principal{userID: claims.Subject}, nil
	case typEmbedded:
		if claims.Scope == nil || claims.Scope.WorkspaceID == "" {
			return principal{}, unauthorized("invalid token: no workspace scope")
		}
		ws := s.state().workspaceByID(claims.Scope.WorkspaceID)
		if ws == nil {
			// The sandbox was reset since the token was minted: the scope names nothing.
			return principal{}, unauthorized("invalid token: unknown workspace")
		}
		return principal{userID: claims.Subject, workspace: ws}, nil
	default:
		return principal{}, unauthorized("invalid token type")
	}
}

// requireOperator refuses scoped tokens where Airbyte wants an application token.
func requireOperator(p principal) error {
	if !p.isOperator() {
		return forbidden("this operation needs an application token")
	}
	return nil
}

// allowWorkspace refuses a scoped token acting on a workspace other than its own.
// workspaceByIDFor looks a workspace up by id on behalf of p. An unknown id is forbidden to a scoped
// token (it may not learn which workspaces exist) and (nil, nil) for an operator; a known one must be
// p's to use.
func (s *Server) workspaceByIDFor(p principal, id string) (*workspace, error) {
	ws := s.state().workspaceByID(id)
	if ws == nil {
		if !p.isOperator() {
			return nil, forbidden("the token is not scoped to this workspace")
		}
		return nil, nil
	}
	return ws, allowWorkspace(p, ws)
}

func allowWorkspace(p principal, ws *workspace) error {
	if p.isOperator() || p.workspace == ws {
		return nil
	}
	return forbidden("the token is not scoped to this workspace")
}
