"""The report HTML: outputs only, self-contained, no scripts, never from a failed run."""
import base64
import re
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from coachnb.engine import ENGINE_NAME
from coachnb.render import RenderError, get_exporter, render_html

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "reps.csv").write_text("rep_id,name,team,manager,hire_date\n"
                                "R1,Ana <script>alert(1)</script> Souza,West & Co,Maya,2024-01-01\n"
                                "R2,Bo,West,Maya,2024-01-01\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def html(data_dir):
    nb = papermill.execute_notebook(str(FIXTURES / "rep_report.ipynb"), None, progress_bar=False,
                                    parameters={"rep_id": "R1", "data_dir": str(data_dir)}, engine_name=ENGINE_NAME)
    return render_html(nb, title="Ana <Souza> & co: coaching report")


def test_head_is_self_contained_and_forbids_scripts(html):
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8"/>' in html
    csp = re.search(r'<meta content="([^"]*)" http-equiv="Content-Security-Policy"', html)
    assert csp and "default-src 'none'" in csp.group(1) and "img-src data:" in csp.group(1)
    assert "script-src" not in csp.group(1)
    assert "<title>Ana &lt;Souza&gt; &amp; co: coaching report</title>" in html
    assert "<script" not in html.lower()
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?:', html)
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", html).lower()
    assert "require.js" not in text and "requirejs" not in text and "mathjax" not in text
    assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_only_outputs_are_shown(html):
    assert "Report for Ana" in html                    # stdout
    assert "import matplotlib" not in html             # no code input
    assert "noise on stderr" not in html               # no stderr
    assert "a warning nobody should see" not in html   # no warnings
    assert not re.search(r"In\s*(&nbsp;|\s)*\[|Out\[", html)  # no prompts
    assert "Traceback" not in html


def test_text_from_the_data_stays_escaped(html):
    assert "<script>alert(1)</script>" not in html
    assert "Rep: Ana &lt;script&gt;alert(1)&lt;/script&gt; Souza" in html


def test_images_are_embedded_pngs(html):
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert sources
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_print_stylesheet(html):
    assert "@media print" in html and "size: A4" in html and "break-inside: avoid" in html


def test_a_failed_run_is_never_rendered(data_dir, tmp_path):
    out = tmp_path / "failed.ipynb"
    with pytest.raises(PapermillExecutionError):
        papermill.execute_notebook(str(FIXTURES / "flaky.ipynb"), str(out), progress_bar=False,
                                   parameters={"rep_id": "R2", "data_dir": str(data_dir)}, engine_name=ENGINE_NAME)
    with pytest.raises(RenderError, match="boom for R2"):
        render_html(out, title="x")
    nb = nbformat.read(out, as_version=4)
    for cell in nb.cells:  # even with the error output gone, papermill's own flag still refuses it
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
    with pytest.raises(RenderError):
        render_html(nb, title="x")


def test_the_exporter_is_built_once():
    assert get_exporter() is get_exporter()
