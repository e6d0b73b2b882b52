"""The report HTML: outputs only, self-contained, no scripts, never from a failed run."""
import base64
import html as html_module
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
from papermill.exceptions import PapermillExecutionError  # noqa: E402

from coachnb import display as show  # noqa: E402
from coachnb import overview_page as page  # noqa: E402
from coachnb.engine import ENGINE_NAME  # noqa: E402
from coachnb.formatting import Currency, fmt_money  # noqa: E402
from coachnb.render import RenderError, css_string, get_exporter, render_html  # noqa: E402

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
    assert "@media print" in html and "break-inside: avoid" in html and "break-after: avoid" in html
    # no fixed paper: A4 or Letter, whichever the printer has; the overview's pages turn landscape
    assert "size: A4" not in html and "@page wide { size: landscape" in html
    # the title (who and when) heads every printed page, with page numbers at the foot
    assert '@top-left { content: "Ana \\3c Souza\\3e  \\26  co\\3a  coaching report"' in html
    assert 'counter(page) " of " counter(pages)' in html


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    def luminance(colour):
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_ratio_is_wcags():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0 and contrast("#777777", "#ffffff") < 4.5


def test_every_text_colour_meets_wcag_aa_on_both_backgrounds(html):
    colours = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", html))
    assert {"ink", "muted", "accent", "flag", "bg-soft"} <= set(colours)
    for text in ("ink", "muted", "accent", "flag"):
        for background in ("#ffffff", colours["bg-soft"]):
            assert contrast(colours[text], background) >= 4.5, (text, background)
    # the running head and page numbers, and every other colour written as text colour
    for colour in set(re.findall(r"[^-]color: (#[0-9a-f]{6})", html)):
        assert contrast(colour, "#ffffff") >= 4.5, colour


def test_phone_stylesheet_stacks_tables(html):
    assert "@media screen and (max-width: 44rem)" in html and "content: attr(data-label)" in html


@pytest.mark.parametrize("title", ['"; } body { display: none } /*', "</style><script>alert(1)</script>",
                                   "a\\\nb\u2028c", "Zoë Ångström"])
def test_a_title_from_the_data_cannot_leave_its_css_string(title):
    quoted = css_string(title)
    inner = quoted[1:-1]
    assert quoted[0] == quoted[-1] == '"'
    assert re.fullmatch(r"(?:[A-Za-z0-9 ]|\\[0-9a-f]{1,6} )*", inner)
    # the escapes decode back to the title (CSS reads "\\<hex> " as one character)
    assert re.sub(r"\\([0-9a-f]{1,6}) ", lambda m: chr(int(m.group(1), 16)), inner) == title


# --------------------------------------------------------------------------- what display.py hands the template


@pytest.fixture
def shown(monkeypatch):
    """Every bundle coachnb.display displays, in order."""
    bundles = []
    monkeypatch.setattr(show, "display", lambda bundle, raw=False: bundles.append(bundle))
    return bundles


def test_a_table_aligns_text_left_and_numbers_right_and_labels_each_cell(shown):
    frame = pd.DataFrame({"deal": ["Acme <b>", "Zed"], "stage": ["Proposal", "Won"], "amount": [1200.0, 38707.0],
                          "share": ["24%", "–"], "note": ["26 weeks before", "3 after"]})
    show.table(frame, formats={"amount": lambda x: fmt_money(x, Currency("£"))}, caption="Deals")
    html, text = shown[0]["text/html"], shown[0]["text/plain"]
    heads = re.findall(r'<th scope="col"( class="num")?>([^<]*)</th>', html)
    assert [(name, bool(num)) for num, name in heads] == [
        ("deal", False), ("stage", False), ("amount", True), ("share", True), ("note", False)]
    assert '<td class="num" data-label="amount">£38,707</td>' in html
    assert '<td data-label="deal">Acme &lt;b&gt;</td>' in html and "<caption>Deals</caption>" in html
    assert text.splitlines()[0] == "Deals" and "Acme <b>" in text and "£38,707" in text
    assert "<" not in text.replace("Acme <b>", "")


@pytest.mark.parametrize("cells, numeric", [
    (["1.3 → 2.1", "0.38× (0.13× to 1.74×)"], True), (["£12,900", "-£5", "n/a"], True),
    (["12.900\u00a0€", "CHF\u00a012'900"], True), (["26 weeks before, 8 after", "1.2"], False),
    (["Discovery → Qualification"], False), (["–", ""], False),
])
def test_what_reads_as_a_number_column(cells, numeric):
    assert show.is_number_column(cells) is numeric


