"""Recording and listing commitments: the behaviour changes a rep agrees to in a 1:1.

A commitment is one row of ``commitments.csv`` (columns in :data:`coachnb.schema.TABLES`).
History is never rewritten: changing a commitment appends a new row whose ``supersedes``
names the row it replaces. Writes happen under a file lock (``<data_dir>/.commitments.lock``):
read the file, append one line, write a temporary file, ``os.replace`` it over the original.
Existing bytes (encoding marker, line endings, quoting) are kept exactly as they were, and the
new line is written in the file's own encoding and delimiter.

The rules are the loader's (:mod:`coachnb.loading`): ``reps`` and ``commitments.csv`` are read
by its functions (same encodings, delimiters and ids), dates must lie in its range
(:data:`coachnb.loading.FIRST_YEAR` to :data:`~coachnb.loading.LAST_YEAR`), and the file's new
bytes are checked with :func:`coachnb.loading.check_table` before they replace the file, so a
commitment that would make the folder invalid is refused, never written. Free text that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-`` or ``@``) is stored
behind a ``'``.
"""
from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from .config import CommitmentMetric, ProcessConfig, load_config, week_start
from .errors import CoachnbError
from .loading import (
    FIRST_YEAR, LAST_YEAR, check_table, csv_encoding, decode_to_utf8, in_date_range, load, read_header,
)
from .schema import TABLES

COLUMNS: list[str] = TABLES["commitments"].column_names
REQUIRED_COLUMNS: list[str] = [c.name for c in TABLES["commitments"].columns if c.required]
FILE_NAME = "commitments.csv"
LOCK_NAME = ".commitments.lock"
MIN_DAYS = 7
MAX_DAYS = 120
LOCK_TIMEOUT_SECONDS = 60.0
_ID_RE = re.compile(r"^K(\d+)$")
#: first characters that make a spreadsheet read a cell as a formula (OWASP's CSV-injection list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: metric kinds (:data:`coachnb.config.METRIC_KINDS`) that measure a result of the rep's work, not the
#: work itself: a 30-day plan commits to behaviour (coaching-principles), so recording one is warned about
OUTCOME_KINDS = ("opportunities_created", "stage_advancements")


# ----------------------------------------------------------------------------- validation


def _parse_day(value, what: str) -> date:
    """A calendar date from ``YYYY-MM-DD`` text, a date or a Timestamp."""
    if isinstance(value, datetime):
        return _check_day(value.date(), what)
    if isinstance(value, date):
        return _check_day(value, what)
    text = "" if value is None else str(value).strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CoachnbError(f"{what} must be a date written YYYY-MM-DD, not {text!r}") from None
    return _check_day(day, what)


def _check_day(day: date, what: str) -> date:
    """``day`` if the loader accepts it (:func:`coachnb.loading.in_date_range`), else CoachnbError."""
    if not in_date_range(day):
        raise CoachnbError(f"{what} must lie in the years {FIRST_YEAR}-{LAST_YEAR}, not {day.isoformat()}")
    return day


def _parse_number(value, what: str) -> float:
    """A finite number typed on the command line, as Python's ``float`` reads it (``"7"``, ``"0.8"``, ``"1e1"``).

    Stricter than :func:`coachnb.loading.clean_number`, which also reads exports' currency
    marks, thousands separators and decimal commas (``"$1,200"``, ``"3,5"``): a commitment's
    target is typed by hand, and ``"3,5"`` there is more likely a slip than three and a half.
    Raises :class:`CoachnbError` naming ``what`` for anything else, NaN and infinity included.
    """
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float's range
        raise CoachnbError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(x):
        raise CoachnbError(f"{what} must be a finite number, not {value!r}")
    return x


def _clean_text(value) -> str:
    """Optional text as stored: one line, control characters (``\\x1b``, NUL) out, stripped.

    CSV would carry them either way; they are dropped because they reach a terminal raw in
    ``commit list`` and spreadsheets mangle them.
    """
    if value is None:
        return ""
    return " ".join(_CONTROL_RE.sub(" ", str(value)).split())


