"""Batch generation: parallel workers, failure isolation, timeouts, manifest, resume, Dask."""
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from coachnb.batch import report_files, run_batch
from coachnb.errors import DataError, Problem
from coachnb.fsutil import safe_filename
from coachnb.schema import TABLES, Dataset, empty_frame

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
AS_OF = "2026-01-05"
REPS = [("R1", "Ana <b>Souza</b>", "West"), ("R2", "Bo", "West"), ("R3", "Cy", "East"), ("R4", "Di", "East"),
        ("../../etc/passwd", "Eve", "East"), ("00123", "Flo", "East")]
#: the readable name each rep's pages get (markup characters replaced, ids not used)
PAGE_NAMES = {"R1": "Ana -b-Souza--b-", "R2": "Bo", "R3": "Cy", "R4": "Di", "../../etc/passwd": "Eve", "00123": "Flo"}
EVIL = "x'; import os; os.system('touch /tmp/pwned'); '"


def make_data(tmp_path, reps=REPS, fingerprint="data-v1"):
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    frame = pd.DataFrame(reps, columns=["rep_id", "name", "team"]).astype("string")
    frame.assign(manager="Maya", hire_date="2024-01-01").to_csv(data_dir / "reps.csv", index=False)
    tables = {name: empty_frame(name) for name in TABLES}
    tables["reps"] = frame.assign(manager="Maya").astype("string")
    return data_dir, Dataset(**tables, fingerprint=fingerprint)


def batch(data_dir, ds, out, notebook="rep_report", **kwargs):
    kwargs.setdefault("overview_notebook", FIXTURES / "overview.ipynb")
    kwargs.setdefault("jobs", 2)
    kwargs.setdefault("progress", False)
    return run_batch(data_dir, AS_OF, out=out, notebook=FIXTURES / f"{notebook}.ipynb", dataset=ds, **kwargs)


def page(rep_id, audience="manager"):
    """A rep's page below the report folder: in the manager's folder, the pre-read in the folder to send."""
    if audience == "rep":
        return f"Maya/pre-reads to send/{PAGE_NAMES[rep_id]} — pre-read {AS_OF}.html"
    return f"Maya/{PAGE_NAMES[rep_id]} — coaching report {AS_OF}.html"


def manifest(out):
    return json.loads((Path(out) / AS_OF / "manifest.json").read_text(encoding="utf-8"))


def cache(out):
    """The default cache folder of a run into ``out``."""
    return Path(out) / ".cache" / AS_OF


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
    report_dir, cache_dir = out / AS_OF, cache(out)
    m = manifest(out)
    assert m["ok"] is True and m["as_of"] == AS_OF and m["overview"]["status"] == "ok"
    assert m["cache_dir"] == str(cache_dir.resolve())
    assert {(e["rep_id"], e["audience"]) for e in m["reports"]} == {
        (r, a) for r, _, _ in REPS[:1] + REPS[4:] for a in ("manager", "rep")}
    for e in m["reports"]:
        assert e["status"] == "ok" and len(e["fingerprint"]) == 64 and e["duration_s"] > 0
        assert e["html"] == page(e["rep_id"], e["audience"])
        assert (cache_dir / e["ipynb"]).is_file() and (cache_dir / e["log"]).is_file()
        html = (report_dir / e["html"]).read_text(encoding="utf-8")
        assert e["html_bytes"] == len(html.encode("utf-8")) and len(e["html_sha256"]) == 64
        check_report_html(html)
        assert f"for the {e['audience']}" in html
    assert "Report for Flo ('00123')" in (report_dir / page("00123")).read_text(encoding="utf-8")
    assert not (tmp_path / "etc").exists()                                  # no path traversal
    # the report folder holds only what is sent: the pages and the manifest
    sent = {p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file()}
    assert {Path(p).suffix for p in sent} == {".html", ".json"}
    assert {e["html"] for e in m["reports"]} <= sent
    assert f'href="{page("../../etc/passwd")}"' in (report_dir / "index.html").read_text(encoding="utf-8")

    def worker(log):
        return re.search(r"^worker process: (\d+)$", (cache_dir / log).read_text(encoding="utf-8"), re.M).group(1)

    # a small team's index runs in a warm report worker (no worker start for it), not in this process
    report_workers = {worker(e["log"]) for e in m["reports"]}
    assert 1 <= len(report_workers) <= 2 and worker(m["overview"]["log"]) in report_workers
    assert str(os.getpid()) not in report_workers
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
    good = {r: (report_dir / page(r)).read_bytes() for r in ("R2", "R3", "R4")}

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
        assert (report_dir / page(rep)).read_bytes() == good[rep]
        assert by_rep[rep]["stale_html"] is True
    log = (cache(out) / by_rep["R2"]["log"]).read_text(encoding="utf-8")
    assert "boom for R2" in log and "noise on stderr" not in log  # failed before printing
    assert (cache(out) / "logs" / f"{safe_filename('R2')}.failed.ipynb").is_file()
    assert not (report_dir / "logs").exists()
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


