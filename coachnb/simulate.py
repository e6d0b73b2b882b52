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

from dataclasses import dataclass, field, replace

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


def _draw_change_week(rng: np.random.Generator, n_weeks: int, min_pre_weeks: int, post_weeks_needed: int) -> int:
    """A row uniform over those leaving ``min_pre_weeks`` weeks before and ``post_weeks_needed`` after.

    Raises
    ------
    ValueError
        When ``n_weeks`` cannot hold both.
    """
    lo, hi = min_pre_weeks, n_weeks - post_weeks_needed
    if hi < lo:
        raise ValueError("n_weeks too short for min_pre_weeks + post_weeks_needed")
    return int(rng.integers(lo, hi + 1))


def _latent_pipeline(rng: np.random.Generator, n_reps: int, n_weeks: int, *, base_rate_range: tuple[float, float],
                     rep_noise_sd: float, rep_noise_rho: float, shock_sd: float, shock_rho: float,
                     quarter_spike: float, holiday_dip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every rep's expected pipeline per week without any effect (the module's ``mu`` before ``effect``).

    Returns
    -------
    season : ndarray
        (week,) log-scale seasonality, shared by the team (the activity gets half of it).
    base : ndarray
        (rep,) own level ``base_i``, opportunities per week.
    latent_mu : ndarray
        (week, rep) expected opportunities per week.
    """
    offset = int(rng.integers(0, 52))
    season = _season(n_weeks, offset, quarter_spike, holiday_dip)
    shock = _ar1(rng, n_weeks, 1, shock_rho, shock_sd)[:, 0]
    lo, hi = np.log(base_rate_range[0]), np.log(base_rate_range[1])
    base = np.exp(rng.uniform(lo, hi, n_reps))
    noise = _ar1(rng, n_weeks, n_reps, rep_noise_rho, rep_noise_sd)
    log_mu = np.log(base)[None, :] + season[:, None] + shock[:, None] + noise
    return season, base, np.exp(log_mu)


def _planted_effect(n_weeks: int, n_reps: int, change_week: int, *, true_lag_weeks: int, ramp_weeks: int,
                    effect_ratio: float, dip_weeks: int, dip_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers on the expected pipeline: the analysed rep's effect and Ashenfelter's dip; no draws.

    Returns
    -------
    mult : ndarray
        (week, rep) multiplier, 1 for every peer (:func:`_change_peers` may set theirs).
    true_ratio : ndarray
        (week,) the rep's effect alone, without the dip: the estimand's ratio.
    """
    mult = np.ones((n_weeks, n_reps))
    mult[:, 0] = _ramp(n_weeks, change_week + true_lag_weeks, ramp_weeks, effect_ratio)
    true_ratio = mult[:, 0].copy()
    if dip_weeks > 0 and dip_ratio != 1.0:
        mult[max(change_week - dip_weeks, 0):change_week, 0] *= dip_ratio
    return mult, true_ratio


