"""The notebooks in notebooks/: parameterized for papermill, committed clean, runnable from the repository root.

nbval runs every notebook from its own folder in ``make test`` (``testpaths`` in pyproject.toml);
these tests add what nbval doesn't check: the parameters papermill describes, that nothing is
committed with outputs, and that papermill's command line runs the analyst's workbooks from the
repository root with their default parameters.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WORKBOOKS = ["explore_team", "did_it_move", "data_check", "coaching_record"]


def test_the_workbook_set_is_there():
    assert {p.stem for p in NOTEBOOKS} >= {"rep_report", "team_overview", *WORKBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_has_a_type_and_a_description(path):
    declared = papermill.inspect_notebook(str(path))
    assert "data_dir" in declared
    for name, p in declared.items():
        assert p["inferred_type_name"] in ("str", "int"), (name, p)
        assert p["help"], name
    assert declared["data_dir"]["default"] == '"data/sample"'  # found from the root and from notebooks/


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (path.name, cell.source[:60])


@pytest.mark.slow
@pytest.mark.parametrize("name", WORKBOOKS + ["rep_report"])
def test_papermill_runs_each_workbook_from_the_repository_root(repo_sample_dir, tmp_path, name):
    out = tmp_path / f"{name}.ipynb"
    extra = ["-p", "rep_id", "R003"] if name == "rep_report" else []
    done = subprocess.run([sys.executable, "-m", "papermill", f"notebooks/{name}.ipynb", str(out), "--no-progress-bar",
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert code[-1].outputs  # ran to the end
