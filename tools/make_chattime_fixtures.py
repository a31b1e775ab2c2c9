#!/usr/bin/env python3
"""Golden fixtures for ChatTime (Tests/TSLMRuntimeTests/Fixtures/chattime/), produced by the
official inference code (PyPI chat-time==0.3.0) and transformers' slow LlamaTokenizer.

What is made:
  model/            a tiny ChatTime-shaped Hugging Face folder: LlamaForCausalLM (hidden 32, 2
                    layers, 4 heads, untied) in bf16 safetensors shards, a SentencePiece BPE
                    `tokenizer.model` trained here (LLaMA's trainer settings), the 10,001 value
                    tokens in `added_tokens.json` (written in shuffled key order: ids come from
                    the file, not from the order), tokenizer_config.json with legacy=false.
  values.json       discretize / serialize / parse / inverse of chat-time's Discretizer and
                    Serializer on 10,000 random values and adversarial series.
  prompts.json      prompts of chat-time's getPrompt and their ids (slow LlamaTokenizer) for
                    legacy=false and legacy=true.
  logits.json       last-position logits of a forecast prompt (transformers, f32).
  model.q8_0.gguf   the same model as a Q8_0 GGUF build (llama.cpp converter's layout).
  forecast.json     greedy forecasts by chat-time's own ChatTime.predict (the pipeline made
                    greedy: one path, do_sample=False) on the tiny model.
  votes.json        ChatTime.analyze / predict post-processing on given sample texts (the
                    pipeline replaced by one returning those texts).

chat-time 0.3.0 pins numpy 1.26 and torch < 2.5 and uses np.NaN, which numpy 2 removed; its
wheel is fetched with `pip download --no-deps` (sha256 checked) and imported from the .whl
with np.NaN aliased to np.nan; nothing else in it is changed.

Run: python3 -m pip install -r tools/requirements.txt && python3 tools/make_chattime_fixtures.py
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

np.NaN = np.nan  # chat-time 0.3.0 uses np.NaN (removed in numpy 2.0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/TSLMRuntimeTests/Fixtures/chattime")
CACHE = os.path.join(ROOT, ".cache/wheels")
WHEEL = "chat_time-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "a9c90a81c9006dc1682a96a6f26b276ed58a941b5e7e419a5be17229b3356f63"


def fetch_chat_time():
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, WHEEL)
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "chat-time==0.3.0",
                        "-d", CACHE], check=True)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}")
    sys.path.insert(0, path)
    return digest


def f32(x):
    """Shortest decimal that round-trips to the same float32."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-")) if np.isfinite(x) else None


