"""Reports on a Dask cluster (distributed.LocalCluster, 2 worker processes): warm report processes per worker
with the local pool's isolation (fresh namespace per report, a crash or a hang fails only its report)."""
import os
import re
from pathlib import Path

import pytest

from coachnb.batch import run_batch
from coachnb.demo import write_demo_data
from tests.test_batch import FIXTURES, REPS, make_data

distributed = pytest.importorskip("distributed")

AS_OF = "2026-11-23"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c, distributed.Client(c) as client:
        yield client


def _pid(cache_dir: Path, entry: dict) -> int:
    return int(re.search(r"^worker process: (\d+)$", (cache_dir / entry["log"]).read_text(encoding="utf-8"),
                         re.M).group(1))


def test_a_demo_team_on_two_dask_workers_equals_the_local_run_from_warm_processes(tmp_path, cluster):
    data = write_demo_data(tmp_path / "data", reps=4, weeks=30, seed=3, end=AS_OF)
    local = run_batch(data, AS_OF, out=tmp_path / "local", audience="both", jobs=2, progress=False, timeout=300)
    dask_workers = cluster.run(lambda: __import__("os").getpid())
    remote = run_batch(data, AS_OF, out=tmp_path / "dask", audience="both", scheduler=cluster, progress=False,
                       timeout=300)
    assert local.ok and remote.ok, (local.failed, remote.failed)
    assert len(remote.reports) == 8 and remote.overview["status"] == "ok"
    names = {e["rep_id"]: e["name"] for e in remote.reports}
    for e in remote.reports:
        page = (remote.report_dir / e["html"]).read_bytes()
        # the same bytes as the local pool's page: nothing of an earlier report in the process shows
        assert page == (local.report_dir / e["html"]).read_bytes(), e["html"]
        text = page.decode("utf-8")
        assert all(name not in text for rep, name in names.items() if rep != e["rep_id"])
    cache_dir = tmp_path / "dask" / ".cache" / AS_OF
    pids = {_pid(cache_dir, e) for e in remote.reports}
    # warm: at most one report process per Dask worker thread rendered the eight reports, none in a Dask worker
    assert 1 <= len(pids) <= 2 and not pids & set(dask_workers.values())
    again = run_batch(data, AS_OF, out=tmp_path / "dask", audience="manager", reps=[e["rep_id"] for e in
                      remote.reports][:3], scheduler=cluster, progress=False, timeout=300)
    assert again.ok and {_pid(cache_dir, e) for e in again.reports} <= pids  # the next run finds them warm
    assert cluster.run(lambda: __import__("os").getpid()) == dask_workers
    # and one rep rendered in this very process (both audiences, one after the other): the same pages
    rep_id = remote.reports[-1]["rep_id"]
    here = run_batch(data, AS_OF, out=tmp_path / "here", audience="both", reps=[rep_id], progress=False, timeout=300)
    assert here.ok and {_pid(tmp_path / "here" / ".cache" / AS_OF, e) for e in here.reports} == {os.getpid()}
    for e in here.reports:
        assert (here.report_dir / e["html"]).read_bytes() == (local.report_dir / e["html"]).read_bytes(), e["html"]


def test_failures_on_dask_stay_with_their_report_and_the_workers_go_on(tmp_path, cluster):
    data_dir, ds = make_data(tmp_path, REPS[:4])
    dask_workers = cluster.run(lambda: __import__("os").getpid())
    result = run_batch(data_dir, "2026-01-05", out=tmp_path / "reports", notebook=FIXTURES / "chaos.ipynb",
                       overview_notebook=None, dataset=ds, scheduler=cluster, progress=False, timeout=3)
    by_rep = {e["rep_id"]: e for e in result.reports}
    assert by_rep["R1"]["status"] == "ok"
    assert by_rep["R2"]["error"] == "RuntimeError: boom for R2"
    assert "timed out after 3 s" in by_rep["R3"]["error"] and by_rep["R3"]["duration_s"] < 20
    assert "died (killed by SIGKILL)" in by_rep["R4"]["error"]
    # a fresh namespace per report: leak.ipynb fails a report that sees the previous report's variable
    leak = run_batch(data_dir, "2026-01-05", out=tmp_path / "leak", notebook=FIXTURES / "leak.ipynb",
                     overview_notebook=None, dataset=ds, scheduler=cluster, progress=False, timeout=60)
    assert leak.ok, leak.failed
    assert len({_pid(tmp_path / "leak" / ".cache" / "2026-01-05", e) for e in leak.reports}) < len(leak.reports)
    assert cluster.run(lambda: __import__("os").getpid()) == dask_workers  # no Dask worker was lost
