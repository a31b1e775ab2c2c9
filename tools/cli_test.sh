#!/usr/bin/env bash
# End-to-end tests of the `tslm` binary on the real SmolLM2-135M-Instruct GGUF:
# convert to f16 / q8_0 / q4_0, check `tslm info --json`, verify, quantize, and bad inputs.
# Usage: tools/cli_test.sh path/to/tslm
set -uo pipefail
cd "$(dirname "$0")/.."
TSLM=${1:-.build/release/tslm}
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
source tools/testlib.sh

# the size budget of the installed CLI: TSLMConvert, TSLMSeriesInput and TSLMCLI use only the
# standard library and libc (no Foundation, whose ICU data made the static CLI 58 MiB); measure a
# stripped copy, as `make install` ships it
strip --strip-unneeded -o "$work/tslm-stripped" "$TSLM"
cli_bytes=$(stat -c %s "$work/tslm-stripped")
check "size: stripped tslm CLI is $((cli_bytes / 1024)) KiB, within the 20 MiB budget" test "$cli_bytes" -le $((20 * 1024 * 1024))
check "ldd: the CLI has no Foundation/ICU dependency" bash -c "! ldd '$TSLM' | grep -Eq 'Foundation|icu|ICU'"
# (FoundationEssentials, which swift-argument-parser imports, has no ICU and is allowed)
check "nm: the CLI links no Foundation/ICU code" bash -c "! nm '$TSLM' 2>/dev/null | grep -Eq '\\\$s10Foundation|FoundationInternationalization|ucol_open'"

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
check "text info prints the family and the architecture" bash -c "'$TSLM' info '$work/requant.tslm' --no-tensors > '$work/info.txt' && grep -q 'family *text' '$work/info.txt' && grep -q 'architecture *llama' '$work/info.txt'"

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

# ---- runtime on the real model (issue 3) ----
REF=Tests/TSLMRuntimeTests/Fixtures/backbones/smollm2_reference.json
ids=$(python3 -c "import json; print(','.join(map(str, json.load(open('$REF'))['prompt_ids'])))")
"$TSLM" convert "$GGUF" -o "$work/smollm2-f32.tslm" --type f32 -q || bad "convert --type f32"
for t in f32 q8_0 q4_0; do
  check "run --logits-out $t" "$TSLM" run -m "$work/smollm2-$t.tslm" --token-ids "$ids" -n 0 --logits-out "$work/$t.logits"
done
# f32 (dequantized GGUF) vs transformers' run of the same GGUF: last-position logits.
check "f32 logits match transformers (max |Δ| ≤ 1e-4 × max |logit|)" python3 - "$work/f32.logits" <<'PY'
import array, sys
V = 49152
got = array.array("f"); got.frombytes(open(sys.argv[1], "rb").read())
ref = array.array("f"); ref.frombytes(open("Tests/TSLMRuntimeTests/Fixtures/backbones/smollm2_reference.logits_last.f32", "rb").read())
last = got[len(got) - V:]
err = max(abs(a - b) for a, b in zip(last, ref)); scale = max(abs(x) for x in ref)
print(f"     f32 vs transformers: max abs err {err:.3g} ({err/scale:.3g} of max |logit| {scale:.3g})")
sys.exit(0 if err <= 1e-4 * scale else 1)
PY
# K types: q4_k_m from f16 (SmolLM2's rows of 576 are no whole 256-blocks, so only ffn_down,
# 1536 columns, holds K blocks: q6_k in llama.cpp's "more bits" layers, q4_k elsewhere).
check "quantize f16 -> q4_k_m" "$TSLM" quantize "$work/smollm2-f16.tslm" "$work/smollm2-q4_k_m.tslm" --type q4_k_m -q
"$TSLM" info "$work/smollm2-q4_k_m.tslm" --json > "$work/q4_k_m.json" || bad "info --json q4_k_m"
check "q4_k_m: ffn_down q6_k in layers 0-2, 5, 8, ..., 26-29 and q4_k elsewhere; attn_q q4_1; token_embd q8_0" jq_py "$work/q4_k_m.json" \
  "{int(t['name'].split('.')[1]) for t in d['tensors'] if t['name'].endswith('ffn_down.weight') and t['dtype']=='q6_k'}=={0,1,2,5,8,11,14,17,20,23,26,27,28,29} and all(t['dtype'] in ('q4_k','q6_k') for t in d['tensors'] if t['name'].endswith('ffn_down.weight')) and [t['dtype'] for t in d['tensors'] if t['name']=='blk.0.attn_q.weight']==['q4_1'] and [t['dtype'] for t in d['tensors'] if t['name']=='token_embd.weight']==['q8_0']"
