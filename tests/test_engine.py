"""The in-process papermill engine and the IPC kernel manager."""
import base64
import re
import threading
from pathlib import Path

import pytest

from coachnb.engine import ENGINE_NAME, InProcessEngine, IPCKernelManager  # noqa: I001  (before papermill on purpose)
import papermill
from papermill.exceptions import PapermillExecutionError

from coachnb.render import render_html

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
KERNEL = {"engine_name": None, "kernel_manager_class": IPCKernelManager}
INPROCESS = {"engine_name": ENGINE_NAME}
EVIL = "x'; import os; os.system('touch /tmp/pwned'); '\"\"\"\n__import__('os').system('touch /tmp/pwned')#\\"


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "reps.csv").write_text("rep_id,name,team,manager,hire_date\n"
                                "R1,Ana <b>Souza</b>,West,Maya,2024-01-01\n"
                                "00123,Bo,East & North,Maya,2024-01-01\n"
                                "R2,Cy,West,Maya,2024-01-01\n", encoding="utf-8")
    return d


def run(name, data_dir, engine, **params):
    params = {"rep_id": "R1", "data_dir": str(data_dir), **params}
    return papermill.execute_notebook(str(FIXTURES / f"{name}.ipynb"), None, parameters=params,
                                      progress_bar=False, cwd=str(FIXTURES), **engine)


def test_engine_is_registered_through_the_entry_point():
    from papermill.engines import papermill_engines

    assert papermill_engines.get_engine(ENGINE_NAME) is InProcessEngine


def test_in_process_outputs_have_the_kernel_shapes(data_dir):
    nb = run("rep_report", data_dir, INPROCESS)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    kinds = [(o.output_type, o.get("name")) for c in code for o in c.outputs]
    assert ("stream", "stdout") in kinds and ("stream", "stderr") in kinds
    figures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 1 and base64.b64decode(figures[0].data["image/png"]).startswith(b"\x89PNG")
    table = [o for c in code for o in c.outputs if o.output_type == "execute_result" and "text/html" in o.data]
    assert table and "<table" in table[0].data["text/html"]
    assert nb.metadata.language_info.name == "python"


def _normalized(html):
    return re.sub(r"\s+", " ", html)


def test_in_process_and_kernel_render_the_same_html(data_dir):
    html_kernel = render_html(run("rep_report", data_dir, KERNEL), title="t")
    html_inprocess = render_html(run("rep_report", data_dir, INPROCESS), title="t")
    assert "data:image/png;base64," in html_inprocess
    assert _normalized(html_inprocess) == _normalized(html_kernel)


def test_no_variable_leaks_from_one_rep_to_the_next(data_dir):
    run("leak", data_dir, INPROCESS, rep_id="R1")
    nb = run("leak", data_dir, INPROCESS, rep_id="00123")  # fails if R1's `leak` survived
    assert any("Report for Bo" in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_a_failing_cell_is_reported_like_papermill_does(data_dir):
    with pytest.raises(PapermillExecutionError) as info:
        run("flaky", data_dir, INPROCESS, rep_id="R2")
    err = info.value
    assert err.ename == "RuntimeError" and err.evalue == "boom for R2"
    assert 'raise RuntimeError(f"boom for {rep_id}")' in err.source


def test_execution_stops_at_the_first_error(data_dir, tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(PapermillExecutionError):
        papermill.execute_notebook(str(FIXTURES / "flaky.ipynb"), str(out), progress_bar=False,
                                   parameters={"rep_id": "nobody", "data_dir": str(data_dir)}, **INPROCESS)
    import nbformat

    nb = nbformat.read(out, as_version=4)
    later = [c for c in nb.cells if c.cell_type == "code" and "matplotlib" in c.source]
    assert later and later[0].execution_count is None and later[0].outputs == []


def test_parameters_keep_their_types(data_dir):
    nb = run("rep_report", data_dir, INPROCESS, rep_id="00123", lookback_weeks=8)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "Report for Bo ('00123'), 8 weeks" in text


@pytest.mark.parametrize("engine", [INPROCESS, KERNEL], ids=["inprocess", "kernel"])
def test_parameter_text_is_never_executed(data_dir, engine):
    marker = Path("/tmp/pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(PapermillExecutionError) as info:
        run("rep_report", data_dir, engine, rep_id=EVIL)
    assert info.value.ename == "LookupError" and repr(EVIL) in info.value.evalue  # arrived as one string
    assert not marker.exists()


def test_cell_timeout_in_process(data_dir):
    with pytest.raises(PapermillExecutionError) as info:
        papermill.execute_notebook(str(FIXTURES / "sleepy.ipynb"), None, progress_bar=False,
                                   parameters={"rep_id": "R2", "data_dir": str(data_dir)},
                                   execution_timeout=1, **INPROCESS)
    assert info.value.ename == "CellTimeoutError"


def test_ipc_kernels_start_in_parallel(data_dir):
    results, errors = [], []

    def one(i):
        try:
            results.append(run("rep_report", data_dir, KERNEL, rep_id="R1" if i % 2 else "00123"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 3


def test_ipc_kernel_manager_uses_unix_sockets_and_cleans_up():
    km = IPCKernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        info = km.get_connection_info()
        assert info["transport"] == "ipc"
        ipc_dir = Path(info["ip"]).parent
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kc.stop_channels()
        assert Path(f"{info['ip']}-{info['shell_port']}").exists()  # a Unix socket, not a TCP port
    finally:
        km.shutdown_kernel(now=True)
    assert not ipc_dir.exists()


def test_running_in_process_leaves_the_host_process_main_module_alone(data_dir):
    # IPython swaps in its own __main__; left there, multiprocessing can no longer spawn workers
    import sys

    main = sys.modules["__main__"]
    run("leak", data_dir, INPROCESS, rep_id="R2")
    assert sys.modules["__main__"] is main
    assert hasattr(sys.modules["__main__"], "__spec__")  # a real module, not IPython's stand-in
