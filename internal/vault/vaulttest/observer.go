package vaulttest

import (
	"slices"
	"sync"

	"github.com/provisioner-dev/provisioner/internal/vault"
)

// Observer records what a vault backend reports (vault.Observer).
type Observer struct {
	mu       sync.Mutex
	statuses []vault.Status
	logins   []bool
}

// VaultStatus records a status.
func (o *Observer) VaultStatus(s vault.Status) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses = append(o.statuses, s)
}

// VaultLogin records a login attempt.
func (o *Observer) VaultLogin(ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logins = append(o.logins, ok)
}

// Statuses returns every status reported, in order.
func (o *Observer) Statuses() []vault.Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.statuses)
}

// Last returns the last status reported (the zero Status before any).
func (o *Observer) Last() vault.Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.statuses) == 0 {
		return vault.Status{}
	}
	return o.statuses[len(o.statuses)-1]
}

// Logins returns the outcome of every login attempt, in order.
func (o *Observer) Logins() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.logins)
}
