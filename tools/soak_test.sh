#!/usr/bin/env bash
# Soak (issue 14): Tests/CAPI/soak_test.c against libtslm — GENERATIONS short generations in one
# process on a small q8_0 Llama with a tokenizer (tools/reliability_model.py): RSS growth after
# the first 10% under 1 MiB, identical outputs for identical seeds.
#
#   tools/soak_test.sh LIB_DIR (holding libtslmc.so) TSLM_BINARY [GENERATIONS=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
LIBDIR=$(realpath "${1:?usage: tools/soak_test.sh LIB_DIR TSLM_BINARY [GENERATIONS]}")
TSLM=$(realpath "${2:?usage: tools/soak_test.sh LIB_DIR TSLM_BINARY [GENERATIONS]}")
N=${3:-10000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tslm-soak.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 tools/reliability_model.py "$WORK/src" --hidden 96 --layers 2
"$TSLM" convert "$WORK/src" -o "$WORK/model.tslm" --type q8_0 -q
# The library's soname is libtslm.so (make install names it so).
ln -s "$LIBDIR/libtslmc.so" "$WORK/libtslm.so"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Iinclude Tests/CAPI/soak_test.c -o "$WORK/soak_test" -L"$WORK" -ltslm -Wl,-rpath,"$WORK"
"$WORK/soak_test" "$WORK/model.tslm" "$N"