def _worker_pid(out, entry):
    return int(re.search(r"^worker process: (\d+)$", (cache(out) / entry["log"]).read_text(encoding="utf-8"),
                         re.M).group(1))


def test_one_rep_renders_in_this_process_without_a_pool_and_reports_do_not_leak(tmp_path, monkeypatch):
    import coachnb.batch as batch_module

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for a one-rep run")

    data_dir, ds = make_data(tmp_path, REPS[:4])
    out = tmp_path / "reports"
    assert batch(data_dir, ds, out, notebook="leak").ok  # the team, in the pool
    monkeypatch.setattr(batch_module, "WorkerPool", no_pool)
    one = batch(data_dir, ds, out, notebook="leak", reps=["R3"], audience="both")
    # both audiences ran in this process, one after the other, each in a fresh namespace (leak.ipynb fails
    # a report that sees the previous one's variable)
    assert one.ok, one.failed
    assert [(e["rep_id"], e["audience"], e["status"]) for e in one.reports] == [("R3", "manager", "ok"),
                                                                              ("R3", "rep", "ok")]
    m = manifest(out)
    assert {_worker_pid(out, e) for e in one.reports} == {_worker_pid(out, m["overview"])} == {os.getpid()}
    # the index still lists every rep; the other reps' entries are the team run's, untouched
    assert sorted({e["rep_id"] for e in m["reports"]}) == sorted(r for r, _, _ in REPS[:4])
    assert all(_worker_pid(out, e) != os.getpid() for e in m["reports"] if e["rep_id"] != "R3")


def test_ctrl_c_during_an_in_process_report_stops_the_run(tmp_path):
    import nbformat

    data_dir, ds = make_data(tmp_path, REPS[:2])
    nb = nbformat.read(FIXTURES / "rep_report.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGINT)"))
    notebook = tmp_path / "interrupted.ipynb"
    nbformat.write(nb, notebook)
    with pytest.raises(KeyboardInterrupt):
        run_batch(data_dir, AS_OF, out=tmp_path / "reports", notebook=notebook, dataset=ds, reps=["R1"],
                  overview_notebook=None, progress=False)
    assert not (tmp_path / "reports" / AS_OF / page("R1")).exists()  # not recorded as a report's failure
    assert not (cache(tmp_path / "reports") / "logs" / "R1.log").exists()
    # the lock is released and the handler restored: the same run goes on afterwards
    assert batch(data_dir, ds, tmp_path / "reports", reps=["R1"], overview_notebook=None).ok


def test_a_run_without_a_terminal_says_each_phase_as_it_starts(tmp_path, capsys):
    data_dir, ds = make_data(tmp_path, REPS[:3])
    # the folder holds reps.csv only: validation is announced, then fails
    invalid = run_batch(data_dir, AS_OF, out=tmp_path / "reports", notebook=FIXTURES / "rep_report.ipynb", jobs=2)
    assert not invalid.ok
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [f"coachnb: validating the data in {data_dir.resolve()}",
                       f"coachnb: the data at {data_dir.resolve()} is invalid; no report was rendered."]
    result = batch(data_dir, ds, tmp_path / "reports", progress=None)
    assert result.ok, result.failed
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("coachnb: ")]
    assert lines[:2] == ["coachnb: reports: rendering 3 in 2 worker processes",
                         "coachnb: index: rendering the team overview"]
    assert lines[2].startswith("coachnb: 3 ok in ") and len(lines) == 3
    quiet = batch(data_dir, ds, tmp_path / "reports", resume=True)  # progress=False: no phase lines
    assert quiet.ok and "rendering" not in capsys.readouterr().err


