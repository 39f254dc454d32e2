// Package secret holds values that must never be printed: end users' connector credentials,
// the Airbyte client secret, and the tokens minted from it.
//
// Every way Go has of turning a value into text (fmt verbs, slog, encoding/json, error wrapping)
// shows "[REDACTED]"; the only way to read the value is an explicit Reveal call, which makes each
// place that handles the plain text easy to find and review.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
)

// Redacted is what every secret prints as.
const Redacted = "[REDACTED]"

// Value is a secret string.
type Value struct {
	// a pointer keeps the zero Value distinct from an empty secret and makes copies cheap.
	s *string
}

// New wraps s as a secret.
func New(s string) Value { return Value{s: &s} }

// Reveal returns the plain text. Call it only where the value leaves for its rightful destination.
func (v Value) Reveal() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

// IsZero reports whether the value is unset or empty.
func (v Value) IsZero() bool { return v.s == nil || *v.s == "" }

// String implements fmt.Stringer.
func (Value) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (Value) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb, including %x and %q, prints [REDACTED].
func (Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Value) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText implements encoding.TextMarshaler (yaml, flag printing, map keys).
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalText lets a Value be read from configuration text.
func (v *Value) UnmarshalText(b []byte) error {
	*v = New(string(b))
	return nil
}

// Fields is a set of named secret strings: the credentials object of a connector
// (for example {"token": ...} or {"client_id", "client_secret", "refresh_token"}).
// Field names are not secret; values are.
type Fields struct {
	m map[string]string
}

// NewFields copies m into a Fields.
func NewFields(m map[string]string) Fields { return Fields{m: maps.Clone(m)} }

// Names returns the field names, sorted. Names are safe to log.
func (f Fields) Names() []string { return slices.Sorted(maps.Keys(f.m)) }

// Len returns the number of fields.
func (f Fields) Len() int { return len(f.m) }

// Get returns one field's value as a secret.
func (f Fields) Get(name string) (Value, bool) {
	s, ok := f.m[name]
	if !ok {
		return Value{}, false
	}
	return New(s), true
}

// RevealJSON encodes the fields as the JSON object the destination API expects.
func (f Fields) RevealJSON() json.RawMessage {
	b, err := json.Marshal(f.m)
	if err != nil { // a map[string]string always marshals
		panic(err)
	}
	return b
}

// RevealEach calls fn for every field with its plain text, in name order. Use it to scan
// output for leaks in tests, or to compare against a destination's copy.
func (f Fields) RevealEach(fn func(name, value string)) {
	for _, k := range f.Names() {
		fn(k, f.m[k])
	}
}

// String implements fmt.Stringer.
func (Fields) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (Fields) GoString() string { return Redacted }

// Format implements fmt.Formatter.
func (Fields) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (Fields) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Fields) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }
