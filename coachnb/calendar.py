"""Weeks, windows and the coaching date: the calendar every later stage counts in.

A leaf of the package (it imports only the process config and the data contract), so that
metrics, the feature store, the statistics and the report all cut time the same way.

Conventions
-----------
Local time
    Every point in time is read in the team's time zone (``config.timezone``). Naive values
    and date strings are local wall-clock time.
Weeks
    A week is labelled by the naive Timestamp of its first local day (``config.week_start``),
    the value :func:`coachnb.config.week_start` gives. Internally a day is an int64 count of
    days since 1970-01-01 (:func:`local_days`), which is ~20x faster than periods on millions
    of rows.
Windows
    ``start`` inclusive, ``end`` exclusive. A report's window (:class:`Window`) is a whole
    number of weeks ending before the week of the coaching date: that week is still open.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import WEEKDAYS, ProcessConfig, week_start
from .errors import AsOfError
from .loading import FIRST_YEAR, LAST_YEAR, in_date_range
from .schema import TABLES, Dataset

__all__ = [
    "to_local", "week_dtype", "local_days", "week_day", "days_to_week_ts", "week_of",
    "in_days", "codes_of", "sorted_rep_ids", "WeekGrid", "resolve_as_of", "Window", "report_window",
    "weeks_before", "focus_window", "data_end", "latest_as_of", "check_as_of_covered",
    "one_pass", "pass_memo", "column_codes", "EventCodes", "event_codes",
]

#: the process events whose latest time is where the data ends (table, column)
EVENT_COLUMNS = (("activities", "occurred_at"), ("opportunities", "created_at"), ("opportunities", "closed_at"),
                 ("stage_history", "entered_at"))


# --------------------------------------------------------------------------- points in time and days
def to_local(value, config: ProcessConfig) -> pd.Timestamp:
    """A point in time as a tz-aware Timestamp in ``config.timezone``.

    Naive values (and date strings) are local time; a local midnight that does not exist
    (DST gap) moves forward, an ambiguous one takes the first (summer-time) instant.
    """
    t = pd.Timestamp(value)
    if t.tzinfo is None:
        return t.tz_localize(config.timezone, ambiguous=True, nonexistent="shift_forward")
    return t.tz_convert(config.timezone)


def week_dtype(config: ProcessConfig):
    """dtype :func:`coachnb.config.week_start` gives, so weeks from here merge with weeks from there."""
    probe = pd.Series(pd.DatetimeIndex(["2026-01-01"]).tz_localize("UTC"))
    return week_start(probe, config).dtype


def local_days(ts: pd.Series, config: ProcessConfig) -> np.ndarray:
    """Local calendar day of each timestamp, as int64 days since 1970-01-01 (NaT -> min int)."""
    s = pd.Series(ts)
    if s.dt.tz is not None:
        s = s.dt.tz_convert(config.timezone).dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def week_day(days: np.ndarray, config: ProcessConfig) -> np.ndarray:
    """First day (days since epoch) of the reporting week holding each local day.

    1970-01-01 was a Thursday (weekday 3 with Monday = 0), hence the ``+ 3``. Integer
    arithmetic instead of ``to_period`` because it is ~20x faster on millions of rows;
    ``tests/test_metrics.py`` checks it against :func:`coachnb.config.week_start`.
    """
    w = WEEKDAYS.index(config.week_start)
    return days - ((days + 3 - w) % 7)


def days_to_week_ts(days: np.ndarray, config: ProcessConfig) -> pd.Series:
    """Week labels (naive Timestamps, the dtype of :func:`week_dtype`) of day numbers."""
    return pd.Series(np.asarray(days, dtype="datetime64[D]").astype("datetime64[ns]")).astype(week_dtype(config))


def week_of(value, config: ProcessConfig) -> pd.Timestamp:
    """Naive Timestamp of the first day of the reporting week holding ``value`` (local time)."""
    t = to_local(value, config).tz_localize(None)
    d = np.array([t.to_datetime64().astype("datetime64[D]").astype(np.int64)])
    return pd.Timestamp(days_to_week_ts(week_day(d, config), config).iloc[0])


def in_days(delta: pd.Series) -> pd.Series:
    """Timedeltas as float days."""
    return delta / pd.Timedelta(days=1)


# --------------------------------------------------------------------------- the reps x weeks grid
def codes_of(values, categories) -> np.ndarray:
    """Position of each value in ``categories`` (int64), -1 when absent or missing.

    Strings are looked up with Arrow (``pyarrow.compute.index_in``) when both sides hold
    strings, ``categories`` are unique and have no missing value: the same codes as
    ``Index.get_indexer`` without converting every value to a Python object (a column of
    millions of activities cost ~0.2 s a call that way). Anything else (numbers, duplicate
    categories, which ``get_indexer`` refuses) takes the pandas path.
    """
    cats = categories if isinstance(categories, pd.Index) else pd.Index(list(categories))
    vals = values if isinstance(values, (pd.Series, pd.Index)) else pd.Index(values)
    if _arrow_lookup_fits(vals, cats):
        value_set = pa.array(cats.astype("string").array)
        if isinstance(value_set, pa.ChunkedArray):
            value_set = value_set.combine_chunks()
        strings = pa.array(vals.array)
        found = pc.index_in(strings, value_set=value_set.cast(strings.type))
        return np.asarray(pc.fill_null(found, -1)).astype(np.int64)
    return cats.get_indexer(pd.Index(vals)).astype(np.int64)


def _arrow_lookup_fits(values, categories: pd.Index) -> bool:
    """Whether :func:`codes_of` may look ``values`` up with Arrow: Arrow-backed strings in
    unique, complete string categories (where Arrow's and pandas' answers are the same)."""
    return (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"
            and pd.api.types.is_string_dtype(categories.dtype) and categories.is_unique
            and not categories.hasnans)


def sorted_rep_ids(ds: Dataset) -> pd.Index:
    """Every rep id of ``ds.reps``, sorted: the rows of every team table."""
    return pd.Index(np.sort(ds.reps["rep_id"].dropna().unique().astype(object)), dtype="string", name="rep_id")


# --------------------------------------------------------------------------- work shared by one pass
class _Pass:
    """What one :func:`one_pass` block keeps for its Dataset: the very table and config objects
    it began with (so a table swapped meanwhile is never answered from the memo) and the memo."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.parts = tuple(ds.table(name) for name in TABLES) + (ds.config,)
        self.memo: dict = {}

    def still_same(self) -> bool:
        parts = tuple(self.ds.table(name) for name in TABLES) + (self.ds.config,)
        return len(parts) == len(self.parts) and all(a is b for a, b in zip(parts, self.parts))


