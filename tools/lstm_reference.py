"""PyTorch reference for the LSTM forecaster family (issue 10, "LSTM forecaster").

Model
    LSTMForecaster(input_channels C, hidden H, layers N (1..4), horizon T, output_channels O,
                   batch_first, bias=True, dropout=0.0)
      lstm = nn.LSTM(C, H, num_layers=N, batch_first=batch_first, bias=bias, dropout=dropout)
      head = nn.Linear(H, T * O)            (always with a bias)
    Dropout only acts between LSTM layers during training; inference ignores it (eval mode).

Inference on one history window x of shape [W, C] in raw units (`forecast`):
    1. x'[t, c] = (x[t, c] - input_mean[c]) / input_std[c]                 (float32)
    2. run the LSTM from zero hidden and cell state over the W steps, oldest first
    3. h_T = the LAST layer's hidden state after the LAST step              ([H])
    4. y' = head(h_T) = head.weight @ h_T + head.bias, reshaped [T, O] row-major: element
       (t, o) is y'[t * O + o] (step-major, output channel fastest)
    5. y[t, o] = y'[t, o] * output_std[o] + output_mean[o]                  (float32)
    A longer history is cut to its LAST W steps (`forecast_history`).

LSTM cell (PyTorch's nn.LSTM, per layer k, input x_t of width in_k = C for k = 0 else H):
    gates = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        ([4H]; biases absent when bias=False)
    i, f, g, o = gates[0:H], gates[H:2H], gates[2H:3H], gates[3H:4H]    (this row order)
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)
    The input of layer k+1 at step t is h_t of layer k. `lstm_numpy` spells this out in float64
    and the fixture generator checks nn.LSTM against it.

Checkpoint ("upstream" layout), one folder:
    model.pt        torch.save(model.state_dict()): lstm.weight_ih_l{k} [4H, in_k],
                    lstm.weight_hh_l{k} [4H, H], lstm.bias_ih_l{k} [4H], lstm.bias_hh_l{k} [4H]
                    (the two biases absent when bias=False), head.weight [T*O, H], head.bias [T*O]
    forecast.json   {"window": W, "horizon": T, "channels": [C input names],
                     "output_channels": [O output names], "input_mean": [C], "input_std": [C],
                     "output_mean": [O], "output_std": [O], "batch_first": bool}
    C, H, N and T*O (and whether the LSTM has biases) are read from the tensor shapes and names;
    T and O from the sidecar (T * O must equal head.weight's rows). batch_first only changes the
    layout of the input tensor PyTorch expects ([1, W, C] vs [W, 1, C]); the weights and the
    result are the same either way.

Everything here is float32 on CPU (the scaling included); nothing draws random numbers except
`init_weights`, which takes an explicit seed.
"""
import json
import math
import os
import tempfile

import numpy as np
import torch
from torch import nn

MODEL_FILE = "model.pt"
SIDECAR_FILE = "forecast.json"
SIDECAR_KEYS = ("window", "horizon", "channels", "output_channels", "input_mean", "input_std",
                "output_mean", "output_std", "batch_first")


class LSTMForecaster(nn.Module):
    def __init__(self, input_channels, hidden, layers, horizon, output_channels, batch_first,
                 bias=True, dropout=0.0):
        super().__init__()
        if not 1 <= layers <= 4:
            raise ValueError(f"layers must be 1..4, got {layers}")
        self.input_channels = input_channels
        self.hidden = hidden
        self.layers = layers
        self.horizon = horizon
        self.output_channels = output_channels
        self.batch_first = batch_first
        self.lstm = nn.LSTM(input_channels, hidden, num_layers=layers, batch_first=batch_first,
                            bias=bias, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon * output_channels)

    def forward(self, x_scaled):
        """x_scaled: [B, W, C] (always batch-major here, whatever batch_first says).
        Returns (y_scaled [B, T, O], h_last [N, B, H])."""
        x = x_scaled if self.batch_first else x_scaled.transpose(0, 1)
        _out, (h_n, _c_n) = self.lstm(x)   # zero initial state
        y = self.head(h_n[-1])
        return y.reshape(-1, self.horizon, self.output_channels), h_n


