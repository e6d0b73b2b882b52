"""Did the rep's activity change move pipeline? (issue #4)

Whether the activity itself changed (and the commitment was kept) is
:func:`coachnb.adherence.activity_change`. This module provides

* :func:`pipeline_impact` -- did an outcome (new opportunities by default) move beyond what
  the team went through, with a placebo-calibrated test (:class:`PipelineImpact`), tuned by
  :class:`ImpactSettings`;
* :func:`assess_commitment` -- both, with the activity gate wired, plus secondary outcomes
  (:class:`CommitmentAssessment`); :func:`deal_units` puts pipeline value on a count-like scale;
* :func:`bh_adjust` -- Benjamini-Hochberg q-values for a team overview;
* :func:`changed_peers` -- teammates whose own activity changed in the weeks the test reads
  (:func:`analysed_rows`), to leave out of the comparison.

The method, its assumptions and its generated calibration table are in ``docs/methods.md``;
ideas tried and not kept, with their measured effect, in ``benchmarks/NOTES.md``.

Panel conventions (independent of how the data was loaded):

* ``activity``: DataFrame, index = week Timestamps (one row per week, consecutive, sorted),
  columns = rep_id, values = weekly count of the committed activity;
* ``outcome``: same shape; weekly opportunities created by default.

A week label is the first day of the week. Dates passed in (``start``, ``end``) are mapped
to the first week label on or after them (``start``) or the last week label on or before
them (``end``). Weeks where a rep was not yet on the team should be NaN; a peer with any
NaN is left out of the comparison group. Rates are counts per week throughout. The post
window is every observed week after the lag, up to ``max_post_weeks`` (:class:`ImpactSettings`).
"""
from __future__ import annotations

import collections
import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from .adherence import (ZERO_OFFSET, ActivityChange, activity_change, ar_mean_factor, changes_found, week_index,
                        week_on_or_after)
from .formatting import fmt_rate, fmt_ratio, plural

VERDICTS = ("moved", "no meaningful change", "not enough data to tell", "activity did not change")
#: label of the secondary outcome pipeline value (in deal units, see :func:`deal_units`)
PIPELINE_VALUE = "pipeline value"


# ------------------------------------------------------------- (2) the placebo machinery
def _cumsum0(x: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading zero row: ``cs[t]`` = sum of rows ``< t``."""
    return np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)], axis=0)


#: weekly count added to a team's week so a week with no team events still has a shape (Pearson residuals)
TEAM_FLOOR = 0.5
#: largest lag-1 autocorrelation a unit's weeks are taken to have (as the activity test's)
MAX_RHO = 0.6


def _window_fit(y: np.ndarray, team: np.ndarray, lo, hi, offset) -> tuple:
    """One window's sums and Pearson residual sums of a unit whose weekly mean is ``a x team_t``.

    ``y``, ``team``: (T,) or (T, K) weekly counts; ``lo``/``hi`` (n,) row bounds (``[lo, hi)``);
    ``offset``: events added to the window's sum (a zero-count window keeps a finite log).
    Returns (S, team sum, a, sum of r_t^2, sum of r_t r_t+1), each (n,) or (n, K), with
    ``r_t = (y_t - a team_t) / sqrt(a team_t)`` the Pearson residuals.
    """
    S, ST = _cumsum0(y), _cumsum0(team)
    S, ST = S[hi] - S[lo], ST[hi] - ST[lo]
    a = (S + offset) / ST
    Q = _cumsum0(y * y / team)
    squares = (Q[hi] - Q[lo]) / a - 2 * S + a * ST
    # sum over t in [lo, hi - 1) of r_t r_t+1, expanded in sums of the counts and the team's
    root = np.sqrt(team[:-1] * team[1:])
    parts = [_cumsum0(x) for x in (y[:-1] * y[1:] / root, y[:-1] * np.sqrt(team[1:] / team[:-1]),
                                    y[1:] * np.sqrt(team[:-1] / team[1:]), root)]
    start = np.minimum(lo, len(team) - 1)  # a one-week window at the end has no pair
    end = np.maximum(hi - 1, start)
    yy, yt, ty, tt = (c[end] - c[start] for c in parts)
    return S, ST, a, squares, yy / a - yt - ty + a * tt


def _offset_statistic(y, team, d, pre, gap, lag, horizon) -> tuple:
    """A unit's log rate ratio against its team's, and its variance, at start rows ``d`` (vectorized).

    Baseline rows ``[d - gap - pre, d - gap)``, post rows ``[d + lag, d + lag + horizon)``. The
    unit's weekly mean is ``a x team_t`` in each window (the team's weekly shape taken out in
    full); the statistic is ``log(a_post / a_pre)``. Its variance is the unit's own dispersion
    and lag-1 autocorrelation (Pearson residuals, both windows pooled; ``docs/methods.md``)
    applied to the Poisson variance of the two sums, plus the team sums' Poisson variance.
    Returns (s, v, log team ratio, baseline sum, post sum, dispersion of the post sum), each
    shaped ``(len(d),) + y.shape[1:]``.
    """
    team = team + TEAM_FLOOR
    d = np.asarray(d)
    S1, T1, a1, sq1, lag1 = _window_fit(y, team, d - gap - pre, d - gap, ZERO_OFFSET * pre / horizon)
    S2, T2, a2, sq2, lag2 = _window_fit(y, team, d + lag, d + lag + horizon, ZERO_OFFSET)
    phi = np.maximum(1.0, (sq1 + sq2) / max(pre + horizon - 2, 1))
    rho = np.clip(np.nan_to_num((lag1 + lag2) / np.maximum(sq1 + sq2, 1e-12)), 0.0, MAX_RHO)
    f_post, f_pre = ar_mean_factor(horizon, rho), ar_mean_factor(pre, rho)
    v = phi * (f_post / (S2 + ZERO_OFFSET) + f_pre / (S1 + ZERO_OFFSET)) + 1 / T2 + 1 / T1
    return np.log(a2 / a1), v, np.log((T2 / horizon) / (T1 / pre)), S1, S2, phi * f_post


def _baseline_dispersion(y, team, t0: int, pre: int, gap: int) -> float:
    """The unit's dispersion (as in :func:`_offset_statistic`, no autocorrelation) from its baseline weeks alone."""
    *_, squares, _ = _window_fit(y, team + TEAM_FLOOR, np.array([t0 - gap - pre]), np.array([t0 - gap]),
                                 ZERO_OFFSET)
    return float(max(1.0, squares[0] / max(pre - 1, 1)))


