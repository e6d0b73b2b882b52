"""Benchmark the batch: coachnb's run_batch against a naive notebook-per-rep baseline, same data, same run.

Prints, for each side: total wall time, reports per minute, per-report median and p95, peak
RSS of the parent and of every worker (sampled with psutil), and the ratio of throughputs;
plus the feature-store pass (time and peak memory, then a rerun that must skip it) and the
floor: what papermill takes for an empty parameterized notebook with the engine used, and
what rendering an empty notebook to HTML takes (coachnb's renderer; ``jupyter nbconvert``).

Usage::

    .venv/bin/python benchmarks/batch.py --reps 200 --weeks 78 --jobs 2 --naive-sample 10
    .venv/bin/python benchmarks/batch.py --reps 1000 --weeks 104 --fmt parquet --skip-naive

The naive baseline (``benchmarks/naive_report.ipynb``: a standard Jupyter kernel per report
that reads the raw CSV files with pandas, filters to its rep, computes a few metrics and
plots, then ``jupyter nbconvert --to html`` in a subprocess) takes hours on a full team, so
``--naive-sample N`` runs it on N reps and extrapolates; extrapolated figures say so.

Data is generated once per (reps, weeks, seed, fmt) under ``data/bench-<reps>x<weeks>-s<seed>-<fmt>/``
(git-ignored) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- measuring
def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class RssSampler:
    """Sample the RSS of every descendant process in a thread; keep the maximum per pid."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                kids = me.children(recursive=True)
            except psutil.Error:
                kids = []
            for p in kids:
                try:
                    rss = p.memory_info().rss / 2**20
                    if rss > self.peak.get(p.pid, 0):
                        self.peak[p.pid] = rss
                        if p.pid not in self.names:
                            self.names[p.pid] = " ".join(p.cmdline()[:3])[-60:]
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def workers(self, min_mb: float = 60.0) -> dict[int, float]:
        """Peak RSS per process that did real work (helpers such as the resource tracker are tiny)."""
        return {pid: mb for pid, mb in self.peak.items() if mb >= min_mb}


def pct(values, q) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(name: str, wall: float, durations: list, sampler: RssSampler, n: int, parent_mb: float | None = None,
            label: str = "") -> float:
    per_min = 60 * n / wall if wall > 0 else float("nan")
    print(f"\n== {name}{label}")
    print(f"  reports:            {n}")
    print(f"  wall time:          {wall:8.1f} s")
    print(f"  reports per minute: {per_min:8.1f}")
    if durations:
        print(f"  per report:         median {statistics.median(durations):.2f} s, p95 {pct(durations, 0.95):.2f} s")
    if parent_mb is not None:
        print(f"  parent peak RSS:    {parent_mb:8.0f} MB")
    workers = sampler.workers()
    if workers:
        print(f"  worker peak RSS:    max {max(workers.values()):.0f} MB over {len(workers)} process(es): "
              + ", ".join(f"{pid}={mb:.0f}" for pid, mb in sorted(workers.items())))
    return per_min


# --------------------------------------------------------------------------- data
def ensure_data(reps: int, weeks: int, seed: int, fmt: str, need_csv: bool) -> tuple[Path, str]:
    from coachnb.demo import write_demo_data

    base = REPO / "data" / f"bench-{reps}x{weeks}-s{seed}-{fmt}"
    data = base / "data"
    done = base / ".done"
    if not done.exists():
        t0 = time.perf_counter()
        write_demo_data(data, reps=reps, weeks=weeks, seed=seed, fmt=fmt)
        done.touch()
        print(f"generated {data} in {time.perf_counter() - t0:.1f} s")
    else:
        print(f"reusing {data}")
    if fmt != "csv" and need_csv and not (base / "csv" / ".done").exists():
        # the naive baseline reads CSV, as an analyst's export would be
        write_demo_data(base / "csv", reps=reps, weeks=weeks, seed=seed, fmt="csv")
        (base / "csv" / ".done").touch()
    as_of = json.loads((data / "ground_truth.json").read_text())["end"]
    return base, as_of


def rep_ids(data: Path) -> list:
    import pandas as pd

    f = data / "reps.csv"
    reps = pd.read_csv(f, dtype=str) if f.exists() else pd.read_parquet(data / "reps.parquet")
    return sorted(reps["rep_id"].astype(str))


# --------------------------------------------------------------------------- feature store pass
def _feature_pass(data, as_of, root, q):
    from coachnb import store_build

    t0 = time.perf_counter()
    path = store_build.build_store(data, as_of, 13, root, force=True)
    q.put((time.perf_counter() - t0, peak_rss_mb(), str(path)))


def feature_pass(data: Path, as_of: str, root: Path) -> str:
    """Time the pass in a fresh process (its own peak memory), then a rerun that must skip it."""
    import multiprocessing

    from coachnb import store_build

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_feature_pass, args=(str(data), as_of, str(root), q))
    p.start()
    seconds, mb, path = q.get()
    p.join()
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20
    t0 = time.perf_counter()
    again = store_build.build_store(data, as_of, 13, root)
    skip = time.perf_counter() - t0
    print("\n== feature-store pass (load + validate + every team-wide table, one process)")
    print(f"  time:               {seconds:8.1f} s   peak RSS {mb:.0f} MB   store {size:.1f} MB on disk")
    print(f"  rerun, unchanged:   {skip:8.2f} s   ({'skipped' if str(again) == path else 'REBUILT'})")
    return path


