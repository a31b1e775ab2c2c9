#!/usr/bin/env python3
"""Reference of tslm's K-type quantizers (q4_k, q5_k, q6_k; `tslm quantize --type q4_k ...`),
written from the description in formats/tslm.md ("Quantizers", the K types), and the fixtures
the Swift tests compare against bit for bit.

Every operation is one binary32 operation in the order the description gives (numpy float32
scalars: each product, sum and quotient rounds to float32, no fused multiply-add), sums in
element order. The blocks are written in ggml's layouts (block_q4_K, block_q5_K, block_q6_K),
so the `gguf` package decodes them; the script checks that its decoding matches the values the
quantizer meant.

Input: the 80 x 256 rows of the 4-bit search fixture (tools/quant_search_reference.py: zeros,
constants, outliers, f16 underflow, ties, values on q4_1 grids, Student-t weights) plus 16 rows
of values decoded from random K blocks (8 q4_k, 8 q6_k), with and without its importance vector.

Usage: python3 tools/kquant_reference.py          # writes the fixtures
       python3 tools/kquant_reference.py --check  # recomputes and compares
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
sys.path.insert(0, HERE)
from quant_search_reference import search_importance, search_input, write_or_check  # noqa: E402

F = np.float32
MAXF = F(np.finfo(np.float32).max)


def half(v):
    """float32 -> f16 (nearest even, overflow to infinity): (bits, value as float32)."""
    with np.errstate(over="ignore"):
        h = np.float16(F(v))
    return int(np.array([h]).view(np.uint16)[0]), F(h)


def clamp_round(v, lo, hi):
    """Round half away from zero, then clamp into lo..hi; NaN gives the level nearest 0."""
    v = float(v)
    if math.isnan(v):
        return max(lo, min(hi, 0))
    if math.isinf(v):
        return lo if v < 0 else hi
    r = math.floor(abs(v) + 0.5)  # exact in double for a float32 v
    r = r if v >= 0 else -r
    return lo if r <= lo else (hi if r >= hi else int(r))


def finite(v):
    return bool(np.isfinite(v))


def weights(x, importance, start, kind):
    """The element weights of one super-block of 256."""
    w = [F(0)] * 256
    if importance is not None:
        s = F(0)
        for v in x:
            if finite(v):
                s = F(s + F(v * v))
        sigma2 = F(F(F(2) * s) / F(256))
        for i in range(256):
            imp = F(importance[(start + i) % len(importance)])
            imp = imp if finite(imp) else F(0)
            w[i] = F(max(F(0), imp) * np.sqrt(F(sigma2 + F(x[i] * x[i]))))
    elif kind == "q6_k":
        w = [F(v * v) for v in x]
    else:
        for j in range(8):
            s = F(0)
            for i in range(32):
                v = x[32 * j + i]
                if finite(v):
                    s = F(s + F(v * v))
            mean = np.sqrt(F(s / F(32)))
            for i in range(32):
                w[32 * j + i] = F(mean + abs(x[32 * j + i]))
    return [wi if finite(wi) else F(0) for wi in w]


def affine_error(x, w, scale, offset, nmax):
    inv = F(F(1) / scale) if scale > 0 else F(0)
    err = F(0)
    for i in range(32):
        if not finite(x[i]):
            continue
        q = F(clamp_round(F(F(x[i] - offset) * inv), 0, nmax))
        e = F(F(F(scale * q) + offset) - x[i])
        err = F(err + F(F(w[i] * e) * e))
    return err


def fit_affine(x, w, nmax):
    """x ~ scale*q + offset (scale >= 0, offset <= 0, q in 0..nmax) for one sub-block of 32."""
    lo, hi = F(0), -MAXF
    for v in x:
        if finite(v):
            lo, hi = min(lo, v), max(hi, v)
    if not hi > lo:
        return F(0), lo
    best = (F(F(hi - lo) / F(nmax)), lo)
    best_err = affine_error(x, w, best[0], best[1], nmax)
    for step in range(21):
        levels = F(F(nmax) - F(1) + F(F(0.1) * F(step)))
        inv = F(levels / F(hi - lo))
        sw = sq = sqq = sx = sqx = F(0)
        for i in range(32):
            q = F(clamp_round(F(F(x[i] - lo) * inv), 0, nmax))
            wi, xi = w[i], (x[i] if finite(x[i]) else F(0))
            sw = F(sw + wi)
            sq = F(sq + F(wi * q))
            sqq = F(sqq + F(F(wi * q) * q))
            sx = F(sx + F(wi * xi))
            sqx = F(sqx + F(F(wi * q) * xi))
        det = F(F(sw * sqq) - F(sq * sq))
        if not det > 0:
            continue
        with np.errstate(all="ignore"):
            scale = F(F(F(sw * sqx) - F(sq * sx)) / det)
            offset = F(F(F(sqq * sx) - F(sq * sqx)) / det)
            if offset > 0:
                offset = F(0)
                scale = F(sqx / sqq) if sqq > 0 else F(0)
        if not (scale > 0 and finite(scale) and finite(offset)):
            continue
        err = affine_error(x, w, scale, offset, nmax)
        if err < best_err:
            best_err, best = err, (scale, offset)
    return best


def scale_error(x, w, scale, nmin, nmax):
    inv = F(F(1) / scale)
    err = F(0)
    for i in range(len(x)):
        if finite(x[i]):
            e = F(F(scale * F(clamp_round(F(x[i] * inv), nmin, nmax))) - x[i])
            err = F(err + F(F(w[i] * e) * e))
    return err


def fit_scale(x, w, nmin, nmax):
    """x ~ scale*q (q in nmin..nmax) for one sub-block of 16."""
    big = F(0)
    for v in x:
        if finite(v) and abs(v) > abs(big):
            big = v
    if big == 0:
        return F(0)
    best = F(big / F(nmin))
    best_err = scale_error(x, w, best, nmin, nmax)
    for k in range(-9, 10):
        inv = F(F(F(nmin) - F(F(0.1) * F(k))) / big)
        sqq = sqx = F(0)
        for i in range(len(x)):
            if finite(x[i]):
                q = F(clamp_round(F(x[i] * inv), nmin, nmax))
                sqq = F(sqq + F(F(w[i] * q) * q))
                sqx = F(sqx + F(F(w[i] * q) * x[i]))
        if not sqq > 0:
            continue
        scale = F(sqx / sqq)
        if scale == 0 or not finite(scale):
            continue
        err = scale_error(x, w, scale, nmin, nmax)
        if err < best_err:
            best_err, best = err, scale
    return best


def quantize_scale_min(x, w, nmax, fifth_bit):
    a, m = [], []
    for j in range(8):
        s, o = fit_affine(x[32 * j:32 * j + 32], w[32 * j:32 * j + 32], nmax)
        a.append(s)
        m.append(F(-o))
    max_a = F(0)
    for v in a:
        max_a = max(max_a, v if finite(v) else F(0))
    max_m = F(0)
    for v in m:
        max_m = max(max_m, v if finite(v) else F(0))
    d_bits, df = half(F(max_a / F(63)))
    dmin_bits, dminf = half(F(max_m / F(63)))
    inv_a = F(F(1) / df) if df > 0 and finite(df) else F(0)
    inv_m = F(F(1) / dminf) if dminf > 0 and finite(dminf) else F(0)
    sc, mc, q = [], [], [0] * 256
    for j in range(8):
        sc.append(clamp_round(F(a[j] * inv_a), 0, 63))
        mc.append(clamp_round(F(m[j] * inv_m), 0, 63))
        scale, offset = F(df * F(sc[j])), F(dminf * F(mc[j]))
        inv = F(F(1) / scale) if scale > 0 and finite(scale) else F(0)
        for i in range(32):
            q[32 * j + i] = clamp_round(F(F(x[32 * j + i] + offset) * inv), 0, nmax)
    packed = [0] * 12
    for j in range(8):
        if j < 4:
            packed[j] = sc[j]
            packed[j + 4] = mc[j]
        else:
            packed[j + 4] = (sc[j] & 0x0F) | ((mc[j] & 0x0F) << 4)
            packed[j - 4] |= (sc[j] >> 4) << 6
            packed[j] |= (mc[j] >> 4) << 6
    out = bytearray(d_bits.to_bytes(2, "little") + dmin_bits.to_bytes(2, "little") + bytes(packed))
    qs = bytearray(128)
    qh = bytearray(32)
    for c in range(4):
        for l in range(32):
            lo_, hi_ = q[64 * c + l], q[64 * c + 32 + l]
            qs[32 * c + l] = (lo_ & 0x0F) | ((hi_ & 0x0F) << 4)
            qh[l] |= ((lo_ >> 4) << (2 * c)) | ((hi_ >> 4) << (2 * c + 1))
    return bytes(out + (qh if fifth_bit else b"") + qs)


def quantize_q6_k(x, w):
    scales = [fit_scale(x[16 * j:16 * j + 16], w[16 * j:16 * j + 16], -32, 31) for j in range(16)]
    big = F(0)
    for s in scales:
        if abs(s) > abs(big):
            big = s
    d_bits, df = half(F(big / F(-128)))
    inv = F(F(1) / df) if df != 0 and finite(df) else F(0)
    sc, q = [], [0] * 256
    for j in range(16):
        sc.append(clamp_round(F(scales[j] * inv), -128, 127))
        a = F(df * F(sc[j]))
        ia = F(F(1) / a) if a != 0 and finite(a) else F(0)
        for i in range(16):
            q[16 * j + i] = clamp_round(F(x[16 * j + i] * ia), -32, 31) + 32
    ql, qh = bytearray(128), bytearray(64)
    for h in range(2):
        for l in range(32):
            q1, q2, q3, q4 = q[128 * h + l], q[128 * h + l + 32], q[128 * h + l + 64], q[128 * h + l + 96]
            ql[64 * h + l] = (q1 & 0x0F) | ((q3 & 0x0F) << 4)
            ql[64 * h + l + 32] = (q2 & 0x0F) | ((q4 & 0x0F) << 4)
            qh[32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    return bytes(ql + qh + bytes(s & 0xFF for s in sc) + d_bits.to_bytes(2, "little"))


def quantize(x, kind, importance=None):
    rows = x.reshape(-1, 256)
    out = []
    for b, row in enumerate(rows):
        xs = [F(v) for v in row]
        w = weights(xs, importance, 256 * b, kind)
        if kind == "q6_k":
            out.append(quantize_q6_k(xs, w))
        else:
            out.append(quantize_scale_min(xs, w, 31 if kind == "q5_k" else 15, kind == "q5_k"))
    return b"".join(out)


def k_input():
    """The 4-bit search input plus 16 rows decoded from random q4_k and q6_k blocks."""
    base = search_input()
    rng = np.random.default_rng(2027)
    extra = np.zeros((16, 256), dtype=np.float32)
    for r, (qt, size, scale_offsets) in enumerate([(QT.Q4_K, 144, [0, 2])] * 8 + [(QT.Q6_K, 210, [208])] * 8):
        raw = rng.integers(0, 256, size=size, dtype=np.uint8)
        for o in scale_offsets:
            raw[o:o + 2] = np.array([rng.random() * 0.002 + 0.0005], dtype=np.float16).view(np.uint8)
        extra[r] = gguf.quants.dequantize(raw, qt).astype(np.float32)
    return np.ascontiguousarray(np.concatenate([base, extra]), dtype=np.float32)


def main():
    x = k_input()
    imp = search_importance()
    files = {"kquant_input_f32.bin": x.astype("<f4").tobytes()}
    types = {"q4_k": QT.Q4_K, "q5_k": QT.Q5_K, "q6_k": QT.Q6_K}
    for kind, qt in types.items():
        for suffix, importance in [("", None), ("_imatrix", imp)]:
            blob = quantize(x, kind, importance)
            # The gguf package decodes the blocks: every value finite where the input is.
            vals = gguf.quants.dequantize(np.frombuffer(blob, dtype=np.uint8), qt).reshape(x.shape)
            rel = np.sqrt(np.mean((vals - x) ** 2)) / max(1e-30, np.sqrt(np.mean(x ** 2)))
            print(f"{kind}{suffix}: relative RMS error {rel:.4f} over {x.shape[0]} super-blocks", file=sys.stderr)
            files[f"kquant_{kind}{suffix}.bin"] = blob
    write_or_check(files)

if __name__ == "__main__":
    main()
