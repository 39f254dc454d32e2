// Package vault owns everything between a secret reference in a request and the credentials
// object sent to Airbyte: the reference syntax, the per-workspace path policy, the backends that
// hold secrets (files, environment variables, HashiCorp Vault KV v2) and the validation of what
// they return. "Vault" is the product's word for any secret store.
//
// Reference syntax (parsed strictly, see ParseRef):
//
//	vault:customers/acme/github          a KV v2 secret, path relative to the configured mount
//	vault:customers/acme/github#token    one field of it, becoming {"token": value}
//	vault:secret/data/customers/acme/github
//	                                     the KV v2 API path form for the default mount "secret"
//	file:customers/acme/github.json      a .json, .yaml or .yml file under the file directory
//	env:ACME_GITHUB                      an environment variable holding a JSON object
//	env:ACME_GITHUB#token                an environment variable holding the bare value of "token"
package vault

import (
	"strings"
)

// Schemes a reference may use. They double as the backend names in metrics labels.
const (
	SchemeVault = "vault"
	SchemeFile  = "file"
	SchemeEnv   = "env"
)

const (
	maxRefLen      = 512
	maxSegmentLen  = 128
	maxFieldLen    = 128
	maxSegments    = 32
	defaultMount   = "secret"
	apiPathSegment = "data"
)

// Ref is a parsed secret reference. A reference is not secret and may be logged.
type Ref struct {
	Scheme string
	// Path is slash-separated, relative (to the KV mount, the file directory), or a variable name.
	Path string
	// Field, when set, selects one field of the secret.
	Field string

	// mount is set when a vault reference was written in the API path form
	// (secret/data/...): that form names the mount, which the store must then agree with.
	mount string
}

// ParseRef parses s strictly. The error is always a *RefError.
//
// Path segments are ASCII letters, digits, '_', '-' and '.', are not empty and do not consist of
// dots only; paths are relative. Anything else (percent-encoding, backslashes, control characters,
// spaces, unicode, "..") is rejected rather than normalised, so that a reference means exactly one
// thing to every backend and to the policy.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, &RefError{Reason: "empty"}
	}
	if len(s) > maxRefLen {
		return Ref{}, &RefError{Reason: "longer than 512 bytes"}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, &RefError{Reason: `missing scheme (want vault:, file: or env:)`}
	}
	path, field, hasField := strings.Cut(rest, "#")
	r := Ref{Scheme: scheme, Path: path, Field: field}
	if hasField && field == "" {
		return Ref{}, &RefError{Reason: "empty field after #"}
	}
	if scheme == SchemeVault {
		if after, ok := strings.CutPrefix(path, defaultMount+"/"+apiPathSegment+"/"); ok {
			r.Path, r.mount = after, defaultMount
		}
	}
	if err := r.validate(); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// String returns the reference as written, in a form ParseRef maps back to an equal Ref.
func (r Ref) String() string {
	s := r.Scheme + ":"
	if r.mount != "" {
		s += r.mount + "/" + apiPathSegment + "/"
	}
	s += r.Path
	if r.Field != "" {
		s += "#" + r.Field
	}
	return s
}

// validate checks every part; Store and Policy call it too, so a Ref built by hand is held to
// the same rules as a parsed one.
func (r Ref) validate() *RefError {
	switch r.Scheme {
	case SchemeVault, SchemeFile:
		if err := validatePath(r.Path); err != nil {
			return err
		}
		if r.Scheme == SchemeFile && !hasFileExt(r.Path) {
			return &RefError{Reason: "file reference must name a .json, .yaml or .yml file"}
		}
	case SchemeEnv:
		if !isEnvName(r.Path) {
			return &RefError{Reason: "env reference must name a variable: letters, digits and '_', not starting with a digit"}
		}
	case "":
		return &RefError{Reason: "missing scheme (want vault:, file: or env:)"}
	default:
		return &RefError{Reason: "unknown scheme (want vault:, file: or env:)"}
	}
	if r.Field != "" && !isName(r.Field, maxFieldLen) {
		return &RefError{Reason: "field must be letters, digits, '_', '-' or '.', at most 128 bytes"}
	}
	return nil
}

func validatePath(p string) *RefError {
	switch {
	case p == "":
		return &RefError{Reason: "empty path"}
	case strings.HasPrefix(p, "/"):
		return &RefError{Reason: "path must be relative"}
	}
	segs := strings.Split(p, "/")
	if len(segs) > maxSegments {
		return &RefError{Reason: "path has more than 32 segments"}
	}
	for _, seg := range segs {
		if seg == "" {
			return &RefError{Reason: "path has an empty segment"}
		}
		if !isName(seg, maxSegmentLen) {
			return &RefError{Reason: "path segments must be letters, digits, '_', '-' or '.' (no '..', no encoding), at most 128 bytes"}
		}
	}
	return nil
}

// isName reports whether s is a safe path segment or field name: allowed bytes only, not
// made of dots only ("." and ".." are traversal, "..." is too close to be worth allowing).
func isName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func isEnvName(s string) bool {
	if s == "" || len(s) > maxSegmentLen || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		default:
			return false
		}
	}
	return true
}

func hasFileExt(p string) bool {
	return strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")
}