# --------------------------------------------------------------------------- floors
EMPTY = {"cells": [{"cell_type": "code", "execution_count": None, "id": "p", "metadata": {"tags": ["parameters"]},
                    "outputs": [], "source": "x = 1"}],
         "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
         "nbformat": 4, "nbformat_minor": 5}


def floors(tmp: Path, with_naive: bool, repeat: int = 5, jobs: int = 2) -> dict:
    """Per-report floor of each engine: papermill on an empty parameterized notebook, and HTML of it.

    coachnb's floor is measured where reports run: in pool workers (:class:`coachnb.batch.WorkerPool`,
    warmed up and with their start-up objects frozen out of the garbage collector), through the same
    :func:`coachnb.batch.execute_task` as a report (papermill with the in-process engine, then
    ``render_html``), with ``jobs`` workers busy at once as in the batch. Each worker's first run is
    left out (a worker's first report also pays one-time imports). The same empty run in this
    benchmark's own process is printed too: that process never froze its heap, so the engine's one
    full garbage collection per run walks all of it (what the benchmark used to call the floor).
    """
    import papermill

    from coachnb.batch import WorkerPool, engine_call, execute_task
    from coachnb.render import render_html

    nb_path = tmp / "empty.ipynb"
    nb_path.write_text(json.dumps(EMPTY))
    out = {}
    n_tasks = (repeat + 1) * jobs
    tasks = [{"key": i, "notebook": str(nb_path), "parameters": {"x": i}, "engine": None, "timeout": 60,
              "title": "empty"} for i in range(n_tasks)]
    seen, worker_times = set(), []

    def done(task, result):
        assert result["status"] == "ok", result["error"]
        if result["pid"] in seen:
            worker_times.append(result["duration_s"])
        seen.add(result["pid"])

    with WorkerPool(jobs) as pool:
        pool.run(tasks, done)
    out["coachnb"] = statistics.median(worker_times)
    engine_name, kw = engine_call(None, 60)
    times, render = [], []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        nb = papermill.execute_notebook(str(nb_path), str(tmp / "out.ipynb"), parameters={"x": i}, engine_name=engine_name,
                                        progress_bar=False, request_save_on_cell_execute=False, **kw)
        t1 = time.perf_counter()
        render_html(nb, title="empty")
        t2 = time.perf_counter()
        if i:  # the first run warms the engine up
            times.append(t1 - t0)
            render.append(t2 - t1)
    out["parent"] = statistics.median(times) + statistics.median(render)
    print("\n== floor (empty parameterized notebook, same engine, same HTML render)")
    print(f"  coachnb in-process engine, in {jobs} pool workers: {out['coachnb']:.3f} s per report "
          f"(median of {len(worker_times)} runs of execute_task: papermill + render_html)")
    print(f"  the same in this benchmark process (heap not frozen): papermill {statistics.median(times):.3f} s + "
          f"render_html {statistics.median(render):.3f} s = {out['parent']:.3f} s (not a floor: one full "
          f"garbage collection of this process per run)")
    if with_naive:
        times, conv = [], []
        for i in range(3):
            t0 = time.perf_counter()
            papermill.execute_notebook(str(nb_path), str(tmp / "out.ipynb"), parameters={"x": i}, kernel_name="python3",
                                       progress_bar=False)
            t1 = time.perf_counter()
            subprocess.run([str(VENV_BIN / "jupyter"), "nbconvert", "--to", "html", str(tmp / "out.ipynb")],
                           check=True, capture_output=True)
            conv.append(time.perf_counter() - t1)
            times.append(t1 - t0)
        out["naive"] = statistics.median(times) + statistics.median(conv)
        print(f"  standard Jupyter kernel:   papermill {statistics.median(times):.3f} s + jupyter nbconvert "
              f"{statistics.median(conv):.3f} s = {out['naive']:.3f} s per report")
    return out


