"""A second, independent team simulator for calibrating ``coachnb.impact`` (issue #14, item 7).

Written from the panel conventions of ``docs/methods.md`` and the public API of
``coachnb.impact`` only, without reading ``coachnb/simulate.py``, so that a method tuned on
the first simulator meets a process it was never fitted to. What differs on purpose:

* **Calendar**: a fiscal year starting in February, April, July or October; a fiscal
  year-end push, a trough in the middle of every fiscal quarter (weeks 5-8), holidays (the
  weeks around 24 December - 1 January, a Thanksgiving-like week in late November) and a
  summer lull (mid-July to mid-August), each rep loading on the team swings with its own
  weight (0.8-1.2).
* **Team swings**: an AR(1) team shock (rho 0.8) plus one level shift (a lead-routing or
  pricing change) at a random week.
* **Rep noise**: negative-binomial counts with a shape of 2-4 per rep, on top of AR(1)
  log-noise (rho 0.3-0.8); the analysed rep is noisier than their team.
* **Effects**: the rep's activity rises x1.8-2.5 at the change; the pipeline effect starts
  1-8 weeks later and ramps in over 0-3 weeks.
* **Teammates** change at other dates (anywhere in the panel, the rep's baseline included),
  with their own planted effects on activity and pipeline.
* **New hires**: weeks before a rep's hire are missing (NaN), and a new hire ramps up over 4
  weeks from 0.7x.

:func:`simulate_fiscal_team` returns a :class:`FiscalTeam` with the activity and outcome
panels (index = consecutive Monday Timestamps, columns = rep ids ``F00`` ..., NaN before a
hire) and the truth. Everything is deterministic given the ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: log-scale size of each calendar feature (team-wide; each rep loads on them with its own weight)
YEAR_END_PUSH = 0.3
MID_QUARTER_TROUGH = -0.3
YEAR_END_HOLIDAY = -1.1
THANKSGIVING = -0.5
SUMMER_LULL = -0.45
#: a new hire's productivity in their first weeks (ramps linearly to 1)
HIRE_RAMP_START, HIRE_RAMP_WEEKS = 0.7, 4


@dataclass(frozen=True)
class FiscalSpec:
    """How a simulated team behaves (every knob of :func:`simulate_fiscal_team`).

    Attributes
    ----------
    team : (int, int)
        Range of the team size, analysed rep included (drawn log-uniform).
    weeks : (int, int)
        Range of the panel length in weeks.
    effect_ratio : float
        Planted rate ratio on the analysed rep's pipeline (1 = no effect).
    lag_range, ramp_range : (int, int)
        Inclusive ranges of the effect's lag after the change and of its linear ramp-in.
    activity_ratio_range : (float, float)
        Range of the real rise in the rep's committed activity at the change.
    rep_extra_noise : float or None
        Extra AR(1) log-noise sd of the analysed rep on top of the team's; None draws the
        rep's noise as 1.2-2x a teammate's.
    rep_nb_shape : float or None
        Negative-binomial shape of the analysed rep's pipeline counts (None: 2-4 like the team).
    changed_peer_share : float
        Share of teammates who change at another date, with their own effect x1.5-2.5.
    peer_hire_share : float
        Share of teammates hired during the panel (missing before their hire).
    rep_hired_before : (int, int) or None
        The analysed rep is hired this many weeks (inclusive range) before the change.
    after_lull : bool
        Put the change 3-10 weeks after a holiday or the summer lull, so the baseline spans it.
    post_weeks : (int, int)
        Range of the weeks observed from the change on.
    """

    team: tuple = (5, 40)
    weeks: tuple = (60, 104)
    effect_ratio: float = 1.0
    lag_range: tuple = (1, 8)
    ramp_range: tuple = (0, 3)
    activity_ratio_range: tuple = (1.8, 2.5)
    rep_extra_noise: float | None = None
    rep_nb_shape: float | None = None
    changed_peer_share: float = 0.2
    peer_hire_share: float = 0.15
    rep_hired_before: tuple | None = None
    after_lull: bool = False
    post_weeks: tuple = (12, 30)


@dataclass
class FiscalTeam:
    """One simulated team and its truth.

    Attributes
    ----------
    activity, outcome : DataFrame
        Weekly panels (committed activity, new opportunities): index = consecutive Monday
        Timestamps, columns = rep ids ``F00`` ..., counts per week, NaN before a rep's hire.
    rep_id : str
        The analysed rep (``"F00"``).
    start : Timestamp
        The week the rep's activity change started; ``change_row`` is its row.
    commitment_end : Timestamp
        Last week of the commitment period (4-8 weeks from ``start``).
    activity_ratio : float
        The real rise in the rep's activity from ``start`` on.
    lag_weeks : int
        Weeks from the change to the start of the pipeline effect.
    true_ratio_by_week : ndarray
        Multiplicative effect on the rep's expected pipeline, per week (1 = none).
    latent_mu : ndarray
        The rep's expected pipeline per week without the effect (seasonality, shocks and the
        rep's own noise included; NaN before the hire).
    base_rate : float
        The rep's own level (opportunities a week, before seasonality and noise).
    changed_peers : dict
        Teammate id -> row of their own change.
    hire_row : int
        First row the rep is on the team (0 unless hired during the panel).
    fiscal_start_month : int
    """

    activity: pd.DataFrame
    outcome: pd.DataFrame
    rep_id: str
    start: pd.Timestamp
    change_row: int
    commitment_end: pd.Timestamp
    activity_ratio: float
    lag_weeks: int
    true_ratio_by_week: np.ndarray
    latent_mu: np.ndarray
    base_rate: float
    changed_peers: dict = field(default_factory=dict)
    hire_row: int = 0
    fiscal_start_month: int = 1


def fiscal_calendar(weeks: pd.DatetimeIndex, fiscal_start_month: int) -> np.ndarray:
    """Team-wide log-scale seasonality of each week under a fiscal year starting in ``fiscal_start_month``.

    A push in the last 3 weeks of the fiscal year, a trough in weeks 5-8 of every fiscal
    quarter, the year-end holidays (weeks touching 24 December - 1 January), a Thanksgiving-like
    week (the 4th Monday of November) and a summer lull (weeks from 15 July to 15 August).
    """
    month_in_fy = (weeks.month - fiscal_start_month) % 12  # 0 = first month of the fiscal year
    week_in_quarter = ((month_in_fy % 3) * 4.35 + (weeks.day - 1) / 7).astype(int)
    season = np.where((week_in_quarter >= 4) & (week_in_quarter <= 7), MID_QUARTER_TROUGH, 0.0)
    last_weeks = (month_in_fy == 11) & (weeks.day >= 8)
    season = season + np.where(last_weeks, YEAR_END_PUSH, 0.0)
    week_end = weeks + pd.Timedelta(days=6)
    holiday = ((weeks.month == 12) & (week_end.day >= 24)) | ((weeks.month == 12) & (week_end.month == 1)) | (
        (weeks.month == 1) & (weeks.day <= 1))
    season = season + np.where(holiday, YEAR_END_HOLIDAY, 0.0)
    season = season + np.where((weeks.month == 11) & (weeks.day >= 22) & (weeks.day <= 28), THANKSGIVING, 0.0)
    summer = ((weeks.month == 7) & (weeks.day >= 15)) | ((weeks.month == 8) & (weeks.day <= 15))
    return season + np.where(summer, SUMMER_LULL, 0.0)


def ar1(rng: np.random.Generator, n: int, sd: float, rho: float) -> np.ndarray:
    """A stationary AR(1) path of length ``n`` with marginal sd ``sd`` and lag-1 correlation ``rho``."""
    e = rng.normal(0.0, sd * np.sqrt(1 - rho * rho), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + e[t]
    return x


def nb_counts(rng: np.random.Generator, mu: np.ndarray, shape: float) -> np.ndarray:
    """Negative-binomial counts with mean ``mu`` and variance ``mu + mu^2 / shape`` (gamma-Poisson)."""
    return rng.poisson(mu * rng.gamma(shape, 1.0 / shape, size=len(mu))).astype(float)


def _ramp(n: int, at: int, ramp: int, ratio: float) -> np.ndarray:
    """Multiplicative effect ``ratio`` from row ``at`` on, reached linearly over ``ramp`` weeks."""
    out = np.ones(n)
    for t in range(max(at, 0), n):
        share = 1.0 if ramp <= 0 else min(1.0, (t - at + 1) / (ramp + 1))
        out[t] = ratio ** share
    return out


def _hire_ramp(n: int, hire: int) -> np.ndarray:
    """A new hire's productivity: missing before ``hire``, HIRE_RAMP_START rising to 1 over HIRE_RAMP_WEEKS."""
    out = np.ones(n)
    out[:hire] = np.nan
    if hire > 0:
        for k in range(HIRE_RAMP_WEEKS):
            if hire + k < n:
                out[hire + k] = HIRE_RAMP_START + (1 - HIRE_RAMP_START) * k / HIRE_RAMP_WEEKS
    return out


