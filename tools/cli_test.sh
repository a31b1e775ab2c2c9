#!/usr/bin/env bash
# End-to-end tests of the `tslm` binary on the real SmolLM2-135M-Instruct GGUF:
# convert to f16 / q8_0 / q4_0, check `tslm info --json`, verify, quantize, and bad inputs.
# Usage: tools/cli_test.sh path/to/tslm
set -uo pipefail
cd "$(dirname "$0")/.."
TSLM=${1:-.build/release/tslm}
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

# Python one-liner over `tslm info --json` output.
jq_py() { python3 -c "import json,sys; d=json.load(open('$1')); sys.exit(0 if ($2) else 1)"; }

for t in f16 q8_0 q4_0; do
  out=$work/smollm2-$t.tslm
  if "$TSLM" convert "$GGUF" -o "$out" --type "$t" -q; then ok "convert --type $t"; else bad "convert --type $t"; continue; fi
  "$TSLM" info "$out" --json > "$work/$t.json" || bad "info --json $t"
  check "info $t: llama, 30 layers, hidden 576, 9/3 heads, vocab 49152" jq_py "$work/$t.json" \
    "d['architecture']=='llama' and d['metadata']['llama.block_count']==30 and d['metadata']['llama.embedding_length']==576 and d['metadata']['llama.attention.head_count']==9 and d['metadata']['llama.attention.head_count_kv']==3 and d['tokenizer']['tokens']==49152"
  check "info $t: BPE tokenizer with 48,900 merges" jq_py "$work/$t.json" \
    "d['tokenizer']['model']=='gpt2' and d['tokenizer']['merges']==48900 and d['tokenizer']['pre']=='smollm'"
  check "verify $t" "$TSLM" verify "$out"
done
check "q4_0 keeps token_embd at q8_0 and attn_q at q4_0" jq_py "$work/q4_0.json" \
  "[t['dtype'] for t in d['tensors'] if t['name']=='token_embd.weight']==['q8_0'] and [t['dtype'] for t in d['tensors'] if t['name']=='blk.0.attn_q.weight']==['q4_0']"
check "f16 norms stay f32" jq_py "$work/f16.json" \
  "all(t['dtype']=='f32' for t in d['tensors'] if t['name'].endswith('norm.weight'))"
check "q4_0 file is smaller than f16" test "$(stat -c %s "$work/smollm2-q4_0.tslm")" -lt "$(stat -c %s "$work/smollm2-f16.tslm")"

# quantize goes through the same policy
check "quantize f16 -> q8_0" "$TSLM" quantize "$work/smollm2-f16.tslm" "$work/requant.tslm" --type q8_0 -q
check "text info prints the architecture" bash -c "'$TSLM' info '$work/requant.tslm' --no-tensors | grep -q 'architecture *llama'"

# bad inputs: clear message, exit 1, existing output untouched
echo keep > "$work/existing.tslm"
head -c 1000 "$GGUF" > "$work/truncated.gguf"
check "truncated GGUF is rejected" bash -c "! '$TSLM' convert '$work/truncated.gguf' -o '$work/existing.tslm' -q 2> '$work/err.txt'"
check "truncated GGUF message names the file" grep -q "truncated.gguf" "$work/err.txt"
check "existing output untouched" grep -qx keep "$work/existing.tslm"
check "no temporary files left" bash -c "[ -z \"\$(ls '$work' | grep tmp-)\" ]"
check "missing input is rejected" bash -c "! '$TSLM' convert '$work/nope.gguf' -o '$work/x.tslm' -q 2>/dev/null"
check "unknown --type is rejected" bash -c "! '$TSLM' convert '$GGUF' -o '$work/x.tslm' --type q3_z 2>/dev/null"
cp "$work/smollm2-q8_0.tslm" "$work/flipped.tslm"
printf '\xff' | dd of="$work/flipped.tslm" bs=1 seek=100000 conv=notrunc status=none
check "verify catches a flipped tensor byte" bash -c "! '$TSLM' verify '$work/flipped.tslm' 2>&1 | grep -q OK"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
