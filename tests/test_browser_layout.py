"""Reports and the overview as a reader sees them in Chromium: phone, tablet, desktop and print.

At 360, 768 and 1280 px nothing scrolls sideways, no table, figure or text runs past the screen
or is cut off inside a scrolling box, every image has alt text that says something, and the
headings go down one level at a time. In print media every block of the page fits the paper's
width, and the PDF Chromium prints stays within a stated number of pages on A4 and on Letter.
Every chart's smallest text is 9 CSS px or more on screen and 8 pt on paper.
Screenshots are written to the test's temporary folder (look at them; they are not committed).
"""
from __future__ import annotations

import base64
import re

import pytest

from coachnb.batch import run_batch
from coachnb.pdf import PAPER_INCHES

from .cdp import Browser, require_chromium

AS_OF = "2026-11-23"
pytestmark = [pytest.mark.slow, pytest.mark.browser]
WIDTHS = (360, 768, 1280)
#: printed pages a page may take: a rep's report holds at most two commitments, a focus of two areas
#: and seven charts; the overview lists the demo's 24 reps in landscape
PAGE_BOUNDS = {"manager": (3, 9), "rep": (3, 9), "index": (1, 5)}
#: the width of the paper less the stylesheet's margins, in CSS px (96 a inch): portrait A4 for a
#: report, landscape Letter (the narrower landscape) for the overview
PRINT_WIDTH = {"manager": round((8.27 - 26 / 25.4) * 96), "rep": round((8.27 - 26 / 25.4) * 96),
               "index": round((11.0 - 22 / 25.4) * 96)}


@pytest.fixture(scope="module")
def pages(sample_dir, tmp_path_factory):
    """A manager's report, the rep's pre-read and the overview, rendered by the batch."""
    require_chromium()
    out = tmp_path_factory.mktemp("browser-reports")
    result = run_batch(sample_dir, AS_OF, out=out, reps=["R001"], audience="both", jobs=1, timeout=300)
    assert result.ok
    by_audience = {r["audience"]: result.report_dir / r["html"] for r in result.reports}
    return {"manager": by_audience["manager"], "rep": by_audience["rep"], "index": result.report_dir / "index.html"}


#: the smallest chart text a reader gets, in CSS px: on a phone, and printed (8 pt is 10.7 px)
MIN_CHART_TEXT_PX = {"screen": 9.0, "print": 8 * 96 / 72}
SVG_IMAGE = re.compile(r'<img [^>]*src="data:image/svg\+xml;base64,([^"]+)"')


def chart_text_px(page_html: str, rendered_widths: list[float]) -> list[float]:
    """Each chart's smallest text as the reader sees it (CSS px): its smallest font size scaled as it is shown.

    The charts are SVG whose text is text: a font size in the drawing's units, times the shown
    width over the drawing's width (its viewBox).
    """
    shown = []
    for data, width in zip(SVG_IMAGE.findall(page_html), rendered_widths):
        svg = base64.b64decode(data).decode("utf-8")
        drawn_width = float(re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) [\d.]+"', svg).group(1))
        sizes = [float(x) for x in re.findall(r"font-size: ([\d.]+)px", svg)]
        shown.append(min(sizes) * width / drawn_width)
    return shown


def test_chart_text_px_scales_the_smallest_font():
    svg = ('<svg width="360pt" viewBox="0 0 360 200"><text style="font-size: 12px">a</text>'
           '<text style="font-size: 10px">b</text></svg>')
    page = f'<img class="cnb-chart" src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}" alt="x">'
    assert chart_text_px(page, [180.0]) == [5.0] and chart_text_px(page, [720.0]) == [20.0]


@pytest.fixture(scope="module")
def browser(pages):
    with Browser() as b:
        yield b


def headings_in_order(levels: list[int]) -> bool:
    """One h1 first, and no heading more than one level below the one before it."""
    return bool(levels) and levels[0] == 1 and levels.count(1) == 1 and all(
        b <= a + 1 for a, b in zip(levels, levels[1:]))


def test_headings_in_order_is_a_real_check():
    assert headings_in_order([1, 2, 3, 3, 2, 3, 2])
    assert not headings_in_order([1, 3]) and not headings_in_order([2, 3]) and not headings_in_order([1, 2, 1])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["manager", "rep", "index"])
def test_readable_at_phone_tablet_and_desktop_width(pages, browser, kind, width, tmp_path):
    page = browser.open(pages[kind], width=width, height=900, full_page=True)
    (tmp_path / f"{kind}-{width}.png").write_bytes(page.screenshot)
    lay = page.layout
    assert lay["document"] <= lay["viewport"], f"scrolls sideways: {lay['document']} px wide at {lay['viewport']}"
    assert not lay["past"], lay["past"]
    assert not lay["clipped"], lay["clipped"]
    assert headings_in_order(lay["headings"]), lay["headings"]
    if kind == "index":
        assert page.images == 0 and "Zoë Ångström" in page.text
        # every column reaches the reader at every width: as a header, or as the label of a stacked value
        for column in ("needs a look", "days since 1:1", "diagnosis", "did it move pipeline?"):
            assert column in page.text.replace("\t", " ") or width < 1100, column
        return
    assert page.images >= 5 and page.broken_images == 0
    for alt in lay["alts"]:
        assert alt and len(alt) > 40 and "IPython" not in alt and re.search(r"\d", alt), alt
    assert all(w <= lay["viewport"] for w in lay["image_widths"])
    # every image is a chart drawn as SVG, and none shows text under 9 CSS px at this width
    text_px = chart_text_px(pages[kind].read_text(encoding="utf-8"), lay["image_widths"])
    assert len(text_px) == page.images
    assert min(text_px) >= MIN_CHART_TEXT_PX["screen"], (width, text_px)


@pytest.mark.parametrize("kind", ["manager", "rep", "index"])
def test_print_media_keeps_every_block_within_the_paper(pages, browser, kind, tmp_path):
    page = browser.open(pages[kind], width=PRINT_WIDTH[kind], height=1100, media="print", full_page=True)
    (tmp_path / f"{kind}-print.png").write_bytes(page.screenshot)
    lay = page.layout
    assert lay["document"] <= lay["viewport"] and not lay["past"] and not lay["clipped"], lay
    if kind != "index":  # printed, a chart's smallest text is 8 pt or more
        text_px = chart_text_px(pages[kind].read_text(encoding="utf-8"), lay["image_widths"])
        assert len(text_px) == page.images and min(text_px) >= MIN_CHART_TEXT_PX["print"], text_px
    if kind == "index":  # the columns the old overview's PDF dropped are all on the paper
        for column in ("needs a look", "diagnosis", "did it move pipeline?"):
            assert column in page.text, column


@pytest.mark.parametrize("paper", sorted(PAPER_INCHES))
@pytest.mark.parametrize("kind", ["manager", "rep", "index"])
def test_printed_page_count_within_bounds(pages, browser, kind, paper, tmp_path):
    browser.open(pages[kind])
    pdf = browser.print_pdf(PAPER_INCHES[paper])
    (tmp_path / f"{kind}-{paper}.pdf").write_bytes(pdf)
    count = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    low, high = PAGE_BOUNDS[kind]
    assert low <= count <= high, f"{kind} on {paper}: {count} pages, expected {low} to {high}"
    boxes = {tuple(float(x) for x in m.split()) for m in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf)}
    width, height = (x * 72 for x in PAPER_INCHES[paper])
    landscape = kind == "index"
    expected = (height, width) if landscape else (width, height)
    assert all(abs(b[2] - expected[0]) < 2 and abs(b[3] - expected[1]) < 2 for b in boxes), (boxes, expected)
