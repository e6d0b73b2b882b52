"""Render an executed notebook to one self-contained, script-free HTML report.

The template (``coachnb/templates/report``) shows outputs only: no code, no ``In [ ]`` /
``Out[3]:`` prompts, no stderr streams or warnings, no error tracebacks, no papermill error
banners, no JavaScript, no widgets. Images are embedded as ``data:`` URIs and a
Content-Security-Policy ``<meta>`` forbids scripts and every network request, so a report
can be opened from disk, e-mailed, or printed: the stylesheet reflows tables into stacked rows on
a phone and prints on A4 or Letter (the team overview in landscape) with the page's title and
page numbers on every page.

A report is only rendered from a notebook that ran without error: :func:`render_html` refuses a
notebook holding an error output, so a failed run can never be published by mistake.

One :class:`~nbconvert.exporters.HTMLExporter` is built per process and reused
(:func:`get_exporter`); rendering a report costs tens of milliseconds, not a subprocess.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from .errors import CoachnbError

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report"

#: Cells with one of these tags are left out of the report (papermill's error banner cells
#: carry the first; the others are the Jupyter Book / nbconvert conventions).
REMOVE_CELL_TAGS = frozenset({"papermill-error-cell-tag", "remove_cell", "remove-cell", "injected-parameters"})
REMOVE_OUTPUT_TAGS = frozenset({"remove_output", "remove-output"})


class RenderError(CoachnbError):
    """The notebook cannot be published (it holds an error, or is not a notebook)."""


@functools.lru_cache(maxsize=1)
def _css() -> str:
    return (TEMPLATES_DIR / TEMPLATE_NAME / "static" / "report.css").read_text(encoding="utf-8")


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string that holds only letters, digits, spaces and hex escapes.

    Every other character is written as ``\\<hex> ``, so no quote, backslash, newline or
    ``</style>`` from the data can end the string or the style sheet.
    """
    return '"' + "".join(ch if (ch.isascii() and ch.isalnum()) or ch == " " else f"\\{ord(ch):x} "
                         for ch in text) + '"'


@functools.lru_cache(maxsize=1)
def get_exporter():
    """The process's HTML exporter, configured for reports (built once, then reused)."""
    class ReportExporter(HTMLExporter):
        def _validate_preprocessor(self, nbc, preprocessor):
            # nbconvert validates the whole notebook after each of its ~11 preprocessors, which
            # only drop cells and outputs or merge streams: render_html validates it once instead
            pass

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    config.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    config.CoalesceStreamsPreprocessor.enabled = True
    exporter = ReportExporter(
        config=config,
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    return exporter


def first_error(nb) -> dict | None:
    """The first error output of ``nb`` with its cell, or ``None`` when the run succeeded.

    Returns
    -------
    dict or None
        ``{"cell_index", "ename", "evalue", "source"}``; ``SystemExit(0)`` is not an error
        (papermill's rule).
    """
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                    continue
                return {"cell_index": index, "ename": out.get("ename", ""), "evalue": out.get("evalue", ""),
                        "source": cell.get("source", "")}
    return None


def render_html(nb, title: str, language: str = "en") -> str:
    """Render an executed notebook to the report HTML.

    Parameters
    ----------
    nb : NotebookNode or str or path-like
        The executed notebook, or the path of an ``.ipynb`` file.
    title : str
        Text of the page ``<title>`` (escaped), also printed at the top of every page.
    language : str
        ``lang`` attribute of the page.

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    RenderError
        If the notebook holds an error output or papermill's error banner: failed runs are
        never published.
    """
    if isinstance(nb, (str, os.PathLike)):
        nb = nbformat.read(nb, as_version=4)
    error = first_error(nb)
    if error is not None:
        raise RenderError(f"refusing to render a failed run: cell {error['cell_index']} raised "
                          f"{error['ename']}: {error['evalue']}")
    if nb.get("metadata", {}).get("papermill", {}).get("exception"):
        raise RenderError("refusing to render a failed run: papermill recorded an exception")
    nbformat.validate(nb, relax_add_props=True)  # what nbconvert checked after every preprocessor
    resources = {"coachnb": {"title": title, "language": language, "css": _css(), "running_head": css_string(title)}}
    body, _ = get_exporter().from_notebook_node(nb, resources=resources)
    return body