def _latent_activity(rng: np.random.Generator, season: np.ndarray, n_reps: int, change_week: int, *,
                     activity_rate_range: tuple[float, float], activity_ratio: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Expected activity per week: own levels, half the team's seasonality, the rep's step up.

    Returns
    -------
    a_mu : ndarray
        (week, rep) expected activities per week before any change.
    a_mult : ndarray
        (week, rep) multiplier: ``activity_ratio`` for the analysed rep from ``change_week`` on.
    """
    n_weeks = len(season)
    a_lo, a_hi = np.log(activity_rate_range[0]), np.log(activity_rate_range[1])
    a_base = np.exp(rng.uniform(a_lo, a_hi, n_reps))
    a_log = np.log(a_base)[None, :] + 0.5 * season[:, None] + _ar1(rng, n_weeks, n_reps, 0.5, 0.15)
    a_mult = np.ones((n_weeks, n_reps))
    a_mult[change_week:, 0] = activity_ratio
    return np.exp(a_log), a_mult


def _change_peers(rng: np.random.Generator, mult: np.ndarray, a_mult: np.ndarray, *, changed_peer_share: float,
                  changed_peer_ratio: float, activity_ratio: float, true_lag_weeks: int) -> list[str]:
    """Give a share of the peers an unannounced change of their own, at a random week.

    Each changed peer's activity steps up by ``activity_ratio`` and, ``true_lag_weeks`` later,
    its pipeline ramps to ``changed_peer_ratio`` over 0-4 weeks; ``mult`` and ``a_mult``
    ((week, rep) multipliers) are changed in place.

    Returns
    -------
    list of str
        The changed peers' ids.
    """
    n_weeks, n_reps = mult.shape
    changed = []
    n_changed = int(round(changed_peer_share * (n_reps - 1)))
    if n_changed > 0:
        who = rng.choice(np.arange(1, n_reps), size=n_changed, replace=False)
        for j in who:
            wk = int(rng.integers(4, n_weeks - 4))
            mult[:, j] = _ramp(n_weeks, wk + true_lag_weeks, int(rng.integers(0, 5)), changed_peer_ratio)
            a_mult[wk:, j] = activity_ratio
            changed.append(f"R{j:02d}")
    return changed


def _deal_values(rng: np.random.Generator, y: np.ndarray, deal_size_sigma: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Amounts of the ``y`` (week, rep) simulated deals and their sum per week and rep.

    Each rep's typical size is 10,000 x lognormal(0, 0.3); each deal is that times
    lognormal(-sigma^2/2, sigma), so its mean is the typical size.

    Returns
    -------
    value : ndarray
        (week, rep) pipeline value per week (currency units).
    amounts : ndarray
        Every deal's amount, by week then rep.
    """
    n_reps = y.shape[1]
    typical = 10_000.0 * np.exp(rng.normal(0.0, 0.3, n_reps))
    counts = y.astype(np.int64)
    amounts = np.repeat(np.broadcast_to(typical, counts.shape).ravel(), counts.ravel()) * np.exp(
        rng.normal(-deal_size_sigma**2 / 2, deal_size_sigma, int(counts.sum())))
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    value = np.bincount(cell, weights=amounts, minlength=counts.size).reshape(counts.shape)
    return value, amounts


@dataclass(frozen=True)
class TeamSpec:
    """How a simulated team behaves: every knob of :func:`simulate_team`, with its default.

    Attributes
    ----------
    n_reps : int
        Team size including the analysed rep.
    n_weeks : int
        Weeks of history in the panel.
    change_week : int, optional
        Week (row) the rep's activity change starts; default: uniform over the weeks
        that leave ``min_pre_weeks`` before and ``post_weeks_needed`` after.
    post_weeks_needed, min_pre_weeks : int
        Weeks the default ``change_week`` leaves after and before it.
    base_rate_range : (float, float)
        Range of the reps' own pipeline levels (opportunities per week), drawn log-uniform.
    effect_ratio : float
        Planted rate ratio on the rep's pipeline (1 = no effect).
    true_lag_weeks, ramp_weeks : int
        The effect starts ``true_lag_weeks`` after the change and ramps in over ``ramp_weeks``.
    nb_size : float
        Negative-binomial size of the weekly pipeline counts (variance mu + mu^2/size).
    rep_noise_sd, rep_noise_rho : float
        Stationary sd (log scale) and autocorrelation of each rep's own AR(1) noise.
    shock_sd, shock_rho : float
        The same for the team's shared AR(1) shock.
    quarter_spike, holiday_dip : float
        Log-scale seasonality of the last 2 weeks of each quarter and of the yearly 2-week holiday.
    dip_ratio, dip_weeks : float, int
        Ashenfelter's dip: the rep's pipeline is multiplied by ``dip_ratio`` in the
        ``dip_weeks`` weeks just before the change (then recovers by itself).
    changed_peer_share, changed_peer_ratio : float
        Share of peers who also changed at a random week, and their (unannounced) effect.
    activity_ratio : float
        How much the rep's activity rises at the change (1 = it did not change).
    activity_rate_range : (float, float)
        Range of the reps' activity levels (activities per week), drawn log-uniform.
    deal_size_sigma : float, optional
        Simulate pipeline value too: amounts = rep's typical size (10,000 x lognormal, sd
        0.3 across reps) x lognormal(-sigma^2/2, sigma) per deal. Drawn after everything
        else, so the counts are the same with or without it.
    """

    n_reps: int = 12
    n_weeks: int = 60
    change_week: int | None = None
    post_weeks_needed: int = 10
    base_rate_range: tuple[float, float] = (0.5, 10.0)
    effect_ratio: float = 1.0
    true_lag_weeks: int = 2
    ramp_weeks: int = 0
    nb_size: float = 4.0
    rep_noise_sd: float = 0.25
    rep_noise_rho: float = 0.6
    shock_sd: float = 0.2
    shock_rho: float = 0.6
    quarter_spike: float = 0.35
    holiday_dip: float = -0.8
    dip_ratio: float = 1.0
    dip_weeks: int = 0
    changed_peer_share: float = 0.0
    changed_peer_ratio: float = 1.5
    activity_ratio: float = 1.8
    activity_rate_range: tuple[float, float] = (3.0, 15.0)
    min_pre_weeks: int = 10
    deal_size_sigma: float | None = None


def simulate_team(rng: np.random.Generator, spec: TeamSpec | None = None, **knobs) -> TeamSim:
    """Simulate one team; the analysed rep is ``"R00"``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness; the draws happen in a fixed order, so the same
        generator state and spec give the same team.
    spec : TeamSpec, optional
        How the team behaves (default ``TeamSpec()``).
    **knobs
        Fields of :class:`TeamSpec` to change on ``spec`` (``simulate_team(rng, effect_ratio=1.5)``).

    Returns
    -------
    TeamSim
        Weekly panels from Monday 2024-01-01, one column per rep ``R00`` ...
    """
    s = replace(spec or TeamSpec(), **knobs)
    # the calls below draw from ``rng`` in turn: reordering them changes every simulated team
    change_week = s.change_week
    if change_week is None:
        change_week = _draw_change_week(rng, s.n_weeks, s.min_pre_weeks, s.post_weeks_needed)
    season, base, latent_mu = _latent_pipeline(
        rng, s.n_reps, s.n_weeks, base_rate_range=s.base_rate_range, rep_noise_sd=s.rep_noise_sd,
        rep_noise_rho=s.rep_noise_rho, shock_sd=s.shock_sd, shock_rho=s.shock_rho, quarter_spike=s.quarter_spike,
        holiday_dip=s.holiday_dip)
    mult, true_ratio = _planted_effect(s.n_weeks, s.n_reps, change_week, true_lag_weeks=s.true_lag_weeks,
                                       ramp_weeks=s.ramp_weeks, effect_ratio=s.effect_ratio, dip_weeks=s.dip_weeks,
                                       dip_ratio=s.dip_ratio)
    a_mu, a_mult = _latent_activity(rng, season, s.n_reps, change_week, activity_rate_range=s.activity_rate_range,
                                    activity_ratio=s.activity_ratio)
    changed = _change_peers(rng, mult, a_mult, changed_peer_share=s.changed_peer_share,
                            changed_peer_ratio=s.changed_peer_ratio, activity_ratio=s.activity_ratio,
                            true_lag_weeks=s.true_lag_weeks)
    y = _nb(rng, latent_mu * mult, s.nb_size)
    act = _nb(rng, a_mu * a_mult, 20.0)

    weeks = pd.date_range("2024-01-01", periods=s.n_weeks, freq="W-MON")
    cols = [f"R{i:02d}" for i in range(s.n_reps)]
    value, amounts = None, np.zeros(0)
    if s.deal_size_sigma is not None:
        weekly_value, amounts = _deal_values(rng, y, s.deal_size_sigma)
        value = pd.DataFrame(weekly_value, index=weeks, columns=cols)
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
