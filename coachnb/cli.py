"""Command line: ``coachnb validate | demo-data | run | commit | import``.

Each sub-command parses its arguments here and calls one function of the module that owns
the job; no logic lives in this file. Each command imports its module when it runs, so that
``coachnb --help`` and ``coachnb validate`` don't pay for the batch's and the report's imports.

The CLI is the boundary no traceback crosses: arguments are checked by their argparse types
(a usage error, exit 2), coachnb's own errors print one message (exit 2), an interrupt exits 130,
and anything else prints one line pointing at a log file that holds the traceback (exit 2).
Text that came from the data is printed through :func:`coachnb.formatting.terminal_safe`.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import tempfile
import traceback

from .errors import CoachnbError
from .version import __version__

#: most worker processes: more than any machine's cores, and each one is a Python process
MAX_JOBS = 1024
#: demo team size: big enough for any benchmark the CLI is used for, small enough to fit in memory
MAX_DEMO_REPS, MAX_DEMO_WEEKS = 5000, 520
#: an internal error's message is cut to this many characters on the terminal (the log has it all)
MESSAGE_CHARS = 300


def _show(text, file=None) -> None:
    """Print ``text`` (which may hold data: names, notes, paths) with its control characters escaped."""
    from .formatting import terminal_safe  # imported on use: formatting loads pandas, --help should not

    print(terminal_safe(text, keep_newlines=True), file=file)


class _Parser(argparse.ArgumentParser):
    """argparse, with the values its usage errors quote ("unrecognized arguments: ...") escaped."""

    def error(self, message):
        from .formatting import terminal_safe  # imported on use: only a usage error needs it

        super().error(terminal_safe(message, keep_newlines=True))


# --------------------------------------------------------------------------- argument types


def _date(text: str) -> str:
    """An ISO date (``YYYY-MM-DD``) within the years the loader accepts, returned as ``YYYY-MM-DD``."""
    from .loading import FIRST_YEAR, LAST_YEAR  # imported on use: the loader's rule, without its cost at start-up

    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise argparse.ArgumentTypeError(
            f"{day.isoformat()} is outside the years {FIRST_YEAR}-{LAST_YEAR}, the dates the data may hold")
    return day.isoformat()


def _whole(low: int, high: int, why: str = ""):
    """An argparse type: a whole number from ``low`` to ``high`` (``why`` explains the bounds)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not a whole number from {low} to {high}{why}")
        return value

    return whole


def _days(text: str) -> int:
    """A commitment's length: the whole days :mod:`coachnb.commitments` allows."""
    from .commitments import MAX_DAYS, MIN_DAYS  # imported on use: the rule's owner loads pandas

    return _whole(MIN_DAYS, MAX_DAYS, " (a week to four months)")(text)


def _finite(text: str) -> float:
    """A finite number (not ``nan``, ``inf`` or a value that overflows to it, like ``1e400``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _baseline(text: str) -> float | str:
    """``auto`` or a finite number."""
    return "auto" if text.strip().lower() == "auto" else _finite(text)


def _timeout(text: str) -> float:
    """Seconds one report may take, by the batch's rule (:func:`coachnb.batch.check_timeout`)."""
    from .batch import check_timeout  # imported on use: the rule's owner; `run` imports it anyway

    try:
        return check_timeout(_finite(text))
    except CoachnbError as exc:
        # argparse names the flag itself: "argument --timeout: must be a finite number ..."
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--timeout ")) from None


def _text(text: str) -> str:
    """A value that goes into the data (an id, a metric, a note): no NUL, no undecodable bytes.

    Python hands bytes of the command line that are not UTF-8 over as lone surrogates; no
    UTF-8 data file can hold them, and comparing or writing them fails deep in pandas.
    """
    if "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text):
        raise argparse.ArgumentTypeError(f"{text!r} holds a NUL character or bytes that are not UTF-8")
    return text


def _path(text: str) -> str:
    """A file or folder name: not empty, no NUL character (no file system allows one)."""
    if not text.strip() or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable path (empty, or holds a NUL character)")
    return text