def neutralise_formula(text: str) -> str:
    """``text`` behind a ``'`` when a spreadsheet would read it as a formula (``=HYPERLINK(..)``).

    Excel and LibreOffice run a cell starting with one of :data:`FORMULA_STARTS`; the leading
    apostrophe makes them show it as text. Empty text stays empty.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _free_text(value) -> str:
    """A free-text field (follow_up, note) as stored: cleaned, then formula-neutralised."""
    return neutralise_formula(_clean_text(value))


def _read_rep_ids(data_dir: Path, config: ProcessConfig) -> set[str]:
    """Rep ids of ``reps`` as :func:`coachnb.loading.load` reads them (any encoding, delimiter or
    Parquet it accepts; text, so ``00123`` stays ``00123``); CoachnbError if reps has errors."""
    frame, problems = check_table(data_dir, "reps", config=config)
    errors = [p for p in problems if p.severity == "error"]
    if frame is None or errors:
        shown = "; ".join(p.format().splitlines()[0] for p in errors[:3])
        raise CoachnbError(f"the rep cannot be checked: reps has errors (coachnb validate lists them): {shown}")
    return set(frame["rep_id"].dropna())


def check_value_range(metric_unit: str, value: float, what: str) -> None:
    """Targets and baselines are weekly levels: never negative; shares lie between 0 and 1."""
    if value < 0:
        raise CoachnbError(f"{what} must not be negative (got {value:g})")
    if metric_unit == "share" and value > 1:
        raise CoachnbError(f"{what} is a share of activities, between 0 and 1 (got {value:g})")


# ----------------------------------------------------------------------------- baseline


def baseline_window(start: date, config: ProcessConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of the weeks an automatic baseline averages over.

    The window holds ``config.thresholds.min_pre_weeks`` (8) whole reporting weeks and ends
    ``baseline_gap_weeks`` (2) weeks before the week the commitment starts in, so a dip or a
    burst just before the 1:1 (Ashenfelter's dip) does not set the bar.

    Returns
    -------
    (first_day, last_day) : naive Timestamps at midnight, both inclusive.
    """
    th = config.thresholds
    first_week = week_start(pd.Series([pd.Timestamp(start)]), config).iloc[0]
    last_day = first_week - pd.Timedelta(weeks=th.baseline_gap_weeks) - pd.Timedelta(days=1)
    first_day = first_week - pd.Timedelta(weeks=th.baseline_gap_weeks + th.min_pre_weeks)
    return first_day, last_day


def mean_weekly_value(weekly: pd.DataFrame, rep_id: str, first_day: pd.Timestamp, last_day: pd.Timestamp,
                      hire_date: pd.Timestamp | None = None, count_metric: bool = True) -> tuple[float, int]:
    """Mean of one rep's weekly metric values over the weeks in ``[first_day, last_day]``.

    Parameters
    ----------
    weekly : DataFrame with columns ``rep_id, week, value``
        Output of :func:`coachnb.metrics.metric_weekly`; ``week`` is the week's first day.
    count_metric : bool
        True for counts (a week with no row counted as 0); False for shares (a week with
        no row has no value and is skipped).
    hire_date : Timestamp, optional
        Weeks before the rep's first week are left out.

    Returns
    -------
    (mean per week, number of weeks averaged); mean is NaN when no week qualifies.
    """
    weeks = pd.date_range(first_day, last_day, freq="7D")
    if hire_date is not None and not pd.isna(hire_date):
        hired = pd.Timestamp(hire_date)
        hired = hired.tz_localize(None) if hired.tzinfo is not None else hired
        weeks = weeks[weeks + pd.Timedelta(days=6) >= hired.normalize()]
    mine = weekly[weekly["rep_id"].astype(str) == str(rep_id)].copy()
    wk = pd.to_datetime(mine["week"])
    if getattr(wk.dt, "tz", None) is not None:
        wk = wk.dt.tz_localize(None)
    per_week = pd.Series(mine["value"].to_numpy(dtype=float), index=wk.dt.normalize()).groupby(level=0).sum()
    values = per_week.reindex(weeks)
    if count_metric:
        values = values.fillna(0.0)
    values = values.dropna()
    if len(values) == 0:
        return float("nan"), 0
    return float(values.mean()), int(len(values))


