"""Load and validate a data folder: the one implementation of the data contract's rules.

:func:`load` returns a :class:`~coachnb.schema.Dataset` or raises
:class:`~coachnb.errors.DataError` listing every problem; :func:`validate` runs exactly the
same checks (:func:`_check`) and returns a :class:`ValidationReport` instead of raising.

How values are read (the decisions a user may need to know; ``docs/data.md`` repeats them)
-----------------------------------------------------------------------------------------
* Every CSV cell is read as text first and converted here, so ids keep leading zeros and
  every failure can be pinned to a row. Row numbers are those a spreadsheet shows: the
  header is row 1, the first data row is row 2 (for Parquet: the record number + 1, as
  if it had a header). Blank lines are skipped by the CSV reader and not counted.
* Encoding: UTF-8 (with or without BOM) or UTF-16 with BOM. Anything else is read as
  Windows-1252 with a warning, because that is what Excel writes on Western-European PCs.
* Delimiter: ``,``, ``;``, tab or ``|``, whichever splits the header into the most known
  column names.
* Dates: ISO 8601 first (``2026-03-15``, ``2026-03-15 14:05``, with or without offset).
  Then, for what is left: ``15.03.2026`` (dots are always day-first), ``2026/03/15``,
  ``15-Mar-2026``, Excel serial day numbers (20000-80000), and slashed dates
  (``03/15/2026``). A slashed column is month-first if some value only makes sense
  month-first (second number > 12), day-first if some value only makes sense day-first,
  an error (``mixed_date_formats``) if it holds both, and an error
  (``ambiguous_date_format``) if no value decides it. Naive times are local time in
  ``process.toml``'s timezone; values with an offset are converted to it.
* Numbers: plain numbers, or with currency symbols/codes and thousands separators, which
  are stripped with a warning. A single comma followed by exactly three digits is a
  thousands separator (``1,234`` = 1234); any other single comma is a decimal comma
  (``3,5`` = 3.5); with both ``.`` and ``,`` the last one is the decimal mark.
* Rows are never dropped silently: the only rows left out are fully blank rows and
  stage_history rows whose stage is not in ``process.toml``; each is a warning and a row
  of ``Dataset.excluded``. Every other broken rule about a value is an error.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .config import ProcessConfig, load_config
from .errors import ConfigError, DataError, Problem
from .schema import TABLES, Column, Dataset, Table, empty_frame
from .version import __version__

#: individual problems listed per (file, column, rule) before the rest are summarised in one
MAX_LISTED = 10
#: rows named in a summarised problem
ROWS_NAMED = 5
DELIMITERS = (",", ";", "\t", "|")
#: the years a date may fall in, first and last included: far enough inside pandas' nanosecond
#: range (1677-2262) that a date localised to any time zone, two dates subtracted or a report
#: window added to one never overflows; commitments recorded by `coachnb commit add` obey it too
FIRST_YEAR, LAST_YEAR = 1900, 2100
DATE_MIN = pd.Timestamp(f"{FIRST_YEAR}-01-01")
DATE_MAX = pd.Timestamp(f"{LAST_YEAR + 1}-01-01") - pd.Timedelta(1, "ns")
#: pyarrow's reader needs a whole row inside one block; a file with a longer row is read again
#: with a block this size at least (the default, 1 MiB, keeps big files multi-threaded)
LARGE_BLOCK_BYTES = 1 << 26
NUMBER_NEVER_NEGATIVE_MONEY = ("amount", "quota_per_quarter")

# Report sections and the tables (and columns with data) they need. Reports and the CLI
# read this through `sections_supported`.
SECTIONS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "pipeline": (("opportunities", None),),
    "win_rate": (("opportunities", None),),
    "activity_volume": (("activities", None),),
    "activity_mix": (("activities", None),),
    "logging_timeliness": (("activities", "logged_at"),),
    "stage_conversion": (("stage_history", None),),
    "stage_velocity": (("stage_history", None),),
    "stalled_deals": (("stage_history", None),),
    "since_last_time": (("commitments", None),),
    "coaching_cadence": (("coaching_sessions", None),),
    "self_assessment": (("self_assessments", None),),
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SectionSupport:
    """Whether the data supports one report section; truthy when it does."""

    supported: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.supported


@dataclass
class ValidationReport:
    """Everything :func:`validate` found.

    Attributes
    ----------
    problems : list of Problem
        Errors and warnings, in the order found (files in :data:`schema.TABLES` order).
    sections_supported : dict of str -> SectionSupport
        For each report section in :data:`SECTIONS`, whether the data can fill it and if not why.
    data_dir : str
    """

    problems: list[Problem]
    sections_supported: dict[str, SectionSupport]
    data_dir: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when nothing stops loading (warnings are allowed)."""
        return not self.errors

    def format(self) -> str:
        """Every problem, one block each, then a summary of counts and supported sections."""
        lines = [p.format() for p in self.problems]
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "data is usable" if self.ok else "fix the errors before running reports"
        lines.append(f"{self.data_dir}: {n_err} error(s), {n_warn} warning(s): {verdict}.")
        yes = [name for name, s in self.sections_supported.items() if s]
        no = [f"{name} ({s.reason})" for name, s in self.sections_supported.items() if not s]
        lines.append("Report sections supported: " + (", ".join(yes) or "none"))
        if no:
            lines.append("Report sections not supported: " + "; ".join(no))
        return "\n".join(lines)


@dataclass
class _Table:
    """A table being loaded: its frame (text, then converted) and the user's row numbers."""

    name: str
    file: str
    frame: pd.DataFrame
    rows: np.ndarray  # row number as the user sees it, aligned with frame
    absent: set = field(default_factory=set)  # required columns the file lacks
    bad: dict = field(default_factory=dict)  # column -> bool mask of cells that failed conversion
    excluded: list = field(default_factory=list)  # (file, row, reason) of rows left out

    def usable(self, *columns: str) -> bool:
        return not (set(columns) & self.absent)

    def ok_mask(self, *columns: str) -> np.ndarray:
        """Rows whose cells in ``columns`` converted without error."""
        mask = np.ones(len(self.frame), dtype=bool)
        for c in columns:
            if c in self.bad:
                mask &= ~self.bad[c]
        return mask


@dataclass
class _Result:
    problems: list[Problem]
    tables: dict[str, _Table]
    config: ProcessConfig
    excluded: list[tuple[str, int, str]]
    fingerprint: str
    present: frozenset


# --------------------------------------------------------------------------- reporting helpers


