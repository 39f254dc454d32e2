package vault_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/vault"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in     string
		scheme string
		path   string
		field  string
		str    string // String() when it differs from in
	}{
		{in: "vault:customers/acme/github", scheme: "vault", path: "customers/acme/github"},
		{in: "vault:customers/acme/github#token", scheme: "vault", path: "customers/acme/github", field: "token"},
		{in: "vault:secret/data/customers/acme/github", scheme: "vault", path: "customers/acme/github"},
		{in: "vault:secret/data/customers/acme/hubspot#client_id", scheme: "vault", path: "customers/acme/hubspot", field: "client_id"},
		{in: "vault:secret/customers/acme", scheme: "vault", path: "secret/customers/acme"},
		{in: "vault:x/data/y", scheme: "vault", path: "x/data/y"},
		{in: "vault:a", scheme: "vault", path: "a"},
		{in: "vault:customers/acme.inc/git-hub_2", scheme: "vault", path: "customers/acme.inc/git-hub_2"},
		{in: "file:acme/github.json", scheme: "file", path: "acme/github.json"},
		{in: "file:acme/github.yaml#token", scheme: "file", path: "acme/github.yaml", field: "token"},
		{in: "file:acme/github.yml", scheme: "file", path: "acme/github.yml"},
		{in: "env:ACME_GITHUB", scheme: "env", path: "ACME_GITHUB"},
		{in: "env:_x9#token", scheme: "env", path: "_x9", field: "token"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := vault.ParseRef(tt.in)
			if err != nil {
				t.Fatalf("ParseRef: %v", err)
			}
			if r.Scheme != tt.scheme || r.Path != tt.path || r.Field != tt.field {
				t.Fatalf("got %+v, want scheme %q path %q field %q", r, tt.scheme, tt.path, tt.field)
			}
			if r.String() != tt.in {
				t.Fatalf("String() = %q, want %q", r.String(), tt.in)
			}
			again, err := vault.ParseRef(r.String())
			if err != nil || again != r {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseRefRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no scheme", "customers/acme/github"},
		{"empty scheme", ":customers/acme"},
		{"unknown scheme", "s3:bucket/key"},
		{"scheme is case sensitive", "VAULT:customers/acme"},
		{"http url", "https://vault.example/v1/secret/data/x"},
		{"empty path", "vault:"},
		{"empty path with field", "vault:#token"},
		{"empty field", "vault:customers/acme#"},
		{"two hashes", "vault:customers/acme#a#b"},
		{"absolute", "vault:/customers/acme"},
		{"absolute file", "file:/etc/passwd.json"},
		{"double slash", "vault:customers//acme"},
		{"trailing slash", "vault:customers/acme/"},
		{"dot dot", "vault:customers/../globex/github"},
		{"leading dot dot", "file:../outside.json"},
		{"dot segment", "vault:customers/./acme"},
		{"only dots", "vault:customers/.../acme"},
		{"dot dot after api prefix", "vault:secret/data/../other"},
		{"encoded dot dot", "vault:customers/%2e%2e/globex"},
		{"encoded slash", "vault:customers%2facme"},
		{"percent", "vault:customers/100%"},
		{"backslash", `vault:customers\acme`},
		{"windows traversal", `file:..\outside.json`},
		{"NUL", "vault:customers/acme\x00/github"},
		{"newline", "vault:customers/acme\n"},
		{"tab", "vault:customers/\tacme"},
		{"DEL", "vault:customers/acme\x7f"},
		{"leading space", " vault:customers/acme"},
		{"trailing space", "vault:customers/acme "},
		{"inner space", "vault:customers/ac me"},
		{"unicode", "vault:customers/acmé/github"},
		{"fullwidth dot", "vault:customers/\uff0e\uff0e/globex"},
		{"colon in path", "vault:customers/a:b"},
		{"query", "vault:customers/acme?version=1"},
		{"field with slash", "vault:customers/acme#a/b"},
		{"field dot dot", "vault:customers/acme#.."},
		{"file without extension", "file:acme/github"},
		{"file txt", "file:acme/github.txt"},
		{"env with slash", "env:ACME/GITHUB"},
		{"env leading digit", "env:1ACME"},
		{"env dash", "env:ACME-GITHUB"},
		{"too long", "vault:" + strings.Repeat("a/", 300) + "a"},
		{"segment too long", "vault:" + strings.Repeat("a", 129)},
		{"too many segments", "vault:" + strings.Repeat("a/", 32) + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := vault.ParseRef(tt.in)
			var refErr *vault.RefError
			if !errors.As(err, &refErr) {
				t.Fatalf("ParseRef(%q) = %+v, %v; want *RefError", tt.in, r, err)
			}
			if refErr.Code() != "invalid_secret_ref" || refErr.Retryable() {
				t.Fatalf("code %q retryable %v", refErr.Code(), refErr.Retryable())
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("error quotes the rejected input: %v", err)
			}
		})
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"vault:customers/acme/github", "vault:secret/data/customers/acme/github#token",
		"file:acme/github.json", "env:ACME#token", "vault:a/../b", "file:%2e%2e/x.json", "vault:a//b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := vault.ParseRef(s)
		if err != nil {
			return
		}
		if r.String() != s {
			t.Fatalf("String() = %q, input %q", r.String(), s)
		}
		again, err := vault.ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		for _, seg := range strings.Split(r.Path, "/") {
			if seg == "" || strings.Trim(seg, ".") == "" {
				t.Fatalf("accepted traversal segment in %q", s)
			}
		}
		if strings.ContainsAny(s, "%\\ \x00\n\r\t") || strings.HasPrefix(r.Path, "/") {
			t.Fatalf("accepted %q", s)
		}
	})
}
