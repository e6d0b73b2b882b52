"""Bring your own CRM: turn a CRM export into a coachnb data folder.

A *mapping* (a small TOML file, see ``docs/importing.md``) says which exported file feeds
which table of the data contract (:mod:`coachnb.schema`), which source column holds the
owner, created date, amount, stage ..., how dates and numbers are written, how CRM stage and
activity-type names translate, and how to derive what the export lacks (status from stage,
reps from the distinct owners, stage history from stage-entry-date columns, activity ids).

Public functions
----------------
import_export(mapping, sources, out_dir) -> Path
    What ``coachnb import --mapping M SOURCE... --out DIR`` runs.
run_import(mapping, sources, out_dir) -> ImportResult
    The same, returning counts, exclusions and warnings instead of printing them.
convert(mapping, sources) -> ImportResult
    Map the sources onto the contract in memory (no files written).
infer_mapping(sources) -> str
    What ``coachnb import --infer SOURCE...`` prints: a proposed mapping (TOML text).
infer_and_import(sources, out_dir) -> ImportResult
    ``coachnb import --infer SOURCE... --out DIR``: propose, keep the mapping in ``DIR/mapping.toml``, import.
import_inferred(sources, out_dir) -> Path
    The same, printing the summary, the lines to check and the next commands (:func:`next_steps`).
order_open_stages(stages, ages) -> (list, str)
    Open stage names in pipeline order, and what the order rests on.
to_source(problem, origins) -> Problem, collapse(problems) -> list
    The loader's problems with an import's output, located in the export and one per cause.
shipped_mappings() -> dict
    Name -> path of the mappings shipped in ``coachnb/mappings`` (``salesforce``, ...).

Every problem names the *source* file, its row (as a spreadsheet shows it: header = row 1)
and the column as the user knows it, e.g.
``deals_export.csv, row 7, column 'Deal Owner': empty owner``; more than :data:`ROWS_LISTED`
rows with one cause are one problem that counts them and names example rows. Rows left out
on purpose, and everything that stands in for what an export lacks, are said on import.
"""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import (
    loading,  # as a module: run_import's `validate` flag would shadow the function
)
from .config import ACTIVITY_TYPES, DEFAULT_STAGES, config_from_dict
from .errors import CoachnbError, ConfigError, DataError, Problem
from .formatting import terminal_safe
from .fsutil import atomic_write_text
from .schema import TABLES

MAPPINGS_DIR = Path(__file__).parent / "mappings"

#: tables an import writes (and owns in the output folder); the user-entered tables
#: (commitments, coaching_sessions, self_assessments) are never touched.
IMPORTED_TABLES = ("reps", "opportunities", "stage_history", "activities")

#: mapping columns that are not contract columns but feed derivations
EXTRA_COLUMNS = {
    "reps": (),
    "opportunities": ("owner_name", "stage", "status"),
    "stage_history": (),
    "activities": ("owner_name",),
}

#: activity-type map value that drops the row (counted and reported, never silent)
SKIP = "skip"
CLOSED_STATUSES = ("won", "lost")
#: a default value that keeps a deal's amount unknown (empty) instead of inventing one
UNKNOWN = "unknown"
SOURCE_SUFFIXES = (".csv", ".tsv", ".txt")

_CURRENCY_RE = re.compile(r"[€$£¥₹₩₽₺¢]|\b[A-Z]{3}\b|CHF|kr\.?|zł")
_SPACES_RE = re.compile(r"[\s\u00a0\u202f']")


# --------------------------------------------------------------------------------------
# results


@dataclass
class ImportResult:
    """What an import produced.

    Attributes
    ----------
    tables : dict of str -> DataFrame
        Contract tables as written (all values as text in the contract's format).
    process : dict
        Content of the ``process.toml`` written (``{"process": {"stages": [...], ...}}``).
    excluded : list of Problem
        Source rows left out on purpose (mapping said so), each naming file, row and column.
    warnings : list of Problem
        Things repaired or guessed that a user should know about.
    out_dir : Path or None
        Where the data folder was written (``None`` for :func:`convert`).
    mapping_path : Path or None
        The mapping :func:`infer_and_import` proposed and used (``None`` otherwise).
    origins : dict of str -> DataFrame
        Per table written, where each row came from (``_file``, ``_row``, ``_col_<column>``),
        so that the loader's problems with the output name the export (:func:`to_source`).
    """

    tables: dict
    process: dict
    excluded: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    out_dir: Path | None = None
    mapping_path: Path | None = None
    #: table -> the source file, row and columns of each row written (see :func:`to_source`)
    origins: dict = field(default_factory=dict)

    def format(self) -> str:
        """Plain-text summary: rows per table, exclusions and warnings."""
        lines = ["imported " + ", ".join(f"{len(t)} {name}" for name, t in self.tables.items())]
        if self.excluded:
            lines.append("source rows left out (each line says which, and how many when more than one):")
            lines += ["  " + p.format().replace("\n", "\n  ") for p in self.excluded[:20]]
            if len(self.excluded) > 20:
                lines.append(f"  ... and {len(self.excluded) - 20} more")
        lines += [p.format() for p in self.warnings]
        return "\n".join(lines)


#: rows of one file with the same problem that are listed one by one; more are one counted problem
ROWS_LISTED = 3


class _Problems:
    """Collects problems so one run reports every broken row, not just the first."""

    def __init__(self):
        self.errors: list[Problem] = []
        self.excluded: list[Problem] = []
        self.warnings: list[Problem] = []

    def rows(self, frame: pd.DataFrame, mask, target: str, rule: str, message: str, hint: str = "",
             kind: str = "error", show_value: bool = True) -> None:
        """Problems for the rows of ``frame[mask]``, located at the source of column ``target``.

        Up to :data:`ROWS_LISTED` rows of one file and column are one problem each; more are
        one problem that counts them and names example rows (in the source's own row numbers),
        so 500 deals with the same gap read as one cause with one fix.
        """
        bad = frame.loc[np.asarray(mask, dtype=bool)]
        if not len(bad):
            return
        sink = {"error": self.errors, "excluded": self.excluded, "warning": self.warnings}[kind]
        severity = "warning" if kind != "error" else "error"
        source_col = bad[f"_col_{target}"] if f"_col_{target}" in bad else pd.Series(None, index=bad.index)
        raw = bad[f"_raw_{target}"] if f"_raw_{target}" in bad else bad.get(target, pd.Series("", index=bad.index))
        keys = pd.DataFrame({"file": bad["_file"], "col": source_col.fillna("").astype(str)})
        for (file, col), idx in keys.groupby(["file", "col"], sort=False).groups.items():
            rows = bad.loc[idx, "_row"].astype(int).tolist()
            values = raw.loc[idx].astype(str).str.slice(0, 60).tolist() if show_value else [None] * len(rows)
            if len(rows) <= ROWS_LISTED:
                sink += [Problem(file, r, col or None, v or None, rule, message, hint, severity)
                         for r, v in zip(rows, values)]
                continue
            same = values[0] if show_value and len(set(values)) == 1 else None
            sink.append(Problem(file, None, col or None, same, rule,
                                f"{message}: {len(rows)} rows (e.g. rows {', '.join(map(str, rows[:5]))})",
                                hint, severity))

    def warn(self, file: str, message: str, rule: str, hint: str = "", column: str | None = None) -> None:
        """A warning about a file (or several, comma-separated) as a whole, not one row."""
        self.warnings.append(Problem(file, None, column, None, rule, message, hint, "warning"))

    def raise_if_any(self) -> None:
        """Stop with every error so far: later steps would only pile up follow-on errors."""
        if self.errors:
            raise DataError(self.errors)


# --------------------------------------------------------------------------------------
# mapping files


def shipped_mappings() -> dict[str, Path]:
    """Mappings shipped with coachnb, by name (file stem): ``salesforce``, ``hubspot``, ``generic``."""
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.toml"))}


def load_mapping(mapping: str | Path | dict) -> dict:
    """Read a mapping: a path to a TOML file, the name of a shipped mapping, or a parsed dict.

    Raises
    ------
    ConfigError
        When the file is missing, is not TOML, or holds keys that make no sense.
    """
    if isinstance(mapping, dict):
        raw, source = mapping, "mapping"
    else:
        path = Path(mapping)
        if not path.exists() and str(mapping) in shipped_mappings():
            path = shipped_mappings()[str(mapping)]
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            raise ConfigError(f"mapping {str(mapping)!r} {what}; give a path to a .toml file or one of "
                              f"the shipped mappings: {', '.join(shipped_mappings())}")
        source = path.name
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"mapping {source}: can't be read ({exc.strerror or exc})") from None
    _check_mapping(raw, source)
    raw = dict(raw)
    raw["_source"] = source
    return raw


def _specs(raw: dict, table: str) -> list[dict]:
    """A table's source specs: ``[table]`` or ``[[table]]`` (several files feeding one table)."""
    spec = raw.get(table)
    if spec is None:
        return []
    return list(spec) if isinstance(spec, list) else [spec]  # not a table: _check_shapes says so


def _check_mapping(raw: dict, source: str) -> None:
    """Raise :class:`ConfigError` (naming ``source``) for a section, key or value the importer can't use."""
    known_top = {"mapping", "formats", "process", "stages", "status_values", "activity_types", *IMPORTED_TABLES}
    unknown = set(raw) - known_top
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(known_top)}")
    if not _specs(raw, "opportunities"):
        raise ConfigError(f"{source}: needs an [opportunities] section (which file holds the deals)")
    _check_shapes(raw, source)
    for table in IMPORTED_TABLES:
        allowed = set(TABLES[table].column_names) | set(EXTRA_COLUMNS[table])
        for i, spec in enumerate(_specs(raw, table)):
            where = f"[{table}]" if i == 0 else f"[[{table}]] #{i + 1}"
            if table != "reps" and "file" not in spec:
                raise ConfigError(f"{source}: {where} needs file = \"<file name pattern>\"")
            for key in ("columns", "defaults"):
                bad = set(spec.get(key, {})) - allowed
                if bad:
                    raise ConfigError(f"{source}: {where}.{key} has unknown column(s) {sorted(bad)}; "
                                      f"known: {sorted(allowed)}")
            for col, names in spec.get("columns", {}).items():
                if not (isinstance(names, str) or (isinstance(names, list) and names
                                                     and all(isinstance(n, str) for n in names))):
                    raise ConfigError(f"{source}: {where}.columns.{col} must be a column name or a list of them")
    policy = raw.get("mapping", {}).get("missing_owner", "error")
    if policy not in ("error", "exclude"):
        raise ConfigError(f"{source}: [mapping] missing_owner must be 'error' or 'exclude', not {policy!r}")
    policy = raw.get("mapping", {}).get("missing_created", "error")
    if policy not in ("error", "exclude"):
        raise ConfigError(f"{source}: [mapping] missing_created must be 'error' or 'exclude', not {policy!r}")
    for table in IMPORTED_TABLES:
        for spec in _specs(raw, table):
            _check_joins_and_filters(spec, table, source)
            _check_needed_columns(spec, table, source)
    policy = raw.get("mapping", {}).get("unknown_activity_type", "error")
    if policy not in ("error", "exclude", *ACTIVITY_TYPES):
        raise ConfigError(f"{source}: [mapping] unknown_activity_type must be 'error', 'exclude' or one of "
                          f"{ACTIVITY_TYPES}, not {policy!r}")
    for crm, target in raw.get("activity_types", {}).items():
        if str(target).lower() not in (*ACTIVITY_TYPES, SKIP):
            raise ConfigError(f"{source}: [activity_types] {crm!r} = {target!r}: use one of "
                              f"{(*ACTIVITY_TYPES, SKIP)}")
    for crm, target in raw.get("status_values", {}).items():
        if str(target).lower() not in ("open", "won", "lost"):
            raise ConfigError(f"{source}: [status_values] {crm!r} = {target!r}: use open, won or lost")
    stages = _process_stages(raw)
    for crm, target in raw.get("stages", {}).items():
        if target.lower() not in CLOSED_STATUSES and target not in stages:
            raise ConfigError(f"{source}: [stages] {crm!r} = {target!r}: not one of [process] stages "
                              f"{list(stages)} (or 'won' / 'lost')")


def _is_names(value) -> bool:
    """Non-empty text, or a non-empty list of them (a file pattern, a column, date formats ...)."""
    values = [value] if isinstance(value, str) else value
    return isinstance(values, list) and bool(values) and all(isinstance(v, str) and v.strip() for v in values)


def _check_shapes(raw: dict, source: str) -> None:
    """Raise :class:`ConfigError` for a section or key whose value has the wrong type (a number for a file name ...)."""
    def fail(where: str, what: str):
        raise ConfigError(f"{source}: {where} must be {what}")

    for name in ("mapping", "formats", "process", "stages", "status_values", "activity_types"):
        if not isinstance(raw.get(name, {}), dict):
            fail(f"[{name}]", "a table")
    for name in ("stages", "status_values", "activity_types", "mapping"):
        for key, value in raw.get(name, {}).items():
            if not isinstance(value, str):
                fail(f"[{name}] {key!r}", "text")
    proc = raw.get("process", {})
    if "stages" in proc and not (isinstance(proc["stages"], list) and all(isinstance(v, str) for v in proc["stages"])):
        fail("[process] stages", 'a list of stage names, e.g. ["Lead", "Proposal"]')
    for key in ("timezone", "week_start"):
        if key in proc and not isinstance(proc[key], str):
            fail(f"[process] {key}", "text")
    _check_format_keys(raw.get("formats", {}), "[formats]", fail)
    for table in IMPORTED_TABLES:
        if not isinstance(raw.get(table, {}), (dict, list)):
            fail(f"[{table}]", "a table")
        for i, spec in enumerate(_specs(raw, table)):
            where = f"[{table}]" if i == 0 else f"[[{table}]] #{i + 1}"
            if not isinstance(spec, dict):
                fail(where, "a table")
            _check_format_keys(spec, where, fail)
            for key in ("columns", "defaults", "stage_entered"):
                if not isinstance(spec.get(key, {}), dict):
                    fail(f"{where}.{key}", "a table")
            if any(not isinstance(v, (str, int, float, bool)) for v in spec.get("defaults", {}).values()):
                fail(f"{where}.defaults", "a table of single values")
            if any(not isinstance(v, str) for v in spec.get("stage_entered", {}).values()):
                fail(f"{where}.stage_entered", "a table of stage names")
            if not isinstance(spec.get("optional", False), bool):
                fail(f"{where} optional", "true or false")


def _check_format_keys(spec: dict, where: str, fail) -> None:
    """Call ``fail`` for a file pattern, date format list or number/encoding mark of the wrong type."""
    for key in ("file", "dates"):
        if key in spec and not _is_names(spec[key]):
            fail(f"{where} {key}", "non-empty text or a list of them")
    for key in ("decimal", "thousands", "encoding", "delimiter"):
        if key in spec and not isinstance(spec[key], str):
            fail(f"{where} {key}", "text")


