package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// WriteText writes the report for humans.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "provisioner bench: scenario %s, %d requests over %d workspaces, %d replica(s) %s × concurrency %d, %d in flight, sandbox latency %gms, lookup %s, %d CPUs, %s\n\n",
		r.Scenario, r.Requests, r.Workspaces, r.Replicas, r.Mode, r.Concurrency, r.InFlight, r.LatencyMs, r.Lookup, r.CPUs, r.GoVersion)
	if r.Cluster > 0 {
		fmt.Fprintf(&b, "  nats: a %d-node cluster of nats-server processes, streams and buckets R%d (the product's and the floor's); their CPU is under other processes\n\n", r.Cluster, r.StreamReplicas)
	}
	if r.Scenario == ScenarioRotate {
		fmt.Fprintf(&b, "  updates/s           %10.1f   (%d updated, %d errors, %d created and %d deleted at the sandbox, %.2fs)\n", r.ThroughputPerS, r.Updates, r.Errors, r.Created, r.Deleted, r.ElapsedS)
	} else {
		fmt.Fprintf(&b, "  connectors/s        %10.1f   (%d connectors, %d errors, %d created at the sandbox, %.2fs)\n", r.ThroughputPerS, r.Connectors, r.Errors, r.Created, r.ElapsedS)
	}
	if r.FloorPerS > 0 {
		fmt.Fprintf(&b, "  floor/s             %10.1f   ratio to floor %.3f\n", r.FloorPerS, r.RatioToFloor)
	}
	if r.BoundPerS > 0 {
		fmt.Fprintf(&b, "  latency bound/s     %10.1f   ratio to bound %.3f\n", r.BoundPerS, r.RatioToBound)
	}
	fmt.Fprintf(&b, "  latency ms          p50 %.2f   p95 %.2f   p99 %.2f   max %.2f\n", r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs)
	if r.FloorPerS > 0 {
		fmt.Fprintf(&b, "  floor latency ms    p50 %.2f   p99 %.2f\n", r.FloorP50Ms, r.FloorP99Ms)
	}
	if r.AwaitPerS > 0 {
		fmt.Fprintf(&b, "  await: stored/s     %10.1f   one call p50 %.2fms p99 %.2fms (verdicts already stored)\n", r.AwaitStoredPerS, r.AwaitStoredP50Ms, r.AwaitStoredP99Ms)
		fmt.Fprintf(&b, "  await: submit+await/s %8.1f   %.3f of connectors/s, ratio to floor %.3f; result published -> Await returns p50 %.2fms p99 %.2fms\n",
			r.AwaitPerS, r.AwaitToProduct, r.AwaitRatioToFloor, r.AwaitP50Ms, r.AwaitP99Ms)
		fmt.Fprintf(&b, "  await: cpu s/1k      %10.3f   (replicas and this process; other processes %.2f CPUs busy)\n", r.AwaitCPUSPer1k, r.AwaitOtherBusy)
	}
	fmt.Fprintf(&b, "  airbyte calls/conn  %10.3f  ", r.APICallsPerConnectorTotal)
	for _, op := range slices.Sorted(maps.Keys(r.APICallsPerConnector)) {
		fmt.Fprintf(&b, " %s %.4f", op, r.APICallsPerConnector[op])
	}
	if r.APICallsPerUpdateTotal > 0 {
		fmt.Fprintf(&b, "\n  airbyte calls/update%10.3f  ", r.APICallsPerUpdateTotal)
		for _, op := range slices.Sorted(maps.Keys(r.APICallsPerUpdate)) {
			fmt.Fprintf(&b, " %s %.4f", op, r.APICallsPerUpdate[op])
		}
	}
	if r.FloorAPICallsPerRequestTotal > 0 {
		fmt.Fprintf(&b, "\n  floor calls/request %10.3f  ", r.FloorAPICallsPerRequestTotal)
		for _, op := range slices.Sorted(maps.Keys(r.FloorAPICallsPerRequest)) {
			fmt.Fprintf(&b, " %s %.4f", op, r.FloorAPICallsPerRequest[op])
		}
		if r.APICallsPerUpdateRatioToFloor > 0 {
			fmt.Fprintf(&b, "   (calls per update: %.3f × the floor's)", r.APICallsPerUpdateRatioToFloor)
		}
	}
	fmt.Fprintf(&b, "\n  token mints         ")
	for _, kind := range slices.Sorted(maps.Keys(r.TokenMints)) {
		fmt.Fprintf(&b, " %s %d", kind, r.TokenMints[kind])
	}
	fmt.Fprintf(&b, "\n  cpu s per 1k req    %10.3f   (%s)\n", r.CPUSPer1k, r.CPUScope)
	if r.HarnessCPUSPer1k > 0 {
		fmt.Fprintf(&b, "  harness cpu s/1k    %10.3f   (this process: NATS server, sandbox, driver)\n", r.HarnessCPUSPer1k)
	}
	if r.FloorPerS > 0 {
		fmt.Fprintf(&b, "  floor cpu s/1k      %10.3f   (this process: floor workers, NATS server, sandbox, driver)\n", r.FloorCPUSPer1k)
	}
	fmt.Fprintf(&b, "  peak rss MiB        %10.1f   (%s)\n", r.PeakRSSMiB, r.RSSScope)
	fmt.Fprintf(&b, "  other processes     %10.2f   CPUs busy on average during the run", r.OtherBusyCPUs)
	if r.FloorPerS > 0 {
		fmt.Fprintf(&b, " (%.2f during the floor)", r.FloorOtherBusyCPUs)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
