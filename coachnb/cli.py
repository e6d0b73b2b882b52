"""Command line: ``coachnb validate | demo-data | run | commit | plan | import``.

Each sub-command parses its arguments here and calls one function of the module that owns
the job; no logic lives in this file. Each command imports its module when it runs, so that
``coachnb --help`` and ``coachnb validate`` don't pay for the batch's and the report's imports.

The CLI is the boundary no traceback crosses: arguments are checked by their argparse types
(a usage error, exit 2), coachnb's own errors print one message (exit 2), an interrupt exits 130,
and anything else prints one line pointing at a log file that holds the traceback (exit 2).
Text that came from the data is printed through :func:`coachnb.formatting.terminal_safe`.
Every option's help says its default; reps and teams named on the command line are checked
against the data's ``reps`` before any work (:func:`coachnb.commitments.check_selection`).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import sys
import tempfile
import traceback

from .config import ProcessConfig
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


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, each option's line ending with its default when it has one to state."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


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
    from .commitments import check_selection  # imported on use: keeps CLI start-up fast

    reps = args.reps.split(",") if args.reps else None
    check_selection(args.data_dir, reps=reps, team=args.team)  # before any work: nothing is written
    from .batch import run_batch  # imported on use, after the check: a refusal doesn't wait for the batch's imports

    result = run_batch(
        args.data_dir, as_of=args.as_of, out=args.out,
        reps=reps, team=args.team, audience=args.audience,
        jobs=args.jobs, resume=args.resume, scheduler=args.scheduler, timeout=args.timeout,
        engine=args.engine, cache_dir=args.cache,
    )
    gc.freeze()  # the process ends with the run: no final collection walks its objects
    if args.pdf and result.report_dir is not None:
        _print_pdfs(args, result)
    return 0 if result.ok else 1


def _print_pdfs(args, result) -> None:
    """A PDF beside every page this run wrote (or kept as unchanged), the overview's included."""
    from .config import load_config  # imported on use: only --pdf needs them
    from .pdf import write_pdfs

    pages = [e["html"] for e in result.reports if e.get("status") in ("ok", "skipped") and e.get("html")]
    if result.overview and result.overview.get("html"):
        pages.append(result.overview["html"])
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8")) if result.manifest_path else {}
    pages += [p["html"] for p in manifest.get("manager_pages") or [] if p.get("status") == "ok" and p.get("html")]
    written = write_pdfs(result.report_dir, paper=load_config(args.data_dir).presentation.paper, pages=pages)
    _show(f"coachnb: wrote {len(written)} PDF(s) beside the pages in {result.report_dir}")


def _commit_add(args) -> int:
    from .commitments import add_commitment  # imported on use: keeps CLI start-up fast

    row = add_commitment(args.data_dir, rep_id=args.rep, metric=args.metric, target=args.target,
                         baseline=args.baseline, start=args.start, days=args.days, agreed_on=args.agreed_on,
                         follow_up=args.follow_up, note=args.note, supersedes=args.supersedes,
                         note_for_rep=args.note_for_rep)
    _show_added(row, args.agreed_on is None, "today")
    return 0


def _show_added(row: dict, agreed_by_default: bool, default_name: str) -> None:
    """The commitment written, its date of agreement (saying when it was the default), its warnings."""
    agreed = f"agreed on {row['agreed_on']}" + (f" ({default_name}; --agreed-on sets the 1:1's date)"
                                                 if agreed_by_default else "")
    _show(f"added commitment {row['commitment_id']} for {row['rep_id']}: {row['metric']} "
          f"from {row['baseline']:g} to {row['target']:g} a week, {row['start']} to {row['end']}, {agreed}")
    for warning in row.get("warnings", []):
        _show(f"coachnb: warning: {warning}", file=sys.stderr)


def _plan(args) -> int:
    from .workbooks import record_plan  # imported on use: builds the rep's report, which loads everything

    row = record_plan(args.data_dir, args.rep, as_of=args.as_of or "", start=args.start, days=args.days,
                      target=args.target, agreed_on=args.agreed_on, follow_up=args.follow_up, note=args.note,
                      note_for_rep=args.note_for_rep,
                      supersedes=args.supersedes)
    _show_added(row, args.agreed_on is None, "the date of the 1:1")
    return 0


