"""A sampling forecaster (the tiny ChatTime fixture model): forecast quantiles, greedy paths,
context knowledge and multiple-choice analysis equal the CLI's (`tslm forecast --json`,
`tslm run --series -p QUESTION`). These go through the ABI-2 fields of tslm_forecast_params
(greedy, context) and tslm_model_analyze."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import tslm
from conftest import THREADS, run_cli

HISTORY = np.array([10.0, 12.5, 11.0, 14.0, 13.5, 15.0, 17.5, 16.0, 18.0, 21.0, 19.5, 22.0], dtype=np.float32)
QUESTION = "Is the trend of this series (a) upward, (b) downward or (c) flat?"


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("chattime") / "history.csv"
    p.write_text("value\n" + "\n".join(repr(float(v)) for v in HISTORY) + "\n")
    return p


def _floats(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)


def cli_forecast(cli, model, csv, *flags):
    return json.loads(run_cli(cli, "forecast", "-m", model, "--series", csv, "--json", "-t", THREADS, *flags).stdout)


def test_kind_and_info(chattime_model):
    assert chattime_model.kind == "forecaster"
    info = chattime_model.forecast_info
    assert (info.input_channels, info.output_channels, info.window, info.max_horizon) == (0, 0, 0, 0)


def test_sampled_forecast_with_quantiles_equals_cli(chattime_model, chattime_model_path, cli, history_csv):
    expected = cli_forecast(cli, chattime_model_path, history_csv, "--horizon", 6, "--samples", 6, "--seed", 3,
                            "--quantiles", "0.1,0.9")
    f = chattime_model.forecast(HISTORY, horizon=6, quantiles=[0.1, 0.9], n_samples=6, seed=3)
    np.testing.assert_array_equal(f.point, _floats(expected["point"])[0])
    assert f.quantiles.shape == (2, 6)
    np.testing.assert_array_equal(f.quantiles, _floats(expected["quantiles"][0]))
    # the same seed, the same forecast; another seed, another one
    g = chattime_model.forecast(HISTORY, horizon=6, quantiles=[0.1, 0.9], n_samples=6, seed=3)
    np.testing.assert_array_equal(g.point, f.point)
    other = chattime_model.forecast(HISTORY, horizon=6, n_samples=6, seed=4)
    assert not np.array_equal(other.point, f.point, equal_nan=True)


def test_greedy_forecast_with_context_equals_cli(chattime_model, chattime_model_path, cli, history_csv):
    context = "Monthly sales of a shop; December peaks."
    expected = cli_forecast(cli, chattime_model_path, history_csv, "--horizon", 4, "--greedy", "--context", context,
                            "--quantiles", "none")
    f = chattime_model.forecast(HISTORY, horizon=4, greedy=True, context=context)
    np.testing.assert_array_equal(f.point, _floats(expected["point"])[0])
    plain = chattime_model.forecast(HISTORY, horizon=4, greedy=True)
    assert not np.array_equal(plain.point, f.point, equal_nan=True)  # the context reached the prompt


def test_nan_is_a_missing_value_for_chattime(chattime_model):
    h = HISTORY.copy()
    h[3] = np.nan
    assert chattime_model.forecast(h, horizon=3, greedy=True).point.shape == (3,)
    with pytest.raises(tslm.InvalidArgumentError):
        chattime_model.forecast(np.full(5, np.nan, dtype=np.float32), horizon=3, greedy=True)


@pytest.mark.parametrize("flags,kwargs", [(("--greedy",), {"greedy": True}),
                                          (("--samples", 5, "--seed", 11), {"n_samples": 5, "seed": 11})])
def test_analyze_equals_cli(chattime_model, chattime_model_path, cli, history_csv, flags, kwargs):
    p = subprocess.run([str(cli), "run", "-m", str(chattime_model_path), "--series", str(history_csv), "-p", QUESTION,
                        "-t", str(THREADS), *map(str, flags)], capture_output=True, text=True)
    if p.returncode == 0:
        assert chattime_model.analyze(HISTORY, QUESTION, **kwargs) == p.stdout.strip().removeprefix("Answer: ")
    else:  # no sampled answer named a choice: the library's TSLM_ERR_NO_ANSWER
        with pytest.raises(tslm.NoAnswerError):
            chattime_model.analyze(HISTORY, QUESTION, **kwargs)


def test_analyze_errors(chattime_model, lstm_model):
    with pytest.raises(tslm.InvalidArgumentError):
        chattime_model.analyze(HISTORY.reshape(2, -1), QUESTION)
    with pytest.raises(tslm.WrongKindError):
        lstm_model.analyze(HISTORY, QUESTION)
