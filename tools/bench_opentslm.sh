#!/usr/bin/env bash
# OpenTSLM memory and time to first token: SoftPrompt (SP) vs Flamingo on the same backbone.
#   tools/bench_opentslm.sh [path/to/tslm]        (default .build/release/tslm)
#
# Builds two random-init checkpoints in the official layouts on SmolLM2-135M
# (tools/make_bench_opentslm.py, once, into $BENCH_DIR/ckpt), converts both with the SmolLM2 GGUF
# as --base at q8_0, and runs each with a total of 1k, 10k and 100k samples per prompt, split into
# equal series of at most 4000 samples (the encoders take max_patches 1024 x patch 4): 1 x 1000,
# 4 x 2500, 25 x 4000. Each run is `tslm run ... --preset tsqa -n 1`, measured by /usr/bin/time
# (peak RSS of the whole process, wall time) and by the CLI's stats line on stderr (prompt
# positions; TTFT = positions / (pos/s): encoding the series, prefill and the first token, after
# the model is loaded).
#
# Two context settings, since the KV cache is allocated and zero-filled for its whole capacity:
#   ctx = max    the model's context length (8192) for every prompt;
#   ctx = fit    prompt positions + 1: the cache the prompt needs, so RSS shows what each
#                prompt costs.
# SP needs one position per 4 samples (25,000 soft tokens at 100k): beyond the context it must
# fail cleanly, reported as "exceeds context" (a crash or any other failure fails the bench).
#
# Environment: BENCH_DIR (default .cache/bench-opentslm), BENCH_REPS (runs per row, default 3;
# the TTFT is their median, the RSS their maximum), BENCH_REPS_LARGEST (runs for the largest
# total, default BENCH_REPS), BENCH_THREADS (default 2), BENCH_SAMPLES (default "1000 10000
# 100000"), BENCH_CTX ("max fit", the settings to run).
set -euo pipefail
cd "$(dirname "$0")/.."
TSLM=${1:-.build/release/tslm}
out=${BENCH_DIR:-.cache/bench-opentslm}
reps=${BENCH_REPS:-3}
threads=${BENCH_THREADS:-2}
samples=${BENCH_SAMPLES:-"1000 10000 100000"}
ctx_modes=${BENCH_CTX:-"max fit"}
max_series_len=4000
base=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
largest=$(printf '%s\n' $samples | sort -n | tail -1)
reps_largest=${BENCH_REPS_LARGEST:-$reps}

[ -x "$TSLM" ] || { echo "bench_opentslm: $TSLM is not an executable (make release builds it)" >&2; exit 2; }
if [ ! -x /usr/bin/time ]; then
  echo "bench_opentslm: installing GNU time (Debian package 'time')..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
t_start=$(date +%s)
tools/fetch_smollm2.sh
mkdir -p "$out/series"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- models ---------------------------------------------------------------------------------
if [ ! -f "$out/ckpt/manifest.json" ]; then
  echo "generating the random-init checkpoints into $out/ckpt ..." >&2
  python3 tools/make_bench_opentslm.py "$out/ckpt" --base "$base"
fi
for m in sp flamingo; do
  f=$out/$m-q8_0.tslm
  if [ ! -f "$f" ] || [ "$out/ckpt/$m/model_checkpoint.pt" -nt "$f" ]; then
    echo "converting $m on $base (q8_0) ..." >&2
    "$TSLM" convert "$out/ckpt/$m/model_checkpoint.pt" --base "$base" -o "$f" --type q8_0 -q
  fi
done

# Backbone shape from `tslm info`, for the KV cache size (f32 keys and values).
info=$("$TSLM" info "$out/sp-q8_0.tslm")
info_value() { awk -v k="$1" '$1 == k { print $2 }' <<<"$info" | head -1; }
arch=$(info_value architecture)
n_ctx=$(info_value "$arch.context_length")
n_layer=$(info_value "$arch.block_count")
n_embd=$(info_value "$arch.embedding_length")
n_head=$(info_value "$arch.attention.head_count")
n_head_kv=$(info_value "$arch.attention.head_count_kv")
kv_bytes_per_pos=$(( n_layer * 2 * n_head_kv * (n_embd / n_head) * 4 ))

