package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/provisioner-dev/provisioner/client"
	"github.com/provisioner-dev/provisioner/contract"
)

// runAwait measures the app's side, package client, against the replicas of the product phase:
//
//   - stored: Await for every request of the product phase, whose verdicts are all stored by now,
//     InFlight at a time: how many verdicts per second Await finds, and how long one call takes;
//   - live: Requests more requests (connectors of their own), each through SubmitAndAwait, InFlight
//     at a time, as an app that awaits each request would: the end-to-end rate of an app that awaits every request, and the time from a
//     result's publication (its produced_at) to Await returning it.
func runAwait(ctx context.Context, cfg Config, replicas []replica, natsURL, productRunID string, rep *Report) error {
	nc, err := nats.Connect(natsURL, nats.Name("provisioner-bench-await"))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		return err
	}

	// the product phase's verdicts: creates, or in the rotate scenario updates
	want := contract.MessageSourceCreated
	if cfg.Scenario == ScenarioRotate {
		want = contract.MessageSourceUpdated
	}
	stored, elapsed, err := awaitAll(ctx, cfg.Requests, cfg.InFlight, func(ctx context.Context, i int) (time.Duration, error) {
		start := time.Now()
		res, err := c.Await(ctx, productRunID+"-"+strconv.Itoa(i))
		if err == nil && res.Message != want {
			err = fmt.Errorf("verdict %s", res.Message)
		}
		return time.Since(start), err
	})
	if err != nil {
		return fmt.Errorf("await stored verdicts: %w", err)
	}
	rep.AwaitStoredPerS = round(float64(cfg.Requests)/elapsed.Seconds(), 1)
	rep.AwaitStoredP50Ms, rep.AwaitStoredP99Ms = ms(percentile(stored, 50)), ms(percentile(stored, 99))

	before, err := takeSample(replicas)
	if err != nil {
		return err
	}
	runID := "await-" + uuid.NewString()[:8]
	body := requestBody(cfg.Workspaces, secretFile, cfg.Embedded)
	live, elapsed, err := awaitAll(ctx, cfg.Requests, cfg.InFlight, func(ctx context.Context, i int) (time.Duration, error) {
		// the product phase's requests, typed, for connectors of their own (numbered after its)
		var req contract.CredentialsSubmitted
		if err := json.Unmarshal(body(cfg.Requests+i, runID+"-"+strconv.Itoa(i)), &req); err != nil {
			return 0, err
		}
		res, err := c.SubmitAndAwait(ctx, &req)
		returned := time.Now()
		if err != nil {
			return 0, err
		}
		if res.Message != contract.MessageSourceCreated {
			return 0, fmt.Errorf("verdict %s", res.Message)
		}
		return returned.Sub(res.ProducedAt), nil
	})
	if err != nil {
		return fmt.Errorf("submit and await: %w", err)
	}
	after, err := takeSample(replicas)
	if err != nil {
		return err
	}
	n := float64(cfg.Requests)
	rep.AwaitPerS = round(n/elapsed.Seconds(), 1)
	rep.AwaitP50Ms, rep.AwaitP99Ms = ms(percentile(live, 50)), ms(percentile(live, 99))
	rep.AwaitToProduct = round(rep.AwaitPerS/rep.ThroughputPerS, 3)
	rep.AwaitCPUSPer1k = round(((after.self-before.self)+(after.replicas-before.replicas)).Seconds()/n*1000, 3)
	rep.AwaitOtherBusy = otherBusy(before, after)
	return nil
}

// awaitAll runs do for 0..n-1, inflight at a time, and returns what each measured, sorted, and the
// wall time of the whole.
func awaitAll(ctx context.Context, n, inflight int, do func(context.Context, int) (time.Duration, error)) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(inflight, n) {
		wg.Go(func() {
			for i := range next {
				d, err := do(ctx, i)
				if err != nil {
					cancel(fmt.Errorf("request %d: %w", i, err))
					continue
				}
				out[i] = d
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	slices.Sort(out)
	return out, elapsed, nil
}