def _short(value, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rows_text(rows) -> str:
    rows = [int(r) for r in rows]
    shown = ", ".join(str(r) for r in rows[:ROWS_NAMED])
    more = f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _per_row(problems: list, file: str, column: str | None, rule: str, rows, values, message: str,
             hint: str = "", severity: str = "error") -> None:
    """One problem per row for the first :data:`MAX_LISTED` rows, then one summary problem."""
    rows = np.asarray(rows)
    values = list(values) if values is not None else [None] * len(rows)
    for r, v in zip(rows[:MAX_LISTED], values[:MAX_LISTED]):
        problems.append(Problem(file, int(r), column, None if v is None else _short(v), rule, message, hint, severity))
    if len(rows) > MAX_LISTED:
        rest = rows[MAX_LISTED:]
        problems.append(Problem(file, None, column, None, rule,
                                f"{message} -- and {len(rest)} more rows like this ({_rows_text(rest)})",
                                hint, severity))


def _aggregate(problems: list, file: str, column: str | None, rule: str, rows, message: str,
               hint: str = "", severity: str = "warning") -> None:
    """One problem for the whole file: count and the first rows."""
    rows = np.asarray(rows)
    if len(rows):
        problems.append(Problem(file, None, column, None, rule,
                                f"{message}: {len(rows)} row(s) ({_rows_text(rows)})", hint, severity))


def _per_value(problems: list, file: str, column: str, rule: str, rows, values, message: str,
               hint_for, severity: str = "error", max_values: int = 20) -> None:
    """One problem per distinct offending value (with its count and rows), for repeated values.

    ``hint_for(value)`` gives the hint for one value.
    """
    if len(rows) == 0:
        return
    frame = pd.DataFrame({"row": np.asarray(rows), "value": np.asarray(values, dtype=object)})
    groups = list(frame.groupby("value", sort=False)["row"])
    for value, grp in groups[:max_values]:
        r = grp.to_numpy()
        problems.append(Problem(file, int(r[0]), column, _short(value), rule,
                                f"{message} ({len(r)} row(s): {_rows_text(r)})", hint_for(value), severity))
    if len(groups) > max_values:
        rest = frame[~frame["value"].isin([g[0] for g in groups[:max_values]])]
        problems.append(Problem(file, None, column, None, rule,
                                f"{message}: {rest['value'].nunique()} more distinct values in {len(rest)} rows",
                                hint_for(None), severity))


def _sections_without(tables: list[str]) -> list[str]:
    return [s for s, needs in SECTIONS.items() if any(t in tables for t, _ in needs)]


# --------------------------------------------------------------------------- reading files


def decode_to_utf8(data: bytes, file: str, problems: list) -> bytes:
    """Return the file's bytes as UTF-8 (BOM removed), warning when they had to be re-encoded.

    UTF-8 (BOM or not) and UTF-16 with a BOM are read as such; anything else as Windows-1252
    (Latin-1 when it holds a byte Windows-1252 leaves undefined), with an ``encoding``
    warning appended to ``problems``. :func:`csv_encoding` names the codec chosen.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16").encode("utf-8")
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        text = data.decode("cp1252", errors="replace") if b"\x81" not in data else data.decode("latin-1")
        problems.append(Problem(
            file, line, None, _short(data[max(0, exc.start - 10): exc.start + 10].decode("latin-1")), "encoding",
            "file is not UTF-8 (first bad byte on this line); it was read as Windows-1252/Latin-1",
            "check accented names; save the file as 'CSV UTF-8' to silence this warning", "warning"))
        return text.encode("utf-8")


def csv_encoding(data: bytes) -> tuple[str, bytes]:
    """The codec :func:`decode_to_utf8` reads ``data`` with, and the byte-order mark it skips.

    Returns
    -------
    (codec, bom) : a Python codec name (``utf-8``, ``utf-16-le``, ``utf-16-be``, ``cp1252`` or
        ``latin-1``) that writes text the loader reads back unchanged, and the leading BOM
        bytes (``b""`` when none). Lets a writer append to a file in the file's own encoding.
    """
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return codec, bom
    try:
        data.decode("utf-8")
        return "utf-8", b""
    except UnicodeDecodeError:
        return ("cp1252" if b"\x81" not in data else "latin-1"), b""


def read_header(data: bytes, table: Table) -> tuple[list[str], str]:
    """Column names and delimiter from the first line of UTF-8 ``data`` (delimiter = most known columns).

    Returns
    -------
    (names, delimiter) : the header's cells, stripped, and one of :data:`DELIMITERS`.
    """
    first = re.split(rb"\r\n|\n|\r", data, maxsplit=1)[0].decode("utf-8", errors="replace").replace("\x00", "")
    known = {c.lower() for c in table.column_names}
    best = None
    for delim in DELIMITERS:
        try:
            names = next(csv.reader([first], delimiter=delim), [])
        except csv.Error:  # a garbled header; the column checks will name what is missing
            names = first.split(delim)
        score = (sum(n.strip().lower() in known for n in names), len(names))
        if best is None or score > best[0]:
            best = (score, delim, names)
    return [n.strip() for n in best[2]], best[1]


def _read_csv(path: Path, data: bytes, table: Table, problems: list) -> _Table | None:
    """Parse CSV bytes into a frame of text columns; parse failures become problems."""
    file = path.name
    data = decode_to_utf8(data, file, problems)
    if not data.strip():
        problems.append(Problem(file, None, None, None, "empty_file", "the file is empty (not even a header row)",
                                f"write the header row: {','.join(table.column_names)}"))
        return None
    header, delim = read_header(data, table)
    names, seen = [], {}
    for n in header:  # unique names for the reader; a repeated known column is an error
        canonical = next((c for c in table.column_names if c.lower() == n.lower()), n)
        if canonical in seen:
            if canonical in table.column_names:
                problems.append(Problem(file, 1, canonical, None, "duplicate_column",
                                        "the header has this column twice", "keep one of them"))
            seen[canonical] += 1
            canonical = f"{canonical}.{seen[canonical]}"
        else:
            seen[canonical] = 0
        names.append(canonical)

    block = {}  # ReadOptions' block_size, once a row turned out longer than the default block

    def read(threads: bool, bad: list):
        def on_invalid(row):
            bad.append(row)
            return "skip"

        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=threads, **block),
            # empty lines are kept as empty rows (excluded and counted later): skipping them here
            # would shift the row number of every row after them
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True, ignore_empty_lines=False,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    bad: list = []
    try:
        try:
            arrow = read(True, bad)
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc):
                raise
            # a field longer than a block (1 MiB): one block as big as the file holds every row
            block["block_size"], bad = min(max(LARGE_BLOCK_BYTES, len(data) + 1), 2**31 - 1), []
            arrow = read(True, bad)
        if bad:  # re-read single-threaded: only then does the reader know the rows' numbers
            bad = []
            arrow = read(False, bad)
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        problems.append(Problem(file, None, None, None, "unreadable_csv", f"the file cannot be parsed as CSV: {exc}",
                                "open it in a spreadsheet and save it again as CSV"))
        return None
    # an empty line's cells come back null, every other empty cell as "": one kind of empty
    frame = arrow.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get).fillna("")
    if bad:
        numbers = [r.number for r in bad]
        for r in bad[:MAX_LISTED]:
            problems.append(Problem(
                file, r.number, None, _short(r.text), "wrong_field_count",
                f"row has {r.actual_columns} fields but the header has {r.expected_columns} "
                "(truncated line, stray delimiter or unclosed quote)",
                "check quoting: a value containing the delimiter must be in double quotes"))
        if len(bad) > MAX_LISTED:
            _aggregate(problems, file, None, "wrong_field_count", numbers[MAX_LISTED:],
                       "more rows whose field count does not match the header", severity="error")
        if all(n is not None for n in numbers):
            rows = np.setdiff1d(np.arange(2, len(frame) + len(bad) + 2), np.asarray(numbers, dtype=np.int64))
        else:
            rows = np.arange(2, len(frame) + 2)
    else:
        rows = np.arange(2, len(frame) + 2)
    return _Table(table.name, file, frame, rows[: len(frame)])


def _read_parquet(path: Path, data: bytes, table: Table, problems: list) -> _Table | None:
    """Read a Parquet file; typed columns are kept (converted later), others become text."""
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        problems.append(Problem(path.name, None, None, None, "unreadable_parquet",
                                f"the file cannot be read as Parquet: {_short(exc, 200)}",
                                "write it again, or provide a CSV instead"))
        return None
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    rename = {c: k for c in frame.columns for k in table.column_names if c.lower() == k.lower() and c != k}
    frame = frame.rename(columns=rename)
    if frame.columns.duplicated().any():
        for c in frame.columns[frame.columns.duplicated()]:
            problems.append(Problem(path.name, None, c, None, "duplicate_column", "the file has this column twice",
                                    "keep one of them"))
        frame = frame.loc[:, ~frame.columns.duplicated()]
    return _Table(table.name, path.name, frame, np.arange(2, len(frame) + 2))


def _locate(data_dir: Path, problems: list) -> dict[str, Path]:
    """The file of each table present; a table given as both CSV and Parquet is an error."""
    found = {}
    for name in TABLES:
        candidates = [p for p in (data_dir / f"{name}.csv", data_dir / f"{name}.parquet") if p.is_file()]
        if len(candidates) == 2:
            problems.append(Problem(f"{name}.csv", None, None, None, "duplicate_file",
                                    f"both {name}.csv and {name}.parquet exist; coachnb would not know which to use",
                                    "delete or move one of them"))
        elif candidates:
            found[name] = candidates[0]
    return found


# --------------------------------------------------------------------------- converting columns


# an offset only counts after a time of day, so "15-Mar-2026" is not read as offset "-2026"
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")
_UNAMBIGUOUS = [f"%Y/%m/%d{t}" for t in _TIMES] + [f"%d.%m.%Y{t}" for t in _TIMES] + [
    f"%d.%m.%y{t}" for t in _TIMES] + ["%d-%b-%Y", "%d-%b-%y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y"]
_MONTH_FIRST = [f"%m/%d/%Y{t}" for t in _TIMES] + [f"%m/%d/%y{t}" for t in _TIMES]
_DAY_FIRST = [f"%d/%m/%Y{t}" for t in _TIMES] + [f"%d/%m/%y{t}" for t in _TIMES]


def _to_ns(values: pd.Series) -> pd.Series:
    """Cast datetimes to nanosecond resolution; dates outside :data:`FIRST_YEAR`-:data:`LAST_YEAR`
    become NaT (unparseable). Aware values are compared in UTC, naive ones as they are."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        unit_dtype = f"datetime64[ns, {values.dt.tz}]"
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        unit_dtype, naive = "datetime64[ns]", values
    inside = (naive >= DATE_MIN) & (naive <= DATE_MAX)
    return values.where(inside).astype(unit_dtype)


def _try_formats(values: pd.Series, formats: list[str]) -> pd.Series:
    """Parse with the first format that fits each value (naive datetimes, NaT where none fits)."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    todo = values
    for fmt in formats:
        if todo.empty:
            break
        parsed = pd.to_datetime(todo, format=fmt, errors="coerce")
        hit = parsed.notna()
        if hit.any():
            out.loc[parsed.index[hit]] = _to_ns(parsed[hit])
            todo = todo[~hit]
    return out


def _localize(naive: pd.Series, tz: str) -> pd.Series:
    """Naive local times -> tz-aware; DST-ambiguous times take the first, skipped ones shift forward."""
    return naive.dt.tz_localize(tz, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward")


def parse_datetimes(text: pd.Series, tz: str) -> tuple[pd.Series, np.ndarray, list[tuple[str, str]]]:
    """Parse a column of date/time text into tz-aware datetimes (see the module docstring).

    Parameters
    ----------
    text : Series of str
        Stripped cell text; ``""`` is an empty cell.
    tz : str
        IANA zone naive values are local to, and the zone of the result.

    Returns
    -------
    parsed : Series of datetime64[ns, tz]
        NaT for empty cells and failures.
    bad : ndarray of bool
        Non-empty cells that could not be parsed.
    notes : list of (rule, message)
        Column-level findings: formats other than ISO used (warnings) or an ambiguous /
        mixed slashed format (errors, rule ``ambiguous_date_format``/``mixed_date_formats``).
    """
    text = text.astype("string").fillna("")
    out = pd.Series(pd.NaT, index=text.index, dtype=f"datetime64[ns, {tz}]")
    notes: list[tuple[str, str]] = []
    filled = text != ""
    values = text if filled.all() else text[filled]
    if values.empty:
        return out, np.zeros(len(text), dtype=bool), notes
    naive = _parse_plain_iso(values)
    left = naive.isna().to_numpy()
    if left.any():
        naive = pd.concat([naive[~left], _parse_naive_or_aware(values[left], tz, out, notes)])
    ok = naive.notna()
    if values is text and not left.any():  # every cell read at once: its own place already (a common export)
        out = _localize(naive, tz).astype(out.dtype)
    elif ok.any():
        out.loc[naive.index[ok]] = _localize(naive[ok], tz).astype(out.dtype)
    bad = (filled & out.isna()).to_numpy(dtype=bool)
    return out, bad, notes


#: the separators of ``YYYY-MM-DD HH:MM:SS`` (of ``YYYY-MM-DD``: the first two), by byte position
_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord(" "), 13: ord(":"), 16: ord(":")}
#: days of each month in a common year
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


def _parse_plain_iso(values: pd.Series) -> pd.Series:
    """Naive datetimes of a column written all ``YYYY-MM-DD HH:MM:SS`` or all ``YYYY-MM-DD``
    (years :data:`FIRST_YEAR`-:data:`LAST_YEAR`); NaT for every value that is not such a valid
    date and time, and all NaT for a column of other or mixed widths: pandas then reads those
    as before.

    What most exports write, several times faster than ``pandas.to_datetime`` on millions of
    rows (which makes a Python object of every string): the text's bytes are read as digits in
    place and checked (separators, digits, a month 1-12, a day the month has, hours below 24,
    minutes and seconds below 60). No parser that can fail is called: NumPy's own string to
    datetime cast crashes the process (numpy 2.4) when a value beyond its first buffer is invalid.
    """
    chunks = _fixed_width_chunks(values)
    if chunks is None:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    parsed = [_plain_iso_seconds(text) for text in chunks]
    seconds = np.concatenate([p[0] for p in parsed])
    ok = np.concatenate([p[1] for p in parsed])
    naive = pd.Series((seconds * 10**9).view("datetime64[ns]"), index=values.index)
    return naive if ok.all() else naive.where(pd.Series(ok, index=values.index))


def _plain_iso_seconds(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since 1970 (int64) of an (n, 10 or 19) array of ISO date (and time) bytes, and
    whether each row is a valid one (see :func:`_parse_plain_iso`; other rows' seconds are junk)."""
    n, width = text.shape
    ok = np.ones(n, dtype=bool)
    for pos, char in _SEPARATORS.items():
        if pos < width:
            ok &= text[:, pos] == char

    def number(first: int, digits: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int32)
        for pos in range(first, first + digits):
            digit = text[:, pos] - np.uint8(ord("0"))  # wraps below "0": then not <= 9
            ok[:] &= digit <= 9
            out = out * 10 + digit
        return out

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    ok &= (year >= FIRST_YEAR) & (year <= LAST_YEAR) & (month >= 1) & (month <= 12) & (day >= 1)
    month = np.where(ok, month, 1)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= day <= _MONTH_DAYS[month - 1] + (leap & (month == 2))
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; years >= 1900)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    seconds = (era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468).astype(np.int64) * 86400
    if width == 19:
        hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
        ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
        seconds += hour * 3600 + minute * 60 + second
    return seconds, ok