def _change_row(rng, spec: FiscalSpec, season: np.ndarray, n_weeks: int, post: int) -> int:
    """Row of the analysed rep's change: uniform, or 3-10 weeks after a holiday/lull (``after_lull``)."""
    lo, hi = 30, n_weeks - post
    if spec.after_lull:
        lull_rows = np.flatnonzero(season <= SUMMER_LULL + 1e-9)
        cand = sorted({r + k for r in lull_rows for k in range(3, 11) if lo <= r + k <= hi})
        if cand:
            return int(rng.choice(cand))
    return int(rng.integers(lo, hi + 1))


def _team_layout(rng, spec: FiscalSpec):
    """Team size, panel length, first Monday, fiscal start month and weeks observed after the change."""
    lo, hi = spec.team
    n_reps = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi + 0.49)))))
    n_weeks = int(rng.integers(spec.weeks[0], spec.weeks[1] + 1))
    post = int(rng.integers(spec.post_weeks[0], spec.post_weeks[1] + 1))
    n_weeks = max(n_weeks, 30 + post + 1)
    first = pd.Timestamp("2023-01-02") + pd.Timedelta(weeks=int(rng.integers(0, 130)))
    fy_month = int(rng.choice([2, 4, 7, 10]))
    return n_reps, n_weeks, post, first, fy_month


