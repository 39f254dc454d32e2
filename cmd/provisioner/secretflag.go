package main

import "github.com/provisioner-dev/provisioner/internal/secret"

// secretFlag is a flag.Value for a secret that never prints its value.
type secretFlag struct{ v *secret.Value }

func secretFlagOf(v *secret.Value) secretFlag { return secretFlag{v} }

func (s secretFlag) String() string {
	if s.v == nil || s.v.IsZero() {
		return ""
	}
	return secret.Redacted
}

func (s secretFlag) Set(v string) error { *s.v = secret.New(v); return nil }
