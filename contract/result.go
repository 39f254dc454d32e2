package contract

import (
	"encoding/json"
	"strconv"
	"time"
)

// ResultType is the type of every result, as in the Airbyte widget's messages.
const ResultType = "end_user_action_result"

// RedactedCredentials replaces the credentials in a result's replication_config.
const RedactedCredentials = "**REDACTED**"

// Result is a result event (a request's verdict): the body mirrors the widget's
// end_user_action_result message, plus correlation.
type Result struct {
	Type          string          `json:"type"`
	Message       string          `json:"message"`
	Data          json.RawMessage `json:"data,omitempty"`
	Error         *ErrorBody      `json:"error,omitempty"`
	RequestID     string          `json:"request_id"`
	WorkspaceName string          `json:"workspace_name,omitempty"`
	WorkspaceID   string          `json:"workspace_id,omitempty"`
	Attempts      int             `json:"attempts"`
	// Revision orders the verdicts of one request id: 1 for its first; a replayed dead letter's
	// verdict is one higher. The highest revision per request id wins.
	Revision int `json:"revision"`
	// ReplacedID is, on source_updated, the connector an Agent Engine connector's update replaced.
	ReplacedID string `json:"replaced_id,omitempty"`
	// AlreadyAbsent is, on source_deleted, whether there was no connector to delete.
	AlreadyAbsent *bool     `json:"already_absent,omitempty"`
	ProducedAt    time.Time `json:"produced_at,omitzero"` // always set by the worker
}

// ErrorBody is the error of a failed request.
type ErrorBody struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// MsgID is the Nats-Msg-Id of a result: JetStream drops a second publish with the same id, so a
// re-published result (after a redelivery) is stored once, while a later revision is stored too.
func (r *Result) MsgID() string {
	if r.Revision > 1 {
		return r.RequestID + ":" + r.Message + ":" + strconv.Itoa(r.Revision)
	}
	return r.RequestID + ":" + r.Message
}

// Failed reports whether the result is an error result.
func (r *Result) Failed() bool { return r.Error != nil }
