package vault

import "time"

// Clock is the time source of the Vault token's life: its expiry, when to renew it, when to
// log in again and how long to wait after a failed login. Tests drive it by hand
// (vaulttest.Clock) so that short leases are tested without waiting for them.
type Clock interface {
	Now() time.Time
	// TimerAt returns a channel that receives once the time is at (at once if it has passed),
	// and a function that stops it. The time is absolute, so that a deadline does not move
	// when the clock does between planning it and setting the timer.
	TimerAt(at time.Time) (<-chan time.Time, func() bool)
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	t := time.NewTimer(time.Until(at))
	return t.C, t.Stop
}
