package client

import (
	"testing"
)

// Whatever the API answers, parsing it and weighing it as a verdict neither panics nor takes another
// request's result.
func FuzzParseMsgGet(f *testing.F) {
	for _, s := range []string{
		`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"p.results.source_created.r1","seq":7,"data":"eyJyZXF1ZXN0X2lkIjoicjEiLCJtZXNzYWdlIjoic291cmNlX2NyZWF0ZWQifQ==","time":"2026-12-01T10:00:00Z"}}`,
		`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`,
		`{"error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}`,
		`{}`, `null`, `[]`, `{"message":{"data":"not base64"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMsgGet(data)
		if err != nil || m == nil {
			return
		}
		var w waiter
		if w.consider(m, "r1") && w.best.RequestID != "r1" {
			t.Fatalf("kept %q for r1", w.best.RequestID)
		}
	})
}
