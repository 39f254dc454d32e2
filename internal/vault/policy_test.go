package vault_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/vault"
)

func TestNewPolicyRejects(t *testing.T) {
	for _, tmpl := range []string{
		"/customers/{workspace_name}/",
		"/",
		"customers//{workspace_name}",
		"customers/../{workspace_name}",
		"customers/ws-{workspace_name}/",
		"customers/{workspace}/",
		"customers/{workspace_name}}/",
		"customers/%2e%2e/{workspace_name}",
		`customers\{workspace_name}`,
	} {
		t.Run(tmpl, func(t *testing.T) {
			if _, err := vault.NewPolicy(tmpl); err == nil {
				t.Fatalf("NewPolicy(%q) accepted", tmpl)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	const tenant = "customers/{workspace_name}/"
	tests := []struct {
		name      string
		template  string
		ref       string
		workspace string
		allowed   bool
	}{
		{"own secret", tenant, "vault:customers/acme/github", "acme", true},
		{"own secret, field", tenant, "vault:customers/acme/github#token", "acme", true},
		{"own secret, api path form", tenant, "vault:secret/data/customers/acme/github", "acme", true},
		{"own secret, nested", tenant, "vault:customers/acme/team/github", "acme", true},
		{"own secret, file", tenant, "file:customers/acme/github.json", "acme", true},
		{"the prefix itself", tenant, "vault:customers/acme", "acme", true},
		{"no trailing slash template", "customers/{workspace_name}", "vault:customers/acme/x", "acme", true},
		{"other tenant", tenant, "vault:customers/globex/github", "acme", false},
		{"segment prefix is not enough", tenant, "vault:customers/acme-evil/github", "acme", false},
		{"name prefix is not enough", tenant, "vault:customers/acmex/github", "acme", false},
		{"shorter than prefix", tenant, "vault:customers", "acme", false},
		{"outside the tree", tenant, "vault:other/thing", "acme", false},
		{"env under tenant template", tenant, "env:ACME_GITHUB", "acme", false},
		{"case differs", tenant, "vault:customers/Acme/github", "acme", false},
		{"workspace with slash", tenant, "vault:customers/acme/github", "acme/../globex", false},
		{"workspace with slash matching", tenant, "vault:customers/acme/x/github", "acme/x", false},
		{"workspace dot dot", tenant, "vault:customers/globex/github", "..", false},
		{"workspace dot", tenant, "vault:customers/github", ".", false},
		{"workspace empty", tenant, "vault:customers/github", "", false},
		{"workspace unicode", tenant, "vault:customers/acme/github", "acmé", false},
		{"workspace NUL", tenant, "vault:customers/acme/github", "acme\x00", false},
		{"workspace space", tenant, "vault:customers/acme/github", "acme ", false},
		{"workspace percent", tenant, "vault:customers/acme/github", "%61cme", false},
		{"workspace with dots is fine", tenant, "vault:customers/acme.inc/github", "acme.inc", true},
		{"fixed prefix", "shared/", "vault:shared/github", "whoever", true},
		{"fixed prefix violated", "shared/", "vault:customers/acme/github", "acme", false},
		{"placeholder in the middle", "tenants/{workspace_name}/airbyte/", "vault:tenants/acme/airbyte/github", "acme", true},
		{"placeholder in the middle violated", "tenants/{workspace_name}/airbyte/", "vault:tenants/acme/other/github", "acme", false},
		{"no policy", "", "vault:customers/globex/github", "acme", true},
		{"no policy, odd workspace", "", "env:ANYTHING", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := vault.NewPolicy(tt.template)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := vault.ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(ref, tt.workspace)
			if tt.allowed {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var fe *vault.ForbiddenError
			if !errors.As(err, &fe) {
				t.Fatalf("Check = %v, want *ForbiddenError", err)
			}
			if fe.Code() != "forbidden_secret_ref" || fe.Retryable() {
				t.Fatalf("code %q retryable %v", fe.Code(), fe.Retryable())
			}
		})
	}
}

func TestPolicyCheckRejectsHandBuiltRefs(t *testing.T) {
	p, err := vault.NewPolicy("")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []vault.Ref{
		{Scheme: "vault", Path: "customers/../globex/github"},
		{Scheme: "vault", Path: "/etc"},
		{Scheme: "file", Path: "a//b.json"},
		{Scheme: "nope", Path: "a"},
		{},
	} {
		var re *vault.RefError
		if err := p.Check(ref, "acme"); !errors.As(err, &re) {
			t.Errorf("Check(%+v) = %v, want *RefError", ref, err)
		}
	}
}

func TestNilPolicyFailsClosed(t *testing.T) {
	var p *vault.Policy
	var fe *vault.ForbiddenError
	if err := p.Check(vault.Ref{Scheme: "vault", Path: "customers/acme/github"}, "acme"); !errors.As(err, &fe) {
		t.Fatalf("nil policy: %v", err)
	}
}

// FuzzPolicyCheck holds the policy's invariant: an accepted reference for workspace W lies
// under customers/W/ by whole segments, and W is one plain segment.
func FuzzPolicyCheck(f *testing.F) {
	f.Add("vault:customers/acme/github", "acme")
	f.Add("vault:customers/acme-evil/github", "acme")
	f.Add("vault:customers/globex/github", "acme/../globex")
	f.Add("vault:secret/data/customers/acme/github#token", "acme")
	f.Add("file:customers/acme/x.json", "acme")
	f.Add("vault:customers/github", "")
	p, err := vault.NewPolicy("customers/{workspace_name}/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, refText, workspace string) {
		ref, err := vault.ParseRef(refText)
		if err != nil {
			return
		}
		if p.Check(ref, workspace) != nil {
			return
		}
		if workspace == "" || strings.ContainsAny(workspace, "/\\%\x00") || strings.Trim(workspace, ".") == "" {
			t.Fatalf("accepted workspace %q", workspace)
		}
		segs := strings.Split(ref.Path, "/")
		if len(segs) < 2 || segs[0] != "customers" || segs[1] != workspace {
			t.Fatalf("accepted %q for workspace %q", refText, workspace)
		}
	})
}
