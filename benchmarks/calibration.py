"""Calibration study of coachnb's "did it move pipeline?" verdict on two simulators (issue #14).

The study is pre-registered in ``docs/preregistration.md``: scenarios, numbers of simulations,
seeds, the primary comparison and the acceptance thresholds are fixed there, before any run.
This script measures the verdict **as shipped** (``coachnb.impact.assess_commitment`` with
the default ``ImpactSettings``, gates included) on

* ``first``: ``coachnb.simulate.simulate_team`` (the simulator the method was developed on),
  through its public knobs, plus two steps done here (extra rep noise; weeks before a hire
  set to missing);
* ``fiscal``: ``benchmarks/sim_fiscal.py``, an independent simulator (fiscal calendar,
  mid-quarter troughs, holidays, NB shape 2-4, lags 1-8 weeks, noisier reps, teammates who
  change at other dates, new hires, teams of 5-40).

and prints one table per simulator:

* null scenarios (base, noisy rep, changed teammates, seasonal lulls, new hire, small team):
  false "moved" with its 95% Wilson interval, pooled over the seeds;
* effect cells (x1.6, x2.0, x2.5 on new pipeline; named "8 wk" after the window they were
  registered with): the share of planted increases found by the verdict as shipped (on the
  post window coachnb uses: every observed week after the lag, up to ``max_post_weeks``) and
  by the naive test at its nominal 5% on an 8-week post window (:data:`NAIVE_WINDOW`, as
  registered);
* in every row: interval coverage of the true window rate ratio, the share of real x1.8+
  activity changes confirmed (``ActivityChange.changed``), the share "not enough data to tell";
* the pre-registered primary comparison: both tests held to the same 5% two-sided
  false-positive rate on the simulator's own "null: base" (per seed), on the same windows;
  size-adjusted power per effect cell and overall, with a paired 95% interval;
* the count of diagnoses ``kept_no_lift`` (``coachnb.coaching.classify``) where the pipeline
  was not tested (must be 0), and every pre-registered check marked PASS or FAIL;
* apart, on the first simulator, two descriptive rows no check uses (added after the first run,
  see the deviations in ``docs/preregistration.md``): the change date found in the rep's
  activity by ``coachnb.adherence.detect_activity_change``, and the misuse of finding it in the
  pipeline being tested.

The naive test is a plain quasi-Poisson before/after test on the rep's own weekly counts in
the baseline and post weeks coachnb used (Pearson dispersion floored at 1, Student's t); the
primary comparison and the ``naive``/``nAdj`` columns use it on those windows.

The analysis sees each simulated team as a report would: both simulators' teammates change
unannounced (no commitment on record), so nothing is passed as ``excluded_peers``; coachnb
finds them only if ``ImpactSettings.leave_out_changed_peers`` is on.

Usage::

    python benchmarks/calibration.py                      # the pre-registered run: both simulators,
                                                          # seeds 2026-2028, 1,000 nulls / 500 per cell
    python benchmarks/calibration.py --quick              # 200 nulls / 100 per cell, printed only
    python benchmarks/calibration.py --simulator fiscal --seeds 7 8 --n-null 300 --n-effect 150
    python benchmarks/calibration.py --jobs 2 --write-docs   # also write the tables into docs/methods.md

``--seeds N`` (one number) runs N seeds from ``--seed`` on; several numbers are the seeds.
``--write-docs [PATH]`` replaces what lies between the ``<!-- calibration:start -->`` and
``<!-- calibration:end -->`` lines of PATH (default ``docs/methods.md``) with the tables, their
seeds, numbers of simulations and the command; the markers are checked before any simulation.
``--save``/``--load`` keep the per-simulation results as JSON (plain numbers, nothing
executable). Deterministic given the seeds: each simulated team has its own seed from
(seed, simulator, scenario name, number), whatever ``--jobs`` and the order of the scenarios.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
# run as a script from a checkout, without installing coachnb; sim_fiscal sits beside this file
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sim_fiscal import FiscalSpec, ar1, simulate_fiscal_team

from coachnb.coaching import classify
from coachnb.adherence import detect_activity_change
from coachnb.impact import DEFAULT_SETTINGS, assess_commitment
from coachnb.simulate import simulate_team

ALPHA = 0.05
SIMULATORS = ("first", "fiscal")
DEFAULT_SEED = 2026
#: the pre-registered numbers (docs/preregistration.md)
N_NULL, N_EFFECT, N_SEEDS = 1000, 500, 3
#: where ``--write-docs`` writes the tables by default, and the lines that delimit them there
DOCS = ROOT / "docs" / "methods.md"
DOCS_START = "<!-- calibration:start -->"
DOCS_END = "<!-- calibration:end -->"
EFFECTS = (1.6, 2.0, 2.5)
#: post weeks of the naive test the verdict as shipped is held against (``nFndU``; pre-registered)
NAIVE_WINDOW = 8
BASE_NULL = "null: base"
#: pre-registered thresholds (issue #14, "Done when")
MAX_FPR, MAX_FPR_UPPER, MIN_COVERAGE, MIN_ACTIVITY_CONFIRMED = 0.05, 0.07, 0.93, 0.85
#: verdicts that mean the pipeline was actually tested
TESTED_VERDICTS = ("moved", "no meaningful change")


@dataclass(frozen=True)
class Scenario:
    """One row of a simulator's table: how its teams are drawn."""

    name: str
    effect: float = 1.0
    #: knobs of the simulator (``simulate_team``'s or ``FiscalSpec``'s)
    knobs: dict = field(default_factory=dict)
    #: first simulator only: extra AR(1) log-noise sd on the rep's counts; rep hired 10-20 weeks before
    noisy_rep: float = 0.0
    new_hire: bool = False
    #: where the analysed change date comes from: "known" (the commitment's), "activity" (found in the
    #: rep's activity series by detect_activity_change) or "pipeline" (found in the outcome itself: a misuse)
    date: str = "known"
    #: printed apart, under the checks' table: not pre-registered, no check uses it (see the deviations)
    descriptive: bool = False

    @property
    def is_null(self) -> bool:
        return self.effect == 1.0