def test_a_large_teams_index_gets_a_fresh_worker(tmp_path, monkeypatch):
    import coachnb.batch as batch_module

    monkeypatch.setattr(batch_module, "FRESH_INDEX_WORKER_REPS", 3)
    data_dir, ds = make_data(tmp_path, REPS[:3])
    out = tmp_path / "reports"
    assert batch(data_dir, ds, out).ok
    m = manifest(out)
    report_workers = {_worker_pid(out, e) for e in m["reports"]}
    assert _worker_pid(out, m["overview"]) not in report_workers | {os.getpid()}


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
    pids = [re.search(r"^worker process: (\d+)$", (cache(out) / e["log"]).read_text(encoding="utf-8"), re.M).group(1)
            for e in m["reports"]]
    # one worker at a time, two reports each: 6 reports -> 3 processes, none ran more than 2
    assert len(set(pids)) == 3 and max(pids.count(p) for p in set(pids)) == 2
    for e in m["reports"]:
        check_report_html((report_dir / e["html"]).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- cache, resume, odd entries


def test_cache_folder_apart_and_resume_verifies_the_pages_it_skips(tmp_path):
    data_dir, ds = make_data(tmp_path, REPS[:4])
    out, elsewhere = tmp_path / "reports", tmp_path / "cache"
    assert batch(data_dir, ds, out, overview_notebook=None, cache_dir=elsewhere).ok
    report_dir = out / AS_OF
    # what is sent holds the pages and the manifest; notebooks, logs and lock live in the cache
    assert ({p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file()}
            == {"manifest.json"} | {page(r) for r in ("R1", "R2", "R3", "R4")})
    m = manifest(out)
    assert all((elsewhere / AS_OF / e["ipynb"]).is_file() and (elsewhere / AS_OF / e["log"]).is_file()
               for e in m["reports"])
    assert (elsewhere / AS_OF / ".coachnb.lock").exists() and not (out / ".cache").exists()
    pages = {r: report_dir / page(r) for r in ("R1", "R2", "R3", "R4")}
    good = {r: p.read_bytes() for r, p in pages.items()}

    pages["R1"].write_bytes(good["R1"][: len(good["R1"]) // 2])          # truncated by something else
    pages["R2"].write_bytes(good["R2"].replace(b"Bo", b"Xo", 1))          # same size, changed
    assert len(pages["R2"].read_bytes()) == len(good["R2"])
    pages["R3"].unlink()                                                   # deleted
    again = batch(data_dir, ds, out, overview_notebook=None, cache_dir=elsewhere, resume=True)
    assert again.ok
    assert {e["rep_id"]: e["status"] for e in again.reports} == {"R1": "ok", "R2": "ok", "R3": "ok", "R4": "skipped"}
    assert {r: p.read_bytes() for r, p in pages.items()} == good
    # a skipped report keeps its recorded size and hash, so the next resume can check it again
    third = batch(data_dir, ds, out, overview_notebook=None, cache_dir=elsewhere, resume=True)
    assert {e["status"] for e in third.reports} == {"skipped"}
    assert all(e["html_sha256"] for e in manifest(out)["reports"])


@pytest.mark.parametrize("inside", ["", "sub", ".."])
def test_cache_folder_inside_the_report_folder_is_refused(tmp_path, inside):
    from coachnb.errors import CoachnbError

    data_dir, ds = make_data(tmp_path, REPS[:1])
    out = tmp_path / "reports"
    cache_dir = {"": out, "sub": out / AS_OF / "sub", "..": out / AS_OF / ".."}[inside]
    with pytest.raises(CoachnbError, match="must be outside the report folder"):
        batch(data_dir, ds, out, overview_notebook=None, cache_dir=cache_dir)
    assert not out.exists()


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, float("nan"), -5, 0, 0.0, "10", True, 10 * 24 * 3600])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused_up_front(tmp_path, timeout):
    from coachnb.errors import CoachnbError

    data_dir, ds = make_data(tmp_path, REPS[:1])
    with pytest.raises(CoachnbError, match="--timeout must be"):
        batch(data_dir, ds, tmp_path / "reports", timeout=timeout)
    assert not (tmp_path / "reports").exists()


def test_links_at_the_logs_folder_or_lock_are_refused_with_a_message(tmp_path, capsys):
    from coachnb.errors import CoachnbError

    evil_id, accented = "R\x1b[2J9", "Zoë"
    data_dir, ds = make_data(tmp_path, REPS[:2] + [(evil_id, "Mallory\x1b[31m", "West"), (accented, "Zoë", "West")])
    out = tmp_path / "reports"
    cache_dir = cache(out)
    outside = tmp_path / "outside"
    outside.mkdir()
    (cache_dir).mkdir(parents=True)
    (cache_dir / "logs").symlink_to(outside, target_is_directory=True)
    result = batch(data_dir, ds, out)                 # no exception: every report is refused, with its reason
    assert not result.ok and {e["status"] for e in result.reports} == {"failed"}
    assert all(e["error"].startswith("refused: in the cache folder, logs is a symbolic link;")
               and str(tmp_path) not in e["error"] for e in result.reports)  # no local folder names in the index
    assert "refused" in result.overview["error"] and not list(outside.iterdir())
    err = capsys.readouterr().err
    assert "\x1b" not in err and "R\\x1b[2J9" in err and "Zoë" in err  # progress lines escaped, Unicode kept
    assert len(manifest(out)["reports"]) == 4

    (cache_dir / "logs").unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (cache_dir / ".coachnb.lock").unlink()  # the lock file stays between runs; a link takes its place
    (cache_dir / ".coachnb.lock").symlink_to(victim)
    with pytest.raises(CoachnbError, match="symbolic link"):
        batch(data_dir, ds, out)
    assert victim.read_text(encoding="utf-8") == "precious"   # opening the lock would have truncated it


@pytest.mark.parametrize("link", [AS_OF, ".cache", f".cache/{AS_OF}"])
def test_a_report_or_cache_folder_that_is_a_link_is_refused_before_anything_is_written(tmp_path, link):
    from coachnb.errors import CoachnbError

    data_dir, ds = make_data(tmp_path, REPS[:1])
    out, elsewhere = tmp_path / "reports", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    (out / link).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CoachnbError, match=f"in {out}, {re.escape(link.split('/')[0])}.* is a symbolic link"):
        batch(data_dir, ds, out)
    assert not list(elsewhere.iterdir())


