"""The charts' SVG writer: the same bytes as matplotlib's, with text measured once per process."""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from coachnb import plots

sys.path.insert(0, str(Path(__file__).parent))
from chartsvg import svg_text  # noqa: E402


def _chart(title: str):
    fig, ax = plt.subplots(figsize=(plots.WIDTH_IN, 2.5))
    ax.plot([1, 2, 3], [4, 1, 7], label="you")
    ax.set_title(title)
    ax.set_ylabel("calls per week")
    ax.legend()
    return fig


def _svg(fig, ours: bool) -> str:
    return svg_text(fig, ours)


@pytest.mark.parametrize("title", ["Calls: you against the team", "Ünïcode & <escaped> 10%"])
def test_the_report_canvas_writes_what_matplotlib_writes(title):
    plots.use_style()
    theirs = _svg(_chart(title), ours=False)
    assert _svg(_chart(title), ours=True) == theirs
    assert _svg(_chart(title), ours=True) == theirs  # and again, the measurements now from the cache
    assert "<text" in theirs  # text is written as text: measured by the renderer, not as paths


def test_a_text_is_measured_as_matplotlib_measures_it():
    for size, weight in ((10.0, "normal"), (12.0, "bold"), (10.5, "normal")):
        prop = FontProperties(size=size, weight=weight)
        expected = TextToPath().get_text_width_height_descent("Negotiation", prop, ismath=False)
        assert plots.text_extent("Negotiation", prop) == expected


def test_another_size_weight_or_font_is_measured_afresh():
    base = plots.text_extent("Discovery", FontProperties(size=10.0))
    assert plots.text_extent("Discovery", FontProperties(size=12.0))[0] > base[0]
    assert plots.text_extent("Discovery", FontProperties(size=10.0, weight="bold"))[0] > base[0]
    # the same properties, but "sans-serif" now stands for another font
    with plt.rc_context({"font.sans-serif": ["DejaVu Serif"]}):
        serif = plots.text_extent("Discovery", FontProperties(size=10.0))
        expected = TextToPath().get_text_width_height_descent("Discovery", FontProperties(size=10.0), ismath=False)
    assert serif == expected and serif != base
    assert plots.text_extent("Discovery", FontProperties(size=10.0)) == base


def test_changing_the_properties_after_a_measurement_does_not_change_what_is_kept():
    prop = FontProperties(size=10.0)
    first = plots.text_extent("Proposal", prop)
    prop.set_size(20.0)  # FontProperties are mutable: the kept key is a copy
    assert plots.text_extent("Proposal", prop)[0] > first[0]
    assert plots.text_extent("Proposal", FontProperties(size=10.0)) == first


def test_week_bars_are_one_closed_rectangle_per_known_week():
    import matplotlib.dates as mdates
    import numpy as np
    import pandas as pd

    weeks = pd.date_range("2026-01-05", periods=4, freq="7D", tz="Europe/London")
    fig, ax = plt.subplots()
    plots._week_bars(ax, weeks, [3, np.nan, 0, 5.5], color="C0")
    paths = ax.collections[-1].get_paths()
    x = mdates.date2num(weeks.tz_localize(None))
    assert len(paths) == 3  # the missing week draws nothing
    for path, x0, top in zip(paths, x[[0, 2, 3]], [3.0, 0.0, 5.5]):
        assert path.vertices[:4].tolist() == [[x0 - 2.5, 0.0], [x0 - 2.5, top], [x0 + 2.5, top], [x0 + 2.5, 0.0]]
        assert path.codes[0] == path.MOVETO and path.codes[-1] == path.CLOSEPOLY
    fig2, ax2 = plt.subplots()
    plots._week_bars(ax2, weeks[:1], [np.nan], color="C0")  # no known week: an empty collection
    assert len(ax2.collections[-1].get_paths()) == 0
    plt.close(fig)
    plt.close(fig2)


def test_font_height_metrics_are_what_matplotlibs_layout_reads_from_the_font(monkeypatch):
    """Wrapped titles, bold, several sizes and a text with no glyph of its own: the same bytes with the hook as without."""
    plots.use_style()

    def chart():
        fig, ax = plt.subplots(figsize=(plots.WIDTH_IN, 2.5))
        ax.plot([1, 2, 3], [4, 1, 7], label="you\nand a second line")
        fig.suptitle("A title\non two lines", fontsize=plots.TITLE_PT, fontweight="bold")
        for i, size in enumerate((8.0, 10.0, 10.5, 13.0)):
            fig.text(0.1 + 0.2 * i, 0.05, f"gq|Ég {size}\nline two\n\nfour", fontsize=size)
        ax.set_ylabel("calls per week", fontsize=plots.LABEL_PT)
        ax.legend()
        return fig

    asked = []
    real = plots.font_height_metrics
    monkeypatch.setattr(plots, "font_height_metrics", lambda prop: asked.append(prop) or real(prop))
    assert _svg(chart(), ours=True) == _svg(chart(), ours=False)
    assert asked  # the layout did ask the renderer
    with plt.rc_context({"font.sans-serif": ["DejaVu Serif"]}):  # another font for the same name: read afresh
        assert _svg(chart(), ours=True) == _svg(chart(), ours=False)
