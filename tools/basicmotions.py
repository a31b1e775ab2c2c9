"""BasicMotions (UEA) for the OpenTSLM SoftPrompt demo: data, features, rationales, prompts, ids.

Shared by tools/train_basicmotions.py (training, evaluation, export) and anything that wants to
rebuild the demo's prompts.

Data: the `aeon==1.6.0` wheel from PyPI ships `aeon/datasets/data/BasicMotions/
BasicMotions_{TRAIN,TEST}.ts` (BSD-3). `fetch_wheel()` downloads it with
`pip download --no-deps aeon==1.6.0` into .cache/wheels (aeon itself is never installed) and
checks its sha256. 40 train + 40 test recordings of a smartwatch worn during four activities,
6 channels (accelerometer x, y, z, then gyroscope x, y, z), 100 samples at 10 Hz. The file's
class "Standing" is the "resting" activity of the dataset description; labels here are
walking / resting / running / badminton.

Prompt (HAR-CoT style, formats/opentslm.md "Prompts and normalization presets"): a pre prompt
naming the task and the four activities; per channel "The following is the {sensor} data on the
{axis}-axis, it has mean {mean:.4f} and std {std:.4f}:" with the RAW mean and unbiased std; the
series normalized as (x - mean) / max(unbiased std, 1e-6); post prompt "Rationale:". The target
is a short rationale computed from measurable features of the recording (movement energy of each
sensor, variability of the acceleration magnitude, dominant frequency and regularity of the rhythm
from the FFT) ending in "Answer: <label>", followed by the EOS token.

Tokenization: SmolLM2's GGUF tokenizer (pre-tokenizer "smollm") splits every digit into its own
pre-token before the GPT-2 byte-level regex. transformers' GGUF conversion drops that step, so
the ids here come from a HF `tokenizers` BPE built from the GGUF's own vocab and merges with the
ORIGINAL pre-tokenizer Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)]
(the same construction as tools/make_tokenizer_conformance.py). The GGUF says
add_bos_token = false, so (as upstream's per-segment tokenization "with special tokens" would do
with this tokenizer) no segment gets a BOS.
"""
import glob
import hashlib
import os
import subprocess
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELS = os.path.join(ROOT, ".cache", "wheels")
AEON_WHEEL = "aeon-1.6.0-py3-none-any.whl"
AEON_SHA256 = "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409"
GGUF_PATH = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

CHANNELS = ["accelerometer_x", "accelerometer_y", "accelerometer_z",
            "gyroscope_x", "gyroscope_y", "gyroscope_z"]
LABELS = ["walking", "resting", "running", "badminton"]
FILE_LABELS = {"Walking": "walking", "Standing": "resting", "Running": "running", "Badminton": "badminton"}
SAMPLE_RATE_HZ = 10.0

PRE_PROMPT = (
    "You are given the accelerometer and gyroscope data of a smartwatch, recorded at 10 Hz for "
    "10 seconds. The possible activities are: walking, resting, running, badminton. Describe "
    "the motion, then give the answer."
)
SERIES_TEMPLATE = "The following is the {sensor} data on the {axis}-axis, it has mean {mean:.4f} and std {std:.4f}:"
POST_PROMPT = "Rationale:"
NORMALIZATION = "(x - mean) / max(unbiased std, 1e-6), per channel, raw mean/std in the description"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def fetch_wheel():
    """Returns the path of the pinned aeon wheel, downloading it (no dependencies) if needed."""
    path = os.path.join(WHEELS, AEON_WHEEL)
    if not os.path.exists(path):
        os.makedirs(WHEELS, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "aeon==1.6.0", "-d", WHEELS], check=True)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != AEON_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} != pinned {AEON_SHA256}")
    return path


def parse_ts(text):
    """Parses a UEA .ts file (equal length, no timestamps): returns (X [n, channels, len], labels)."""
    xs, ys = [], []
    in_data = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if not in_data or line.startswith("@"):
            continue
        parts = line.split(":")
        label = parts[-1]
        chans = [[float(v) for v in p.split(",")] for p in parts[:-1]]
        xs.append(chans)
        ys.append(FILE_LABELS[label])
    return np.asarray(xs, dtype=np.float32), ys


def load_split(split):
    """split: "TRAIN" or "TEST" -> (X float32 [40, 6, 100], labels list[str])."""
    with zipfile.ZipFile(fetch_wheel()) as z:
        text = z.read(f"aeon/datasets/data/BasicMotions/BasicMotions_{split}.ts").decode("utf-8")
    x, y = parse_ts(text)
    if x.shape[1:] != (6, 100):
        raise RuntimeError(f"unexpected BasicMotions shape {x.shape}")
    return x, y


# --------------------------------------------------------------------------------------------
# Features and rationales
# --------------------------------------------------------------------------------------------

