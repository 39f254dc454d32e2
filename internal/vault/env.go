package vault

import (
	"context"
	"strings"
)

// envBackend reads environment variables. Without a field a variable holds a JSON object; with
// a field (env:ACME_GITHUB#token) it holds that field's bare value.
type envBackend struct {
	prefix string
	lookup func(string) (string, bool)
}

func (b *envBackend) fetch(_ context.Context, ref Ref) (map[string]any, error) {
	if !strings.HasPrefix(ref.Path, b.prefix) {
		return nil, &ForbiddenError{Ref: ref, Reason: "variable lacks the configured prefix " + b.prefix}
	}
	v, ok := b.lookup(ref.Path)
	if !ok {
		return nil, &NotFoundError{Ref: ref, Detail: "variable not set"}
	}
	if ref.Field != "" {
		return map[string]any{ref.Field: v}, nil
	}
	if len(v) > maxSecretBytes {
		return nil, &InvalidCredentialsError{Ref: ref, Reason: "value larger than 1 MiB"}
	}
	return decodeObject(ref, []byte(v), false)
}
