# Benchmarks (issue 7): see docs/bench.md for what each number means and the latest figures.
# Measured with the race detector off: `build` makes a plain binary.

BENCH_FLAGS ?=
BENCH_GO_PKGS := ./internal/event ./internal/ledger ./internal/consumer ./internal/airbyte ./internal/natsembed ./client ./internal/tracing
BENCH_OUT ?= bench-results.txt

.PHONY: bench bench-go bench-scenarios

bench: build ## provisioner bench: throughput, latency, calls, CPU and RSS against the floor (BENCH_FLAGS=...)
	./$(BIN) bench $(BENCH_FLAGS)

bench-go: ## Go benchmarks of the hot paths, with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_GO_PKGS)

bench-scenarios: build ## every scenario of docs/bench.md, one after another, into $(BENCH_OUT)
	@: > $(BENCH_OUT)
	./$(BIN) bench --requests 10000 --workspaces 1000 --concurrency 64 | tee -a $(BENCH_OUT)
	./$(BIN) bench --requests 6000 --workspaces 1000 --concurrency 64 --latency 50ms | tee -a $(BENCH_OUT)
	./$(BIN) bench --requests 3000 --workspaces 100 --concurrency 16 --latency 50ms --no-floor | tee -a $(BENCH_OUT)
	./$(BIN) bench --requests 9000 --workspaces 100 --concurrency 16 --latency 50ms --no-floor --replicas 3 | tee -a $(BENCH_OUT)
	./$(BIN) bench --requests 9000 --workspaces 100 --concurrency 16 --latency 50ms --no-floor --replicas 3 --procs | tee -a $(BENCH_OUT)
	./$(BIN) bench --requests 5000 --workspaces 1000 --concurrency 256 --inflight 256 --latency 50ms --no-floor --procs | tee -a $(BENCH_OUT)
	./$(BIN) bench --scenario rotate --requests 10000 --workspaces 1000 --concurrency 64 | tee -a $(BENCH_OUT)
	./$(BIN) bench --scenario rotate --requests 6000 --workspaces 1000 --concurrency 64 --latency 50ms | tee -a $(BENCH_OUT)
	./$(BIN) bench --scenario rotate --embedded --requests 10000 --workspaces 1000 --concurrency 64 | tee -a $(BENCH_OUT)
