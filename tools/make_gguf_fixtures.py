#!/usr/bin/env python3
"""Writes the GGUF importer's test fixtures with the reference `gguf` Python package.

Run from the repository root (needs numpy and gguf==0.19.0):

    python3 tools/make_gguf_fixtures.py

Outputs (deterministic: fixed seed, no timestamps), under Tests/TSLMConvertTests/Fixtures/gguf/:

- tiny.gguf            a small `llama` GGUF v3 (alignment 64) with one tensor of each ggml type
                       the importer reads (F32, F16, BF16, F64, I8..I64, Q8_0, Q4_0, Q4_1, Q5_0,
                       Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), llama attention tensors whose q/k
                       rows are permuted the way llama.cpp's converter does it, and tokenizer
                       metadata.
- tiny.expected.json   per tensor: ggml type, the `.tslm` dtype the importer should give, the
                       outermost-first shape, and where its expected values are.
- tiny.expected.f32    the expected values of every floating-point tensor, as raw
                       little-endian float32, in HF (un-permuted) row order: the output of
                       `gguf.quants.dequantize` on the stored blocks.

The K-quant types cannot be quantized by the `gguf` package, so their blocks are random bytes
(with sane f16 scales): every byte pattern is a valid block, and `gguf.quants.dequantize` gives
the reference values.
"""

import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "TSLMConvertTests", "Fixtures", "gguf")
rng = np.random.default_rng(20261122)