def test_every_output_has_real_text_and_a_chart_says_what_it_shows(shown):
    show.para("Activity <fell>.")
    weekly = pd.DataFrame({"week": pd.date_range("2026-08-24", periods=3, freq="W-MON"), "total": [10, 14, 12]})
    band = pd.DataFrame({"week": weekly["week"], "median": [11.0, 12.0, 13.0], "q25": [9.0] * 3, "q75": [15.0] * 3})
    fig, _ = plt.subplots()
    show.figure(fig, show.weekly_alt("activities per week", weekly, "total", band))
    assert shown[0]["text/plain"] == "Activity <fell>." and "&lt;fell&gt;" in shown[0]["text/html"]
    alt = shown[1]["text/plain"]
    assert shown[1]["image/svg+xml"].lstrip().startswith("<?xml") and "IPython" not in alt
    assert alt == ("Line chart of activities per week, week by week from 24 Aug 2026 to 07 Sep 2026: yours ran from "
                   "10 to 14, 12 on average, 12 in the last week. The team's median ran from 11 to 13, with the "
                   "middle half of the team shaded.")
    no_team = band.assign(median=float("nan"))
    assert show.weekly_alt("x", weekly, "total", no_team).endswith("No team figure is drawn.")


def test_chart_alt_texts_carry_the_charts_numbers():
    mix = show.mix_alt(pd.Series({"call": 0.4, "email": 0.6}), pd.Series({"call": 0.5, "email": float("nan")}))
    assert mix == ("Bar chart of the share of your activities by type, against the team's median share: "
                   "call 40% (team 50%); email 60%.")
    rep = pd.DataFrame({"step": ["A → B", "B → C"], "rate": [0.45, float("nan")], "low": [0.3, float("nan")],
                        "high": [0.6, float("nan")]})
    conv = show.conversion_alt(rep, pd.DataFrame({"step": ["A → B"], "median": [0.5]}))
    assert "A → B 45% (30% to 60%), team median 50%; B → C no deals finished this step" in conv
    days = show.days_alt(pd.DataFrame({"stage": ["A"], "median_days": [12.0]}),
                         pd.DataFrame({"stage": ["A", "B"], "median_days": [10.0, float("nan")]}))
    assert days.endswith("A 12 days (team 10); B n/a days.")
    weekly = pd.DataFrame({"week": pd.date_range("2026-08-24", periods=3, freq="W-MON"), "value": [4, 6.5, 7]})
    progress = show.progress_alt("calls per week", weekly, 7, 4.5, pd.Timestamp("2026-08-31"), pd.Timestamp("2026-09-30"))
    assert progress == ("Bar chart of calls per week each week from 24 Aug 2026 to 07 Sep 2026: 4, 6.5, 7; target 7, "
                        "before the commitment 4.5; the commitment period, 31 Aug 2026 to 30 Sep 2026, is shaded.")


def test_the_overview_table_right_aligns_its_numbers_and_flags_in_words(shown):
    from types import SimpleNamespace

    reps = pd.DataFrame([
        {"name": "Ana <b>", "team": "West", "manager": "Maya", "days_since_1to1": 40.0, "overdue": True,
         "activity_trend": 0.92, "stalled_deals": 5, "weakest_step": "A → B", "commitment": "calls per week",
         "diagnosis": "Not kept", "verdict": "moved", "q_value": 0.012, "report": "r1 x.html"},
        {"name": "Bo", "team": "West", "manager": "Maya", "days_since_1to1": float("nan"), "overdue": False,
         "activity_trend": float("nan"), "stalled_deals": 0, "weakest_step": None, "commitment": None,
         "diagnosis": None, "verdict": None, "q_value": float("nan"), "report": None},
    ])
    page.overview_table(SimpleNamespace(reps=reps, fdr_note=""))
    html, text = shown[0]["text/html"], shown[0]["text/plain"]
    numeric = dict((name, bool(num)) for num, name in re.findall(r'<th scope="col"( class="num")?>([^<]*)</th>', html))
    assert [h for h, num in numeric.items() if num] == ["days since 1:1", "activity, last 4 weeks vs before"]
    assert '<td data-label="rep"><a href="r1%20x.html">Ana &lt;b&gt;</a></td>' in html
    # overdue is said in words, not by colour alone
    assert '<td class="num" data-label="days since 1:1"><span class="cnb-flag">40 (overdue)</span></td>' in html
    # the adjusted p-value in words: no statistical jargon on a manager's page
    assert '<td data-label="did it move pipeline?">moved (unlikely to be chance)</td>' in html
    assert "q-value" not in html
    assert "Ana <b>" in text and "40 (overdue)" in text


