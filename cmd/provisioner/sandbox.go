package main

import (
	"context"
	"io"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return sandbox.Run(ctx, args, stdout, newLogger(stderr, "auto", "info"))
}
