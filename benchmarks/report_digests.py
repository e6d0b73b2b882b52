"""Digests of the demo reports, to show that a change leaves every page byte-identical.

A refactoring or a speed-up must not change a single byte a reader sees. Run this before the
change with ``--save``, and after it with ``--compare``::

    .venv/bin/python benchmarks/report_digests.py --save /tmp/before.json
    # ... change the code ...
    .venv/bin/python benchmarks/report_digests.py --compare /tmp/before.json

It generates the demo data into a temporary folder (so the demo generator is covered too),
renders every rep's report for both audiences and the team overview with ``coachnb run``,
and prints one SHA-256 per file: the demo data files and the rendered HTML pages, one per
chart of each page (``reports/<page>#chart<n>``, the decoded image) and of what it draws
(``...#marks``: its paths and texts, ids aside), and one per page without its charts
(``reports/<page>#text``), so a page whose text changed (another change's, in a shared tree)
still shows whether its charts stayed identical, and a chart regrouped still shows whether it
draws the same. Executed
notebooks are left out (they carry timings); logs and the manifest too. Digests depend on the
installed matplotlib, pandas and nbconvert, so compare runs on the same environment only.
Exit status 1 when ``--compare`` finds a difference.
"""
from __future__ import annotations

import argparse
import hashlib
import base64
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2026-11-23"
#: an embedded chart in a page: its media type and base64 data
IMAGE = re.compile(r'src="data:image/([a-z+]+);base64,([^"]+)"')


def _digests(folder: Path, pattern: str) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob(pattern)) if p.is_file()}


#: what a reader sees in an SVG chart: its paths and texts, each with its coordinates and style
MARK = re.compile(r"<path [^>]*/>|<text [^>]*>[^<]*</text>|<use [^>]*/>")
GROUP_ID = re.compile(r'\s+id="[^"]*"')


def chart_marks(image: bytes) -> str:
    """A digest of what an SVG chart draws, whatever its grouping: its sorted paths and texts, group ids left out.

    Two charts with the same marks draw the same picture unless the same marks overlap in another
    order (z-order); a change that regroups artists (``coachnb.plots.draw_ticks_as_marks``) keeps
    this digest and changes the bytes. Checked at 2x in Chromium on the demo's charts (NOTES).
    """
    found = sorted(GROUP_ID.sub("", m) for m in MARK.findall(image.decode("utf-8", "replace")))
    return hashlib.sha256("\n".join(found).encode()).hexdigest()


def chart_digests(folder: Path) -> dict[str, str]:
    """Per HTML page: one SHA-256 per embedded image (``<page>#chart<n>``, n from 1, page order) and of its
    marks (``<page>#chart<n>#marks``, :func:`chart_marks`), and one of the page with its images left out
    (``<page>#text``): whether its text changed, whatever its charts did."""
    found = {}
    for page in sorted(folder.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(folder).as_posix()
        for n, match in enumerate(IMAGE.finditer(html), 1):
            image = base64.b64decode(match.group(2))
            found[f"{name}#chart{n}"] = hashlib.sha256(image).hexdigest()
            found[f"{name}#chart{n}#marks"] = chart_marks(image)
        found[f"{name}#text"] = hashlib.sha256(IMAGE.sub("", html).encode()).hexdigest()
    return found


def _quiet(command: list[str]) -> None:
    """Run a command; its output is shown only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")


def demo_digests(jobs: int) -> dict[str, str]:
    """Generate the demo team and render its reports in a temporary folder; digest both."""
    with tempfile.TemporaryDirectory(prefix="coachnb-digests-") as tmp:
        tmp = Path(tmp)
        data, out = tmp / "data", tmp / "reports"
        _quiet([sys.executable, "-m", "coachnb", "demo-data", "--out", str(data)])
        _quiet([sys.executable, "-m", "coachnb", "run", str(data), "--as-of", AS_OF, "--out", str(out),
                "--jobs", str(jobs), "--audience", "both"])
        found = {f"data/{k}": v for k, v in _digests(data, "*").items()}
        found.update({f"reports/{k}": v for k, v in _digests(out / AS_OF, "**/*.html").items()})
        found.update({f"reports/{k}": v for k, v in chart_digests(out / AS_OF).items()})
        return found


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Lines naming every file that was added, removed or changed (empty when identical)."""
    lines = [f"only before: {k}" for k in sorted(set(before) - set(after))]
    lines += [f"only after:  {k}" for k in sorted(set(after) - set(before))]
    lines += [f"changed:     {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the digests to this JSON file")
    group.add_argument("--compare", type=Path, help="compare with digests saved earlier")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    found = demo_digests(args.jobs)
    n_html = sum(k.endswith(".html") for k in found)
    n_charts = sum("#chart" in k and not k.endswith("#marks") for k in found)
    print(f"{len(found)} digests ({n_html} HTML pages, {n_charts} charts in them) in {time.perf_counter() - t0:.1f} s")
    if args.save:
        args.save.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"saved to {args.save}")
        return 0
    lines = compare(json.loads(args.compare.read_text(encoding="utf-8")), found)
    print("\n".join(lines) if lines else f"identical to {args.compare}: every file byte for byte")
    if lines:
        charts = [ln for ln in lines if re.search(r"#chart\d+$", ln)]
        marks = [ln for ln in lines if ln.endswith("#marks")]
        texts = [ln for ln in lines if ln.endswith("#text")]
        files = len(lines) - len(charts) - len(marks) - len(texts)
        print(f"{files} files, {len(texts)} pages' text, {len(charts)} charts' bytes and {len(marks)} charts' marks differ"
              + ("; every chart draws the same marks" if not marks else ""))
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
