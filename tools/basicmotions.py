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
series goes to the encoder as it is (PRESET "custom"; `normalize` is the HAR rule the first demo
used); post prompt "Rationale:". The target is a one-sentence rationale computed from measurable
features of the recording (movement energy, regularity of the rhythm from the FFT, see
`rationale`) ending in "Answer: <label>", followed by the EOS token. `augment` makes the training
variants and `validation_split` carves the validation recordings out of the training set.

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
# The demo feeds the encoder the RAW values (the runtime's `custom` preset: values unchanged, the
# description shows the raw mean and unbiased std). With the HAR normalization above, every
# channel has std 1, so the encoder cannot see how strongly the watch moves (the feature that
# separates resting < walking < running / badminton): a classifier on the encoder alone stayed
# near chance for 100 steps on normalized channels and reached 100% on the validation split within
# 50 steps on raw ones, and 8 epochs of SoftPrompt training on normalized channels (first demo:
# 0.675 test accuracy; a second 16-epoch attempt still answered one class for every validation
# recording after 8 epochs) did not learn to read the amplitude from the printed std.
PRESET = "custom"


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


def parse_ts(text, label_names=None):
    """Parses a UEA/UCR .ts file (equal length, no timestamps): returns (X [n, channels, len],
    labels), the file's class labels mapped through `label_names` (default: BasicMotions')."""
    label_names = label_names or FILE_LABELS
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
        ys.append(label_names[label])
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
    """A one-sentence rationale whose words come from `feat` through fixed thresholds, ending with
    the true label (the training target, then EOS):
      movement (acc_std, mean per-axis std of the accelerometer): low < 1, moderate 1..4, high > 4
      rhythm: "the watch is almost still" when movement is low and wrist rotation (gyro_std) is
      below 0.6; otherwise "a regular rhythm" when the dominant accelerometer frequency holds
      >= 20% of the power, else "no steady rhythm".
    e.g. " Movement is high with a regular rhythm. Answer: running" (13-15 tokens with the EOS).
    The first demo used a four-sentence rationale (movement, wrist rotation, magnitude, rhythm in
    Hz; `long_rationale`, 24-32 tokens); the short one cuts the step time and gives the decisive
    words a larger share of the loss.
    """
    acc = _level(feat["acc_std"], 1.0, 4.0)
    if acc == "low" and feat["gyro_std"] < 0.6:
        s = f" Movement is {acc}, the watch is almost still."
    elif feat["rhythm_share"] >= 0.2:
        s = f" Movement is {acc} with a regular rhythm."
    else:
        s = f" Movement is {acc} with no steady rhythm."
    return s + f" Answer: {label}"


def long_rationale(feat, label):
    """The first demo's rationale (kept for reference):
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


def augment(rec, rng, p_keep=0.2, crop=(85, 100), scale=(0.85, 1.15), noise=0.03):
    """A random variant of a raw [6, 100] recording for training (numpy Generator `rng`):
    with probability p_keep the recording itself; otherwise a random window of crop[0]..crop[1]
    samples (the same for all channels) linearly resampled back to 100 samples, the accelerometer
    and the gyroscope each scaled by a factor drawn from `scale`, plus Gaussian jitter of `noise`
    times each channel's std. The rationale is recomputed from the variant's features."""
    rec = np.asarray(rec, dtype=np.float64)
    if rng.random() < p_keep:
        return rec.astype(np.float32)
    c, n = rec.shape
    length = int(rng.integers(crop[0], crop[1] + 1))
    start = int(rng.integers(0, n - length + 1))
    w = rec[:, start:start + length]
    if length != n:
        src = np.arange(length, dtype=np.float64)
        dst = np.linspace(0.0, length - 1.0, n)
        w = np.stack([np.interp(dst, src, w[i]) for i in range(c)])
    gains = np.repeat(rng.uniform(scale[0], scale[1], size=2), 3)[:, None]
    w = w * gains
    w = w + rng.normal(0.0, 1.0, size=w.shape) * noise * w.std(axis=1, keepdims=True)
    return w.astype(np.float32)


def validation_split(labels, per_class=2, seed=1234, classes=LABELS):
    """Indices (train, val) of the training recordings: `per_class` recordings of every class in
    `classes` (this dataset's labels by default), drawn with a seeded generator, are held out for
    model selection (the test set never is)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in classes:
        idx = [i for i, y in enumerate(labels) if y == c]
        val += sorted(int(i) for i in rng.choice(idx, size=per_class, replace=False))
    val = sorted(val)
    return [i for i in range(len(labels)) if i not in val], val


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


def raw(x):
    """x: 1-D raw channel -> (the values as float32, raw mean, raw unbiased std): the runtime's
    `custom` preset, which the demo uses (see PRESET)."""
    x64 = np.asarray(x, dtype=np.float64)
    return np.asarray(x, dtype=np.float32), float(x64.mean()), float(x64.std(ddof=1))


def sample(rec, label, channels=None, preset=None):
    """One prompt sample: dict(pre_prompt, time_series_text, time_series, post_prompt, answer).
    preset "custom" (the default, PRESET): the encoder gets the raw values; "har": normalized."""
    names = channels or CHANNELS
    prep = raw if (preset or PRESET) == "custom" else normalize
    texts, series = [], []
    for name in names:
        y, mean, std = prep(rec[CHANNELS.index(name)])
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
