"""Sparklines: a rep's weekly series against the team's middle half, as a small inline SVG.

The team overview draws one per measure in each rep's row (:mod:`coachnb.overview_page`). The
picture is plain SVG markup inside the HTML page: no script, no external file, nothing the
page's Content-Security-Policy refuses. It is legible in print and in greyscale: the rep's weeks
are a black line, the team's middle half (the peers' 25th to 75th percentile, the report's own
band) a grey area, and the last week a dot; nothing is said by colour alone. The numbers it
shows are said in words in its ``aria-label`` and ``<title>``.

Only the rep's own series and the pooled team band go in: never another named rep's weeks.
"""
from __future__ import annotations

import math

from .formatting import esc, fmt_num

#: the drawing's own units (the page scales it with CSS; see report.css "sparklines (overview)")
WIDTH, HEIGHT, PAD = 120.0, 30.0, 2.0


def _value(x) -> float | None:
    """A finite float, or None for a week without data (None, NaN, infinite, not a number)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _runs(values: list) -> list[list[int]]:
    """Indices of the consecutive weeks that have a value: each run is drawn apart (a gap is not a zero)."""
    runs, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def sparkline_points(values, band_low=None, band_high=None) -> tuple[list, list]:
    """Where each week goes in the drawing (x from the left, y from the top), with gaps.

    Parameters
    ----------
    values : sequence of float or None
        The rep's weekly values, oldest first; None or NaN is a week without data.
    band_low, band_high : sequence of float or None, optional
        The team's 25th and 75th percentile for the same weeks (None: no band).

    Returns
    -------
    line : list of list of (x, y)
        One list of points per run of consecutive weeks with a value.
    band : list of list of (x, y_low, y_high)
        One list per run of weeks with both band values.

    Notes
    -----
    The y axis runs from 0 to the largest value of the series and the band (1 if all are 0),
    so a higher week is always drawn higher and the band is on the same scale.
    """
    vals = [_value(v) for v in values]
    n = len(vals)
    low = [_value(v) for v in band_low] if band_low is not None else [None] * n
    high = [_value(v) for v in band_high] if band_high is not None else [None] * n
    if len(low) != n or len(high) != n:
        raise ValueError(f"the band has {len(low)}/{len(high)} weeks, the series {n}")
    both = [None if lo is None or hi is None else (lo, hi) for lo, hi in zip(low, high)]
    top = max([v for v in vals if v is not None] + [hi for b in both if b for hi in b] + [0.0])
    top = top if top > 0 else 1.0

    def x(i):
        return PAD + (WIDTH - 2 * PAD) * (i / (n - 1) if n > 1 else 0.5)

    def y(v):
        return PAD + (HEIGHT - 2 * PAD) * (1 - max(v, 0.0) / top)

    line = [[(x(i), y(vals[i])) for i in run] for run in _runs(vals)]
    band = [[(x(i), y(both[i][0]), y(both[i][1])) for i in run] for run in _runs(both)]
    return line, band


def sparkline_label(what: str, values, band_low=None, band_high=None) -> str:
    """The picture in words: the weeks, the rep's lowest and highest week, the team's typical middle half.

    E.g. "activities per week, last 13 weeks: 12 to 31, last week 27; team's middle half in a
    typical week 15 to 24". The team's figures are the medians over the weeks of its 25th and
    75th percentiles; weeks without data are counted and said.
    """
    vals = [_value(v) for v in values]
    seen = [v for v in vals if v is not None]
    s = f"{what}, last {len(vals)} week{'s' if len(vals) != 1 else ''}: "
    if not seen:
        s += "no data"
    else:
        s += f"{fmt_num(min(seen))} to {fmt_num(max(seen))}" if len(seen) > 1 else fmt_num(seen[0])
        if vals[-1] is not None:
            s += f", last week {fmt_num(vals[-1])}"
        if len(seen) < len(vals):
            gaps = len(vals) - len(seen)
            s += f" ({gaps} week{'s' if gaps != 1 else ''} without data, left blank)"
    lows = sorted(v for v in (_value(b) for b in (band_low or [])) if v is not None)
    highs = sorted(v for v in (_value(b) for b in (band_high or [])) if v is not None)
    if lows and highs:
        s += f"; team's middle half in a typical week {fmt_num(_median(lows))} to {fmt_num(_median(highs))}"
    else:
        s += "; no team band (too few teammates to compare with)"
    return s


def _median(sorted_values: list) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def _path(points) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def sparkline_svg(what: str, values, band_low=None, band_high=None) -> str:
    """A small inline SVG of ``values`` against the band, with its numbers in ``aria-label`` and ``<title>``.

    Parameters
    ----------
    what : str
        What a value is ("activities per week"); escaped.
    values, band_low, band_high
        As :func:`sparkline_points`.

    Returns
    -------
    str
        ``<svg role="img" ...>`` markup: a grey band, a black line per run of weeks with data
        (a lone week is a dot), a dot on the last week; every text escaped.
    """
    line, band = sparkline_points(values, band_low, band_high)
    label = esc(sparkline_label(what, values, band_low, band_high))
    parts = [(f'<svg class="cnb-spark" role="img" aria-label="{label}" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" '
              f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>')]
    for run in band:
        outline = [(x, hi) for x, _, hi in run] + [(x, lo) for x, lo, _ in reversed(run)]
        if len(run) == 1:  # one week of band: a short bar
            x, lo, hi = run[0]
            outline = [(x - 1.5, hi), (x + 1.5, hi), (x + 1.5, lo), (x - 1.5, lo)]
        parts.append(f'<polygon class="cnb-spark-band" points="{_path(outline)}" fill="#c8c8c8" stroke="none"/>')
    for run in line:
        if len(run) > 1:
            parts.append(f'<polyline class="cnb-spark-line" points="{_path(run)}" fill="none" stroke="#000" '
                         'stroke-width="1.5" vector-effect="non-scaling-stroke"/>')
        else:
            parts.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="1.5" fill="#000"/>')
    if line and _value(list(values)[-1]) is not None:
        x, y = line[-1][-1]
        parts.append(f'<circle class="cnb-spark-last" cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#000"/>')
    parts.append("</svg>")
    return "".join(parts)
