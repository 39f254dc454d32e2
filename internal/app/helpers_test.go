package app_test

import "github.com/provisioner-dev/provisioner/internal/secret"

func secretValue(s string) secret.Value { return secret.New(s) }
