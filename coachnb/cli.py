"""Command line: ``coachnb validate | demo-data | run | commit | import``.

Each sub-command parses its arguments here and calls one function of the module that owns
the job; no logic lives in this file. Each command imports its module when it runs, so that
``coachnb --help`` and ``coachnb validate`` don't pay for the batch's and the report's imports.
"""
from __future__ import annotations

import argparse
import sys

from .errors import CoachnbError


def _validate(args) -> int:
    from .loading import validate  # imported on use: keeps CLI start-up fast

    report = validate(args.data_dir)
    print(report.format())
    return 0 if report.ok else 1


def _demo_data(args) -> int:
    from .demo import write_demo_data  # imported on use: keeps CLI start-up fast

    path = write_demo_data(args.out, reps=args.reps, weeks=args.weeks, seed=args.seed, end=args.end)
    print(f"wrote demo data to {path}")
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
    print(f"added commitment {row['commitment_id']} for {row['rep_id']}: {row['metric']} "
          f"from {row['baseline']:g} to {row['target']:g}, {row['start']} to {row['end']}")
    return 0


def _commit_list(args) -> int:
    from .commitments import list_commitments  # imported on use: keeps CLI start-up fast

    table = list_commitments(args.data_dir, rep_id=args.rep, active_on=args.active_on)
    print(table.to_string(index=False) if len(table) else "no commitments")
    return 0


def _import(args) -> int:
    from . import importers  # imported on use: keeps CLI start-up fast

    if args.infer:
        print(importers.infer_mapping(args.sources))
        return 0
    if not args.mapping or not args.out:
        raise CoachnbError("coachnb import needs --mapping MAPPING.toml and --out DATA_DIR (or --infer)")
    path = importers.import_export(args.mapping, args.sources, args.out)
    print(f"imported into {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coachnb", description="Process-based sales coaching reports from CRM data.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a data folder and list every problem")
    v.add_argument("data_dir")
    v.set_defaults(func=_validate)

    d = sub.add_parser("demo-data", help="write a deterministic sample team with known ground truth")
    d.add_argument("--out", required=True)
    d.add_argument("--reps", type=int, default=24)
    d.add_argument("--weeks", type=int, default=78)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--end", default="2026-11-23", help="last day of the data (YYYY-MM-DD)")
    d.set_defaults(func=_demo_data)

    r = sub.add_parser("run", help="render one coaching report per rep, plus the team overview")
    r.add_argument("data_dir")
    r.add_argument("--as-of", required=True, help="date of the coaching sessions (YYYY-MM-DD)")
    r.add_argument("--out", default="reports")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--reps", help="comma-separated rep ids")
    g.add_argument("--team")
    r.add_argument("--audience", choices=["manager", "rep", "both"], default="manager")
    r.add_argument("--jobs", type=int, default=None, help="worker processes (default: number of cores)")
    r.add_argument("--resume", action="store_true", help="skip reps whose inputs and code are unchanged")
    r.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    r.add_argument("--timeout", type=float, default=600, help="seconds one report may take")
    r.add_argument("--engine", default=None, help="papermill engine (default: coachnb's in-process engine)")
    r.add_argument("--cache", default=None, help="folder for the feature store, executed notebooks and logs, "
                   "outside the report folder (default: OUT/.cache)")
    r.set_defaults(func=_run)

    c = sub.add_parser("commit", help="record or list commitments")
    csub = c.add_subparsers(dest="commit_command", required=True)
    ca = csub.add_parser("add")
    ca.add_argument("data_dir")
    ca.add_argument("--rep", required=True)
    ca.add_argument("--metric", required=True)
    ca.add_argument("--target", type=float, required=True)
    ca.add_argument("--baseline", default="auto", help="number, or 'auto' for the rep's recent level")
    ca.add_argument("--start", required=True)
    ca.add_argument("--days", type=int, default=30)
    ca.add_argument("--follow-up")
    ca.add_argument("--note")
    ca.add_argument("--supersedes")
    ca.set_defaults(func=_commit_add)
    cl = csub.add_parser("list")
    cl.add_argument("data_dir")
    cl.add_argument("--rep")
    cl.add_argument("--active-on")
    cl.set_defaults(func=_commit_list)

    i = sub.add_parser("import", help="turn a CRM export into a coachnb data folder")
    i.add_argument("sources", nargs="+")
    i.add_argument("--mapping")
    i.add_argument("--out")
    i.add_argument("--infer", action="store_true", help="propose a mapping from the sources' columns")
    i.set_defaults(func=_import)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CoachnbError as exc:
        print(f"coachnb: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coachnb: interrupted", file=sys.stderr)
        return 130