def _rep_statistic(rep_y, peers_y, d, pre, gap, lag, horizon) -> tuple:
    """The rep's :func:`_offset_statistic` at start rows ``d`` against the sum of the peers."""
    return _offset_statistic(np.nan_to_num(rep_y), peers_y.sum(axis=1), d, pre, gap, lag, horizon)


@dataclass
class _Placebo:
    z: np.ndarray  # studentized placebo statistics, sorted ascending
    df: float = math.inf  # degrees of freedom of a unit's dispersion: the Student's t floor of the test
    abs_z: np.ndarray = field(init=False)  # their absolute values, sorted ascending

    def __post_init__(self):
        self.abs_z = np.sort(np.abs(self.z), kind="stable")


def _placebo_null(rep_y, peers_y, pre, gap, lag, horizon, own_until) -> _Placebo | None:
    """Pooled placebo null: every peer at every feasible date + the rep at its earlier dates.

    A value is a unit's :func:`_offset_statistic` divided by its own standard error: each peer
    against the sum of the other peers (never the rep), the rep against all peers. The rep's
    own dates are those whose post window ends on or before row ``own_until`` and whose
    baseline lies inside its observed history. None when the pool is empty.
    """
    T = len(rep_y)
    parts = []
    d = np.arange(gap + pre, T - lag - horizon + 1)
    if len(d) and peers_y.shape[1] >= 2:
        s, v, *_ = _offset_statistic(peers_y, peers_y.sum(axis=1, keepdims=True) - peers_y, d, pre, gap, lag,
                                     horizon)
        parts.append(np.ravel(s / np.sqrt(v)))
    first = int(np.argmax(~np.isnan(rep_y))) if np.any(~np.isnan(rep_y)) else T
    d_own = np.arange(first + gap + pre, own_until - lag - horizon + 1)
    if len(d_own) and peers_y.shape[1] >= 1:
        s, v, *_ = _rep_statistic(rep_y, peers_y, d_own, pre, gap, lag, horizon)
        parts.append(s / np.sqrt(v))
    if not parts:
        return None
    return _Placebo(z=np.sort(np.concatenate(parts), kind="stable"), df=max(pre + horizon - 2, 1))


def _rank_p(z0: float, pl: _Placebo) -> tuple[float, float, float]:
    """(two-sided, upper, lower) p-values of ``z0``: its rank in the placebo pool (with the +1),
    never below Student's t with the pool's ``df``.

    Two-sided ranks ``|z0|`` among the pool's absolute values: the placebo statistics are
    skewed (a window's count can fall to 0 but not below), and ranking the distance from 0
    measured more power at the same size than doubling the smaller tail. The t floor guards
    small pools, whose strongly overlapping windows spread less than the statistic does
    (``docs/methods.md``).
    """
    n = len(pl.z)
    n_ge = n - int(np.searchsorted(pl.z, z0, side="left"))
    n_le = int(np.searchsorted(pl.z, z0, side="right"))
    n_abs = n - int(np.searchsorted(pl.abs_z, abs(z0), side="left"))
    t_up, t_dn = float(stats.t.sf(z0, pl.df)), float(stats.t.cdf(z0, pl.df))
    return (min(1.0, max((1 + n_abs) / (n + 1), 2 * min(t_up, t_dn))), max((1 + n_ge) / (n + 1), t_up),
            max((1 + n_le) / (n + 1), t_dn))


def _critical_z(pl: _Placebo, alpha: float) -> tuple[float, float]:
    """Acceptance region [-c, c] of the two-sided test of :func:`_rank_p` at level alpha.

    A statistic is rejected (p <= alpha) exactly when it lies strictly outside this
    region, so the interval obtained by inverting it agrees with the p-value.
    """
    n = len(pl.abs_z)
    k = math.floor(alpha * (n + 1) - 1) + 1  # fewest placebo values beyond |z| to keep p > alpha
    if k <= 0 or k > n:
        return -math.inf, math.inf
    c = max(float(pl.abs_z[n - k]), float(stats.t.ppf(1 - alpha / 2, pl.df)))
    return -c, c


# ----------------------------------------------------------------- (2) pipeline impact
@dataclass
class PipelineImpact:
    """Did pipeline move after the rep's activity change? Rates are counts per week.

    Attributes
    ----------
    rate_ratio : float
        Post rate / counterfactual rate (own baseline x the team's own rate ratio). NaN when not computable.
    ci_low, ci_high : float
        (1 - alpha) interval from inverting the placebo rank test.
    abs_diff_per_week : float
        post_rate - counterfactual_rate.
    p_value : float
        Two-sided rank p-value in the pooled placebo null.
    mde_ratio : float
        Smallest upward rate ratio detected with 80% power at this alpha, for this rep's
        baseline, peers and post weeks.
    n_pre_weeks, n_post_weeks : int
        Baseline weeks used; post weeks used (every observed week after the lag, at most
        ``max_post_weeks``; see :func:`_post_weeks`).
    n_peers : int
        Unchanged peers in the comparison group.
    n_placebo : int
        Size of the pooled placebo null.
    pre_rate, post_rate, counterfactual_rate : float
    naive_rate_ratio, naive_p_value : float
        Plain before/after Poisson test (conditional binomial, same windows), which
        ignores overdispersion, autocorrelation and team-wide changes. For benchmarks only.
    gates : dict of str -> str
        Gate name -> ``"passed"``, ``"not checked"`` or ``"failed: <reason>"``. Gates:
        ``activity_changed``, ``pre_weeks``, ``post_horizon``, ``peers``, ``baseline_dip``.
    verdict : str
        One of :data:`VERDICTS`.
    direction : str or None
        ``"up"``/``"down"`` when the verdict is ``"moved"``.
    weeks_needed : int or None
        Roughly how many more post weeks would bring the MDE down to ``target_mde``,
        when the verdict is "not enough data to tell" (None if never within 2 years).
    sentence : str
        One plain sentence for the coaching report.
    dip_ratio : float
        Peer-adjusted rate of the last ``dip_weeks`` before the change vs the rep's
        earlier history (below 1 = a dip).
    n_changed_peers : int
        Teammates :func:`assess_commitment` left out because their own activity changed
        somewhere in the analysed weeks (found by :func:`changed_peers`; those named in
        ``excluded_peers`` are not counted); 0 from :func:`pipeline_impact` itself.
    changed_peer_ids : tuple
        Their ids, so a caller can rebuild the same comparison (e.g. the placebo null a
        workbook shows); never shown in a report.
    """

    rate_ratio: float
    ci_low: float
    ci_high: float
    abs_diff_per_week: float
    p_value: float
    mde_ratio: float
    n_pre_weeks: int
    n_post_weeks: int
    n_peers: int
    n_placebo: int
    pre_rate: float
    post_rate: float
    counterfactual_rate: float
    naive_rate_ratio: float
    naive_p_value: float
    gates: dict = field(default_factory=dict)
    verdict: str = "not enough data to tell"
    direction: str | None = None
    weeks_needed: int | None = None
    sentence: str = ""
    dip_ratio: float = float("nan")
    n_changed_peers: int = 0
    changed_peer_ids: tuple = ()

    @property
    def failed_gates(self) -> list[str]:
        return [g for g, s in self.gates.items() if s.startswith("failed")]


