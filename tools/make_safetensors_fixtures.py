#!/usr/bin/env python3
"""Writes Tests/TSLMConvertTests/Fixtures/safetensors/{python.safetensors,expected.json}.

Run from the repository root:

    pip install safetensors==0.8.0 torch   # torch 2.x, CPU build
    python3 tools/make_safetensors_fixtures.py

The file is written by the Python `safetensors` package itself (`safetensors.torch.save_file`),
from tensors built over exact byte strings (`torch.frombuffer`), so the stored bytes are known
exactly. The values are fixed (no randomness), so running it again rewrites the same files. expected.json lists every tensor with
its dtype, shape and bytes in hex, plus the `__metadata__` map.
"""
import json
import os
import struct

import safetensors
import torch
from safetensors.torch import save_file

TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "BOOL": torch.bool}

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "Tests", "TSLMConvertTests", "Fixtures", "safetensors")


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f16(values):
    return struct.pack("<%de" % len(values), *values)


def bf16(values):
    # bf16 = the upper 16 bits of binary32 (these values are exact in bf16).
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)


def main():
    os.makedirs(OUT, exist_ok=True)
    tensors = {
        "model.embed_tokens.weight": ("F32", [2, 3], f32([0.0, -0.0, 1.5, -2.25, 3.0e38, 1.0e-40])),
        "model.norm.weight": ("F16", [4], f16([1.0, -0.5, 65504.0, 6.0e-8])),
        "lm_head.weight": ("BF16", [3, 2], bf16([1.0, -2.0, 0.5, 3.0e38, -1.5, 0.0])),
        "position_ids": ("I64", [1, 5], struct.pack("<5q", 0, 1, -2, 2**62, -(2**63))),
        "counts": ("I32", [3], struct.pack("<3i", 7, -8, 2**31 - 1)),
        "mask": ("BOOL", [4], bytes([1, 0, 0, 1])),
        "scalar": ("F32", [], f32([42.0])),
        "empty": ("F32", [0, 3], b""),
    }
    # One key only: the Rust writer orders metadata keys by a randomly seeded hash map.
    metadata = {"format": "pt"}
    path = os.path.join(OUT, "python.safetensors")
    built = {}
    for k, (d, s, b) in tensors.items():
        t = torch.frombuffer(bytearray(b), dtype=TORCH_DTYPES[d]) if b else torch.empty(0, dtype=TORCH_DTYPES[d])
        built[k] = t.reshape(s).clone()
        assert built[k].numpy().tobytes() == b if d != "BF16" else built[k].view(torch.int16).numpy().tobytes() == b
    save_file(built, path, metadata=metadata)
    expected = {
        "metadata": metadata,
        "tensors": [{"name": k, "dtype": d, "shape": s, "hex": b.hex()} for k, (d, s, b) in sorted(tensors.items())],
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    assert safetensors.__version__ == "0.8.0", safetensors.__version__
    main()
