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
from scipy.special import entr

from .formatting import fmt_rate, fmt_ratio, plural

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
        Baseline weekly rate (the ``baseline`` given, or the mean of the rep's baseline weeks).
    post_rate : float
        Mean weekly count over the observed part of the commitment period.
    rate_ratio, ci_low, ci_high : float
        The weekly rate over the ``weeks_tested`` weeks from the start / pre_rate, divided by
        the team's ratio over the same weeks when a team
        panel was given (``team_ratio``), with its (1 - alpha) interval (quasi-Poisson,
        overdispersion and lag-1 autocorrelation from the rep's own weeks, the baseline an
        estimate; NaN when not computable).
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
        The activity really moved in the committed direction over the ``weeks_tested`` weeks:
        the interval excludes 1 on that side.
    direction : str
        Committed direction, ``"up"`` or ``"down"``.
    n_pre_weeks : int
        The rep's own observed baseline weeks used (for the dispersion, and for the baseline
        rate when no ``baseline`` was given); 0 when the rep has none.
    target : float or None
    sentence : str
    team_ratio : float
        The teammates' median activity ratio (period / baseline weeks) the rate ratio was
        divided by; NaN when not team-adjusted (no panel, or too few teammates).
    n_teammates : int
        Teammates behind ``team_ratio`` (0 when not team-adjusted).
    weeks_tested : int
        Observed weeks from the start behind ``rate_ratio`` and ``changed``: the period's, or
        more when the period could not confirm the change and the test read on (``through``
        of :func:`activity_change`).
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
    team_ratio: float = float("nan")
    n_teammates: int = 0
    weeks_tested: int = 0


@dataclass(frozen=True)
class _Windows:
    """The rep's observed weeks: rows in the panel and counts, baseline and commitment period."""

    index: pd.DatetimeIndex
    pre_rows: np.ndarray
    post_rows: np.ndarray
    pre: np.ndarray
    post: np.ndarray


