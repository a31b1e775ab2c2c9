# Reliability (issue 14): coverage-guided fuzzing of the parsers, bit flips, faults during
# conversion. Scripts in tools/; the fuzz harness in Sources/TSLMFuzz + Sources/TSLMFuzzTargets,
# built into .build-fuzz (libFuzzer + AddressSanitizer), seeds in fuzz/corpus/<target>/.

.PHONY: fuzz fuzz-smoke fuzz-replay bitflip bitflip-smoke kill-convert soak stress stress-smoke reliability

## fuzz: every fuzz target for FUZZ_SECONDS each (default 600), one after another; FUZZ_TARGETS
## picks some (tslm safetensors gguf pytorch pickle tokenizer-json sentencepiece series
## chat-template forecast). New inputs go to .build-fuzz/corpus/, crashes to .build-fuzz/artifacts/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz: deps
	SWIFT=$(SWIFT) tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## fuzz-smoke: every fuzz target for FUZZ_SMOKE_SECONDS (default 15) — part of `make test`.
FUZZ_SMOKE_SECONDS ?= 15
fuzz-smoke: deps
	SWIFT=$(SWIFT) tools/fuzz.sh $(FUZZ_SMOKE_SECONDS)

## fuzz-replay: every input the campaigns kept (.build-fuzz/corpus/) replayed once with the strict
## per-input limit of 1 s (FUZZ_TIMEOUT): no crash, no sanitizer report, no slow input.
fuzz-replay:
	tools/fuzz_replay.sh $(FUZZ_TARGETS)

## bitflip: 1,000 seeded single-bit flips in a q8_0 model: `tslm verify` detects each, `tslm info`
## and `tslm run` never crash. bitflip-smoke (in `make test`): 50 uniform flips (+ padding gaps, header).
BITFLIPS ?= 1000
bitflip: deps
	$(SWIFT) build $(RELEASE) --product tslm
	tools/bitflip_test.sh $(BIN_RELEASE) $(BITFLIPS)
bitflip-smoke: deps
	$(SWIFT) build $(RELEASE) --product tslm
	tools/bitflip_test.sh $(BIN_RELEASE) 50

## kill-convert: `tslm convert` / `tslm quantize` SIGKILLed at 50 + 10 seeded points, and failing
## to write (full tmpfs, ulimit -f): the file at the output path is never partial or damaged.
KILL_POINTS ?= 50
kill-convert: deps
	$(SWIFT) build $(RELEASE) --product tslm
	tools/kill_convert_test.sh $(BIN_RELEASE) $(KILL_POINTS)

## soak: 10,000 short generations through the C API in one process (Tests/CAPI/soak_test.c): RSS
## growth < 1 MiB after warm-up, identical outputs for identical seeds (35 s here; in `make test`).
SOAK_GENERATIONS ?= 10000
soak: lib
	$(SWIFT) build $(RELEASE) --product tslm
	tools/capi_load_test.sh soak $(dir $(LIB_BUILT)) $(BIN_RELEASE) $(SOAK_GENERATIONS)

## stress: STRESS_THREADS (default 8) threads with their own sessions on one model for
## STRESS_SECONDS (default 180), while another thread loads and frees models and tries to free the
## shared one (Tests/CAPI/stress_test.c): no error, identical texts for identical seeds, every free
## of a model with a live session refused, RSS growth < 2 MiB after warm-up. stress-smoke (in
## `make test`): 8 threads for 15 s.
STRESS_THREADS ?= 8
STRESS_SECONDS ?= 180
stress: lib
	$(SWIFT) build $(RELEASE) --product tslm
	tools/capi_load_test.sh stress $(dir $(LIB_BUILT)) $(BIN_RELEASE) $(STRESS_THREADS) $(STRESS_SECONDS)
stress-smoke: lib
	$(SWIFT) build $(RELEASE) --product tslm
	tools/capi_load_test.sh stress $(dir $(LIB_BUILT)) $(BIN_RELEASE) 8 15

## reliability: the full versions (1,000 flips, 50 + 10 kills, the soak, fuzz for FUZZ_SECONDS per
## target).
reliability: bitflip kill-convert soak stress fuzz

EXTRA_TESTS += fuzz-smoke bitflip-smoke kill-convert soak stress-smoke
