package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"

	"github.com/provisioner-dev/provisioner/internal/bench"
)

var benchHelp = help{
	usage: []string{"provisioner bench [flags]"},
	about: "Measure provisioning throughput and latency against the floor (see docs/bench.md).",
}

// runBench is `provisioner bench`: see internal/bench and docs/bench.md.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("provisioner bench", flag.ContinueOnError)
	benchHelp.install(fs, stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.Scenario, "scenario", bench.ScenarioCreate, "create (each request a connector of its own) or rotate (the connectors are created first, then each one's credentials rotated; only the rotations are measured)")
	fs.BoolVar(&cfg.Embedded, "embedded", false, "embedded sources (source_template_id) instead of Agent Engine connectors: a rotation is one PUT instead of a replace")
	fs.IntVar(&cfg.Requests, "requests", 10000, "credentials-submitted requests to publish, each for a connector of its own")
	fs.IntVar(&cfg.Workspaces, "workspaces", 1000, "workspaces the requests are spread over")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "worker replicas sharing the consumer")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "requests in flight per replica (the worker's --concurrency)")
	fs.IntVar(&cfg.InFlight, "inflight", 0, "requests the driver keeps outstanding (0 = 2 × replicas × concurrency)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency the sandbox adds to every Airbyte call (e.g. 50ms)")
	fs.StringVar(&cfg.Lookup, "lookup", "recovery", "the worker's --lookup: recovery or always")
	procs := fs.Bool("procs", false, "run each replica as a `provisioner run` process (honest CPU and RSS per replica)")
	fs.StringVar(&cfg.Binary, "bin", "", "provisioner binary for --procs (default: this executable)")
	fs.IntVar(&cfg.Cluster, "cluster", 0, "run on a cluster of this many nats-server processes (3: R3 streams and bucket, product and floor alike); 0 = one embedded server")
	fs.BoolVar(&cfg.SkipFloor, "no-floor", false, "skip the floor measurement")
	fs.BoolVar(&cfg.SkipAwait, "no-await", false, "skip the measurement of the app's await path (package client)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for NATS data and secrets (default: a temporary directory, removed afterwards)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "bound on each phase's wait for its results (0 = 10m)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write this process's CPU profile of the product phase to `file`")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write this process's allocation profile after the product phase to `file`")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the human-readable report")
	logLevel := fs.String("log-level", "warn", "level of replica and sandbox logs on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	switch {
	case *procs && cfg.Binary == "":
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Binary = exe
	case !*procs:
		cfg.Binary = ""
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	rep, err := bench.Run(ctx, cfg, newLogger(stderr, "auto", *logLevel))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
