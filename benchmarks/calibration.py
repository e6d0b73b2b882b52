"""Calibration study of ``coachnb.impact.pipeline_impact`` against the naive before/after test.

Simulates teams with :func:`coachnb.simulate.simulate_team` (overdispersed, autocorrelated
weekly counts with shared seasonality and team shocks; 5-50 reps, 26-104 weeks, base
rates 0.5-10 a week, effects ramping in over 0-4 weeks) and prints ONE table:

* null scenarios: false-positive rate at alpha = 0.05 with a 95% Wilson interval
  (coachnb = verdict "moved"; the raw rank test p <= alpha is shown too), the naive
  Poisson before/after test on the same windows, and a KS distance of the null
  p-values from uniform;
* planted effects (+25%, +50%, +100%, +150%) x post horizons (4, 8, 13 weeks): power,
  the naive test's raw power and its size-adjusted power, interval coverage of the true
  window rate ratio, share of "not enough data to tell", and wrong-sign rate among
  significant results.

Size-adjusted power: each test's p-value threshold is set on the matching null scenario
(the known-date null unless a row says otherwise), then applied to the effect rows.

* ``cAdjU`` / ``adjU`` -- the primary comparison: both tests held to the same 2.5% rate of
  false "moved up" claims in the null (an equal-tailed 5% test's share on that side).
  Every planted effect is an increase, and a false "your change worked" is the claim that
  does harm. Under the null the naive test's rejections lean upward (quarter-end spikes),
  so with one two-sided threshold it would buy power for increases with more false
  "moved up" claims than coachnb makes.
* ``cAdjG`` / ``adjG`` -- one two-sided threshold each, 5% false positives overall in
  either direction. The naive test spends them unevenly: by baseline volume band the header
  shows its null FPR (about 1% for reps under 1 opportunity a week, 13% at 5 or more),
  while coachnb holds about 5% in every band (also shown): its adjG power is bought with
  false alarms on high-volume reps, not a like-for-like per-rep guarantee.

``cAdjU-adjU`` is the difference of the two on the same simulated teams, with its paired 95%
interval (both tests see identical data, so it is far more precise than the two powers' own
intervals). ``KS+`` is the liberal side of the KS distance (small p-values too frequent, the side
of false claims); the legend gives the KS 5% critical value.

The "date found in PIPELINE" null is a mistake coachnb never makes (it finds change dates in the
activity series only), simulated to show its cost and printed apart from the table.

Rows ending "strong team swings" (and their null) simulate team-wide swings as large as a
rep's own noise (team shock sd 0.4, quarter-end spike 0.6): there the naive test's
inflation reaches the 30% reported in the literature; they are size-adjusted on their own null.
Rows on "pipeline value" test the secondary outcome (weekly value in deal units,
:func:`coachnb.impact.deal_units`; deal amounts lognormal with sd 1 on the log scale).

Usage::

    python benchmarks/calibration.py               # full run (2,000 nulls / 1,000 per effect cell)
    python benchmarks/calibration.py --quick       # a few hundred per cell
    python benchmarks/calibration.py --seed 7 --jobs 2 --n-null 2000 --n-effect 1000
    python benchmarks/calibration.py --jobs 2 --write-docs   # also write the table into docs/methods.md

``--write-docs [PATH]`` replaces what lies between the ``<!-- calibration:start -->`` and
``<!-- calibration:end -->`` lines of PATH (default ``docs/methods.md``) with the table, its seed,
its number of simulations and the command that made it, so the documented table is generated,
never copied by hand. The markers are checked before any simulation runs.

Deterministic given ``--seed`` (each simulation has its own seed from the scenario's name and its
number, whatever ``--jobs`` and the order of the scenarios).
"""
from __future__ import annotations

import argparse
import math
import pickle
import shlex
import sys
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# run as a script from a checkout, without installing coachnb
sys.path.insert(0, str(ROOT))

from coachnb.impact import ImpactSettings, deal_units, detect_activity_change, pipeline_impact  # noqa: E402
from coachnb.simulate import simulate_team  # noqa: E402

ALPHA = 0.05
LAG = 2
#: where ``--write-docs`` writes the table by default, and the lines that delimit it there
DOCS = ROOT / "docs" / "methods.md"
DOCS_START = "<!-- calibration:start -->"
DOCS_END = "<!-- calibration:end -->"
EFFECTS = (1.25, 1.5, 2.0, 2.5)
HORIZONS = (4, 8, 13)


@dataclass(frozen=True)
class Scenario:
    """One row of the table: how teams are simulated and how the change date is chosen."""

    name: str
    effect: float = 1.0
    horizon: int = 8
    date: str = "known"  # "known" | "detected" (from activity) | "pipeline" (naive: found in pipeline)
    sim_kw: dict = field(default_factory=dict)
    #: the null scenario whose p-values size-adjust this row (adjG, cAdjG): same data-generating process
    calibrated_on: str = "null: known date"
    #: "opportunities" (primary) or "value" (secondary: pipeline value in deal units)
    outcome: str = "opportunities"
    #: a mistake coachnb never makes, simulated to show what it costs: printed apart from the table
    misuse: bool = False

    @property
    def is_null(self) -> bool:
        return self.effect == 1.0


#: team-wide swings as large as a rep's own noise (market shocks, lead routing, pricing): where the
#: team-trend adjustment earns its keep; the default DGP's team part is small next to a rep's noise
STRONG = dict(shock_sd=0.4, quarter_spike=0.6)
STRONG_NULL = "null: strong team-wide swings"
#: the secondary outcome pipeline value: each deal's amount varies (lognormal, sd 1 on the log scale)
VALUE = dict(deal_size_sigma=1.0)
VALUE_NULL = "null: pipeline value (secondary)"


def scenarios() -> list[Scenario]:
    null = [
        Scenario("null: known date"),
        Scenario("null: low volume 0.5-2/wk", sim_kw=dict(base_rate_range=(0.5, 2.0))),
        Scenario("null: small team (5-7 reps)", sim_kw=dict(team=(5, 7))),
        Scenario("null: date detected in activity", date="detected"),
        Scenario("null: dip before change", sim_kw=dict(dip_ratio=0.5, dip_weeks=4)),
        Scenario("null: 30% of peers also changed", sim_kw=dict(changed_peer_share=0.3)),
        Scenario("null: date found in PIPELINE", date="pipeline", misuse=True),
        Scenario(STRONG_NULL, sim_kw=STRONG),
        Scenario(VALUE_NULL, sim_kw=VALUE, outcome="value"),
    ]
    eff = [Scenario(f"+{round((e - 1) * 100)}%, {h} wk", effect=e, horizon=h) for e in EFFECTS for h in HORIZONS]
    eff.append(Scenario("+100%, 8 wk, wrong lag (true 6)", effect=2.0, sim_kw=dict(true_lag_weeks=6)))
    eff += [Scenario(f"+{round((e - 1) * 100)}%, 8 wk, strong team swings", effect=e, sim_kw=STRONG,
                     calibrated_on=STRONG_NULL) for e in (1.5, 2.0)]
    eff.append(Scenario("+100%, 8 wk, pipeline value", effect=2.0, sim_kw=VALUE, calibrated_on=VALUE_NULL,
                        outcome="value"))
    return null + eff


def _team_size(rng, lo=5, hi=50) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def simulate_for(sc: Scenario, rng: np.random.Generator):
    """Draw one team for a scenario (sizes, lengths and ramps vary from sim to sim)."""
    kw = dict(sc.sim_kw)
    lo, hi = kw.pop("team", (5, 50))
    n_weeks = int(rng.integers(26, 105))
    return simulate_team(rng, n_reps=_team_size(rng, lo, hi), n_weeks=n_weeks, effect_ratio=sc.effect,
                         ramp_weeks=int(rng.integers(0, 5)), post_weeks_needed=LAG + sc.horizon, **kw)