#: per section, the columns it can't do without: each entry is one column, or alternatives (any one will do)
NEEDED_COLUMNS = {
    "reps": [("rep_id", "name")],
    "opportunities": [("rep_id", "owner_name")],
    "stage_history": [("opportunity_id",), ("stage",), ("entered_at",)],
    "activities": [("rep_id", "owner_name"), ("occurred_at",)],
}


def _check_needed_columns(spec: dict, table: str, source: str) -> None:
    """Raise :class:`ConfigError` when a section that reads a file maps none of the columns it can't do without."""
    if "file" not in spec:
        return  # [reps.defaults] alone: no people file, nothing read
    given = set(spec.get("columns", {})) | ({"stage"} if table == "stage_history" and spec.get("defaults", {})
                                             .get("stage") else set())
    for options in NEEDED_COLUMNS[table]:
        if not given & set(options):
            raise ConfigError(f"{source}: [{table}] columns need {' or '.join(options)} "
                              f"(which source column holds it)")


def _check_joins_and_filters(spec: dict, table: str, source: str) -> None:
    """Raise :class:`ConfigError` for a ``join`` or ``where`` of one section that can't be used."""
    joins = spec.get("join", [])
    if isinstance(joins, dict):
        joins = [joins]
    if not isinstance(joins, list) or not all(
            isinstance(j, dict) and isinstance(j.get("file"), str) and isinstance(j.get("on"), str) for j in joins):
        raise ConfigError(f"{source}: [{table}] join must be a list of {{ file = \"<file name>\", on = \"<column>\" }}")
    where = spec.get("where", {})
    if not isinstance(where, dict) or not all(
            isinstance(v, str) or isinstance(v, list) and all(isinstance(x, str) for x in v) for v in where.values()):
        raise ConfigError(f"{source}: [{table}] where must be {{ column = \"value\" }} or "
                          f"{{ column = [\"value\", ...] }}")


def _process_stages(raw: dict) -> tuple[str, ...]:
    """Open stages in order: ``[process] stages``, else the [stages] targets in order of appearance."""
    stages = raw.get("process", {}).get("stages")
    if stages:
        return tuple(stages)
    seen: list[str] = []
    for target in raw.get("stages", {}).values():
        if target.lower() not in CLOSED_STATUSES and target not in seen:
            seen.append(target)
    return tuple(seen) or DEFAULT_STAGES


# --------------------------------------------------------------------------------------
# reading sources


