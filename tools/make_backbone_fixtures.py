#!/usr/bin/env python3
"""Golden reference fixtures for the text backbones, produced by Hugging Face `transformers`.

Run from anywhere (paths are relative to the repository root, this file's parent's parent):

    python3 -m pip install -r tools/requirements.txt
    python3 tools/make_backbone_fixtures.py

    python3 tools/make_backbone_fixtures.py --no-smollm2   # tiny models only

Deterministic (byte-identical output on re-runs): CPU, float32, one thread, fixed seeds, eager
attention. About 10 s for the tiny models plus about 60 s for the optional SmolLM2 reference
(20 s building the tokenizer from the GGUF, 30 s dequantizing, 3 s decoding), on 2 cores.

It writes, under Tests/TSLMRuntimeTests/Fixtures/backbones/:

  <name>/config.json        Hugging Face config, as `save_pretrained` writes it
  <name>/model.safetensors  all weights, float32 (`save_pretrained(safe_serialization=True)`)
  <name>/golden.json        reference outputs (see GOLDEN KEYS below)

for four tiny random-weight models:

  llama       LlamaForCausalLM: hidden 64, 2 layers, 4 heads / 2 KV heads (GQA), head_dim 16,
              intermediate 48, vocab 256, untied lm_head, rope_theta 1e4 with llama3 rope scaling
              (factor 8, low 1, high 4, original_max_position_embeddings 32: with head_dim 16
              this puts frequency pair 0 in the "keep", pair 1 in the "smooth" and pairs 2..7 in
              the "divide by factor" branch, so all three branches are exercised).
  llama_tied  same shape, tied embeddings (no lm_head.weight saved), no rope scaling.
  gemma3      Gemma3ForCausalLM (model_type gemma3_text): hidden 64, 3 layers with
              layer_types [sliding, full, sliding], sliding_window 4 (smaller than the
              16-token prompt), head_dim 16, 4 heads / 2 KV heads, query_pre_attn_scalar 16,
              rope_theta 1e6 (full layers) / rope_local_base_freq 1e4 (sliding layers),
              intermediate 48, vocab 256, gelu_pytorch_tanh, no softcapping (Gemma 3 has none),
              tied embeddings, q_norm/k_norm, all RMSNorm weights random (the x*(1+w) form).
  gpt2        GPT2LMHeadModel: n_embd 64, 2 layers, 4 heads, n_inner 96, n_positions 64,
              vocab 256, tied embeddings (no lm_head.weight saved). GPT2LMHeadModel saves names
              WITH the `transformer.` prefix (`transformer.wte.weight`,
              `transformer.h.0.attn.c_attn.weight`, ...); the original openai-community/gpt2
              checkpoint uses bare names (`wte.weight`, `h.0...`), so converters should accept
              both. Conv1D weights are stored [in_features, out_features] (transposed relative
              to nn.Linear); c_attn packs Q, K, V along the output dimension.

Gemma 3 and GPT-2 rely on the Hugging Face default tie_word_embeddings = true: save_pretrained
omits the key from their config.json (as on the Hub), so a converter must default it to true.
gemma3/config.json carries both `layer_types` (what transformers >= 4.53 reads) and, added by this
script, the older `sliding_window_pattern: 2` (layer i is full iff (i + 1) % 2 == 0), which agree.

Sensitivity checks (asserted by the script, results in golden.json under "sensitivity"): the
llama logits change when the llama3 rope scaling is removed, and the gemma3 logits change when the
sliding window is widened to cover the whole sequence, so these features are really tested.

The MLP (48) and vocab (256) are smaller than a "nice" 128 / 320 so that each folder stays around
300 KB (253-344 KB). Every parameter is overwritten with seeded Gaussian noise (see `perturb` and
the seeds in `main`), so logits are far from flat and greedy decoding yields varied tokens; the
script asserts >= 16 distinct greedy tokens, no run of more than 3 equal tokens and a top-2 logit
gap > 1e-3 at every argmax it records.

GOLDEN KEYS (golden.json):
  prompt_ids                 16 token ids (seeded, inside the vocab)
  logits_last                float32 logits of the last prompt position, full vocab
  logits_all_argmax          argmax of the logits at every prompt position (16 ints)
  logits_first_rows          3 full-vocab logit rows, at the prompt positions listed in
                             logits_first_rows_positions ([0, 7, 15])
  greedy_ids                 32 new tokens from model.generate(do_sample=False,
                             max_new_tokens=32, min_new_tokens=32) with no EOS (the script also
                             checks them against a no-KV-cache argmax loop)
  hidden_after_embedding     first 8 values at position 0 after the embedding (Gemma: times
                             sqrt(hidden) as HF does it; GPT-2: wte + wpe)
  layer_outputs_last_first8  per decoder layer, first 8 values of its output at the last prompt
                             position (before the final norm)
  final_norm_last_first8     first 8 values after the final norm at the last prompt position
  rope_inv_freq              (Llama, Gemma) the inverse frequencies HF uses; for Gemma
                             {"full": [...], "sliding": [...]}
  prompt_min_top2_gap        smallest top-1 minus top-2 logit gap over the prompt positions
  greedy_min_top2_gap        the same over the 32 greedy steps
  tensor_names               sorted tensor names inside model.safetensors
  sensitivity                see above
  versions                   torch / transformers / safetensors / numpy / python

REAL MODEL (optional): if .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf exists (tools/fetch_smollm2.sh),
it also writes backbones/smollm2_reference.json and backbones/smollm2_reference.logits_last.f32
(raw little-endian float32, 49152 values = the logits of the last prompt position). transformers
dequantizes the Q4_1 GGUF to float32 and undoes llama.cpp's Q/K row permutation itself. The prompt
is given as token ids (ChatML "What is the capital of France?", encoded with the tokenizer
transformers builds from the GGUF), so the tokenizer can be tested separately.
"""
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import transformers
import safetensors
from safetensors import safe_open
from transformers import (
    GenerationConfig,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TSLMRuntimeTests", "Fixtures", "backbones")
SMOLLM2_GGUF = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

PROMPT_LEN = 16
NEW_TOKENS = 32
ROW_POSITIONS = (0, 7, 15)
VOCAB = 256

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # identical reductions on every machine/run


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def floats(t):
    """float32 values as JSON numbers, each written with the shortest decimal that round-trips to
    the same float32 (numpy's float32 repr), so parsing as Float gives back the exact value."""
    return [float(str(x)) for x in t.detach().to(torch.float32).reshape(-1).numpy()]


def perturb(model, seed, kind, embed_std=0.2, matrix_std=0.2, final_norm_gain=1.0):
    """Overwrites every parameter with seeded noise, in a fixed (sorted-name) order.

    Matrices: N(0, matrix_std^2); token embeddings N(0, embed_std^2); GPT-2 wpe N(0, 0.1^2);
    biases (GPT-2 only) N(0, 0.05^2). Norm weights get an effective scale of 1 + N(0, 0.1^2)
    (Llama / GPT-2 LayerNorm, x*w) or 1 + N(0, 0.2^2) (Gemma, stored w such that x*(1+w)); the
    final norm's effective scale is additionally multiplied by final_norm_gain.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = "norm" in name or ".ln_" in name  # RMSNorm / q_norm / k_norm / GPT-2 ln_*
            is_final = name in ("model.norm.weight", "transformer.ln_f.weight")
            if is_norm and name.endswith(".weight"):
                gain = final_norm_gain if is_final else 1.0
                if kind == "gemma":
                    p.copy_(gain * (1.0 + 0.2 * noise) - 1.0)  # effective scale (1 + w)
                else:
                    p.copy_(gain * (1.0 + 0.1 * noise))
            elif name.endswith(".bias"):
                p.copy_(0.05 * noise)
            elif name.endswith("wpe.weight"):
                p.copy_(0.1 * noise)
            elif "embed_tokens" in name or name.endswith("wte.weight"):
                p.copy_(embed_std * noise)
            else:
                p.copy_(matrix_std * noise)


def prompt_ids(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (1, PROMPT_LEN), generator=g)


def greedy_no_cache(model, ids, n):
    """Reference greedy loop that recomputes the whole sequence each step (no KV cache).

    Returns the new ids and the smallest top-1 minus top-2 logit gap over the decode steps, so a
    consumer knows how much numerical slack the greedy fixture tolerates.
    """
    seq = ids.clone()
    gaps = []
    for _ in range(n):
        with torch.no_grad():
            row = model(input_ids=seq, use_cache=False).logits[0, -1]
        top = torch.topk(row, 2).values
        gaps.append(float(top[0] - top[1]))
        seq = torch.cat([seq, row.argmax().view(1, 1)], dim=1)
    return seq[0, ids.shape[1]:].tolist(), min(gaps)


def top2_gap(logits):
    top = torch.topk(logits, 2, dim=-1).values
    return float((top[..., 0] - top[..., 1]).min())


def longest_run(ids):
    best = run = 1
    for a, b in zip(ids, ids[1:]):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def greedy_generate(model, ids, n, with_logits=False):
    gc = GenerationConfig(
        do_sample=False,
        max_new_tokens=n,
        min_new_tokens=n,
        eos_token_id=None,
        bos_token_id=None,
        pad_token_id=0,
        num_beams=1,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    # The model's own generation_config would put its EOS back (and min_new_tokens would then mask
    # that token's logit), so clear it there too: the decode must be a plain argmax loop.
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            generation_config=gc,
            use_model_defaults=False,  # keep eos_token_id=None (no EOS, no min-length suppression)
            return_dict_in_generate=True,
            output_logits=True,
        )
    new = out.sequences[0, ids.shape[1]:].tolist()
    assert len(new) == n, f"expected {n} new tokens, got {len(new)}"
    if with_logits:
        return new, [row[0].to(torch.float32) for row in out.logits]
    return new


def decoder_layers_and_norm(model):
    if isinstance(model, GPT2LMHeadModel):
        return model.transformer.h, model.transformer.ln_f
    return model.model.layers, model.model.norm


def run_reference(name, model, seed, extra=None):
    """Forward pass + greedy decode, writes the folder and golden.json."""
    model.eval()
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))

    ids = prompt_ids(seed + 1, model.config.vocab_size)
    layers, final_norm = decoder_layers_and_norm(model)

    captured = {"layers": [None] * len(layers)}
    hooks = []
    for i, layer in enumerate(layers):
        def hook(_m, _inp, out, i=i):
            h = out[0] if isinstance(out, tuple) else out
            captured["layers"][i] = h.detach().clone()
        hooks.append(layer.register_forward_hook(hook))

    def norm_hook(_m, _inp, out):
        captured["norm"] = out.detach().clone()
    hooks.append(final_norm.register_forward_hook(norm_hook))

    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False, output_hidden_states=True)
    for h in hooks:
        h.remove()
    logits = out.logits[0].to(torch.float32)  # [T, V]
    # hidden_states[0] is the embedding output exactly as HF computes it (Gemma scaling, GPT-2 wpe).
    emb0 = out.hidden_states[0][0, 0, :8]
    if isinstance(model, GPT2LMHeadModel):
        manual = model.transformer.wte.weight[ids[0, 0]] + model.transformer.wpe.weight[0]
        assert torch.allclose(out.hidden_states[0][0, 0], manual)

    greedy = greedy_generate(model, ids, NEW_TOKENS)
    check, greedy_gap = greedy_no_cache(model, ids, NEW_TOKENS)
    assert greedy == check, f"{name}: generate() {greedy} != no-cache loop {check}"
    distinct = len(set(greedy))
    assert distinct >= 16 and longest_run(greedy) <= 3, f"{name}: greedy output not varied: {greedy}"
    prompt_gap = top2_gap(logits)
    assert min(prompt_gap, greedy_gap) > 1e-3, f"{name}: near-tie in argmax ({prompt_gap}, {greedy_gap})"
    argmax_all = logits.argmax(-1).tolist()

    model.save_pretrained(folder, safe_serialization=True)
    gen_cfg = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    st_path = os.path.join(folder, "model.safetensors")
    with safe_open(st_path, framework="pt") as f:
        tensor_names = sorted(f.keys())
        for k in tensor_names:
            assert f.get_tensor(k).dtype == torch.float32, k

    golden = {
        "model": name,
        "architecture": type(model).__name__,
        "prompt_ids": ids[0].tolist(),
        "logits_last": floats(logits[-1]),
        "logits_all_argmax": argmax_all,
        "logits_first_rows_positions": list(ROW_POSITIONS),
        "logits_first_rows": [floats(logits[p]) for p in ROW_POSITIONS],
        "greedy_ids": greedy,
        "greedy_new_tokens": NEW_TOKENS,
        "prompt_min_top2_gap": prompt_gap,
        "greedy_min_top2_gap": greedy_gap,
        "hidden_after_embedding": floats(emb0),
        "layer_outputs_last_first8": [floats(h[0, -1, :8]) for h in captured["layers"]],
        "final_norm_last_first8": floats(captured["norm"][0, -1, :8]),
        "tensor_names": tensor_names,
        "attn_implementation": model.config._attn_implementation,
        "notes": "float32 on CPU, eager attention; logits of transformers "
                 + transformers.__version__ + "; greedy with EOS disabled",
        "versions": versions(),
    }
    if extra:
        golden.update(extra)
    write_golden(name, golden)
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print(f"{name:11s} {size / 1024:6.1f} KB  distinct greedy {distinct:2d}  min gaps "
          f"{prompt_gap:.4f}/{greedy_gap:.4f}  greedy {greedy[:8]}...")
    return golden


def logits_with(model, config_changes, ids):
    """Logits of a copy of `model` (same weights) whose config differs by `config_changes`."""
    cfg = model.config.__class__.from_dict(model.config.to_dict())
    for k, v in config_changes.items():
        setattr(cfg, k, v)
    cfg._attn_implementation = "eager"
    twin = type(model)(cfg).to(torch.float32).eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        return twin(input_ids=ids, use_cache=False).logits[0]


def add_sensitivity(name, model, golden, label, config_changes):
    """Asserts the feature matters: changing the config must move the last-position logits."""
    ids = torch.tensor([golden["prompt_ids"]])
    other = logits_with(model, config_changes, ids)
    diff = float((other[-1] - torch.tensor(golden["logits_last"])).abs().max())
    assert diff > 1e-2, f"{name}: {label} does not change the logits (max diff {diff})"
    golden.setdefault("sensitivity", {})[label] = {
        "config_changes": config_changes,
        "logits_last_max_abs_diff": diff,
        "argmax_all_if_changed": other.argmax(-1).tolist(),
    }
    write_golden(name, golden)


def write_golden(name, golden):
    with open(os.path.join(OUT, name, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


def make_llama(name, tied, scaled, seed, noise):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        hidden_act="silu",
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        rope_scaling=(
            {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            }
            if scaled
            else None
        ),
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
        dtype="float32",
    )
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).to(torch.float32)
    perturb(model, seed, "llama", **noise)
    inv = model.model.rotary_emb.inv_freq
    extra = {"rope_inv_freq": floats(inv)}
    if scaled:
        base = 1.0 / (10000.0 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
        extra["rope_inv_freq_unscaled"] = floats(base)
        assert not torch.allclose(inv, base), "llama3 scaling did not change the frequencies"
    golden = run_reference(name, model, seed, extra)
    if scaled:
        add_sensitivity(name, model, golden, "without_rope_scaling", {"rope_scaling": None})
    return golden


def make_gemma3(seed, noise):
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        rope_local_base_freq=10_000.0,
        rope_scaling=None,
        query_pre_attn_scalar=16,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        sliding_window_pattern=2,  # same pattern; keeps the private _sliding_window_pattern consistent
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        attn_implementation="eager",
        dtype="float32",
    )
    cfg._attn_implementation = "eager"
    model = Gemma3ForCausalLM(cfg).to(torch.float32)
    perturb(model, seed, "gemma", **noise)
    assert float(model.model.embed_tokens.embed_scale) == 8.0
    extra = {
        "rope_inv_freq": {
            "full": floats(model.model.rotary_emb.inv_freq),
            "sliding": floats(model.model.rotary_emb_local.inv_freq),
        },
        "layer_types": list(cfg.layer_types),
        "sliding_window": cfg.sliding_window,
        "sliding_window_semantics": "HF masking_utils: query i sees key j iff j <= i and j > i - sliding_window "
                                    "(the token itself plus sliding_window-1 previous tokens)",
        "embed_scale": math.sqrt(64),
    }
    golden = run_reference("gemma3", model, seed, extra)
    add_sensitivity("gemma3", model, golden, "sliding_window_256", {"sliding_window": 256})
    add_sensitivity("gemma3", model, golden, "all_layers_full",
                    {"layer_types": ["full_attention"] * cfg.num_hidden_layers})
    # Older configs name the pattern instead of listing layer_types; keep both in config.json.
    cfg_path = os.path.join(OUT, "gemma3", "config.json")
    with open(cfg_path) as f:
        saved = json.load(f)
    saved["sliding_window_pattern"] = 2
    with open(cfg_path, "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)
        f.write("\n")
    return golden


def make_gpt2(seed, noise):
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_inner=96,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1,
        dtype="float32",
    )
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg).to(torch.float32)
    perturb(model, seed, "gpt2", **noise)
    return run_reference("gpt2", model, seed)


def check_reload(name):
    """Reloads the written folder with from_pretrained and checks it reproduces golden.json."""
    from transformers import AutoModelForCausalLM

    folder = os.path.join(OUT, name)
    with open(os.path.join(folder, "golden.json")) as f:
        golden = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    ids = torch.tensor([golden["prompt_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0]
    want = torch.tensor(golden["logits_last"])
    assert torch.equal(logits[-1], want), f"{name}: reloaded folder gives different logits"
    assert logits.argmax(-1).tolist() == golden["logits_all_argmax"], name


def make_smollm2():
    if not os.path.exists(SMOLLM2_GGUF):
        print(f"skipping SmolLM2 reference: {SMOLLM2_GGUF} not found (run tools/fetch_smollm2.sh)")
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from importlib.metadata import version

    folder, fname = os.path.split(SMOLLM2_GGUF)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    t_tok = time.time() - t0
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    model.eval()
    t_load = time.time() - t0 - t_tok

    text = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    ids_list = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids_list) == text, "tokenizer round trip failed"
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert ids_list.count(im_start) == 2 and ids_list.count(im_end) == 1, ids_list
    ids = torch.tensor([ids_list])

    t1 = time.time()
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0].to(torch.float32)
    t_fwd = time.time() - t1
    last = logits[-1].contiguous()
    assert last.numel() == model.config.vocab_size == 49152, last.shape

    t2 = time.time()
    greedy, step_logits = greedy_generate(model, ids, 24, with_logits=True)
    t_gen = time.time() - t2
    assert step_logits[0].equal(last) or torch.allclose(step_logits[0], last, atol=1e-4), "cache path differs"
    greedy_gaps = [float(g) for g in (lambda t: t[:, 0] - t[:, 1])(torch.topk(torch.stack(step_logits), 2).values)]
    decoded = tok.decode(greedy)
    assert "Paris" in decoded, decoded

    raw_path = os.path.join(OUT, "smollm2_reference.logits_last.f32")
    raw = last.numpy().astype("<f4").tobytes()
    with open(raw_path, "wb") as f:
        f.write(raw)
    positions = list(range(len(ids_list) - 4, len(ids_list)))
    top10 = {str(p): torch.topk(logits[p], 10).indices.tolist() for p in positions}
    top10_values = {str(p): floats(torch.topk(logits[p], 10).values) for p in positions}
    ref = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (dequantized to float32 by transformers)",
        "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "prompt_text": text,
        "prompt_ids": ids_list,
        "prompt_ids_source": "tokenizer built by transformers from the GGUF metadata "
                             "(round-trip checked; the text has no digits)",
        "logits_last_file": "smollm2_reference.logits_last.f32",
        "logits_last_format": "raw little-endian float32, vocab_size values, last prompt position",
        "logits_last_count": int(last.numel()),
        "logits_last_argmax": int(last.argmax()),
        "logits_last_first16": floats(last[:16]),
        "logits_last_max": float(last.max()),
        "logits_last_mean": float(last.double().mean()),
        "top10_ids": top10,
        "top10_logits": top10_values,
        "all_positions_argmax": logits.argmax(-1).tolist(),
        "greedy_ids": greedy,
        "greedy_new_tokens": 24,
        "greedy_text": decoded,
        "greedy_top2_gaps": greedy_gaps,
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
        "greedy_first_eos_index": greedy.index(im_end) if im_end in greedy else None,
        "greedy_note": "EOS disabled: decoding continues past <|im_end|>; steps after the first EOS are "
                       "still well defined (greedy argmax) but are more fragile (see greedy_top2_gaps)",
        "config": {
            k: getattr(model.config, k, None)
            for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                      "num_attention_heads", "num_key_value_heads", "rms_norm_eps", "rope_theta",
                      "max_position_embeddings", "tie_word_embeddings")
        },
        "timing_seconds": {"tokenizer_from_gguf": round(t_tok, 2), "load_and_dequantize": round(t_load, 2), "prompt_forward": round(t_fwd, 3),
                           "generate_24": round(t_gen, 2)},
        "versions": dict(versions(), gguf=version("gguf")),
    }
    with open(os.path.join(OUT, "smollm2_reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(f"smollm2     tokenizer {t_tok:.1f}s load {t_load:.1f}s forward {t_fwd:.2f}s generate {t_gen:.1f}s: {decoded!r}")


def main():
    os.makedirs(OUT, exist_ok=True)
    t0 = time.time()
    # Seeds and noise scales were picked (by a sweep over seeds 1001-1012) so that greedy decoding
    # gives >= 16 distinct tokens, no run longer than 3, and every argmax has a clear top-2 gap.
    # Tied models use a small embedding std plus a larger final-norm gain: with std-0.2 tied
    # embeddings (x8 for Gemma) the residual stream is dominated by the input embedding and greedy
    # decoding collapses into repeating one token.
    plain = dict(embed_std=0.2, matrix_std=0.2, final_norm_gain=1.0)
    small_tied = dict(embed_std=0.02, matrix_std=0.3, final_norm_gain=4.0)
    make_llama("llama", tied=False, scaled=True, seed=1002, noise=plain)
    make_llama("llama_tied", tied=True, scaled=False, seed=1010, noise=plain)
    make_gemma3(seed=1010, noise=small_tied)
    make_gpt2(seed=1012, noise=plain)
    for name in ("llama", "llama_tied", "gemma3", "gpt2"):
        check_reload(name)
    print(f"tiny models done in {time.time() - t0:.1f}s")
    if "--no-smollm2" not in sys.argv:
        make_smollm2()
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