def features(rec):
    """rec: [6, 100] raw recording -> dict of measurable features.

    acc_std / gyro_std: mean over the three axes of the per-axis unbiased std (movement energy
                        and wrist rotation).
    mag_std:            unbiased std of the acceleration magnitude sqrt(x^2 + y^2 + z^2).
    rhythm_hz:          frequency of the largest peak, between 0.5 and 5 Hz, of the summed power
                        spectra of the three mean-removed accelerometer axes (0.1 Hz resolution).
    rhythm_share:       that peak's share of the total (non-DC) power: how regular the motion is.
    """
    rec = np.asarray(rec, dtype=np.float64)
    acc, gyro = rec[:3], rec[3:]
    spec = sum(np.abs(np.fft.rfft(a - a.mean())) ** 2 for a in acc)
    freqs = np.fft.rfftfreq(acc.shape[1], d=1.0 / SAMPLE_RATE_HZ)
    band = freqs >= 0.5
    k = int(np.argmax(np.where(band, spec, -1.0)))
    total = float(spec[1:].sum())
    return {
        "acc_std": float(acc.std(axis=1, ddof=1).mean()),
        "gyro_std": float(gyro.std(axis=1, ddof=1).mean()),
        "mag_std": float(np.sqrt((acc ** 2).sum(axis=0)).std(ddof=1)),
        "rhythm_hz": float(freqs[k]),
        "rhythm_share": float(spec[k] / total) if total > 0 else 0.0,
    }


def _level(v, low, high):
    return "low" if v < low else ("high" if v > high else "moderate")


def rationale(feat, label):
    """A short rationale whose every word and number comes from `feat` through fixed thresholds,
    ending with the true label:
      movement (acc_std):        low < 1, moderate 1..4, high > 4
      wrist rotation (gyro_std): low < 0.6, moderate 0.6..2, high > 2
      magnitude (mag_std):       steady < 3, varying 3..6, bursty > 6
      rhythm: "almost still" when movement and rotation are both low, otherwise a regular rhythm
      at rhythm_hz when its peak holds >= 20% of the power, else "no steady rhythm".
    """
    acc = _level(feat["acc_std"], 1.0, 4.0)
    gyro = _level(feat["gyro_std"], 0.6, 2.0)
    mag = "steady" if feat["mag_std"] < 3.0 else ("bursty" if feat["mag_std"] > 6.0 else "varying")
    s = f" Movement is {acc} and wrist rotation is {gyro}. The acceleration magnitude is {mag}."
    if acc == "low" and gyro == "low":
        s += " The watch is almost still."
    elif feat["rhythm_share"] >= 0.2:
        s += f" The motion repeats regularly at {feat['rhythm_hz']:.1f} Hz."
    else:
        s += " The motion has no steady rhythm."
    return s + f" Answer: {label}"


# --------------------------------------------------------------------------------------------
# Prompt pieces and token ids
# --------------------------------------------------------------------------------------------

def series_text(channel, mean, std):
    sensor, axis = channel.split("_")
    return SERIES_TEMPLATE.format(sensor=sensor, axis=axis, mean=mean, std=std)


def normalize(x):
    """x: 1-D raw channel -> (normalized float32, raw mean, raw unbiased std) (HAR rule)."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = float(x64.mean())
    std = float(x64.std(ddof=1))
    return ((x64 - mean) / max(std, 1e-6)).astype(np.float32), mean, std


def sample(rec, label, channels=None):
    """One prompt sample: dict(pre_prompt, time_series_text, time_series, post_prompt, answer)."""
    names = channels or CHANNELS
    texts, series = [], []
    for name in names:
        y, mean, std = normalize(rec[CHANNELS.index(name)])
        texts.append(series_text(name, mean, std))
        series.append(y)
    return {
        "pre_prompt": PRE_PROMPT,
        "time_series_text": texts,
        "time_series": series,
        "post_prompt": POST_PROMPT,
        "answer": rationale(features(rec), label) if label is not None else None,
        "label": label,
    }


def smollm2_tokenizer(gguf_path=GGUF_PATH):
    """HF `tokenizers` BPE from the GGUF's vocab and merges with SmolLM2's original digit-splitting
    pre-tokenizer (tools/smollm2_tokenizer.py, see the module docstring). Returns (tokenizer, eos_id)."""
    import smollm2_tokenizer

    tok, r = smollm2_tokenizer.build(gguf_path)
    eos = int(r.fields["tokenizer.ggml.eos_token_id"].contents())
    add_bos = bool(r.fields["tokenizer.ggml.add_bos_token"].contents())
    if add_bos:
        raise RuntimeError("this demo assumes the SmolLM2 GGUF's add_bos_token = false")
    return tok, eos


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def parse_answer(text):
    """Upstream HAR rule: text after the last "Answer: ", trailing special tokens and a final
    period removed, stripped, lowercased."""
    i = text.rfind("Answer: ")
    if i < 0:
        return ""
    a = text[i + len("Answer: "):]
    for special in ("<|im_end|>", "<|endoftext|>"):
        a = a.replace(special, "")
    a = a.strip()
    if a.endswith("."):
        a = a[:-1]
    return a.strip().lower()


def macro_f1(preds, golds, labels=LABELS):
    f1s = []
    for c in labels:
        tp = sum(p == c and g == c for p, g in zip(preds, golds))
        fp = sum(p == c and g != c for p, g in zip(preds, golds))
        fn = sum(p != c and g == c for p, g in zip(preds, golds))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return float(np.mean(f1s))


def _summary():
    """python3 tools/basicmotions.py: prints the features and rationales of the training set."""
    x, y = load_split("TRAIN")
    for i in range(len(y)):
        f = features(x[i])
        print(f"{i:2d} {y[i]:9s} acc {f['acc_std']:.3f} gyro {f['gyro_std']:.3f} "
              f"mag {f['mag_std']:.3f} rhythm {f['rhythm_hz']:.1f} Hz share {f['rhythm_share']:.2f} |"
              f"{rationale(f, y[i])}")


if __name__ == "__main__":
    _summary()