def source_files(sources) -> list[Path]:
    """The files named on the command line; a folder stands for its CSV/TSV/TXT files."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in SOURCE_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise CoachnbError(f"source {str(s)!r} does not exist")
    if not files:
        raise CoachnbError(f"no CSV files among the sources {[str(s) for s in sources]}")
    return files


def read_source(path: Path, encoding: str = "utf-8-sig", delimiter: str = "auto") -> pd.DataFrame:
    """Read one export file, every cell as stripped text ('' when empty).

    Handles the usual export quirks: a UTF-8 byte-order mark, CRLF line ends, ``;`` or tab
    delimiters (sniffed when ``delimiter == "auto"``), Windows-1252 files from Excel.
    """
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError:
        text = path.read_text(encoding="cp1252")
    text = text.lstrip("\ufeff")
    if delimiter == "auto":
        try:
            delimiter = csv.Sniffer().sniff(text[:65536].split("\n", 1)[0], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    frame = pd.read_csv(io.StringIO(text, newline=""), sep=delimiter, dtype=str, keep_default_na=False,
                        na_filter=False, engine="python" if len(delimiter) > 1 else "c")
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame.apply(lambda s: s.str.strip())


def _as_list(names) -> list[str]:
    """A mapping value that may be one name or a list of them, as a list."""
    return [names] if isinstance(names, str) else list(names)


def _match_files(patterns, files: list[Path]) -> list[Path]:
    """The files whose name matches one of the glob ``patterns`` (case-insensitive), in file order."""
    patterns = _as_list(patterns)
    return [f for f in files if any(fnmatch.fnmatch(f.name.lower(), p.lower()) for p in patterns)]


def _resolve_column(frame: pd.DataFrame, wanted: str) -> str | None:
    """The frame's column called ``wanted``; case and surrounding spaces don't matter."""
    if wanted in frame.columns:
        return wanted
    key = wanted.strip().lower()
    return next((c for c in frame.columns if c.lower() == key), None)


def _pick(frame: pd.DataFrame, file_name: str, target: str, names, problems: _Problems) -> tuple[pd.Series, pd.Series]:
    """Values of ``target`` from the first non-empty of the listed source columns.

    Returns the values and, per row, the source column they came from (the first listed when
    all are empty), so later errors can name it.
    """
    names = _as_list(names)
    values = pd.Series("", index=frame.index, dtype=object)
    origin = pd.Series(names[0], index=frame.index, dtype=object)
    found = False
    for name in names:
        col = _resolve_column(frame, name)
        if col is None:
            continue
        if not found:
            origin[:] = col
        found = True
        take = (values == "") & (frame[col] != "")
        values[take] = frame.loc[take, col]
        origin[take] = col
    if not found:
        problems.errors.append(Problem(
            file_name, None, names[0], None, "missing_column",
            f"the mapping reads {target} from column {' or '.join(repr(n) for n in names)}, which this file lacks",
            f"columns in the file: {', '.join(map(repr, frame.columns[:30]))}; fix the mapping's "
            f"columns.{target}"))
    return values, origin


def _mapped_frame(spec: dict, table: str, files: list[Path], fmt: dict, problems: _Problems,
                  required: bool) -> pd.DataFrame:
    """Rows of every file matching ``spec['file']``, with contract column names.

    Columns ``_file``/``_row`` locate each row in its source; ``_col_<c>`` names the source
    column of ``c``; ``_raw_<c>`` keeps the raw text for error messages.
    """
    wanted = list(spec.get("columns", {})) + [c for c in spec.get("defaults", {}) if c not in spec.get("columns", {})]
    matched = _match_files(spec["file"], files) if "file" in spec else []
    if not matched:
        if required:
            problems.errors.append(Problem(
                str(spec.get("file")), None, None, None, "missing_source",
                f"no source file matches {spec.get('file')!r} (needed for {table})",
                f"sources given: {', '.join(f.name for f in files)}; fix [{table}] file in the mapping"))
        return pd.DataFrame()
    parts = []
    for path in matched:
        src = _read_spec_source(path, spec, fmt)
        src = _join_lookups(src, spec, path, files, fmt, problems)
        src = _filter_where(src, spec, path, table, problems)
        out = pd.DataFrame(index=src.index)
        out["_file"] = path.name
        out["_row"] = src.index + 2
        for target, names in spec.get("columns", {}).items():
            out[target], out[f"_col_{target}"] = _pick(src, path.name, target, names, problems)
        for target, default in spec.get("defaults", {}).items():
            if target not in out:
                out[target] = ""
                out[f"_col_{target}"] = None
            empty = out[target] == ""
            out.loc[empty, target] = str(default)
        out["_formats"] = [spec] * len(out)
        for i, column in enumerate(spec.get("stage_entered", {})):
            real = _resolve_column(src, column)
            if real is None:
                problems.errors.append(Problem(path.name, None, column, None, "missing_column",
                                               "the mapping's stage_entered names this column, which the file lacks"))
                continue
            out[f"_entered_{i}"], out[f"_entered_col_{i}"] = src[real], real
        parts.append(out)
    frame = pd.concat(parts, ignore_index=True)
    for target in wanted:
        frame[f"_raw_{target}"] = frame[target]
    return frame


def _read_spec_source(path: Path, spec: dict, fmt: dict) -> pd.DataFrame:
    """One source file as text cells, with the section's (else the mapping's) encoding and delimiter."""
    return read_source(path, spec.get("encoding", fmt.get("encoding", "utf-8-sig")),
                       spec.get("delimiter", fmt.get("delimiter", "auto")))


def _join_lookups(src: pd.DataFrame, spec: dict, path: Path, files: list[Path], fmt: dict,
                  problems: _Problems) -> pd.DataFrame:
    """The rows of ``src`` with the columns of each ``join = [{ file, on }]`` lookup file added.

    A lookup's columns that ``src`` already has are left out (``src`` wins); a row without a
    match gets empty cells. A lookup key that repeats is an error (which row would apply?).
    The index (and so every row number) of ``src`` is kept.
    """
    joins = spec.get("join", [])
    for join in [joins] if isinstance(joins, dict) else joins:
        matched = _match_files(join["file"], files)
        key = _resolve_column(src, join["on"])
        if not matched or key is None:
            what = (f"no source file matches {join['file']!r}" if not matched
                    else f"{path.name} has no column {join['on']!r}")
            problems.errors.append(Problem(path.name, None, join["on"], None, "bad_join",
                                           f"the mapping joins {join['file']!r} on {join['on']!r}, but {what}",
                                           "give the lookup file among the sources, or fix the join"))
            continue
        extra = _read_spec_source(matched[0], spec, fmt)
        other = _resolve_column(extra, join["on"])
        if other is None:
            problems.errors.append(Problem(matched[0].name, None, join["on"], None, "bad_join",
                                           f"the mapping joins this file on {join['on']!r}, which it lacks"))
            continue
        dup = extra[other].duplicated(keep=False) & (extra[other] != "")
        problems.rows(extra.assign(_file=matched[0].name, _row=extra.index + 2, **{f"_col_{other}": other}), dup,
                      other, "duplicate_key", "this join key appears more than once in the lookup file")
        keep = [c for c in extra.columns if c not in src.columns]
        lookup = extra[[other, *keep]].drop_duplicates(other).set_index(other)
        src = src.join(lookup, on=key).fillna("")
    return src


def _filter_where(src: pd.DataFrame, spec: dict, path: Path, table: str, problems: _Problems) -> pd.DataFrame:
    """The rows of ``src`` that pass the section's ``where = { column = value(s) }``; the rest counted.

    The rows left out are one exclusion per file and filter (a count and example rows, never
    silent); a filter on a column the file lacks is an error.
    """
    for col, value in spec.get("where", {}).items():
        real = _resolve_column(src, col)
        if real is None:
            problems.errors.append(Problem(path.name, None, col, None, "missing_column",
                                           f"the mapping filters on column {col!r}, which this file lacks"))
            return src.iloc[0:0]
        keep = src[real].isin(_as_list(value))
        if not keep.all():
            rows = list(src.index[~keep][:5] + 2)
            problems.excluded.append(Problem(
                path.name, None, real, None, "filtered_by_where",
                f"{int((~keep).sum())} row(s) left out by the mapping's [{table}] where {col} = {value!r} "
                f"(e.g. rows {', '.join(map(str, rows))})", severity="warning"))
        src = src[keep]
    return src


# --------------------------------------------------------------------------------------
# value parsing


def parse_dates(values: pd.Series, formats, timezone: str = "UTC") -> pd.Series:
    """Parse date/time text with the mapping's formats; NaT where nothing fits.

    Parameters
    ----------
    values : Series of str
        Empty strings are missing values.
    formats : str or list of str
        Tried in order per value: ``"iso"`` (ISO 8601, with or without time and offset),
        ``"epoch_ms"`` / ``"epoch_s"`` (Unix time), ``"dayfirst"`` / ``"monthfirst"``
        (pandas' guess with that order), or any ``strptime`` format such as ``"%d/%m/%Y %H:%M"``.
    timezone : str
        Values with an offset (``...Z``) are converted to this zone's local time; values
        without one are local time already and kept as they are.

    Returns
    -------
    Series of naive datetime64 (local wall-clock time).
    """
    formats = _as_list(formats)
    text = values.astype(str).str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = out.isna() & (text != "")
        if not todo.any():
            break
        try:
            out[todo] = _parse_chunk(text[todo], fmt, timezone)
        except (ValueError, OverflowError):  # a year pandas can't hold (e.g. "-3"): value by value
            out[todo] = pd.to_datetime(pd.Series([_one_date(v, fmt, timezone) for v in text[todo]],
                                                 index=text[todo].index, dtype=object), errors="coerce")
    # the loader's rule: a year outside 1900-2100 is no date (a typo, or a number that isn't one)
    return out.where((out.dt.year >= loading.FIRST_YEAR) & (out.dt.year <= loading.LAST_YEAR))


_OFFSET_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_chunk(chunk: pd.Series, fmt: str, timezone: str) -> pd.Series:
    """One format over many values: vectorized where pandas can, value by value otherwise."""
    if fmt in ("epoch_ms", "epoch_s"):
        num = pd.to_numeric(chunk.where(chunk.str.fullmatch(r"-?\d+(\.\d+)?")), errors="coerce")
        parsed = pd.to_datetime(num, unit="ms" if fmt == "epoch_ms" else "s", errors="coerce", utc=True)
        return parsed.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
    if fmt not in ("dayfirst", "monthfirst") and "%z" not in fmt and "%Z" not in fmt:
        pattern = "ISO8601" if fmt == "iso" else fmt
        aware = chunk.str.contains(_OFFSET_RE) if fmt == "iso" else pd.Series(False, index=chunk.index)
        out = pd.Series(pd.NaT, index=chunk.index, dtype="datetime64[ns]")
        if (~aware).any():
            out[~aware] = pd.to_datetime(chunk[~aware], format=pattern, errors="coerce").astype("datetime64[ns]")
        if aware.any():
            utc = pd.to_datetime(chunk[aware], format=pattern, errors="coerce", utc=True)
            out[aware] = utc.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
        return out
    parsed = [_one_date(v, fmt, timezone) for v in chunk]
    return pd.to_datetime(pd.Series(parsed, index=chunk.index, dtype=object), errors="coerce")


def _one_date(value: str, fmt: str, timezone: str):
    """One value in one format: naive local Timestamp, or NaT when it doesn't fit."""
    try:
        if fmt in ("epoch_ms", "epoch_s"):
            if not re.fullmatch(r"-?\d+(\.\d+)?", value):
                return pd.NaT
            ts = pd.Timestamp(float(value), unit="ms" if fmt == "epoch_ms" else "s", tz="UTC")
        elif fmt in ("dayfirst", "monthfirst"):
            ts = pd.to_datetime(value, dayfirst=fmt == "dayfirst")
        elif fmt == "iso":
            ts = pd.to_datetime(value, format="ISO8601")
        else:
            ts = pd.to_datetime(value, format=fmt)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if ts is pd.NaT or not loading.FIRST_YEAR <= ts.year <= loading.LAST_YEAR:
        return pd.NaT
    if ts.tzinfo is not None:
        ts = ts.tz_convert(timezone).tz_localize(None)
    return ts


def parse_numbers(values: pd.Series, decimal: str = ".", thousands: str = ",") -> pd.Series:
    """Parse amounts as exports write them: ``"€1.234,50"``, ``"$12,500.00"``, ``"1 234"``, ``"(500)"``.

    Currency symbols and three-letter codes, spaces (incl. non-breaking) and the thousands
    separator are removed; ``decimal`` becomes the decimal point; parentheses mean negative.
    NaN where the text is not a number (or empty).

    Not :func:`coachnb.loading.parse_numbers`: that one reads a data folder, where no mapping
    says which mark is the decimal one, so it guesses per value (:func:`coachnb.loading.clean_number`)
    and strips currency marks only at either end. Here the mapping's ``decimal`` and
    ``thousands`` decide for every value, and currency marks go wherever they stand.
    """
    text = values.astype(str).str.strip()
    text = text.str.replace(_CURRENCY_RE, "", regex=True).str.replace(_SPACES_RE, "", regex=True)
    negative = text.str.startswith("(") & text.str.endswith(")")
    text = text.str.strip("()")
    if thousands:
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    number = pd.to_numeric(text.where(text != "", None), errors="coerce").astype("float64")
    return number.where(~negative, -number)


def slug(name: str) -> str:
    """``"Ana Souza"`` -> ``"ana-souza"``: a rep id from a name (accents folded)."""
    folded = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return s or "rep-" + hashlib.sha1(str(name).encode()).hexdigest()[:8]


def _stable_ids(prefix: str, frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Ids from a hash of the row's content, so re-importing the same export gives the same ids.

    Identical rows get ``-2``, ``-3`` ... in file order.
    """
    if not len(frame):
        return pd.Series([], index=frame.index, dtype=object)
    keys = frame[columns].astype(str).agg("\x1f".join, axis=1)
    ids = prefix + keys.map(lambda k: hashlib.sha1(k.encode()).hexdigest()[:10])
    n = ids.groupby(ids).cumcount()
    return ids.where(n == 0, ids + "-" + (n + 1).astype(str))


def _map_dates(keys: pd.Series, by_key: pd.Series) -> pd.Series:
    """``keys.map(by_key)`` for a datetime ``by_key`` that may be empty (plain map fails then)."""
    values = by_key.reindex(keys.to_numpy()).to_numpy() if len(by_key) else pd.NaT
    return pd.Series(values, index=keys.index, dtype="datetime64[ns]")


def _lookup(mapping: dict) -> dict:
    """A mapping table keyed case- and space-insensitively (CRM exports are not consistent about either)."""
    return {str(k).strip().lower(): v for k, v in mapping.items()}


# --------------------------------------------------------------------------------------
# conversion


def convert(mapping, sources) -> ImportResult:
    """Map CRM export files onto the data contract, in memory.

    Parameters
    ----------
    mapping : path, shipped mapping name, or dict
    sources : list of paths (files or folders)

    Returns
    -------
    ImportResult
        With ``out_dir = None``.

    Raises
    ------
    DataError
        Listing every problem, each naming the source file, row and column.
    ConfigError
        When the mapping itself is wrong.
    """
    raw = load_mapping(mapping)
    files = source_files(sources)
    problems = _Problems()
    fmt = raw.get("formats", {})
    stages, timezone, process = _process_section(raw)
    policy_owner = raw.get("mapping", {}).get("missing_owner", "error")
    stage_map = _lookup({**{s: s for s in stages}, **raw.get("stages", {})})

    opps = _opportunities(raw, files, fmt, timezone, stages, stage_map, policy_owner, problems)
    history = _stage_history(raw, files, fmt, timezone, opps, stages, stage_map, problems)
    problems.raise_if_any()
    opps = _created_from_history(opps, history, raw, problems)
    _some_deals_left(opps, raw, files, problems)
    opps["closed_at"] = _closed_at(opps, history, problems)
    problems.raise_if_any()
    history = _stage_changes(history, opps, problems)

    activities = _activities(raw, files, fmt, timezone, set(opps["opportunity_id"]), policy_owner, problems)
    problems.raise_if_any()
    reps = _reps(raw, files, fmt, timezone, opps, activities, problems)
    problems.raise_if_any()
    tables = _contract_tables(raw, stages, reps, opps, history, activities)
    frames = {"reps": reps, "opportunities": opps, "stage_history": history, "activities": activities}
    origins = {name: _origin(frames[name]) for name in tables}
    return ImportResult(tables, process, problems.excluded, problems.warnings, origins=origins)


def _origin(frame: pd.DataFrame) -> pd.DataFrame:
    """Where each row of a table to be written came from: source file, row and source column per contract column."""
    keep = [c for c in frame.columns if c in ("_file", "_row") or str(c).startswith("_col_")]
    return frame[keep].reset_index(drop=True) if "_file" in frame else pd.DataFrame(index=range(len(frame)))


def to_source(problem: Problem, origins: dict) -> Problem:
    """A problem the loader found in an import's output, located in the export it came from.

    ``origins`` maps a table to the source locators of its rows (:attr:`ImportResult.origins`).
    Row numbers named in a summary's message (``rows 19, 18 ...``) are translated too. A problem
    that can't be traced to the export keeps its place and says it is in the import's output.
    """
    table = Path(problem.file).stem if problem.file else ""
    origin = origins.get(table)
    if origin is None or "_file" not in origin or not len(origin) or problem.row is not None and not 0 <= problem.row - 2 < len(origin):
        return Problem(problem.file, problem.row, problem.column, problem.value, problem.rule,
                       f"{problem.message} (in the import's output {problem.file})", problem.hint, problem.severity)
    named = [problem.row] if problem.row is not None else []
    message = problem.message
    listed = re.search(r"\brows? ((?:\d+, )*\d+)", message) if problem.row is None else None
    if listed and all(0 <= int(n) - 2 < len(origin) for n in listed.group(1).split(", ")):
        named = [int(n) for n in listed.group(1).split(", ")]
        rows = [str(int(origin["_row"].iloc[n - 2])) for n in named]
        message = message[:listed.start(1)] + ", ".join(rows) + message[listed.end(1):]
    at = origin.iloc[[n - 2 for n in named]] if named else origin
    file = ", ".join(sorted(set(at["_file"].astype(str))))
    sources = at[f"_col_{problem.column}"].dropna().unique() if f"_col_{problem.column}" in at else []
    column = str(sources[0]) if len(sources) == 1 else (f"{problem.column} (derived)" if problem.column else None)
    return Problem(file, int(at["_row"].iloc[0]) if problem.row is not None else None, column, problem.value,
                   problem.rule, f"{message} (imported as {problem.file})", problem.hint, problem.severity)


def collapse(problems: list) -> list:
    """Problems with one cause in one file and column over more than :data:`ROWS_LISTED` rows: one counted problem.

    Counts the rows of the single-row problems and of the loader's summaries ("-- and N more
    rows like this"), and names the first five; problems with fewer rows are kept as they are.
    """
    groups: dict = {}
    for p in problems:
        base = re.split(r" -- and \d+ more rows| \(imported as | \(in the import's output", p.message)[0]
        groups.setdefault((p.file, p.column, p.rule, base, p.hint, p.severity), []).append(p)
    out = []
    for (file, column, rule, base, hint, severity), group in groups.items():
        more = [int(m.group(1)) for p in group if (m := re.search(r" -- and (\d+) more rows", p.message))]
        rows = [p.row for p in group if p.row is not None]
        if len(rows) + sum(more) <= ROWS_LISTED or len(group) == 1 and not more:
            out += group
            continue
        out.append(Problem(file, None, column, None, rule, f"{base}: {len(rows) + sum(more)} rows (e.g. rows "
                           f"{', '.join(map(str, sorted(rows)[:5]))})", hint, severity))
    return out


def _process_section(raw: dict) -> tuple[tuple[str, ...], str, dict]:
    """The mapping's process: open stages, time zone, and the ``process.toml`` content.

    Takes the parsed mapping; returns ``(stages, timezone, {"process": {...}})``, checked
    with the loader's rules (:func:`coachnb.config.config_from_dict`) so a bad zone or week
    start fails here, naming the mapping, rather than after the files are written.
    """
    proc = raw.get("process", {})
    timezone = proc.get("timezone", "UTC")
    stages = _process_stages(raw)
    process = {"process": {"stages": list(stages), "timezone": timezone,
                           "week_start": proc.get("week_start", "monday")}}
    config_from_dict(process, source=raw["_source"])
    return stages, timezone, process


def _opportunities(raw, files, fmt, timezone, stages, stage_map, policy_owner, problems) -> pd.DataFrame:
    """The deals of every ``[opportunities]`` source, with owner, id, stage, status, dates and amount.

    Returns the mapped rows (source-locating ``_file``/``_row``/``_col_*``/``_raw_*`` columns
    kept) with ``_stage`` (the process stage or won/lost, NaN when unmapped), ``status``,
    ``created_at`` and ``_close`` parsed; ``closed_at`` is settled later, once the stage
    history is known. Row problems go to ``problems``; a missing source file raises at once,
    since nothing else can be checked without the deals.
    """
    parts = [_mapped_frame(s, "opportunities", files, fmt, problems, required=True)
             for s in _specs(raw, "opportunities")]
    problems.raise_if_any()
    opps = pd.concat(parts, ignore_index=True)
    opps = _owners(opps, "opportunities", policy_owner, problems)
    _add_missing_columns(opps, ("account", "name", "stage", "status", "closed_at", "created_at", "amount",
                                "opportunity_id"))
    _opportunity_ids(opps, problems)
    opps["name"] = opps["name"].where(opps["name"] != "", opps["opportunity_id"])
    opps["account"] = opps["account"].where(opps["account"] != "", "Unknown account")
    has_stage = opps["_col_stage"].notna() & (opps["stage"] != "")
    opps["_stage"] = _map_stage_names(opps, "stage", has_stage, stage_map, stages, problems)
    opps["status"] = _opportunity_status(opps, raw, problems)
    opps["created_at"] = _dates(opps, "created_at", raw, timezone, problems)
    opps["_close"] = _dates(opps, "closed_at", raw, timezone, problems)
    unknown = opps["amount"].str.strip().str.lower().eq(UNKNOWN)
    opps.loc[unknown, "amount"] = ""
    opps["amount"] = _numbers(opps, "amount", raw, problems)
    problems.rows(opps, opps["_raw_amount"].eq("") & opps["_col_amount"].notna(), "amount", "empty_amount",
                  "empty amount", 'set [opportunities.defaults] amount = "unknown" to import deals without a value '
                  "(their value stays unknown)", show_value=False)
    _unknown_amounts(opps, unknown, problems)
    return opps


def _unknown_amounts(opps: pd.DataFrame, unknown: pd.Series, problems: _Problems) -> None:
    """Say how many deals have an unknown amount, and what the output holds for them (in place).

    They stay empty when the data contract lets ``amount`` be empty; a contract that needs a
    number gets 0, and the warning says so (a known 0 and an unknown value are not the same).
    """
    if not unknown.any():
        return
    files = _file_names(opps.loc[unknown])
    source = opps.loc[unknown, "_col_amount"].dropna()
    column = str(source.iloc[0]) if len(source) else None
    if TABLES["opportunities"].column("amount").nullable:
        problems.warn(files, f"{int(unknown.sum())} deal(s) have no amount: left empty (unknown), so won values "
                      "and pipeline value count only deals with an amount", "unknown_amount", column=column)
        return
    opps.loc[unknown, "amount"] = 0.0
    problems.warn(files, f"{int(unknown.sum())} deal(s) have no amount (unknown); this version of the data "
                  "contract needs a number, so 0 was written: won values and pipeline value read them as 0",
                  "unknown_amount", "once amounts may be empty (docs/data.md), re-import to keep them unknown",
                  column=column)


def _opportunity_ids(opps: pd.DataFrame, problems: _Problems) -> None:
    """Give deals content-hash ids when the export has no id column; report empty and repeated ids.

    Changes ``opps["opportunity_id"]`` in place.
    """
    if (opps["_col_opportunity_id"].isna()).all():
        opps["opportunity_id"] = _stable_ids("O", opps, ["rep_id", "name", "account", "_raw_created_at"])
    empty_id = opps["opportunity_id"] == ""
    problems.rows(opps, empty_id, "opportunity_id", "empty_id", "empty opportunity id", show_value=False)
    dup = opps["opportunity_id"].duplicated(keep=False) & ~empty_id
    problems.rows(opps, dup, "opportunity_id", "duplicate_id",
                  "opportunity id appears more than once", "each deal must be one row")


def _map_stage_names(frame: pd.DataFrame, col: str, check, stage_map: dict, stages, problems: _Problems) -> pd.Series:
    """CRM stage names in ``frame[col]`` -> process stage or won/lost (NaN where the mapping has none).

    ``check`` (bool mask or ``None`` for every row) says which rows must map: an unmapped
    name there is an ``unknown_stage`` error.
    """
    mapped = frame[col].str.lower().map(stage_map)
    unknown = mapped.isna() if check is None else check & mapped.isna()
    problems.rows(frame, unknown, col, "unknown_stage", "stage name not in the mapping",
                  f"add it under [stages] in the mapping (as one of {list(stages)} or 'won' / 'lost')")
    return mapped


def _opportunity_status(opps: pd.DataFrame, raw: dict, problems: _Problems) -> pd.Series:
    """open / won / lost per deal: from a status column when mapped, else from the mapped stage.

    Assumes ``opps["_stage"]`` is set. A status value the mapping doesn't know is an error
    (and the row keeps the stage's status meanwhile).
    """
    status = pd.Series("open", index=opps.index, dtype=object)
    from_stage = opps["_stage"].fillna("").str.lower()
    status[from_stage.isin(CLOSED_STATUSES)] = from_stage[from_stage.isin(CLOSED_STATUSES)]
    if (opps["status"] != "").any():  # a status column, or [opportunities.defaults] status (won-only exports)
        status_map = _lookup({"open": "open", "won": "won", "lost": "lost", "closed won": "won",
                              "closed lost": "lost", **raw.get("status_values", {})})
        has = opps["status"] != ""
        mapped = opps["status"].str.lower().map(status_map)
        problems.rows(opps, has & mapped.isna(), "status", "unknown_status", "status value not in the mapping",
                      "add it under [status_values] as open, won or lost")
        status[has & mapped.notna()] = mapped[has & mapped.notna()].str.lower()
    return status


def _stage_history(raw, files, fmt, timezone, opps, stages, stage_map, problems) -> pd.DataFrame:
    """Stage entries from a history file and/or the deals' stage-entry-date columns.

    Returns rows with ``opportunity_id, raw_stage, stage, entered_at`` (plus source
    locators); rows whose stage doesn't map or whose date is missing are dropped (the
    unmapped ones reported as errors). Won/lost entries are still in: they date closings.
    """
    entries = [_history_from_file(s, files, fmt, raw, timezone, problems) for s in _specs(raw, "stage_history")]
    entries += [_history_from_columns(s, opps, raw, timezone, problems)
                for s in _specs(raw, "opportunities") if s.get("stage_entered")]
    entries = [e for e in entries if len(e)]
    history = pd.concat(entries, ignore_index=True) if entries else pd.DataFrame(
        columns=["opportunity_id", "raw_stage", "entered_at", "_file", "_row", "_col_raw_stage"])
    if len(history):
        mapped = _map_stage_names(history, "raw_stage", None, stage_map, stages, problems)
        history["stage"] = mapped
        history = history[mapped.notna() & history["entered_at"].notna()]
    return history


def _created_from_history(opps: pd.DataFrame, history: pd.DataFrame, raw: dict, problems: _Problems) -> pd.DataFrame:
    """Where the export has no created date, take the deal's earliest stage entry.

    A deal with neither is a ``missing_created`` error, or, with ``[mapping] missing_created =
    "exclude"``, left out and counted (one statement per file and column, naming the stages
    those deals are in). Returns the deals kept.
    """
    first_entry = history.groupby("opportunity_id")["entered_at"].min() if len(history) else pd.Series(dtype="datetime64[ns]")
    no_created = opps["created_at"].isna() & (opps["_raw_created_at"] == "")
    opps.loc[no_created, "created_at"] = _map_dates(opps.loc[no_created, "opportunity_id"], first_entry)
    missing = opps["created_at"].isna() & (opps["_raw_created_at"] == "")
    if not missing.any():
        return opps
    stages = sorted(set(opps.loc[missing, "stage"]) - {""})
    where = f" (deals in stage {', '.join(map(repr, stages[:5]))})" if stages else ""
    if raw.get("mapping", {}).get("missing_created", "error") == "exclude":
        problems.rows(opps, missing, "created_at", "missing_created",
                      f"no created date{where}: left out ([mapping] missing_created = \"exclude\")",
                      kind="excluded", show_value=False)
        return opps[~missing].reset_index(drop=True)
    problems.rows(opps, missing, "created_at", "missing_created",
                  f"no created date (and no stage-entry date to derive it from){where}",
                  "map created_at to a date column that these rows fill (a list of columns takes the first "
                  "non-empty), or leave them out and count them with [mapping] missing_created = \"exclude\" "
                  "(or filter them with where)", show_value=False)
    return opps


def _some_deals_left(opps: pd.DataFrame, raw: dict, files: list[Path], problems: _Problems) -> None:
    """Stop with one clear error when no deal is left to import (an empty file, or every row left out)."""
    if len(opps) or problems.errors:
        return
    sources = [f.name for spec in _specs(raw, "opportunities") for f in _match_files(spec["file"], files)]
    left_out = f"; {len(problems.excluded)} reason(s) for leaving rows out are listed below" if problems.excluded else ""
    problems.errors.append(Problem(", ".join(sources) or "opportunities", None, None, None, "no_deals",
                                   f"no deal is left to import{left_out}", "check the mapping's file patterns, "
                                   "where filters and missing_owner / missing_created rules"))
    problems.errors += problems.excluded
    problems.raise_if_any()


def _closed_at(opps: pd.DataFrame, history: pd.DataFrame, problems: _Problems) -> pd.Series:
    """Close date per deal: the close-date column, else the entry into the won/lost stage.

    Open deals get none (NaT). A won or lost deal with neither is a ``missing_closed`` error.
    """
    closed = opps["status"].isin(CLOSED_STATUSES)
    closing = history[history["stage"].str.lower().isin(CLOSED_STATUSES)] if len(history) else history
    close_entry = closing.groupby("opportunity_id")["entered_at"].max() if len(closing) else pd.Series(dtype="datetime64[ns]")
    close = opps["_close"].where(closed)
    fill = closed & close.isna()
    close[fill] = _map_dates(opps.loc[fill, "opportunity_id"], close_entry)
    problems.rows(opps, closed & close.isna() & (opps["_raw_closed_at"] == ""), "closed_at", "missing_closed",
                  "deal is won or lost but has no close date (nor a won/lost stage-entry date)", show_value=False)
    return close


def _stage_changes(history: pd.DataFrame, opps: pd.DataFrame, problems: _Problems) -> pd.DataFrame:
    """The contract's stage history: entries into open stages of imported deals, changes only.

    Won/lost entries go (they are statuses, dated by ``closed_at``), and so do repeats of the
    stage a deal is already in; entries of deals that are not imported are left out and counted.
    """
    if len(history):
        history = history[~history["stage"].str.lower().isin(CLOSED_STATUSES)]
        known = history["opportunity_id"].isin(set(opps["opportunity_id"]))
        problems.rows(history, ~known, "opportunity_id", "history_of_unknown_deal",
                      "stage entry of a deal that is not imported (not in the deals file, or left out): left out",
                      kind="excluded")
        history = history[known]
        history = history.sort_values(["opportunity_id", "entered_at"], kind="stable")
        # an opportunity history logs every save (amount, close date ...); keep stage changes only
        same = history["stage"].eq(history.groupby("opportunity_id")["stage"].shift())
        history = history[~same]
    return history


def _contract_tables(raw, stages, reps, opps, history, activities) -> dict[str, pd.DataFrame]:
    """The tables an import writes, as contract text; stage_history only when the mapping has a source for it."""
    # the current stage of an open deal: with no stage history, the only sign of where it stands
    current_stage = opps["_stage"].where((opps["status"] == "open") & opps["_stage"].isin(stages), "").fillna("")
    tables = {
        "reps": _contract_frame(reps, "reps"),
        "opportunities": _contract_frame(opps.assign(stage=current_stage), "opportunities"),
    }
    if len(history) or any(s.get("stage_entered") for s in _specs(raw, "opportunities")) or _specs(raw, "stage_history"):
        tables["stage_history"] = _contract_frame(history, "stage_history")
    if activities is not None:
        tables["activities"] = _contract_frame(activities, "activities")
    return tables


def _add_missing_columns(frame: pd.DataFrame, columns) -> None:
    """Add each absent column as empty text, with no source column, so later steps need not ask (in place)."""
    for col in columns:
        if col not in frame:
            frame[col] = ""
            frame[f"_col_{col}"] = None
            frame[f"_raw_{col}"] = ""


def _owners(frame: pd.DataFrame, table: str, policy: str, problems: _Problems) -> pd.DataFrame:
    """Fill ``rep_id`` (owner id, else slug of the owner's name); handle empty owners by policy."""
    # mapped, even if the file has no rows: an empty export is a "no deals" problem, not a mapping one
    has_id = "rep_id" in frame and (frame["_col_rep_id"].notna().any() or not len(frame))
    has_name = "owner_name" in frame and (frame["_col_owner_name"].notna().any() or not len(frame))
    if not has_id and not has_name:
        raise ConfigError(f"the mapping's [{table}] columns need rep_id (owner id) or owner_name (owner's name)")
    if not has_id:
        frame["rep_id"] = frame["owner_name"].map(lambda n: slug(n) if n else "")
        frame["_col_rep_id"] = frame["_col_owner_name"]
        frame["_raw_rep_id"] = frame["owner_name"]
    if "owner_name" not in frame:
        frame["owner_name"] = ""
        frame["_col_owner_name"] = None
    empty = frame["rep_id"] == ""
    if policy == "exclude":
        problems.rows(frame, empty, "rep_id", "empty_owner", "empty owner: row excluded",
                      "[mapping] missing_owner = \"exclude\"", kind="excluded", show_value=False)
        frame = frame[~empty].reset_index(drop=True)
    else:
        problems.rows(frame, empty, "rep_id", "empty_owner", "empty owner",
                      "assign an owner in the CRM, or set missing_owner = \"exclude\" under [mapping] "
                      "to leave such rows out (they are counted)", show_value=False)
    return frame


def _by_spec(frame: pd.DataFrame):
    """``(spec, index)`` per source spec among the rows: each spec may set its own formats."""
    for idx in frame.groupby(frame["_formats"].map(id)).groups.values():
        yield frame.loc[idx[0], "_formats"], idx


def _dates(frame: pd.DataFrame, col: str, raw: dict, timezone: str, problems: _Problems) -> pd.Series:
    """Parse ``frame[col]`` with each row's spec's ``dates`` (else ``[formats] dates``, else ISO).

    Returns naive local datetimes, NaT where empty or unparseable; an unparseable non-empty
    value is an error. All NaT when the mapping gives no source column for ``col``.
    """
    if col not in frame or frame[f"_col_{col}"].isna().all() and (frame[col] == "").all():
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    out = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for spec, idx in _by_spec(frame):
        formats = spec.get("dates", raw.get("formats", {}).get("dates", ["iso"]))
        out[idx] = parse_dates(frame.loc[idx, col], formats, timezone)
    bad = out.isna() & (frame[col] != "")
    problems.rows(frame, bad, col, "unparseable_date", "not a date in the mapping's format(s)",
                  f"formats tried: {raw.get('formats', {}).get('dates', ['iso'])}; fix [formats] dates "
                  "(e.g. \"%d/%m/%Y\" for day-first dates)")
    return out


def _numbers(frame: pd.DataFrame, col: str, raw: dict, problems: _Problems) -> pd.Series:
    """Parse ``frame[col]`` with each row's spec's decimal/thousands marks (else ``[formats]``'s).

    Returns float64, NaN where empty or unparseable; an unparseable non-empty value is an error.
    """
    out = pd.Series(np.nan, index=frame.index, dtype="float64")
    fmt = raw.get("formats", {})
    for spec, idx in _by_spec(frame):
        out[idx] = parse_numbers(frame.loc[idx, col], spec.get("decimal", fmt.get("decimal", ".")),
                                 spec.get("thousands", fmt.get("thousands", ",")))
    problems.rows(frame, out.isna() & (frame[col] != ""), col, "unparseable_number",
                  "not a number in the mapping's format",
                  f"[formats] decimal = {fmt.get('decimal', '.')!r}, thousands = {fmt.get('thousands', ',')!r}")
    return out


def _file_names(frame: pd.DataFrame) -> str:
    """The source files the rows come from, sorted and comma-separated, for a warning's location."""
    return ", ".join(sorted(set(frame["_file"])))


def _source_frames(specs: list[dict], table: str, files: list[Path], fmt: dict, problems: _Problems) -> list:
    """Mapped rows of each spec that names a file, leaving out the empty ones.

    A spec's file may be missing unless it says ``optional = false`` (then it is an error).
    """
    parts = [_mapped_frame(s, table, files, fmt, problems, required=not s.get("optional", True))
             for s in specs if "file" in s]
    return [p for p in parts if len(p)]


def _history_from_file(spec, files, fmt, raw, timezone, problems) -> pd.DataFrame:
    """Stage entries of one ``[[stage_history]]`` file: ``raw_stage`` (CRM name) and parsed ``entered_at``.

    Rows without a stage or without a date are left out, counted; an empty frame when the
    (optional) file is absent.
    """
    parts = _source_frames([spec], "stage_history", files, fmt, problems)
    if not parts:
        return pd.DataFrame()
    frame = parts[0]
    frame["entered_at"] = _dates(frame, "entered_at", raw, timezone, problems)
    problems.rows(frame, frame["stage"] == "", "stage", "history_without_stage", "no stage: history row left out",
                  kind="excluded", show_value=False)
    undated = (frame["stage"] != "") & (frame["_raw_entered_at"] == "")
    problems.rows(frame, undated, "entered_at", "history_without_date", "no date: history row left out",
                  kind="excluded", show_value=False)
    frame = frame.rename(columns={"stage": "raw_stage", "_col_stage": "_col_raw_stage", "_raw_stage": "_raw_raw_stage"})
    return frame[(frame["raw_stage"] != "") & ~undated]


def _history_from_columns(spec, opps, raw, timezone, problems) -> pd.DataFrame:
    """HubSpot-style ``hs_date_entered_<stage>`` columns: one stage-entry row per filled cell."""
    rows = opps[opps["_formats"].map(lambda s: s is spec)]
    parts = []
    for i, raw_stage in enumerate(spec["stage_entered"].values()):
        if f"_entered_{i}" not in rows:
            continue
        filled = rows[rows[f"_entered_{i}"] != ""]
        parts.append(pd.DataFrame({
            "opportunity_id": filled["opportunity_id"], "raw_stage": raw_stage,
            "entered_at": filled[f"_entered_{i}"], "_raw_entered_at": filled[f"_entered_{i}"],
            "_file": filled["_file"], "_row": filled["_row"], "_col_entered_at": filled[f"_entered_col_{i}"],
            "_col_raw_stage": filled[f"_entered_col_{i}"], "_formats": filled["_formats"]}))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    frame["entered_at"] = _dates(frame, "entered_at", raw, timezone, problems)
    return frame


def _activities(raw, files, fmt, timezone, opp_ids: set, policy_owner, problems) -> pd.DataFrame | None:
    """Activities of every ``[[activities]]`` source: owner, dates, canonical type, id, deal link.

    Takes the ids of the imported deals (``opp_ids``); links to anything else are dropped
    with a warning. Returns ``None`` when the mapping or the sources have no activities.
    """
    specs = _specs(raw, "activities")
    if not specs:
        return None
    parts = _source_frames(specs, "activities", files, fmt, problems)
    if not parts:
        return None
    acts = pd.concat(parts, ignore_index=True)
    acts = _owners(acts, "activities", policy_owner, problems)
    _add_missing_columns(acts, ("activity_id", "type", "opportunity_id", "logged_at", "occurred_at"))
    acts["occurred_at"] = _dates(acts, "occurred_at", raw, timezone, problems)
    problems.rows(acts, acts["occurred_at"].isna() & (acts["_raw_occurred_at"] == ""), "occurred_at",
                  "missing_date", "activity has no date", show_value=False)
    acts["logged_at"] = _dates(acts, "logged_at", raw, timezone, problems)
    # A CRM's created date on a meeting booked in advance is when it was scheduled, not when
    # it was logged: those rows keep no logged_at rather than a "logged before it happened".
    ahead = acts["logged_at"] < acts["occurred_at"]
    if ahead.any():
        problems.warn(_file_names(acts.loc[ahead]),
                      f"{int(ahead.sum())} activities were entered before they happened (scheduled in advance); "
                      "their logged_at is left empty", "scheduled_activity",
                      column=str(acts.loc[ahead, "_col_logged_at"].iloc[0]))
        acts.loc[ahead, "logged_at"] = pd.NaT

    type_map = _lookup({t: t for t in ACTIVITY_TYPES} | raw.get("activity_types", {}))
    canonical = acts["type"].str.lower().map(type_map).str.lower()
    unknown = canonical.isna()
    policy = raw.get("mapping", {}).get("unknown_activity_type", "error")
    if policy == "error":
        problems.rows(acts, unknown, "type", "unknown_activity_type", "activity type not in the mapping",
                      f"add it under [activity_types] (as one of {ACTIVITY_TYPES} or 'skip'), or set "
                      "[mapping] unknown_activity_type = \"other\"")
    elif policy == "exclude":
        problems.rows(acts, unknown, "type", "unknown_activity_type", "activity type not in the mapping: row excluded",
                      kind="excluded")
    else:
        canonical = canonical.fillna(policy)
    skipped = canonical == SKIP
    problems.rows(acts, skipped, "type", "skipped_activity_type", "activity type mapped to 'skip': row excluded",
                  kind="excluded")
    acts["type"] = canonical
    acts = acts[canonical.notna() & ~skipped].reset_index(drop=True)

    if acts["_col_activity_id"].isna().all() or (acts["activity_id"] == "").any():
        generated = _stable_ids("A", acts, ["rep_id", "_raw_occurred_at", "_raw_type", "_raw_opportunity_id"])
        acts["activity_id"] = acts["activity_id"].where(acts["activity_id"] != "", generated)
    dup = acts["activity_id"].duplicated(keep=False)
    problems.rows(acts, dup, "activity_id", "duplicate_id", "activity id appears more than once")

    # Salesforce's WhatId also points at accounts, HubSpot engagements at contacts: only
    # links to imported opportunities are kept
    link = acts["opportunity_id"]
    dropped = (link != "") & ~link.isin(opp_ids)
    if dropped.any():
        problems.warn(_file_names(acts.loc[dropped]),
                      f"{int(dropped.sum())} activities link to records that are not imported opportunities "
                      "(accounts, contacts, excluded deals); the link was dropped, the activity kept",
                      "unlinked_activity", column=str(acts.loc[dropped, "_col_opportunity_id"].iloc[0]))
        acts.loc[dropped, "opportunity_id"] = ""
    return acts


def _reps(raw, files, fmt, timezone, opps, activities, problems) -> pd.DataFrame:
    """Reps from a people file (a users or sales-teams export) when there is one; every owner without a row is made up.

    Returns one row per rep with the contract's columns and the source locators of the row
    it came from (the people file's row, else the first row the owner appears on).
    """
    specs = _specs(raw, "reps")
    spec = specs[0] if specs else {}
    defaults = {"team": "Unassigned", "manager": "Unassigned", **spec.get("defaults", {})}
    owners = _owner_rows(opps, activities)
    first_seen = owners.groupby("rep_id")["seen"].min()
    parts = _source_frames(specs, "reps", files, fmt, problems)
    if parts:
        reps = _people(pd.concat(parts, ignore_index=True), raw, timezone, defaults, first_seen, problems)
    else:
        reps = pd.DataFrame({"rep_id": pd.Series([], dtype=object), "name": pd.Series([], dtype=object)})
    missing = sorted(set(first_seen.index) - set(reps["rep_id"]))
    if missing:
        made_up = _made_up_reps(missing, owners, defaults, first_seen)
        _say_made_up(made_up, owners, defaults, _file_names(reps) if parts else None, problems)
        reps = pd.concat([reps, made_up], ignore_index=True)
    return reps


def _owner_rows(opps: pd.DataFrame, activities) -> pd.DataFrame:
    """Every row naming an owner: ``rep_id, owner_name, seen`` (its date) and where it is in the sources."""
    keep = ["rep_id", "owner_name", "_file", "_row", "_col_rep_id", "_col_owner_name"]
    owners = [opps[[*keep, "created_at"]].rename(columns={"created_at": "seen"})]
    if activities is not None:
        owners.append(activities[[*keep, "occurred_at"]].rename(columns={"occurred_at": "seen"}))
    owners = pd.concat(owners, ignore_index=True)
    return owners[owners["rep_id"] != ""]


def _people(reps: pd.DataFrame, raw, timezone, defaults: dict, first_seen: pd.Series, problems) -> pd.DataFrame:
    """The rows of a people file as reps: ids (the name's slug when the deals name their owners), defaults, hire dates.

    A missing hire date is the first day the rep appears in the data (said once); a person with
    neither a hire date nor any deal or activity can't be placed and is left out, counted.
    """
    _add_missing_columns(reps, TABLES["reps"].column_names)
    if reps["_col_rep_id"].isna().all() and reps["_col_name"].notna().any():
        reps["rep_id"] = reps["name"].map(lambda n: slug(n) if n else "")
        reps["_col_rep_id"] = reps["_col_name"]
    problems.rows(reps, reps["rep_id"] == "", "rep_id", "empty_id", "empty rep id or name", show_value=False)
    dup = reps["rep_id"].duplicated(keep=False) & (reps["rep_id"] != "")
    problems.rows(reps, dup, "rep_id", "duplicate_id", "this rep appears more than once in the people file")
    for col in ("team", "manager"):
        if reps[f"_col_{col}"].isna().all():
            problems.warn(_file_names(reps), f"no {col} column: every rep's {col} is {str(defaults[col])!r}",
                          f"default_{col}", f"map [reps.columns] {col}, or set [reps.defaults] {col}")
    for col, default in defaults.items():
        if col in reps:
            reps[col] = reps[col].where(reps[col] != "", str(default))
    hire = _dates(reps, "hire_date", raw, timezone, problems).dt.normalize()
    no_hire = hire.isna()
    hire[no_hire] = _map_dates(reps.loc[no_hire, "rep_id"], first_seen).dt.normalize()
    if no_hire.any():
        problems.warn(_file_names(reps), f"{int((no_hire & hire.notna()).sum())} rep(s) have no hire date: the "
                      "first day each appears in the data stands in (edit reps.csv to set it)", "hire_date_from_data",
                      column=reps.loc[no_hire, "_col_hire_date"].dropna().iloc[0]
                      if reps.loc[no_hire, "_col_hire_date"].notna().any() else None)
    reps["hire_date"] = hire
    unplaced = hire.isna() & (reps["rep_id"] != "")
    problems.rows(reps, unplaced, "rep_id", "rep_without_data",
                  "no hire date and no deal or activity in the export: not imported as a rep", kind="excluded")
    reps = reps[~unplaced].reset_index(drop=True)
    reps["name"] = reps["name"].where(reps["name"] != "", reps["rep_id"])
    if reps["_col_quota_per_quarter"].notna().any():
        reps["quota_per_quarter"] = _numbers(reps, "quota_per_quarter", raw, problems)
    return reps


def _made_up_reps(missing: list, owners: pd.DataFrame, defaults: dict, first_seen: pd.Series) -> pd.DataFrame:
    """One rep per owner id in ``missing``: the owner's name (else the id), the default team and manager,
    and the first day the owner appears in the data as the hire date; located at that first row."""
    first = owners.sort_values(["_file", "_row"], kind="stable").drop_duplicates("rep_id").set_index("rep_id")
    names = owners[owners["owner_name"] != ""].groupby("rep_id")["owner_name"].first()
    made = pd.DataFrame({"rep_id": missing})
    made["name"] = [names.get(r, r) for r in made["rep_id"]]
    made["team"] = str(defaults["team"])
    made["manager"] = str(defaults["manager"])
    # without a people file the first day a rep shows up in the data stands in for the hire date
    made["hire_date"] = _map_dates(made["rep_id"], first_seen).dt.normalize()
    for col in ("region", "quota_per_quarter"):
        if col in defaults:
            made[col] = str(defaults[col])
    for col in ("_file", "_row", "_col_rep_id"):
        made[col] = first.loc[missing, col].to_numpy()
    return made


def _say_made_up(made: pd.DataFrame, owners: pd.DataFrame, defaults: dict, people: str | None, problems) -> None:
    """One warning naming the reps made up from owners, and what stands in for what the data lacks."""
    shown = ", ".join(made["rep_id"].head(10)) + (" ..." if len(made) > 10 else "")
    by_name = (made["name"] != made["rep_id"]).all()
    column = owners["_col_owner_name" if by_name and owners["_col_rep_id"].isna().all() else "_col_rep_id"]
    origin = f"{_file_names(owners)} column {column.dropna().iloc[0]!r}" if column.notna().any() else _file_names(owners)
    why = f"not in the people file {people}" if people else "no people file given"
    problems.warn(_file_names(owners),
                  f"{len(made)} rep(s) made up from the owners in {origin} ({why}): {shown}; name = "
                  f"{'the owner' + chr(39) + 's name' if by_name else 'the owner id (no name in the export)'}, team "
                  f"{str(defaults['team'])!r}, manager {str(defaults['manager'])!r}, hire date = the first day each "
                  "appears in the data", "made_up_rep",
                  "give a people file (a users or sales-teams export with a [reps] section), or edit reps.csv")


def _contract_frame(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Only the contract's columns, as text in the contract's format (ISO dates)."""
    out = pd.DataFrame(index=range(len(frame)))
    frame = frame.reset_index(drop=True)
    for col in TABLES[table].columns:
        if col.name not in frame:
            if col.required:
                out[col.name] = ""
            continue
        values = frame[col.name]
        if col.kind in ("datetime", "date"):
            values = pd.to_datetime(values, errors="coerce")
            fmt = "%Y-%m-%d" if col.kind == "date" else "%Y-%m-%d %H:%M:%S"
            out[col.name] = values.dt.strftime(fmt).fillna("").astype(object)
        elif col.kind == "float":
            num = pd.to_numeric(values, errors="coerce")
            out[col.name] = num.map(lambda v: "" if pd.isna(v) else f"{v:.10g}").astype(object)
        else:
            out[col.name] = values.fillna("").astype(str)
    return out


# --------------------------------------------------------------------------------------
# writing


def run_import(mapping, sources, out_dir, validate: bool = True) -> ImportResult:
    """Import an export into ``out_dir``: convert, write, then validate with the loader.

    Files are written to a staging folder next to ``out_dir`` and checked there; only when
    they pass are they moved into place (one rename per file), so a failed import leaves
    an existing data folder as it was. The user-entered tables (commitments, coaching
    sessions, self-assessments) in ``out_dir`` are kept, and take part in the validation.

    Raises
    ------
    DataError
        Source problems (naming source files), or the loader's problems with the output.
    """
    result = convert(mapping, sources)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        for name, frame in result.tables.items():
            frame.to_csv(stage / f"{name}.csv", index=False, lineterminator="\n", encoding="utf-8")
        (stage / "process.toml").write_text(_process_toml(result.process, out / "process.toml"), encoding="utf-8")
        if out.exists():
            for name in TABLES:
                if name not in IMPORTED_TABLES:
                    for suffix in (".csv", ".parquet"):
                        if (out / f"{name}{suffix}").exists():
                            shutil.copy2(out / f"{name}{suffix}", stage / f"{name}{suffix}")
        if validate:
            report = loading.validate(stage)
            if not report.ok:
                problems = [to_source(p, result.origins) for p in report.problems if p.severity == "error"]
                raise DataError(collapse(problems), data_dir=f"{out} (import output, not written)")
        out.mkdir(parents=True, exist_ok=True)
        written = set()
        for name in [*result.tables, "process"]:
            target = f"{name}.toml" if name == "process" else f"{name}.csv"
            os.replace(stage / target, out / target)
            written.add(target)
        # a previous import's table that this export lacks would mix old and new data
        for name in IMPORTED_TABLES:
            for suffix in (".csv", ".parquet"):
                old = out / f"{name}{suffix}"
                if old.name not in written and old.exists():
                    old.unlink()
                    result.warnings.append(Problem(old.name, None, None, None, "stale_table_removed",
                                                   "removed: left from an earlier import, not in this export",
                                                   severity="warning"))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result.out_dir = out
    return result


def import_export(mapping_path, sources, out_dir) -> Path:
    """``coachnb import``: import, print the summary (exclusions, warnings) to stderr, return the folder."""
    result = run_import(mapping_path, sources, out_dir)
    print(terminal_safe(result.format(), keep_newlines=True), file=sys.stderr)  # names from the export: escaped
    return result.out_dir


#: where ``coachnb import --infer SOURCES --out DATA`` writes the mapping it proposed and used
PROPOSED_MAPPING = "mapping.toml"


def infer_and_import(sources, out_dir) -> ImportResult:
    """``coachnb import --infer SOURCE... --out DATA``: propose a mapping, keep it beside the data, import.

    The proposal (:func:`infer_mapping`) is written to ``DATA/mapping.toml`` first, so that it is
    there to review and edit even when the import stops; the import then runs with that file
    exactly as ``coachnb import --mapping DATA/mapping.toml SOURCE... --out DATA`` would, which is
    how a second run repeats it (the loader ignores the extra file in the data folder).

    Returns
    -------
    ImportResult
        With ``mapping_path`` set.

    Raises
    ------
    ConfigError
        When ``DATA/mapping.toml`` exists already: it may hold a user's edits, which a new
        proposal must not overwrite.
    DataError
        The import's problems (the proposal stays in ``DATA/mapping.toml``).
    """
    out = Path(out_dir)
    mapping_path = out / PROPOSED_MAPPING
    if mapping_path.exists():
        raise ConfigError(f"{mapping_path} exists (it may hold your edits): to import with it, run "
                          f"coachnb import --mapping {mapping_path} SOURCES... --out {out}; to have a new one "
                          "proposed, move it away first")
    text = infer_mapping(sources)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(mapping_path, text)
    result = run_import(mapping_path, sources, out)
    result.mapping_path = mapping_path
    return result


def import_inferred(sources, out_dir) -> Path:
    """What the CLI runs for ``import --infer ... --out DATA``: :func:`infer_and_import`, then what to check and run next.

    The summary, the lines of the mapping marked CHECK and the next commands go to stderr; on a
    failed import, where the proposed mapping is and how to rerun with it.
    """
    out = Path(out_dir)
    existed = (out / PROPOSED_MAPPING).exists()
    try:
        result = infer_and_import(sources, out)
    except (DataError, ConfigError):
        if not existed and (out / PROPOSED_MAPPING).is_file():
            print(terminal_safe(f"the proposed mapping is in {out / PROPOSED_MAPPING}: fix it as the problems below "
                                f"say, then run\n  {_import_command(sources, out)}", keep_newlines=True),
                  file=sys.stderr)
        raise
    # file, column and stage names come from the export: printed escaped, never as terminal controls
    print(terminal_safe(result.format() + "\n" + next_steps(result, sources), keep_newlines=True), file=sys.stderr)
    return result.out_dir


def _import_command(sources, out: Path) -> str:
    """The ``coachnb import --mapping`` command that repeats an inferred import."""
    files = " ".join(shlex.quote(str(s)) for s in ([sources] if isinstance(sources, (str, Path)) else sources))
    return f"coachnb import --mapping {shlex.quote(str(out / PROPOSED_MAPPING))} {files} --out {shlex.quote(str(out))}"


def next_steps(result: ImportResult, sources) -> str:
    """What a user checks and runs after an inferred import: the CHECK lines, the mode, the commands.

    Takes the import's result (``mapping_path`` and ``out_dir`` set) and the sources given.
    """
    out = result.out_dir
    text = result.mapping_path.read_text(encoding="utf-8")
    checks = [line.split("CHECK", 1)[1].strip(" :") for line in text.splitlines() if "CHECK" in line
              and not line.startswith("# Check every")]
    files = [line[2:] for line in text.split("\n\n", 1)[0].splitlines()
             if re.match(r"# [^ ]+\.(?:csv|tsv|txt): ", line, re.IGNORECASE)]
    lines = [f"mapping used: {result.mapping_path}", "what the files were used for:"] + [f"  {f}" for f in files]
    if checks:
        lines.append(f"{len(checks)} guess(es) to check there (lines marked CHECK):")
        lines += [f"  - {c}" for c in checks]
    missing = [t for t in ("stage_history", "activities") if not len(result.tables.get(t, ()))]
    status = set(result.tables["opportunities"]["status"])
    if status == {"won"}:
        lines.append("mode: won-only (won deals only: no open or lost deals, so no win rate and no pipeline)")
    if len(missing) == 2:
        lines.append("mode: pipeline-only (no activity log, no stage history): reports show the sections the "
                     "deals support (coachnb validate lists them)")
    elif missing:
        lines.append(f"no {missing[0].replace('_', ' ')} in the export: reports show the sections the data "
                     "supports (coachnb validate lists them)")
    if "lost" not in status and status != {"won"}:
        lines.append("no lost deals in the export: reports show no win rate")
    last = _last_record(result.tables)
    lines += ["after editing the mapping, repeat the import with:", f"  {_import_command(sources, out)}",
              "then render the reports:", f"  coachnb run {shlex.quote(str(out))} --as-of YYYY-MM-DD"
              + (f"   # the date of your 1:1s; the last record is on {last}" if last else "")]
    return "\n".join(lines)


def _last_record(tables: dict) -> str | None:
    """The day of the last dated record of the imported tables (``YYYY-MM-DD``), or ``None``."""
    days = [tables[t][c].str.slice(0, 10) for t, c in (("opportunities", "created_at"), ("opportunities", "closed_at"),
                                                          ("activities", "occurred_at"), ("stage_history", "entered_at"))
            if t in tables and len(tables[t])]
    days = pd.concat(days) if days else pd.Series(dtype=str)
    days = days[days != ""]
    return days.max() if len(days) else None


def _process_toml(process: dict, existing: Path) -> str:
    """process.toml text: the mapped process, keeping every other section of an existing file."""
    merged: dict = {}
    if existing.exists():
        try:
            merged = tomllib.loads(existing.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            merged = {}
    merged.setdefault("process", {}).update(process["process"])
    header = "# Written by `coachnb import`; stages are the open stages in order (won/lost are statuses).\n"
    return header + to_toml(merged)


def toml_value(value) -> str:
    """A TOML literal for a str, bool, number or list (JSON string escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return _json_text(value)


def _json_text(value) -> str:
    """A TOML basic string: JSON's escapes, and DEL escaped too (TOML allows no raw control character)."""
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    """A TOML key: bare when it may be, else quoted (CRM stage names hold spaces and dots)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _json_text(key)


def to_toml(data: dict, prefix: str = "") -> str:
    """Write nested dicts (tables of scalars and lists) as TOML text."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for k, v in data.items():
        if isinstance(v, dict):
            name = f"{prefix}.{toml_key(k)}" if prefix else toml_key(k)
            text += f"\n[{name}]\n" + to_toml(v, name)
    return text


# --------------------------------------------------------------------------------------
# inferring a mapping

#: contract column -> column names CRMs use for it, in order of preference (compared without
#: case, spaces, _ . -, and also without an entity prefix such as "Deal - " or "(Do Not Modify) ")
SYNONYMS = {
    "opportunities": {
        "opportunity_id": ["Id", "hs_object_id", "Record ID", "Deal ID", "Opportunity ID", "deal_id", "ID",
                           "(Do Not Modify) Opportunity", "Opportunity Number", "mql_id", "Lead ID"],
        "rep_id": ["OwnerId", "hubspot_owner_id", "Owner ID", "owner_id", "user_id", "Rep ID", "sales_rep_id",
                   "sr_id", "agent_id", "salesperson_id", "seller_id", "sdr_id"],
        "owner_name": ["Deal Owner", "Opportunity Owner", "Owner", "Owner Name", "Rep", "Sales Rep", "Salesperson",
                       "Sales Person", "sales_agent", "Sales Agent", "Agent", "Seller", "Sales Representative",
                       "Representative", "Account Executive", "AE", "Account Manager", "Assigned To", "user_name",
                       "User", "Verantwortlich", "Verantwortlicher", "Vertriebsmitarbeiter", "Besitzer", "Betreuer"],
        "account": ["Account.Name", "Account Name", "Associated Company", "Company", "Company Name", "Account",
                    "Customer", "Client", "Organization", "Organisation", "Potential Customer", "lead_name",
                    "AccountId", "Firma", "Kunde", "Unternehmen"],
        "name": ["Name", "dealname", "Deal Name", "Opportunity Name", "Deal", "Opportunity", "Title", "Topic",
                 "Verkaufschance", "Titel"],
        "created_at": ["CreatedDate", "createdate", "Create Date", "Created", "Created Date", "Created At",
                       "Date Created", "Created On", "Creation Date", "Created Time", "Deal created", "date_created",
                       "engage_date", "Engage Date", "Engaged", "Date Opened", "Opened", "Open Date",
                       "first_contact_date", "Erstellt am", "Erstellt", "Angelegt am", "Erstellungsdatum"],
        "amount": ["Amount", "Value", "Deal Value", "Deal Amount", "Opportunity Amount", "close_value", "Close Value",
                   "Est. Revenue", "Estimated Revenue", "Expected Revenue", "Revenue", "Deal Size", "ACV", "Total",
                   "Price", "Actual Revenue", "Betrag", "Wert", "Umsatz"],
        "stage": ["StageName", "dealstage", "Deal Stage", "Stage", "Pipeline Stage", "Sales Stage", "Stage Name",
                  "Pipeline Phase", "Phase", "status_label", "Sales Phase", "Verkaufsphase"],
        "status": ["Status", "status_type", "Outcome", "Result", "Won/Lost", "Deal Status", "State"],
        "closed_at": ["Actual Close Date", "Won time", "Lost time", "Close time", "date_won", "date_lost", "won_date",
                      "lost_date", "Date Won", "Date Lost", "CloseDate", "closedate", "Close Date", "close_date",
                      "Closed Date", "Closed", "Closed At", "Date Closed", "Closed On", "Abschlussdatum",
                      "Geschlossen am", "Closing Date", "Expected Close Date", "Est. Close Date"],
    },
    "activities": {
        "activity_id": ["Id", "hs_object_id", "engagement_id", "Activity ID", "ID"],
        "rep_id": ["OwnerId", "hubspot_owner_id", "Owner ID", "owner_id", "user_id"],
        "owner_name": ["Owner", "Activity Owner", "Assigned To", "Rep", "Sales Rep", "Salesperson", "sales_agent",
                       "Agent", "User", "Assigned to user"],
        "occurred_at": ["ActivityDateTime", "ActivityDate", "hs_timestamp", "timestamp", "Activity Date", "Date",
                        "Occurred At", "Start", "Due Date"],
        "type": ["Type", "TaskSubtype", "hs_engagement_type", "engagement_type", "Activity Type", "Kind", "Channel"],
        "opportunity_id": ["WhatId", "associated_deal_id", "Deal ID", "Opportunity ID", "deal_id", "Related To"],
        "logged_at": ["CreatedDate", "hs_createdate", "createdate", "Created", "Created At", "Logged At"],
    },
    "stage_history": {
        "opportunity_id": ["OpportunityId", "Opportunity ID", "deal_id", "Deal ID"],
        "stage": ["StageName", "NewValue", "Stage", "dealstage", "To Stage", "New Stage"],
        "entered_at": ["CreatedDate", "Changed At", "Date", "Timestamp", "Entered At"],
    },
    "reps": {
        "rep_id": ["Id", "User ID", "Owner ID", "owner_id", "user_id", "sr_id", "agent_id", "Rep ID", "id"],
        "name": ["Name", "Full Name", "Display Name", "sales_agent", "Sales Agent", "Agent", "Sales Rep", "Rep",
                 "Salesperson", "Seller", "Owner", "User", "user_name", "Employee"],
        "team": ["Department", "Team", "Sales Team", "Division", "UserRole.Name", "regional_office", "Office",
                 "Regional Office"],
        "manager": ["Manager.Name", "Manager", "Manager Name", "Team Lead", "Supervisor"],
        "hire_date": ["Hire Date", "Start Date", "Hired", "Hired On", "CreatedDate"],
        "region": ["Region", "Territory"],
        "quota_per_quarter": ["Quota", "Quarterly Quota", "quota_per_quarter"],
    },
}
#: targets that take every matching column, first non-empty wins (Salesforce keeps an event's
#: time in one column and an all-day date in another; Pipedrive has a won time and a lost time)
MULTI_COLUMN_TARGETS = ("occurred_at", "type", "closed_at")
#: columns that say a file lists people (a users or teams export), beside a name or id
PEOPLE_COLUMNS = {"manager", "managername", "team", "salesteam", "department", "regionaloffice", "office", "region",
                  "division", "hiredate", "startdate", "email", "username", "userrolename", "supervisor", "teamlead"}
#: columns that make a file a deals file even without a stage or status column: the export of won deals only
WON_DATE_COLUMNS = {"wondate", "datewon", "wontime", "wonat", "wonon"}
_WON_WORDS = ("won", "gewonnen", "gagn", "ganad", "closedwon", "signed")
_LOST_WORDS = ("lost", "verloren", "perdu", "perdid", "closedlost", "dead", "disqualified", "abandon", "cancel",
               "outsold")
_OPEN_WORDS = ("open", "active", "inprogress", "onhold", "pending", "offen", "laufend")
#: words of open stage names in the order a buyer usually meets them (a stage's first match ranks it)
_STAGE_KEYWORDS = tuple(re.compile(r"\b" + w, re.IGNORECASE) for w in (
    "new", "lead", "erstkontakt", "prospect", "appointment", "qualif", "contact made", "discover", "needs analysis",
    "bedarf", "engag", "meeting", "develop", "demo", "presentation", "value proposition", "id. decision",
    "identify decision", "decision maker", "perception", "solution", "propos", "quote", "angebot", "contract",
    "negotiat", "verhandlung", "commit", "closing", "verbal"))
_TYPE_WORDS = (("demo", "demo"), ("call", "call"), ("phone", "call"), ("mail", "email"), ("meeting", "meeting"),
               ("event", "meeting"), ("visit", "meeting"), ("note", SKIP))
#: stage-entry-date columns: HubSpot's API name, and its export's 'Date entered "Stage (Pipeline)"'
_ENTERED_RE = re.compile(r"^(?:hs_date_entered_(.+)|date entered ['\"]?(.+?)(?: \([^()]*\))?['\"]?)$", re.IGNORECASE)
_PREFIX_RE = re.compile(r"^\s*(?:\(do not modify\)\s*|(?:deal|opportunity|lead|person|organi[sz]ation)\s+-\s+)", re.IGNORECASE)
_COMPANY_WORDS = re.compile(r"\b(?:gmbh|inc|ltd|llc|ag|sa|corp|co|plc|bv|oy|ab|kg|group|holding|dynamics)\b\.?", re.IGNORECASE)


def _printable(text) -> str:
    """Text for a TOML comment: control characters and line breaks from the data shown escaped."""
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]", lambda m: repr(m.group())[1:-1], str(text))


def _norm(name: str) -> str:
    """A column or value name for comparing: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _norms(column: str) -> tuple[str, str]:
    """A column name compared as written and without its entity prefix (``Deal - Owner`` -> ``owner``)."""
    return _norm(column), _norm(_PREFIX_RE.sub("", column))


def _find(columns: list[str], candidates: list[str], taken: set) -> str | None:
    """The first candidate (in order of preference) among the columns not yet ``taken``; first column wins a tie.

    A column matches a candidate by its full name first, else by its name without an entity
    prefix (Pipedrive's ``Deal - ``, Dynamics' ``(Do Not Modify) ``).
    """
    full = {_norms(c)[0]: c for c in reversed(columns) if c not in taken}
    short = {_norms(c)[1]: c for c in reversed(columns) if c not in taken}
    for cand in candidates:
        key = _norm(cand)
        if key in full:
            return full[key]
        if key in short:
            return short[key]
    return None


def _has(frame: pd.DataFrame, table: str, target: str) -> bool:
    """Whether some column of ``frame`` is a known name of ``table``'s ``target``."""
    return _find(list(frame.columns), SYNONYMS[table][target], set()) is not None


def _role(path: Path, frame: pd.DataFrame) -> str | None:
    """Which contract table an export file feeds, guessed from its columns (and a users file's name).

    A stage, status-with-amount, stage-entry-date or won-date column makes a deals file; a type
    column an activity log; a person column beside manager / team / office / hire-date columns
    a people file. ``None`` when none of these is there.
    """
    cols = {n for c in frame.columns for n in _norms(c)}
    if "opportunityid" in cols and ({"stagename"} <= cols or {"field", "newvalue"} <= cols):
        return "stage_history"
    if _norm(path.stem) in ("user", "users", "owners", "owner", "reps"):
        return "reps"
    owner = _has(frame, "opportunities", "rep_id") or _has(frame, "opportunities", "owner_name")
    if (_has(frame, "opportunities", "stage") or any(_ENTERED_RE.match(c) for c in frame.columns)
            or _has(frame, "opportunities", "status") and (_has(frame, "opportunities", "amount")
                                                          or _has(frame, "opportunities", "closed_at"))
            or cols & WON_DATE_COLUMNS and owner):
        return "opportunities"
    if _has(frame, "activities", "type") or _norm(path.stem) in ("task", "event", "engagements"):
        return "activities"
    if (owner or _has(frame, "reps", "name")) and cols & PEOPLE_COLUMNS or "username" in cols:
        return "reps"
    return None


_DATE_RE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?)(\s?[AaPp][Mm])?)?")


def detect_date_formats(values: pd.Series) -> tuple[list[str], str]:
    """Date formats for a column's values, and a note on how sure the guess is.

    Slashed/dotted dates are day-first when some first number is above 12, month-first
    when some second number is; otherwise ambiguous (day-first for dots, else month-first).
    Times may carry AM/PM (Dynamics, US spreadsheets).
    """
    vals = [v for v in values.astype(str).str.strip() if v][:500]
    if not vals:
        return ["iso"], "no values to check"
    if all(re.fullmatch(r"\d{12,13}", v) for v in vals):
        return ["epoch_ms"], "Unix milliseconds"
    if all(re.match(r"\d{4}-\d{2}-\d{2}", v) for v in vals):
        return ["iso"], "ISO 8601"
    parts = [_DATE_RE.fullmatch(v) for v in vals]
    if not all(parts):
        return ["iso", "dayfirst"], "CHECK: unrecognised date format"
    first = max(int(m.group(1)) for m in parts)
    second = max(int(m.group(3)) for m in parts)
    sep = parts[0].group(2)
    year = "%Y" if len(parts[0].group(4)) == 4 else "%y"
    if first > 12:
        dayfirst, note = True, f"day-first (a first number is {first})"
    elif second > 12:
        dayfirst, note = False, f"month-first (a second number is {second})"
    else:
        dayfirst = sep == "."
        note = f"CHECK: ambiguous, no number above 12; assumed {'day' if dayfirst else 'month'}-first"
    base = sep.join(["%d", "%m"] if dayfirst else ["%m", "%d"]) + sep + year
    formats = [base]
    if any(m.group(6) for m in parts):
        formats += [base + " %I:%M %p", base + " %I:%M:%S %p"]
    if any(m.group(5) for m in parts):
        formats += [base + " %H:%M:%S", base + " %H:%M"]
    return formats, note


def detect_number_format(values: pd.Series) -> tuple[str, str]:
    """(decimal, thousands) for amounts such as ``€1.234,50`` or ``$12,500.00``."""
    vals = [_SPACES_RE.sub("", _CURRENCY_RE.sub("", v)) for v in values.astype(str) if v.strip()][:500]
    comma_decimal = sum(bool(re.search(r",\d{1,2}$", v)) or bool(re.search(r"\.\d{3}.*,", v)) for v in vals)
    dot_decimal = sum(bool(re.search(r"\.\d{1,2}$", v)) or bool(re.search(r",\d{3}.*\.", v)) for v in vals)
    return (",", ".") if comma_decimal > dot_decimal else (".", ",")


def _stages_in_entry_order(frame: pd.DataFrame, cols: dict) -> list[str]:
    """Stage values of a history file ordered by their mean position within each deal's history."""
    when = pd.to_datetime(frame[cols["entered_at"]], format="ISO8601", errors="coerce", utc=True) \
        if "entered_at" in cols else pd.Series(range(len(frame)))
    order = pd.DataFrame({"opp": frame[cols.get("opportunity_id", cols["stage"])], "stage": frame[cols["stage"]],
                          "when": when})
    order = order[order["stage"] != ""].sort_values(["opp", "when"], kind="stable")
    order["pos"] = order.groupby("opp").cumcount()
    return list(order.groupby("stage")["pos"].mean().sort_values(kind="stable").index)


def _guess_stage(value: str) -> str | None:
    """``"won"`` / ``"lost"`` for a stage name that says so (in a few languages), else ``None`` (an open stage)."""
    low = _norm(value)
    if any(w in low for w in _LOST_WORDS):
        return "lost"
    if any(w in low for w in _WON_WORDS):
        return "won"
    return None


def _guess_status(value: str) -> tuple[str, bool]:
    """open / won / lost for a status column's value, and whether that is a guess to check."""
    closed = _guess_stage(value)
    if closed:
        return closed, False
    return "open", not any(w in _norm(value) for w in _OPEN_WORDS)


def _guess_type(value: str) -> str:
    """The contract activity type a CRM type name suggests (``"other"`` when none does)."""
    low = value.lower()
    return next((t for word, t in _TYPE_WORDS if word in low), "other")


def order_open_stages(stages: list[str], ages: dict | None = None) -> tuple[list[str], str]:
    """Open stage names in the order a buyer passes through them, and what the order rests on.

    Parameters
    ----------
    stages : list of str
        Distinct open stage names, in order of first appearance.
    ages : dict, optional
        Stage -> ``(share of its deals without a created date, median created date as a
        number)``, from a snapshot of the deals: deals in later stages were created earlier,
        and a first stage is often the one deals sit in before anyone dates them.

    Returns
    -------
    (list of str, str)
        The order, and its basis: numbers in the names ("1-Qualify"), the usual meaning of
        the names (lead, qualify, demo, proposal, negotiation ...), the data, or first appearance.
    """
    numbers = [re.match(r"\s*(\d+)\s*[-.:)_ ]", s) for s in stages]
    if stages and all(numbers):
        return sorted(stages, key=lambda s: int(re.match(r"\s*(\d+)", s).group(1))), "the numbers in the names"
    ranks = [next((i for i, k in enumerate(_STAGE_KEYWORDS) if k.search(s)), None) for s in stages]
    if len(stages) > 1 and all(r is not None for r in ranks):
        return [s for _, s in sorted(zip(ranks, stages), key=lambda p: p[0])], "the usual meaning of the names"
    if ages and len(stages) > 1 and all(s in ages for s in stages):
        return sorted(stages, key=lambda s: (-ages[s][0], -ages[s][1])), \
            "the data (deals in later stages were created earlier)"
    return list(stages), "order of first appearance"


@dataclass
class _Inferred:
    """What :func:`infer_mapping` gathers file by file for the mapping's shared sections."""

    owner_blank: bool = False
    stage_values: list = field(default_factory=list)
    #: the stage values' order comes from a history file or stage-entry-date columns
    stage_order_known: bool = False
    #: open stage -> (share of its deals without a created date, median created date)
    stage_ages: dict = field(default_factory=dict)
    #: stage -> won / lost, from the data where the name says neither (see :func:`stage_outcomes`)
    stage_outcomes: dict = field(default_factory=dict)
    status_values: list = field(default_factory=list)
    type_values: list = field(default_factory=list)
    date_notes: list = field(default_factory=list)
    number: tuple = (".", ",")
    #: the first file's date formats, which ``[formats] dates`` states for all
    global_dates: list | None = None
    #: deals without a created date: (count, their stage values)
    missing_created: tuple = (0, ())
    #: what the files hold and how they were used (comment lines of the mapping's head)
    notes: list = field(default_factory=list)
    #: the deals file's owner column holds ids (``rep_id``) or names (``owner_name``)
    owner_kind: str = ""


#: tables a mapping reads from one source file (the others take a list of sources)
ONE_SOURCE_ROLES = ("reps", "opportunities")


def infer_mapping(sources) -> str:
    """Propose a mapping for export files, as TOML text for the user to check and edit.

    Recognises what CRMs and spreadsheets call things (owner / agent / seller / sr_id, created
    / engage date, amount / close value / revenue, stage / phase / status ...), by name and,
    where no name fits, by content (a date column, a money column, a column of people's names);
    tells deals, people (users, sales teams), stage histories and activity logs apart by their
    columns; detects day-first dates, AM/PM times and decimal commas; orders the open stages
    (see :func:`order_open_stages`); names the won-only mode (no stage or status column, a won
    date). The head of the text says which files and columns were used, which were not, and
    why. Lines marked ``CHECK`` need a human. The text is valid TOML that
    :func:`import_export` accepts as it is.

    Raises
    ------
    CoachnbError
        When no file looks like a deals export (no stage, status or won-date column).
    """
    files = source_files(sources)
    frames = {f: read_source(f) for f in files}
    roles: dict[str, list[Path]] = {}
    for f, frame in frames.items():
        roles.setdefault(_role(f, frame) or "unused", []).append(f)
    if "opportunities" not in roles:
        raise CoachnbError("--infer found no deals file among " + ", ".join(f.name for f in files) +
                           ": none has a stage, status or won-date column (Stage, StageName, dealstage, "
                           "deal_stage, Status, won_date ...) beside an owner column")
    found = _Inferred()
    spec_text: list[str] = []
    for role in ("opportunities", "reps", "stage_history", "activities"):
        mapped = roles.get(role, [])
        if role in ONE_SOURCE_ROLES:  # one [table], not an array: a second would be invalid TOML
            mapped, more = mapped[:1], mapped[1:]
            spec_text += [_printable(f"# CHECK: {f.name} also looks like {role}; not mapped (combine the files or "
                                     f"map it in place of {mapped[0].name})") for f in more]
        for f in mapped:
            spec_text += _infer_source(role, f, frames, roles, found) + [""]
    for f in roles.get("unused", []):
        if not any(f.name in n for n in found.notes):
            found.notes.append(f"{f.name}: not used (columns {', '.join(list(frames[f].columns)[:6])}"
                               f"{' ...' if len(frames[f].columns) > 6 else ''}: no deals, people, activities "
                               "or stage history recognised)")
    lines = ["# Proposed by `coachnb import --infer` from " + ", ".join(f.name for f in files) + ".",
             "# Check every line marked CHECK, above all the stage order, then run",
             "#   coachnb import --mapping THIS_FILE.toml SOURCES... --out DATA_DIR", "#"]
    lines += [f"# {_printable(n)}" for n in found.notes] + [""]
    lines += _inferred_shared_sections(found)
    if "reps" not in roles:
        lines += ["[reps.defaults]                 # no people file: reps are made up from the distinct owners",
                  'team = "Unassigned"', 'manager = "Unassigned"', ""]
    text = "\n".join(lines + spec_text)
    tomllib.loads(text)  # never hand the user TOML that does not parse
    return text


def _infer_source(role: str, path: Path, frames: dict, roles: dict, found: _Inferred) -> list[str]:
    """The ``[role]`` block proposed for one source file.

    Takes the file's role (from :func:`_role`), path, every source's frame and the roles
    found; adds the file's owners, stage and type values, date note and number format to
    ``found``. Returns the block's lines.
    """
    frame, joins = frames[path], []
    if role == "opportunities":
        frame, joins = _infer_joins(path, frame, frames, roles.get("unused", []), found)
    cols, entered = _infer_columns(role, frame)
    checks: list[str] = []
    if role == "opportunities":
        checks = _infer_by_content(frame, cols)
        found.owner_kind = "rep_id" if "rep_id" in cols else "owner_name" if "owner_name" in cols else ""
    if role == "reps" and found.owner_kind == "owner_name":
        cols.pop("rep_id", None)  # the deals name their owners: a person's name is the key (as a slug)
    if role == "reps" and not _reps_match_owners(cols, found):
        found.notes.append(f"{path.name}: a people file, but not used: it has no "
                           f"{'id' if found.owner_kind == 'rep_id' else 'name'} column to match the deals' owners")
        return []
    lacking = [" or ".join(o) for o in NEEDED_COLUMNS[role] if not set(o) & set(cols)]
    if role in ("activities", "stage_history") and lacking:
        found.notes.append(f"{path.name}: looks like {role.replace('_', ' ')}, but not used: no column for "
                           f"{', '.join(lacking)}")
        return []
    owner = cols.get("rep_id") or cols.get("owner_name")
    if role in ("opportunities", "activities") and owner:
        found.owner_blank |= bool((frame[owner] == "").any())
    _collect_values(role, frame, cols, entered, found)
    formats, note = _infer_dates(frame, cols, entered)
    if role == "opportunities" and "amount" in cols:
        found.number = detect_number_format(frame[cols["amount"]])
    own_dates = None
    if note == "no values to check":
        pass  # no date column: nothing to say about this file's dates
    elif found.global_dates is None:
        found.global_dates = formats
    elif formats != found.global_dates:
        own_dates = formats
    if note != "no values to check":
        found.date_notes.append(f"{path.name}: {note}")
    found.notes.append(_usage_note(role, path, frame, cols, entered, joins))
    block = _spec_block(role, path, frame, cols, entered, own_dates)
    if joins:
        block.insert(2, "join = [" + ", ".join(f"{{ file = {toml_value(_literal_pattern(f))}, on = {toml_value(k)} }}"
                                               for f, k in joins) + "]")
    return block[:2] + [f"# CHECK: {_printable(c)}" for c in checks] + block[2:]


def _literal_pattern(name: str) -> str:
    """A file-name pattern that matches exactly ``name`` (its ``*``, ``?`` and ``[`` taken literally)."""
    return re.sub(r"([*?[])", r"[\1]", name)


def _usage_note(role: str, path: Path, frame: pd.DataFrame, cols: dict, entered: dict, joins: list) -> str:
    """One line for the mapping's head: the file's role, the columns used, the ones left out."""
    used = {c for cs in cols.values() for c in _as_list(cs)} | set(entered)
    unused = [c for c in frame.columns if c not in used and not any(c == k for _, k in joins)]
    what = {"opportunities": "deals", "reps": "people (reps)", "stage_history": "stage history",
            "activities": "activities"}[role]
    text = f"{path.name}: {what}; uses {', '.join(sorted(used)) or 'no column'}"
    if joins:
        text += "; joins " + ", ".join(f"{f} on {k}" for f, k in joins)
    owner = cols.get("rep_id") or cols.get("owner_name")
    people = [c for c in unused if role == "opportunities" and owner and (
        _find([c], SYNONYMS[role]["rep_id"], set()) or _find([c], SYNONYMS[role]["owner_name"], set()))]
    unused = [c for c in unused if c not in people]
    if people:
        text += f"; other person columns, not used (the owner is {owner!r}; CHECK): {', '.join(people)}"
    if unused:
        text += f"; not used (no place in the data contract): {', '.join(unused[:12])}"
        text += " ..." if len(unused) > 12 else ""
    return text


def _infer_joins(path: Path, frame: pd.DataFrame, frames: dict, unused: list, found: _Inferred):
    """A deals file without a created date, joined with an unused file that has one on a shared id.

    Returns the deals frame (joined when a lookup fits, else as it was) and the joins made,
    ``[(file name, key column)]``. The won deals of a marketing funnel export keep their leads'
    first-contact dates in the leads file, for example.
    """
    if _has(frame, "opportunities", "created_at"):
        return frame, []
    for other in unused:
        extra = frames[other]
        if not _has(extra, "opportunities", "created_at"):
            continue
        keys = [c for c in frame.columns if c in extra.columns and extra[c].ne("").all() and extra[c].is_unique]
        for key in keys:
            if frame[key].isin(set(extra[key])).mean() >= 0.5:
                found.notes.append(f"{other.name}: joined to {path.name} on {key} for the created date")
                clash = [c for c in extra.columns if c in frame.columns and c != key]
                merged = frame.merge(extra.drop(columns=clash), on=key, how="left").fillna("")
                return merged, [(other.name, key)]
    return frame, []


def _reps_match_owners(cols: dict, found: _Inferred) -> bool:
    """Whether a people file can be matched to the deals' owners (ids to ids, names to names)."""
    if found.owner_kind == "rep_id":
        return "rep_id" in cols
    return "name" in cols or "rep_id" in cols


def _infer_columns(role: str, frame: pd.DataFrame) -> tuple[dict, dict]:
    """Contract column -> source column(s) for one file, and its stage-entry-date columns.

    Returns ``(cols, entered)``: ``cols`` maps a target to a column name or a list of them
    (first non-empty wins); ``entered`` maps each stage-entry-date column to its stage value.
    """
    columns = list(frame.columns)
    taken: set = set()
    cols: dict[str, str] = {}
    for target, cands in SYNONYMS[role].items():
        found = _find(columns, cands, taken)
        if found:
            cols[target] = found
            taken.add(found)
            while target in MULTI_COLUMN_TARGETS and (more := _find(columns, cands, taken)):
                cols[target] = [*_as_list(cols[target]), more]
                taken.add(more)
    if role == "opportunities" and "status" in cols and "stage" not in cols:
        cols["stage"] = cols.pop("status")
    if role == "opportunities" and "owner_name" in cols and "rep_id" in cols \
            and frame[cols["owner_name"]].nunique() > frame[cols["rep_id"]].nunique():
        del cols["owner_name"]  # not one name per owner id: not the owner's name
    entered = {c: (m.group(1) or m.group(2)) for c in frame.columns if (m := _ENTERED_RE.match(c))}
    for c in entered:
        for k in [k for k, v in cols.items() if v == c]:
            del cols[k]
    if role == "activities" and cols.get("logged_at") in _as_list(cols.get("occurred_at", [])):
        del cols["logged_at"]
    if role == "activities" and "occurred_at" in cols and "logged_at" in cols:
        # a task without a date: the day it was entered is the best guess left
        cols["occurred_at"] = [*_as_list(cols["occurred_at"]), cols["logged_at"]]
    return cols, entered


def _looks_like_dates(values: pd.Series) -> bool:
    """Most non-empty values are dates (ISO, or numbers with / . - and a 2- or 4-digit year)."""
    vals = values[values != ""].head(200)
    return len(vals) > 0 and (vals.str.match(r"\d{4}-\d{2}-\d{2}") | vals.str.fullmatch(_DATE_RE.pattern)).mean() >= 0.9


def _looks_like_money(values: pd.Series) -> bool:
    """Most non-empty values are numbers (currency marks allowed), not mostly zero, not small integers only."""
    vals = values[values != ""].head(200)
    if len(vals) == 0:
        return False
    numbers = parse_numbers(vals, *detect_number_format(vals))
    return numbers.notna().mean() >= 0.9 and (numbers == 0).mean() < 0.5 and numbers.max() > 100


def _looks_like_people(values: pd.Series) -> bool:
    """A column of people's names: few distinct values, each two or three capitalised words, no company words."""
    vals = values[values != ""]
    distinct = vals.unique()
    if len(vals) == 0 or len(distinct) > max(3, len(vals) // 3):
        return False
    person = [bool(re.fullmatch(r"[^\W\d_][^\W\d_'.-]*(?:[ '-][^\W\d_][^\W\d_'.-]*){1,2}", v))
              and v.split()[0][:1].isupper() and not _COMPANY_WORDS.search(v) for v in distinct]
    return sum(person) >= 0.8 * len(distinct)


def _infer_by_content(frame: pd.DataFrame, cols: dict) -> list[str]:
    """Fill the deals' owner, created date, amount and close date from the values where no name matched.

    Changes ``cols`` in place; returns one CHECK note per column chosen this way.
    """
    used = {c for cs in cols.values() for c in _as_list(cs)}
    free = [c for c in frame.columns if c not in used and not _ENTERED_RE.match(c)]
    notes = []
    if "rep_id" not in cols and "owner_name" not in cols:
        col = next((c for c in free if _looks_like_people(frame[c])), None)
        if col:
            cols["owner_name"], notes = col, [f"owner is {col!r}: its values look like people's names"]
            free.remove(col)
    dates = [c for c in free if _looks_like_dates(frame[c]) and not re.search(r"modif|updat|änder", c, re.IGNORECASE)]
    for target in ("created_at", "closed_at"):
        if target not in cols and dates:
            col = max(dates, key=lambda c: (frame[c] != "").sum()) if target == "created_at" else dates[0]
            cols[target] = col
            dates.remove(col)
            notes.append(f"{target} is {col!r}: a date column, chosen by its values")
    if "amount" not in cols:
        col = next((c for c in free if c not in dates and _looks_like_money(frame[c])
                    and not re.search(r"prob|confiden|%|id$|year|jahr", c, re.IGNORECASE)), None)
        if col:
            cols["amount"] = col
            notes.append(f"amount is {col!r}: a money column, chosen by its values")
    return notes


def _collect_values(role: str, frame: pd.DataFrame, cols: dict, entered: dict, found: _Inferred) -> None:
    """Add the file's distinct stage, status and activity-type values to ``found``, in a useful order."""
    if role == "opportunities":
        # stage-entry columns come in pipeline order: the best guess of the stage order
        found.stage_values += [v for v in entered.values() if v not in found.stage_values]
        found.stage_order_known |= bool(entered)
        if "stage" in cols:
            found.stage_values += [v for v in frame[cols["stage"]].unique() if v and v not in found.stage_values]
            found.stage_ages = _stage_ages(frame, cols)
            if "closed_at" in cols and "status" not in cols:
                close = pd.Series("", index=frame.index)
                for c in _as_list(cols["closed_at"]):  # first non-empty of the columns, as the import reads them
                    close = close.where(close != "", frame[c])
                amount = parse_numbers(frame[cols["amount"]], *detect_number_format(frame[cols["amount"]])) \
                    if "amount" in cols else None
                found.stage_outcomes = stage_outcomes(frame[cols["stage"]], close, amount)
        if "status" in cols:
            found.status_values += [v for v in frame[cols["status"]].unique() if v and v not in found.status_values]
        created = _as_list(cols.get("created_at", []))
        no_date = frame[created].eq("").all(axis=1) if created else pd.Series(True, index=frame.index)
        if no_date.any() and not entered:
            stages = frame.loc[no_date, cols["stage"]].unique() if "stage" in cols else ()
            found.missing_created = (int(no_date.sum()), tuple(sorted(s for s in stages if s)))
    if role == "stage_history" and "stage" in cols:
        order = _stages_in_entry_order(frame, cols)
        found.stage_values = order + [v for v in found.stage_values if v not in order]
        found.stage_order_known = True
    if role == "activities" and "type" in cols:
        for c in _as_list(cols["type"]):
            found.type_values += [v for v in frame[c].unique() if v and v not in found.type_values]


def _stage_ages(frame: pd.DataFrame, cols: dict) -> dict:
    """Per stage value of open deals: (share without a created date, median created date in days)."""
    rows = frame
    if "status" in cols:
        rows = frame[frame[cols["status"]].map(lambda v: _guess_status(v)[0]) == "open"]
    created = _as_list(cols.get("created_at", []))
    if not created or not len(rows):
        return {}
    formats, _ = detect_date_formats(rows[created[0]])
    when = parse_dates(rows[created[0]], formats)
    days = (when - pd.Timestamp("1970-01-01")).dt.days
    stats = pd.DataFrame({"stage": rows[cols["stage"]], "empty": when.isna(), "days": days})
    grouped = stats.groupby("stage")
    return {s: (float(grouped["empty"].mean()[s]), float(grouped["days"].median()[s])
                if pd.notna(grouped["days"].median()[s]) else 0.0) for s in grouped.groups}


def stage_outcomes(stages: pd.Series, closed: pd.Series, amounts: pd.Series | None) -> dict:
    """Won / lost for stage names that don't say so, from which stages' deals carry a close date and a value.

    Parameters
    ----------
    stages, closed : Series of str
        Each deal's stage and its close-date cell ('' when empty).
    amounts : Series of float, optional
        Each deal's value (NaN when empty).

    Returns
    -------
    dict
        Stage -> ``"won"`` (at least 90% of its deals, and at least 5, have a close date, and most a
        value above 0) or ``"lost"`` (a close date, and no value above 0). Empty when some stage
        name says won or lost already (the names are the better evidence), or when no stage is
        mostly without close dates (a CRM that fills in an expected close date for open deals
        too, such as Salesforce's ``CloseDate``: the dates tell nothing then).
    """
    frame = pd.DataFrame({"stage": stages, "dated": closed != "",
                          "value": amounts if amounts is not None else np.nan})
    grouped = frame.groupby("stage")
    share, size = grouped["dated"].mean(), grouped.size()
    if not len(share) or share.min() > 0.1 or any(_guess_stage(s) for s in share.index):
        return {}
    paid = frame.assign(paid=frame["value"] > 0).groupby("stage")["paid"].mean()
    return {s: ("won" if paid[s] >= 0.5 else "lost") for s in share.index
            if s and share[s] >= 0.9 and size[s] >= 5}


def _infer_dates(frame: pd.DataFrame, cols: dict, entered: dict) -> tuple[list[str], str]:
    """Date formats of every date column of one file together, and how sure the guess is.

    Unix milliseconds are added as a fallback when some values are written that way.
    """
    date_cols = [c for t, cs in cols.items() if t in ("created_at", "closed_at", "occurred_at", "logged_at",
                                                       "entered_at", "hire_date") for c in _as_list(cs)]
    date_cols += list(entered)
    values = pd.concat([frame[c] for c in date_cols]) if date_cols else pd.Series(dtype=str)
    formats, note = detect_date_formats(values)
    if "epoch_ms" not in formats and values.str.fullmatch(r"\d{12,13}").any():
        formats = formats + ["epoch_ms"]
    return formats, note


def _spec_block(role: str, path: Path, frame: pd.DataFrame, cols: dict, entered: dict, own_dates) -> list[str]:
    """TOML lines of one source's ``[role]`` section, with the defaults its gaps need.

    ``own_dates`` are the file's date formats where they differ from the mapping-wide
    ``[formats] dates``, else ``None``.
    """
    header = f"[[{role}]]" if role in ("stage_history", "activities") else f"[{role}]"
    block = [header, f"file = {toml_value(_literal_pattern(path.name))}"]
    if role != "opportunities":
        block.append("optional = true")
    if own_dates is not None:
        block.append(f"dates = {toml_value(own_dates)}")
    if role == "stage_history" and _norm(cols.get("stage", "")) == "newvalue":
        block.append('where = { Field = "StageName" }')
    block.append(f"[{role}.columns]")
    block += [f"{t} = {toml_value(c)}" for t, c in cols.items()]
    owner = "rep_id" in cols or "owner_name" in cols
    missing = [c.name for c in TABLES[role].columns if c.required and c.name not in cols
               and not (c.name == "rep_id" and owner)
               and not (c.name == "opportunity_id" and role == "opportunities")
               and not (c.name == "activity_id" and role == "activities")
               and not (c.name == "status" and "stage" in cols)
               and not (role == "opportunities" and c.name in ("amount", "account", "name", "status"))]
    if role == "opportunities" and not owner:
        block.insert(2, "# CHECK: no owner column found (by name or content): add owner_name = \"<the column "
                        "with the deal owner's name>\" or rep_id = \"<owner id column>\" below")
    if role == "opportunities":
        block += _deal_defaults(frame, cols, entered)
    if role == "activities" and "type" not in cols:
        block.append(f"[{role}.defaults]")
        block.append('type = "other"              # CHECK: no activity-type column found')
    if role == "reps":
        block += _people_defaults(cols)
    elif missing:
        block.insert(2, f"# CHECK: no column found for {', '.join(missing)}")
    return block


def _deal_defaults(frame: pd.DataFrame, cols: dict, entered: dict) -> list[str]:
    """``[opportunities.defaults]`` (and ``stage_entered``) lines: unknown amounts, the won-only mode."""
    lines = ["[opportunities.defaults]", 'account = "Unknown account"']
    if "amount" not in cols:
        lines.append('amount = "unknown"            # no amount column: deal values are unknown (left empty, not 0)')
    elif (blank := int((frame[cols["amount"]] == "").sum())):
        lines.append(f'amount = "unknown"            # {blank} deal(s) have no amount: unknown (left empty, not 0)')
    if "stage" not in cols and not entered:
        lines.append('status = "won"                # won-only export: no stage or status column, every row is a '
                     "won deal (no open or lost deals: no win rate, no pipeline)")
    if entered:
        lines.append("[opportunities.stage_entered]     # stage-entry-date column -> stage value")
        lines += [f"{toml_key(c)} = {toml_value(v)}" for c, v in entered.items()]
    return lines


def _people_defaults(cols: dict) -> list[str]:
    """``[reps.defaults]`` lines for what a people file lacks, each saying what stands in."""
    lines = ["[reps.defaults]"]
    for col in ("team", "manager"):
        if col not in cols:
            lines.append(f'{col} = "Unassigned"            # no {col} column in the people file')
    if "hire_date" not in cols:
        lines.append("# no hire-date column: a rep's hire date is the first day they appear in the data")
    return lines if len(lines) > 1 else []


def _inferred_shared_sections(found: _Inferred) -> list[str]:
    """TOML lines of ``[mapping]``, ``[formats]``, ``[process]``, ``[stages]``, ``[status_values]``, ``[activity_types]``."""
    lines = ["[mapping]", 'name = "Inferred mapping"',
             f'missing_owner = "{"exclude" if found.owner_blank else "error"}"' +
             ("          # some rows have no owner: excluded and counted ('error' stops instead)"
              if found.owner_blank else ""),
             'unknown_activity_type = "other"']
    count, stages = found.missing_created
    if count:
        where = _printable(f" (stage {', '.join(stages)})") if stages else ""
        lines.append(f'missing_created = "exclude"   # {count} deal(s) have no created date{where}: left out and '
                     "counted; map created_at to another date column to keep them")
    lines += ["", "[formats]", f"dates = {toml_value(found.global_dates or ['iso'])}"]
    lines += [f"# {_printable(n)}" for n in found.date_notes]
    lines += [f"decimal = {toml_value(found.number[0])}", f"thousands = {toml_value(found.number[1])}", ""]

    closed = {v: _guess_stage(v) or found.stage_outcomes.get(v) for v in found.stage_values}
    open_stages = [v for v in found.stage_values if not closed[v]]
    basis = "the order deals entered them in the history"
    if not found.stage_order_known:
        open_stages, basis = order_open_stages(open_stages, found.stage_ages)
    lines += ["[process]", f"# CHECK: the open stages in the order a buyer passes through them (from {basis})"
              if open_stages else "# no open stages in the export: coachnb's default stages (no deal is in them)",
              f"stages = {toml_value(open_stages or list(DEFAULT_STAGES))}",
              'timezone = "UTC"                # CHECK: your team\'s IANA zone, e.g. "Europe/Berlin"',
              'week_start = "monday"', "",
              "[stages]                        # CRM stage -> a [process] stage, or won / lost"
              + (". CHECK the won/lost guesses" if found.stage_values else "")]
    lines += [f"{toml_key(v)} = {toml_value(closed[v] or v)}" + (
        f"   # CHECK: {closed[v]} from the data (its deals have close dates{' and values' if closed[v] == 'won' else ''})"
        if v in found.stage_outcomes else "") for v in found.stage_values]
    lines.append("")
    if found.status_values:
        lines.append("[status_values]                 # status column value -> open, won or lost")
        for v in found.status_values:
            status, unsure = _guess_status(v)
            lines.append(f"{toml_key(v)} = {toml_value(status)}" + ("   # CHECK: a guess" if unsure else ""))
        lines.append("")
    if found.type_values:
        lines += ["[activity_types]                # CRM activity type -> call, email, meeting, demo, other, skip. CHECK"]
        lines += [f"{toml_key(v)} = {toml_value(_guess_type(v))}" for v in found.type_values]
        lines.append("")
    return lines
