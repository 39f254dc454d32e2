// Command chaos is the provisioner's chaos soak (issues 4 and 11): it runs an embedded NATS server
// and the Airbyte sandbox in process, three `provisioner run` worker processes sharing the
// consumer, and publishes thousands of requests that make connectors live their life — creates,
// rotations with new secrets, the same secret again, disconnects and re-connects, of Agent Engine
// connectors and embedded sources — with resends of the same request id, exact duplicates and
// requests whose secret is missing, while the sandbox injects 5xx, 429 bursts with Retry-After,
// latency and commit-then-fail, workers are SIGKILLed and restarted and the NATS server is
// restarted. It then proves the product's guarantees: at most one connector per identity, holding
// exactly the credentials of its last applied request (or none after a disconnect), one result per
// request id and a true one, one dead letter per request that cannot succeed, nothing pending, and
// no secret or token in any log or result.
//
// It ends with one line,
//
//	chaos: requests=N identities=N connectors=N duplicates=N results=N missing_results=N extra_results=N dead_letters=N expected_dead_letters=N pending=N wrong_results=N final_state_mismatches=N superseded=N
//
// and exits 1 unless every guarantee held, with the evidence (problems, per-request timelines
// from the soak and the worker logs) above it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the soak's flags.
type options struct {
	plan         PlanConfig
	workers      int
	kills        int
	natsRestarts int
	cluster      int // 0 = one embedded server; else a cluster of this many nats-server processes
	leaderKills  int
	bin          string
	timeout      time.Duration
	rate         float64
	concurrency  int
	ackWait      time.Duration
	maxDeliver   int
	faultRate    float64
	commitFail   float64
	latency      time.Duration
	lateResends  int
	lateAfter    time.Duration
	lookup       string
	dir          string
	keep         bool
	verbose      bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.plan.Requests, "requests", 10000, "distinct request ids to publish")
	fs.IntVar(&o.plan.Workspaces, "workspaces", 0, "workspaces to spread them over (0 = requests/50, at least 3)")
	fs.Float64Var(&o.plan.Resends, "duplicates", 0.15, "share of requests published once more with the same request id")
	fs.Float64Var(&o.plan.ExactDuplicates, "exact-duplicates", 0.02, "share of requests published once more as the very same message (same Nats-Msg-Id; the broker drops it)")
	fs.Float64Var(&o.plan.SameIdentity, "same-identity", 0.30, "share of request ids that act on an identity already asked for: new credentials, the same again, a disconnect, a re-connect")
	fs.Float64Var(&o.plan.Embedded, "embedded", 0.25, "share of identities that are embedded (template-based) sources, updated in place; the others are replaced")
	fs.Float64Var(&o.plan.Missing, "missing", 0.02, "share of requests whose secret is missing (each must end in one error result and one dead letter)")
	fs.Int64Var(&o.plan.Seed, "seed", 0, "seed of the plan, the chaos schedule and the sandbox's faults (0 = from the clock)")
	fs.IntVar(&o.workers, "workers", 3, "worker processes sharing the consumer")
	fs.IntVar(&o.kills, "kills", 5, "worker SIGKILL+restarts over the run")
	fs.IntVar(&o.natsRestarts, "nats-restarts", 1, "NATS server restarts over the run (one server only)")
	fs.IntVar(&o.cluster, "cluster", 0, "run on a cluster of this many nats-server processes (3: R3 streams and ledger) instead of one embedded server")
	fs.IntVar(&o.leaderKills, "leader-kills", 4, "with -cluster: SIGKILL+restarts of the node leading the requests stream, the consumer, the ledger or the results stream, in turn")
	fs.StringVar(&o.bin, "bin", "", "provisioner binary (empty = go build ./cmd/provisioner into the work directory)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up (and fail) after this long")
	fs.Float64Var(&o.rate, "rate", 400, "publishes per second (0 = unlimited)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "--concurrency of each worker")
	fs.DurationVar(&o.ackWait, "ack-wait", 6*time.Second, "--ack-wait of each worker (a killed worker's requests come back after it)")
	fs.IntVar(&o.maxDeliver, "max-deliver", 10, "--max-deliver of each worker")
	fs.Float64Var(&o.faultRate, "fault-rate", 0.03, "share of every sandbox call answered 500, 502 or 503")
	fs.Float64Var(&o.commitFail, "commit-then-fail", 0.03, "share of creates committed whose response is lost")
	fs.DurationVar(&o.latency, "latency", 20*time.Millisecond, "every sandbox call takes 2ms up to this long")
	fs.IntVar(&o.lateResends, "late-resends", 0, "request ids published once more -late-after the run converged (past the duplicate windows)")
	fs.DurationVar(&o.lateAfter, "late-after", 2*time.Minute+10*time.Second, "how long after convergence the late resends go out")
	fs.StringVar(&o.lookup, "lookup", "recovery", "--lookup of each worker: recovery or always")
	fs.StringVar(&o.dir, "dir", "", "work directory (empty = a new temporary one, removed after a passing run)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, NATS store) after a passing run")
	fs.BoolVar(&o.verbose, "v", false, "log the soak's own debug lines")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.plan.Workspaces == 0 {
		o.plan.Workspaces = max(3, o.plan.Requests/50)
	}
	if o.plan.Seed == 0 {
		o.plan.Seed = time.Now().UnixNano()
	}
	switch {
	case o.workers < 1:
		return o, fmt.Errorf("-workers must be at least 1")
	case o.cluster != 0 && (o.cluster < 3 || o.natsRestarts != 0 || o.leaderKills < 0):
		return o, fmt.Errorf("-cluster needs at least 3 nodes, -nats-restarts 0 (kill leaders with -leader-kills instead)")
	case o.kills < 0 || o.natsRestarts < 0 || o.lateResends < 0:
		return o, fmt.Errorf("-kills, -nats-restarts and -late-resends must not be negative")
	case o.faultRate < 0 || o.faultRate > 0.5 || o.commitFail < 0 || o.commitFail > 0.5:
		return o, fmt.Errorf("-fault-rate and -commit-then-fail must be within [0, 0.5]")
	case o.latency < 2*time.Millisecond:
		return o, fmt.Errorf("-latency must be at least 2ms")
	case o.lookup != "recovery" && o.lookup != "always":
		return o, fmt.Errorf("-lookup must be recovery or always")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	noColor := true
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		noColor = false
	}
	logger := slog.New(tint.NewTextHandler(stderr, &tint.Options{Level: level, TimeFormat: "15:04:05.000", NoColor: noColor}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := soak(ctx, o, logger, stdout)
	if err != nil {
		fmt.Fprintln(stdout, "chaos: FAIL:", err)
	}
	if rep != nil {
		fmt.Fprintln(stdout, rep.Line())
	}
	if err != nil || rep == nil || !rep.OK() {
		return 1
	}
	return 0
}
