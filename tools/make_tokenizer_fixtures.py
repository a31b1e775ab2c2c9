#!/usr/bin/env python3
"""Writes the tokenizer fixtures of Tests/TSLMConvertTests/Fixtures/tokenizer/.

Run from the repository root:

    pip install tokenizers==0.21.1 sentencepiece==0.2.0
    python3 tools/make_tokenizer_fixtures.py

Deterministic: the corpora are fixed text, training is single-threaded and unshuffled, so
running it again rewrites the same files.

Output:
- bytelevel/: tokenizer.json (a tiny byte-level BPE trained with `tokenizers`),
  tokenizer_config.json (chat template, bos/eos as a string and as an object),
  expected.json.
- sentencepiece/: tokenizer.model (a tiny SentencePiece BPE with byte_fallback),
  added_tokens.json, special_tokens_map.json, expected.json.

expected.json holds what TokenizerImport must produce: tokens by id, token types (GGUF
numbering), merges, scores (as float32 bit patterns, so the comparison is exact) and
special ids, read back through the Python libraries (not through our own rules).
"""
import json
import os
import struct

import sentencepiece as spm
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

assert tokenizers.__version__ == "0.21.1", tokenizers.__version__
assert spm.__version__ == "0.2.0", spm.__version__

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                    "Tests", "TSLMConvertTests", "Fixtures", "tokenizer")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A time series is a sequence of observations taken at successive points in time.",
    "Forecasting the next value: 12, 15, 19, 24, 30, 37, 45.",
    "The model reads the history and predicts the future values of the series.",
    "Temperature rose from 21.5 to 23.75 degrees between noon and three o'clock.",
    "Sales were flat in January, rose in February and fell sharply in March.",
    "the the the quick quick series series time time forecast forecast",
    "Héllo wörld — ünïcode text, ça va? 東京 2024年",
] * 4


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bytelevel():
    out = os.path.join(ROOT, "bytelevel")
    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    # One non-special added token (token type 4).
    tok.add_tokens(["<series>"])
    tok.save(os.path.join(out, "tokenizer.json"))

    config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "bos_token": "<|im_start|>",
        "eos_token": {"content": "<|im_end|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False, "__type": "AddedToken"},
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
                         "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
        "tokenizer_class": "GPT2Tokenizer",
    }
    write_json(os.path.join(out, "tokenizer_config.json"), config)

    # Expected values, read back through the tokenizers library.
    loaded = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    vocab = loaded.get_vocab(with_added_tokens=True)
    n = len(vocab)
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    assert None not in tokens
    added = loaded.get_added_tokens_decoder()
    types = []
    for i in range(n):
        if i in added:
            types.append(3 if added[i].special else 4)
        else:
            types.append(1)
    state = json.loads(loaded.to_str())
    merges = [m if isinstance(m, str) else m[0] + " " + m[1] for m in state["model"]["merges"]]
    expected = {
        "model": "gpt2",
        "pre": "gpt2",
        "tokens": tokens,
        "token_type": types,
        "merges": merges,
        "bos_token_id": vocab["<|im_start|>"],
        "eos_token_id": vocab["<|im_end|>"],
        "pad_token_id": vocab["<|endoftext|>"],
        "add_bos_token": False,
        "add_eos_token": False,
        "chat_template": config["chat_template"],
        # A sample encoding, for a runtime tokenizer test later.
        "sample_text": "The quick series forecast <series> 2024",
        "sample_ids": loaded.encode("The quick series forecast <series> 2024").ids,
    }
    write_json(os.path.join(out, "expected.json"), expected)


def sentencepiece():
    out = os.path.join(ROOT, "sentencepiece")
    os.makedirs(out, exist_ok=True)
    prefix = os.path.join(out, "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=360,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",  # keeps the file small (no precompiled charsmap)
        num_threads=1,
        shuffle_input_sentence=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3,
        user_defined_symbols=["<sep>"],
        minloglevel=2,
    )
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    n = sp.get_piece_size()

    extra = {"<|user|>": n, "<|assistant|>": n + 1, "<|end|>": n + 2}
    write_json(os.path.join(out, "added_tokens.json"), extra)
    write_json(os.path.join(out, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": {"content": "<|end|>"}, "unk_token": "<unk>",
                "additional_special_tokens": ["<|end|>"]})

    tokens, types, scores = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(f32_bits(sp.get_score(i)))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.id_to_piece(i) == "<sep>":
            types.append(4)
        else:
            types.append(1)
    for t, i in sorted(extra.items(), key=lambda kv: kv[1]):
        tokens.append(t)
        scores.append(f32_bits(0.0))
        types.append(3 if t == "<|end|>" else 4)
    expected = {
        "model": "llama",
        "pre": "default",
        "tokens": tokens,
        "token_type": types,
        "scores_f32_bits": scores,
        "bos_token_id": sp.bos_id(),
        # special_tokens_map.json names <|end|> as eos; it overrides the trainer's eos id.
        "eos_token_id": extra["<|end|>"],
        "unknown_token_id": sp.unk_id(),
        "pad_token_id": sp.pad_id(),
        "sample_text": "The quick series forecast 東京",
        "sample_ids": sp.encode("The quick series forecast 東京"),
    }
    write_json(os.path.join(out, "expected.json"), expected)


if __name__ == "__main__":
    bytelevel()
    sentencepiece()
    for d, _, files in os.walk(ROOT):
        for f in sorted(files):
            p = os.path.join(d, f)
            print(os.path.relpath(p, ROOT), os.path.getsize(p))
