package event_test

import (
	"encoding/json"
	"testing"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

// BenchmarkDecode measures decoding and validating one request, the first thing a worker does with
// every message.
func BenchmarkDecode(b *testing.B) {
	d := newDecoder(b)
	for _, bc := range []struct {
		name string
		kind contract.Kind
		body string
	}{
		{"credentials submitted", contract.KindCredentialsSubmitted,
			`{"id":"req-7f3c0001","workspace_name":"acme","connector_type":"github","name":"GitHub","credentials_ref":"vault:secret/data/customers/acme/github","replication_config":{"repositories":["acme/app"]},"occurred_at":"2026-11-21T10:00:00Z"}`},
		{"credentials submitted in a cloudevent", contract.KindCredentialsSubmitted,
			`{"specversion":"1.0","type":"dev.provisioner.credentials.submitted","source":"app","id":"ce-1","data":{"id":"req-7f3c0001","workspace_name":"acme","connector_type":"github","credentials_ref":"file:acme/github.json"}}`},
		{"customer onboarded", contract.KindCustomerOnboarded,
			`{"id":"onb-1","workspace_name":"acme","occurred_at":"2026-11-21T10:00:00Z"}`},
		{"schema violation", contract.KindCredentialsSubmitted,
			`{"id":"req-inline","workspace_name":"acme","connector_type":"github","credentials_ref":"file:acme/github.json","credentials":{"token":"x"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = d.Decode(bc.kind, body)
			}
		})
	}
}

// BenchmarkResultEncode measures encoding a result body, once per request before it is published.
func BenchmarkResultEncode(b *testing.B) {
	created := &contract.Result{
		Type: contract.ResultType, Message: contract.MessageSourceCreated,
		Data:      json.RawMessage(`{"id":"7b3e4a52-7c55-4d8c-9b44-0a2f3f1f6a10","name":"GitHub","source_template":{"source_definition_id":"ef69ef6e-aa7f-4af1-a01d-ef775033524e","mode":"DIRECT"},"replication_config":{"repositories":["acme/app"],"credentials":"**REDACTED**"},"created_at":"2026-11-21T10:00:01Z","updated_at":"2026-11-21T10:00:01Z"}`),
		RequestID: "req-7f3c0001", WorkspaceName: "acme", WorkspaceID: "0c5e8f0e-1c1b-4f7e-8a55-2f8d8d1b6f11", Attempts: 1, ProducedAt: fixedNow,
	}
	failed := event.ErrorResult(contract.KindCredentialsSubmitted, "req-7f3c0002", "acme", 1, contract.CodeSecretNotFound, "secret file:acme/github.json not found", false, fixedNow)
	for _, bc := range []struct {
		name string
		res  *contract.Result
	}{
		{"source created", created},
		{"error", failed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(bc.res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
