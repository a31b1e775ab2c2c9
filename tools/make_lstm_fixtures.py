#!/usr/bin/env python3
"""Golden fixtures for the LSTM forecaster family (model code: tools/lstm_reference.py).

    python3 -m pip install -r tools/requirements.txt
    python3 tools/make_lstm_fixtures.py

Deterministic (byte-identical output on re-runs): CPU, float32, one thread, seeded weights and
series. About 2 s.

Output: Tests/TSLMRuntimeTests/Fixtures/lstm/<case>/ with
  model.pt        torch.save(model.state_dict()) in the upstream layout (lstm.* + head.*)
  forecast.json   the sidecar (window, horizon, channel names, scaling, batch_first)
  golden.json     inputs and reference outputs (keys below)

Cases (random weights from lstm_reference.init_weights; gains and forget-gate bias chosen so
that the start of the window still moves the forecast, see checks):
  one_layer_univariate    C 1, H 16, N 1, T 6, O 1, W 24, batch_first true,  biases
                          (LSTM gain 2, head gain 1.5, forget bias +1)
  two_layer_multivariate  C 3, H 12, N 2, T 4, O 3, W 16, batch_first false, NO LSTM biases
                          (LSTM gain 3, head gain 2)
  four_layer_two_outputs  C 2, H 8,  N 4, T 5, O 2, W 10, batch_first true,  biases; the two
                          outputs are other quantities than the inputs (own means/stds)
                          (LSTM gain 2, head gain 1.5, forget bias +1.5)

golden.json keys:
  case, window (W), horizon (T), layers (N), hidden (H), input_channel_count (C),
  output_channel_count (O), batch_first, bias
  history          [C][W + 7] raw float32 values, channel-major: the runtime must use the LAST W
                   steps (history_steps says how many there are)
  forecast         [O][T] expected forecast in raw units (channel-major)
  forecast_scaled  [O][T] the head output before de-scaling
  last_hidden      [H] h_T of the last layer (scaled space)
  layer_hidden     [N][H] h_T of every layer, first layer first
  window_scaled_first_step / window_scaled_last_step   [C] scaled inputs at window steps 0, W-1
  checks           numpy_float64_max_abs_diff (nn.LSTM float32 vs lstm_numpy float64, h_T of
                   every layer); in scaled output units (forecast_scaled):
                   full_history_max_abs_diff (the change if all W+7 steps were fed instead of the
                   last W: the cut matters, >= 1e-2), first_step_max_abs_diff (the change when
                   window step 0 of every channel moves by one input std: the whole window is
                   used, >= 1e-4)
  versions         torch, numpy
Floats are float32 values written with the shortest decimal that round-trips.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstm_reference as ref  # noqa: E402

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TSLMRuntimeTests", "Fixtures", "lstm")
EXTRA_STEPS = 7

CASES = [
    dict(name="one_layer_univariate", seed=3101, lstm_gain=2.0, head_gain=1.5, forget_bias=1.0, C=1, H=16, N=1, T=6, W=24, batch_first=True, bias=True,
         channels=["load_kw"], input_mean=[42.7], input_std=[6.3],
         output_channels=["load_kw"], output_mean=[42.7], output_std=[6.3]),
    dict(name="two_layer_multivariate", seed=3201, lstm_gain=3.0, head_gain=2.0, forget_bias=0.0, C=3, H=12, N=2, T=4, W=16, batch_first=False, bias=False,
         channels=["temperature_c", "humidity_pct", "pressure_hpa"],
         input_mean=[21.4, 55.2, 1012.8], input_std=[3.1, 12.7, 4.6],
         output_channels=["temperature_c", "humidity_pct", "pressure_hpa"],
         output_mean=[21.4, 55.2, 1012.8], output_std=[3.1, 12.7, 4.6]),
    dict(name="four_layer_two_outputs", seed=3301, lstm_gain=2.0, head_gain=1.5, forget_bias=1.5, C=2, H=8, N=4, T=5, W=10, batch_first=True, bias=True,
         channels=["flow_m3h", "valve_pct"], input_mean=[310.5, 47.25], input_std=[22.8, 9.6],
         output_channels=["pressure_bar", "temperature_c"],
         output_mean=[4.35, 61.2], output_std=[0.42, 3.7]),
]


def make_history(seed, steps, means, stds):
    """[steps, C] raw float32: per channel mean + std * (sine of its own period and phase + a
    slow drift + noise), so the scaled values are of order 1."""
    g = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    cols = []
    for mean, std in zip(means, stds):
        period = g.uniform(5.0, 13.0)
        phase = g.uniform(0.0, 2.0 * np.pi)
        drift = g.uniform(-0.04, 0.04)
        z = 1.2 * np.sin(2.0 * np.pi * t / period + phase) + drift * t + 0.3 * g.standard_normal(steps)
        cols.append(mean + std * z)
    return np.asarray(cols, dtype=np.float32).T


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def make_case(case):
    folder = os.path.join(OUT, case["name"])
    model = ref.LSTMForecaster(case["C"], case["H"], case["N"], case["T"], len(case["output_channels"]),
                               case["batch_first"], bias=case["bias"])
    ref.init_weights(model, case["seed"], lstm_gain=case["lstm_gain"], head_gain=case["head_gain"],
                     forget_bias=case["forget_bias"])
    model.eval()
    sidecar = ref.make_sidecar(case["W"], case["T"], case["channels"], case["output_channels"],
                               case["input_mean"], case["input_std"], case["output_mean"],
                               case["output_std"], case["batch_first"])
    ref.save(model, sidecar, folder)

    # Everything below is computed from the files just written, as a runtime would see them.
    model, sidecar = ref.load(folder)
    steps = case["W"] + EXTRA_STEPS
    history = make_history(case["seed"] + 1, steps, case["input_mean"], case["input_std"])
    r = ref.forecast_history(model, sidecar, history)

    state = model.state_dict()
    h64 = ref.lstm_numpy(state, r["window_scaled"], case["N"], case["H"])
    np_diff = float(np.abs(h64 - r["layer_hidden"].astype(np.float64)).max())
    if np_diff > 1e-5:
        raise RuntimeError(f"{case['name']}: nn.LSTM and the float64 equations differ by {np_diff}")

    # The same model over the whole history (no cut) must differ clearly, and so must the
    # forecast after moving the window's first step by one std.
    r_full = ref.forecast(model, dict(sidecar, window=steps), history)
    full_diff = float(np.abs(r_full["forecast_scaled"] - r["forecast_scaled"]).max())
    moved = history.copy()
    moved[-case["W"]] += np.asarray(case["input_std"], dtype=np.float32)
    first_diff = float(np.abs(ref.forecast_history(model, sidecar, moved)["forecast_scaled"]
                              - r["forecast_scaled"]).max())
    if full_diff < 1e-2 or first_diff < 1e-4:
        raise RuntimeError(f"{case['name']}: the window start barely matters ({full_diff}, {first_diff})")

    golden = {
        "case": case["name"],
        "window": case["W"],
        "horizon": case["T"],
        "layers": case["N"],
        "hidden": case["H"],
        "input_channel_count": case["C"],
        "output_channel_count": len(case["output_channels"]),
        "batch_first": case["batch_first"],
        "bias": case["bias"],
        "history_steps": steps,
        "history": [ref.f32_list(history[:, c]) for c in range(case["C"])],
        "forecast": [ref.f32_list(r["forecast"][:, o]) for o in range(r["forecast"].shape[1])],
        "forecast_scaled": [ref.f32_list(r["forecast_scaled"][:, o]) for o in range(r["forecast"].shape[1])],
        "last_hidden": ref.f32_list(r["last_hidden"]),
        "layer_hidden": [ref.f32_list(h) for h in r["layer_hidden"]],
        "window_scaled_first_step": ref.f32_list(r["window_scaled"][0]),
        "window_scaled_last_step": ref.f32_list(r["window_scaled"][-1]),
        "checks": {
            "numpy_float64_max_abs_diff": float(f"{np_diff:.3g}"),
            "full_history_max_abs_diff": float(f"{full_diff:.4g}"),
            "first_step_max_abs_diff": float(f"{first_diff:.4g}"),
        },
        "versions": {"torch": torch.__version__.split("+")[0], "numpy": np.__version__},
    }
    ref.write_json(os.path.join(folder, "golden.json"), golden)
    size = folder_size(folder)
    if size >= 100 * 1024:
        raise RuntimeError(f"{folder} is {size} bytes (limit 100 KB)")
    f = r["forecast"]
    print(f"{case['name']:24s} {size / 1024:6.1f} KB  keys {len(state):2d}  forecast [{f.min():.4f}, "
          f"{f.max():.4f}]  |h_T| max {np.abs(r['last_hidden']).max():.3f}  "
          f"numpy diff {np_diff:.1e}  full-history {full_diff:.4f}  first-step {first_diff:.5f}")


def main():
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        make_case(case)


if __name__ == "__main__":
    main()