def auto_baseline(data_dir: str | Path, rep_id: str, metric: str, start: date) -> float:
    """The rep's recent weekly level of ``metric`` before ``start`` (see :func:`baseline_window`).

    Raises
    ------
    CoachnbError
        When the rep has no weeks of data in the window (give the baseline by hand then).
    """
    # imported on use: metrics pulls in scipy (about 1 s), which `coachnb commit list` never needs
    from .metrics import metric_weekly

    ds = load(data_dir)
    cfg = ds.config
    first_day, last_day = baseline_window(start, cfg)
    weekly = metric_weekly(ds, metric, first_day, last_day + pd.Timedelta(days=1))  # end is exclusive
    reps = ds.reps
    hire = reps.loc[reps["rep_id"].astype(str) == str(rep_id), "hire_date"]
    hire_date = hire.iloc[0] if len(hire) else None
    count_metric = cfg.commitment_metrics[metric].kind != "logged_on_time_share"
    value, n_weeks = mean_weekly_value(weekly, rep_id, first_day, last_day, hire_date, count_metric)
    if n_weeks == 0 or not np.isfinite(value):
        raise CoachnbError(
            f"no data for {rep_id} on {metric} between {first_day.date()} and {last_day.date()} "
            f"to set the baseline from; pass --baseline with the level you agreed on")
    return round(value, 2)


# ----------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class _Layout:
    """How an existing file is written, so an appended line matches the lines before it."""

    codec: str = "utf-8"
    bom: bytes = b""
    delimiter: str = ","
    eol: str = "\n"


