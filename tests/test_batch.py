"""Batch generation: parallel workers, failure isolation, timeouts, manifest, resume, Dask."""
import json
import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from coachnb.batch import run_batch
from coachnb.errors import DataError, Problem
from coachnb.fsutil import safe_filename
from coachnb.schema import TABLES, Dataset, empty_frame

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
AS_OF = "2026-01-05"
REPS = [("R1", "Ana <b>Souza</b>", "West"), ("R2", "Bo", "West"), ("R3", "Cy", "East"), ("R4", "Di", "East"),
        ("../../etc/passwd", "Eve", "East"), ("00123", "Flo", "East")]
EVIL = "x'; import os; os.system('touch /tmp/pwned'); '"


def make_data(tmp_path, reps=REPS, fingerprint="data-v1"):
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    frame = pd.DataFrame(reps, columns=["rep_id", "name", "team"]).astype("string")
    frame.assign(manager="Maya", hire_date="2024-01-01").to_csv(data_dir / "reps.csv", index=False)
    tables = {name: empty_frame(name) for name in TABLES}
    tables["reps"] = frame
    return data_dir, Dataset(**tables, fingerprint=fingerprint)


def batch(data_dir, ds, out, notebook="rep_report", **kwargs):
    kwargs.setdefault("overview_notebook", FIXTURES / "overview.ipynb")
    kwargs.setdefault("jobs", 2)
    kwargs.setdefault("progress", False)
    return run_batch(data_dir, AS_OF, out=out, notebook=FIXTURES / f"{notebook}.ipynb", dataset=ds, **kwargs)


def manifest(out):
    return json.loads((Path(out) / AS_OF / "manifest.json").read_text(encoding="utf-8"))


def check_report_html(html):
    assert "Traceback" not in html and "<script" not in html.lower()
    assert not re.search(r"In\s*(&nbsp;|\s)*\[|Out\[", html)
    assert "import matplotlib" not in html
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?:', html)
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") and len(s) > 200 for s in sources)


def test_one_report_per_rep_then_resume_skips_unchanged(tmp_path):
    data_dir, ds = make_data(tmp_path, REPS[:1] + REPS[4:])
    out = tmp_path / "reports"
    result = batch(data_dir, ds, out, audience="both")
    assert result.ok, result.failed
    report_dir = out / AS_OF
    m = manifest(out)
    assert m["ok"] is True and m["as_of"] == AS_OF and m["overview"]["status"] == "ok"
    assert {(e["rep_id"], e["audience"]) for e in m["reports"]} == {
        (r, a) for r, _, _ in REPS[:1] + REPS[4:] for a in ("manager", "rep")}
    for e in m["reports"]:
        stem = safe_filename(e["rep_id"])
        assert e["status"] == "ok" and len(e["fingerprint"]) == 64 and e["duration_s"] > 0
        assert e["html"] == stem + (".rep.html" if e["audience"] == "rep" else ".html")
        assert (report_dir / e["ipynb"]).is_file() and (report_dir / e["log"]).is_file()
        html = (report_dir / e["html"]).read_text(encoding="utf-8")
        check_report_html(html)
        assert f"for the {e['audience']}" in html
    assert "Report for Flo ('00123')" in (report_dir / "00123.html").read_text(encoding="utf-8")
    assert not (tmp_path / "etc").exists()                                  # no path traversal
    assert sorted(p.name for p in report_dir.iterdir() if p.suffix == ".html")[0] == "00123.html"
    assert 'href="etc_passwd.' in (report_dir / "index.html").read_text(encoding="utf-8")

    def worker(log):
        return re.search(r"^worker process: (\d+)$", (report_dir / log).read_text(encoding="utf-8"), re.M).group(1)

    # the index runs in a worker of its own, not in one holding the reports' caches
    report_workers = {worker(e["log"]) for e in m["reports"]}
    assert 1 <= len(report_workers) <= 2 and worker(m["overview"]["log"]) not in report_workers
    first = {e["html"]: (report_dir / e["html"]).stat().st_mtime_ns for e in m["reports"]}

    again = batch(data_dir, ds, out, audience="both", resume=True)
    assert again.ok and {e["status"] for e in again.reports} == {"skipped"}
    assert {e["html"]: (report_dir / e["html"]).stat().st_mtime_ns for e in manifest(out)["reports"]} == first

    _, changed = make_data(tmp_path, REPS[:1] + REPS[4:], fingerprint="data-v2")
    rerun = batch(data_dir, changed, out, audience="manager", reps=["00123"], resume=True)
    assert rerun.ok and [(e["rep_id"], e["status"]) for e in rerun.reports] == [("00123", "ok")]
    kept = {(e["rep_id"], e["audience"]) for e in manifest(out)["reports"]}
    assert len(kept) == 6  # reps outside the selection stay in the manifest


