#!/usr/bin/env bash
# Side-by-side speed of tslm and llama.cpp on the same model bytes (`make bench-compare`).
#
#   tools/bench_compare.sh [tslm]      default .build/release/tslm
#
# Method
#   llama.cpp: commit 0c1e57098, built by tools/build_llama_cpp.sh from the source vendored in the
#     pinned PyPI sdist llama-cpp-python==0.3.36 (sha256-checked), Release, GGML_NATIVE=ON, into
#     .cache/llama.cpp/ (outside git); its default settings otherwise (mmap, flash-attn auto,
#     batch 2048 / ubatch 512, OpenMP threads).
#   Same weights: the pinned SmolLM2-135M-Instruct Q4_1 GGUF (tools/fetch_smollm2.sh) is turned into
#     GGUF files at f16, q8_0 and q4_0 by llama.cpp's own `llama-quantize --allow-requantize`
#     (for q4_0 the embedding/output matrix at q8_0, `--token-embedding-type q8_0
#     --output-tensor-type q8_0`: tslm's quantization policy for 4-bit types; llama-quantize's own
#     default there would be q6_K, which .tslm does not store). Each GGUF is then converted with
#     `tslm convert --type source`, which stores f32/f16/q8_0/q4_0 tensors byte for byte (.tslm
#     blocks are ggml's blocks).
#     tools/compare_weights.py checks every tensor: same type, shape and bytes (attn_q/attn_k
#     compared after undoing GGUF's rotary row permutation, which the importer undoes too).
#   Runs: per model and type, `tslm bench -p 128 -n 64 -t 2 -r REPS` and
#     `llama-bench -p 128 -n 64 -t 2 -r REPS`, alternating which engine goes first, ROUNDS rounds.
#     Each engine call gives the median of its REPS repetitions (llama-bench also runs one warmup
#     first); the table shows the median over rounds. Prefill = pp128 tok/s, decode = tg64 tok/s.
#     Differences between the two tools that remain: llama-bench measures tg64 from an empty
#     context, tslm bench right after the 128-token prompt (positions 128…191: a little more
#     attention work for tslm); tslm bench does no warmup run (the median hides the first one);
#     llama.cpp keeps an f16 KV cache; tslm bench its default (`--kv auto`: f16 for the q8_0/q4_0
#     files, f32 for f16 weights; TSLM_BENCH_ARGS='--kv f16' or '--kv f32' to force one).
#   Output: the table on stdout and as markdown in .cache/bench-compare.md; raw per-round numbers
#     in .cache/bench-compare/samples.tsv.
#
# Environment: ROUNDS (default 3), REPS (3), THREADS (2), TSLM_BENCH_ARGS (extra `tslm bench`
# flags, e.g. '--kv f32'), STAT=max (the best round instead of the median over rounds: on a
# machine shared with other work that estimates the uncontended speed better), BENCH_1B=1 adds
# the Llama-3.2-1B shape (random weights written straight to an f16 GGUF by
# tools/make_synthetic_gguf.py, then the same route; ~9 GB of disk and ~10 min more). Run it on
# an otherwise idle machine: llama.cpp's OpenMP threads spin-wait and lose far more than tslm
# when other processes share the cores. The load average before and after is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

TSLM=${1:-.build/release/tslm}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
STAT=${STAT:-median}
THREADS=${THREADS:-2}
P=128
N=64
OUT=.cache/bench-compare
MD=.cache/bench-compare.md
SMOLLM2=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf

die() { echo "bench_compare: $*" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $REPS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS and REPS must be ≥ 1"
[ -x "$TSLM" ] || die "no tslm binary at $TSLM (make release)"
command -v python3 >/dev/null || die "python3 is needed"
mkdir -p "$OUT"

LLAMA_BIN=$(tools/build_llama_cpp.sh) || die "building llama.cpp failed"
QUANTIZE=$LLAMA_BIN/llama-quantize
LLAMA_BENCH=$LLAMA_BIN/llama-bench
tools/fetch_smollm2.sh

# make_pair SRC_GGUF NAME TYPE: $OUT/NAME-TYPE.gguf (llama-quantize) and .tslm (tslm convert),
# checked to hold the same weights.
make_pair() {
  local src=$1 name=$2 type=$3 g=$OUT/$2-$3.gguf t=$OUT/$2-$3.tslm
  if [ ! -f "$g" ]; then
    local extra=()
    case $type in q4_*) extra=(--token-embedding-type q8_0 --output-tensor-type q8_0) ;; esac
    "$QUANTIZE" --allow-requantize "${extra[@]}" "$src" "$g.part" "${type^^}" >"$OUT/quantize-$name-$type.log" 2>&1 ||
      { tail -20 "$OUT/quantize-$name-$type.log" >&2; die "llama-quantize $src → $type failed"; }
    mv "$g.part" "$g"
  fi
  if [ ! -f "$t" ]; then
    "$TSLM" convert "$g" -o "$t.part" --type source -q || die "tslm convert $g failed"
    mv "$t.part" "$t"
  fi
  local same
  same=$(python3 tools/compare_weights.py "$g" "$t") || { echo "$same" >&2; die "$g and $t differ"; }
  echo "  $name $type: $same"
}

