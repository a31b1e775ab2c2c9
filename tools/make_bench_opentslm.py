#!/usr/bin/env python3
"""Random-init OpenTSLM checkpoints on the SmolLM2-135M backbone, for tools/bench_opentslm.sh.

    python3 tools/make_bench_opentslm.py OUT_DIR [--base SmolLM2.gguf] [--seed N]

Writes, in the OFFICIAL checkpoint layouts (formats/opentslm.md, "Checkpoint layouts"; the
module and parameter names come from tools/opentslm_reference.py):

  OUT_DIR/sp/model_checkpoint.pt        SoftPrompt: encoder_state (6 Transformer layers, FFN
                                        1024, max_patches 1024), projector_state (128 -> 576),
                                        lora_enabled False. About 11 MB.
  OUT_DIR/flamingo/model_checkpoint.pt  Flamingo: model_state = the whole wrapper state dict,
                                        every key under `model.` and `llm.` plus the aliases
                                        lang_encoder.old_decoder_blocks / gated_cross_attn_layers
                                        (torch.save stores each shared tensor once). CNN tokenizer
                                        (max_patches 1024), perceiver (64 latents, depth 6, 8 x 64,
                                        FF 512), gated cross-attention before every decoder layer
                                        (8 x 64, FF 4 x 576), and the language model itself:
                                        SmolLM2-135M read from the GGUF by transformers
                                        (dequantized to float32), its embedding table grown by 2
                                        rows for <|endofchunk|> (49152) and <image> (49153). The
                                        GGUF has a pad token (id 2), so no <PAD> row is added, as
                                        upstream's add_special_tokens would do. About 0.95 GB.
  OUT_DIR/manifest.json                 what was written, sizes, seed, versions.

Weights are seeded PyTorch default initializations (float32, CPU), except: position embeddings
N(0, 0.02^2), perceiver latents N(0, 1), the two new embedding rows N(0, 0.02^2), and the
cross-attention gates, which upstream initializes to 0 (a no-op branch) and are set here to
+-0.05 / 0.05 so that a runtime cannot skip the branch: the benchmark then measures the work a
trained model does. The outputs are meaningless text; only memory and time are of interest.

Each file is written to a temporary name and renamed. About 30-60 s on 2 cores; peak memory
about 3 GB.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import opentslm_reference as ref  # noqa: E402

DEFAULT_BASE = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# SmolLM2-135M and the upstream OpenTSLM sizes (formats/opentslm.md, "SoftPrompt", "Flamingo").
HIDDEN, LAYERS, VOCAB = 576, 30, 49152
ENC_LAYERS, ENC_FF, MAX_PATCHES = 6, 1024, 1024
PERC_DEPTH, PERC_LATENTS, PERC_INNER, PERC_FF = 6, 64, 512, 4 * ref.ENCODER_DIM
XATTN_INNER, XATTN_FF = 512, 4 * HIDDEN
ADDED_TOKENS = {"<|endofchunk|>": VOCAB, "<image>": VOCAB + 1}


def save(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp-w"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def randomize_front_end(front, seed):
    """pos_embed is zeros at construction (upstream trains it); give it seeded values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        front.pos_embed.copy_(0.02 * torch.randn(front.pos_embed.shape, generator=g))


def softprompt(out, seed):
    torch.manual_seed(seed)
    encoder = ref.TransformerCNNEncoder(num_layers=ENC_LAYERS, ff_dim=ENC_FF, max_patches=MAX_PATCHES)
    projector = ref.MLPProjector(HIDDEN)
    randomize_front_end(encoder, seed + 1)
    ckpt = {
        "encoder_state": encoder.state_dict(),
        "projector_state": projector.state_dict(),
        "lora_enabled": False,
    }
    path = os.path.join(out, "sp", "model_checkpoint.pt")
    save(ckpt, path)
    return path, sum(t.numel() for s in (ckpt["encoder_state"], ckpt["projector_state"]) for t in s.values())


def load_backbone(base):
    """SmolLM2 from its GGUF, dequantized to float32 by transformers (q/k rows in HF order)."""
    from transformers import LlamaForCausalLM
    llm = LlamaForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(base)), gguf_file=os.path.basename(base),
                                           dtype=torch.float32)
    cfg = llm.config
    got = (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size)
    if got != (HIDDEN, LAYERS, VOCAB):
        raise SystemExit(f"{base}: expected SmolLM2-135M (hidden, layers, vocab) {(HIDDEN, LAYERS, VOCAB)}, got {got}")
    return llm.eval()


