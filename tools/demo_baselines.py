#!/usr/bin/env python3
"""Baselines for the BasicMotions demo, on exactly the split the OpenTSLM models use.

    python3 tools/demo_baselines.py            # all three; writes demo/basicmotions/baselines.json
    python3 tools/demo_baselines.py --only features,minirocket     # skip the (slow) LLM baseline

Split (tools/basicmotions.py `validation_split`, seed 1234): the 40 UEA training recordings are
split into 32 for fitting and 8 (2 per class) for validation, as for the SoftPrompt model; the 40
test recordings (demo/basicmotions/test) are used only for the reported numbers. No baseline has
its hyperparameters tuned: each uses its package defaults (stated below). Each is reported fitted
on the 32 fitting recordings (the same data the SoftPrompt model trains on) and, as an extra
column, on all 40 training recordings.

1. MiniRocket + ridge: aeon 1.6.0 `MiniRocketClassifier(random_state=1234)` (10,000 MiniRocket
   features, StandardScaler, RidgeClassifierCV over 10 alphas 1e-3..1e3). aeon 1.6.0 pins
   pandas < 3.1 and numba < 0.64 (which does not support numpy 2.4), so it cannot share the
   environment of tools/requirements.txt (pandas 3.1.1, numpy 2.4.6): this part runs in its own
   virtual environment, .cache/baselines-venv, built from tools/requirements-baselines.txt:
       python3 -m venv .cache/baselines-venv
       .cache/baselines-venv/bin/pip install -r tools/requirements-baselines.txt
   and the script calls it by itself (`--only minirocket --json-out FILE`).
2. Features + logistic regression: scikit-learn 1.7.2, per channel mean, std, min, max, 10/50/90th
   percentiles, mean absolute first difference, dominant frequency and its power share
   (0.5-5 Hz), plus the std of the acceleration and gyroscope magnitudes (68 features);
   StandardScaler + LogisticRegression(C=1.0, max_iter=5000).
3. Zero-shot LLM: the frozen backbone alone (SmolLM2-135M-Instruct, the same Q4_1 GGUF loaded by
   transformers in float32) with its chat template, given the recording as text: every channel
   averaged over blocks of 4 samples (25 values at 2.5 Hz) printed with 1 decimal, and asked
   "Which activity is it: walking, resting, running or badminton? Answer with one word." Two
   readings: the greedy reply (at most 8 tokens; the first of the four labels it contains, else
   no answer) and the label with the highest log-likelihood as the reply (a forced choice, the
   more generous reading). Prompt about 900 tokens.

Results (demo/basicmotions/baselines.json, test set): MiniRocket 1.000 / 1.000 (accuracy /
macro-F1), features + LR 1.000 / 1.000 (both also 1.000 on validation and when fitted on all 40),
zero-shot 0.250 / 0.100 with either reading (it answers "walking", or repeats the question).
Time on the shared 2-core machine (1 thread): features 2 s, MiniRocket 109 s on the first run
(numba compilation) and 4 s after, zero-shot 2075 s (about 864 prompt tokens per recording, run at
nice 15 next to a training job; far less on an idle core).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import basicmotions as bm  # noqa: E402

ROOT = bm.ROOT
OUT = os.path.join(ROOT, "demo", "basicmotions", "baselines.json")
VENV_PY = os.path.join(ROOT, ".cache", "baselines-venv", "bin", "python")
SEED = 1234


def scores(pred, gold):
    return {"accuracy": float(np.mean([p == g for p, g in zip(pred, gold)])),
            "macro_f1": bm.macro_f1(list(pred), list(gold))}


def split():
    x_train, y_train = bm.load_split("TRAIN")
    x_test, y_test = bm.load_split("TEST")
    fit_idx, val_idx = bm.validation_split(y_train, 2, SEED)
    return x_train, np.asarray(y_train), x_test, np.asarray(y_test), fit_idx, val_idx


def run_fitted(make, featurize=None):
    """Fits make() on the 32 fitting recordings (reports validation and test) and on all 40
    training recordings (reports test)."""
    x_train, y_train, x_test, y_test, fit_idx, val_idx = split()
    f = featurize or (lambda x: x)
    t0 = time.time()
    m = make().fit(f(x_train[fit_idx]), y_train[fit_idx])
    val = scores(m.predict(f(x_train[val_idx])), y_train[val_idx])
    test_pred = m.predict(f(x_test))
    test = scores(test_pred, y_test)
    m40 = make().fit(f(x_train), y_train)
    test40 = scores(m40.predict(f(x_test)), y_test)
    return {"fit_32": {"validation": val, "test": test, "test_predictions": [str(p) for p in test_pred]},
            "fit_40": {"test": test40}, "seconds": round(time.time() - t0, 1)}


def minirocket():
    import aeon
    from aeon.classification.convolution_based import MiniRocketClassifier
    r = run_fitted(lambda: MiniRocketClassifier(random_state=SEED, n_jobs=1),
                   lambda x: np.asarray(x, dtype=np.float64))
    r["method"] = ("aeon MiniRocketClassifier(random_state=1234): 10,000 MiniRocket features, "
                   "StandardScaler, RidgeClassifierCV")
    r["versions"] = {"aeon": aeon.__version__}
    return r


def feature_matrix(x):
    rows = []
    freqs = np.fft.rfftfreq(x.shape[2], d=1.0 / bm.SAMPLE_RATE_HZ)
    band = freqs >= 0.5
    for rec in np.asarray(x, dtype=np.float64):
        f = []
        for ch in rec:
            spec = np.abs(np.fft.rfft(ch - ch.mean())) ** 2
            k = int(np.argmax(np.where(band, spec, -1.0)))
            total = spec[1:].sum()
            f += [ch.mean(), ch.std(ddof=1), ch.min(), ch.max(), *np.percentile(ch, [10, 50, 90]),
                  np.abs(np.diff(ch)).mean(), freqs[k], spec[k] / total if total > 0 else 0.0]
        f += [np.sqrt((rec[:3] ** 2).sum(0)).std(ddof=1), np.sqrt((rec[3:] ** 2).sum(0)).std(ddof=1)]
        rows.append(f)
    return np.asarray(rows)


def features_lr():
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    r = run_fitted(lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)),
                   feature_matrix)
    r["method"] = ("68 hand-made features (per channel mean, std, min, max, 10/50/90th percentiles, "
                   "mean |diff|, dominant frequency and its power share; magnitude stds), "
                   "StandardScaler + LogisticRegression(C=1.0)")
    r["versions"] = {"scikit-learn": sklearn.__version__}
    return r


def zeroshot_prompt(rec):
    lines = ["A smartwatch recorded 10 seconds of motion. Each line is one sensor axis, averaged "
             "to 2.5 samples per second."]
    for name, ch in zip(bm.CHANNELS, np.asarray(rec, dtype=np.float64)):
        vals = ch.reshape(25, 4).mean(axis=1)
        lines.append(f"{name.replace('_', ' ')}: " + ", ".join(f"{v:.1f}" for v in vals))
    lines.append("Which activity is it: walking, resting, running or badminton? Answer with one word.")
    q = "\n".join(lines)
    return ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\n" + q + "<|im_end|>\n<|im_start|>assistant\n")


def zeroshot():
    import copy

    import torch
    import transformers
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train_basicmotions import load_llm
    torch.set_num_threads(1)
    llm = load_llm()
    tok, eos = bm.smollm2_tokenizer()
    label_ids = {c: bm.encode(tok, c[0].upper() + c[1:]) for c in bm.LABELS}
    label_ids_lower = {c: bm.encode(tok, c) for c in bm.LABELS}
    _, _, x_test, y_test, _, _ = split()
    greedy, forced, rows, n_tokens = [], [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i, rec in enumerate(x_test):
            ids = bm.encode(tok, zeroshot_prompt(rec))
            n_tokens.append(len(ids))
            out = llm(input_ids=torch.tensor([ids]), use_cache=True)
            base_cache, base_row = out.past_key_values, out.logits[0, -1]
            # forced choice: log-likelihood of each label (capitalized or lower case, the better)
            ll = {}
            for c in bm.LABELS:
                best = -1e9
                for variant in (label_ids[c], label_ids_lower[c]):
                    cache = copy.deepcopy(base_cache)
                    lp = torch.log_softmax(base_row, -1)[variant[0]].item()
                    if len(variant) > 1:
                        o = llm(input_ids=torch.tensor([variant[:-1]]), past_key_values=cache, use_cache=True)
                        logp = torch.log_softmax(o.logits[0], -1)
                        lp += sum(logp[j, variant[j + 1]].item() for j in range(len(variant) - 1))
                    best = max(best, lp)
                ll[c] = best
            forced.append(max(ll, key=ll.get))
            # greedy reply
            cache, row, gen = copy.deepcopy(base_cache), base_row, []
            for _ in range(8):
                t = int(row.argmax())
                if t == eos:
                    break
                gen.append(t)
                o = llm(input_ids=torch.tensor([[t]]), past_key_values=cache, use_cache=True)
                cache, row = o.past_key_values, o.logits[0, -1]
            text = tok.decode(gen)
            low = text.lower()
            hits = [(low.find(c), c) for c in bm.LABELS if c in low]
            greedy.append(min(hits)[1] if hits else "")
            rows.append({"csv": f"{i:02d}_{y_test[i]}.csv", "reply": text, "greedy": greedy[-1],
                         "forced": forced[-1], "label_loglik": ll})
            print(f"zero-shot {i:2d} {y_test[i]:9s} greedy {greedy[-1]!r:12s} forced {forced[-1]:9s} {text!r}", flush=True)
    return {"method": "SmolLM2-135M-Instruct (Q4_1 GGUF via transformers, float32), chat template, "
                      "values as text (25 per channel, 1 decimal), no training",
            "prompt_example": zeroshot_prompt(x_test[0]),
            "prompt_tokens_mean": float(np.mean(n_tokens)),
            "test_greedy_reply": scores(greedy, y_test),
            "test_forced_choice_loglik": scores(forced, y_test),
            "predictions": rows, "seconds": round(time.time() - t0, 1),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="features,minirocket,zeroshot")
    ap.add_argument("--json-out", help="write this run's results here instead of merging into baselines.json")
    args = ap.parse_args()
    parts = args.only.split(",")
    result = {}
    if "features" in parts:
        result["features_logistic_regression"] = features_lr()
        print("features + LR", json.dumps(result["features_logistic_regression"]["fit_32"]["test"]))
    if "minirocket" in parts:
        try:
            import aeon  # noqa: F401
            result["minirocket_ridge"] = minirocket()
        except ImportError:
            if not os.path.exists(VENV_PY):
                raise SystemExit("aeon is not installed here and .cache/baselines-venv is missing "
                                 "(see the docstring)")
            tmp = OUT + ".minirocket.tmp-w"
            subprocess.run([VENV_PY, os.path.abspath(__file__), "--only", "minirocket", "--json-out", tmp], check=True)
            result["minirocket_ridge"] = json.load(open(tmp))["minirocket_ridge"]
            os.remove(tmp)
        print("MiniRocket", json.dumps(result["minirocket_ridge"]["fit_32"]["test"]))
    if "zeroshot" in parts:
        result["zero_shot_llm"] = zeroshot()
        print("zero-shot", json.dumps(result["zero_shot_llm"]["test_greedy_reply"]),
              json.dumps(result["zero_shot_llm"]["test_forced_choice_loglik"]))
    if args.json_out:
        json.dump(result, open(args.json_out, "w"), indent=1)
        return
    old = json.load(open(OUT)) if os.path.exists(OUT) else {}
    old.update(result)
    old["split"] = ("fit: 32 of the 40 UEA training recordings; validation: the other 8 (2 per class, "
                    "tools/basicmotions.py validation_split, seed 1234); test: the 40 UEA test "
                    "recordings (demo/basicmotions/test), used only for these reports")
    tmp = OUT + ".tmp-w"
    with open(tmp, "w") as f:
        json.dump(old, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