def scenarios(simulator: str) -> list[Scenario]:
    """The pre-registered scenarios of one simulator (``docs/preregistration.md``)."""
    if simulator == "first":
        null = [Scenario(BASE_NULL), Scenario("null: noisy rep", noisy_rep=0.5),
                Scenario("null: changed teammates", knobs=dict(changed_peer_share=0.3)),
                Scenario("null: seasonal lulls", knobs=dict(shock_sd=0.4, quarter_spike=0.6, holiday_dip=-1.2)),
                Scenario("null: new hire", new_hire=True), Scenario("null: small team", knobs=dict(team=(5, 7))),
                Scenario("null: date found in activity", date="activity", descriptive=True),
                Scenario("misuse: date found in PIPELINE", date="pipeline", descriptive=True)]
    elif simulator == "fiscal":
        null = [Scenario(BASE_NULL), Scenario("null: noisy rep", knobs=dict(rep_extra_noise=0.5, rep_nb_shape=2.0)),
                Scenario("null: changed teammates", knobs=dict(changed_peer_share=0.5)),
                Scenario("null: seasonal lulls", knobs=dict(after_lull=True)),
                Scenario("null: new hire", knobs=dict(rep_hired_before=(10, 20))),
                Scenario("null: small team", knobs=dict(team=(5, 7)))]
    else:
        raise ValueError(f"unknown simulator {simulator!r}; one of {SIMULATORS}")
    return null + [Scenario(f"x{e:.1f}, 8 wk", effect=e) for e in EFFECTS]


# ------------------------------------------------------------------ drawing one team
@dataclass
class Team:
    """What the analysis needs from either simulator: panels, the change and the truth."""

    activity: pd.DataFrame
    outcome: pd.DataFrame
    rep_id: str
    start: pd.Timestamp
    end: pd.Timestamp
    latent_mu: np.ndarray
    true_ratio_by_week: np.ndarray