def activity_change(activity: pd.Series, start, end, target: float | None = None, baseline: float | None = None,
                    gap_weeks: int = 2, pre_weeks: int | None = None, *, team: pd.DataFrame | None = None,
                    label: str = "activity", alpha: float = 0.05, max_pre_weeks: int = 26, min_weeks: int = 2,
                    min_teammates: int = 4, baseline_weeks: int = 8, through=None) -> ActivityChange:
    """Did the rep's weekly activity change, and was the commitment kept?

    Parameters
    ----------
    activity : Series
        Weekly counts of the committed activity for one rep (index = week Timestamps). Weeks
        before the rep's hire or first record are NaN (never zeros) and are skipped.
    start, end : date-like
        The commitment period (inclusive). ``end`` may lie in the future.
    target : float, optional
        Committed weekly count. Its side of the baseline sets the committed direction
        (``"down"`` when below the baseline, else ``"up"``).
    baseline : float, optional
        Recorded pre-commitment weekly rate: the reference level when given, with the
        uncertainty of a mean of ``baseline_weeks`` weeks at that rate (never exact). Default:
        the mean of the rep's observed baseline weeks.
    gap_weeks : int
        Weeks just before ``start`` kept out of the baseline.
    pre_weeks : int, optional
        Baseline weeks wanted (default ``max_pre_weeks``): the observed weeks among the
        ``pre_weeks`` ending ``gap_weeks`` before ``start``.
    team : DataFrame, optional
        The teammates' weekly counts of the same activity (same index; the rep and teammates
        who changed left out). With at least ``min_teammates`` teammates observed in every
        baseline and period week, the rate ratio is divided by their median ratio over the
        same weeks (the team's own swing), whose uncertainty enters the interval.
    label : str
        Plural noun for the sentence ("calls").
    alpha : float
        1 - confidence level of the rate-ratio interval.
    max_pre_weeks : int
        Longest baseline used when ``pre_weeks`` is not given.
    min_weeks : int
        Fewer observed weeks of the period than this -> adherence ``"too early"``.
    min_teammates : int
        Fewest teammates for the team adjustment.
    baseline_weeks : int
        Weeks a recorded ``baseline`` is taken to rest on (an automatic baseline averages 8).
    through : date-like, optional
        Last week a pipeline test reads (default ``end``): when the period can't confirm the
        change, ``changed`` and the rate ratio are read over the weeks from ``start`` to it.

    Returns
    -------
    ActivityChange

    Notes
    -----
    The adherence rule (:func:`_adherence`) and the interval are in ``docs/methods.md``.
    """
    want = pre_weeks if pre_weeks is not None else max_pre_weeks
    w = _activity_windows(activity, start, end, gap_weeks, want)
    pre, post = w.pre, w.post
    pre_rate = float(baseline) if baseline is not None else (float(pre.mean()) if len(pre) else float("nan"))
    n_post = int(len(post))
    post_rate = float(post.mean()) if n_post else float("nan")
    direction = "down" if (target is not None and np.isfinite(pre_rate) and target < pre_rate) else "up"
    same = (team, getattr(activity, "name", None), min_teammates, baseline, alpha, baseline_weeks, direction)
    rr, lo, hi, changed_in_period, tau, n_team = _rate_change(w, *same)
    changed = changed_in_period
    wc = w if through is None else _activity_windows(activity, start, max(pd.Timestamp(end), pd.Timestamp(through)),
                                                     gap_weeks, want)
    if not changed_in_period and len(wc.post_rows) > n_post:  # a change the period can't show yet may show later
        rr, lo, hi, changed, tau, n_team = _rate_change(wc, *same)
    else:
        wc = w
    n_on, share = _weeks_on_target(post, target, direction)
    adherence = _adherence(n_post, min_weeks, target, direction, pre_rate, post_rate, share, changed_in_period)
    team_ratio = math.exp(tau) if n_team else float("nan")
    sentence = _activity_sentence(label, n_post, pre_rate, post_rate, target, direction, n_on, adherence, changed,
                                  team_ratio, int(len(wc.post_rows)))
    return ActivityChange(pre_rate=pre_rate, post_rate=post_rate, rate_ratio=float(rr), ci_low=float(lo),
                          ci_high=float(hi), weeks_in_period=n_post, weeks_on_or_above_target=n_on,
                          share_on_target=float(share), adherence=adherence, changed=changed,
                          direction=direction, n_pre_weeks=int(len(pre)), target=target, sentence=sentence,
                          team_ratio=team_ratio, n_teammates=n_team, weeks_tested=int(len(wc.post_rows)))


def _rate_change(win: _Windows, team, rep, min_teammates: int, baseline, alpha: float, baseline_weeks: int,
                 direction: str) -> tuple:
    """(rate ratio, interval low, high, changed, team log ratio, teammates) over one set of weeks
    (:func:`_activity_rate_ratio`, team-adjusted by :func:`_team_log_ratio`)."""
    tau, var_tau, n_team = _team_log_ratio(team, win, min_teammates, rep)
    rr, lo, hi = _activity_rate_ratio(win.pre, win.post, baseline, (tau, var_tau), alpha, baseline_weeks)
    moved = bool((lo > 1) if direction == "up" else (hi < 1)) if np.isfinite(lo) else False
    return rr, lo, hi, moved, tau, n_team


def _weeks_on_target(post: np.ndarray, target: float | None, direction: str) -> tuple[int, float]:
    """Period weeks at or beyond ``target`` in the committed direction, and their share (0, NaN without)."""
    if target is None or not len(post):
        return 0, float("nan")
    on = post >= target if direction == "up" else post <= target
    return int(on.sum()), int(on.sum()) / len(post)


