# The chaos soak (issues 4 and 11): test/chaos runs three `provisioner run` processes against an
# in-process NATS server and Airbyte sandbox, with the connectors' lifecycle (rotations,
# disconnects, re-submits, duplicates), injected faults, SIGKILLs and a NATS restart, and ends with
# one `chaos: requests=... superseded=N` line; it exits non-zero unless every guarantee held.
# Same build flags as `build`, so the packages compiled for bin/provisioner are reused.

CHAOS_FLAGS ?=
CHAOS_RUN := CGO_ENABLED=0 $(GO) run -trimpath ./test/chaos -bin $(BIN)

.PHONY: chaos chaos-short

chaos: build ## chaos soak: 10,000 requests, 15% resends, 3 workers, SIGKILLs, a NATS restart (CHAOS_FLAGS=...)
	$(CHAOS_RUN) -requests 10000 -rate 300 -kills 8 -nats-restarts 1 -timeout 15m $(CHAOS_FLAGS)

# chaos-short converges in about 50 s; its timeout leaves room for one request that waited out a
# killed worker's lease over several deliveries and then met a transient fault, whose redelivery
# backoff (1 s doubling per delivery, capped at 2 m) can reach 110 s.
chaos-short: build ## the CI-sized chaos soak: about 1,000 requests, usually under a minute
	$(CHAOS_RUN) -requests 1000 -rate 40 -kills 5 -nats-restarts 1 -timeout 200s $(CHAOS_FLAGS)

# The cluster soak (issue 12): the same soak on a 3-node cluster of nats-server processes (built
# from the module cache at the version go.mod pins) with R3 streams and ledger, SIGKILLs and
# restarts of the nodes leading the requests stream, the consumer, the ledger and the results
# stream, and worker SIGKILLs. Its summary adds leader_kills, max_stall_s and cold_start_s.

.PHONY: chaos-cluster chaos-cluster-short

chaos-cluster: build ## cluster chaos soak: 3 nats-server processes, R3, 8 leader kills, 6 worker kills
	$(CHAOS_RUN) -cluster 3 -nats-restarts 0 -requests 5000 -rate 100 -kills 6 -leader-kills 8 -timeout 15m $(CHAOS_FLAGS)

chaos-cluster-short: build ## the CI-sized cluster soak: 4 leader kills and 3 worker kills in a few minutes
	$(CHAOS_RUN) -cluster 3 -nats-restarts 0 -requests 1000 -rate 20 -kills 3 -leader-kills 4 -timeout 4m $(CHAOS_FLAGS)
