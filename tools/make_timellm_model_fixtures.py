#!/usr/bin/env python3
"""Golden fixtures for the whole Time-LLM forecaster (model code: tools/timellm_model.py, RevIN and
the prompt text: tools/timellm_reference.py).

    python3 -m pip install -r tools/requirements.txt
    python3 tools/make_timellm_model_fixtures.py

Deterministic (byte-identical output on re-runs): CPU, float32, one thread, eager attention,
seeded weights, series and tokenizer corpora (single-threaded, unshuffled tokenizer training).
About 10 s.

Output: Tests/TSLMRuntimeTests/Fixtures/timellm_model/<case>/ with
  base/           the FULL (untruncated, 3-block) base LLM as a Hugging Face folder: config.json,
                  model.safetensors (f32, save_pretrained of the *ForCausalLM / *LMHeadModel,
                  tied embeddings: no lm_head.weight), and its tokenizer files
  checkpoint.pt   torch.save(TimeLLM.state_dict()) in the upstream layout, WITH llm_model.* of
                  the truncated (llm_layers = 2) bare LLM and the word_embeddings alias
  timellm.json    the sidecar (seq_len, pred_len, patch_len, stride, d_model, d_ff, n_heads,
                  num_tokens, description, llm_layers)
  golden.json     history, per-channel intermediates and forecasts (keys below)

Cases (same Time-LLM sizes: seq_len 32, pred_len 8, patch_len 8, stride 4 -> P = 8 patches,
d_model 16, d_ff 32 (= d_keys), n_heads 4, num_tokens 50, llm_layers 2 of 3):
  llama   LlamaForCausalLM base: hidden 64, 3 layers, 4 heads / 2 KV heads, head_dim 16, FFN 32,
          vocab 320, rms eps 1e-6, rope theta 1e4, tied. Tokenizer: a SentencePiece BPE
          `tokenizer.model` (vocab 320, split digits, dummy prefix, identity normalization, no
          byte fallback: every printable ASCII character is a piece) loaded with the slow
          LlamaTokenizer (legacy true), the class upstream uses: the call adds BOS (<s>, id 1).
  gpt2    GPT2LMHeadModel base: n_embd 64, 3 layers, 4 heads, n_inner 32, n_positions 256, vocab
          320, tied. Tokenizer: a byte-level BPE (vocab 320 incl. <|endoftext|> = id 0) saved by
          GPT2TokenizerFast (tokenizer.json, vocab.json, merges.txt) and read with the slow
          GPT2Tokenizer upstream uses: no special token is added.
The generator asserts that a second implementation gives the same prompt ids (llama: the
sentencepiece library with BOS prepended; gpt2: GPT2TokenizerFast, the tokenizers library).

golden.json keys:
  case, backbone, base_architecture, base_layers, llm_layers, d_llm, vocab_size, seq_len,
  pred_len, patch_len, stride, patch_nums (P), d_model, d_ff, d_keys (= d_ff), n_heads,
  num_tokens, description, add_bos
  window           = seq_len: the model reads history[:, -window:]
  history          [C][history_steps] raw float32 values (history_steps = 40 > window)
  forecast         [C][pred_len] expected forecast in raw units
  prototypes_first_row [d_llm], prototypes_row_sums [num_tokens], prototypes_sum
  prototype_keys_sum, prototype_values_sum   sums of key/value_projection(prototypes)
  channels         per channel (C = 2):
    mean, std                      RevIN statistics (float32)
    x_norm                         [seq_len]
    prompt                         the prompt text (byte-exact)
    prompt_ids                     token ids as the HF tokenizer call returns them (BOS first
                                   for llama), prompt_len = T
    patches                        [P][patch_len] (x_norm with the replicated tail, unfolded)
    patch_embedding_first_row      [d_model] (patch 0), patch_embedding_row_sums [P],
                                   patch_embedding_sum
    attention_max                  largest reprogramming softmax weight (over heads, patches,
                                   prototypes), attention_min likewise
    reprogrammed_first_row         [d_llm] (patch 0), reprogrammed_last_row [d_llm],
                                   reprogrammed_row_sums [P], reprogrammed_sum
    prompt_embedding_sum           sum of the embedded prompt tokens [T, d_llm]
    hidden_first_patch_row         [d_llm] last_hidden_state at position T (first patch)
    hidden_last_row                [d_llm] last_hidden_state at position T + P - 1
    hidden_row_sums                [T + P]
    head_input_first_row           [P] hidden[T:, 0] (head input channel 0)
    forecast_normalized            [pred_len] head output before de-normalization
    forecast                       [pred_len]
  checks           what the generator verified:
    effects_max_abs_normalized     how much each upstream detail moves the normalized forecast
                                   (max abs difference over the channels; each asserted
                                   >= 1e-3): full_depth (all 3 blocks instead of llm_layers 2),
                                   no_bos (llama: the prompt without BOS), patch_major_flatten
                                   (head input flattened patch-major), zero_padded_conv (zero
                                   instead of circular padding), first_window (history[:, :window]
                                   instead of the last window), other_description
    d_model_heads_keys             d_keys = d_model // n_heads instead of d_ff would be a
                                   differently shaped layer, so only the shapes are stated
    truncation_vs_full_model_hidden_states   our hidden = the full base model's hidden state
                                   after block llm_layers - 1 through its final norm (0)
    reload_forecast_max_abs_diff   TimeLLM.load of the exported folder (0)
    second_tokenizer_ids_equal     llama: the sentencepiece library with BOS prepended; gpt2:
                                   GPT2TokenizerFast (the tokenizers library)
    numpy_float64_max_abs_diff     patches, patch embedding, prototypes, reprogrammed and
                                   normalized forecast recomputed from the weights in float64
                                   NumPy (the LLM hidden state taken as given); about 1e-6
    batched_upstream               informational: the two channels as ONE upstream batch
                                   (prompts padded to the longer one with the EOS pad token on
                                   the tokenizer's padding side, no attention mask) and the max
                                   abs forecast difference; not what a runtime should do
    lag_class_min_gap              smallest gap between the autocorrelation values of the top 4
                                   lag classes {k, n-k}: asserted > 1e-3, so the SET of 5 lags
                                   is robust
    lag_pair_abs_diffs             per channel, |r[k] - r[n-k]| for each pair in the top 5: 0 or
                                   a few float32 ulps, so the ORDER inside a pair, as printed in
                                   the prompt, is decided by torch's FFT rounding and topk
    sizes_bytes                    base/ and checkpoint.pt
  checkpoint_keys  the checkpoint's keys in state-dict order
  base_files       the files of base/
  versions         torch / transformers / tokenizers / sentencepiece / numpy / python
Floats are float32 values written with the shortest decimal that round-trips.
"""
import io
import json
import os
import string
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import tokenizers
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_backbone_fixtures as mbf  # noqa: E402  (floats, versions, perturb; 1 thread)
import timellm_model as tm  # noqa: E402
import timellm_reference as ref  # noqa: E402

