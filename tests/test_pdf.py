"""coachnb.pdf: one PDF beside each report page, printed by headless Chromium, never a partial file.

Without a browser the error says what to install and nothing is written. With one, each PDF has a
sane number of pages on the paper asked for (the overview in landscape), and its text (read
with pypdf where the venv has it) holds every column of the overview and every rep's name.
"""
from __future__ import annotations

import os
import re
import stat
import unicodedata

import pandas as pd
import pytest

from coachnb.batch import run_batch
from coachnb.pdf import PAPER_INCHES, PdfError, find_browser, pdf_path, write_pdfs

from .cdp import require_chromium

AS_OF = "2026-11-23"
OVERVIEW_COLUMNS = ("rep", "needs a look", "team", "manager", "days since 1:1", "activity, last 4 weeks vs before",
                    "last commitment", "diagnosis", "did it move pipeline?", "last verdicts (start month)")


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


def media_boxes(pdf: bytes) -> set:
    return {tuple(round(float(x)) for x in m.split()) for m in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf)}


# --------------------------------------------------------------------------- without a browser


def test_no_browser_is_a_clear_error_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("COACHNB_CHROMIUM", raising=False)
    (tmp_path / "r1.html").write_text("<p>hi</p>", encoding="utf-8")
    with pytest.raises(PdfError, match=r"needs headless Chromium.*apt-get install chromium.*COACHNB_CHROMIUM"):
        find_browser()
    with pytest.raises(PdfError, match="needs headless Chromium"):
        write_pdfs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.html"]


def test_a_browser_named_but_missing_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COACHNB_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(PdfError, match="COACHNB_CHROMIUM names .*no-such-chromium.*not an executable"):
        find_browser()


def fake_browser(tmp_path, body: str):
    exe = tmp_path / "fake-chromium"
    exe.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


@pytest.mark.parametrize("body", ["exit 3", "exec sleep 30 3<&- 4>&-", "exec sleep 30"])
def test_a_browser_that_dies_or_hangs_leaves_the_old_pdf_and_no_partial_file(tmp_path, monkeypatch, body):
    monkeypatch.setattr("coachnb.pdf.PAGE_TIMEOUT", 2.0)
    (tmp_path / "r1.html").write_text("<p>hi</p>", encoding="utf-8")
    (tmp_path / "r1.pdf").write_bytes(b"%PDF old")
    with pytest.raises(PdfError, match=r"r1\.html: Chromium (closed|did not answer)"):
        write_pdfs(tmp_path, executable=fake_browser(tmp_path, body))
    assert (tmp_path / "r1.pdf").read_bytes() == b"%PDF old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_symbolic_link_is_never_printed_or_written_through(tmp_path):
    (tmp_path / "r1.html").write_text("<p>hi</p>", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere.pdf"
    elsewhere.write_bytes(b"keep")
    (tmp_path / "r1.pdf").symlink_to(elsewhere)
    with pytest.raises(PdfError, match="r1.html: a symbolic link is in the way"):
        write_pdfs(tmp_path, pages=["r1.html"], executable="/bin/false")
    assert elsewhere.read_bytes() == b"keep"
    # a manager's folder that is a link to somewhere else: its pages are neither printed nor written beside
    target = tmp_path / "target"
    target.mkdir()
    (target / "r2.html").write_text("<p>hi</p>", encoding="utf-8")
    (tmp_path / "Maya").symlink_to(target)
    with pytest.raises(PdfError, match="r2.html: a symbolic link is in the way"):
        write_pdfs(tmp_path, pages=["Maya/r2.html"], executable="/bin/false")
    assert sorted(p.name for p in target.iterdir()) == ["r2.html"]


def test_unknown_paper_and_missing_page_are_refused(tmp_path):
    with pytest.raises(PdfError, match="no such page"):
        write_pdfs(tmp_path, pages=["nope.html"], executable="/bin/false")
    assert pdf_path(tmp_path / "r1.rep.html") == tmp_path / "r1.rep.pdf"


# --------------------------------------------------------------------------- with Chromium


@pytest.fixture(scope="module")
def printed(sample_dir, tmp_path_factory):
    """R001's two reports and the overview, printed on A4 and (in a copy) on Letter."""
    require_chromium()
    out = tmp_path_factory.mktemp("pdf-reports")
    result = run_batch(sample_dir, AS_OF, out=out, reps=["R001"], audience="both", jobs=1, timeout=300)
    assert result.ok
    a4 = write_pdfs(result.report_dir)
    names = [p.relative_to(result.report_dir) for p in sorted(result.report_dir.rglob("*.html"))]
    letter_dir = tmp_path_factory.mktemp("letter")
    for name in names:
        (letter_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (letter_dir / name).write_bytes((result.report_dir / name).read_bytes())
    letter = write_pdfs(letter_dir, paper="Letter")
    reps = pd.read_csv(sample_dir / "reps.csv", dtype=str, keep_default_na=False)
    return result.report_dir, a4, letter, reps




@pytest.mark.slow
@pytest.mark.browser
def test_one_pdf_per_page_with_a_sane_page_count(printed):
    folder, a4, letter, _ = printed
    html = sorted(folder.rglob("*.html"))
    # R001's two reports, the team overview and a page per manager (the demo has three)
    assert a4 == [pdf_path(h) for h in html] and len(html) == 3 + 3
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    for pdfs, paper in ((a4, "A4"), (letter, "Letter")):
        width, height = (round(x * 72) for x in PAPER_INCHES[paper])
        for p in pdfs:
            data = p.read_bytes()
            assert data.startswith(b"%PDF-")
            landscape = p.name == "index.pdf" or p.name.endswith(f"team overview {AS_OF}.pdf")
            assert (1 if landscape else 3) <= page_count(data) <= (5 if landscape else 9), (p.name, page_count(data))
            box = (0, 0, height, width) if landscape else (0, 0, width, height)
            assert all(abs(b[2] - box[2]) <= 1 and abs(b[3] - box[3]) <= 1 for b in media_boxes(data)), p.name


@pytest.mark.slow
@pytest.mark.browser
def test_printing_again_replaces_each_pdf_whole(printed):
    folder, a4, _, _ = printed
    before = {p: p.stat().st_ino for p in a4}
    again = write_pdfs(folder, pages=[p.with_suffix(".html").relative_to(folder) for p in a4])
    assert again == a4
    # a new file renamed over the old one (atomic), never the old file rewritten in place
    assert all(p.stat().st_ino != before[p] for p in again)
    assert all(page_count(p.read_bytes()) >= 1 for p in again)


def pdf_text(path) -> str:
    pypdf = pytest.importorskip("pypdf", reason="reading a PDF's text needs pypdf in the venv")
    text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))


