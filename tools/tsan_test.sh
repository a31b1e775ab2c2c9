#!/usr/bin/env bash
# The C API under ThreadSanitizer: libtslm (debug, -sanitize=thread) and the test programs (clang
# -fsanitize=thread) both instrumented; any data race fails the run. Two runs: capi_test's two
# threads generating on one model, and stress_test (TSAN_STRESS_THREADS workers with their own
# sessions on one model for TSAN_STRESS_SECONDS while another thread loads and frees models and
# tries to free the shared one).
# Usage: tools/tsan_test.sh   (`make tsan`; not part of `make test`: it takes a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scratch=.build/tsan
swift build --scratch-path "$scratch" --product tslmc --sanitize=thread
swift build -c release -Xswiftc -static-stdlib --product tslm
lib=$(swift build --scratch-path "$scratch" --show-bin-path)
swift_lib=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
clang=$(dirname "$(command -v swift)")/clang
mkdir -p "$work/lib"
cp "$lib/libtslmc.so" "$work/lib/libtslm.so"
"$clang" -std=c11 -g -O1 -fsanitize=thread -Iinclude Tests/CAPI/capi_test.c -o "$work/capi_test" \
  -L"$work/lib" -ltslm -L"$swift_lib" -ldispatch -lBlocksRuntime -lpthread -lm
.build/release/tslm convert "$GGUF" -o "$work/model.tslm" --type q8_0 -q
export LD_LIBRARY_PATH=$work/lib:$swift_lib
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$work/capi_test" "$work/model.tslm" "$work" threads
"$clang" -std=c11 -g -O1 -fsanitize=thread -Iinclude Tests/CAPI/stress_test.c -o "$work/stress_test" \
  -L"$work/lib" -ltslm -L"$swift_lib" -ldispatch -lBlocksRuntime -lpthread -lm
python3 tools/reliability_model.py "$work/small" --hidden 96 --layers 2
.build/release/tslm convert "$work/small" -o "$work/small.tslm" --type q8_0 -q
# RSS under TSan says nothing about leaks (its shadow memory grows): no growth limit here.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$work/stress_test" "$work/small.tslm" \
  "${TSAN_STRESS_THREADS:-4}" "${TSAN_STRESS_SECONDS:-30}" 999999999
echo "tsan: no data race reported"