def _fixed_width_chunks(values: pd.Series) -> list[np.ndarray] | None:
    """The UTF-8 bytes of a column of Arrow strings, chunk by chunk, as (n, width) arrays (views, no
    copy) when every value is 10 or every value is 19 bytes long; None for anything else."""
    arr = pa.array(values.array)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out, widths = [], set()
    for chunk in chunks:
        if not len(chunk):
            continue
        if chunk.null_count or not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return None
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
        offsets = offsets[chunk.offset: chunk.offset + len(chunk) + 1]
        width = int(offsets[1] - offsets[0])
        widths.add(width)
        if len(widths) > 1 or width not in (10, 19) or offsets[-1] - offsets[0] != width * len(chunk) \
                or (np.diff(offsets) != width).any():
            return None
        out.append(np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=width * len(chunk),
                                 offset=int(offsets[0])).reshape(len(chunk), width))
    return out or None


def _parse_naive_or_aware(values: pd.Series, tz: str, out: pd.Series, notes: list) -> pd.Series:
    """Parse what :func:`_parse_plain_iso` left: values with an offset go straight into ``out``
    (converted to ``tz``); the naive datetimes of the others are returned (NaT: unparseable)."""
    # the regex runs in Python for Arrow strings, so only on values that could hold an offset
    # (a "Z", a "+", or longer than "YYYY-MM-DD HH:MM:SS"); cheap literal tests find those
    maybe = (values.str.contains("Z", regex=False) | values.str.contains("+", regex=False)
             | (values.str.len() > 19)).fillna(False).to_numpy(dtype=bool)
    aware = pd.Series(False, index=values.index)
    if maybe.any():
        aware[maybe] = values[maybe].str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    if aware.any():
        parsed = pd.to_datetime(values[aware], format="ISO8601", errors="coerce", utc=True)
        out.loc[parsed.index] = _to_ns(parsed).dt.tz_convert(tz)
    naive_values = values[~aware]
    naive = _to_ns(_naive_iso(naive_values))
    rest = naive_values[naive.isna()]
    if not rest.empty:
        naive.loc[rest.index] = _to_ns(_parse_other_formats(rest, notes))  # Excel serials reach 2119
    return naive


