#!/usr/bin/env python3
"""Golden fixtures for the Time-LLM prompt-as-prefix (RevIN + statistics text).

    python3 -m pip install -r tools/requirements.txt
    python3 tools/make_timellm_fixtures.py

Deterministic (byte-identical output on re-runs on the same kind of machine): CPU, float32,
fixed seeds, one thread. About 2 s. The reference code is tools/timellm_reference.py.

Output, under Tests/TSLMRuntimeTests/Fixtures/timellm/ (documented in README.md there):

  prompts.json    20 series (seeded lengths 24..96) with the raw float32 values, RevIN mean / std,
                  the normalized values, the min / max / median strings, the trend, the top-5
                  lags and the full prompt (description below, pred_len 12, seq_len = length)
  normalize.json  RevIN of long series (up to 2048 steps: the deeper levels of torch's cascade
                  sum) and of multichannel (1, T, N) batches (torch sums each channel in another
                  order when N > 1), with the per-channel trend sums
  topk.json       tie-heavy arrays and torch.topk(·, 5) of them (torch's tie order)
  pystr.json      float32 bit patterns and Python's str() of their float64 widening
  sqrt.json       torch.sqrt of float32 values (bit patterns in, bit patterns out)

QUIRKS found while writing this (each one is replicated by TimeLLMPrompt.swift):

 1. Lag ties are everywhere. The circular autocorrelation is symmetric, r[k] == r[n-k] in exact
    arithmetic, so the top 5 is normally lag 0 plus two mirrored pairs, and which lag of a pair
    comes first is decided by the last bit of torch's float32 FFT (MKL's DFT on x86 wheels,
    pocketfft on others, cuFFT on GPUs) -- or by torch.topk's tie order when the FFT happens to
    give the two exactly equal values (about half of the pairs with MKL). That last bit cannot be
    reproduced without MKL itself (we measured: no float32 FFT we tried, pocketfft included,
    agrees with MKL's ordering better than chance). The runtime therefore computes the
    autocorrelation accurately (float64, rounded to float32), makes the pairs exactly equal, and
    orders ties exactly as torch.topk does (libstdc++ nth_element / partial_sort, replicated).
    For every series this file records `lags_exact` (torch.topk over that exactly symmetric
    autocorrelation) and `lags_rounding_dependent` (true when torch's own FFT put a pair in the
    other order); the tests require `lags_exact` always and the torch prompt byte for byte
    wherever the ranking is not rounding dependent. Measured on random series (this machine):
    the top 5 equals torch's in 45-53% of series (T from 24 to 2048) and equals it up to the
    order within mirrored pairs in 100%.
 2. torch.topk's tie order is not "lowest index first": for n < 320 it is std::nth_element
    (introselect) followed by std::sort of the first 4, for n >= 320 std::partial_sort (heap
    select + sort_heap). Example: an all-zero autocorrelation of 40 values gives [28, 26, 27, 25, 29].
 3. irfft without `n` returns 2 * (T // 2) samples: for odd T the autocorrelation has T - 1 lags,
    computed from the length-T spectrum with its last bin taken as a Nyquist bin.
 4. The trend is `diff(dim=1).sum(dim=1) > 0` in float32, NOT x[-1] - x[0] > 0: torch's cascade
    sum (8 vector lanes on x86, AVX-512 included: the sum kernel has no AVX-512 build; 4
    interleaved accumulators; a 4-level cascade for long rows) leaves a rounding residue, so a
    series whose first and last values are equal can be "upward" (series `equal_ends_upward`).
 5. The mean is the same cascade sum divided by T, so a constant series need not normalize to
    zero: 0.1 repeated 37 times has mean 0.10000000894069672 != 0.1f and normalizes to the
    constant -2.356080585741438e-06; 0.3 repeated 93 times normalizes to 1.8848644685931504e-05
    (series `constant_inexact`); whether it happens, and the sign, depend on value and length.
    Exactly representable sums (5.0 repeated) normalize to exact zeros, std = sqrt(1e-5) =
    0.003162277629598975, min/max/median "0.0", trend "downward" (0 is not > 0), and the lags
    are torch.topk's tie order over an all-zero autocorrelation.
 6. The variance of one channel, torch.var of a (1, T, 1) tensor, is two-pass: the float32 mean
    (quirk 5) widened to float64, Σ (x - mean)^2 in float64, / T, rounded to float32 -- for a
    series like 1e5 + noise that is not the variance of the data (series `large_offset`: 0.81824 vs
    0.81821). For N > 1 channels torch.var of (1, T, N) is a float64 Welford pass instead. The 1e-5
    is added in float32.
 6b. torch.sqrt on x86 wheels is MKL VML (vmsSqrt, HA). On AMD CPUs MKL runs its generic kernel:
    r = rsqrtps(x); y = x*r; h = 0.5*r; e = 0.5 - y*h; y1 = y*e + y; h1 = e*h + h;
    sqrt = (x - y1*y1)*h1 + y1, float32, no FMA, with the CPU's own rsqrtps approximation. About 1
    value in 6 is then one ulp away from the IEEE square root, which moves std, every normalized
    value and the printed statistics. TimeLLMPrompt emulates it (AMD Zen's rsqrtps table); on
    Intel CPUs (MKL's AVX2/AVX-512 kernels) and without MKL the square root is (nearly) IEEE.
    sqrt.json records torch.sqrt on this machine; prompts.json records which kind it was.
 7. When N > 1 channels are normalized together, torch sums each channel of (1, T, N) in a
    different order (4 channels at a time sequentially for N < 8, groups of 32 / 8 vector lanes
    for N >= 8, 4 interleaved accumulators for the rest), so the mean of a channel can differ in
    the last bit from the same channel normalized alone (normalize.json covers N = 2..33).
 8. An alternating series (2, -1, 2, -1, ...) has exactly equal autocorrelation at every even
    lag, lag 0 included, so lag 0 is not even first: the top 5 is pure tie order (series
    `alternating`).
 9. RevIN's 1e-5 dominates small-scale series: values around 1e-4 (variance ~1e-9) are divided
    by about sqrt(1e-5), so their normalized values stay near 0.01 (series `tiny_scale`).
10. Upstream crashes on what the runtime rejects with a typed error: fewer than 6 steps
    (torch.topk(5) over 2 * (T // 2) lags) and, in the runtime's input checks, NaN / inf.
11. Python str(): shortest round-trip digits of the float64; exponent form below 1e-4 and from
    1e16 up ("1e-05", "1e+16"), at least two exponent digits, ".0" on integral values, "-0.0",
    "nan", "inf". The float32 is widened first, so 0.1f prints as "0.10000000149011612".
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timellm_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TSLMRuntimeTests", "Fixtures", "timellm")
DESCRIPTION = "The Airline dataset holds monthly totals of international airline passengers."
PRED_LEN = 12
SEED = 10
F32 = np.float32


def f32list(a):
    """float32 values as JSON numbers: repr of the float64 widening, which is exact."""
    return [float(v) for v in np.asarray(a, dtype=F32).reshape(-1)]


def exact_autocorrelation(x_norm):
    """irfft(|rfft(x)|^2) with torch's output length 2 * (T // 2), computed in float64 and
    rounded to float32, with r[k] and r[n-k] made exactly equal (their float64 values differ
    only by rounding)."""
    x = np.asarray(x_norm, dtype=np.float64)
    t = len(x)
    n = 2 * (t // 2)
    spec = np.fft.rfft(x)
    power = (spec * np.conj(spec)).real
    r = np.fft.irfft(power, n=n)
    half = r[: n // 2 + 1].astype(F32)
    return np.concatenate([half, half[1 : n // 2][::-1]]).astype(F32)


def torch_top5(values):
    return torch.topk(torch.from_numpy(np.ascontiguousarray(values, dtype=F32)).unsqueeze(0), 5,
                      dim=-1).indices[0].tolist()


# ----------------------------------------------------------------------------------------------
# The 20 series
# ----------------------------------------------------------------------------------------------

def make_series():
    rng = np.random.default_rng(SEED)
    lengths = [int(v) for v in rng.integers(24, 97, size=20)]

    def even(t):
        return t if t % 2 == 0 else t + 1 if t < 96 else t - 1

    def odd(t):
        return t if t % 2 == 1 else t + 1

    def airline(t, phase):
        k = np.arange(t)
        level = 120 + 2.4 * k + 0.004 * k * k
        season = 1 + 0.18 * np.sin(2 * np.pi * (k + phase) / 12) + 0.08 * np.cos(4 * np.pi * (k + phase) / 12)
        return np.round(level * season + rng.normal(0, 4, t))

    def equal_ends(t, want_upward):
        # first candidate (of a seeded stream) whose ends are equal and whose float32 diff-sum
        # is > 0 (want_upward) or <= 0
        while True:
            x = (rng.normal(0, 1, t) * 10 ** rng.uniform(-2, 2, t)).astype(F32)
            x[-1] = x[0]
            rows = torch.from_numpy(ref.revin(x)[0].numpy()).reshape(1, t, 1)
            s = rows.diff(dim=1).sum(dim=1).item()
            if (s > 0) == want_upward:
                return x

    def constant_inexact(t):
        for c in (0.1, 0.3, 0.7, 1.1, 2.2):
            x = np.full(t, c, dtype=F32)
            if float(ref.revin(x)[1]) != float(x[0]):
                return x
        raise AssertionError("no constant with an inexact mean")

    specs = [
        ("constant_5", "constant 5.0: exact mean, normalized all zero, lags = topk tie order",
         lambda t: np.full(t, 5.0)),
        ("constant_inexact", "constant c, the first of 0.1, 0.3, 0.7, ... whose float32 mean is not c: "
         "normalized = a tiny nonzero constant", constant_inexact),
        ("alternating", "2, -1, 2, -1, ... (even length): exact ties at every even lag, lag 0 included",
         lambda t: np.tile([2.0, -1.0], t // 2)),
        ("negative", "all values negative (a random walk around -100)",
         lambda t: -100 + np.cumsum(rng.normal(0, 1.5, t))),
        ("increasing", "strictly increasing",
         lambda t: 3.0 + np.cumsum(rng.uniform(0.05, 2.0, t))),
        ("huge_tiny", "magnitudes 1e6 and 1e-6 mixed",
         lambda t: np.where(rng.uniform(size=t) < 0.5, 1e6 * (1 + 0.1 * rng.normal(size=t)), 1e-6 * rng.uniform(size=t))),
        ("airline_even", "monthly passengers (trend x season + noise), even length",
         lambda t: airline(t, 0)),
        ("noise_odd", "Gaussian noise, odd length (irfft gives T - 1 lags)",
         lambda t: rng.normal(0, 1, t)),
        ("equal_ends_upward", "x[-1] == x[0] but the float32 diff-sum is > 0: trend 'upward'",
         lambda t: equal_ends(t, True)),
        ("equal_ends_downward", "x[-1] == x[0], float32 diff-sum <= 0",
         lambda t: equal_ends(t, False)),
        ("sine_period8", "sin(2 pi t / 8) + 0.5",
         lambda t: 0.5 + np.sin(2 * np.pi * np.arange(t) / 8)),
        ("integers_repeated", "small integers with many repeats (median ties)",
         lambda t: rng.integers(-3, 4, t).astype(np.float64)),
        ("random_walk", "random walk",
         lambda t: np.cumsum(rng.normal(0, 1, t))),
        ("decreasing_noisy", "downward trend with noise",
         lambda t: 50 - 0.7 * np.arange(t) + rng.normal(0, 2, t)),
        ("airline_odd", "monthly passengers, odd length, other phase",
         lambda t: airline(t, 5)),
        ("sensor", "offset 20, small noise, a level shift half way",
         lambda t: 20 + 0.05 * rng.normal(size=t) + (np.arange(t) >= t // 2) * 0.8),
        ("large_offset", "1e5 offset with unit noise (mean and std rounding)",
         lambda t: 1e5 + rng.normal(0, 1, t)),
        ("tiny_scale", "values around 1e-4",
         lambda t: 1e-4 * rng.normal(1, 0.3, t)),
        ("uniform", "uniform in [-1, 1]",
         lambda t: rng.uniform(-1, 1, t)),
        ("seasonal_period5", "period 5 pattern with noise",
         lambda t: np.tile([1.0, 3.0, 2.0, -1.0, 0.5], t // 5 + 1)[:t] + rng.normal(0, 0.2, t)),
    ]
    parity = {"alternating": even, "airline_even": even, "noise_odd": odd, "airline_odd": odd}
    out = []
    for (name, note, build), t in zip(specs, lengths):
        t = parity.get(name, lambda v: v)(t)
        x = np.asarray(build(t), dtype=F32)
        out.append((name, note, x))
    return out


def series_record(name, note, x):
    t = len(x)
    x_norm, mean, std = ref.revin(x)
    stats = ref.prompt_statistics(x_norm)
    text = ref.prompt_text(DESCRIPTION, PRED_LEN, t, stats)
    lags_exact = torch_top5(exact_autocorrelation(x_norm.numpy()))
    exact_stats = dict(stats, lags=lags_exact, lags_str=str(lags_exact))
    checks = {
        "strictly_increasing": bool(np.all(np.diff(x) > 0)),
        "ends_equal": bool(x[-1] == x[0]),
    }
    return {
        "name": name,
        "note": note,
        "length": t,
        "values": f32list(x),
        "mean": float(mean),
        "std": float(std),
        "normalized": f32list(x_norm.numpy()),
        "min": stats["min_str"],
        "max": stats["max_str"],
        "median": stats["median_str"],
        "trend_sum": stats["trend"],
        "upward": stats["upward"],
        "lags": stats["lags"],
        "lags_exact": lags_exact,
        "lags_rounding_dependent": stats["lags"] != lags_exact,
        "checks": checks,
        "prompt": text,
        "prompt_exact": ref.prompt_text(DESCRIPTION, PRED_LEN, t, exact_stats),
    }


# ----------------------------------------------------------------------------------------------
# RevIN of long and multichannel inputs
# ----------------------------------------------------------------------------------------------

def normalize_cases():
    rng = np.random.default_rng(SEED + 1)
    shapes = [(3, 1), (7, 1), (700, 1), (1500, 1), (2048, 1), (37, 2), (96, 3), (50, 4), (61, 5),
              (40, 7), (128, 8), (90, 9), (64, 33)]
    cases = []
    for t, n in shapes:
        x = (rng.normal(0, 1, (t, n)) * 10 ** rng.uniform(-2, 2, (t, n)) + rng.uniform(-1e3, 1e3, n)).astype(F32)
        batch = torch.from_numpy(x).unsqueeze(0)                 # (1, T, N)
        x_norm, mean, std = ref.revin(batch)
        rows = x_norm.permute(0, 2, 1).contiguous().reshape(n, t, 1)   # as upstream
        trend = rows.diff(dim=1).sum(dim=1)[:, 0] if t > 1 else torch.zeros(n)
        cases.append({
            "length": t,
            "channels": [f32list(x[:, c]) for c in range(n)],
            "mean": f32list(mean[0, 0].numpy()),
            "std": f32list(std[0, 0].numpy()),
            "normalized": [f32list(x_norm[0, :, c].numpy()) for c in range(n)],
            "trend_sum": f32list(trend.numpy()),
        })
    return cases


# ----------------------------------------------------------------------------------------------
# torch.topk tie order, Python str()
# ----------------------------------------------------------------------------------------------

def topk_cases():
    rng = np.random.default_rng(SEED + 2)
    sizes = [5, 6, 7, 8, 12, 16, 17, 24, 31, 36, 40, 47, 64, 95, 96, 128, 200, 318, 319, 320, 321,
             400, 512, 777, 1024, 2048]
    cases = []
    for i in range(160):
        n = sizes[i % len(sizes)]
        kind = (i // len(sizes)) % 6
        if kind == 0:
            v = np.zeros(n)
        elif kind == 1:
            v = rng.integers(0, 2, n).astype(np.float64)
        elif kind == 2:
            v = rng.integers(0, 4, n).astype(np.float64)
        elif kind == 3:   # mirrored like an autocorrelation: v[k] == v[n-k]
            h = np.round(rng.normal(0, 1, n // 2 + 1), 1)
            v = np.concatenate([h, h[1:(n + 1) // 2][::-1]])[:n]
        elif kind == 4:
            v = rng.normal(0, 1, n)
            v[rng.integers(0, n, n // 3)] = v.max()
        else:
            v = np.round(rng.normal(0, 1, n), 0)
        v = v.astype(F32)
        cases.append({"values": f32list(v), "top5": torch_top5(v)})
    return cases


def pystr_cases():
    rng = np.random.default_rng(SEED + 3)
    special = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.0, -1.0, 3.0, 0.1, 0.5,
               1e-5, 1e-4, 9.99e-5, 0.001, 1e16, 1e15, 9.999999e15, 1.5e16, 123456789.0,
               16777216.0, 16777217.0, 3.4028234663852886e38, 1.1754943508222875e-38, 1e-45,
               1.401298464324817e-45, 2.5e-40, -2.42508602142334, 100.0, 1e7, 1e17, 1e-7, 0.0001,
               0.00012345, 9.5367431640625e-07, 65504.0, 1e10, 2.0 ** 60, 2.0 ** -20]
    vals = np.array(special, dtype=F32)
    bits = rng.integers(0, 2 ** 32, 3000, dtype=np.uint64).astype(np.uint32)
    randbits = bits.view(F32)
    decades = (rng.uniform(1, 10, 1500) * 10.0 ** rng.integers(-12, 22, 1500)
               * rng.choice([-1, 1], 1500)).astype(F32)
    ints = rng.integers(-10 ** 8, 10 ** 8, 300).astype(F32)
    cases = []
    for v in np.concatenate([vals, randbits, decades, ints]):
        b = int(np.array(v, dtype=F32).view(np.uint32))
        cases.append([f"{b:08x}", str(float(v))])
    return cases


def sqrt_cases():
    """torch.sqrt of float32 values (RevIN's std = sqrt(var + 1e-5)) as bit patterns."""
    rng = np.random.default_rng(SEED + 4)
    x = np.concatenate([
        rng.uniform(1e-5, 4, 1500),
        rng.uniform(1, 10, 1500) * 10.0 ** rng.integers(-37, 38, 1500),
        rng.integers(0x00800000, 0x7f800000, 1000).astype(np.uint32).view(F32).astype(np.float64),
        [0.0, 1e-40, 1e-45, 1.0, 4.0, 1e-5, 3.4028234663852886e38, 3.4e38],
    ]).astype(F32)
    y = torch.sqrt(torch.from_numpy(x)).numpy()
    ieee = np.sqrt(x)
    flavour = "ieee" if np.array_equal(y.view(np.uint32), ieee.view(np.uint32)) else "non-ieee"
    cases = [[f"{int(a):08x}", f"{int(b):08x}"] for a, b in zip(x.view(np.uint32), y.view(np.uint32))]
    return flavour, int((y != ieee).sum()), cases


def dump(path, obj, indent=1):
    with open(path, "w") as f:
        if indent is None:
            json.dump(obj, f, separators=(",", ":"), allow_nan=False)
        else:
            json.dump(obj, f, indent=indent, allow_nan=False)
        f.write("\n")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    series = [series_record(*s) for s in make_series()]
    names = {s["name"]: s for s in series}
    assert names["constant_inexact"]["normalized"][0] != 0.0
    assert names["constant_5"]["normalized"] == [0.0] * names["constant_5"]["length"]
    assert names["increasing"]["checks"]["strictly_increasing"]
    assert names["equal_ends_upward"]["checks"]["ends_equal"] and names["equal_ends_upward"]["upward"]
    assert names["equal_ends_downward"]["checks"]["ends_equal"]
    assert names["negative"]["values"] and max(names["negative"]["values"]) < 0
    assert names["airline_even"]["length"] % 2 == 0 and names["noise_odd"]["length"] % 2 == 1
    flavour, differing, sqrt_pairs = sqrt_cases()
    info = {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": torch.backends.mkl.is_available(),
        "cpu": cpu_name(),
        # "non-ieee": torch.sqrt is MKL VML's generic x86 kernel (AMD CPUs; TimeLLMPrompt's
        # SquareRoot.mklGenericAMD), "ieee": correctly rounded (SquareRoot.ieee)
        "sqrt": flavour,
    }
    dump(os.path.join(OUT, "prompts.json"), {
        "generator": "tools/make_timellm_fixtures.py", **info,
        "description": DESCRIPTION, "pred_len": PRED_LEN, "series": series,
    })
    dump(os.path.join(OUT, "normalize.json"), {"generator": "tools/make_timellm_fixtures.py", **info,
                                               "cases": normalize_cases()}, indent=None)
    dump(os.path.join(OUT, "topk.json"), {"generator": "tools/make_timellm_fixtures.py", **info,
                                          "cases": topk_cases()}, indent=None)
    dump(os.path.join(OUT, "sqrt.json"), {"generator": "tools/make_timellm_fixtures.py", **info,
                                          "differing_from_ieee": differing, "cases": sqrt_pairs}, indent=None)
    dump(os.path.join(OUT, "pystr.json"), {"generator": "tools/make_timellm_fixtures.py",
                                           "cases": pystr_cases()}, indent=None)
    dependent = [s["name"] for s in series if s["lags_rounding_dependent"]]
    print(f"wrote {OUT}: {len(series)} series; lag order rounding dependent in {len(dependent)}: {dependent}")
    for s in series:
        print(f"  {s['name']:20s} T={s['length']:3d} {s['min']:>24s} {s['median']:>24s} "
              f"{'up' if s['upward'] else 'down':4s} {s['lags']} exact {s['lags_exact']}")


if __name__ == "__main__":
    main()
