"""Feature store, write side: one pass over the data computes every team-wide table a batch needs.

:func:`build_store` loads and validates the data once, computes the report's team view
(:func:`coachnb.team.compute_team_view`), the coaching funnel tables, the scenario window's
frames and the daily rep x day cube, and writes them with the raw tables a report needs, in
the layout :mod:`coachnb.store` describes and reads. The store is written into a temporary
folder and renamed into place, so a reader never sees half a store.

A store found under its key is used only when :func:`coachnb.store.verify_store` accepts it
(its ``features.json`` names these inputs and its metadata reads back as valid data); any other
is rebuilt. Each build also removes what killed builds left behind (temporary folders older than
:data:`TEMP_MAX_AGE_S`) and all but the :data:`KEEP_STORES` most recently used stores.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import coaching, metrics
from .calendar import (check_as_of_covered, codes_of, column_codes, event_codes, focus_window, local_days, one_pass,
                       resolve_as_of, sorted_rep_ids)
from .config import ACTIVITY_TYPES
from .loading import input_fingerprint, load
from .schema import Dataset
from .store import (CUBE_COLUMNS, EXCLUDED, EXCLUDED_COLUMNS, FORMAT, HAS_TABLES, KEY_PATTERN, MARKER, META, OWNER,
                    PER_REP, ROW_GROUP_ROWS, TEAM_TABLES, TEMP_PATTERN, WHOLE, as_of_date, encode_meta, store_key,
                    store_path, verify_store)
from .team import compute_team_view, reviews_start
from .version import __version__

#: complete stores kept under ``.features/`` (the most recently built or used; never the current one)
KEEP_STORES = 3
#: a build's temporary folder nothing under which changed for this long is a killed build's
#: leftover: a running build writes a file every few seconds once its team view is computed (the
#: batch also holds the report folder's lock), and a folder removed under a running build only
#: fails that build, whose reports then read the data folder
TEMP_MAX_AGE_S = 10 * 60


def _write(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> None:
    frame.reset_index(drop=True).to_parquet(path, index=False, row_group_size=row_group_size)


def _cube(ds, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Counts per rep and local day in ``[start, end)`` (local midnights), non-empty rows only."""
    cfg = ds.config
    rep_ids = sorted_rep_ids(ds)
    d0 = int(local_days(pd.Series([start]), cfg)[0])
    d1 = int(local_days(pd.Series([end]), cfg)[0])
    n_days = max(d1 - d0, 0)
    n = len(rep_ids) * n_days
    out = {}

    def cells(rep, ts):
        ts = pd.Series(ts)
        inside = ((ts >= start) & (ts < end)).to_numpy(dtype=bool, na_value=False)
        rows = np.flatnonzero(inside)
        rc = codes_of(pd.Series(rep), rep_ids)[rows]  # whole column: cheaper than taking its strings
        day = local_days(ts.iloc[rows], cfg) - d0
        ok = rc >= 0
        return rc[ok] * n_days + day[ok], rows[ok]

    def table_cells(table, rep_column, time_column):
        ev = event_codes(ds, table, rep_column, time_column)  # the build's one pass coded every row
        if ev is None:
            return cells(ds.table(table)[rep_column], ds.table(table)[time_column])
        rows = np.flatnonzero((ev.ns >= start.value) & (ev.ns < end.value))
        rc = ev.rep[rows]
        ok = rc >= 0
        return rc[ok] * n_days + (ev.day[rows] - d0)[ok], rows[ok]

    cell, rows = table_cells("activities", "rep_id", "occurred_at")
    tcode = column_codes(ds, "activities", "type", ACTIVITY_TYPES)[rows]
    known = tcode >= 0
    counts = np.bincount(cell[known] * len(ACTIVITY_TYPES) + tcode[known],
                         minlength=n * len(ACTIVITY_TYPES)).reshape(-1, len(ACTIVITY_TYPES))
    for i, t in enumerate(ACTIVITY_TYPES):
        out[t] = counts[:, i]
    lag = metrics.logging_lag_days(ds)[rows]
    has = ~np.isnan(lag)
    out["logged_n"] = np.bincount(cell[has], minlength=n)
    out["logged_ok"] = np.bincount(cell[has & (lag <= cfg.thresholds.late_logging_days)], minlength=n)
    del counts, lag, has, tcode, known, cell, rows
    opp = ds.opportunities
    cell, rows = table_cells("opportunities", "rep_id", "created_at")
    out["opportunities_created"] = np.bincount(cell, minlength=n)
    amount = np.nan_to_num(opp["amount"].iloc[rows].to_numpy(dtype=float, na_value=np.nan), nan=0.0)
    out["pipeline_created"] = np.bincount(cell, weights=amount, minlength=n)
    adv = metrics.advancements(metrics.stage_entries(ds))
    cell, _ = cells(adv["rep_id"], adv["entered_at"])
    out["stage_advancements"] = np.bincount(cell, minlength=n)
    frame = pd.DataFrame({k: (v.astype(np.float64) if k == "pipeline_created" else v.astype(np.int32))
                          for k, v in out.items()})
    frame.insert(0, "day", np.tile(np.arange(d0, d1, dtype=np.int32), len(rep_ids)))
    frame.insert(0, "rep_id", pd.array(np.repeat(rep_ids.to_numpy(dtype=object), n_days), dtype="string"))
    nonzero = frame[list(CUBE_COLUMNS)].to_numpy().any(axis=1)
    return frame[nonzero].reset_index(drop=True)


