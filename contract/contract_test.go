package contract_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/contract"
)

func TestRequestToken(t *testing.T) {
	hashed := func(id string) string {
		sum := sha256.Sum256([]byte(id))
		return "sha256-" + hex.EncodeToString(sum[:16])
	}
	for _, tc := range []struct {
		name, id, want string
	}{
		{"uuid stays itself", "0e4a2f1e-9b1c-4c55-a3a8-1f0d2b9c7e11", "0e4a2f1e-9b1c-4c55-a3a8-1f0d2b9c7e11"},
		{"letters digits dash underscore", "req_7-A", "req_7-A"},
		{"64 characters", strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"65 characters are hashed", strings.Repeat("a", 65), hashed(strings.Repeat("a", 65))},
		{"a dot is hashed", "req.7", hashed("req.7")},
		{"wildcards are hashed", "a*b>c", hashed("a*b>c")},
		{"a colon is hashed", "order:42", hashed("order:42")},
		{"empty is hashed", "", hashed("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := contract.RequestToken(tc.id); got != tc.want {
				t.Fatalf("RequestToken(%q) = %q, want %q", tc.id, got, tc.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"request", contract.RequestSubject("acme", contract.KindCredentialsSubmitted), "acme.requests.credentials.submitted"},
		{"result", contract.ResultSubject("acme", contract.MessageSourceCreated, "req-7"), "acme.results.source_created.req-7"},
		{"filter", contract.ResultFilter("acme", "req-7"), "acme.results.*.req-7"},
		{"filter of a hashed id", contract.ResultFilter("acme", "req.7"), "acme.results.*." + contract.RequestToken("req.7")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("%q, want %q", tc.got, tc.want)
			}
		})
	}
}

// Every kind has a request type, a subject suffix that maps back to it, and result messages.
func TestKinds(t *testing.T) {
	for _, k := range contract.Kinds {
		t.Run(string(k), func(t *testing.T) {
			req, ok := contract.NewRequest(k)
			if !ok || req.Kind() != k {
				t.Fatalf("NewRequest(%s) = %T, %t", k, req, ok)
			}
			if got := contract.KindFromSuffix(k.SubjectSuffix()); got != k {
				t.Fatalf("suffix %q maps to %s", k.SubjectSuffix(), got)
			}
			if k.SuccessMessage() == "" || k.ErrorMessage() == "" || k.SuccessMessage() == k.ErrorMessage() {
				t.Fatalf("messages %q / %q", k.SuccessMessage(), k.ErrorMessage())
			}
		})
	}
	if _, ok := contract.NewRequest(contract.KindUnknown); ok {
		t.Fatal("a request type for the unknown kind")
	}
}

// A token is always one valid subject token, and the same id always gives the same token.
func FuzzRequestToken(f *testing.F) {
	for _, s := range []string{"req-1", "a.b", "*", ">", " ", strings.Repeat("x", 200), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := contract.RequestToken(id)
		if tok == "" || len(tok) > 64 || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("RequestToken(%q) = %q is not a plain subject token", id, tok)
		}
		if tok != contract.RequestToken(id) {
			t.Fatal("not deterministic")
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] >= 0x80 {
				t.Fatalf("non-ASCII token %q", tok)
			}
		}
	})
}

// Every valid example of schemas/ decodes into its contract type with no field left over, and
// encodes back to the same document: the types and the schemas describe the same contract.
func TestTypesHoldEveryValidExample(t *testing.T) {
	files, err := filepath.Glob("../schemas/examples/valid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	kinds := map[string]contract.Kind{}
	for _, k := range contract.Kinds {
		kinds[strings.ReplaceAll(k.SubjectSuffix(), ".", "-")] = k
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name, _, _ := strings.Cut(filepath.Base(f), ".")
			var v any
			if k, ok := kinds[name]; ok {
				req, _ := contract.NewRequest(k)
				v = req
			} else {
				v = new(contract.Result)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			if r, ok := v.(*contract.Result); ok && strings.ReplaceAll(r.Message, "_", "-") != name {
				t.Fatalf("%s holds a %q result, or a request of no known kind", f, r.Message)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("%T does not encode back to the example:\n got %s\nwant %s", v, again, b)
			}
		})
	}
}
