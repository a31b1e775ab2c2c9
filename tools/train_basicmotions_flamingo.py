#!/usr/bin/env python3
"""Trains an OpenTSLM-Flamingo BasicMotions demo on a frozen SmolLM2-135M-Instruct: the same task,
split, prompt text, targets and augmentation as the SoftPrompt demo (tools/train_basicmotions.py),
then evaluates it greedily on the 40 test recordings and exports under
demo/basicmotions/flamingo/.

    tools/fetch_smollm2.sh
    python3 tools/train_basicmotions_flamingo.py              # train + evaluate + export
    python3 tools/train_basicmotions_flamingo.py --eval-only  # re-evaluate the committed weights
    python3 tools/train_basicmotions_flamingo.py --measure    # time 3 training steps

Model (the Flamingo parts of tools/opentslm_reference.py, upstream semantics, smaller sizes):
  - CNN tokenizer (Conv1d 1->128, kernel/stride 4, no bias; position embedding, max_patches 32;
    LayerNorm); the encoder gets the raw values (preset `custom`, as the SoftPrompt demo).
    All 6 channels' patches (6 x 25) form ONE media item.
  - Perceiver resampler: dim 128, depth PERC_DEPTH, PERC_LATENTS latents, 8 heads x
    PERC_INNER/8, FF 4 x 128.
  - Gated cross-attention before every XATTN_EVERY-th decoder layer (upstream: every layer),
    8 heads x XATTN_INNER/8, FF XATTN_FF (upstream 4 x hidden), tanh gates initialized to 0.
    Upstream's text-time masking: a token attends to the latents only while exactly one <image>
    precedes it; tokens after the second <image>, and every generated token, get the mean of V.
  - The language model, its embedding table included, stays frozen (upstream trains the input
    embeddings; here they are kept so that the checkpoint need not carry the 49k x 576 table).
    The two tokens Flamingo adds, <|endofchunk|> (id 49152) and <image> (49153), get ZERO rows in
    the embedding table (and so in the tied LM head), the rows `tslm convert` appends to the
    base's table for a checkpoint without `lang_encoder.model.embed_tokens.weight`.
Prompt (upstream Flamingo): pre_prompt + per channel " <image> " + description + " <|endofchunk|>"
+ " " + post_prompt, tokenized once (SmolLM2: no BOS); target: the rationale + EOS, as SP.

Checkpoint: official Flamingo layout (`model_state` with `model.` keys: `vision_encoder.*`,
`perceiver.*`, `lang_encoder.model.layers.N.gated_cross_attn_layer.*`), without the frozen
language-model tensors (the base's are used), weights stored as float16 (the PyTorch evaluation
runs the float16-rounded weights in float32, so `tslm` f32 must reproduce it exactly).

Training: as SP (seed 1234, 32 training / 8 validation recordings carved from the training set,
augmentation, AdamW, warmup + cosine, clipping, best epoch by validation accuracy then loss;
the test set only for the final report); forward/backward through a bfloat16 copy of the frozen
LLM with the cross-attention blocks in float32.
"""
import argparse
import copy
import json
import os
import random
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import basicmotions as bm  # noqa: E402
import opentslm_reference as ref  # noqa: E402
import train_basicmotions as tb  # noqa: E402
from train_basicmotions import csv_name, write_json  # noqa: E402

ROOT = bm.ROOT
OUT = os.path.join(ROOT, "demo", "basicmotions", "flamingo")

EPOCHS = 30
LR, WARMUP, WEIGHT_DECAY, CLIP = tb.LR, tb.WARMUP, tb.WEIGHT_DECAY, tb.CLIP  # the SoftPrompt demo's
VAL_PER_CLASS = 2
VAL_NEW_TOKENS = 24
MAX_NEW_TOKENS = 80
SEED = 1234
MAX_PATCHES = 32
PERC_DEPTH, PERC_LATENTS, PERC_INNER = 2, 32, 256
XATTN_EVERY, XATTN_INNER, XATTN_FF = 6, 256, 576
END_OF_CHUNK, MEDIA = "<|endofchunk|>", "<image>"
DETAIL = 4


def load_llm():
    """The SoftPrompt demo's frozen float32 SmolLM2, with the two Flamingo tokens' zero rows."""
    llm = tb.load_llm()
    rows = llm.get_input_embeddings().weight.shape[0]
    llm.resize_token_embeddings(rows + 2, mean_resizing=False)
    with torch.no_grad():  # the added tokens' rows: zero (tied: also the LM head's)
        llm.get_input_embeddings().weight[rows:] = 0
        if llm.get_output_embeddings().weight.data_ptr() != llm.get_input_embeddings().weight.data_ptr():
            raise SystemExit("expected SmolLM2's tied embeddings")
    for p in llm.parameters():
        p.requires_grad_(False)
    return llm


