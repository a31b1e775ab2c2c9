"""Batch runs on Ray (python/examples/ray_batch.py): the same outputs as a plain loop.

Skipped unless ray is installed (`make ray-test` installs python/requirements-ray.txt). A local
Ray cluster of 2 CPUs is started by the test. Explains TSLM_RAY_RECORDINGS (default 200)
BasicMotions recordings (the 40 held-out files and deterministic perturbations, see the
example's docstring) with 2 workers × 1 thread and 1 worker × 2 threads, and forecasts
TSLM_RAY_WINDOWS (default 2000) Airline windows the same two ways; every output must equal the
sequential loop's. Throughput is printed (run pytest with -s) and written to
<models folder>/ray-throughput.json.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys

import pytest

from conftest import AIRLINE, DEMO_TEST, MODELS, REPO

ray = pytest.importorskip("ray")

N_RECORDINGS = int(os.environ.get("TSLM_RAY_RECORDINGS", "200"))
N_WINDOWS = int(os.environ.get("TSLM_RAY_WINDOWS", "2000"))
# the 1-worker explain pass over the first N items only (default: all; 0: skipped), for a busy machine
N_ONE_WORKER = int(os.environ.get("TSLM_RAY_ONE_WORKER_RECORDINGS", str(N_RECORDINGS)))
CPUS = 2
FIGURES: dict = {}


def _example():
    spec = importlib.util.spec_from_file_location("ray_batch", REPO / "python" / "examples" / "ray_batch.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ray_batch"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def example():
    mod = _example()
    # Ray starts its workers at niceness 15 by default; 0 keeps them at the driver's, so the loop
    # and the workers compete alike for a busy machine's CPUs
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
    # the workers unpickle the example's classes by value (the example is not an installed module)
    ray.cloudpickle.register_pickle_by_value(mod)
    yield mod
    ray.shutdown()
    out = MODELS / "ray-throughput.json"
    try:
        out.write_text(json.dumps(FIGURES, indent=1) + "\n")
    except OSError:
        pass


def _report(task, what, n, seconds):
    FIGURES.setdefault(task, {})[what] = {"items": n, "seconds": round(seconds, 2),
                                          "items_per_second": round(n / seconds, 3)}
    print(f"\n[ray-test] {task}: {what}: {n} items in {seconds:.1f} s = {n / seconds:.3f} items/s", flush=True)


def test_explain_200_recordings_on_ray_equal_a_loop(example, demo_model_path):
    copies = math.ceil(N_RECORDINGS / 40)
    items = example.basicmotions_recordings(DEMO_TEST, copies)[:N_RECORDINGS]
    assert len(items) == N_RECORDINGS >= 200 or "TSLM_RAY_RECORDINGS" in os.environ
    model = str(demo_model_path)
    seq, s = example.run_sequential("explain", items, model, threads=CPUS)
    _report("explain", f"sequential loop, 1 process x {CPUS} threads", len(seq), s)
    assert all(answer for answer, _ in seq.values())
    two, s2 = example.run_ray("explain", items, model, workers=2, threads=1)
    _report("explain", "ray, 2 workers x 1 thread", len(two), s2)
    assert two == seq
    if N_ONE_WORKER:
        subset = items[:N_ONE_WORKER]
        one, s1 = example.run_ray("explain", subset, model, workers=1, threads=CPUS)
        _report("explain", f"ray, 1 worker x {CPUS} threads", len(one), s1)
        assert one == {it["id"]: seq[it["id"]] for it in subset}
    answers = [a for a, _ in seq.values()]
    FIGURES["explain"]["answers"] = {a: answers.count(a) for a in sorted(set(answers))}
    FIGURES["explain"]["texts_with_an_answer_line"] = sum("Answer:" in t for _, t in seq.values())


def test_forecast_windows_on_ray_equal_a_loop(example, lstm_model_path):
    items = example.airline_windows(AIRLINE, N_WINDOWS)
    model = str(lstm_model_path)
    seq, s = example.run_sequential("forecast", items, model, threads=1)
    _report("forecast", "sequential loop, 1 process x 1 thread", len(seq), s)
    two, s2 = example.run_ray("forecast", items, model, workers=2, threads=1)
    _report("forecast", "ray, 2 workers x 1 thread", len(two), s2)
    assert two == seq
    one, s1 = example.run_ray("forecast", items, model, workers=1, threads=1)
    _report("forecast", "ray, 1 worker x 1 thread", len(one), s1)
    assert one == seq
    assert len({p for p in seq.values()}) > len(seq) // 2  # the windows differ
