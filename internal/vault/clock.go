package vault

import "time"

// Clock is the time source of the Vault token's life: its expiry, when to renew it, when to
// log in again and how long to wait after a failed login. Tests drive it by hand
// (vaulttest.Clock) so that short leases are tested without waiting for them.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a function that stops it.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
