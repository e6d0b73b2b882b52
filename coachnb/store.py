"""Feature store, read side: a report reads its team-wide tables and its rep's own records here.

A batch of reports for hundreds of reps would otherwise load the raw activity log (millions
of rows) in every worker. The batch builds the store once (:mod:`coachnb.store_build`): every
team-wide table of the report's :class:`~coachnb.team.TeamView`, the coaching funnel tables
and a daily rep x day "cube" of the counts the commitment and scenario panels are built from,
written as Parquet under ``<root>/.features/<key>/``. Workers open it once per process
(:func:`open_store`) and build a report from it without the raw activities: what a worker holds
is the reps table, small team-wide tables (reps x weeks) and the one rep's own records, read
from the Parquet row groups that hold that rep.

Layout of a store (``features.json`` marks a complete one; it is written last)::

    features.json        key, data fingerprint, as_of, lookback, coachnb version, present tables
    meta.json            config, warnings, scalar values of the funnel tables, the stored window
                         frames, cube start, ``has`` flags, present tables, data folder
    excluded.parquet     the rows left out while loading
    team/<name>.parquet  TeamView tables and coaching funnel tables, whole
    cube.parquet         rep x local day counts (activities by type, logging, opportunities
                         created and their amounts, stage advancements), over the days any
                         panel needs
    whole/<table>.parquet  small raw tables every report needs (reps, commitments, 1:1s)
    reps/<table>.parquet   per-rep raw tables sorted by rep_id in small row groups
                           (opportunities, stage_history with its owner, self_assessments)
    overview_rows.json     added after the build by the batch: every rep's team-overview row and
                           the teams' activity effects computed from this store, so the index and
                           the manager pages don't compute them again (:func:`coachnb.overview.complete_overview`;
                           not part of a complete store, checked as data when read)

The key hashes the input fingerprint (:func:`coachnb.loading.input_fingerprint`), the
coaching date, the window, the coachnb version and its source: any change to an input file
or to the code gives a new key, hence a new store.

Nothing in a store is executable: its metadata is JSON and Parquet, and everything read back is
checked as data (:func:`read_info`, :func:`decode_meta`) before it is used, since the folder may
sit on a shared file system others can write to. A store that fails a check raises ValueError
naming the file, and :func:`coachnb.store_build.build_store` rebuilds it.

The functions at the end (:func:`metric_weekly`, :func:`weekly_pipeline`, :func:`metric_panel`,
:func:`pipeline_panel`, :func:`funnel_tables`) are what analyses call: from a store's Dataset
they read the cube, from any other Dataset they compute with :mod:`coachnb.metrics`. Reports
from a store equal reports from the raw folder (``tests/test_store.py``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import metrics
from .calendar import WeekGrid, codes_of, focus_window, local_days, sorted_rep_ids, to_local
from .config import ACTIVITY_TYPES, ProcessConfig
from .errors import ConfigError, Problem
from .schema import Dataset, empty_frame
from .version import __version__

#: bump when the layout or the meaning of a stored table changes
FORMAT = 2
MARKER = "features.json"
#: the store's metadata (JSON) and the rows left out while loading (Parquet)
META = "meta.json"
EXCLUDED = "excluded.parquet"
EXCLUDED_COLUMNS = ("file", "row", "reason")
#: tables whose ``Dataset.has`` answer the store keeps (it holds no activities to ask)
HAS_TABLES = ("activities", "opportunities", "stage_history", "commitments", "coaching_sessions",
              "self_assessments", "reps")
#: what ``features.json`` must hold, and the type of each value
INFO_FIELDS = {"format": int, "coachnb": str, "fingerprint": str, "as_of": str, "lookback_weeks": int, "key": str}
#: a store's folder name (a key), and a build's temporary folder next to it
KEY_PATTERN = re.compile(r"[0-9a-f]{20}")
TEMP_PATTERN = re.compile(r"\.[0-9a-f]{20}\..+")
#: raw tables stored per rep (sorted by rep_id, small row groups) and whole
PER_REP = ("opportunities", "stage_history", "self_assessments")
WHOLE = ("reps", "commitments", "coaching_sessions")
ROW_GROUP_ROWS = 4096
TEAM_TABLES = ("weekly_activity", "weekly_pipeline", "conversion", "velocity", "team_velocity", "stalled",
               "outcomes", "timeliness", "coverage", "attainment", "red_flags", "commitment_changes", "open_deal_ages",
               "open_stage_mix")
CUBE_COLUMNS = ACTIVITY_TYPES + ("logged_n", "logged_ok", "opportunities_created", "pipeline_created",
                                 "stage_advancements")
#: the column of a per-rep table that names the rep who owns the row
OWNER = "_owner_rep_id"
#: commitment metric kinds whose weekly values are plain sums of cube columns
SUM_KINDS = ("activity_count", "opportunities_created", "stage_advancements")


# =============================================================================== keys
def as_of_date(as_of) -> str:
    """The coaching date of a store as ``YYYY-MM-DD`` (required: a store is for one date)."""
    if as_of in (None, ""):
        raise ValueError("a feature store needs an explicit as_of date (the batch's coaching date)")
    return pd.Timestamp(as_of).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of coachnb's own source: a changed metric must not be served from an old store."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml") and path.is_file():
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def store_key(fingerprint: str, as_of, lookback_weeks: int) -> str:
    """The store's folder name: a hash of data, date, window, coachnb version, code and format."""
    raw = json.dumps({"fingerprint": fingerprint, "as_of": as_of_date(as_of), "lookback_weeks": int(lookback_weeks),
                      "coachnb": __version__, "code": code_fingerprint(), "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def store_path(root, fingerprint: str, as_of, lookback_weeks: int) -> Path:
    """Where the store for these inputs lives under ``root``: ``<root>/.features/<key>``."""
    return Path(root) / ".features" / store_key(fingerprint, as_of, lookback_weeks)


def is_store(path) -> bool:
    """True when ``path`` is a complete feature store (rather than a data folder)."""
    try:
        return (Path(path) / MARKER).is_file()
    except (TypeError, OSError):
        return False



# =============================================================================== metadata as data
def _fail(where, message: str):
    """Raise the ValueError every failed check of a store's file raises: it names the file."""
    raise ValueError(f"feature store file {where}: {message}; the store is damaged or was tampered with "
                     f"(it is rebuilt on the next run)")


def to_json(value):
    """A value of the store's metadata as plain JSON data (dataclasses as objects of their fields).

    Parameters
    ----------
    value : dataclass instance, tuple, list, dict with str keys, str, int, float, bool or None
        Timestamps are not accepted here: :func:`encode_meta` writes them as ISO strings.

    Returns
    -------
    The same value built from dicts, lists and scalars only; :func:`from_json` with the value's
    type hint rebuilds it exactly (ints stay ints, floats floats, tuples tuples).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"only str keys can be stored, not {sorted(map(repr, value))}")
        return {k: to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"a {type(value).__name__} can't be stored in a feature store's metadata")


def from_json(raw, hint, where, what: str = "value"):
    """Rebuild a value of type ``hint`` from :func:`to_json`'s data, checking every part's type.

    Parameters
    ----------
    raw : JSON data (as ``json.loads`` returns it)
    hint : type or type hint
        A dataclass (every field required, no other key), ``tuple[X, ...]``, ``dict[str, X]``,
        ``X | None``, ``str``, ``int``, ``float`` (an int stays an int, as the config had it) or ``bool``.
    where : Path or str
        The file, for the error message.
    what : str
        The value's name in the file, for the error message.

    Returns
    -------
    The value; raises ValueError naming ``where`` and ``what`` when ``raw`` does not fit ``hint``.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        names = [f.name for f in dataclasses.fields(hint)]
        if not isinstance(raw, dict) or set(raw) != set(names):
            _fail(where, f"{what} should be an object with the keys {names}")
        return hint(**{n: from_json(raw[n], hints[n], where, f"{what}.{n}") for n in names})
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        return from_json(raw, next(a for a in args if a is not type(None)), where, what)
    if origin is tuple and isinstance(raw, list):
        return tuple(from_json(v, args[0], where, f"{what}[{i}]") for i, v in enumerate(raw))
    if origin is dict and isinstance(raw, dict):
        return {k: from_json(v, args[1], where, f"{what}[{k!r}]") for k, v in raw.items()}
    if hint is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw
    if hint in (str, int, bool) and type(raw) is hint:
        return raw
    _fail(where, f"{what} should be {getattr(hint, '__name__', hint)}, not {type(raw).__name__}")


def _timestamp(raw, config: ProcessConfig, where, what: str) -> pd.Timestamp:
    """An ISO timestamp with its UTC offset, as the tz-aware local Timestamp the build had."""
    if not isinstance(raw, str):
        _fail(where, f"{what} should be an ISO timestamp string, not {type(raw).__name__}")
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, OverflowError):
        ts = None
    if ts is None or ts is pd.NaT or ts.tzinfo is None:
        _fail(where, f"{what} should be an ISO timestamp with its UTC offset, not {raw[:40]!r}")
    return ts.tz_convert(config.timezone)


def _scalar_to_json(value):
    """A funnel scalar: a Timestamp as ``{"timestamp": ISO}``, anything else as plain data."""
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            raise TypeError("the feature store stores tz-aware timestamps only")
        return {"timestamp": value.isoformat()}
    return to_json(value.item() if isinstance(value, np.generic) else value)


def _scalar_from_json(raw, config: ProcessConfig, where, what: str):
    """A funnel scalar back from :func:`_scalar_to_json`'s data; ValueError for anything else."""
    if isinstance(raw, dict):
        if set(raw) != {"timestamp"}:
            _fail(where, f"{what} should be a scalar or {{\"timestamp\": ISO}}")
        return _timestamp(raw["timestamp"], config, where, what)
    if raw is None or isinstance(raw, (str, bool, int, float)):
        return raw
    _fail(where, f"{what} should be a scalar, not {type(raw).__name__}")


def encode_meta(meta: dict) -> dict:
    """The store's metadata as the JSON data ``meta.json`` holds (excluded rows go to Parquet).

    Parameters
    ----------
    meta : dict
        ``config`` (ProcessConfig), ``warnings`` (list of Problem), ``funnel`` (weeks -> scalars of
        the funnel tables), ``windows`` ((kind, name, start, end) -> file name in ``team/``),
        ``cube_start`` (Timestamp), ``has`` (table -> bool), ``present`` (table names), ``data_dir``.

    Returns
    -------
    dict of plain JSON data; :func:`decode_meta` gives ``meta`` back.
    """
    return {"format": FORMAT, "config": to_json(meta["config"]),
            "warnings": [to_json(w) for w in meta["warnings"]],
            "funnel": [{"weeks": int(weeks), "scalars": {k: _scalar_to_json(v) for k, v in scalars.items()}}
                       for weeks, scalars in meta["funnel"].items()],
            "windows": [{"kind": kind, "name": name, "start": start.isoformat(), "end": end.isoformat(), "file": file}
                        for (kind, name, start, end), file in meta["windows"].items()],
            "cube_start": meta["cube_start"].isoformat(), "has": {k: bool(v) for k, v in meta["has"].items()},
            "present": sorted(meta["present"]), "data_dir": meta["data_dir"]}


def _records(raw, keys: set, where, what: str) -> list:
    """``raw``, checked to be a list of objects with exactly ``keys``."""
    if not isinstance(raw, list) or not all(isinstance(r, dict) and set(r) == keys for r in raw):
        _fail(where, f"{what} should be a list of objects with the keys {sorted(keys)}")
    return raw


def _windows(raw, config: ProcessConfig, where) -> dict:
    """The stored window frames, (kind, metric, start, end) -> a bare Parquet file name in ``team/``."""
    out = {}
    for i, r in enumerate(_records(raw, {"kind", "name", "start", "end", "file"}, where, "windows")):
        kind, name, file = r["kind"], r["name"], r["file"]
        if kind not in ("metric", "pipeline") or not (name is None or isinstance(name, str)) \
                or not isinstance(file, str) or Path(file).name != file or not file.endswith(".parquet"):
            _fail(where, f"windows[{i}] should name a kind, a metric and a Parquet file in team/")
        start = _timestamp(r["start"], config, where, f"windows[{i}].start")
        out[(kind, name, start, _timestamp(r["end"], config, where, f"windows[{i}].end"))] = file
    return out


def decode_meta(raw, where) -> dict:
    """Check ``meta.json``'s data and rebuild what :func:`encode_meta` was given (without ``excluded``).

    Parameters
    ----------
    raw : JSON data as read from ``meta.json``
    where : Path or str
        The file, named by the ValueError raised on anything of the wrong type or with missing or
        unknown keys.

    Returns
    -------
    dict with the keys of :func:`encode_meta`'s ``meta``.
    """
    keys = {"format", "config", "warnings", "funnel", "windows", "cube_start", "has", "present", "data_dir"}
    if not isinstance(raw, dict) or set(raw) != keys:
        _fail(where, f"should be an object with the keys {sorted(keys)}")
    if raw["format"] != FORMAT:
        _fail(where, f"format {raw['format']!r} is not {FORMAT}")
    config = from_json(raw["config"], ProcessConfig, where, "config")
    if not isinstance(raw["warnings"], list):
        _fail(where, "warnings should be a list")
    funnel = {}
    for i, r in enumerate(_records(raw["funnel"], {"weeks", "scalars"}, where, "funnel")):
        weeks, scalars = from_json(r["weeks"], int, where, f"funnel[{i}].weeks"), r["scalars"]
        if not isinstance(scalars, dict) or not {"start", "end"} <= set(scalars):
            _fail(where, f"funnel[{i}].scalars should be an object holding start and end")
        funnel[weeks] = {k: _scalar_from_json(v, config, where, f"funnel[{i}].{k}") for k, v in scalars.items()}
    present = from_json(raw["present"], tuple[str, ...], where, "present")
    has = from_json(raw["has"], dict[str, bool], where, "has")
    if set(has) != set(HAS_TABLES):
        _fail(where, f"has should hold the tables {list(HAS_TABLES)}")
    return {"config": config, "warnings": [from_json(w, Problem, where, f"warnings[{i}]")
                                           for i, w in enumerate(raw["warnings"])],
            "funnel": funnel, "windows": _windows(raw["windows"], config, where),
            "cube_start": _timestamp(raw["cube_start"], config, where, "cube_start"), "has": has,
            "present": frozenset(present), "data_dir": from_json(raw["data_dir"], str | None, where, "data_dir")}


def _load_json(path: Path):
    """The JSON data of ``path``; ValueError naming it when it can't be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        _fail(path, f"can't be read as JSON ({type(exc).__name__}: {str(exc)[:200]})")


def read_info(path) -> dict:
    """The checked ``features.json`` of the store at ``path``.

    Returns
    -------
    dict holding at least :data:`INFO_FIELDS`, each of its type; raises ValueError naming the file otherwise.
    """
    where = Path(path) / MARKER
    info = _load_json(where)
    if not isinstance(info, dict):
        _fail(where, "should be a JSON object")
    for name, kind in INFO_FIELDS.items():
        if type(info.get(name)) is not kind:
            _fail(where, f"{name} should be {kind.__name__}, not {type(info.get(name)).__name__}")
    return info


def read_meta(path) -> dict:
    """The checked metadata of the store at ``path``: ``meta.json`` decoded, plus ``excluded`` from Parquet.

    Returns
    -------
    dict (see :func:`decode_meta`) with ``excluded``, the DataFrame of rows left out while loading.
    """
    path = Path(path)
    meta = decode_meta(_load_json(path / META), path / META)
    try:
        excluded = pd.read_parquet(path / EXCLUDED)
    except (OSError, ValueError, pa.ArrowException) as exc:
        _fail(path / EXCLUDED, f"can't be read as Parquet ({type(exc).__name__})")
    if tuple(excluded.columns) != EXCLUDED_COLUMNS:
        _fail(path / EXCLUDED, f"should hold the columns {list(EXCLUDED_COLUMNS)}")
    meta["excluded"] = excluded
    return meta


def store_files(path) -> list:
    """Every Parquet file a complete store at ``path`` holds besides the funnel and window tables."""
    path = Path(path)
    return ([path / "team" / f"{n}.parquet" for n in TEAM_TABLES] + [path / "whole" / f"{n}.parquet" for n in WHOLE]
            + [path / "reps" / f"{n}.parquet" for n in PER_REP] + [path / "cube.parquet", path / EXCLUDED])


def verify_store(path, expected: dict) -> str | None:
    """Why the store at ``path`` can't be used for these inputs, or None when it can.

    Parameters
    ----------
    path : Path
    expected : dict
        What ``features.json`` must say: the values of :data:`INFO_FIELDS` the build would write.

    Returns
    -------
    None when the store is complete, its ``features.json`` matches ``expected`` and its metadata
    reads back as valid data; else a reason, in words (the caller rebuilds).
    """
    path = Path(path)
    if not is_store(path) or path.is_symlink():
        return "no complete store"
    try:
        info = read_info(path)
        differs = [k for k in expected if info.get(k) != expected[k]]
        if differs:
            return f"{path / MARKER} says another {', '.join(differs)}"
        missing = [p for p in store_files(path) if not p.is_file()]
        if missing:
            return f"{missing[0]} is missing"
        read_meta(path)
    except ValueError as exc:
        return str(exc)
    return None


# =============================================================================== reading
@dataclass
class StoreDataset(Dataset):
    """A Dataset read from a feature store: the whole reps table, commitments and 1:1s, and
    (for a rep's report) that rep's own opportunities, stage history and self-assessments.
    Activities are not held; ``has`` answers for the full data."""

    feature_store: object = None
    has_flags: dict = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return bool(self.has_flags.get(name, False))


#: commitment panels kept per worker (memory must not grow with the number of reports rendered)
PANEL_CACHE_SIZE = 12
#: week windows (:meth:`FeatureStore.week_window`) a process keeps: a grid of reps and weeks each
WINDOWS_KEPT = 32
#: reps whose own rows (:meth:`FeatureStore.dataset_for`) a process keeps: a report reads them
#: three times (the report, its coaching record, its overview row), the next report is another rep's
REPS_KEPT = 2


class _Bounded(dict):
    """A dict that forgets its oldest entries beyond ``size``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        while len(self) > self.size:
            del self[next(iter(self))]


class FeatureStore:
    """An open feature store (one per process, see :func:`open_store`)."""

    def __init__(self, path):
        self.path = Path(path)
        self.info = read_info(self.path)
        if self.info["format"] != FORMAT or self.info["coachnb"] != __version__:
            raise ValueError(f"feature store {self.path} was written by another coachnb version; rebuild it")
        self.meta = read_meta(self.path)
        self.config = self.meta["config"]
        self.whole = {name: pd.read_parquet(self.path / "whole" / f"{name}.parquet") for name in WHOLE}
        self.team = {name: pd.read_parquet(self.path / "team" / f"{name}.parquet") for name in TEAM_TABLES}
        self._empty = {name: empty_frame(name, self.config.timezone) for name in ("activities",) + PER_REP}
        # TeamView.cache shared by every rep of this process; bounded, since each entry is a reps x
        # weeks panel and rebuilding one from the cube takes milliseconds
        self.panel_cache: dict = _Bounded(PANEL_CACHE_SIZE)
        self._funnel: dict = {}
        self._cube = None
        self._team_ds = None
        self._files: dict = {}
        self._windows: dict = _Bounded(WINDOWS_KEPT)
        self._rep_rows: dict = _Bounded(REPS_KEPT)
        self._hires: dict | None = None

    # ---------------------------------------------------------------- datasets
    def _dataset(self, per_rep: dict) -> StoreDataset:
        m = self.meta
        return StoreDataset(
            reps=self.whole["reps"], activities=self._empty["activities"],
            commitments=self.whole["commitments"], coaching_sessions=self.whole["coaching_sessions"],
            config=self.config, excluded=m["excluded"], warnings=m["warnings"], fingerprint=self.info["fingerprint"],
            data_dir=m["data_dir"], present=m["present"], feature_store=self, has_flags=m["has"], **per_rep)

    def _per_rep_file(self, name: str):
        """The table's open Parquet file and each row group's (min, max) owner, read once."""
        if name not in self._files:
            pf = pq.ParquetFile(self.path / "reps" / f"{name}.parquet")
            col = pf.schema_arrow.get_field_index(OWNER)
            bounds = []
            for i in range(pf.num_row_groups):
                st = pf.metadata.row_group(i).column(col).statistics
                bounds.append((st.min, st.max) if st is not None and st.has_min_max else None)
            self._files[name] = (pf, bounds)
        return self._files[name]

    def rep_slice(self, name: str, rep_id: str) -> pd.DataFrame:
        """One rep's rows of a per-rep table (Parquet row groups of other reps are skipped).

        The file's metadata is read once per process; a rep's rows are read from the row groups
        whose owner range holds the rep (rows are sorted by owner), then filtered: the frame
        ``pd.read_parquet(..., filters=[(owner, "==", rep_id)])`` gives, without a dataset scan.
        """
        rep_id = str(rep_id)
        pf, bounds = self._per_rep_file(name)
        groups = [i for i, b in enumerate(bounds) if b is None or b[0] <= rep_id <= b[1]]
        table = pf.read_row_groups(groups, use_threads=False) if groups else pf.schema_arrow.empty_table()
        table = table.filter(pc.equal(table.column(OWNER), rep_id))
        frame = table.to_pandas().drop(columns=[OWNER]).reset_index(drop=True)
        return frame.astype(self._empty[name].dtypes.to_dict()) if frame.empty else frame

    def dataset_for(self, rep_id: str | None) -> StoreDataset:
        """The Dataset one rep's report needs (``None``: the team-wide part only, for the overview).

        A rep's own rows are read from the files once for the last :data:`REPS_KEPT` reps (keyed by
        rep id, in this store object: a rebuilt store is another object) and each call gets a new
        Dataset of new frames over them (copy-on-write: changing one changes no other).
        """
        if rep_id is None:
            if self._team_ds is None:
                self._team_ds = self._dataset({name: self._empty[name] for name in PER_REP})
            return self._team_ds
        rep_id = str(rep_id)
        if rep_id not in self._rep_rows:
            self._rep_rows[rep_id] = {name: self.rep_slice(name, rep_id) for name in PER_REP}
        return self._dataset({name: frame.copy(deep=False) for name, frame in self._rep_rows[rep_id].items()})

    def hire_dates(self) -> dict:
        """:func:`first_hire_dates` of the store's reps table, worked out once per process."""
        if self._hires is None:
            self._hires = first_hire_dates(self.whole["reps"])
        return self._hires

    # ---------------------------------------------------------------- team tables
    def check(self, as_of_ts: pd.Timestamp, lookback_weeks: int) -> None:
        """Raise ValueError unless the store is for this coaching date and window length."""
        if as_of_ts.strftime("%Y-%m-%d") != self.info["as_of"] or int(lookback_weeks) != self.info["lookback_weeks"]:
            raise ValueError(f"feature store {self.path} is for as_of {self.info['as_of']} and "
                             f"{self.info['lookback_weeks']} weeks, not {as_of_ts:%Y-%m-%d} and {lookback_weeks}")

    def funnel_tables(self, as_of, lookback_weeks: int) -> dict:
        """The coaching funnel tables of ``lookback_weeks`` (``coaching.compute_funnel_tables``), as stored."""
        weeks = int(lookback_weeks)
        if weeks not in self.meta["funnel"]:
            raise ValueError(f"feature store {self.path} holds funnel tables for "
                             f"{sorted(self.meta['funnel'])} weeks, not {weeks}")
        if weeks not in self._funnel:
            tables = dict(self.meta["funnel"][weeks])
            for p in (self.path / "team").glob(f"funnel{weeks}_*.parquet"):
                tables[p.stem.split("_", 1)[1]] = pd.read_parquet(p)
            self._funnel[weeks] = tables
        tables = self._funnel[weeks]
        start, end = focus_window(as_of, self.dataset_for(None), weeks)
        if (start, end) != (tables["start"], tables["end"]):
            raise ValueError(f"feature store {self.path} is for another coaching date")
        return tables

    # ---------------------------------------------------------------- the cube
    def window_frame(self, kind: str, name, start, end) -> pd.DataFrame | None:
        """A frame the pass stored for exactly this window (the scenario's), or None."""
        key = (kind, name, to_local(start, self.config), to_local(end, self.config))
        file = self.meta["windows"].get(key)
        if file is None:
            return None
        if key not in self.panel_cache:
            self.panel_cache[key] = pd.read_parquet(self.path / "team" / file)
        return self.panel_cache[key].copy()

    def cube(self):
        """The day cube as ``(codes, day, values)``: rows of known reps only, sorted by day.

        Sorted by day, a window is one contiguous slice (found by binary search) instead of a
        mask over every row; the counts are held in the smallest integer type that holds them
        exactly (a day's count of one activity type is small), amounts as float32 when every
        amount is exact in it. The sums :meth:`weekly` returns are computed in float64 from
        these exact values, in the same order, so they are unchanged.
        """
        if self._cube is None:
            # Read column by column, rep_id dictionary-encoded: the rep codes come from the few
            # distinct ids, not from a string object per row, and no more than one column is held
            # as Arrow at a time (reading the whole table first was a worker's peak: ~70 MB above
            # what the worker then holds, at 1000 reps)
            pf = pq.ParquetFile(self.path / "cube.parquet", read_dictionary=["rep_id"])

            def column(name):
                return pf.read(columns=[name], use_threads=False).column(name).combine_chunks()

            rep = column("rep_id")
            per_entry = codes_of(pd.Index(rep.dictionary.to_pylist(), dtype="string"), sorted_rep_ids(self.dataset_for(None)))
            indices = rep.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            del rep
            codes = np.where(indices >= 0, per_entry[np.clip(indices, 0, None)], -1) if len(per_entry) else \
                np.full(len(indices), -1, dtype=np.int64)
            del indices
            day = column("day").to_numpy()
            # rows of reps not in the reps table never count (weekly() dropped them by mask before)
            order = np.flatnonzero(codes >= 0)
            order = order[np.argsort(day[order], kind="stable")]
            codes = _smallest_int(codes[order])
            day = day[order].astype(np.int32)
            values = {}
            for k in CUBE_COLUMNS:
                values[k] = _compact(column(k).to_numpy()[order])
                pa.default_memory_pool().release_unused()
            del order, pf
            pa.default_memory_pool().release_unused()
            self._cube = (codes, day, values)
        return self._cube

    def week_window(self, ds, start, end) -> tuple:
        """``(grid, first_day, end_day)`` of ``[start, end)``: its :class:`coachnb.calendar.WeekGrid`
        and its first and end local day numbers, as :meth:`weekly` reads the cube with them.

        Made once per window for the store's own Datasets (its reps table and calendar): every
        report of a process asks for the same few windows, and each costs four time-zone
        conversions. A Dataset with other reps or another calendar gets its own, never kept.

        Raises ValueError for a window that is not whole local days or starts before the cube.
        """
        own = ds.reps is self.whole["reps"] and ds.config is self.config
        key = (str(pd.Timestamp(start)), str(pd.Timestamp(end)))
        if own and key in self._windows:
            return self._windows[key]
        grid = WeekGrid(ds, start, end)
        cfg = self.config
        for ts in (grid.start, grid.end):
            if ts != ts.normalize():
                raise ValueError(f"the feature store counts whole local days; {ts} is not a local midnight")
        if grid.start < self.meta["cube_start"]:
            raise ValueError(f"the feature store holds days from {self.meta['cube_start']:%Y-%m-%d}, not {grid.start}")
        window = (grid, int(local_days(pd.Series([grid.start]), cfg)[0]), int(local_days(pd.Series([grid.end]), cfg)[0]))
        if own:
            self._windows[key] = window
        return window

    def weekly(self, ds, start, end, columns) -> tuple:
        """Sums of cube ``columns`` per rep and week over ``[start, end)``, as metrics' grid would."""
        grid, d0, d1 = self.week_window(ds, start, end)
        codes, day, values = self.cube()
        lo, hi = np.searchsorted(day, [d0, d1], side="left")
        out = {}
        if grid.n_weeks and hi > lo:
            # grid.week_days[0] begins a week, so a day's week is (day - that day) // 7: the same number
            # as coachnb.calendar.week_day(day) - week_days[0], without its modulo and an int64 copy of every day
            week = (day[lo:hi] - grid.week_days[0]) // 7
            cell = codes[lo:hi].astype(np.int64) * grid.n_weeks + week
        else:
            cell = np.zeros(0, dtype=np.int64)
            lo = hi = 0
        for col in columns:
            out[col] = grid.count(cell, weights=values[col][lo:hi].astype(np.float64))
        return grid, out

    def panel(self, ds, start, end, columns) -> tuple:
        """Wide week x rep frames of cube sums: what ``metrics.weekly_panel`` makes of a long frame.

        Returns
        -------
        (grid, dict of column -> ndarray (weeks, reps)) ; see :meth:`weekly`.
        """
        grid, flat = self.weekly(ds, start, end, columns)
        return grid, {k: v.reshape(grid.n_reps, grid.n_weeks).T for k, v in flat.items()}


def first_hire_dates(reps: pd.DataFrame) -> dict:
    """Rep id -> hire date (local, naive ``numpy.datetime64`` in ns) from the rep's first row of ``reps``."""
    hire = reps["hire_date"]
    if getattr(hire.dt, "tz", None) is not None:
        hire = hire.dt.tz_localize(None)
    return dict(zip(reversed(reps["rep_id"].tolist()), reversed(hire.to_numpy(dtype="datetime64[ns]"))))


def _smallest_int(a: np.ndarray) -> np.ndarray:
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if len(a) == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(dtype)
    return a.astype(np.int64)


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` in the smallest dtype that holds every value exactly."""
    if np.issubdtype(a.dtype, np.integer):
        return _smallest_int(a)
    small = a.astype(np.float32)
    return small if np.array_equal(small.astype(a.dtype), a, equal_nan=True) else a


def open_store(path) -> FeatureStore:
    """The store at ``path``, opened once per process (reopened if it was rebuilt)."""
    p = Path(path).resolve()
    stamp = (p / MARKER).stat().st_mtime_ns
    key = (str(p), stamp)
    store = _OPEN.get(key)
    if store is None:
        _OPEN.clear()
        store = _OPEN[key] = FeatureStore(p)
    return store


_OPEN: dict = {}


def store_of(ds) -> FeatureStore | None:
    """The feature store a Dataset was read from, or None for a Dataset loaded from a folder."""
    return getattr(ds, "feature_store", None)


# =============================================================================== metrics from the store
def metric_weekly(ds, metric_name: str, start, end) -> pd.DataFrame:
    """:func:`coachnb.metrics.metric_weekly`, from the store's cube when ``ds`` comes from one."""
    store = store_of(ds)
    if store is None:
        return metrics.metric_weekly(ds, metric_name, start, end)
    specs = ds.config.commitment_metrics
    if metric_name not in specs:
        raise ConfigError(f"unknown commitment metric {metric_name!r}; known: {sorted(specs)}")
    m = specs[metric_name]
    stored = store.window_frame("metric", metric_name, start, end)
    if stored is not None:
        return stored
    if m.kind == "activity_count":
        grid, v = store.weekly(ds, start, end, list(m.activity_types))
        value = sum(v[t].astype(np.int64) for t in m.activity_types).astype(float)
    elif m.kind in ("opportunities_created", "stage_advancements"):
        grid, v = store.weekly(ds, start, end, [m.kind])
        value = v[m.kind].astype(np.int64).astype(float)
    elif m.kind == "logged_on_time_share":
        grid, v = store.weekly(ds, start, end, ["logged_n", "logged_ok"])
        n, k = v["logged_n"], v["logged_ok"]
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan).astype(float)
    else:
        return metrics.metric_weekly(ds, metric_name, start, end)  # raises the same error
    if np.ndim(value) == 0:  # activity_count with no types
        value = np.zeros(grid.n_reps * grid.n_weeks)
    return grid.frame({"value": value})


def weekly_pipeline(ds, start, end) -> pd.DataFrame:
    """:func:`coachnb.metrics.weekly_pipeline`, from the store's cube when ``ds`` comes from one."""
    store = store_of(ds)
    if store is None:
        return metrics.weekly_pipeline(ds, start, end)
    stored = store.window_frame("pipeline", None, start, end)
    if stored is not None:
        return stored
    grid, v = store.weekly(ds, start, end, ["opportunities_created", "pipeline_created", "stage_advancements"])
    return grid.frame({"opportunities_created": v["opportunities_created"].astype(np.int64),
                       "pipeline_created": v["pipeline_created"].astype(float),
                       "stage_advancements": v["stage_advancements"].astype(np.int64)})


def funnel_tables(ds, as_of, lookback_weeks: int):
    """The store's funnel tables when ``ds`` comes from a store, else None."""
    store = store_of(ds)
    return None if store is None else store.funnel_tables(as_of, lookback_weeks)


# =============================================================================== wide panels
def metric_panel(ds, metric_name: str, start, end) -> pd.DataFrame:
    """Week x rep panel of a commitment metric: ``report.metrics.weekly_panel(metric_weekly(...), "value")``.

    From a feature store the panel is summed from the cube straight into its wide layout, without
    the long rep-week frame (a string per row) and its pivot; otherwise it is that pivot.
    """
    store = store_of(ds)
    spec = ds.config.commitment_metrics.get(metric_name)
    if store is not None and spec is not None and spec.kind in SUM_KINDS \
            and store.window_frame("metric", metric_name, start, end) is None:
        columns = list(spec.activity_types) if spec.kind == "activity_count" else [spec.kind]
        try:
            grid, v = store.panel(ds, start, end, columns)
        except ValueError:  # a window the cube does not cover: the long way
            pass
        else:
            if columns:
                value = sum(v[c].astype(np.int64) for c in columns).astype(float)
            else:
                value = np.zeros((grid.n_weeks, grid.n_reps))
            return grid.wide(value)
    return metrics.weekly_panel(metric_weekly(ds, metric_name, start, end), "value")


def pipeline_panel(ds, start, end, column: str = "opportunities_created") -> pd.DataFrame:
    """Week x rep panel of one :func:`weekly_pipeline` column (``metrics.weekly_panel`` of it), from the
    cube when ``ds`` comes from a feature store."""
    store = store_of(ds)
    if store is not None and store.window_frame("pipeline", None, start, end) is None:
        try:
            grid, v = store.panel(ds, start, end, [column])
        except ValueError:
            pass
        else:
            dtype = float if column == "pipeline_created" else np.int64
            return grid.wide(v[column].astype(dtype))
    return metrics.weekly_panel(weekly_pipeline(ds, start, end), column)
