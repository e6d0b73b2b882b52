"""Sparklines: the picture follows the data, gaps stay gaps, its words carry the right numbers, text is escaped."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from coachnb.sparklines import HEIGHT, sparkline_label, sparkline_points, sparkline_svg

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_the_highest_week_is_the_highest_point_and_weeks_run_left_to_right():
    values = [5, 9, 2, 14, 7, 0, 11]
    (line,), band = sparkline_points(values)
    xs, ys = [x for x, _ in line], [y for _, y in line]
    assert xs == sorted(xs) and len(set(xs)) == len(values)
    # SVG's y runs downwards: the largest value has the smallest y, the smallest the largest
    assert int(np.argmin(ys)) == values.index(max(values)) and int(np.argmax(ys)) == values.index(min(values))
    # same order as the data everywhere, and within the drawing
    assert np.all(np.argsort(ys, kind="stable") == np.argsort([-v for v in values], kind="stable"))
    assert all(0 <= y <= HEIGHT for y in ys)
    assert band == []


def test_the_band_is_on_the_same_scale_as_the_line():
    values = [10, 30, 20]
    (line,), (band,) = sparkline_points(values, band_low=[15, 15, 15], band_high=[25, 25, 25])
    ys = dict(zip([x for x, _ in line], [y for _, y in line]))
    for x, y_low, y_high in band:
        assert y_high < y_low  # the 75th percentile is drawn above the 25th
    # 30 is above the band's top, 10 below its bottom, 20 inside
    assert ys[band[1][0]] < band[1][2] and ys[band[0][0]] > band[0][1] and band[2][2] < ys[band[2][0]] < band[2][1]


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_weeks_leave_gaps_not_zeros(missing):
    values = [4, 6, missing, missing, 8, 3, missing, 5]
    line, _ = sparkline_points(values)
    assert [len(run) for run in line] == [2, 2, 1]  # three runs: no point where a week is missing
    zero_line, _ = sparkline_points([0 if v is missing else v for v in values])
    assert len(zero_line) == 1 and len(zero_line[0]) == len(values)  # zeros are drawn, at the bottom
    svg = parsed(sparkline_svg("activities per week", values))
    assert len(svg.findall(f"{SVG}polyline")) == 2  # the runs of two weeks
    lone = [c for c in svg.findall(f"{SVG}circle") if c.get("class") != "cnb-spark-last"]
    assert len(lone) == 1  # the lone week between two gaps is a dot
    drawn = [len(p.get("points").split()) for p in svg.findall(f"{SVG}polyline")]
    assert sum(drawn) + len(lone) == sum(v is not missing for v in values)


def test_the_label_says_the_numbers_the_picture_shows():
    values = [12, 31, None, 20, 27]
    low, high = [15, 14, 16, 15, 17], [24, 22, 26, 24, 25]
    label = sparkline_label("activities per week", values, low, high)
    assert label == ("activities per week, last 5 weeks: 12 to 31, last week 27 (1 week without data, "
                     "left blank); team's middle half in a typical week 15 to 24")
    assert np.median(low) == 15 and np.median(high) == 24
    even = sparkline_label("new opportunities per week", [1, 2], [0.5, 1.5], [2, 3])
    assert even.endswith("team's middle half in a typical week 1 to 2.5")  # medians of two weeks
    assert sparkline_label("x", [None, None]) == "x, last 2 weeks: no data; no team band (too few teammates to compare with)"
    assert "last week" not in sparkline_label("x", [3, 4, None])  # no figure for a week without data


def test_the_picture_is_an_image_with_its_numbers_in_words_and_escaped():
    markup = sparkline_svg('calls <script>alert("x")</script> & more', [1, 5, 3], [1, 1, 1], [4, 4, 4])
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "&amp; more" in markup
    svg = parsed(markup)
    assert svg.get("role") == "img"
    label = svg.get("aria-label")
    assert label == svg.find(f"{SVG}title").text
    assert label.startswith('calls <script>alert("x")</script> & more, last 3 weeks: 1 to 5, last week 3')
    # black and grey only: nothing is said by colour
    colours = set(re.findall(r'(?:fill|stroke)="(#[0-9a-f]{3,6})"', markup))
    assert colours <= {"#000", "#c8c8c8"}


def test_a_band_of_another_length_is_refused():
    with pytest.raises(ValueError, match="band"):
        sparkline_points([1, 2, 3], [1, 2], [3, 4])


def test_all_zero_weeks_draw_a_flat_line_at_the_bottom():
    (line,), _ = sparkline_points([0, 0, 0])
    assert len({y for _, y in line}) == 1 and line[0][1] > HEIGHT / 2