def _naive_poisson_test(pre_sum: float, post_sum: float, pre: int, horizon: int) -> tuple[float, float]:
    """Plain before/after Poisson rate test: post count | total ~ Binomial(total, H/(H+P))."""
    n = int(round(pre_sum + post_sum))
    rr = (post_sum / horizon) / (pre_sum / pre) if pre_sum > 0 else float("inf") if post_sum > 0 else float("nan")
    if n == 0:
        return rr, 1.0
    p = stats.binomtest(int(round(post_sum)), n, horizon / (horizon + pre)).pvalue
    return float(rr), float(p)


def _mde_factor(pl: _Placebo, alpha: float, power: float = 0.8) -> float:
    """Upward minimum detectable log rate ratio per unit of standard error: the shift that puts
    ``power`` of the null past z_hi (``inf`` when the pool can't reach ``alpha``)."""
    _, z_hi = _critical_z(pl, alpha)
    if not np.isfinite(z_hi):
        return math.inf
    return z_hi - float(np.quantile(pl.z, 1 - power))


@dataclass(frozen=True)
class ImpactSettings:
    """The tuning of the "did it move pipeline?" test: windows, levels and minimum data.

    One frozen value, shared by every call that should be judged the same way; change a field
    with ``dataclasses.replace(settings, horizon_weeks=13)``. All windows are in weeks.

    Attributes
    ----------
    lag_weeks : int
        Weeks after the change before an effect on pipeline can show (the post window starts
        here).
    horizon_weeks : int
        Post weeks the verdict needs (gate ``post_horizon``; the shortest post window judged).
    max_post_weeks : int
        Longest post window: every observed week after the lag is used, up to this many (at
        least ``horizon_weeks``), as long as the placebo pool keeps :data:`MIN_PLACEBO_DATES`
        dates and :data:`MIN_PLACEBO_VALUES` peer values (a longer window leaves fewer dates
        whose windows fit in the data).
    gap_weeks : int
        Weeks right before the change kept out of the baseline (Ashenfelter's dip).
    max_pre_weeks : int
        Longest baseline used (older weeks say little about now).
    min_pre_weeks : int
        Baseline weeks required (gate ``pre_weeks``).
    min_peers : int
        Unchanged peers required (gate ``peers``; the placebo pool must also allow p <= alpha).
    alpha : float
        Test level; intervals are (1 - alpha).
    equivalence_margin : float
        m in the band [1 - m, 1 + m] of rate ratios that counts as "no meaningful change".
    dip_weeks : int
        The last ``dip_weeks`` before the change are compared with the rep's earlier history
        (gate ``baseline_dip``); 0 turns the check off.
    dip_alpha : float
        One-sided level of that comparison; a ratio below 0.8 with p <= dip_alpha fails the gate.
    target_mde : float
        Rate ratio that ``weeks_needed`` aims to make detectable.
    leave_out_changed_peers : bool
        :func:`assess_commitment` also leaves out teammates whose committed activity shows a
        change of its own anywhere in the analysed weeks (:func:`changed_peers`), recorded or
        not: their own change would otherwise move the team's shape the rep is judged against.
    """

    lag_weeks: int = 2
    horizon_weeks: int = 8
    max_post_weeks: int = 26
    gap_weeks: int = 2
    max_pre_weeks: int = 26
    min_pre_weeks: int = 8
    min_peers: int = 4
    alpha: float = 0.05
    equivalence_margin: float = 0.15
    dip_weeks: int = 6
    dip_alpha: float = 0.05
    target_mde: float = 1.5
    leave_out_changed_peers: bool = True

    def __post_init__(self):
        # fail at construction, not with an index error deep in the window arithmetic
        for name in ("lag_weeks", "gap_weeks", "max_pre_weeks", "max_post_weeks", "min_pre_weeks", "min_peers", "dip_weeks"):
            if getattr(self, name) < 0:
                raise ValueError(f"ImpactSettings.{name} must be >= 0, got {getattr(self, name)}")
        if self.horizon_weeks < 1:
            raise ValueError(f"ImpactSettings.horizon_weeks must be >= 1, got {self.horizon_weeks}")
        if not 0 < self.alpha < 1 or not 0 < self.dip_alpha < 1:
            raise ValueError(f"ImpactSettings.alpha and dip_alpha must lie in (0, 1), got {self.alpha}, "
                             f"{self.dip_alpha}")


#: the settings the reports use
DEFAULT_SETTINGS = ImpactSettings()


@dataclass
class _Case:
    """One rep's test as arrays and row positions: what every step of :func:`pipeline_impact` reads.

    Rows are week positions in the panel; ``pre`` / ``horizon`` are window lengths in weeks.
    """

    rep_y: np.ndarray  # the rep's weekly outcome, NaN before the rep joined
    peers: np.ndarray  # (weeks x peers) outcome of the unchanged peers with no missing week
    n_dropped: int  # candidate peers left out for missing weeks
    t0: int  # row of the change week
    first: int  # the rep's first observed row
    pre: int  # baseline weeks used (at most max_pre_weeks)
    pre_before_dip: int  # baseline weeks available before the last dip_weeks (dip check and its confirmation)
    n_post_avail: int  # post weeks observed so far, at most the cap (max_post_weeks, at least horizon_weeks)
    horizon: int  # post weeks used (0 when none observed yet)
    cs_r: np.ndarray  # cumulative sums of rep_y (NaN as 0) with a leading zero row
    cs_p: np.ndarray  # cumulative sums of peers with a leading zero row

    @property
    def n_peers(self) -> int:
        return self.peers.shape[1]

    @property
    def T(self) -> int:
        return len(self.rep_y)


