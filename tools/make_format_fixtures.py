#!/usr/bin/env python3
"""Generates the reference fixtures of the TSLMFormat tests (Tests/TSLMFormatTests/Fixtures/).

Run from the repository root:

    pip install xxhash==3.5.0          # numpy, torch and gguf==0.19.0 are assumed installed
    python3 tools/make_format_fixtures.py

Deterministic: fixed seeds, no clock, no environment input. Every output file is a small
little-endian binary or text table; each file's layout is described next to the code that
writes it and mirrored in the Swift tests that read it. Re-running it must produce identical
bytes (the tests do not need Python).

Reference implementations used:
  * xxhash 3.5.0          -> XXH64 (xxhash64.txt)
  * numpy                 -> float16 <-> float32 (half_to_float_*.bin, float_to_half_bf16.bin)
  * torch                 -> float32 -> bfloat16, round to nearest even (float_to_half_bf16.bin)
  * gguf 0.19.0 (quants)  -> Q8_0 / Q4_0 / Q4_1 quantize + dequantize (quant_*.bin)
"""

import os
import struct
import sys

import numpy as np
import torch
import xxhash
import gguf
from gguf import GGMLQuantizationType as QT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TSLMFormatTests", "Fixtures")
LE = "<"


def write(name: str, data: bytes) -> None:
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# XXH64
# --------------------------------------------------------------------------------------------

