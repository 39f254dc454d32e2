package client

// OnWaiting makes c call f whenever an Await found no stored verdict and starts to wait, so that a
// test can publish a verdict that only a recheck can find.
func OnWaiting(c *Client, f func(requestID string)) { c.lookedUp = f }