MODELS=()
echo "preparing models (same bytes for both engines)..."
for type in f16 q8_0 q4_0; do make_pair "$SMOLLM2" smollm2 "$type"; MODELS+=("smollm2 $type"); done
if [ "${BENCH_1B:-0}" = 1 ]; then
  src=$OUT/llama-1b-f16.gguf
  [ -f "$src" ] || python3 tools/make_synthetic_gguf.py "$src" --tokenizer-from "$SMOLLM2" ||
    die "could not write the 1B-shape GGUF"
  for type in f16 q8_0 q4_0; do make_pair "$src" llama-1b "$type"; MODELS+=("llama-1b $type"); done
fi

# run_tslm FILE → "pp tg"
run_tslm() {
  local line
  # shellcheck disable=SC2086  # TSLM_BENCH_ARGS is a list of flags
  line=$("$TSLM" bench -m "$1" -p $P -n $N -r "$REPS" -t "$THREADS" ${TSLM_BENCH_ARGS:-} | grep "^pp$P ") ||
    die "tslm bench -m $1 failed"
  # pp128 209.3 tok/s | tg64 52.2 tok/s | peak RSS 0.15 GiB
  awk '{print $2, $6}' <<<"$line"
}

# run_llama FILE → "pp tg" (median of llama-bench's samples)
run_llama() {
  "$LLAMA_BENCH" -m "$1" -p $P -n $N -t "$THREADS" -r "$REPS" -o json 2>"$OUT/llama-bench.log" |
    python3 -c '
import json, statistics, sys
pp = tg = None
for e in json.load(sys.stdin):
    m = statistics.median(e["samples_ts"])
    if e["n_gen"] == 0: pp = m
    else: tg = m
if pp is None or tg is None: sys.exit("llama-bench gave no pp/tg result")
print(f"{pp:.2f} {tg:.2f}")' || { tail -20 "$OUT/llama-bench.log" >&2; die "llama-bench -m $1 failed"; }
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
samples=$OUT/samples.tsv
printf 'round\tmodel\ttype\tengine\tpp\ttg\n' >"$samples"
echo "benchmarking: $ROUNDS rounds × (tslm, llama.cpp) × ${#MODELS[@]} models, -p $P -n $N -t $THREADS -r $REPS"
for ((r = 1; r <= ROUNDS; r++)); do
  i=0
  for m in "${MODELS[@]}"; do
    read -r name type <<<"$m"
    # alternate which engine goes first, by round and by model
    if (( (r + i) % 2 )); then order="tslm llama.cpp"; else order="llama.cpp tslm"; fi
    for e in $order; do
      if [ "$e" = tslm ]; then res=$(run_tslm "$OUT/$name-$type.tslm"); else res=$(run_llama "$OUT/$name-$type.gguf"); fi
      read -r pp tg <<<"$res"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$type" "$e" "$pp" "$tg" >>"$samples"
      printf '  round %d  %-8s %-5s %-9s pp%d %8.1f tok/s  tg%d %7.1f tok/s\n' "$r" "$name" "$type" "$e" $P "$pp" $N "$tg"
    done
    i=$((i + 1))
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
python3 - "$samples" "$MD" "$cpu" "$THREADS" "$P" "$N" "$ROUNDS" "$REPS" "$started" "$load_before" "$load_after" "$STAT" <<'PY'
import csv, statistics, sys
samples, md, cpu, threads, P, N, rounds, reps, started, load_before, load_after, stat = sys.argv[1:]
rows = list(csv.DictReader(open(samples), delimiter="\t"))
names = {"smollm2": "SmolLM2-135M", "llama-1b": "Llama-3.2-1B shape"}
keys = []
for r in rows:
    k = (r["model"], r["type"])
    if k not in keys: keys.append(k)
def med(k, e, f):
    return (max if stat == "max" else statistics.median)(float(r[f]) for r in rows if (r["model"], r["type"]) == k and r["engine"] == e)
def fmt(x): return f"{x:.1f}" if x < 100 else f"{x:.0f}"
lines = [
    f"tslm vs llama.cpp 0c1e57098 (llama-cpp-python 0.3.36 sdist, Release, GGML_NATIVE), same model bytes,",
    f"{cpu}, {threads} threads, -p {P} -n {N}, {rounds} interleaved rounds × {reps} reps, "
    f"{'best round' if stat == 'max' else 'median over rounds'} of per-run medians; {started};",
    f"load average before {load_before}, after {load_after}.",
    "",
    f"| model | prefill pp{P} tslm / llama.cpp | decode tg{N} tslm / llama.cpp |",
    "|---|---|---|",
]
for k in keys:
    tp, lp = med(k, "tslm", "pp"), med(k, "llama.cpp", "pp")
    tt, lt = med(k, "tslm", "tg"), med(k, "llama.cpp", "tg")
    lines.append(f"| {names.get(k[0], k[0])} {k[1]} | {fmt(tp)} / {fmt(lp)} ({tp / lp:.2f}×) | {fmt(tt)} / {fmt(lt)} ({tt / lt:.2f}×) |")
text = "\n".join(lines) + "\n"
open(md, "w").write(text)
print()
print(text, end="")
PY
echo "(written to $MD; per-round numbers in $samples)"
