package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
)

// Await gives up at once only on lookups that waiting cannot fix; the others are retried.
func TestPermanentLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no such stream", &apiError{Code: 404, ErrCode: jsErrStreamNotFound, Description: "stream not found"}, true},
		{"no responders", fmt.Errorf("read results stream X: %w", nats.ErrNoResponders), true},
		{"cluster not available", &apiError{Code: 503, ErrCode: 10008, Description: "JetStream system temporarily unavailable"}, false},
		{"request timeout", fmt.Errorf("read results stream X: %w", context.DeadlineExceeded), false},
		{"connection closed", nats.ErrConnectionClosed, false},
		{"anything else", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := permanent(tc.err); got != tc.want {
				t.Fatalf("permanent(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

// An API error answer is typed, so that permanent can tell it apart.
func TestParseMsgGetErrors(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		none         bool
		errCode      int
	}{
		{"no message", `{"error":{"code":404,"err_code":10037,"description":"no message found"}}`, true, 0},
		{"no stream", `{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`, false, 10059},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMsgGet([]byte(tc.answer))
			var ae *apiError
			switch {
			case tc.none && (m != nil || err != nil):
				t.Fatalf("%+v, %v; want nothing", m, err)
			case !tc.none && (!errors.As(err, &ae) || ae.ErrCode != tc.errCode):
				t.Fatalf("error %v; want API error %d", err, tc.errCode)
			}
		})
	}
}