def test_the_alt_text_reaches_the_page(data_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(b"\x89PNG fake").decode(),
                              "text/plain": 'Bar chart of "calls" <per> week'})])])
    page = render_html(nb, title="t")
    assert re.search(r"""alt=(['"])Bar chart of (&quot;|")calls(&quot;|") &lt;per&gt; week\1""", page)


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


# --------------------------------------------------------------------------- the report's charts as drawn


def test_a_chart_is_svg_with_text_from_the_data_escaped_and_the_same_bytes_each_time(shown):
    from coachnb import plots

    plots.use_style()
    mix = pd.Series({"<script>alert(1)</script>": 0.3, 'calls & "$5$"': 0.7})
    for _ in range(2):
        show.figure(plots.activity_mix(mix, mix), "alt")
    svg = shown[0]["image/svg+xml"]
    assert svg == shown[1]["image/svg+xml"]  # ids salted with a constant, no date: a digest can compare it
    # escaped as XML, and drawn literally as text (not mathtext, not paths); a label this long is
    # wrapped onto two lines, each a text element of its own
    assert "<script" not in svg and "&lt;script&gt;" in svg
    texts = [html_module.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert "<script>alert(1)</script>" in "".join(texts) and 'calls & "$5$"' in texts
    assert not re.search(r'href="(?!#)', svg) and "<dc:date>" not in svg


def chart_texts(fig):
    """(text, its box in pixels) of every text a drawn figure shows: tick labels only within the axes' view."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks, shown = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update({id(tick.label1), id(tick.label2)})
                if tick.label1.get_visible() and lo - 1e-9 <= tick.get_loc() <= hi + 1e-9 and tick.label1.get_text():
                    shown.append(tick.label1)
    shown += [t for t in fig.findobj(Text) if id(t) not in ticks and t.get_visible() and t.get_text().strip()]
    return [(t, t.get_window_extent(renderer)) for t in shown]


def overlap(a, b, slack: float = 1.0) -> bool:
    """Whether two pixel boxes overlap by more than ``slack`` pixels each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > slack and min(a.y1, b.y1) - max(a.y0, b.y0) > slack


def test_overlap_is_a_real_check():
    from matplotlib.transforms import Bbox

    box = Bbox.from_extents(0, 0, 10, 10)
    assert overlap(box, Bbox.from_extents(5, 5, 20, 20)) and not overlap(box, Bbox.from_extents(10, 0, 20, 10))


@pytest.fixture(scope="module")
def demo_charts(sample_ds):
    """Every chart of every demo rep's report (both audiences' charts are the same), as coachnb.display draws them."""
    import coachnb
    from coachnb import plots
    from coachnb.record import coaching_record

    plots.use_style()
    figures = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(show, "display", lambda bundle, raw=False: None)
        mp.setattr(show, "figure", lambda fig, alt: figures.append((fig, alt)))
        mp.setitem(plt.rcParams, "figure.max_open_warning", 0)  # kept open on purpose, closed below
        for rep in sample_ds.reps["rep_id"]:
            r = coachnb.rep_report(sample_ds, rep, "2026-11-23")
            show.since_last_time(r)
            show.coaching_record(coaching_record(sample_ds, rep, "2026-11-23", reviews=r.commitments))
            for section in (show.activity, show.pipeline, show.conversion, show.velocity):
                section(r)
    yield figures
    for fig, _ in figures:
        plt.close(fig)


@pytest.mark.slow
def test_every_kind_of_chart_is_drawn_by_the_demo(demo_charts):
    alts = " ".join(alt for _, alt in demo_charts)
    for kind in ("Line chart of activities", "Line chart of new opportunities", "share of your activities",
                 "moved on at each step", "days deals spend", "Bar chart of calls per week", "Chart of "):
        assert kind in alts, kind


@pytest.mark.slow
def test_chart_text_is_never_under_the_minimum_size(demo_charts):
    """At 5 in wide and 10 pt, a chart's text is 9 CSS px or more on a 360 px phone (the browser test measures it)."""
    from coachnb import plots

    assert plots.MIN_FONT_PT * 332 / (plots.WIDTH_IN * 72) >= 9  # 332 px: a 360 px screen less the page's padding
    for fig, alt in demo_charts:
        assert tuple(fig.get_size_inches())[0] == plots.WIDTH_IN, alt
        small = [(t.get_text(), t.get_fontsize()) for t, _ in chart_texts(fig) if t.get_fontsize() < plots.MIN_FONT_PT]
        assert not small, (alt[:60], small)


@pytest.mark.slow
def test_no_chart_text_overlaps_other_text_the_data_or_the_edge(demo_charts):
    """Legends, titles, unit labels and readings sit outside every plot area; no two texts touch; none is cut off."""
    for fig, alt in demo_charts:
        assert_legible(fig, alt[:60])


def assert_legible(fig, what: str) -> None:
    """No text of ``fig`` under the minimum size, past its edge, over a plot area or over another text."""
    from coachnb import plots

    texts = chart_texts(fig)
    edge = fig.bbox
    for t, box in texts:
        assert t.get_fontsize() >= plots.MIN_FONT_PT, (what, t.get_text(), t.get_fontsize())
        assert edge.x0 - 1 <= box.x0 and box.x1 <= edge.x1 + 1 and edge.y0 - 1 <= box.y0 and box.y1 <= edge.y1 + 1, \
            (what, "past the edge:", t.get_text())
        for ax in fig.axes:
            assert not overlap(box, ax.bbox), (what, "covers the data:", t.get_text())
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1:]:
            assert not overlap(box_a, box_b), (what, a.get_text(), b.get_text())
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        box = legend.get_window_extent(fig.canvas.get_renderer())
        assert not any(overlap(box, ax.bbox) for ax in fig.axes), what