def _activity_windows(activity: pd.Series, start, end, gap_weeks: int, want: int) -> _Windows:
    """The rep's observed weeks of the baseline and of the commitment period.

    Takes one rep's weekly series; the baseline is the ``want`` weeks ending ``gap_weeks``
    before ``start``, the period runs from ``start`` to ``end`` as far as the data goes. NaN
    weeks (before a hire or the first record) are skipped in both, never read as zeros.
    """
    s = pd.Series(activity, dtype=float)
    idx = week_index(s.index)
    y = s.to_numpy()
    a = week_on_or_after(idx, start)
    b = min(week_on_or_before(idx, end), len(y) - 1)
    stop = max(a - gap_weeks, 0)
    pre_rows = np.arange(max(stop - want, 0), stop)
    post_rows = np.arange(a, b + 1) if b >= a else np.arange(0)
    pre_rows = pre_rows[~np.isnan(y[pre_rows])]
    post_rows = post_rows[~np.isnan(y[post_rows])]
    return _Windows(idx, pre_rows, post_rows, y[pre_rows], y[post_rows])


def _team_log_ratio(team: pd.DataFrame | None, w: _Windows, min_teammates: int, rep=None
                    ) -> tuple[float, float, int]:
    """The teammates' median log activity ratio over the rep's weeks, its variance, and how many teammates.

    ``team`` is aligned on the rep's weeks, its column ``rep`` (if any) left out. Each teammate
    observed in every one of the rep's baseline and period weeks (and active in the baseline)
    gives ``log((period mean + 1/2) / (baseline mean + 1/2))``. The median resists a teammate
    who changed; its variance is ``(pi / 2) s^2 / k`` with ``s`` the MAD-based spread of the k
    teammates' values (their noise and their differences both). Returns (0, 0, 0) with fewer
    than ``min_teammates`` teammates or without a panel.
    """
    if team is not None and rep is not None and rep in team.columns:
        team = team.drop(columns=[rep])  # the rep (column ``rep``) is not their own teammate
    if team is None or not len(w.pre_rows) or not len(w.post_rows) or team.shape[1] == 0:
        return 0.0, 0.0, 0
    panel = team.reindex(w.index).to_numpy(dtype=float)  # weeks the team panel lacks are missing
    pre, post = panel[w.pre_rows], panel[w.post_rows]
    ok = np.isfinite(pre).all(axis=0) & np.isfinite(post).all(axis=0) & (np.nansum(pre, axis=0) > 0)
    if ok.sum() < max(min_teammates, 1):
        return 0.0, 0.0, 0
    logs = np.log((post[:, ok].mean(axis=0) + ZERO_OFFSET) / (pre[:, ok].mean(axis=0) + ZERO_OFFSET))
    k = len(logs)
    med = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - med)))
    return med, (math.pi / 2) * spread**2 / k, k


def _dispersion(pre: np.ndarray, post: np.ndarray) -> tuple[float, float, int]:
    """Pearson dispersion, lag-1 autocorrelation and residual df of the rep's weeks around each window's mean.

    Pooled over the baseline and the period weeks (each around its own mean). The dispersion
    is floored at 1 (never narrower than Poisson); the autocorrelation is clipped to [0, 0.6]
    and set to 0 with 2 df or fewer. Returns (phi, rho, df).
    """
    segs = [s for s in (pre, post) if len(s)]
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
    return phi, rho, max(df, 1)


def ar_mean_factor(n, rho):
    """Variance of the mean of ``n`` AR(1) weeks with lag-1 correlation ``rho``, over that of independent weeks.

    ``1 + 2 sum_{k<n} (1 - k/n) rho^k``, in closed form; 1 for ``n <= 1`` or ``rho <= 0``.
    Takes scalars or arrays (``rho`` below 1); returns a float or an array.
    """
    rho = np.clip(np.asarray(rho, dtype=float), 0.0, None)
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    f = (1 + rho) / (1 - rho) - 2 * rho * (1 - rho**n) / (n * (1 - rho) ** 2)
    return float(f) if f.ndim == 0 else f


