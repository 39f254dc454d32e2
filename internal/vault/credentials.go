package vault

import (
	"fmt"
	"slices"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// The two credential shapes Airbyte accepts.
var (
	tokenFields = []string{"token"}
	oauthFields = []string{"client_id", "client_secret", "refresh_token"}
)

// credentials turns a fetched object into Airbyte credentials: token auth {"token"} or OAuth
// {"client_id", "client_secret", "refresh_token"}. Other fields are kept (connectors such as
// GitHub also take "option_title" or "auth_type") but, like the required ones, must be non-empty
// strings. Errors name field names only.
func credentials(ref Ref, obj map[string]any) (secret.Fields, error) {
	m := make(map[string]string, len(obj))
	var missing []string
	others := 0
	for k, v := range obj {
		s, ok := v.(string)
		if !ok || s == "" {
			if slices.Contains(tokenFields, k) || slices.Contains(oauthFields, k) {
				missing = append(missing, k)
			} else {
				others++
			}
			continue
		}
		m[k] = s
	}
	if len(missing) > 0 || others > 0 {
		e := &InvalidCredentialsError{Ref: ref, Missing: sorted(missing)}
		if others > 0 {
			e.Reason = fmt.Sprintf("%d other field(s) are not non-empty strings", others)
		}
		return secret.Fields{}, e
	}
	if hasAll(m, tokenFields) || hasAll(m, oauthFields) {
		return secret.NewFields(m), nil
	}
	return secret.Fields{}, &InvalidCredentialsError{Ref: ref, Missing: missingFor(m),
		Reason: "want token, or client_id, client_secret and refresh_token"}
}

// missingFor names what is missing from the shape the object is closest to.
func missingFor(m map[string]string) []string {
	var missing []string
	shape := tokenFields
	for _, f := range oauthFields {
		if _, ok := m[f]; ok {
			shape = oauthFields
		}
	}
	for _, f := range shape {
		if _, ok := m[f]; !ok {
			missing = append(missing, f)
		}
	}
	return missing
}

func hasAll(m map[string]string, fields []string) bool {
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			return false
		}
	}
	return true
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