def draw_first(sc: Scenario, rng: np.random.Generator) -> Team:
    """A team from ``coachnb.simulate.simulate_team`` (its public knobs), with this study's additions."""
    kw = dict(sc.knobs)
    lo, hi = kw.pop("team", (5, 50))
    n_reps = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
    n_weeks = int(rng.integers(26, 105))
    sim = simulate_team(rng, n_reps=n_reps, n_weeks=n_weeks, effect_ratio=sc.effect, ramp_weeks=int(rng.integers(0, 5)),
                        post_weeks_needed=DEFAULT_SETTINGS.lag_weeks + DEFAULT_SETTINGS.horizon_weeks,
                        activity_ratio=float(rng.uniform(1.8, 2.5)), **kw)
    activity, outcome, rep = sim.activity.copy(), sim.outcome.copy(), sim.rep_id
    end_row = min(sim.change_week + int(rng.integers(4, 9)) - 1, len(outcome) - 1)
    if sc.noisy_rep:
        e = ar1(rng, len(outcome), sc.noisy_rep, 0.5)
        y = outcome[rep].to_numpy(float)
        outcome[rep] = rng.poisson(y * np.exp(e - sc.noisy_rep**2 / 2)).astype(float)
    if sc.new_hire:
        hire = max(0, sim.change_week - int(rng.integers(10, 21)))
        activity.iloc[:hire, activity.columns.get_loc(rep)] = np.nan
        outcome.iloc[:hire, outcome.columns.get_loc(rep)] = np.nan
    return Team(activity, outcome, rep, sim.start, outcome.index[end_row], np.asarray(sim.latent_mu, float),
                np.asarray(sim.true_ratio_by_week, float))


def draw_fiscal(sc: Scenario, rng: np.random.Generator) -> Team:
    """A team from ``benchmarks/sim_fiscal.py``."""
    sim = simulate_fiscal_team(rng, FiscalSpec(effect_ratio=sc.effect, **sc.knobs))
    return Team(sim.activity, sim.outcome, sim.rep_id, sim.start, sim.commitment_end, sim.latent_mu,
                sim.true_ratio_by_week)


DRAW = {"first": draw_first, "fiscal": draw_fiscal}


# ------------------------------------------------------------------ analysing one team
def quasi_poisson_test(pre: np.ndarray, post: np.ndarray) -> tuple[float, float]:
    """Plain quasi-Poisson before/after test of one rep's weekly counts; returns (rate ratio, two-sided p).

    Log ratio of the window means with half-event offsets; Pearson dispersion of the
    two-means model (floored at 1); Student's t with ``n_pre + n_post - 2`` df. Missing
    weeks are left out. NaN when either window is empty or there are no degrees of freedom.
    """
    pre, post = pre[np.isfinite(pre)], post[np.isfinite(post)]
    n1, n2 = len(pre), len(post)
    df = n1 + n2 - 2
    if n1 == 0 or n2 == 0 or df < 1:
        return float("nan"), float("nan")
    s1, s2 = pre.sum(), post.sum()
    m1, m2 = max(pre.mean(), 1e-9), max(post.mean(), 1e-9)
    pearson = np.sum((pre - m1) ** 2 / m1) + np.sum((post - m2) ** 2 / m2)
    phi = max(1.0, pearson / df)
    log_rr = math.log((s2 + 0.5) / n2) - math.log((s1 + 0.5) / n1)
    se = math.sqrt(phi * (1 / (s2 + 0.5) + 1 / (s1 + 0.5)))
    return math.exp(log_rr), float(2 * stats.t.sf(abs(log_rr) / se, df))


