#!/usr/bin/env python3
"""Explain (or forecast) thousands of recordings with Ray Data, one tslm model per worker.

Each Ray worker is an actor of a callable class (:class:`Explainer` or :class:`Forecaster`) that
opens the .tslm file once, memory-mapped: workers on one node share the model's pages, and
every batch Ray Data hands the worker (``map_batches``) runs through the already loaded model.
The same script runs on a laptop, on this repository's 2-core CI machine (a local cluster it
starts itself) and on a multi-node cluster (``--address``); see python/README.md.

Explain the 40 held-out BasicMotions recordings and 4 perturbed copies of each (200 in all)
with 2 workers of 1 thread, and check the answers against a plain loop:

    python python/examples/ray_batch.py --model .cache/out/basicmotions-q8_0.tslm \\
        --copies 5 --workers 2 --threads 1 --check

Forecast 2,000 windows of the Airline series with the LSTM demo:

    python python/examples/ray_batch.py --task forecast --model .cache/out/airline-lstm.tslm \\
        --count 2000 --workers 2

The recordings: copy 0 of each demo/basicmotions/test/*.csv is the file itself; copy k > 0 is
the recording scaled by (1 + 0.01 k) plus Gaussian noise of 0.05 × each channel's std, drawn
with numpy's default_rng(seed = 1000 k + the file's index in sorted order). Deterministic, so
every run (and the sequential check) sees the same values. The forecast histories: the 24 months
before every origin of demo/forecast/airline.csv, scaled by (1 + 0.001 j) for the j-th pass
over the origins, until --count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import tslm

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

def basicmotions_recordings(test_dir: Path, copies: int) -> list[dict]:
    """The held-out recordings and (copies - 1) deterministic perturbations of each."""
    files = sorted(Path(test_dir).glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV recordings in {test_dir}")
    items = []
    for k in range(copies):
        for i, f in enumerate(files):
            values, names = tslm.read_csv(f)
            if k > 0:
                rng = np.random.default_rng(1000 * k + i)
                std = values.std(axis=1, keepdims=True)
                values = (values * (1 + 0.01 * k) + rng.normal(0, 1, values.shape) * 0.05 * std).astype(np.float32)
            items.append({"id": len(items), "source": f"{f.name}#{k}", "values": values,
                          "names": ",".join(names or [])})
    return items


def airline_windows(csv: Path, count: int, window: int = 24) -> list[dict]:
    """count histories of `window` steps from the Airline series (see the module docstring)."""
    values, _ = tslm.read_csv(csv)
    series = values[0]
    origins = range(window, series.size + 1)
    items = []
    j = 0
    while len(items) < count:
        for origin in origins:
            if len(items) == count:
                break
            h = (series[origin - window:origin] * (1 + 0.001 * j)).astype(np.float32)
            items.append({"id": len(items), "source": f"origin {origin}, scale #{j}", "values": h, "names": ""})
        j += 1
    return items


# ---------------------------------------------------------------------------------------------
# workers: one model per instance, loaded once
# ---------------------------------------------------------------------------------------------

class Explainer:
    """Explains recordings with a time-series classifier (OpenTSLM); one instance per worker."""

    def __init__(self, model_path: str, max_tokens: int = 160, threads: int = 1):
        self.model = tslm.Model(model_path, threads=threads)  # mmap'd: loaded once per worker
        self.session = self.model.session()
        self.max_tokens = max_tokens

    def explain(self, values: np.ndarray, names: str) -> tuple[str, str]:
        self.session.reset()
        self.session.append_recording(values, names=names.split(",") if names else None)
        text = self.session.generate(self.max_tokens)
        return self.session.last_answer, text

    def __call__(self, batch: dict) -> dict:
        answers, texts = [], []
        for values, names in zip(batch["values"], batch["names"]):
            a, t = self.explain(np.asarray(values, dtype=np.float32), str(names))
            answers.append(a)
            texts.append(t)
        return {"id": batch["id"], "answer": np.array(answers, dtype=object), "text": np.array(texts, dtype=object)}


class Forecaster:
    """Forecasts histories with a forecasting model; one instance per worker."""

    def __init__(self, model_path: str, horizon: int | None = None, threads: int = 1):
        self.model = tslm.Model(model_path, threads=threads)
        self.horizon = horizon

    def __call__(self, batch: dict) -> dict:
        points = [self.model.forecast(np.asarray(v, dtype=np.float32), horizon=self.horizon).point
                  for v in batch["values"]]
        return {"id": batch["id"], "point": np.stack(points)}


def _worker(task: str, model: str, threads: int, max_tokens: int, horizon: int | None):
    if task == "explain":
        return Explainer, {"model_path": model, "max_tokens": max_tokens, "threads": threads}
    return Forecaster, {"model_path": model, "horizon": horizon, "threads": threads}


def _outputs(task: str, out: dict) -> list:
    if task == "explain":
        return list(zip(out["answer"], out["text"]))
    return [tuple(p.tolist()) for p in out["point"]]


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------

def run_sequential(task: str, items: list[dict], model: str, threads: int = 0, max_tokens: int = 160,
                   horizon: int | None = None) -> tuple[dict, float]:
    """The same worker class in a plain loop in this process: {id: output}, seconds."""
    cls, kwargs = _worker(task, model, threads, max_tokens, horizon)
    t0 = time.perf_counter()
    worker = cls(**kwargs)
    results = {}
    for it in items:
        batch = {"id": np.array([it["id"]]), "values": it["values"][np.newaxis], "names": np.array([it["names"]])}
        out = worker(batch)
        results[it["id"]] = _outputs(task, out)[0]
    return results, time.perf_counter() - t0


def run_ray(task: str, items: list[dict], model: str, workers: int, threads: int = 1, batch_size: int | None = None,
            max_tokens: int = 160, horizon: int | None = None) -> tuple[dict, float]:
    """map_batches over a Ray Dataset of the items with `workers` actors: {id: output}, seconds
    (from the dataset's creation to the last result, actor start-up and model loads included)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    cls, kwargs = _worker(task, model, threads, max_tokens, horizon)
    batch_size = batch_size or (4 if task == "explain" else 256)
    t0 = time.perf_counter()
    ds = ray.data.from_items([{"id": it["id"], "values": it["values"], "names": it["names"]} for it in items],
                             override_num_blocks=max(workers * 4, 1))
    out = ds.map_batches(cls, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format="numpy",
                         compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads)
    results = {}
    for batch in out.iter_batches(batch_size=256, batch_format="numpy"):
        for i, o in zip(batch["id"], _outputs(task, batch)):
            results[int(i)] = o
    return results, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["explain", "forecast"], default="explain")
    ap.add_argument("--model", required=True, help="a .tslm file at the same path on every node")
    ap.add_argument("--recordings", default=str(REPO / "demo" / "basicmotions" / "test"),
                    help="explain: a folder of CSV recordings")
    ap.add_argument("--copies", type=int, default=5, help="explain: copies of each recording (1 = the files only)")
    ap.add_argument("--series", default=str(REPO / "demo" / "forecast" / "airline.csv"), help="forecast: the series")
    ap.add_argument("--count", type=int, default=2000, help="forecast: histories")
    ap.add_argument("--workers", type=int, default=2, help="Ray actors, each with its own model")
    ap.add_argument("--threads", type=int, default=1, help="library threads per worker (Ray num_cpus per actor)")
    ap.add_argument("--batch-size", type=int, default=None, help="items per batch (default 4 to explain, 256 to forecast)")
    ap.add_argument("--limit", type=int, default=None, help="only the first LIMIT items")
    ap.add_argument("-n", "--max-tokens", type=int, default=160)
    ap.add_argument("--horizon", type=int, default=None)
    ap.add_argument("--address", default=None,
                    help="an existing Ray cluster ('auto', or host:6379); default: start a local one")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local cluster (default: all)")
    ap.add_argument("--check", action="store_true", help="also run a sequential loop and compare the outputs")
    ap.add_argument("--out", default=None, help="write one JSON line per item here")
    args = ap.parse_args(argv)

    import ray

    if args.task == "explain":
        items = basicmotions_recordings(Path(args.recordings), args.copies)
    else:
        items = airline_windows(Path(args.series), args.count)
    items = items[: args.limit]
    model = os.path.abspath(args.model)
    if args.address:
        ray.init(address=args.address)
    else:
        # a local cluster: workers at this process's niceness (Ray's default adds 15)
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    print(f"ray {ray.__version__}: {ray.cluster_resources().get('CPU', 0):g} CPUs; "
          f"{len(items)} items, {args.workers} workers × {args.threads} threads", flush=True)
    results, seconds = run_ray(args.task, items, model, args.workers, args.threads, args.batch_size,
                               args.max_tokens, args.horizon)
    print(f"ray: {len(results)} items in {seconds:.1f} s = {len(results) / seconds:.2f} items/s "
          f"({args.workers} workers)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            for it in items:
                o = results[it["id"]]
                rec = ({"answer": o[0], "text": o[1]} if args.task == "explain" else {"point": list(o)})
                f.write(json.dumps({"id": it["id"], "source": it["source"], **rec}) + "\n")
    if args.task == "explain":
        answers = [results[it["id"]][0] for it in items]
        for a in sorted(set(answers)):
            print(f"  {a}: {answers.count(a)}")
    status = 0
    if args.check:
        seq, s_seconds = run_sequential(args.task, items, model, 0, args.max_tokens, args.horizon)
        same = sum(seq[i] == results[i] for i in seq)
        print(f"sequential loop (1 process, all cores): {len(seq)} items in {s_seconds:.1f} s = "
              f"{len(seq) / s_seconds:.2f} items/s; {same}/{len(seq)} outputs identical to Ray's")
        status = 0 if same == len(seq) == len(results) else 1
    ray.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
