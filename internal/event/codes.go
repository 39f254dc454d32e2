package event

import (
	"errors"

	"github.com/provisioner-dev/provisioner/contract"
)

// CodedError is an error that knows its result code and whether a later attempt may succeed.
type CodedError struct {
	Code      contract.Code
	Retryable bool
	Err       error
}

func (e *CodedError) Error() string { return string(e.Code) + ": " + e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// Coded wraps err with a code.
func Coded(code contract.Code, retryable bool, err error) *CodedError {
	return &CodedError{Code: code, Retryable: retryable, Err: err}
}

// CodeOf returns the code of err, or internal_error.
func CodeOf(err error) (contract.Code, bool) {
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code, ce.Retryable
	}
	return contract.CodeInternal, false
}
