"""Coverage of the team model's 95% intervals (``coachnb.team_effects.team_activity_effect``).

Simulates teams whose weekly activity and new pipeline are *independent* (issue #14, item 6),
so every coefficient of the panel model is truly 0, and counts how often the 95% interval of
the total effect (lags 0-4) holds 0, with a 95% Wilson interval for that share.

Each panel is negative binomial with a rep level (the rep fixed effect), a team-week shock
(AR(1): what the week fixed effects take out) and the rep's own AR(1) log-noise (what makes
clustering by rep necessary); activity and pipeline draw all of these apart. ``--effect``
plants a lag-1 effect (activity then drives pipeline; the truth is the planted total).

Teams below ``MIN_REPS_FOR_INTERVAL`` reps get no interval: their row counts the
refusals and shows, for the record, the coverage the interval would have had (the same
inversion with the refusal lifted: ``min_reps=3``). An interval open at one end (the data do
not bound it) counts as not covering.

Usage::

    .venv/bin/python benchmarks/team_effects_coverage.py                 # 5, 8, 12, 20, 40 reps
    .venv/bin/python benchmarks/team_effects_coverage.py --reps 8 --sims 100 --jobs 1
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from coachnb import team_effects

#: the panel model the reports fit (coachnb.coaching.LINK_MAX_LAG, LINK_BOOT)
MAX_LAG, N_BOOT = 4, 499


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float, sd: float) -> np.ndarray:
    """AR(1) series along axis 0 with marginal standard deviation ``sd``."""
    e = rng.normal(0.0, sd * np.sqrt(1 - rho**2), size=shape)
    out = np.empty(shape)
    out[0] = rng.normal(0.0, sd, size=shape[1:])
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + e[t]
    return out


def _nb(rng: np.random.Generator, mu: np.ndarray, size: float) -> np.ndarray:
    """Negative binomial counts with mean ``mu`` and shape ``size`` (gamma-Poisson)."""
    return rng.poisson(rng.gamma(size, mu / size)).astype(float)


def simulate_independent_panels(rng: np.random.Generator, n_reps: int, n_weeks: int = 52,
                                effect: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly activity and new-pipeline panels of one team (weeks x reps).

    Activity: 5-30 a week per rep, team-week shock sd 0.25 (rho 0.6), rep noise sd 0.3
    (rho 0.5), NB shape 10. Pipeline: 0.5-4 a week per rep, its own team-week shock and rep
    noise (same sizes), NB shape 3, times ``exp(effect * (last week's activity - the rep's
    mean))``: with ``effect`` 0 the two panels are independent.
    """
    shape = (n_weeks, n_reps)
    act_mu = rng.uniform(5, 30, n_reps) * np.exp(_ar1(rng, (n_weeks, 1), 0.6, 0.25) + _ar1(rng, shape, 0.5, 0.3))
    act = _nb(rng, act_mu, 10.0)
    centred = act - act.mean(axis=0)
    lagged = np.vstack([np.zeros((1, n_reps)), centred[:-1]])
    pipe_mu = rng.uniform(0.5, 4, n_reps) * np.exp(_ar1(rng, (n_weeks, 1), 0.6, 0.25) + _ar1(rng, shape, 0.5, 0.3))
    pipe = _nb(rng, pipe_mu * np.exp(effect * lagged), 3.0)
    weeks = pd.date_range("2025-01-06", periods=n_weeks, freq="W-MON")
    cols = [f"R{i:02d}" for i in range(n_reps)]
    return pd.DataFrame(act, index=weeks, columns=cols), pd.DataFrame(pipe, index=weeks, columns=cols)


def one_team(n_reps: int, seed: int, effect: float = 0.0, n_weeks: int = 52) -> dict:
    """Fit one simulated team; returns whether the total's 95% interval holds the truth.

    ``refused``: the model gave no interval (too few reps); ``covered_if_shown`` is then
    about the interval the same inversion gives when the refusal is lifted (``min_reps=3``).
    ``log_width``: width of the interval on the log scale (NaN when it is open at one end).
    """
    act, out = simulate_independent_panels(np.random.default_rng(seed), n_reps, n_weeks, effect)
    kw = {"max_lag": MAX_LAG, "n_boot": N_BOOT, "seed": seed, "p_values": False, "intervals": ("total",)}
    fit = team_effects.team_activity_effect(act, out, **kw)
    refused = not fit.attrs["interval_valid"]
    if refused:  # the interval the model would have given, for the evidence behind the refusal
        fit = team_effects.team_activity_effect(act, out, min_reps=3, **kw)
    total = fit.set_index("term").loc[f"total (lags 0-{MAX_LAG})"]
    lo, hi, truth = total["ci_low"], total["ci_high"], np.exp(effect)
    return {"n_reps": n_reps, "refused": refused, "covered_if_shown": bool(lo <= truth <= hi),
            "log_width": float(np.log(hi / lo))}


def _one(args):
    return one_team(*args)


def run(reps=(5, 8, 12, 20, 40), n_sims: int = 300, seed: int = 2026, effect: float = 0.0,
        jobs: int = 2) -> pd.DataFrame:
    """Coverage per team size: one row per size with the share covered and its Wilson interval."""
    tasks = [(g, seed * 100_003 + 1_000 * g + i, effect) for g in reps for i in range(n_sims)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(_one, tasks, chunksize=8))
    else:
        rows = [_one(t) for t in tasks]
    df = pd.DataFrame(rows)
    out = []
    for g, d in df.groupby("n_reps"):
        hits, n = int(d["covered_if_shown"].sum()), len(d)
        lo, hi = proportion_confint(hits, n, alpha=0.05, method="wilson")
        out.append({"reps": g, "sims": n, "coverage": hits / n, "wilson_low": lo, "wilson_high": hi,
                    "refused": d["refused"].mean(), "median_log_width": d["log_width"].median(),
                    "open_ended": d["log_width"].isna().mean()})
    return pd.DataFrame(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, nargs="+", default=[5, 8, 12, 20, 40])
    ap.add_argument("--sims", type=int, default=300, help="simulated teams per size")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--effect", type=float, default=0.0, help="planted lag-1 effect per unit (0: independent)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = run(tuple(a.reps), a.sims, a.seed, a.effect, a.jobs)
    print(f"Coverage of the 95% interval of the total effect (lags 0-{MAX_LAG}), {N_BOOT} bootstrap draws, "
          f"52 weeks, effect {a.effect}, seed {a.seed}; refused: share of teams given no interval "
          f"(coverage shown is of the interval the inversion would give)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
