"""Profile rep reports as a pool worker renders them: where a report's time goes.

Renders demo reports in this process with the batch's own task function
(:func:`coachnb.batch.execute_task`, the in-process engine, the feature store built first), after
one warm-up report that is not counted (it pays the imports and the team's scenario model, which
a worker pays once per team; then the heap is frozen, as a warm worker's is). Each task also
computes the rep's overview row beside the report, as a batch's worker does (``--no-overview-rows``
leaves it out). Then, for ``--reports`` reports (reps in id order, the manager's audience unless
``--audience rep``), it prints:

* wall and CPU seconds per report (CPU time is the figure to compare on a shared machine);
* the notebook's cells, each with its mean seconds (papermill's own per-cell timing);
* each chart function of :mod:`coachnb.plots` (building the figure) and
  :func:`coachnb.display.figure` (drawing and encoding it), mean CPU seconds per call and per report;
* with ``--cprofile N``, the N functions with the most cumulative and the most own time, and
  coachnb's own N with the most cumulative time.

Usage::

    .venv/bin/python benchmarks/profile_report.py                    # 8 reports, about 15 s
    .venv/bin/python benchmarks/profile_report.py --reports 12 --cprofile 25
    .venv/bin/python benchmarks/profile_report.py --data DIR --as-of 2026-11-23 --by-team   # CSV or Parquet

Nothing is asserted: the figures move with the machine's load (note ``uptime`` beside them).
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import functools
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-23"
CHARTS = ("weekly_vs_team", "activity_mix", "commitment_progress", "conversion_vs_team",
          "days_in_stage_vs_team", "coaching_record_chart")


def timed(store: dict, name: str, fn):
    """``fn`` that adds each call's CPU seconds to ``store[name]``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            store[name].append(time.process_time() - t0)
    return wrapper


def instrument(store: dict) -> None:
    """Time every chart function and the figure's drawing, where the display module calls them."""
    from coachnb import display, plots

    for name in CHARTS:
        setattr(plots, name, timed(store, f"plots.{name}", getattr(plots, name)))
    display.figure = timed(store, "display.figure (draw + encode)", display.figure)


def cell_seconds(ipynb_text: str) -> list[tuple[str, float]]:
    """Each code cell's first source line and its duration as papermill recorded it."""
    nb = json.loads(ipynb_text)
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        first = next((ln for ln in "".join(cell["source"]).splitlines() if ln and not ln.startswith("#")), "")
        out.append((first[:60], float(cell["metadata"].get("papermill", {}).get("duration") or 0.0)))
    return out


def tasks(data_dir: Path, features: str, n: int, audience: str, overview_rows: bool = True,
          as_of: str = AS_OF, by_team: bool = False) -> list[dict]:
    """One task per rep (the first ``n`` in id order, or in (team, id) order), as the batch builds them.

    With ``overview_rows`` each task also computes the rep's overview row (and, while the store
    keeps no team effects, the team's activity model), as a batch's worker does beside a report.
    """
    import pandas as pd

    from coachnb.batch import DEFAULT_ENGINE, find_notebook

    table = data_dir / "reps.csv"
    reps = pd.read_csv(table) if table.exists() else pd.read_parquet(data_dir / "reps.parquet")
    # by team: a batch's worker keeps to one team's reps (coachnb.batch.pick_task), so the team's
    # models are fitted once for all of them (in id order, the benchmark data's reps are of 125 teams in turn)
    order = ["team", "rep_id"] if by_team else ["rep_id"]
    reps = list(reps.sort_values(order)["rep_id"].astype(str))[:n + 1]
    notebook = str(find_notebook("rep_report.ipynb"))
    out = [{"notebook": notebook, "engine": DEFAULT_ENGINE, "timeout": 300, "title": rep,
            "parameters": {"rep_id": rep, "data_dir": str(data_dir), "as_of": as_of, "audience": audience,
                           "features": features}} for rep in reps]
    if overview_rows:
        for task, rep in zip(out, reps):
            task["overview_row"] = {"features": features, "as_of": as_of, "lookback_weeks": 13, "rep_id": rep}
    return out


