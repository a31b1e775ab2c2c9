#!/usr/bin/env bash
# Load test (issue 14): Tests/CAPI/stress_test.c against libtslm — THREADS threads with their own
# sessions on one shared model for SECONDS, while a churn thread loads and frees models and tries
# to free the shared one (refused while a session lives); a small q8_0 Llama with a tokenizer
# (tools/reliability_model.py). Fails on any error, any text that differs for the same prompt and
# seed, a free that was not refused, or RSS growth over 2 MiB after warm-up.
#
#   tools/stress_test.sh LIB_DIR (holding libtslmc.so) TSLM_BINARY [THREADS=8] [SECONDS=180]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: tools/stress_test.sh LIB_DIR TSLM_BINARY [THREADS] [SECONDS]"
LIBDIR=$(realpath "${1:?$usage}")
TSLM=$(realpath "${2:?$usage}")
THREADS=${3:-8}
SECS=${4:-180}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tslm-stress.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 tools/reliability_model.py "$WORK/src" --hidden 96 --layers 2
"$TSLM" convert "$WORK/src" -o "$WORK/model.tslm" --type q8_0 -q
ln -s "$LIBDIR/libtslmc.so" "$WORK/libtslm.so"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Iinclude Tests/CAPI/stress_test.c -o "$WORK/stress_test" -L"$WORK" -ltslm \
  -lpthread -Wl,-rpath,"$WORK"
"$WORK/stress_test" "$WORK/model.tslm" "$THREADS" "$SECS"