# --- series ---------------------------------------------------------------------------------
# total -> "n_series length": the fewest equal series of <= max_series_len samples, each a
# multiple of the patch size 4 (so no padding: the prompt holds exactly `total` samples).
layout() {
  local total=$1 n
  n=$(( (total + max_series_len - 1) / max_series_len ))
  while (( total % n != 0 || (total / n) % 4 != 0 )); do n=$(( n + 1 )); done
  echo "$n $(( total / n ))"
}
for total in $samples; do
  read -r n len < <(layout "$total")
  csv=$out/series/total-$total.csv
  [ -f "$csv" ] && continue
  # Seeded sines + noise, one column per series (each column is one series for tslm run).
  python3 - "$csv" "$n" "$len" <<'PY'
import math, os, random, sys
path, n, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1000 * n + length)
cols = [(0.5 + 0.1 * c, 0.01 + 0.003 * c, rng.uniform(0, 6.28), 3.0 * c) for c in range(n)]
with open(path + ".tmp-w", "w") as f:
    for t in range(length):
        f.write(",".join(f"{off + amp * math.sin(fr * t + ph) + 0.1 * rng.gauss(0, 1):.5f}"
                         for amp, fr, ph, off in cols) + "\n")
os.replace(path + ".tmp-w", path)
PY
done

# --- runs -----------------------------------------------------------------------------------
pre="You are given one or more time series."
post="Describe them in one sentence. Answer:"
failures=0
rc_exceeds="?"

# run_once MODEL_FILE CSV CTX -> "status positions ttft rss_kb wall" on stdout
#   status: ok | exceeds (ttft holds the exit status) | failed
run_once() {
  local model=$1 csv=$2 ctx=$3 rc=0
  /usr/bin/time -f "%M %e" -o "$tmp/time" "$TSLM" run -m "$model" --series "$csv" --preset tsqa \
    --pre "$pre" -p "$post" -n 1 -t "$threads" --ctx "$ctx" >"$tmp/out" 2>"$tmp/err" || rc=$?
  local rss wall
  read -r rss wall < <(grep -E '^[0-9]+ [0-9.]+$' "$tmp/time" | tail -1) || { rss=-; wall=-; }
  if (( rc == 0 )); then
    # prompt: N positions, R pos/s | generation: ...
    local line
    line=$(grep -E '^prompt: [0-9]+ positions, [0-9.]+ pos/s' "$tmp/err" | tail -1)
    [ -n "$line" ] || { echo "failed - - $rss $wall"; return; }
    awk -v rss="$rss" -v wall="$wall" '{ p = $2; r = $4; printf "ok %d %.3f %s %s\n", p, (r > 0 ? p / r : 0), rss, wall }' <<<"$line"
  elif (( rc < 128 )) && grep -q 'more than the context length' "$tmp/err"; then
    local p
    p=$(sed -nE 's/.*the prompt has ([0-9]+) tokens, more than the context length.*/\1/p' "$tmp/err" | tail -1)
    grep -E '^error: ' "$tmp/err" | tail -1 >"$tmp/exceeds-$(basename "$model")-$ctx"
    echo "exceeds ${p:--} $rc $rss $wall"
  else
    echo "bench_opentslm: $(basename "$model") on $(basename "$csv") --ctx $ctx exited with $rc:" >&2
    tail -5 "$tmp/err" >&2
    echo "failed - - ${rss:--} ${wall:--}"
  fi
}

