#!/usr/bin/env python3
"""Trained LSTM forecasting demo on the monthly airline passengers series (demo/forecast/).

    python3 -m pip install -r tools/requirements.txt     # torch (CPU), numpy, statsmodels
    python3 tools/train_forecast_demo.py                 # train, evaluate, write demo/forecast/
    python3 tools/train_forecast_demo.py --eval-only     # re-evaluate the committed model.pt

Data: `aeon/datasets/data/Airline/Airline.csv` from the aeon==1.6.0 wheel (BSD-3), fetched with
`pip download --no-deps` and sha256-checked by tools/basicmotions.py's fetch_wheel() (aeon itself
is never installed); only that one CSV is read from the wheel. Box & Jenkins series G: monthly
totals of international airline passengers (thousands), 1949-01 .. 1960-12, 144 months.

Split (month indices 0..143):
  training part   months 0..119 (1949-01 .. 1958-12); the model never sees later months in
                  training, the scaling statistics come from it too
    fit windows   forecast origins s = 24..84: history y[s-24:s], targets y[s:s+12] (targets end
                  by month 95, 1956-12); 61 windows
    validation    origins s = 96..108 (targets inside months 96..119, 1957-1958); 13 windows,
                  used only for early stopping
  test            months 120..143 (1959-1960): two non-overlapping 12-month windows, origins 120
                  and 132, each forecast from the 24 months before it (for window 2 those include
                  the true 1959 values, as a deployed forecaster would have them)

Model: LSTMForecaster(C 1, H 32, N 2, T 12, O 1, W 24, batch_first true) from
tools/lstm_reference.py; input and output scaling (x - mean) / std with the mean and population
std of the training part (the only preprocessing the runtime does; no log, no differencing: the
model forecasts levels).

Recipe (chosen on the validation windows only: H 16/32, N 1/2, with and without the scale
augmentation, factor ranges 0.8-1.5 / 0.7-2.0 / 0.6-2.5; the test period was not used):
  seed 0 (torch.manual_seed for nn.LSTM / nn.Linear's default init, numpy default_rng for the
  augmentation), 1 torch thread; Adam lr 3e-3, full batch (all 61 fit windows per step), MSE on
  the scaled values; scale augmentation: each epoch every fit window (history and targets
  together) is multiplied by its own factor exp(U(log 0.7, log 2.0)). The series grows (1959-60
  lie above anything in the training part), so without it the LSTM cannot extrapolate the level
  (validation MAE about 37 instead of about 25 for this size). Early stopping: validation MAE in
  passengers after every epoch, keep the best, stop 300 epochs after it (at most 3000).
  The best-validation weights are the model (no refit on the validation windows).

Baselines on the same windows:
  seasonal_naive   y_hat[origin + h] = y[origin - 12 + h]
  ets              statsmodels ExponentialSmoothing(additive trend, multiplicative seasonality,
                   period 12, no damping, initialization "estimated"), refit on ALL months before
                   each origin (0..119 for window 1, 0..131 for window 2)

Metrics (over the 12 points of each window, and over all 24 test points):
  MAE, RMSE, sMAPE = mean(200 |y - y_hat| / (|y| + |y_hat|)) in %, MASE = MAE / (in-sample
  seasonal-naive MAE of the training part: mean |y[t] - y[t-12]| for t = 12..119).

Output, demo/forecast/: model.pt + forecast.json (the upstream LSTM checkpoint layout),
airline.csv (column `passengers`, all 144 months), test_windows.json, results.json. The LSTM
forecasts written there come from the saved files, reloaded (lstm_reference.load/forecast), in
float32. Re-runs on the same machine give byte-identical files; the measured training time is
printed (it is not written to the files).
"""
import argparse
import csv
import io
import json
import math
import os
import sys
import time
import warnings
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import basicmotions  # noqa: E402  (fetch_wheel: the pinned, sha256-checked aeon wheel)
import lstm_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo", "forecast")
AIRLINE_MEMBER = "aeon/datasets/data/Airline/Airline.csv"

