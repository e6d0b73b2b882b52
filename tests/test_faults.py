"""Faults around a batch: killed mid-run, read-only output, full disk, concurrent commitments.

Each test runs the real rep notebook (``coachnb run`` as a subprocess, or :func:`run_batch` in
this process where a fault is injected) on a small demo team, then checks what a manager would
find on disk: whole reports, a manifest that agrees with the files, clear messages.
"""
from __future__ import annotations

import csv
import errno
import html
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from coachnb.batch import report_files, run_batch
from coachnb.fsutil import safe_filename
from coachnb.demo import write_demo_data

AS_OF = "2026-11-23"
pytestmark = pytest.mark.slow


def coachnb_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "coachnb", *map(str, args)]


def env() -> dict:
    e = dict(os.environ)
    e.pop("COLUMNS", None)
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture(scope="module")
def small_team(tmp_path_factory) -> Path:
    """Six reps, 30 weeks: a full batch takes about 15 s on two cores."""
    return Path(write_demo_data(tmp_path_factory.mktemp("faults") / "data", reps=6, weeks=30, seed=5, end=AS_OF))


def copy_team(small_team: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(small_team, data)
    return data


class _Balance(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if tag not in self.stack:
            self.errors.append(f"stray </{tag}>")
            return
        while self.stack and self.stack.pop() != tag:  # HTML allows implied ends (</p>, </li>)
            pass


def assert_whole_html(path: Path) -> str:
    """The file is a complete HTML document: starts and ends as one, every element closed."""
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html"), path
    assert text.rstrip().endswith("</html>"), f"{path.name} is cut short: ...{text[-80:]!r}"
    p = _Balance()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (path.name, p.errors[:3], p.stack[:5])
    return text


def page_of(data: Path, rep_id: str, audience: str = "manager") -> str:
    """A rep's page below the report folder, named from the data's reps.csv."""
    reps = pd.read_csv(data / "reps.csv", dtype=str, keep_default_na=False)
    return report_files(reps[["rep_id", "name", "manager"]].to_dict("records"), AS_OF)[(rep_id, audience)]


def sent_files(report_dir: Path) -> set[str]:
    """Every file below the report folder, as a path relative to it."""
    return {p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file()}


def cache_of(report_dir: Path) -> Path:
    """The default cache folder of a report folder: ``<out>/.cache/<as_of>``."""
    return report_dir.parent / ".cache" / report_dir.name


def assert_consistent(report_dir: Path, expected_reps: set[str]) -> dict:
    """Manifest lists every rep as done, every listed file is whole, no partial or stray files."""
    manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    assert {f for f in sent_files(report_dir) if not f.endswith(".html")} == {"manifest.json"}
    entries = {e["rep_id"]: e for e in manifest["reports"]}
    assert set(entries) == expected_reps
    assert manifest["ok"] is True and manifest["overview"]["status"] == "ok"
    for e in entries.values():
        assert e["status"] in ("ok", "skipped"), e
        page = assert_whole_html(report_dir / e["html"])
        assert e["name"] in html.unescape(page)
        nb = nbformat.read(cache_of(report_dir) / e["ipynb"], as_version=4)
        nbformat.validate(nb)
        assert nb.cells[-1].get("outputs"), f"{e['ipynb']} was not executed to the end"
    assert_whole_html(report_dir / "index.html")
    listed = {e["html"] for e in entries.values()} | {"index.html"}
    assert {f for f in sent_files(report_dir) if f.endswith(".html")} == listed
    leftovers = [p.name for p in report_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    return manifest


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_batch_killed_at_a_random_point_then_resumed(small_team, tmp_path):
    data, out = copy_team(small_team, tmp_path), tmp_path / "reports"
    report_dir = out / AS_OF
    reps = set(pd.read_csv(data / "reps.csv", dtype=str)["rep_id"])
    rng = random.Random(20261123)
    after_reports, delay = rng.randint(1, len(reps) - 2), rng.uniform(0.0, 1.0)  # mid-batch, at a random moment
    proc = subprocess.Popen(coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out, "--jobs", 2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True)
    try:
        done = 0
        for line in proc.stderr:  # one progress line per finished report
            done += bool(re.match(r"\[\d+/\d+\] ", line))
            if done >= after_reports:
                break
        time.sleep(delay)
        assert proc.poll() is None, "the batch finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill -9 <pid>` would
        proc.wait(10)
        # orphaned workers notice the parent is gone and stop on their own
        deadline = time.monotonic() + 60
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(proc.pid), "worker processes outlived the killed batch"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()

    # what a reader finds right after the kill: every file under a final name is whole
    for page in report_dir.rglob("*.html"):
        assert_whole_html(page)
    for nb in cache_of(report_dir).glob("*.ipynb"):
        nbformat.validate(nbformat.read(nb, as_version=4))
    if (report_dir / "manifest.json").exists():
        json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))

    # a kill during a write leaves the writer's temporary file (fsutil's naming); plant one as it would be
    (report_dir / ".r001.html.k1ll3d.tmp").write_text("<!DOCTYPE html><html><body><p>half a rep", encoding="utf-8")
    rerun = subprocess.run(coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out, "--jobs", 2, "--resume"),
                           capture_output=True, text=True, env=env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    assert_consistent(report_dir, reps)
    # reports finished before the kill are not redone: the manifest is checkpointed as they finish
    redone = re.search(r"coachnb: (?:(\d+) ok)?(?:, )?(?:(\d+) skipped)? in", rerun.stderr)
    assert redone and int(redone.group(2) or 0) >= 1, rerun.stderr[-2000:]

    again = subprocess.run(coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out, "--jobs", 1, "--resume"),
                           capture_output=True, text=True, env=env(), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"coachnb: {len(reps)} skipped" in again.stderr  # nothing left to redo once complete
    assert_consistent(report_dir, reps)


def _drop_root_privileges() -> list[str]:
    """Prefix that makes root obey file permissions (in CI the tests run unprivileged anyway)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder would still be writable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable"]


@pytest.mark.parametrize("where", ["out", "report_dir"])
def test_read_only_output_folder_fails_with_a_clear_message(small_team, tmp_path, where):
    data, out = copy_team(small_team, tmp_path), tmp_path / "reports"
    locked = out if where == "out" else out / AS_OF  # a new folder, or the folder of an earlier run
    (locked / "logs").mkdir(parents=True) if where == "report_dir" else locked.mkdir()
    before = sorted(p.name for p in locked.rglob("*"))
    locked.chmod(0o555)
    try:
        proc = subprocess.run(_drop_root_privileges() + coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out,
                                                                    "--jobs", 1, "--reps", "R001"),
                              capture_output=True, text=True, env=env(), timeout=120)
    finally:
        locked.chmod(0o755)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(r"coachnb: cannot write reports to .*reports/2026-11-23: Permission denied", proc.stderr), \
        proc.stderr
    assert sorted(p.name for p in locked.rglob("*")) == before


def test_full_disk_fails_one_report_keeps_its_last_good_copy(small_team, tmp_path, monkeypatch, capsys):
    data, out = copy_team(small_team, tmp_path), tmp_path / "reports"
    report_dir = out / AS_OF
    reps = ["R001", "R002", "R003"]
    first = run_batch(data, AS_OF, out=out, reps=reps, jobs=2, overview_notebook=None, progress=False)
    assert first.ok
    html_name = page_of(data, "R002")
    good_html = (report_dir / html_name).read_bytes()

    real_fsync = os.fsync
    victim = re.compile(rf"/\.{re.escape(Path(html_name).name)}\.[^/]*\.tmp$")  # fsutil's temporary file for it

    def fsync(fd):  # the disk fills while R002's report is written (ext4 reports ENOSPC at fsync)
        if victim.search(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to map a file descriptor to its path")
    monkeypatch.setattr(os, "fsync", fsync)
    second = run_batch(data, AS_OF, out=out, reps=reps, jobs=2, progress=False)  # not resumed: all rerun
    monkeypatch.undo()

    assert not second.ok
    by_rep = {e["rep_id"]: e for e in second.reports}
    assert by_rep["R002"]["status"] == "failed"
    assert "No space left on device" in by_rep["R002"]["error"]
    assert by_rep["R002"]["stale_html"] is True and by_rep["R002"]["html"] == html_name
    assert (report_dir / html_name).read_bytes() == good_html
    assert all(by_rep[r]["status"] == "ok" for r in reps if r != "R002")
    assert second.overview["status"] == "ok"
    manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["ok"] is False
    assert [e["status"] for e in manifest["reports"]] == ["ok", "failed", "ok"]
    assert "No space left on device" in (cache_of(report_dir) / by_rep["R002"]["log"]).read_text(encoding="utf-8")
    assert not [p.name for p in report_dir.rglob("*.tmp")]
    err = capsys.readouterr().err
    assert "FAILED R002 (manager)" in err and "previous report kept" in err
    for rep in reps:
        assert_whole_html(report_dir / page_of(data, rep))

    # once there is space again, a resumed run redoes exactly the failed report
    third = run_batch(data, AS_OF, out=out, reps=reps, jobs=1, resume=True, overview_notebook=None, progress=False)
    assert third.ok
    assert {e["rep_id"]: e["status"] for e in third.reports} == {"R001": "skipped", "R002": "ok",
                                                                 "R003": "skipped"}


def test_commitments_added_while_a_batch_renders_are_all_kept(small_team, tmp_path):
    data, out = copy_team(small_team, tmp_path), tmp_path / "reports"
    before = pd.read_csv(data / "commitments.csv", dtype=str, keep_default_na=False)
    run = subprocess.Popen(coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out, "--jobs", 2),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    adds = []
    try:
        deadline = time.monotonic() + 120
        while not list((out / AS_OF).rglob("*.html")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # start adding once reports are being written
        for i in range(6):
            rep = f"R00{i + 1}"
            note = f'note {i}, with "quotes", <b>tags</b> and a comma 🚀'
            baseline = ["--baseline", "auto"] if i % 3 == 0 else ["--baseline", str(2 + i)]
            adds.append(subprocess.Popen(
                coachnb_cmd("commit", "add", data, "--rep", rep, "--metric", "calls_per_week", "--target", 40 + i,
                            *baseline, "--start", AS_OF, "--days", 28, "--note", note,
                            "--follow-up", f"ask me on day {i}"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()))
        results = [(p.communicate(timeout=180), p.returncode) for p in adds]
        run_out, run_err = run.communicate(timeout=300)
    finally:
        for p in adds + [run]:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (stdout, stderr), code in results:
        assert code == 0 and "added commitment K" in stdout, stderr

    after = pd.read_csv(data / "commitments.csv", dtype=str, keep_default_na=False)
    assert list(after.columns) == list(before.columns)
    assert len(after) == len(before) + 6
    assert after["commitment_id"].is_unique
    assert after.iloc[: len(before)].equals(before)  # history untouched
    new = after.iloc[len(before):]
    assert sorted(new["target"].astype(float)) == [40.0 + i for i in range(6)]
    for i in range(6):
        row = new[new["target"].astype(float) == 40.0 + i].iloc[0]
        assert row["rep_id"] == f"R00{i + 1}" and row["note"] == f'note {i}, with "quotes", <b>tags</b> and a comma 🚀'
    with open(data / "commitments.csv", newline="", encoding="utf-8") as fh:
        assert {len(r) for r in csv.reader(fh)} == {len(before.columns)}
    import coachnb.loading

    report = coachnb.loading.validate(data)
    assert report.ok, report.format()
    assert not list(data.glob(".commitments.*.tmp"))

    # the batch ran to the end and either rendered every report or said which failed and why
    assert "Traceback" not in run_err, run_err[-3000:]
    manifest = json.loads((out / AS_OF / "manifest.json").read_text(encoding="utf-8"))
    assert run.returncode == (0 if manifest["ok"] else 1)
    for e in manifest["reports"]:
        assert e["status"] == "ok" or (e["status"] == "failed" and e["error"] and f"FAILED {e['rep_id']}" in run_err)
        if e["status"] == "ok":
            assert_whole_html(out / AS_OF / e["html"])


# --------------------------------------------------------------------------- privacy of the .ipynb outputs


def test_executed_notebooks_hold_no_other_reps_identity(sample_dir, tmp_path):
    """The rep's own copy: its executed .ipynb is an output too, and must be as private as the HTML."""
    result = run_batch(sample_dir, AS_OF, out=tmp_path / "reports", audience="rep", jobs=2, overview_notebook=None,
                       progress=False, timeout=300)
    assert result.ok, result.failed
    reps = pd.read_csv(sample_dir / "reps.csv", dtype=str, keep_default_na=False)
    opps = pd.read_csv(sample_dir / "opportunities.csv", dtype=str, keep_default_na=False)
    names = dict(zip(reps["rep_id"], reps["name"]))
    assert len(result.reports) == len(names)
    for e in result.reports:
        path = cache_of(result.report_dir) / e["ipynb"]
        assert path.name.endswith(".rep.ipynb")
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(nb, ensure_ascii=False)  # \u escapes decoded, as a reader sees it
        # what came from the data: outputs and the injected parameters (the template's own
        # parameters cell holds the notebook's default rep id, which says nothing about that rep)
        produced = json.dumps([c.get("outputs", []) for c in nb["cells"]]
                              + ["".join(c["source"]) for c in nb["cells"]
                                 if "injected-parameters" in c["metadata"].get("tags", [])], ensure_ascii=False)
        assert html.escape(names[e["rep_id"]]) in produced and e["rep_id"] in produced
        for other, name in names.items():
            if other != e["rep_id"]:
                for form in {name, html.escape(name), html.escape(name, quote=False)}:  # O'Connor, O&#x27;Connor
                    assert form not in text, f"{name} appears in {e['rep_id']}'s notebook"
                assert not re.search(rf'(?<![\w-]){re.escape(other)}(?![\w-])', produced), \
                    f"rep id {other} appears in {e['rep_id']}'s notebook"
        mine = set(opps.loc[opps["rep_id"] == e["rep_id"], "name"])
        theirs = set(opps.loc[opps["rep_id"] != e["rep_id"], "name"]) - mine
        leaked = [n for n in theirs if len(n) > 8 and (n in text or html.escape(n) in text)]
        assert not leaked, (e["rep_id"], leaked[:3])


def test_a_temporary_file_vanishing_from_the_data_folder_does_not_break_a_report(small_team, tmp_path, monkeypatch):
    from coachnb import report

    data = copy_team(small_team, tmp_path)
    ghost = data / ".commitments.k1ll3d.tmp"
    ghost.write_text("commitment_id\n", encoding="utf-8")
    real_is_file = Path.is_file

    def is_file(self):  # the writer renames its temporary file right after the listing saw it
        seen = real_is_file(self)
        if self.name == ghost.name:
            self.unlink(missing_ok=True)
        return seen

    monkeypatch.setattr(Path, "is_file", is_file)
    r = report.rep_report(data, "R001", AS_OF)
    assert r.header.name


# --------------------------------------------------------------------------- planted files in the report and cache folders


class _Payload:
    """Unpickling this creates ``path``: the marker that code from a planted file ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _local_references(page: str) -> list[str]:
    """Every href/src of a page that is not an embedded image, an anchor or a web address."""
    refs = re.findall(r'''(?:href|src)\s*=\s*["']([^"']*)["']''', page, flags=re.I)
    return [r for r in refs if not re.match(r"(data:|#|https?://|mailto:)", r, flags=re.I)]


def test_planted_links_and_pickles_run_nothing_and_the_batch_goes_on(small_team, tmp_path):
    from coachnb.loading import input_fingerprint
    from coachnb.store import MARKER, store_path

    data, out = copy_team(small_team, tmp_path), tmp_path / "reports"
    report_dir, cache_dir = out / AS_OF, cache_of(out / AS_OF)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    fingerprint = input_fingerprint(data)
    # a store where an older coachnb kept it (in the report folder), one where it is kept now, and loose pickles
    for root in (report_dir, cache_dir):
        store = store_path(root, fingerprint, AS_OF, 13)
        store.mkdir(parents=True)
        (store / "meta.pkl").write_bytes(payload)
        (store / MARKER).write_text(json.dumps({"format": 1}), encoding="utf-8")
        (root / "meta.pkl").write_bytes(payload)
    victim, victim_log = tmp_path / "victim.html", tmp_path / "victim.log"
    victim.write_text("precious", encoding="utf-8")
    victim_log.write_text("precious log", encoding="utf-8")
    linked, dangling = report_dir / page_of(data, "R001"), report_dir / page_of(data, "R003", "rep")
    for planted in (linked, dangling):
        planted.parent.mkdir(parents=True, exist_ok=True)
    linked.symlink_to(victim)                                                            # a page that is a link
    dangling.symlink_to(tmp_path / "dangling.html")                                      # to nothing
    (cache_dir / "logs").mkdir()
    (cache_dir / "logs" / f"{safe_filename('R002')}.log").symlink_to(victim_log)        # a log that is a link

    proc = subprocess.run(coachnb_cmd("run", data, "--as-of", AS_OF, "--out", out, "--jobs", 2, "--audience", "both"),
                          capture_output=True, text=True, env=env(), timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not marker.exists(), "a planted pickle was loaded"
    assert victim.read_text(encoding="utf-8") == "precious" and victim_log.read_text(encoding="utf-8") == "precious log"
    assert not (tmp_path / "dangling.html").exists()
    manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    status = {(e["rep_id"], e["audience"]): e for e in manifest["reports"]}
    refused = {("R001", "manager"), ("R002", "manager"), ("R003", "rep")}
    for key, e in status.items():
        if key in refused:
            assert e["status"] == "failed" and e["error"].startswith("refused: ") and "symbolic link" in e["error"]
            assert str(tmp_path) not in e["error"]  # the error reaches the team overview, which is sent
            assert f"FAILED {key[0]} ({key[1]})" in proc.stderr
        else:
            assert e["status"] == "ok", e
            page = assert_whole_html(report_dir / e["html"])
            if key[1] == "rep":  # the rep's pre-read is sent on its own: it links nothing beside it
                assert not _local_references(page), _local_references(page)[:5]
                assert ".cache" not in page and ".features" not in page and str(cache_dir) not in page
    assert status[("R001", "manager")]["error"].startswith(
        f"refused: in the report folder, {page_of(data, 'R001')} is a symbolic link")
    assert len(status) == 12 and manifest["overview"]["status"] == "ok"
    assert linked.is_symlink()  # refused, left as found
    # what an older coachnb kept in the report folder is named (never deleted), so it is not sent unknowingly
    assert re.search(r"still holds what an older coachnb kept there \(\.features\)", proc.stderr), proc.stderr[-2000:]