def _validate(args) -> int:
    from .loading import validate  # imported on use: keeps CLI start-up fast

    report = validate(args.data_dir)
    _show(report.format())
    return 0 if report.ok else 1


def _demo_data(args) -> int:
    from .demo import write_demo_data  # imported on use: keeps CLI start-up fast

    path = write_demo_data(args.out, reps=args.reps, weeks=args.weeks, seed=args.seed, end=args.end)
    _show(f"wrote demo data to {path}")
    return 0


def _run(args) -> int:
    from .batch import run_batch  # imported on use: keeps CLI start-up fast

    result = run_batch(
        args.data_dir, as_of=args.as_of, out=args.out,
        reps=args.reps.split(",") if args.reps else None, team=args.team, audience=args.audience,
        jobs=args.jobs, resume=args.resume, scheduler=args.scheduler, timeout=args.timeout,
        engine=args.engine, cache_dir=args.cache,
    )
    return 0 if result.ok else 1


def _commit_add(args) -> int:
    from .commitments import add_commitment  # imported on use: keeps CLI start-up fast

    row = add_commitment(args.data_dir, rep_id=args.rep, metric=args.metric, target=args.target,
                         baseline=args.baseline, start=args.start, days=args.days,
                         follow_up=args.follow_up, note=args.note, supersedes=args.supersedes)
    _show(f"added commitment {row['commitment_id']} for {row['rep_id']}: {row['metric']} "
          f"from {row['baseline']:g} to {row['target']:g}, {row['start']} to {row['end']}")
    return 0


def _commit_list(args) -> int:
    from .commitments import list_commitments  # imported on use: keeps CLI start-up fast
    from .formatting import terminal_safe  # imported on use: keeps CLI start-up fast

    table = list_commitments(args.data_dir, rep_id=args.rep, active_on=args.active_on)
    # each cell escaped on its own, so a note's line break reads "\\n" and every row stays one line
    shown = table.map(lambda cell: terminal_safe(cell) if isinstance(cell, str) else cell)
    shown.columns = [terminal_safe(name) for name in table.columns]  # extra columns are the file's
    print(shown.to_string(index=False) if len(table) else "no commitments")
    return 0