def _activity_rate_ratio(pre: np.ndarray, post: np.ndarray, baseline: float | None, team: tuple[float, float],
                         alpha: float, baseline_weeks: int) -> tuple[float, float, float]:
    """Period rate / baseline rate (over the team's ratio) with its (1 - alpha) interval; NaNs when not computable.

    ``Var(log ratio) = phi (f(n_post) / (S_post + 1/2) + f(n_ref) / (S_ref + 1/2)) + Var(team)``, ``f``
    the AR(1) factor of a mean of that many weeks; the reference is the baseline weeks (``S_pre``,
    ``n_pre``) or a recorded ``baseline`` b taken as a mean of ``k = baseline_weeks`` weeks
    (``S_ref = b k``, ``n_ref = k``). Student's t on the df of the rep's weeks around their means.
    Sums get ``ZERO_OFFSET``; a recorded baseline is floored at half an event over the period.
    """
    n_post, n_pre = len(post), len(pre)
    known = baseline is not None
    if not (n_post and (n_pre or (known and np.isfinite(baseline) and baseline >= 0))):
        nan = float("nan")
        return nan, nan, nan
    tau, var_tau = team
    phi, rho, df = _dispersion(pre, post)
    s_post = float(post.sum()) + ZERO_OFFSET
    var = phi * ar_mean_factor(n_post, rho) / s_post + var_tau
    if known:
        ref = max(float(baseline), ZERO_OFFSET / n_post)
        var += phi * ar_mean_factor(baseline_weeks, rho) / (ref * baseline_weeks + ZERO_OFFSET)
    else:
        ref = (float(pre.sum()) + ZERO_OFFSET) / n_pre
        var += phi * ar_mean_factor(n_pre, rho) / (float(pre.sum()) + ZERO_OFFSET)
    rr = s_post / n_post / ref / math.exp(tau)
    q = stats.t.ppf(1 - alpha / 2, df)
    se = math.sqrt(var)
    return rr, rr * math.exp(-q * se), rr * math.exp(q * se)


def _adherence(n_post: int, min_weeks: int, target: float | None, direction: str, pre_rate: float,
               post_rate: float, share: float, changed: bool) -> str:
    """The adherence category (rates per week).

    Committed direction "up" (mirrored for "down"):

    * ``"too early"``: fewer than ``min_weeks`` weeks of the period observed;
    * ``"kept"``: mean over the period >= 0.9 x target, or >= 75% of weeks at/above target;
    * ``"partly kept"``: >= 25% of weeks at/above target, or the mean moved at least half
      way from the baseline to the target;
    * ``"not kept"``: otherwise.

    Without a target: ``"kept"`` when ``changed``, ``"partly kept"`` when the mean moved
    up but not clearly, ``"not kept"`` otherwise. ``changed``: the period's own test.
    """
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
                       direction: str, n_on: int, adherence: str, changed: bool, team_ratio: float = float("nan"),
                       n_tested: int = 0) -> str:
    """One plain sentence on the commitment period for the coaching report.

    ``team_ratio``: the teammates' median ratio the test allowed for (NaN when it did not); named
    when it is 10% or more from 1, so a change read against the team is not taken for a raw one.
    ``n_tested``: weeks behind ``changed`` when more than the period's (the test read on).
    """
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
    elif not changed and n_tested > n_post:
        sentence += f" A change from before can't be confirmed yet, even over the {n_tested} weeks since it started."
    elif n_tested > n_post:
        sentence += f" Over the {n_tested} weeks since it started, the change from before is confirmed."
    elif not changed:
        sentence += " A change from before can't be confirmed from these weeks yet."
    if adherence != "too early" and np.isfinite(team_ratio) and abs(math.log(team_ratio)) >= math.log(1 / 0.9):
        sentence += (f" Over the same weeks teammates' {label} typically ran at {fmt_ratio(team_ratio)} their "
                     "earlier level, which the comparison allows for.")
    return sentence


