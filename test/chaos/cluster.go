package main

// The cluster soak (issue 12): -cluster 3 runs the soak on a 3-node cluster of real nats-server
// processes (built from the module cache at the version go.mod pins) with R3 streams and ledger,
// and SIGKILLs, then restarts, the node leading the requests stream, the workers' consumer, the
// ledger bucket or the results stream, in turn. Whatever the mode, the soak measures how long the
// workers took to become ready (cold_start_s) and the longest time work was pending while no
// result arrived (max_stall_s).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/natsembed/natsclustertest"
)

// ledgerStream is the ledger bucket's stream.
const ledgerStream = "KV_provisioner_ledger"

// leaderTargets are what a leader kill aims at, in turn.
var leaderTargets = []string{"requests", "consumer", "ledger", "results"}

// ClusterStats are the soak's timing figures, printed on its summary line.
type ClusterStats struct {
	LeaderKills int
	MaxStall    time.Duration // longest time with work pending and no new result
	ColdStart   time.Duration // from starting the workers to every one consuming
}

func (c ClusterStats) fields() string {
	return fmt.Sprintf(" leader_kills=%d max_stall_s=%.1f cold_start_s=%.1f", c.LeaderKills, c.MaxStall.Seconds(), c.ColdStart.Seconds())
}

// natsCluster is the soak's NATS cluster.
type natsCluster struct {
	procs *natsclustertest.Processes
}