#: the passes running now (usually none or one: a feature store build)
_PASSES: list[_Pass] = []


@contextmanager
def one_pass(ds: Dataset) -> Iterator[None]:
    """Within the block, per-row work over ``ds``'s tables is done once and reused (:func:`pass_memo`).

    A feature store build computes some twenty team tables from the same millions of
    activities; each used to look up the rows' rep codes and local days again (~0.4 s a call at
    1,000 reps x 104 weeks). Only calls with this very Dataset object read the memo, and only
    while its tables and config are the objects the block began with; the memo is dropped when
    the block ends, so nothing outlives it (the store never depends on what ran before).

    Assumes the tables are not changed in place during the block (nothing in coachnb does: a
    Dataset's frames are read, never written).
    """
    p = _Pass(ds)
    _PASSES.append(p)
    try:
        yield
    finally:
        _PASSES.remove(p)


def pass_memo(ds: Dataset, key: tuple, compute: Callable[[], object]) -> object:
    """``compute()``, computed once per ``key`` inside a :func:`one_pass` block for ``ds``.

    Parameters
    ----------
    ds : Dataset
    key : tuple
        Names everything the value depends on besides ``ds``'s tables and config (e.g. a
        column and the categories it is coded in, or a cut-off date).
    compute : callable
        Makes the value. Callers never change what they get (arrays are made read-only here;
        a frame must be copied by the caller that hands it out).

    Returns
    -------
    The value; computed afresh (and not kept) outside a pass for ``ds``.
    """
    p = next((p for p in _PASSES if p.ds is ds), None)
    if p is None or not p.still_same():
        return compute()
    if key not in p.memo:
        value = compute()
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        p.memo[key] = value
    return p.memo[key]


