#!/usr/bin/env bash
# The C API as an application meets it: install into a temporary prefix, check what libtslm.so
# links and exports, compile the header in strict C and C++, build every example with
# pkg-config, run them on the real SmolLM2 model, run the bad-call table and the two-thread test,
# and run the examples under valgrind memcheck.
# Usage: tools/capi_test.sh   (after `make lib release`; `make test` runs it)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
source tools/testlib.sh
CC=${CC:-cc}
CXX=${CXX:-c++}
STRICT="-Wall -Wextra -Wpedantic -Werror"

prefix=$work/prefix
# STRIP=: keeps the symbol tables so that valgrind can name (and the suppression file match) the
# Swift runtime's internal functions; the code is the same as a stripped install's.
make -s install PREFIX="$prefix" STRIP=: >/dev/null || { echo "FAIL make install"; exit 1; }
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$prefix/lib
lib=$prefix/lib/libtslm.so
check "install: header, library, CLI and tslm.pc" test -f "$prefix/include/tslm.h" -a -f "$lib" -a -x "$prefix/bin/tslm" -a -f "$prefix/lib/pkgconfig/tslm.pc"
check "ldd: no libswift* dependency" bash -c "! ldd '$lib' | grep -q libswift"
check "ldd: no Foundation/ICU/dispatch dependency" bash -c "! ldd '$lib' | grep -Eq 'Foundation|ICU|dispatch|BlocksRuntime'"
# the size budget of the installed (stripped) library: the runtime modules use only the standard
# library and libc (no Foundation, no ICU data)
# (this install keeps symbol tables for valgrind: measure a stripped copy, as `make install` ships)
strip --strip-unneeded -o "$work/libtslm-stripped.so" "$lib"
lib_bytes=$(stat -c %s "$work/libtslm-stripped.so")
check "size: stripped libtslm.so is $((lib_bytes / 1024)) KiB, within the 12 MiB budget" test "$lib_bytes" -le $((12 * 1024 * 1024))
nm -D --defined-only "$lib" | awk '$2 ~ /^[A-Z]$/ {print $3}' > "$work/exports"
check "nm -D: every exported symbol is tslm_*" bash -c "test -s '$work/exports' && ! grep -v '^tslm_' '$work/exports'"
declared=$(grep -oE '\btslm_[a-z_]+\(' include/tslm.h | tr -d '(' | sort -u)
check "nm -D: every function of tslm.h is exported" bash -c "diff <(echo '$declared') <(sort -u '$work/exports')"

# the header, strictly
for std in c99 c11; do
  check "header compiles as $std $STRICT" $CC -std=$std $STRICT $(pkg-config --cflags tslm) Tests/CAPI/header_check.c \
    -o "$work/hc_$std" $(pkg-config --libs tslm)
done
check "header (+ tslm.hpp) compiles as c++17 $STRICT" $CXX -std=c++17 $STRICT $(pkg-config --cflags tslm) -Iexamples/cpp \
  Tests/CAPI/header_check.cpp -o "$work/hc_cpp" $(pkg-config --libs tslm)
check "header check program runs" "$work/hc_c11"

