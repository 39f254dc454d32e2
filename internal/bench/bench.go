// Package bench owns `provisioner bench`: in one invocation it starts an embedded NATS server, the
// Airbyte sandbox with a per-call latency and R worker replicas (in this process, or as `provisioner
// run` processes) sharing the consumer, publishes N credentials-submitted requests over W
// workspaces, waits for every result and reports throughput, end-to-end latency, Airbyte calls and
// token mints per connector, CPU per request and peak RSS. In the same run it measures a floor: the
// same NATS and HTTP round trips with no provisioning logic, at the same concurrency, and reports the
// product's throughput as a ratio of it.
//
// Two scenarios: create (every request a connector of its own) and rotate (the N connectors are
// created first, unmeasured; then N requests with new request ids and a new secret rotate their
// credentials, and only those are measured: an Agent Engine connector's rotation is a replace,
// which the floor makes as a create and a delete).
//
// The benchmark reports; it never judges. Targets are documented in docs/bench.md.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/airbyte/sandbox"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/natsembed"
	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
	"github.com/provisioner-dev/provisioner/internal/secret"
)

// Config is one benchmark run.
type Config struct {
	// Scenario is ScenarioCreate (the default) or ScenarioRotate.
	Scenario    string
	Requests    int // N requests, each for a connector of its own
	Workspaces  int // W workspaces the requests are spread over, round robin
	Replicas    int // R worker replicas sharing the consumer
	Concurrency int // requests in flight per replica (the worker's --concurrency)
	// Embedded makes the connectors embedded sources (source_template_id): a rotation is then one
	// PUT of the source's config instead of a replace.
	Embedded bool
	InFlight int           // requests the driver keeps outstanding; 0 = 2 × Replicas × Concurrency
	Latency  time.Duration // added by the sandbox to every Airbyte call
	Lookup   string        // the worker's --lookup: recovery (default) or always
	// Binary, when set, runs each replica as `Binary run` in a process of its own, so that its CPU
	// and RSS are its own; empty runs the replicas in this process.
	Binary string
	// Cluster, when above 0, runs the product and the floor on a cluster of that many nats-server
	// processes (built from the module cache at the version go.mod pins, so run from the module) with
	// streams and bucket replicated min(Cluster, 3) times; 0 = one embedded server.
	Cluster int
	// SkipFloor skips the floor measurement.
	SkipFloor bool
	// SkipAwait skips the measurement of the app's await path (package client).
	SkipAwait bool
	// Dir holds NATS data and secrets; empty = a temporary directory, removed afterwards.
	Dir string
	// Timeout bounds each phase's wait for its results; 0 = 10 minutes.
	Timeout time.Duration
	// CPUProfile and MemProfile, when set, receive this process's CPU profile of the product phase
	// and its allocation profile at the end of it (in-process replicas are in it).
	CPUProfile, MemProfile string
}

// Scenarios.
const (
	ScenarioCreate = "create" // N requests, each creating a connector of its own
	ScenarioRotate = "rotate" // N connectors created unmeasured, then N rotations of their credentials measured
)

func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = ScenarioCreate
	}
	if c.Lookup == "" {
		c.Lookup = "recovery"
	}
	if c.InFlight == 0 {
		c.InFlight = 2 * c.Replicas * c.Concurrency
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	return c
}

// Validate names the first setting at fault.
func (c Config) Validate() error {
	var errs []error
	if c.Scenario != "" && c.Scenario != ScenarioCreate && c.Scenario != ScenarioRotate {
		errs = append(errs, fmt.Errorf("scenario must be create or rotate, got %q", c.Scenario))
	}
	if c.Requests < 1 {
		errs = append(errs, errors.New("requests must be at least 1"))
	}
	if c.Workspaces < 1 {
		errs = append(errs, errors.New("workspaces must be at least 1"))
	}
	if c.Replicas < 1 || c.Replicas > 64 {
		errs = append(errs, errors.New("replicas must be between 1 and 64"))
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		errs = append(errs, errors.New("concurrency must be between 1 and 4096"))
	}
	if c.InFlight < 0 {
		errs = append(errs, errors.New("inflight must not be negative"))
	}
	if c.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
	}
	if c.Lookup != "" && c.Lookup != "recovery" && c.Lookup != "always" {
		errs = append(errs, fmt.Errorf("lookup must be recovery or always, got %q", c.Lookup))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	if c.Cluster < 0 || c.Cluster == 1 || c.Cluster == 2 || c.Cluster > 5 {
		errs = append(errs, errors.New("cluster must be 0 (one embedded server) or 3 to 5 nodes"))
	}
	return errors.Join(errs...)
}

