"""SmolLM2-135M-Instruct's tokenizer rebuilt with HF `tokenizers` from the pinned GGUF's vocabulary
and merges, with the digit splitting of SmolLM2's original tokenizer.json (the GGUF's "smollm"
pre-tokenizer; transformers' GGUF conversion drops it). Shared by the tokenizer conformance
fixtures and the BasicMotions demo tools.
"""
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GGUF_PATH = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def build(gguf_path=GGUF_PATH):
    """Returns (tokenizer, gguf_reader): BPE with Sequence[Digits(individual), ByteLevel], the
    ByteLevel decoder and the GGUF's control tokens as special tokens."""
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    r = gguf.GGUFReader(gguf_path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                               merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok, r