def test_workers_exit_quietly_when_the_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import time

    import nbformat

    data_dir, _ = make_data(tmp_path, REPS[:3])
    started = tmp_path / "started"
    nb = nbformat.read(FIXTURES / "rep_report.ipynb", as_version=4)
    # the report outlives the parent: its worker then sends the result into a closed pipe (three reps: a
    # pool; one or two would render in the parent itself)
    nb.cells.insert(2, nbformat.v4.new_code_cell(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
                                                 "time.sleep(3)"))
    notebook = tmp_path / "slow.ipynb"
    nbformat.write(nb, notebook)
    script = ("from pathlib import Path\nfrom coachnb.batch import run_batch\nfrom tests.test_batch import REPS, make_data\n"
              f"data_dir, ds = make_data(Path({str(tmp_path)!r}), REPS[:3])\n"
              f"run_batch(data_dir, {AS_OF!r}, out={str(tmp_path / 'reports')!r}, notebook={str(notebook)!r}, "
              "dataset=ds, overview_notebook=None, jobs=1, progress=False)\n")
    stderr_path = tmp_path / "stderr.txt"
    repo = Path(__file__).resolve().parent.parent
    with open(stderr_path, "w", encoding="utf-8") as stderr:  # a file, as a terminal would: it outlives the parent
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), stderr_path.read_text(encoding="utf-8")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker outlived its killed parent by 30 s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    text = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in text and "BrokenPipe" not in text, text