// Report is what a run measured. Rates are per second of wall time from the first publish to the
// last result; latencies are from a request's publish to its result's arrival at the driver.
type Report struct {
	// Parameters.
	Scenario    string  `json:"scenario"`
	Requests    int     `json:"requests"`
	Workspaces  int     `json:"workspaces"`
	Replicas    int     `json:"replicas"`
	Concurrency int     `json:"concurrency"`
	InFlight    int     `json:"inflight"`
	LatencyMs   float64 `json:"latency_ms"`
	Lookup      string  `json:"lookup"`
	Embedded    bool    `json:"embedded,omitempty"`
	Mode        string  `json:"mode"` // "in-process" or "processes"
	// Cluster is the number of nats-server processes (0: one embedded server); StreamReplicas the
	// replicas of the streams and the bucket, the product's and the floor's alike.
	Cluster        int    `json:"cluster,omitempty"`
	StreamReplicas int    `json:"stream_replicas"`
	CPUs           int    `json:"cpus"`
	GoVersion      string `json:"go_version"`

	// The product.
	Connectors     int     `json:"connectors"`      // source_created results
	Updates        int     `json:"updates"`         // source_updated results (rotate)
	Deleted        int64   `json:"sandbox_deleted"` // connectors the sandbox deleted in the measured phase (rotate: one per replace)
	Errors         int     `json:"errors"`          // error results
	Repeated       int     `json:"repeated"`        // results seen again for an answered request
	Created        int64   `json:"sandbox_created"` // connectors the sandbox committed (exactly one per request)
	ElapsedS       float64 `json:"elapsed_s"`
	ThroughputPerS float64 `json:"throughput_per_s"`
	P50Ms          float64 `json:"p50_ms"`
	P95Ms          float64 `json:"p95_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	// APICallsPerConnector is Airbyte calls per connector by operation, tokens included, as the
	// sandbox counted them; APICallsPerConnectorTotal is their sum.
	APICallsPerConnector      map[string]float64 `json:"api_calls_per_connector"`
	APICallsPerConnectorTotal float64            `json:"api_calls_per_connector_total"`
	// APICallsPerUpdate and APICallsPerUpdateTotal are the same per rotation (rotate only), and
	// APICallsPerUpdateRatioToFloor the total divided by the floor's.
	APICallsPerUpdate             map[string]float64 `json:"api_calls_per_update,omitempty"`
	APICallsPerUpdateTotal        float64            `json:"api_calls_per_update_total,omitempty"`
	APICallsPerUpdateRatioToFloor float64            `json:"api_calls_per_update_ratio_to_floor,omitempty"`
	TokenMints                    map[string]int64   `json:"token_mints"`
	// BoundPerS is what the sandbox latency allows: Replicas × Concurrency / (Airbyte calls per
	// connector × Latency); 0 when the latency is 0.
	BoundPerS    float64 `json:"bound_per_s,omitempty"`
	RatioToBound float64 `json:"ratio_to_bound,omitempty"`
	// CPUSPer1k is CPU seconds per 1,000 requests of CPUScope.
	CPUSPer1k float64 `json:"cpu_s_per_1k"`
	CPUScope  string  `json:"cpu_scope"`
	// HarnessCPUSPer1k is, with replicas as processes, this process's share: NATS, sandbox, driver.
	HarnessCPUSPer1k float64 `json:"harness_cpu_s_per_1k,omitempty"`
	// PeakRSSMiB is the resident high-water mark of RSSScope during the product phase.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSScope   string  `json:"rss_scope"`
	// OtherBusyCPUs is how many CPUs other processes of the machine kept busy, on average, during the
	// product phase: above zero, the figures are of a shared machine.
	OtherBusyCPUs float64 `json:"other_busy_cpus"`

	// The await path, package client (absent with SkipAwait). AwaitStoredPerS is how many stored
	// verdicts per second Await finds (every request of the product phase, InFlight at a time), and
	// AwaitStoredP50Ms/P99Ms how long one such call takes. AwaitPerS is the rate of Requests more
	// requests, each through SubmitAndAwait, InFlight at a time; AwaitP50Ms/P99Ms are from a
	// result's publication (its produced_at) to Await returning it; AwaitRatioToFloor is AwaitPerS
	// over FloorPerS. AwaitCPUSPer1k is CPU seconds per 1,000 requests of that phase, replicas and
	// this process together (compare with CPUSPer1k in-process); AwaitOtherBusy is OtherBusyCPUs during it.
	AwaitStoredPerS   float64 `json:"await_stored_per_s,omitempty"`
	AwaitStoredP50Ms  float64 `json:"await_stored_p50_ms,omitempty"`
	AwaitStoredP99Ms  float64 `json:"await_stored_p99_ms,omitempty"`
	AwaitPerS         float64 `json:"await_per_s,omitempty"`
	AwaitP50Ms        float64 `json:"await_p50_ms,omitempty"`
	AwaitP99Ms        float64 `json:"await_p99_ms,omitempty"`
	AwaitRatioToFloor float64 `json:"await_ratio_to_floor,omitempty"`
	// AwaitToProduct is AwaitPerS over ThroughputPerS: what awaiting every request leaves of the
	// product's rate, measured minutes apart on the same replicas.
	AwaitToProduct float64 `json:"await_to_product,omitempty"`
	AwaitCPUSPer1k float64 `json:"await_cpu_s_per_1k,omitempty"`
	AwaitOtherBusy float64 `json:"await_other_busy_cpus,omitempty"`

	// The floor (absent with SkipFloor).
	FloorPerS      float64 `json:"floor_per_s,omitempty"`
	RatioToFloor   float64 `json:"ratio_to_floor,omitempty"`
	FloorP50Ms     float64 `json:"floor_p50_ms,omitempty"`
	FloorP99Ms     float64 `json:"floor_p99_ms,omitempty"`
	FloorCPUSPer1k float64 `json:"floor_cpu_s_per_1k,omitempty"`
	FloorErrors    int     `json:"floor_errors,omitempty"`
	// FloorAPICallsPerRequest is the floor's Airbyte calls per request of the measured phase, by
	// operation, as its sandbox counted them.
	FloorAPICallsPerRequest      map[string]float64 `json:"floor_api_calls_per_request,omitempty"`
	FloorAPICallsPerRequestTotal float64            `json:"floor_api_calls_per_request_total,omitempty"`
	// FloorOtherBusyCPUs is OtherBusyCPUs during the floor phase.
	FloorOtherBusyCPUs float64 `json:"floor_other_busy_cpus,omitempty"`
}

// Run runs the benchmark: the product phase, then the floor. Replica and sandbox logs go to logger.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "provisioner-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	secretsDir := filepath.Join(dir, "secrets")
	if err := writeSecrets(secretsDir, cfg.Workspaces); err != nil {
		return nil, err
	}
	natsURL, stopNATS, err := startNATS(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	defer stopNATS()

	rep := &Report{
		Scenario: cfg.Scenario, Embedded: cfg.Embedded, Requests: cfg.Requests, Workspaces: cfg.Workspaces, Replicas: cfg.Replicas, Concurrency: cfg.Concurrency,
		InFlight: cfg.InFlight, LatencyMs: ms(cfg.Latency), Lookup: cfg.Lookup, Mode: "in-process",
		CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}
	if cfg.Binary != "" {
		rep.Mode = "processes"
	}
	rep.Cluster, rep.StreamReplicas = cfg.Cluster, streamReplicas(cfg)
	if err := runProduct(ctx, cfg, natsURL, secretsDir, logger, rep); err != nil {
		return nil, err
	}
	if !cfg.SkipFloor {
		runtime.GC()
		if err := runFloor(ctx, cfg, natsURL, logger, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// benchCredential is the made-up GitHub token every workspace's secret file holds, and
// rotatedCredential the one its rotated secret file holds.
const (
	benchCredential   = "ghp_bench_not_a_real_token"
	rotatedCredential = "ghp_bench_rotated_not_a_real_token"
)

// Secret files of each workspace: the first credentials, and the rotated ones.
const (
	secretFile  = "github.json"
	rotatedFile = "github-rotated.json"
)

// writeSecrets writes the file secrets of every workspace, under the path policy "{workspace_name}/".
func writeSecrets(dir string, workspaces int) error {
	for file, token := range map[string]string{secretFile: benchCredential, rotatedFile: rotatedCredential} {
		body, _ := json.Marshal(map[string]string{"token": token})
		for w := range workspaces {
			p := filepath.Join(dir, workspaceName(w), file)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return fmt.Errorf("write secrets: %w", err)
			}
			if err := os.WriteFile(p, body, 0o600); err != nil {
				return fmt.Errorf("write secrets: %w", err)
			}
		}
	}
	return nil
}

func workspaceName(w int) string { return "bench-ws-" + strconv.Itoa(w) }

// githubTemplate is the sandbox's source template of GitHub, for embedded sources.
const githubTemplate = "3f7c2a51-1d7e-4b8a-9a43-0c6d2b1f5e01"

// requestBody is request i: connector "GitHub i" (the name is unique) in workspace i mod W, with
// the credentials of the workspace's secret file; an Agent Engine connector by connector_type, or
// an embedded source by source_template_id.
func requestBody(workspaces int, file string, embedded bool) func(i int, id string) []byte {
	kind := `"connector_type":"github"`
	if embedded {
		kind = `"source_template_id":"` + githubTemplate + `"`
	}
	return func(i int, id string) []byte {
		ws := workspaceName(i % workspaces)
		return fmt.Appendf(nil, `{"id":%q,"workspace_name":%q,%s,"name":"GitHub %d","credentials_ref":"file:%s/%s","replication_config":{"repositories":["%s/app"]}}`,
			id, ws, kind, i, ws, file, ws)
	}
}

// loads are a phase's batches: an unmeasured setup (nil for create) and the measured one.
func loads(cfg Config, prefix, subject, results string) (setup *load, measured load) {
	measured = load{
		runID: prefix + "-" + uuid.NewString()[:8], subject: subject, results: results,
		requests: cfg.Requests, inflight: cfg.InFlight, body: requestBody(cfg.Workspaces, secretFile, cfg.Embedded),
	}
	if cfg.Scenario != ScenarioRotate {
		return nil, measured
	}
	setup = &load{
		runID: prefix + "-setup-" + uuid.NewString()[:8], subject: subject, results: results,
		requests: cfg.Requests, inflight: cfg.InFlight, body: requestBody(cfg.Workspaces, secretFile, cfg.Embedded),
	}
	measured.body = requestBody(cfg.Workspaces, rotatedFile, cfg.Embedded)
	return setup, measured
}

// callsPer is the sandbox's calls between two snapshots per request, by operation, and in total.
func callsPer(before, after sandbox.Stats, n float64) (map[string]float64, float64) {
	out := map[string]float64{}
	var total int64
	for op, c := range after.Requests {
		if d := c - before.Requests[op]; d > 0 {
			out[op] = round(float64(d)/n, 4)
			total += d
		}
	}
	return out, round(float64(total)/n, 4)
}

// connect opens the driver's connection; a failed PubAck cancels the phase.
func connect(url string, cancel context.CancelCauseFunc) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("provisioner-bench-driver"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
		cancel(fmt.Errorf("publish a request: %w", err))
	}))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

func startSandbox(ctx context.Context, latency time.Duration, logger *slog.Logger) (*sandbox.Server, string, func(), error) {
	var faults sandbox.Faults
	if latency > 0 {
		faults.Rules = map[string]sandbox.FaultRule{sandbox.OpAll: {Latency: latency}}
	}
	sb := sandbox.New(sandbox.Config{Faults: faults, StrictAuth: true, Logger: logger.With("component", "sandbox")})
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	base, done, err := sb.Serve(sctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, "", nil, err
	}
	return sb, base, func() { cancel(); <-done }, nil
}

// workerConfig is the replicas' configuration.
func workerConfig(cfg Config, natsURL, airbyteURL, secretsDir string) (config.Config, error) {
	wc := config.Default()
	wc.NATSURL = natsURL
	wc.AirbyteURL = airbyteURL
	wc.AirbyteClientID = sandbox.DefaultClientID
	wc.AirbyteClientSecret = secret.New(sandbox.DefaultClientSecret)
	wc.SecretsDir = secretsDir
	wc.SecretPathPolicy = "{workspace_name}/"
	wc.Concurrency = cfg.Concurrency
	wc.MaxAckPending = max(wc.MaxAckPending, cfg.InFlight, cfg.Concurrency)
	wc.Lookup = cfg.Lookup
	wc.StreamReplicas = streamReplicas(cfg)
	wc.MetricsAddr = ""
	wc.LogLevel = "warn"
	if err := wc.Validate(); err != nil {
		return wc, fmt.Errorf("worker configuration: %w", err)
	}
	return wc, nil
}

func runProduct(ctx context.Context, cfg Config, natsURL, secretsDir string, logger *slog.Logger, rep *Report) (err error) {
	sb, base, stopSandbox, err := startSandbox(ctx, cfg.Latency, logger)
	if err != nil {
		return err
	}
	defer stopSandbox()
	wc, err := workerConfig(cfg, natsURL, base, secretsDir)
	if err != nil {
		return err
	}

	replicas := make([]replica, 0, cfg.Replicas)
	defer func() {
		if stopErr := stopAll(replicas); stopErr != nil && err == nil {
			err = fmt.Errorf("stop replicas: %w", stopErr)
		}
	}()
	for i := range cfg.Replicas {
		owner := "bench-" + strconv.Itoa(i)
		var r replica
		var err error
		if cfg.Binary != "" {
			r, err = startSubprocess(ctx, cfg.Binary, wc, owner, logWriter{logger})
		} else {
			r, err = startInProcess(ctx, wc, owner, logger)
		}
		if err != nil {
			return err
		}
		replicas = append(replicas, r)
	}

	phaseCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	phaseCtx, cancelTimeout := context.WithTimeoutCause(phaseCtx, cfg.Timeout, fmt.Errorf("timed out after %s", cfg.Timeout))
	defer cancelTimeout()
	nc, js, err := connect(natsURL, cancel)
	if err != nil {
		return err
	}
	defer nc.Close()

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	setup, measured := loads(cfg, "bench", "provisioner.requests.credentials.submitted", "provisioner.results.>")
	if setup != nil {
		out, err := drive(phaseCtx, nc, js, *setup)
		if err != nil {
			return fmt.Errorf("product setup: %w", err)
		}
		if out.failed > 0 {
			return fmt.Errorf("product setup: %d of %d creates failed", out.failed, setup.requests)
		}
	}
	st0 := sb.Stats()
	runtime.GC()
	resetPeakRSS()
	before, err := takeSample(replicas)
	if err != nil {
		return err
	}
	out, err := drive(phaseCtx, nc, js, measured)
	if err != nil {
		return fmt.Errorf("product: %w", err)
	}
	after, err := takeSample(replicas)
	if err != nil {
		return err
	}
	if cfg.MemProfile != "" {
		if err := writeHeapProfile(cfg.MemProfile); err != nil {
			return err
		}
	}

	n := float64(cfg.Requests)
	rep.Connectors, rep.Updates = out.messages["source_created"], out.messages["source_updated"]
	rep.Errors, rep.Repeated = out.failed, out.repeated
	rep.ElapsedS = round(out.elapsed.Seconds(), 3)
	rep.ThroughputPerS = n / out.elapsed.Seconds()
	rep.P50Ms, rep.P95Ms, rep.P99Ms = ms(percentile(out.latencies, 50)), ms(percentile(out.latencies, 95)), ms(percentile(out.latencies, 99))
	rep.MaxMs = ms(out.latencies[len(out.latencies)-1])

	st := sb.Stats()
	rep.Created, rep.Deleted = st.Created-st0.Created, st.Deleted-st0.Deleted
	perRequest, total := callsPer(sandbox.Stats{}, st, n) // create: everything the sandbox saw
	if cfg.Scenario == ScenarioRotate {
		// the setup's creates are not the rotations': they are per connector, the rest per update
		rep.APICallsPerUpdate, rep.APICallsPerUpdateTotal = callsPer(st0, st, n)
		perRequest, total = callsPer(sandbox.Stats{}, st0, n)
	}
	rep.APICallsPerConnector, rep.APICallsPerConnectorTotal = perRequest, total
	rep.TokenMints = map[string]int64{}
	for kind, c := range st.TokensMinted {
		if c > 0 {
			rep.TokenMints[kind] = c
		}
	}
	if cfg.Latency > 0 {
		calls := rep.APICallsPerConnectorTotal
		if cfg.Scenario == ScenarioRotate {
			calls = rep.APICallsPerUpdateTotal
		}
		rep.BoundPerS = round(float64(cfg.Replicas*cfg.Concurrency)/(calls*cfg.Latency.Seconds()), 1)
		rep.RatioToBound = round(rep.ThroughputPerS/rep.BoundPerS, 3)
	}
	rep.ThroughputPerS = round(rep.ThroughputPerS, 1)

	rep.OtherBusyCPUs = otherBusy(before, after)
	if err := measureUsage(cfg, replicas, before, after, rep); err != nil {
		return err
	}
	if cfg.SkipAwait {
		return nil
	}
	if err := runAwait(phaseCtx, cfg, replicas, natsURL, measured.runID, rep); err != nil {
		return fmt.Errorf("await: %w", err)
	}
	return nil
}

// measureUsage fills the report's CPU and RSS figures of the product phase.
func measureUsage(cfg Config, replicas []replica, before, after sample, rep *Report) error {
	n := float64(cfg.Requests)
	if cfg.Binary == "" {
		rep.CPUSPer1k = round((after.self-before.self).Seconds()/n*1000, 3)
		rep.CPUScope = "this process: replicas, NATS server, sandbox and driver"
		rss, err := peakRSS(0)
		if err != nil {
			return err
		}
		rep.PeakRSSMiB, rep.RSSScope = mib(rss), "this process: replicas, NATS server, sandbox and driver"
		return nil
	}
	rep.CPUSPer1k = round((after.replicas-before.replicas).Seconds()/n*1000, 3)
	rep.CPUScope = "worker processes, summed (10 ms resolution)"
	rep.HarnessCPUSPer1k = round((after.self-before.self).Seconds()/n*1000, 3)
	var peak uint64
	for _, r := range replicas {
		b, _, err := r.peakRSS()
		if err != nil {
			return err
		}
		peak = max(peak, b)
	}
	rep.PeakRSSMiB, rep.RSSScope = mib(peak), "largest worker process"
	return nil
}

// sample is where the CPU clocks stand at one moment.
type sample struct {
	at       time.Time
	self     time.Duration // this process
	replicas time.Duration // replica processes, summed (0 in-process)
	machine  time.Duration // every process of the machine
}

func takeSample(rs []replica) (sample, error) {
	s := sample{at: time.Now()}
	var err error
	if s.self, err = selfCPU(); err != nil {
		return s, err
	}
	for _, r := range rs {
		d, _, err := r.cpu()
		if err != nil {
			return s, err
		}
		s.replicas += d
	}
	if s.machine, err = machineBusy(); err != nil {
		return s, err
	}
	return s, nil
}

// otherBusy is how many CPUs, on average between two samples, other processes kept busy.
func otherBusy(a, b sample) float64 {
	wall := b.at.Sub(a.at).Seconds()
	other := (b.machine - a.machine) - (b.self - a.self) - (b.replicas - a.replicas)
	return round(max(other.Seconds(), 0)/wall, 2)
}

func runFloor(ctx context.Context, cfg Config, natsURL string, logger *slog.Logger, rep *Report) error {
	sb, base, stopSandbox, err := startSandbox(ctx, cfg.Latency, logger)
	if err != nil {
		return err
	}
	defer stopSandbox()

	phaseCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	phaseCtx, cancelTimeout := context.WithTimeoutCause(phaseCtx, cfg.Timeout, fmt.Errorf("timed out after %s", cfg.Timeout))
	defer cancelTimeout()
	nc, js, err := connect(natsURL, cancel)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := setupFloor(phaseCtx, js, max(1000, cfg.InFlight), streamReplicas(cfg)); err != nil {
		return err
	}

	// One connection and one HTTP pool per replica, as each worker has its own.
	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, cfg.Replicas)
	for range cfg.Replicas {
		wnc, err := nats.Connect(natsURL, nats.Name("provisioner-bench-floor"))
		if err != nil {
			stopWorkers()
			return fmt.Errorf("connect to nats: %w", err)
		}
		wjs, err := jetstream.New(wnc)
		if err != nil {
			wnc.Close()
			stopWorkers()
			return fmt.Errorf("jetstream: %w", err)
		}
		wkv, err := wjs.KeyValue(phaseCtx, floorBucket)
		if err != nil {
			wnc.Close()
			stopWorkers()
			return fmt.Errorf("floor bucket: %w", err)
		}
		api := newFloorAPI(base, sandbox.DefaultClientID, secret.New(sandbox.DefaultClientSecret), 2*cfg.Concurrency)
		w := &floorWorker{js: wjs, kv: wkv, api: api, concurrency: cfg.Concurrency, listFirst: cfg.Lookup == "always",
			record: cfg.Scenario == ScenarioRotate}
		go func() {
			err := w.run(workCtx)
			api.close()
			wnc.Close()
			done <- err
		}()
	}
	stopAndWait := func() error {
		stopWorkers()
		var errs []error
		for range cfg.Replicas {
			errs = append(errs, <-done)
		}
		return errors.Join(errs...)
	}

	setup, measured := loads(cfg, "floor", floorPrefix+".requests.credentials.submitted", floorPrefix+".results.>")
	if setup != nil {
		out, err := drive(phaseCtx, nc, js, *setup)
		if err == nil && out.failed > 0 {
			err = fmt.Errorf("%d of %d creates failed", out.failed, setup.requests)
		}
		if err != nil {
			_ = stopAndWait()
			return fmt.Errorf("floor setup: %w", err)
		}
	}
	st0 := sb.Stats()
	before, err := takeSample(nil)
	if err != nil {
		_ = stopAndWait()
		return err
	}
	out, err := drive(phaseCtx, nc, js, measured)
	after, sampleErr := takeSample(nil)
	if stopErr := stopAndWait(); err == nil {
		err = stopErr
	}
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	if sampleErr != nil {
		return sampleErr
	}
	n := float64(cfg.Requests)
	rep.FloorPerS = round(n/out.elapsed.Seconds(), 1)
	rep.RatioToFloor = round(rep.ThroughputPerS/rep.FloorPerS, 3)
	rep.FloorP50Ms, rep.FloorP99Ms = ms(percentile(out.latencies, 50)), ms(percentile(out.latencies, 99))
	rep.FloorCPUSPer1k = round((after.self-before.self).Seconds()/n*1000, 3)
	rep.FloorOtherBusyCPUs = otherBusy(before, after)
	rep.FloorErrors = out.failed
	rep.FloorAPICallsPerRequest, rep.FloorAPICallsPerRequestTotal = callsPer(st0, sb.Stats(), n)
	if rep.APICallsPerUpdateTotal > 0 && rep.FloorAPICallsPerRequestTotal > 0 {
		rep.APICallsPerUpdateRatioToFloor = round(rep.APICallsPerUpdateTotal/rep.FloorAPICallsPerRequestTotal, 3)
	}
	if rep.AwaitPerS > 0 {
		rep.AwaitRatioToFloor = round(rep.AwaitPerS/rep.FloorPerS, 3)
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}

// logWriter turns a replica's stderr into log lines of the benchmark's logger.
type logWriter struct{ logger *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Warn("replica", "output", string(p))
	return len(p), nil
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }
func mib(b uint64) float64       { return round(float64(b)/(1<<20), 1) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// streamReplicas is the replica count of the streams and buckets: 1 on one server, up to 3 on a
// cluster.
func streamReplicas(cfg Config) int { return max(1, min(cfg.Cluster, 3)) }

// startNATS starts the benchmark's NATS: one embedded server, or a cluster of nats-server
// processes, and returns its URL(s).
func startNATS(ctx context.Context, cfg Config, dir string) (string, func(), error) {
	if cfg.Cluster == 0 {
		srv, err := natsembed.Start(natsembed.Config{Port: -1, StoreDir: filepath.Join(dir, "nats")})
		if err != nil {
			return "", nil, err
		}
		return srv.ClientURL(), srv.Shutdown, nil
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	procs, err := natsclustertest.StartProcesses(startCtx, natsclustertest.ProcessConfig{Nodes: cfg.Cluster, Dir: filepath.Join(dir, "nats-cluster")})
	if err != nil {
		return "", nil, fmt.Errorf("nats cluster (run from the module root): %w", err)
	}
	return procs.URL(), procs.Close, nil
}