class XLayer(nn.Module):
    """open_flamingo's FlamingoLayer: the gated cross-attention block (or none) before the
    original decoder layer. The block runs in float32 whatever the LLM's dtype."""

    def __init__(self, block, decoder_layer, state):
        super().__init__()
        self.gated_cross_attn_layer = block
        self.decoder_layer = decoder_layer
        self.state = state

    @property
    def attention_type(self):
        return getattr(self.decoder_layer, "attention_type", None)

    def forward(self, hidden_states, *args, **kwargs):
        if self.gated_cross_attn_layer is not None:
            media, tt = self.state["media"], self.state["text_time"]
            hidden_states = self.gated_cross_attn_layer(hidden_states.float(), media, tt).to(hidden_states.dtype)
        return self.decoder_layer(hidden_states, *args, **kwargs)


class Flamingo(nn.Module):
    """CNN tokenizer + perceiver + gated blocks, attached to one or more frozen LLM copies."""

    def __init__(self, hidden, layers):
        super().__init__()
        self.vision_encoder = ref.CNNTokenizer(MAX_PATCHES)
        self.perceiver = ref.PerceiverResampler(ref.ENCODER_DIM, PERC_DEPTH, PERC_LATENTS, PERC_INNER)
        self.blocks = nn.ModuleDict({
            str(i): ref.GatedCrossAttentionBlock(hidden, ref.ENCODER_DIM, XATTN_INNER, XATTN_FF)
            for i in range(layers) if (i + 1) % XATTN_EVERY == 0})
        with torch.no_grad():  # upstream: randn position embedding and latents
            self.vision_encoder.pos_embed.copy_(torch.randn(self.vision_encoder.pos_embed.shape))
            self.perceiver.latents.copy_(torch.randn(self.perceiver.latents.shape))

    def attach(self, llm):
        state = {"media": None, "text_time": None}
        llm.model.layers = nn.ModuleList(
            XLayer(self.blocks[str(i)] if str(i) in self.blocks else None, d, state)
            for i, d in enumerate(llm.model.layers))
        return state

    def media(self, series):
        padded = ref.pad_series([torch.from_numpy(x) for x in series])
        return self.perceiver(self.vision_encoder(padded).reshape(1, -1, ref.ENCODER_DIM))

    def checkpoint_state(self):
        """Official key names (`model.` prefix), float16."""
        out = {}
        for k, v in self.vision_encoder.state_dict().items():
            out["model.vision_encoder." + k] = v
        for k, v in self.perceiver.state_dict().items():
            out["model.perceiver." + k] = v
        for i, b in self.blocks.items():
            for k, v in b.state_dict().items():
                out[f"model.lang_encoder.model.layers.{i}.gated_cross_attn_layer.{k}"] = v
        return {k: v.detach().to(torch.float16).contiguous() for k, v in out.items()}

    def load_checkpoint_state(self, state):
        mine = {}
        for k, v in state.items():
            k = k[len("model."):]
            if k.startswith("lang_encoder.model.layers."):
                i, rest = k[len("lang_encoder.model.layers."):].split(".", 1)
                k = f"blocks.{i}.{rest[len('gated_cross_attn_layer.'):]}"
            mine[k] = v.to(torch.float32)
        self.load_state_dict(mine, strict=True)


class Demo:
    def __init__(self, llm, model, tok, eos, train_llm=None):
        self.llm, self.model, self.tok, self.eos = llm, model, tok, eos
        self.media_id, self.end_id = tok.token_to_id(MEDIA), tok.token_to_id(END_OF_CHUNK)
        self.state = model.attach(llm)
        self.train_llm = train_llm or llm
        self.train_state = model.attach(train_llm) if train_llm is not None else self.state

    def prompt_ids(self, s):
        text = s["pre_prompt"]
        for t in s["time_series_text"]:
            text += f" {MEDIA} {t} {END_OF_CHUNK}"
        text += " " + s["post_prompt"]
        return bm.encode(self.tok, text)

    def condition(self, state, latents, ids):
        state["media"] = latents
        state["text_time"] = torch.cumsum((torch.tensor([ids]) == self.media_id).long(), dim=-1)

    def loss(self, s):
        ids = self.prompt_ids(s)
        ans = bm.encode(self.tok, s["answer"]) + [self.eos]
        full = ids + ans
        self.condition(self.train_state, self.model.media(s["time_series"]), full)
        hidden = self.train_llm.model(input_ids=torch.tensor([full]), use_cache=False).last_hidden_state
        n = len(ids)
        logits = self.train_llm.lm_head(hidden[0, n - 1:n - 1 + len(ans)]).float()
        return nn.functional.cross_entropy(logits, torch.tensor(ans))

    @torch.no_grad()
    def generate(self, s, max_new=MAX_NEW_TOKENS):
        ids = self.prompt_ids(s)
        latents = self.model.media(s["time_series"])
        self.condition(self.state, latents, ids)
        images = int(self.state["text_time"][0, -1])
        out = self.llm(input_ids=torch.tensor([ids]), use_cache=True)
        cache, row = out.past_key_values, out.logits[0, -1]
        first = row.clone()
        gen, gaps = [], []
        for _ in range(max_new):
            top = torch.topk(row, 2).values
            gaps.append(float(top[0] - top[1]))
            t = int(row.argmax())
            gen.append(t)
            if t == self.eos:
                break
            self.state["text_time"] = torch.full((1, 1), images, dtype=torch.long)
            out = self.llm(input_ids=torch.tensor([[t]]), past_key_values=cache, use_cache=True)
            cache, row = out.past_key_values, out.logits[0, -1]
        return ids, gen, gaps, first, latents


