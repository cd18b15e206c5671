# The two commands a user types: `make demo` and `make test`. Every target installs what it
# needs when it is missing.
SHELL := /bin/bash
DENO := node_modules/.bin/deno
RUSTC_WASM ?= /usr/bin/rustc
CRATES := $(patsubst kernels/%/src/lib.rs,%,$(wildcard kernels/*/src/lib.rs))
WASM := $(patsubst %,kernels/build/%.wasm,$(CRATES))
APT_PKGS_BUILD := rustc libstd-rust-dev-wasm32
APT_PKGS_REF := python3-torch python3-torchvision python3-yaml python3-sklearn sentencepiece liblinear-tools mesa-vulkan-drivers openmpi-bin libopenmpi-dev
export XDG_RUNTIME_DIR ?= /tmp/virtex-xdg

.PHONY: all deps kernels test demo bench fmt lint check refdeps clean

all: kernels

$(DENO): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(DENO)

# Debian's rustc with the wasm32 std (rustup's toolchain has no wasm32 std here).
$(RUSTC_WASM):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PKGS_BUILD) || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PKGS_BUILD)); \
	else \
	  echo "error: $(RUSTC_WASM) is missing and apt-get is not usable here (need root)."; \
	  echo "       install Debian's packages: $(APT_PKGS_BUILD)"; exit 1; \
	fi

# Reference tools for parity tests and benchmarks (never runtime dependencies).
refdeps:
	@missing=""; for p in $(APT_PKGS_REF); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || \
	     (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing)); \
	  else echo "note: reference packages missing ($$missing); parity tests will skip"; fi; \
	fi

kernels/build/%.wasm: kernels/%/src/*.rs kernels/build.sh | $(RUSTC_WASM)
	RUSTC_WASM=$(RUSTC_WASM) bash kernels/build.sh $*

kernels: $(WASM)

deps: $(DENO) kernels

test: deps refdeps
	@mkdir -p $(XDG_RUNTIME_DIR)
	$(DENO) test -A --parallel tests/

demo: deps
	@mkdir -p $(XDG_RUNTIME_DIR)
	$(DENO) run -A cli/main.ts demo

bench: deps refdeps
	@mkdir -p $(XDG_RUNTIME_DIR)
	$(DENO) run -A bench/main.ts

fmt: $(DENO)
	$(DENO) fmt

lint: $(DENO)
	$(DENO) lint

check: $(DENO)
	$(DENO) fmt --check && $(DENO) lint

clean:
	rm -rf kernels/build