def test_failures_are_isolated_and_keep_the_last_good_report(tmp_path):
    data_dir, ds = make_data(tmp_path, REPS[:4])
    out = tmp_path / "reports"
    assert batch(data_dir, ds, out, reps=["R2", "R3", "R4"], overview_notebook=None).ok
    report_dir = out / AS_OF
    good = {r: (report_dir / f"{safe_filename(r)}.html").read_bytes() for r in ("R2", "R3", "R4")}

    result = batch(data_dir, ds, out, notebook="chaos", timeout=3)
    assert not result.ok
    by_rep = {e["rep_id"]: e for e in result.reports}
    assert by_rep["R1"]["status"] == "ok" and (report_dir / by_rep["R1"]["html"]).is_file()
    assert by_rep["R2"]["status"] == "failed" and by_rep["R2"]["error"] == "RuntimeError: boom for R2"
    assert 'raise RuntimeError(f"boom for {rep_id}")' in by_rep["R2"]["failed_cell"]["source"]
    assert by_rep["R3"]["status"] == "failed" and "timed out" in by_rep["R3"]["error"]
    assert by_rep["R3"]["duration_s"] < 20
    assert by_rep["R4"]["status"] == "failed" and "died" in by_rep["R4"]["error"]
    for rep in ("R2", "R3", "R4"):  # the previous good report is untouched and still listed
        assert (report_dir / f"{safe_filename(rep)}.html").read_bytes() == good[rep]
        assert by_rep[rep]["stale_html"] is True
    log = (report_dir / by_rep["R2"]["log"]).read_text(encoding="utf-8")
    assert "boom for R2" in log and "noise on stderr" not in log  # failed before printing
    assert (report_dir / "logs" / f"{safe_filename('R2')}.failed.ipynb").is_file()
    m = manifest(out)
    assert m["ok"] is False and m["overview"]["status"] == "ok"
    assert [e["status"] for e in m["reports"]] == ["ok", "failed", "failed", "failed"]


def test_unknown_and_injected_rep_ids_run_nothing(tmp_path):
    marker = Path("/tmp/pwned")
    marker.unlink(missing_ok=True)
    data_dir, ds = make_data(tmp_path, REPS[:1])
    result = batch(data_dir, ds, tmp_path / "reports", reps=[EVIL], overview_notebook=None)
    assert not result.ok
    assert [(e["rep_id"], e["status"]) for e in result.reports] == [(EVIL, "failed")]
    assert "unknown rep" in result.reports[0]["error"]
    assert not marker.exists()


def test_invalid_data_stops_before_anything_runs(tmp_path, monkeypatch, capsys):
    import coachnb.batch

    problem = Problem("reps.csv", 3, "rep_id", "", "missing_id", "rep_id is empty", hint="fill it in")

    def load(data_dir, **kwargs):
        raise DataError([problem], str(data_dir))

    monkeypatch.setattr(coachnb.batch, "load", load)  # the name run_batch calls
    out = tmp_path / "reports"
    result = run_batch(tmp_path, AS_OF, out=out, notebook=FIXTURES / "rep_report.ipynb",
                       overview_notebook=None, progress=False)
    assert not result.ok and "rep_id is empty" in result.error
    assert "reps.csv, row 3, column 'rep_id': rep_id is empty" in capsys.readouterr().err
    assert not out.exists()


