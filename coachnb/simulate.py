"""Simulated weekly team panels for calibrating :mod:`coachnb.impact` (issue #4).

The data-generating process (DGP) is meant to be *harder* than real CRM data in the
ways that break naive tests, so that a method that holds size here is trustworthy:

    log mu[t, i] = log(base_i) + season[t] + shock[t] + noise[t, i] + log(effect[t, i])
    y[t, i]      ~ NegativeBinomial(mean = mu[t, i], size = nb_size)    (var = mu + mu^2/size)

* ``base_i``: the rep's own level, log-uniform between ``base_rate_range`` (per week);
* ``season``: team-wide seasonality, a quarter-end spike (last 2 weeks of every
  13-week quarter) and a holiday dip (2 weeks once a year);
* ``shock``: a shared team AR(1) shock (market, pricing, lead-routing changes);
* ``noise``: the rep's own AR(1) noise (territory, big-account cycles);
* ``effect``: the planted multiplicative effect, ramping in linearly over
  ``ramp_weeks`` from ``change_week + true_lag_weeks``.

Activity (e.g. calls a week) is simulated the same way with its own levels; the
treated rep's activity steps up at ``change_week`` (so detection has something to find).
Everything is deterministic given the ``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class TeamSim:
    """One simulated team.

    Attributes
    ----------
    activity, outcome : DataFrame
        Weekly panels: index = week Timestamps (Mondays), columns = rep ids ``R00`` ...,
        values = counts per week.
    rep_id : str
        The rep whose change is analysed (always column 0, ``"R00"``).
    change_week : int
        Position (0-based row) of the week the activity change started.
    start : Timestamp
        The same week as a Timestamp.
    true_ratio_by_week : ndarray
        Multiplicative effect on the rep's expected pipeline per week (1 = none).
    latent_mu : ndarray
        The rep's expected pipeline per week *without* the effect (for the estimand).
    changed_peers : list of str
        Peers that also had an (unannounced) effect.
    value : DataFrame or None
        Weekly pipeline value (currency) of the same opportunities, when simulated
        (``deal_size_sigma``): each deal's amount is the rep's typical size times a
        lognormal draw.
    deal_amounts : ndarray
        Every simulated deal amount (empty without ``value``).
    base_rate : float
        The rep's own level ``base_0`` (per week, before seasonality and noise): its true
        volume, for grouping results by volume without selecting on observed noise.
    """

    activity: pd.DataFrame
    outcome: pd.DataFrame
    rep_id: str
    change_week: int
    start: pd.Timestamp
    true_ratio_by_week: np.ndarray
    latent_mu: np.ndarray
    changed_peers: list[str] = field(default_factory=list)
    base_rate: float = float("nan")
    value: pd.DataFrame | None = None
    deal_amounts: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def true_window_ratio(self, lag_weeks: int, horizon_weeks: int) -> float:
        """The estimand: expected post-window count with the effect / without it.

        Weighted by the rep's own latent rate, over weeks
        ``[change_week + lag_weeks, change_week + lag_weeks + horizon_weeks)``.
        """
        a = self.change_week + lag_weeks
        b = min(a + horizon_weeks, len(self.latent_mu))
        mu = self.latent_mu[a:b]
        return float(np.sum(mu * self.true_ratio_by_week[a:b]) / np.sum(mu))


def _ar1(rng: np.random.Generator, n: int, k: int, rho: float, sd: float) -> np.ndarray:
    """AR(1) paths (n weeks x k series) with stationary marginal standard deviation ``sd``."""
    out = np.empty((n, k))
    innov_sd = sd * np.sqrt(1.0 - rho**2)
    out[0] = rng.normal(0.0, sd, k)
    eps = rng.normal(0.0, innov_sd, (n, k))
    for t in range(1, n):
        out[t] = rho * out[t - 1] + eps[t]
    return out


def _season(n_weeks: int, offset: int, quarter_spike: float, holiday_dip: float) -> np.ndarray:
    """Quarter-end spike (last 2 weeks of each 13-week quarter) and a 2-week holiday dip a year."""
    week_of_year = (np.arange(n_weeks) + offset) % 52
    s = np.zeros(n_weeks)
    s[(week_of_year % 13) >= 11] += quarter_spike
    s[week_of_year >= 50] += holiday_dip
    return s


def _nb(rng: np.random.Generator, mu: np.ndarray, size: float) -> np.ndarray:
    """Negative-binomial counts as a gamma-Poisson mixture (mean mu, variance mu + mu^2/size)."""
    lam = rng.gamma(size, mu / size)
    return rng.poisson(lam).astype(float)


def _ramp(n_weeks: int, begin: int, ramp_weeks: int, ratio: float) -> np.ndarray:
    """Multiplier path: 1 before ``begin``, ramping (on the log scale) to ``ratio`` over ``ramp_weeks``."""
    t = np.arange(n_weeks) - begin
    frac = np.clip((t + 1) / max(ramp_weeks, 1), 0.0, 1.0) if ramp_weeks > 0 else (t >= 0).astype(float)
    frac[t < 0] = 0.0
    return np.exp(np.log(ratio) * frac)


def simulate_team(
    rng: np.random.Generator,
    *,
    n_reps: int = 12,
    n_weeks: int = 60,
    change_week: int | None = None,
    post_weeks_needed: int = 10,
    base_rate_range: tuple[float, float] = (0.5, 10.0),
    effect_ratio: float = 1.0,
    true_lag_weeks: int = 2,
    ramp_weeks: int = 0,
    nb_size: float = 4.0,
    rep_noise_sd: float = 0.25,
    rep_noise_rho: float = 0.6,
    shock_sd: float = 0.2,
    shock_rho: float = 0.6,
    quarter_spike: float = 0.35,
    holiday_dip: float = -0.8,
    dip_ratio: float = 1.0,
    dip_weeks: int = 0,
    changed_peer_share: float = 0.0,
    changed_peer_ratio: float = 1.5,
    activity_ratio: float = 1.8,
    activity_rate_range: tuple[float, float] = (3.0, 15.0),
    min_pre_weeks: int = 10,
    deal_size_sigma: float | None = None,
) -> TeamSim:
    """Simulate one team; the analysed rep is ``"R00"``.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_reps : int
        Team size including the analysed rep.
    n_weeks : int
        Weeks of history in the panel.
    change_week : int, optional
        Week (row) the rep's activity change starts; default: uniform over the weeks
        that leave ``min_pre_weeks`` before and ``post_weeks_needed`` after.
    effect_ratio : float
        Planted rate ratio on the rep's pipeline (1 = no effect).
    true_lag_weeks, ramp_weeks : int
        The effect starts ``true_lag_weeks`` after the change and ramps in over ``ramp_weeks``.
    dip_ratio, dip_weeks : float, int
        Ashenfelter's dip: the rep's pipeline is multiplied by ``dip_ratio`` in the
        ``dip_weeks`` weeks just before the change (then recovers by itself).
    changed_peer_share, changed_peer_ratio : float
        Share of peers who also changed at a random week, and their (unannounced) effect.
    activity_ratio : float
        How much the rep's activity rises at the change (1 = it did not change).
    deal_size_sigma : float, optional
        Simulate pipeline value too: amounts = rep's typical size (10,000 x lognormal, sd
        0.3 across reps) x lognormal(-sigma^2/2, sigma) per deal. Drawn after everything
        else, so the counts are the same with or without it.
    """
    if change_week is None:
        lo, hi = min_pre_weeks, n_weeks - post_weeks_needed
        if hi < lo:
            raise ValueError("n_weeks too short for min_pre_weeks + post_weeks_needed")
        change_week = int(rng.integers(lo, hi + 1))
    offset = int(rng.integers(0, 52))
    season = _season(n_weeks, offset, quarter_spike, holiday_dip)
    shock = _ar1(rng, n_weeks, 1, shock_rho, shock_sd)[:, 0]
    lo, hi = np.log(base_rate_range[0]), np.log(base_rate_range[1])
    base = np.exp(rng.uniform(lo, hi, n_reps))
    noise = _ar1(rng, n_weeks, n_reps, rep_noise_rho, rep_noise_sd)
    log_mu = np.log(base)[None, :] + season[:, None] + shock[:, None] + noise
    latent_mu = np.exp(log_mu)
    mult = np.ones((n_weeks, n_reps))
    mult[:, 0] = _ramp(n_weeks, change_week + true_lag_weeks, ramp_weeks, effect_ratio)
    true_ratio = mult[:, 0].copy()
    if dip_weeks > 0 and dip_ratio != 1.0:
        mult[max(change_week - dip_weeks, 0):change_week, 0] *= dip_ratio

    # Activity: own levels, shared season (weaker), the rep's step up at change_week.
    a_lo, a_hi = np.log(activity_rate_range[0]), np.log(activity_rate_range[1])
    a_base = np.exp(rng.uniform(a_lo, a_hi, n_reps))
    a_log = np.log(a_base)[None, :] + 0.5 * season[:, None] + _ar1(rng, n_weeks, n_reps, 0.5, 0.15)
    a_mult = np.ones((n_weeks, n_reps))
    a_mult[change_week:, 0] = activity_ratio

    changed = []
    n_changed = int(round(changed_peer_share * (n_reps - 1)))
    if n_changed > 0:
        who = rng.choice(np.arange(1, n_reps), size=n_changed, replace=False)
        for j in who:
            wk = int(rng.integers(4, n_weeks - 4))
            mult[:, j] = _ramp(n_weeks, wk + true_lag_weeks, int(rng.integers(0, 5)), changed_peer_ratio)
            a_mult[wk:, j] = activity_ratio
            changed.append(f"R{j:02d}")

    y = _nb(rng, latent_mu * mult, nb_size)
    act = _nb(rng, np.exp(a_log) * a_mult, 20.0)
    weeks = pd.date_range("2024-01-01", periods=n_weeks, freq="W-MON")
    cols = [f"R{i:02d}" for i in range(n_reps)]
    value, amounts = None, np.zeros(0)
    if deal_size_sigma is not None:
        typical = 10_000.0 * np.exp(rng.normal(0.0, 0.3, n_reps))
        counts = y.astype(np.int64)
        amounts = np.repeat(np.broadcast_to(typical, counts.shape).ravel(), counts.ravel()) * np.exp(
            rng.normal(-deal_size_sigma**2 / 2, deal_size_sigma, int(counts.sum())))
        cell = np.repeat(np.arange(counts.size), counts.ravel())
        value = pd.DataFrame(np.bincount(cell, weights=amounts, minlength=counts.size).reshape(counts.shape),
                             index=weeks, columns=cols)
    return TeamSim(
        activity=pd.DataFrame(act, index=weeks, columns=cols),
        outcome=pd.DataFrame(y, index=weeks, columns=cols),
        rep_id="R00",
        change_week=change_week,
        start=weeks[change_week],
        true_ratio_by_week=true_ratio,
        latent_mu=latent_mu[:, 0],
        changed_peers=changed,
        base_rate=float(base[0]),
        value=value,
        deal_amounts=amounts,
    )
