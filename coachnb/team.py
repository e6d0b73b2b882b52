"""The team view: every team-wide table of one window, computed once and shared by all reps' reports.

A report compares one rep with anonymous teammates, so nearly everything it shows starts from
a table covering the whole team (:class:`TeamView`). This module computes those tables once
per data folder, coaching date and window (cached in the process, so a worker that renders
many reps computes them once), or reads them from a feature store, and offers what the
coaching analyses read from them: a rep's rows set against the teammates' band, the week x
rep panels of the commitment metrics, and which teammates changed their own behaviour.

Privacy: nothing here leaves the process as it is; a report keeps the rep's own rows and
team *distributions* (median, quartiles, number of reps) only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import adherence, impact, metrics, store
from .calendar import Window, check_as_of_covered, data_end, report_window, resolve_as_of, weeks_before
from .errors import RepNotFound
from .loading import load
from .schema import Dataset


# --------------------------------------------------------------------------- team view (cached)
@dataclass
class TeamView:
    """Metrics for every rep over one window, computed once and shared by all reps' reports."""

    ds: Dataset
    window: Window
    history_start: pd.Timestamp
    weekly_activity: pd.DataFrame
    weekly_pipeline: pd.DataFrame
    conversion: pd.DataFrame
    velocity: pd.DataFrame
    team_velocity: pd.DataFrame
    stalled: pd.DataFrame
    outcomes: pd.DataFrame
    timeliness: pd.DataFrame
    coverage: pd.DataFrame
    attainment: pd.DataFrame
    red_flags: pd.DataFrame
    commitment_changes: pd.DataFrame
    open_deal_ages: pd.DataFrame
    open_stage_mix: pd.DataFrame
    cache: dict = field(default_factory=dict)


_TEAM_CACHE: dict = {}
_DATA_CACHE: dict = {}


def load_cached(data_dir) -> Dataset:
    """Load a data folder once per process and reuse it while its files are unchanged."""
    if not Path(data_dir).is_dir():
        return load(data_dir)  # load's DataError names the missing folder
    # name, size and modification time are enough to notice an edited file between two reports;
    # dot-files are other writers' temporaries (commit add), which may vanish while we look
    entries = []
    for p in Path(data_dir).iterdir():
        if p.name.startswith("."):
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if p.is_file():
            entries.append((p.name, st.st_size, st.st_mtime_ns))
    stamp = tuple(sorted(entries))
    key = (str(Path(data_dir).resolve()), stamp)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _TEAM_CACHE.clear()
        _DATA_CACHE[key] = load(data_dir)
    return _DATA_CACHE[key]


def team_view(ds: Dataset, as_of: pd.Timestamp, lookback_weeks: int, history_weeks: int = 52) -> TeamView:
    """:func:`compute_team_view`, fetched from the process cache when it was computed before."""
    key = (ds.fingerprint or id(ds), str(as_of), lookback_weeks, history_weeks)
    if key not in _TEAM_CACHE:
        _TEAM_CACHE[key] = compute_team_view(ds, as_of, lookback_weeks, history_weeks)
    return _TEAM_CACHE[key]


def compute_team_view(ds: Dataset, as_of: pd.Timestamp, lookback_weeks: int, history_weeks: int = 52) -> TeamView:
    """Every team-wide metric for one window, computed afresh (no cache read or written).

    Parameters
    ----------
    ds : Dataset
    as_of : Timestamp
        The coaching date, local midnight (:func:`coachnb.calendar.resolve_as_of`).
    lookback_weeks : int
        Whole weeks of the report's window.
    history_weeks : int
        Weeks of weekly counts kept before the window's end (commitment baselines, trends).
    """
    w = report_window(as_of, ds.config, lookback_weeks)
    history_start = weeks_before(w.end, history_weeks)
    team_velocity = metrics.team_stage_velocity(ds, as_of)
    return TeamView(
        ds=ds, window=w, history_start=history_start,
        weekly_activity=metrics.weekly_activity(ds, history_start, w.end),
        weekly_pipeline=metrics.weekly_pipeline(ds, history_start, w.end),
        conversion=metrics.stage_conversion(ds, weeks_before(w.end, max(lookback_weeks, 26)), w.end),
        # the year before the window's end, as the focus areas measure it: one value per measure in a report
        velocity=metrics.stage_velocity(ds, w.end, start=w.end - pd.Timedelta(weeks=52)),
        team_velocity=team_velocity,
        stalled=metrics.stalled_deals(ds, as_of, team_velocity=team_velocity),
        outcomes=metrics.deal_outcomes(ds, w.start, w.end),
        timeliness=metrics.capture_timeliness(ds, w.start, w.end),
        coverage=metrics.pipeline_coverage(ds, as_of),
        attainment=metrics.attainment(ds, as_of),
        red_flags=metrics.red_flags(ds, as_of, lookback_weeks),
        commitment_changes=commitment_changes(ds, w),
        open_deal_ages=open_deal_ages(ds, as_of),
        open_stage_mix=open_stage_mix(ds, as_of),
    )