def _case(outcome: pd.DataFrame, rep_id, start, cfg: ImpactSettings, peers: list | None,
          excluded_peers: list | None) -> _Case:
    """The rep's and the usable peers' weekly outcome as arrays, with the windows' rows and lengths."""
    idx = week_index(outcome.index)
    if rep_id not in outcome.columns:
        raise KeyError(f"rep {rep_id!r} not in the outcome panel")
    T = len(idx)
    t0 = week_on_or_after(idx, start)
    rep_y = outcome[rep_id].to_numpy(dtype=float)
    candidates = [c for c in (peers if peers is not None else outcome.columns.tolist()) if c != rep_id]
    excluded = set(excluded_peers or [])
    candidates = [c for c in candidates if c not in excluded]
    peer_block = outcome[candidates].to_numpy(dtype=float) if candidates else np.zeros((T, 0))
    complete = ~np.isnan(peer_block).any(axis=0)
    usable = peer_block[:, complete]
    observed = ~np.isnan(rep_y)
    first = int(np.argmax(observed)) if observed.any() else T
    cap = max(cfg.max_post_weeks, cfg.horizon_weeks)
    n_post_avail = int(max(0, min(T - t0 - cfg.lag_weeks, cap)))
    pre = int(min(cfg.max_pre_weeks, max(0, t0 - cfg.gap_weeks - first)))
    return _Case(rep_y=rep_y, peers=usable, n_dropped=int((~complete).sum()), t0=t0, first=first, pre=pre,
                 pre_before_dip=int(min(cfg.max_pre_weeks, max(0, t0 - cfg.dip_weeks - first))),
                 n_post_avail=n_post_avail, horizon=_post_weeks(n_post_avail, T, pre, int(complete.sum()), cfg),
                 cs_r=_cumsum0(np.nan_to_num(rep_y)), cs_p=_cumsum0(usable))


#: fewest placebo dates (per peer) a post window longer than ``horizon_weeks`` may leave: with
#: fewer, the pool's values come from a few strongly overlapping windows (see NOTES)
MIN_PLACEBO_DATES = 26


#: fewest peer placebo values (dates x peers) a post window longer than ``horizon_weeks`` may leave:
#: a small team's pool of few peers at few dates let false "moved" reach 6.3% (150: 5.8%; see NOTES)
MIN_PLACEBO_VALUES = 300


def _post_weeks(n_post_avail: int, T: int, pre: int, n_peers: int, cfg: ImpactSettings) -> int:
    """Post weeks the test uses: every observed one up to the cap, shortened (not below
    ``horizon_weeks``) until the peers' placebo dates number at least :data:`MIN_PLACEBO_DATES`
    and their values (dates x peers) :data:`MIN_PLACEBO_VALUES`.

    Depends on the panel's length, the number of peers and the windows only, never on the
    outcome's values.
    """
    def dates(h):
        return T - cfg.lag_weeks - h - cfg.gap_weeks - pre + 1

    h = n_post_avail
    while h > cfg.horizon_weeks and (dates(h) < MIN_PLACEBO_DATES or dates(h) * n_peers < MIN_PLACEBO_VALUES):
        h -= 1
    return h


def _data_gates(case: _Case, cfg: ImpactSettings, activity_changed: bool | None) -> dict[str, str]:
    """Gates ``activity_changed``, ``pre_weeks`` and ``post_horizon``: ``"passed"``, ``"not checked"``
    or ``"failed: <reason>"``."""
    return {
        "activity_changed": ("not checked" if activity_changed is None else "passed" if activity_changed else
                             "failed: the change in the committed activity can't be confirmed"),
        "pre_weeks": ("passed" if case.pre >= cfg.min_pre_weeks else
                      f"failed: only {case.pre} baseline weeks before the change (need {cfg.min_pre_weeks})"),
        "post_horizon": ("passed" if case.n_post_avail >= cfg.horizon_weeks else
                         f"failed: {case.n_post_avail} of {cfg.horizon_weeks} post weeks observed so far"),
    }


def _null_for(case: _Case, cfg: ImpactSettings) -> _Placebo | None:
    """The pooled placebo null for the rep's windows (None without baseline, 2 peers or room for one window).

    Built for the post weeks usable now, or for the full horizon (for the MDE) when none are
    observed yet.
    """
    if case.pre < 1 or case.n_peers < 2:
        return None
    h_null = case.horizon if case.horizon >= 1 else cfg.horizon_weeks
    if cfg.gap_weeks + case.pre + cfg.lag_weeks + h_null > case.T:
        return None
    return _placebo_null(case.rep_y, case.peers, case.pre, cfg.gap_weeks, cfg.lag_weeks, h_null, own_until=case.t0)


def _peers_gate(case: _Case, cfg: ImpactSettings, n_placebo: int, enough_pool: bool) -> str:
    """Gate ``peers``: enough unchanged peers, and a placebo pool large enough for p <= alpha."""
    if case.n_peers < cfg.min_peers:
        gate = f"failed: only {case.n_peers} unchanged peers to compare with (need {cfg.min_peers})"
    elif not enough_pool:
        need = math.ceil(1 / cfg.alpha) - 1
        gate = f"failed: only {n_placebo} placebo comparisons (need {need} for a test at {cfg.alpha:g})"
    else:
        gate = "passed"
    if case.n_dropped:
        gate += f" ({case.n_dropped} peers with missing weeks left out)"
    return gate


def _dip_check(case: _Case, cfg: ImpactSettings, label: str) -> tuple[float, str, str]:
    """Were the last ``dip_weeks`` before the change unusually low against the rep's earlier history?

    The same peer-adjusted statistic and placebo machinery, one-sided. Returns (dip ratio,
    team-adjusted, NaN when not computed; the reason when flagged, else ""; gate
    ``baseline_dip``).
    """
    k, hist = cfg.dip_weeks, case.pre_before_dip
    if not (k >= 1 and hist >= 4 and case.n_peers >= 2 and case.t0 - k >= 0):
        return float("nan"), "", "not checked"
    dpl = _placebo_null(case.rep_y, case.peers, hist, 0, 0, k, own_until=case.t0 - k)
    s, v, *_ = _rep_statistic(case.rep_y, case.peers, np.array([case.t0 - k]), hist, 0, 0, k)
    dip_ratio = float(np.exp(s[0]))
    if dpl is None or len(dpl.z) < 19:  # too few placebo values for a one-sided test at 5%
        return dip_ratio, "", "not checked"
    _, _, p_low = _rank_p(float(s[0] / math.sqrt(v[0])), dpl)
    if p_low <= cfg.dip_alpha and dip_ratio < 0.8:
        dip_low = (f"{label} in the {k} weeks before the change were "
                   f"unusually low ({dip_ratio:.2f}× the rep's earlier level, team-adjusted)")
        return dip_ratio, dip_low, f"failed: {dip_low}"
    return dip_ratio, "", "passed"


