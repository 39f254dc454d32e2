package app_test

import (
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/app"
)

// A --nats-url may list several servers, each with its own user info: none of it may reach a log
// line or an error.
func TestRedactURLHidesEveryServersUserInfo(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                          "nats://127.0.0.1:4222",
		"nats://u:pw1@a:4222":                            "nats://[REDACTED]@a:4222",
		"nats://u:pw1@a:4222,nats://u:pw2@b:4222":        "nats://[REDACTED]@a:4222,nats://[REDACTED]@b:4222",
		"nats://a:4222, tls://tok2@b:4222,nats://c:4222": "nats://a:4222, tls://[REDACTED]@b:4222,nats://c:4222",
		"nats://u:p@ss@a:4222":                           "nats://[REDACTED]@a:4222",
	} {
		got := app.RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		for _, pw := range []string{"pw1", "pw2", "tok2", "p@ss"} {
			if strings.Contains(got, pw) {
				t.Errorf("RedactURL(%q) = %q keeps %q", in, got, pw)
			}
		}
	}
}