def _naive_iso(values: pd.Series) -> pd.Series:
    """pandas' ISO 8601 reading of values without a recognised offset, naive; NaT where it fails.

    A value pandas still reads with an offset (``10:00:0Z``, ``T10Z``: not the offset form the
    loader accepts) is NaT too, so the cell is reported as unreadable: such a value used to make
    the whole column aware (or mixed) and stop the load with a traceback.
    """
    try:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    except ValueError:  # offsets mixed with naive values
        parsed = None
    if parsed is not None and not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed

    def one(value: str):
        try:
            t = pd.to_datetime(value, format="ISO8601", errors="coerce")
        except ValueError:
            return pd.NaT
        return pd.NaT if pd.isna(t) or t.tzinfo is not None else t

    return pd.Series([one(v) for v in values], index=values.index, dtype="datetime64[ns]")


def _parse_other_formats(rest: pd.Series, notes: list) -> pd.Series:
    """Non-ISO dates: Excel serials, unambiguous formats, then slashed dates decided per column."""
    out = pd.Series(pd.NaT, index=rest.index, dtype="datetime64[ns]")
    serial = rest.str.fullmatch(r"\d{5}(?:\.\d+)?").fillna(False).astype(bool)
    if serial.any():
        days = pd.to_numeric(rest[serial], errors="coerce")
        days = days[(days >= 20000) & (days <= 80000)]
        if len(days):
            out.loc[days.index] = (pd.Timestamp("1899-12-30") + pd.to_timedelta(days.astype(float), unit="D")).dt.round("s")
            notes.append(("excel_serial_dates", f"{len(days)} value(s) read as Excel serial day numbers"))
    todo = rest[out.isna()]
    if not todo.empty:
        other = _try_formats(todo, _UNAMBIGUOUS)
        hit = other.notna()
        if hit.any():
            out.loc[other.index[hit]] = other[hit]
            notes.append(("non_iso_dates", f"{int(hit.sum())} value(s) in a non-ISO format (dotted dates are read "
                                           "day-first, DD.MM.YYYY)"))
        todo = todo[~hit]
    slashed = todo[todo.str.match(r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}\b").fillna(False).astype(bool)]
    if slashed.empty:
        return out
    slashed = slashed.str.replace(r"^(\d{1,2})-(\d{1,2})-(\d{2,4})", r"\1/\2/\3", regex=True)
    month_first = _try_formats(slashed, _MONTH_FIRST)
    day_first = _try_formats(slashed, _DAY_FIRST)
    only_mf = month_first.notna() & day_first.isna()
    only_df = day_first.notna() & month_first.isna()
    if only_mf.any() and only_df.any():
        notes.append(("mixed_date_formats",
                      f"the column mixes month-first dates (e.g. {slashed[only_mf].iloc[0]!r}) and day-first dates "
                      f"(e.g. {slashed[only_df].iloc[0]!r})"))
    elif only_df.any():
        out.loc[slashed.index] = day_first
        notes.append(("non_iso_dates", f"{len(slashed)} slashed date(s) read day-first (DD/MM/YYYY), since e.g. "
                                       f"{slashed[only_df].iloc[0]!r} cannot be month-first"))
    elif only_mf.any():
        out.loc[slashed.index] = month_first
        notes.append(("non_iso_dates", f"{len(slashed)} slashed date(s) read month-first (MM/DD/YYYY), since e.g. "
                                       f"{slashed[only_mf].iloc[0]!r} cannot be day-first"))
    elif month_first.notna().any():
        notes.append(("ambiguous_date_format",
                      f"slashed dates like {slashed.iloc[0]!r} could be month-first or day-first and no value in "
                      "the column decides it"))
    return out


_CURRENCY = re.compile(r"^(?:[A-Za-z]{3}|[$€£¥₹]|R\$|kr)|(?:[A-Za-z]{3}|[$€£¥₹]|kr|,-|\.-)$")
_GROUPED_COMMA = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_GROUPED_DOT = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d*)?")


def clean_number(text: str) -> float | None:
    """Parse a number written with currency marks or thousands separators; ``None`` if it is not one.

    ``"$48,000"`` -> 48000.0, ``"48.000,50 €"`` -> 48000.5, ``"(1,200)"`` -> -1200.0,
    ``"3,5"`` -> 3.5, ``"1'250"`` -> 1250.0. See the module docstring for the comma rule.
    """
    s = text.strip()
    negative = s.startswith("(") and s.endswith(")")
    s = s.strip("()").strip()
    for _ in range(2):  # a code and a symbol may both be present ("USD $")
        s = _CURRENCY.sub("", s).strip()
    if s.startswith("-"):
        negative, s = not negative, s[1:].strip()
    s = re.sub(r"[\s\u00a0\u202f']", "", s)
    if not s or not re.fullmatch(r"[\d.,]+", s) or not s[0].isdigit():
        return None
    if "," in s and "." in s:
        if s.rfind(",") > s.rfind("."):
            ok = _GROUPED_DOT.fullmatch(s)
            s = s.replace(".", "").replace(",", ".")
        else:
            ok = _GROUPED_COMMA.fullmatch(s)
            s = s.replace(",", "")
        if not ok:
            return None
    elif "," in s:
        if _GROUPED_COMMA.fullmatch(s):
            s = s.replace(",", "")
        elif s.count(",") == 1:
            s = s.replace(",", ".")
        else:
            return None
    elif s.count(".") > 1:
        if not _GROUPED_DOT.fullmatch(s):
            return None
        s = s.replace(".", "")
    value = float(s)
    return -value if negative else value


