package main

import (
	"context"
	"flag"
	"io"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
)

var sandboxHelp = help{
	usage: []string{"provisioner sandbox [flags]"},
	about: "Serve the Airbyte API emulator (dev mode, tests, chaos and benchmarks use it) and print its base URL.",
}

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return sandbox.Run(ctx, args, stdout, newLogger(stderr, "auto", "info"),
		func(fs *flag.FlagSet) { sandboxHelp.install(fs, stderr) })
}
