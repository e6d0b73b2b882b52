"""Benchmark the loader on a large team: 1000 reps x 104 weeks (millions of activity rows).

Prints seconds to generate the CSV folder, to load it, to load a Parquet copy (converted
once, here), and the peak resident memory. Usage::

    .venv/bin/python benchmarks/load.py [--reps 1000] [--weeks 104] [--out data/bench-load]

The folder is kept between runs (delete it to regenerate); ``data/bench*`` is git-ignored.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

from coachnb.loading import load
from coachnb.schema import TABLES


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def write_parquet_copy(ds, csv_dir: Path, out: Path) -> None:
    """Write the loaded tables as Parquet (typed columns) next to the same process.toml."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        if name in ds.present:
            ds.table(name).to_parquet(out / f"{name}.parquet", index=False)
    if (csv_dir / "process.toml").exists():
        shutil.copy(csv_dir / "process.toml", out / "process.toml")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=1000)
    p.add_argument("--weeks", type=int, default=104)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="data/bench-load")
    args = p.parse_args(argv)
    csv_dir = Path(args.out) / "csv"
    pq_dir = Path(args.out) / "parquet"

    if not (csv_dir / "reps.csv").exists():
        try:
            from coachnb.demo import write_demo_data
        except ImportError:
            print("coachnb.demo.write_demo_data is not available yet; cannot generate the data")
            return 1
        t0 = time.perf_counter()
        write_demo_data(csv_dir, reps=args.reps, weeks=args.weeks, seed=args.seed)
        print(f"generate: {time.perf_counter() - t0:7.1f} s")
    else:
        print(f"generate: skipped, {csv_dir} exists")

    t0 = time.perf_counter()
    ds = load(csv_dir)
    t_csv = time.perf_counter() - t0
    rows = {name: len(ds.table(name)) for name in TABLES if name in ds.present}
    print(f"load CSV: {t_csv:7.1f} s  rows: {rows}")
    print(f"          {len(ds.warnings)} warning(s), {len(ds.excluded)} excluded row(s)")

    write_parquet_copy(ds, csv_dir, pq_dir)
    del ds
    t0 = time.perf_counter()
    load(pq_dir)
    print(f"load Parquet: {time.perf_counter() - t0:7.1f} s")
    print(f"peak RSS: {peak_rss_mb():7.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