def _commit_list(args) -> int:
    # imported on use: keeps start-up fast
    from .commitments import check_selection, list_commitments, readable_commitments

    if args.rep is not None:
        check_selection(args.data_dir, reps=[args.rep])  # a mistyped id is said, not listed as "no commitments"
    every = list_commitments(args.data_dir, rep_id=args.rep, active_on=args.active_on)
    on = args.active_on or datetime.date.today().isoformat()
    table = readable_commitments(every, on, history=args.all)
    if not len(table):
        if len(every):
            print(f"no current commitments on {on}; {len(every)} ended or replaced (--all lists them)")
        else:
            print(f"no commitments running on {on}" if args.active_on else "no commitments")
        return 0
    print(_text_table(table))
    return 0


def _text_table(table) -> str:
    """``table`` (every cell a string) as left-aligned columns, each cell escaped on its own.

    Escaped cell by cell so a note's line break reads ``\\n`` and every row stays one line.
    """
    from .formatting import terminal_safe  # imported on use: keeps CLI start-up fast

    rows = [[terminal_safe(str(c)) for c in table.columns]]
    rows += [[terminal_safe(str(cell)) for cell in row] for row in table.itertuples(index=False)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _import(args) -> int:
    from . import importers  # imported on use: keeps CLI start-up fast

    if args.infer and args.mapping:
        raise CoachnbError("coachnb import takes --infer or --mapping, not both")
    if args.infer and args.out:  # one command: propose, keep in OUT/mapping.toml, import, validate
        path = importers.import_inferred(args.sources, args.out)
        _show(f"imported into {path}")
        return 0
    if args.infer:
        _show(importers.infer_mapping(args.sources))
        return 0
    if not args.mapping or not args.out:
        raise CoachnbError("coachnb import needs --mapping MAPPING.toml and --out DATA_DIR (or --infer)")
    path = importers.import_export(args.mapping, args.sources, args.out)
    _show(f"imported into {path}")
    return 0


def _metric_help() -> str:
    """The ``--metric`` help: every metric of the default registry, outcomes marked."""
    from .commitments import OUTCOME_KINDS  # imported on use: only a parser with `commit` needs it

    names = [f"{m.name} (an outcome)" if m.kind in OUTCOME_KINDS else m.name
             for m in ProcessConfig().commitment_metrics.values()]
    return ("what the rep commits to, per week: " + ", ".join(names)
            + "; a team's process.toml may add its own ([commitment_metrics])")


def _sub(subparsers, name: str, text: str):
    """A sub-command's parser, with the help formatter that states defaults."""
    return subparsers.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)


def _add_commit_options(parser, plan: bool) -> None:
    """The options ``commit add`` and ``plan`` share (``plan`` takes metric, baseline and target from the report)."""
    parser.add_argument("data_dir", type=_path, help="the data folder")
    parser.add_argument("--rep", type=_text, required=True, help="the rep's id, as in reps (e.g. R007)")
    days = "length in days, 7 to 120"
    if plan:
        parser.add_argument("--as-of", type=_date, help="date of the 1:1 whose report proposes the plan "
                            "(YYYY-MM-DD; default: the latest date the data covers)")
        parser.add_argument("--start", type=_date, help="first day (default: the date of the 1:1)")
        parser.add_argument("--target", type=_finite, help="the agreed weekly level, when it differs from "
                            "the report's draft target (default: the draft target)")
        parser.add_argument("--agreed-on", type=_date, help="date of the 1:1 (default: --as-of)")
    else:
        parser.add_argument("--metric", type=_text, required=True, help=_metric_help())
        parser.add_argument("--target", type=_finite, required=True, help="the agreed weekly level")
        parser.add_argument("--baseline", type=_baseline, default="auto",
                            help="weekly level before; 'auto': the rep's mean over the 8 weeks that end 2 "
                                 "weeks before the start week")
        parser.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
        parser.add_argument("--agreed-on", type=_date, help="date of the 1:1 (YYYY-MM-DD; default: today)")
    parser.add_argument("--days", type=_days, default=30, help=days)
    parser.add_argument("--follow-up", type=_text, help="how the rep wants to be followed up if it slips")
    parser.add_argument("--note", type=_text, help="the manager's note from the 1:1 (in the manager's report only)")
    parser.add_argument("--note-for-rep", type=_text, help="a note from the 1:1 the rep's pre-read shows too")
    parser.add_argument("--supersedes", type=_text, help="id of the commitment this one replaces (e.g. K0005)")