def text_of(demo, gen):
    return demo.tok.decode([t for t in gen if t != demo.eos])


def validate(demo, samples, labels):
    demo.model.eval()
    correct, losses, preds = 0, [], []
    with torch.no_grad():
        for s, g in zip(samples, labels):
            losses.append(float(demo.loss(s)))
            pred = bm.parse_answer(text_of(demo, demo.generate(s, VAL_NEW_TOKENS)[1]))
            preds.append(pred)
            correct += pred == g
    demo.model.train()
    return correct / len(labels), float(np.mean(losses)), preds


def save(model, path):
    tmp = path + ".tmp-w"
    torch.save({"model_state": model.checkpoint_state()}, tmp)
    os.replace(tmp, path)


def train(demo, x, y, epochs, train_idx, val_idx, ckpt_path):
    model = demo.model
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)
    val_samples = [bm.sample(x[i], y[i]) for i in val_idx]
    val_labels = [y[i] for i in val_idx]
    rng = random.Random(SEED)
    aug_rng = np.random.default_rng(SEED)
    total = epochs * len(train_idx)
    step, history, best = 0, [], None
    t0 = time.time()
    model.train()
    for epoch in range(epochs):
        order = list(train_idx)
        rng.shuffle(order)
        losses = []
        for i in order:
            s = bm.sample(bm.augment(x[i], aug_rng), y[i])
            for g in opt.param_groups:
                g["lr"] = tb.lr_at(step, total)
            opt.zero_grad()
            loss = demo.loss(s)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % 10 == 0:
                gates = [round(float(b.attn_gate.tanh()), 3) for b in model.blocks.values()]
                print(f"  step {step}/{total}  loss {np.mean(losses[-10:]):.4f}  tanh(attn gates) {gates}  "
                      f"{time.time() - t0:6.0f}s", flush=True)
        mean = float(np.mean(losses))
        acc, vloss, preds = validate(demo, val_samples, val_labels)
        history.append({"epoch": epoch + 1, "train_loss": mean, "val_accuracy": acc, "val_loss": vloss,
                        "seconds": round(time.time() - t0, 1)})
        better = best is None or (acc, -vloss) > (best["val_accuracy"], -best["val_loss"])
        if better:
            best = dict(history[-1])
            save(model, ckpt_path)
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {mean:.4f}  val acc {acc:.3f} loss {vloss:.4f} "
              f"{preds}{'  *best' if better else ''}  elapsed {time.time() - t0:6.0f}s", flush=True)
    model.eval()
    return history, best, time.time() - t0


def floats(t):
    return [float(str(v)) for v in t.detach().to(torch.float32).reshape(-1).numpy()]


def evaluate(demo, x, y):
    rows, preds = [], []
    t0 = time.time()
    for i in range(len(y)):
        s = bm.sample(x[i], y[i])
        ids, gen, gaps, first, latents = demo.generate(s)
        text = text_of(demo, gen)
        pred = bm.parse_answer(text)
        preds.append(pred)
        row = {"index": i, "csv": csv_name(i, y[i]), "label": y[i], "prediction": pred,
               "generated_text": text, "generated_ids": gen, "greedy_min_top2_gap": min(gaps)}
        if i < DETAIL:
            top = torch.topk(first, 10)
            row.update({"prompt_ids": ids, "latent_sums": ref.sums(latents),
                        "latents_row0_first16": floats(latents[0, 0, :16]),
                        "first_step_top10_ids": top.indices.tolist(),
                        "first_step_top10_logits": floats(top.values), "greedy_top2_gaps": gaps})
        rows.append(row)
        print(f"test {i:2d} {y[i]:9s} -> {pred:9s} {text[:90]!r}", flush=True)
    acc = float(np.mean([p == g for p, g in zip(preds, y)]))
    return rows, acc, bm.macro_f1(preds, y), time.time() - t0