def run_one(task: tuple[int, int, int]) -> dict:
    """Simulate and analyse one team; returns the numbers the table needs."""
    seed, sc_idx, i = task
    sc = scenarios()[sc_idx]
    # seeded by the scenario's name, so adding or reordering scenarios leaves every other row unchanged
    rng = np.random.default_rng([seed, zlib.crc32(sc.name.encode()), i])
    sim = simulate_for(sc, rng)
    start = sim.start
    if sc.date == "detected":
        start = detect_activity_change(sim.activity[sim.rep_id], min_segment_weeks=6)
    elif sc.date == "pipeline":
        # the tempting mistake: take the sharpest break in the pipeline series itself
        start = detect_activity_change(sim.outcome[sim.rep_id], min_segment_weeks=6, alpha=1.0, n_perm=1)
    out = dict(sc=sc_idx, detected=start is not None, base_rate=sim.base_rate)
    if start is None:  # nothing detected: no claim is made
        out.update(moved=False, p=np.nan, naive_p=np.nan, covered=np.nan, not_enough=False, up=np.nan,
                   naive_up=np.nan, pre_rate=np.nan, gates_ok=False)
        return out
    outcome = deal_units(sim.value, sim.deal_amounts) if sc.outcome == "value" else sim.outcome
    # tested the way the report tests each outcome (pipeline value: the team trend taken out in full)
    settings = ImpactSettings(lag_weeks=LAG, horizon_weeks=sc.horizon, shrink_trend=sc.outcome != "value")
    r = pipeline_impact(outcome, sim.rep_id, start, settings)
    t0 = sim.outcome.index.get_loc(start)
    truth = 1.0 if sc.is_null else _window_truth(sim, t0, sc.horizon)
    covered = (r.ci_low <= truth <= r.ci_high) if np.isfinite(r.ci_low) else np.nan
    out.update(pre_rate=r.pre_rate, moved=r.verdict == "moved", gates_ok=not r.failed_gates, p=r.p_value, naive_p=r.naive_p_value, covered=covered,
               not_enough=r.verdict == "not enough data to tell", up=(r.rate_ratio > 1) if np.isfinite(r.rate_ratio)
               else np.nan, naive_up=(r.naive_rate_ratio > 1) if np.isfinite(r.naive_p_value) else np.nan)
    return out


def _window_truth(sim, t0: int, horizon: int) -> float:
    """True rate ratio over the analysed window, for a change analysed at row t0."""
    a, b = t0 + LAG, min(t0 + LAG + horizon, len(sim.latent_mu))
    mu = sim.latent_mu[a:b]
    return float(np.sum(mu * sim.true_ratio_by_week[a:b]) / np.sum(mu))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def ks_uniform(p: np.ndarray, side: str = "both") -> float:
    """Kolmogorov-Smirnov distance of p-values from Uniform(0, 1) (0 = perfectly uniform).

    ``side="liberal"`` measures only where small p-values are too frequent (max of ECDF - p,
    the direction that makes false claims); ``"conservative"`` only the other way.
    """
    p = np.sort(p[np.isfinite(p)])
    n = len(p)
    if n == 0:
        return float("nan")
    liberal = float(np.max(np.arange(1, n + 1) / n - p))
    conservative = float(np.max(p - np.arange(0, n) / n))
    return {"liberal": liberal, "conservative": conservative}.get(side, max(liberal, conservative))


def ks_critical(n: int) -> float:
    """Asymptotic 5% critical value of the two-sided KS distance for n p-values."""
    return 1.358 / math.sqrt(n) if n else float("nan")