def run(todo: list[dict], profiler, store: dict) -> tuple[list, list, dict, list]:
    """Render every task after the first (the warm-up); returns wall and CPU seconds, cell times and
    the overview rows' wall seconds."""
    from coachnb.batch import execute_task
    from coachnb.engine import freeze_baseline

    first = execute_task(todo[0])
    assert first["status"] == "ok", first["error"]
    freeze_baseline()  # as a pool worker does once warm: later collections skip what every report shares
    store.clear()  # the warm-up report's charts are not counted
    walls, cpus, cells, rows = [], [], collections.defaultdict(list), []
    for task in todo[1:]:
        w0, c0 = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        result = execute_task(task)
        if profiler is not None:
            profiler.disable()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        assert result["status"] == "ok", result["error"]
        if task.get("overview_row"):
            assert result["overview_row"] is not None, "the overview row failed"
            rows.append(result["overview_row_s"])
        for i, (line, s) in enumerate(cell_seconds(result["ipynb"])):
            cells[i].append((line, s))
    return walls, cpus, cells, rows


def report(walls, cpus, cells, rows, store, n) -> None:
    print(f"reports: {n}; per report wall {sum(walls) / n:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}), "
          f"CPU {sum(cpus) / n:.3f} s")
    if rows:
        print(f"  of which the overview row beside it: {sum(rows) / len(rows):.3f} s wall (max {max(rows):.3f})")
    print("\ncells (mean wall s per report, as papermill timed them):")
    for i, timings in sorted(cells.items()):
        print(f"  {i:2d} {sum(s for _, s in timings) / len(timings):7.3f}  {timings[0][0]}")
    print("\ncharts (CPU): calls per report, mean s per call, s per report")
    for name, secs in sorted(store.items()):
        print(f"  {name:40s} {len(secs) / n:5.2f} {sum(secs) / len(secs):7.4f} {sum(secs) / n:7.3f}")
    building = sum(sum(v) for k, v in store.items() if k.startswith("plots."))
    drawing = sum(store.get("display.figure (draw + encode)", []))
    print(f"  {'all charts (build + draw)':40s} {'':5s} {'':7s} {(building + drawing) / n:7.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / "data" / "sample")
    ap.add_argument("--as-of", default=AS_OF, help=f"the 1:1s' date (default {AS_OF}, the demo's)")
    ap.add_argument("--reports", type=int, default=8)
    ap.add_argument("--by-team", action="store_true",
                    help="reps in (team, id) order, as a batch's worker takes them (default: id order)")
    ap.add_argument("--audience", default="manager", choices=("manager", "rep"))
    ap.add_argument("--cprofile", type=int, default=0, metavar="N", help="print cProfile's top N functions")
    ap.add_argument("--no-overview-rows", action="store_true",
                    help="render the reports only (a batch's worker also computes each rep's overview row)")
    ap.add_argument("--save-stats", type=Path, metavar="FILE", help="with --cprofile: keep the profile (pstats)")
    args = ap.parse_args(argv)
    from coachnb.store_build import build_store

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="coachnb-profile-") as tmp:
        features = str(build_store(args.data.resolve(), args.as_of, 13, tmp))
        store = collections.defaultdict(list)
        instrument(store)
        todo = tasks(args.data.resolve(), features, args.reports, args.audience, not args.no_overview_rows,
                     args.as_of, args.by_team)
        profiler = cProfile.Profile() if args.cprofile else None
        walls, cpus, cells, rows = run(todo, profiler, store)
        report(walls, cpus, cells, rows, store, len(walls))
    if profiler is not None:
        if args.save_stats:
            profiler.dump_stats(str(args.save_stats))
        for key in ("cumulative", "tottime"):
            print(f"\ncProfile, top {args.cprofile} by {key} (all {len(walls)} reports):")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats(args.cprofile)
        print(f"\ncProfile, coachnb's own functions, top {args.cprofile} by cumulative time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats("coachnb/", args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
