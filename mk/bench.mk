# Speed side by side with llama.cpp (issue 12): the same model bytes, interleaved runs, medians.

.PHONY: bench-compare llama-cpp

## bench-compare: prefill (pp128) and decode (tg64) tok/s of tslm and llama.cpp on SmolLM2-135M
## at f16, q8_0 and q4_0, 2 threads, with ratios (BENCH_1B=1 adds the Llama-3.2-1B shape; ROUNDS,
## REPS, THREADS as in tools/bench_compare.sh). Builds llama.cpp 0c1e57098 from the pinned
## llama-cpp-python==0.3.36 sdist into .cache/llama.cpp on first use (~15 min on 2 cores). The
## table goes to stdout and .cache/bench-compare.md; run it on an otherwise idle machine.
bench-compare: deps models release
	tools/bench_compare.sh $(BIN_RELEASE)

## llama-cpp: only build llama.cpp's llama-bench and llama-quantize into .cache/llama.cpp/build/bin.
llama-cpp:
	tools/build_llama_cpp.sh