def _read_existing(path: Path) -> tuple[bytes, _Layout, list[str], list[dict]]:
    """Raw bytes, layout, header and rows (as text) of an existing commitments file.

    Decoded and split as the loader does (:func:`coachnb.loading.decode_to_utf8`,
    :func:`coachnb.loading.read_header`); header names matched to the schema's ignoring case.
    """
    raw = path.read_bytes()
    codec, bom = csv_encoding(raw)
    text = decode_to_utf8(raw, path.name, []).decode("utf-8")
    if not text.strip():
        return raw, _Layout(codec, bom), [], []
    _, delimiter = read_header(text.encode("utf-8"), TABLES["commitments"])
    layout = _Layout(codec, bom, delimiter, "\r\n" if "\r\n" in text else "\n")
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    canonical = {c.lower(): c for c in COLUMNS}
    header = [canonical.get(h.strip().lower(), h.strip()) for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CoachnbError(f"{path.name} lacks the column(s) {missing}; expected {COLUMNS}")
    records = [dict(zip(header, (cell.strip() for cell in r))) for r in rows[1:]]
    return raw, layout, header, records


def next_commitment_id(existing_ids) -> str:
    """``K%04d`` one above the largest ``K<number>`` id in ``existing_ids`` (``K0001`` when none)."""
    numbers = [int(m.group(1)) for i in existing_ids if (m := _ID_RE.match(str(i).strip()))]
    return "K%04d" % (max(numbers, default=0) + 1)


def _format_number(x: float) -> str:
    """A float as stored: up to 10 significant digits, no trailing zeros (``7.5``, ``10``)."""
    return f"{x:.10g}"


def _encode(text: str, layout: _Layout) -> bytes:
    """``text`` in the file's encoding; CoachnbError when that encoding cannot hold a character."""
    try:
        return text.encode(layout.codec)
    except UnicodeEncodeError as exc:
        raise CoachnbError(f"{FILE_NAME} is saved as {layout.codec}, which cannot hold "
                           f"{exc.object[exc.start:exc.end]!r}; save it as 'CSV UTF-8' and try again") from None


def _encode_rows(header: list[str], rows: list[dict], layout: _Layout) -> str:
    """CSV text of ``rows`` in ``header`` order (missing values empty), quoting only where needed."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=layout.delimiter, lineterminator=layout.eol)
    for row in rows:
        writer.writerow([row.get(c, "") for c in header])
    return buf.getvalue()


def _new_file_bytes(raw: bytes, layout: _Layout, header: list[str], records: list[dict], new_row: dict) -> bytes:
    """The file after appending ``new_row``; earlier bytes unchanged when the header has every column."""
    if not header:  # new or empty file
        return _encode_rows(COLUMNS, [dict(zip(COLUMNS, COLUMNS)), new_row], _Layout()).encode("utf-8")
    if all(c in header for c in COLUMNS):
        ends_a_line = raw.decode(layout.codec, errors="replace").endswith(("\n", "\r"))
        prefix = raw if ends_a_line else raw + _encode(layout.eol, layout)
        return prefix + _encode(_encode_rows(header, [new_row], layout), layout)
    # an older file without an optional column: add it (empty for earlier rows); values are kept
    full = header + [c for c in COLUMNS if c not in header]
    return layout.bom + _encode(_encode_rows(full, [dict(zip(full, full))] + records + [new_row], layout), layout)


def _check_new_file(data_dir: Path, data: bytes, row: dict, config: ProcessConfig) -> None:
    """Raise CoachnbError unless the loader accepts ``data`` as commitments.csv and reads ``row``
    back as its last row: nothing that makes the folder invalid is ever written."""
    frame, problems = check_table(data_dir, "commitments", data=data, file_name=FILE_NAME, config=config)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        shown = "\n".join(p.format() for p in errors[:5])
        raise CoachnbError(f"nothing was written: with this commitment {FILE_NAME} would not pass validation:\n{shown}")
    last = frame.iloc[-1] if frame is not None and len(frame) else None
    text_columns = ("commitment_id", "rep_id", "metric", "follow_up", "note", "note_for_rep", "supersedes")
    read_back = {c: "" if last is None or pd.isna(last[c]) else str(last[c]) for c in text_columns}
    if read_back != {c: row[c] for c in text_columns}:
        raise CoachnbError(f"nothing was written: {FILE_NAME} would not read this commitment back as given "
                           f"(read {read_back}); check the file's encoding and delimiter")


def _replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it over ``path`` in one step.

    Does the job of :func:`coachnb.fsutil.atomic_write_bytes`, but not identically, so both
    stay until someone decides the differences don't matter: the temporary file is
    ``.commitments.<random>.tmp`` (fsutil's: ``.commitments.csv.<random>.tmp``); a new file's
    mode comes from the umask read at each call (fsutil: read once at import); and the folder
    is not fsynced after the rename (fsutil does that).
    """
    mode = (path.stat().st_mode & 0o777) if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".commitments.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_supersedes(records: list[dict], supersedes: str, rep_id: str) -> None:
    """Raise unless ``supersedes`` names an existing commitment of the same rep that nothing replaced yet."""
    by_id = {r.get("commitment_id", ""): r for r in records}
    old = by_id.get(supersedes)
    if old is None:
        raise CoachnbError(f"--supersedes {supersedes}: no commitment with that id in {FILE_NAME}")
    if old.get("rep_id", "") != rep_id:
        raise CoachnbError(f"--supersedes {supersedes}: that commitment belongs to {old.get('rep_id')}, "
                           f"not {rep_id}")
    later = [r["commitment_id"] for r in records if r.get("supersedes", "") == supersedes]
    if later:
        raise CoachnbError(f"--supersedes {supersedes}: it was already replaced by {later[0]}; "
                           f"supersede {later[0]} instead")


def commitment_warnings(metric: CommitmentMetric, baseline: float, target: float) -> list[str]:
    """What to double-check about a commitment that is allowed but unusual, one sentence each.

    Parameters
    ----------
    metric : CommitmentMetric
        The metric committed to (``config.commitment_metrics[name]``).
    baseline, target : float
        Weekly levels before and agreed.

    Returns
    -------
    list of str
        A sentence when the metric is an outcome (:data:`OUTCOME_KINDS`) rather than a behaviour,
        and one when the target is below the baseline (a commitment to do less); empty otherwise.
    """
    out = []
    if metric.kind in OUTCOME_KINDS:
        out.append(f"{metric.name} ({metric.label}) measures an outcome, not a behaviour: a commitment "
                   "works best on something the rep does (calls, meetings, demos, logging on time) "
                   "that leads to it")
    if target < baseline:
        out.append(f"the target {target:g} is below the baseline {baseline:g}: this records doing less "
                   f"of {metric.label}; if that is what was agreed, nothing needs changing")
    return out


def add_commitment(data_dir, rep_id, metric, target, baseline="auto", start=None, days=30, follow_up=None,
                   note=None, supersedes=None, agreed_on=None, note_for_rep=None) -> dict:
    """Append one commitment to ``<data_dir>/commitments.csv``.

    Parameters
    ----------
    data_dir : path
        The data folder (holds ``reps.csv`` and, once written, ``commitments.csv``).
    rep_id : str
        A rep in ``reps``.
    metric : str
        A commitment metric of the team's registry (``config.commitment_metrics``).
    target : float or str
        Agreed weekly level, in the metric's unit per week (a share for ``logged_on_time_share``).
    baseline : float or str
        Weekly level before, or ``"auto"``: the rep's mean over the 8 weeks that end 2 weeks
        before the start week (see :func:`baseline_window`).
    start : str or date
        First day, ``YYYY-MM-DD``.
    days : int
        Length in days, 7 to 120; ``end = start + days - 1``.
    follow_up : str, optional
        How the rep asked to be followed up if the commitment slips (quoted back in the next 1:1).
    note : str, optional
        The manager's note: shown in the manager's report only.
    supersedes : str, optional
        ``commitment_id`` this row replaces; must exist, be the same rep's and not be replaced yet.
    agreed_on : str or date, optional
        Date of the 1:1; today when not given.
    note_for_rep : str, optional
        A note the rep's pre-read shows too.

    Returns
    -------
    dict
        The row written: text ids and ISO dates, ``baseline`` and ``target`` as floats; and
        ``warnings``, the sentences of :func:`commitment_warnings` (written anyway).

    Raises
    ------
    CoachnbError
        Anything wrong with the call; the file is then left untouched.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CoachnbError(f"data folder {data_dir} does not exist")
    cfg = load_config(data_dir)
    rep_id = _known_rep(data_dir, rep_id, cfg)
    metric = _known_metric(cfg, metric)
    unit = cfg.commitment_metrics[metric].unit
    start_day, end_day = _period(start, days)
    agreed_day = date.today() if agreed_on in (None, "") else _parse_day(agreed_on, "agreed_on")
    target_value = _parse_number(target, "target")
    check_value_range(unit, target_value, "target")
    supersedes = _clean_text(supersedes) or None
    baseline_value = _baseline_value(baseline, data_dir, rep_id, metric, start_day)
    check_value_range(unit, baseline_value, "baseline")
    if math.isclose(target_value, baseline_value, rel_tol=0, abs_tol=1e-9):
        raise CoachnbError(f"target equals the baseline ({baseline_value:g}); a commitment is a change "
                           "from the current level")
    row = _append_row(data_dir, {
        "rep_id": rep_id,
        "agreed_on": agreed_day.isoformat(),
        "start": start_day.isoformat(),
        "end": end_day.isoformat(),
        "metric": metric,
        "baseline": _format_number(baseline_value),
        "target": _format_number(target_value),
        "follow_up": _free_text(follow_up),
        "note": _free_text(note),
        "note_for_rep": _free_text(note_for_rep),
        "supersedes": supersedes or "",
    }, cfg)
    return {**row, "baseline": baseline_value, "target": target_value,
            "follow_up": row["follow_up"] or None, "note": row["note"] or None,
            "note_for_rep": row["note_for_rep"] or None, "supersedes": supersedes,
            "warnings": commitment_warnings(cfg.commitment_metrics[metric], baseline_value, target_value)}


def did_you_mean(value: str, known) -> str:
    """The tail of an error message naming the known value closest to ``value``.

    Parameters
    ----------
    value : str
        What was typed (an id, a team, a metric).
    known : iterable
        The values that exist.

    Returns
    -------
    str
        ``"; did you mean R003?"`` for the one known value that differs only in case, else the
        closest by :func:`difflib.get_close_matches` (similarity 0.6 or more); ``""`` when none is close.
    """
    known = sorted(str(k) for k in known)
    same_case = [k for k in known if k.casefold() == str(value).strip().casefold()]
    close = same_case or difflib.get_close_matches(str(value).strip(), known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _known_rep(data_dir: Path, rep_id, config: ProcessConfig) -> str:
    """``rep_id`` as stored (text, stripped), after checking it is a rep of the data folder."""
    rep_id = "" if rep_id is None else str(rep_id).strip()
    known = _read_rep_ids(data_dir, config)
    if rep_id not in known:
        raise CoachnbError(f"rep {rep_id!r} is not in reps{did_you_mean(rep_id, known)} "
                           "(ids are text, e.g. R007)")
    return rep_id


def check_selection(data_dir, reps=None, team=None) -> None:
    """Refuse rep ids or a team that the folder's ``reps`` table doesn't hold, before any work.

    Parameters
    ----------
    data_dir : path
        The data folder.
    reps : list of str, optional
        Rep ids asked for (``coachnb run --reps``).
    team : str, optional
        A team asked for (``coachnb run --team``).

    Raises
    ------
    CoachnbError
        Naming every unknown id (or the team) with the closest known one ("did you mean R003?").
        Nothing is checked when the folder, its ``process.toml`` or its ``reps`` can't be read:
        the batch's validation then reports every problem of the folder at once.
    """
    data_dir = Path(data_dir)
    if not reps and team is None or not data_dir.is_dir():
        return
    try:
        config = load_config(data_dir)
        frame, problems = check_table(data_dir, "reps", config=config)
    except CoachnbError:
        return
    if frame is None or any(p.severity == "error" for p in problems):
        return
    known = set(frame["rep_id"].dropna().astype(str))
    unknown = [r for r in (reps or []) if str(r).strip() not in known]
    if unknown:
        listed = "; ".join(f"{r!r}{did_you_mean(r, known)}" for r in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CoachnbError(f"not in reps: {listed}{more}; nothing was done")
    teams = set(frame["team"].dropna().astype(str))
    if team is not None and str(team).strip() not in teams:
        raise CoachnbError(f"no reps in team {team!r}{did_you_mean(team, teams)} "
                           f"(teams: {', '.join(sorted(teams))}); nothing was done")


def _known_metric(cfg: ProcessConfig, metric) -> str:
    """``metric`` as stored (stripped), after checking it is in the team's commitment-metric registry."""
    metric = "" if metric is None else str(metric).strip()
    if metric not in cfg.commitment_metrics:
        raise CoachnbError(f"unknown metric {metric!r}{did_you_mean(metric, cfg.commitment_metrics)}; "
                           f"known: {', '.join(sorted(cfg.commitment_metrics))}")
    return metric


def _period(start, days) -> tuple[date, date]:
    """First and last day of a commitment that starts on ``start`` and runs ``days`` days.

    Takes ``start`` as ``YYYY-MM-DD`` text or a date, and ``days`` as a whole number from
    :data:`MIN_DAYS` to :data:`MAX_DAYS` (``30``, ``"30"`` or ``30.0``; not ``7.5``).
    """
    if start is None:
        raise CoachnbError("start is required (YYYY-MM-DD)")
    start_day = _parse_day(start, "start")
    try:
        n_days = int(days)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise CoachnbError(f"days must be a whole number, not {days!r}") from None
    if n_days != _parse_number(days, "days") or not MIN_DAYS <= n_days <= MAX_DAYS:
        raise CoachnbError(f"days must be a whole number from {MIN_DAYS} to {MAX_DAYS} (got {days!r}); "
                           "a commitment shorter than a week can't be read, one longer than four months "
                           "is a plan rather than a commitment")
    end_day = _check_day(start_day + pd.Timedelta(days=n_days - 1).to_pytimedelta(), "end (start + days - 1)")
    return start_day, end_day


def _baseline_value(baseline, data_dir: Path, rep_id: str, metric: str, start_day: date) -> float:
    """The baseline as given, or the rep's recent level (:func:`auto_baseline`) for ``"auto"`` or blank."""
    if isinstance(baseline, str) and baseline.strip().lower() in ("auto", ""):
        return auto_baseline(data_dir, rep_id, metric, start_day)
    return _parse_number(baseline, "baseline")


def _append_row(data_dir: Path, fields: dict, config: ProcessConfig) -> dict:
    """Append one commitment under the file lock; returns the row written (text values, with its new id).

    Takes the row's values but its id, which is only settled under the lock: one above the
    largest in the file. Assumes ``fields`` is checked, except ``supersedes`` against the
    file's rows, which happens under the lock too (another writer may just have superseded it).
    """
    path = data_dir / FILE_NAME
    if not path.exists() and (data_dir / "commitments.parquet").exists():
        raise CoachnbError("commitments are kept in commitments.parquet here; coachnb writes commitments.csv. "
                           "Convert the file to CSV (same columns) and try again")
    try:
        with FileLock(str(data_dir / LOCK_NAME), timeout=LOCK_TIMEOUT_SECONDS):
            raw, layout, header, records = _read_existing(path) if path.exists() else (b"", _Layout(), [], [])
            if fields["supersedes"]:
                _check_supersedes(records, fields["supersedes"], fields["rep_id"])
            row = {"commitment_id": next_commitment_id(r.get("commitment_id", "") for r in records), **fields}
            data = _new_file_bytes(raw, layout, header, records, row)
            _check_new_file(data_dir, data, row, config)
            _replace_atomically(path, data)
    except Timeout:
        raise CoachnbError(f"{FILE_NAME} is locked by another writer for over {LOCK_TIMEOUT_SECONDS:g} s; "
                           f"try again (lock file: {data_dir / LOCK_NAME})") from None
    return row


# ----------------------------------------------------------------------------- reading


def read_commitments(data_dir) -> pd.DataFrame:
    """Every row of ``commitments.csv`` as written (ids and text as strings, dates as naive
    Timestamps, baseline/target as floats); an empty frame with the columns when absent."""
    path = Path(data_dir) / FILE_NAME
    if not path.exists():
        frame = pd.DataFrame({c: pd.Series([], dtype="string") for c in COLUMNS})
    else:
        _, _, header, records = _read_existing(path)
        frame = pd.DataFrame(records, columns=header or COLUMNS)
        for c in COLUMNS:
            if c not in frame.columns:
                frame[c] = ""
        frame = frame[COLUMNS].astype("string")
    for c in ("agreed_on", "start", "end"):
        frame[c] = pd.to_datetime(frame[c].replace("", pd.NA), errors="coerce", format="mixed")
    for c in ("baseline", "target"):
        frame[c] = pd.to_numeric(frame[c].replace("", pd.NA), errors="coerce").astype("float64")
    for c in ("follow_up", "note", "note_for_rep", "supersedes"):
        frame[c] = frame[c].replace("", pd.NA)
    return frame


def mark_superseded(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``superseded_by`` (id of the row that replaced this one, or NA) and ``current`` (bool)."""
    out = frame.copy()
    replaced = out.dropna(subset=["supersedes"]).drop_duplicates("supersedes", keep="first")
    mapping = dict(zip(replaced["supersedes"].astype(str), replaced["commitment_id"].astype(str)))
    out["superseded_by"] = out["commitment_id"].astype(str).map(mapping).astype("string")
    out["current"] = out["superseded_by"].isna()
    return out


def list_commitments(data_dir, rep_id=None, active_on=None) -> pd.DataFrame:
    """Commitments in file order, superseded rows kept and marked.

    Parameters
    ----------
    data_dir : path
        The data folder; no ``commitments.csv`` there gives an empty frame.
    rep_id : str, optional
        Only this rep's rows.
    active_on : str or date, optional
        Only rows with ``start <= active_on <= end``.

    Returns
    -------
    DataFrame
        The schema's columns plus ``superseded_by`` and ``current``.
    """
    frame = mark_superseded(read_commitments(data_dir))
    if rep_id is not None:
        frame = frame[frame["rep_id"] == str(rep_id).strip()]
    if active_on not in (None, ""):
        day = pd.Timestamp(_parse_day(active_on, "active_on"))
        frame = frame[(frame["start"] <= day) & (frame["end"] >= day)]
    return frame.reset_index(drop=True)


def commitment_status(frame: pd.DataFrame, on) -> pd.Series:
    """Each commitment's state on the day ``on``, in words.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`list_commitments` (needs ``start``, ``end`` and ``superseded_by``).
    on : str, date or Timestamp
        The day the status is told for (usually today).

    Returns
    -------
    Series of str
        ``"replaced by K0005"``, ``"starts 2026-12-07"``, ``"running, ends 2026-12-21"``,
        ``"ended 2025-09-30"``, or ``"dates unreadable"``; same index as ``frame``.
    """
    day = pd.Timestamp(on).normalize()
    day = day.tz_localize(None) if day.tzinfo is not None else day

    def one(row) -> str:
        if not pd.isna(row["superseded_by"]):
            return f"replaced by {row['superseded_by']}"
        if pd.isna(row["start"]) or pd.isna(row["end"]):
            return "dates unreadable"
        if row["start"] > day:
            return f"starts {row['start']:%Y-%m-%d}"
        if row["end"] < day:
            return f"ended {row['end']:%Y-%m-%d}"
        return f"running, ends {row['end']:%Y-%m-%d}"

    return frame.apply(one, axis=1).astype(object) if len(frame) else pd.Series([], dtype=object)


#: the columns of :func:`readable_commitments`, as ``coachnb commit list`` prints them
READABLE_COLUMNS = ["commitment", "rep", "metric", "baseline → target", "agreed on", "period", "status",
                    "follow-up", "note"]


def readable_commitments(frame: pd.DataFrame, on, history: bool = False) -> pd.DataFrame:
    """Commitments as text for a person: full dates, a status word, blanks instead of missing values.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`list_commitments`.
    on : str, date or Timestamp
        The day statuses are told for (:func:`commitment_status`).
    history : bool
        False: only current commitments (not replaced, not ended before ``on``); True: every row.

    Returns
    -------
    DataFrame
        :data:`READABLE_COLUMNS`, every cell a string, in file order.
    """
    status = commitment_status(frame, on)
    if not history and len(frame):
        keep = ~status.str.startswith(("replaced", "ended"))
        frame, status = frame[keep], status[keep]

    def day(value) -> str:
        return "" if pd.isna(value) else f"{value:%Y-%m-%d}"

    def number(value) -> str:
        return "?" if pd.isna(value) else f"{value:g}"

    def text(value) -> str:
        return "" if pd.isna(value) else str(value)

    out = pd.DataFrame({
        "commitment": frame["commitment_id"].map(text),
        "rep": frame["rep_id"].map(text),
        "metric": frame["metric"].map(text),
        "baseline → target": [f"{number(b)} → {number(t)}" for b, t in zip(frame["baseline"], frame["target"])],
        "agreed on": frame["agreed_on"].map(day),
        "period": [f"{day(a)} to {day(b)}" for a, b in zip(frame["start"], frame["end"])],
        "status": status,
        "follow-up": frame["follow_up"].map(text),
        "note": frame["note"].map(text),
    }, columns=READABLE_COLUMNS)
    return out.astype(object).reset_index(drop=True)