def main():
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--eval-only", action="store_true", help="load <out>/model_checkpoint.pt")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--measure", action="store_true", help="time 3 training steps and exit")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    OUT = os.path.abspath(args.out)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    t_start = time.time()
    llm = load_llm()
    tok, eos = bm.smollm2_tokenizer()
    tok.add_special_tokens([END_OF_CHUNK, MEDIA])
    if (tok.token_to_id(END_OF_CHUNK), tok.token_to_id(MEDIA)) != (49152, 49153):
        raise SystemExit("unexpected ids for the Flamingo tokens")
    t_load = time.time() - t_start
    x_train, y_train = bm.load_split("TRAIN")
    x_test, y_test = bm.load_split("TEST")
    model = Flamingo(llm.config.hidden_size, llm.config.num_hidden_layers)
    train_llm = None
    if not args.eval_only:
        train_llm = copy.deepcopy(llm).to(torch.bfloat16)
    demo = Demo(llm, model, tok, eos, train_llm)
    os.makedirs(OUT, exist_ok=True)
    ckpt_path = os.path.join(OUT, "model_checkpoint.pt")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"trainable parameters {n_params:,}; cross-attention before layers {list(model.blocks.keys())}")

    if args.measure:
        opt = torch.optim.AdamW(model.parameters(), lr=LR)
        for i in range(3):
            t = time.time()
            opt.zero_grad()
            demo.loss(bm.sample(x_train[i], y_train[i])).backward()
            opt.step()
            print(f"step {i}: {time.time() - t:.2f}s  prompt {len(demo.prompt_ids(bm.sample(x_train[i], y_train[i])))} tokens")
        return

    train_idx, val_idx = bm.validation_split(y_train, VAL_PER_CLASS, SEED)
    history, best, t_train, meta_old = None, None, None, {}
    if not args.eval_only:
        history, best, t_train = train(demo, x_train, y_train, args.epochs, train_idx, val_idx, ckpt_path)
    elif os.path.exists(os.path.join(OUT, "metadata.json")):
        meta_old = json.load(open(os.path.join(OUT, "metadata.json")))
    model.load_checkpoint_state(torch.load(ckpt_path, weights_only=True)["model_state"])
    model.eval()
    rows, acc, f1, t_eval = evaluate(demo, x_test, y_test)
    write_json(os.path.join(OUT, "reference_outputs.json"), {
        "note": "PyTorch (transformers, GGUF dequantized to float32, the checkpoint's float16 weights "
                "in float32), greedy decoding; generated_text excludes the final EOS",
        "accuracy": acc, "macro_f1": f1, "recordings": rows,
    })
    import transformers
    meta = {
        "architecture": "OpenTSLM-Flamingo",
        "vision_encoder": {"kind": "CNN tokenizer", "width": 128, "max_patches": MAX_PATCHES},
        "perceiver": {"depth": PERC_DEPTH, "latents": PERC_LATENTS, "heads": 8, "inner": PERC_INNER, "ff": 512},
        "cross_attention": {"every_n_layers": XATTN_EVERY, "layers": [int(i) for i in model.blocks.keys()],
                            "heads": 8, "inner": XATTN_INNER, "ff": XATTN_FF},
        "added_tokens": {END_OF_CHUNK: 49152, MEDIA: 49153, "embedding_rows": "zero, frozen"},
        "trainable_parameters": n_params,
        "training": meta_old.get("training") or {
            "epochs": args.epochs, "steps": args.epochs * len(train_idx), "batch": 1, "lr": LR,
            "warmup_steps": WARMUP, "schedule": "linear warmup, cosine decay to 0",
            "weight_decay": WEIGHT_DECAY, "grad_clip": CLIP, "seed": SEED, "threads": args.threads,
            "train_recordings": len(train_idx),
            "validation_recordings": [csv_name(i, y_train[i]).replace(".csv", "") + " (training set)" for i in val_idx],
            "augmentation": "as the SoftPrompt demo (tools/basicmotions.py augment)",
            "model_selection": "best validation accuracy (greedy, 24 tokens), ties by lower validation loss",
            "selected_epoch": best["epoch"] if best else None, "history": history,
            "training_llm_dtype": "bfloat16 copy of the dequantized GGUF; Flamingo parts float32",
        },
        "evaluation": {"test_recordings": len(y_test), "accuracy": acc, "macro_f1": f1,
                       "decoding": f"greedy, EOS stop, max {MAX_NEW_TOKENS} new tokens"},
        "timing_seconds": {
            "load_llm_and_tokenizer": round(t_load, 1),
            "training": round(t_train, 1) if t_train is not None else meta_old.get("timing_seconds", {}).get("training"),
            "evaluation_40": round(t_eval, 1), "total_this_run": round(time.time() - t_start, 1),
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    write_json(os.path.join(OUT, "metadata.json"), meta)
    print(f"accuracy {acc:.3f}  macro-F1 {f1:.3f}  eval {t_eval:.0f}s  total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
