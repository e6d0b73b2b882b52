"""Gridlines and tick labels drawn as a few plain artists (plots.draw_ticks_as_marks): the same marks as matplotlib's ticks."""
from __future__ import annotations

import collections
import io
import re
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from coachnb import plots

sys.path.insert(0, str(Path(__file__).parent))
from chartsvg import svg_text  # noqa: E402

#: what a reader sees in an SVG: its paths and texts, each with its coordinates and style (group ids left out)
MARK = re.compile(r"<path [^>]*/>|<text [^>]*>[^<]*</text>")
HOSTILE = ["Proposal ($5k-$10k)", "Negotiation $_$", r"Closing \frac{a}{b} $x^2$", "<b>Won</b> & done"]


def svg(fig) -> str:
    return svg_text(fig)


def marks(text: str) -> collections.Counter:
    return collections.Counter(re.sub(r'\s+id="[^"]*"', "", m) for m in MARK.findall(text))


def charts() -> dict:
    """One chart of each kind: hostile stage names, a long date axis, a shared x axis, no team figure."""
    weeks = pd.date_range("2025-11-24", periods=52, freq="W-MON")
    rng = np.random.default_rng(7)
    steps = [f"{a} → {b}" for a, b in zip(HOSTILE, HOSTILE[1:])]
    conv = pd.DataFrame({"step": steps, "rate": [0.5, np.nan, 0.9], "low": [0.3, np.nan, 0.7], "high": [0.7, np.nan, 1.0]})
    team = pd.DataFrame({"step": steps, "median": [0.4, 0.3, 0.8], "q25": [0.3, 0.2, 0.7], "q75": [0.5, 0.4, 0.9]})
    weekly = pd.DataFrame({"week": weeks, "total": rng.poisson(90, 52), "value": rng.poisson(40, 52)})
    band = pd.DataFrame({"week": weeks, "median": 80.0, "q25": 70.0, "q75": 95.0})
    starts = pd.date_range("2026-03-02", periods=4, freq="42D")
    periods = pd.DataFrame({"metric": ["calls", "meetings"] * 2, "start": starts, "end": starts + pd.Timedelta(days=30),
                            "target": [50.0, 12.0] * 2, "reading": ["kept, moved", "not kept", "kept, no lift", "running"]})
    record = pd.DataFrame({"week": weeks, "new_opportunities": rng.poisson(3, 52), "calls": rng.poisson(45, 52),
                           "meetings": rng.poisson(10, 52)})
    return {
        "conversion": lambda: plots.conversion_vs_team(conv, team),
        "days": lambda: plots.days_in_stage_vs_team(pd.DataFrame({"stage": HOSTILE, "median_days": [3.0, 40, 12, 5]}),
                                                    pd.DataFrame({"stage": HOSTILE, "median_days": [4.0, 30, np.nan, 7]})),
        "mix": lambda: plots.activity_mix(pd.Series([0.5, 0.3, 0.2], index=["call", "email $5$", "demo"]),
                                          pd.Series([0.4, 0.4, 0.2], index=["call", "email $5$", "demo"])),
        "weekly": lambda: plots.weekly_vs_team(weekly, band),
        "weekly, no team": lambda: plots.weekly_vs_team(weekly, band.assign(median=np.nan, q25=np.nan, q75=np.nan)),
        "progress": lambda: plots.commitment_progress(weekly, 45.5, 38.0, "calls per week", weeks[20], weeks[30]),
        "record": lambda: plots.coaching_record_chart(record, periods, {"calls": "calls per week",
                                                                        "meetings": "meetings per week"},
                                                      sessions=list(starts)),
    }


@pytest.mark.parametrize("kind", list(charts()))
def test_a_chart_draws_the_same_marks_as_with_matplotlibs_own_ticks(kind, monkeypatch):
    """Every gridline and tick label, and the x label under them, at the same coordinates in the same style."""
    plots.use_style()
    ours = svg(charts()[kind]())
    with monkeypatch.context() as m:
        m.setattr(plots, "draw_ticks_as_marks", lambda fig: None)
        theirs = svg(charts()[kind]())
    assert "<g id=\"xtick_1\">" in theirs and "xtick_1" not in ours  # matplotlib's ticks, then ours
    assert marks(ours) == marks(theirs)
    gridlines = [m for m in MARK.findall(ours) if "stroke: #cccccc" in m]
    assert len(gridlines) >= 4  # the gridlines still show


def test_ticks_in_view_are_the_ticks_matplotlib_draws():
    """Locators give ticks past the view (a month before the first week, a round number past the top): left out."""
    import matplotlib.dates as mdates

    plots.use_style()
    for lo, hi in ((0.0, 42.0), (3.5, 97.0), (-1.0, 1e-11)):
        fig, (ax, dates) = plt.subplots(2, 1)
        ax.plot([lo, hi], [hi, lo])
        dates.plot(pd.date_range("2026-01-07", periods=30, freq="W-WED"), np.arange(30))
        dates.xaxis.set_major_locator(mdates.MonthLocator(bymonth=range(1, 13, 2)))
        dates.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
        ours = [plots.ticks_in_view(axis)[1] for axis in (ax.xaxis, ax.yaxis, dates.xaxis)]
        theirs = svg(fig)
        drawn = [re.findall(rf'<g id="{which}tick_\d+">.*?<text[^>]*>([^<]*)</text>', part, re.S)
                 for part in theirs.split('<g id="axes_')[1:] for which in ("x", "y")]
        assert ours == drawn[:3], (lo, hi)