def train_sentencepiece(workdir, prompts):
    import sentencepiece as spm
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w") as f:
        for name in ["GPL-3", "Apache-2.0", "GFDL-1.3"]:
            p = "/usr/share/common-licenses/" + name
            if os.path.exists(p):
                f.write(open(p, encoding="utf-8").read())
        for p in prompts:
            f.write(p + "\n")
        f.write("Which is it: (a) rising, (b) falling or (c) flat? The answer is (a).\n" * 20)
    prefix = os.path.join(workdir, "sp")
    # LLaMA's tokenizer.model trainer settings that matter for encoding.
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=1200, model_type="bpe", byte_fallback=True,
        split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        add_dummy_prefix=True, normalization_rule_name="identity", character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=1 << 16, num_threads=1,
        minloglevel=2)
    # The trainer records its temporary paths: drop them so the file is reproducible.
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(open(prefix + ".model", "rb").read())
    proto.trainer_spec.ClearField("input")
    proto.trainer_spec.ClearField("model_prefix")
    open(prefix + ".model", "wb").write(proto.SerializeToString())
    return prefix + ".model"


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute (HF rotate-half rows → interleaved pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, config, sp_path, added, path):
    """The tiny model as a Q8_0 GGUF the way llama.cpp's converter writes a ChatTime build: the
    SentencePiece pieces with their scores and types, then the added value tokens as
    USER_DEFINED (type 4, score -1000), Q8_0 matrices, f32 norms, q/k rows permuted."""
    import gguf
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    T = gguf.GGMLQuantizationType
    proto = pb.ModelProto()
    proto.ParseFromString(open(sp_path, "rb").read())
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    for tok, i in sorted(added.items(), key=lambda kv: kv[1]):
        assert i == len(tokens)
        tokens.append(tok)
        scores.append(-1000.0)
        types.append(4)
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("ChatTime tiny (test)")
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_freq_base(config.rope_theta)
    w.add_vocab_size(len(tokens))
    w.add_file_type(7)  # MOSTLY_Q8_0
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(proto.normalizer_spec.add_dummy_prefix)
    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
    def q8(name, x):
        w.add_tensor(name, gguf.quants.quantize(x.astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    q8("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"].astype(np.float32))
    q8("output.weight", sd["lm_head.weight"])
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"].astype(np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"].astype(np.float32))
        q8(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], config.num_attention_heads))
        q8(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], config.num_key_value_heads))
        q8(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        q8(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        q8(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        q8(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        q8(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    digest = fetch_chat_time()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer
    import transformers
    import sklearn
    from chat_time.utils.tools import Discretizer, Serializer
    from chat_time.utils.prompt import getPrompt
    import chat_time.model.model as ctm

    torch.manual_seed(0)
    rng = np.random.default_rng(20250101)
    os.makedirs(OUT, exist_ok=True)
    versions = {"chat-time": "0.3.0", "chat-time wheel sha256": digest, "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__,
                "scikit-learn": sklearn.__version__}

    disc, ser = Discretizer(), Serializer()
    centers = disc.get_centers()
    value_tokens = [f"###{c:.4f}###" for c in centers[1:-1]] + ["###Nan###"]
    assert len(value_tokens) == 10001 and len(set(value_tokens)) == 10001

    # ---- values.json: discretize / serialize / parse / inverse -------------------------------
    def run_series(x):
        x = np.asarray(x, dtype=np.float64)
        d = Discretizer()
        dispersed = d.discretize(x)
        s = ser.serialize(dispersed)
        parsed = ser.inverse_serialize(s)
        inv = d.inverse_discretize(parsed)
        return {"values": [repr(float(v)) for v in x], "serialized": s, "inverse": [repr(float(v)) for v in inv]}

    series_cases = []
    series_cases.append(("random 10000", rng.normal(0, 1, 10000) * 37.5 + 12.0))
    edges = np.linspace(-1, 1, 10001)
    # Values whose scaled image falls exactly on (or next to) a bin edge: min 0, max 1 maps
    # x → x - 0.5, so x = e + 0.5 hits edge e (when the arithmetic is exact).
    on_edges = np.concatenate([[0.0, 1.0], edges[4000:6001:7] + 0.5, np.nextafter(edges[4000:6001:13] + 0.5, 2)])
    series_cases.append(("bin edges", on_edges))
    series_cases.append(("constant", np.full(12, 3.25)))
    series_cases.append(("constant with NaN", np.array([5.0, np.nan, 5.0, 5.0])))
    series_cases.append(("NaN inside", np.array([1.0, np.nan, 3.0, 2.0, np.nan, -4.0])))
    series_cases.append(("huge range", np.array([-1e300, 1e300, 0.0, 1e-300, 5e299])))
    series_cases.append(("tiny range", np.array([1.0, 1.0 + 1e-15, 1.0 + 2e-15])))
    series_cases.append(("negative zero", np.array([-0.0, 0.0, -0.0, 1.0])))
    series_cases.append(("single value", np.array([42.0])))
    series_cases.append(("float32 values", rng.normal(0, 1, 200).astype(np.float32).astype(np.float64) * 1000))
    values_out = {"series": [dict(name=n, **run_series(x)) for n, x in series_cases]}

    # Parse of sample texts (the model's output): Python float() semantics inside ###…###.
    parse_texts = [
        "###0.1234### ###-0.5000### ###Nan###",
        "###0.1###garbage###0.2###",
        "###abc### ###1e3### ### 2.5 ### ###-inf### ###infinity### ###nan### ###+.5### ###1_000.5###",
        "###### ###-0.0### ###0x10### ###1.2.3### ###١٢٣###",
        "no markers at all",
        "###0.9999######-0.9999###",
        "###0.5### ###0.25",
        "###\n0.5### ###0.75###",
        "###0.3###\n###0.4###",
    ]
    values_out["parse"] = []
    for t in parse_texts:
        import io, contextlib
        with contextlib.redirect_stdout(io.StringIO()):
            v = ser.inverse_serialize(t)
        values_out["parse"].append({"text": t, "values": [repr(float(x)) for x in v]})
    values_out["centers_4dp"] = value_tokens[:3] + value_tokens[4998:5003] + value_tokens[-4:]
    values_out["versions"] = versions
    json.dump(values_out, open(os.path.join(OUT, "values.json"), "w"), indent=0)

    # ---- the tiny model -----------------------------------------------------------------------
    short = np.array([10.0, 12.5, 11.0, 14.0, 13.5, 15.0, 17.5, 16.0, 18.0, 21.0, 19.5, 22.0])
    def prompt_for(x, **kw):
        return getPrompt(input=ser.serialize(Discretizer().discretize(np.asarray(x, dtype=np.float64))), **kw)
    prompts = {
        "forecast": prompt_for(short, flag="prediction"),
        "forecast with context": prompt_for(short, flag="prediction", context="Monthly sales of a shop; December peaks."),
        "analysis": prompt_for(short, flag="analysis",
                               instruction="Which trend does the series show? (a) upward (b) downward (c) flat"),
        "analysis unicode": prompt_for(np.array([1.0, np.nan, 2.0]), flag="analysis",
                                       instruction="Ünïcode  double  spaces\tand tabs: (a) yes (b) no"),
    }
    model_dir = os.path.join(OUT, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        sp_path = train_sentencepiece(tmp, list(prompts.values()))
        shutil.copy(sp_path, os.path.join(model_dir, "tokenizer.model"))
    import sentencepiece as spm
    n_sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model")).get_piece_size()
    added = {tok: n_sp + i for i, tok in enumerate(value_tokens)}
    keys = list(added)
    random.Random(7).shuffle(keys)
    json.dump({k: added[k] for k in keys}, open(os.path.join(model_dir, "added_tokens.json"), "w"), indent=0)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    json.dump(special, open(os.path.join(model_dir, "special_tokens_map.json"), "w"), indent=2)
    def write_config(legacy):
        cfg = dict(special, add_bos_token=True, add_eos_token=False, legacy=legacy, model_max_length=2048,
                   tokenizer_class="LlamaTokenizer", clean_up_tokenization_spaces=False, sp_model_kwargs={})
        json.dump(cfg, open(os.path.join(model_dir, "tokenizer_config.json"), "w"), indent=2)

    vocab = n_sp + len(value_tokens)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, initializer_range=0.5)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model.to(torch.bfloat16).save_pretrained(model_dir, max_shard_size="400KB", safe_serialization=True)
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()

    # ---- prompts.json: ids with legacy=false and legacy=true ----------------------------------
    prompts_out = {"prompts": prompts, "n_sentencepiece": n_sp, "versions": versions}
    for legacy in (True, False):
        write_config(legacy)
        tok = LlamaTokenizer.from_pretrained(model_dir)
        assert tok.legacy == legacy
        for t, i in list(added.items())[:50] + list(added.items())[-3:]:
            assert tok.convert_tokens_to_ids(t) == i, (t, i)
        key = "legacy" if legacy else "nonlegacy"
        prompts_out[key] = {name: tok(p)["input_ids"] for name, p in prompts.items()}
        prompts_out[key]["extra"] = {t: tok(t)["input_ids"] for t in [
            "###0.1234### ###Nan###", " ###0.0001###  ###-0.0001###x", "a###0.5001###b", "###0.12345###", "\n\n### Response:\n"]}
    write_config(False)
    tok = LlamaTokenizer.from_pretrained(model_dir)
    json.dump(prompts_out, open(os.path.join(OUT, "prompts.json"), "w"), indent=0)

    # ---- model.q8_0.gguf: a GGUF build as llama.cpp's convert_hf_to_gguf.py makes one ---------
    write_gguf(model, config, os.path.join(model_dir, "tokenizer.model"), added, os.path.join(OUT, "model.q8_0.gguf"))

    # ---- logits.json -------------------------------------------------------------------------
    ids = tok(prompts["forecast"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1].float().numpy()
    top2 = np.sort(logits)[-2:]
    json.dump({"prompt": "forecast", "ids": ids[0].tolist(), "logits_last": [f32(v) for v in logits],
               "top2_gap": float(top2[1] - top2[0]), "versions": versions},
              open(os.path.join(OUT, "logits.json"), "w"))

    # ---- forecast.json: chat-time's predict with a greedy pipeline -----------------------------
    real_pipeline = ctm.pipeline
    def greedy_pipeline(**kw):
        kw = dict(kw)
        kw.update(do_sample=False, num_return_sequences=1, top_k=None, top_p=None, temperature=None)
        return real_pipeline(**kw)
    ctm.pipeline = greedy_pipeline
    ct = ctm.ChatTime.__new__(ctm.ChatTime)
    ct.model, ct.tokenizer = model, tok
    tok.pad_token = tok.eos_token
    ct.max_pred_len, ct.num_samples, ct.top_k, ct.top_p, ct.temperature = 16, 1, 100, 1.0, 1.0
    ct.discretizer, ct.serializer, ct.eos_token_id = Discretizer(), Serializer(), tok.eos_token_id
    cases = [
        ("short, horizon 6", short, 6, None),
        ("airline-like, horizon 20 (two chunks)", 100 + 20 * np.sin(np.arange(40) * np.pi / 6) + np.arange(40), 20, None),
        ("with context, horizon 4", short, 4, "Monthly sales of a shop; December peaks."),
        ("NaN in history, horizon 5", np.array([3.0, 4.0, np.nan, 6.0, 5.0, 7.0, 8.0, np.nan, 9.0]), 5, None),
    ]
    fc_out = []
    for name, x, n, context in cases:
        ct.hist_len, ct.pred_len = len(x), n
        pred = ct.predict(np.asarray(x, dtype=np.float64), context=context)
        fc_out.append({"name": name, "history": [None if np.isnan(v) else float(v) for v in x], "horizon": n,
                       "context": context, "forecast": [None if np.isnan(v) else float(v) for v in pred]})
        print(name, pred)
    # The greedy tokens of the first chunk of the first case, for a token-level comparison.
    ids = tok(prompts["forecast"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, do_sample=False, min_new_tokens=20, max_new_tokens=20, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.eos_token_id)
        step_logits = model(out).logits[0, ids.shape[1] - 1:-1].float().numpy()
    gaps = [float(np.sort(r)[-1] - np.sort(r)[-2]) for r in step_logits]
    ctm.pipeline = real_pipeline
    json.dump({"cases": fc_out, "greedy_ids_forecast_prompt": out[0, ids.shape[1]:].tolist(),
               "greedy_min_top2_gap": min(gaps), "versions": versions},
              open(os.path.join(OUT, "forecast.json"), "w"), indent=0)

    # ---- votes.json: the post-processing on given samples --------------------------------------
    class Fake:
        def __init__(self, texts):
            self.texts = texts
        def __call__(self, **kw):
            texts = self.texts
            def run(prompt):
                return [{"generated_text": prompt + t} for t in texts]
            return run
    ct.num_samples = 8
    vote_cases = [
        ["(a) upward.", "(b) no", "The answer is (b). Then (a)", "(b)", "(a)", "x (c)", "(a) or (b)", "(c)"],
        ["(b) first", "(a) second", "(a) third. (b)", "(b) fourth"],
        ["(c).", "no. (a)", "(c) and (a)"],
        ["nothing here. (a)", "(d) is not an answer"],
    ]
    votes = []
    for texts in vote_cases:
        ctm.pipeline = Fake(texts)
        try:
            ans = ct.analyze("Q?", short)
        except IndexError:
            ans = None  # upstream crashes: no (a)/(b)/(c) before the first "."
        votes.append({"samples": texts, "answer": ans})
    pred_cases = [
        (["###0.1000### ###0.2000### ###0.3000###", "###0.1200### ###Nan### ###0.5000### ###0.9###",
          "###-0.4000###", "###junk###", "###0.2000### ###0.2000### ###0.2000### ###0.2000### ###0.2000###"], 4),
        (["###0.0001### ###x### ###0.4999###\n### Response:\n###0.3###", "###0.2500###"], 2),
    ]
    preds = []
    for texts, n in pred_cases:
        ctm.pipeline = Fake(texts)
        ct.hist_len, ct.pred_len = len(short), n
        import io, contextlib, warnings
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = ct.predict(short)
        preds.append({"samples": texts, "horizon": n, "history": short.tolist(),
                      "forecast": [None if np.isnan(v) else float(v) for v in p]})
    ctm.pipeline = real_pipeline
    json.dump({"analyze": votes, "predict": preds, "versions": versions}, open(os.path.join(OUT, "votes.json"), "w"), indent=0)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