def build_parser() -> argparse.ArgumentParser:
    """The ``coachnb`` parser: every sub-command, each option with its help and default.

    Returns
    -------
    argparse.ArgumentParser
        Each sub-command's parser sets ``func``, the function :func:`main` calls with the
        parsed arguments.
    """
    p = _Parser(prog="coachnb", description="Process-based sales coaching reports from CRM data.",
                formatter_class=_HelpFormatter)
    p.add_argument("--version", action="version", version=f"coachnb {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    v = _sub(sub, "validate", "check a data folder and list every problem")
    v.add_argument("data_dir", type=_path, help="the data folder")
    v.set_defaults(func=_validate)

    d = _sub(sub, "demo-data", "write a deterministic sample team with known ground truth")
    d.add_argument("--out", type=_path, required=True, help="folder to write the team into")
    d.add_argument("--reps", type=_whole(1, MAX_DEMO_REPS), default=24, help="number of reps")
    d.add_argument("--weeks", type=_whole(4, MAX_DEMO_WEEKS, " (four weeks is the shortest history)"), default=78,
                   help="weeks of history")
    d.add_argument("--seed", type=_whole(0, 2**32 - 1), default=7, help="random seed (same seed, same files)")
    d.add_argument("--end", type=_date, default="2026-11-23", help="last day of the data (YYYY-MM-DD)")
    d.set_defaults(func=_demo_data)

    _add_run(_sub(sub, "run", "render one coaching report per rep, plus the team overview"))

    c = _sub(sub, "commit", "record or list commitments")
    csub = c.add_subparsers(dest="commit_command", required=True)
    ca = _sub(csub, "add", "record one commitment agreed in a 1:1")
    _add_commit_options(ca, plan=False)
    ca.set_defaults(func=_commit_add)
    cl = _sub(csub, "list", "list commitments: current ones, or with --all every one ever recorded")
    cl.add_argument("data_dir", type=_path, help="the data folder")
    cl.add_argument("--rep", type=_text, help="only this rep's commitments (default: every rep's)")
    cl.add_argument("--active-on", type=_date, help="only those running on this day; statuses are told "
                    "for it (YYYY-MM-DD; default: today, and no filter)")
    cl.add_argument("--all", action="store_true", help="also those ended or replaced")
    cl.set_defaults(func=_commit_list)

    pl = _sub(sub, "plan", "record the commitment a rep's report proposes in its 30-day plan")
    _add_commit_options(pl, plan=True)
    pl.set_defaults(func=_plan)

    i = _sub(sub, "import", "turn a CRM export into a coachnb data folder")
    i.add_argument("sources", nargs="+", type=_path, help="the export's files")
    i.add_argument("--mapping", type=_path, help="a mapping file, e.g. coachnb/mappings/salesforce.toml")
    i.add_argument("--out", type=_path, help="the data folder to write")
    i.add_argument("--infer", action="store_true", help="propose a mapping from the sources' columns; with --out, "
                   "keep it in OUT/mapping.toml and import with it")
    i.set_defaults(func=_import)
    return p


def _add_run(r) -> None:
    """The options of ``coachnb run``."""
    r.add_argument("data_dir", type=_path, help="the data folder")
    r.add_argument("--as-of", type=_date, required=True, help="date of the coaching sessions (YYYY-MM-DD)")
    r.add_argument("--out", type=_path, default="reports", help="parent of the report folder OUT/AS_OF")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--reps", type=_text, help="comma-separated rep ids (default: every rep)")
    g.add_argument("--team", type=_text, help="only this team's reps (default: every team)")
    r.add_argument("--audience", choices=["manager", "rep", "both"], default="manager",
                   help="the manager's report, the rep's pre-read, or both")
    r.add_argument("--jobs", type=_whole(1, MAX_JOBS), default=None, help="worker processes (default: number of cores)")
    r.add_argument("--resume", action="store_true", help="skip reps whose inputs and code are unchanged")
    r.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(default: worker processes on this machine)")
    r.add_argument("--timeout", type=_timeout, default=600, help="seconds one report may take")
    r.add_argument("--engine", default=None, help="papermill engine, e.g. 'papermill' for a Jupyter kernel "
                   "per report (default: coachnb's in-process engine)")
    r.add_argument("--cache", default=None, help="folder for the feature store, executed notebooks and logs, "
                   "outside the report folder (default: OUT/.cache)")
    r.add_argument("--pdf", action="store_true", help="also print every page to a PDF beside it, on the paper "
                   "process.toml names (needs headless Chromium; see docs/presentation.md)")
    r.set_defaults(func=_run)


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
