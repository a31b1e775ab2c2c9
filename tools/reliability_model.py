#!/usr/bin/env python3
"""A small runnable Llama folder for the reliability tests (tools/bitflip_test.sh,
tools/kill_convert_test.sh): config.json, model.safetensors (f32, seeded values) and the
SentencePiece tokenizer of the Time-LLM test fixture (vocabulary 320).

Its shapes are chosen so that a q8_0 conversion has padding between tensors (rows of 96
elements: 102-byte q8_0 rows; 40- and 48-row matrices), which the test fixtures have not.

    tools/reliability_model.py OUT_DIR [--hidden 96] [--layers 1] [--seed 14]

Standard library only (no numpy)."""
import argparse, array, json, os, random, shutil, struct

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--hidden", type=int, default=96)
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--intermediate", type=int, default=40)
ap.add_argument("--seed", type=int, default=14)
a = ap.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
base = os.path.join(here, "..", "Tests", "TSLMRuntimeTests", "Fixtures", "timellm_model", "llama", "base")
os.makedirs(a.out, exist_ok=True)
for f in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(os.path.join(base, f), os.path.join(a.out, f))
config = json.load(open(os.path.join(base, "config.json")))
h, heads, kv = a.hidden, 4, 2
head_dim = h // heads
config.update(hidden_size=h, num_attention_heads=heads, num_key_value_heads=kv, head_dim=head_dim,
              intermediate_size=a.intermediate, num_hidden_layers=a.layers, tie_word_embeddings=True)
json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=2)

vocab = config["vocab_size"]
shapes = [("model.embed_tokens.weight", [vocab, h])]
for i in range(a.layers):
    p = f"model.layers.{i}."
    shapes += [(p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]),
               (p + "self_attn.k_proj.weight", [kv * head_dim, h]), (p + "self_attn.v_proj.weight", [kv * head_dim, h]),
               (p + "self_attn.o_proj.weight", [h, h]), (p + "post_attention_layernorm.weight", [h]),
               (p + "mlp.gate_proj.weight", [a.intermediate, h]), (p + "mlp.up_proj.weight", [a.intermediate, h]),
               (p + "mlp.down_proj.weight", [h, a.intermediate])]
shapes.append(("model.norm.weight", [h]))

rng = random.Random(a.seed)
header, blobs, offset = {}, [], 0
for name, shape in shapes:
    n = 1
    for d in shape: n *= d
    if name.endswith("norm.weight"):
        values = array.array("f", [1.0 + 0.01 * rng.uniform(-1, 1) for _ in range(n)])
    else:
        values = array.array("f", [rng.uniform(-0.08, 0.08) for _ in range(n)])
    raw = values.tobytes()  # little-endian on the machines we run on
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
head = json.dumps(header, separators=(",", ":")).encode()
head += b" " * (-len(head) % 8)
with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    for b in blobs: f.write(b)