# every example, built against the installed library with pkg-config
mkdir -p "$work/bin"
for src in examples/c/*.c; do
  n=$(basename "$src" .c)
  check "build examples/c/$n.c" $CC -std=c11 $STRICT -O2 "$src" -o "$work/bin/c_$n" $(pkg-config --cflags --libs tslm)
done
for src in examples/cpp/*.cpp; do
  n=$(basename "$src" .cpp)
  check "build examples/cpp/$n.cpp" $CXX -std=c++17 $STRICT -O2 -Iexamples/cpp "$src" -o "$work/bin/cpp_$n" $(pkg-config --cflags --libs tslm)
done
check "build Tests/CAPI/capi_test.c" $CC -std=c11 $STRICT -O1 -g Tests/CAPI/capi_test.c -o "$work/bin/capi_test" \
  $(pkg-config --cflags --libs tslm) -lpthread -lm

# the real model: q8_0 for most checks, f16 for the Paris answer (q8_0 rounding flips SmolLM2's
# narrow first-token margin under the default system prompt; see README)
model=$work/smollm2-q8_0.tslm
model16=$work/smollm2-f16.tslm
"$prefix/bin/tslm" convert "$GGUF" -o "$model" --type q8_0 -q || { echo "FAIL convert SmolLM2"; exit 1; }
"$prefix/bin/tslm" convert "$GGUF" -o "$model16" --type f16 -q || { echo "FAIL convert SmolLM2"; exit 1; }
printf 'accel_x,accel_y\n0.1,0.2\n0.3,0.1\n0.2,0.4\n0.5,0.3\n' > "$work/rec.csv"
printf 'value\n1\n2\n3\n4\n5\n6\n' > "$work/hist.csv"

"$work/bin/c_generate" "$model16" "What is the capital of France?" 24 > "$work/gen_c.txt" 2>/dev/null
check "examples/c/generate: SmolLM2 names Paris" grep -q Paris "$work/gen_c.txt"
"$work/bin/cpp_generate" "$model16" "What is the capital of France?" 24 > "$work/gen_cpp.txt" 2>/dev/null
check "examples/cpp/generate: same text as the C example" cmp -s "$work/gen_c.txt" "$work/gen_cpp.txt"
"$work/bin/c_explain_signal" "$model" "$work/rec.csv" > "$work/ex.txt" 2>&1
check "examples/c/explain_signal: a text model is refused with TSLM_ERR_WRONG_KIND" grep -q TSLM_ERR_WRONG_KIND "$work/ex.txt"
"$work/bin/cpp_explain_signal" "$model" "$work/rec.csv" > "$work/ex.txt" 2>&1
check "examples/cpp/explain_signal: a text model is refused with TSLM_ERR_WRONG_KIND" grep -q TSLM_ERR_WRONG_KIND "$work/ex.txt"
for lang in c cpp; do
  "$work/bin/${lang}_forecast" "$model" "$work/hist.csv" 4 > "$work/fc.txt" 2>&1; rc=$?
  check "examples/$lang/forecast: a text model is refused with TSLM_ERR_WRONG_KIND" bash -c "test $rc = 1 && grep -q TSLM_ERR_WRONG_KIND '$work/fc.txt'"
done

# a CPU without the build's AVX2/FMA/F16C (simulated by the TSLM_CPU_FEATURES_MASK test hook):
# tslm_model_load refuses with TSLM_ERR_UNSUPPORTED naming the features, never SIGILL
TSLM_CPU_FEATURES_MASK=avx2,fma "$work/bin/c_generate" "$model" "Hi" 4 > "$work/cpu.txt" 2>&1; rc=$?
check "a CPU without AVX2/FMA: tslm_model_load answers TSLM_ERR_UNSUPPORTED naming them" bash -c \
  "test $rc != 0 && test $rc -lt 128 && grep -q TSLM_ERR_UNSUPPORTED '$work/cpu.txt' && grep -q 'AVX2, FMA' '$work/cpu.txt'"

# a forecaster: the one-layer LSTM fixture (window 24, horizon 6), converted by the installed CLI
LSTM_FX=Tests/TSLMRuntimeTests/Fixtures/lstm/one_layer_univariate
lstm_model=$work/lstm.tslm
check "convert the LSTM fixture (state dict + forecast.json)" "$prefix/bin/tslm" convert "$LSTM_FX/model.pt" \
  --forecast-config "$LSTM_FX/forecast.json" -o "$lstm_model" -q
python3 -c "
import json; g = json.load(open('$LSTM_FX/golden.json'))
print('load_kw'); print('\n'.join(repr(v) for v in g['history'][0]))" > "$work/lstm_hist.csv"
"$work/bin/c_forecast" "$lstm_model" "$work/lstm_hist.csv" > "$work/fc_c.txt" 2>&1
check "examples/c/forecast: the LSTM forecasts the PyTorch reference's values" python3 - "$work/fc_c.txt" "$LSTM_FX/golden.json" <<'PY'
import json, sys
rows = [l.split(",") for l in open(sys.argv[1]).read().split("\n")[1:] if l]
want = json.load(open(sys.argv[2]))["forecast"][0]
got = [float(r[1]) for r in rows]
sys.exit(0 if len(got) == len(want) and max(abs(a - b) for a, b in zip(got, want)) <= 1e-4 * max(abs(b) for b in want) else 1)
PY
"$work/bin/cpp_forecast" "$lstm_model" "$work/lstm_hist.csv" > "$work/fc_cpp.txt" 2>&1
check "examples/cpp/forecast: same output as the C example" cmp -s "$work/fc_c.txt" "$work/fc_cpp.txt"

# the trained OpenTSLM demo model, when its weights are in the tree (demo/basicmotions)
DEMO=demo/basicmotions
demo_model=""
if [ -f "$DEMO/model_checkpoint.pt" ]; then
  demo_model=$work/basicmotions-q8_0.tslm
  rec=$(ls "$DEMO"/test/*.csv | head -1)
  demo_preset=$(python3 -c "import json; print(json.load(open('$DEMO/prompt.json'))['normalization']['name'])")
  check "convert the BasicMotions demo (checkpoint + SmolLM2 base + prompt)" "$prefix/bin/tslm" convert "$DEMO/model_checkpoint.pt" \
    --base "$GGUF" --preset "$demo_preset" --prompt "$DEMO/prompt.json" -o "$demo_model" --type q8_0 -q
  "$work/bin/c_explain_signal" "$demo_model" "$rec" > "$work/ex_c.txt" 2>&1
  check "examples/c/explain_signal: rationale and one of the four labels" \
    grep -Eq "^answer: (walking|resting|running|badminton)$" "$work/ex_c.txt"
  "$work/bin/cpp_explain_signal" "$demo_model" "$rec" > "$work/ex_cpp.txt" 2>&1
  check "examples/cpp/explain_signal: same output as the C example" cmp -s "$work/ex_c.txt" "$work/ex_cpp.txt"
  "$prefix/bin/tslm" run -m "$demo_model" --series "$rec" -n 160 2>/dev/null | tail -1 > "$work/ex_cli.txt"
  check "tslm run --series gives the C example's answer" bash -c "diff <(sed 's/^Answer: /answer: /' '$work/ex_cli.txt') <(tail -1 '$work/ex_c.txt')"
else
  echo "skip   demo checks: $DEMO/model_checkpoint.pt is not in the tree"
fi

# a ChatTime model: the tiny fixture folder (value tokens in added_tokens.json)
chattime_model=$work/chattime.tslm
check "convert the ChatTime fixture (Hugging Face folder)" "$prefix/bin/tslm" convert \
  Tests/TSLMRuntimeTests/Fixtures/chattime/model --type f32 -o "$chattime_model" -q

# the contract
"$work/bin/capi_test" "$model" "$work" all "$lstm_model" "$chattime_model" > "$work/capi.txt" 2>&1
grep -E "^FAIL|^ +expected|^capi:" "$work/capi.txt"
check "bad-call table and two-thread test ($(tail -1 "$work/capi.txt"))" grep -q "capi: [0-9]* passed, 0 failed" "$work/capi.txt"

# memcheck: no leaks (definite, indirect, possible) and no errors
if command -v valgrind >/dev/null; then
  vg() { valgrind -q --suppressions=tools/valgrind-swift.supp --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 "$@"; }
  vg "$work/bin/c_generate" "$model" "Hi" 4 > /dev/null 2> "$work/vg.txt"
  check "valgrind: examples/c/generate" test $? = 0
  vg "$work/bin/cpp_generate" "$model" "Hi" 4 > /dev/null 2>> "$work/vg.txt"
  check "valgrind: examples/cpp/generate" test $? = 0
  for lang in c cpp; do
    vg "$work/bin/${lang}_explain_signal" "$model" "$work/rec.csv" > /dev/null 2>> "$work/vg.txt"
    check "valgrind: examples/$lang/explain_signal (wrong-kind path)" test $? = 1
    vg "$work/bin/${lang}_forecast" "$model" "$work/hist.csv" 4 > /dev/null 2>> "$work/vg.txt"
    check "valgrind: examples/$lang/forecast (wrong-kind path)" test $? = 1
    vg "$work/bin/${lang}_forecast" "$lstm_model" "$work/lstm_hist.csv" > /dev/null 2>> "$work/vg.txt"
    check "valgrind: examples/$lang/forecast on the LSTM" test $? = 0
  done
  if [ -n "$demo_model" ]; then
    # a short prompt keeps memcheck's ~50x slowdown affordable: 2 channels x 8 samples, a short question
    head -9 "$rec" | cut -d, -f1,2 > "$work/rec_small.csv"
    vg "$work/bin/c_explain_signal" "$demo_model" "$work/rec_small.csv" "Activity?" 2 > /dev/null 2>> "$work/vg.txt"
    check "valgrind: examples/c/explain_signal on the demo model (short prompt, 2 tokens)" test $? = 0
  fi
  vg "$work/bin/capi_test" "$model" "$work" bad > "$work/capi_vg.txt" 2>> "$work/vg.txt"
  check "valgrind: the bad-call table" test $? = 0
  if grep -q "==[0-9]*==" "$work/vg.txt"; then bad "valgrind reported:"; head -40 "$work/vg.txt"; else ok "valgrind: no reports"; fi
else
  bad "valgrind is not installed (make deps installs it)"
fi

echo "capi: $pass passed, $fail failed"
test "$fail" = 0
