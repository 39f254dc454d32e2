package airbyte

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ApiErrorResponse is Airbyte's error body. FastAPI paths may answer {"detail": ...} instead;
// both are read into an APIError.
type ApiErrorResponse struct {
	Message string     `json:"message,omitempty"`
	Errors  []ApiError `json:"errors,omitempty"`
}

// ApiError is one entry of an error body's "errors" list.
type ApiError struct {
	Field     string          `json:"field,omitempty"`
	Message   string          `json:"message,omitempty"`
	ErrorCode string          `json:"error_code,omitempty"`
	Details   json.RawMessage `json:"details,omitempty"`
}

// APIError is a non-2xx answer from the API.
type APIError struct {
	Operation  string // the client operation, e.g. "connectors_create"
	StatusCode int
	Message    string     // from "detail", else "message", else the status text
	Errors     []ApiError // field-level errors, when the body has them
	RetryAfter time.Duration
	// ambiguous: the request reached a server that may have acted on it before failing.
	ambiguous bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "airbyte %s: %d %s", e.Operation, e.StatusCode, statusText(e.StatusCode))
	if e.Message != "" && e.Message != statusText(e.StatusCode) {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var parts []string
	for _, fe := range e.Errors {
		switch {
		case fe.Message == "" || fe.Message == e.Message:
		case fe.Field != "":
			parts = append(parts, fe.Field+": "+fe.Message)
		default:
			parts = append(parts, fe.Message)
		}
	}
	if len(parts) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(parts, "; "))
		b.WriteString(")")
	}
	return b.String()
}

// Retryable reports whether trying again later may succeed: 429, 502, 503 and 504, and any
// ambiguous create (which must be listed and adopted before it is tried again). 400, 401 (after the
// client's own refresh and replay), 403, 404, 422 and 500 are otherwise permanent.
func (e *APIError) Retryable() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return e.ambiguous
}

// Ambiguous reports whether a non-idempotent call (connector or source create) failed after the
// server received it, so that the resource may exist although the call failed. List and adopt
// before creating again.
func (e *APIError) Ambiguous() bool { return e.ambiguous }

// TransportError is a failure to get an answer at all: a dial or TLS error, a dropped connection,
// a per-attempt timeout, or a body that could not be read or decoded.
type TransportError struct {
	Operation string
	Timeout   bool // the per-attempt timeout or the caller's deadline expired
	Err       error
	ambiguous bool
	decode    bool // the answer came but could not be decoded
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("airbyte %s: %v", e.Operation, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retryable is always true: the network may recover.
func (e *TransportError) Retryable() bool { return true }

// Ambiguous reports whether a non-idempotent call (connector or source create) may have reached
// the server: the request was written before the failure. List and adopt before creating again.
func (e *TransportError) Ambiguous() bool { return e.ambiguous }

// IsRetryable reports whether err, anywhere in its chain, is an APIError or TransportError that is
// worth trying again later.
func IsRetryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// IsAmbiguous reports whether err says a create may have happened although it failed.
func IsAmbiguous(err error) bool {
	var a interface{ Ambiguous() bool }
	return errors.As(err, &a) && a.Ambiguous()
}

// parseErrorBody reads an error body: FastAPI's {"detail": "..."} or {"detail": [{loc, msg, type}]}
// first, then Airbyte's {"message", "errors"}. Anything else gives the status text. Values echoed
// by validation errors ("input") are dropped: they may be credentials.
func parseErrorBody(status int, body []byte) (string, []ApiError) {
	var raw struct {
		Detail  json.RawMessage `json:"detail"`
		Message string          `json:"message"`
		Errors  []ApiError      `json:"errors"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return statusText(status), nil
	}
	msg, errs := raw.Message, raw.Errors
	if len(raw.Detail) > 0 {
		var s string
		var items []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		}
		switch {
		case json.Unmarshal(raw.Detail, &s) == nil && s != "":
			msg = s
		case json.Unmarshal(raw.Detail, &items) == nil && len(items) > 0:
			for _, it := range items {
				loc := make([]string, len(it.Loc))
				for i, l := range it.Loc {
					loc[i] = fmt.Sprint(l)
				}
				errs = append(errs, ApiError{Field: strings.Join(loc, "."), Message: it.Msg, ErrorCode: it.Type})
			}
			if msg == "" {
				msg = "validation error"
			}
		}
	}
	for i := range errs {
		errs[i].Details = nil
	}
	if msg == "" {
		msg = statusText(status)
	}
	return msg, errs
}

func statusText(status int) string {
	if s := http.StatusText(status); s != "" {
		return s
	}
	return "unexpected status"
}

// parseRetryAfter reads Retry-After as whole seconds or an HTTP date, capped at max.
func parseRetryAfter(v string, now time.Time, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(limit/time.Second)+1 {
			return limit
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), limit)
}
