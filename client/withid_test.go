package client

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

func TestWithID(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		keeps      bool // the body comes back unchanged
	}{
		{"an id", `{"id":"req-1","workspace_name":"acme"}`, true},
		{"an empty id", `{"id":"","workspace_name":"acme"}`, false},
		{"no id", `{"workspace_name":"acme"}`, false},
		{"a null id", `{"id":null,"workspace_name":"acme"}`, false},
		{"a number is left to the schema", `{"id":7,"workspace_name":"acme"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withID([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.keeps {
				if string(got) != tc.body {
					t.Fatalf("%s, want it unchanged", got)
				}
				return
			}
			var v struct {
				ID            string `json:"id"`
				WorkspaceName string `json:"workspace_name"`
			}
			if err := json.Unmarshal(got, &v); err != nil || v.WorkspaceName != "acme" {
				t.Fatalf("%s: %v", got, err)
			}
			if _, err := uuid.Parse(v.ID); err != nil {
				t.Fatalf("id %q is not a new UUID", v.ID)
			}
		})
	}
}
