#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer runs (issue 14), `make asan`:
#  1. the Swift test suite built and run with --sanitize=address (scratch .build/asan; swiftc has
#     no -sanitize=undefined on Linux: Swift's own overflow, bounds and nil checks stay on in
#     these debug builds instead); ASAN_SWIFT_TESTS=0 skips it;
#  2. libtslm (debug, ASan) with the C API programs compiled with clang
#     -fsanitize=address,undefined: capi_test (bad calls, two threads, tokens, abort, the LSTM and
#     ChatTime forecasters), 200 soak generations and 10 s of stress_test (4 threads + load/free
#     churn), with LeakSanitizer on.
# Any sanitizer report fails the run (halt_on_error; UBSan reports abort).
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
scratch=.build/asan
sanitize=(--sanitize=address)
work=$(mktemp -d "${TMPDIR:-/tmp}/tslm-asan.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Swift's runtime keeps its metadata caches for the process's life: reachable, not leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if [ "${ASAN_SWIFT_TESTS:-1}" != 0 ]; then
  echo "== asan: swift test (address)"
  # XCTest keeps test-case objects until exit, and Swift's enum payloads hide some pointers from
  # the leak scan: leak checking is for the C API runs below, where every handle is freed.
  ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" \
    swift test --scratch-path "$scratch" "${sanitize[@]}" 2>&1 | tee "$work/swift-test.log" | grep -E "^Test Suite 'All tests'|Executed [0-9]+ tests|ERROR: AddressSanitizer|runtime error|SUMMARY" || true
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" "$work/swift-test.log"; then
    echo "asan: a sanitizer report in swift test:" >&2
    grep -E -A30 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$work/swift-test.log" | head -60 >&2
    exit 1
  fi
  grep -qE "Executed [0-9]+ tests?, with 0 failures" "$work/swift-test.log" || {
    echo "asan: swift test failed:" >&2; grep -E "error|failed" "$work/swift-test.log" | head -30 >&2; exit 1; }
fi

echo "== asan: the C API (libtslm and the test programs instrumented)"
swift build --scratch-path "$scratch" --product tslmc "${sanitize[@]}" 2>&1 | tail -1
swift build -c release -Xswiftc -static-stdlib --product tslm 2>&1 | tail -1
lib=$(swift build --scratch-path "$scratch" --show-bin-path)
swift_lib=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
clang=$(dirname "$(command -v swift)")/clang
mkdir -p "$work/lib"
cp "$lib/libtslmc.so" "$work/lib/libtslm.so"
for prog in capi_test soak_test stress_test; do
  "$clang" -std=c11 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude "Tests/CAPI/$prog.c" \
    -o "$work/$prog" -L"$work/lib" -ltslm -L"$swift_lib" -ldispatch -lBlocksRuntime -lpthread -lm
done
tslm=.build/release/tslm
"$tslm" convert "$GGUF" -o "$work/model.tslm" --type q8_0 -q
fx=Tests/TSLMRuntimeTests/Fixtures
"$tslm" convert "$fx/lstm/one_layer_univariate/model.pt" --forecast-config "$fx/lstm/one_layer_univariate/forecast.json" \
  -o "$work/lstm.tslm" -q
"$tslm" convert "$fx/chattime/model" --type f32 -o "$work/chattime.tslm" -q
python3 tools/reliability_model.py "$work/small" --hidden 96 --layers 2
"$tslm" convert "$work/small" -o "$work/small.tslm" --type q8_0 -q
export LD_LIBRARY_PATH=$work/lib:$swift_lib
"$work/capi_test" "$work/model.tslm" "$work" all "$work/lstm.tslm" "$work/chattime.tslm" > "$work/capi.txt" 2>&1 || {
  echo "asan: capi_test failed:" >&2; grep -vE "^ok " "$work/capi.txt" | head -60 >&2; exit 1; }
tail -1 "$work/capi.txt"
# RSS under ASan (quarantine, shadow memory) says nothing about leaks: LeakSanitizer does.
"$work/soak_test" "$work/small.tslm" 200 999999999
"$work/stress_test" "$work/small.tslm" 4 10 999999999
echo "asan: no sanitizer report"
