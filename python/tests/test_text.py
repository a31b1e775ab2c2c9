"""Text model (SmolLM2-135M, q8_0): tokens, logits and generation equal the CLI's."""

from __future__ import annotations

import numpy as np
import pytest

import tslm
from conftest import THREADS, run_cli

NUL_TEXT = "Sensor log:\x00 accel <|im_start|> réglage 温度 \x00\x00 end"
PROMPT = "The capital of France is"


def cli_ids(cli, model_path, tmp_path, text: str, *flags) -> list[int]:
    f = tmp_path / "text.bin"
    f.write_bytes(text.encode("utf-8"))
    out = run_cli(cli, "tokenize", "-m", model_path, "-f", f, "--ids-only", *flags).stdout.decode().strip()
    return [int(x) for x in out.split(",")] if out else []


def test_metadata(text_model, text_model_path):
    assert text_model.kind == "text" and text_model.kind_code == tslm.KIND_TEXT
    assert text_model.architecture == "llama"
    assert text_model.vocab_size == int(text_model.meta("llama.vocab_size", text_model.vocab_size))
    assert text_model.context_length > 0
    assert text_model.meta("no.such.key") is None
    assert text_model.meta("no.such.key", "x") == "x"
    assert text_model.meta("general.architecture") == "llama"


@pytest.mark.parametrize("flags", [(), ("--no-special",), ("--no-parse-special",)])
def test_tokenize_with_nul_bytes_equals_cli(text_model, cli, text_model_path, tmp_path, flags):
    ids = text_model.tokenize(NUL_TEXT, add_special="--no-special" not in flags,
                              parse_special="--no-parse-special" not in flags)
    assert ids.dtype == np.int32
    assert ids.tolist() == cli_ids(cli, text_model_path, tmp_path, NUL_TEXT, *flags)
    # the NUL bytes are in there: the text without them tokenizes differently
    assert ids.tolist() != text_model.tokenize(NUL_TEXT.replace("\x00", "")).tolist()


def test_tokenize_bytes_and_roundtrip(text_model):
    ids = text_model.tokenize(NUL_TEXT.encode(), add_special=False, parse_special=False)
    assert ids.tolist() == text_model.tokenize(NUL_TEXT, add_special=False, parse_special=False).tolist()
    assert text_model.detokenize(ids) == NUL_TEXT
    assert text_model.tokenize("").tolist() == text_model.tokenize(b"").tolist()


def test_logits_equal_cli_logits_out(text_model, cli, text_model_path, tmp_path):
    out = tmp_path / "logits.f32"
    run_cli(cli, "run", "-m", text_model_path, "-p", PROMPT, "-n", 0, "-t", THREADS, "--logits-out", out)
    cli_logits = np.fromfile(out, dtype="<f4").reshape(-1, text_model.vocab_size)
    assert cli_logits.shape[0] == len(text_model.tokenize(PROMPT))
    with text_model.session() as s:
        s.append_text(PROMPT, add_special=True)
        logits = s.logits()
    assert logits.dtype == np.float32 and logits.shape == (text_model.vocab_size,)
    # the same kernels on the same prompt: bit for bit
    np.testing.assert_array_equal(logits, cli_logits[-1])


def test_greedy_generation_equals_cli(text_model, cli, text_model_path):
    n = 24
    cli_text = run_cli(cli, "run", "-m", text_model_path, "-p", PROMPT, "-n", n, "-t", THREADS).stdout.decode()
    pieces = []
    with text_model.session() as s:
        s.append_text(PROMPT)
        text = s.generate(n, callback=pieces.append)
        assert cli_text == text + "\n"
        assert "".join(pieces) == text
        assert s.last_text == text
        toks = s.last_tokens
        assert toks.dtype == np.int32
        assert text_model.detokenize(toks) == text
        st = s.stats
        assert st.generated_tokens == len(toks)
        assert st.prompt_tokens == len(text_model.tokenize(PROMPT))
        assert st.stop_reason in ("eos", "length")


def test_sampling_is_reproducible_by_seed(text_model):
    def sample(seed):
        with text_model.session() as s:
            s.append_text(PROMPT)
            return s.generate(12, temperature=0.9, top_p=0.95, seed=seed)
    a = sample(7)
    assert sample(7) == a
    assert len({a, sample(8), sample(9)}) > 1


def test_callback_false_stops_generation(text_model):
    with text_model.session() as s:
        s.append_text(PROMPT)
        seen = []
        text = s.generate(32, callback=lambda p: seen.append(p) or len(seen) < 3)
        assert len(seen) == 3 and text.startswith("".join(seen[:2]))
        assert s.stats.stop_reason == "cancelled"