def _estimate(case: _Case, cfg: ImpactSettings, pl: _Placebo, z_lo: float, z_hi: float,
              pre_rate: float) -> tuple[dict, float]:
    """The rep's statistic against the null: rate ratio, rank p-value, interval, counterfactual, naive test.

    The interval inverts the rank test (``z_lo``, ``z_hi`` from :func:`_critical_z`), so it
    excludes 1 exactly when p <= alpha. Rates per week; the counterfactual is the baseline
    rate (``pre_rate``) x the team's own rate ratio. Returns (the result's fields, the rep's
    statistic: log rate ratio against the counterfactual).
    """
    s, v, log_trend, u_pre, u_post, _ = (float(x[0]) for x in _rep_statistic(
        case.rep_y, case.peers, np.array([case.t0]), case.pre, cfg.gap_weeks, cfg.lag_weeks, case.horizon))
    se_now = math.sqrt(v)
    p, _, _ = _rank_p(s / se_now, pl)
    res = dict(rate_ratio=math.exp(s), p_value=p, post_rate=u_post / case.horizon,
               ci_low=math.exp(s - se_now * z_hi) if np.isfinite(z_hi) else 0.0,
               ci_high=math.exp(s - se_now * z_lo) if np.isfinite(z_lo) else math.inf)
    res["counterfactual_rate"] = pre_rate * math.exp(log_trend)
    res["abs_diff_per_week"] = res["post_rate"] - res["counterfactual_rate"]
    res["naive_rate_ratio"], res["naive_p_value"] = _naive_poisson_test(u_pre, u_post, case.pre, case.horizon)
    return res, s


def _dip_confirmed(case: _Case, cfg: ImpactSettings, stat: float, dip_low: str) -> str | None:
    """Gate ``baseline_dip`` text when a significant change also shows against the baseline before the dip.

    A flagged dip blocks a "moved" verdict unless the change also shows, in the same
    direction, against the baseline that ends where the dip starts (so a rebound alone cannot
    pass). Only ever turns a failed gate into a passed one when both tests reject: never less
    strict than refusing outright on the flagged, more powerful when the dip was chance.
    ``stat``: the rep's statistic against the usual baseline (its sign is the direction);
    ``dip_low``: why the dip was flagged. Returns the gate's new text, or None when the change
    does not show (the gate stays failed).
    """
    pre2 = case.pre_before_dip
    if not (cfg.dip_weeks > cfg.gap_weeks and pre2 >= cfg.min_pre_weeks):
        return None
    pl2 = _placebo_null(case.rep_y, case.peers, pre2, cfg.dip_weeks, cfg.lag_weeks, case.horizon, own_until=case.t0)
    if pl2 is None or not np.isfinite(_critical_z(pl2, cfg.alpha)[1]):
        return None
    s2, v2, *_ = (float(x[0]) for x in _rep_statistic(case.rep_y, case.peers, np.array([case.t0]), pre2,
                                                       cfg.dip_weeks, cfg.lag_weeks, case.horizon))
    p2, _, _ = _rank_p(s2 / math.sqrt(v2), pl2)
    if p2 <= cfg.alpha and (s2 > 0) == (stat > 0):
        return f"passed: {dip_low}, but the change also shows against the {pre2} weeks before them (p = {p2:.3f})"
    return None


def _mde_curve(case: _Case, cfg: ImpactSettings, pl: _Placebo | None, enough_pool: bool):
    """Minimum detectable upward rate ratio (80% power at alpha) as a function of post weeks ``h``.

    The rep's post sum and the team's are expected at their baseline rates; the rep's
    dispersion is the one the test uses now (from its baseline alone before any post week is
    observed). Vectorized over ``h``: the weeks-needed search asks for every ``h`` up to two
    years. Returns a function of an array of week counts giving an array of ratios (``inf``
    where the pool can't reach alpha).
    """
    pre, gap, t0 = case.pre, cfg.gap_weeks, case.t0
    factor = _mde_factor(pl, cfg.alpha) if pl is not None and pre >= 1 and enough_pool else math.inf
    if not np.isfinite(factor):
        return lambda h: np.full(np.atleast_1d(np.asarray(h, dtype=float)).shape, math.inf)
    team = case.peers.sum(axis=1)
    u_pre = case.cs_r[t0 - gap] - case.cs_r[t0 - gap - pre]
    t_pre = float(np.sum(team[t0 - gap - pre:t0 - gap])) + TEAM_FLOOR * pre
    if case.horizon >= 1:
        phi = float(_rep_statistic(case.rep_y, case.peers, np.array([t0]), pre, gap, cfg.lag_weeks, case.horizon)[-1][0])
    else:
        phi = _baseline_dispersion(np.nan_to_num(case.rep_y), team, t0, pre, gap)

    def mde_at(h) -> np.ndarray:
        h = np.atleast_1d(np.asarray(h, dtype=float))
        v = (phi * (1 / (u_pre * h / pre + ZERO_OFFSET) + 1 / (u_pre + ZERO_OFFSET))
             + 1 / (t_pre * h / pre) + 1 / t_pre)
        return np.exp(np.sqrt(v) * factor)

    return mde_at


def _verdict(res: dict, gates: dict[str, str], cfg: ImpactSettings, activity_changed: bool | None
             ) -> tuple[str, str | None]:
    """(verdict, direction) from the estimate and the gates, by the rules in ``docs/methods.md``."""
    rr, lo, hi, p = res["rate_ratio"], res["ci_low"], res["ci_high"], res["p_value"]
    if activity_changed is False:
        return "activity did not change", None
    if any(st.startswith("failed") for st in gates.values()) or not np.isfinite(rr):
        return "not enough data to tell", None
    if p <= cfg.alpha:
        return "moved", "up" if rr > 1 else "down"
    if lo >= 1 - cfg.equivalence_margin and hi <= 1 + cfg.equivalence_margin:
        return "no meaningful change", None
    return "not enough data to tell", None


def _weeks_needed(mde_at, have: int, cfg: ImpactSettings) -> int | None:
    """More post weeks (beyond ``have``) until the MDE reaches ``target_mde`` and the horizon is full;
    None if not within two years."""
    hs = np.arange(max(have, 1), 105)
    reach = (mde_at(hs) <= cfg.target_mde) & (hs >= cfg.horizon_weeks)
    return int(hs[np.argmax(reach)]) - have if reach.any() else None


