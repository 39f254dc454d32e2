package event_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/contract"
	"github.com/provisioner-dev/provisioner/internal/event"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// The error messages of bad requests say what a person would change.
func TestDecodeMessagesSayWhatToFix(t *testing.T) {
	dec, err := event.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body string
		want string // the whole message, without the code
	}{
		{"no connector kind", `{"id":"r1","workspace_name":"acme","credentials_ref":"file:customers/acme/github.json"}`,
			"give one of connector_type, definition_id or source_template_id"},
		{"two connector kinds", `{"id":"r1","workspace_name":"acme","connector_type":"github","definition_id":"1b6d5a2e-7a47-4f3c-9a8e-2f7f1c3a9b10","credentials_ref":"file:customers/acme/github.json"}`,
			"give connector_type or definition_id, not both (source_template_id may come with either)"},
		{"inline credentials", `{"id":"r1","workspace_name":"acme","connector_type":"github","credentials_ref":"file:x","credentials":{"token":"t"}}`,
			"credentials are never sent in a request, store them and send a reference (credentials_ref, e.g. vault:customers/acme/github)"},
		{"credentials inside replication_config", `{"id":"r1","workspace_name":"acme","connector_type":"github","credentials_ref":"file:x","replication_config":{"credentials":{"token":"t"}}}`,
			"credentials are never sent in a request, store them and send a reference (credentials_ref, e.g. vault:customers/acme/github)"},
		{"no kind and something else", `{"id":"r1","workspace_name":"acme","credentials_ref":"file:x","name":""}`,
			"give one of connector_type, definition_id or source_template_id; does not match credentials-submitted.request.v1.json: at /name: minLength: got 0, want 1"},
		{"too large", `{"id":"` + strings.Repeat("x", 70<<10) + `"}`,
			"request is 71689 bytes; a request is at most 64 KiB (65536 bytes): send references, not data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dec.Decode(contract.KindCredentialsSubmitted, []byte(tc.body))
			ce, ok := err.(*event.CodedError)
			if !ok || ce.Code != contract.CodeSchemaViolation {
				t.Fatalf("error %v, want a schema_violation", err)
			}
			if got := ce.Err.Error(); got != tc.want {
				t.Errorf("message\n got %q\nwant %q", got, tc.want)
			}
			if strings.Contains(ce.Error(), `"t"`) || strings.Contains(ce.Error(), "token") {
				t.Error("the message quotes the inline credentials")
			}
		})
	}
}

// Golden text of every invalid request example's error message.
func TestDecodeMessagesGolden(t *testing.T) {
	dec, err := event.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../schemas/examples/invalid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var b strings.Builder
	for _, f := range files {
		base := filepath.Base(f)
		var kind contract.Kind
		switch {
		case strings.HasPrefix(base, "credentials-submitted."):
			kind = contract.KindCredentialsSubmitted
		case strings.HasPrefix(base, "customer-onboarded."):
			kind = contract.KindCustomerOnboarded
		default:
			continue // results, not requests
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, derr := dec.Decode(kind, body)
		if derr == nil {
			t.Fatalf("%s decodes", base)
		}
		b.WriteString(base + "\n  " + derr.Error() + "\n")
	}
	for _, extra := range []struct{ name, body string }{
		{"not JSON", `{"id": "req-62", `},
		{"not an object", `[1,2]`},
	} {
		_, derr := dec.Decode(contract.KindCredentialsSubmitted, []byte(extra.body))
		b.WriteString(extra.name + "\n  " + derr.Error() + "\n")
	}
	path := filepath.Join("testdata", "decode-errors.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if b.String() != string(want) {
		t.Errorf("messages differ from %s (go test -update rewrites it):\n%s", path, b.String())
	}
}
