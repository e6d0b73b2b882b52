"""Was the commitment kept? Did the rep's committed activity change? (issue #4)

Provides

* :func:`activity_change` -- did the committed weekly activity change, and was the
  commitment kept (:class:`ActivityChange`);
* :func:`detect_activity_change` -- a change date found in the *activity* series;
* the week conventions every weekly panel follows (:func:`week_index`,
  :func:`week_on_or_after`, :func:`week_on_or_before`).

Whether pipeline moved after the change is :mod:`coachnb.impact`'s question. The method is
in ``docs/methods.md``.

Panel conventions: a weekly series or panel has one row per week (index = week Timestamps,
consecutive, sorted), values = weekly counts. A week label is the first day of the week.
Dates passed in (``start``, ``end``) are mapped to the first week label on or after them
(``start``) or the last week label on or before them (``end``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .formatting import fmt_rate, plural

ADHERENCE = ("kept", "partly kept", "not kept", "too early")

#: added to every count before taking logs, so weeks with zero events stay finite
ZERO_OFFSET = 0.5


# ----------------------------------------------------------------------------- weeks
def week_index(index: pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    if not idx.is_monotonic_increasing:
        raise ValueError("the weekly panel's index must be sorted by week")
    return idx


def _ts_like(when, idx: pd.DatetimeIndex) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    if idx.tz is not None and ts.tz is None:
        ts = ts.tz_localize(idx.tz)
    elif idx.tz is None and ts.tz is not None:
        ts = ts.tz_convert(None)
    return ts


def week_on_or_after(idx: pd.DatetimeIndex, when) -> int:
    """Row of the first week label on or after ``when`` (``len(idx)`` if none)."""
    return int(idx.searchsorted(_ts_like(when, idx), side="left"))


def week_on_or_before(idx: pd.DatetimeIndex, when) -> int:
    """Row of the last week label on or before ``when`` (-1 if none)."""
    return int(idx.searchsorted(_ts_like(when, idx), side="right")) - 1


# ------------------------------------------------------------------ (1) activity change
@dataclass
class ActivityChange:
    """Did the rep's committed activity change? All rates are counts per week.

    Attributes
    ----------
    pre_rate : float
        Baseline weekly rate (the ``baseline`` given, or the mean of the baseline weeks).
    post_rate : float
        Mean weekly count over the observed part of the commitment period.
    rate_ratio, ci_low, ci_high : float
        post_rate / pre_rate with its (1 - alpha) interval (quasi-Poisson, overdispersion
        and lag-1 autocorrelation allowed for; NaN when not computable).
    weeks_in_period : int
        Weeks of the period observed so far (start .. min(end, last week of data)).
    weeks_on_or_above_target : int
        Weeks at or beyond the target in the committed direction (0 without a target).
    share_on_target : float
        weeks_on_or_above_target / weeks_in_period (NaN without a target or weeks).
    adherence : str
        One of ``"kept"``, ``"partly kept"``, ``"not kept"``, ``"too early"``. See
        :func:`activity_change` for the rule.
    changed : bool
        The activity really moved in the committed direction: the interval excludes 1 on
        that side.
    direction : str
        Committed direction, ``"up"`` or ``"down"``.
    n_pre_weeks : int
        Baseline weeks used (0 when ``baseline`` was given).
    target : float or None
    sentence : str
    """

    pre_rate: float
    post_rate: float
    rate_ratio: float
    ci_low: float
    ci_high: float
    weeks_in_period: int
    weeks_on_or_above_target: int
    share_on_target: float
    adherence: str
    changed: bool
    direction: str
    n_pre_weeks: int
    target: float | None
    sentence: str


def _quasi_poisson_log_ratio_se(pre: np.ndarray, post: np.ndarray, known_pre: bool) -> tuple[float, int]:
    """Standard error of log(post mean / pre mean) for overdispersed, autocorrelated weekly counts.

    Dispersion is the Pearson statistic of the two-means model (floored at 1: never
    narrower than Poisson); autocorrelation inflates the variance by (1 + rho) / (1 - rho)
    with rho the lag-1 autocorrelation of residuals within segments, clipped to [0, 0.6].
    Returns (se, residual degrees of freedom).
    """
    segs = [post] if known_pre else [pre, post]
    resid, pearson = [], 0.0
    for s in segs:
        m = max(s.mean(), 1e-9)
        pearson += float(np.sum((s - m) ** 2) / m)
        resid.append(s - m)
    df = sum(len(s) for s in segs) - len(segs)
    phi = max(1.0, pearson / df) if df > 0 else 1.0
    num = sum(float(np.sum(r[1:] * r[:-1])) for r in resid if len(r) > 1)
    den = sum(float(np.sum(r**2)) for r in resid)
    rho = float(np.clip(num / den, 0.0, 0.6)) if den > 0 and df > 2 else 0.0
    phi *= (1 + rho) / (1 - rho)
    var = 1.0 / (post.sum() + ZERO_OFFSET)
    if not known_pre:
        var += 1.0 / (pre.sum() + ZERO_OFFSET)
    return math.sqrt(phi * var), max(df, 1)


def activity_change(
    activity: pd.Series,
    start,
    end,
    target: float | None = None,
    baseline: float | None = None,
    gap_weeks: int = 2,
    pre_weeks: int | None = None,
    *,
    label: str = "activity",
    alpha: float = 0.05,
    max_pre_weeks: int = 26,
    min_weeks: int = 2,
) -> ActivityChange:
    """Did the rep's weekly activity change, and was the commitment kept?

    Parameters
    ----------
    activity : Series
        Weekly counts of the committed activity for one rep (index = week Timestamps).
    start, end : date-like
        The commitment period (inclusive). ``end`` may lie in the future.
    target : float, optional
        Committed weekly count. Its side of the baseline sets the committed direction
        (``"down"`` when below the baseline, else ``"up"``).
    baseline : float, optional
        Known pre-commitment weekly rate. Default: the mean of the ``pre_weeks`` weeks
        before ``start`` minus ``gap_weeks`` (all available up to ``max_pre_weeks``).
    gap_weeks : int
        Weeks just before ``start`` kept out of the baseline.
    pre_weeks : int, optional
        Baseline weeks wanted (default ``max_pre_weeks``); fewer are used when the
        history is shorter.
    label : str
        Plural noun for the sentence ("calls").
    alpha : float
        1 - confidence level of the rate-ratio interval.
    max_pre_weeks : int
        Longest baseline used when ``pre_weeks`` is not given.
    min_weeks : int
        Fewer observed weeks of the period than this -> adherence ``"too early"``.

    Returns
    -------
    ActivityChange

    Notes
    -----
    Adherence rule (committed direction "up"; mirrored for "down"):

    * ``"too early"``: fewer than ``min_weeks`` weeks of the period observed;
    * ``"kept"``: mean over the period >= 0.9 x target, or >= 75% of weeks at/above target;
    * ``"partly kept"``: >= 25% of weeks at/above target, or the mean moved at least half
      way from the baseline to the target;
    * ``"not kept"``: otherwise.

    Without a target: ``"kept"`` when ``changed``, ``"partly kept"`` when the mean moved
    up but not clearly, ``"not kept"`` otherwise.
    """
    pre, post, pre_rate = _activity_windows(activity, start, end, baseline, gap_weeks,
                                            pre_weeks if pre_weeks is not None else max_pre_weeks)
    n_post = int(len(post))
    post_rate = float(post.mean()) if n_post else float("nan")
    direction = "down" if (target is not None and np.isfinite(pre_rate) and target < pre_rate) else "up"
    rr, lo, hi = _activity_rate_ratio(pre, post, pre_rate, baseline is not None, alpha)
    changed = bool((lo > 1) if direction == "up" else (hi < 1)) if np.isfinite(lo) else False
    if target is not None and n_post:
        on = post >= target if direction == "up" else post <= target
        n_on = int(on.sum())
        share = n_on / n_post
    else:
        n_on, share = 0, float("nan")
    adherence = _adherence(n_post, min_weeks, target, direction, pre_rate, post_rate, share, changed)
    sentence = _activity_sentence(label, n_post, pre_rate, post_rate, target, direction, n_on, adherence, changed)
    return ActivityChange(pre_rate=pre_rate, post_rate=post_rate, rate_ratio=float(rr), ci_low=float(lo),
                          ci_high=float(hi), weeks_in_period=n_post, weeks_on_or_above_target=n_on,
                          share_on_target=float(share), adherence=adherence, changed=changed,
                          direction=direction, n_pre_weeks=int(len(pre)), target=target, sentence=sentence)


def _activity_windows(activity: pd.Series, start, end, baseline: float | None, gap_weeks: int,
                      want: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The observed weeks of the baseline and of the commitment period, and the baseline rate.

    Takes one rep's weekly series; the baseline is the ``want`` weeks ending ``gap_weeks``
    before ``start`` (empty when ``baseline``, a known weekly rate, is given). NaN weeks are
    dropped from both windows. Returns (baseline counts, period counts, baseline rate per
    week; NaN without baseline weeks).
    """
    s = pd.Series(activity, dtype=float)
    idx = week_index(s.index)
    y = s.to_numpy()
    a = week_on_or_after(idx, start)
    b = min(week_on_or_before(idx, end), len(y) - 1)
    post = y[a:b + 1] if b >= a else np.array([])
    post = post[~np.isnan(post)]
    if baseline is not None:
        return np.array([]), post, float(baseline)
    stop = max(a - gap_weeks, 0)
    pre = y[max(stop - want, 0):stop]
    pre = pre[~np.isnan(pre)]
    return pre, post, float(pre.mean()) if len(pre) else float("nan")