def analyse(team: Team, settings=DEFAULT_SETTINGS) -> dict:
    """The verdict as shipped for one simulated team, the naive test on its windows, and the truth."""
    rep, idx = team.rep_id, team.outcome.index
    t0 = idx.get_loc(team.start)
    pre_act = float(np.nanmean(team.activity[rep].to_numpy(float)[max(0, t0 - 8):t0])) if t0 > 0 else float("nan")
    target = 1.5 * pre_act if np.isfinite(pre_act) and pre_act > 0 else None
    a = assess_commitment(team.activity, team.outcome, rep, team.start, team.end, target, settings=settings)
    pipe = a.pipeline
    # the windows coachnb used: baseline [t0 - gap - P, t0 - gap), post [t0 + lag, t0 + lag + H)
    lag, gap = getattr(pipe, "lag_weeks", settings.lag_weeks), settings.gap_weeks
    y = team.outcome[rep].to_numpy(float)
    P, H = int(pipe.n_pre_weeks), int(pipe.n_post_weeks)
    pre = y[max(0, t0 - gap - P):max(0, t0 - gap)]
    post = y[t0 + lag:t0 + lag + H]
    qp_ratio, qp_p = quasi_poisson_test(pre, post) if P > 0 and H > 0 else (float("nan"), float("nan"))
    # the registered comparator of the verdict as shipped: the naive test on an 8-week post window
    post8 = y[t0 + lag:t0 + lag + NAIVE_WINDOW]
    qp8_ratio, qp8_p = (quasi_poisson_test(pre, post8) if P > 0 and len(post8) == NAIVE_WINDOW
                        else (float("nan"), float("nan")))
    truth = window_truth(team, t0 + lag, H if H > 0 else settings.horizon_weeks)
    covered = bool(pipe.ci_low <= truth <= pipe.ci_high) if np.isfinite(pipe.ci_low) and np.isfinite(truth) else None
    gates_ok = not pipe.failed_gates
    # exploratory, not pre-registered: the p-value a claim could use if only the activity gate were dropped
    data_gates_ok = not [g for g in pipe.failed_gates if g != "activity_changed"]
    p = float(pipe.p_value)
    category = classify(a.activity.adherence, pipe.verdict, pipe.direction, finished=True)
    tested = pipe.verdict in TESTED_VERDICTS and np.isfinite(p) and gates_ok
    return dict(moved=pipe.verdict == "moved", moved_up=pipe.verdict == "moved" and pipe.direction == "up",
                eff_p=p if gates_ok and np.isfinite(p) else 1.0, covered=covered,
                data_gates_p=p if data_gates_ok and np.isfinite(p) else 1.0,
                not_enough=pipe.verdict == "not enough data to tell", activity_changed=bool(a.activity.changed),
                naive_p=qp_p if np.isfinite(qp_p) else 1.0, naive_up=bool(np.isfinite(qp_ratio) and qp_ratio > 1),
                naive8_found_up=bool(np.isfinite(qp8_p) and qp8_p <= ALPHA and qp8_ratio > 1),
                pois_p=float(pipe.naive_p_value) if np.isfinite(pipe.naive_p_value) else 1.0,
                category=category, untested_no_lift=bool(category == "kept_no_lift" and not tested))


def window_truth(team: Team, a: int, horizon: int) -> float:
    """True rate ratio over the post weeks analysed (expected-count weighted), from row ``a``."""
    mu = team.latent_mu[a:a + horizon]
    ratio = team.true_ratio_by_week[a:a + horizon]
    ok = np.isfinite(mu) & np.isfinite(ratio)
    if not ok.any() or mu[ok].sum() <= 0:
        return float("nan")
    return float(np.sum(mu[ok] * ratio[ok]) / np.sum(mu[ok]))


def run_one(task: tuple[str, int, int, int]) -> dict:
    """Simulate and analyse one team: task = (simulator, seed, scenario index, number)."""
    simulator, seed, k, i = task
    sc = scenarios(simulator)[k]
    # seeded by the simulator's and scenario's names, so adding or reordering rows leaves the others unchanged
    rng = np.random.default_rng([seed, zlib.crc32(simulator.encode()), zlib.crc32(sc.name.encode()), i])
    team = DRAW[simulator](sc, rng)
    if sc.date != "known":
        team = redated(team, sc.date)
    out = analyse(team) if team is not None else dict(NO_CLAIM)
    out.update(sc=k, seed=seed)
    return out


#: the row of a team where no change date was found: no test, no claim
NO_CLAIM = dict(moved=False, moved_up=False, eff_p=1.0, data_gates_p=1.0, covered=None, not_enough=False,
                activity_changed=False, naive_p=1.0, naive_up=False, naive8_found_up=False, pois_p=1.0, category="none",
                untested_no_lift=False)


def redated(team: Team, source: str) -> Team | None:
    """The team with its change dated by ``detect_activity_change`` on the activity (or, a misuse, the pipeline).

    The commitment period keeps its length. None when no change is found.
    """
    if source == "activity":
        start = detect_activity_change(team.activity[team.rep_id], min_segment_weeks=6)
    else:  # the tempting mistake: the sharpest break in the pipeline series itself
        start = detect_activity_change(team.outcome[team.rep_id], min_segment_weeks=6, alpha=1.0, n_perm=1)
    if start is None:
        return None
    idx = team.outcome.index
    length = idx.get_loc(team.end) - idx.get_loc(team.start)
    end = idx[min(idx.get_loc(start) + length, len(idx) - 1)]
    return Team(team.activity, team.outcome, team.rep_id, start, end, team.latent_mu, team.true_ratio_by_week)