from transformers import (  # noqa: E402
    GPT2Config, GPT2LMHeadModel, GPT2Tokenizer, GPT2TokenizerFast,
    LlamaConfig, LlamaForCausalLM, LlamaTokenizer,
)
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()  # the truncated load reports the skipped block's weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "TSLMRuntimeTests", "Fixtures", "timellm_model")

VOCAB = 320
HIDDEN = 64
BASE_LAYERS = 3
LLM_LAYERS = 2
HISTORY_STEPS = 40
TIME_LLM = dict(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=16, d_ff=32, n_heads=4,
                num_tokens=50)
DESCRIPTION = "Synthetic hourly load of a tiny test grid."
OTHER_DESCRIPTION = "Daily rainfall at a made-up weather station."
MIN_EFFECT = 1e-3

CASES = [
    dict(name="llama", seed=5101),
    dict(name="gpt2", seed=5201),
]


# -- tokenizers ------------------------------------------------------------------------------------

def tokenizer_corpus():
    """Fixed text: prompts of seeded random walks (so the template words get merged), a few
    sentences and every printable ASCII character."""
    g = torch.Generator().manual_seed(77)
    lines = []
    for i in range(48):
        x = torch.randn(TIME_LLM["seq_len"], generator=g).cumsum(0)
        x_norm, _, _ = ref.revin(x)
        desc = DESCRIPTION if i % 2 == 0 else OTHER_DESCRIPTION
        lines.append(ref.prompt(desc, TIME_LLM["pred_len"], TIME_LLM["seq_len"], x_norm))
    lines += [
        "The quick brown fox jumps over the lazy dog.",
        "A time series is a sequence of observations taken at successive points in time.",
        "Forecast the next values of the series from its history.",
        string.printable[:94],  # digits, letters, punctuation (no whitespace but the space)
        " ".join(string.printable[:94]),
    ]
    return lines


