"""Process metrics for every rep at once.

Every function takes a loaded :class:`~coachnb.schema.Dataset` and a time window and
returns one tidy DataFrame covering *all* reps (vectorized: no Python loop over reps).

Conventions shared by every function
------------------------------------
Windows
    ``start`` is inclusive and ``end`` exclusive. Both may be tz-aware Timestamps (converted
    to ``config.timezone``) or naive Timestamps / date strings, read as local time in
    ``config.timezone`` (``"2026-11-23"`` = local midnight starting that day).
``as_of``
    The coaching date, read the same way. Only what was known *before* ``as_of`` counts:
    events at or after it are ignored, deals closed after it are still open at ``as_of``.
Weeks
    ``week`` is a naive Timestamp of the local first day of the reporting week
    (``config.week_start``), the same value :func:`coachnb.config.week_start` gives.
    Every week overlapping ``[start, end)`` is listed; only events inside the window are
    counted, so a window that does not start on a week boundary has a partial first week.
Zero-fill
    Every rep of ``ds.reps`` appears (sorted by ``rep_id``), with zeros (counts) or NaN
    (rates without a denominator) rather than missing rows.
Attribution
    Deals and stage moves belong to the opportunity's owner (``opportunities.rep_id``).
    Stage-history rows whose stage is not one of ``config.stages`` are ignored.
Units
    Durations in days (float), amounts in the team's currency, rates as shares in [0, 1].
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .calendar import (WeekGrid, codes_of, column_codes, event_codes, in_days, pass_memo, sorted_rep_ids,
                       to_local, week_dtype, week_of)
from .config import ACTIVITY_TYPES
from .errors import ConfigError
from .formatting import fmt_figure, fmt_pct
from .schema import Dataset

WON = "Won"
_DAY_NS = 86_400 * 10**9
_WEEK = pd.Timedelta(days=7)

__all__ = [
    "weekly_activity", "weekly_pipeline", "metric_weekly", "stage_conversion", "team_benchmark",
    "stage_velocity", "team_stage_velocity", "stalled_deals", "deal_outcomes", "pipeline_coverage",
    "attainment", "capture_timeliness", "red_flags", "stage_entries", "advancements", "weekly_panel",
    "logging_lag_days",
]


def _rep_frame(ds: Dataset) -> pd.DataFrame:
    return pd.DataFrame({"rep_id": pd.array(sorted_rep_ids(ds), dtype="string")})


def _in_window(ts: pd.Series, start, end) -> np.ndarray:
    return ((ts >= start) & (ts < end)).fillna(False).to_numpy(dtype=bool)


def _wilson(successes, trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate and Wilson 95% interval; NaN where there are no trials."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    rate = np.full(k.shape, np.nan)
    low = np.full(k.shape, np.nan)
    high = np.full(k.shape, np.nan)
    ok = n > 0
    if ok.any():
        # imported here: report workers read these tables from the feature store and never need
        # statsmodels, which would cost each of them ~60 MB
        from statsmodels.stats.proportion import proportion_confint

        rate[ok] = k[ok] / n[ok]
        lo, hi = proportion_confint(k[ok], n[ok], alpha=0.05, method="wilson")
        low[ok] = np.clip(lo, 0.0, 1.0)
        high[ok] = np.clip(hi, 0.0, 1.0)
    return rate, low, high


# ---------------------------------------------------------------------------------------------
# 1-3 weekly counts
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownValue:
    """The value of a set of deals, as far as their amounts are known.

    ``total`` sums the known amounts (currency); ``n_known`` of the ``n`` deals have one. An
    empty amount means unknown, not 0, so a total over deals with unknown amounts is a floor.
    """

    total: float
    n_known: int
    n: int

    @property
    def complete(self) -> bool:
        """True when every deal's amount is known (and there is at least one deal)."""
        return self.n > 0 and self.n_known == self.n


def known_value(amounts) -> KnownValue:
    """:class:`KnownValue` of a column of deal amounts (NaN = unknown)."""
    a = pd.to_numeric(pd.Series(amounts, dtype="float64"), errors="coerce")
    known = a.notna()
    return KnownValue(float(a[known].sum()), int(known.sum()), int(len(a)))


def value_by_rep(reps: pd.Series, deals: pd.DataFrame) -> pd.Series:
    """Summed ``amount`` of ``deals`` per rep in ``reps`` order: 0 for no deals, NaN when any is unknown."""
    total = deals.groupby("rep_id", observed=True)["amount"].sum()
    unknown = deals["amount"].isna().groupby(deals["rep_id"], observed=True).any()
    out = reps.map(total).fillna(0.0).astype(float)
    return out.where(~reps.map(unknown).fillna(False).astype(bool))


def weekly_activity(ds: Dataset, start, end) -> pd.DataFrame:
    """Activities per rep and week, by type.

    Parameters
    ----------
    ds : Dataset
    start, end : Timestamp or date string
        Window ``[start, end)`` on ``activities.occurred_at``.

    Returns
    -------
    DataFrame[rep_id, week, call, email, meeting, demo, other, total]
        One row per rep and week overlapping the window (zero-filled); counts are int64.
    """
    grid = WeekGrid(ds, start, end)
    cell, inside = grid.table_codes(ds, "activities", "rep_id", "occurred_at")
    type_code = column_codes(ds, "activities", "type", ACTIVITY_TYPES)[inside]
    known = type_code >= 0  # the loader maps every type; anything else is not counted at all
    n_types = len(ACTIVITY_TYPES)
    counts = np.bincount(cell[known] * n_types + type_code[known],
                         minlength=grid.n_reps * grid.n_weeks * n_types).reshape(-1, n_types)
    cols = {t: counts[:, i].astype(np.int64) for i, t in enumerate(ACTIVITY_TYPES)}
    cols["total"] = counts.sum(axis=1).astype(np.int64)
    return grid.frame(cols)


def logging_lag_days(ds: Dataset) -> np.ndarray:
    """Days from each activity to its logging (``logged_at - occurred_at``), NaN when not logged
    (shared within a :func:`coachnb.calendar.one_pass` block for ``ds``)."""
    def compute() -> np.ndarray:
        acts = ds.activities
        return in_days(acts["logged_at"] - acts["occurred_at"]).to_numpy(dtype=float, na_value=np.nan)

    return pass_memo(ds, ("logging_lag_days",), compute)