def run(simulator: str, seeds, n_null: int = N_NULL, n_effect: int = N_EFFECT, jobs: int = 1,
        which: list[int] | None = None) -> list[dict]:
    """Run one simulator's study over ``seeds``; returns the :func:`run_one` rows."""
    scs = scenarios(simulator)
    which = list(range(len(scs))) if which is None else which
    tasks = [(simulator, s, k, i) for s in seeds for k in which
             for i in range(n_null if scs[k].is_null else n_effect)]
    if jobs > 1:
        with Pool(jobs) as pool:
            return pool.map(run_one, tasks, chunksize=25)
    return [run_one(t) for t in tasks]


# ------------------------------------------------------------------ summaries
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def paired_difference(a: np.ndarray, b: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Mean of a - b over the same simulations, and the half-width of its 95% interval.

    Both tests see the same simulated teams, so their difference in power is far less noisy
    than the two powers' own intervals suggest.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2:
        return float("nan"), float("nan")
    return float(d.mean()), float(z * d.std(ddof=1) / math.sqrt(len(d)))


def size_threshold(p: np.ndarray, share: float = ALPHA) -> float:
    """Largest threshold t with at most ``share`` of the (null) p-values at or below t.

    Ties are never split: rank p-values are discrete, and the threshold stops below a tied
    value that would overshoot. 0 when not even the smallest value fits.
    """
    s = np.sort(np.asarray(p, float)[np.isfinite(p)])
    k = int(math.floor(share * len(s) + 1e-9))
    if k < 1:
        return 0.0
    vals = np.unique(s)
    ok = vals[np.searchsorted(s, vals, side="right") <= k]
    return float(ok[-1]) if len(ok) else 0.0


def _col(rows: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if r[key] is None else r[key] for r in rows], float)


def _share(rows: list[dict], key: str) -> float:
    x = _col(rows, key)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def thresholds_by_seed(simulator: str, rows: list[dict]) -> dict[int, tuple[float, float]]:
    """Per seed, (coachnb, naive) p thresholds that hold 5% two-sided false positives in "null: base"."""
    base = [s.name for s in scenarios(simulator)].index(BASE_NULL)
    out = {}
    for seed in sorted({r["seed"] for r in rows}):
        null = [r for r in rows if r["seed"] == seed and r["sc"] == base]
        if null:
            out[seed] = (size_threshold(_col(null, "eff_p")), size_threshold(_col(null, "naive_p")))
    return out


def adjusted_rejections(rows: list[dict], thresholds: dict) -> tuple[np.ndarray, np.ndarray]:
    """Size-adjusted rejections (coachnb, naive) of each row at its seed's thresholds."""
    c = np.array([r["eff_p"] <= thresholds[r["seed"]][0] if r["seed"] in thresholds else False for r in rows], bool)
    n = np.array([r["naive_p"] <= thresholds[r["seed"]][1] if r["seed"] in thresholds else False for r in rows], bool)
    return c, n


