#!/usr/bin/env python3
"""Writes a Hugging Face-style folder with a random-weight Llama model (default: the
Llama-3.2-1B shape, 1.236 B parameters, f32 safetensors, ~4.9 GB) for conversion benchmarks.
Tensors are streamed to disk one at a time. Needs numpy only.

    python3 tools/make_synthetic_llama.py OUT_DIR [--layers 16] [--hidden 2048] ...
"""
import argparse, json, os, struct
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--hidden", type=int, default=2048)
p.add_argument("--layers", type=int, default=16)
p.add_argument("--heads", type=int, default=32)
p.add_argument("--kv-heads", type=int, default=8)
p.add_argument("--ffn", type=int, default=8192)
p.add_argument("--vocab", type=int, default=128256)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
hd = a.hidden // a.heads
shapes = {"model.embed_tokens.weight": (a.vocab, a.hidden), "model.norm.weight": (a.hidden,)}
for i in range(a.layers):
    L = f"model.layers.{i}."
    shapes.update({
        L + "input_layernorm.weight": (a.hidden,),
        L + "post_attention_layernorm.weight": (a.hidden,),
        L + "self_attn.q_proj.weight": (a.heads * hd, a.hidden),
        L + "self_attn.k_proj.weight": (a.kv_heads * hd, a.hidden),
        L + "self_attn.v_proj.weight": (a.kv_heads * hd, a.hidden),
        L + "self_attn.o_proj.weight": (a.hidden, a.heads * hd),
        L + "mlp.gate_proj.weight": (a.ffn, a.hidden),
        L + "mlp.up_proj.weight": (a.ffn, a.hidden),
        L + "mlp.down_proj.weight": (a.hidden, a.ffn),
    })
header, off = {}, 0
for k, s in shapes.items():
    n = int(np.prod(s)) * 4
    header[k] = {"dtype": "F32", "shape": list(s), "data_offsets": [off, off + n]}
    off += n
hb = json.dumps(header).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
rng = np.random.default_rng(0)
with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb)
    for k, s in shapes.items():
        x = rng.standard_normal(s, dtype=np.float32) * np.float32(0.02)
        if len(s) == 1:
            x = np.ones(s, dtype=np.float32)
        f.write(x.tobytes())
config = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": a.hidden,
    "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
    "intermediate_size": a.ffn, "vocab_size": a.vocab, "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
}
json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
print(f"wrote {a.out}: {sum(int(np.prod(s)) for s in shapes.values())} parameters")
