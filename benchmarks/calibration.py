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

Size adjustment of the naive test (from its p-values in the known-date null):

* ``adjG`` -- the primary comparison: ONE p-value threshold giving 5% false positives
  overall, which is what a user could calibrate. ``cAdjG`` holds coachnb to exactly the
  same calibration (one threshold on its p-value, gates passed, 5% in the known-date
  null), so adjG vs cAdjG compares power at an identical false-positive rate. It spends those false positives
  unevenly: by baseline volume band the header shows its null FPR (about 1% for reps
  under 1 opportunity a week, 13% at 5 or more), while coachnb holds about 5% in every
  band (also shown). So adjG power is not a like-for-like per-rep guarantee.
* ``adjB*`` -- an ORACLE, not a usable test: one threshold per baseline band, set from
  the true null in that band (which no user knows). Bands are cut on the *observed*
  baseline rate, so each band's null is shifted by regression to the mean, and the
  two-sided per-band thresholds partly exploit that shift; read it as a reference only.

Rows ending "strong team swings" (and their null) simulate team-wide swings as large as a
rep's own noise (team shock sd 0.4, quarter-end spike 0.6): there the naive test's
inflation reaches the 30% reported in the literature; they are size-adjusted on their own null.
Rows on "pipeline value" test the secondary outcome (weekly value in deal units,
:func:`coachnb.impact.deal_units`; deal amounts lognormal with sd 1 on the log scale).

Usage::

    python benchmarks/calibration.py               # full run (2,000 nulls / 1,000 per effect cell)
    python benchmarks/calibration.py --quick       # a few hundred per cell
    python benchmarks/calibration.py --seed 7 --jobs 2 --n-null 2000 --n-effect 1000

Deterministic given ``--seed`` (each simulation has its own seed from the scenario's name and its
number, whatever ``--jobs`` and the order of the scenarios).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coachnb.impact import deal_units, detect_activity_change, pipeline_impact  # noqa: E402
from coachnb.simulate import simulate_team  # noqa: E402

ALPHA = 0.05
LAG = 2
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
        Scenario("null: date found in PIPELINE", date="pipeline"),
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
    r = pipeline_impact(outcome, sim.rep_id, start, lag_weeks=LAG, horizon_weeks=sc.horizon)
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


