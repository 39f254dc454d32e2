package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/natsembed"
)

// jwtPrefix starts every JWT the sandbox mints (base64 of `{"alg":`): a token in a log line.
const jwtPrefix = "eyJhbGci"

// soak runs the whole soak and returns its report; an error means the soak itself could not run.
func soak(ctx context.Context, o options, logger *slog.Logger, out io.Writer) (*Report, error) {
	began := time.Now()
	plan, err := NewPlan(o.plan)
	if err != nil {
		return nil, err
	}
	st := plan.Stats()
	fmt.Fprintf(out, "chaos: seed=%d requests=%d publishes=%d resends=%d exact_duplicates=%d same_identity_ids=%d missing_secret=%d workspaces=%d workers=%d kills=%d nats_restarts=%d\n",
		o.plan.Seed, st.Requests, st.Sends, st.Resends, st.ExactDuplicates, st.SameIdentity, st.Missing, o.plan.Workspaces, o.workers, o.kills, o.natsRestarts)
	fmt.Fprintf(out, "chaos: lifecycle: identities=%d (embedded %d) rotations=%d resubmits=%d disconnects=%d\n",
		st.Identities, st.Embedded, st.Rotations, st.Resubmits, st.Disconnects)

	dir, removeDir, err := workDir(o.dir)
	if err != nil {
		return nil, err
	}
	passed := false
	defer func() {
		if passed && removeDir && !o.keep {
			_ = os.RemoveAll(dir)
			return
		}
		fmt.Fprintf(out, "chaos: work directory (worker logs, NATS store): %s\n", dir)
	}()
	secretsDir := filepath.Join(dir, "secrets")
	if err := writeSecrets(secretsDir, plan); err != nil {
		return nil, err
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "provisioner")
		logger.Info("building the worker", "output", bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/provisioner")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build the worker (run from the module root, or give -bin): %w", err)
		}
	}

	broker, cluster, natsURL, err := startNATS(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	defer stopNATS(broker, cluster)

	sb := sandbox.New(sandbox.Config{Seed: o.plan.Seed, Faults: faultPlan(o), StrictAuth: true})
	history := NewHistory(sb, plan.Workspaces())
	airbyteURL, stopSandbox, err := serveSandbox(history.Wrap(sb.Handler()))
	if err != nil {
		return nil, err
	}
	defer stopSandbox()

	nc, err := nats.Connect(natsURL, nats.Name("chaos soak"), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}

	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		return nil, err
	}
	workersStarted := time.Now()
	workers, err := StartWorkers(WorkerSpec{
		Bin: bin, LogDir: logDir,
		Args: append([]string{"run",
			"--nats-url", natsURL,
			"--airbyte-url", airbyteURL,
			"--airbyte-client-id", sandbox.DefaultClientID,
			"--secrets-dir", secretsDir,
			"--secret-path-policy", "customers/{workspace_name}/",
			"--metrics-addr", "127.0.0.1:0",
			"--concurrency", fmt.Sprint(o.concurrency),
			"--ack-wait", o.ackWait.String(),
			"--max-deliver", fmt.Sprint(o.maxDeliver),
			"--airbyte-timeout", (o.ackWait / 3).String(),
			"--shutdown-timeout", "10s",
			"--lookup", o.lookup,
			"--log-format", "json",
			// verdict lines are debug (the result is the verdict); the timelines of failed checks use them
			"--log-level", "debug",
		}, clusterWorkerArgs(o)...),
		// the client secret travels in the environment, never on a command line
		Env:           []string{"PROVISIONER_AIRBYTE_CLIENT_SECRET=" + sandbox.DefaultClientSecret},
		EnvOf:         clusterWorkerEnv(o),
		StartedMarker: `"msg":"worker started"`,
	}, o.workers, logger)
	if err != nil {
		return nil, err
	}
	workersStopped := false
	defer func() {
		if !workersStopped {
			workers.Stop(10 * time.Second)
		}
	}()

	var timing ClusterStats
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	setupCtx, cancelSetup := context.WithTimeout(runCtx, time.Minute)
	err = WaitForConsumer(setupCtx, js)
	if err == nil {
		timing.ColdStart, err = waitConsuming(setupCtx, workers, workersStarted)
	}
	cancelSetup()
	if err != nil {
		return nil, err
	}
	needles := append(plan.SecretValues(), sandbox.DefaultClientSecret, jwtPrefix)
	reader, err := NewResultReader(runCtx, js, needles, logger)
	if err != nil {
		return nil, err
	}
	tl := NewTimeline()
	readerCtx, stopReader := context.WithCancel(runCtx)
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); reader.Run(readerCtx, tl) }()
	defer func() { stopReader(); <-readerDone }()

	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		pubDone <- Publish(runCtx, js, plan, o.rate, tl, func(n int) { published.Store(int64(n)) }, logger)
	}()

	stalls := &stallTracker{plan: plan, reader: reader, published: &published}
	stallCtx, stopStalls := context.WithCancel(runCtx)
	go stalls.run(stallCtx)
	ch := &chaos{workers: workers, broker: broker, cluster: cluster, js: js, logger: logger, rng: rand.New(rand.NewPCG(uint64(o.plan.Seed), 0x6b696c6c))}
	steps := schedule(o.kills, o.natsRestarts)
	if cluster != nil {
		steps = withLeaderKills(steps, o.leaderKills)
	}
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		ch.run(runCtx, steps, func() float64 {
			return float64(reader.Answered()) / float64(len(plan.Requests))
		})
	}()

	var problems []string
	convergeErr := converge(runCtx, js, logger, len(plan.Sends), len(plan.Requests), &published, pubDone, chaosDone, reader, ch)
	converged := time.Since(began)
	stopStalls()
	if convergeErr == nil && o.lateResends > 0 {
		convergeErr = resendLate(runCtx, js, plan, o.lateResends, o.lateAfter, tl, logger, reader, ch)
	}
	if convergeErr != nil {
		problems = append(problems, convergeErr.Error())
	}

	// Stop the workers before the final count: nothing may change under it.
	stopReader()
	<-readerDone
	unclean := workers.Stop(20 * time.Second)
	workersStopped = true
	<-chaosDone

	finalCtx, cancelFinal := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancelFinal()
	obs, err := observe(finalCtx, js, reader, tl, airbyteURL, plan)
	if err != nil {
		return nil, err
	}
	obs.Held = history.Held()
	rep := Verify(plan, obs)
	rep.Problems = append(problems, rep.Problems...)
	timing.LeaderKills = int(ch.leaderKills.Load())
	var stallFrom time.Time
	timing.MaxStall, stallFrom = stalls.Max()
	rep.Cluster = timing
	if timing.LeaderKills < o.leaderKills && cluster != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the chaos fell short: %d of %d leader kills", timing.LeaderKills, o.leaderKills))
	}
	if kills, restarts := ch.counts(); kills < o.kills || restarts < o.natsRestarts {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the chaos fell short: %d of %d kills, %d of %d NATS restarts", kills, o.kills, restarts, o.natsRestarts))
	}
	_, invalid := reader.Results()
	for _, s := range invalid {
		rep.Problems = append(rep.Problems, "unreadable result: "+s)
	}
	var notes []string
	for _, e := range workers.Unexpected() {
		if e.Started {
			rep.Problems = append(rep.Problems, e.String())
		} else {
			// a start-up that fails while NATS is away is the supervisor's to retry; worth a note
			notes = append(notes, e.String())
		}
	}
	rep.Problems = append(rep.Problems, unclean...)
	leaks := reader.Leaks()
	logLeaks, err := scanLogs(workers.Logs(), needles)
	if err != nil {
		return nil, err
	}
	for k, v := range logLeaks {
		leaks[k] += v
	}
	dlqLeaks, err := scanDeadLetters(finalCtx, js, needles)
	if err != nil {
		return nil, err
	}
	for k, v := range dlqLeaks {
		leaks[k] += v
	}
	for _, k := range slices.Sorted(maps.Keys(leaks)) {
		rep.Problems = append(rep.Problems, fmt.Sprintf("secret or token leaked: %s (%d times)", k, leaks[k]))
	}

	kills, restarts := ch.counts()
	stats := sb.Stats()
	fmt.Fprintf(out, "chaos: converged in %s; kills=%d nats_restarts=%d leader_kills=%d worker_logs=%d\n", converged.Round(time.Millisecond), kills, restarts, timing.LeaderKills, len(workers.Logs()))
	if !stallFrom.IsZero() {
		fmt.Fprintf(out, "chaos: longest stall %.1fs from %s (%.1fs into the run)\n", timing.MaxStall.Seconds(), stallFrom.Format("15:04:05.000"), stallFrom.Sub(began).Seconds())
	}
	fmt.Fprintf(out, "chaos: sandbox calls: %s\n", counts(stats.Requests))
	fmt.Fprintf(out, "chaos: sandbox faults: %s; connectors created=%d (committed then failed=%d); tokens minted: %s\n",
		counts(stats.Faults), stats.Created, stats.CommittedThenFailed, counts(stats.TokensMinted))
	for _, n := range notes {
		fmt.Fprintln(out, "chaos: note:", n)
	}
	if !rep.OK() {
		report(out, rep, tl, workers.Logs())
	}
	fmt.Fprintf(out, "chaos: wall time %s\n", time.Since(began).Round(time.Millisecond))
	passed = rep.OK()
	return &rep, nil
}