def summarize(simulator: str, rows: list[dict]) -> tuple[list[dict], dict]:
    """One summary dict per scenario and the primary comparison overall (what the table prints and the tests check)."""
    scs = scenarios(simulator)
    th = thresholds_by_seed(simulator, rows)
    out, pooled_c, pooled_n = [], [], []
    for k, sc in enumerate(scs):
        rs = [r for r in rows if r["sc"] == k]
        if not rs:
            continue
        n, n_moved = len(rs), int(sum(r["moved"] for r in rs))
        s = dict(name=sc.name, null=sc.is_null, descriptive=sc.descriptive, n=n, seeds=sorted({r["seed"] for r in rs}), rate=n_moved / n,
                 rate_ci=wilson(n_moved, n), coverage=_share(rs, "covered"), not_enough=_share(rs, "not_enough"),
                 activity_confirmed=_share(rs, "activity_changed"),
                 naive_rate=float(np.mean(_col(rs, "naive_p") <= ALPHA)),
                 pois_rate=float(np.mean(_col(rs, "pois_p") <= ALPHA)),
                 untested_no_lift=int(sum(r["untested_no_lift"] for r in rs)))
        if not sc.is_null:
            s["found_up"] = float(np.mean([r["moved_up"] for r in rs]))
            # the registered comparator: the naive test at its nominal 5% on an 8-week post window (rows saved
            # before it existed, when coachnb's own window was that 8 weeks, carry the naive test on it)
            s["naive_found_up"] = float(np.mean([r.get("naive8_found_up", (r["naive_p"] <= ALPHA) and r["naive_up"])
                                                 for r in rs]))
            c, nv = adjusted_rejections(rs, th)
            s.update(adj=float(c.mean()), naive_adj=float(nv.mean()), adj_diff=paired_difference(c, nv),
                     adj_diff_by_seed={sd: paired_difference(*adjusted_rejections(
                         [r for r in rs if r["seed"] == sd], th))[0] for sd in s["seeds"]})
            pooled_c.append(c)
            pooled_n.append(nv)
        out.append(s)
    meta = dict(simulator=simulator, thresholds=th, untested_no_lift=int(sum(r["untested_no_lift"] for r in rows)),
                n_runs=len(rows))
    if pooled_c:
        c, nv = np.concatenate(pooled_c), np.concatenate(pooled_n)
        meta.update(adj=float(c.mean()), naive_adj=float(nv.mean()), adj_diff=paired_difference(c, nv))
    return out, meta


def checks(summary: list[dict], meta: dict) -> list[tuple[str, bool, str]]:
    """Every pre-registered criterion for one simulator: (what, passed, the figures)."""
    out = []
    summary = [s for s in summary if not s["descriptive"]]
    for s in summary:
        if s["null"]:
            ok = s["rate"] <= MAX_FPR and s["rate_ci"][1] <= MAX_FPR_UPPER
            out.append((f"false 'moved' <= 5%, upper <= 7%: {s['name']}", ok,
                        f"{s['rate']:.3f} [{s['rate_ci'][0]:.3f}, {s['rate_ci'][1]:.3f}]"))
    for s in summary:
        out.append((f"coverage >= 93%: {s['name']}", bool(s["coverage"] >= MIN_COVERAGE), f"{s['coverage']:.3f}"))
    for s in summary:
        out.append((f"activity x1.8+ confirmed >= 85%: {s['name']}", bool(s["activity_confirmed"] >= MIN_ACTIVITY_CONFIRMED),
                    f"{s['activity_confirmed']:.3f}"))
    base = next((s for s in summary if s["name"] == BASE_NULL), None)
    for s in summary:
        if not s["null"]:
            d, h = s["adj_diff"]
            out.append((f"primary: size-adjusted power >= naive: {s['name']}", bool(d >= 0),
                        f"{s['adj']:.3f} vs {s['naive_adj']:.3f}, diff {d:+.3f} +- {h:.3f}"))
    if "adj_diff" in meta:
        d, h = meta["adj_diff"]
        out.append(("primary: ahead overall (paired 95% interval above 0)", bool(d - h > 0),
                    f"{meta['adj']:.3f} vs {meta['naive_adj']:.3f}, diff {d:+.3f} +- {h:.3f}"))
    for s in summary:
        if not s["null"] and base is not None:
            ok = s["found_up"] >= s["naive_found_up"] and base["rate"] <= MAX_FPR
            out.append((f"as shipped finds >= naive at nominal 5% (and holds 5%): {s['name']}", bool(ok),
                        f"{s['found_up']:.3f} vs {s['naive_found_up']:.3f}; own null {base['rate']:.3f}"))
    out.append(("no 'kept, no lift' without a tested pipeline", meta["untested_no_lift"] == 0,
                f"{meta['untested_no_lift']} of {meta['n_runs']} runs"))
    return out


def _f(x) -> str:
    return "   -  " if x is None or not np.isfinite(x) else f"{x:6.3f}"