def analysed_rows(index: pd.Index, start, settings: ImpactSettings = DEFAULT_SETTINGS) -> tuple[int, int]:
    """Rows ``[first, end)`` of a weekly panel the test at ``start`` can read: the longest baseline
    with its gap, through the longest post window after the lag (clipped to the panel)."""
    t0 = week_on_or_after(week_index(index), start)
    post = max(settings.max_post_weeks, settings.horizon_weeks)
    return (max(0, t0 - settings.gap_weeks - settings.max_pre_weeks),
            min(len(index), t0 + settings.lag_weeks + post))


def changed_peers(activity: pd.DataFrame, rep_id, start, settings: ImpactSettings = DEFAULT_SETTINGS,
                  peers: list | None = None) -> list:
    """Teammates whose own weekly activity changed somewhere in the weeks the test at ``start`` reads.

    Each candidate's activity over :func:`analysed_rows` (missing weeks left out) is searched
    for one change with :func:`coachnb.adherence.detect_activity_change` (its permutation test
    at 5%). Such a teammate went through a change of their own, recorded or not, so it is no
    clean comparison for the rep. ``peers``: the candidates (default every other column).
    Returns the ids found, in the panel's order.
    """
    lo, hi = analysed_rows(activity.index, start, settings)
    present = set(activity.columns.tolist())
    candidates = [c for c in (peers if peers is not None else activity.columns.tolist()) if c != rep_id and c in present]
    # only the candidates are scanned: a column's answer does not depend on the others in its block
    flags = _change_flags(activity.iloc[lo:hi][candidates])
    return [c for c in candidates if flags.get(c, False)]


#: teammates' series already scanned (:func:`_change_flags`), by their content: answer
_FLAGS: collections.OrderedDict = collections.OrderedDict()
FLAGS_KEPT = 50_000


def _change_flags(block: pd.DataFrame) -> dict:
    """Column -> whether its activity in ``block`` (weeks x reps) shows a change of its own.

    A column's answer depends on its values alone (the scan's permutations are fixed), so it is
    kept for the last :data:`FLAGS_KEPT` series, keyed by their bytes: reps whose commitments
    start the same week ask about the same teammates over the same weeks.
    """
    values = block.to_numpy(dtype=float)
    keys = [hashlib.blake2b(values[:, j].tobytes(), digest_size=16).digest() for j in range(values.shape[1])]
    todo = np.array([j for j, key in enumerate(keys) if key not in _FLAGS], dtype=int)
    if len(todo):
        found = np.zeros(len(todo), dtype=bool)
        # columns missing the same weeks (the same hire date) are scanned together, on their observed weeks
        patterns, group = np.unique(np.isnan(values[:, todo]).T, axis=0, return_inverse=True)
        for g, missing in enumerate(patterns):
            cols = np.flatnonzero(group.ravel() == g)
            found[cols] = changes_found(values[~missing][:, todo[cols]], PEER_CHANGE_MIN_WEEKS)[0]
        for j, flag in zip(todo.tolist(), found.tolist()):
            _FLAGS[keys[j]] = flag
    out = {}
    for c, key in zip(block.columns.tolist(), keys):
        _FLAGS.move_to_end(key)
        out[c] = _FLAGS[key]
    while len(_FLAGS) > FLAGS_KEPT:
        _FLAGS.popitem(last=False)
    return out


#: shortest stretch on either side of a teammate's change that :func:`changed_peers` looks for
PEER_CHANGE_MIN_WEEKS = 6


def pipeline_impact(outcome: pd.DataFrame, rep_id, start, settings: ImpactSettings = DEFAULT_SETTINGS, *,
                    peers: list | None = None, excluded_peers: list | None = None,
                    activity_changed: bool | None = None, label: str = "new opportunities") -> PipelineImpact:
    """Did the rep's pipeline move after the activity change, beyond what the team went through?

    Parameters
    ----------
    outcome : DataFrame
        Weekly panel (index = consecutive week Timestamps, columns = rep_id), counts per week.
    rep_id : column label
        The rep who changed.
    start : date-like
        Week the activity change started (mapped to the first week label on or after it).
    settings : ImpactSettings
        Windows, levels and minimum data of the test (default :data:`DEFAULT_SETTINGS`).
    peers : list, optional
        Unchanged comparison reps; default all other columns.
    excluded_peers : list, optional
        Peers to leave out (e.g. they changed too).
    activity_changed : bool or None
        Result of :func:`coachnb.adherence.activity_change`; False -> verdict "activity did not change";
        None -> gate not checked.
    label : str
        Plural noun of the outcome for the sentence.

    Returns
    -------
    PipelineImpact
        With every gate named. A flagged baseline dip fails gate ``baseline_dip`` unless the
        change is significant AND also significant in the same direction against a baseline
        ending ``dip_weeks`` before ``start``, in which case the gate passes with that noted.

    Notes
    -----
    Assumes unchanged peers are comparable in *trend* (not level) with what the rep would have
    done without the change, that they did not change at the same time, and that the effect
    acts multiplicatively on the weekly rate. The method: ``docs/methods.md``.
    """
    cfg = settings
    case = _case(outcome, rep_id, start, cfg, peers, excluded_peers)
    gates = _data_gates(case, cfg, activity_changed)
    nan = float("nan")
    res = dict(rate_ratio=nan, ci_low=nan, ci_high=nan, abs_diff_per_week=nan, p_value=nan, mde_ratio=nan,
               n_pre_weeks=case.pre, n_post_weeks=case.horizon, n_peers=case.n_peers, n_placebo=0, pre_rate=nan,
               post_rate=nan, counterfactual_rate=nan, naive_rate_ratio=nan, naive_p_value=nan)
    pl = _null_for(case, cfg)
    if case.pre >= 1 and case.n_peers >= 2:
        t0, gap = case.t0, cfg.gap_weeks
        res["pre_rate"] = float((case.cs_r[t0 - gap] - case.cs_r[t0 - gap - case.pre]) / case.pre)
    res["n_placebo"] = 0 if pl is None else len(pl.z)
    z_lo, z_hi = _critical_z(pl, cfg.alpha) if pl is not None else (-math.inf, math.inf)
    enough_pool = bool(np.isfinite(z_hi))
    gates["peers"] = _peers_gate(case, cfg, res["n_placebo"], enough_pool)
    dip_ratio, dip_low, gates["baseline_dip"] = _dip_check(case, cfg, label)

    if pl is not None and case.horizon >= 1 and case.pre >= 1:
        estimate, stat = _estimate(case, cfg, pl, z_lo, z_hi, res["pre_rate"])
        res.update(estimate)
        if dip_low and res["p_value"] <= cfg.alpha:
            confirmed = _dip_confirmed(case, cfg, stat, dip_low)
            if confirmed is not None:
                gates["baseline_dip"] = confirmed

    mde_at = _mde_curve(case, cfg, pl, enough_pool)
    res["mde_ratio"] = float(mde_at(case.horizon if case.horizon >= 1 else cfg.horizon_weeks)[0])
    verdict, direction = _verdict(res, gates, cfg, activity_changed)
    weeks_needed = (_weeks_needed(mde_at, case.horizon, cfg)
                    if verdict == "not enough data to tell" and pl is not None and enough_pool else None)
    res.update(gates=gates, verdict=verdict, direction=direction, weeks_needed=weeks_needed, dip_ratio=dip_ratio)
    failed = [g for g, st in gates.items() if st.startswith("failed")]
    res["sentence"] = _impact_sentence(res, failed, label, cfg)
    return PipelineImpact(**res)