def _team_swing(rng, n_weeks: int) -> np.ndarray:
    """The team's AR(1) shock plus one level shift (+-0.15-0.3) at a random week."""
    shock = ar1(rng, n_weeks, 0.15, 0.8)
    at = int(rng.integers(0, n_weeks))
    step = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.3)
    return shock + np.where(np.arange(n_weeks) >= at, step, 0.0)


def _rep_noise(rng, spec: FiscalSpec, n_weeks: int, team_sd: float, analysed: bool) -> tuple[np.ndarray, float]:
    """A rep's own AR(1) log-noise path and NB shape; the analysed rep is noisier than the team."""
    rho = rng.uniform(0.3, 0.8)
    shape = rng.uniform(2.0, 4.0)
    sd = team_sd
    if analysed:
        if spec.rep_extra_noise is not None:
            sd = float(np.hypot(team_sd, spec.rep_extra_noise))
        else:
            sd = team_sd * rng.uniform(1.2, 2.0)
        if spec.rep_nb_shape is not None:
            shape = spec.rep_nb_shape
    return ar1(rng, n_weeks, sd, rho), shape


def simulate_fiscal_team(rng: np.random.Generator, spec: FiscalSpec | None = None) -> FiscalTeam:
    """Simulate one team; the analysed rep is ``"F00"``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness (draws in a fixed order: same state and spec, same team).
    spec : FiscalSpec, optional
        How the team behaves (default ``FiscalSpec()``: a mixed team, no planted effect).

    Returns
    -------
    FiscalTeam
        Panels and truth. Expected pipeline of rep i in week t:
        ``base_i * exp(load_i * (season_t + swing_t) + noise_it) * hire_ramp_it * effect_it``,
        counts negative-binomial around it; activity likewise with half the seasonality.
    """
    spec = spec or FiscalSpec()
    n_reps, n_weeks, post, first, fy_month = _team_layout(rng, spec)
    weeks = pd.date_range(first, periods=n_weeks, freq="7D")
    season = fiscal_calendar(weeks, fy_month)
    swing = _team_swing(rng, n_weeks)
    change = _change_row(rng, spec, season, n_weeks, post)
    team_sd = rng.uniform(0.1, 0.3)
    ids = [f"F{i:02d}" for i in range(n_reps)]
    out, act = {}, {}
    truth = dict(changed={}, hire=0)
    for i, rid in enumerate(ids):
        y, a, extra = _simulate_rep(rng, spec, i, n_weeks, season, swing, change, team_sd)
        out[rid], act[rid] = y, a
        if i == 0:
            truth.update(extra)
        elif extra.get("changed_row") is not None:
            truth["changed"][rid] = extra["changed_row"]
    end = change + int(rng.integers(4, 9)) - 1
    return FiscalTeam(activity=pd.DataFrame(act, index=weeks), outcome=pd.DataFrame(out, index=weeks), rep_id=ids[0],
                      start=weeks[change], change_row=change, commitment_end=weeks[min(end, n_weeks - 1)],
                      activity_ratio=truth["activity_ratio"], lag_weeks=truth["lag"],
                      true_ratio_by_week=truth["effect"], latent_mu=truth["mu"], base_rate=truth["base"],
                      changed_peers=truth["changed"], hire_row=truth["hire"], fiscal_start_month=fy_month)


