"""Feature store: compute every team-wide table once, let each report read only its slice.

A batch of reports for hundreds of reps would otherwise load the raw activity log (millions
of rows) in every worker. :func:`build_store` does one vectorized pass over all reps instead
(load, validate, the report's :class:`~coachnb.report.TeamView`, the coaching funnel tables
and a daily rep x day "cube" of the counts the commitment and scenario panels are built from)
and writes it as Parquet under ``<root>/.features/<key>/``. Workers then open the store
(:func:`open_store`, once per process) and build a report from it without the raw activities:
what a worker holds is the reps table, small team-wide tables (reps x weeks) and the one
rep's own records, read with a Parquet row filter.

Layout of a store (``features.json`` marks a complete one; it is written last)::

    features.json        key, data fingerprint, as_of, lookback, coachnb version, present tables
    meta.pkl             config, warnings, excluded rows, scalar values of the funnel tables
    team/<name>.parquet  TeamView tables and coaching funnel tables, whole
    cube.parquet         rep x local day counts (activities by type, logging, opportunities
                         created and their amounts, stage advancements), over the days any
                         panel needs
    whole/<table>.parquet  small raw tables every report needs (reps, commitments, 1:1s)
    reps/<table>.parquet   per-rep raw tables sorted by rep_id in small row groups
                           (opportunities, stage_history with its owner, self_assessments)

The key hashes the input fingerprint (the same value as ``Dataset.fingerprint``, computed
from the files' bytes without parsing them, so an unchanged rerun skips even the load),
the coaching date, the window and the coachnb version: any change to an input file gives a
new key, hence a new store.

Reports from a store equal reports from the raw folder (``tests/test_features.py``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__

#: bump when the layout or the meaning of a stored table changes
FORMAT = 1
MARKER = "features.json"
#: raw tables stored per rep (sorted by rep_id, small row groups) and whole
PER_REP = ("opportunities", "stage_history", "self_assessments")
WHOLE = ("reps", "commitments", "coaching_sessions")
ROW_GROUP_ROWS = 4096
TEAM_TABLES = ("weekly_activity", "weekly_pipeline", "conversion", "velocity", "team_velocity", "stalled",
               "outcomes", "timeliness", "coverage", "attainment", "red_flags", "commitment_changes", "open_deal_ages",
               "open_stage_mix")
ACTIVITY_COLUMNS = ("call", "email", "meeting", "demo", "other")
CUBE_COLUMNS = ACTIVITY_COLUMNS + ("logged_n", "logged_ok", "opportunities_created", "pipeline_created",
                                   "stage_advancements")
_OWNER = "_owner_rep_id"


# =============================================================================== keys
def input_fingerprint(data_dir, config=None) -> str:
    """``Dataset.fingerprint`` of a data folder, from the files' bytes alone (no parsing).

    Mirrors :func:`coachnb.loading._check`: coachnb version, ``process.toml``, the config and
    each table's file name, length and bytes, in :data:`schema.TABLES` order.
    """
    from .config import load_config
    from .loading import _locate
    from .schema import TABLES

    data_dir = Path(data_dir)
    hasher = hashlib.sha256(f"coachnb {__version__}\0".encode())
    toml = data_dir / "process.toml"
    if toml.is_file():
        hasher.update(b"process.toml\0" + toml.read_bytes())
    hasher.update(repr(config if config is not None else load_config(data_dir)).encode())
    files = _locate(data_dir, [])
    for name in TABLES:
        if name in files:
            data = files[name].read_bytes()
            hasher.update(files[name].name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return hasher.hexdigest()


def _as_of_date(as_of) -> str:
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
    raw = json.dumps({"fingerprint": fingerprint, "as_of": _as_of_date(as_of), "lookback_weeks": int(lookback_weeks),
                      "coachnb": __version__, "code": code_fingerprint(), "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def store_path(root, fingerprint: str, as_of, lookback_weeks: int) -> Path:
    return Path(root) / ".features" / store_key(fingerprint, as_of, lookback_weeks)


def is_store(path) -> bool:
    """True when ``path`` is a complete feature store (rather than a data folder)."""
    try:
        return (Path(path) / MARKER).is_file()
    except (TypeError, OSError):
        return False


# =============================================================================== the pass
def _write(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> None:
    frame.reset_index(drop=True).to_parquet(path, index=False, row_group_size=row_group_size)


def _cube(ds, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Counts per rep and local day in ``[start, end)`` (local midnights), non-empty rows only."""
    from . import metrics
    from .config import ACTIVITY_TYPES

    cfg = ds.config
    rep_ids = metrics._rep_ids(ds)
    d0 = int(metrics._local_days(pd.Series([start]), cfg)[0])
    d1 = int(metrics._local_days(pd.Series([end]), cfg)[0])
    n_days = max(d1 - d0, 0)
    n = len(rep_ids) * n_days
    out = {}

    def cells(rep, ts):
        ts = pd.Series(ts)
        inside = ((ts >= start) & (ts < end)).to_numpy(dtype=bool, na_value=False)
        rows = np.flatnonzero(inside)
        rc = metrics._codes(pd.Series(rep).iloc[rows], rep_ids)
        day = metrics._local_days(ts.iloc[rows], cfg) - d0
        ok = rc >= 0
        return rc[ok] * n_days + day[ok], rows[ok]

    acts = ds.activities
    cell, rows = cells(acts["rep_id"], acts["occurred_at"])
    tcode = metrics._codes(acts["type"].iloc[rows], ACTIVITY_TYPES)
    known = tcode >= 0
    counts = np.bincount(cell[known] * len(ACTIVITY_TYPES) + tcode[known],
                         minlength=n * len(ACTIVITY_TYPES)).reshape(-1, len(ACTIVITY_TYPES))
    for i, t in enumerate(ACTIVITY_TYPES):
        out[t] = counts[:, i]
    lag = metrics._days(acts["logged_at"].iloc[rows] - acts["occurred_at"].iloc[rows]).to_numpy(
        dtype=float, na_value=np.nan)
    has = ~np.isnan(lag)
    out["logged_n"] = np.bincount(cell[has], minlength=n)
    out["logged_ok"] = np.bincount(cell[has & (lag <= cfg.thresholds.late_logging_days)], minlength=n)
    del counts, lag, has, tcode, known, cell, rows
    opp = ds.opportunities
    cell, rows = cells(opp["rep_id"], opp["created_at"])
    out["opportunities_created"] = np.bincount(cell, minlength=n)
    amount = np.nan_to_num(opp["amount"].iloc[rows].to_numpy(dtype=float, na_value=np.nan), nan=0.0)
    out["pipeline_created"] = np.bincount(cell, weights=amount, minlength=n)
    adv = metrics._advancements(metrics._stage_entries(ds))
    cell, _ = cells(adv["rep_id"], adv["entered_at"])
    out["stage_advancements"] = np.bincount(cell, minlength=n)
    frame = pd.DataFrame({k: (v.astype(np.float64) if k == "pipeline_created" else v.astype(np.int32))
                          for k, v in out.items()})
    frame.insert(0, "day", np.tile(np.arange(d0, d1, dtype=np.int32), len(rep_ids)))
    frame.insert(0, "rep_id", pd.array(np.repeat(rep_ids.to_numpy(dtype=object), n_days), dtype="string"))
    nonzero = frame[list(CUBE_COLUMNS)].to_numpy().any(axis=1)
    return frame[nonzero].reset_index(drop=True)