def open_data(data, as_of, lookback_weeks: int, rep_id: str | None = None) -> tuple[Dataset, pd.Timestamp, TeamView]:
    """Dataset, coaching date and team view from a data folder, a Dataset or a feature store.

    From a feature store (:mod:`coachnb.store`) the Dataset holds the reps table, the
    commitments and 1:1s, and only ``rep_id``'s own opportunities, stage history and
    self-assessments (``rep_id=None``: none, for the team overview); the team view is read
    from the store. Raises RepNotFound when ``rep_id`` is given and unknown.
    """
    if not isinstance(data, Dataset) and store.is_store(data):
        fs = store.open_store(data)
        if rep_id is not None:
            rep_row(fs.dataset_for(None), rep_id)
        ds = fs.dataset_for(rep_id)
        as_of_ts = resolve_as_of(as_of, ds)
        fs.check(as_of_ts, lookback_weeks)
        w = report_window(as_of_ts, fs.config, int(lookback_weeks))
        # the store's panel cache is the view's: shared by every rep this process renders
        tv = TeamView(ds=ds, window=w, history_start=weeks_before(w.end, 52), cache=fs.panel_cache, **fs.team)
        return ds, as_of_ts, tv
    ds = data if isinstance(data, Dataset) else load_cached(data)
    if rep_id is not None:
        rep_row(ds, rep_id)
    as_of_ts = resolve_as_of(as_of, ds)
    check_as_of_covered(as_of_ts, ds)
    return ds, as_of_ts, team_view(ds, as_of_ts, lookback_weeks)



# --------------------------------------------------------------------------- a rep against the team
def others(table: pd.DataFrame, rep_id: str) -> pd.DataFrame:
    """The rest of the team (for benchmarks that compare a rep with their teammates)."""
    return table[table["rep_id"] != rep_id]


def min_teammates(ds: Dataset) -> int:
    """The fewest other reps a team figure may pool (``thresholds.min_teammates``, never below 3)."""
    return max(int(ds.config.thresholds.min_teammates), 3)


def too_few_teammates(ds: Dataset) -> bool:
    """True when the data holds fewer other reps than a team figure may pool (:func:`min_teammates`)."""
    return len(ds.reps) - 1 < min_teammates(ds)


def quartiles(values: pd.Series, min_reps: int = 1) -> dict:
    """Median, quartiles and count of the finite values, one per rep.

    Fewer than ``min_reps`` values (or none) give NaN figures and ``n_reps`` 0: a figure pooled
    over one or two teammates would show their own numbers, so it is not shown at all.
    """
    v = pd.to_numeric(values, errors="coerce")
    v = v.to_numpy(dtype=float, na_value=np.nan) if isinstance(v, pd.Series) else np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v) or len(v) < min_reps:
        return {"median": np.nan, "q25": np.nan, "q75": np.nan, "n_reps": 0}
    # the numbers Series.median and Series.quantile give (they call these), without a Series each
    # time: a report asks for ~10 (tests/test_report.py compares both)
    q25, q75 = np.percentile(v, [25.0, 75.0])
    return {"median": float(np.nanmedian(v)), "q25": float(q25), "q75": float(q75), "n_reps": int(len(v))}


def rep_row(ds: Dataset, rep_id: str) -> dict:
    """The rep's row of the reps table as a dict; RepNotFound when the id is unknown."""
    rows = ds.reps[ds.reps["rep_id"] == rep_id]
    if rows.empty:
        raise RepNotFound(f"rep_id {rep_id!r} is not in reps")
    return rows.iloc[0].to_dict()