def placebo_statistics(outcome: pd.DataFrame, rep_id, start, settings: ImpactSettings = DEFAULT_SETTINGS, *,
                       peers: list | None = None, excluded_peers: list | None = None) -> tuple[np.ndarray, float]:
    """The placebo distribution :func:`pipeline_impact` ranks the rep against, and the rep's own value.

    Parameters are those of :func:`pipeline_impact`.

    Returns
    -------
    (null, rep)
        ``null``: the studentized placebo statistics, sorted ascending (empty when the pool is
        too small to form one); ``rep``: the rep's studentized statistic on the same scale (NaN
        before any week after the change is observed, or without a null).
    """
    case = _case(outcome, rep_id, start, settings, peers, excluded_peers)
    pl = _null_for(case, settings)
    if pl is None:
        return np.array([]), float("nan")
    if case.horizon < 1 or case.pre < 1:
        return pl.z, float("nan")
    s, v, *_ = _rep_statistic(case.rep_y, case.peers, np.array([case.t0]), case.pre, settings.gap_weeks,
                              settings.lag_weeks, case.horizon)
    return pl.z, float(s[0] / math.sqrt(v[0]))


def _impact_sentence(r: dict, failed: list[str], label: str, cfg: ImpactSettings) -> str:
    """One plain, never-overclaiming sentence for the coaching report.

    ``r``: the result's fields; ``failed``: names of the failed gates. The reason given for
    "not enough data to tell" is the most fundamental failed gate.
    """
    min_pre_weeks, target_mde = cfg.min_pre_weeks, cfg.target_mde
    cap = label[:1].upper() + label[1:]
    pre, post, rr, lo, hi = r["pre_rate"], r["post_rate"], r["rate_ratio"], r["ci_low"], r["ci_high"]
    basis = f"based on {r['n_pre_weeks']} weeks before and {r['n_post_weeks']} after"
    interval = f"95% interval {fmt_ratio(lo)} to {fmt_ratio(hi)}"
    more = ""
    if r["weeks_needed"] is not None and r["weeks_needed"] > 0:
        more = f"; about {plural(r['weeks_needed'], 'more week')} would tell"
    elif r["weeks_needed"] is None and np.isfinite(r["mde_ratio"]):
        more = f"; even much more data would not make a {target_mde:g}× change visible for this rep"
    v = r["verdict"]
    if v == "activity did not change":
        head = f"The change in the committed activity can't be confirmed yet, so {label} are not judged as its effect"
        if not np.isfinite(rr):
            return head + "."
        upper = fmt_ratio(hi) if np.isfinite(hi) else "no upper limit"
        return (f"{head}; for reference they went from {fmt_rate(pre)} to {fmt_rate(post)} a week, "
                f"{fmt_ratio(rr)} what the team's trend predicts (95% interval {fmt_ratio(lo)} to {upper}, {basis}).")
    if v == "moved":
        word = "rose" if r["direction"] == "up" else "fell"
        return (f"{cap} {word} from {fmt_rate(pre)} to {fmt_rate(post)} a week after the change, about "
                f"{fmt_ratio(rr)} what the team's trend predicts ({interval}, {basis}).")
    if v == "no meaningful change":
        return (f"{cap} stayed close to what the team's trend predicts ({fmt_rate(post)} a week vs "
                f"{fmt_rate(r['counterfactual_rate'])} expected, {fmt_ratio(rr)}, {interval}, {basis}).")
    # not enough data to tell: say why, most fundamental reason first
    if "pre_weeks" in failed:
        return (f"Not enough data to tell: only {plural(r['n_pre_weeks'], 'week')} of history before the "
                f"change (at least {min_pre_weeks} needed).")
    if "peers" in failed:
        return (f"Not enough data to tell: too few unchanged teammates ({r['n_peers']}) to separate this "
                f"rep's change from what the whole team went through.")
    if "post_horizon" in failed:
        n = r["n_post_weeks"]
        if n == 0:
            return (f"Too early to tell: no weeks of {label} after the change yet{more.replace(';', ',', 1)}."
                    if more else f"Too early to tell: no weeks of {label} after the change yet.")
        return (f"Too early to tell: with {plural(n, 'week')} of data only a change of "
                f"{fmt_ratio(r['mde_ratio'])} or more would show{more}.")
    if "baseline_dip" in failed:
        return (f"Not enough data to tell: {label} were unusually low just before the change "
                f"({r['dip_ratio']:.2f}× the rep's usual level, team-adjusted), so a rebound would look "
                f"like an effect.")
    return (f"Not enough data to tell: {label} went from {fmt_rate(pre)} to {fmt_rate(post)} a week "
            f"({fmt_ratio(rr)} the team's trend, {interval}); with {r['n_post_weeks']} weeks after the "
            f"change only a change of {fmt_ratio(r['mde_ratio'])} or more would reliably show{more}.")