def parse_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Parse a column of number text into float64.

    Returns
    -------
    values : ndarray of float64
        NaN for empty cells and failures.
    unparseable, not_finite : ndarray of bool
        Non-empty cells that are not numbers; cells that are NaN or infinite.
    cleaned : int
        How many values needed :func:`clean_number` (currency or separators).
    """
    text = text.astype("string").fillna("")
    filled = (text != "").to_numpy(dtype=bool)
    values = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    lowered = text.str.lower().str.lstrip("+-")
    not_finite = (lowered.isin(["nan", "inf", "infinity", "na", "n/a"]).to_numpy(dtype=bool)
                  | np.isinf(values))
    failed = filled & np.isnan(values) & ~not_finite
    cleaned = 0
    if failed.any():
        unique = pd.unique(text[failed])
        mapping = {u: clean_number(u) for u in unique}
        fixed = text[failed].map(mapping).astype("float64").to_numpy()
        values[failed] = fixed
        cleaned = int(np.isfinite(fixed).sum())
    values[not_finite] = np.nan
    unparseable = filled & np.isnan(values) & ~not_finite
    return values, unparseable, not_finite, cleaned


def _convert_column(t: _Table, col: Column, config: ProcessConfig, problems: list) -> pd.Series:
    """Convert one column of ``t`` to its schema dtype, recording problems and failed cells."""
    raw = t.frame[col.name]
    tz = config.timezone
    n = len(raw)
    if col.kind in ("datetime", "date") and pd.api.types.is_datetime64_any_dtype(raw.dtype):  # Parquet
        raw = _to_ns(raw)
        out = raw.dt.tz_convert(tz) if raw.dt.tz is not None else _localize(raw, tz)
        out = _to_ns(out)
        bad = (raw.isna() & pd.Series(t.frame[col.name]).notna()).to_numpy()  # out of range
        _per_row(problems, t.file, col.name, "unparseable_date", t.rows[bad], t.frame[col.name][bad].astype(str),
                 f"date outside the years {FIRST_YEAR}-{LAST_YEAR}", "check the value")
        t.bad[col.name] = bad
        if col.kind == "date":
            out = out.dt.normalize()
        return out
    if col.kind == "float" and pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype("float64").to_numpy(copy=True)
        not_finite = ~np.isfinite(values) & ~raw.isna().to_numpy()
        _report_not_finite(t, col, not_finite, values, problems)
        values[not_finite] = np.nan
        t.bad[col.name] = not_finite
        return pd.Series(values, index=raw.index, dtype="float64")

    text = raw.astype("string").fillna("").str.strip()
    blank = (text == "").to_numpy(dtype=bool)
    if col.kind in ("datetime", "date"):
        out, bad, notes = parse_datetimes(text, tz)
        for rule, message in notes:
            severity = "error" if rule in ("ambiguous_date_format", "mixed_date_formats") else "warning"
            hint = "write dates as YYYY-MM-DD (ISO 8601), e.g. 2026-03-15 14:05"
            problems.append(Problem(t.file, None, col.name, None, rule, message, hint, severity))
            if severity == "error":  # every slashed value is suspect, but report the column once
                bad = bad & ~text.str.match(r"\d{1,2}[/-]\d{1,2}[/-]").fillna(False).to_numpy(dtype=bool)
        far = np.zeros(len(text), dtype=bool)
        if bad.any():  # only cells that failed to parse can be out of range; a regex over all was slow
            far[bad] = _year_out_of_range(text[bad])
        _per_row(problems, t.file, col.name, "unparseable_date", t.rows[far], text[far],
                 f"date outside the years {FIRST_YEAR}-{LAST_YEAR}", "check the year")
        _per_row(problems, t.file, col.name, "unparseable_date", t.rows[bad & ~far], text[bad & ~far],
                 "not a date/time coachnb can read", "use YYYY-MM-DD or YYYY-MM-DD HH:MM")
        if col.kind == "date":
            out = out.dt.normalize()
        t.bad[col.name] = bad | (~blank & out.isna().to_numpy())
    elif col.kind == "float":
        values, unparseable, not_finite, cleaned = parse_numbers(text)
        if cleaned:
            problems.append(Problem(t.file, None, col.name, None, "formatted_numbers",
                                    f"{cleaned} value(s) had currency marks or thousands separators; they were "
                                    "read as plain numbers", "write plain numbers such as 48000.5 to be sure",
                                    "warning"))
        _per_row(problems, t.file, col.name, "unparseable_number", t.rows[unparseable], text[unparseable],
                 "not a number", "write a plain number such as 48000 or 48000.50")
        _report_not_finite(t, col, not_finite, text.to_numpy(dtype=object), problems)
        t.bad[col.name] = unparseable | not_finite
        out = pd.Series(values, index=raw.index, dtype="float64")
    else:  # id, text, choice
        out = text.astype("string")
        t.bad[col.name] = np.zeros(n, dtype=bool)
    if not (col.nullable or not col.required) and col.name not in t.absent:
        missing = blank
        _per_row(problems, t.file, col.name, "missing_value", t.rows[missing], None,
                 "this required column is empty", f"fill in the {col.name} ({col.meaning.lower()})")
        t.bad[col.name] = t.bad[col.name] | missing
    if col.kind in ("id", "text", "choice"):
        if blank.any():
            out = out.mask(pd.Series(blank, index=out.index), pd.NA)
    return out


def _year_out_of_range(text: pd.Series) -> np.ndarray:
    """Cells holding a four-digit year outside :data:`FIRST_YEAR`-:data:`LAST_YEAR` (``0226-11-01``),
    so an unreadable date that is only too early or too late says so."""
    years = pd.to_numeric(text.str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False), errors="coerce")
    return ((years < FIRST_YEAR) | (years > LAST_YEAR)).fillna(False).to_numpy(dtype=bool)


def in_date_range(day) -> bool:
    """Whether a date (a ``date``, ``datetime`` or Timestamp, aware or naive) lies in the years
    :data:`FIRST_YEAR` to :data:`LAST_YEAR`: the range the loader accepts in every date column."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


def _report_not_finite(t: _Table, col: Column, mask: np.ndarray, values, problems: list) -> None:
    _per_row(problems, t.file, col.name, "not_finite", t.rows[mask], np.asarray(values, dtype=object)[mask],
             "NaN or infinite value", "leave the cell empty if the value is unknown, or write the number")


# --------------------------------------------------------------------------- the rules


def _read_table(name: str, path: Path, config: ProcessConfig, problems: list, hasher,
                data: bytes | None = None) -> _Table | None:
    """Read and convert one table's file (``data`` in place of its bytes when given)."""
    table = TABLES[name]
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(path.name, None, None, None, "unreadable_file", f"cannot read the file: {exc}"))
            return None
    hasher.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    t = (_read_parquet if path.suffix == ".parquet" else _read_csv)(path, data, table, problems)
    if t is None:
        return None
    known = set(table.column_names)
    extra = [c for c in t.frame.columns if c not in known]
    if extra:
        problems.append(Problem(t.file, None, None, _short(", ".join(extra), 120), "unknown_columns",
                                f"{len(extra)} column(s) not in the data contract are ignored",
                                "see docs/data.md for the columns coachnb reads", "warning"))
    for col in table.columns:
        if col.name not in t.frame.columns:
            if col.required:
                problems.append(Problem(t.file, 1, col.name, None, "missing_column",
                                        f"required column '{col.name}' is missing",
                                        f"the header has: {', '.join(map(str, t.frame.columns)) or '(nothing)'}"))
                t.absent.add(col.name)
            t.frame[col.name] = pd.Series(pd.NA, index=t.frame.index, dtype="string")
    t.frame = t.frame[table.column_names]
    _exclude_blank_rows(t, problems)
    if table.required and len(t.frame) == 0:
        problems.append(Problem(t.file, None, None, None, "no_rows", "the file has a header but no data rows",
                                "a required file needs at least one row"))
    converted = {c.name: _convert_column(t, c, config, problems) for c in table.columns}
    t.frame = pd.DataFrame(converted, index=t.frame.index)
    return t


def _exclude_blank_rows(t: _Table, problems: list) -> None:
    """Rows with every cell empty (Excel leaves them at the end) are excluded with a warning."""
    if not len(t.frame):
        return
    filled = np.zeros(len(t.frame), dtype=bool)
    for c in t.frame.columns:
        todo = np.flatnonzero(~filled)  # a row with a filled cell is no blank row: only the others are read
        if not len(todo):
            break
        s = t.frame[c].iloc[todo]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            filled[todo] = (s.astype("string").fillna("").str.strip() != "").to_numpy(dtype=bool)
        else:
            filled[todo] = s.notna().to_numpy()
    if not filled.all():
        _exclude(t, ~filled, "blank row", problems, "blank_row", "rows with every cell empty were left out", "")


def _exclude(t: _Table, mask: np.ndarray, reason: str, problems: list, rule: str, message: str, hint: str,
             column: str | None = None) -> None:
    """Remove rows from ``t``, with one aggregated warning and one ``excluded`` record per row."""
    rows = t.rows[mask]
    _aggregate(problems, t.file, column, rule, rows, message, hint, "warning")
    t.excluded.extend((t.file, int(r), reason) for r in rows)
    keep = ~mask
    t.frame = t.frame[keep]
    t.rows = t.rows[keep]
    t.bad = {k: v[keep] for k, v in t.bad.items()}


