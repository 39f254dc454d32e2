package main

import (
	"context"
	"errors"
	"io"

	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/doctor"
)

var doctorHelp = help{
	usage: []string{"provisioner doctor [flags]"},
	about: "Check a configuration the way run would use it, changing nothing: NATS and the permissions the worker\n" +
		"needs, the streams, consumer and ledger bucket, each secret backend, and the Airbyte token mint.\n" +
		"Takes exactly run's flags and PROVISIONER_* variables. One line per check; exit 1 if any fails.",
	env: true,
}

// errChecksFailed ends doctor with exit 1 after the report said what failed.
var errChecksFailed = errors.New("some checks failed (see above)")

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(doctorHelp, "doctor", args, stderr, config.Default())
	if err != nil {
		return err
	}
	rep := doctor.Run(ctx, cfg, doctor.Options{UserAgent: "provisioner-doctor/" + version})
	if err := rep.Write(stdout); err != nil {
		return err
	}
	if !rep.OK() {
		return errChecksFailed
	}
	return nil
}