# ------------------------------------------------------------------ combined assessment
@dataclass
class CommitmentAssessment:
    """A commitment judged end to end: did the activity change, did pipeline move.

    Attributes
    ----------
    rep_id : column label
    activity : ActivityChange
    pipeline : PipelineImpact
        Computed with ``activity_changed`` wired from ``activity`` (None while "too early").
    verdict : str
        ``pipeline.verdict`` (the primary outcome's).
    sentence : str
        The activity sentence followed by the pipeline sentence.
    secondary : dict of str -> PipelineImpact
        The same test on each secondary outcome (e.g. ``"pipeline value"``,
        ``"stage advancements"``), same windows and gates. Supporting evidence only: the
        verdict is the primary outcome's, and secondaries are not adjusted as a family.
    """

    rep_id: object
    activity: ActivityChange
    pipeline: PipelineImpact
    verdict: str
    sentence: str
    secondary: dict = field(default_factory=dict)

    @property
    def secondary_sentence(self) -> str:
        """One sentence on the secondary outcomes ("" without any, or when the activity did not change)."""
        if self.verdict == "activity did not change":
            return ""  # nothing to attribute, as for the primary outcome
        parts = []
        for label, r in self.secondary.items():
            if not np.isfinite(r.rate_ratio):
                parts.append(f"{label} can't be computed yet")
                continue
            hi = "no upper limit" if not np.isfinite(r.ci_high) else fmt_ratio(r.ci_high)
            word = r.verdict if r.verdict in ("moved", "no meaningful change") else "not enough data to tell"
            parts.append(f"{label} {fmt_ratio(r.rate_ratio)} what the team's trend predicts "
                         f"({fmt_ratio(r.ci_low)} to {hi}, {word})")
        if not parts:
            return ""
        return "Also checked the same way, as supporting evidence: " + "; ".join(parts) + "."


def deal_units(value_panel: pd.DataFrame, deal_amounts) -> pd.DataFrame:
    """Weekly pipeline value (currency) expressed in units of ``E[X^2] / E[X]`` of the deal amounts.

    A week's pipeline value is a sum of a Poisson-like number of deal amounts X, whose
    variance is ``rate * E[X^2]``; divided by ``E[X^2] / E[X]`` it has variance about equal to
    its mean, as counts do, so :func:`pipeline_impact`'s Poisson part is the right size and
    its placebo null only has to absorb the extra variation. ``deal_amounts``: amounts
    (currency) of the team's deals, e.g. those created in the baseline years. Returns the
    panel unchanged when there are no positive amounts.
    """
    x = np.asarray(deal_amounts, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) == 0:
        return value_panel
    return value_panel / float(np.mean(x**2) / np.mean(x))


def assess_commitment(activity_panel: pd.DataFrame, outcome_panel: pd.DataFrame, rep_id, start, end,
                      target: float | None, baseline: float | None = None, *,
                      settings: ImpactSettings = DEFAULT_SETTINGS, activity_label: str = "activity",
                      label: str = "new opportunities", pre_weeks: int | None = None, peers: list | None = None,
                      excluded_peers: list | None = None, secondary: dict | None = None) -> CommitmentAssessment:
    """Judge a commitment: :func:`coachnb.adherence.activity_change` then :func:`pipeline_impact` with the activity gate wired.

    Parameters
    ----------
    activity_panel, outcome_panel : DataFrame
        Weekly panels (see the module's conventions): the committed activity's counts and the
        primary outcome's (new opportunities).
    rep_id : column label
        The rep who committed.
    start, end : date-like
        The commitment period (inclusive); the pipeline test dates the change at ``start``.
    target, baseline : float or None
        Committed and known pre-commitment weekly activity (see :func:`coachnb.adherence.activity_change`).
    settings : ImpactSettings
        Tuning of the pipeline test; its ``gap_weeks`` also keeps the same weeks out of the
        activity baseline.
    activity_label, label : str
        Plural nouns of the activity and of the primary outcome, for the sentences.
    pre_weeks : int, optional
        Activity baseline weeks (default: all up to 26).
    peers, excluded_peers : list, optional
        Comparison reps, and reps to leave out (they changed too, e.g. a recorded commitment),
        for every outcome. Teammates whose committed activity changed anywhere in the analysed
        weeks (:func:`changed_peers` on ``activity_panel``) are left out too, recorded or not,
        when ``settings.leave_out_changed_peers`` is True.
    secondary : dict of str -> DataFrame, optional
        Label -> weekly panel of a secondary outcome (stage advancements; pipeline value,
        best in :func:`deal_units`), each tested the same way.

    Returns
    -------
    CommitmentAssessment
        The activity gate is "not checked" while the activity is "too early" to judge. The
        activity test is adjusted by the teammates' median change over the same weeks
        (``team`` of :func:`coachnb.adherence.activity_change`, at least ``settings.min_peers``).
    """
    named = list(excluded_peers or [])
    left_out = set(named)
    # teammates already left out need no scan (at 1,000 reps most have a recorded change)
    candidates = [c for c in (peers if peers is not None else activity_panel.columns.tolist()) if c not in left_out]
    found = changed_peers(activity_panel, rep_id, start, settings, candidates) if settings.leave_out_changed_peers else []
    # the teammates' own swing in the same weeks is taken out of the rep's activity ratio (not
    # those who changed: their own change would pass for the team's)
    left_out, columns = left_out | set(found), set(activity_panel.columns.tolist())
    teammates = [c for c in (peers if peers is not None else activity_panel.columns.tolist())
                 if c != rep_id and c not in left_out and c in columns]
    # the change is confirmed over every week the pipeline test reads, not only the period's
    last = analysed_rows(activity_panel.index, start, settings)[1] - 1
    act = activity_change(activity_panel[rep_id], start, end, target=target, baseline=baseline,
                          gap_weeks=settings.gap_weeks, pre_weeks=pre_weeks, label=activity_label,
                          team=activity_panel[teammates], min_teammates=settings.min_peers,
                          through=activity_panel.index[last] if last >= 0 else None)
    changed = None if act.adherence == "too early" else act.changed
    same = dict(peers=peers, excluded_peers=named + found, activity_changed=changed)
    pipe = replace(pipeline_impact(outcome_panel, rep_id, start, settings, label=label, **same),
                   n_changed_peers=len(found), changed_peer_ids=tuple(found))
    extra = {name: pipeline_impact(panel, rep_id, start, settings, label=name, **same)
             for name, panel in (secondary or {}).items() if rep_id in panel.columns}
    return CommitmentAssessment(rep_id=rep_id, activity=act, pipeline=pipe, verdict=pipe.verdict,
                                sentence=f"{act.sentence} {pipe.sentence}", secondary=extra)


# ----------------------------------------------------------------- (5) multiple testing
def bh_adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg q-values for a team-overview list; NaNs stay NaN.

    Controls the false discovery rate across reps when many are screened at once.
    """
    # imported here: statsmodels costs each report worker ~60 MB and only team overviews need q-values
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q