def stage_entries(ds: Dataset, before=None) -> pd.DataFrame:
    """Stage-history rows of known stages with the deal's owner and outcome.

    Columns: opportunity_id, stage, stage_idx (position in ``config.stages``), entered_at,
    rep_id, status, closed_at, prior_max (highest stage index the deal had reached before this
    row, -1 for its first row). Sorted by deal, entered_at, stage_idx; ties in time are read
    in process order. ``before``: keep only rows entered strictly before it.

    Computed once per ``before`` inside a :func:`coachnb.calendar.one_pass` block for ``ds``
    (a store build asks ~15 times); each call gets its own frame.
    """
    key = ("stage_entries", None if before is None else pd.Timestamp(before))
    return pass_memo(ds, key, lambda: _stage_entries(ds, before)).copy(deep=False)


def _stage_entries(ds: Dataset, before) -> pd.DataFrame:
    """:func:`stage_entries`, computed."""
    sh = ds.stage_history
    stage_idx = codes_of(sh["stage"], ds.config.stages)
    keep = stage_idx >= 0
    if before is not None:
        keep &= (sh["entered_at"] < before).fillna(False).to_numpy(dtype=bool)
    e = sh.loc[keep, ["opportunity_id", "stage", "entered_at"]].copy()
    e["stage_idx"] = stage_idx[keep]
    opp = ds.opportunities[["opportunity_id", "rep_id", "status", "closed_at"]]
    e = e.merge(opp, on="opportunity_id", how="inner")
    e = e.sort_values(["opportunity_id", "entered_at", "stage_idx"], kind="stable", ignore_index=True)
    g = e.groupby("opportunity_id", sort=False)["stage_idx"]
    e["prior_max"] = g.cummax().groupby(e["opportunity_id"], sort=False).shift(1).fillna(-1).astype(np.int64)
    return e


