#!/usr/bin/env python3
"""Writes a random-weight Llama model as an f16 GGUF file (default: the Llama-3.2-1B shape,
1.236 B parameters, ~2.5 GB) for tools/bench_compare.sh (BENCH_1B=1): llama-quantize makes the
q8_0/q4_0 files from it and `tslm convert --type source` the .tslm twins, so both engines get
the same bytes. Weights as tools/make_synthetic_llama.py draws them (N(0, 0.02²), norms 1),
tied embeddings, no rope scaling (speed does not depend on it). llama.cpp needs a tokenizer:
the one of --tokenizer-from (a GGUF, e.g. SmolLM2's) is copied and padded with unused
[PADn] tokens up to the vocabulary size. Needs numpy only.

    python3 tools/make_synthetic_gguf.py OUT.gguf --tokenizer-from SmolLM2.gguf [--layers 16] ...
"""
import argparse, os, struct
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--tokenizer-from", required=True)
p.add_argument("--hidden", type=int, default=2048)
p.add_argument("--layers", type=int, default=16)
p.add_argument("--heads", type=int, default=32)
p.add_argument("--kv-heads", type=int, default=8)
p.add_argument("--ffn", type=int, default=8192)
p.add_argument("--vocab", type=int, default=128256)
a = p.parse_args()
hd = a.hidden // a.heads

STRING, ARRAY, U32, I32, F32 = 8, 9, 4, 5, 6
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, t, payload):
    return s(key) + struct.pack("<I", t) + payload


# --- the source tokenizer: raw bytes of every tokenizer.* key, tokens and types decoded
buf = memoryview(open(a.tokenizer_from, "rb").read())
assert bytes(buf[:4]) == b"GGUF", "--tokenizer-from is not a GGUF file"
pos = 4
version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, pos)
pos += 20


def skip_value(t, pos):
    if t == STRING:
        return pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
    if t == ARRAY:
        et, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if et == STRING:
            for _ in range(n):
                pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
            return pos
        return pos + SCALAR[et] * n
    return pos + SCALAR[t]


tok_raw, tokens, types = [], None, None
for _ in range(n_kv):
    start = pos
    n = struct.unpack_from("<Q", buf, pos)[0]
    key = bytes(buf[pos + 8:pos + 8 + n]).decode()
    pos += 8 + n
    t = struct.unpack_from("<I", buf, pos)[0]
    vstart = pos + 4
    pos = skip_value(t, vstart)
    if key == "tokenizer.ggml.tokens":
        _, cnt = struct.unpack_from("<IQ", buf, vstart)
        q, tokens = vstart + 12, []
        for _ in range(cnt):
            m = struct.unpack_from("<Q", buf, q)[0]
            tokens.append(bytes(buf[q + 8:q + 8 + m]))
            q += 8 + m
    elif key == "tokenizer.ggml.token_type":
        _, cnt = struct.unpack_from("<IQ", buf, vstart)
        types = list(np.frombuffer(buf[vstart + 12:vstart + 12 + 4 * cnt], dtype="<i4"))
    elif key.startswith("tokenizer.") and key != "tokenizer.chat_template":
        tok_raw.append(bytes(buf[start:pos]))
assert tokens is not None and len(tokens) <= a.vocab, "no usable tokenizer.ggml.tokens"
if types is None:
    types = [1] * len(tokens)
for i in range(len(tokens), a.vocab):
    tokens.append(f"[PAD{i}]".encode())
    types.append(5)  # UNUSED, as llama.cpp's converter pads

# --- metadata
meta = [
    kv("general.architecture", STRING, s("llama")),
    kv("general.name", STRING, s("synthetic Llama-3.2-1B shape")),
    kv("general.alignment", U32, struct.pack("<I", 32)),
    kv("llama.block_count", U32, struct.pack("<I", a.layers)),
    kv("llama.context_length", U32, struct.pack("<I", 131072)),
    kv("llama.embedding_length", U32, struct.pack("<I", a.hidden)),
    kv("llama.feed_forward_length", U32, struct.pack("<I", a.ffn)),
    kv("llama.attention.head_count", U32, struct.pack("<I", a.heads)),
    kv("llama.attention.head_count_kv", U32, struct.pack("<I", a.kv_heads)),
    kv("llama.rope.freq_base", F32, struct.pack("<f", 500000.0)),
    kv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
    kv("llama.vocab_size", U32, struct.pack("<I", a.vocab)),
    kv("llama.rope.dimension_count", U32, struct.pack("<I", hd)),
    kv("general.file_type", U32, struct.pack("<I", 1)),  # MOSTLY_F16
    kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, len(tokens)) +
       b"".join(struct.pack("<Q", len(t)) + t for t in tokens)),
    kv("tokenizer.ggml.token_type", ARRAY, struct.pack("<IQ", I32, len(types)) +
       np.asarray(types, dtype="<i4").tobytes()),
] + tok_raw

# --- tensors (GGUF names, shapes outermost first; GGUF stores dims innermost first)
shapes = [("token_embd.weight", (a.vocab, a.hidden))]
for i in range(a.layers):
    b = f"blk.{i}."
    shapes += [(b + "attn_norm.weight", (a.hidden,)), (b + "ffn_norm.weight", (a.hidden,)),
               (b + "attn_q.weight", (a.heads * hd, a.hidden)),
               (b + "attn_k.weight", (a.kv_heads * hd, a.hidden)),
               (b + "attn_v.weight", (a.kv_heads * hd, a.hidden)),
               (b + "attn_output.weight", (a.hidden, a.heads * hd)),
               (b + "ffn_gate.weight", (a.ffn, a.hidden)), (b + "ffn_up.weight", (a.ffn, a.hidden)),
               (b + "ffn_down.weight", (a.hidden, a.ffn))]
shapes.append(("output_norm.weight", (a.hidden,)))

infos, off = [], 0
for name, shp in shapes:
    t, es = (0, 4) if len(shp) == 1 else (1, 2)  # F32 norms, F16 matrices
    infos.append(s(name) + struct.pack("<I", len(shp)) + b"".join(struct.pack("<Q", d) for d in shp[::-1])
                 + struct.pack("<IQ", t, off))
    off += (int(np.prod(shp)) * es + 31) // 32 * 32

head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(meta)) + b"".join(meta) + b"".join(infos)
head += b"\0" * ((32 - len(head) % 32) % 32)
rng = np.random.default_rng(0)
part = a.out + ".part"
with open(part, "wb") as f:
    f.write(head)
    for name, shp in shapes:
        if len(shp) == 1:
            x = np.ones(shp, dtype="<f4").tobytes()
        else:
            x = b"".join((rng.standard_normal((min(4096, shp[0] - r), shp[1]), dtype=np.float32)
                          * np.float32(0.02)).astype("<f2").tobytes() for r in range(0, shp[0], 4096))
        f.write(x + b"\0" * ((32 - len(x) % 32) % 32))
os.replace(part, a.out)
print(f"wrote {a.out}: {sum(int(np.prod(s)) for _, s in shapes)} parameters, f16")