def active_weeks(ds: Dataset, w: Window) -> pd.Series:
    """Weeks of the window each rep was in the role (by hire date), from 0 to ``w.weeks``."""
    hired = ds.reps.set_index("rep_id")["hire_date"]
    start = hired.where(hired > w.start, w.start)
    weeks = ((w.end - start).dt.days / 7).clip(lower=0, upper=w.weeks)
    return weeks.fillna(w.weeks)


def cached(tv: TeamView, key, compute):
    """``tv.cache[key]``, computed once; a hit is moved to the young end of a bounded cache."""
    if key in tv.cache:
        value = tv.cache.pop(key)
    else:
        value = compute()
    tv.cache[key] = value
    return value


@dataclass
class WindowTable:
    """A team table's rows in the report window, laid out once for every rep's report.

    ``matrix`` (reps x weeks of ``column``) is set only when the rows are a complete integer grid,
    rep-major and in week order (what :mod:`coachnb.metrics` writes); teammates' bands and totals
    then come from it directly. Otherwise reports take the general path (pandas group-bys).
    """

    rows: pd.DataFrame
    reps: pd.Index | None = None
    weeks: pd.Series | None = None
    matrix: np.ndarray | None = None


def window_table(tv: TeamView, name: str, column: str) -> WindowTable:
    def compute():
        weekly = getattr(tv, name)
        w = tv.window
        rows = weekly[(weekly["week"] >= w.start.tz_localize(None)) & (weekly["week"] < w.end.tz_localize(None))]
        reps = pd.Index(pd.unique(rows["rep_id"]))
        weeks = pd.Series(pd.unique(rows["week"])).sort_values(ignore_index=True)
        n, k = len(reps), len(weeks)
        grid = (n >= 2 and k >= 1 and len(rows) == n * k and rows[column].dtype.kind in "iu"
                and not rows["rep_id"].isna().any() and reps.is_monotonic_increasing
                and np.array_equal(rows["rep_id"].to_numpy(dtype=object), np.repeat(reps.to_numpy(dtype=object), k))
                and np.array_equal(rows["week"].to_numpy(), np.tile(weeks.to_numpy(), n)))
        if not grid:
            return WindowTable(rows)
        return WindowTable(rows, reps, weeks, rows[column].to_numpy().reshape(n, k))
    return cached(tv, ("window_table", name, column, tv.window), compute)


def active_reps(tv: TeamView) -> pd.Index:
    """Reps with any record in the report window: an activity, a new deal, a stage move or a close.

    A rep without one (not hired yet, left, on leave) gets no report of zeros and is no benchmark.
    """
    def compute():
        w = tv.window
        start, end = w.start.tz_localize(None), w.end.tz_localize(None)
        ids = set()
        for name, cols in (("weekly_activity", ["total"]),
                           ("weekly_pipeline", ["opportunities_created", "stage_advancements"])):
            t = getattr(tv, name)
            cols = [c for c in cols if c in t.columns]
            if t.empty or not cols:
                continue
            rows = t[(t["week"] >= start) & (t["week"] < end)]
            busy = rows[cols].sum(axis=1) > 0
            ids |= set(rows.loc[busy.to_numpy(), "rep_id"].astype(str))
        closed = tv.outcomes[(tv.outcomes["won"] + tv.outcomes["lost"]) > 0]
        ids |= set(closed["rep_id"].astype(str))
        reps = tv.ds.reps["rep_id"].astype(str)
        return pd.Index(reps[reps.isin(ids)].to_numpy(), name="rep_id")
    return cached(tv, ("active_reps", tv.window), compute)


@dataclass(frozen=True)
class PeerGroup:
    """The reps one report compares a rep with, the same for every section of it.

    ``scope`` is ``"team"`` (the rep's team, when it has at least :func:`min_teammates` other
    active reps), ``"company"`` (every other active rep, the stated fallback) or ``"none"``
    (too few to pool anonymously: no team figure is shown).
    """

    ids: tuple
    scope: str
    team: str
    least: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sentence(self) -> str:
        n = len(self.ids)
        if self.scope == "team":
            return f"Team figures are medians over the {n} other reps of team {self.team} active in this period."
        if self.scope == "company":
            return (f"Team {self.team} has fewer than {self.least} other reps active in this period, so team "
                    f"figures are medians over all {n} other active reps in the data.")
        return (f"Fewer than {self.least} other reps were active in this period, so no team figures are shown "
                "(one or two teammates' numbers would be recognisable).")


