# pybox: run untrusted Python safely and fast. `make help` lists the targets.

SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/pybox
# Debian packages the demo and the tests use.
DEB_RUNTIME := python3 python3-numpy python3-pandas python3-matplotlib
DEB_TEST := $(DEB_RUNTIME) bubblewrap strace hyperfine iproute2 procps time
TEST_TIMEOUT ?= 25m

.DEFAULT_GOAL := help

-include mk/*.mk

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*?## "}{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: go-check
go-check:
	@test -x "$(GO)" || { echo "Go 1.26+ is required (not found in PATH or /usr/local/go)"; exit 1; }

.PHONY: deps
deps: go-check ## Install the Debian packages and Go modules pybox needs.
	@scripts/deps.sh $(DEB_RUNTIME)
	@$(GO) mod download

.PHONY: deps-test
deps-test: go-check
	@scripts/deps.sh $(DEB_TEST)
	@$(GO) mod download

# The sandbox init on its own (cmd/pybox-init), embedded in pybox with its
# hash as stamp: see internal/initbin. Builds without the stamp (go build,
# go install) re-execute pybox as the init instead.
INIT_BIN := internal/initbin/bin/pybox-init
INIT_LDFLAGS = -X github.com/pybox-dev/pybox/internal/initbin/stamp.Value=$$(sha256sum $(INIT_BIN) | cut -c1-64)

.PHONY: init-bin
init-bin: go-check
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-s -o $(INIT_BIN) ./cmd/pybox-init

.PHONY: build
build: go-check init-bin ## Build bin/pybox (static, CGO disabled).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(INIT_LDFLAGS)" -o $(BIN) ./cmd/pybox

.PHONY: demo
demo: deps build $(DEMO_DEPS) ## Install what is needed, then run the examples in a sandbox.
	@scripts/demo.sh $(BIN)

.PHONY: test
test: deps-test $(TEST_DEPS) init-bin ## Run every test (real sandboxes; needs root).
	$(GO) vet ./...
	@echo "cross-builds: darwin/arm64 and windows/amd64 (the wasm backend is their default)"
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 2 -ldflags "$(INIT_LDFLAGS)" ./...

.PHONY: bench
bench: deps-test build ## Run the benchmarks (ratios against plain python3).
	bench/run.sh

.PHONY: check
check: go-check ## gofmt, vet, mod tidy and darwin/windows cross-builds; fails on a dirty diff.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf bin