def test_kernel_engine_renders_the_same_reports(tmp_path):
    data_dir, ds = make_data(tmp_path, REPS[:2])
    local = batch(data_dir, ds, tmp_path / "inprocess", overview_notebook=None)
    kernel = batch(data_dir, ds, tmp_path / "kernel", overview_notebook=None, engine="papermill")
    assert local.ok and kernel.ok
    for e in local.reports:
        a = (tmp_path / "inprocess" / AS_OF / e["html"]).read_text(encoding="utf-8")
        b = (tmp_path / "kernel" / AS_OF / e["html"]).read_text(encoding="utf-8")
        assert a == b


def test_dask_cluster_produces_the_same_reports(tmp_path):
    distributed = pytest.importorskip("distributed")
    data_dir, ds = make_data(tmp_path, REPS[:2])
    local = batch(data_dir, ds, tmp_path / "local", notebook="flaky")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = batch(data_dir, ds, tmp_path / "dask", notebook="flaky", scheduler=cluster.scheduler_address)
    assert not remote.ok and not local.ok
    by_rep = {e["rep_id"]: e for e in remote.reports}
    assert by_rep["R1"]["status"] == "ok" and by_rep["R2"]["error"] == "RuntimeError: boom for R2"
    html = lambda root, e: (root / AS_OF / e["html"]).read_text(encoding="utf-8")  # noqa: E731
    assert html(tmp_path / "dask", by_rep["R1"]) == html(tmp_path / "local", by_rep["R1"])
    assert manifest(tmp_path / "dask")["overview"]["status"] == "ok"


def test_workers_keep_to_a_team_then_take_a_free_one_then_any():
    from collections import deque

    from coachnb.batch import pick_task

    pending = deque({"key": k, "group": g} for k, g in
                    [(1, "A"), (2, "B"), (3, "A"), (4, "C"), (5, "B"), (6, None), (7, "A")])
    assert pick_task(pending, None, set())["key"] == 1          # a fresh worker takes the first task
    assert pick_task(pending, None, {"A"})["key"] == 2          # the next one a team nobody holds
    assert pick_task(pending, "A", {"B"})["key"] == 3           # a worker keeps to its team
    assert pick_task(pending, "A", {"B"})["key"] == 7
    assert pick_task(pending, "A", {"B"})["key"] == 4           # its team done: a free team (C)
    assert pick_task(pending, "C", {"B"})["key"] == 6           # ungrouped tasks are free for anyone
    assert pick_task(pending, "C", {"B"})["key"] == 5           # only then another worker's team
    assert not pending


def _report_threads(q):
    import os
    q.put({k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})


def test_workers_start_with_one_blas_thread_and_the_parent_env_is_left_alone(monkeypatch):
    import multiprocessing

    from coachnb.batch import _start_single_threaded

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # a user's own choice is kept
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_report_threads, args=(q,))
    _start_single_threaded(p)
    seen = q.get(timeout=60)
    p.join(60)
    assert seen == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"}
    import os
    assert "OPENBLAS_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "3"


def test_a_worker_is_replaced_after_its_task_quota_and_nothing_is_lost(tmp_path, monkeypatch):
    import coachnb.batch as batch_module

    monkeypatch.setattr(batch_module, "MAX_TASKS_PER_WORKER", 2)
    data_dir, ds = make_data(tmp_path)
    out = tmp_path / "reports"
    result = batch(data_dir, ds, out, jobs=1)
    assert result.ok, result.failed
    m = manifest(out)
    assert len(m["reports"]) == len(REPS) and {e["status"] for e in m["reports"]} == {"ok"}
    report_dir = out / AS_OF
    pids = [re.search(r"^worker process: (\d+)$", (report_dir / e["log"]).read_text(encoding="utf-8"), re.M).group(1)
            for e in m["reports"]]
    # one worker at a time, two reports each: 6 reports -> 3 processes, none ran more than 2
    assert len(set(pids)) == 3 and max(pids.count(p) for p in set(pids)) == 2
    for e in m["reports"]:
        check_report_html((report_dir / e["html"]).read_text(encoding="utf-8"))
