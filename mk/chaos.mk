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