def flamingo(out, base, seed):
    llm = load_backbone(base)
    # Upstream adds <|endofchunk|> and <image> (and <PAD> only without a pad token) and resizes.
    with torch.no_grad():
        old = llm.get_input_embeddings().weight.detach().clone()
        llm.resize_token_embeddings(VOCAB + len(ADDED_TOKENS), mean_resizing=False)
        emb = llm.get_input_embeddings().weight
        emb[:VOCAB].copy_(old)
        g = torch.Generator().manual_seed(seed + 2)
        emb[VOCAB:].copy_(0.02 * torch.randn(emb[VOCAB:].shape, generator=g))
    if not llm.config.tie_word_embeddings or llm.lm_head.weight.data_ptr() != emb.data_ptr():
        raise SystemExit(f"{base}: SmolLM2 ties lm_head to the embeddings, but the loaded model does not")

    torch.manual_seed(seed)
    vision = ref.CNNTokenizer(MAX_PATCHES)
    perceiver = ref.PerceiverResampler(ref.ENCODER_DIM, PERC_DEPTH, PERC_LATENTS, PERC_INNER, PERC_FF)
    model = ref.FlamingoModel(vision, perceiver, llm, ADDED_TOKENS["<image>"], XATTN_INNER, XATTN_FF)
    randomize_front_end(vision, seed + 3)
    g = torch.Generator().manual_seed(seed + 4)
    with torch.no_grad():
        perceiver.latents.copy_(torch.randn(perceiver.latents.shape, generator=g))
        for i, block in enumerate(llm.gated_cross_attn_layers):
            block.attn_gate.fill_(0.05 if i % 2 == 0 else -0.05)
            block.ff_gate.fill_(0.05)
    state = ref.OpenTSLMFlamingoCheckpoint(model).state_dict()
    path = os.path.join(out, "flamingo", "model_checkpoint.pt")
    save({"model_state": state}, path)
    unique = {t.data_ptr(): t.numel() for t in state.values()}
    return path, sum(unique.values()), len(state)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder (created)")
    ap.add_argument("--base", default=DEFAULT_BASE, help="the SmolLM2-135M GGUF (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=20260)
    args = ap.parse_args()
    if not os.path.isfile(args.base):
        raise SystemExit(f"{args.base}: not found (tools/fetch_smollm2.sh fetches it)")
    torch.set_num_threads(2)
    t0 = time.time()
    sp_path, sp_params = softprompt(args.out, args.seed)
    t1 = time.time()
    fl_path, fl_params, fl_keys = flamingo(args.out, args.base, args.seed + 100)
    t2 = time.time()
    import transformers
    manifest = {
        "seed": args.seed,
        "base": os.path.abspath(args.base),
        "dims": {"hidden": HIDDEN, "layers": LAYERS, "vocab": VOCAB, "encoder_dim": ref.ENCODER_DIM,
                 "encoder_layers": ENC_LAYERS, "encoder_ff": ENC_FF, "max_patches": MAX_PATCHES,
                 "perceiver": {"depth": PERC_DEPTH, "latents": PERC_LATENTS, "inner": PERC_INNER, "ff": PERC_FF},
                 "xattn": {"every_n_layers": 1, "inner": XATTN_INNER, "ff": XATTN_FF}},
        "added_tokens": ADDED_TOKENS,
        "softprompt": {"path": sp_path, "bytes": os.path.getsize(sp_path), "params": sp_params},
        "flamingo": {"path": fl_path, "bytes": os.path.getsize(fl_path), "params": fl_params, "state_keys": fl_keys},
        "seconds": {"softprompt": round(t1 - t0, 1), "flamingo": round(t2 - t1, 1)},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    mpath = os.path.join(args.out, "manifest.json")
    with open(mpath + ".tmp-w", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(mpath + ".tmp-w", mpath)
    print(f"softprompt {sp_path}: {sp_params / 1e6:.1f}M params, {os.path.getsize(sp_path) / 2**20:.0f} MiB ({t1 - t0:.1f}s)")
    print(f"flamingo   {fl_path}: {fl_params / 1e6:.1f}M params, {fl_keys} keys, "
          f"{os.path.getsize(fl_path) / 2**20:.0f} MiB ({t2 - t1:.1f}s)")


if __name__ == "__main__":
    main()