def _row(s: dict) -> str:
    """One scenario's line of the table."""
    f = _f
    d = s.get("adj_diff", (float("nan"), float("nan")))
    diff = f"{d[0]:+.3f}±{d[1]:.3f}" if not s["null"] and np.isfinite(d[0]) else ""
    return (f"{s['name'][:30]:30s} {s['n']:5d} | {s['rate']:6.3f} [{s['rate_ci'][0]:.3f},{s['rate_ci'][1]:.3f}]  "
            f"{s['naive_rate']:6.3f} {s['pois_rate']:6.3f} | {f(s.get('found_up'))} {f(s.get('naive_found_up'))} | "
            f"{f(s.get('adj'))} {f(s.get('naive_adj'))} {diff:>13s} | {f(s['coverage'])} {f(s['activity_confirmed'])} "
            f"{f(s['not_enough'])}")


def format_table(summary: list[dict], meta: dict) -> str:
    """One simulator's table, its primary comparison and its pre-registered checks, as text."""
    th = meta["thresholds"]
    head = (f"{'scenario':30s} {'n':>5s} | {'moved':>6s} {'95% CI':15s} {'naive':>6s} {'Poiss':>6s} | {'foundU':>6s} "
            f"{'nFndU':>6s} | {'cAdj':>6s} {'nAdj':>6s} {'cAdj-nAdj':>13s} | {'cover':>6s} {'actOK':>6s} {'notEn':>6s}")
    lines = [f"Simulator: {meta['simulator']} (seeds {', '.join(str(s) for s in th)}; {meta['n_runs']:,} simulated teams)",
             "moved = verdict 'moved' as shipped (gates included), naive = quasi-Poisson before/after p <= 0.05,",
             "Poiss = plain Poisson before/after p <= 0.05 (same windows); foundU/nFndU = planted increases found",
             f"(coachnb 'moved' up / naive p <= 0.05 and up on a {NAIVE_WINDOW}-week post window); cAdj/nAdj = "
             "size-adjusted power, both held to 5%",
             "two-sided false positives in 'null: base' per seed (coachnb p <= "
             + ", ".join(f"{c:.4f}" for c, _ in th.values()) + "; naive p <= "
             + ", ".join(f"{n:.1e}" for _, n in th.values()) + "); cAdj-nAdj = paired difference +- 95%;",
             "cover = interval covers the true window ratio; actOK = real x1.8+ activity change confirmed;",
             "notEn = 'not enough data to tell'.", head, "-" * len(head)]
    lines += [_row(s) for s in summary if not s["descriptive"]]
    if "adj_diff" in meta:
        d, h = meta["adj_diff"]
        lines.append(f"{'primary, all cells':30s} {'':5s} | {'':38s} | {'':13s} | {meta['adj']:6.3f} "
                     f"{meta['naive_adj']:6.3f} {f'{d:+.3f}±{h:.3f}':>13s} |")
    by_seed = [f"{s['name']}: " + ", ".join(f"{sd} {v:+.3f}" for sd, v in s["adj_diff_by_seed"].items())
               for s in summary if not s["null"]]
    if by_seed:
        lines.append("cAdj-nAdj by seed: " + "; ".join(by_seed))
    extra = [_row(s) for s in summary if s["descriptive"]]
    if extra:
        lines += ["", "Descriptive, not pre-registered (no check uses them): a change date found in the rep's ACTIVITY",
                  "(as coachnb does without a commitment), and the misuse of finding it in the pipeline being tested:"]
        lines += extra
    lines.append("")
    lines.append("Pre-registered checks (docs/preregistration.md):")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {what}: {figs}" for what, ok, figs in checks(summary, meta)]
    return "\n".join(lines)


