package airbyte

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// authKind is the token a call carries.
type authKind int

const (
	authNone     authKind = iota // the application token mint itself
	authOperator                 // the organization-wide application token
	authScoped                   // the scoped token of call.workspace
)

// call describes one logical API operation; do turns it into one or more HTTP attempts.
type call struct {
	op        string // operation name, see Operation
	method    string
	path      string // under the base URL, starting with /api/v1/
	query     url.Values
	rawQuery  string // sent as it is, instead of query (a next link's)
	body      []byte // nil for none
	auth      authKind
	workspace string // for authScoped
	// createsResource marks the non-idempotent creates: replaying one after the server may have
	// acted on it could create a duplicate, since the API has no idempotency key.
	createsResource bool
	// secrets are plain texts this call carries (credentials, the client secret); they are
	// scrubbed from every response body before it is parsed.
	secrets []string
}

// attemptResult is what one HTTP attempt produced.
type attemptResult struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// do runs c's retry policy around one operation and decodes a 2xx body into out (when non-nil).
func (c *Client) do(ctx context.Context, cl *call, out any) error {
	ctx = context.WithValue(ctx, operationKey{}, cl.op)
	bo := c.newBackoff()
	bo.Reset()
	replayed := false
	for attempt := 1; ; attempt++ {
		token, err := c.bearer(ctx, cl)
		if err != nil {
			return err
		}
		// The client-side limit waits within the caller's context; when the caller cannot wait that
		// long, Wait fails at once and so does the call, without anything sent.
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return &TransportError{Operation: cl.op, Timeout: true, Err: fmt.Errorf("client-side rate limit: %w", err)}
			}
		}
		res, err := c.attempt(ctx, cl, token, attempt)
		if err == nil {
			if res.status >= 200 && res.status < 300 {
				return c.decode(cl, res.body, out)
			}
			// 401: the token was revoked or expired early. Mint a new one once and replay once;
			// the server rejected the request before acting on it, so even a create may replay.
			if res.status == http.StatusUnauthorized && cl.auth != authNone && !replayed {
				replayed = true
				c.tokens.invalidate(c.tokenKey(cl), token)
				continue
			}
			err = c.apiError(cl, res)
		}
		if !c.shouldRetry(cl, err) {
			return err
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			return err
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			wait = apiErr.RetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err // waiting would outlive the caller: give it the error now
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// shouldRetry is the retry policy. Creates are replayed only when the server certainly did not act:
// a 429, or a failure before the request was written (dial, TLS, waiting for a pooled connection).
// Everything else about a create is ambiguous and goes back to the caller, which must list and
// adopt before creating again.
func (c *Client) shouldRetry(cl *call, err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if apiErr.StatusCode == http.StatusTooManyRequests {
			return true
		}
		return !cl.createsResource && apiErr.Retryable()
	}
	var tErr *TransportError
	if errors.As(err, &tErr) {
		if tErr.decode {
			return false // a server that answers garbage will answer it again
		}
		return !tErr.ambiguous
	}
	return false
}

// attempt sends one HTTP request and reads its answer. It returns an error only when no answer came.
func (c *Client) attempt(ctx context.Context, cl *call, token string, attempt int) (attemptResult, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})

	// cl.path is already escaped (ids go through url.PathEscape), so it is appended as text.
	target := c.base.String() + cl.path
	switch {
	case cl.rawQuery != "":
		target += "?" + cl.rawQuery
	case len(cl.query) > 0:
		target += "?" + cl.query.Encode()
	}
	var body io.Reader = http.NoBody
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, body)
	if err != nil {
		return attemptResult{}, fmt.Errorf("airbyte %s: %w", cl.op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.orgID != "" {
		req.Header.Set("X-Organization-Id", c.orgID)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "airbyte call failed", slog.String("operation", cl.op),
			slog.String("method", cl.method), slog.String("path", cl.path), slog.Int("attempt", attempt),
			slog.Duration("duration", time.Since(start)), slog.String("error", stripURL(err).Error()))
		return attemptResult{}, &TransportError{
			Operation: cl.op,
			Timeout:   isTimeout(err),
			Err:       stripURL(err),
			ambiguous: cl.createsResource && wrote.Load(),
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	drain(resp.Body)
	c.log.LogAttrs(ctx, slog.LevelDebug, "airbyte call", slog.String("operation", cl.op),
		slog.String("method", cl.method), slog.String("path", cl.path), slog.Int("status", resp.StatusCode),
		slog.Int("attempt", attempt), slog.Duration("duration", time.Since(start)))
	if err != nil {
		return attemptResult{}, &TransportError{
			Operation: cl.op,
			Timeout:   isTimeout(err),
			Err:       fmt.Errorf("read response: %w", err),
			ambiguous: cl.createsResource,
		}
	}
	res := attemptResult{status: resp.StatusCode, body: data}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), c.maxRetryAfter)
	}
	return res, nil
}

// apiError turns a non-2xx answer into an *APIError, with any secret of the call scrubbed from it.
func (c *Client) apiError(cl *call, res attemptResult) *APIError {
	msg, errs := parseErrorBody(res.status, scrub(res.body, cl.secrets))
	return &APIError{
		Operation:  cl.op,
		StatusCode: res.status,
		Message:    msg,
		Errors:     errs,
		RetryAfter: res.retryAfter,
		ambiguous:  cl.createsResource && res.status >= 500,
	}
}

// decode reads a 2xx body into out.
func (c *Client) decode(cl *call, body []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(scrub(body, cl.secrets), out); err != nil {
		// The call succeeded but its answer is unreadable: for a create, the resource exists.
		return &TransportError{Operation: cl.op, Err: fmt.Errorf("decode response: %w", err),
			ambiguous: cl.createsResource, decode: true}
	}
	return nil
}

// bearer returns the token cl authenticates with, "" for none.
func (c *Client) bearer(ctx context.Context, cl *call) (string, error) {
	switch cl.auth {
	case authOperator:
		t, err := c.operatorToken(ctx)
		if err != nil {
			return "", err
		}
		return t.value.Reveal(), nil
	case authScoped:
		t, err := c.scopedToken(ctx, cl.workspace)
		if err != nil {
			return "", err
		}
		return t.value.Reveal(), nil
	}
	return "", nil
}

func (c *Client) tokenKey(cl *call) string {
	if cl.auth == authScoped {
		return cl.workspace
	}
	return operatorKey
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// stripURL drops *url.Error's method and URL from err: the URL is logged as a path already, and a
// misconfigured base URL could carry userinfo.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// minScrubLen is the shortest secret scrub replaces: shorter ones would mangle the JSON around them,
// and real credentials are never that short.
const minScrubLen = 4

// scrub replaces every occurrence of a secret in body (raw, and as a JSON string escapes it) with
// the redaction marker. It copies only when something matched.
func scrub(body []byte, secrets []string) []byte {
	for _, s := range secrets {
		if len(s) < minScrubLen {
			continue
		}
		body = replaceAll(body, s)
		if q, err := json.Marshal(s); err == nil {
			if esc := string(q[1 : len(q)-1]); esc != s {
				body = replaceAll(body, esc)
			}
		}
	}
	return body
}

func replaceAll(body []byte, s string) []byte {
	if !bytes.Contains(body, []byte(s)) {
		return body
	}
	return []byte(strings.ReplaceAll(string(body), s, "[REDACTED]"))
}