def column_codes(ds: Dataset, table: str, column: str, categories) -> np.ndarray:
    """:func:`codes_of` of a whole column of a table of ``ds`` (shared within :func:`one_pass`)."""
    return pass_memo(ds, ("codes", table, column, tuple(categories)),
                     lambda: codes_of(ds.table(table)[column], categories))


@dataclass(frozen=True)
class EventCodes:
    """Every row of a table as an event in time, coded once for any window's grid.

    Attributes
    ----------
    rep : ndarray of int64
        Position of the row's rep in :func:`sorted_rep_ids`, -1 when unknown or missing.
    day : ndarray of int64
        The row's local day (:func:`local_days`).
    week : ndarray of int64
        ``week_day(day) // 7``: weeks are 7 days apart and start on the same weekday, so a row's
        column in a grid is ``week - grid.week_days[0] // 7`` exactly.
    ns : ndarray of int64
        The row's instant, nanoseconds since the epoch (UTC); NaT is the smallest int64, so
        it falls before every window.
    """

    rep: np.ndarray
    day: np.ndarray
    week: np.ndarray
    ns: np.ndarray


def event_codes(ds: Dataset, table: str, rep_column: str, time_column: str) -> EventCodes | None:
    """:class:`EventCodes` of ``ds.<table>``, kept for the :func:`one_pass` block for ``ds``.

    Returns None outside such a block, or when the time column is not time-zone aware (then
    the caller codes only the rows of its window, cheaper for one window of long data).
    """
    frame = ds.table(table)
    ts = frame[time_column]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype) or not any(p.ds is ds and p.still_same() for p in _PASSES):
        return None

    def compute() -> EventCodes:
        ns = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
        day = local_days(ts, ds.config)
        with np.errstate(over="ignore"):  # NaT's day wraps around; a NaT row is in no window
            week = week_day(day, ds.config) // 7
        out = EventCodes(column_codes(ds, table, rep_column, sorted_rep_ids(ds)), day, week, ns)
        for values in (out.day, out.week, out.ns):
            values.flags.writeable = False
        return out

    return pass_memo(ds, ("events", table, rep_column, time_column), compute)


