package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"runtime"

	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/metrics"
)

// loadConfig reads flags and env into a validated Config; every mistake is a usage error (exit 2)
// reported before any connection is attempted.
func loadConfig(h help, name string, args []string, stderr io.Writer, base config.Config) (config.Config, error) {
	cfg := base
	fs := cfg.FlagSet("provisioner " + name)
	h.install(fs, stderr)
	if err := cfg.Parse(fs, args, nil); err != nil {
		if err == flag.ErrHelp {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func buildInfo() metrics.BuildInfo {
	return metrics.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
}

var runHelp = help{
	usage: []string{"provisioner run [flags]"},
	about: "Run the production worker: consume requests, provision Airbyte connectors, publish results.\n" +
		"Without --nats-url it starts an embedded NATS server. --airbyte-client-id, an Airbyte client secret,\n" +
		"a secret backend and --secret-path-policy are required.",
	env: true,
}

func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := loadConfig(runHelp, "run", args, stderr, config.Default())
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	tp, stopTracing, err := startTracing(ctx, "", logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	err = app.Run(ctx, cfg, app.Options{Logger: logger, Build: buildInfo(), UserAgent: "provisioner/" + version, TracerProvider: tp})
	var drift *consumer.DriftError
	if errors.As(err, &drift) {
		return usageError{err} // a configuration mistake: exit 2
	}
	return err
}
