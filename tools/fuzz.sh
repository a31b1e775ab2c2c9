#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers untrusted input reaches (issue 14), with libFuzzer and
# AddressSanitizer: the TSLMFuzz harness (Sources/TSLMFuzz, targets in Sources/TSLMFuzzTargets)
# built into .build-fuzz with `--sanitize fuzzer --sanitize address` (release, so -O with Swift's
# bounds and overflow traps kept).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     each target for SECONDS (default 60), one after another
#
# With FUZZ_CPU_SECONDS=N a target also stops (SIGINT) once it has used N CPU seconds, so that on a
# busy machine SECONDS is the wall-clock cap and N the CPU time each target gets.
#
# The committed seeds (fuzz/corpus/<target>/) are read, never written: new inputs go to
# .build-fuzz/corpus/<target>/ (kept between runs). A crash, a sanitizer report, an allocation
# over FUZZ_RSS_MB (default 2048) or a timeout (one input running longer than FUZZ_TIMEOUT seconds,
# default 10, wall clock: on a shared machine a nice'd process's wall time says little about its
# CPU time, so the slowest input is reported too, and `make fuzz FUZZ_TIMEOUT=1` applies the strict
# limit on an idle one) stops the target and leaves the input in .build-fuzz/artifacts/<target>/;
# the script then fails. One process per target, one target at a time. Per target the CPU
# seconds, executions, coverage and slowest input go to .build-fuzz/fuzz-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
ALL=(tslm safetensors gguf pytorch pickle tokenizer-json sentencepiece series chat-template forecast)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
SCRATCH=.build-fuzz
BIN=$SCRATCH/release/TSLMFuzz
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  # lld: with gold, the coverage counters' constructors are dropped and libFuzzer sees (almost)
  # no coverage. The explicit -sanitize-coverage: with -O and whole-module optimization,
  # `--sanitize fuzzer` alone leaves the library modules uninstrumented.
  built=0
  mkdir -p "$SCRATCH"
  for attempt in 1 2 3; do  # a source edited during the build (a shared tree) fails it: retry
    set +e
    TSLM_FUZZ=1 ${SWIFT:-swift} build -c release --scratch-path "$SCRATCH" --product TSLMFuzz \
      --sanitize fuzzer --sanitize address -Xswiftc -use-ld=lld \
      -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp > "$SCRATCH/build.log" 2>&1
    rc=$?
    set -e
    grep -v "Cannot export local symbol" "$SCRATCH/build.log" | grep -E "error|warning: unre|Compiling|Build" | tail -5 || true
    [ $rc -eq 0 ] && { built=1; break; }
    echo "fuzz: build attempt $attempt failed" >&2
  done
  [ $built -eq 1 ] || { echo "fuzz: building $BIN failed (see $SCRATCH/build.log)" >&2; exit 1; }
fi
[ -x "$BIN" ] || { echo "fuzz: $BIN was not built" >&2; exit 1; }

# Swift's runtime keeps metadata caches for the process's life: reachable, not leaks; LeakSanitizer
# stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:handle_abort=1}
summary=$SCRATCH/fuzz-summary.txt
: > "$summary"
failed=0
for t in "${TARGETS[@]}"; do
  seeds=fuzz/corpus/$t
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  work=$SCRATCH/corpus/$t
  art=$SCRATCH/artifacts/$t
  log=$SCRATCH/logs/$t.log
  mkdir -p "$work" "$art" "$(dirname "$log")"
  echo "== fuzz $t for ${SECONDS_EACH}s"
  t0=$(date +%s)
  set +e
  TSLM_FUZZ_TARGET=$t /usr/bin/time -f "%U %S %M" -o "$SCRATCH/logs/$t.time" \
    "$BIN" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
    -malloc_limit_mb="$RSS_MB" ${FUZZ_MAX_LEN:+-max_len=$FUZZ_MAX_LEN} -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "$seeds" > "$log" 2>&1 &
  tpid=$!
  interrupted=0
  if [ -n "${FUZZ_CPU_SECONDS:-}" ]; then
    fpid=""
    while kill -0 $tpid 2>/dev/null; do
      sleep 5
      [ -n "$fpid" ] || fpid=$(pgrep -P $tpid -x TSLMFuzz || true)
      [ -n "$fpid" ] || continue
      ticks=$(awk '{print $14+$15}' /proc/$fpid/stat 2>/dev/null || echo 0)
      if [ "$ticks" -ge $(( FUZZ_CPU_SECONDS * $(getconf CLK_TCK) )) ]; then
        kill -INT "$fpid" 2>/dev/null; interrupted=1; break
      fi
    done
  fi
  wait $tpid
  rc=$?
  # libFuzzer exits 72 when interrupted; that is the CPU budget here, not a failure.
  [ $interrupted -eq 1 ] && [ $rc -eq 72 ] && rc=0
  set -e
  wall=$(( $(date +%s) - t0 ))
  read -r user sys maxrss < <(tail -1 "$SCRATCH/logs/$t.time") || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' || true)
  slowest=$(grep -o 'Slowest unit: [0-9]* s' "$log" | tail -1 || true)
  counters=$(grep -oE 'Loaded 1 modules +\([0-9]+ inline 8-bit counters' "$log" | grep -oE '[0-9]+ inline' | grep -oE '[0-9]+' || echo 0)
  if [ "${counters:-0}" -lt 10000 ]; then
    echo "fuzz: $t: only ${counters:-0} coverage counters: the binary is not instrumented" >&2; rc=99
  fi
  line="$t: rc=$rc wall=${wall}s cpu=${user:-?}+${sys:-?}s execs=$execs $cov maxrss=${maxrss:-?}KB ${slowest}"
  echo "$line" | tee -a "$summary"
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz: $t FAILED (see $log; input in $art/):" >&2
    grep -E "ERROR|SUMMARY|Fatal error|crash|timeout|out-of-memory" "$log" | head -20 >&2 || true
    ls -la "$art" >&2
  fi
done
exit $failed