// serveSandbox serves the sandbox's API (behind the history's recording) on a port of its own.
func serveSandbox(h http.Handler) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("sandbox listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// workDir returns the soak's directory, and whether the soak made it (and may remove it).
func workDir(dir string) (string, bool, error) {
	if dir != "" {
		return dir, false, os.MkdirAll(dir, 0o750)
	}
	d, err := os.MkdirTemp("", "provisioner-chaos-")
	return d, true, err
}

// writeSecrets writes the plan's credentials as JSON files below dir.
func writeSecrets(dir string, p *Plan) error {
	for path, fields := range p.Secrets {
		full := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			return err
		}
		b, _ := json.Marshal(fields)
		if err := os.WriteFile(full, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// faultPlan is what the sandbox does wrong: every call waits 2ms-latency and fails 5xx at faultRate,
// every operation throttles 3 calls in 100 with a 429 and Retry-After 1s, and creates commit and
// then fail at commitFail.
func faultPlan(o options) sandbox.Faults {
	third := o.faultRate / 3
	base := sandbox.FaultRule{
		Latency: 2 * time.Millisecond, LatencyJitter: o.latency - 2*time.Millisecond,
		ErrorRates:     map[int]float64{500: third, 502: third, 503: third},
		RateLimitBurst: sandbox.RateLimitBurst{Every: 100, Length: 3, RetryAfter: time.Second},
	}
	create := base
	create.CommitThenFail = o.commitFail
	return sandbox.Faults{Rules: map[string]sandbox.FaultRule{sandbox.OpAll: base, sandbox.OpConnectorsCreate: create}}
}

// broker is the embedded NATS server, restartable on the same port and store.
type broker struct {
	mu  sync.Mutex
	cfg natsembed.Config
	srv *natsembed.Server
}

func startBroker(storeDir string) (*broker, error) {
	b := &broker{cfg: natsembed.Config{Host: "127.0.0.1", Port: -1, StoreDir: storeDir, ServerName: "chaos"}}
	srv, err := natsembed.Start(b.cfg)
	if err != nil {
		return nil, err
	}
	b.srv, b.cfg.Port = srv, srv.Port() // restarts reuse the port, so clients reconnect
	return b, nil
}

// URL is the client URL; it does not change across restarts.
func (b *broker) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", b.cfg.Port) }

// Restart stops the server, waits pause, and starts it again on the same port and store.
func (b *broker) Restart(ctx context.Context, pause time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv = nil
	}
	select {
	case <-time.After(pause):
	case <-ctx.Done():
	}
	srv, err := natsembed.Start(b.cfg)
	if err != nil {
		return fmt.Errorf("restart nats: %w", err)
	}
	b.srv = srv
	return nil
}

// Shutdown stops the server.
func (b *broker) Shutdown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv = nil
	}
}