class WeekGrid:
    """The reps x weeks frame of a window, and integer codes to scatter events into it.

    Parameters
    ----------
    ds : Dataset
        Its reps are the grid's rows (sorted ids), its config the calendar.
    start, end : Timestamp or str
        The window, ``[start, end)``, read as local time. Every week overlapping it is a column.
    """

    def __init__(self, ds: Dataset, start, end):
        cfg = ds.config
        self.config = cfg
        self.start = to_local(start, cfg)
        self.end = to_local(end, cfg)
        self.rep_ids = sorted_rep_ids(ds)
        if self.end > self.start:
            first = week_day(local_days(pd.Series([self.start]), cfg), cfg)[0]
            last = week_day(local_days(pd.Series([self.end - pd.Timedelta(1, "ns")]), cfg), cfg)[0]
            self.week_days = np.arange(first, last + 1, 7, dtype=np.int64)
        else:
            self.week_days = np.array([], dtype=np.int64)

    @property
    def n_reps(self) -> int:
        return len(self.rep_ids)

    @property
    def n_weeks(self) -> int:
        return len(self.week_days)

    def codes(self, rep_id: pd.Series, ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Flat cell index (rep-major) of each event and the mask of events inside the grid."""
        ts = pd.Series(ts)
        inside = (ts >= self.start).to_numpy(dtype=bool, na_value=False) & \
            (ts < self.end).to_numpy(dtype=bool, na_value=False)
        if self.n_weeks == 0:
            return np.zeros(0, dtype=np.int64), inside & False
        # look up reps and weeks only for rows in the window (a 13-week window of 2 years of data)
        rows = np.flatnonzero(inside)
        rep_code = codes_of(pd.Series(rep_id), self.rep_ids)[rows]  # whole column: cheaper than taking its strings
        wk = (week_day(local_days(ts.iloc[rows], self.config), self.config) - self.week_days[0]) // 7
        known = rep_code >= 0
        inside[rows[~known]] = False
        return (rep_code * self.n_weeks + wk)[known], inside

    def table_codes(self, ds: Dataset, table: str, rep_column: str, time_column: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`codes` of a table of ``ds`` (the grid's Dataset): from the rows' :func:`event_codes`
        inside a :func:`one_pass` block for ``ds``, else looked up for this window's rows."""
        ev = event_codes(ds, table, rep_column, time_column)
        if ev is None:
            frame = ds.table(table)
            return self.codes(frame[rep_column], frame[time_column])
        inside = (ev.ns >= self.start.value) & (ev.ns < self.end.value)
        if self.n_weeks == 0:
            return np.zeros(0, dtype=np.int64), inside & False
        rows = np.flatnonzero(inside)
        rep_code = ev.rep[rows]
        wk = ev.week[rows] - self.week_days[0] // 7
        known = rep_code >= 0
        inside[rows[~known]] = False
        return (rep_code * self.n_weeks + wk)[known], inside

    def count(self, cell: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Events (or their ``weights``) summed per cell, a flat rep-major array of every cell."""
        return np.bincount(cell, weights=weights, minlength=self.n_reps * self.n_weeks)

    def frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """The long rep-week frame (``rep_id``, ``week``, then ``columns``), rep-major."""
        out = pd.DataFrame({
            "rep_id": pd.array(np.repeat(self.rep_ids.to_numpy(dtype=object), self.n_weeks), dtype="string"),
            "week": np.tile(days_to_week_ts(self.week_days, self.config).to_numpy(), self.n_reps),
        })
        out["week"] = out["week"].astype(week_dtype(self.config))
        for name, values in columns.items():
            out[name] = values
        return out

    def wide(self, values: np.ndarray) -> pd.DataFrame:
        """A (weeks, reps) array as a panel: weeks down (``week``), reps across (``rep_id``)."""
        week = pd.Index(days_to_week_ts(self.week_days, self.config), name="week")
        reps = pd.Index(self.rep_ids, name="rep_id")
        return pd.DataFrame(values, index=week, columns=reps)


# --------------------------------------------------------------------------- the coaching date and windows
def data_end(ds: Dataset) -> pd.Timestamp | None:
    """The time of the data's last process event (activity, deal created or closed, stage entered),
    in the team's time zone; None when there is none."""
    last = []
    for table, column in EVENT_COLUMNS:
        frame = ds.table(table)
        if column in frame and len(frame):
            t = frame[column].max()
            if pd.notna(t):
                last.append(to_local(t, ds.config))
    return max(last) if last else None


def latest_as_of(ds: Dataset) -> pd.Timestamp | None:
    """The latest coaching date whose report period the data covers to its end (local midnight).

    A report's period ends with the week before the coaching date's week, so this is the start
    of the week after the last day with data, unless that day ends its week (then the next
    week's start): a period never holds a week the data only partly reaches.
    """
    end = data_end(ds)
    if end is None:
        return None
    day = end.normalize() + pd.Timedelta(days=1)  # the first day with no data
    first = week_day(local_days(pd.Series([day.tz_localize(None)]), ds.config), ds.config)[0]
    return to_local(pd.Timestamp(np.datetime64(int(first), "D")), ds.config)


def check_as_of_covered(as_of: pd.Timestamp, ds: Dataset) -> None:
    """Raise AsOfError when ``as_of``'s report period runs past the data's last record.

    Weeks after the data ends would read as real zeros ("activity fell to 53%"), so such a date
    is refused with the latest date the data supports, never reported.
    """
    latest = latest_as_of(ds)
    if latest is not None and as_of > latest:
        raise AsOfError(f"the data ends on {data_end(ds):%d %b %Y}, so a 1:1 on {as_of:%d %b %Y} would count the "
                        f"weeks after that as zeros; use --as-of {latest:%Y-%m-%d} or earlier (the latest date "
                        "the data covers), or load newer data")


def parse_as_of(as_of) -> pd.Timestamp:
    """A coaching date given as text, ``date`` or Timestamp, as a Timestamp; AsOfError when it is no
    date ("next monday") or lies outside the years the loader accepts (the same rule as the data)."""
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        ts = None
    if ts is None or pd.isna(ts):
        raise AsOfError(f"the coaching date {str(as_of)!r} is not a date; write it as YYYY-MM-DD")
    if not in_date_range(ts):
        raise AsOfError(f"the coaching date {str(as_of)!r} is outside the years {FIRST_YEAR}-{LAST_YEAR} the data may hold")
    return ts


def resolve_as_of(as_of, ds: Dataset) -> pd.Timestamp:
    """The coaching date as local midnight in the team's time zone.

    ``None`` or ``""`` means the latest date the data covers (:func:`latest_as_of`), or today
    for a folder without any process event: not today by default, whose period would run past
    the data.
    """
    if as_of in (None, ""):
        latest = latest_as_of(ds)
        as_of = latest.strftime("%Y-%m-%d") if latest is not None else date.today().isoformat()
    ts = parse_as_of(as_of)
    if ts.tzinfo is None:
        ts = ts.tz_localize(ds.config.timezone)
    return ts.tz_convert(ds.config.timezone).normalize()


@dataclass(frozen=True)
class Window:
    """The report's period: ``lookback_weeks`` whole weeks ending before the coaching date's week."""

    as_of: pd.Timestamp
    start: pd.Timestamp  # inclusive, local midnight of a week start
    end: pd.Timestamp  # exclusive
    weeks: int

    @property
    def label(self) -> str:
        last = self.end - pd.Timedelta(days=1)
        return f"{self.start:%d %b %Y} to {last:%d %b %Y} ({self.weeks} weeks)"


def weeks_before(ts: pd.Timestamp, weeks: int) -> pd.Timestamp:
    """Same local wall-clock time ``weeks`` weeks earlier (across a DST change, not 168 h multiples)."""
    return (ts.tz_localize(None) - pd.Timedelta(weeks=weeks)).tz_localize(ts.tz)


def report_window(as_of: pd.Timestamp, config: ProcessConfig, lookback_weeks: int) -> Window:
    """Whole weeks before the week holding ``as_of``: the week of the 1:1 itself is still open."""
    if lookback_weeks < 1:
        raise ValueError("lookback_weeks must be at least 1")
    naive_week = pd.Series([as_of.tz_localize(None)]).dt.to_period(config.week_freq).dt.start_time.iloc[0]
    end = naive_week.tz_localize(config.timezone)
    return Window(as_of, weeks_before(end, lookback_weeks), end, lookback_weeks)


def focus_window(as_of, ds: Dataset, weeks: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The ``weeks`` whole weeks before the week holding ``as_of``, as local Timestamps.

    Unlike :func:`report_window` the start is ``weeks`` times 168 hours before the end, so
    across a DST change it is not a local midnight: the focus and scenario tables were built
    on this window and keep it.
    """
    cfg = ds.config
    ts = pd.Timestamp(as_of)
    ts = ts.tz_convert(cfg.timezone) if ts.tzinfo is not None else ts.tz_localize(cfg.timezone)
    naive = ts.tz_localize(None)
    week0 = pd.Series([naive]).dt.to_period(cfg.week_freq).dt.start_time.iloc[0]
    end = week0.tz_localize(cfg.timezone)
    return end - pd.Timedelta(weeks=weeks), end
