"""Benchmark the batch as users meet it, every figure side by side in one run.

Default scenarios (each prints its block, and a table of all of them closes the run):

* **one rep**: ``coachnb run data/sample --as-of 2026-11-23 --reps R003`` as a command, cold (a
  fresh ``--out``: the feature store is built) and warm (twice more into the same folder, after
  a whole-team run there, so the index's other rows come from that run);
* **team of 36**: the whole team with ``run_batch``, against the naive papermill + nbconvert
  loop on the same data (``--naive-sample N`` reps of it, extrapolated; ``--skip-naive``);
* **local vs LocalCluster**: the same team of 36 on a ``distributed.LocalCluster`` with as many
  worker processes as the local pool has (``--jobs``), per-report cost of both;
* **200 reps** x 78 weeks;
* **1,000 reps x 104 weeks** (Parquet) only with ``--big``.

Every scenario prints wall time, per-report median and p95, reports per minute and the peak RSS
of every process that did work (sampled with psutil every 0.1 s). Then the floor: what papermill
takes for an empty parameterized notebook in a pool worker, and an empty kernel + nbconvert.

Usage::

    .venv/bin/python benchmarks/batch.py --jobs 2                      # a few minutes on 2 cores
    .venv/bin/python benchmarks/batch.py --jobs 2 --big                # adds 1,000 x 104
    .venv/bin/python benchmarks/batch.py --only team36 --naive-sample 36   # one scenario, full naive loop

Data is generated once per (reps, weeks, seed, fmt) under ``data/bench-<reps>x<weeks>-s<seed>-<fmt>/``
(git-ignored) and reused. Figures on a machine shared with other work are upper bounds.
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
    """Sample the RSS and CPU time of every descendant process in a thread; keep the maximum per pid.

    CPU time (user + system) is far less sensitive than wall time to other work on a shared
    machine; a process's last sample is up to ``interval`` short of its total, a process already
    running when the sampler starts counts from its first sample, and the calling process's own
    CPU time is added by :meth:`cpu_s`.
    """

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        # a process that was already running (a Dask worker kept from an earlier run) counts from here
        self._cpu_before: dict[int, float] = {}
        self._started = time.time()
        self._own_cpu = sum(psutil.Process().cpu_times()[:2])
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
                    cpu = sum(p.cpu_times()[:2])
                    if p.pid not in self._cpu_before:
                        self._cpu_before[p.pid] = cpu if p.create_time() < self._started else 0.0
                    self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), cpu - self._cpu_before[p.pid])
                    if rss > self.peak.get(p.pid, 0):
                        self.peak[p.pid] = rss
                        if p.pid not in self.names:
                            self.names[p.pid] = " ".join(p.cmdline()[:3])[-60:]
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def cpu_s(self) -> float:
        """User + system seconds of this process since the sampler started and of every descendant seen."""
        return sum(psutil.Process().cpu_times()[:2]) - self._own_cpu + sum(self.cpu.values())

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
    print(f"  CPU time:           {sampler.cpu_s():8.1f} s  (user + system, every process; less load-sensitive)")
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

    from coachnb.batch import WorkerPool, engine_call
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
def coachnb_batch(data: Path, as_of: str, jobs: int, out: Path, scheduler=None,
                  label: str = "") -> tuple[float, int, float, float]:
    """A whole run_batch (data check, feature store, reports, index) from a fresh report folder.

    Returns
    -------
    wall, reports, median per report, peak RSS of the largest process (MB)
    """
    from coachnb.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)  # cold: the store is built, every report rendered
    t0 = time.perf_counter()
    with RssSampler() as sampler:
        result = run_batch(data, as_of, out=out, jobs=jobs, progress=False, lookback_weeks=13, scheduler=scheduler)
    wall = time.perf_counter() - t0
    durations = [r["duration_s"] for r in result.reports if r.get("duration_s") is not None]
    n = len(result.reports)
    state = "" if result.ok else f"  (NOT OK: {len(result.failed)} failed; overview {result.overview and result.overview['status']})"
    what = "coachnb run_batch (store, reports, index)" + (f", {label}" if label else "")
    summary(what, wall, durations, sampler, n, peak_rss_mb(), label=state)
    if result.failed:
        print("  first failure:", result.failed[0].get("error"))
    median = statistics.median(durations) if durations else float("nan")
    # what the run adds beyond its reports: start, data check, store, pool start, index, exit
    print(f"  fixed overhead:     {wall - sum(durations) / jobs:8.1f} s  (wall - report time / {jobs} processes)")
    workers = sampler.workers()
    return wall, n, median, max([*workers.values(), peak_rss_mb()])


# --------------------------------------------------------------------------- scenarios
def one_rep(jobs: int) -> list:
    """``coachnb run data/sample --reps R003`` as a command: cold (fresh --out), then warm twice."""
    sample = REPO / "data" / "sample"
    rows = []
    with tempfile.TemporaryDirectory(prefix="coachnb-bench-") as tmp:
        out = Path(tmp) / "reports"
        command = [sys.executable, "-m", "coachnb", "run", str(sample), "--as-of", "2026-11-23", "--out", str(out)]
        for label, extra in (("one rep, cold (fresh --out)", ["--reps", "R003"]),
                             ("(team run into that folder)", ["--jobs", str(jobs)]),
                             ("one rep, warm (store built, team run before)", ["--reps", "R003"]),
                             ("one rep, warm again", ["--reps", "R003"])):
            t0 = time.perf_counter()
            with RssSampler() as sampler:
                # not from the checkout: `python -m` would import the coachnb in the current folder
                proc = subprocess.run(command + extra, check=False, capture_output=True, text=True, cwd=tmp)
            wall = time.perf_counter() - t0
            assert proc.returncode == 0, proc.stderr[-2000:]
            if label.startswith("("):
                continue
            peak = max(sampler.peak.values()) if sampler.peak else float("nan")
            print(f"\n== {label}\n  wall time (command): {wall:8.2f} s   CPU {sampler.cpu_s():.2f} s (user + system)"
                  f"   peak RSS {peak:.0f} MB (one process)")
            rows.append((label, wall, 1, None, peak))
    return rows


def local_vs_dask(data: Path, as_of: str, jobs: int, out: Path) -> list:
    """The same team locally and on a LocalCluster of ``jobs`` worker processes (one thread each)."""
    import distributed

    rows = [("team, local pool", *coachnb_batch(data, as_of, jobs, out / "local", label="local pool"))]
    with distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        # the first run on a fresh cluster starts each worker's report processes; the next finds them warm
        for when in ("first run", "next run"):
            rows.append((f"team, LocalCluster, {when}",
                         *coachnb_batch(data, as_of, jobs, out / "dask", scheduler=cluster.scheduler_address,
                                        label=f"LocalCluster, {jobs} worker processes, {when}")))
    for row in rows[1:]:
        print(f"\n== {row[0]} / local pool: per report (median) {row[3] / rows[0][3]:.2f}x, "
              f"wall {row[1] / rows[0][1]:.2f}x")
    return rows


def team(reps: int, weeks: int, fmt: str, args, out_name: str) -> tuple[list, Path, str, Path]:
    """A whole team with run_batch (after the timed feature-store pass); the rows for the closing table."""
    base, as_of = ensure_data(reps, weeks, args.seed, fmt, need_csv=not args.skip_naive and fmt != "csv")
    data = base / "data"
    out = Path(args.out) / out_name if args.out else base / "reports"
    print(f"\n#### {reps} reps x {weeks} weeks, as_of {as_of}, {args.jobs} jobs, {os.cpu_count()} cores")
    row = coachnb_batch(data, as_of, args.jobs, out, label="")
    return [(f"{reps} reps x {weeks} weeks", *row)], base, as_of, out


def naive_side(base: Path, reps: int, fmt: str, args) -> float:
    """The naive loop's throughput (reports per minute) on a sample of the team, extrapolated."""
    data = base / "data"
    csv_dir = data if fmt == "csv" else base / "csv"
    ids = rep_ids(csv_dir)
    step = max(1, len(ids) // max(args.naive_sample, 1))
    sample = ids[::step][: args.naive_sample]
    return naive(csv_dir, sample, args.jobs, base / "naive", reps)


def closing_table(rows: list) -> None:
    """One line per scenario: wall, reports, per-report median, peak RSS of the largest process."""
    print("\n== all figures")
    print(f"  {'scenario':48s} {'wall s':>8s} {'reports':>8s} {'median s':>9s} {'peak MB':>8s}")
    for label, wall, n, median, peak in rows:
        median_text = "" if median is None else f"{median:.2f}"
        print(f"  {label:48s} {wall:8.1f} {n:8d} {median_text:>9s} {peak:8.0f}")


def custom_team(args) -> int:
    """``--reps N``: one team of N reps (``--weeks``, ``--fmt``), against the naive loop unless ``--skip-naive``."""
    rows, base, _, _ = team(args.reps, args.weeks, args.fmt, args, f"team{args.reps}")
    if not args.skip_naive:
        naive_rate = naive_side(base, args.reps, args.fmt, args)
        print(f"\n== coachnb / naive throughput = {60 * rows[0][2] / rows[0][1] / naive_rate:.1f}x")
    closing_table(rows)
    return 0


SCENARIOS = ("one-rep", "team36", "dask", "200")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None, help="parent of the report folders (default: data/bench-.../reports)")
    p.add_argument("--naive-sample", type=int, default=6, help="run the naive loop on this many reps, extrapolate")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--big", action="store_true", help="also 1,000 reps x 104 weeks (Parquet)")
    p.add_argument("--only", choices=SCENARIOS + ("big",), action="append",
                   help="run only these scenarios (repeatable)")
    p.add_argument("--no-floor", action="store_true", help="skip the empty-notebook floor")
    p.add_argument("--reps", type=int, default=None, help="instead: one team of this many reps (with --weeks, --fmt)")
    p.add_argument("--weeks", type=int, default=78)
    p.add_argument("--fmt", choices=("csv", "parquet"), default="csv", help="format of coachnb's input folder")
    args = p.parse_args(argv)
    if args.reps:
        return custom_team(args)
    chosen = set(args.only or SCENARIOS + (("big",) if args.big else ()))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    if "one-rep" in chosen:
        rows += one_rep(args.jobs)
    if "team36" in chosen:
        team_rows, base, _, _ = team(36, 78, "csv", args, "team36")
        rows += team_rows
        if not args.skip_naive:
            naive_rate = naive_side(base, 36, "csv", args)
            coachnb_rate = 60 * team_rows[0][2] / team_rows[0][1]
            print(f"\n== team of 36: coachnb / naive throughput = {coachnb_rate / naive_rate:.1f}x "
                  f"(naive from a {args.naive_sample}-rep sample; coachnb's wall includes start, store and index)")
    if "200" in chosen:
        rows += team(200, 78, "csv", args, "team200")[0]
    if "big" in chosen:
        rows += team(1000, 104, "parquet", args, "team1000")[0]
    # last: a LocalCluster leaves variables in this process's environment (Dask's pre-spawn environ), after
    # which a local pool spawns its workers instead of forking them from the forkserver
    if "dask" in chosen:
        base, as_of = ensure_data(36, 78, args.seed, "csv", need_csv=False)
        out = Path(args.out) / "team36" if args.out else base / "reports"
        rows += local_vs_dask(base / "data", as_of, args.jobs, out / "compare")
    if not args.no_floor:
        with tempfile.TemporaryDirectory() as tmp:
            floors(Path(tmp), with_naive=False, jobs=args.jobs)
    closing_table(rows)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
