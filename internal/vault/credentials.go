package vault

import (
	"fmt"
	"slices"

	"github.com/provisioner-dev/provisioner/internal/secret"
)

// credentialShapes are the credential objects real connectors' auth schemes take (Airbyte checks
// the fields against the connector's spec; here only that one whole scheme is there): a token, a
// personal access token, an OAuth or private-app access token, an API token with its account's
// email, or OAuth's client and refresh token. The last one is the shape missing fields are named
// against when none fits.
var credentialShapes = [][]string{
	{"token"},
	{"personal_access_token"},
	{"access_token"},
	{"email", "api_token"},
	{"client_id", "client_secret", "refresh_token"},
}

// shapeField reports whether k is a field of some credential shape.
func shapeField(k string) bool {
	return slices.ContainsFunc(credentialShapes, func(shape []string) bool { return slices.Contains(shape, k) })
}

// credentials turns a fetched object into Airbyte credentials: one of credentialShapes. Other
// fields are kept (connectors such as GitHub also take "option_title" or "auth_type") but, like the
// required ones, must be non-empty strings. Errors name field names only.
func credentials(ref Ref, obj map[string]any) (secret.Fields, error) {
	m := make(map[string]string, len(obj))
	var missing []string
	others := 0
	for k, v := range obj {
		s, ok := v.(string)
		if !ok || s == "" {
			if shapeField(k) {
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
	if slices.ContainsFunc(credentialShapes, func(shape []string) bool { return hasAll(m, shape) }) {
		return secret.NewFields(m), nil
	}
	return secret.Fields{}, &InvalidCredentialsError{Ref: ref, Missing: missingFor(m),
		Reason: "want token, personal_access_token, access_token, email and api_token, or client_id, client_secret and refresh_token"}
}

// missingFor names what is missing from the shape the object is closest to: the first shape it
// holds a field of, else token.
func missingFor(m map[string]string) []string {
	shape := credentialShapes[0]
	for _, sh := range credentialShapes {
		if slices.ContainsFunc(sh, func(f string) bool { _, ok := m[f]; return ok }) {
			shape = sh
			break
		}
	}
	var missing []string
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
