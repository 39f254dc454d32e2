package consumer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDeadLetterBody(t *testing.T) {
	long := `{"id":"r","workspace_name":"` + strings.Repeat("a", DeadLetterBodyLimit) + `"}`
	for _, tc := range []struct {
		name, body    string
		want          string // exact body kept; "" = check only the treatment and the secret
		treatment     string
		mustNotRemain string
	}{
		{"clean body kept as it came", `{"id":"r1","workspace_name":"acme"}`, `{"id":"r1","workspace_name":"acme"}`, "", ""},
		{"top-level credentials", `{"id":"r2","credentials":{"token":"SECRET_1"}}`, `{"id":"r2"}`, "redacted", "SECRET_1"},
		{"nested in replication_config", `{"id":"r3","replication_config":{"credentials":{"token":"SECRET_2"},"repo":"x"}}`, `{"id":"r3","replication_config":{"repo":"x"}}`, "redacted", "SECRET_2"},
		{"inside a CloudEvents envelope and arrays", `{"specversion":"1.0","data":{"id":"r4","list":[{"Credentials":{"client_secret":"SECRET_3"}}]}}`, `{"data":{"id":"r4","list":[{}]},"specversion":"1.0"}`, "redacted", "SECRET_3"},
		{"credentials that are not an object", `{"id":"r5","credentials":"SECRET_4"}`, `{"id":"r5"}`, "redacted", "SECRET_4"},
		{"credentials_ref is not credentials", `{"id":"r6","credentials_ref":"file:a/b.json"}`, `{"id":"r6","credentials_ref":"file:a/b.json"}`, "", ""},
		{"not JSON, mentions credentials", `{"credentials":{"token":"SECRET_5"`, "", "dropped", "SECRET_5"},
		{"two JSON values", `{"id":"r7"} {"credentials":{"token":"SECRET_6"}}`, "", "dropped", "SECRET_6"},
		{"not JSON, no credentials", `hello`, `hello`, "", ""},
		{"too long", long, "", "cut", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, treatment := deadLetterBody([]byte(tc.body))
			if treatment != tc.treatment {
				t.Errorf("treatment %q, want %q", treatment, tc.treatment)
			}
			if tc.want != "" && string(kept) != tc.want {
				t.Errorf("kept %s, want %s", kept, tc.want)
			}
			if tc.mustNotRemain != "" && bytes.Contains(kept, []byte(tc.mustNotRemain)) {
				t.Errorf("the secret remains: %s", kept)
			}
			if len(kept) > DeadLetterBodyLimit {
				t.Errorf("kept %d bytes, more than %d", len(kept), DeadLetterBodyLimit)
			}
		})
	}
}

// Whatever the body, a dead letter keeps no "credentials" member and no more than the limit.
func FuzzDeadLetterBody(f *testing.F) {
	for _, s := range []string{`{"credentials":{"token":"x"}}`, `[{"a":{"credentials":1}}]`, `{"specversion":"1.0","data":{"credentials":{}}}`, `nope`, `{"id":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		kept, treatment := deadLetterBody(body)
		if len(kept) > DeadLetterBodyLimit {
			t.Fatalf("kept %d bytes", len(kept))
		}
		if treatment == "cut" || treatment == "dropped" {
			return
		}
		var doc any
		if json.Unmarshal(kept, &doc) != nil {
			return // not JSON and never was: kept only if it does not mention credentials
		}
		if hasCredentials(doc) {
			t.Fatalf("credentials remain in %s", kept)
		}
	})
}

func hasCredentials(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if strings.EqualFold(k, "credentials") || hasCredentials(c) {
				return true
			}
		}
	case []any:
		for _, c := range t {
			if hasCredentials(c) {
				return true
			}
		}
	}
	return false
}
