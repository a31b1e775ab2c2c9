#!/usr/bin/env bash
# Perplexity of SmolLM2-135M-Instruct under every storage type and quantizer, on the Jargon File
# text (tools/fetch_perplexity_text.sh), with llama-perplexity's protocol (tslm perplexity) and the
# KL divergence of each to f16. Prints a Markdown table (the README's "Quantization quality").
#
#   tools/perplexity_eval.sh [TSLM] [CHUNKS]     (defaults: .build/release/tslm, 20 windows of 512)
#   tools/perplexity_eval.sh --smoke [TSLM]      (seconds: 2 windows of 64 on q8_0, KL to itself = 0)
#
# Models go to .cache/quant/. The source is the pinned Q4_1 GGUF: f16 is its exact dequantization,
# the other types are quantized from that f16 file; "q4_1 kept" stores the GGUF's own blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
T=${1:-.build/release/tslm}
CHUNKS=${2:-20}
tools/fetch_smollm2.sh
tools/fetch_perplexity_text.sh
TEXT=.cache/eval/jargon-ch1-12.txt
GGUF=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
D=.cache/quant
mkdir -p $D

if [ $smoke = 1 ]; then
  m=$D/smoke-q8_0.tslm
  [ -f $m ] || $T convert $GGUF -o $m --type q8_0 -q
  $T perplexity -m $m -f $TEXT --ctx 64 --chunks 2 --save-logits $D/smoke.logp > $D/smoke1.txt 2>&1
  $T perplexity -m $m -f $TEXT --ctx 64 --chunks 2 --kl-divergence $D/smoke.logp --json > $D/smoke2.json 2>/dev/null
  python3 - $D/smoke1.txt $D/smoke2.json <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
ppl = float(re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text).group(1))
j = json.load(open(sys.argv[2]))
assert "[1]" in text and "[2]" in text, text
assert 1 < ppl < 1000 and abs(j["ppl"] - ppl) < 5e-4 * ppl, (ppl, j)
assert j["tokens_scored"] == 2 * 31 and j["kld_mean"] < 1e-4 and j["same_top_fraction"] == 1.0, j
print(f"perplexity smoke: PPL {ppl} on 2 windows of 64, KL to itself {j['kld_mean']:.2e}: ok")
PY
  rm -f $D/smoke.logp
  exit 0
fi

build() {  # name, command...
  local out=$D/smollm2-$1.tslm; shift
  [ -f "$out" ] || "$@" -o "$out" -q
}
[ -f $D/smollm2-f16.tslm ] || $T convert $GGUF -o $D/smollm2-f16.tslm --type f16 -q
[ -f $D/smollm2-source.tslm ] || $T convert $GGUF -o $D/smollm2-source.tslm --type source -q
q() { local name=$1; shift; [ -f $D/smollm2-$name.tslm ] || $T quantize $D/smollm2-f16.tslm $D/smollm2-$name.tslm -q "$@"; }
q q8_0 --type q8_0
q q4_0 --type q4_0
q q4_0s --type q4_0 --quantizer search
q q4_1 --type q4_1
q q4_1s --type q4_1 --quantizer search
# An importance matrix from the f16 model on the calibration text (the Jargon File's appendices,
# disjoint from the evaluation text), 8 windows of 512.
[ -f $D/smollm2-f16.imatrix ] || $T perplexity -m $D/smollm2-f16.tslm -f .cache/eval/jargon-appendix.txt --chunks 8 \
  --save-imatrix $D/smollm2-f16.imatrix > $D/imatrix.log 2>&1
q q4_0si --type q4_0 --quantizer search --imatrix $D/smollm2-f16.imatrix
q q4_1si --type q4_1 --quantizer search --imatrix $D/smollm2-f16.imatrix
q q4_0sik --type q4_0 --quantizer search --imatrix $D/smollm2-f16.imatrix \
  --keep 'blk.*.attn_v.weight=q8_0' --keep 'blk.*.ffn_down.weight=q8_0'
# K types. SmolLM2's rows of 576 are no whole 256-blocks: only ffn_down (1536) holds K blocks,
# the other matrices take the policy's fallbacks (q4_k → q4_1, q5_k/q6_k → q8_0).
q q4_k --type q4_k
q q4_k_m --type q4_k_m
q q4_k_msi --type q4_k_m --quantizer search --imatrix $D/smollm2-f16.imatrix
q q5_k_m --type q5_k_m
q q6_k --type q6_k

run() {  # name, extra args
  local name=$1; shift
  $T perplexity -m $D/smollm2-$name.tslm -f $TEXT --chunks $CHUNKS --json "$@" > $D/ppl-$name.json 2> $D/ppl-$name.log
}
[ -f $D/f16.logp ] && [ -f $D/ppl-f16.json ] || run f16 --save-logits $D/f16.logp
for m in q8_0 q4_0 q4_0s q4_0si q4_0sik q4_1 q4_1s q4_1si q4_k q4_k_m q4_k_msi q5_k_m q6_k source; do run $m --kl-divergence $D/f16.logp; done
# q8_0 with the 8-bit activations of earlier versions.
TSLM_Q8_ACTIVATIONS=8 $T perplexity -m $D/smollm2-q8_0.tslm -f $TEXT --chunks $CHUNKS --json \
  --kl-divergence $D/f16.logp > $D/ppl-q8_0-act8.json 2> $D/ppl-q8_0-act8.log
python3 - $D <<'PY'
import json, sys
d = sys.argv[1]
rows = [("f16 (the GGUF's Q4_1 weights, dequantized)", "f16"),
        ("q8_0, 8-bit activations (TSLM_Q8_ACTIVATIONS=8)", "q8_0-act8"), ("q8_0", "q8_0"),
        ("q4_0, round-to-nearest", "q4_0"), ("q4_0, --quantizer search", "q4_0s"),
        ("q4_0, --quantizer search --imatrix", "q4_0si"),
        ("q4_0, search + imatrix, attn_v and ffn_down kept at q8_0", "q4_0sik"),
        ("q4_1, round-to-nearest", "q4_1"), ("q4_1, --quantizer search", "q4_1s"),
        ("q4_1, --quantizer search --imatrix", "q4_1si"),
        ("q4_k (ffn_down q4_k, the rest q4_1)", "q4_k"), ("q4_k_m", "q4_k_m"),
        ("q4_k_m, --quantizer search --imatrix", "q4_k_msi"), ("q5_k_m", "q5_k_m"),
        ("q6_k (ffn_down q6_k, the rest q8_0)", "q6_k"),
        ("q4_1, the GGUF's blocks kept", "source")]
f16 = json.load(open(f"{d}/ppl-f16.json"))["ppl"]
print("| model | PPL | vs f16 | KL to f16 | same top token |")
print("|---|---|---|---|---|")
for label, name in rows:
    j = json.load(open(f"{d}/ppl-{name}.json"))
    kl = f"{j['kld_mean']:.4f}" if "kld_mean" in j else "—"
    top = f"{100 * j['same_top_fraction']:.1f}%" if "same_top_fraction" in j else "—"
    print(f"| {label} | {j['ppl']:.3f} ± {j['ppl_error']:.3f} | {100 * (j['ppl'] / f16 - 1):+.2f}% | {kl} | {top} |")
PY