def test_text_from_the_data_in_tick_labels_is_literal_and_escaped():
    plots.use_style()
    for kind in ("conversion", "days", "mix"):
        fig = charts()[kind]()
        texts = fig.findobj(Text)
        assert all(t.get_parse_math() is False for t in texts), kind  # "$5$" is five dollars, not mathtext
        out = svg(fig)
        assert "<b>" not in out
        written = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", out))
        if kind == "days":
            assert "&lt;b&gt;Won&lt;/b&gt; &amp; done" in written and r"Closing \frac{a}{b} $x^2$" in written
        if kind == "mix":
            assert "email $5$" in written


def test_an_axis_with_an_offset_is_left_to_matplotlib():
    """Values the formatter writes as an offset (+1e6) keep matplotlib's ticks and their offset text."""
    plots.use_style()
    weeks = pd.date_range("2026-01-05", periods=10, freq="W-MON")
    weekly = pd.DataFrame({"week": weeks, "total": 1_000_000 + np.arange(10.0)})
    band = pd.DataFrame({"week": weeks, "median": np.nan, "q25": np.nan, "q75": np.nan})
    fig = plots.weekly_vs_team(weekly, band)
    ax = fig.axes[0]
    ax.set_ylim(999_990, 1_000_012)
    plots.draw_ticks_as_marks(fig)  # again, now with an offset on y: y stays matplotlib's
    assert ax.yaxis.get_ticklabels()
    out = svg(fig)
    assert "ytick_1" in out and "1e6" in out


def test_limits_are_fixed_once_the_marks_are_drawn():
    """Gridlines drawn for the final view: an artist added afterwards does not rescale the axes under them."""
    plots.use_style()
    fig = charts()["weekly"]()
    ax = fig.axes[0]
    before = ax.get_xlim(), ax.get_ylim()
    ax.plot([pd.Timestamp("2030-01-01")], [10_000])
    assert (ax.get_xlim(), ax.get_ylim()) == before
    plt.close(fig)


def test_periods_are_shaded_as_axvspan_shades_them_even_past_the_weeks(monkeypatch):
    """The record's period rectangles and the x view they widen: the same bytes as one ax.axvspan per period."""
    plots.use_style()
    weeks = pd.date_range("2026-01-05", periods=20, freq="W-MON")
    record = pd.DataFrame({"week": weeks, "new_opportunities": np.arange(20) % 4, "calls": np.arange(20) + 30.0})
    # the second period's metric has no panel: no target line widens the view, only its shading
    periods = pd.DataFrame({"metric": ["calls", "meetings"], "start": [weeks[2], weeks[12]],
                            "end": [weeks[6], pd.Timestamp("2026-07-20")], "target": [40.0, 45.0],
                            "reading": ["kept, moved", "running"]})

    def make():
        return plots.coaching_record_chart(record, periods, {"calls": "calls per week"}, sessions=[weeks[3]])

    fig = make()
    lo, hi = fig.axes[0].get_xlim()
    assert hi > plots.mdates.date2num(pd.Timestamp("2026-07-20"))
    ours = svg(fig)
    with monkeypatch.context() as m:
        m.setattr(plots, "_shade_periods", lambda ax, p: [
            ax.axvspan(s, e, color=plots.TARGET_COLOUR, alpha=0.12, lw=0, zorder=0) for s, e in zip(p["start"], p["end"])])
        assert svg(make()) == ours


@pytest.mark.parametrize("kind", ["weekly", "record", "days"])
def test_as_png_and_cropped_tight_the_same_image_as_with_matplotlibs_ticks(kind, monkeypatch):
    """An analyst saving a chart as PNG (Agg), whole or with bbox_inches="tight": the same pixels, the same crop."""
    from PIL import Image, ImageChops

    plots.use_style()

    def png(fig, **how):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72, **how)
        plt.close(fig)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    for how in ({}, {"bbox_inches": "tight"}):
        ours = png(charts()[kind](), **how)
        with monkeypatch.context() as m:
            m.setattr(plots, "draw_ticks_as_marks", lambda fig: None)
            theirs = png(charts()[kind](), **how)
        assert ours.size == theirs.size, how
        assert ImageChops.difference(ours, theirs).getbbox() is None, how


@pytest.mark.parametrize("weeks_n, level", [(1, 3.0), (2, 0.0), (13, 0.4), (104, 7.0), (13, 1e6)])
def test_odd_series_draw_the_same_marks_as_with_matplotlibs_ticks(weeks_n, level, monkeypatch):
    """One week, all zeros, a fraction a week, two years, values around a million (an offset: matplotlib's ticks)."""
    plots.use_style()
    weeks = pd.date_range("2026-01-05", periods=weeks_n, freq="W-MON")
    values = level + np.arange(weeks_n) % 3 * (level > 0)
    weekly = pd.DataFrame({"week": weeks, "total": values, "value": values})
    band = pd.DataFrame({"week": weeks, "median": values.mean(), "q25": values.min(), "q75": values.max()})
    record = pd.DataFrame({"week": weeks, "new_opportunities": values, "calls": values})
    periods = pd.DataFrame({"metric": ["calls"], "start": [weeks[0]], "end": [weeks[-1]], "target": [level + 1.0],
                            "reading": ["kept"]})
    makers = [lambda: plots.weekly_vs_team(weekly, band),
              lambda: plots.commitment_progress(weekly, level + 1.0, level, "calls per week", weeks[0], weeks[-1]),
              lambda: plots.coaching_record_chart(record, periods, {"calls": "calls per week"}, sessions=[weeks[0]])]
    for make in makers:
        ours = svg(make())
        with monkeypatch.context() as m:
            m.setattr(plots, "draw_ticks_as_marks", lambda fig: None)
            theirs = svg(make())
        assert marks(ours) == marks(theirs)