def ks_uniform(p: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of p-values from Uniform(0, 1) (0 = perfectly uniform)."""
    p = np.sort(p[np.isfinite(p)])
    n = len(p)
    if n == 0:
        return float("nan")
    ecdf_hi = np.arange(1, n + 1) / n
    ecdf_lo = np.arange(0, n) / n
    return float(max(np.max(ecdf_hi - p), np.max(p - ecdf_lo)))


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


def summarize(by: dict[int, list[dict]]) -> tuple[list[dict], dict]:
    """One summary dict per scenario (what the table prints; also what the smoke test checks).

    The naive test is size-adjusted two ways from its null p-values in the known-date
    null (scenario 0): ``naive_adj`` (adjG, the primary comparison) uses one threshold
    (its overall 5% quantile), which lets it spend its false positives on high-volume
    reps, where overdispersion makes it reject most (it is then far above 5% for them and
    below 5% for low-volume reps); ``naive_adj_band`` (adjB*, an oracle) uses one
    threshold per baseline-volume band taken from the true null of that band.
    ``meta['coachnb_band_fpr']`` is coachnb's own null FPR per band, for comparison.
    """
    scs = scenarios()
    null_rows = by.get(0, [])
    naive_null = np.array([r["naive_p"] for r in null_rows], float)
    null_band = _band(np.array([r["pre_rate"] for r in null_rows], float))
    ok = np.isfinite(naive_null)
    alpha_adj = float(np.quantile(naive_null[ok], ALPHA)) if ok.any() else float("nan")
    band_alpha = np.full(len(RATE_BANDS) - 1, alpha_adj)
    for b in range(len(band_alpha)):
        sel = ok & (null_band == b)
        if sel.sum() >= 20:
            band_alpha[b] = float(np.quantile(naive_null[sel], ALPHA))
    band_fpr_global = [float(np.mean(naive_null[ok & (null_band == b)] <= alpha_adj)) if (ok & (null_band == b)).any()
                       else float("nan") for b in range(len(band_alpha))]
    # coachnb held to the same calibration as adjG: one p threshold giving exactly 5% "moved" in the null
    c_null = _effective_p(null_rows)
    alpha_adj_c = float(np.quantile(c_null, ALPHA)) if len(c_null) else float("nan")
    null_moved = np.array([r["moved"] for r in null_rows], bool)
    coachnb_band_fpr = [float(np.mean(null_moved[null_band == b])) if (null_band == b).any() else float("nan")
                        for b in range(len(band_alpha))]
    meta = dict(alpha_adj=alpha_adj, band_alpha=band_alpha.tolist(), band_fpr_global=band_fpr_global,
                coachnb_band_fpr=coachnb_band_fpr, alpha_adj_coachnb=alpha_adj_c)
    # rows from another data-generating process are size-adjusted on that process's own null
    thresholds = {scs[0].name: (alpha_adj, alpha_adj_c)}
    for k, rows in by.items():
        if scs[k].is_null and k != 0 and rows:
            nn = np.array([r["naive_p"] for r in rows], float)
            thresholds[scs[k].name] = (float(np.quantile(nn[np.isfinite(nn)], ALPHA)),
                                       float(np.quantile(_effective_p(rows), ALPHA)))
    out = []
    for k, rows in by.items():
        sc = scs[k]
        n = len(rows)
        moved = np.array([r["moved"] for r in rows], bool)
        p = np.array([r["p"] for r in rows], float)
        np_ = np.array([r["naive_p"] for r in rows], float)
        up = np.array([r["up"] for r in rows], float)
        nup = np.array([r["naive_up"] for r in rows], float)
        cov = np.array([r["covered"] for r in rows], float)
        thr = band_alpha[np.clip(_band(np.array([r["pre_rate"] for r in rows], float)), 0, len(band_alpha) - 1)]
        n_rej = int(moved.sum())
        naive_rej = np.isfinite(np_) & (np_ <= ALPHA)
        t_naive, t_coach = thresholds.get(sc.calibrated_on, (float("nan"), float("nan")))
        s = dict(name=sc.name, null=sc.is_null, n=n,
                 rate=n_rej / n, rate_ci=wilson(n_rej, n),
                 p_rate=float(np.mean(np.nan_to_num(p, nan=1.0) <= ALPHA)),
                 adj=float(np.mean(_effective_p(rows) <= t_coach)) if len(rows) else float("nan"),
                 naive_rate=naive_rej.sum() / n, naive_ci=wilson(int(naive_rej.sum()), n),
                 naive_adj=float(np.mean(np.nan_to_num(np_, nan=1.0) <= t_naive)) if np.isfinite(t_naive)
                 else float("nan"),
                 naive_adj_band=float(np.mean(np.nan_to_num(np_, nan=1.0) <= thr)),
                 coverage=float(np.nanmean(cov)) if np.isfinite(cov).any() else float("nan"),
                 not_enough=float(np.mean([r["not_enough"] for r in rows])),
                 detected=float(np.mean([r["detected"] for r in rows])),
                 ks=ks_uniform(p), naive_ks=ks_uniform(np_))
        if not sc.is_null:
            wrong = moved & (up == 0)
            s["wrong_sign"] = wrong.sum() / max(n_rej, 1)
            nwrong = naive_rej & (nup == 0)
            s["naive_wrong_sign"] = nwrong.sum() / max(int(naive_rej.sum()), 1)
        out.append(s)
    return out, meta


def format_table(summary: list[dict], meta: dict) -> str:
    def pct(x):
        return "   -  " if x is None or not np.isfinite(x) else f"{x:6.3f}"

    def ci(c):
        return f"[{c[0]:.3f},{c[1]:.3f}]"

    head = (f"{'scenario':34s} {'n':>5s} | {'coachnb':>6s} {'95% CI':15s} {'p<=a':>6s} {'cAdjG':>6s} {'KS':>6s} | "
            f"{'naive':>6s} {'95% CI':15s} {'adjG':>6s} {'adjB*':>6s} {'KS':>6s} | {'cover':>6s} {'notEn':>6s} "
            f"{'wrong':>6s} {'nWrong':>6s}")
    lines = [
        "Rejection rates at alpha = 0.05 (null rows: false-positive rate; effect rows: power).",
        "coachnb = verdict 'moved' (all gates passed, placebo p <= 0.05); p<=a = placebo test alone;",
        f"cAdjG = coachnb size-adjusted exactly like adjG (gates passed and p <= {meta['alpha_adj_coachnb']:.4f}: "
        "exactly 5% in the known-date null);",
        "naive = plain before/after Poisson test, same windows; adjG = naive power size-adjusted with one",
        f"global threshold (p <= {meta['alpha_adj']:.1e}), the primary comparison: 5% FPR overall, but by baseline",
        f"band <1, 1-2.5, 2.5-5, >=5 a week its null FPR is {', '.join(f'{x:.3f}' for x in meta['band_fpr_global'])} "
        f"(coachnb: {', '.join(f'{x:.3f}' for x in meta.get('coachnb_band_fpr', []))});",
        "adjB* = ORACLE, not a usable test: one threshold per band from that band's true null;",
        "cover = 95% interval covers the true window rate ratio; notEn = share 'not enough data to tell';",
        "wrong/nWrong = wrong-sign share among significant results (coachnb/naive); KS = distance of p-values "
        "from uniform.",
        head, "-" * len(head)]
    for s in summary:
        wrong = s.get("wrong_sign")
        lines.append(
            f"{s['name'][:34]:34s} {s['n']:5d} | {s['rate']:6.3f} {ci(s['rate_ci']):15s} {s['p_rate']:6.3f} "
            f"{pct(s['adj']) if not s['null'] else '   -  '} "
            f"{pct(s['ks']) if s['null'] else '   -  '} | {s['naive_rate']:6.3f} {ci(s['naive_ci']):15s} "
            f"{pct(s['naive_adj']) if not s['null'] else '   -  '} "
            f"{pct(s['naive_adj_band']) if not s['null'] else '   -  '} {pct(s['naive_ks']) if s['null'] else '   -  '} | "
            f"{pct(s['coverage'])} {s['not_enough']:6.3f} {pct(wrong) if wrong is not None else '   -  '} "
            f"{pct(s.get('naive_wrong_sign')) if wrong is not None else '   -  '}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true", help="300 nulls / 150 per effect cell")
    ap.add_argument("--n-null", type=int, default=None, help="null simulations per scenario (default 2000)")
    ap.add_argument("--n-effect", type=int, default=None, help="simulations per effect x horizon (default 1000)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    n_null = a.n_null or (300 if a.quick else 2000)
    n_eff = a.n_effect or (150 if a.quick else 1000)
    t = time.time()
    by = run(a.seed, n_null, n_eff, a.jobs)
    summary, meta = summarize(by)
    print(format_table(summary, meta))
    print(f"\nseed {a.seed}, {n_null} nulls/scenario, {n_eff} per effect cell, {a.jobs} jobs, "
          f"{time.time() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
