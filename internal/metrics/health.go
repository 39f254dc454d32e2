package metrics

import (
	"slices"
	"sync"
)

// Readiness conditions the worker sets. NewHealth starts with ConditionNATS and ConditionConsumer
// failing, so a replica is not ready until it has connected and bound its consumer.
const (
	ConditionNATS     = "nats"     // the NATS connection is up
	ConditionConsumer = "consumer" // the JetStream consumer is bound
	ConditionDraining = "draining" // ok until shutdown starts; false while draining
	// ConditionVault holds while the Vault backend has a valid token; set only when Vault is
	// configured.
	ConditionVault = "vault"
	// ConditionAirbyteClientSecret holds once the Airbyte client secret was read from the secret
	// store; set only with --airbyte-client-secret-ref.
	ConditionAirbyteClientSecret = "airbyte_client_secret"
)

// Health holds the readiness conditions served by /readyz. It is safe for concurrent use.
type Health struct {
	mu         sync.Mutex
	conditions map[string]conditionState
}

type conditionState struct {
	ok     bool
	reason string
}

// NewHealth returns a Health that is not ready until the worker reports NATS connected and the
// consumer bound.
func NewHealth() *Health {
	return &Health{conditions: map[string]conditionState{
		ConditionNATS:     {reason: "not connected yet"},
		ConditionConsumer: {reason: "not bound yet"},
	}}
}

// Set records a condition. reason says why it fails (e.g. "disconnected") and is ignored when ok; it is
// served as text by /readyz, so it must not carry secrets or tenant data.
func (h *Health) Set(condition string, ok bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		reason = ""
	} else if reason == "" {
		reason = "not ready"
	}
	h.conditions[condition] = conditionState{ok: ok, reason: reason}
}

// Ready reports whether every condition holds and, if not, the failing ones as "condition: reason",
// sorted.
func (h *Health) Ready() (bool, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var failing []string
	for name, c := range h.conditions {
		if !c.ok {
			failing = append(failing, name+": "+c.reason)
		}
	}
	slices.Sort(failing)
	return len(failing) == 0, failing
}