# --------------------------------------------------------------------------- naive baseline
def _naive_one(rep_id: str, csv_dir: Path, out: Path) -> float:
    import papermill

    t0 = time.perf_counter()
    nb_out = out / f"{rep_id}.ipynb"
    papermill.execute_notebook(str(HERE / "naive_report.ipynb"), str(nb_out), kernel_name="python3",
                               parameters={"rep_id": rep_id, "data_dir": str(csv_dir)}, progress_bar=False,
                               cwd=str(HERE))
    subprocess.run([str(VENV_BIN / "jupyter"), "nbconvert", "--to", "html", str(nb_out)], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def naive(csv_dir: Path, rep_ids: list, jobs: int, out: Path, total_reps: int) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with RssSampler() as sampler, ThreadPoolExecutor(jobs) as pool:
        durations = list(pool.map(lambda r: _naive_one(r, csv_dir, out), rep_ids))
    wall = time.perf_counter() - t0
    per_min = summary("naive baseline (papermill + Jupyter kernel + nbconvert per report)", wall, durations, sampler,
                      len(rep_ids), label=f", SAMPLE of {len(rep_ids)} reps")
    print(f"  EXTRAPOLATED to {total_reps} reps: {total_reps / per_min:.1f} min wall "
          f"({total_reps / per_min / 60:.2f} h), from the sample's throughput")
    return per_min


# --------------------------------------------------------------------------- coachnb
def notebooks_with_store(store: str, where: Path) -> tuple[Path, Path]:
    """Copies of the shipped notebooks whose ``features`` parameter defaults to ``store``.

    What run_batch does once it passes ``features`` itself (see coachnb.batch, which builds the store with coachnb.store_build.build_store);
    a parameter run_batch passes explicitly still wins over this default.
    """
    import nbformat

    from coachnb.batch import find_notebook

    where.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("rep_report.ipynb", "team_overview.ipynb"):
        nb = nbformat.read(find_notebook(name), as_version=4)
        for cell in nb.cells:
            if "parameters" in cell.metadata.get("tags", []):
                assert 'features = ""' in cell.source, f"{name} has no features parameter"
                cell.source = cell.source.replace('features = ""', f"features = {json.dumps(store)}")
        nbformat.write(nb, where / name)
        out.append(where / name)
    return out[0], out[1]


def coachnb_batch(data: Path, as_of: str, jobs: int, out: Path, store: str | None, reps=None) -> tuple[float, int, float]:
    from coachnb.batch import run_batch

    t0 = time.perf_counter()  # resume=False: every report is rendered again
    with RssSampler() as sampler:
        kw = {}
        if store:
            kw["notebook"], kw["overview_notebook"] = notebooks_with_store(store, out / "bench-notebooks")
        result = run_batch(data, as_of, out=out, jobs=jobs, progress=False, lookback_weeks=13, reps=reps, **kw)
    wall = time.perf_counter() - t0
    durations = [r["duration_s"] for r in result.reports if r.get("duration_s") is not None]
    n = len(result.reports)
    label = "" if result.ok else f"  (NOT OK: {len(result.failed)} failed; overview {result.overview and result.overview['status']})"
    what = "coachnb run_batch (reports + index)" + ("" if reps is None else f", SUBSET of {n} reps")
    per_min = summary(what, wall, durations, sampler, n, peak_rss_mb(), label=label)
    if result.failed:
        print("  first failure:", result.failed[0].get("error"))
    print(f"  workers read:       {'the feature store ' + store if store else 'the raw data folder'}")
    median = statistics.median(durations) if durations else float("nan")
    return per_min, n, median


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--weeks", type=int, default=78)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--fmt", choices=("csv", "parquet"), default="csv", help="format of coachnb's input folder")
    p.add_argument("--out", default=None, help="report folder (default: data/bench-.../reports)")
    p.add_argument("--naive-sample", type=int, default=10, help="run the naive baseline on this many reps, extrapolate")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--raw", action="store_true", help="workers read the raw folder (no feature store), for comparison")
    p.add_argument("--batch-reps", type=int, default=0,
                   help="render only this many reps (spread over the team) in coachnb's batch; 0 = all")
    args = p.parse_args(argv)

    base, as_of = ensure_data(args.reps, args.weeks, args.seed, args.fmt, not args.skip_naive)
    data = base / "data"
    csv_dir = data if args.fmt == "csv" else base / "csv"
    out = Path(args.out) if args.out else base / "reports"
    print(f"{args.reps} reps x {args.weeks} weeks, as_of {as_of}, {args.jobs} jobs, {os.cpu_count()} cores")

    store = None if args.raw else feature_pass(data, as_of, out / as_of)
    selected = None
    if args.batch_reps:
        ids = rep_ids(data)
        selected = ids[:: max(1, len(ids) // args.batch_reps)][: args.batch_reps]
    coachnb_rate, n, median_s = coachnb_batch(data, as_of, args.jobs, out, store, selected)
    if not args.skip_naive:
        reps = rep_ids(csv_dir)
        step = max(1, len(reps) // max(args.naive_sample, 1))
        sample = reps[::step][: args.naive_sample]
        naive_rate = naive(csv_dir, sample, args.jobs, base / "naive", args.reps)
        print(f"\n== ratio: coachnb / naive throughput = {coachnb_rate / naive_rate:.1f}x "
              f"(naive throughput from a {len(sample)}-rep sample)")
    # after the batch, on the same machine in the same conditions
    with tempfile.TemporaryDirectory() as tmp:
        fl = floors(Path(tmp), with_naive=not args.skip_naive, jobs=args.jobs)
    per_report = 60 * args.jobs / coachnb_rate if coachnb_rate else float("nan")
    print(f"\ncoachnb per report in a worker: median {median_s:.3f} s; floor {fl['coachnb']:.3f} s "
          f"({median_s / fl['coachnb']:.1f}x the floor)")
    print(f"coachnb wall time per report and worker (index and pool start included): {per_report:.2f} s "
          f"({per_report / fl['coachnb']:.1f}x the floor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
