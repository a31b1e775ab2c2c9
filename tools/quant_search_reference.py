#!/usr/bin/env python3
"""Reference of tslm's error-minimizing 4-bit quantizers (`tslm quantize --quantizer search`),
written from the description in formats/tslm.md ("Quantizers"), and the fixtures the Swift
tests compare against bit for bit.

For each block of 32 values: start from ggml's round-to-nearest block (the `gguf` package's
quantize, the block to beat), then try a fixed list of candidate grids; for each, assign every
value to its nearest level, fit the scale (q4_0) or scale and offset (q4_1) to that assignment by
least squares, round them to f16, re-assign every value to the nearest level of the stored grid,
and keep the candidate with the smallest squared error (strictly smaller than the best so far).
All arithmetic is in double precision, summed in element order, as the Swift code does.

With an importance vector (an imatrix row: one weight per column), each element's squared
error, and the least-squares fits, are weighted by its column's importance.

Usage: python3 tools/quant_search_reference.py          # writes the fixtures
       python3 tools/quant_search_reference.py --check  # recomputes and compares
Requires numpy and gguf==0.19.0.
"""
import math
import os
import sys

import numpy as np
import gguf
from gguf.constants import GGMLQuantizationType as QT

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "TSLMFormatTests", "Fixtures")

Q4_0_STEPS = [6.0 + 0.125 * k for k in range(25)]
Q4_1_STEPS = [12.0 + 0.25 * k for k in range(25)]


def f16(v: float) -> float:
    """Double -> f32 -> f16 -> double, each rounding to nearest even (Swift's Float(d), floatToHalf)."""
    with np.errstate(over="ignore"):
        return float(np.float16(np.float32(v)))


def half_bits(v: float) -> int:
    return int(np.array([v], dtype=np.float16).view(np.uint16)[0])


def clamp_round(v: float, lo: int, hi: int) -> int:
    """round half away from zero, exactly, then clamp."""
    a = abs(v)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1
    r = r if v >= 0 else -r
    return lo if r <= lo else (hi if r >= hi else int(r))


def q4_0_error(x, w, d, q):
    e = 0.0
    for i in range(32):
        r = x[i] - d * float(q[i])
        e += w[i] * (r * r)
    return e


def q4_1_error(x, w, d, m, q):
    e = 0.0
    for i in range(32):
        r = x[i] - (d * float(q[i]) + m)
        e += w[i] * (r * r)
    return e


def q4_0_search_block(xf32: np.ndarray, w) -> bytes:
    rtn = bytes(gguf.quants.quantize(xf32.reshape(1, 32), QT.Q4_0).reshape(-1))
    x = [float(v) for v in xf32]
    amax = max(abs(v) for v in x)
    if amax == 0:
        return rtn
    best_d = float(np.frombuffer(rtn[:2], dtype="<f2")[0])
    qs = rtn[2:]
    best_q = [(qs[j] & 0x0F) - 8 for j in range(16)] + [(qs[j] >> 4) - 8 for j in range(16)]
    best_err = q4_0_error(x, w, best_d, best_q)
    for sign in (-1.0, 1.0):
        for steps in Q4_0_STEPS:
            d0 = sign * amax / steps
            sxq = 0.0
            sqq = 0.0
            q = [0] * 32
            for i in range(32):
                q[i] = clamp_round(x[i] / d0, -8, 7)
                sxq += w[i] * x[i] * float(q[i])
                sqq += w[i] * float(q[i] * q[i])
            if not sqq > 0:
                continue
            dh = f16(sxq / sqq)
            if dh == 0 or not math.isfinite(dh):
                continue
            q = [clamp_round(x[i] / dh, -8, 7) for i in range(32)]
            err = q4_0_error(x, w, dh, q)
            if err < best_err:
                best_err, best_d, best_q = err, dh, q
    out = bytearray(np.array([best_d], dtype="<f2").tobytes())
    out += bytes(((best_q[j] + 8) | ((best_q[j + 16] + 8) << 4)) for j in range(16))
    return bytes(out)