// step is one act of chaos, done once progress (the share of request ids answered) reaches at.
type step struct {
	at           float64
	restartNATS  bool
	leaderTarget string // with -cluster: SIGKILL the node leading this (see cluster.go)
}

// schedule spreads the kills over 15%-75% of progress and the NATS restarts around the middle.
func schedule(kills, natsRestarts int) []step {
	var steps []step
	for i := range kills {
		steps = append(steps, step{at: 0.9 * float64(i+1) / float64(kills+1)})
	}
	for j := range natsRestarts {
		steps = append(steps, step{at: 0.1 + 0.8*float64(2*j+1)/float64(2*natsRestarts), restartNATS: true})
	}
	sortSteps(steps)
	return steps
}

func sortSteps(steps []step) {
	sort.SliceStable(steps, func(a, b int) bool { return steps[a].at < steps[b].at })
}

// chaos carries out a schedule.
type chaos struct {
	workers *Workers
	broker  *broker      // one server (nil with -cluster)
	cluster *natsCluster // with -cluster
	js      jetstream.JetStream
	logger  *slog.Logger
	rng     *rand.Rand

	kills, restarts, leaderKills atomic.Int64
}

func (c *chaos) run(ctx context.Context, steps []step, progress func() float64) {
	for _, s := range steps {
		for progress() < s.at {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		if s.leaderTarget != "" {
			c.killLeader(ctx, s.leaderTarget, progress())
			continue
		}
		if s.restartNATS {
			c.logger.Info("chaos: restarting the NATS server", "progress", fmt.Sprintf("%.0f%%", 100*progress()))
			if err := c.broker.Restart(ctx, time.Second); err != nil {
				c.logger.Error("chaos: NATS did not come back", "error", err)
				return
			}
			c.restarts.Add(1)
			continue
		}
		n := c.rng.IntN(c.workers.Len())
		pause := time.Duration(c.rng.Int64N(int64(time.Second)))
		c.logger.Info("chaos: SIGKILL", "worker", n, "restart_after", pause.Round(time.Millisecond), "progress", fmt.Sprintf("%.0f%%", 100*progress()))
		if err := c.workers.Kill(ctx, n, pause); err != nil {
			c.logger.Error("chaos: kill failed", "worker", n, "error", err)
			continue
		}
		c.kills.Add(1)
	}
}

func (c *chaos) counts() (kills, restarts int) { return int(c.kills.Load()), int(c.restarts.Load()) }

// converge waits until everything is published, the chaos is over, every request id has a result
// and the workers' consumer has nothing pending.
func converge(ctx context.Context, js jetstream.JetStream, logger *slog.Logger, sends, requests int, published *atomic.Int64,
	pubDone <-chan error, chaosDone <-chan struct{}, reader *ResultReader, ch *chaos) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	publishedAll, chaosOver := false, false
	var pending uint64
	var pendingErr error
	for {
		select {
		case err := <-pubDone:
			if err != nil {
				return fmt.Errorf("publishing stopped after %d of %d sends: %w", published.Load(), sends, err)
			}
			publishedAll = true
		case <-chaosDone:
			chaosOver, chaosDone = true, nil
		case <-tick.C:
		case <-ctx.Done():
			kills, restarts := ch.counts()
			return fmt.Errorf("no convergence before the timeout: published %d/%d, answered %d/%d, pending %d (%v), kills %d, nats restarts %d",
				published.Load(), sends, reader.Answered(), requests, pending, pendingErr, kills, restarts)
		}
		answered := reader.Answered()
		infoCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		pending, _, pendingErr = Backlog(infoCtx, js)
		cancel()
		if time.Since(lastLog) >= 5*time.Second {
			kills, restarts := ch.counts()
			logger.Info("progress", "published", published.Load(), "answered", answered, "of", requests, "pending", pending, "kills", kills, "nats_restarts", restarts)
			lastLog = time.Now()
		}
		if publishedAll && chaosOver && answered >= requests && pendingErr == nil && pending == 0 {
			return nil
		}
	}
}