def advancements(e: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`stage_entries` that are stage advancements.

    An advancement is an entry into a stage after the first that the deal had not reached
    before (its new furthest stage): a deal bounced back and forth is not counted twice.
    """
    return e[(e["stage_idx"] > 0) & (e["stage_idx"] > e["prior_max"])]


def weekly_pipeline(ds: Dataset, start, end) -> pd.DataFrame:
    """Pipeline building per rep and week.

    Parameters
    ----------
    ds : Dataset
    start, end : Timestamp or date string
        Window ``[start, end)``: opportunities by ``created_at``, stage moves by ``entered_at``.

    Returns
    -------
    DataFrame[rep_id, week, opportunities_created, pipeline_created, stage_advancements]
        ``opportunities_created`` (int64) and ``pipeline_created`` (sum of their amounts,
        currency, float64) by owner and creation week; ``stage_advancements`` (int64): entries
        into any stage after the first that take the deal further than it had been (see
        :func:`advancements`), by ``entered_at``, credited to the deal's owner.
    """
    grid = WeekGrid(ds, start, end)
    opp = ds.opportunities
    cell, inside = grid.table_codes(ds, "opportunities", "rep_id", "created_at")
    created = grid.count(cell).astype(np.int64)
    amount = opp["amount"].to_numpy(dtype=float, na_value=np.nan)[inside]
    pipeline = grid.count(cell, weights=np.nan_to_num(amount, nan=0.0))
    adv = advancements(stage_entries(ds))
    acell, _ = grid.codes(adv["rep_id"], adv["entered_at"])
    return grid.frame({
        "opportunities_created": created,
        "pipeline_created": pipeline.astype(float),
        "stage_advancements": grid.count(acell).astype(np.int64),
    })


def weekly_panel(long: pd.DataFrame, value: str) -> pd.DataFrame:
    """A long rep-week frame as a week x rep panel of ``value`` (weeks down, reps across, week order).

    The weekly metrics zero-fill every rep and week already, so the panel has no holes
    beyond what the long frame lacks.
    """
    return long.pivot_table(index="week", columns="rep_id", values=value, aggfunc="sum", observed=True).sort_index()


def metric_weekly(ds: Dataset, metric_name: str, start, end) -> pd.DataFrame:
    """Weekly value of a commitment metric for every rep.

    Parameters
    ----------
    ds : Dataset
    metric_name : str
        A key of ``ds.config.commitment_metrics``.
    start, end : Timestamp or date string
        Window ``[start, end)``.

    Returns
    -------
    DataFrame[rep_id, week, value]
        ``value`` is float64: a count per week for ``activity_count`` (sum of the metric's
        activity types), ``opportunities_created`` and ``stage_advancements`` kinds; for
        ``logged_on_time_share`` the share of the week's activities (by ``occurred_at``)
        logged within ``thresholds.late_logging_days`` days, among activities that have a
        ``logged_at`` (NaN when the week has none: no activity or no logging data).

    Raises
    ------
    ConfigError
        When ``metric_name`` is not a configured commitment metric.
    """
    metrics = ds.config.commitment_metrics
    if metric_name not in metrics:
        raise ConfigError(f"unknown commitment metric {metric_name!r}; known: {sorted(metrics)}")
    m = metrics[metric_name]
    if m.kind == "activity_count":
        wa = weekly_activity(ds, start, end)
        value = wa[list(m.activity_types)].sum(axis=1).astype(float)
        return pd.DataFrame({"rep_id": wa["rep_id"], "week": wa["week"], "value": value})
    if m.kind in ("opportunities_created", "stage_advancements"):
        wp = weekly_pipeline(ds, start, end)
        return pd.DataFrame({"rep_id": wp["rep_id"], "week": wp["week"], "value": wp[m.kind].astype(float)})
    if m.kind == "logged_on_time_share":
        grid = WeekGrid(ds, start, end)
        cell, inside = grid.table_codes(ds, "activities", "rep_id", "occurred_at")
        lag = logging_lag_days(ds)[inside]
        has = ~np.isnan(lag)
        on_time = has & (lag <= ds.config.thresholds.late_logging_days)
        n = grid.count(cell[has])
        k = grid.count(cell[on_time])
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
        return grid.frame({"value": value.astype(float)})
    raise ConfigError(f"commitment metric {metric_name!r} has unknown kind {m.kind!r}")


# ---------------------------------------------------------------------------------------------
# 4 stage conversion
# ---------------------------------------------------------------------------------------------

def stage_conversion(ds: Dataset, start=None, end=None) -> pd.DataFrame:
    """Conversion from each process stage to the next, per rep, with Wilson intervals.

    Parameters
    ----------
    ds : Dataset
    start, end : Timestamp, date string or None
        Window ``[start, end)`` on the deal's *first* entry into ``from_stage``; None = open.

    Returns
    -------
    DataFrame[rep_id, from_stage, to_stage, entered, advanced, dropped, still_open, rate, low, high]
        One row per rep and consecutive pair of ``config.stages`` plus (last stage, "Won").
        ``entered``: deals that first entered ``from_stage`` in the window. ``advanced``:
        of those, deals that later reached any later stage, or were won (a deal that skips
        ``to_stage`` still advanced from ``from_stage``). ``dropped``: lost without
        advancing. ``still_open``: open and not advanced; unresolved, so left out of
        ``rate = advanced / (advanced + dropped)``. ``low``/``high``: Wilson 95% interval
        of ``rate``. Counts int64; rate/low/high NaN when nothing resolved. Outcomes are the
        deals' status in the data (no ``as_of`` cut). Deals without stage history are not
        counted: conversion is about moves between stages.
    """
    cfg = ds.config
    stages = list(cfg.stages)
    e = stage_entries(ds)
    # furthest stage reached strictly after each row: reverse cumulative max within the deal
    rev = e.iloc[::-1]
    later_max = (rev.groupby("opportunity_id", sort=False)["stage_idx"].cummax()
                 .groupby(rev["opportunity_id"], sort=False).shift(1))
    e["later_max"] = later_max.reindex(e.index).fillna(-1).astype(np.int64)
    # first entry of each deal into each stage (a deal counts once per stage)
    first = e.drop_duplicates(["opportunity_id", "stage_idx"], keep="first")
    if start is not None:
        first = first[(first["entered_at"] >= to_local(start, cfg)).to_numpy(dtype=bool)]
    if end is not None:
        first = first[(first["entered_at"] < to_local(end, cfg)).to_numpy(dtype=bool)]
    won = (first["status"] == "won").to_numpy(dtype=bool, na_value=False)
    lost = (first["status"] == "lost").to_numpy(dtype=bool, na_value=False)
    advanced = won | (first["later_max"].to_numpy() > first["stage_idx"].to_numpy())
    outcome = np.where(advanced, 0, np.where(lost, 1, 2))  # 0 advanced, 1 dropped, 2 still open

    rep_ids = sorted_rep_ids(ds)
    n_reps, n_st = len(rep_ids), len(stages)
    rep_code = codes_of(first["rep_id"], rep_ids)
    ok = rep_code >= 0
    cell = (rep_code[ok] * n_st + first["stage_idx"].to_numpy()[ok]) * 3 + outcome[ok]
    counts = np.bincount(cell, minlength=n_reps * n_st * 3).reshape(n_reps * n_st, 3).astype(np.int64)
    adv, drop, still = counts[:, 0], counts[:, 1], counts[:, 2]
    rate, low, high = _wilson(adv, adv + drop)
    to_stages = stages[1:] + [WON]
    return pd.DataFrame({
        "rep_id": pd.array(np.repeat(rep_ids.to_numpy(dtype=object), n_st), dtype="string"),
        "from_stage": pd.array(np.tile(np.array(stages, dtype=object), n_reps), dtype="string"),
        "to_stage": pd.array(np.tile(np.array(to_stages, dtype=object), n_reps), dtype="string"),
        "entered": adv + drop + still,
        "advanced": adv,
        "dropped": drop,
        "still_open": still,
        "rate": rate,
        "low": low,
        "high": high,
    })


# ---------------------------------------------------------------------------------------------
# 5 team benchmark
# ---------------------------------------------------------------------------------------------

def team_benchmark(table: pd.DataFrame, value_col: str, by: Sequence[str] = (),
                   exclude_rep: str | None = None) -> pd.DataFrame:
    """Anonymized team distribution of a per-rep metric.

    Parameters
    ----------
    table : DataFrame
        One row per rep (and per group of ``by``), with ``rep_id`` and ``value_col``, e.g.
        the output of :func:`weekly_activity` with ``by=("week",)``.
    value_col : str
        Column summarized; NaN values (no denominator) are left out.
    by : sequence of str
        Grouping columns (e.g. ``("week",)``, ``("from_stage",)``); empty = whole team.
    exclude_rep : str, optional
        Leave this rep out, to compare a rep against the others only.

    Returns
    -------
    DataFrame[*by, median, q25, q75, n_reps]
        Quantiles with linear interpolation; ``n_reps`` = distinct reps with a value.
        No rep ids: safe to show any rep. Groups where nobody has a value get NaN and 0.
    """
    by = list(by)
    t = table
    if exclude_rep is not None:
        t = t[(t["rep_id"] != exclude_rep).fillna(True).to_numpy(dtype=bool)]
    vals = t[by + ["rep_id", value_col]].copy()
    vals[value_col] = pd.to_numeric(vals[value_col], errors="coerce").astype(float)
    has = vals[vals[value_col].notna()]
    if not by:
        v = has[value_col].to_numpy()
        row = {
            "median": float(np.median(v)) if len(v) else np.nan,
            "q25": float(np.quantile(v, 0.25)) if len(v) else np.nan,
            "q75": float(np.quantile(v, 0.75)) if len(v) else np.nan,
            "n_reps": int(has["rep_id"].nunique()),
        }
        return pd.DataFrame([row])
    g = has.groupby(by, sort=True, observed=True)[value_col]
    out = pd.DataFrame({
        "median": g.median(),
        "q25": g.quantile(0.25),
        "q75": g.quantile(0.75),
        "n_reps": has.groupby(by, sort=True, observed=True)["rep_id"].nunique(),
    })
    # groups present in the table but with no value at all still get a row
    all_groups = vals[by].drop_duplicates().set_index(by).index
    out = out.reindex(all_groups.sort_values()) if len(all_groups) else out
    out["n_reps"] = out["n_reps"].fillna(0).astype(np.int64)
    return out.reset_index()


# ---------------------------------------------------------------------------------------------
# 6-7 velocity (Kaplan-Meier) and stalled deals
# ---------------------------------------------------------------------------------------------

def _stage_spells(ds: Dataset, as_of, start=None) -> pd.DataFrame:
    """Time spent in each stage entry, right-censored at ``as_of``.

    A spell runs from ``entered_at`` to the next stage entry of the same deal, else to
    ``closed_at``; if neither happened before ``as_of`` the deal is still in the stage and
    the spell is censored at ``as_of`` (``event = False``). Columns: opportunity_id,
    rep_id, stage, stage_idx, entered_at, days (>= 0), event. Computed once per ``as_of`` and
    ``start`` inside a :func:`coachnb.calendar.one_pass` block for ``ds``; each call gets its own frame.
    """
    as_of = to_local(as_of, ds.config)
    key = ("stage_spells", as_of, None if start is None else to_local(start, ds.config))
    return pass_memo(ds, key, lambda: _compute_stage_spells(ds, as_of, start)).copy(deep=False)


def _compute_stage_spells(ds: Dataset, as_of: pd.Timestamp, start) -> pd.DataFrame:
    """:func:`_stage_spells`, computed."""
    e = stage_entries(ds, before=as_of)
    nxt = e.groupby("opportunity_id", sort=False)["entered_at"].shift(-1)
    closed = e["closed_at"].where(e["status"] != "open")
    end = nxt.fillna(closed)  # no later entry: the spell ends when the deal closed
    event = (end.notna() & (end < as_of)).to_numpy(dtype=bool)
    end = end.where(pd.Series(event, index=e.index), as_of)
    days = in_days(end - e["entered_at"]).clip(lower=0.0)  # data errors (exit before entry) count as 0
    out = e[["opportunity_id", "rep_id", "stage", "stage_idx", "entered_at"]].copy()
    out["days"] = days.to_numpy(dtype=float)
    out["event"] = event
    if start is not None:
        out = out[(out["entered_at"] >= to_local(start, ds.config)).to_numpy(dtype=bool)]
    return out.reset_index(drop=True)


def _km_curves(group: np.ndarray, days: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """Kaplan-Meier survival for many groups at once.

    Returns DataFrame[g, t, surv] with one row per group and distinct time, ``surv`` the
    survival just after ``t``. Censored spells tied with an event are at risk at that time.
    """
    df = pd.DataFrame({"g": group, "t": days, "d": event.astype(np.int64)})
    agg = df.groupby(["g", "t"], sort=True).agg(d=("d", "sum"), c=("d", "size")).reset_index()
    c_by_g = agg.groupby("g", sort=False)["c"]
    at_risk = c_by_g.transform("sum") - (c_by_g.cumsum() - agg["c"])
    agg["surv"] = (1.0 - agg["d"] / at_risk).groupby(agg["g"], sort=False).cumprod()
    return agg[["g", "t", "surv"]]


def _km_quantile(curves: pd.DataFrame, p: float, n_groups: int) -> np.ndarray:
    """Smallest time with survival strictly below ``1 - p`` per group (NaN if never).

    Same convention as ``statsmodels`` ``SurvfuncRight.quantile`` (and SAS).
    """
    out = np.full(n_groups, np.nan)
    hit = curves[curves["surv"] < 1.0 - p - 1e-12]
    first = hit.drop_duplicates("g", keep="first")
    out[first["g"].to_numpy(dtype=np.int64)] = first["t"].to_numpy(dtype=float)
    return out


def _km_rmst(curves: pd.DataFrame, horizon: float, n_groups: int, has_data: np.ndarray) -> np.ndarray:
    """Area under each group's KM curve from 0 to ``horizon`` days (restricted mean)."""
    if curves.empty:
        return np.full(n_groups, np.nan)
    g = curves["g"].to_numpy(dtype=np.int64)
    t = np.minimum(curves["t"].to_numpy(dtype=float), horizon)
    s = curves["surv"].to_numpy(dtype=float)
    first = np.r_[True, g[1:] != g[:-1]]
    prev_t = np.where(first, 0.0, np.r_[0.0, t[:-1]])
    prev_s = np.where(first, 1.0, np.r_[1.0, s[:-1]])
    area = np.bincount(g, weights=prev_s * (t - prev_t), minlength=n_groups)
    last = np.r_[g[1:] != g[:-1], True]
    tail = np.zeros(n_groups)
    tail[g[last]] = s[last] * (horizon - t[last])  # survival stays flat after the last time
    return np.where(has_data, area + tail, np.nan)


def stage_velocity(ds: Dataset, as_of, start=None, horizon_days: float = 90.0) -> pd.DataFrame:
    """Days deals spend in each stage, per rep, by Kaplan-Meier.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string
        Coaching date. Deals still in a stage are right-censored at ``as_of``: they count
        as "at least this long", not as having left today.
    start : Timestamp, date string or None
        Only stage entries at or after ``start`` (e.g. the last year); None = all history.
    horizon_days : float
        Horizon of the restricted mean (days).

    Returns
    -------
    DataFrame[rep_id, stage, n_entered, n_exited, n_censored, median_days, mean_days_restricted]
        One row per rep and stage. ``median_days``: KM median (NaN when the curve never
        falls below 0.5, e.g. too many deals still in the stage). ``mean_days_restricted``:
        mean days in stage counting at most ``horizon_days`` (area under the KM curve), NaN
        without spells.
    """
    rep_ids = sorted_rep_ids(ds)
    stages = list(ds.config.stages)
    n_st = len(stages)
    sp = _stage_spells(ds, as_of, start)
    rep_code = codes_of(sp["rep_id"], rep_ids)
    ok = rep_code >= 0
    sp = sp[ok]
    g = rep_code[ok] * n_st + sp["stage_idx"].to_numpy()
    n_groups = len(rep_ids) * n_st
    ev = sp["event"].to_numpy(dtype=bool)
    n_entered = np.bincount(g, minlength=n_groups).astype(np.int64)
    n_exited = np.bincount(g[ev], minlength=n_groups).astype(np.int64)
    curves = _km_curves(g, sp["days"].to_numpy(), ev)
    return pd.DataFrame({
        "rep_id": pd.array(np.repeat(rep_ids.to_numpy(dtype=object), n_st), dtype="string"),
        "stage": pd.array(np.tile(np.array(stages, dtype=object), len(rep_ids)), dtype="string"),
        "n_entered": n_entered,
        "n_exited": n_exited,
        "n_censored": n_entered - n_exited,
        "median_days": _km_quantile(curves, 0.5, n_groups),
        "mean_days_restricted": _km_rmst(curves, horizon_days, n_groups, n_entered > 0),
    })


def team_stage_velocity(ds: Dataset, as_of, start=None) -> pd.DataFrame:
    """Days in each stage pooled over the whole team, by Kaplan-Meier.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string
        Coaching date; open spells are right-censored there.
    start : Timestamp, date string or None
        Only stage entries at or after ``start``.

    Returns
    -------
    DataFrame[stage, n_entered, n_exited, n_censored, median_days, p75_days, stall_threshold_days]
        ``p75_days``: 75th percentile of days in stage. ``stall_threshold_days``: the
        ``thresholds.stalled_percentile`` percentile (equals ``p75_days`` by default); a
        deal in the stage longer than that is stalled. NaN when the KM curve never falls
        that far (then no deal of the stage is called stalled).
    """
    stages = list(ds.config.stages)
    n_st = len(stages)
    sp = _stage_spells(ds, as_of, start)
    g = sp["stage_idx"].to_numpy(dtype=np.int64)
    ev = sp["event"].to_numpy(dtype=bool)
    curves = _km_curves(g, sp["days"].to_numpy(), ev)
    n_entered = np.bincount(g, minlength=n_st).astype(np.int64)
    n_exited = np.bincount(g[ev], minlength=n_st).astype(np.int64)
    return pd.DataFrame({
        "stage": pd.array(stages, dtype="string"),
        "n_entered": n_entered,
        "n_exited": n_exited,
        "n_censored": n_entered - n_exited,
        "median_days": _km_quantile(curves, 0.5, n_st),
        "p75_days": _km_quantile(curves, 0.75, n_st),
        "stall_threshold_days": _km_quantile(curves, ds.config.thresholds.stalled_percentile / 100.0, n_st),
    })


def open_at(ds: Dataset, as_of: pd.Timestamp) -> np.ndarray:
    """Deals created before ``as_of`` and not closed before it (a later close does not count)."""
    opp = ds.opportunities
    created = (opp["created_at"] < as_of).fillna(False).to_numpy(dtype=bool)
    is_open = (opp["status"] == "open").fillna(False).to_numpy(dtype=bool)
    closed_later = (opp["closed_at"] >= as_of).fillna(False).to_numpy(dtype=bool)
    return created & (is_open | closed_later)


_STALLED_COLUMNS = ["rep_id", "opportunity_id", "name", "account", "stage", "entered_at", "days_in_stage",
                    "amount", "threshold_days"]


def stalled_deals(ds: Dataset, as_of, team_velocity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Open deals sitting in their current stage longer than the team usually does.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string
        Coaching date.
    team_velocity : DataFrame, optional
        Output of :func:`team_stage_velocity` for the same ``as_of``, to avoid recomputing it.

    Returns
    -------
    DataFrame[rep_id, opportunity_id, name, account, stage, entered_at, days_in_stage, amount, threshold_days]
        Deals open at ``as_of`` whose days since entering their current stage (last stage
        entry before ``as_of``) exceed the team's ``stall_threshold_days`` for that stage.
        Sorted by days over the threshold, most overdue first (ties by opportunity_id).
    """
    as_of = to_local(as_of, ds.config)
    tv = team_velocity if team_velocity is not None else team_stage_velocity(ds, as_of)
    e = stage_entries(ds, before=as_of)
    current = e.drop_duplicates("opportunity_id", keep="last")
    open_ids = ds.opportunities.loc[open_at(ds, as_of), "opportunity_id"]
    current = current[current["opportunity_id"].isin(open_ids).to_numpy(dtype=bool)]
    thr = dict(zip(tv["stage"].astype(object), tv["stall_threshold_days"]))
    days = in_days(as_of - current["entered_at"])
    threshold = current["stage"].astype(object).map(thr).astype(float)
    stalled = (days > threshold).fillna(False).to_numpy(dtype=bool)
    out = current.loc[stalled, ["opportunity_id", "stage", "entered_at"]].copy()
    out["days_in_stage"] = days[stalled].to_numpy(dtype=float)
    out["threshold_days"] = threshold[stalled].to_numpy(dtype=float)
    opp = ds.opportunities[["opportunity_id", "rep_id", "name", "account", "amount"]]
    out = out.merge(opp, on="opportunity_id", how="left")
    out["_over"] = out["days_in_stage"] - out["threshold_days"]
    out = out.sort_values(["_over", "opportunity_id"], ascending=[False, True], kind="stable")
    return out[_STALLED_COLUMNS].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# 8-10 outcomes, coverage, attainment, capture timeliness
# ---------------------------------------------------------------------------------------------

def deal_outcomes(ds: Dataset, start, end) -> pd.DataFrame:
    """Won and lost deals per rep, closed in the window.

    Parameters
    ----------
    ds : Dataset
    start, end : Timestamp or date string
        Window ``[start, end)`` on ``closed_at``.

    Returns
    -------
    DataFrame[rep_id, won, lost, win_rate, win_rate_low, win_rate_high, avg_won_amount, median_cycle_days]
        ``win_rate = won / (won + lost)`` with Wilson 95% interval (NaN without closed
        deals); ``avg_won_amount`` mean known amount of won deals (currency; NaN when none is
        known); ``median_cycle_days`` median of ``closed_at - created_at`` over *won* deals
        (days), NaN without won deals.
    """
    cfg = ds.config
    start, end = to_local(start, cfg), to_local(end, cfg)
    opp = ds.opportunities
    closed = opp[_in_window(opp["closed_at"], start, end) & opp["status"].isin(["won", "lost"]).to_numpy(dtype=bool)]
    closed = closed.assign(
        _won=(closed["status"] == "won").to_numpy(dtype=bool),
        _cycle=in_days(closed["closed_at"] - closed["created_at"]).to_numpy(dtype=float),
    )
    won_rows = closed[closed["_won"]]
    reps = _rep_frame(ds)
    won = closed.groupby("rep_id")["_won"].sum()
    n = closed.groupby("rep_id").size()
    out = reps.assign(
        won=reps["rep_id"].map(won).fillna(0).astype(np.int64).to_numpy(),
        lost=(reps["rep_id"].map(n).fillna(0) - reps["rep_id"].map(won).fillna(0)).astype(np.int64).to_numpy(),
    )
    rate, low, high = _wilson(out["won"], out["won"] + out["lost"])
    out["win_rate"], out["win_rate_low"], out["win_rate_high"] = rate, low, high
    out["avg_won_amount"] = reps["rep_id"].map(won_rows.groupby("rep_id")["amount"].mean()).astype(float).to_numpy()
    out["median_cycle_days"] = reps["rep_id"].map(won_rows.groupby("rep_id")["_cycle"].median()).astype(float).to_numpy()
    return out


def _quota(ds: Dataset) -> pd.Series:
    q = ds.reps.drop_duplicates("rep_id").set_index("rep_id")["quota_per_quarter"].astype(float)
    return q.where(q > 0)  # a zero quota means "no quota", not infinite coverage


def pipeline_coverage(ds: Dataset, as_of) -> pd.DataFrame:
    """Open pipeline against quarterly quota.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string

    Returns
    -------
    DataFrame[rep_id, open_pipeline, quota_per_quarter, coverage]
        ``open_pipeline``: summed amount of deals open at ``as_of`` (currency; NaN when any
        of them has an unknown amount);
        ``coverage = open_pipeline / quota_per_quarter`` (NaN without a positive quota).
    """
    as_of = to_local(as_of, ds.config)
    opp = ds.opportunities[open_at(ds, as_of)]
    reps = _rep_frame(ds)
    pipe = value_by_rep(reps["rep_id"], opp)
    quota = reps["rep_id"].map(_quota(ds)).astype(float)
    return reps.assign(open_pipeline=pipe.to_numpy(), quota_per_quarter=quota.to_numpy(),
                       coverage=(pipe / quota).to_numpy(dtype=float))


def attainment(ds: Dataset, as_of) -> pd.DataFrame:
    """Won amount in the current calendar quarter to date, against quota.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string
        The quarter is the local calendar quarter holding ``as_of``; deals won from its
        first day (local midnight) up to, not including, ``as_of`` count, or through the end
        of ``as_of``'s day when ``process.toml`` says ``[results] quarter_to_date = "inclusive"``.

    Returns
    -------
    DataFrame[rep_id, quarter_start, won_amount_qtd, quota_per_quarter, attainment]
        ``quarter_start`` naive Timestamp; ``won_amount_qtd`` NaN when a deal won in the quarter
        has an unknown amount; ``attainment = won_amount_qtd / quota_per_quarter``
        (NaN without a positive quota).
    """
    cfg = ds.config
    as_of = to_local(as_of, cfg)
    local = as_of.tz_localize(None)
    q_start_naive = pd.Timestamp(year=local.year, month=3 * ((local.month - 1) // 3) + 1, day=1)
    q_start = to_local(q_start_naive, cfg)
    opp = ds.opportunities
    until = as_of + pd.Timedelta(days=1) if cfg.quarter_to_date == "inclusive" else as_of
    won = opp[_in_window(opp["closed_at"], q_start, until) & (opp["status"] == "won").to_numpy(dtype=bool)]
    reps = _rep_frame(ds)
    amount = value_by_rep(reps["rep_id"], won)
    quota = reps["rep_id"].map(_quota(ds)).astype(float)
    qs = pd.Series([q_start_naive] * len(reps)).astype(week_dtype(cfg))
    return reps.assign(quarter_start=qs.to_numpy(), won_amount_qtd=amount.to_numpy(),
                       quota_per_quarter=quota.to_numpy(), attainment=(amount / quota).to_numpy(dtype=float))


def _rep_codes_and_lags(ds: Dataset, start: pd.Timestamp, end: pd.Timestamp, reps: pd.DataFrame):
    """Rep code (in ``reps``, sorted ids) and logging lag in days (negative -> 0, NaN not logged)
    of each activity that occurred in ``[start, end)``; from the rows' codes inside a one pass."""
    ev = event_codes(ds, "activities", "rep_id", "occurred_at")
    if ev is not None:
        rows = np.flatnonzero((ev.ns >= start.value) & (ev.ns < end.value))
        lag = logging_lag_days(ds)[rows]
        return ev.rep[rows], np.where(lag < 0.0, 0.0, lag)  # as clip(lower=0): NaN and -0.0 kept
    acts = ds.activities
    a = acts.loc[_in_window(acts["occurred_at"], start, end), ["rep_id", "occurred_at", "logged_at"]]
    lag = in_days(a["logged_at"] - a["occurred_at"]).clip(lower=0.0).astype(float)
    code = codes_of(a["rep_id"], reps["rep_id"])  # integer groups: much faster than grouping strings
    return code, lag.to_numpy(dtype=float, na_value=np.nan)


def capture_timeliness(ds: Dataset, start, end) -> pd.DataFrame:
    """How soon activities are entered into the CRM, per rep.

    Parameters
    ----------
    ds : Dataset
    start, end : Timestamp or date string
        Window ``[start, end)`` on ``occurred_at``.

    Returns
    -------
    DataFrame[rep_id, n_activities, n_with_logged_at, median_lag_days, p90_lag_days, share_late]
        Lag = ``logged_at - occurred_at`` in days, negative lags (logged ahead, e.g. a
        planned meeting) counted as 0. ``share_late``: share of activities with a
        ``logged_at`` whose lag exceeds ``thresholds.late_logging_days``. Lag statistics
        are NaN for reps without logged activities.
    """
    cfg = ds.config
    start, end = to_local(start, cfg), to_local(end, cfg)
    reps = _rep_frame(ds)
    n_reps = len(reps)
    code, lag = _rep_codes_and_lags(ds, start, end, reps)
    ok = code >= 0
    n = np.bincount(code[ok], minlength=n_reps)
    has = ok & ~np.isnan(lag)
    g = pd.Series(lag[has]).groupby(code[has])
    n_logged = np.bincount(code[has], minlength=n_reps)
    n_late = np.bincount(code[has & (lag > cfg.thresholds.late_logging_days)], minlength=n_reps)
    idx = pd.RangeIndex(n_reps)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_late = np.where(n_logged > 0, n_late / np.maximum(n_logged, 1), np.nan)
    return reps.assign(
        n_activities=n.astype(np.int64),
        n_with_logged_at=n_logged.astype(np.int64),
        median_lag_days=g.median().reindex(idx).to_numpy(dtype=float),
        p90_lag_days=g.quantile(0.9).reindex(idx).to_numpy(dtype=float),
        share_late=share_late.astype(float),
    )


# ---------------------------------------------------------------------------------------------
# 11 red flags
# ---------------------------------------------------------------------------------------------

#: activity in the last 4 weeks below this share of the 9 weeks before (per week) = falling
TREND_RATIO = 0.7
#: a falling trend must also be unlikely by chance: one-sided binomial p-value below this
TREND_P_VALUE = 0.05
#: share of activities logged late above which capture is flagged
LATE_SHARE = 0.3
RECENT_WEEKS = 4
RED_FLAG_COLUMNS = ["rep_id", "flag", "metric", "rep_value", "team_median", "team_q25", "threshold", "message"]


FLAG_ORDER = ("low_activity", "activity_falling", "few_new_opportunities", "few_stage_advancements",
              "stalled_pipeline", "late_logging")


def red_flags(ds: Dataset, as_of, lookback_weeks: int = 13) -> pd.DataFrame:
    """Leading indicators on which a rep is behind the team, before results show it.

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp or date string
        Coaching date. The lookback is the ``lookback_weeks`` complete weeks before the
        week holding ``as_of`` (the current, partial week is left out).
    lookback_weeks : int
        Weeks of the lookback (>= 5); the last 4 are "recent".

    Returns
    -------
    DataFrame[rep_id, flag, metric, rep_value, team_median, team_q25, threshold, message]
        One row per rep and raised flag, sorted by rep_id then :data:`FLAG_ORDER`.
        ``threshold`` is the value the rep was compared against. Flags:

        - ``low_activity``: activities in the last 4 weeks below the team's
          ``thresholds.behind_percentile`` percentile.
        - ``activity_falling``: activities per week in the last 4 weeks below
          ``TREND_RATIO`` x the 9 weeks before (scaled down when the whole team fell, e.g.
          holidays: ``TREND_RATIO x min(1, team median ratio)``), and the fall is unlikely to
          be chance (binomial test, p < ``TREND_P_VALUE``).
        - ``few_new_opportunities`` / ``few_stage_advancements``: over the lookback, below
          the team's ``behind_percentile`` percentile.
        - ``stalled_pipeline``: share of open pipeline amount in stalled deals above the
          team's ``100 - behind_percentile`` percentile (and above 0).
        - ``late_logging``: share of lookback activities logged late above ``LATE_SHARE``.

        Only reps hired before a metric's window starts are flagged or counted in the team
        distribution for it (a new hire is not "behind" on weeks before they joined).
        Activity flags need an activities table; pipeline-only data gives pipeline flags.
    """
    if lookback_weeks <= RECENT_WEEKS:
        raise ValueError(f"lookback_weeks must be more than {RECENT_WEEKS}, got {lookback_weeks}")
    f = _Flags.for_window(ds, as_of, lookback_weeks)
    if len(ds.activities) > 0:
        _activity_flags(ds, f)
    _pipeline_flags(ds, f)
    if len(ds.stage_history) > 0:
        _stalled_flag(ds, f)
    if len(ds.activities) > 0:
        _late_logging_flag(ds, f)
    return f.frame()


@dataclass
class _Flags:
    """The lookback of :func:`red_flags`, who is eligible for which flag, and the flags raised so far."""

    as_of: pd.Timestamp
    start: pd.Timestamp
    recent_start: pd.Timestamp
    end: pd.Timestamp
    lookback_weeks: int
    pct: float  # the team percentile below which a rep is behind, as a share
    reps: pd.DataFrame  # rep_id, every rep sorted
    full_lookback: np.ndarray  # hired before the lookback (unknown hire date: assumed tenured)
    full_recent: np.ndarray  # hired before the last RECENT_WEEKS
    raised: list = field(default_factory=list)

    @classmethod
    def for_window(cls, ds: Dataset, as_of, lookback_weeks: int) -> _Flags:
        cfg = ds.config
        as_of = to_local(as_of, cfg)
        end_naive = week_of(as_of, cfg)
        start = to_local(end_naive - lookback_weeks * _WEEK, cfg)
        recent_start = to_local(end_naive - RECENT_WEEKS * _WEEK, cfg)
        reps = _rep_frame(ds)
        hire = reps["rep_id"].map(ds.reps.drop_duplicates("rep_id").set_index("rep_id")["hire_date"])
        return cls(as_of, start, recent_start, to_local(end_naive, cfg), lookback_weeks,
                   cfg.thresholds.behind_percentile / 100.0, reps,
                   (hire <= start).fillna(True).to_numpy(dtype=bool),
                   (hire <= recent_start).fillna(True).to_numpy(dtype=bool))

    def add(self, flag, metric, v: pd.Series, hit: np.ndarray, med, q25, thr, message) -> None:
        """Raise ``flag`` for the reps in ``hit``; ``message(i, value, team median)`` words each."""
        if not hit.any():
            return
        idx = np.flatnonzero(hit)
        self.raised.append(pd.DataFrame({
            "rep_id": self.reps["rep_id"].to_numpy()[idx], "flag": flag, "metric": metric,
            "rep_value": v.to_numpy()[idx], "team_median": med, "team_q25": q25, "threshold": thr,
            "message": [message(i, v.iloc[i], med) for i in idx],
        }))

    def below_team(self, flag, metric, values, eligible: np.ndarray, message) -> None:
        """Raise ``flag`` for eligible reps below the eligible team's ``pct`` percentile."""
        v = pd.Series(np.asarray(values, dtype=float))
        pool = v[eligible & v.notna().to_numpy()]
        if pool.empty:
            return
        med, q = float(pool.median()), float(pool.quantile(self.pct))
        self.add(flag, metric, v, eligible & (v < q).to_numpy(), med, q, q, message)

    def frame(self) -> pd.DataFrame:
        """Every raised flag, sorted by rep and :data:`FLAG_ORDER`, text columns as strings."""
        if not self.raised:
            out = pd.DataFrame({c: pd.Series([], dtype="float64") for c in RED_FLAG_COLUMNS})
        else:
            out = pd.concat(self.raised, ignore_index=True)
            out["_o"] = out["flag"].map({f: i for i, f in enumerate(FLAG_ORDER)})
            out = out.sort_values(["rep_id", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
        for c in ("rep_id", "flag", "metric", "message"):
            out[c] = out[c].astype("string")
        return out[RED_FLAG_COLUMNS] if self.raised else out


def _activity_flags(ds: Dataset, f: _Flags) -> None:
    """``low_activity`` and ``activity_falling``."""
    prev_weeks = f.lookback_weeks - RECENT_WEEKS
    wa = weekly_activity(ds, f.start, f.end)
    tot = wa["total"].to_numpy().reshape(len(f.reps), -1)  # reps x weeks, weeks ascending
    recent = tot[:, -RECENT_WEEKS:].sum(axis=1).astype(float)
    prev = tot[:, :-RECENT_WEEKS].sum(axis=1).astype(float)
    f.below_team("low_activity", "activities_last_4_weeks", recent, f.full_recent,
                 lambda i, x, m: f"Activities in the last {RECENT_WEEKS} weeks: {fmt_figure(x)}, "
                                 f"team median {fmt_figure(m)}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(prev > 0, (recent / RECENT_WEEKS) / (prev / prev_weeks), np.nan)
    rs = pd.Series(ratio)
    pool = rs[f.full_lookback & rs.notna().to_numpy()]
    if pool.empty:
        return
    med, q = float(pool.median()), float(pool.quantile(f.pct))
    cut = TREND_RATIO * min(1.0, med)
    # under an unchanged weekly rate, recent ~ Binomial(recent + prev, 4 / lookback)
    p_value = stats.binom.cdf(recent, recent + prev, RECENT_WEEKS / f.lookback_weeks)
    hit = f.full_lookback & (rs < cut).to_numpy() & (p_value < TREND_P_VALUE)
    f.add("activity_falling", "activity_trend_ratio", rs, hit, med, q, cut,
          lambda i, x, m: (f"Activities per week: {fmt_figure(recent[i] / RECENT_WEEKS)} in the last {RECENT_WEEKS} "
                           f"weeks, down from {fmt_figure(prev[i] / prev_weeks)} in the {prev_weeks} weeks before "
                           f"({fmt_pct(x - 1)}); team median change {fmt_pct(m - 1)}."))


def _pipeline_flags(ds: Dataset, f: _Flags) -> None:
    """``few_new_opportunities``, and ``few_stage_advancements`` when there is stage history."""
    weeks = f.lookback_weeks
    wp = weekly_pipeline(ds, f.start, f.end)
    per_rep = wp.groupby("rep_id", sort=True)[["opportunities_created", "stage_advancements"]].sum()
    per_rep = per_rep.reindex(f.reps["rep_id"]).fillna(0)
    f.below_team("few_new_opportunities", "opportunities_created", per_rep["opportunities_created"].to_numpy(),
                 f.full_lookback,
                 lambda i, x, m: f"New opportunities in the last {weeks} weeks: {fmt_figure(x)}, "
                                 f"team median {fmt_figure(m)}.")
    if len(ds.stage_history) > 0:
        f.below_team("few_stage_advancements", "stage_advancements", per_rep["stage_advancements"].to_numpy(),
                     f.full_lookback,
                     lambda i, x, m: (f"Deals moved to a further stage in the last {weeks} weeks: {fmt_figure(x)}, "
                                      f"team median {fmt_figure(m)}."))


def _stalled_flag(ds: Dataset, f: _Flags) -> None:
    """``stalled_pipeline``: a high share of open pipeline amount in stalled deals."""
    stalled = stalled_deals(ds, f.as_of)
    cov = pipeline_coverage(ds, f.as_of)
    stalled_amt = value_by_rep(f.reps["rep_id"], stalled).to_numpy(dtype=float)
    open_amt = cov["open_pipeline"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = pd.Series(np.where(open_amt > 0, stalled_amt / open_amt, np.nan))
    pool = share[share.notna()]
    if pool.empty:
        return
    med, q25, hi = float(pool.median()), float(pool.quantile(f.pct)), float(pool.quantile(1 - f.pct))
    hit = ((share > hi) & (share > 0)).to_numpy()
    f.add("stalled_pipeline", "stalled_share_of_open_pipeline", share, hit, med, q25, hi,
          lambda i, x, m: (f"{fmt_pct(x)} of open pipeline ({fmt_figure(stalled_amt[i])} of "
                           f"{fmt_figure(open_amt[i])}) is in stalled deals, team median {fmt_pct(m)}."))


def _late_logging_flag(ds: Dataset, f: _Flags) -> None:
    """``late_logging``: more than LATE_SHARE of the lookback's activities logged late."""
    days = ds.config.thresholds.late_logging_days
    late = capture_timeliness(ds, f.start, f.end)["share_late"].astype(float)
    pool = late[late.notna()]
    if pool.empty:
        return
    med, q25 = float(pool.median()), float(pool.quantile(f.pct))
    f.add("late_logging", "share_logged_late", late, (late > LATE_SHARE).to_numpy(), med, q25, LATE_SHARE,
          lambda i, x, m: (f"{fmt_pct(x)} of activities were logged more than {fmt_figure(days)} days after "
                           f"they happened, team median {fmt_pct(m)}."))