def q4_1_search_block(xf32: np.ndarray, w) -> bytes:
    rtn = bytes(gguf.quants.quantize(xf32.reshape(1, 32), QT.Q4_1).reshape(-1))
    x = [float(v) for v in xf32]
    mn, mx = min(x), max(x)
    if not mx > mn:
        return rtn
    best_d = float(np.frombuffer(rtn[:2], dtype="<f2")[0])
    best_m = float(np.frombuffer(rtn[2:4], dtype="<f2")[0])
    qs = rtn[4:]
    best_q = [qs[j] & 0x0F for j in range(16)] + [qs[j] >> 4 for j in range(16)]
    best_err = q4_1_error(x, w, best_d, best_m, best_q)
    for steps in Q4_1_STEPS:
        d0 = (mx - mn) / steps
        m0 = mn - (15 - steps) * d0 / 2
        s1 = sq = sqq = sx = sqx = 0.0
        q = [0] * 32
        for i in range(32):
            q[i] = clamp_round((x[i] - m0) / d0, 0, 15)
            qi = float(q[i])
            s1 += w[i]
            sq += w[i] * qi
            sqq += w[i] * qi * qi
            sx += w[i] * x[i]
            sqx += w[i] * qi * x[i]
        det = s1 * sqq - sq * sq
        if not det > 0:
            continue
        dh = f16((s1 * sqx - sq * sx) / det)
        mh = f16((sqq * sx - sq * sqx) / det)
        if not (dh > 0 and math.isfinite(dh) and math.isfinite(mh)):
            continue
        q = [clamp_round((x[i] - mh) / dh, 0, 15) for i in range(32)]
        err = q4_1_error(x, w, dh, mh, q)
        if err < best_err:
            best_err, best_d, best_m, best_q = err, dh, mh, q
    out = bytearray(np.array([best_d, best_m], dtype="<f2").tobytes())
    out += bytes((best_q[j] | (best_q[j + 16] << 4)) for j in range(16))
    return bytes(out)


def quantize(x: np.ndarray, kind: str, importance=None) -> bytes:
    """Blocks of x (flattened); element g weighs importance[g % len(importance)] (else 1)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    f = q4_0_search_block if kind == "q4_0" else q4_1_search_block
    out = []
    for b, block in enumerate(flat):
        if importance is None:
            w = [1.0] * 32
        else:
            w = [float(importance[(32 * b + i) % len(importance)]) for i in range(32)]
        out.append(f(block, w))
    return b"".join(out)


def search_importance() -> np.ndarray:
    """256 per-column weights, log-normal with a few zeros (dead columns), as f32."""
    rng = np.random.default_rng(77)
    imp = np.exp(rng.standard_normal(256) * 1.5).astype(np.float32)
    imp[::37] = 0.0
    return imp


def search_input() -> np.ndarray:
    """The rounding fixture's 64 x 256 input (tools/make_format_fixtures.py) plus 16 rows:
    values on random q4_1 grids (what requantizing a Q4_1 GGUF sees), Student-t weights,
    and a row with one outlier per block."""
    sys.path.insert(0, HERE)
    from make_format_fixtures import quant_input

    base = quant_input()
    rng = np.random.default_rng(2026)
    extra = np.zeros((16, 256), dtype=np.float32)
    for r in range(8):
        raw = np.zeros((8, 20), dtype=np.uint8)
        d = (rng.random(8) * 0.02 + 0.001).astype(np.float16)
        m = (-(rng.random(8) * 0.15)).astype(np.float16)
        raw[:, 0:2] = d.view(np.uint8).reshape(8, 2)
        raw[:, 2:4] = m.view(np.uint8).reshape(8, 2)
        raw[:, 4:] = rng.integers(0, 256, size=(8, 16), dtype=np.uint8)
        extra[r] = gguf.quants.dequantize(raw.reshape(-1), QT.Q4_1).astype(np.float32)
    for r in range(8, 15):
        extra[r] = (rng.standard_t(3, size=256) * 0.05).astype(np.float32)
    extra[15] = (rng.standard_normal(256) * 0.02).astype(np.float32)
    extra[15, ::32] = 0.5
    return np.ascontiguousarray(np.concatenate([base, extra]), dtype=np.float32)


def main() -> None:
    x = search_input()
    imp = search_importance()
    files = {"quant_search_input_f32.bin": x.astype("<f4").tobytes(),
             "quant_search_q4_0.bin": quantize(x, "q4_0"),
             "quant_search_q4_1.bin": quantize(x, "q4_1"),
             "quant_search_importance_f32.bin": imp.astype("<f4").tobytes(),
             "quant_search_q4_0_imatrix.bin": quantize(x, "q4_0", imp),
             "quant_search_q4_1_imatrix.bin": quantize(x, "q4_1", imp)}
    write_or_check(files)


def write_or_check(files) -> None:
    """Writes `files` (name -> bytes) under OUT, or with --check compares them with what is there."""
    if "--check" in sys.argv:
        bad = [n for n, b in files.items() if open(os.path.join(OUT, n), "rb").read() != b]
        print("fixtures differ: " + ", ".join(bad) if bad else "fixtures match")
        sys.exit(1 if bad else 0)
    for n, b in files.items():
        with open(os.path.join(OUT, n), "wb") as f:
            f.write(b)
        print(f"wrote {n} ({len(b)} bytes)")

if __name__ == "__main__":
    main()
