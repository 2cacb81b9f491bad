# imago — quick start: `make run` (service on the embedded default), `make test` (the whole suite).
SHELL := /bin/bash
# The project's Go. The go command takes this toolchain from the module proxy on first
# use; go.mod's go line names the same version, so a plain older go refuses to build.
# A := here beats the caller's environment, so no shell silently builds with another Go.
export GOTOOLCHAIN := go1.27.3
GO ?= go
# No IMAGO_HOME here: every target and every binary uses the same default (~/.imago,
# internal/app), so `make run` and a bin/imago typed in another shell share one home.
export CHECKPOINT_DISABLE := 1
BIN := $(CURDIR)/bin

.PHONY: build run hello test fuzz vulncheck demo stop deps tools vet fmt clean record-histories bench postgres

build: ## both binaries into bin/
	$(GO) build -o $(BIN)/imago-worker ./worker
	$(GO) build -o $(BIN)/imago ./starter

run: build ## embedded Temporal server (SQLite in ~/.imago, or $$IMAGO_HOME) + web UI on :8233 + worker (whatever the Temporal CLI profile says, unless TEMPORAL_ADDRESS is set)
	$(BIN)/imago-worker $(if $(TEMPORAL_ADDRESS),,--temporal-address=)

VERSION := v1
hello: ## build examples/hello into build/$(VERSION)/hello, answering "hello from $(VERSION)" (make hello VERSION=v2)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o build/$(VERSION)/hello ./examples/hello

test: tools deps postgres ## the whole suite: unit, workflow, integration, crash, fault, replay; then each fuzz target briefly; then vulncheck
	IMAGO_PACKER=$(BIN)/packer $(GO) test -timeout 45m ./...
	$(GO) test -tags imago_crash ./internal/crash
	$(MAKE) fuzz
	$(MAKE) vulncheck

vulncheck: ## fails on any known vulnerability the code can reach: govulncheck on ./... with a local database from the pinned golang.org/x/vulndb (tools/vuln)
	bash tools/vuln/check.sh $(BIN) ./...

# Count-based budgets (N executions, not a duration): a duration -fuzztime races the fuzz
# coordinator's own deadline under CPU load and fails with a bare "context deadline exceeded"
# (golang/go#75804). Each budget is roughly 10 s on 2 cores.
FUZZ_SCALE ?= 1
fuzz: ## run each fuzz target for a fixed number of executions (findings land in testdata/fuzz as regression seeds)
	$(GO) test -run '^$$' -fuzz '^FuzzParseRollout$$' -fuzztime $$((100000*$(FUZZ_SCALE)))x ./internal/spec
	$(GO) test -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $$((600000*$(FUZZ_SCALE)))x ./internal/bake
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $$((500000*$(FUZZ_SCALE)))x ./internal/bake
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStartRollout$$' -fuzztime $$((250000*$(FUZZ_SCALE)))x ./internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStartPipeline$$' -fuzztime $$((8000*$(FUZZ_SCALE)))x ./internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCreateSchedule$$' -fuzztime $$((8000*$(FUZZ_SCALE)))x ./internal/api
	$(GO) test -run '^$$' -fuzz '^FuzzParseTokens$$' -fuzztime $$((200000*$(FUZZ_SCALE)))x ./internal/api/tokens
	$(GO) test -run '^$$' -fuzz '^FuzzUnpack$$' -fuzztime $$((10000*$(FUZZ_SCALE)))x ./internal/image
	$(GO) test -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime $$((100000*$(FUZZ_SCALE)))x ./internal/entrypoint
	$(GO) test -run '^$$' -fuzz '^FuzzGenerate$$' -fuzztime $$((150000*$(FUZZ_SCALE)))x ./internal/sbom

demo: build ## build hello v1 and v2, import both, roll out v1 then v2
	bash examples/hello/demo.sh

stop: ## stop the worker `make demo` left running
	bash examples/hello/demo.sh stop

deps: ## the Debian packages the tests need (scripts/system-deps.sh: chromium, nats-server, postgresql, prometheus, skopeo, ansible, qemu-system-x86, qemu-utils, linux-image-cloud-amd64, busybox-static, e2fsprogs, libvirt-daemon, libvirt-daemon-driver-qemu), installed only if missing
	bash scripts/system-deps.sh

postgres: ## PostgreSQL for internal/pgtest: installs and starts Debian's cluster, role imago/imago (scripts/postgres.sh), idempotently
	bash scripts/postgres.sh

tools: ## the pinned packer v1.12.0 and Temporal CLI v1.5.1, built from Go modules into bin/
	bash tools/packer/build.sh $(BIN)
	bash tools/temporal/build.sh $(BIN)

# Each recording is a new file (name.YYYYMMDD.json, -2, -3… the same day): the histories
# of older workflow code stay, and the replay test replays them all.
record-histories: tools ## record today's workflow histories beside the older ones the replay test replays (workflows/testdata/histories)
	IMAGO_RECORD_HISTORIES=1 IMAGO_PACKER=$(BIN)/packer $(GO) test -count=1 -timeout 30m -run '$(RECORDED_TESTS)' ./internal/app

# The integration tests that record a history (e.recordHistory).
RECORDED_TESTS = TestRolloutV1ThenV2|TestHooksHoldTraffic|TestRollbackHookAndApprovalNotices|TestFailedSmokeCheck|TestASlowHealthEndpoint|TestCanaryUnderLoad|TestFailingCanary|TestRollingUnderLoad|TestRollbackDuringSoak|TestAbortAtTheApprovalGate|TestRollingRolledBackDuringSoak|TestBakeBuildsTests|TestRolloutWithABakeSpec|TestPipelineStops|TestCancelledPipeline|TestReaperCleans|TestAFrozenCanaryKeepsServingItsSplit|TestRollingWithinACapacityBudget|TestBakeTimePasses|TestCanaryWithMinHealthyPercent|TestCanaryHeaderRouteAndMirrorAtWeightZero|TestBaselineCanary|TestCampaignRebuildsEachServiceOnTheNewBaseOnceThenHitsTheCache

bench: build tools ## run the benchmarks (internal/bench), print the table and write BENCHMARKS.md
	$(GO) build -o $(BIN)/imago-bench ./cmd/imago-bench
	$(BIN)/imago-bench -bin $(BIN) -o BENCHMARKS.md

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)

clean:
	rm -rf $(BIN)
