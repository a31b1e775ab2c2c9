"""The Airline LSTM demo: model.forecast equals `tslm forecast --json`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tslm
from conftest import AIRLINE, REPO, THREADS, run_cli


def cli_forecast(cli, model_path, csv, *flags):
    return json.loads(run_cli(cli, "forecast", "-m", model_path, "--series", csv, "--json", "-t", THREADS,
                              *flags).stdout)


def test_forecast_info_is_the_models_config(lstm_model):
    config = json.loads((REPO / "demo" / "forecast" / "forecast.json").read_text())
    info = lstm_model.forecast_info
    assert lstm_model.kind == "forecaster"
    assert (info.window, info.max_horizon) == (config["window"], config["horizon"])
    assert (info.input_channels, info.output_channels) == (len(config["channels"]), len(config["output_channels"]))


@pytest.mark.parametrize("horizon", [None, 5])
def test_forecast_equals_cli_json(lstm_model, lstm_model_path, cli, horizon):
    flags = () if horizon is None else ("--horizon", horizon)
    expected = cli_forecast(cli, lstm_model_path, AIRLINE, *flags)
    values, _ = tslm.read_csv(AIRLINE)
    f = lstm_model.forecast(values[0], horizon=horizon)
    assert f.point.dtype == np.float32 and f.point.shape == (expected["horizon"],)
    assert f.horizon == expected["horizon"] and f.quantiles is None
    assert f.point.tolist() == np.asarray(expected["point"][0], dtype=np.float32).tolist()
    # tslm_forecast_channels with one channel gives the same, shaped [channels, horizon]
    g = lstm_model.forecast(values, horizon=horizon)
    assert g.point.shape == (1, expected["horizon"]) and g.point[0].tolist() == f.point.tolist()


def test_forecast_of_a_window_equals_cli(lstm_model, lstm_model_path, cli, tmp_path):
    values, _ = tslm.read_csv(AIRLINE)
    window = values[0, 30:60]
    csv = tmp_path / "window.csv"
    csv.write_text("passengers\n" + "\n".join(repr(float(v)) for v in window) + "\n")
    expected = cli_forecast(cli, lstm_model_path, csv)
    assert lstm_model.forecast(window).point.tolist() == np.asarray(expected["point"][0], dtype=np.float32).tolist()


def test_forecast_errors(lstm_model, text_model):
    values, _ = tslm.read_csv(AIRLINE)
    h = values[0]
    with pytest.raises(tslm.InvalidArgumentError, match="finite"):
        lstm_model.forecast(np.where(np.arange(h.size) == 50, np.nan, h))
    with pytest.raises(tslm.InvalidArgumentError):
        lstm_model.forecast(h[:5])  # shorter than the model's window
    with pytest.raises(tslm.InvalidArgumentError):
        lstm_model.forecast(h, horizon=lstm_model.forecast_info.max_horizon + 1)
    with pytest.raises(tslm.InvalidArgumentError):
        lstm_model.forecast(h, quantiles=[0.1, 0.9])  # a point forecaster
    with pytest.raises(tslm.InvalidArgumentError):
        lstm_model.forecast(h.reshape(1, 1, -1))
    with pytest.raises(tslm.WrongKindError):
        text_model.forecast(h, horizon=4)
    with pytest.raises(tslm.WrongKindError):
        text_model.forecast_info
