package main

import (
	"encoding/json"
	"testing"
)

// FuzzParseResult: any body either parses into a result with a request id and a message, or is
// an error; it never panics. What parses survives a round trip through the product's shape.
func FuzzParseResult(f *testing.F) {
	f.Add([]byte(`{"type":"end_user_action_result","message":"source_created","request_id":"req-1","attempts":1,"data":{"id":"c-1"}}`))
	f.Add([]byte(`{"message":"source_create_error","request_id":"req-2","attempts":9,"error":{"code":"secret_not_found","retryable":false}}`))
	f.Add([]byte(`{"message":"source_created","request_id":"req-3","data":{"id":"c"},"error":{"code":"x"}}`))
	f.Add([]byte(`{"message":"","request_id":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseResult(7, body)
		if err != nil {
			return
		}
		if r.RequestID == "" || r.Message == "" || r.Seq != 7 {
			t.Fatalf("parsed %+v from %q", r, body)
		}
		if (r.ConnectorID != "") && (r.ErrorCode != "") {
			t.Fatalf("both a connector and an error code from %q", body)
		}
		again, err := json.Marshal(map[string]any{"message": r.Message, "request_id": r.RequestID, "attempts": r.Attempts,
			"data": map[string]any{"id": r.ConnectorID}})
		if err != nil {
			t.Fatal(err)
		}
		if r2, err := parseResult(7, again); err != nil || r2.RequestID != r.RequestID || r2.Message != r.Message {
			t.Fatalf("round trip of %+v: %+v, %v", r, r2, err)
		}
	})
}