def paired_difference(a: np.ndarray, b: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Mean of a - b over the same simulations, and the half-width of its 95% interval.

    Both tests see the same simulated teams, so their difference in power is far less noisy
    than the two powers' own intervals suggest.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2:
        return float("nan"), float("nan")
    return float(d.mean()), float(z * d.std(ddof=1) / math.sqrt(len(d)))


def run(seed: int = 2026, n_null: int = 2000, n_effect: int = 1000, jobs: int = 1,
        which: list[int] | None = None) -> dict[int, list[dict]]:
    """Run the study; returns per-scenario lists of :func:`run_one` results."""
    scs = scenarios()
    which = list(range(len(scs))) if which is None else which
    tasks = [(seed, k, i) for k in which for i in range(n_null if scs[k].is_null else n_effect)]
    if jobs > 1:
        with Pool(jobs) as pool:
            rows = pool.map(run_one, tasks, chunksize=50)
    else:
        rows = [run_one(t) for t in tasks]
    by = {k: [] for k in which}
    for r in rows:
        by[r["sc"]].append(r)
    return by


#: baseline volume bands (opportunities a week) for the band-wise size adjustment of the naive test
RATE_BANDS = (0.0, 1.0, 2.5, 5.0, math.inf)


def _band(rate: np.ndarray) -> np.ndarray:
    return np.searchsorted(RATE_BANDS, np.nan_to_num(rate, nan=0.0), side="right") - 1


def _effective_p(rows: list[dict]) -> np.ndarray:
    """coachnb's p-value where every gate passed, else 1 (no claim possible)."""
    return np.array([r["p"] if r.get("gates_ok", True) and np.isfinite(r["p"]) else 1.0 for r in rows], float)


def _up_threshold(p: np.ndarray, up: np.ndarray, share: float = ALPHA / 2) -> float:
    """Largest p threshold at which at most ``share`` of the (null) rows claim an increase.

    An increase is claimed when ``p <= t`` and the estimate points up. Ties in ``p`` (rank
    p-values are discrete) are never split: the threshold stops below a tie that would
    overshoot.
    """
    s = np.sort(p[up & np.isfinite(p)])
    k = int(math.floor(share * len(p)))
    if k < 1 or len(s) == 0:
        return 0.0
    vals = np.unique(s)
    counts = np.searchsorted(s, vals, side="right")
    ok = vals[counts <= k]
    return float(ok[-1]) if len(ok) else 0.0


def summarize(by: dict[int, list[dict]]) -> tuple[list[dict], dict]:
    """One summary dict per scenario (what the table prints; also what the smoke test checks).

    Size-adjusted power, both tests from their p-values in the matching null scenario
    (``Scenario.calibrated_on``):

    * ``adj_up`` / ``naive_adj_up`` (cAdjU / adjU, the primary comparison): each test held to
      the same 2.5% rate of false "moved up" claims (what an equal-tailed 5% test spends on
      that side). Every planted effect is an increase, and a false "your change worked" is
      the claim that does harm; a two-sided test whose null rejections lean upward (the
      naive one's do: quarter-end spikes) would otherwise buy power for increases with more
      false "moved up" claims.
    * ``adj`` / ``naive_adj`` (cAdjG / adjG): one two-sided threshold each, 5% false
      positives overall in either direction. The naive test spends them on high-volume
      reps, where overdispersion makes it reject most (``meta['band_fpr_global']`` by
      baseline band; coachnb's own per band in ``meta['coachnb_band_fpr']``).
    """
    scs = scenarios()
    null_rows = by.get(0, [])
    naive_null = np.array([r["naive_p"] for r in null_rows], float)
    null_band = _band(np.array([r["pre_rate"] for r in null_rows], float))
    ok = np.isfinite(naive_null)
    alpha_adj = float(np.quantile(naive_null[ok], ALPHA)) if ok.any() else float("nan")
    band_fpr_global = [float(np.mean(naive_null[ok & (null_band == b)] <= alpha_adj)) if (ok & (null_band == b)).any()
                       else float("nan") for b in range(len(RATE_BANDS) - 1)]
    null_moved = np.array([r["moved"] for r in null_rows], bool)
    coachnb_band_fpr = [float(np.mean(null_moved[null_band == b])) if (null_band == b).any() else float("nan")
                        for b in range(len(RATE_BANDS) - 1)]

    def calibrate(rows: list[dict]) -> dict:
        np_, cp = _naive_p(rows), _effective_p(rows)
        return dict(naive=float(np.quantile(np_, ALPHA)), coach=float(np.quantile(cp, ALPHA)),
                    naive_up=_up_threshold(np_, _flag(rows, "naive_up")), coach_up=_up_threshold(cp, _flag(rows, "up")))

    # rows from another data-generating process are size-adjusted on that process's own null
    thresholds = {scs[k].name: calibrate(rows) for k, rows in by.items() if scs[k].is_null and rows}
    t0 = thresholds.get(scs[0].name, {})
    meta = dict(alpha_adj=alpha_adj, band_fpr_global=band_fpr_global, coachnb_band_fpr=coachnb_band_fpr,
                alpha_adj_coachnb=t0.get("coach", float("nan")), alpha_up=t0.get("naive_up", float("nan")),
                alpha_up_coachnb=t0.get("coach_up", float("nan")))
    out = []
    nan = float("nan")
    for k, rows in by.items():
        sc = scs[k]
        n = len(rows)
        moved = np.array([r["moved"] for r in rows], bool)
        p = np.array([r["p"] for r in rows], float)
        np_ = np.array([r["naive_p"] for r in rows], float)
        cov = np.array([r["covered"] for r in rows], float)
        n_rej = int(moved.sum())
        naive_rej = np.isfinite(np_) & (np_ <= ALPHA)
        t = thresholds.get(sc.calibrated_on)
        cp, nq = _effective_p(rows), _naive_p(rows)
        up, nup = _flag(rows, "up"), _flag(rows, "naive_up")
        c_up = up & (cp <= t["coach_up"]) if t else np.zeros(n, bool)
        n_up = nup & (nq <= t["naive_up"]) if t else np.zeros(n, bool)
        s = dict(name=sc.name, null=sc.is_null, misuse=sc.misuse, n=n,
                 rate=n_rej / n, rate_ci=wilson(n_rej, n),
                 p_rate=float(np.mean(np.nan_to_num(p, nan=1.0) <= ALPHA)),
                 adj=float(np.mean(cp <= t["coach"])) if t else nan,
                 adj_up=float(np.mean(c_up)) if t else nan,
                 adj_up_diff=paired_difference(c_up, n_up) if t else (nan, nan),
                 naive_rate=naive_rej.sum() / n, naive_ci=wilson(int(naive_rej.sum()), n),
                 naive_adj=float(np.mean(nq <= t["naive"])) if t else nan,
                 naive_adj_up=float(np.mean(n_up)) if t else nan,
                 coverage=float(np.nanmean(cov)) if np.isfinite(cov).any() else nan,
                 not_enough=float(np.mean([r["not_enough"] for r in rows])),
                 detected=float(np.mean([r["detected"] for r in rows])),
                 ks=ks_uniform(p), ks_liberal=ks_uniform(p, "liberal"), ks_crit=ks_critical(int(np.isfinite(p).sum())),
                 naive_ks=ks_uniform(np_))
        if not sc.is_null:
            s["wrong_sign"] = (moved & ~up).sum() / max(n_rej, 1)
            s["naive_wrong_sign"] = (naive_rej & ~nup).sum() / max(int(naive_rej.sum()), 1)
        out.append(s)
    return out, meta


def _naive_p(rows: list[dict]) -> np.ndarray:
    return np.nan_to_num(np.array([r["naive_p"] for r in rows], float), nan=1.0)


def _flag(rows: list[dict], key: str) -> np.ndarray:
    """A 0/1/NaN column as booleans (NaN -> False)."""
    return np.array([r[key] for r in rows], float) == 1.0


def format_table(summary: list[dict], meta: dict) -> str:
    def pct(x):
        return "   -  " if x is None or not np.isfinite(x) else f"{x:6.3f}"

    def ci(c):
        return f"[{c[0]:.3f},{c[1]:.3f}]"

    def diff(d):
        return f"{'':12s}" if d is None or not np.isfinite(d[0]) else f"{d[0]:+.3f}±{d[1]:.3f}"

    head = (f"{'scenario':34s} {'n':>5s} | {'coachnb':>6s} {'95% CI':15s} {'p<=a':>6s} {'cAdjU':>6s} {'cAdjG':>6s} "
            f"{'KS':>6s} {'KS+':>6s} | {'naive':>6s} {'95% CI':15s} {'adjU':>6s} {'adjG':>6s} {'KS':>6s} | "
            f"{'cAdjU-adjU':>12s} | {'cover':>6s} {'notEn':>6s} {'wrong':>6s} {'nWrong':>6s}")
    crit = [s["ks_crit"] for s in summary if s["null"] and not s["misuse"] and np.isfinite(s["ks_crit"])]
    lines = [
        "Rejection rates at alpha = 0.05 (null rows: false-positive rate; effect rows: power).",
        "coachnb = verdict 'moved' (all gates passed, placebo p <= 0.05); p<=a = placebo test alone;",
        "naive = plain before/after Poisson test, same windows.",
        "Size-adjusted power (each test's threshold set on the matching null scenario):",
        f"  cAdjU / adjU = the primary comparison: both held to the same 2.5% false 'moved up' claims (coachnb "
        f"p <= {meta['alpha_up_coachnb']:.4f}, naive p <= {meta['alpha_up']:.1e} in the known-date null);",
        "  cAdjU-adjU = their difference on the same simulated teams, with its 95% interval;",
        f"  cAdjG / adjG = one two-sided threshold each, 5% false positives overall (coachnb p <= "
        f"{meta['alpha_adj_coachnb']:.4f}, naive p <= {meta['alpha_adj']:.1e});",
        "  the naive test spends those on high-volume reps: by baseline band <1, 1-2.5, 2.5-5, >=5 a week its",
        f"  null FPR is {', '.join(f'{x:.3f}' for x in meta['band_fpr_global'])} "
        f"(coachnb at its own 5%: {', '.join(f'{x:.3f}' for x in meta.get('coachnb_band_fpr', []))});",
        "cover = 95% interval covers the true window rate ratio; notEn = share 'not enough data to tell';",
        "wrong/nWrong = wrong-sign share among significant results (coachnb/naive);",
        "KS = distance of the null p-values from uniform; KS+ = the part where small p-values are too frequent",
        f"  (the direction of false claims); 5% critical value {min(crit, default=float('nan')):.3f}-"
        f"{max(crit, default=float('nan')):.3f} for these n (rank p-values of low counts are tied, hence conservative).",
        head, "-" * len(head)]

    def row(s):
        wrong = s.get("wrong_sign")
        eff = not s["null"]
        return (
            f"{s['name'][:34]:34s} {s['n']:5d} | {s['rate']:6.3f} {ci(s['rate_ci']):15s} {s['p_rate']:6.3f} "
            f"{pct(s['adj_up']) if eff else '   -  '} {pct(s['adj']) if eff else '   -  '} "
            f"{pct(s['ks']) if s['null'] else '   -  '} {pct(s['ks_liberal']) if s['null'] else '   -  '} | "
            f"{s['naive_rate']:6.3f} {ci(s['naive_ci']):15s} "
            f"{pct(s['naive_adj_up']) if eff else '   -  '} {pct(s['naive_adj']) if eff else '   -  '} "
            f"{pct(s['naive_ks']) if s['null'] else '   -  '} | {diff(s.get('adj_up_diff') if eff else None):>12s} | "
            f"{pct(s['coverage'])} {s['not_enough']:6.3f} {pct(wrong) if wrong is not None else '   -  '} "
            f"{pct(s.get('naive_wrong_sign')) if wrong is not None else '   -  '}")

    lines += [row(s) for s in summary if not s["misuse"]]
    misuse = [s for s in summary if s["misuse"]]
    if misuse:
        lines += ["", "Misuse, simulated to show its cost (not coachnb's procedure: coachnb finds change dates in "
                  "the ACTIVITY series only, never in the outcome it then tests):"]
        lines += [row(s) for s in misuse]
    return "\n".join(lines)


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


def docs_block(table: str, seed: int, n_null: int, n_effect: int, command: str) -> str:
    """The generated section of the docs: how the table was made (command, seed, simulations), then the table.

    Trailing spaces of the table's lines are dropped (the printed table pads its empty cells).
    """
    table = "\n".join(line.rstrip() for line in table.splitlines())
    return (f"Generated by `{command}` (seed {seed}; {n_null:,} simulated teams in each null row, "
            f"{n_effect:,} in each effect row).\n\n```text\n{table}\n```")


def write_docs(path: Path, block: str) -> None:
    """Write ``block`` between the calibration markers of the file at ``path`` (see :func:`replace_between_markers`)."""
    path.write_text(replace_between_markers(path.read_text(encoding="utf-8"), block), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true", help="300 nulls / 150 per effect cell")
    ap.add_argument("--n-null", type=int, default=None, help="null simulations per scenario (default 2000)")
    ap.add_argument("--n-effect", type=int, default=None, help="simulations per effect x horizon (default 1000)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--save", type=Path, help="also write the per-simulation results to this file (pickle)")
    ap.add_argument("--load", type=Path, help="summarize results saved with --save instead of simulating")
    ap.add_argument("--write-docs", type=Path, nargs="?", const=DOCS, default=None, metavar="PATH",
                    help=f"also write the table between the calibration markers of PATH (default {DOCS.relative_to(ROOT)})")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(argv)
    if a.write_docs:
        try:  # fail now, not after minutes of simulation
            replace_between_markers(a.write_docs.read_text(encoding="utf-8"), "")
        except (OSError, ValueError) as e:
            ap.error(f"--write-docs {a.write_docs}: {e}")
    n_null = a.n_null or (300 if a.quick else 2000)
    n_eff = a.n_effect or (150 if a.quick else 1000)
    t = time.time()
    if a.load:
        with open(a.load, "rb") as f:
            saved = pickle.load(f)
        by, n_null, n_eff, a.seed = saved["by"], saved["n_null"], saved["n_effect"], saved["seed"]
    else:
        by = run(a.seed, n_null, n_eff, a.jobs)
    if a.save:
        with open(a.save, "wb") as f:
            pickle.dump(dict(by=by, n_null=n_null, n_effect=n_eff, seed=a.seed), f)
    summary, meta = summarize(by)
    table = format_table(summary, meta)
    print(table)
    if a.write_docs:
        command = shlex.join(["python", "benchmarks/calibration.py", *argv])
        write_docs(a.write_docs, docs_block(table, a.seed, n_null, n_eff, command))
        print(f"\ntable written to {a.write_docs}")
    print(f"\nseed {a.seed}, {n_null} nulls/scenario, {n_eff} per effect cell, {a.jobs} jobs, "
          f"{time.time() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
