# provisioner — make help lists the targets.
SHELL := bash
# a failing command on the left of a pipe (e.g. `bench | tee`) fails the recipe
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BIN         := bin/provisioner
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help build test test-short lint fmt run dev tidy-check

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/provisioner (static, version stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/provisioner

test: ## run every test with the race detector (the README's test command)
	$(GO) test -race ./...

test-short: ## run the tests without the race detector
	$(GO) test ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# go mod tidy -diff prints what tidy would change and fails if anything would: go.mod and go.sum
# must already be tidy (in the main module and in the chart tests' own module).
tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	$(GO) mod tidy -diff
	cd deploy/helm/test && $(GO) mod tidy -diff

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

run: build ## run the worker (configure with PROVISIONER_* env; see README)
	./$(BIN) run

dev: ## run everything in one process on the embedded default
	$(GO) run ./cmd/provisioner dev

-include mk/*.mk
