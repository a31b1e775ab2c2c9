#!/usr/bin/env bash
# The C API under load (issue 14), against libtslm on a small q8_0 Llama with a tokenizer
# (tools/reliability_model.py):
#
#   tools/capi_load_test.sh soak LIB_DIR TSLM_BINARY [GENERATIONS=10000]
#       Tests/CAPI/soak_test.c: GENERATIONS short generations in one process; RSS growth after
#       the first 10% under 1 MiB, identical outputs for identical seeds (`make soak`).
#   tools/capi_load_test.sh stress LIB_DIR TSLM_BINARY [THREADS=8] [SECONDS=180]
#       Tests/CAPI/stress_test.c: THREADS threads with their own sessions on one shared model for
#       SECONDS while a churn thread loads and frees models and tries to free the shared one
#       (refused while a session lives); fails on any error, any text that differs for the same
#       prompt and seed, a free that was not refused, or RSS growth over 2 MiB after warm-up
#       (`make stress`).
#
# LIB_DIR holds libtslmc.so (`make lib`: .build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: tools/capi_load_test.sh soak|stress LIB_DIR TSLM_BINARY [GENERATIONS | THREADS SECONDS]"
MODE=${1:?$usage}
case $MODE in
  soak) ARGS=("${4:-10000}") ;;
  stress) ARGS=("${4:-8}" "${5:-180}") ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
LIBDIR=$(realpath "${2:?$usage}")
TSLM=$(realpath "${3:?$usage}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tslm-$MODE.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 tools/reliability_model.py "$WORK/src" --hidden 96 --layers 2
"$TSLM" convert "$WORK/src" -o "$WORK/model.tslm" --type q8_0 -q
# The library's soname is libtslm.so (make install names it so).
ln -s "$LIBDIR/libtslmc.so" "$WORK/libtslm.so"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Iinclude "Tests/CAPI/${MODE}_test.c" -o "$WORK/${MODE}_test" -L"$WORK" -ltslm \
  -lpthread -Wl,-rpath,"$WORK"
"$WORK/${MODE}_test" "$WORK/model.tslm" "${ARGS[@]}"