def _panel_start(ds, tv) -> pd.Timestamp:
    """Earliest day any commitment panel or scenario of any rep reads: every commitment on record is
    reviewed (the coaching record), not only those under 'since last time'."""
    return min(reviews_start(ds, tv.history_start, tv.window.as_of),
               focus_window(tv.window.as_of, ds, max(coaching.CONVERSION_WEEKS, 13))[0])


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
    t0 = time.perf_counter()
    lookback_weeks = int(lookback_weeks)
    fingerprint = data.fingerprint if isinstance(data, Dataset) else input_fingerprint(data)
    path = store_path(root, fingerprint, as_of, lookback_weeks)
    expected = {"format": FORMAT, "coachnb": __version__, "fingerprint": fingerprint, "as_of": as_of_date(as_of),
                "lookback_weeks": lookback_weeks, "key": path.name}
    why = "rebuild asked for" if force else verify_store(path, expected)
    if why is None:
        try:
            os.utime(path)  # used now: the pruning below keeps the most recently used stores
        except OSError:  # a read-only share: the store is still good to read
            pass
        clean_leftovers(path.parent, path)
        if verbose:
            print(f"coachnb: feature store {path} is up to date ({time.perf_counter() - t0:.1f} s)")
        return path
    if verbose and path.exists():
        print(f"coachnb: rebuilding feature store {path}: {why}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _build_into(data, as_of, lookback_weeks, tmp, fingerprint)
        if path.is_symlink():  # planted in place of a store: replaced, never followed
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    clean_leftovers(path.parent, path)
    if verbose:
        print(f"coachnb: feature store written to {path} ({time.perf_counter() - t0:.1f} s)")
    return path


def _build_into(data, as_of, lookback_weeks: int, out: Path, fingerprint: str) -> None:
    ds = data if isinstance(data, Dataset) else load(data)
    with one_pass(ds):  # the team tables share the rows' codes and stage entries (the memo ends with the build)
        _write_tables(ds, as_of, lookback_weeks, out, fingerprint)


def _write_tables(ds: Dataset, as_of, lookback_weeks: int, out: Path, fingerprint: str) -> None:
    """Compute every table of the store for ``ds`` and write them into ``out`` (see :func:`build_store`)."""
    ds_fingerprint = ds.fingerprint or fingerprint
    as_of_ts = resolve_as_of(as_of_date(as_of), ds)
    check_as_of_covered(as_of_ts, ds)  # a store is never built for weeks the data doesn't reach
    # computed afresh (not from the process caches: the store must not depend on what ran before)
    tv = compute_team_view(ds, as_of_ts, lookback_weeks)
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
    s_start, s_end = focus_window(as_of_ts, ds, coaching.CONVERSION_WEEKS)
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
        frame = frame.assign(**{OWNER: pd.array(rep, dtype="string")})
        frame = frame.sort_values(OWNER, kind="stable")
        _write(frame, out / "reps" / f"{name}.parquet", row_group_size=ROW_GROUP_ROWS)

    meta = {"config": ds.config, "warnings": ds.warnings, "funnel": funnel_scalars, "present": ds.present,
            "data_dir": ds.data_dir, "cube_start": cube_start, "windows": windows,
            "has": {name: ds.has(name) for name in HAS_TABLES}}
    # data only (JSON and Parquet): nothing a reader of the folder opens can run code
    (out / META).write_text(json.dumps(encode_meta(meta), indent=1), encoding="utf-8")
    _write(ds.excluded[list(EXCLUDED_COLUMNS)], out / EXCLUDED)
    info = {"format": FORMAT, "coachnb": __version__, "fingerprint": ds_fingerprint, "as_of": as_of_date(as_of),
            "lookback_weeks": lookback_weeks, "key": store_key(fingerprint, as_of, lookback_weeks),
            "reps": int(len(ds.reps)), "data_dir": ds.data_dir, "cube_start": str(cube_start),
            "written_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}
    (out / MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")


def _newest_mtime(folder: Path) -> float:
    """The latest modification time of ``folder`` and anything under it (symlinks not followed)."""
    newest = folder.lstat().st_mtime
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except OSError:  # removed meanwhile by the build that owns it
                pass
    return newest


def clean_leftovers(features_dir, current, now: float | None = None) -> list:
    """Remove killed builds' temporary folders and all but the most recently used stores.

    Parameters
    ----------
    features_dir : Path
        The ``.features`` folder.
    current : Path
        The store just built or reused: never removed.
    now : float, optional
        The time (``time.time()``) ages are measured from.

    Returns
    -------
    list of Path removed.

    Assumes a temporary folder (``.<key>.<random>``) nothing under which changed for
    :data:`TEMP_MAX_AGE_S` belongs to a build that died, while a younger one may belong to a
    build running now. Only folders named like a store or a temporary one are touched, never a
    symlink; a folder that can't be removed is left for the next build.
    """
    now = time.time() if now is None else now
    current = Path(current).name
    stale, stores = [], []
    try:
        entries = list(Path(features_dir).iterdir())
    except OSError:  # cleaning is housekeeping: it never fails the build it follows
        return []
    for entry in entries:
        try:
            if entry.is_symlink() or not entry.is_dir() or entry.name == current:
                continue
            if TEMP_PATTERN.fullmatch(entry.name) and now - _newest_mtime(entry) > TEMP_MAX_AGE_S:
                stale.append(entry)
            elif KEY_PATTERN.fullmatch(entry.name):
                stores.append((entry.lstat().st_mtime, entry.name, entry))
        except OSError:
            continue
    stale += [entry for *_, entry in sorted(stores, reverse=True)[max(KEEP_STORES - 1, 0):]]
    removed = []
    for entry in stale:
        try:
            shutil.rmtree(entry)
            removed.append(entry)
        except OSError:
            continue
    return removed