def _isin(values: pd.Series, allowed) -> np.ndarray:
    """``values.isin(allowed)`` as a bool array, via pyarrow's hash lookup (pandas' own
    ``isin`` on Arrow strings converts ``allowed`` element by element: seconds for 100k ids).
    Missing values are never in."""
    allowed = pa.array(pd.Series(pd.unique(pd.Series(allowed).dropna()), dtype="string"))
    found = pc.is_in(pa.array(values.astype("string")), value_set=allowed)
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _strictly_increasing(values: pd.Series) -> bool:
    """Whether a column of Arrow strings without a missing value is in strictly increasing byte
    order: then no id repeats, known without hashing them (ids exported in order, as CRMs
    number them: ~0.03 s instead of ~1 s for millions). False for anything else."""
    if len(values) < 2 or not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return False
    arr = pa.array(values.array)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        return False
    return bool(pc.all(pc.greater(arr[1:], arr[:-1])).as_py())


def _check_keys(t: _Table, problems: list) -> None:
    key = TABLES[t.name].key
    if key is None or not t.usable(key):
        return
    ids = t.frame[key]
    if _strictly_increasing(ids) or ids.nunique(dropna=True) == ids.notna().sum():  # hashing beats duplicated()
        return
    dup = ids.duplicated(keep="first").to_numpy(dtype=bool) & ids.notna().to_numpy()
    if dup.any():
        first_row = pd.Series(t.rows, index=ids.index).groupby(ids.to_numpy()).transform("first")
        firsts = first_row.to_numpy()[dup]
        _per_row(problems, t.file, key, "duplicate_id", t.rows[dup], ids[dup],
                 "this id appears more than once", "each id must be unique; the first occurrence is on row "
                 + ", ".join(str(int(f)) for f in pd.unique(firsts)[:ROWS_NAMED]))


def _check_reference(t: _Table, column: str, target: _Table | None, target_column: str, problems: list) -> None:
    """Every non-empty ``t.column`` must be a ``target.target_column``."""
    if target is None or not t.usable(column) or not target.usable(target_column):
        return
    values = t.frame[column]
    known = pd.Index(target.frame[target_column].dropna().unique())
    dangling = values.notna().to_numpy(dtype=bool) & ~_isin(values, known)
    if dangling.any():
        _per_value(problems, t.file, column, "unknown_reference", t.rows[dangling], values[dangling].to_numpy(),
                   f"{column} not found in {target.file}",
                   lambda v: f"add it to {target.file} or correct the id (ids are compared as exact text)")


def _check_activities(t: _Table, config: ProcessConfig, problems: list) -> None:
    if t.usable("type"):
        raw = t.frame["type"]
        codes, uniques = pd.factorize(raw)
        mapped = [config.canonical_activity_type(u) for u in uniques] + [None]
        codes = np.where(codes < 0, len(mapped) - 1, codes)  # an empty cell picks the trailing None
        # looked up by code with Arrow: millions of Python strings into a string column cost ~0.5 s
        canonical = pa.array([None if pd.isna(m) else str(m) for m in mapped], type=pa.large_string()).take(codes)
        unknown = np.array([pd.isna(m) for m in mapped], dtype=bool)[codes] & raw.notna().to_numpy()
        if unknown.any():
            _per_value(problems, t.file, "type", "unknown_activity_type", t.rows[unknown],
                       raw[unknown].to_numpy(), "activity type is not call, email, meeting, demo or other",
                       lambda v: (f'map it in process.toml under [activity_types], e.g. "{v}" = "other"'
                                  if v is not None else "map CRM type names in process.toml under [activity_types]"))
            t.bad["type"] = t.bad.get("type", np.zeros(len(t.frame), bool)) | unknown
        t.frame["type"] = pd.array(canonical, dtype="string")
    if t.usable("occurred_at", "logged_at"):
        occurred, logged = t.frame["occurred_at"], t.frame["logged_at"]
        both = (occurred.notna() & logged.notna()).to_numpy()
        if both.any():
            # a date-only logged_at (local midnight) is compared by day, so same-day logging is fine
            date_only = _at_local_midnight(logged)
            reference = occurred
            if date_only.any():
                reference = occurred.copy()
                reference[date_only] = occurred[date_only].dt.normalize()
            early = both & (logged < reference).to_numpy(dtype=bool)
            _per_row(problems, t.file, "logged_at", "logged_before_occurred", t.rows[early], logged[early].astype(str),
                     "logged_at is before occurred_at", "check both times (and their time zone)")
            lag_ns = (logged - occurred).to_numpy(dtype="timedelta64[ns]").view(np.int64)
            days = np.where(both, lag_ns, 0) / 1e9 / 86400  # as .dt.total_seconds() / 86400, without its overhead
            late = both & ~early & (days > config.thresholds.late_logging_days)
            _aggregate(problems, t.file, "logged_at", "late_logging", t.rows[late],
                       f"activities logged more than {config.thresholds.late_logging_days:g} day(s) after they "
                       "happened (reported in the logging-timeliness section)",
                       "no fix needed; [thresholds] late_logging_days in process.toml sets the cut-off")


def _at_local_midnight(ts: pd.Series) -> np.ndarray:
    """Whether each time is a local midnight (``ts == ts.dt.normalize()``; False for NaT), from the
    local wall-clock times: one time-zone conversion instead of normalize's two."""
    wall = ts.dt.tz_localize(None) if ts.dt.tz is not None else ts
    ns = wall.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ts.notna().to_numpy(dtype=bool) & (ns % (86400 * 10**9) == 0)


def _check_opportunities(t: _Table, config: ProcessConfig, problems: list) -> None:
    f = t.frame
    if t.usable("stage"):
        given = f["stage"].notna() & (f["stage"].str.strip() != "")
        unknown = (given & ~f["stage"].isin(config.stages)).to_numpy(dtype=bool)
        _per_value(problems, t.file, "stage", "unknown_stage", t.rows[unknown], f["stage"][unknown],
                   "stage is not one of the stages in process.toml",
                   lambda v: f"use one of {list(config.stages)}, or add {v!r} to [process] stages in process.toml")
    if t.usable("created_at", "closed_at"):
        before = (f["closed_at"] < f["created_at"]).fillna(False).to_numpy(dtype=bool)
        _per_row(problems, t.file, "closed_at", "closed_before_created", t.rows[before], f["closed_at"][before].astype(str),
                 "closed_at is before created_at", "check both dates")
    if t.usable("status"):
        status = f["status"].str.lower()
        invalid = (status.notna() & ~status.isin(["open", "won", "lost"])).to_numpy(dtype=bool)
        _per_row(problems, t.file, "status", "invalid_status", t.rows[invalid], f["status"][invalid],
                 "status must be open, won or lost", "map your CRM's stages to these three statuses")
        t.bad["status"] = t.bad["status"] | invalid
        f["status"] = status
        closed_ok = t.ok_mask("closed_at")
        has_close = f["closed_at"].notna().to_numpy()
        done = status.isin(["won", "lost"]).to_numpy(dtype=bool)
        no_close = done & ~has_close & closed_ok
        _per_row(problems, t.file, "closed_at", "closed_without_date", t.rows[no_close], f["status"][no_close],
                 "a won or lost opportunity needs closed_at", "fill in the date it was won or lost")
        open_closed = (status == "open").fillna(False).to_numpy(dtype=bool) & has_close  # a missing status is NA
        _aggregate(problems, t.file, "closed_at", "open_with_closed_at", t.rows[open_closed],
                   "open opportunities with a closed_at date (the date is kept but the deal counts as open)",
                   "clear closed_at or correct the status", "warning")
    if t.usable("amount"):
        neg = (f["amount"] < 0).to_numpy()
        _per_row(problems, t.file, "amount", "negative_amount", t.rows[neg], f["amount"][neg],
                 "amount is negative", "deal values must be 0 or more")
        zero = (f["amount"] == 0).fillna(False).to_numpy(dtype=bool)
        if zero.any() and zero.sum() * 2 >= len(f):  # a CRM that writes 0 for "not filled in"
            _aggregate(problems, t.file, "amount", "many_zero_amounts", t.rows[zero],
                       f"{zero.sum()} of {len(f)} opportunities have amount 0, read as deals worth nothing",
                       "leave amount empty where the value is unknown; an empty amount is read as unknown", "warning")