WINDOW, HORIZON, SEASON = 24, 12, 12
TRAIN_END = 120                      # months 0..119 are the training part
FIT_ORIGINS = range(24, 85)          # targets end by month 95
VAL_ORIGINS = range(96, 109)         # targets inside months 96..119
TEST_ORIGINS = (120, 132)
HIDDEN, LAYERS = 32, 2
SEED, LR, MAX_EPOCHS, PATIENCE = 0, 3e-3, 3000, 300
AUG_RANGE = (0.7, 2.0)
CHANNEL = "passengers"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def load_airline():
    """Returns (months ["1949-01", ...], passengers float64 [144]) from the pinned aeon wheel."""
    with zipfile.ZipFile(basicmotions.fetch_wheel()) as z:
        text = z.read(AIRLINE_MEMBER).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if rows[0] != ["Date", "Passengers"] or len(rows) != 145:
        raise RuntimeError(f"unexpected {AIRLINE_MEMBER}: header {rows[0]}, {len(rows) - 1} rows")
    months = [r[0] for r in rows[1:]]
    y = np.array([float(r[1]) for r in rows[1:]], dtype=np.float64)
    if months[0] != "1949-01" or months[-1] != "1960-12":
        raise RuntimeError(f"unexpected months {months[0]} .. {months[-1]}")
    return months, y


def windows(y, origins):
    x = np.stack([y[s - WINDOW:s] for s in origins])
    t = np.stack([y[s:s + HORIZON] for s in origins])
    return x, t


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def sidecar_for(y):
    part = y[:TRAIN_END]
    mean, std = float(part.mean()), float(part.std())
    return ref.make_sidecar(WINDOW, HORIZON, [CHANNEL], [CHANNEL], [mean], [std], [mean], [std],
                            batch_first=True)