def peer_group(tv: TeamView, rep_id: str) -> PeerGroup:
    """The :class:`PeerGroup` of ``rep_id`` for this window (cached)."""
    def compute():
        reps = tv.ds.reps
        # each rep's team from its first row, as plain strings: one lookup per active rep (a thousand
        # .at lookups cost ~40 ms a report at 1,000 reps)
        team_of = dict(zip(reversed(reps["rep_id"].tolist()), (str(t) for t in reversed(reps["team"].tolist()))))
        team = team_of.get(rep_id, "")
        active = [r for r in active_reps(tv) if r != rep_id]
        least = min_teammates(tv.ds)
        same = [r for r in active if team_of[r] == team]
        if len(same) >= least:
            return PeerGroup(tuple(same), "team", team, least)
        if len(active) >= least:
            return PeerGroup(tuple(active), "company", team, least)
        return PeerGroup((), "none", team, least)
    return cached(tv, ("peer_group", rep_id, tv.window), compute)


def peer_mask(tv: TeamView, table: pd.DataFrame, rep_id: str) -> np.ndarray:
    """Whether each row of ``table`` (one or more per rep) belongs to ``rep_id``'s :func:`peer_group`."""
    return table["rep_id"].astype(str).isin(peer_group(tv, rep_id).ids).to_numpy()


def peer_rows(tv: TeamView, table: pd.DataFrame, rep_id: str) -> pd.DataFrame:
    """The rows of ``table`` (one or more per rep) that belong to ``rep_id``'s :func:`peer_group`."""
    return table[peer_mask(tv, table, rep_id)]


def peer_quartiles(tv: TeamView, table: pd.DataFrame, rep_id: str, column: str) -> dict:
    """:func:`quartiles` of ``column`` over the peer group's rows (NaN figures when there is no group)."""
    return quartiles(table[column][peer_mask(tv, table, rep_id)], peer_group(tv, rep_id).least)


def weekly_against_team(tv: TeamView, name: str, rep_id: str, column: str):
    """One weekly measure of the report window: the rep's weeks, the teammates' band per week, and
    the teammates' quartiles per week in the role (a teammate two weeks into the job is no benchmark).

    Parameters
    ----------
    name : str
        The team table (``"weekly_activity"`` or ``"weekly_pipeline"``).

    Returns
    -------
    (window rows, rep rows, band DataFrame[week, median, q25, q75, n_reps], quartiles dict,
     the rep's weeks in the role)
    """
    w = tv.window
    t = window_table(tv, name, column)
    rows = t.rows
    group = peer_group(tv, rep_id)
    weeks_in_role = active_weeks(tv.ds, w)
    mates = weeks_in_role[weeks_in_role.index.astype(str).isin(group.ids)]
    mates = mates[mates >= 2]
    i = t.reps.get_loc(rep_id) if t.matrix is not None and rep_id in t.reps else None
    if isinstance(i, (int, np.integer)):
        # the same numbers as the group-bys below: a group's median, np.percentile as Series.quantile
        # computes it, its size; sums per rep (tests/test_report.py compares both paths)
        k = len(t.weeks)
        mine = rows.iloc[i * k:(i + 1) * k].sort_values("week").reset_index(drop=True)
        in_group = t.reps.astype(str).isin(group.ids)
        rest = t.matrix[in_group].astype(np.float64)
        if len(rest):
            q25, med, q75 = np.percentile(rest, [25, 50, 75], axis=0)
        else:
            q25 = med = q75 = np.full(k, np.nan)
        band = pd.DataFrame({"week": t.weeks.to_numpy(), "median": med, "q25": q25, "q75": q75,
                             "n_reps": np.full(k, len(rest), dtype=np.int64)})
        band["week"] = band["week"].astype(rows["week"].dtype)
        sums = pd.Series(t.matrix.sum(axis=1), index=t.reps.rename("rep_id"), name=column)
        totals = sums.reindex(mates.index).fillna(0)
    else:
        mine = rows[rows["rep_id"] == rep_id].sort_values("week").reset_index(drop=True)
        rest = peer_rows(tv, rows, rep_id)
        band = (rest.groupby("week")[column]
                .agg(median="median", q25=lambda s: s.quantile(0.25), q75=lambda s: s.quantile(0.75), n_reps="size")
                .reset_index())
        totals = rest.groupby("rep_id")[column].sum().reindex(mates.index).fillna(0)
    least = group.least
    band.loc[band["n_reps"] < least, ["median", "q25", "q75"]] = np.nan  # too few to pool anonymously
    return rows, mine, band, quartiles(totals / mates, least), float(weeks_in_role.get(rep_id, w.weeks))