// resendLate publishes n request ids once more, after the run converged and pause passed (a
// client retrying much later, past the duplicate windows), and waits for the run to settle again.
func resendLate(ctx context.Context, js jetstream.JetStream, p *Plan, n int, pause time.Duration, tl *Timeline, logger *slog.Logger, reader *ResultReader, ch *chaos) error {
	late := &Plan{Requests: p.Requests}
	for i, r := range p.Requests {
		if len(late.Sends) == n {
			break
		}
		if !r.MissingSecret {
			late.Sends = append(late.Sends, Send{Request: i, Copy: -1, MsgID: r.ID + "#late"})
		}
	}
	logger.Info("waiting to resend late", "requests", len(late.Sends), "after", pause)
	select {
	case <-time.After(pause):
	case <-ctx.Done():
		return fmt.Errorf("late resends: %w", ctx.Err())
	}
	var published atomic.Int64
	pubDone := make(chan error, 1)
	pubDone <- Publish(ctx, js, late, 0, tl, func(i int) { published.Store(int64(i)) }, logger)
	chaosDone := make(chan struct{})
	close(chaosDone)
	return converge(ctx, js, logger, len(late.Sends), len(p.Requests), &published, pubDone, chaosDone, reader, ch)
}

// observe collects the final state once the workers are stopped.
func observe(ctx context.Context, js jetstream.JetStream, reader *ResultReader, tl *Timeline, airbyteURL string, p *Plan) (Observation, error) {
	var o Observation
	var err error
	if err = reader.CatchUp(ctx, tl); err != nil {
		return o, err
	}
	o.Results, _ = reader.Results()
	if o.Pending, o.Stranded, err = Backlog(ctx, js); err != nil {
		return o, err
	}
	if o.DeadLetters, err = ReadDeadLetters(ctx, js); err != nil {
		return o, err
	}
	if o.StoredResults, err = StoredMessages(ctx, js, resultsStream); err != nil {
		return o, err
	}
	for _, ws := range p.Workspaces() {
		cs, err := sandboxConnectors(ctx, airbyteURL, ws)
		if err != nil {
			return o, err
		}
		o.Connectors = append(o.Connectors, cs...)
	}
	return o, nil
}

