#!/usr/bin/env bash
# Prefill (pp) and decode (tg) speed with `tslm bench`, llama-bench style.
#   tools/bench.sh [tslm]          SmolLM2-135M-Instruct (real) at f16, q8_0, q4_0; 1 and 2 threads
#   BENCH_1B=1 tools/bench.sh      also the Llama-3.2-1B-shaped random model (needs ~10 GB disk),
#                                  the shape of the llama.cpp baseline in README.md (llama-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
TSLM=${1:-.build/release/tslm}
out=.cache/bench
mkdir -p "$out"
tools/fetch_smollm2.sh
for t in f16 q8_0 q4_0; do
  f=$out/smollm2-$t.tslm
  [ -f "$f" ] || "$TSLM" convert .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf -o "$f" --type "$t" -q
  for th in 1 2; do "$TSLM" bench -m "$f" -p 128 -n 64 -r 3 -t "$th"; done
done
if [ "${BENCH_1B:-0}" = 1 ]; then
  src=$out/llama-1b-f32
  [ -f "$src/model.safetensors" ] || python3 tools/make_synthetic_llama.py "$src"
  for t in f16 q8_0 q4_0; do
    f=$out/llama-1b-$t.tslm
    [ -f "$f" ] || "$TSLM" convert "$src" -o "$f" --type "$t" -q
    "$TSLM" bench -m "$f" -p 128 -n 64 -r 2 -t 2
  done
fi
