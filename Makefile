# Targets:
#   make deps    install missing system packages (PostgreSQL, openpyxl, runuser)
#   make build   build bin/exporter
#   make test    deps + all tests with the race detector (PostgreSQL tests must not skip)
#   make lint    gofmt, go vet, staticcheck
#   make demo    export a 2,000-row demo table from a throwaway PostgreSQL to ./out
#   make bench   benchmarks
#   make clean   remove build/demo output
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

GO                  ?= go
BIN                 := bin/exporter
DEMO_DIR            ?= /tmp/exporter-demo
DEMO_OUT            ?= ./out
PGTMP               := $(GO) run ./internal/pgtest/pgtmp
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT        ?= 30m

.PHONY: all deps build test lint demo bench clean

all: build

deps:
	bash scripts/install-deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/exporter

test: deps
	export EXPORTER_TEST_DISALLOW_SKIP=1
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

lint:
	unformatted="$$(gofmt -l .)"
	if [ -n "$$unformatted" ]; then
		echo "gofmt -l reports unformatted files:" >&2
		echo "$$unformatted" >&2
		exit 1
	fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Stops and discards a cluster left over from an earlier demo first; the
# cluster started here is stopped on exit (also on failure).
demo: deps build
	if [ -f "$(DEMO_DIR)/pgtest.json" ]; then $(PGTMP) stop "$(DEMO_DIR)" || true; fi
	rm -rf "$(DEMO_DIR)" "$(DEMO_OUT)"
	DSN="$$($(PGTMP) start "$(DEMO_DIR)")"
	trap '$(PGTMP) stop "$(DEMO_DIR)"' EXIT
	echo "demo: PostgreSQL at $$DSN"
	$(PGTMP) load "$(DEMO_DIR)" testdata/demo.sql
	./$(BIN) export --dsn "$$DSN" --query 'SELECT * FROM orders' --key id \
		--out "$(DEMO_OUT)" --format xlsx --format csv --name orders \
		--max-rows-per-sheet 1000
	echo "--- $(DEMO_OUT)/manifest.json ---"
	cat "$(DEMO_OUT)/manifest.json"
	echo
	echo "--- $(DEMO_OUT) ---"
	ls -lR "$(DEMO_OUT)"

# Benchmarks (internal/bench): exporter XLSX/CSV against a naive pgx +
# excelize program and psql \copy on a throwaway PostgreSQL; prints a
# markdown table. Slow (minutes). Pass flags with BENCH_ARGS, e.g.
#   make bench BENCH_ARGS='-rows 20000,80000 -o bench.md'
bench: deps build
	GO="$(GO)" $(GO) run ./internal/bench -exporter "$(BIN)" $(BENCH_ARGS)

clean:
	if [ -f "$(DEMO_DIR)/pgtest.json" ]; then $(PGTMP) stop "$(DEMO_DIR)" || true; fi
	rm -rf bin "$(DEMO_OUT)" "$(DEMO_DIR)"
