// Command provisioner provisions Airbyte connectors for a SaaS app's customers, driven by events on
// NATS JetStream. See README.md.
//
// Subcommands: run | dev | sandbox | publish | results | dlq | doctor | bench | version. main only wires.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/provisioner-dev/provisioner/client"
)

// Set at build time: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() { os.Exit(run()) }

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	// exitTimeout: publish --wait or results --id saw no verdict in time.
	exitTimeout = 3
)

// usageError is a configuration or usage mistake: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the production worker", runWorker},
		{"dev", "run everything in one process on the embedded default, with a demo batch", runDev},
		{"sandbox", "serve the Airbyte API emulator", runSandbox},
		{"publish", "publish a request", runPublish},
		{"results", "follow the results stream", runResults},
		{"dlq", "list or replay dead letters", runDLQ},
		{"doctor", "check a configuration against NATS, the secret backends and Airbyte", runDoctor},
		{"bench", "measure provisioning throughput and latency against the floor", runBench},
		{"version", "print version, commit and Go version", runVersion},
	}
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "provisioner %s: %v\n", c.name, err)
			return exitUsage
		case errors.Is(err, client.ErrTimeout):
			fmt.Fprintf(stderr, "provisioner %s: %v\n", c.name, err)
			return exitTimeout
		default:
			fmt.Fprintf(stderr, "provisioner %s: %v\n", c.name, err)
			return exitFailed
		}
	}
	fmt.Fprintf(stderr, "provisioner: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: provisioner <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'provisioner <command> -h' for a command's flags; 'provisioner --version' prints the version.")
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintf(stdout, "provisioner %s (commit %s, %s)\n", version, commit, runtime.Version())
	return nil
}