def _simulate_rep(rng, spec: FiscalSpec, i: int, n_weeks: int, season, swing, change: int, team_sd: float):
    """One rep's outcome and activity columns, and (for the analysed rep) its truth."""
    analysed = i == 0
    base = float(np.exp(rng.uniform(np.log(0.5), np.log(8.0))))
    act_base = float(np.exp(rng.uniform(np.log(5.0), np.log(40.0))))
    load = rng.uniform(0.8, 1.2)
    noise, shape = _rep_noise(rng, spec, n_weeks, team_sd, analysed)
    act_noise = ar1(rng, n_weeks, 0.15, 0.5)
    hire = 0
    if analysed and spec.rep_hired_before is not None:
        hire = max(0, change - int(rng.integers(spec.rep_hired_before[0], spec.rep_hired_before[1] + 1)))
    elif not analysed and rng.uniform() < spec.peer_hire_share:
        hire = int(rng.integers(1, max(2, n_weeks - 20)))
    staffed = _hire_ramp(n_weeks, hire)
    extra: dict = {}
    if analysed:
        ratio = rng.uniform(*spec.activity_ratio_range)
        lag = int(rng.integers(spec.lag_range[0], spec.lag_range[1] + 1))
        ramp = int(rng.integers(spec.ramp_range[0], spec.ramp_range[1] + 1))
        act_eff = _ramp(n_weeks, change, 0, ratio)
        effect = _ramp(n_weeks, change + lag, ramp, spec.effect_ratio)
        extra = dict(activity_ratio=float(ratio), lag=lag, effect=effect, base=base, hire=hire)
    elif rng.uniform() < spec.changed_peer_share:
        at = int(rng.integers(0, n_weeks))
        act_eff = _ramp(n_weeks, at, 0, rng.uniform(1.8, 2.5))
        effect = _ramp(n_weeks, at + int(rng.integers(1, 9)), int(rng.integers(0, 4)), rng.uniform(1.5, 2.5))
        extra = dict(changed_row=at)
    else:
        act_eff = effect = np.ones(n_weeks)
    mu = base * np.exp(load * (season + swing) + noise) * staffed
    act_mu = act_base * np.exp(0.5 * load * (season + swing) + act_noise) * staffed * act_eff
    y = nb_counts(rng, np.nan_to_num(mu * effect), shape)
    a = nb_counts(rng, np.nan_to_num(act_mu), 5.0)
    y[:hire], a[:hire] = np.nan, np.nan
    if analysed:
        extra["mu"] = mu
    return y, a, extra