// sandboxConnectors asks the sandbox's admin view which connectors a workspace holds, and which
// credentials (by digest) each one holds.
func sandboxConnectors(ctx context.Context, airbyteURL, workspace string) ([]Connector, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, airbyteURL+"/_sandbox/connectors?workspace_name="+url.QueryEscape(workspace), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandbox connectors of %s: %w", workspace, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sandbox connectors of %s: status %d", workspace, resp.StatusCode)
	}
	var cs []sandbox.Connector
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		return nil, fmt.Errorf("sandbox connectors of %s: %w", workspace, err)
	}
	out := make([]Connector, 0, len(cs))
	for _, c := range cs {
		out = append(out, Connector{
			ID: c.ID, CreatedAt: c.CreatedAt, CredentialsSHA256: c.CredentialsSHA256,
			Identity: Identity{Workspace: c.WorkspaceName, ConnectorType: c.ConnectorType, Name: c.Name},
		})
	}
	return out, nil
}

// scanLogs counts secrets and tokens in the worker logs.
func scanLogs(files, needles []string) (map[string]int, error) {
	texts := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		texts[filepath.Base(f)] = b
	}
	return Leaks(needles, texts), nil
}

// maxTimelines bounds how many request timelines a failing run prints.
const maxTimelines = 12

// report prints the problems and the timelines of the request ids that explain them.
func report(out io.Writer, rep Report, tl *Timeline, logs []string) {
	fmt.Fprintf(out, "chaos: %d problem(s):\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "  -", p)
	}
	ids := rep.Suspects
	if len(ids) > maxTimelines {
		fmt.Fprintf(out, "chaos: timelines of %d of %d suspect request ids:\n", maxTimelines, len(ids))
		ids = ids[:maxTimelines]
	}
	lines := LogLines(logs, ids, os.ReadFile)
	for _, id := range ids {
		fmt.Fprintf(out, "--- %s\n", id)
		for _, e := range tl.Of(id) {
			fmt.Fprintln(out, "   ", e)
		}
		for _, l := range lines[id] {
			fmt.Fprintln(out, "   ", strings.TrimSpace(l))
		}
	}
}

// counts prints the non-zero counters, sorted by name.
func counts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
