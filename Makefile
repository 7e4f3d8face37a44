# Ferry's Makefile documents itself: `make` (or `make help`) lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/ferry
export PATH := /usr/local/go/bin:$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/ferry
	$(GO) build -o $(BIN) ./cmd/ferry

.PHONY: cluster-up
cluster-up: ## Bring up the local test cluster (sshd :2222, users, work dir, Slurm + accounting); as root
	scripts/cluster-up

.PHONY: cluster-down
cluster-down: ## Stop the local test cluster (keeps users, keys and the work dir)
	scripts/cluster-down

.PHONY: demo
demo: cluster-up build ## Run a small workflow through Ferry as several users on the local cluster
	scripts/demo

.PHONY: test
test: cluster-up lint ## Everything, from nothing: cluster up, vet, unit + integration + fault tests with -race
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory faults-exclusive

# The fault tests that stop the shared slurmctld or flood the shared Slurm run alone, after the rest.
EXCLUSIVE_FAULTS := ^(TestSlurmctldStoppedFor60s|TestLoad3Users500Jobs)$$

.PHONY: faults-exclusive
faults-exclusive: ## Fault tests that disturb the whole cluster (slurmctld stopped, 1,500-job load), run alone
	FERRY_FAULTS_EXCLUSIVE=1 $(GO) test -race -count=1 -timeout 15m -run '$(EXCLUSIVE_FAULTS)' ./internal/faults/

.PHONY: soak
soak: cluster-up ## The load test alone, verbose (3 users x 500 jobs through the plugin)
	FERRY_SOAK=1 $(GO) test -race -count=1 -timeout 30m -run '^TestLoad3Users500Jobs$$' -v ./internal/faults/

.PHONY: unit
unit: ## Unit tests only (integration tests skip without the cluster)
	FERRY_TESTCLUSTER=/nonexistent $(GO) test -race -count=1 ./...

.PHONY: bench
bench: ## Benchmarks against OpenSSH baselines (writes docs/benchmarks.md)
	BENCH_COMMAND="make bench" scripts/bench

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: proto proto-check
proto: ## Regenerate plugin/proto Go code from ferry.proto (needs protoc 3.21.12: apt-get install -y protobuf-compiler)
	plugin/proto/gen.sh

proto-check: proto ## Fail if checked-in generated code differs from ferry.proto
	git diff --exit-code -- plugin/proto
