package airbyte

import (
	"encoding/json"
	"testing"
	"time"
)

func FuzzParseErrorBody(f *testing.F) {
	f.Add(400, []byte(`{"message":"bad","errors":[{"field":"credentials","message":"no scheme","error_code":"value_error","details":{"input":"x"}}]}`))
	f.Add(404, []byte(`{"detail":"Not Found"}`))
	f.Add(422, []byte(`{"detail":[{"loc":["body",0,"connector_type"],"msg":"field required","type":"missing","input":{"token":"x"}}]}`))
	f.Add(500, []byte(`<html>`))
	f.Add(503, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		msg, errs := parseErrorBody(status, body)
		if msg == "" {
			t.Fatalf("empty message for status %d", status)
		}
		for _, e := range errs {
			if e.Details != nil {
				t.Fatal("details must be dropped: they may echo credentials")
			}
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "1", "120", "-5", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		const limit = 30 * time.Second
		if d := parseRetryAfter(v, now, limit); d < 0 || d > limit {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, limit)
		}
	})
}

func FuzzTime(f *testing.F) {
	for _, s := range []string{`"2026-11-21T10:00:00Z"`, `"2026-11-21T10:00:00.123456"`, `"2026-11-21 10:00:00"`, `null`, `""`, `"x"`, `12`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts Time
		if ts.UnmarshalJSON(b) != nil {
			return
		}
		out, err := json.Marshal(ts)
		if err != nil {
			return // years outside RFC 3339's range do not marshal; decoding them must still not panic
		}
		var back Time
		if err := back.UnmarshalJSON(out); err != nil || !back.Equal(ts.Time) {
			t.Fatalf("round trip of %s: %s -> %v (%v)", b, out, back, err)
		}
	})
}
