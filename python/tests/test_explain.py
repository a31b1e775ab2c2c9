"""The BasicMotions demo (OpenTSLM SoftPrompt): explaining a recording gives the CLI's text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tslm
from conftest import DEMO_TEST, THREADS, run_cli

MAX_TOKENS = 160  # as `make demo`
# held-out recordings of two activities: the first explained in this process, the second by a
# fresh `python -c` (each is one CLI run and one package run; the Ray test does 200)
RECORDINGS = ["10_running.csv", "30_badminton.csv"]


_cli_cache: dict = {}


def cli_explain(cli, model_path, csv):
    """(text, answer) of `tslm run --series csv -n 160`: stdout is the series summary (1 + one
    line per channel), the streamed text, a newline, then "Answer: ..."."""
    key = (str(cli), str(model_path), str(csv))
    if key not in _cli_cache:  # one CLI run per recording and test session
        _cli_cache[key] = run_cli(cli, "run", "-m", model_path, "--series", csv, "-n", MAX_TOKENS,
                                  "-t", THREADS).stdout.decode()
    out = _cli_cache[key]
    _, names = tslm.read_csv(csv)
    lines = out.split("\n")
    summary = "\n".join(lines[: 1 + len(names)]) + "\n"
    assert out.startswith(summary) and lines[0].startswith("series ")
    rest = out[len(summary):]
    cut = rest.rindex("\nAnswer: ")
    return rest[:cut], rest[cut + len("\nAnswer: "):].rstrip("\n")


def test_read_csv_reads_the_demo_layout():
    values, names = tslm.read_csv(DEMO_TEST / RECORDINGS[0])
    assert values.dtype == np.float32 and values.shape == (6, 100)
    assert names == ["accelerometer_x", "accelerometer_y", "accelerometer_z", "gyroscope_x", "gyroscope_y", "gyroscope_z"]
    first = (DEMO_TEST / RECORDINGS[0]).read_text().splitlines()[1].split(",")
    assert values[:, 0].tolist() == np.asarray([float(x) for x in first], dtype=np.float32).tolist()


def test_explain_recording_equals_cli(demo_model, demo_model_path, cli):
    csv = DEMO_TEST / RECORDINGS[0]
    cli_text, cli_answer = cli_explain(cli, demo_model_path, csv)
    values, names = tslm.read_csv(csv)
    with demo_model.session() as s:
        s.append_recording(values, names=names)
        text = s.generate(MAX_TOKENS)
        assert text == cli_text
        assert s.last_answer == cli_answer
        assert "Answer:" in text
        assert s.stats.prompt_tokens > 100  # the series became soft tokens
        ctx = s.context_tokens
        assert len(ctx) == s.position and int((ctx == -1).sum()) >= 100  # -1: a soft token


def test_metadata_of_the_demo(demo_model):
    assert demo_model.kind == "classifier"
    assert demo_model.kind_code == tslm.KIND_CLASSIFIER
    assert demo_model.vocab_size > 0 and demo_model.context_length > 0
    assert isinstance(demo_model.architecture, str) and demo_model.architecture


def test_python_dash_c_one_liner(demo_model_path, cli):
    """The README's quick start: a fresh interpreter, `import tslm`, one recording."""
    csv = DEMO_TEST / RECORDINGS[1]
    code = ("import sys, tslm\n"
            "values, names = tslm.read_csv(sys.argv[2])\n"
            f"with tslm.Model(sys.argv[1], threads={THREADS}) as m, m.session() as s:\n"
            "    s.append_recording(values, names=names)\n"
            f"    s.generate({MAX_TOKENS})\n"
            "    print(s.last_answer)\n")
    out = subprocess.run([sys.executable, "-c", code, str(demo_model_path), str(csv)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == cli_explain(cli, demo_model_path, csv)[1]
