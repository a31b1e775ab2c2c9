#!/usr/bin/env bash
# Replays every input a fuzz campaign kept (.build-fuzz/corpus/<target>/) and the committed seeds
# through the fuzzing build (libFuzzer + ASan, tools/fuzz.sh builds it) once each, with the strict
# per-input limit of issue 14: an input running longer than 1 s (FUZZ_TIMEOUT), a crash or a
# sanitizer report fails the run; libFuzzer reports any input over 1 s as a slow unit, which
# fails it too. Run it on an idle machine: the limit is wall-clock time.
#
#   tools/fuzz_replay.sh [TARGET...]     (default: every target with a kept corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build-fuzz/release/TSLMFuzz
[ -x "$BIN" ] || { echo "fuzz-replay: $BIN missing: run make fuzz (or make fuzz-smoke) first" >&2; exit 1; }
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for d in .build-fuzz/corpus/*/; do TARGETS+=("$(basename "$d")"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:handle_abort=1}
failed=0
for t in "${TARGETS[@]}"; do
  log=.build-fuzz/logs/replay-$t.log
  mkdir -p "$(dirname "$log")"
  n=$(find ".build-fuzz/corpus/$t" "fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
  set +e
  TSLM_FUZZ_TARGET=$t "$BIN" -runs=0 -timeout="${FUZZ_TIMEOUT:-1}" -rss_limit_mb=2048 -report_slow_units=1 \
    ".build-fuzz/corpus/$t" "fuzz/corpus/$t" > "$log" 2>&1
  rc=$?
  set -e
  slow=$(grep -c "Slowest unit" "$log" || true)
  echo "$t: $n inputs replayed, rc=$rc, inputs over ${FUZZ_TIMEOUT:-1} s: $slow"
  if [ $rc -ne 0 ] || [ "$slow" -ne 0 ]; then failed=1; grep -E "ERROR|Slowest|timeout" "$log" | head -5 >&2; fi
done
exit $failed