def _import(args) -> int:
    from . import importers  # imported on use: keeps CLI start-up fast

    if args.infer:
        _show(importers.infer_mapping(args.sources))
        return 0
    if not args.mapping or not args.out:
        raise CoachnbError("coachnb import needs --mapping MAPPING.toml and --out DATA_DIR (or --infer)")
    path = importers.import_export(args.mapping, args.sources, args.out)
    _show(f"imported into {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="coachnb", description="Process-based sales coaching reports from CRM data.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a data folder and list every problem")
    v.add_argument("data_dir", type=_path)
    v.set_defaults(func=_validate)

    d = sub.add_parser("demo-data", help="write a deterministic sample team with known ground truth")
    d.add_argument("--out", type=_path, required=True)
    d.add_argument("--reps", type=_whole(1, MAX_DEMO_REPS), default=24)
    d.add_argument("--weeks", type=_whole(4, MAX_DEMO_WEEKS, " (four weeks is the shortest history)"), default=78)
    d.add_argument("--seed", type=_whole(0, 2**32 - 1), default=7)
    d.add_argument("--end", type=_date, default="2026-11-23", help="last day of the data (YYYY-MM-DD)")
    d.set_defaults(func=_demo_data)

    r = sub.add_parser("run", help="render one coaching report per rep, plus the team overview")
    r.add_argument("data_dir", type=_path)
    r.add_argument("--as-of", type=_date, required=True, help="date of the coaching sessions (YYYY-MM-DD)")
    r.add_argument("--out", type=_path, default="reports")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--reps", type=_text, help="comma-separated rep ids")
    g.add_argument("--team", type=_text)
    r.add_argument("--audience", choices=["manager", "rep", "both"], default="manager")
    r.add_argument("--jobs", type=_whole(1, MAX_JOBS), default=None, help="worker processes (default: number of cores)")
    r.add_argument("--resume", action="store_true", help="skip reps whose inputs and code are unchanged")
    r.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    r.add_argument("--timeout", type=_timeout, default=600, help="seconds one report may take")
    r.add_argument("--engine", default=None, help="papermill engine (default: coachnb's in-process engine)")
    r.add_argument("--cache", default=None, help="folder for the feature store, executed notebooks and logs, "
                   "outside the report folder (default: OUT/.cache)")
    r.set_defaults(func=_run)

    c = sub.add_parser("commit", help="record or list commitments")
    csub = c.add_subparsers(dest="commit_command", required=True)
    ca = csub.add_parser("add")
    ca.add_argument("data_dir", type=_path)
    ca.add_argument("--rep", type=_text, required=True)
    ca.add_argument("--metric", type=_text, required=True)
    ca.add_argument("--target", type=_finite, required=True)
    ca.add_argument("--baseline", type=_baseline, default="auto", help="number, or 'auto' for the rep's recent level")
    ca.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    ca.add_argument("--days", type=_days, default=30)
    ca.add_argument("--follow-up", type=_text)
    ca.add_argument("--note", type=_text)
    ca.add_argument("--supersedes", type=_text)
    ca.set_defaults(func=_commit_add)
    cl = csub.add_parser("list")
    cl.add_argument("data_dir", type=_path)
    cl.add_argument("--rep", type=_text)
    cl.add_argument("--active-on", type=_date)
    cl.set_defaults(func=_commit_list)

    i = sub.add_parser("import", help="turn a CRM export into a coachnb data folder")
    i.add_argument("sources", nargs="+", type=_path)
    i.add_argument("--mapping", type=_path)
    i.add_argument("--out", type=_path)
    i.add_argument("--infer", action="store_true", help="propose a mapping from the sources' columns")
    i.set_defaults(func=_import)
    return p


def write_crash_log(exc: BaseException, argv) -> str | None:
    """Write the traceback of an unexpected error to a new file in the temporary folder.

    Returns
    -------
    str or None
        The file's path, or ``None`` when no file could be written (the report of the error
        must not fail in turn).
    """
    try:
        fd, path = tempfile.mkstemp(prefix="coachnb-crash-", suffix=".log")
        # backslashreplace: argv may hold bytes of a file name that were not UTF-8 (lone surrogates)
        with open(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
            log.write(f"coachnb {__version__}, Python {sys.version.split()[0]}\n")
            log.write(f"arguments: {sys.argv[1:] if argv is None else list(argv)!r}\n\n")
            log.write("".join(traceback.format_exception(exc)))
        return path
    except Exception:  # noqa: BLE001 -- a full disk or read-only /tmp: say so, don't raise
        return None


def internal_error_line(exc: BaseException, log_path: str | None) -> str:
    """The one line an unexpected error prints: its type, its message (cut), where the traceback is."""
    message = " ".join(str(exc).split())
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS - 1] + "…"
    where = f"details in {log_path}" if log_path else "no log file could be written"
    return f"coachnb: internal error: {type(exc).__name__}: {message}; {where}"


def interrupted_line(command: str | None) -> str:
    """What an interrupt prints; a batch run says how to pick up where it stopped."""
    if command == "run":
        return ("coachnb: interrupted; reports already written are kept: run the same command "
                "with --resume to render only the rest")
    return "coachnb: interrupted"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so the exit's flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (a test's capture)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns the exit code (argparse exits 2 itself on a usage error).

    Exit codes: 0 done; 1 done, but the data or some reports failed (``validate``, ``run``);
    2 coachnb refused (a :class:`CoachnbError`) or an unexpected error, whose traceback goes to
    a log file named on stderr; 130 interrupted.
    """
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return args.func(args)
    except CoachnbError as exc:
        _show(f"coachnb: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_line(command), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `coachnb commit list | head`: the reader had what it wanted
        _quiet_stdout()
        return 1
    except Exception as exc:  # noqa: BLE001 -- the last resort: one line, never a traceback
        line = internal_error_line(exc, write_crash_log(exc, argv))
        try:
            _show(line, file=sys.stderr)
        except Exception:  # noqa: BLE001 -- formatting itself may be what broke
            print(ascii(line), file=sys.stderr)
        return 2
