package event_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

func newDecoder(t testing.TB) *event.Decoder {
	t.Helper()
	d, err := event.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecode(t *testing.T) {
	d := newDecoder(t)
	for _, tc := range []struct {
		name     string
		kind     contract.Kind
		body     string
		wantCode contract.Code // "" = valid
		check    func(t *testing.T, r event.Request)
	}{
		{
			name: "credentials submitted",
			kind: contract.KindCredentialsSubmitted,
			body: `{"id":"r1","workspace_name":"acme","connector_type":"GitHub","credentials_ref":"file:acme/gh.json","replication_config":{"repositories":["acme/app"]}}`,
			check: func(t *testing.T, r event.Request) {
				c := r.CredentialsSubmitted
				if c == nil || c.ID != "r1" || c.ConnectorKind() != "type:github" || c.ConnectorName() != "GitHub" {
					t.Fatalf("got %+v", c)
				}
				if string(c.ReplicationConfig) != `{"repositories":["acme/app"]}` {
					t.Fatalf("replication_config %s", c.ReplicationConfig)
				}
			},
		},
		{
			name: "cloudevents envelope",
			kind: contract.KindCustomerOnboarded,
			body: `{"specversion":"1.0","type":"customer.onboarded","source":"app","id":"ce-1","data":{"id":"r2","workspace_name":"globex"}}`,
			check: func(t *testing.T, r event.Request) {
				if r.ID() != "r2" || r.WorkspaceName() != "globex" {
					t.Fatalf("got %+v", r.CustomerOnboarded)
				}
			},
		},
		{name: "not json", kind: contract.KindCredentialsSubmitted, body: `{"id":`, wantCode: contract.CodeInvalidJSON},
		{name: "empty", kind: contract.KindCredentialsSubmitted, body: ``, wantCode: contract.CodeInvalidJSON},
		{name: "array", kind: contract.KindCustomerOnboarded, body: `[]`, wantCode: contract.CodeSchemaViolation},
		{name: "inline credentials", kind: contract.KindCredentialsSubmitted, body: `{"id":"r","workspace_name":"a","connector_type":"github","credentials_ref":"env:X","credentials":{"token":"t"}}`, wantCode: contract.CodeSchemaViolation},
		{name: "unknown subject", kind: contract.KindUnknown, body: `{}`, wantCode: contract.CodeUnsupportedSubject},
		{name: "definition id normalised", kind: contract.KindCredentialsSubmitted, body: `{"id":"r","workspace_name":"a","definition_id":"EF69EF6E-AA7F-4AF1-A01D-EF775033524E","credentials_ref":"env:X"}`,
			check: func(t *testing.T, r event.Request) {
				if got := r.CredentialsSubmitted.ConnectorKind(); got != "definition:ef69ef6e-aa7f-4af1-a01d-ef775033524e" {
					t.Fatal(got)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := d.Decode(tc.kind, []byte(tc.body))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				tc.check(t, r)
				return
			}
			var ce *event.CodedError
			if !errors.As(err, &ce) || ce.Code != tc.wantCode || ce.Retryable {
				t.Fatalf("error = %v, want code %s", err, tc.wantCode)
			}
		})
	}
}

func TestDecodeSchemaExamples(t *testing.T) {
	d := newDecoder(t)
	for file, kind := range map[string]contract.Kind{
		"credentials-submitted.github.json":           contract.KindCredentialsSubmitted,
		"credentials-submitted.hubspot-template.json": contract.KindCredentialsSubmitted,
		"customer-onboarded.json":                     contract.KindCustomerOnboarded,
		"credentials-submitted.rotation-checked.json": contract.KindCredentialsSubmitted,
		"connector-disconnected.json":                 contract.KindConnectorDisconnected,
		"customer-offboarded.json":                    contract.KindCustomerOffboarded,
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "valid", file))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(kind, b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The error codes in Go and in the schema's enum are the same closed list.
func TestCodesMatchSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "schemas", "defs.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var defs struct {
		Defs struct {
			ErrorCode struct {
				Enum []string `json:"enum"`
			} `json:"error_code"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &defs); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, c := range contract.Codes {
		codes = append(codes, string(c))
	}
	if !slices.Equal(codes, defs.Defs.ErrorCode.Enum) {
		t.Fatalf("Go codes %v\nschema codes %v", codes, defs.Defs.ErrorCode.Enum)
	}
}

func TestErrorResultValidates(t *testing.T) {
	d := newDecoder(t)
	for _, kind := range []contract.Kind{contract.KindCredentialsSubmitted, contract.KindCustomerOnboarded, contract.KindConnectorDisconnected, contract.KindCustomerOffboarded} {
		for _, code := range contract.Codes {
			t.Run(string(kind)+"/"+string(code), func(t *testing.T) {
				r := event.ErrorResult(kind, "req-1", "acme", 0, code, "", code == contract.CodeAirbyteUnavailable, fixedNow)
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				name := map[contract.Kind]string{
					contract.KindCredentialsSubmitted: "source-create-error", contract.KindCustomerOnboarded: "workspace-error",
					contract.KindConnectorDisconnected: "source-delete-error", contract.KindCustomerOffboarded: "workspace-offboard-error",
				}[kind]
				if err := d.Schemas().ValidateJSON(schemaName(name), b); err != nil {
					t.Fatal(err)
				}
				if r.MsgID() != "req-1:"+kind.ErrorMessage() {
					t.Fatal(r.MsgID())
				}
			})
		}
	}
}

// FuzzDecode: any body either decodes into a request that carries its id, or fails with a coded,
// non-retryable error; it never panics.
func FuzzDecode(f *testing.F) {
	d := newDecoder(f)
	for _, s := range []string{
		`{"id":"r1","workspace_name":"acme","connector_type":"github","credentials_ref":"file:a.json"}`,
		`{"id":"r2","workspace_name":"acme"}`,
		`{"specversion":"1.0","data":{"id":"r2","workspace_name":"x"}}`,
		`{"specversion":"1.0","data":null}`,
		`{"id":1}`, `null`, `"x"`, `{"id":"r","workspace_name":"a","replication_config":{"credentials":1}}`,
	} {
		for k := range uint8(4) {
			f.Add(s, k)
		}
	}
	f.Add(`{"id":"r3","workspace_name":"acme","connector_type":"github"}`, uint8(2))
	f.Add(`{"id":"r4","workspace_name":"acme","workspace":"delete"}`, uint8(3))
	kinds := []contract.Kind{contract.KindCustomerOnboarded, contract.KindCredentialsSubmitted, contract.KindConnectorDisconnected, contract.KindCustomerOffboarded}
	f.Fuzz(func(t *testing.T, body string, k uint8) {
		kind := kinds[int(k)%len(kinds)]
		r, err := d.Decode(kind, []byte(body))
		if err != nil {
			var ce *event.CodedError
			if !errors.As(err, &ce) || ce.Retryable {
				t.Fatalf("uncoded or retryable error: %v", err)
			}
			event.PeekID([]byte(body))
			return
		}
		if r.ID() == "" || r.WorkspaceName() == "" || r.Kind != kind {
			t.Fatalf("valid request without id/workspace: %+v", r)
		}
		if kind == contract.KindCredentialsSubmitted && r.CredentialsSubmitted.CredentialsRef == "" {
			t.Fatal("no credentials_ref")
		}
	})
}