def _activity_rate_ratio(pre: np.ndarray, post: np.ndarray, pre_rate: float, known_pre: bool,
                         alpha: float) -> tuple[float, float, float]:
    """Period rate / baseline rate with its quasi-Poisson (1 - alpha) interval (NaNs when not computable).

    Both sums get ``ZERO_OFFSET`` so a zero count stays finite; with a known baseline rate the
    denominator is floored at half an event over the period. Assumes weekly counts.
    """
    n_post = len(post)
    if not (n_post and np.isfinite(pre_rate) and pre_rate >= 0 and (known_pre or len(pre) > 0)):
        nan = float("nan")
        return nan, nan, nan
    if known_pre:
        rr = (post.sum() + ZERO_OFFSET) / n_post / max(pre_rate, ZERO_OFFSET / n_post)
    else:
        rr = ((post.sum() + ZERO_OFFSET) / n_post) / ((float(pre.sum()) + ZERO_OFFSET) / len(pre))
    se, df = _quasi_poisson_log_ratio_se(pre, post, known_pre)
    q = stats.t.ppf(1 - alpha / 2, df)
    return rr, rr * math.exp(-q * se), rr * math.exp(q * se)


def _adherence(n_post: int, min_weeks: int, target: float | None, direction: str, pre_rate: float,
               post_rate: float, share: float, changed: bool) -> str:
    """The adherence category by the rule in :func:`activity_change`'s notes (rates per week)."""
    if n_post < min_weeks:
        return "too early"
    if target is None:
        return "kept" if changed else ("partly kept" if post_rate > pre_rate else "not kept")
    sign = 1 if direction == "up" else -1
    near = post_rate >= 0.9 * target if sign > 0 else post_rate <= target / 0.9
    halfway = np.isfinite(pre_rate) and sign * (post_rate - pre_rate) >= 0.5 * sign * (target - pre_rate)
    if near or share >= 0.75:
        return "kept"
    if share >= 0.25 or halfway:
        return "partly kept"
    return "not kept"


