// Package vaultpolicy holds the Vault policy the worker needs (provisioner.hcl, installed by setup.sh);
// its test checks that the policy grants what the worker reads under the default settings, and
// nothing more.
package vaultpolicy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
)

// rules parses the policy the way Vault does (HCL v1): path pattern -> capabilities.
func rules(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("provisioner.hcl")
	if err != nil {
		t.Fatal(err)
	}
	root, err := hcl.ParseBytes(b)
	if err != nil {
		t.Fatalf("provisioner.hcl is not valid HCL: %v", err)
	}
	list, ok := root.Node.(*ast.ObjectList)
	if !ok {
		t.Fatal("provisioner.hcl: no top-level object list")
	}
	out := map[string][]string{}
	for _, item := range list.Filter("path").Items {
		if len(item.Keys) != 1 {
			t.Fatalf("path block without exactly one key at %v", item.Pos())
		}
		var rule struct {
			Capabilities []string `hcl:"capabilities"`
		}
		if err := hcl.DecodeObject(&rule, item.Val); err != nil {
			t.Fatal(err)
		}
		out[strings.Trim(item.Keys[0].Token.Text, `"`)] = rule.Capabilities
	}
	if len(out) == 0 {
		t.Fatal("provisioner.hcl has no path rules")
	}
	return out
}

// matches implements Vault's path patterns: '+' is one segment, a trailing '*' any suffix.
func matches(pattern, path string) bool {
	prefix, glob := strings.CutSuffix(pattern, "*")
	ps, xs := strings.Split(prefix, "/"), strings.Split(path, "/")
	if !glob && len(ps) != len(xs) {
		return false
	}
	if len(xs) < len(ps) {
		return false
	}
	for i, p := range ps {
		last := i == len(ps)-1
		switch {
		case p == "+":
			if xs[i] == "" {
				return false
			}
		case glob && last:
			if !strings.HasPrefix(xs[i], p) {
				return false
			}
		case p != xs[i]:
			return false
		}
	}
	return true
}

// allowed reports whether some rule grants capability on path.
func allowed(rs map[string][]string, path, capability string) bool {
	for pattern, caps := range rs {
		if matches(pattern, path) && slices.Contains(caps, capability) {
			return true
		}
	}
	return false
}

func TestVaultPolicy(t *testing.T) {
	rs := rules(t)
	tests := []struct {
		name       string
		path       string // the API path the worker calls, as the vault backend builds it
		capability string
		want       bool
	}{
		// vault:customers/acme/github under --secret-path-policy customers/{workspace_name}/, mount secret
		{"read an end user's credentials", "secret/data/customers/acme/github", "read", true},
		{"read a nested credential", "secret/data/customers/acme/hubspot/prod", "read", true},
		{"read the Airbyte client secret", "secret/data/provisioner/airbyte", "read", true},
		{"look its token up (token auth)", "auth/token/lookup-self", "read", true},
		{"renew its token", "auth/token/renew-self", "update", true},

		{"write credentials", "secret/data/customers/acme/github", "update", false},
		{"create credentials", "secret/data/customers/acme/github", "create", false},
		{"delete credentials", "secret/data/customers/acme/github", "delete", false},
		{"list customers", "secret/metadata/customers", "list", false},
		{"read outside customers/", "secret/data/other/acme/github", "read", false},
		{"read the customers folder itself", "secret/data/customers", "read", false},
		{"read another mount", "kv/data/customers/acme/github", "read", false},
		{"manage policies", "sys/policies/acl/provisioner", "update", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := allowed(rs, tc.path, tc.capability); got != tc.want {
				t.Errorf("%s on %s: allowed = %v, want %v (rules %v)", tc.capability, tc.path, got, tc.want, rs)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"secret/data/customers/+/*", "secret/data/customers/acme/github", true},
		{"secret/data/customers/+/*", "secret/data/customers/acme", false},
		{"secret/data/customers/+/*", "secret/data/customers//github", false},
		{"secret/data/x", "secret/data/x", true},
		{"secret/data/x", "secret/data/x/y", false},
		{"secret/data/x*", "secret/data/xyz", true},
	} {
		if got := matches(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}