def open_stage_mix(ds: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """Deals open on ``as_of`` by their current stage (``opportunities.stage``), per rep.

    Returns
    -------
    DataFrame[rep_id, stage, deals, value]
        Empty when the data runs on more than a week past ``as_of``: ``opportunities.stage`` is
        each deal's stage at the data's end, which an earlier date can't be read from.
    """
    o = ds.opportunities
    end = data_end(ds)
    if end is not None and end > as_of + pd.Timedelta(days=7):
        # the deals table holds each deal's stage at the data's end, not on an earlier coaching date
        return pd.DataFrame({"rep_id": pd.Series(dtype=object), "stage": pd.Series(dtype=object),
                             "deals": pd.Series(dtype="int64"), "value": pd.Series(dtype=float)})
    known = o["stage"].isin(ds.config.stages).fillna(False).to_numpy(dtype=bool) if "stage" in o else False
    rows = o[metrics.open_at(ds, as_of) & known]
    g = rows.groupby(["rep_id", "stage"], observed=True)["amount"]
    out = g.agg(deals="size", value="sum")
    out.loc[g.apply(lambda a: a.isna().any()), "value"] = np.nan  # a sum over unknown amounts is no value
    return out.reset_index()



def open_deal_ages(ds: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every deal open on ``as_of`` with its age in days (team table: ids and numbers, no names).

    Returns
    -------
    DataFrame[rep_id, opportunity_id, age_days, amount]
    """
    o = ds.opportunities
    still_open = metrics.open_at(ds, as_of)
    out = o.loc[still_open, ["rep_id", "opportunity_id", "amount"]].copy()
    out["age_days"] = (as_of - o.loc[still_open, "created_at"]).dt.total_seconds() / 86400
    return out.reset_index(drop=True)



# --------------------------------------------------------------------------- stalled deals, one rule for all pages
def aged_threshold(tv: TeamView) -> float:
    """Without stage history: the age (days) above which an open deal counts as older than most.

    The ``thresholds.stalled_percentile`` percentile of every open deal's age on the coaching date.
    """
    ages = tv.open_deal_ages["age_days"]
    return float(ages.quantile(tv.ds.config.thresholds.stalled_percentile / 100)) if len(ages) else np.nan


def stalled_counts(tv: TeamView) -> pd.Series:
    """Each rep's number of stalled deals as their report counts them (float; NaN where it can't tell).

    With stage history: deals longer in their stage than the team's percentile. Without it: open
    deals older than :func:`aged_threshold`. With too few teammates to set a threshold: NaN.
    """
    reps = tv.ds.reps["rep_id"]
    if too_few_teammates(tv.ds):
        return pd.Series(np.nan, index=reps.to_numpy())
    if tv.ds.has("stage_history"):
        n = tv.stalled.groupby("rep_id").size()
    else:
        ages = tv.open_deal_ages
        n = ages[ages["age_days"] > aged_threshold(tv)].groupby("rep_id").size()
    return reps.map(n).fillna(0).astype(float).set_axis(reps.to_numpy())


# --------------------------------------------------------------------------- commitments across the team
def impact_settings(ds: Dataset) -> impact.ImpactSettings:
    """The pipeline test's settings with the team's own thresholds from ``process.toml``."""
    th = ds.config.thresholds
    return impact.ImpactSettings(gap_weeks=int(th.baseline_gap_weeks), min_pre_weeks=int(th.min_pre_weeks),
                                 lag_weeks=int(th.pipeline_lag_weeks), equivalence_margin=float(th.equivalence_margin))


def rep_commitments(ds: Dataset, rep_id: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rep's commitments that had started by ``as_of`` and were not superseded, oldest first."""
    c = ds.commitments
    superseded = set(c["supersedes"].dropna())
    mine = c[(c["rep_id"] == rep_id).to_numpy(dtype=bool, na_value=False)]  # the rep's few rows, then the rest
    mine = mine[~mine["commitment_id"].isin(superseded) & (mine["start"] < as_of)]
    return mine.sort_values("start")


def last_session(ds: Dataset, rep_id: str, as_of: pd.Timestamp) -> pd.Timestamp | None:
    """The rep's last recorded 1:1 before ``as_of``, or None."""
    s = ds.coaching_sessions
    # the rep's few rows first: comparing every 1:1's date costs more than the rep's id (38,000 rows at 1,000 reps)
    held = s.loc[(s["rep_id"] == rep_id).to_numpy(dtype=bool, na_value=False), "held_on"]
    held = held[held < as_of]
    return held.max() if len(held) else None


def active_commitments(ds: Dataset, rep_id: str, w: Window, limit: int = 2) -> pd.DataFrame:
    """The commitments "since last time": running in the window or agreed since the last 1:1.

    Older ones belong to the rep's record, not to this 1:1: a commitment that ended a year ago is
    not shown as if it were current. At most ``limit``, the latest.
    """
    mine = rep_commitments(ds, rep_id, w.as_of)
    current = (mine["end"] >= w.start).to_numpy(dtype=bool, na_value=False)
    last = last_session(ds, rep_id, w.as_of)
    if last is not None:
        current = current | (mine["agreed_on"] >= last).to_numpy(dtype=bool, na_value=False)
    return mine[current].tail(limit)



def before_hire_as_missing(ds: Dataset, panel: pd.DataFrame) -> pd.DataFrame:
    """``panel`` (weeks x reps) with every week that ended before the rep's hire date set to NaN.

    A rep can't have done anything before joining: those weeks are missing, not zeros (zeros
    would make any later week look like a rise). The week of the hire date itself is kept.
    """
    if panel.empty:
        return panel
    weeks = pd.DatetimeIndex(panel.index)
    weeks = weeks.tz_localize(None) if weeks.tz is not None else weeks
    ended = (weeks + pd.Timedelta(days=7)).to_numpy()[:, None] <= hire_dates(ds, panel.columns)[None, :]
    if not ended.any():
        return panel
    return panel.astype(float).mask(ended)


def hire_dates(ds: Dataset, rep_ids) -> np.ndarray:
    """Each rep's hire date (local, naive ``datetime64[ns]``; NaT for a rep not in ``ds.reps``), in ``rep_ids``' order.

    A rep listed twice has the first row's date (:func:`coachnb.store.first_hire_dates`). Plain lists
    and a dict rather than pandas' index alignment: a commitment's review asks for it once per history
    panel (~0.15 ms against ~0.6, more at 1,000 reps). A feature store's own reps table is looked up
    once per process (a Dataset with another reps table, never).
    """
    fs = store.store_of(ds)
    first = (fs.hire_dates() if fs is not None and ds.reps is fs.whole["reps"]
             else store.first_hire_dates(ds.reps))
    missing = np.datetime64("NaT", "ns")
    return np.array([first.get(r, missing) for r in pd.Index(rep_ids).tolist()], dtype="datetime64[ns]")


def before_data_as_missing(panel: pd.DataFrame) -> pd.DataFrame:
    """``panel`` (weeks x reps) with the weeks before its first record anywhere in the team set to NaN.

    A history window can reach back before the data begins; those weeks are unknown, not a
    team of zeros (zeros would make a commitment early in the data look like a rise).
    """
    values = panel.to_numpy(dtype=float)
    seen = np.nansum(np.abs(values), axis=1) > 0
    if panel.empty or not seen.any() or seen[0]:
        return panel
    out = panel.astype(float)
    out.iloc[:int(np.argmax(seen))] = np.nan
    return out


def unobserved_as_missing(ds: Dataset, panel: pd.DataFrame) -> pd.DataFrame:
    """:func:`before_data_as_missing` and :func:`before_hire_as_missing`: weeks no one could observe."""
    return before_hire_as_missing(ds, before_data_as_missing(panel))


def reviews_start(ds: Dataset, history_start: pd.Timestamp, as_of: pd.Timestamp) -> pd.Timestamp:
    """The first day any commitment's review reads: 52 weeks before the earliest commitment on record
    (every rep's, as :func:`rep_commitments` chooses them), or ``history_start`` if that is earlier."""
    start = history_start
    if ds.has("commitments"):
        # every rep's commitments as rep_commitments chooses them, in one pass over the table
        c = ds.commitments
        superseded = set(c["supersedes"].dropna())
        chosen = c[c["rep_id"].isin(set(ds.reps["rep_id"].astype(str))).to_numpy(dtype=bool, na_value=False)
                   & ~c["commitment_id"].isin(superseded).to_numpy(dtype=bool, na_value=False)
                   & (c["start"] < as_of).to_numpy(dtype=bool, na_value=False)]
        for s in chosen["start"].drop_duplicates():
            start = min(start, weeks_before(s, 52))
    return start


def history_rows(tv: TeamView, key: tuple, hist_start: pd.Timestamp, build) -> pd.DataFrame:
    """The weeks from the one holding ``hist_start`` of a weekly panel built once per view.

    ``build(start)`` makes the panel from ``start`` to the window's end. It is built from
    :func:`reviews_start` (or ``hist_start`` when that is earlier) and kept under ``key`` +
    that start, so every commitment's review slices one panel instead of building its own; its
    weeks are whole weeks and "before the data begins" is judged over all of it.
    """
    start = panel_start(tv, hist_start)
    return rows_from(cached(tv, key + (start,), lambda: build(start)), hist_start)


def panel_start(tv: TeamView, hist_start: pd.Timestamp) -> pd.Timestamp:
    """Where :func:`history_rows` builds the panel that holds ``hist_start``'s weeks."""
    floor = cached(tv, ("reviews_start", tv.window), lambda: reviews_start(tv.ds, tv.history_start, tv.window.as_of))
    return min(hist_start, floor)


def rows_from(panel: pd.DataFrame, hist_start: pd.Timestamp) -> pd.DataFrame:
    """The rows of a weekly panel (naive week labels) from the week holding ``hist_start`` on."""
    first = hist_start.tz_localize(None) if hist_start.tzinfo is not None else hist_start
    return panel.iloc[max(0, int(panel.index.searchsorted(first, side="right")) - 1):]


def metric_history(tv: TeamView, metric: str, hist_start: pd.Timestamp) -> pd.DataFrame:
    """Week x rep panel of one commitment metric from the week holding ``hist_start`` to the window's
    end (:func:`history_rows`); weeks before the data begins or before a rep's hire are NaN
    (:func:`unobserved_as_missing`)."""
    return history_rows(tv, ("metric_wide", metric), hist_start, lambda start: unobserved_as_missing(
        tv.ds, store.metric_panel(tv.ds, metric, start, tv.window.end)))


def outcome_history(tv: TeamView, hist_start: pd.Timestamp) -> pd.DataFrame:
    """Week x rep panel of new opportunities from the week holding ``hist_start`` to the window's end
    (:func:`history_rows`); weeks before the data begins or before a rep's hire are NaN."""
    return history_rows(tv, ("outcome_wide",), hist_start, lambda start: unobserved_as_missing(
        tv.ds, store.pipeline_panel(tv.ds, start, tv.window.end)))


def secondary_histories(tv: TeamView, hist_start: pd.Timestamp, counts: pd.DataFrame) -> dict:
    """Secondary outcomes of a commitment: pipeline value in deal units, stage advancements (cached).

    The deal unit (``impact.deal_units``) comes from the weeks in which a rep created exactly
    one opportunity: those weeks' values are single deal amounts, so no rep's deal list is needed.
    """
    # from a feature store ``tv.ds`` holds this rep's deals only, so whether every amount is known
    # is part of the key: the panels kept for one rep never decide for another
    amounts_known = bool(tv.ds.opportunities["amount"].notna().all())
    start = panel_start(tv, hist_start)

    def build():
        every = outcome_history(tv, start)
        value = store.pipeline_panel(tv.ds, start, tv.window.end, "pipeline_created")
        value = value.reindex(index=every.index, columns=every.columns)
        single = value.to_numpy(dtype=float)[every.to_numpy(dtype=float) == 1]
        single = single[np.isfinite(single)]
        panels = {}
        if amounts_known:  # a week's value over unknown amounts is no value
            panels[impact.PIPELINE_VALUE] = unobserved_as_missing(tv.ds, impact.deal_units(value, single))
        if tv.ds.has("stage_history"):
            panels["stage advancements"] = unobserved_as_missing(
                tv.ds, store.pipeline_panel(tv.ds, start, tv.window.end, "stage_advancements"))
        return panels

    panels = cached(tv, ("secondary_wide", amounts_known, start), build)
    return {name: rows_from(panel, hist_start).reindex(index=counts.index, columns=counts.columns)
            for name, panel in panels.items()}


def rep_series(tv: TeamView, metric: str, hist_start: pd.Timestamp, rep_id: str) -> pd.DataFrame:
    """The rep's weekly values of a commitment metric, DataFrame[week, value] in week order.

    A metric that is a sum of counts has a value in every week of every rep, so the panel's
    column is the rep's rows of the long frame; a share (NaN in weeks without activity, which a
    panel would not keep) is read from the long frame itself.
    """
    spec = tv.ds.config.commitment_metrics.get(metric)
    if spec is not None and spec.kind in store.SUM_KINDS:
        panel = metric_history(tv, metric, hist_start)
        if rep_id not in panel.columns:
            return pd.DataFrame({"week": panel.index[:0], "value": np.zeros(0)})
        col = panel[rep_id]
        return pd.DataFrame({"week": col.index.to_numpy(), "value": col.to_numpy()})
    long = store.metric_weekly(tv.ds, metric, hist_start, tv.window.end)
    return long.loc[long["rep_id"] == rep_id, ["week", "value"]].sort_values("week", kind="stable").reset_index(drop=True)


def commitment_changes(ds: Dataset, window: Window) -> pd.DataFrame:
    """Whether each commitment's behaviour really changed, for every commitment of the team.

    Returns
    -------
    DataFrame[commitment_id, rep_id, start, end, changed]
        ``changed`` is True when the activity rose as agreed, or the commitment is still too
        young to tell (the safe side for leaving a teammate out of a comparison).
    """
    cm = ds.commitments
    out = cm[["commitment_id", "rep_id", "start", "end"]].copy()
    out["changed"] = pd.Series(True, index=out.index, dtype=bool)
    if cm.empty or not ds.has("activities"):
        return out.reset_index(drop=True)
    changed = {}  # row label -> flag, set in one assignment (one .loc per row cost ~0.5 s at 1,000 reps)
    gap_weeks = int(ds.config.thresholds.baseline_gap_weeks)
    for metric, group in cm[cm["start"] < window.end].groupby("metric"):
        if metric not in ds.config.commitment_metrics:
            continue
        first = weeks_before(group["start"].min(), 30)
        long = metrics.metric_weekly(ds, metric, first, window.end)
        panel = metrics.weekly_panel(long, "value")
        rows = zip(group.index, group["rep_id"], group["start"], group["end"], group["target"], group["baseline"])
        for idx, rep, start, end, target, baseline in rows:
            if rep not in panel.columns:
                continue
            ac = adherence.activity_change(panel[rep], start.tz_localize(None), end.tz_localize(None),
                                           target=float(target), baseline=float(baseline), gap_weeks=gap_weeks)
            changed[idx] = bool(ac.changed or ac.adherence in ("kept", "partly kept", "too early"))
    if changed:
        out.loc[list(changed), "changed"] = list(changed.values())
    return out.reset_index(drop=True)


def peers_who_changed(tv: TeamView, rep_id: str, c: dict) -> list[str]:
    """Teammates whose own commitment in the weeks the pipeline test of ``c`` reads really changed their behaviour.

    Those weeks run from the longest baseline before ``c["start"]`` (with its gap) to the end of
    the longest post window after it (``coachnb.impact.analysed_rows``): a teammate who changed
    anywhere in them, during the rep's baseline included, went through a change of their own
    that would move the team trend, so they are no clean comparison. Teammates who committed
    and did not change stay in: leaving out every teammate with a commitment would leave too
    few to compare with.
    """
    s = impact_settings(tv.ds)
    start = c["start"]
    lo = start - pd.Timedelta(weeks=s.gap_weeks + s.max_pre_weeks)
    hi = start + pd.Timedelta(weeks=s.lag_weeks + max(s.max_post_weeks, s.horizon_weeks))
    ch = tv.commitment_changes
    overlap = ch[(ch["rep_id"] != rep_id) & (ch["start"] < hi) & (ch["end"] >= lo) & ch["changed"]]
    return sorted(set(overlap["rep_id"].astype(str)))