def test_a_report_process_result_is_read_back_as_checked_json_never_unpickled():
    from coachnb.batch import _result_from_json

    good = {"status": "ok", "html": "<p>x</p>", "ipynb": "{}", "error": None, "failed_cell": None, "traceback": "",
            "stderr": "", "duration_s": 0.4, "pid": 12}
    assert _result_from_json(json.dumps(good)) == good
    for bad in ("\x80\x04K.", "not json", json.dumps([1, 2]), json.dumps({**good, "html": 5}),
                json.dumps({**good, "status": None})):
        r = _result_from_json(bad)
        assert r["status"] == "failed" and "result" in r["error"]
    import coachnb.batch as batch_module

    assert not hasattr(batch_module, "pickle")  # the module doesn't even import it


def test_workers_never_run_another_copy_of_coachnb_than_the_parent(tmp_path):
    import shutil
    import subprocess

    import coachnb.batch as batch_module

    # the current folder holds another coachnb (a checkout): the forkserver, which imports with the current
    # folder first, would load it; the pool notices and spawns its workers with the parent's search path
    checkout = tmp_path / "checkout"
    shutil.copytree(Path(batch_module.__file__).parent, checkout / "coachnb",
                    ignore=shutil.ignore_patterns("__pycache__"))
    marker = checkout / "coachnb" / "batch.py"
    marker.write_text(marker.read_text(encoding="utf-8").replace(
        "def execute_task(task: dict) -> dict:", "def execute_task(task: dict) -> dict:\n    raise SystemExit(3)\n\n\n"
        "def _unused(task: dict) -> dict:", 1), encoding="utf-8")
    data_dir, _ = make_data(tmp_path, REPS[:3])
    script = tmp_path / "scripts" / "run.py"
    script.parent.mkdir()
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "import coachnb.batch as b\nfrom coachnb.batch import run_batch\nfrom tests.test_batch import REPS, make_data\n"
        "if __name__ == '__main__':  # spawned workers import this script\n"
        f"    data_dir, ds = make_data(Path({str(tmp_path)!r}), REPS[:3])\n"
        f"    r = run_batch(data_dir, {AS_OF!r}, out={str(tmp_path / 'reports')!r}, "
        f"notebook={str(FIXTURES / 'rep_report.ipynb')!r}, dataset=ds, overview_notebook=None, jobs=2, progress=False)\n"
        "    print(r.ok, b.pool_start_method(), b.__file__)\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=checkout, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok, method, module = proc.stdout.split()
    assert ok == "True" and method == "spawn" and not module.startswith(str(checkout))


def test_a_report_process_message_is_checked_before_the_parent_acts_on_it():
    from coachnb.batch import _checked_message

    # the parent removes a killed worker's scratch folder: only one the engine could have made is accepted
    ready = _checked_message({"ready": True, "pid": 7, "scratch": "/home/someone"})
    assert ready["ready"] is True and ready["scratch"] is None
    own = "/tmp/coachnb-ipython-abc123"
    assert _checked_message({"ready": True, "pid": 7, "scratch": own})["scratch"] == own
    bad = _checked_message({"status": "ok", "html": 5})
    assert bad["status"] == "failed" and "not a report's" in bad["error"]
    good = {"status": "ok", "html": "<p>x</p>", "ipynb": "{}", "error": None, "failed_cell": None, "traceback": "",
            "stderr": "", "duration_s": 0.4, "pid": 12}
    assert _checked_message(good) == good