def init_weights(model, seed, lstm_gain=1.5, head_gain=1.5, forget_bias=0.0):
    """Seeded random weights in sorted-parameter-name order: LSTM tensors U(-a, a) with
    a = lstm_gain / sqrt(H); head tensors U(-b, b) with b = head_gain / sqrt(H). (nn.LSTM's own
    init is the gain-1 case; a gain above 1 gives gates that are neither saturated nor flat.)
    forget_bias is then added to the forget-gate rows [H, 2H) of every bias_ih_l{k} (when the
    LSTM has biases), so the state remembers the start of the window."""
    g = torch.Generator().manual_seed(seed)
    a = lstm_gain / math.sqrt(model.hidden)
    b = head_gain / math.sqrt(model.hidden)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            bound = a if name.startswith("lstm.") else b
            u = torch.rand(p.shape, generator=g, dtype=torch.float32)
            p.copy_((2.0 * u - 1.0) * bound)
            if forget_bias and name.startswith("lstm.bias_ih_l"):
                p[model.hidden:2 * model.hidden] += forget_bias
    return model


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------

def _f32(values):
    return np.asarray(values, dtype=np.float32)


def forecast(model, sidecar, window):
    """window: [W, C] raw values (exactly sidecar["window"] steps). Returns a dict of float32
    numpy arrays: forecast [T, O] (raw units), forecast_scaled [T, O], last_hidden [H] (h_T of
    the last layer), layer_hidden [N, H] (h_T of every layer), window_scaled [W, C]."""
    x = _f32(window)
    w, c = int(sidecar["window"]), len(sidecar["channels"])
    if x.shape != (w, c):
        raise ValueError(f"window shape {x.shape} != ({w}, {c})")
    x_scaled = (x - _f32(sidecar["input_mean"])) / _f32(sidecar["input_std"])
    model.eval()
    with torch.no_grad():
        y_scaled, h_n = model(torch.from_numpy(x_scaled).unsqueeze(0))
    y_scaled = y_scaled[0].numpy().astype(np.float32)
    y = y_scaled * _f32(sidecar["output_std"]) + _f32(sidecar["output_mean"])
    return {
        "forecast": y.astype(np.float32),
        "forecast_scaled": y_scaled,
        "last_hidden": h_n[-1, 0].numpy().astype(np.float32),
        "layer_hidden": h_n[:, 0].numpy().astype(np.float32),
        "window_scaled": x_scaled.astype(np.float32),
    }


def forecast_history(model, sidecar, history):
    """history: [steps, C] raw values with steps >= W; forecasts from its last W steps."""
    h = _f32(history)
    w = int(sidecar["window"])
    if h.ndim != 2 or h.shape[0] < w:
        raise ValueError(f"history of shape {h.shape} is shorter than the window {w}")
    return forecast(model, sidecar, h[-w:])


def lstm_numpy(state, x_scaled, layers, hidden):
    """Independent float64 LSTM (the equations in the module docstring) over x_scaled [W, C].
    state: the model's state_dict. Returns h_T of every layer, [N, H]."""
    sd = {k: v.detach().to(torch.float64).numpy() for k, v in state.items()}
    seq = np.asarray(x_scaled, dtype=np.float64)
    last = []
    for k in range(layers):
        w_ih, w_hh = sd[f"lstm.weight_ih_l{k}"], sd[f"lstm.weight_hh_l{k}"]
        b = sd.get(f"lstm.bias_ih_l{k}", 0.0) + sd.get(f"lstm.bias_hh_l{k}", 0.0)
        h = np.zeros(hidden)
        c = np.zeros(hidden)
        out = []
        for x_t in seq:
            gates = w_ih @ x_t + w_hh @ h + b
            i = 1.0 / (1.0 + np.exp(-gates[0:hidden]))
            f = 1.0 / (1.0 + np.exp(-gates[hidden:2 * hidden]))
            gg = np.tanh(gates[2 * hidden:3 * hidden])
            o = 1.0 / (1.0 + np.exp(-gates[3 * hidden:4 * hidden]))
            c = f * c + i * gg
            h = o * np.tanh(c)
            out.append(h)
        seq = np.asarray(out)
        last.append(h)
    return np.asarray(last)


