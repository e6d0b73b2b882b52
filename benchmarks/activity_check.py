"""How often ``coachnb.adherence.activity_change`` confirms a real activity change, and how often a false one.

The activity half of issue #14 (item 1), measured apart from the pipeline test (which is
slow: ``benchmarks/calibration.py`` runs both). On both simulators of the calibration study
(``coachnb.simulate.simulate_team`` and ``benchmarks/sim_fiscal.py``), drawn as
``benchmarks/calibration.py`` draws them, one commitment of 4-8 weeks per team, the target
1.5x the mean of the 8 weeks before the change (as the calibration does):

* ``effect``: the rep's activity rises x1.8-2.5 at the change: share confirmed
  (``ActivityChange.changed``), which the issue wants >= 85%;
* ``null``: the rep's activity does not change: share falsely confirmed (one-sided, the
  interval excluding 1 upwards; nominal 2.5%);
* ``null after lull`` (fiscal only): no change, and the change date 3-10 weeks after a
  holiday or the summer lull, so the baseline spans the team's trough;
* ``null new hire``: no change, the rep hired 10-20 weeks before the date (missing before).

Each is run three ways: ``calib`` (no recorded baseline, no team panel: how
``benchmarks/calibration.py`` calls it), ``recorded`` (the mean of the 8 weeks before the
change recorded as the commitment's baseline, as a report passes it) and ``team`` (recorded
baseline and the teammates' activity panel). Shares pooled over the seeds with a Wilson 95%
interval. Deterministic given the seeds.

Usage::

    python benchmarks/activity_check.py --n 400 --seeds 2026 2027
"""
from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# run as a script from a checkout; sim_fiscal sits beside this file
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sim_fiscal import FiscalSpec, simulate_fiscal_team

from coachnb.adherence import activity_change
from coachnb.simulate import simulate_team

SCENARIOS = ("effect", "null", "null after lull", "null new hire")
WAYS = ("calib", "team only", "recorded", "team")


def draw(simulator: str, scenario: str, rng: np.random.Generator):
    """(activity panel, rep id, start, end) of one simulated team."""
    ratio = (1.8, 2.5) if scenario == "effect" else (1.0, 1.0)
    if simulator == "fiscal":
        knobs = dict(activity_ratio_range=ratio)
        if scenario == "null after lull":
            knobs["after_lull"] = True
        if scenario == "null new hire":
            knobs["rep_hired_before"] = (10, 20)
        sim = simulate_fiscal_team(rng, FiscalSpec(**knobs))
        return sim.activity, sim.rep_id, sim.start, sim.commitment_end
    n_reps = int(round(math.exp(rng.uniform(math.log(5), math.log(50)))))
    sim = simulate_team(rng, n_reps=n_reps, n_weeks=int(rng.integers(26, 105)), post_weeks_needed=10,
                        activity_ratio=float(rng.uniform(*ratio)))
    act = sim.activity.copy()
    if scenario == "null new hire":
        hire = max(0, sim.change_week - int(rng.integers(10, 21)))
        act.iloc[:hire, 0] = np.nan
    end = act.index[min(sim.change_week + int(rng.integers(4, 9)) - 1, len(act) - 1)]
    return act, sim.rep_id, sim.start, end


def judge(act, rep, start, end, way: str, alpha: float = 0.05) -> bool:
    """``ActivityChange.changed`` the way named (see the module's docstring)."""
    y = act[rep]
    t0 = act.index.get_loc(start)
    pre = float(np.nanmean(y.to_numpy(float)[max(0, t0 - 8):t0])) if t0 > 0 else float("nan")
    target = 1.5 * pre if np.isfinite(pre) and pre > 0 else None
    kw = {"alpha": alpha}
    if way in ("recorded", "team") and np.isfinite(pre):
        kw["baseline"] = round(pre, 1)
    if way in ("team", "team only") and "team" in inspect.signature(activity_change).parameters:
        kw["team"] = act.drop(columns=[rep])
    return bool(activity_change(y, start, end, target=target, **kw).changed)


def run(simulator: str, scenario: str, seeds, n: int, alpha: float = 0.05) -> dict:
    """Share confirmed per way over ``n`` teams a seed."""
    hits = {w: 0 for w in WAYS}
    total = 0
    for seed in seeds:
        for i in range(n):
            rng = np.random.default_rng([seed, zlib.crc32(simulator.encode()), zlib.crc32(scenario.encode()), i])
            act, rep, start, end = draw(simulator, scenario, rng)
            total += 1
            for w in WAYS:
                hits[w] += judge(act, rep, start, end, w, alpha)
    return {w: (hits[w], total) for w in WAYS}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="teams per scenario and seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2026])
    ap.add_argument("--simulator", choices=("first", "fiscal", "both"), default="both")
    ap.add_argument("--alpha", type=float, default=0.05, help="activity_change's alpha (two-sided interval)")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    a = ap.parse_args(argv)
    sims = ("first", "fiscal") if a.simulator == "both" else (a.simulator,)
    t = time.time()
    print(f"{'simulator':9s} {'scenario':16s} " + " ".join(f"{w:>22s}" for w in WAYS))
    for sim in sims:
        for sc in a.scenarios:
            if sc == "null after lull" and sim == "first":
                continue
            res = run(sim, sc, a.seeds, a.n, a.alpha)
            cells = []
            for w in WAYS:
                k, n = res[w]
                lo, hi = wilson(k, n)
                cells.append(f"{k / n:6.3f} [{lo:.3f},{hi:.3f}]")
            print(f"{sim:9s} {sc:16s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
    print(f"({time.time() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