# median of the numbers given ("-" for none)
median() { printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

rows=()
echo "running (threads $threads, $reps run(s) per row, $reps_largest for $largest samples) ..." >&2
for total in $samples; do
  read -r n len < <(layout "$total")
  csv=$out/series/total-$total.csv
  r=$reps; (( total == largest )) && r=$reps_largest
  for m in sp flamingo; do
    model=$out/$m-q8_0.tslm
    positions=""
    for mode in $ctx_modes; do
      if [ "$mode" = fit ]; then
        if [ -z "$positions" ]; then  # learn the prompt length from one run at the full context
          read -r st p _ _ _ < <(run_once "$model" "$csv" "$n_ctx")
          [ "$st" = ok ] || [ "$st" = exceeds ] && positions=$p
        fi
        if [ -z "$positions" ] || [ "$positions" = - ]; then rows+=("$m $total $n $len fit - failed - - - -"); failures=$((failures + 1)); continue; fi
        if (( positions + 1 > n_ctx )); then
          rows+=("$m $total $n $len fit $positions exceeds - - - -"); continue
        fi
        ctx=$(( positions + 1 ))
      else
        ctx=$n_ctx
      fi
      ttfts=(); rss_max=0; walls=(); status=ok; pos=-
      for ((i = 0; i < r; i++)); do
        read -r st p ttft rss wall < <(run_once "$model" "$csv" "$ctx")
        [ "$rss" != - ] && (( rss > rss_max )) && rss_max=$rss
        if [ "$st" != ok ]; then status=$st; pos=$p; [ "$st" = exceeds ] && rc_exceeds=$ttft; break; fi
        pos=$p; ttfts+=("$ttft"); walls+=("$wall")
      done
      [ "$mode" = max ] && [ "$status" != failed ] && positions=$pos
      [ "$status" = failed ] && failures=$((failures + 1))
      ttft=$(median "${ttfts[@]}")
      spread=$(printf '%s\n' "${ttfts[@]}" | awk 'NF { if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++ } END { if (n) printf "%.2f-%.2f", lo, hi; else print "-" }')
      wall=$(median "${walls[@]}")
      rows+=("$m $total $n $len $mode/$ctx $pos $status $rss_max $ttft $wall $spread")
    done
  done
done

# --- table ----------------------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
echo
echo "OpenTSLM on SmolLM2-135M (q8_0): SoftPrompt $(mib "$(stat -c %s "$out/sp-q8_0.tslm")") MiB, Flamingo $(mib "$(stat -c %s "$out/flamingo-q8_0.tslm")") MiB file; threads $threads; $(nproc) cores"
printf '%-10s %7s %7s %9s %9s %6s %7s %7s %11s %6s %4s\n' model samples series "ctx" positions "KV MiB" "RSS MiB" "TTFT s" "TTFT range" "wall s" runs
for row in "${rows[@]}"; do
  read -r m total n len mode pos status rss ttft wall spread <<<"$row"
  ctx=${mode#*/}
  name=$([ "$m" = sp ] && echo SoftPrompt || echo Flamingo)
  r=$reps; (( total == largest )) && r=$reps_largest
  case $status in
    ok)
      printf '%-10s %7s %7s %9s %9s %6s %7s %7.2f %11s %6.2f %4s\n' "$name" "$total" "${n}x$len" "$mode" "$pos" \
        "$(mib $(( ctx * kv_bytes_per_pos )))" "$(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')" "$ttft" "$spread" "$wall" "$r" ;;
    exceeds)
      # SP: the soft tokens alone (one per patch of 4 samples) need more than the context; tslm
      # rejects the prompt while appending the series that overflows it (its count stops there).
      need=$pos; why="prompt"
      [ "$m" = sp ] && { need=">$(( n * len / 4 ))"; why="$(( n * len / 4 )) soft tokens alone"; }
      printf '%-10s %7s %7s %9s %9s   exceeds context %s (%s); rejected cleanly, exit %s: "%s"\n' \
        "$name" "$total" "${n}x$len" "$mode" "$need" "$n_ctx" "$why" "$rc_exceeds" \
        "$(cat "$tmp/exceeds-$m-q8_0.tslm-$n_ctx" 2>/dev/null || echo "?")" ;;
    *)
      printf '%-10s %7s %7s %9s %9s   FAILED (see above)\n' "$name" "$total" "${n}x$len" "$mode" "$pos" ;;
  esac
done
echo "RSS: peak resident set of the whole tslm process (model file pages touched + KV cache + buffers)."
echo "TTFT: session time from the stats line (series encoding, prefill, first token), model load excluded: median"
echo "and range of the runs; wall: the whole process (median). KV MiB: the f32 cache of ctx positions, zero-filled at start."
echo "total bench time $(( $(date +%s) - t_start )) s"
(( failures == 0 )) || { echo "bench_opentslm: $failures row(s) failed" >&2; exit 1; }
