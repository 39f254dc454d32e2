package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// JetStream API error codes that mean "not now" rather than "never": a cluster without a leader
// for the stream, the consumer or the meta group, or short of a peer while a node restarts.
var transientJSErrorCodes = map[jetstream.ErrorCode]bool{
	10008: true, // JSClusterNotAvailErr: JetStream system temporarily unavailable
	10005: true, // JSClusterNoPeersErr: no suitable peers (a node is down)
	10004: true, // JSClusterIncompleteErr: incomplete results
	10118: true, // JSStreamOfflineErr
	10119: true, // JSConsumerOfflineErr
	10163: true, // JSStreamExpectedLastSeqPerSubjectNotReady
	10194: true, // JSStreamOfflineReasonErrF
	10195: true, // JSConsumerOfflineReasonErrF
}

// NATSUnavailable reports whether err is JetStream or its KV store being briefly unreachable — a
// leader election, a restarting node, a reconnecting client, a call that timed out — rather than a
// refusal that a later attempt would meet again. Decided from the errors' types and values only.
func NATSUnavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, transient := range []error{
		jetstream.ErrNoStreamResponse, jetstream.ErrNoHeartbeat, jetstream.ErrServerShutdown,
		jetstream.ErrConsumerLeadershipChanged,
		nats.ErrTimeout, nats.ErrNoResponders, nats.ErrDisconnected, nats.ErrConnectionReconnecting,
		nats.ErrNoServers, context.DeadlineExceeded,
	} {
		if errors.Is(err, transient) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return transientJSErrorCodes[apiErr.ErrorCode] || apiErr.Code == 503
	}
	return false
}

// classifyNATS gives a failed ledger (JetStream KV) call its result code: nats_unavailable
// (retryable) when NATS was briefly unavailable, else internal_error.
func classifyNATS(op string, err error) error {
	var ce *event.CodedError
	if errors.As(err, &ce) {
		return err
	}
	if NATSUnavailable(err) {
		return event.Coded(contract.CodeNATSUnavailable, true, fmt.Errorf("%s: %w", op, err))
	}
	return event.Coded(contract.CodeInternal, false, fmt.Errorf("%s: %w", op, err))
}
