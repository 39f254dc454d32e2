package vault_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/provisioner-dev/provisioner/internal/vault"
)

func TestCheckWorkspaceName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // "" = accepted
	}{
		{"acme", ""},
		{"acme-corp_2.eu", ""},
		{"Acme Corp", `workspace name "Acme Corp" contains a space at position 5: a workspace name is one path segment of ASCII letters, digits, '_', '-' and '.' (not dots only, at most 128 characters), e.g. acme or acme-corp`},
		{"acme/globex", "contains '/' (a path separator) at position 5"},
		{"..", "is dots only"},
		{"", "is empty"},
		{"zürich", "contains 'ü' at position 2"},
		{"acme\x00", `contains '\x00' at position 5`},
		{strings.Repeat("a", 129), "is 129 bytes long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := vault.CheckWorkspaceName(tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var wne *vault.WorkspaceNameError
			if !errors.As(err, &wne) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a *WorkspaceNameError containing %q", err, tc.wantErr)
			}
		})
	}
}

// CheckWorkspaceName is the rule Check applies: a name it accepts is never refused by a policy
// for its shape, and a name it refuses is never accepted.
func TestCheckWorkspaceNameAgreesWithPolicyCheck(t *testing.T) {
	p, err := vault.NewPolicy("customers/{workspace_name}/")
	if err != nil {
		t.Fatal(err)
	}
	if !p.UsesWorkspaceName() {
		t.Fatal("policy with the placeholder does not use the workspace name")
	}
	for _, name := range []string{"acme", "Acme Corp", "a/b", "..", ".", "", "x.y", "ü", "a\tb", strings.Repeat("b", 128), strings.Repeat("b", 129)} {
		ref, err := vault.ParseRef("file:customers/" + "acme" + "/github.json")
		if err != nil {
			t.Fatal(err)
		}
		policyErr := p.Check(ref, name)
		nameErr := vault.CheckWorkspaceName(name)
		var fe *vault.ForbiddenError
		refusedForShape := errors.As(policyErr, &fe) && strings.Contains(fe.Reason, "workspace name cannot be used")
		if refusedForShape != (nameErr != nil) {
			t.Errorf("%q: policy refuses its shape: %v, CheckWorkspaceName: %v", name, refusedForShape, nameErr)
		}
	}
	for _, tmpl := range []string{"", "shared/"} {
		p, err := vault.NewPolicy(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if p.UsesWorkspaceName() {
			t.Errorf("policy %q does not put the workspace name in paths", tmpl)
		}
	}
}

// Whatever the name, CheckWorkspaceName and the policy's own check agree on its shape, and a
// refusal names a reason.
func FuzzCheckWorkspaceName(f *testing.F) {
	for _, s := range []string{"acme", "Acme Corp", "..", "", "a/b", "zürich", "a\x00", "-", "a.b_c-d"} {
		f.Add(s)
	}
	p, err := vault.NewPolicy("customers/{workspace_name}/")
	if err != nil {
		f.Fatal(err)
	}
	ref, err := vault.ParseRef("file:customers/acme/github.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		nameErr := vault.CheckWorkspaceName(name)
		var fe *vault.ForbiddenError
		refusedForShape := errors.As(p.Check(ref, name), &fe) && strings.Contains(fe.Reason, "workspace name cannot be used")
		if refusedForShape != (nameErr != nil) {
			t.Fatalf("%q: policy refuses its shape: %v, CheckWorkspaceName: %v", name, refusedForShape, nameErr)
		}
		var wne *vault.WorkspaceNameError
		if nameErr != nil && (!errors.As(nameErr, &wne) || wne.Reason == "") {
			t.Fatalf("%q: refusal without a reason: %v", name, nameErr)
		}
	})
}