def llama_tokenizer(folder):
    """SentencePiece BPE written as folder/tokenizer.model, loaded with the slow LlamaTokenizer."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus()), model_writer=buf, model_type="bpe",
        vocab_size=VOCAB, byte_fallback=False, split_digits=True, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, num_threads=1,
        shuffle_input_sentence=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.model")
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        tok = LlamaTokenizer(vocab_file=path, legacy=True, add_bos_token=True,
                             add_eos_token=False)
        tok.save_pretrained(folder)
    return LlamaTokenizer.from_pretrained(folder)


def gpt2_tokenizer(folder):
    """Byte-level BPE saved by GPT2TokenizerFast, loaded with the slow GPT2Tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    fast = GPT2TokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                             eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return GPT2Tokenizer.from_pretrained(folder)


def independent_ids(case, folder, text):
    """The ids of `text` from a second implementation: the sentencepiece library itself (with
    BOS first, as the Llama call adds it) or the fast GPT-2 tokenizer (tokenizers library)."""
    if case == "llama":
        sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
        return [sp.bos_id()] + sp.encode(text)
    return GPT2TokenizerFast.from_pretrained(folder)(text).input_ids


# -- models ----------------------------------------------------------------------------------------

def base_model(case, tokenizer, seed):
    torch.manual_seed(seed)
    if case == "llama":
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=32,
                          num_hidden_layers=BASE_LAYERS, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                          rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          attn_implementation="eager")
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=HIDDEN, n_layer=BASE_LAYERS,
                         n_head=4, n_inner=32, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, attn_implementation="eager")
        model = GPT2LMHeadModel(cfg)
    mbf.perturb(model, seed, "llama" if case == "llama" else "gpt2")
    return model.eval()


def save_base(model, folder):
    """save_pretrained (f32 safetensors) without generation_config.json, next to the tokenizer."""
    model.save_pretrained(folder, safe_serialization=True)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)


# Scales of the Time-LLM parts (seeded Gaussian noise, sorted-name order): chosen so that every
# stage carries O(0.1..1) values and the reprogramming softmax is neither flat nor one-hot.
PART_STD = {
    "patch_embedding.value_embedding.tokenConv.weight": 0.25,
    "mapping_layer.weight": 0.1,
    "mapping_layer.bias": 0.05,
    "reprogramming_layer.query_projection.weight": 0.25,
    "reprogramming_layer.key_projection.weight": 0.4,
    "reprogramming_layer.value_projection.weight": 0.3,
    "reprogramming_layer.out_projection.weight": 0.06,
    "output_projection.linear.weight": 0.08,
}


def perturb_parts(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.startswith("llm_model.") or name == "word_embeddings":
                continue
            std = PART_STD.get(name, 0.05)  # biases
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=torch.float32))


# -- series ----------------------------------------------------------------------------------------

def make_history(seed):
    """[2, 40] float32: a seasonal upward series around 20 and a negative downward one."""
    g = np.random.default_rng(seed)
    t = np.arange(HISTORY_STEPS, dtype=np.float64)
    a = 20.0 + 4.0 * np.sin(2 * np.pi * t / 10.0) + 0.08 * t + 0.5 * g.standard_normal(HISTORY_STEPS)
    b = -7.5 + 1.5 * np.cos(2 * np.pi * t / 6.0 + 1.0) - 0.04 * t + 0.3 * g.standard_normal(HISTORY_STEPS)
    return torch.tensor(np.stack([a, b]), dtype=torch.float32)