def det_bytes(n: int) -> bytes:
    """The deterministic test bytes of the XXH64 fixture: byte i is the top 8 bits of the
    32-bit value (i * 0x9E3779B1 + 0x7F4A7C15) mod 2^32. The Swift test builds the same."""
    return bytes((((i * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF) >> 24) for i in range(n))


def make_xxhash() -> None:
    # Text: one line per case, "length seed_hex expected_hex".
    seeds = [0, 1, 0x9E3779B97F4A7C15, 0xFFFFFFFFFFFFFFFF]
    lengths = list(range(0, 101)) + [127, 128, 129, 1000, 4096 + 7, 65536 + 3]
    lines = ["# length seed expected (XXH64 of det_bytes(length), xxhash 3.5.0)"]
    for n in lengths:
        data = det_bytes(n)
        for s in seeds:
            lines.append(f"{n} {s:016x} {xxhash.xxh64_intdigest(data, seed=s):016x}")
    write("xxhash64.txt", ("\n".join(lines) + "\n").encode())


# --------------------------------------------------------------------------------------------
# Half precision
# --------------------------------------------------------------------------------------------

def make_half_to_float() -> None:
    # half_to_float_{pos,neg}.bin: numpy float16 -> float32 bits (u32 LE) for the f16 bit
    # patterns 0x0000..0x7FFF (pos) and 0x8000..0xFFFF (neg), in order.
    allbits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    f32 = allbits.view(np.float16).astype(np.float32).view(np.uint32).astype("<u4")
    write("half_to_float_pos.bin", f32[:32768].tobytes())
    write("half_to_float_neg.bin", f32[32768:].tobytes())


def f32_from_bits(bits) -> np.ndarray:
    return np.array(bits, dtype=np.uint32).view(np.float32)


def make_float_to_half() -> None:
    # float_to_half_bf16.bin: records of (u32 f32 bits, u16 numpy f16 bits, u16 torch bf16 bits).
    rng = np.random.default_rng(20261101)
    vals = []
    # Specials.
    specials = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                0x7F800001, 0x7FBFFFFF, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,
                0x7F7FFFFF, 0xFF7FFFFF]
    vals += specials
    # f16 boundaries: max finite 65504, the overflow tie 65520, just below it, above.
    for v in [65504.0, 65519.996, 65520.0, 65520.004, 65536.0, 1e5, 1e10, -65504.0, -65520.0,
              6.1035156e-05, 6.097555e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08,
              2.9802319e-08, 1.0, -1.0, 0.5, 1.0009765625, 0.333333343, 3.14159265]:
        vals.append(int(np.float32(v).view(np.uint32)))
    # Exact f16 ties: midpoints between consecutive f16 values (normal and subnormal), both
    # parities, and their f32 neighbours.
    h = rng.integers(0, 0x7BFF, size=600, dtype=np.uint32).astype(np.uint16)
    h = np.concatenate([h, np.arange(0, 40, dtype=np.uint16), np.arange(0x3FF - 20, 0x410, dtype=np.uint16)])
    lo = h.view(np.float16).astype(np.float64)
    hi = (h + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    mid = ((lo + hi) / 2).astype(np.float32)  # exact: halfway points are representable in f32
    midbits = mid.view(np.uint32)
    for b in midbits:
        b = int(b)
        vals += [b, b + 1, b - 1]
    # bf16 ties: f32 values whose low 16 bits are exactly 0x8000, both parities, neighbours.
    hi16 = rng.integers(0, 0x7F7F, size=300, dtype=np.uint32)
    for b in hi16:
        b = int(b) << 16 | 0x8000
        vals += [b, b | 0x80000000, b + 1, b - 1]
    # f16 subnormal range and f32 subnormals.
    vals += [int(x) for x in (rng.uniform(-7e-5, 7e-5, size=300).astype(np.float32).view(np.uint32))]
    vals += [int(x) for x in rng.integers(1, 0x007FFFFF, size=50, dtype=np.uint32)]
    # Random finite f32 bit patterns (all exponents), and gaussian values at several scales.
    r = rng.integers(0, 0xFFFFFFFF, size=800, dtype=np.uint64).astype(np.uint32)
    vals += [int(x) for x in r]
    for scale in [1e-3, 1.0, 100.0, 3e4]:
        vals += [int(x) for x in (rng.standard_normal(150) * scale).astype(np.float32).view(np.uint32)]
    bits = np.array(vals, dtype=np.uint32)
    f = bits.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        f16 = f.astype(np.float16).view(np.uint16)
    bf = torch.from_numpy(f.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    rec = np.zeros(len(bits), dtype=[("f", "<u4"), ("h", "<u2"), ("b", "<u2")])
    rec["f"] = bits
    rec["h"] = f16
    rec["b"] = bf
    write("float_to_half_bf16.bin", rec.tobytes())


# --------------------------------------------------------------------------------------------
# Block quantization (gguf reference)
# --------------------------------------------------------------------------------------------

ROWS, COLS = 64, 256


def quant_input() -> np.ndarray:
    """64 x 256 f32: seeded normal data plus special rows (see the Swift test for the list)."""
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    x[0] = 0.0                                        # all zeros
    x[1] = 0.7                                        # constant positive
    x[2, 37] = 1.0e4                                  # one huge outlier
    x[3] = (rng.standard_normal(COLS) * 1e-6).astype(np.float32)  # d below the f16 range
    x[4] = (rng.standard_normal(COLS) * 1e-3).astype(np.float32)  # d in the f16 subnormal range
    x[5] = -np.abs(x[5])                              # negatives only
    x[6] = np.abs(x[6])                               # positives only
    x[7] = -2.5                                       # constant negative
    x[8, :] = 0.0                                     # max magnitude tie of opposite signs
    x[8, 5], x[8, 10] = -3.0, 3.0
    x[8, 32 + 5], x[8, 32 + 10] = 3.0, -3.0
    x[9] = rng.integers(-127, 128, size=COLS).astype(np.float32)  # small integers
    x[10] = (rng.standard_normal(COLS) * 3e4).astype(np.float32)  # q4_1 min near the f16 limit
    x[11] = (np.arange(COLS, dtype=np.float32) - 128.0) / 8.0     # many exact .5 ties
    x[12] = (rng.standard_normal(COLS) * 1e-30).astype(np.float32)  # far below f16
    x[13, ::2] = 0.0                                  # half zeros
    return np.ascontiguousarray(x, dtype=np.float32)


def make_quant() -> None:
    x = quant_input()
    write("quant_input_f32.bin", x.astype("<f4").tobytes())
    for name, qt in [("q8_0", QT.Q8_0), ("q4_0", QT.Q4_0), ("q4_1", QT.Q4_1)]:
        with np.errstate(over="ignore", invalid="ignore"):
            q = gguf.quants.quantize(x, qt)
            y = gguf.quants.dequantize(q, qt).astype(np.float32)
        write(f"quant_{name}.bin", np.ascontiguousarray(q, dtype=np.uint8).tobytes())
        write(f"quant_{name}_dequant_f32.bin", y.astype("<f4").tobytes())

    # Dequantization of arbitrary block bytes (every nibble, random scales incl. inf/NaN/subnormal).
    rng = np.random.default_rng(777)
    for name, qt, tsize in [("q8_0", QT.Q8_0, 34), ("q4_0", QT.Q4_0, 18), ("q4_1", QT.Q4_1, 20)]:
        nb = 256
        raw = rng.integers(0, 256, size=(nb, tsize), dtype=np.uint8)
        # Keep most scales finite and moderate; a few blocks keep their random (possibly
        # inf/NaN/subnormal) halves.
        scales = rng.standard_normal((nb, 2)).astype(np.float16).view(np.uint8).reshape(nb, 4)
        keep = np.arange(nb) % 16 == 0
        nscale = 4 if name == "q4_1" else 2
        raw[~keep, :nscale] = scales[~keep, :nscale]
        raw[1, 0:2] = np.array([0x7C00], dtype="<u2").view(np.uint8)    # d = +inf
        raw[2, 0:2] = np.array([0x7E00], dtype="<u2").view(np.uint8)    # d = NaN
        raw[3, 0:2] = np.array([0x0001], dtype="<u2").view(np.uint8)    # smallest subnormal
        raw[4, 0:2] = np.array([0x8000], dtype="<u2").view(np.uint8)    # -0
        with np.errstate(over="ignore", invalid="ignore"):
            y = gguf.quants.dequantize(raw.reshape(-1), qt).astype(np.float32)
        write(f"quant_{name}_random_blocks.bin", raw.tobytes())
        write(f"quant_{name}_random_dequant_f32.bin", y.astype("<f4").tobytes())


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    make_xxhash()
    make_half_to_float()
    make_float_to_half()
    make_quant()


if __name__ == "__main__":
    main()
