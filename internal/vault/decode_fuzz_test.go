package vault

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzVaultBodies feeds arbitrary response bodies to the decoders of Vault's answers: no panic,
// a not-found detail is one of the fixed texts (never content of the body), and an answer
// reads as sealed only when it is Vault's own "Vault is sealed" on a 503.
func FuzzVaultBodies(f *testing.F) {
	for _, s := range []string{
		`{"errors": []}`, `{"errors": ["Vault is sealed"]}`, `{"errors": ["permission denied"]}`,
		`{"data": {"data": null, "metadata": {"deletion_time": "2026-11-21T11:48:11Z", "destroyed": false}}}`,
		`{"data": {"data": null, "metadata": {"destroyed": true}}}`,
		`{"data": {"data": {"token": "ghp_fuzz"}, "metadata": {}}}`, `null`, `[]`, `{"errors": "x"}`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if d := notFoundDetail(bytes.NewReader(body)); !slices.Contains([]string{"", "version deleted", "version destroyed"}, d) {
			t.Fatalf("detail %q", d)
		}
		errs := errorsOf(bytes.NewReader(body))
		if sealedAnswer(503, errs) != slices.Contains(errs, sealedText) {
			t.Fatal("sealed judged on something else than Vault's text")
		}
		if sealedAnswer(500, errs) || sealedAnswer(200, errs) {
			t.Fatal("sealed without a 503")
		}
		if kv, err := decodeKV(bytes.NewReader(body)); err == nil && kv.Data != nil && kv.Data.Data != nil {
			if strings.Contains(notFoundDetail(bytes.NewReader(body)), "ghp") {
				t.Fatal("detail carries content")
			}
		}
	})
}