def test_callback_exception_propagates(text_model):
    class Boom(Exception):
        pass

    def cb(piece):
        raise Boom(piece)

    with text_model.session() as s:
        s.append_text(PROMPT)
        with pytest.raises(Boom):
            s.generate(8, callback=cb)


def test_stop_strings(text_model):
    with text_model.session() as s:
        s.append_text(PROMPT)
        full = s.generate(24)
    word = full.split()[1] if len(full.split()) > 1 else None
    if not word:
        pytest.skip("generation too short to pick a stop string")
    with text_model.session() as s:
        s.append_text(PROMPT)
        text = s.generate(24, stop=[word])
        assert word not in text and full.startswith(text)
        # A stop string that is one whole vocabulary entry stops at its id: reported as a stop
        # string too (it was reported as "eos").
        assert s.stats.stop_reason == "stop_string"


def test_chat_template_and_conversation(text_model):
    prompt = text_model.apply_chat_template([{"role": "user", "content": "Name a colour."}])
    assert "Name a colour." in prompt and prompt != "Name a colour."
    with text_model.session() as s:
        s.append_text(prompt)
        first = s.generate(8)
        p = s.position
        s.append_text(" And another?", add_special=False)
        assert s.position > p
        s.reset()
        assert s.position == 0
        s.append_text(prompt)
        assert s.generate(8) == first


def test_sessions_on_threads_give_the_sequential_answers(text_model):
    """Two threads, one session each on the shared model: same texts as one after the other."""
    import threading
    prompts = [PROMPT, "Accelerometers measure"]

    def complete(prompt):
        with text_model.session() as s:
            s.append_text(prompt)
            return s.generate(16)

    sequential = [complete(p) for p in prompts]
    parallel = [None] * len(prompts)

    def work(i):
        parallel[i] = complete(prompts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parallel == sequential


def test_context_tokens(text_model):
    with text_model.session() as s:
        s.append_text(PROMPT)
        assert s.context_tokens.tolist() == text_model.tokenize(PROMPT).tolist()
        s.generate(6)
        ctx = s.context_tokens
        assert ctx.dtype == np.int32 and len(ctx) == s.position
        assert ctx.tolist() == (text_model.tokenize(PROMPT).tolist() + s.last_tokens.tolist())[: s.position]


def test_progress_and_abort_callbacks(text_model):
    long_text = "The sensor reported a steady signal. " * 40
    with text_model.session() as s:
        seen = []
        s.set_progress_callback(lambda done, total: seen.append((done, total)))
        s.append_text(long_text)
        n = len(text_model.tokenize(long_text))
        assert seen and seen[-1] == (n, n) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))
        s.set_progress_callback(None)
        p = s.position
        s.set_abort_callback(lambda: True)
        with pytest.raises(tslm.AbortedError):
            s.append_text(" More text that will not run.", add_special=False)
        assert s.position == p  # none of its positions entered the context
        with pytest.raises(tslm.AbortedError):
            s.generate(8)
        assert s.stats.stop_reason == "aborted"
        s.set_abort_callback(None)
        assert s.generate(2) is not None  # still usable


def test_load_progress(text_model_path):
    seen = []
    with tslm.Model(text_model_path, progress=lambda done, total: seen.append((done, total))) as m:
        assert m.vocab_size > 0
    total = seen[-1][1]
    assert total > 0 and seen[-1] == (total, total)
    assert all(a <= b for (a, _), (b, _) in zip(seen, seen[1:])) and {t for _, t in seen} == {total}
    checked = []
    with tslm.Model(text_model_path, verify_checksums=True, progress=lambda d, t: checked.append((d, t))):
        pass
    assert checked[-1] == (2 * total, 2 * total)
    with pytest.raises(tslm.AbortedError):
        tslm.Model(text_model_path, progress=lambda done, total: done < 3)

    def broken(done, total):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        tslm.Model(text_model_path, progress=broken)


def test_abort_from_another_thread_and_callback_errors(text_model):
    import threading
    stop = threading.Event()
    with text_model.session() as s:
        s.append_text(PROMPT)
        s.set_abort_callback(stop.is_set)
        pieces = []

        def on_piece(p):
            pieces.append(p)
            if len(pieces) == 3:
                threading.Thread(target=stop.set).start()

        with pytest.raises(tslm.AbortedError):
            s.generate(200, callback=on_piece)
        assert 3 <= len(pieces) < 200
        s.set_abort_callback(None)

        def boom(done, total):
            raise KeyError("progress")

        s.set_progress_callback(boom)
        with pytest.raises(KeyError):
            s.append_text(" and more", add_special=False)
