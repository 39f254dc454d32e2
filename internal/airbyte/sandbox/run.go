package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Run is the `provisioner sandbox` command: it parses args, serves the sandbox until ctx ends
// and returns once it has shut down. It prints the address, never the client secret. configure
// runs on the flag set once every flag is registered (the command's help format, for one).
func Run(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger, configure ...func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		cfg        Config
		listen     string
		latency    = fs.Duration("latency", 0, "latency added to every API call (e.g. 20ms)")
		faultsFile = fs.String("faults", "", "JSON `file` with the initial fault plan ({\"rules\": {\"*\": {\"latency\": \"50ms\", \"error_rates\": {\"503\": 0.05}}}})")
	)
	fs.StringVar(&listen, "listen", "127.0.0.1:8081", "`address` to listen on")
	fs.StringVar(&cfg.ClientID, "client-id", DefaultClientID, "accepted application client id")
	fs.StringVar(&cfg.ClientSecret, "client-secret", DefaultClientSecret, "accepted application client secret")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of every random fault decision")
	fs.BoolVar(&cfg.StrictAuth, "strict-auth", false, "enforce each operation's documented bearer token (application token for connector operations, scoped token for scoped-token info and /embedded/sources); 403 otherwise")
	fs.DurationVar(&cfg.OperatorTTL, "operator-ttl", DefaultOperatorTTL, "JWT lifetime of application tokens")
	fs.DurationVar(&cfg.ExpiresIn, "expires-in", 0, "expires_in reported for application tokens (default: operator-ttl; larger reproduces airbytehq/airbyte#55784)")
	fs.DurationVar(&cfg.ScopedTTL, "scoped-ttl", DefaultScopedTTL, "JWT lifetime of scoped and widget tokens")
	for _, c := range configure {
		c(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("sandbox: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sandbox: unexpected arguments %s", strings.Join(fs.Args(), " "))
	}
	if *faultsFile != "" {
		b, err := os.ReadFile(*faultsFile)
		if err != nil {
			return fmt.Errorf("sandbox: read faults: %w", err)
		}
		if err := json.Unmarshal(b, &cfg.Faults); err != nil {
			return fmt.Errorf("sandbox: parse faults %s: %w", *faultsFile, err)
		}
	}
	if *latency > 0 {
		if cfg.Faults.Rules == nil {
			cfg.Faults.Rules = map[string]FaultRule{}
		}
		r := cfg.Faults.Rules[OpAll]
		r.Latency = *latency
		cfg.Faults.Rules[OpAll] = r
	}
	cfg.Logger = logger
	srv := New(cfg)
	base, done, err := srv.Serve(ctx, listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sandbox: listening on %s (client id %s, organization %s)\n", base, srv.cfg.ClientID, srv.cfg.OrganizationID)
	if err := <-done; err != nil {
		return fmt.Errorf("sandbox: serve: %w", err)
	}
	return nil
}
