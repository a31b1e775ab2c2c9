#!/usr/bin/env python3
"""Trained Time-LLM forecasting demo on the airline passengers series (demo/forecast/timellm/).

    python3 tools/train_timellm_demo.py              # train, evaluate, write demo/forecast/timellm/
    python3 tools/train_timellm_demo.py --eval-only  # re-evaluate the committed checkpoint
    python3 tools/train_timellm_demo.py --eval-only --verify-tslm .build/release/tslm
                                                     # + convert with tslm, compare its forecasts

Complements the LSTM demo (tools/train_forecast_demo.py): same series (demo/forecast/airline.csv),
same split and windows (fit origins 24..84, validation origins 96..108, test origins 120 and 132,
seq_len 24, pred_len 12), same metrics (its `metrics` and `mase_scale`).

Model: tools/timellm_model.py's TimeLLM (the PyTorch reference the runtime matches) on the frozen
SmolLM2-135M-Instruct backbone: the pinned GGUF (.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf,
tools/fetch_smollm2.sh) loaded by transformers (`gguf_file=`, dequantized to float32, eager
attention), its bare LlamaModel cut to the first LLM_LAYERS blocks (config num_hidden_layers =
LLM_LAYERS, final norm kept). Prompt tokens: tools/smollm2_tokenizer.py's tokenizer (the runtime's
tokenizer, digits split) wrapped in a PreTrainedTokenizerFast; it adds no BOS, as the GGUF says
(tokenizer.ggml.add_bos_token = false) and as the runtime does.

Trainable parts (small, so CPU training fits): patch_len 6, stride 3 (P = 8 patches), d_model 16,
d_ff 32, n_heads 4, num_tokens 64 text prototypes (mapping_layer 64 x 49152).

Training speed-up (exact, not an approximation): the prompt precedes the patch positions, the
backbone is frozen and causal, and a window's prompt depends only on its RevIN-normalized history.
So every window's prompt runs through the backbone once (no grad, use_cache=True; the prompts of a
batch are left-padded, masked, and get positions 0..T_i-1), its key/value cache is kept, and every
step runs only the P reprogrammed patch positions (positions T_i..T_i+P-1) with grad against that
cache. The cached path is checked against the reference's full forward_channel before training.

Recipe (chosen on the validation windows only; the test period was not used): seed 0
(torch.manual_seed before the trainable parts are built, numpy default_rng for the mini-batches),
2 torch threads; LLM_LAYERS 4 blocks (6 blocks: validation MAE 26.08 against 23.65); the 61 fit
windows split once into 4 fixed mini-batches (a seeded permutation, so each keeps one prompt
cache), visited in a new random order every epoch; Adam lr 5e-4; MSE on the RevIN-normalized
targets (the targets normalized with their window's history mean/std); early stopping on the
validation MAE in passengers after every epoch, patience 30, at most 120 epochs (patience 80 / 400
epochs gives the same best epoch 77); the best-validation weights are the model (no refit on the
validation windows). No augmentation: RevIN divides out the scale (the LSTM demo's scale
augmentation leaves the inputs unchanged up to the 1e-5 eps, and the normalized targets too), and
any augmentation that changes the normalized shape changes the prompt and defeats the prompt cache.
Measured: about 104 s of training (107 epochs), about 2 min for the whole script, on 2 cores.
Re-runs on the same machine give byte-identical checkpoint.pt and test_windows.json.

Output, demo/forecast/timellm/: checkpoint.pt (torch.save of the trainable parts only, upstream
names, float32; the frozen LLM is not shipped: `tslm convert --base` takes it from the GGUF),
timellm.json, test_windows.json (the 12 forecasts per test window, from the reference's
forward_channel on the reloaded checkpoint), results.json (metrics next to the LSTM / ETS /
seasonal-naive numbers copied from demo/forecast/results.json).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smollm2_tokenizer  # noqa: E402
import timellm_model as tm  # noqa: E402
import timellm_reference as ref  # noqa: E402
import train_forecast_demo as demo  # noqa: E402  (split, metrics)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo", "forecast", "timellm")
GGUF = smollm2_tokenizer.GGUF_PATH

DESCRIPTION = "Monthly totals of international airline passengers, 1949 to 1960."
SEQ_LEN, PRED_LEN = demo.WINDOW, demo.HORIZON
PATCH_LEN, STRIDE, D_MODEL, D_FF, N_HEADS, NUM_TOKENS = 6, 3, 16, 32, 4, 64
LLM_LAYERS = int(os.environ.get("TIMELLM_LLM_LAYERS", "4"))
N_GROUPS = int(os.environ.get("TIMELLM_GROUPS", "4"))
SEED = 0
LR = float(os.environ.get("TIMELLM_LR", "5e-4"))
MAX_EPOCHS = int(os.environ.get("TIMELLM_MAX_EPOCHS", "120"))
PATIENCE = int(os.environ.get("TIMELLM_PATIENCE", "30"))
TRAINABLE_PREFIXES = ("patch_embedding.", "mapping_layer.", "reprogramming_layer.",
                      "output_projection.")


# --------------------------------------------------------------------------------------------
# Backbone and tokenizer
# --------------------------------------------------------------------------------------------

def load_tokenizer():
    from transformers import PreTrainedTokenizerFast
    tok, _ = smollm2_tokenizer.build(GGUF)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                 bos_token="<|im_start|>", unk_token=None)
    return hf


def load_backbone(layers):
    """The bare LlamaModel of the GGUF (dequantized to float32) with only its first `layers`
    blocks, eager attention, frozen, eval mode."""
    from transformers import AutoModelForCausalLM
    if not os.path.exists(GGUF):
        raise SystemExit(f"{GGUF} is missing: run tools/fetch_smollm2.sh first")
    full = AutoModelForCausalLM.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF),
                                                dtype=torch.float32, attn_implementation="eager")
    llm = full.model
    llm.layers = llm.layers[:layers]
    llm.config.num_hidden_layers = layers
    for p in llm.parameters():
        p.requires_grad = False
    return llm.eval()


def build_model(llm, tok):
    torch.manual_seed(SEED)
    return tm.TimeLLM(llm, tok, SEQ_LEN, PRED_LEN, PATCH_LEN, STRIDE, D_MODEL, D_FF, N_HEADS,
                      NUM_TOKENS, DESCRIPTION)


# --------------------------------------------------------------------------------------------
# Cached training path
# --------------------------------------------------------------------------------------------

class WindowBatch:
    """A fixed set of windows: RevIN stats, normalized targets, the prompts' KV cache."""

    def __init__(self, model, hist, targets):
        self.hist = torch.tensor(hist, dtype=torch.float32)          # [B, L]
        self.targets = np.asarray(targets, np.float64)                # [B, H]
        rows = [ref.revin(self.hist[i]) for i in range(len(hist))]     # the reference's per-row RevIN
        self.x_norm = torch.stack([r[0] for r in rows])
        self.mean = torch.stack([r[1] for r in rows])[:, None]
        self.std = torch.stack([r[2] for r in rows])[:, None]
        self.y_norm = (torch.tensor(self.targets, dtype=torch.float32) - self.mean) / self.std
        self.prompts = [ref.prompt(model.description, model.pred_len, model.seq_len, self.x_norm[i])
                        for i in range(len(hist))]
        ids = [model.tokenize(p)[0] for p in self.prompts]
        self.lengths = torch.tensor([len(i) for i in ids])
        B, Tm = len(ids), int(self.lengths.max())
        emb_layer = model.llm_model.get_input_embeddings()
        x = torch.zeros(B, Tm, model.d_llm)
        self.mask = torch.zeros(B, Tm, dtype=torch.long)
        pos = torch.zeros(B, Tm, dtype=torch.long)
        with torch.no_grad():
            for i, t in enumerate(ids):
                n = len(t)
                x[i, Tm - n:] = emb_layer(t)
                self.mask[i, Tm - n:] = 1
                pos[i, Tm - n:] = torch.arange(n)
            out = model.llm_model(inputs_embeds=x, attention_mask=self.mask, position_ids=pos,
                                  use_cache=True)
        self.cache = out.past_key_values
        self.saved = [(layer.keys, layer.values) for layer in self.cache.layers]
        self.t_max = Tm

    def restore_cache(self):
        """Puts the prompt-only keys/values back (the step pass appends the patch positions,
        which carry autograd history)."""
        for layer, (k, v) in zip(self.cache.layers, self.saved):
            layer.keys, layer.values = k, v

    def forward(self, model):
        """Normalized forecasts [B, pred_len]; grads flow into the trainable parts."""
        B, P = self.hist.shape[0], model.patch_nums
        patch_emb, _ = model.patch_embedding(self.x_norm)                  # [B, P, d_model]
        protos = model.prototypes()
        reprog = model.reprogramming_layer(patch_emb.reshape(B * P, -1), protos, protos)
        reprog = reprog.reshape(B, P, -1)
        mask = torch.cat([self.mask, torch.ones(B, P, dtype=torch.long)], dim=1)
        pos = self.lengths[:, None] + torch.arange(P)[None, :]
        try:
            out = model.llm_model(inputs_embeds=reprog, attention_mask=mask, position_ids=pos,
                                  past_key_values=self.cache, use_cache=True)
        finally:
            self.restore_cache()
        hidden = out.last_hidden_state                                      # [B, P, d_llm]
        return model.output_projection(hidden[..., : model.d_ff].transpose(1, 2))

    def forecast(self, model):
        with torch.no_grad():
            y = self.forward(model)
        return (y * self.std + self.mean).numpy().astype(np.float64)