// startNATS starts the soak's NATS: one embedded server, or with -cluster a cluster of nats-server
// processes whose output goes to the work directory.
func startNATS(ctx context.Context, o options, dir string) (*broker, *natsCluster, string, error) {
	if o.cluster == 0 {
		b, err := startBroker(filepath.Join(dir, "nats"))
		if err != nil {
			return nil, nil, "", err
		}
		return b, nil, b.URL(), nil
	}
	logs, err := os.Create(filepath.Join(dir, "nats-servers.log"))
	if err != nil {
		return nil, nil, "", err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	procs, err := natsclustertest.StartProcesses(startCtx, natsclustertest.ProcessConfig{Nodes: o.cluster, Dir: filepath.Join(dir, "nats"), Logs: logs})
	if err != nil {
		_ = logs.Close()
		return nil, nil, "", fmt.Errorf("start the nats cluster (run from the module root): %w", err)
	}
	return nil, &natsCluster{procs: procs}, procs.URL(), nil
}

// stopNATS stops whichever NATS the soak started.
func stopNATS(b *broker, c *natsCluster) {
	if b != nil {
		b.Shutdown()
	}
	if c != nil {
		c.procs.Close()
	}
}

// clusterWorkerArgs are the worker flags of the mode: R3 streams and ledger on a cluster.
func clusterWorkerArgs(o options) []string {
	if o.cluster == 0 {
		return nil
	}
	return []string{"--stream-replicas", fmt.Sprint(min(o.cluster, 3))}
}

// clusterWorkerEnv skews the clock of worker 0, in cluster mode, by more than the lease TTL (twice
// the ack wait): ahead, so that if leases were judged by comparing hosts' clocks it would take over
// live leases and create duplicates. The verdict's zero duplicates is the proof it does not.
func clusterWorkerEnv(o options) func(worker int) []string {
	if o.cluster == 0 {
		return nil
	}
	return func(worker int) []string {
		if worker != 0 {
			return nil
		}
		return []string{"PROVISIONER_CLOCK_SKEW=" + clockSkew(o).String()}
	}
}

// clockSkew is worker 0's clock shift in cluster mode: three lease TTLs.
func clockSkew(o options) time.Duration { return 6 * o.ackWait }

// withLeaderKills adds n leader kills to the schedule, spread over 10%-85% of progress.
func withLeaderKills(steps []step, n int) []step {
	for i := range n {
		steps = append(steps, step{at: 0.1 + 0.75*float64(i)/float64(max(n-1, 1)), leaderTarget: leaderTargets[i%len(leaderTargets)]})
	}
	sortSteps(steps)
	return steps
}

// killLeader SIGKILLs the node leading target, waits a moment, starts it again and waits until the
// cluster is whole (every replica of the four current) so that kills never stack up into a lost
// quorum.
func (c *chaos) killLeader(ctx context.Context, target string, progress float64) {
	leader, err := c.leaderOf(ctx, target)
	if err != nil {
		c.logger.Error("chaos: no leader to kill", "target", target, "error", err)
		return
	}
	i := c.cluster.procs.Index(leader)
	pause := 500*time.Millisecond + time.Duration(c.rng.Int64N(int64(1500*time.Millisecond)))
	c.logger.Info("chaos: SIGKILL of a leader", "target", target, "node", leader, "restart_after", pause.Round(time.Millisecond), "progress", fmt.Sprintf("%.0f%%", 100*progress))
	if err := c.cluster.procs.Kill(i); err != nil {
		c.logger.Error("chaos: kill failed", "node", leader, "error", err)
		return
	}
	c.leaderKills.Add(1)
	select {
	case <-time.After(pause):
	case <-ctx.Done():
	}
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := c.cluster.procs.Start(startCtx, i); err != nil {
		c.logger.Error("chaos: node did not come back", "node", leader, "error", err)
		return
	}
	if err := c.waitWhole(ctx); err != nil {
		c.logger.Warn("chaos: the cluster is not whole yet", "error", err)
	}
}

// leaderOf names the node leading target, asking with short timeouts while an election runs.
func (c *chaos) leaderOf(ctx context.Context, target string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		var leader string
		var err error
		switch target {
		case "requests":
			leader, err = natsclustertest.StreamLeader(callCtx, c.js, requestsStream)
		case "consumer":
			leader, err = natsclustertest.ConsumerLeader(callCtx, c.js, requestsStream, workerConsumer)
		case "ledger":
			leader, err = natsclustertest.StreamLeader(callCtx, c.js, ledgerStream)
		case "results":
			leader, err = natsclustertest.StreamLeader(callCtx, c.js, resultsStream)
		default:
			err = fmt.Errorf("unknown target %q", target)
		}
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return leader, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitWhole waits until the four objects have a leader and every replica is current.
func (c *chaos) waitWhole(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := c.whole(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *chaos) whole(ctx context.Context) error {
	callCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var clusters []*jetstream.ClusterInfo
	for _, name := range []string{requestsStream, resultsStream, ledgerStream} {
		s, err := c.js.Stream(callCtx, name)
		if err != nil {
			return err
		}
		clusters = append(clusters, s.CachedInfo().Cluster)
	}
	cons, err := c.js.Consumer(callCtx, requestsStream, workerConsumer)
	if err != nil {
		return err
	}
	clusters = append(clusters, cons.CachedInfo().Cluster)
	for _, ci := range clusters {
		if ci == nil || ci.Leader == "" {
			return errors.New("no leader")
		}
		for _, p := range ci.Replicas {
			if !p.Current || p.Offline {
				return fmt.Errorf("replica %s is not current", p.Name)
			}
		}
	}
	return nil
}

// waitConsuming waits until every worker's log says it is consuming, and returns how long that took
// from start.
func waitConsuming(ctx context.Context, w *Workers, start time.Time) (time.Duration, error) {
	for {
		n := 0
		for _, f := range w.Logs() {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), `"msg":"consuming"`) {
				n++
			}
		}
		if n >= w.Len() {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d workers consuming: %w", n, w.Len(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stallTracker measures the longest time during which a published request id had no result and no
// new result arrived.
type stallTracker struct {
	plan      *Plan
	reader    *ResultReader
	published *atomic.Int64

	mu      sync.Mutex
	max     time.Duration
	maxFrom time.Time
}

func (s *stallTracker) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	answered, since := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a := s.reader.Answered()
			if a != answered || !s.outstanding() {
				answered, since = a, now
				continue
			}
			if d := now.Sub(since); d > s.max {
				s.mu.Lock()
				s.max, s.maxFrom = d, since
				s.mu.Unlock()
			}
		}
	}
}

// outstanding reports whether a published request id has no result yet.
func (s *stallTracker) outstanding() bool {
	n := int(s.published.Load())
	for _, send := range s.plan.Sends[:min(n, len(s.plan.Sends))] {
		if !s.reader.Has(s.plan.Requests[send.Request].ID) {
			return true
		}
	}
	return false
}

// Max is the longest stall and when it began.
func (s *stallTracker) Max() (time.Duration, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.maxFrom
}

// scanDeadLetters counts secrets and tokens in the dead-letter stream: bodies and headers.
func scanDeadLetters(ctx context.Context, js jetstream.JetStream, needles []string) (map[string]int, error) {
	stream, err := js.Stream(ctx, dlqStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", dlqStream, err)
	}
	info := stream.CachedInfo()
	texts := map[string][]byte{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		var b strings.Builder
		b.Write(m.Data)
		for k, vs := range m.Header {
			b.WriteString("\n" + k + ": " + strings.Join(vs, ","))
		}
		texts[fmt.Sprintf("dead letter %d", seq)] = []byte(b.String())
	}
	return Leaks(needles, texts), nil
}