# ------------------------------------------------------------------ (3) change points
def _max_split_lr(mat: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest Poisson likelihood-ratio statistic of "two rates" vs "one rate" over the splits
    leaving ``m`` weeks on each side, along the last axis of ``mat``; returns (statistic, split row)."""
    n = mat.shape[-1]
    cs = np.cumsum(mat, axis=-1)
    tot = cs[..., -1:]
    k = np.arange(m, n - m + 1)  # split before row k
    left = cs[..., k - 1]
    right = tot - left
    # 2 (sum over the parts of S log(S / count) - T log(T / n)), with 0 log 0 = 0 (entr(x) = -x log x)
    lr = 2 * (entr(tot) - entr(left) - entr(right) - left * np.log(k) - right * np.log(n - k) + tot * math.log(n))
    best = np.argmax(lr, axis=-1)
    return np.take_along_axis(lr, best[..., None], axis=-1)[..., 0], k[best]


def _block_orders(n: int, block_weeks: int, n_perm: int, seed: int) -> np.ndarray:
    """Row orders of ``n_perm`` block permutations of ``n`` weeks, (n_perm, n), deterministic given ``seed``."""
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block_weeks)
    orders = np.array([rng.permutation(n_blocks) for _ in range(n_perm)])
    rows = (orders[:, :, None] * block_weeks + np.arange(block_weeks)).reshape(n_perm, -1)
    return rows[rows < n].reshape(n_perm, n)  # the short last block's rows past n are dropped where it falls


def changes_found(block: np.ndarray, min_segment_weeks: int = 6, *, alpha: float = 0.05, block_weeks: int = 4,
                  n_perm: int = 199, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect_activity_change` on each column of a (weeks x series) block with no missing week.

    Returns (found, split row): a boolean and the row of the first week at the new rate per
    column (the row is meaningful only where found). Every column gets the same permutations,
    so a column's answer is the one :func:`detect_activity_change` gives for it alone.
    """
    y = np.asarray(block, dtype=float)
    n, k = y.shape
    m = min_segment_weeks
    if n < 2 * m or k == 0:
        return np.zeros(k, dtype=bool), np.zeros(k, dtype=int)
    obs, k_best = _max_split_lr(y.T, m)
    orders = _block_orders(n, block_weeks, n_perm, seed)
    limit = math.floor(alpha * (n_perm + 1) - 1)  # most null values at or above the statistic for p <= alpha
    count = np.zeros(k, dtype=int)
    for lo in range(0, k, SCAN_CHUNK):  # a few series at a time: the permuted copies are series x n_perm x n
        cols = np.arange(lo, min(k, lo + SCAN_CHUNK))
        count[cols] = _null_count(y.T[cols], obs[cols], orders, m, limit)
    return count <= limit, k_best


#: series permuted at once by :func:`changes_found` (its memory: about 4 x 8 bytes x this x n_perm x weeks)
SCAN_CHUNK = 32


def _null_count(series: np.ndarray, obs: np.ndarray, orders: np.ndarray, m: int, limit: int) -> np.ndarray:
    """How many permuted copies of each series (rows) reach its observed statistic, counted until
    more than ``limit`` do (then it can't be significant) or every permutation is seen.

    The first 39 permutations settle most series; only the others see the rest, so each
    series gets the answer all permutations would give it.
    """
    first = min(len(orders), 39)
    count = np.sum(_max_split_lr(series[:, orders[:first]], m)[0] >= obs[:, None], axis=1)
    open_ = np.flatnonzero(count <= limit)
    if len(open_) and first < len(orders):
        rest, _ = _max_split_lr(series[open_][:, orders[first:]], m)
        count[open_] += np.sum(rest >= obs[open_, None], axis=1)
    return count


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
    found, row = changes_found(s.to_numpy()[:, None], min_segment_weeks, alpha=alpha, block_weeks=block_weeks,
                               n_perm=n_perm, seed=seed)
    return s.index[int(row[0])] if found[0] else None