def _panel_start(ds, tv) -> pd.Timestamp:
    """Earliest day any commitment panel or scenario of any rep reads (see report.commitment_reviews)."""
    from .coaching import CONVERSION_WEEKS, _focus_window
    from .report import _active_commitments, weeks_before

    start = min(tv.history_start, _focus_window(tv.window.as_of, ds, max(CONVERSION_WEEKS, 13))[0])
    if ds.has("commitments"):
        for rep_id in ds.reps["rep_id"].astype(str):
            chosen = _active_commitments(ds, rep_id, tv.window)
            for s in chosen["start"]:
                start = min(start, weeks_before(s, 52))
    return start


def build_store(data, as_of, lookback_weeks: int = 13, root=".", *, force: bool = False,
                verbose: bool = False) -> Path:
    """Build (or reuse) the feature store for a data folder, coaching date and window.

    Parameters
    ----------
    data : str, Path or Dataset
        A data folder, or an already loaded Dataset (its ``fingerprint`` keys the store).
    as_of : str or Timestamp
        The coaching date (required: the store is for one date).
    lookback_weeks : int
    root : str or Path
        The store goes to ``<root>/.features/<key>/`` (the batch uses its report folder).
    force : bool
        Rebuild even when a complete store with the same key exists.

    Returns
    -------
    Path of the store; pass it as ``features`` to the notebooks or as ``data`` to
    :func:`coachnb.report.rep_report`.
    """
    from .schema import Dataset

    t0 = time.perf_counter()
    lookback_weeks = int(lookback_weeks)
    fingerprint = data.fingerprint if isinstance(data, Dataset) else input_fingerprint(data)
    path = store_path(root, fingerprint, as_of, lookback_weeks)
    if is_store(path) and not force:
        if verbose:
            print(f"coachnb: feature store {path} is up to date ({time.perf_counter() - t0:.1f} s)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _build_into(data, as_of, lookback_weeks, tmp, fingerprint)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        print(f"coachnb: feature store written to {path} ({time.perf_counter() - t0:.1f} s)")
    return path


def _build_into(data, as_of, lookback_weeks: int, out: Path, fingerprint: str) -> None:
    from . import coaching, report
    from .loading import load
    from .schema import Dataset

    ds = data if isinstance(data, Dataset) else load(data)
    ds_fingerprint = ds.fingerprint or fingerprint
    as_of_ts = report.resolve_as_of(_as_of_date(as_of), ds)
    # computed afresh (not from the process caches: the store must not depend on what ran before)
    tv = _fresh_team_view(ds, as_of_ts, lookback_weeks)
    (out / "team").mkdir()
    for name in TEAM_TABLES:
        _write(getattr(tv, name), out / "team" / f"{name}.parquet")
    funnel_scalars = {}
    for weeks in sorted({lookback_weeks, 13}):
        tables = coaching.compute_funnel_tables(ds, as_of_ts, weeks)
        scalars = {}
        for k, v in tables.items():
            if isinstance(v, pd.DataFrame):
                _write(v, out / "team" / f"funnel{weeks}_{k}.parquet")
            else:
                scalars[k] = v
        funnel_scalars[weeks] = scalars
    # the scenario's window starts a whole number of weeks (not days) before a local midnight, so
    # across a DST change it is not a local midnight: its frames are stored as computed
    from . import metrics

    s_start, s_end = coaching._focus_window(as_of_ts, ds, coaching.CONVERSION_WEEKS)
    windows = {}
    for name, spec in ds.config.commitment_metrics.items():
        if spec.kind in ("activity_count", "opportunities_created"):
            _write(metrics.metric_weekly(ds, name, s_start, s_end), out / "team" / f"window_metric.{name}.parquet")
            windows[("metric", name, s_start, s_end)] = f"window_metric.{name}.parquet"
    _write(metrics.weekly_pipeline(ds, s_start, s_end), out / "team" / "window_pipeline.parquet")
    windows[("pipeline", None, s_start, s_end)] = "window_pipeline.parquet"
    cube_start = _panel_start(ds, tv)
    _write(_cube(ds, cube_start, tv.window.end), out / "cube.parquet")

    (out / "whole").mkdir()
    for name in WHOLE:
        _write(ds.table(name), out / "whole" / f"{name}.parquet")
    (out / "reps").mkdir()
    owner = ds.opportunities.set_index("opportunity_id")["rep_id"]
    for name in PER_REP:
        frame = ds.table(name)
        rep = frame["opportunity_id"].map(owner) if name == "stage_history" else frame["rep_id"]
        frame = frame.assign(**{_OWNER: pd.array(rep, dtype="string")})
        frame = frame.sort_values(_OWNER, kind="stable")
        _write(frame, out / "reps" / f"{name}.parquet", row_group_size=ROW_GROUP_ROWS)

    meta = {"config": ds.config, "warnings": ds.warnings, "excluded": ds.excluded, "funnel": funnel_scalars,
            "present": ds.present, "data_dir": ds.data_dir, "cube_start": cube_start, "windows": windows,
            "has": {name: ds.has(name) for name in ("activities", "opportunities", "stage_history", "commitments",
                                                      "coaching_sessions", "self_assessments", "reps")}}
    with open(out / "meta.pkl", "wb") as fh:
        pickle.dump(meta, fh, protocol=pickle.HIGHEST_PROTOCOL)
    info = {"format": FORMAT, "coachnb": __version__, "fingerprint": ds_fingerprint, "as_of": _as_of_date(as_of),
            "lookback_weeks": lookback_weeks, "key": store_key(fingerprint, as_of, lookback_weeks),
            "reps": int(len(ds.reps)), "data_dir": ds.data_dir, "cube_start": str(cube_start),
            "written_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}
    (out / MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")


def _fresh_team_view(ds, as_of_ts, lookback_weeks):
    from . import report

    saved = dict(report._TEAM_CACHE)
    report._TEAM_CACHE.clear()
    try:
        return report.team_view(ds, as_of_ts, lookback_weeks)
    finally:
        report._TEAM_CACHE.clear()
        report._TEAM_CACHE.update(saved)


def prepare_for_batch(data_dir, as_of, out="reports", lookback_weeks: int = 13, dataset=None,
                      verbose: bool = True) -> Path:
    """The batch's hook: build the store under ``<out>/<as_of>/`` once, in the parent.

    Returns the store path to pass as the ``features`` parameter of every rep notebook and
    of the team overview.
    """
    root = Path(out).resolve() / _as_of_date(as_of)
    return build_store(dataset if dataset is not None else data_dir, as_of, lookback_weeks, root, verbose=verbose)


# =============================================================================== reading
from .schema import Dataset  # noqa: E402  (after the helpers above, which import lazily)


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
        from .schema import empty_frame

        self.path = Path(path)
        self.info = json.loads((self.path / MARKER).read_text(encoding="utf-8"))
        if self.info.get("format") != FORMAT or self.info.get("coachnb") != __version__:
            raise ValueError(f"feature store {self.path} was written by another coachnb version; rebuild it")
        with open(self.path / "meta.pkl", "rb") as fh:
            self.meta = pickle.load(fh)
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
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path / "reps" / f"{name}.parquet")
            col = pf.schema_arrow.get_field_index(_OWNER)
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
        import pyarrow.compute as pc

        rep_id = str(rep_id)
        pf, bounds = self._per_rep_file(name)
        groups = [i for i, b in enumerate(bounds) if b is None or b[0] <= rep_id <= b[1]]
        table = pf.read_row_groups(groups, use_threads=False) if groups else pf.schema_arrow.empty_table()
        table = table.filter(pc.equal(table.column(_OWNER), rep_id))
        frame = table.to_pandas().drop(columns=[_OWNER]).reset_index(drop=True)
        return frame.astype(self._empty[name].dtypes.to_dict()) if frame.empty else frame

    def dataset_for(self, rep_id: str | None) -> StoreDataset:
        """The Dataset one rep's report needs (``None``: the team-wide part only, for the overview)."""
        if rep_id is None:
            if self._team_ds is None:
                self._team_ds = self._dataset({name: self._empty[name] for name in PER_REP})
            return self._team_ds
        return self._dataset({name: self.rep_slice(name, rep_id) for name in PER_REP})

    # ---------------------------------------------------------------- team tables
    def check(self, as_of_ts: pd.Timestamp, lookback_weeks: int) -> None:
        if as_of_ts.strftime("%Y-%m-%d") != self.info["as_of"] or int(lookback_weeks) != self.info["lookback_weeks"]:
            raise ValueError(f"feature store {self.path} is for as_of {self.info['as_of']} and "
                             f"{self.info['lookback_weeks']} weeks, not {as_of_ts:%Y-%m-%d} and {lookback_weeks}")

    def team_view(self, ds, as_of_ts: pd.Timestamp, lookback_weeks: int, history_weeks: int = 52):
        from .report import TeamView, report_window, weeks_before

        self.check(as_of_ts, lookback_weeks)
        w = report_window(as_of_ts, self.config, int(lookback_weeks))
        return TeamView(ds=ds, window=w, history_start=weeks_before(w.end, history_weeks),
                        cache=self.panel_cache, **self.team)

    def funnel_tables(self, as_of, lookback_weeks: int) -> dict:
        from .coaching import _focus_window

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
        start, end = _focus_window(as_of, self._dataset_for_config(), weeks)
        if (start, end) != (tables["start"], tables["end"]):
            raise ValueError(f"feature store {self.path} is for another coaching date")
        return tables

    def _dataset_for_config(self):
        return self.dataset_for(None)

    # ---------------------------------------------------------------- the cube
    def window_frame(self, kind: str, name, start, end) -> pd.DataFrame | None:
        """A frame the pass stored for exactly this window (the scenario's), or None."""
        from .metrics import to_local

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
            from .metrics import _codes, _rep_ids

            import pyarrow as pa
            import pyarrow.parquet as pq

            # Read column by column, rep_id dictionary-encoded: the rep codes come from the few
            # distinct ids, not from a string object per row, and no more than one column is held
            # as Arrow at a time (reading the whole table first was a worker's peak: ~70 MB above
            # what the worker then holds, at 1000 reps)
            pf = pq.ParquetFile(self.path / "cube.parquet", read_dictionary=["rep_id"])

            def column(name):
                return pf.read(columns=[name], use_threads=False).column(name).combine_chunks()

            rep = column("rep_id")
            per_entry = _codes(pd.Index(rep.dictionary.to_pylist(), dtype="string"), _rep_ids(self.dataset_for(None)))
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

    def weekly(self, ds, start, end, columns) -> tuple:
        """Sums of cube ``columns`` per rep and week over ``[start, end)``, as metrics' grid would."""
        from . import metrics

        grid = metrics._Grid(ds, start, end)
        cfg = self.config
        for ts in (grid.start, grid.end):
            if ts != ts.normalize():
                raise ValueError(f"the feature store counts whole local days; {ts} is not a local midnight")
        if grid.start < self.meta["cube_start"]:
            raise ValueError(f"the feature store holds days from {self.meta['cube_start']:%Y-%m-%d}, not {grid.start}")
        codes, day, values = self.cube()
        d0 = int(metrics._local_days(pd.Series([grid.start]), cfg)[0])
        d1 = int(metrics._local_days(pd.Series([grid.end]), cfg)[0])
        lo, hi = np.searchsorted(day, [d0, d1], side="left")
        out = {}
        if grid.n_weeks and hi > lo:
            week = (metrics._week_day(day[lo:hi].astype(np.int64), cfg) - grid.week_days[0]) // 7
            cell = codes[lo:hi].astype(np.int64) * grid.n_weeks + week
        else:
            cell = np.zeros(0, dtype=np.int64)
            lo = hi = 0
        for col in columns:
            out[col] = grid.count(cell, weights=values[col][lo:hi].astype(np.float64))
        return grid, out

    def panel(self, ds, start, end, columns) -> tuple:
        """Wide week x rep frames of cube sums: what ``report._panel`` makes of a long frame.

        Returns
        -------
        (grid, dict of column -> ndarray (weeks, reps)) ; see :meth:`weekly`.
        """
        grid, flat = self.weekly(ds, start, end, columns)
        return grid, {k: v.reshape(grid.n_reps, grid.n_weeks).T for k, v in flat.items()}


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


def _store_of(ds):
    return getattr(ds, "feature_store", None)


# =============================================================================== metrics from the store
def metric_weekly(ds, metric_name: str, start, end) -> pd.DataFrame:
    """:func:`coachnb.metrics.metric_weekly`, from the store's cube when ``ds`` comes from one."""
    from . import metrics

    store = _store_of(ds)
    if store is None:
        return metrics.metric_weekly(ds, metric_name, start, end)
    specs = ds.config.commitment_metrics
    if metric_name not in specs:
        from .errors import ConfigError
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
    from . import metrics

    store = _store_of(ds)
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
    store = _store_of(ds)
    return None if store is None else store.funnel_tables(as_of, lookback_weeks)


# =============================================================================== wide panels
#: commitment metric kinds whose weekly values are plain sums of cube columns
_SUM_KINDS = ("activity_count", "opportunities_created", "stage_advancements")


def _wide(grid, values: np.ndarray) -> pd.DataFrame:
    """A (weeks, reps) array as ``report._panel`` lays out a long frame: weeks down, reps across."""
    from . import metrics

    week = pd.Index(metrics._days_to_week_ts(grid.week_days, grid.config), name="week")
    reps = pd.Index(grid.rep_ids, name="rep_id")
    return pd.DataFrame(values, index=week, columns=reps)


def metric_panel(ds, metric_name: str, start, end) -> pd.DataFrame:
    """Week x rep panel of a commitment metric: ``report._panel(metric_weekly(...), "value")``.

    From a feature store the panel is summed from the cube straight into its wide layout, without
    the long rep-week frame (a string per row) and its pivot; otherwise it is that pivot.
    """
    from .report import _panel

    store = _store_of(ds)
    spec = ds.config.commitment_metrics.get(metric_name)
    if store is not None and spec is not None and spec.kind in _SUM_KINDS \
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
            return _wide(grid, value)
    return _panel(metric_weekly(ds, metric_name, start, end), "value")


def pipeline_panel(ds, start, end, column: str = "opportunities_created") -> pd.DataFrame:
    """Week x rep panel of one :func:`weekly_pipeline` column (``report._panel`` of it), from the
    cube when ``ds`` comes from a feature store."""
    from .report import _panel

    store = _store_of(ds)
    if store is not None and store.window_frame("pipeline", None, start, end) is None:
        try:
            grid, v = store.panel(ds, start, end, [column])
        except ValueError:
            pass
        else:
            dtype = float if column == "pipeline_created" else np.int64
            return _wide(grid, v[column].astype(dtype))
    return _panel(weekly_pipeline(ds, start, end), column)