def test_charts_stay_legible_with_long_names_long_periods_and_crowded_readings():
    """What the demo doesn't have: long stage, type and metric names, a year of weeks, six readings close together."""
    from coachnb import plots

    plots.use_style()
    weeks = pd.date_range("2025-11-24", periods=52, freq="W-MON")
    rng = np.random.default_rng(3)
    stages = ["Initial qualification call with procurement", "Technical validation and security review",
              "Commercial proposal", "Legal", "Closed-won (signed and countersigned)"]
    steps = [f"{a} → {b}" for a, b in zip(stages, stages[1:])]
    conv = pd.DataFrame({"step": steps, "rate": [0.5, 0.2, np.nan, 0.9], "low": [0.3, 0.1, np.nan, 0.7],
                         "high": [0.7, 0.4, np.nan, 1.0]})
    team = pd.DataFrame({"step": steps, "median": [0.4, 0.3, 0.5, 0.8], "q25": [0.3, 0.2, 0.4, 0.7],
                         "q75": [0.5, 0.4, 0.6, 0.9]})
    weekly = pd.DataFrame({"week": weeks, "total": rng.poisson(900, 52), "value": rng.poisson(40, 52)})
    band = pd.DataFrame({"week": weeks, "median": np.nan, "q25": np.nan, "q75": np.nan})  # no team figure
    mix = pd.Series(1 / 8, index=[f"activity type number {i} with a long name" for i in range(8)])
    label = "qualified discovery calls with new decision makers at strategic accounts per week"
    starts = pd.date_range("2026-06-01", periods=6, freq="14D")
    periods = pd.DataFrame({"metric": ["calls", "meetings"] * 3, "start": starts, "end": starts + pd.Timedelta(days=30),
                            "target": [50.0, 12.0] * 3,
                            "reading": ["kept, can't tell yet", "not kept", "kept and moved", "partly kept",
                                        "kept, no lift", "running"]})
    record = pd.DataFrame({"week": weeks, "new_opportunities": rng.poisson(3, 52), "calls": rng.poisson(45, 52),
                           "meetings": rng.poisson(10, 52)})
    figures = {
        "conversion": plots.conversion_vs_team(conv, team),
        "days": plots.days_in_stage_vs_team(pd.DataFrame({"stage": stages, "median_days": [3.0, 40, 12, 5, 1]}),
                                            pd.DataFrame({"stage": stages, "median_days": [4.0, 30, 10, 7, np.nan]})),
        "mix": plots.activity_mix(mix, mix),
        "weekly": plots.weekly_vs_team(weekly, band, ylabel="activities per week, every kind counted once"),
        "progress": plots.commitment_progress(weekly, 123.5, 1000.25, label, weeks[20], weeks[30]),
        "record": plots.coaching_record_chart(record, periods, {"calls": label, "meetings": "meetings per week"},
                                              sessions=list(starts)),
    }
    try:
        for what, fig in figures.items():
            assert_legible(fig, what)
        legend = [t.get_text() for t in figures["weekly"].legends[0].get_texts()]
        assert legend == ["you"]  # no team figure, nothing of the team in the key
        readings = [t for t in figures["record"].axes[0].texts]
        assert sorted(t.get_text() for t in readings) == sorted(periods["reading"])
    finally:
        for fig in figures.values():
            plt.close(fig)
