"""Bad input raises the typed exception of its status code, with the library's message."""

from __future__ import annotations

import numpy as np
import pytest

import tslm
from conftest import DEMO_TEST


def test_missing_file(tmp_path):
    with pytest.raises(tslm.TslmIOError) as e:
        tslm.Model(tmp_path / "missing.tslm")
    assert isinstance(e.value, OSError) and isinstance(e.value, tslm.TslmError)
    assert e.value.status == -1 and e.value.status_name == "TSLM_ERR_IO"
    assert "missing.tslm" in str(e.value)


def test_corrupt_file(tmp_path, lstm_model_path):
    bad = tmp_path / "truncated.tslm"
    bad.write_bytes(lstm_model_path.read_bytes()[:100])
    with pytest.raises(tslm.FormatError):
        tslm.Model(bad)
    junk = tmp_path / "junk.tslm"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(tslm.FormatError):
        tslm.Model(junk)


def test_bad_model_params(lstm_model_path):
    with pytest.raises(tslm.InvalidArgumentError, match="n_threads"):
        tslm.Model(lstm_model_path, threads=-1)


def test_wrong_shapes_and_values(demo_model):
    values, names = tslm.read_csv(DEMO_TEST / "10_running.csv")
    with demo_model.session() as s:
        with pytest.raises(tslm.InvalidArgumentError, match="names"):
            s.append_recording(values, names=names[:3])
        with pytest.raises(tslm.InvalidArgumentError, match="shape"):
            s.append_recording(values[np.newaxis])
        with pytest.raises(tslm.InvalidArgumentError, match="no samples"):
            s.append_recording(values[:, :0], names=names)
        with pytest.raises(tslm.InvalidArgumentError):
            s.append_series(np.array([["a", "b"]]))
        nan = values.copy()
        nan[2, 17] = np.nan
        with pytest.raises(tslm.InvalidArgumentError, match="finite"):
            s.append_recording(nan, names=names)
        inf = values.copy()
        inf[0, 0] = np.inf
        with pytest.raises(tslm.InvalidArgumentError, match="finite"):
            s.append_series(inf)
        with pytest.raises(tslm.InvalidArgumentError, match="preset"):
            s.append_series(values, preset="no-such-preset")
        with pytest.raises(tslm.InvalidArgumentError):
            s.logits()  # a time-series prompt is pending (nothing ran)
        # after all these refusals the session still explains
        s.append_recording(values, names=names)
        assert s.generate(4)


def test_wrong_kind(text_model, demo_model):
    values, names = tslm.read_csv(DEMO_TEST / "10_running.csv")
    with text_model.session() as s:
        with pytest.raises(tslm.WrongKindError):
            s.append_recording(values, names=names)
        with pytest.raises(tslm.WrongKindError):
            s.append_series(values[0])


def test_context_full(text_model):
    with text_model.session(context_length=8) as s:
        with pytest.raises(tslm.ContextFullError):
            s.append_text("one two three four five six seven eight nine ten eleven twelve")
        assert s.position == 0  # unchanged
        s.append_text("Hi")


def test_generate_arguments(text_model):
    with text_model.session() as s:
        s.append_text("Hello")
        with pytest.raises(tslm.InvalidArgumentError, match="max_tokens"):
            s.generate(-1)
        with pytest.raises(tslm.InvalidArgumentError, match="stop"):
            s.generate(4, stop=[""])
        with pytest.raises(tslm.InvalidArgumentError, match="NUL"):
            s.generate(4, stop=["a\0b"])


def test_closed_handles(lstm_model_path, text_model_path):
    m = tslm.Model(text_model_path, threads=1)
    s = m.session()
    s2 = tslm.Session(m)
    s2.close()
    s2.close()  # idempotent
    with pytest.raises(tslm.InvalidArgumentError, match="closed"):
        s2.append_text("x")
    m.close()  # closes the open session s first
    assert m.closed and s.closed
    for call in (lambda: m.tokenize("x"), lambda: m.vocab_size, lambda: m.session(), lambda: m.meta("k"),
                 lambda: s.append_text("x"), lambda: s.generate(1), lambda: s.logits(), lambda: s.last_text):
        with pytest.raises(tslm.InvalidArgumentError, match="closed"):
            call()
    m.close()
    with tslm.Model(lstm_model_path) as f:
        pass
    with pytest.raises(tslm.InvalidArgumentError, match="closed"):
        f.forecast(np.ones(30, dtype=np.float32))


def test_logits_before_anything_ran(text_model):
    with text_model.session() as s:
        with pytest.raises(tslm.InvalidArgumentError):
            s.logits()
        s.append_text("Hello")
        assert s.logits().shape == (text_model.vocab_size,)
        s.generate(2)
        if s.stats.stop_reason != "eos":  # the last sampled token has not run
            with pytest.raises(tslm.InvalidArgumentError):
                s.logits()