N_HEAD, N_HEAD_KV, HEAD_DIM, HIDDEN = 4, 2, 8, 256


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF rotate-half -> adjacent pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_kquant(qtype: T, rows: int, cols: int) -> np.ndarray:
    """Random blocks with finite, moderate f16 scales at the type's scale offsets."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scale_offsets = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for off in scale_offsets:
        d = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "tiny.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_custom_alignment(64)
    w.add_name("tiny-fixture")
    w.add_string("general.author", "tslm tests")
    w.add_uint32("general.some_count", 7)  # not a string: dropped
    w.add_string("Bad.Key", "dropped: not a valid .tslm key")
    w.add_string("custom.other", "dropped: not arch, general or tokenizer")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(512)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(3)
    w.add_quantization_version(2)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab", "Ġ", "Ġab", "é"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3, 1, 1, 1, 1, 1, 1])
    w.add_token_merges(["a b", "Ġ ab"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}")
    w.add_array("tokenizer.ggml.nested_test", [[1, 2], [3]])  # arrays of arrays are skipped

    entries = []   # (name, ggml type, tslm dtype, shape, expected f32 values or raw int bytes)

    def add_float(name, qtype, tslm, values_f32, stored):
        """`stored` is what goes into the file; `values_f32` the expected decoded values."""
        if qtype in (T.F32, T.F64) or (qtype == T.F16 and stored.dtype == np.float16):
            w.add_tensor(name, stored)
        else:
            w.add_tensor(name, stored, raw_dtype=qtype)
        entries.append((name, qtype, tslm, list(values_f32.shape), values_f32.astype(np.float32)))

    # Plain float types.
    x = rng.standard_normal((8, 32)).astype(np.float32)
    add_float("test.f32", T.F32, "f32", x, x)
    x = rng.standard_normal((4, 64)).astype(np.float16)
    add_float("test.f16", T.F16, "f16", x.astype(np.float32), x)
    x = rng.standard_normal((3, 32)).astype(np.float32)
    q = quantize(x, T.BF16)
    add_float("test.bf16", T.BF16, "bf16", dequantize(q, T.BF16), q)
    x = rng.standard_normal(10).astype(np.float64)
    add_float("test.f64", T.F64, "f64", x.astype(np.float32), x)

    # Block types the gguf package can quantize.
    for name, qtype, tslm, shape in [("test.q8_0", T.Q8_0, "q8_0", (4, 64)), ("test.q4_0", T.Q4_0, "q4_0", (4, 64)),
                                     ("test.q4_1", T.Q4_1, "q4_1", (4, 64)), ("test.q5_0", T.Q5_0, "f32", (2, 64)),
                                     ("test.q5_1", T.Q5_1, "f32", (2, 64))]:
        x = rng.standard_normal(shape).astype(np.float32)
        q = quantize(x, qtype)
        add_float(name, qtype, tslm, dequantize(q, qtype), q)

    # K-quants: random blocks.
    # Q4_K, Q5_K and Q6_K are kept as tslm's q4_k, q5_k and q6_k; the others become f32.
    for name, qtype, tslm, rows in [("test.q2_k", T.Q2_K, "f32", 2), ("test.q3_k", T.Q3_K, "f32", 2),
                                    ("test.q4_k", T.Q4_K, "q4_k", 3), ("test.q5_k", T.Q5_K, "q5_k", 2),
                                    ("test.q6_k", T.Q6_K, "q6_k", 3)]:
        q = random_kquant(qtype, rows, 256)
        add_float(name, qtype, tslm, dequantize(q, qtype), q)

    # Integer types: passed through byte for byte.
    ints = []
    for name, dt, shape in [("test.i8", np.int8, (16,)), ("test.i16", np.int16, (2, 8)),
                            ("test.i32", np.int32, (2, 8)), ("test.i64", np.int64, (5,))]:
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max, size=shape, dtype=dt)
        w.add_tensor(name, x)
        ints.append((name, x))

    # llama attention, stored permuted as llama.cpp's converter does; expected in HF order.
    wq = rng.standard_normal((N_HEAD * HEAD_DIM, HIDDEN)).astype(np.float32)
    wq_stored = quantize(permute(wq, N_HEAD), T.Q8_0)
    wq_expected = unpermute(dequantize(wq_stored, T.Q8_0), N_HEAD)
    # Rows are independent: un-permuting the stored rows equals quantizing HF rows directly.
    assert np.array_equal(wq_expected, dequantize(quantize(wq, T.Q8_0), T.Q8_0))
    add_float("blk.0.attn_q.weight", T.Q8_0, "q8_0", wq_expected, wq_stored)

    bq = rng.standard_normal(N_HEAD * HEAD_DIM).astype(np.float32)
    add_float("blk.0.attn_q.bias", T.F32, "f32", bq, permute(bq, N_HEAD))
    entries[-1] = entries[-1][:4] + (bq,)

    wk_stored = random_kquant(T.Q6_K, N_HEAD_KV * HEAD_DIM, HIDDEN)
    wk_expected = unpermute(dequantize(wk_stored, T.Q6_K), N_HEAD_KV)
    add_float("blk.0.attn_k.weight", T.Q6_K, "q6_k", wk_expected, wk_stored)

    wv = rng.standard_normal((N_HEAD_KV * HEAD_DIM, HIDDEN)).astype(np.float16)
    add_float("blk.0.attn_v.weight", T.F16, "f16", wv.astype(np.float32), wv)  # never permuted

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    blob = bytearray()
    manifest = []
    for name, qtype, tslm, shape, values in entries:
        manifest.append({"name": name, "ggml_type": qtype.name, "dtype": tslm, "shape": shape,
                         "offset": len(blob) // 4, "count": int(values.size)})
        blob += values.astype("<f4").tobytes()
    for name, x in ints:
        manifest.append({"name": name, "ggml_type": {1: "I8", 2: "I16", 4: "I32", 8: "I64"}[x.itemsize],
                         "dtype": {1: "i8", 2: "i16", 4: "i32", 8: "i64"}[x.itemsize], "shape": list(x.shape),
                         "raw_hex": x.astype(x.dtype.newbyteorder("<")).tobytes().hex()})
    with open(os.path.join(OUT, "tiny.expected.f32"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(OUT, "tiny.expected.json"), "w") as f:
        json.dump({"tensors": manifest}, f, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes), {len(manifest)} tensors")


if __name__ == "__main__":
    main()