def train(y, sidecar, log=print):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = ref.LSTMForecaster(1, HIDDEN, LAYERS, HORIZON, 1, batch_first=True)
    mean = np.float32(sidecar["input_mean"][0])
    std = np.float32(sidecar["input_std"][0])

    def scaled(a):
        return torch.from_numpy(((a.astype(np.float32) - mean) / std)[..., None])

    x_fit, t_fit = windows(y, FIT_ORIGINS)
    x_val, t_val = windows(y, VAL_ORIGINS)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    lo, hi = math.log(AUG_RANGE[0]), math.log(AUG_RANGE[1])
    best_mae, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, MAX_EPOCHS + 1):
        model.train()
        factor = np.exp(rng.uniform(lo, hi, size=(len(x_fit), 1)))
        pred, _ = model(scaled(x_fit * factor))
        loss = ((pred - scaled(t_fit * factor)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pv, _ = model(scaled(x_val))
        pv = pv[..., 0].numpy().astype(np.float64) * float(std) + float(mean)
        mae = float(np.abs(pv - t_val).mean())
        if mae < best_mae:
            best_mae, best_epoch = mae, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= PATIENCE:
            break
        if epoch % 250 == 0:
            log(f"epoch {epoch:4d}  train loss {loss.item():.4f}  val MAE {mae:7.2f}  "
                f"(best {best_mae:.2f} at {best_epoch})")
    model.load_state_dict(best_state)
    model.eval()
    return model, {"best_epoch": best_epoch, "epochs_run": epoch, "validation_mae": round(best_mae, 4)}


# --------------------------------------------------------------------------------------------
# Baselines and metrics
# --------------------------------------------------------------------------------------------

def seasonal_naive(y, origin):
    return y[origin - SEASON:origin - SEASON + HORIZON].copy()


def ets(y, origin):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a convergence warning would make the baseline suspect
        fit = ExponentialSmoothing(y[:origin], trend="add", seasonal="mul", seasonal_periods=SEASON,
                                   initialization_method="estimated").fit()
    return np.asarray(fit.forecast(HORIZON), dtype=np.float64)


def metrics(truth, pred, scale):
    truth, pred = np.asarray(truth, np.float64), np.asarray(pred, np.float64)
    err = truth - pred
    mae = float(np.abs(err).mean())
    return {
        "mae": round(mae, 4),
        "rmse": round(float(np.sqrt((err ** 2).mean())), 4),
        "smape": round(float((200.0 * np.abs(err) / (np.abs(truth) + np.abs(pred))).mean()), 4),
        "mase": round(mae / scale, 4),
    }


def mase_scale(y):
    part = y[:TRAIN_END]
    return float(np.abs(part[SEASON:] - part[:-SEASON]).mean())


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def write_csv(path, y):
    tmp = path + ".tmp-w"
    with open(tmp, "w", newline="") as f:
        f.write(CHANNEL + "\n")
        for v in y:
            f.write(f"{int(v)}\n")
    os.replace(tmp, path)


def read_csv(path):
    with open(path) as f:
        lines = f.read().split()
    if lines[0] != CHANNEL:
        raise RuntimeError(f"{path}: header {lines[0]!r}")
    return np.array([float(v) for v in lines[1:]], dtype=np.float64)


def evaluate(out, months, training_info):
    """Reloads the checkpoint and the CSV from `out`, forecasts every test window with the three
    models, writes test_windows.json and results.json, returns the results dict."""
    y = read_csv(os.path.join(out, "airline.csv"))
    model, sidecar = ref.load(out)
    scale = mase_scale(y)
    names = ("lstm", "ets", "seasonal_naive")
    windows_out, preds = [], {n: [] for n in names}
    for origin in TEST_ORIGINS:
        hist = y[origin - WINDOW:origin]
        truth = y[origin:origin + HORIZON]
        f = {
            "lstm": ref.f32_list(ref.forecast_history(model, sidecar, hist[:, None])["forecast"][:, 0]),
            "ets": [round(float(v), 6) for v in ets(y, origin)],
            "seasonal_naive": [float(v) for v in seasonal_naive(y, origin)],
        }
        for n in names:
            preds[n].append(f[n])
        windows_out.append({
            "history_start": origin - WINDOW,
            "history_months": f"{months[origin - WINDOW]} .. {months[origin - 1]}",
            "forecast_start": origin,
            "forecast_months": f"{months[origin]} .. {months[origin + HORIZON - 1]}",
            "history": [float(v) for v in hist],
            "truth": [float(v) for v in truth],
            "forecasts": f,
        })
    table = {}
    for n in names:
        table[n] = {
            "all": metrics(y[TEST_ORIGINS[0]:TEST_ORIGINS[-1] + HORIZON], np.concatenate(preds[n]), scale),
            "windows": [metrics(y[o:o + HORIZON], p, scale) for o, p in zip(TEST_ORIGINS, preds[n])],
        }
    ref.write_json(os.path.join(out, "test_windows.json"), {
        "series": "airline passengers (thousands), monthly, 1949-01 .. 1960-12; index 0 = 1949-01",
        "window": WINDOW, "horizon": HORIZON,
        "windows": windows_out,
    })
    results = {
        "test_months": f"{months[TEST_ORIGINS[0]]} .. {months[-1]}",
        "metric_notes": "MAE/RMSE in thousands of passengers; sMAPE in %; MASE scaled by the in-sample "
                        "seasonal-naive (m = 12) MAE of months 0..119",
        "mase_scale": round(scale, 4),
        "models": {
            "lstm": "LSTMForecaster H 32, N 2, W 24, T 12 (model.pt), float32",
            "ets": "statsmodels ExponentialSmoothing additive trend, multiplicative seasonality (m 12), "
                   "refit on all months before each origin",
            "seasonal_naive": "last year's value of the same month",
        },
        "metrics": table,
        "training": training_info,
    }
    ref.write_json(os.path.join(out, "results.json"), results)
    return results


def print_table(results):
    print("| model | MAE | RMSE | sMAPE % | MASE | MAE window 1 | MAE window 2 |")
    print("|---|---|---|---|---|---|---|")
    for n, m in results["metrics"].items():
        a = m["all"]
        w = [x["mae"] for x in m["windows"]]
        print(f"| {n} | {a['mae']:.2f} | {a['rmse']:.2f} | {a['smape']:.2f} | {a['mase']:.3f} | "
              f"{w[0]:.2f} | {w[1]:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--eval-only", action="store_true", help="re-evaluate the committed model")
    args = ap.parse_args()
    torch.set_num_threads(1)
    months, y = load_airline()
    os.makedirs(args.out, exist_ok=True)
    if args.eval_only:
        with open(os.path.join(args.out, "results.json")) as f:
            training_info = json.load(f)["training"]
        if not np.array_equal(read_csv(os.path.join(args.out, "airline.csv")), y):
            raise RuntimeError("airline.csv differs from the wheel's Airline.csv")
    else:
        sidecar = sidecar_for(y)
        t0 = time.time()
        model, info = train(y, sidecar)
        seconds = time.time() - t0
        print(f"training: {info['epochs_run']} epochs, best validation MAE {info['validation_mae']:.2f} "
              f"at epoch {info['best_epoch']}, {seconds:.1f} s on {torch.get_num_threads()} thread(s)")
        training_info = dict(info, seed=SEED, hidden=HIDDEN, layers=LAYERS, lr=LR, max_epochs=MAX_EPOCHS,
                             patience=PATIENCE, augmentation_factor_range=list(AUG_RANGE),
                             fit_windows=len(FIT_ORIGINS), validation_windows=len(VAL_ORIGINS),
                             torch=torch.__version__.split("+")[0])
        ref.save(model, sidecar, args.out)
        write_csv(os.path.join(args.out, "airline.csv"), y)
    results = evaluate(args.out, months, training_info)
    print_table(results)


if __name__ == "__main__":
    main()