@pytest.mark.slow
@pytest.mark.browser
def test_the_overview_pdf_keeps_every_column_and_every_rep(printed):
    folder, a4, letter, reps = printed
    for pdfs in (a4, letter):
        text = pdf_text(next(p for p in pdfs if p.name == "index.pdf"))
        # a header may wrap inside its cell: compare without the spaces a line break leaves
        squeezed = text.replace(" ", "")
        for column in OVERVIEW_COLUMNS:
            assert column.replace(" ", "") in squeezed, column
        for name in reps["name"]:
            assert unicodedata.normalize("NFKC", name).replace(" ", "") in squeezed, name
        assert "Page 1 of" in text and "Team overview, 2026-11-23" in text


@pytest.mark.slow
@pytest.mark.browser
def test_a_report_pdf_reads_as_the_report_with_a_running_head(printed):
    folder, a4, _, _ = printed
    report = next(p for p in a4 if p.name.endswith(f"coaching report {AS_OF}.pdf"))
    text = pdf_text(report)
    n = page_count(report.read_bytes())
    for heading in ("Since last time", "Process health", "Deals that have stalled", "Results, acknowledged"):
        assert heading in text, heading
    # every page carries who and when, and its number
    assert text.count("Zoë Ångström (R001): coaching report, 2026-11-23") == n
    assert f"Page {n} of {n}" in text
    assert os.path.getsize(report) > 50_000  # the charts are in it
    # tagged (a screen reader reads it in order), in English, with the headings as bookmarks
    import pypdf  # imported here: pdf_text above skipped the test already when it is missing
    reader = pypdf.PdfReader(str(report))
    assert "/StructTreeRoot" in reader.trailer["/Root"] and reader.trailer["/Root"].get("/Lang") == "en"

    def titles(outline):
        for item in outline:
            yield from titles(item) if isinstance(item, list) else [item.title]
    marks = list(titles(reader.outline))
    assert marks[0] == "Zoë Ångström" and "Since last time" in marks and "Results, acknowledged" in marks
