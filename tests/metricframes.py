"""Build small typed Datasets by hand for metric tests.

``make_ds(reps=[...], activities=[...], ...)`` takes each table as a list of dicts (only
the columns that matter; the rest are filled with missing values) and returns a
:class:`coachnb.schema.Dataset` whose frames have exactly the schema's columns and dtypes.
Naive datetimes (strings or Timestamps) are local time in ``config.timezone``; tz-aware
ones are converted to it, as the loader does.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

from coachnb.config import ProcessConfig
from coachnb.schema import TABLES, Dataset, empty_frame


@lru_cache(maxsize=None)
def _empty(table: str, tz: str) -> pd.DataFrame:
    return empty_frame(table, tz)


def typed_frame(table: str, rows: list[dict] | None, tz: str = "UTC") -> pd.DataFrame:
    """A frame of ``table`` with the schema dtypes holding ``rows``."""
    rows = rows or []
    base = _empty(table, tz)
    if not rows:
        return base.copy()
    raw = pd.DataFrame(rows)
    unknown = set(raw.columns) - set(base.columns)
    if unknown:
        raise KeyError(f"{table}: unknown columns {sorted(unknown)}")
    out = {}
    for col in TABLES[table].columns:
        values = raw[col.name] if col.name in raw else pd.Series([None] * len(raw))
        if col.kind in ("datetime", "date"):
            parsed = pd.Series([pd.NaT if v is None or (isinstance(v, float) and pd.isna(v)) else pd.Timestamp(v)
                                for v in values])
            stamps = [
                (t if t is pd.NaT else (t.tz_convert(tz) if t.tzinfo is not None else t.tz_localize(tz)))
                for t in parsed
            ]
            out[col.name] = pd.Series(pd.DatetimeIndex(stamps, tz=tz)).astype(f"datetime64[ns, {tz}]")
        elif col.kind == "float":
            out[col.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            out[col.name] = values.astype("string")
    return pd.DataFrame(out)


def make_ds(reps=None, activities=None, opportunities=None, stage_history=None,
            config: ProcessConfig | None = None, **other_tables) -> Dataset:
    """A Dataset from lists of row dicts; absent tables are empty typed frames.

    ``reps`` may be a list of rep ids (strings) for brevity: names/teams are filled in and
    the hire date is 2020-01-01.
    """
    config = config or ProcessConfig()
    tz = config.timezone
    if reps and isinstance(reps[0], str):
        reps = [{"rep_id": r, "name": f"Rep {r}", "team": "T", "manager": "M", "hire_date": "2020-01-01"}
                for r in reps]
    tables = {"reps": reps, "activities": activities, "opportunities": opportunities,
              "stage_history": stage_history, **other_tables}
    frames = {name: typed_frame(name, tables.get(name), tz) for name in TABLES}
    present = frozenset(name for name, rows in tables.items() if rows)
    return Dataset(**frames, config=config, present=present)
