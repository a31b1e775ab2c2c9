"""Shared fixtures: the tslm CLI and the model files the tests compare the package against.

Everything the package returns is compared with what the `tslm` CLI prints for the same input in
the same run; nothing expected is hard-coded. `make python-test` builds the CLI and the models;
to run pytest by hand, build them first (see python/README.md) or point these variables at them:

  TSLM_CLI          the tslm command line tool (default: <repo>/.build/release/tslm)
  TSLM_TEST_MODELS  the folder holding basicmotions-q8_0.tslm, airline-lstm.tslm,
                    smollm2-q8_0.tslm and chattime-tiny.tslm (default: <repo>/.cache/out)
  TSLM_REPO         the tslm repository (default: the folder above python/)

A missing CLI or model fails the tests that need it (it is not skipped).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(os.environ.get("TSLM_REPO", Path(__file__).resolve().parents[2]))
MODELS = Path(os.environ.get("TSLM_TEST_MODELS", REPO / ".cache" / "out"))
DEMO_TEST = REPO / "demo" / "basicmotions" / "test"
AIRLINE = REPO / "demo" / "forecast" / "airline.csv"
# The CLI and the package run with the same number of threads.
THREADS = 2


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: run `make python-test`, or see the top of "
                    f"python/tests/conftest.py", pytrace=False)
    return path


@pytest.fixture(scope="session")
def cli() -> Path:
    return _need(Path(os.environ.get("TSLM_CLI", REPO / ".build" / "release" / "tslm")), "the tslm CLI")


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    return _need(MODELS / "basicmotions-q8_0.tslm", "the BasicMotions demo model (make demo)")


@pytest.fixture(scope="session")
def lstm_model_path() -> Path:
    return _need(MODELS / "airline-lstm.tslm", "the Airline LSTM model (make demo-forecast)")


@pytest.fixture(scope="session")
def text_model_path() -> Path:
    return _need(MODELS / "smollm2-q8_0.tslm", "SmolLM2-135M converted to q8_0")


@pytest.fixture(scope="session")
def chattime_model_path() -> Path:
    return _need(MODELS / "chattime-tiny.tslm", "the tiny ChatTime fixture model converted")


@pytest.fixture(scope="session")
def chattime_model(chattime_model_path):
    import tslm
    with tslm.Model(chattime_model_path, threads=THREADS) as m:
        yield m


@pytest.fixture(scope="session")
def demo_model(demo_model_path):
    import tslm
    with tslm.Model(demo_model_path, threads=THREADS) as m:
        yield m


@pytest.fixture(scope="session")
def lstm_model(lstm_model_path):
    import tslm
    with tslm.Model(lstm_model_path, threads=THREADS) as m:
        yield m


@pytest.fixture(scope="session")
def text_model(text_model_path):
    import tslm
    with tslm.Model(text_model_path, threads=THREADS) as m:
        yield m


def run_cli(cli: Path, *args, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """Runs the CLI, failing the test with its stderr when it fails."""
    p = subprocess.run([str(cli), *map(str, args)], capture_output=True, input=input_bytes)
    if p.returncode != 0:
        pytest.fail(f"tslm {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p