def lag_ranking(x_norm):
    """The circular autocorrelation r (the same torch calls as timellm_reference.calculate_lags)
    ranked by lag class {k, n - k} (r[k] and r[n - k] are mathematically equal, so which of the
    two torch.topk puts first is decided by float32 rounding). Returns the smallest gap between
    the values of consecutive classes among the top 4 (no near-tie BETWEEN classes) and, for the
    classes in the top 5, |r[k] - r[n - k]| (the rounding that orders each pair)."""
    seq = x_norm.reshape(1, 1, -1)
    q = torch.fft.rfft(seq, dim=-1)
    corr = torch.fft.irfft(q * torch.conj(q), dim=-1)[0, 0]
    n = corr.shape[0]
    classes = sorted(range(n // 2 + 1), key=lambda k: -float(torch.maximum(corr[k], corr[(n - k) % n])))
    values = [float(torch.maximum(corr[k], corr[(n - k) % n])) for k in classes]
    class_gap = min(values[i] - values[i + 1] for i in range(3))
    pairs = {}
    count = 0
    for k in classes:
        if count >= ref.TOP_K:
            break
        members = 1 if k in (0, n - k) else 2
        if members == 2:
            pairs[f"{k}/{n - k}"] = float((corr[k] - corr[n - k]).abs())
        count += members
    return class_gap, pairs


# -- checks ----------------------------------------------------------------------------------------

def normalized_with(model, x, **kw):
    """The normalized forecast of one window with one upstream detail changed."""
    r = model.forward_channel(x)
    with torch.no_grad():
        if "llm" in kw:
            hidden = kw["llm"](inputs_embeds=r["llm_input"].unsqueeze(0), use_cache=False).last_hidden_state[0]
            return model.head(hidden)
        if kw.get("no_bos"):
            llm_in = r["llm_input"][1:]
            return model.head(model.run_llm(llm_in.unsqueeze(0))[0])
        if kw.get("patch_major"):
            dec = r["head_input"]                             # [d_ff, P]
            return model.output_projection.linear(dec.T.reshape(-1))
        if kw.get("zero_pad"):
            conv = model.patch_embedding.value_embedding.tokenConv
            emb = torch.nn.functional.conv1d(r["patches"].T.unsqueeze(0), conv.weight, padding=1)[0].T
            protos = model.prototypes()
            reprog = model.reprogramming_layer(emb, protos, protos)
            llm_in = torch.cat([r["prompt_embeddings"], reprog], dim=0)
            return model.head(model.run_llm(llm_in.unsqueeze(0))[0])
    raise ValueError(kw)


def float64_check(model, r):
    """Steps 3-6 and 8 spelled out in float64 NumPy from the weights (the LLM's hidden state is
    taken from r): max abs differences of the patches, patch embedding, prototypes,
    reprogrammed patches and normalized forecast against the torch modules."""
    def npy(t):
        return t.detach().to(torch.float64).numpy()

    xn = npy(r["x_norm"])
    P, pl, st = model.patch_nums, model.patch_len, model.stride
    padded = np.concatenate([xn, np.repeat(xn[-1:], st)])
    patches = np.stack([padded[p * st: p * st + pl] for p in range(P)])            # [P, pl]
    W = npy(model.patch_embedding.value_embedding.tokenConv.weight)                 # [dm, pl, 3]
    emb = np.zeros((P, W.shape[0]))
    for p in range(P):
        for k in range(3):
            emb[p] += W[:, :, k] @ patches[(p + k - 1) % P]                         # circular
    E = npy(model.word_embeddings)                                                  # [V, d_llm]
    protos = npy(model.mapping_layer.weight) @ E + npy(model.mapping_layer.bias)[:, None]
    rl = model.reprogramming_layer

    def lin(layer, x):
        return x @ npy(layer.weight).T + npy(layer.bias)

    q, k, v = lin(rl.query_projection, emb), lin(rl.key_projection, protos), lin(rl.value_projection, protos)
    dk = model.d_ff
    heads = []
    for h in range(model.n_heads):
        sl = slice(h * dk, (h + 1) * dk)
        s = q[:, sl] @ k[:, sl].T / np.sqrt(dk)
        a = np.exp(s - s.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        heads.append(a @ v[:, sl])
    reprog = lin(rl.out_projection, np.concatenate(heads, axis=1))
    hidden = npy(r["hidden"])
    dec = hidden[:, :model.d_ff].T[:, -P:].reshape(-1)                              # patch fastest
    y = lin(model.output_projection.linear, dec)

    def d(a, b):
        return float(np.abs(a - npy(b)).max())

    return {"patches": d(patches, r["patches"]), "patch_embedding": d(emb, r["patch_embedding"]),
            "prototypes": d(protos, r["prototypes"]), "reprogrammed": d(reprog, r["reprogrammed"]),
            "forecast_normalized": d(y, r["forecast_normalized"])}


def max_abs(a, b):
    return float((a - b).abs().max())


def truncation_check(model, base, x):
    """Our hidden vs the FULL base model's hidden state after block llm_layers - 1, put through
    its final norm by hand."""
    r = model.forward_channel(x)
    inner = base.model if hasattr(base, "model") else base.transformer
    norm = inner.norm if hasattr(inner, "norm") else inner.ln_f
    with torch.no_grad():
        out = inner(inputs_embeds=r["llm_input"].unsqueeze(0), use_cache=False,
                    output_hidden_states=True)
        h = out.hidden_states[LLM_LAYERS][0]
        return max_abs(norm(h), r["hidden"])


# -- one case --------------------------------------------------------------------------------------

def write_json(path, obj):
    tm.write_json(path, obj, indent=1)


def folder_size(folder):
    total = 0
    for root, _dirs, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def clean(folder):
    if os.path.isdir(folder):
        for root, dirs, files in os.walk(folder, topdown=False):
            for f in files:
                os.remove(os.path.join(root, f))
            for d in dirs:
                os.rmdir(os.path.join(root, d))
    os.makedirs(folder, exist_ok=True)


def make_case(name, seed):
    folder = os.path.join(OUT, name)
    clean(folder)
    base_dir = os.path.join(folder, "base")
    os.makedirs(base_dir)
    writer = llama_tokenizer if name == "llama" else gpt2_tokenizer
    tokenizer = writer(base_dir)
    base = base_model(name, tokenizer, seed)
    save_base(base, base_dir)

    llm = tm.load_llm(base_dir, LLM_LAYERS)
    assert tm.llm_layer_count(llm) == LLM_LAYERS
    model = tm.TimeLLM(llm, tokenizer, description=DESCRIPTION, **TIME_LLM)
    perturb_parts(model, seed + 1)
    model.eval()
    assert model.word_embeddings.data_ptr() == llm.get_input_embeddings().weight.data_ptr()

    history = make_history(seed + 2)
    window = model.window(history)
    results = [model.forward_channel(window[c]) for c in range(window.shape[0])]
    forecast = model.forecast(history)
    for c, r in enumerate(results):
        assert torch.equal(forecast[c], r["forecast"])

    # tokenizer: BOS rule and a second implementation
    ids_equal = all(independent_ids(name, base_dir, r["prompt"]) == r["prompt_ids"].tolist()
                     for r in results)
    assert ids_equal, f"{name}: the second tokenizer implementation disagrees"
    add_bos = name == "llama"
    for r in results:
        assert (int(r["prompt_ids"][0]) == tokenizer.bos_token_id) == add_bos
        assert name == "gpt2" or tokenizer.unk_token_id not in r["prompt_ids"].tolist()
        assert r["prompt_ids"].shape[0] + model.patch_nums <= base.config.max_position_embeddings

    # effects of the upstream details (normalized forecasts)
    checks = {}
    effects = {}
    full_llm = tm.load_llm(base_dir, BASE_LAYERS)
    for label, kw in [("full_depth", {"llm": full_llm}), ("no_bos", {"no_bos": True}),
                      ("patch_major_flatten", {"patch_major": True}),
                      ("zero_padded_conv", {"zero_pad": True})]:
        if label == "no_bos" and not add_bos:
            continue
        d = max(max_abs(normalized_with(model, window[c], **kw), results[c]["forecast_normalized"])
                for c in range(len(results)))
        assert d >= MIN_EFFECT, f"{name}: {label} does not change the forecast ({d})"
        effects[label] = d
    first = model.window(history[:, :TIME_LLM["seq_len"]])
    d = max(max_abs(model.forward_channel(first[c])["forecast_normalized"], results[c]["forecast_normalized"])
            for c in range(len(results)))
    assert d >= MIN_EFFECT
    effects["first_window"] = d
    model.description = OTHER_DESCRIPTION
    d = max(max_abs(model.forward_channel(window[c])["forecast_normalized"], results[c]["forecast_normalized"])
            for c in range(len(results)))
    model.description = DESCRIPTION
    assert d >= MIN_EFFECT
    effects["other_description"] = d
    checks["effects_max_abs_normalized"] = effects
    checks["d_model_heads_keys"] = {
        "upstream_d_keys": TIME_LLM["d_ff"],
        "d_model_over_n_heads_would_be": TIME_LLM["d_model"] // TIME_LLM["n_heads"],
        "query_projection_weight_shape": list(model.reprogramming_layer.query_projection.weight.shape),
    }

    trunc = max(truncation_check(model, base, window[c]) for c in range(len(results)))
    assert trunc <= 1e-6, f"{name}: truncated model differs from the full model's block {LLM_LAYERS}"
    checks["truncation_vs_full_model_hidden_states"] = trunc
    checks["second_tokenizer_ids_equal"] = ids_equal
    f64 = {}
    for r in results:
        for key, val in float64_check(model, r).items():
            f64[key] = max(f64.get(key, 0.0), val)
    assert max(f64.values()) < 1e-4, f"{name}: float64 NumPy disagrees: {f64}"
    checks["numpy_float64_max_abs_diff"] = f64

    # attention: neither flat nor one-hot
    for r in results:
        a = r["attention"]
        assert 0.05 < float(a.max()) < 0.9, f"{name}: attention max {float(a.max())}"

    # informational: the channels as one upstream batch
    batched, batch_ids = model.forecast_batched_upstream(history)
    lengths = [int(r["prompt_ids"].shape[0]) for r in results]
    checks["batched_upstream"] = {
        "prompt_lengths": lengths,
        "padding_side": tokenizer.padding_side,
        "pad_token_id": tokenizer.pad_token_id,
        "forecast_max_abs_diff": max_abs(batched, forecast),
        "note": "informational: upstream pads a batch's prompts to the longest and runs the LLM "
                "without an attention mask; a runtime forecasts each channel alone",
    }
    ranking = [lag_ranking(r["x_norm"]) for r in results]
    class_gap = min(rk[0] for rk in ranking)
    assert class_gap > 1e-3, f"{name}: near-tie between lag classes ({class_gap})"
    checks["lag_class_min_gap"] = class_gap
    checks["lag_pair_abs_diffs"] = [rk[1] for rk in ranking]

    # export, reload, compare
    model.export(folder)
    with open(os.path.join(folder, tm.SIDECAR_FILE)) as f:
        assert json.load(f) == model.sidecar()
    state = torch.load(os.path.join(folder, tm.CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    keys = list(state.keys())
    assert keys[0] == "word_embeddings"
    assert state["word_embeddings"].data_ptr() == state[
        "llm_model.embed_tokens.weight" if name == "llama" else "llm_model.wte.weight"].data_ptr()
    assert not any(k.startswith(f"llm_model.layers.{LLM_LAYERS}.") or k.startswith(f"llm_model.h.{LLM_LAYERS}.")
                   for k in keys)
    reloaded = tm.TimeLLM.load(folder, base_dir)
    checks["reload_forecast_max_abs_diff"] = max_abs(reloaded.forecast(history), forecast)
    assert checks["reload_forecast_max_abs_diff"] == 0.0

    # golden
    protos = results[0]["prototypes"]
    with torch.no_grad():
        pk = model.reprogramming_layer.key_projection(protos)
        pv = model.reprogramming_layer.value_projection(protos)
    f = mbf.floats

    def scalar(t):
        return f(t.reshape(1))[0]

    channels = []
    for r in results:
        T = int(r["prompt_ids"].shape[0])
        channels.append({
            "mean": scalar(r["mean"]),
            "std": scalar(r["std"]),
            "x_norm": f(r["x_norm"]),
            "prompt": r["prompt"],
            "prompt_ids": r["prompt_ids"].tolist(),
            "prompt_len": T,
            "patches": [f(row) for row in r["patches"]],
            "patch_embedding_first_row": f(r["patch_embedding"][0]),
            "patch_embedding_row_sums": f(r["patch_embedding"].sum(dim=1)),
            "patch_embedding_sum": scalar(r["patch_embedding"].sum()),
            "attention_max": scalar(r["attention"].max()),
            "attention_min": scalar(r["attention"].min()),
            "reprogrammed_first_row": f(r["reprogrammed"][0]),
            "reprogrammed_last_row": f(r["reprogrammed"][-1]),
            "reprogrammed_row_sums": f(r["reprogrammed"].sum(dim=1)),
            "reprogrammed_sum": scalar(r["reprogrammed"].sum()),
            "prompt_embedding_sum": scalar(r["prompt_embeddings"].sum()),
            "hidden_first_patch_row": f(r["hidden"][T]),
            "hidden_last_row": f(r["hidden"][-1]),
            "hidden_row_sums": f(r["hidden"].sum(dim=1)),
            "head_input_first_row": f(r["head_input"][0]),
            "forecast_normalized": f(r["forecast_normalized"]),
            "forecast": f(r["forecast"]),
        })

    base_files = sorted(os.listdir(base_dir))
    checks["sizes_bytes"] = {"base": folder_size(base_dir),
                             "checkpoint.pt": os.path.getsize(os.path.join(folder, tm.CHECKPOINT_FILE))}
    versions = mbf.versions()
    versions["tokenizers"] = tokenizers.__version__
    versions["sentencepiece"] = spm.__version__
    golden = {
        "case": name,
        "backbone": name,
        "base_architecture": type(base).__name__,
        "base_files": base_files,
        "base_layers": BASE_LAYERS,
        "llm_layers": LLM_LAYERS,
        "d_llm": model.d_llm,
        "vocab_size": model.vocab_size,
        **TIME_LLM,
        "patch_nums": model.patch_nums,
        "d_keys": TIME_LLM["d_ff"],
        "description": DESCRIPTION,
        "add_bos": add_bos,
        "bos_token_id": tokenizer.bos_token_id if add_bos else None,
        "window": TIME_LLM["seq_len"],
        "history_steps": HISTORY_STEPS,
        "history": [f(row) for row in history],
        "forecast": [f(row) for row in forecast],
        "prototypes_first_row": f(protos[0]),
        "prototypes_row_sums": f(protos.sum(dim=1)),
        "prototypes_sum": scalar(protos.sum()),
        "prototype_keys_sum": scalar(pk.sum()),
        "prototype_values_sum": scalar(pv.sum()),
        "channels": channels,
        "checks": checks,
        "checkpoint_keys": keys,
        "versions": versions,
    }
    write_json(os.path.join(folder, "golden.json"), golden)
    total = folder_size(folder)
    print(f"{name:6s} T {lengths} P {model.patch_nums} forecast {[round(v, 3) for v in forecast[0].tolist()[:3]]}... "
          f"effects {({k: round(v, 4) for k, v in effects.items()})} batched diff "
          f"{checks['batched_upstream']['forecast_max_abs_diff']:.3g} folder {total / 1024:.0f} KiB")


def main():
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        make_case(case["name"], case["seed"])


if __name__ == "__main__":
    main()
