package client

import (
	"errors"
	"fmt"

	"github.com/provisioner-dev/provisioner/contract"
)

// ErrTimeout is matched (errors.Is) by the error of an Await whose context's deadline passed before
// the verdict came. The request may still be processed; Await again to learn its verdict.
var ErrTimeout = errors.New("no verdict before the deadline")

// ResultError is the error Await returns with an error verdict (error code, message, retryable).
// Await returns the verdict too.
type ResultError struct {
	RequestID string
	Message   string        // the result message, e.g. source_create_error
	Code      contract.Code // from the closed list, e.g. contract.CodeSecretNotFound
	Detail    string        // the error's message
	Retryable bool          // a later request may succeed without a change
	Result    *contract.Result
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("request %s ended in %s: %s: %s", e.RequestID, e.Message, e.Code, e.Detail)
}

// InvalidRequestError is a request that breaks its JSON Schema (or is not JSON); nothing was published.
type InvalidRequestError struct {
	Code contract.Code // invalid_json, schema_violation or unsupported_subject
	Err  error
}

func (e *InvalidRequestError) Error() string { return "invalid request: " + e.Err.Error() }
func (e *InvalidRequestError) Unwrap() error { return e.Err }

// verdict returns r with a *ResultError when it is an error result.
func verdict(r *contract.Result) (*contract.Result, error) {
	if r.Error == nil {
		return r, nil
	}
	return r, &ResultError{
		RequestID: r.RequestID, Message: r.Message, Code: r.Error.Code, Detail: r.Error.Message,
		Retryable: r.Error.Retryable, Result: r,
	}
}