# ------------------------------------------------------------------ the tables written into the docs
def replace_between_markers(text: str, block: str, start: str = DOCS_START, end: str = DOCS_END) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``block``.

    The markers and everything outside them are kept byte for byte; ``block`` goes on lines of
    its own between them. Raises ValueError, naming the markers, when either is missing or
    repeated, or when ``end`` comes before ``start``.
    """
    n_start, n_end = text.count(start), text.count(end)
    if n_start != 1 or n_end != 1:
        raise ValueError(f"expected exactly one {start!r} and one {end!r} marker, found {n_start} and {n_end}")
    i, j = text.index(start) + len(start), text.index(end)
    if j < i:
        raise ValueError(f"the marker {end!r} comes before {start!r}")
    return text[:i] + "\n" + block.strip("\n") + "\n" + text[j:]


def docs_block(tables: list[str], seeds: list[int], n_null: int, n_effect: int, command: str) -> str:
    """The generated section of the docs: how the tables were made (command, seeds, simulations), then each table.

    Trailing spaces of the tables' lines are dropped (the printed table pads its empty cells).
    """
    body = "\n\n".join("```text\n" + "\n".join(line.rstrip() for line in t.splitlines()) + "\n```" for t in tables)
    return (f"Generated by `{command}` (seeds {', '.join(map(str, seeds))}; {n_null:,} simulated teams per seed in "
            f"each null row, {n_effect:,} in each effect row).\n\n{body}")


def write_docs(path: Path, block: str) -> None:
    """Write ``block`` between the calibration markers of the file at ``path``, atomically."""
    write_atomic(path, replace_between_markers(path.read_text(encoding="utf-8"), block))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _seeds(a) -> list[int]:
    if a.seeds is None:
        return [a.seed + i for i in range(N_SEEDS)]
    if len(a.seeds) == 1 and a.seeds[0] <= 20:  # "--seeds 3": that many seeds from --seed on
        return [a.seed + i for i in range(a.seeds[0])]
    return list(a.seeds)


def _without_files(argv: list[str]) -> list[str]:
    """The command line without ``--save``/``--load`` and their paths (they change where results go, not the tables)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--save", "--load"):
            skip = True
        elif not arg.startswith(("--save=", "--load=")):
            out.append(arg)
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", choices=(*SIMULATORS, "both"), default="both")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="first seed when --seeds is a count")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help=f"a count (<= 20) of seeds from --seed on, or the seeds themselves (default {N_SEEDS})")
    ap.add_argument("--quick", action="store_true", help="200 nulls / 100 per effect cell per seed")
    ap.add_argument("--n-null", type=int, default=None, help=f"null simulations per scenario and seed (default {N_NULL})")
    ap.add_argument("--n-effect", type=int, default=None, help=f"simulations per effect cell and seed (default {N_EFFECT})")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--save", type=Path, help="also write the per-simulation results to this JSON file")
    ap.add_argument("--load", type=Path, help="summarize results saved with --save instead of simulating")
    ap.add_argument("--write-docs", type=Path, nargs="?", const=DOCS, default=None, metavar="PATH",
                    help=f"also write the tables between the calibration markers of PATH (default {DOCS.relative_to(ROOT)})")
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = _parser()
    a = ap.parse_args(argv)
    if a.write_docs:
        try:  # fail now, not after minutes of simulation
            replace_between_markers(a.write_docs.read_text(encoding="utf-8"), "")
        except (OSError, ValueError) as e:
            ap.error(f"--write-docs {a.write_docs}: {e}")
    seeds = _seeds(a)
    n_null = a.n_null if a.n_null is not None else (200 if a.quick else N_NULL)
    n_eff = a.n_effect if a.n_effect is not None else (100 if a.quick else N_EFFECT)
    sims = list(SIMULATORS) if a.simulator == "both" else [a.simulator]
    t = time.time()
    command = shlex.join(["python", "benchmarks/calibration.py", *_without_files(argv)])
    if a.load:
        saved = json.loads(a.load.read_text(encoding="utf-8"))
        results, seeds, n_null, n_eff = saved["rows"], saved["seeds"], saved["n_null"], saved["n_effect"]
        command = saved.get("command", command)  # the tables are the saved run's: name its command
        sims = [s for s in sims if s in results]
    else:
        results = {s: run(s, seeds, n_null, n_eff, a.jobs) for s in sims}
    if a.save:
        write_atomic(a.save, json.dumps(dict(rows=results, seeds=seeds, n_null=n_null, n_effect=n_eff, command=command)))
    tables = [format_table(*summarize(s, results[s])) for s in sims]
    print("\n\n".join(tables))
    if a.write_docs:
        write_docs(a.write_docs, docs_block(tables, seeds, n_null, n_eff, command))
        print(f"\ntables written to {a.write_docs}")
    print(f"\n{', '.join(sims)}; seeds {seeds}; {n_null} nulls / {n_eff} per effect cell per seed; {a.jobs} jobs; "
          f"{time.time() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
