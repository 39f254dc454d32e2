package event

import (
	"time"

	"github.com/provisioner-dev/provisioner/contract"
)

// ErrorResult builds the error result of a request.
func ErrorResult(kind contract.Kind, requestID, workspace string, attempts int, code contract.Code, msg string, retryable bool, now time.Time) *contract.Result {
	if msg == "" {
		msg = string(code)
	}
	if len(msg) > 2048 {
		msg = msg[:2045] + "..."
	}
	return &contract.Result{
		Type:          contract.ResultType,
		Message:       kind.ErrorMessage(),
		Error:         &contract.ErrorBody{Code: code, Message: msg, Retryable: retryable},
		RequestID:     requestID,
		WorkspaceName: workspace,
		Attempts:      max(attempts, 1),
		Revision:      1,
		ProducedAt:    now.UTC(),
	}
}
