# pgpulse — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: deps demo test lint fmt bench bench-store build release

deps:
	@bash scripts/install-deps.sh

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p pgpulse

# Starts a throw-away PostgreSQL, seeds it, runs a workload through pgpulse and
# serves the dashboard. Ctrl-C stops everything and removes the temp files.
demo: deps release
	./target/release/pgpulse demo

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Installs what is missing, checks formatting and lints, then runs every test
# (against real PostgreSQL and Redis started by pgpulse-testkit).
test: deps lint
	@mkdir -p target; set -o pipefail; \
	$(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log | grep -v -E '^test .* \.\.\. ok$$'; \
	status=$$?; \
	echo "== test summary (full log: target/test.log) =="; \
	awk '/^test result:/ {p+=$$4; f+=$$6; i+=$$8} END {printf "%d passed, %d failed, %d skipped\n", p, f, i}' target/test.log; \
	exit $$status

bench: deps release
	./target/release/pgpulse bench

# The cost of storing every statement (SQLite): its own BENCHMARKS.md section.
bench-store: deps release
	./target/release/pgpulse bench --store