# --------------------------------------------------------------------------------------------
# Checkpoint + sidecar
# --------------------------------------------------------------------------------------------

def make_sidecar(window, horizon, channels, output_channels, input_mean, input_std,
                 output_mean, output_std, batch_first):
    """The forecast.json dict; scaling values are rounded to float32 and written with the
    shortest decimal that round-trips (what the runtime computes with)."""
    sidecar = {
        "window": int(window),
        "horizon": int(horizon),
        "channels": list(channels),
        "output_channels": list(output_channels),
        "input_mean": f32_list(input_mean),
        "input_std": f32_list(input_std),
        "output_mean": f32_list(output_mean),
        "output_std": f32_list(output_std),
        "batch_first": bool(batch_first),
    }
    check_sidecar(sidecar)
    return sidecar


def check_sidecar(sidecar):
    missing = [k for k in SIDECAR_KEYS if k not in sidecar]
    if missing:
        raise ValueError(f"forecast.json lacks {missing}")
    c, o = len(sidecar["channels"]), len(sidecar["output_channels"])
    for key, n in (("input_mean", c), ("input_std", c), ("output_mean", o), ("output_std", o)):
        if len(sidecar[key]) != n:
            raise ValueError(f"forecast.json {key} has {len(sidecar[key])} values, expected {n}")
    for key in ("input_std", "output_std"):
        if any(not v > 0 for v in sidecar[key]):
            raise ValueError(f"forecast.json {key} must be positive")


def f32_list(values):
    """float32 values as Python floats written with the shortest round-tripping decimal."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def write_json(path, obj, indent=1):
    tmp = path + ".tmp-w"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    os.replace(tmp, path)


def save(model, sidecar, folder):
    """Writes folder/model.pt (torch.save of the state dict, exactly as upstream would: the zip's
    record prefix is "model/") and folder/forecast.json."""
    check_sidecar(sidecar)
    if model.horizon * model.output_channels != sidecar["horizon"] * len(sidecar["output_channels"]):
        raise ValueError("model head size does not match the sidecar's horizon x outputs")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = os.path.join(tmp, MODEL_FILE)   # same file name, so the same archive prefix
        torch.save(model.state_dict(), path)
        os.replace(path, os.path.join(folder, MODEL_FILE))
    write_json(os.path.join(folder, SIDECAR_FILE), sidecar)


def load(folder):
    """Reads a checkpoint folder back: returns (model in eval mode, sidecar). The architecture is
    read from the tensor names and shapes (as a runtime must), T and O from the sidecar."""
    with open(os.path.join(folder, SIDECAR_FILE)) as f:
        sidecar = json.load(f)
    check_sidecar(sidecar)
    state = torch.load(os.path.join(folder, MODEL_FILE), map_location="cpu", weights_only=True)
    layers = 0
    while f"lstm.weight_ih_l{layers}" in state:
        layers += 1
    four_h, c = state["lstm.weight_ih_l0"].shape
    hidden = four_h // 4
    bias = "lstm.bias_ih_l0" in state
    horizon, outputs = int(sidecar["horizon"]), len(sidecar["output_channels"])
    if state["head.weight"].shape != (horizon * outputs, hidden):
        raise ValueError(f"head.weight {tuple(state['head.weight'].shape)} does not match "
                         f"horizon {horizon} x outputs {outputs}, hidden {hidden}")
    if c != len(sidecar["channels"]):
        raise ValueError(f"checkpoint has {c} input channels, forecast.json names {len(sidecar['channels'])}")
    model = LSTMForecaster(c, hidden, layers, horizon, outputs, bool(sidecar["batch_first"]), bias=bias)
    model.load_state_dict(state, strict=True)
    return model.eval(), sidecar