check "verify q4_k_m" "$TSLM" verify "$work/smollm2-q4_k_m.tslm"
check "run --logits-out q4_k_m" "$TSLM" run -m "$work/smollm2-q4_k_m.tslm" --token-ids "$ids" -n 0 --logits-out "$work/q4_k_m.logits"
# Quantized conversions vs our f32 run: top-1 agreement over the 16 prompt positions.
for spec in q8_0:16 q4_0:11 q4_k_m:13; do
  t=${spec%%:*}; need=${spec##*:}
  check "$t top-1 agreement with f32 ≥ $need/16" python3 - "$work/f32.logits" "$work/$t.logits" "$need" "$t" <<'PY'
import array, sys
V = 49152
def load(p):
    a = array.array("f"); a.frombytes(open(p, "rb").read()); return a
f, g, need, t = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
n = len(f) // V
am = lambda x, p: max(range(V), key=lambda i: x[p * V + i])
agree = sum(am(f, p) == am(g, p) for p in range(n))
print(f"     {t}: top-1 agreement with f32 on {agree}/{n} prompt positions")
sys.exit(0 if agree >= need else 1)
PY
done
# The chat prompt (with SmolLM2's default system message) is a close call between "The" and "L"
# (f32 margin 0.08 logits), so only the dequantized f32/f16 conversions are held to "Paris";
# q8_0/q4_0 are held to the top-1 agreement above.
for t in f32 f16; do
  check "greedy chat names Paris ($t)" bash -c "'$TSLM' run -m '$work/smollm2-$t.tslm' -p 'What is the capital of France?' --chat -n 32 2>/dev/null | grep -q Paris"
done
check "greedy text equals the text of transformers greedy ids (f32, up to <|im_end|>)" bash -c \
  "'$TSLM' run -m '$work/smollm2-f32.tslm' --token-ids '$ids' -n 16 2>/dev/null | head -c 200 | grep -q '^The capital of France is Paris.'"
check "empty prompt is an error" bash -c "'$TSLM' run -m '$work/smollm2-q8_0.tslm' -p '' 2>&1 | grep -q 'the prompt is empty'"
check "prompt longer than the context is an error" bash -c "'$TSLM' run -m '$work/smollm2-q8_0.tslm' -p 'one two three four five six seven eight nine ten' --ctx 4 2>&1 | grep -q 'more than the context length 4'"
check "token id out of range is an error" bash -c "'$TSLM' run -m '$work/smollm2-q8_0.tslm' --token-ids 1,99999 2>&1 | grep -q 'token id 99999 is out of range'"
check "raw (unknown) architecture cannot run" bash -c "'$TSLM' convert Tests/TSLMConvertTests/Fixtures/pt/state_dict.pt -o '$work/raw.tslm' -q && '$TSLM' run -m '$work/raw.tslm' -p hi 2>&1 | grep -q \"unknown architecture 'raw'\""

# ---- OpenTSLM: conversion on top of a base, series input, eval ----
FX=Tests/TSLMRuntimeTests/Fixtures/opentslm
check "OpenTSLM checkpoint without --base is rejected, naming --base" bash -c \
  "! '$TSLM' convert $FX/sp_llama_1series/model_checkpoint.pt -o '$work/sp.tslm' -q 2> '$work/err.txt' && grep -q -- '--base' '$work/err.txt'"
check "convert SoftPrompt checkpoint + HF base" "$TSLM" convert $FX/sp_llama_lora/model_checkpoint.pt --base $FX/sp_llama_lora/base -o "$work/sp.tslm" -q
"$TSLM" info "$work/sp.tslm" --json > "$work/sp.json" || bad "info --json sp"
check "SoftPrompt file: llama backbone, family opentslm-sp, LoRA merged, encoder tensors" jq_py "$work/sp.json" \
  "d['architecture']=='llama' and d['family']=='opentslm-sp' and d['metadata']['general.family']=='opentslm-sp' and d['metadata']['opentslm.lora.merged']==True and not any(k.startswith('timeseries.') for k in d['metadata']) and any(t['name']=='ts.enc.blk.1.attn_qkv.weight' for t in d['tensors'])"
check "Flamingo without a tokenizer needs the token ids" bash -c \
  "'$TSLM' convert $FX/flamingo_llama_1series/model_checkpoint.pt --base $FX/flamingo_llama_1series/base -o '$work/fl.tslm' -q 2>&1 | grep -q -- '--media-token-id'"
check "convert Flamingo checkpoint + HF base" "$TSLM" convert $FX/flamingo_llama_1series/model_checkpoint.pt \
  --base $FX/flamingo_llama_1series/base --media-token-id 257 --end-of-chunk-token-id 256 -o "$work/fl.tslm" -q --type q8_0
check "verify Flamingo q8_0" bash -c "'$TSLM' verify '$work/fl.tslm' > /dev/null"
check "--base on something that is not a checkpoint is rejected" bash -c \
  "! '$TSLM' convert '$GGUF' --base $FX/sp_llama_1series/base -o '$work/x.tslm' -q 2>/dev/null"
printf 'a,b\n1,2\n3,nan\n' > "$work/nan.csv"
check "a NaN in a CSV is named by line and column" bash -c \
  "'$TSLM' run -m '$work/smollm2-q8_0.tslm' --series '$work/nan.csv' -p x 2>&1 | grep -q 'line 3, column 2.*not finite'"
printf '[1, 2, 3, 4]\n' > "$work/ok.json"
check "a text model refuses a valid --series (wrong kind)" bash -c \
  "'$TSLM' run -m '$work/smollm2-q8_0.tslm' --series '$work/ok.json' -p x 2>&1 | grep -q 'needs a model of another kind'"
check "flags of the text path are refused with --series, not ignored" bash -c \
  "'$TSLM' run -m '$work/smollm2-q8_0.tslm' --series '$work/ok.json' --logits-out '$work/l.f32' 2>&1 | grep -q -- '--logits-out applies to text prompts'"
printf 'a,b\n1,2\n3\n' > "$work/ragged.csv"
check "ragged CSV is rejected with its line" bash -c \
  "'$TSLM' run -m '$work/smollm2-q8_0.tslm' --series '$work/ragged.csv' -p x 2>&1 | grep -q 'line 3'"
# tslm tokenize: ids and pieces, JSON, ids only, a file with a NUL byte
"$TSLM" tokenize -m "$work/smollm2-q8_0.tslm" -p "The capital of France is" --json > "$work/tok.json" 2>/dev/null
check "tokenize --json: ids and pieces of a prompt, equal to --ids-only" python3 - "$work/tok.json" \
  "$("$TSLM" tokenize -m "$work/smollm2-q8_0.tslm" -p "The capital of France is" --ids-only 2>/dev/null)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ids = [int(x) for x in sys.argv[2].split(",")]
sys.exit(0 if d["ids"] == ids and len(d["pieces"]) == len(ids) and "".join(d["pieces"]).replace("\u0120", " ") == "The capital of France is" else 1)
PY
printf 'a\0b' > "$work/nul.txt"
check "tokenize -f: a NUL byte is a token of its own" bash -c \
  "'$TSLM' tokenize -m '$work/smollm2-q8_0.tslm' -f '$work/nul.txt' --ids-only 2>/dev/null | tr ',' '\n' | wc -l | grep -qx 3"
check "tokenize: -p and -f together are refused" bash -c \
  "! '$TSLM' tokenize -m '$work/smollm2-q8_0.tslm' -p x -f '$work/nul.txt' 2>/dev/null"

# forecasting: the LSTM fixtures converted with their forecast.json, run by `tslm forecast`
LFX=Tests/TSLMRuntimeTests/Fixtures/lstm
check "convert an LSTM forecaster (state dict + forecast.json)" "$TSLM" convert $LFX/two_layer_multivariate/model.pt \
  --forecast-config $LFX/two_layer_multivariate/forecast.json -o "$work/lstm2.tslm" -q
check "an LSTM state dict without its forecast.json names --forecast-config" bash -c \
  "'$TSLM' convert $LFX/two_layer_multivariate/model.pt -o '$work/x.tslm' -q 2>&1 | grep -q -- '--forecast-config'"
check "info shows the lstm family" bash -c "'$TSLM' info '$work/lstm2.tslm' --no-tensors | grep -q 'family *lstm'"
python3 - "$LFX/two_layer_multivariate" "$work/lstm2_hist.csv" <<'PY'
import json, sys
g = json.load(open(sys.argv[1] + "/golden.json")); c = json.load(open(sys.argv[1] + "/forecast.json"))
# columns in another order than the model's: the CLI picks them by name
order = list(reversed(range(len(c["channels"]))))
with open(sys.argv[2], "w") as f:
    f.write(",".join(c["channels"][i] for i in order) + "\n")
    for t in range(len(g["history"][0])):
        f.write(",".join(repr(g["history"][i][t]) for i in order) + "\n")
PY
"$TSLM" forecast -m "$work/lstm2.tslm" --series "$work/lstm2_hist.csv" --json --plot "$work/lstm2.svg" > "$work/fc.json" 2>/dev/null
check "forecast --json: the PyTorch reference's forecast (columns picked by name)" python3 - "$work/fc.json" "$LFX/two_layer_multivariate/golden.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["point"]; want = json.load(open(sys.argv[2]))["forecast"]
scale = max(abs(v) for row in want for v in row)
sys.exit(0 if len(got) == len(want) and all(abs(a - b) <= 1e-4 * scale for r, w in zip(got, want) for a, b in zip(r, w)) else 1)
PY
check "forecast --plot writes a valid SVG with one panel per output channel" python3 - "$work/lstm2.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
sys.exit(0 if root.tag == ns + "svg" and len(root.findall(".//" + ns + "polyline")) >= 3 else 1)
PY
check "forecast prints a table with one row per step" bash -c \
  "'$TSLM' forecast -m '$work/lstm2.tslm' --series '$work/lstm2_hist.csv' --horizon 3 2>/dev/null | wc -l | grep -qx 4"
"$TSLM" forecast -m "$work/lstm2.tslm" --series "$work/lstm2_hist.csv" --eval --windows 1 --season 2 --json > "$work/ev.json" 2>/dev/null
check "forecast --eval --json: MAE, RMSE, sMAPE, MASE for the model and seasonal-naive over the last window" python3 -c "
import json; d = json.load(open('$work/ev.json'))
assert len(d['windows']) == 1 and set(d['scores']) == {'model', 'seasonal_naive'}
assert all(set(s) == {'mae', 'rmse', 'smape', 'mase'} for s in d['scores'].values())"
head -5 "$work/lstm2_hist.csv" > "$work/short.csv"
check "forecast: a history shorter than the window is an error naming it" bash -c \
  "'$TSLM' forecast -m '$work/lstm2.tslm' --series '$work/short.csv' 2>&1 | grep -q 'history.*the model reads the last'"
check "forecast: a horizon beyond the model's is an error" bash -c \
  "'$TSLM' forecast -m '$work/lstm2.tslm' --series '$work/lstm2_hist.csv' --horizon 99 2>&1 | grep -q 'horizon'"
check "forecast: a text model is refused (wrong kind)" bash -c \
  "'$TSLM' forecast -m '$work/smollm2-q8_0.tslm' --series '$work/lstm2_hist.csv' 2>&1 | grep -q 'needs a model of another kind'"
check "run: an LSTM forecaster has no text session" bash -c \
  "'$TSLM' run -m '$work/lstm2.tslm' -p hi 2>&1 | grep -q 'needs a model of another kind'"

# Time-LLM: the upstream state dict on its base LLM (truncated), forecast by `tslm forecast`
TFX=Tests/TSLMRuntimeTests/Fixtures/timellm_model/gpt2
check "a Time-LLM checkpoint without --base is an error naming --base" bash -c \
  "'$TSLM' convert $TFX/checkpoint.pt --forecast-config $TFX/timellm.json -o '$work/x.tslm' -q 2>&1 | grep -q -- '--base'"
check "convert a Time-LLM checkpoint (GPT-2 base, 2 of 3 blocks kept)" "$TSLM" convert $TFX/checkpoint.pt \
  --forecast-config $TFX/timellm.json --base $TFX/base -o "$work/timellm.tslm" -q
check "info: family timellm, 2 blocks" bash -c \
  "'$TSLM' info '$work/timellm.tslm' --no-tensors > '$work/tl.txt' && grep -q 'family *timellm' '$work/tl.txt' && grep -q 'gpt2.block_count *2' '$work/tl.txt'"
python3 -c "
import json; g = json.load(open('$TFX/golden.json'))
print('a,b'); print('\n'.join(f'{x!r},{y!r}' for x, y in zip(*g['history'])))" > "$work/tl_hist.csv"
"$TSLM" forecast -m "$work/timellm.tslm" --series "$work/tl_hist.csv" --json > "$work/tl.json" 2>/dev/null
check "Time-LLM forecast --json: both channels, 8 finite steps (parity with PyTorch: TimeLLMForecasterTests)" python3 - "$work/tl.json" <<'PY'
import json, math, sys
got = json.load(open(sys.argv[1]))["point"]
sys.exit(0 if len(got) == 2 and all(len(r) == 8 and all(math.isfinite(v) for v in r) for r in got) else 1)
PY
# ChatTime: the tiny ChatTime-shaped Hugging Face folder (value tokens in added_tokens.json),
# forecast and analysis through the CLI against chat-time 0.3.0's own predict (forecast.json)
CFX=Tests/TSLMRuntimeTests/Fixtures/chattime
check "convert a ChatTime Hugging Face folder (bf16 shards, tokenizer.model, added_tokens.json)" \
  "$TSLM" convert $CFX/model --type f32 -o "$work/chattime.tslm" -q
check "info: family chattime with the official sampling settings" bash -c \
  "'$TSLM' info '$work/chattime.tslm' --no-tensors > '$work/ct.txt' && grep -q 'family *chattime' '$work/ct.txt' && grep -q 'chattime.samples *8' '$work/ct.txt' && grep -q 'chattime.top_k *100' '$work/ct.txt'"
python3 -c "
import json; c = json.load(open('$CFX/forecast.json'))['cases'][1]
print('value'); print('\n'.join(repr(v) for v in c['history']))" > "$work/ct_hist.csv"
"$TSLM" forecast -m "$work/chattime.tslm" --series "$work/ct_hist.csv" --horizon 20 --greedy --json > "$work/ct_greedy.json" 2>/dev/null
check "ChatTime forecast --greedy: chat-time's predict (two chunks of 16 + 4 steps), to float32" python3 - "$work/ct_greedy.json" "$CFX/forecast.json" <<'PY'
import json, sys
import numpy as np
got = json.load(open(sys.argv[1]))["point"][0]
want = json.load(open(sys.argv[2]))["cases"][1]["forecast"]
sys.exit(0 if len(got) == 20 and all(float(np.float32(w)) == g for g, w in zip(got, want)) else 1)
PY
"$TSLM" forecast -m "$work/chattime.tslm" --series "$work/ct_hist.csv" --horizon 6 --samples 4 --seed 3 --json --plot "$work/ct.svg" > "$work/ct_s1.json" 2>/dev/null
"$TSLM" forecast -m "$work/chattime.tslm" --series "$work/ct_hist.csv" --horizon 6 --samples 4 --seed 3 --json > "$work/ct_s2.json" 2>/dev/null
check "ChatTime sampled forecast: the same seed gives the same forecast, with the 10-90% quantiles" python3 - "$work/ct_s1.json" "$work/ct_s2.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ok = a["point"] == b["point"] and a["quantiles"] == b["quantiles"] and a["quantile_levels"] == [0.1, 0.9]
ok = ok and len(a["quantiles"][0]) == 2 and all(len(q) == 6 for q in a["quantiles"][0])
sys.exit(0 if ok else 1)
PY
check "ChatTime forecast --plot draws the quantile band" grep -q 'class="band"' "$work/ct.svg"
check "ChatTime: --samples on a point forecaster is refused" bash -c \
  "'$TSLM' forecast -m '$work/lstm2.tslm' --series '$work/lstm2_hist.csv' --samples 4 2>&1 | grep -q 'sampling forecasters'"
check "ChatTime: a horizon beyond the context is an error naming it" bash -c \
  "'$TSLM' forecast -m '$work/chattime.tslm' --series '$work/ct_hist.csv' --horizon 100000 --greedy 2>&1 | grep -q 'horizon'"
"$TSLM" run -m "$work/chattime.tslm" --series "$work/ct_hist.csv" -p "Is the trend (a) upward (b) downward (c) flat?" --samples 3 > "$work/ct_an.txt" 2> "$work/ct_an.err"; rc=$?
check "ChatTime analysis: an Answer line with the votes, or the typed no-answer error (the tiny random model)" bash -c \
  "{ [ $rc = 0 ] && grep -qE '^Answer: \((a|b|c)\)$' '$work/ct_an.txt' && grep -q 'votes of 3 answer' '$work/ct_an.err'; } || { [ $rc != 0 ] && grep -q 'none of the 3 sampled answers' '$work/ct_an.err'; }"
check "ChatTime analysis needs the question" bash -c \
  "'$TSLM' run -m '$work/chattime.tslm' --series '$work/ct_hist.csv' 2>&1 | grep -q 'needs the question'"
check "convert a Q8_0 GGUF build of ChatTime" bash -c \
  "'$TSLM' convert $CFX/model.q8_0.gguf -o '$work/chattime-gguf.tslm' -q && '$TSLM' info '$work/chattime-gguf.tslm' --no-tensors | grep -q 'family *chattime'"

# the forecasting demo (demo/forecast): tslm gives the PyTorch LSTM's forecasts on both test years
FC=demo/forecast
if [ -f "$FC/model.pt" ]; then
  check "convert the Airline LSTM demo" "$TSLM" convert "$FC/model.pt" --forecast-config "$FC/forecast.json" -o "$work/airline.tslm" -q
  check "Airline LSTM: tslm's forecasts of 1959 and 1960 equal the PyTorch model's (test_windows.json)" \
    python3 tools/check_demo_forecasts.py "$TSLM" "$work/airline.tslm" "$FC/airline.csv" "$FC/test_windows.json" forecasts.lstm
  if [ -f "$FC/timellm/checkpoint.pt" ]; then
    check "convert the Airline Time-LLM demo on the SmolLM2 GGUF (4 blocks kept, f32)" "$TSLM" convert "$FC/timellm/checkpoint.pt" \
      --forecast-config "$FC/timellm/timellm.json" --base "$GGUF" --type f32 -o "$work/airline-timellm.tslm" -q
    check "Airline Time-LLM: tslm's forecasts of 1959 and 1960 equal the PyTorch model's" \
      python3 tools/check_demo_forecasts.py "$TSLM" "$work/airline-timellm.tslm" "$FC/airline.csv" "$FC/timellm/test_windows.json" forecast 1e-4
  fi
  "$TSLM" forecast -m "$work/airline.tslm" --series "$FC/airline.csv" --eval --windows 2 --season 12 --json > "$work/air_eval.json" 2>/dev/null
  check "Airline LSTM: --eval over 1959-1960 gives the demo's MAE, RMSE and sMAPE" python3 - "$work/air_eval.json" "$FC/results.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["scores"]["model"]
want = json.load(open(sys.argv[2]))["metrics"]["lstm"]["all"]
sys.exit(0 if all(abs(got[k] - want[k]) <= 1e-3 * want[k] for k in ("mae", "rmse", "smape")) else 1)
PY
fi

# same_texts EVAL_V_OUTPUT REFERENCE_JSON: every recording `tslm eval -v` printed generated the
# text of reference_outputs.json (the PyTorch run), and at least one was printed.
same_texts() {
  python3 - "$1" "$2" <<'PY'
import json, re, sys
ref = {r["index"]: r["generated_text"] for r in json.load(open(sys.argv[2]))["recordings"]}
texts, cur = {}, None
for line in open(sys.argv[1]).read().split("\n"):
    m = re.match(r"^(\d+)\t", line)
    if m: cur = int(m.group(1)); texts[cur] = []
    elif cur is not None and line.startswith("  "): texts[cur].append(line[2:])
same = sum("\n".join(t) == ref[i] for i, t in texts.items())
print(f"     {same}/{len(texts)} texts equal to the reference")
sys.exit(0 if texts and same == len(texts) else 1)
PY
}

DEMO=demo/basicmotions
if [ -f "$DEMO/model_checkpoint.pt" ] && [ -f "$DEMO/prompt.json" ]; then
  # the preset the demo was trained with (prompt.json "normalization": {"name": ...})
  demo_preset=$(python3 -c "import json; print(json.load(open('$DEMO/prompt.json'))['normalization']['name'])")
  check "convert the BasicMotions demo on the SmolLM2 GGUF" "$TSLM" convert "$DEMO/model_checkpoint.pt" --base "$GGUF" --preset "$demo_preset" -o "$work/demo.tslm" -q
  rec=$(ls "$DEMO"/test/*.csv | head -1)
  pre=$(python3 -c "import json; print(json.load(open('$DEMO/prompt.json'))['pre_prompt'])")
  tmpl=$(python3 -c "import json; print(json.load(open('$DEMO/prompt.json'))['series_description_template'])")
  "$TSLM" run -m "$work/demo.tslm" --series "$rec" --pre "$pre" --series-text "$tmpl" -p "Rationale:" -n 80 > "$work/demo_run.txt" 2>/dev/null
  check "run --series prints the summary, the rationale and an Answer line" bash -c \
    "grep -q '6 channels × 100 samples' '$work/demo_run.txt' && grep -q 'accelerometer_x: mean' '$work/demo_run.txt' && tail -1 '$work/demo_run.txt' | grep -q '^Answer: '"
  check "eval on 4 recordings prints predictions, accuracy and macro-F1" bash -c \
    "'$TSLM' eval -m '$work/demo.tslm' --dir '$DEMO/test' --prompt '$DEMO/prompt.json' --limit 4 -n 80 2>/dev/null | tail -1 | grep -q '^accuracy .* macro-F1 '"
  if [ -f "$DEMO/reference_outputs.json" ]; then
    # f32 weights are exactly what the PyTorch reference ran (the GGUF dequantized), so greedy
    # decoding must give the reference's texts.
    "$TSLM" convert "$DEMO/model_checkpoint.pt" --base "$GGUF" --preset "$demo_preset" --type f32 -o "$work/demo-f32.tslm" -q || bad "convert demo f32"
    "$TSLM" eval -m "$work/demo-f32.tslm" --dir "$DEMO/test" --prompt "$DEMO/prompt.json" --limit 6 -n 80 -v > "$work/demo_eval.txt" 2>/dev/null
    check "eval (f32) generates the PyTorch reference's texts for the first 6 recordings" \
      same_texts "$work/demo_eval.txt" "$DEMO/reference_outputs.json"
  fi
  if [ -f "$DEMO/flamingo/model_checkpoint.pt" ] && [ -f "$DEMO/flamingo/reference_outputs.json" ]; then
    # The Flamingo demo's checkpoint leaves out the frozen language model: the base's embedding
    # table gets zero rows for <|endofchunk|> and <image>, as the PyTorch reference had.
    check "convert the Flamingo BasicMotions demo (no embedding table in the checkpoint) at f32" \
      "$TSLM" convert "$DEMO/flamingo/model_checkpoint.pt" --base "$GGUF" --preset "$demo_preset" --type f32 -o "$work/demo-fl-f32.tslm" -q
    "$TSLM" eval -m "$work/demo-fl-f32.tslm" --dir "$DEMO/test" --prompt "$DEMO/prompt.json" --limit 6 -n 80 -v > "$work/demo_fl_eval.txt" 2>/dev/null
    check "Flamingo eval (f32) generates the PyTorch reference's texts for the first 6 recordings" \
      same_texts "$work/demo_fl_eval.txt" "$DEMO/flamingo/reference_outputs.json"
  fi
else
  echo "skip BasicMotions demo checks ($DEMO/model_checkpoint.pt or prompt.json missing)"
fi

IPD=demo/italypower
if [ -f "$IPD/model_checkpoint.pt" ] && [ -f "$IPD/reference_outputs.json" ]; then
  check "convert the ItalyPowerDemand demo (second dataset) at f32" \
    "$TSLM" convert "$IPD/model_checkpoint.pt" --base "$GGUF" --preset custom --prompt "$IPD/prompt.json" --type f32 -o "$work/italypower-f32.tslm" -q
  "$TSLM" eval -m "$work/italypower-f32.tslm" --dir "$IPD/test" --prompt "$IPD/prompt.json" --limit 8 -n 8 -v > "$work/ipd_eval.txt" 2>/dev/null
  check "ItalyPowerDemand eval (f32) generates the PyTorch reference's texts for the first 8 days" \
    same_texts "$work/ipd_eval.txt" "$IPD/reference_outputs.json"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