def check_cache_path(model, batch, log):
    """The cached batch path against the reference's full forward_channel (2 windows)."""
    got = batch.forecast(model)
    worst = 0.0
    for i in (0, len(batch.prompts) - 1):
        r = model.forward_channel(batch.hist[i])
        assert r["prompt"] == batch.prompts[i]
        want = r["forecast"].numpy().astype(np.float64)
        worst = max(worst, float(np.max(np.abs(got[i] - want) / np.maximum(np.abs(want), 1e-6))))
    log(f"cached path vs forward_channel: max relative difference {worst:.2e}")
    if worst > 1e-4:
        raise RuntimeError("the cached training path disagrees with the reference forward")
    return worst


def trainable_state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if k.startswith(TRAINABLE_PREFIXES)}


def train(model, y, log=print):
    x_fit, t_fit = demo.windows(y, demo.FIT_ORIGINS)
    x_val, t_val = demo.windows(y, demo.VAL_ORIGINS)
    t0 = time.time()
    rng = np.random.default_rng(SEED)
    groups = np.array_split(rng.permutation(len(x_fit)), N_GROUPS)   # fixed mini-batches
    fits = [WindowBatch(model, x_fit[g], t_fit[g]) for g in groups]
    val = WindowBatch(model, x_val, t_val)
    lengths = torch.cat([b.lengths for b in fits + [val]])
    log(f"prompt caches: {time.time() - t0:.1f} s (prompt lengths {int(lengths.min())}.."
        f"{int(lengths.max())} tokens; {N_GROUPS} fixed mini-batches of about {len(groups[0])} windows)")
    check_cache_path(model, val, log)
    params = [p for n, p in model.named_parameters() if n.startswith(TRAINABLE_PREFIXES)]
    opt = torch.optim.Adam(params, lr=LR)
    best_mae, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, MAX_EPOCHS + 1):
        losses = []
        for gi in rng.permutation(N_GROUPS):
            fit = fits[gi]
            pred = fit.forward(model)
            loss = ((pred - fit.y_norm) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        loss = torch.tensor(float(np.mean(losses)))
        mae = float(np.abs(val.forecast(model) - val.targets).mean())
        if mae < best_mae:
            best_mae, best_epoch, best_state = mae, epoch, trainable_state(model)
        elif epoch - best_epoch >= PATIENCE:
            break
        if epoch % 5 == 0:
            log(f"epoch {epoch:4d}  train loss {loss.item():.4f}  val MAE {mae:7.2f}  "
                f"(best {best_mae:.2f} at {best_epoch})  {time.time() - t0:.0f} s")
    model.load_state_dict(best_state, strict=False)
    model.eval()
    return {"best_epoch": best_epoch, "epochs_run": epoch, "validation_mae": round(best_mae, 4)}


# --------------------------------------------------------------------------------------------
# Export, reload, evaluation
# --------------------------------------------------------------------------------------------

def export(model, folder):
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = os.path.join(tmp, tm.CHECKPOINT_FILE)   # archive prefix 'checkpoint/'
        torch.save(trainable_state(model), path)
        os.replace(path, os.path.join(folder, tm.CHECKPOINT_FILE))
    tm.write_json(os.path.join(folder, tm.SIDECAR_FILE), model.sidecar())


def reload(folder, llm, tok):
    with open(os.path.join(folder, tm.SIDECAR_FILE)) as f:
        side = json.load(f)
    if side["llm_layers"] != tm.llm_layer_count(llm):
        raise RuntimeError("timellm.json's llm_layers differs from the loaded backbone")
    model = tm.TimeLLM(llm, tok, side["seq_len"], side["pred_len"], side["patch_len"], side["stride"],
                       side["d_model"], side["d_ff"], side["n_heads"], side["num_tokens"],
                       side["description"])
    state = torch.load(os.path.join(folder, tm.CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if k.startswith(TRAINABLE_PREFIXES)]
    if bad or unexpected:
        raise RuntimeError(f"checkpoint mismatch: missing {bad}, unexpected {unexpected}")
    return model.eval()


def month(i):
    return f"{1949 + i // 12}-{i % 12 + 1:02d}"


def evaluate(folder, llm, tok, training_info):
    y = demo.read_csv(os.path.join(ROOT, "demo", "forecast", "airline.csv"))
    model = reload(folder, llm, tok)
    scale = demo.mase_scale(y)
    wins, preds = [], []
    for origin in demo.TEST_ORIGINS:
        hist = y[origin - SEQ_LEN:origin]
        r = model.forward_channel(torch.tensor(hist, dtype=torch.float32))
        f = [float(v) for v in r["forecast"].numpy()]
        preds.append(f)
        wins.append({
            "history_start": origin - SEQ_LEN,
            "history_months": f"{month(origin - SEQ_LEN)} .. {month(origin - 1)}",
            "forecast_start": origin,
            "forecast_months": f"{month(origin)} .. {month(origin + PRED_LEN - 1)}",
            "history": [float(v) for v in hist],
            "truth": [float(v) for v in y[origin:origin + PRED_LEN]],
            "prompt": r["prompt"],
            "prompt_tokens": len(r["prompt_ids"]),
            "forecast": f,
        })
    truth_all = y[demo.TEST_ORIGINS[0]:demo.TEST_ORIGINS[-1] + PRED_LEN]
    mine = {"all": demo.metrics(truth_all, np.concatenate(preds), scale),
            "windows": [demo.metrics(y[o:o + PRED_LEN], p, scale)
                        for o, p in zip(demo.TEST_ORIGINS, preds)]}
    with open(os.path.join(ROOT, "demo", "forecast", "results.json")) as f:
        other = json.load(f)["metrics"]
    tm.write_json(os.path.join(folder, "test_windows.json"), {
        "series": "airline passengers (thousands), monthly, 1949-01 .. 1960-12; index 0 = 1949-01",
        "model": "Time-LLM (tools/timellm_model.py forward_channel, float32) on SmolLM2-135M-Instruct "
                 f"Q4_1 dequantized, first {LLM_LAYERS} blocks",
        "seq_len": SEQ_LEN, "pred_len": PRED_LEN,
        "windows": wins,
    })
    results = {
        "test_months": f"{month(demo.TEST_ORIGINS[0])} .. {month(143)}",
        "metric_notes": "MAE/RMSE in thousands of passengers (RMSE pooled over both windows); sMAPE in %; "
                        "MASE scaled by the in-sample seasonal-naive (m = 12) MAE of months 0..119",
        "mase_scale": round(scale, 4),
        "metrics": {"timellm": mine, "lstm": other["lstm"], "ets": other["ets"],
                    "seasonal_naive": other["seasonal_naive"]},
        "baselines_from": "demo/forecast/results.json (tools/train_forecast_demo.py)",
        "training": training_info,
    }
    tm.write_json(os.path.join(folder, "results.json"), results)
    return results


# The metric table is the LSTM demo's (demo.print_table: one row per model).
print_table = demo.print_table


# --------------------------------------------------------------------------------------------
# Runtime check (optional): convert with tslm, forecast the test windows, compare
# --------------------------------------------------------------------------------------------

def lag_variants(lags, n):
    """The lag lists the runtime may print instead of PyTorch's: the autocorrelation is symmetric
    (r[k] == r[n-k]), so the order inside an adjacent mirrored pair can differ, and an unpaired
    lag can come out as its mirror. Returns every such list, PyTorch's first."""
    out = [list(lags)]
    i = 0
    opts = []
    while i < len(lags):
        k = lags[i]
        m = (n - k) % n
        if i + 1 < len(lags) and lags[i + 1] == m and m != k:
            opts.append([[k, m], [m, k]])
            i += 2
            continue
        opts.append([[k]] + ([[m]] if m != k and m not in lags else []))
        i += 1
    import itertools
    for combo in itertools.product(*opts):
        cand = [v for part in combo for v in part]
        if cand not in out:
            out.append(cand)
    return out


def verify_tslm(folder, llm, tok, tslm):
    """Converts the checkpoint with `tslm convert --base GGUF --type f32`, runs `tslm forecast
    --json` on each test window's 24-month history, compares with test_windows.json and finds
    which prompt (PyTorch's lag order or a mirrored variant) reproduces the runtime's forecast."""
    import subprocess
    model = reload(folder, llm, tok)
    with open(os.path.join(folder, "test_windows.json")) as f:
        wins = json.load(f)["windows"]
    work = tempfile.mkdtemp(prefix="tl-verify-")
    out_model = os.path.join(work, "timellm.tslm")
    convert = [tslm, "convert", os.path.join(folder, tm.CHECKPOINT_FILE), "--forecast-config",
               os.path.join(folder, tm.SIDECAR_FILE), "--base", GGUF, "--type", "f32", "-o", out_model]
    subprocess.run(convert, check=True, capture_output=True)
    report = {"tslm": "convert " + " ".join(convert[2:]).replace(ROOT + "/", "").replace(work, "<tmp>")
              + "; forecast -m <tmp>/timellm.tslm --series <tmp>/history-<origin>.csv --json",
              "windows": []}
    original_prompt = tm.ref.prompt
    for w in wins:
        csv = os.path.join(work, f"history-{w['forecast_start']}.csv")
        with open(csv, "w") as f:
            f.write("passengers\n" + "".join(f"{int(v)}\n" for v in w["history"]))
        res = subprocess.run([tslm, "forecast", "-m", out_model, "--series", csv, "--json"],
                             check=True, capture_output=True, text=True)
        got = np.array(json.loads(res.stdout)["point"][0], np.float64)
        want = np.array(w["forecast"], np.float64)
        rel = float(np.max(np.abs(got - want) / np.abs(want)))
        stats = ref.prompt_statistics(ref.revin(torch.tensor(w["history"], dtype=torch.float32))[0])
        n = 2 * (SEQ_LEN // 2)
        variants = []
        for lags in lag_variants(stats["lags"], n):
            text = w["prompt"].replace(stats["lags_str"] + "<|<end_prompt>|>", str(lags) + "<|<end_prompt>|>")
            tm.ref.prompt = lambda *a, _t=text: _t
            try:
                f_var = model.forward_channel(torch.tensor(w["history"], dtype=torch.float32))["forecast"]
            finally:
                tm.ref.prompt = original_prompt
            d = float(np.max(np.abs(got - f_var.numpy()) / np.abs(f_var.numpy())))
            variants.append({"lags": lags, "max_rel_diff_vs_tslm": d})
        best = min(variants, key=lambda v: v["max_rel_diff_vs_tslm"])
        report["windows"].append({
            "forecast_months": w["forecast_months"],
            "tslm": [float(v) for v in got],
            "max_rel_diff_vs_pytorch": rel,
            "pytorch_lags": stats["lags"],
            "lags_matching_tslm": best["lags"],
            "prompt_agrees": best["lags"] == stats["lags"],
            "variants": variants,
        })
        print(f"{w['forecast_months']}: tslm vs PyTorch max relative difference {rel:.2e}; "
              f"PyTorch lags {stats['lags']}, tslm's forecast matches lags {best['lags']} "
              f"({best['max_rel_diff_vs_tslm']:.2e})")
    tm.write_json(os.path.join(folder, "tslm_check.json"), report)
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--verify-tslm", metavar="TSLM", help="a built tslm binary: convert the checkpoint, "
                    "forecast the test windows with it and compare (writes tslm_check.json)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TIMELLM_THREADS", "2")))
    t_start = time.time()
    tok = load_tokenizer()
    llm = load_backbone(LLM_LAYERS)
    print(f"backbone loaded: {LLM_LAYERS} blocks, {time.time() - t_start:.1f} s")
    if args.eval_only:
        with open(os.path.join(args.out, "results.json")) as f:
            info = json.load(f)["training"]
    else:
        y = demo.read_csv(os.path.join(ROOT, "demo", "forecast", "airline.csv"))
        model = build_model(llm, tok)
        t0 = time.time()
        info = train(model, y)
        seconds = time.time() - t0
        print(f"training: {info['epochs_run']} epochs, best validation MAE {info['validation_mae']:.2f} "
              f"at epoch {info['best_epoch']}, {seconds:.1f} s on {torch.get_num_threads()} thread(s)")
        info = dict(info, seed=SEED, lr=LR, mini_batches=N_GROUPS, max_epochs=MAX_EPOCHS, patience=PATIENCE,
                    llm_layers=LLM_LAYERS, fit_windows=len(demo.FIT_ORIGINS),
                    validation_windows=len(demo.VAL_ORIGINS), training_seconds=round(seconds, 1),
                    torch=torch.__version__.split("+")[0])
        export(model, args.out)
    results = evaluate(args.out, llm, tok, info)
    print_table(results)
    if args.verify_tslm:
        verify_tslm(args.out, llm, tok, args.verify_tslm)
    print(f"total {time.time() - t_start:.1f} s")


if __name__ == "__main__":
    main()