def _check_stage_history(t: _Table, opps: _Table | None, config: ProcessConfig, problems: list) -> None:
    f = t.frame
    if t.usable("stage"):
        unknown = f["stage"].notna().to_numpy(dtype=bool) & ~_isin(f["stage"], list(config.stages))
        if unknown.any():
            names = pd.unique(f["stage"][unknown])
            _exclude(t, unknown, "stage not in process.toml", problems, "unknown_stage",
                     f"stage_history rows for stages not in process.toml were left out "
                     f"({', '.join(map(repr, names[:8]))}{' ...' if len(names) > 8 else ''})",
                     f"process.toml's [process] stages are {list(config.stages)}; add a stage there to use its "
                     "rows (won/lost are statuses, not stages)", column="stage")
            f = t.frame
    if not t.usable("opportunity_id", "stage", "entered_at") or not len(f):
        return
    valid = t.ok_mask("opportunity_id", "stage", "entered_at") & f["entered_at"].notna().to_numpy()
    opp_codes, _ = pd.factorize(f["opportunity_id"])  # integer codes: fast to sort and group
    stage_idx = f["stage"].map({s: i for i, s in enumerate(config.stages)}).to_numpy(dtype="float64", na_value=-1)
    g = pd.DataFrame({"opp": opp_codes[valid], "idx": stage_idx[valid].astype(np.int64),
                      "at": f["entered_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()[valid],
                      "row": t.rows[valid]})
    # first entry of each stage per opportunity, then in process order
    first = g.sort_values("at", kind="stable").drop_duplicates(["opp", "idx"]).sort_values(["opp", "idx"])
    # the latest entry among the stages before this one in process order
    prior = first.groupby("opp", sort=False)["at"].cummax().groupby(first["opp"], sort=False).shift()
    wrong = (first["at"] < prior).to_numpy(dtype=bool)
    _per_row(problems, t.file, "entered_at", "stage_dates_out_of_order", first["row"].to_numpy()[wrong],
             f["entered_at"].iloc[np.flatnonzero(np.isin(t.rows, first["row"].to_numpy()[wrong]))].to_numpy(),
             "entered this stage before an earlier stage of the process", "check the dates of this opportunity's stages")
    if opps is not None and opps.usable("opportunity_id"):
        with_history = f["opportunity_id"].dropna().unique()
        missing = ~_isin(opps.frame["opportunity_id"], with_history) & opps.frame["opportunity_id"].notna().to_numpy(bool)
        _aggregate(problems, opps.file, "opportunity_id", "no_stage_history", opps.rows[missing],
                   "opportunities without any stage_history row (left out of stage conversion and velocity)",
                   "no fix needed if they never entered a mapped stage", "warning")


def _check_commitments(t: _Table, config: ProcessConfig, problems: list) -> None:
    f = t.frame
    if t.usable("start", "end"):
        wrong = (f["end"] < f["start"]).fillna(False).to_numpy(dtype=bool)
        _per_row(problems, t.file, "end", "end_before_start", t.rows[wrong], f["end"][wrong].astype(str),
                 "end is before start", "end is the last day of the commitment")
    if t.usable("metric"):
        known = list(config.commitment_metrics)
        unknown = (f["metric"].notna() & ~f["metric"].isin(known)).to_numpy(dtype=bool)
        _per_value(problems, t.file, "metric", "unknown_metric", t.rows[unknown], f["metric"][unknown].to_numpy(),
                   "not a commitment metric", lambda v: f"use one of {', '.join(known)} or define it in process.toml "
                                                        "under [commitment_metrics]")
    if t.usable("baseline", "target"):
        same = (f["baseline"] == f["target"]).to_numpy(dtype=bool)
        _aggregate(problems, t.file, "target", "target_equals_baseline", t.rows[same],
                   "commitments whose target equals the baseline (nothing to change)", "check the target", "warning")
        for col in ("baseline", "target"):
            neg = (f[col] < 0).to_numpy()
            _per_row(problems, t.file, col, "negative_value", t.rows[neg], f[col][neg],
                     f"{col} is negative", "per-week levels are 0 or more")


def _check_reps(t: _Table, problems: list) -> None:
    if t.usable("quota_per_quarter"):
        neg = (t.frame["quota_per_quarter"] < 0).to_numpy()
        _per_row(problems, t.file, "quota_per_quarter", "negative_amount", t.rows[neg], t.frame["quota_per_quarter"][neg],
                 "quota is negative", "write the quota as 0 or more")


def _check_self_assessments(t: _Table, problems: list) -> None:
    if t.usable("score"):
        s = t.frame["score"]
        out = (s.notna() & ((s < 1) | (s > 5))).to_numpy(dtype=bool)
        _per_row(problems, t.file, "score", "score_out_of_range", t.rows[out], s[out],
                 "score must be between 1 and 5", "1 is weak, 5 is strong")


def _check(data_dir, config: ProcessConfig | None = None) -> _Result:
    """Read, convert and check every file of ``data_dir``; the shared core of load and validate."""
    problems: list[Problem] = []
    data_dir = Path(data_dir)
    hasher = hashlib.sha256(f"coachnb {__version__}\0".encode())
    if not data_dir.is_dir():
        problems.append(Problem(str(data_dir), None, None, None, "missing_folder", "the data folder does not exist",
                                "pass the folder holding reps.csv and opportunities.csv"))
        return _Result(problems, {}, config or ProcessConfig(), [], hasher.hexdigest(), frozenset())
    toml = data_dir / "process.toml"
    if toml.is_file():
        hasher.update(b"process.toml\0" + toml.read_bytes())
    if config is None:
        try:
            config = load_config(data_dir)
        except ConfigError as exc:
            problems.append(Problem("process.toml", None, None, None, "invalid_config", str(exc),
                                    "fix process.toml; see docs/data.md (the checks below used the defaults)"))
            config = ProcessConfig()
    hasher.update(repr(config).encode())

    files = _locate(data_dir, problems)
    tables: dict[str, _Table] = {}
    for name, table in TABLES.items():
        if name not in files:
            if any(p.rule == "duplicate_file" and p.file == f"{name}.csv" for p in problems):
                continue
            if table.required:
                problems.append(Problem(f"{name}.csv", None, None, None, "missing_file",
                                        f"required file {name}.csv (or {name}.parquet) is missing",
                                        f"columns: {', '.join(table.column_names)}"))
            else:
                sections = _sections_without([name])
                problems.append(Problem(f"{name}.csv", None, None, None, "missing_file",
                                        f"optional file {name}.csv is absent; report sections that cannot be shown: "
                                        f"{', '.join(sections) or 'none'}", "add the file to get these sections",
                                        "warning"))
            continue
        t = _read_table(name, files[name], config, problems, hasher)
        if t is not None:
            tables[name] = t

    _apply_rules(tables, config, problems)
    excluded = [e for t in tables.values() for e in t.excluded]
    return _Result(problems, tables, config, excluded, hasher.hexdigest(), frozenset(files))


def _apply_rules(tables: dict[str, _Table], config: ProcessConfig, problems: list) -> None:
    """The rules within and across the tables read (a rule whose tables are not all there is skipped)."""
    for t in tables.values():
        _check_keys(t, problems)
    reps, opps = tables.get("reps"), tables.get("opportunities")
    for name in ("activities", "opportunities", "commitments", "coaching_sessions", "self_assessments"):
        if name in tables:
            _check_reference(tables[name], "rep_id", reps, "rep_id", problems)
    for name in ("activities", "stage_history"):
        if name in tables:
            _check_reference(tables[name], "opportunity_id", opps, "opportunity_id", problems)
    if "commitments" in tables:
        _check_reference(tables["commitments"], "supersedes", tables["commitments"], "commitment_id", problems)
    if reps is not None:
        _check_reps(reps, problems)
    if opps is not None:
        _check_opportunities(opps, config, problems)
    if "activities" in tables:
        _check_activities(tables["activities"], config, problems)
    if "stage_history" in tables:
        _check_stage_history(tables["stage_history"], opps, config, problems)
    if "commitments" in tables:
        _check_commitments(tables["commitments"], config, problems)
    if "self_assessments" in tables:
        _check_self_assessments(tables["self_assessments"], problems)


def check_table(data_dir, name: str, *, data: bytes | None = None, file_name: str | None = None,
                config: ProcessConfig | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """One table of a data folder read, converted and checked exactly as :func:`load` does.

    The rules that involve other tables (ids in ``reps`` and ``opportunities``, the table's
    own key and ``supersedes``) are checked against those tables as they are on disk, so a
    writer can check the bytes it is about to write before it writes them.

    Parameters
    ----------
    data_dir : str or Path
    name : str
        A table of :data:`schema.TABLES`.
    data : bytes, optional
        The file's content to check instead of what is on disk (the file need not exist).
    file_name : str, optional
        The file ``data`` would be (``<name>.csv`` or ``<name>.parquet``); by default the
        table's file in the folder, else ``<name>.csv``.
    config : ProcessConfig, optional
        The folder's ``process.toml`` when not given (raises ConfigError if invalid).

    Returns
    -------
    (frame, problems) : the table as :func:`load` returns it (None when unreadable or absent)
        and every problem found in this table's file, errors and warnings.
    """
    data_dir = Path(data_dir)
    config = load_config(data_dir) if config is None else config
    files = _locate(data_dir, [])
    path = data_dir / file_name if file_name else files.get(name, data_dir / f"{name}.csv")
    if data is None and not path.is_file():
        return None, [Problem(path.name, None, None, None, "missing_file", f"{path.name} is missing")]
    problems: list[Problem] = []
    t = _read_table(name, path, config, problems, hashlib.sha256(), data)
    if t is None:
        return None, problems
    columns = set(TABLES[name].column_names)
    others = [o for o, key in (("reps", "rep_id"), ("opportunities", "opportunity_id"))
              if o != name and key in columns and o in files]
    tables = {o: _read_table(o, files[o], config, [], hashlib.sha256()) for o in others}
    tables = {o: other for o, other in tables.items() if other is not None}
    tables[name] = t
    _apply_rules(tables, config, problems)
    return t.frame.reset_index(drop=True), [p for p in problems if p.file == t.file]


# --------------------------------------------------------------------------- public API


def _frames(result: _Result) -> dict[str, pd.DataFrame]:
    tz = result.config.timezone
    out = {}
    for name in TABLES:
        t = result.tables.get(name)
        out[name] = empty_frame(name, tz) if t is None else t.frame.reset_index(drop=True)
    return out


def sections_supported(frames: dict[str, pd.DataFrame] | Dataset, present=None) -> dict[str, SectionSupport]:
    """Which report sections the data can fill.

    Parameters
    ----------
    frames : Dataset, or dict of table name -> DataFrame
    present : set of str, optional
        Tables found in the folder (taken from the Dataset when one is given).

    Returns
    -------
    dict of section name (see :data:`SECTIONS`) -> SectionSupport
    """
    if isinstance(frames, Dataset):
        present = frames.present
        frames = {name: frames.table(name) for name in TABLES}
    present = set(frames) if present is None else set(present)
    result = {}
    for section, needs in SECTIONS.items():
        reason = ""
        for table, column in needs:
            frame = frames.get(table)
            if table not in present:
                reason = f"needs {table}.csv"
            elif frame is None or not len(frame):
                reason = f"{table} has no rows"
            elif column and frame[column].notna().sum() == 0:
                reason = f"{table}.{column} is empty"
            if reason:
                break
        result[section] = SectionSupport(not reason, reason)
    return result


def input_fingerprint(data_dir, config: ProcessConfig | None = None) -> str:
    """``Dataset.fingerprint`` of a data folder, from the files' bytes alone (no parsing).

    Hashes what :func:`load` hashes (coachnb version, ``process.toml``, the config and each
    table's file name, length and bytes, in :data:`schema.TABLES` order), so an unchanged
    folder is recognised without reading a single row.
    """
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


def load(data_dir, *, config: ProcessConfig | None = None) -> Dataset:
    """Load and validate a data folder.

    Parameters
    ----------
    data_dir : str or Path
        Folder holding ``<table>.csv`` or ``<table>.parquet`` per table of
        :data:`schema.TABLES` and optionally ``process.toml``. Other files are ignored.
    config : ProcessConfig, optional
        Use this instead of the folder's ``process.toml``.

    Returns
    -------
    Dataset
        Frames with exactly the schema's columns and dtypes; ``warnings``, ``excluded``
        (file, row, reason of each row left out), ``present`` and ``fingerprint`` (sha256 of
        the files' bytes, the config and the coachnb version).

    Raises
    ------
    DataError
        Listing every error (and, in ``problems``, the warnings too).
    ConfigError
        When ``process.toml`` is invalid.
    """
    if config is None and Path(data_dir).is_dir():
        config = load_config(data_dir)  # raises ConfigError itself, with the key that is wrong
    result = _check(data_dir, config)
    if any(p.severity == "error" for p in result.problems):
        raise DataError(result.problems, str(data_dir))
    excluded = pd.DataFrame({
        "file": pd.array([e[0] for e in result.excluded], dtype="string"),
        "row": pd.array([e[1] for e in result.excluded], dtype="int64"),
        "reason": pd.array([e[2] for e in result.excluded], dtype="string"),
    })
    return Dataset(**_frames(result), config=result.config, excluded=excluded, warnings=list(result.problems),
                   fingerprint=result.fingerprint, data_dir=str(data_dir), present=result.present)


def validate(data_dir, *, config: ProcessConfig | None = None) -> ValidationReport:
    """Check a data folder with the same rules as :func:`load`, without raising.

    Returns
    -------
    ValidationReport
        ``.problems`` (errors and warnings), ``.ok``, ``.sections_supported`` and ``.format()``.
    """
    result = _check(data_dir, config)
    return ValidationReport(result.problems, sections_supported(_frames(result), result.present), str(data_dir))


# --------------------------------------------------------------------------- documentation


def contract_markdown() -> str:
    """The data contract as Markdown: one table per file, generated from :data:`schema.TABLES`.

    ``docs/data.md`` embeds this text verbatim (a test keeps them equal).
    """
    kinds = {"id": "id (text)", "text": "text", "datetime": "date-time", "date": "date", "float": "number",
             "choice": "one of"}
    out = []
    for table in TABLES.values():
        need = "required" if table.required else "optional"
        key = f" Key: `{table.key}` (unique)." if table.key else ""
        out.append(f"### `{table.name}.csv` ({need})\n\n{table.meaning}{key}\n")
        out.append("| column | type | required | meaning | example |")
        out.append("|---|---|---|---|---|")
        for c in table.columns:
            kind = kinds[c.kind] + (" " + ", ".join(c.choices) if c.choices else "")
            req = "yes" if c.required and not c.nullable else ("yes, may be empty" if c.required else "no")
            out.append(f"| `{c.name}` | {kind} | {req} | {c.meaning.replace('|', '/')} | `{c.example}` |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
