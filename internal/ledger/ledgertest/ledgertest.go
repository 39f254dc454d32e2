// Package ledgertest holds test doubles for the ledger's KV: a bucket whose writes land but whose
// replies are lost, as when the KV's leader changes mid-write.
package ledgertest

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/ledger"
)

// ErrReplyLost is what a write whose reply was dropped returns.
var ErrReplyLost = errors.New("ledgertest: no response from the key-value store (the write was applied)")

// LostReplies wraps a real bucket. Each write is applied to the bucket; while Drop says so for the
// write, its reply is then replaced by ErrReplyLost (and, if Fail is also set, the write is not
// applied at all: a failure before it reached the leader).
type LostReplies struct {
	jetstream.KeyValue

	mu    sync.Mutex
	drop  func(op, key string, value []byte) bool
	fail  func(op, key string, value []byte) bool
	count int
}

var _ ledger.KV = (*LostReplies)(nil)

// NewLostReplies wraps kv; no reply is lost until Drop is called.
func NewLostReplies(kv jetstream.KeyValue) *LostReplies { return &LostReplies{KeyValue: kv} }

// Drop sets which writes ("create" or "update") lose their reply after landing; nil = none.
func (l *LostReplies) Drop(f func(op, key string, value []byte) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop = f
}

// Fail sets which writes fail without being applied; nil = none.
func (l *LostReplies) Fail(f func(op, key string, value []byte) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = f
}

// Dropped is how many replies were lost so far.
func (l *LostReplies) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

func (l *LostReplies) decide(op, key string, value []byte) (fail, drop bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil && l.fail(op, key, value) {
		return true, false
	}
	if l.drop != nil && l.drop(op, key, value) {
		l.count++
		return false, true
	}
	return false, false
}

// Create implements ledger.KV.
func (l *LostReplies) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	fail, drop := l.decide("create", key, value)
	if fail {
		return 0, ErrReplyLost
	}
	rev, err := l.KeyValue.Create(ctx, key, value, opts...)
	if err == nil && drop {
		return 0, ErrReplyLost
	}
	return rev, err
}

// Update implements ledger.KV.
func (l *LostReplies) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	fail, drop := l.decide("update", key, value)
	if fail {
		return 0, ErrReplyLost
	}
	rev, err := l.KeyValue.Update(ctx, key, value, revision)
	if err == nil && drop {
		return 0, ErrReplyLost
	}
	return rev, err
}