def _activity_sentence(label: str, n_post: int, pre_rate: float, post_rate: float, target: float | None,
                       direction: str, n_on: int, adherence: str, changed: bool) -> str:
    """One plain sentence on the commitment period for the coaching report."""
    if n_post == 0:
        return f"The commitment period has not started yet (before: {fmt_rate(pre_rate)} {label} a week)."
    cap = label[:1].upper() + label[1:]
    ctx = [f"target {target:g}" if target is not None else None, f"before {fmt_rate(pre_rate)}"]
    sentence = (f"{cap} averaged {fmt_rate(post_rate)} a week over the {plural(n_post, 'week')} "
                f"({', '.join(c for c in ctx if c)})")
    if target is not None:
        side = "on or above" if direction == "up" else "on or below"
        sentence += f": {side} target in {n_on} of {n_post} weeks."
    else:
        sentence += "."
    if adherence == "too early":
        sentence += " Too early to judge the commitment."
    elif not changed:
        sentence += " Not a clear change from before yet."
    return sentence


# ------------------------------------------------------------------ (3) change points
def detect_activity_change(activity: pd.Series, min_segment_weeks: int = 6, *, alpha: float = 0.05,
                           block_weeks: int = 4, n_perm: int = 199, seed: int = 0):
    """Most likely single change in a rep's weekly ACTIVITY (never run this on pipeline).

    Scans every split leaving ``min_segment_weeks`` on each side for the largest Poisson
    likelihood-ratio statistic of "two rates" vs "one rate". Significance comes from a
    block permutation of the weekly counts (blocks of ``block_weeks``, so short-run
    autocorrelation and overdispersion are kept in the null), deterministic given ``seed``.

    Returns
    -------
    Timestamp or None
        Week label of the first week at the new rate, or None when there is no change
        significant at ``alpha`` (or the series is too short).

    Notes
    -----
    A pipeline test at a date found in the *pipeline* series selects on its own noise (the
    naive test then rejects about 24% of the time with no effect); a date found in activity is
    independent of pipeline noise, so the pipeline test at that date keeps its size (the
    descriptive rows of ``docs/methods.md``'s calibration table, ``benchmarks/calibration.py``).
    """
    s = pd.Series(activity, dtype=float).dropna()
    y = s.to_numpy()
    n = len(y)
    m = min_segment_weeks
    if n < 2 * m:
        return None

    def max_lr(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cs = np.cumsum(mat, axis=-1)
        tot = cs[..., -1:]
        k = np.arange(m, n - m + 1)  # split before row k
        left = cs[..., k - 1]
        right = tot - left
        def ll(sm, cnt):
            rate = sm / cnt
            return np.where(sm > 0, sm * np.log(np.where(rate > 0, rate, 1.0)), 0.0)
        lr = 2 * (ll(left, k) + ll(right, n - k) - ll(tot, n))
        best = np.argmax(lr, axis=-1)
        return np.take_along_axis(lr, best[..., None], axis=-1)[..., 0], k[best]

    obs, k_best = max_lr(y[None, :])
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block_weeks)
    perms = np.empty((n_perm, n))
    for b in range(n_perm):
        order = rng.permutation(n_blocks)
        perms[b] = np.concatenate([y[i * block_weeks:(i + 1) * block_weeks] for i in order])[:n]
    null, _ = max_lr(perms)
    p = (1 + np.sum(null >= obs[0])) / (n_perm + 1)
    if p > alpha:
        return None
    return s.index[int(k_best[0])]
