# sluice: two commands for a fresh Debian machine.
#   make demo   builds sluice and runs it in front of an in-process demo MCP server
#   make test   runs every test (unit, property, end-to-end) with fmt and clippy checks
# Both install what is missing first (Hyperscan's development package through apt-get).

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-deps deps build bench fuzz clean

deps:
	@if ! pkg-config --exists libhs 2>/dev/null; then \
		echo "installing libhyperscan-dev and pkg-config (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libhyperscan-dev pkg-config; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }

build: deps
	$(CARGO) build --release --locked

# From a terminal the demo proxy keeps serving until Ctrl-C; from a script it exits.
demo: build
	@if [ -t 0 ] && [ -t 1 ]; then ./target/release/sluice demo; else ./target/release/sluice demo --once; fi

# Real peers for the end-to-end tests, from PyPI: the official MCP Python SDK (2.x), and
# aioquic's HTTP/3 client.
# The session-based 1.x SDK (protocol 2025-*) lives in its own venv: one environment cannot
# hold both.
MCP1_VENV := target/venv-mcp1
test-deps: deps
	@python3 -c 'import mcp.server.mcpserver, mcp' 2>/dev/null || \
		python3 -m pip install --quiet --disable-pip-version-check 'mcp==2.3.0'
	@python3 -c 'import aioquic.h3.connection' 2>/dev/null || \
		python3 -m pip install --quiet --disable-pip-version-check 'aioquic==1.7.2'
	@$(MCP1_VENV)/bin/python -c 'import mcp.server.fastmcp' 2>/dev/null || { \
		python3 -m venv $(MCP1_VENV) && \
		$(MCP1_VENV)/bin/pip install --quiet --disable-pip-version-check 'mcp==1.30.0'; }

test: test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) build --locked --release
	@# Compile the default ruleset's Hyperscan databases once into the cache, so the servers the
	@# tests start load them instead of each compiling them at the same time.
	./target/release/sluice rules --compile > /dev/null
	$(CARGO) test --locked --release --workspace

bench: deps
	$(CARGO) bench --locked --bench inspect
	$(CARGO) bench --locked --bench proxy_load
	$(CARGO) bench --locked --bench h3_vs_h2
	$(CARGO) bench --locked --bench soak

clean:
	$(CARGO) clean

# Each cargo-fuzz target for FUZZ_SECONDS (stable toolchain, no sanitizer), seeded from the
# generated labelled corpus and the default ruleset.
FUZZ_SECONDS ?= 60
fuzz: build
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	./target/release/sluice corpus generate --benign 200 | python3 fuzz/seeds.py fuzz/corpus
	cd fuzz && for t in inspect_message sse_chunks ruleset_load block_vs_stream; do \
		cargo fuzz run -s none $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; \
	done
