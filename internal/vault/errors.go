package vault

import (
	"fmt"
	"strings"
)

// Error codes carried by result events. They are part of the event contract: never rename one.
const (
	CodeInvalidRef         = "invalid_secret_ref"
	CodeForbiddenRef       = "forbidden_secret_ref"
	CodeNotFound           = "secret_not_found"
	CodePermissionDenied   = "secret_permission_denied"
	CodeUnavailable        = "secret_backend_unavailable"
	CodeInvalidCredentials = "invalid_credentials"
)

// RefError reports a reference that does not follow the documented syntax, or one this store
// cannot serve. It never quotes the rejected input: a malformed reference is sometimes a secret
// pasted into the wrong field.
type RefError struct {
	Reason string
}

func (e *RefError) Error() string   { return "invalid secret reference: " + e.Reason }
func (e *RefError) Code() string    { return CodeInvalidRef }
func (e *RefError) Retryable() bool { return false }

// ForbiddenError reports a reference outside the path the workspace's policy allows.
type ForbiddenError struct {
	Ref       Ref
	Workspace string
	Reason    string
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("secret reference %s is forbidden for workspace %q: %s", e.Ref, e.Workspace, e.Reason)
}
func (e *ForbiddenError) Code() string    { return CodeForbiddenRef }
func (e *ForbiddenError) Retryable() bool { return false }

// NotFoundError reports a secret that does not exist: a missing file, variable or field, a path
// Vault never had, or a version that was deleted or destroyed.
type NotFoundError struct {
	Ref    Ref
	Detail string
}

func (e *NotFoundError) Error() string {
	return joinDetail("secret "+e.Ref.String()+" not found", e.Detail)
}
func (e *NotFoundError) Code() string    { return CodeNotFound }
func (e *NotFoundError) Retryable() bool { return false }

// PermissionError reports a secret the provisioner is not allowed to read (Vault 403, an
// unreadable file, a file reached through a symlink leaving the directory).
type PermissionError struct {
	Ref    Ref
	Detail string
}

func (e *PermissionError) Error() string {
	return joinDetail("permission denied reading secret "+e.Ref.String(), e.Detail)
}
func (e *PermissionError) Code() string    { return CodePermissionDenied }
func (e *PermissionError) Retryable() bool { return false }

// UnavailableError reports a backend that could not answer now (sealed, unreachable, 5xx, 429,
// not logged in yet). It is the one secret error worth retrying.
type UnavailableError struct {
	Ref    Ref
	Detail string
	// Err is the cause when it is safe to show (transport errors name the URL, never a secret).
	Err error
}

func (e *UnavailableError) Error() string {
	msg := joinDetail("secret backend unavailable for "+e.Ref.String(), e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}
func (e *UnavailableError) Unwrap() error   { return e.Err }
func (e *UnavailableError) Code() string    { return CodeUnavailable }
func (e *UnavailableError) Retryable() bool { return true }

// InvalidCredentialsError reports a secret that is not an Airbyte credentials object. It names
// field names only, never values.
type InvalidCredentialsError struct {
	Ref Ref
	// Missing lists the credential fields that are absent or empty.
	Missing []string
	Reason  string
}

func (e *InvalidCredentialsError) Error() string {
	msg := "secret " + e.Ref.String() + " is not valid credentials"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if len(e.Missing) > 0 {
		msg += ": missing or empty " + strings.Join(e.Missing, ", ")
	}
	return msg
}
func (e *InvalidCredentialsError) Code() string    { return CodeInvalidCredentials }
func (e *InvalidCredentialsError) Retryable() bool { return false }

func joinDetail(msg, detail string) string {
	if detail == "" {
		return msg
	}
	return msg + " (" + detail + ")"
}