def test_a_forkserver_that_dies_on_its_imports_leaves_the_run_to_spawned_workers(tmp_path):
    import subprocess

    (tmp_path / "boom_at_import.py").write_text("raise RuntimeError('broken module')\n", encoding="utf-8")
    data_dir, _ = make_data(tmp_path, REPS[:3])
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "import coachnb.batch as b\nfrom tests.test_batch import REPS, make_data\n"
        "b.FORKSERVER_PRELOAD = b.FORKSERVER_PRELOAD + ('boom_at_import',)  # the server dies importing it\n"
        "if __name__ == '__main__':  # spawned workers import this script\n"
        f"    data_dir, ds = make_data(Path({str(tmp_path)!r}), REPS[:3])\n"
        f"    r = b.run_batch(data_dir, {AS_OF!r}, out={str(tmp_path / 'reports')!r}, "
        f"notebook={str(FIXTURES / 'rep_report.ipynb')!r}, dataset=ds, overview_notebook=None, jobs=2, progress=False)\n"
        "    print(r.ok, len(r.reports))\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "3"]
    # the dying server's own traceback is on stderr (as a spawned worker's would be); nothing of the run's
    assert proc.stderr.count("Traceback") == 1 and "multiprocessing/forkserver.py" in proc.stderr, proc.stderr[-3000:]


# --------------------------------------------------------------------------- file names


def test_report_files_are_readable_per_manager_and_collision_free():
    reps = [dict(rep_id="R1", name="Alex Kim", manager="Maya Chen"), dict(rep_id="R2", name="alex kim", manager="Maya Chen"),
            dict(rep_id="R3", name="Alex Kim", manager="Ravi Rao"), dict(rep_id="R4", name="", manager=""),
            dict(rep_id="R5", name="Bo", manager="index.html")]
    files = report_files(reps, "2026-11-23")
    assert files[("R3", "manager")] == "Ravi Rao/Alex Kim — coaching report 2026-11-23.html"  # alone in its folder
    assert files[("R3", "rep")] == "Ravi Rao/pre-reads to send/Alex Kim — pre-read 2026-11-23.html"
    assert files[("R1", "manager")] == "Maya Chen/Alex Kim (R1) — coaching report 2026-11-23.html"
    assert files[("R2", "manager")] == "Maya Chen/alex kim (R2) — coaching report 2026-11-23.html"
    assert files[("R4", "manager")] == "No manager/R4 — coaching report 2026-11-23.html"
    assert files[("R5", "manager")].startswith("index.html_/")  # never the overview's own file
    # unique on a case-insensitive file system, and the same whichever reps a run renders
    assert len({f.casefold() for f in files.values()}) == len(files)
    assert report_files(reps[2:], "2026-11-23")[("R3", "manager")] == files[("R3", "manager")]
    ids_by_case = [dict(rep_id="ab", name="Jo", manager="M"), dict(rep_id="AB", name="Jo", manager="M")]
    assert len({f.casefold() for f in report_files(ids_by_case, "2026-11-23").values()}) == 4


def test_a_renamed_rep_gets_a_new_page_and_the_old_one_goes(tmp_path):
    data_dir, ds = make_data(tmp_path, REPS[1:3])
    out = tmp_path / "reports"
    assert batch(data_dir, ds, out, overview_notebook=None).ok
    report_dir = out / AS_OF
    old_page = report_dir / page("R2")
    assert old_page.is_file()

    renamed = [("R2", "Bob", "West"), REPS[2]]
    _, ds2 = make_data(tmp_path, renamed, fingerprint="data-v2")
    failed = batch(data_dir, ds2, out, notebook="chaos", overview_notebook=None, reps=["R2"], timeout=3)
    entry = {e["rep_id"]: e for e in failed.reports}["R2"]
    assert entry["status"] == "failed" and entry["html"] == page("R2") and old_page.is_file()  # the last good one

    assert batch(data_dir, ds2, out, overview_notebook=None, reps=["R2"]).ok
    new_page = report_dir / f"Maya/Bob — coaching report {AS_OF}.html"
    assert new_page.is_file() and not old_page.exists()
    assert {e["html"] for e in manifest(out)["reports"]} == {f"Maya/Bob — coaching report {AS_OF}.html", page("R3")}

    _, ds3 = make_data(tmp_path, [("R2", "Bobby", "West"), REPS[2]], fingerprint="data-v3")
    new_page.write_text("edited by hand", encoding="utf-8")  # not as the run wrote it: not ours to remove
    assert batch(data_dir, ds3, out, overview_notebook=None, reps=["R2"]).ok
    assert new_page.read_text(encoding="utf-8") == "edited by hand"
