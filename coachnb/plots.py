"""The one plot style of coachnb, and the report's charts.

Every chart is drawn 5 in wide (:data:`WIDTH_IN`) with no text under :data:`MIN_FONT_PT`, so on
a 360 px phone, where the page scales it to about 333 px, its smallest text is still 9 CSS px
(:func:`coachnb.display.figure` writes it as SVG with its text as text: sharp at any size, on
paper at 5 in). Each chart has a title that says what to look at, a legend between the title
and the plot (never over the data), the unit of the y-axis written level above the plot, and
seaborn's colour-blind-safe palette. Team benchmarks are drawn as a band (interquartile range)
and a median line: teammates are never shown individually.

Layout is by fixed margins in inches, computed from the measured width of the text they hold
(:func:`text_width_in`), so no layout engine draws a figure twice. A chart starts from a blank
figure (:func:`blank_figure`) and draws its gridlines and tick labels as a few plain artists
(:func:`draw_ticks_as_marks`): the same picture as matplotlib's ticks, at a fraction of the cost.
"""
from __future__ import annotations

import codecs
import functools
import math
import pickle
import sys

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # headless outside Jupyter; a kernel keeps its inline backend for analysts

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import cbook  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.backends.backend_mixed import MixedModeRenderer  # noqa: E402
from matplotlib.backends.backend_svg import FigureCanvasSVG, RendererSVG  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties, findfont, get_font  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.textpath import TextToPath  # noqa: E402
from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator  # noqa: E402
from matplotlib.transforms import Bbox, IdentityTransform, blended_transform_factory  # noqa: E402

PALETTE = sns.color_palette("colorblind")
REP_COLOUR = PALETTE[0]
TEAM_COLOUR = "0.55"
TARGET_COLOUR = PALETTE[1]
GOOD_COLOUR = PALETTE[2]
#: every chart's width (inches); its height follows from what it holds
WIDTH_IN = 5.0
#: the smallest text of any chart (points): tick labels, legend, notes
MIN_FONT_PT = 10.0
TITLE_PT = 12.0
LABEL_PT = 10.5
#: blank border around a chart (inches)
PAD_IN = 0.08
#: a line of text takes this many times its font size (matplotlib's own line spacing)
LINE = 1.2


def use_style() -> None:
    """Apply coachnb's plot style (call once at the top of a notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({
        "figure.dpi": 96, "savefig.dpi": 110, "figure.figsize": (WIDTH_IN, 3.0),
        "font.size": MIN_FONT_PT, "xtick.labelsize": MIN_FONT_PT, "ytick.labelsize": MIN_FONT_PT,
        "legend.fontsize": MIN_FONT_PT, "axes.labelsize": LABEL_PT, "axes.titlesize": TITLE_PT,
        "figure.titlesize": TITLE_PT, "figure.titleweight": "bold",
        # the analyst notebooks' own charts title their axes: bold and left, as the report's are
        "axes.titleweight": "bold", "axes.titlelocation": "left", "axes.titley": 1.0,
        "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "legend.handlelength": 1.6, "legend.handletextpad": 0.5, "legend.columnspacing": 1.2,
        "figure.constrained_layout.use": False,
        # stage names and metric labels come from the data: "$" is a dollar sign, never mathtext
        "text.parse_math": False,
    })


#: blank figures as bytes, by shape and every rc setting (pickled as made: never a drawn one)
_BLANKS: dict = {}
BLANKS_KEPT = 16


def blank_figure(nrows: int = 1, *, sharex: bool = False) -> tuple:
    """A new figure and its ``nrows`` axes stacked, as ``plt.subplots(nrows, 1, sharex=sharex)`` makes them.

    Made by unpickling a blank figure of that shape, pickled in this process right after it was
    made with the same rc settings (all of them are in the key): about a third of the cost of
    creating the axes (spines, axes, their first ticks), which was a third of a chart's build.
    Nothing is reused: every call unpickles a new object graph, and the blank holds no chart,
    so no rep's figure or data is ever kept; the bytes stay in memory, never on disk. The figure
    has an Agg canvas (``fig.canvas.draw()`` works as on pyplot's) and is not registered with
    pyplot: :func:`coachnb.display.figure` shows it.

    Returns
    -------
    (Figure, list of Axes, top to bottom)
    """
    key = (nrows, sharex, tuple((k, repr(v)) for k, v in dict.items(plt.rcParams)))
    blob = _BLANKS.get(key)
    if blob is None:
        blank = Figure()
        blank.subplots(nrows, 1, sharex=sharex, squeeze=False)
        blob = _BLANKS[key] = pickle.dumps(blank)
        while len(_BLANKS) > BLANKS_KEPT:  # rc settings an analyst tried in turn: the oldest go
            _BLANKS.pop(next(iter(_BLANKS)))
    fig = pickle.loads(blob)
    FigureCanvasAgg(fig)
    return fig, list(fig.axes)


_TEXT_TO_PATH = TextToPath()
#: the settings that decide which font file a family name such as "sans-serif" stands for
FONT_RC = ("font.family", "font.serif", "font.sans-serif", "font.cursive", "font.fantasy", "font.monospace")


def text_extent(text: str, prop: FontProperties) -> tuple[float, float, float]:
    """Width, height and descent (points) of one line of plain ``text`` in the font ``prop`` names.

    What matplotlib's SVG writer measures for a text (``TextToPath``, at 72 dpi, from the font's
    glyph metrics): the same numbers, computed once per process for each text, font and size
    instead of once per figure (matplotlib keeps its own measurements per renderer, and every
    saved figure has a new one; the same tick labels, legend entries and titles recur in every
    report). The key is the text, the font properties (a copy: they are mutable) and the font
    settings that resolve a family name, so another font or size is measured afresh. Only the
    size of a text is kept, never where or in which report it was drawn.
    """
    return _extent(str(text), prop.copy(), tuple(str(plt.rcParams[k]) for k in FONT_RC))


@functools.lru_cache(maxsize=8192)
def _extent(text: str, prop: FontProperties, font_rc: tuple) -> tuple[float, float, float]:
    return _TEXT_TO_PATH.get_text_width_height_descent(text, prop, ismath=False)


@functools.lru_cache(maxsize=8192)
def text_width_in(text: str, size: float = MIN_FONT_PT, bold: bool = False) -> float:
    """Width (inches) of one line of ``text`` in the chart font at ``size`` points.

    Measured from the font's glyph metrics, as matplotlib lays text out (cached: tick labels,
    legend entries and stage names repeat across a batch's reports).
    """
    width, _, _ = text_extent(text, FontProperties(size=size, weight="bold" if bold else "normal"))
    return width / 72


def font_height_metrics(prop: FontProperties) -> tuple:
    """Ascent, descent and line gap (points) of the font ``prop`` names, as matplotlib's text layout reads them.

    From the font's OS/2 table, else its hhea table, scaled to the size at 72 dpi (the SVG
    renderer's), with matplotlib's own arithmetic (``Text._get_layout``), so the same numbers;
    ``(None, None, None)`` (layout then measures "lp") for a font with neither. Kept per process
    for each font and size: the layout otherwise looks the font and its tables up for every text.
    """
    return _height_metrics(prop.copy(), tuple(str(plt.rcParams[k]) for k in FONT_RC))


@functools.lru_cache(maxsize=256)
def _height_metrics(prop: FontProperties, font_rc: tuple) -> tuple:
    font = get_font(findfont(prop))
    for table_name, linegap_key, ascent_key, descent_key in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"), ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() * 72 / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[linegap_key] * scale
    return None, None, None


class MeasuredOnceSVGRenderer(RendererSVG):
    """matplotlib's SVG renderer, measuring plain text with :func:`text_extent` (kept per process).

    Math text (never in a report: ``text.parse_math`` is off) is measured as matplotlib does.
    """

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        return text_extent(s, prop)

    def _get_font_height_metrics(self, prop):
        # matplotlib's text layout asks the renderer for this (its PDF and PS renderers answer it)
        # before it looks the font's tables up itself, once per text it lays out
        return font_height_metrics(prop)


class ReportSVGCanvas(FigureCanvasSVG):
    """A canvas whose ``print_svg`` is matplotlib's with :class:`MeasuredOnceSVGRenderer`: the same bytes.

    ``ReportSVGCanvas(fig)`` becomes the figure's canvas; ``fig.savefig(..., format="svg")`` then
    writes through it (matplotlib uses the current canvas when it can write the format).
    """

    def print_svg(self, filename, *, bbox_inches_restore=None, metadata=None, **applied):
        # ``applied``: dpi, facecolor, edgecolor, orientation, which savefig has already set on the
        # figure (matplotlib drops them for its own writers, passes them on to a canvas of ours)
        with cbook.open_file_cm(filename, "w", encoding="utf-8") as fh:
            if not cbook.file_requires_unicode(fh):
                fh = codecs.getwriter("utf-8")(fh)
            dpi = self.figure.dpi
            self.figure.dpi = 72
            width, height = self.figure.get_size_inches()
            renderer = MixedModeRenderer(
                self.figure, width, height, dpi,
                MeasuredOnceSVGRenderer(width * 72, height * 72, fh, image_dpi=dpi, metadata=metadata),
                bbox_inches_restore=bbox_inches_restore)
            self.figure.draw(renderer)
            renderer.finalize()


def wrap(text: str, width_in: float, size: float = MIN_FONT_PT, bold: bool = False) -> list[str]:
    """``text`` in lines no wider than ``width_in`` (a word wider than that is cut where it must be)."""
    lines: list[str] = []
    for word in str(text).split() or [""]:
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and text_width_in(candidate, size, bold) <= width_in:
            lines[-1] = candidate
            continue
        while len(word) > 1 and text_width_in(word, size, bold) > width_in:
            cut = 1
            while cut < len(word) - 1 and text_width_in(word[:cut + 1], size, bold) <= width_in:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def _lines_in(n: int, size: float) -> float:
    """Height (inches) of ``n`` lines of text at ``size`` points."""
    return n * LINE * size / 72


def _points(key: str) -> float:
    """A font size setting in points (the style's may be a name such as "medium" before :func:`use_style`)."""
    return FontProperties(size=plt.rcParams[key]).get_size_in_points()


def _legend_columns(labels: list[str], width_in: float) -> int:
    """The most legend columns (matplotlib fills them top to bottom) whose rows fit ``width_in``."""
    size = _points("legend.fontsize")
    handle = (plt.rcParams["legend.handlelength"] + plt.rcParams["legend.handletextpad"]) * size / 72
    spacing = plt.rcParams["legend.columnspacing"] * size / 72
    entries = [text_width_in(label, size) + handle for label in labels]
    for ncols in range(len(entries), 1, -1):
        columns = [c for c in np.array_split(np.array(entries), ncols) if len(c)]
        if sum(c.max() for c in columns) + spacing * (len(columns) - 1) <= width_in:
            return ncols
    return 1


def _legend_height_in(rows: int) -> float:
    """Height (inches) of a legend of ``rows`` rows at the style's legend size."""
    size = _points("legend.fontsize")
    return (rows * (1 + 0.25) + (rows - 1) * plt.rcParams["legend.labelspacing"]) * size / 72 if rows else 0.0


def _y_label_width_in(ax) -> float:
    """Widest y tick label of ``ax`` (inches; each line of a wrapped label measured on its own)."""
    size = _points("ytick.labelsize")
    return max((text_width_in(line, size) for t in tick_label_texts(ax.yaxis) for line in t.split("\n")),
               default=0.0)


def tick_label_texts(axis) -> list[str]:
    """The labels an axis will write at its major ticks within its view, from its locator and formatter.

    What ``axis.get_ticklabels()`` returns, without building the tick artists (six a tick) first.
    """
    return ticks_in_view(axis)[1]


def ticks_in_view(axis) -> tuple[list[float], list[str]]:
    """The major ticks an axis draws: their locations (data units) and labels, in the locator's order.

    As matplotlib's ``Axis`` works them out when it draws: every location the locator gives is
    formatted together (a formatter may choose its decimals from all of them), then those within
    the view (to a relative 1e-10 of its length, on the axis's scale) are kept.
    """
    locs = [float(x) for x in axis.get_major_locator()()]
    labels = list(axis.get_major_formatter().format_ticks(locs))
    scale = axis.get_transform()
    lo, hi = sorted(scale.transform(np.asarray(sorted(axis.get_view_interval()), dtype=float)))
    slack = (hi - lo) * 1e-10
    at = scale.transform(np.asarray(locs, dtype=float)) if locs else []
    keep = [i for i, x in enumerate(at) if lo - slack <= x <= hi + slack]
    return [locs[i] for i in keep], [labels[i] for i in keep]


def draw_ticks_as_marks(fig) -> None:
    """Draw each axes' major gridlines and tick labels as a few plain artists: the marks matplotlib draws.

    matplotlib draws a tick as an object of five artists (two tick lines with a marker each, a
    gridline and two labels), made afresh for every figure, though this style shows only the
    gridline and the first label: ~100 ticks a report, a fifth of its charts' time. Here each axis
    gets one :class:`TickMarks`: its gridlines as one ``LineCollection`` and one ``Text`` per shown
    label, with the styles, positions and padding of matplotlib's first tick of that axis (made
    with the axes), drawn where the axis draws them (its z-order); the axis itself then draws no
    ticks (``NullLocator``) and its x label is drawn by :class:`XLabelBelow`, where matplotlib puts
    it. The same paths and texts at the same coordinates, in other SVG groups. Call it last, once
    the figure's limits, ticks and size are final: the limits are fixed here. An axis whose
    formatter writes an offset or a factor apart (``1e6``) is left to matplotlib.
    """
    plans, seen = [], {}
    for ax in fig.axes:
        ax.set_xlim(ax.get_xlim())  # the view as autoscaled now: nothing added later may move it
        ax.set_ylim(ax.get_ylim())
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible() or isinstance(axis.get_major_locator(), NullLocator):
                continue
            # axes that share an axis share its locator, formatter and view: their ticks are worked out once
            key = (id(axis.major), tuple(axis.get_view_interval()), tuple(axis.get_transform().transform([0.0, 1.0])))
            locs, labels = seen[key] if key in seen else seen.setdefault(key, ticks_in_view(axis))
            if not axis.get_major_formatter().get_offset():
                plans.append((ax, axis, locs, labels))
    for ax, axis, locs, labels in plans:
        ax.add_artist(TickMarks(ax, axis, locs, labels))
    for ax, axis, _, _ in plans:  # after every plan: axes that share an axis share its locator
        axis.set_major_locator(NullLocator())
        axis.set_major_formatter(NullFormatter())
        if axis is ax.xaxis:
            axis.label.set_visible(False)  # drawn by the axis's TickMarks, under its tick labels


class TickMarks(Artist):
    """One axis's gridlines (one ``LineCollection``) and tick labels (one ``Text`` each), and its x label.

    Styled as the axis's first tick (``axis.majorTicks[0]``, which holds the styles set on the
    axis) and drawn in that order at the axis's z-order, as the axis would. ``get_children`` gives
    every part, so ``fig.findobj`` finds the labels; they are not among ``ax.texts``.
    """

    def __init__(self, ax, axis, locs: list[float], labels: list[str]):
        super().__init__()
        self.set_clip_on(False)  # each part clips itself (the gridlines to the axes, the labels not at all)
        tick = axis.majorTicks[0]  # made with the axes
        x_axis = axis is ax.xaxis
        self.set_zorder(axis.get_zorder())
        self.parts = []
        grid = tick.gridline
        if grid.get_visible() and locs:
            ends = [[(x, 0.0), (x, 1.0)] if x_axis else [(0.0, x), (1.0, x)] for x in locs]
            self.parts.append(LineCollection(
                ends, colors=[grid.get_color()], linewidths=grid.get_linewidth(), linestyles=grid.get_linestyle(),
                alpha=grid.get_alpha(), capstyle=grid.get_solid_capstyle(), joinstyle=grid.get_solid_joinstyle(),
                transform=ax.get_xaxis_transform(which="grid") if x_axis else ax.get_yaxis_transform(which="grid")))
            self.parts[-1].set_clip_path(ax.patch)
        label = tick.label1
        pad = tick.get_pad() + tick.get_tick_padding()  # points between the axes and a label, as the tick pads it
        place, va, ha = ax.get_xaxis_text1_transform(pad) if x_axis else ax.get_yaxis_text1_transform(pad)
        shown = [Text(loc if x_axis else 0, 0 if x_axis else loc, text, transform=place, va=va, ha=ha,
                      fontproperties=label.get_fontproperties(), color=label.get_color(),
                      rotation=label.get_rotation(), clip_on=False, parse_math=False)
                 for loc, text in zip(locs, labels)] if label.get_visible() else []
        self.parts += shown
        if x_axis and axis.label.get_visible() and axis.label.get_text():
            self.parts.append(XLabelBelow(ax, shown))
        for part in self.parts:
            part.set_figure(ax.figure)
            part.axes = ax

    def get_children(self):
        return list(self.parts)

    def get_window_extent(self, renderer=None):
        """What the parts cover (for ``bbox_inches="tight"``: the tick labels lie outside the axes)."""
        boxes = [part.get_window_extent(renderer) for part in self.parts if part.get_visible()]
        boxes = [box for box in boxes if np.isfinite(box.get_points()).all()]  # a collection may answer "nowhere"
        return Bbox.union(boxes) if boxes else Bbox.null()

    def draw(self, renderer):
        if self.get_visible():
            for part in self.parts:
                part.draw(renderer)


class XLabelBelow(Text):
    """An axes' x-axis label, placed when drawn where matplotlib's ``XAxis`` places its own.

    ``labelpad`` under the lowest of the tick labels (``Text`` artists) it is given, or under the
    bottom spine when there are none, measured with the renderer that draws it; the text, font,
    colour and alignment are the axis label's.
    """

    def __init__(self, ax, tick_labels: list):
        label = ax.xaxis.label
        super().__init__(0.5, 0.0, label.get_text(), fontproperties=label.get_fontproperties(),
                         color=label.get_color(), va=label.get_va(), ha=label.get_ha(),
                         rotation=label.get_rotation(), clip_on=False, parse_math=False,
                         transform=blended_transform_factory(ax.transAxes, IdentityTransform()))
        self.tick_labels = list(tick_labels)
        self.labelpad = ax.xaxis.labelpad
        self.under = ax.spines["bottom"] if "bottom" in ax.spines else ax

    def draw(self, renderer):
        boxes = [t.get_window_extent(renderer) for t in self.tick_labels if t.get_visible()]
        lowest = Bbox.union([*boxes, self.under.get_window_extent()]).y0
        self.set_y(lowest - self.labelpad * self.get_figure(root=True).dpi / 72)
        super().draw(renderer)


def _layout(fig, axes, *, title: str, legend: tuple, heights_in: list, units: list, xlabel: bool,
            above_in: float = 0.0, right_in: float = 0.3, head: bool = True) -> float:
    """Size the figure and place its parts in fixed inches; returns the figure's height (inches).

    Top down: the title (wrapped to the width), the legend in as many columns as fit (the rep's
    own marks first), then each axes under its unit label (level, left-aligned at the figure's
    edge), with ``above_in`` of room between the first one and its label (the record's
    readings). The left margin fits the widest y tick label; the bottom one the x tick labels
    and, with ``xlabel``, the x-axis label. Nothing overlaps by construction.

    Parameters
    ----------
    axes : list of Axes, top to bottom; ``heights_in`` their heights and ``units`` their unit
        labels ("" for none), in the same order.
    legend : (handles, labels)
    head : bool
        False for a first pass that only sizes and places the axes (no title, no legend).
    """
    width = WIDTH_IN - 2 * PAD_IN
    title_lines = wrap(title, width, TITLE_PT, bold=True)
    order = sorted(range(len(legend[1])), key=lambda i: not str(legend[1][i]).startswith("you"))
    handles, labels = [legend[0][i] for i in order], [legend[1][i] for i in order]
    ncols = _legend_columns(labels, width) if labels else 0
    rows = math.ceil(len(labels) / ncols) if ncols else 0
    unit_lines = [wrap(u, width, LABEL_PT) if u else [] for u in units]
    # a unit label clears the top y tick label of its axes and the bottom one of the axes above,
    # each standing half a line past its axes
    unit_in = [_lines_in(len(u), LABEL_PT) + 0.22 if u else 0.1 for u in unit_lines]
    unit_in[0] += above_in
    legend_top = PAD_IN + _lines_in(len(title_lines), TITLE_PT) + 0.08
    top = legend_top + _legend_height_in(rows) + 0.1
    bottom = PAD_IN + _lines_in(1, MIN_FONT_PT) + 0.06 + (_lines_in(1, LABEL_PT) + 0.06 if xlabel else 0.0)
    height = top + sum(heights_in) + sum(unit_in) + bottom
    fig.set_size_inches(WIDTH_IN, height)
    # the y ticks follow the axes' height, so the margin that fits their labels is measured once
    # the axes have their final heights (placed first with a provisional margin)
    _place_axes(axes, heights_in, unit_in, top=top, left=1.0, right=right_in)
    left = PAD_IN + 0.1 + max(_y_label_width_in(ax) for ax in axes)
    _place_axes(axes, heights_in, unit_in, top=top, left=left, right=right_in)
    y = height - top
    for i, (ax, h, u, room) in enumerate(zip(axes, heights_in, unit_lines, unit_in)):
        y -= room + h
        if u:
            label_y = y + h + 0.1 + (above_in if i == 0 else 0.0)
            ax.set_ylabel("\n".join(u), rotation=0, ha="left", va="bottom", fontsize=LABEL_PT)
            ax.yaxis.set_label_coords(PAD_IN / WIDTH_IN, label_y / height, transform=fig.transFigure)
    if not head:  # a first pass, to measure: the title and legend are placed once, by the last
        return height
    fig.suptitle("\n".join(title_lines), x=PAD_IN / WIDTH_IN, y=1 - PAD_IN / height, ha="left", va="top")
    if labels:
        fig.legend(handles, labels, loc="upper left", ncols=ncols, borderpad=0.0, borderaxespad=0.0,
                   bbox_to_anchor=(PAD_IN / WIDTH_IN, 1 - legend_top / height))
    return height


def _place_axes(axes, heights_in, above_each_in, *, top: float, left: float, right: float) -> None:
    """Place each axes (top to bottom) ``above_each_in`` under the one before, ``top`` inches below the figure's top."""
    width, height = axes[0].figure.get_size_inches()
    y = height - top
    for ax, h, room in zip(axes, heights_in, above_each_in):
        y -= room + h
        ax.set_position([left / width, y / height, (width - left - right) / width, h / height])


def _category_axis(axis, positions, labels) -> None:
    """Label ``positions`` of an axis with ``labels``: ``set_ticks(positions, labels)`` without its tick artists.

    ``Axis.set_ticks`` builds a tick (five artists) per label at once; a locator and a formatter
    give the same ticks to :func:`draw_ticks_as_marks` and the margin. (``set_ticks`` also widens
    the view to the positions; the bars drawn around them already do.)
    """
    axis.set_major_locator(FixedLocator(positions))
    axis.set_major_formatter(FixedFormatter(labels))


def _wrapped_labels(labels, width_in: float = 1.45) -> list[str]:
    """Category labels (stage names, activity types) on lines no wider than ``width_in``."""
    return ["\n".join(wrap(str(x), width_in)) for x in labels]


def _row_in(labels: list[str], least: float) -> float:
    """Height (inches) of one category row: at least ``least``, more for a label of several lines."""
    most = max((x.count("\n") + 1 for x in labels), default=1)
    return max(least, _lines_in(most, MIN_FONT_PT) + 0.12)


def _month_axis(ax, with_year: bool = False) -> None:
    """Month ticks on a date x-axis, every n-th month so that their labels never touch."""
    fmt = "%b %Y" if with_year else "%b"
    label_in = text_width_in("Sep 2026" if with_year else "Sep") + 0.2
    fig_w = ax.figure.get_size_inches()[0]
    axis_in = ax.get_position().width * fig_w
    lo, hi = ax.get_xlim()
    months = max((hi - lo) / 30.44, 1.0)
    fits = max(int(axis_in / label_in), 1)
    step = next((s for s in (1, 2, 3, 4, 6) if months / s <= fits), 12)
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=range(1, 13, step)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))


def _week_bars(ax, weeks, values, *, color, label=None) -> None:
    """One bar a week, 5 days wide, as one artist (``ax.bar`` makes one per week: a record has a hundred)."""
    x = mdates.date2num(pd.to_datetime(pd.Series(weeks)).dt.tz_localize(None))
    h = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(h)  # a missing week draws nothing, as ax.bar draws nothing for NaN
    left, right, top = x[ok] - 2.5, x[ok] + 2.5, h[ok]
    zero = np.zeros_like(top)
    # one (weeks, 4 corners, x and y) array: matplotlib then makes the paths from one template
    verts = np.stack([np.column_stack(corner) for corner in ((left, zero), (left, top), (right, top), (right, zero))],
                     axis=1) if ok.any() else []
    bars = PolyCollection(verts, facecolors=[color], edgecolors="none", linewidths=0, alpha=0.85, label=label)
    ax.add_collection(bars, autolim=True)
    ax.xaxis_date()
    ax.autoscale_view()


def _paired_bars(labels, rep_values, team_values, *, xlabel: str, title: str, team_label: str,
                 row_in: float) -> plt.Figure:
    """Horizontal bars, the rep's above the team's, one pair per label."""
    shown = _wrapped_labels(labels)
    y = np.arange(len(shown))
    fig, (ax,) = blank_figure()
    ax.barh(y - 0.2, rep_values, height=0.38, color=REP_COLOUR, label="you")
    if np.isfinite(np.asarray(team_values, dtype=float)).any():  # no team figure: no team bar, no legend entry
        ax.barh(y + 0.2, team_values, height=0.38, color=TEAM_COLOUR, label=team_label)
    _category_axis(ax.yaxis, y, shown)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    _layout(fig, [ax], title=title, legend=ax.get_legend_handles_labels(),
            heights_in=[_row_in(shown, row_in) * len(shown)], units=[""], xlabel=True)
    draw_ticks_as_marks(fig)
    return fig


def weekly_vs_team(rep_weekly: pd.DataFrame, band: pd.DataFrame, *, value: str = "total",
                   ylabel: str = "activities per week",
                   title: str = "Activities per week: you against the team") -> plt.Figure:
    """A weekly series of one rep over the team's interquartile band.

    Parameters
    ----------
    rep_weekly : DataFrame[week, <value>]
    band : DataFrame[week, median, q25, q75] (team, the rep excluded)
    ylabel : str, the value and its unit per week (written above the plot)
    """
    fig, (ax,) = blank_figure()
    ax.plot(rep_weekly["week"], rep_weekly[value], color=REP_COLOUR, lw=2.2, marker="o", ms=3, label="you",
            zorder=3)
    if band[["median", "q25", "q75"]].notna().to_numpy().any():  # no team figure: no band, no legend entry
        ax.plot(band["week"], band["median"], color=TEAM_COLOUR, lw=1.2, ls="--", label="team median")
        ax.fill_between(band["week"], band["q25"], band["q75"], color=TEAM_COLOUR, alpha=0.25, lw=0,
                        label="team, middle half")
    ax.set_xlabel("week starting")
    ax.set_ylim(bottom=0)
    _layout(fig, [ax], title=title, legend=ax.get_legend_handles_labels(), heights_in=[1.9], units=[ylabel],
            xlabel=True)
    _month_axis(ax)
    draw_ticks_as_marks(fig)
    return fig


def activity_mix(rep_mix: pd.Series, team_mix: pd.Series,
                 title: str = "Activity mix: share of each type") -> plt.Figure:
    """Horizontal bars of the share of each activity type, rep beside the team median."""
    types = list(rep_mix.index)
    return _paired_bars(types, rep_mix.values * 100, team_mix.reindex(types).values * 100,
                        xlabel="share of activities (%)", title=title, team_label="team median", row_in=0.45)


def commitment_progress(weekly: pd.DataFrame, target: float, baseline: float, label: str,
                        start, end) -> plt.Figure:
    """Weekly value of a committed metric, with the target line and the commitment period shaded.

    Parameters
    ----------
    weekly : DataFrame[week, value]
    target, baseline : float, in the metric's unit per week
    label : str, the metric in plain words (the y-axis, written above the plot)
    """
    fig, (ax,) = blank_figure()
    _week_bars(ax, weekly["week"], weekly["value"], color=REP_COLOUR, label="you, per week")
    ax.axhline(target, color=TARGET_COLOUR, lw=2, label=f"target {target:g}")
    ax.axhline(baseline, color=TEAM_COLOUR, lw=1.2, ls=":", label=f"baseline {baseline:g}")
    ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=TARGET_COLOUR, alpha=0.10, lw=0,
               label="commitment period", zorder=0)
    ax.set_xlabel("week starting")
    ax.set_ylim(bottom=0)
    _layout(fig, [ax], title=f"{label[:1].upper()}{label[1:]} against the target",
            legend=ax.get_legend_handles_labels(), heights_in=[1.9], units=[label], xlabel=True)
    _month_axis(ax)
    draw_ticks_as_marks(fig)
    return fig


def conversion_vs_team(rep_conv: pd.DataFrame, team_conv: pd.DataFrame,
                       title: str = "Stage conversion: you against the team") -> plt.Figure:
    """Dot-and-interval chart of each stage's conversion.

    Parameters
    ----------
    rep_conv : DataFrame[step, rate, low, high] (rates in 0..1)
    team_conv : DataFrame[step, median, q25, q75]
    """
    steps = list(rep_conv["step"])
    shown = _wrapped_labels(steps)
    y = np.arange(len(steps))
    team = team_conv.set_index("step").reindex(steps)
    fig, (ax,) = blank_figure()
    rate = rep_conv["rate"].to_numpy(dtype=float) * 100
    lo = rep_conv["low"].to_numpy(dtype=float) * 100
    hi = rep_conv["high"].to_numpy(dtype=float) * 100
    ok = ~np.isnan(rate)
    # clip: rounding can put an interval end a hair inside the rate at 0% or 100%
    err = np.clip([rate[ok] - lo[ok], hi[ok] - rate[ok]], 0, None)
    ax.errorbar(rate[ok], y[ok], xerr=err, fmt="o", color=REP_COLOUR, capsize=3, label="you, with 95% interval",
                zorder=3)
    if team[["median", "q25", "q75"]].notna().to_numpy().any():  # no team figure: nothing of the team drawn
        ax.scatter(team["median"] * 100, y, marker="|", s=300, color=TEAM_COLOUR, label="team median")
        ax.barh(y, (team["q75"] - team["q25"]) * 100, left=team["q25"] * 100, height=0.5,
                color=TEAM_COLOUR, alpha=0.3, label="team, middle half")
    _category_axis(ax.yaxis, y, shown)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("deals that moved on (%)")
    _layout(fig, [ax], title=title, legend=ax.get_legend_handles_labels(),
            heights_in=[_row_in(shown, 0.5) * len(steps)], units=[""], xlabel=True)
    draw_ticks_as_marks(fig)
    return fig


def days_in_stage_vs_team(rep_days: pd.DataFrame, team_days: pd.DataFrame,
                          title: str = "Typical days in each stage: you against the team") -> plt.Figure:
    """Paired bars of median days in stage.

    Parameters
    ----------
    rep_days : DataFrame[stage, median_days]
    team_days : DataFrame[stage, median_days]
    """
    stages = list(team_days["stage"])
    rep = rep_days.set_index("stage")["median_days"].reindex(stages)
    return _paired_bars(stages, rep.values, team_days["median_days"].values,
                        xlabel="median days in stage", title=title, team_label="team", row_in=0.5)


def coaching_record_chart(weekly: pd.DataFrame, periods: pd.DataFrame, labels: dict, sessions=()) -> plt.Figure:
    """The committed behaviours and new opportunities a week across several 1:1s, each commitment's period shaded.

    Parameters
    ----------
    weekly : DataFrame[week, new_opportunities, <metric id>...]
        One panel per metric column (its weekly level), then new opportunities a week.
    periods : DataFrame[metric, start, end, target, reading]
        Each commitment's period (naive dates), its target (drawn over the period in its
        metric's panel) and its reading (written above the panels, over the period).
    labels : dict of str -> str
        Metric id -> the metric in plain words (each panel's unit label).
    sessions : sequence of Timestamp
        The rep's 1:1s (naive), marked under the last panel.
    """
    metrics = [m for m in weekly.columns if m not in ("week", "new_opportunities")]
    fig, axes = blank_figure(len(metrics) + 1, sharex=True)
    for ax, metric in zip(axes, metrics):
        ax.plot(weekly["week"], weekly[metric], color=REP_COLOUR, lw=1.8, marker="o", ms=2.5)
        mine = periods[periods["metric"] == metric]
        ax.hlines(mine["target"], mine["start"], mine["end"], color=TARGET_COLOUR, lw=2,
                  label="target" if len(mine) else None)
    last = axes[-1]
    _week_bars(last, weekly["week"], weekly["new_opportunities"], color=GOOD_COLOUR)
    if len(sessions):
        last.plot(list(sessions), [0] * len(sessions), ls="", marker="^", ms=6, color=TEAM_COLOUR, clip_on=False,
                  label="1:1", zorder=4)
    for ax in axes:
        ax.set_ylim(bottom=0)
        _shade_periods(ax, periods)
    last.autoscale_view(scaley=False)  # the shared x view, now with every period
    names = {}  # one legend entry per name: each panel's target line is the same kind of mark
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            names.setdefault(name, handle)
    names["commitment period"] = plt.Rectangle((0, 0), 1, 1, color=TARGET_COLOUR, alpha=0.12)
    units = [str(labels.get(m, m)) for m in metrics] + ["new opportunities per week"]
    place = dict(title="The committed behaviour and new pipeline, commitment by commitment",
                 legend=(list(names.values()), list(names)), heights_in=[1.15] * len(metrics) + [1.3],
                 units=units, xlabel=False)
    _layout(fig, axes, head=False, **place)  # first pass: the axes' width, which decides how the readings stack
    _month_axis(last, with_year=True)  # the year on every tick: a record spans years
    rows = _reading_rows(axes[0], periods)
    reading_in = _lines_in(1, MIN_FONT_PT) + 0.04
    height = _layout(fig, axes, above_in=reading_in * (max(rows, default=-1) + 1), **place)
    first_top = axes[0].get_position().y1 * height + 0.1
    at = matplotlib.transforms.blended_transform_factory(axes[0].transData, fig.transFigure)
    for p, row in zip(periods.itertuples(), rows):
        x, ha = _reading_anchor(axes[0], p)
        axes[0].text(x, (first_top + row * reading_in) / height, str(p.reading), transform=at, ha=ha, va="bottom",
                     fontsize=MIN_FONT_PT, clip_on=False)
    draw_ticks_as_marks(fig)
    return fig


def _shade_periods(ax, periods: pd.DataFrame) -> None:
    """Shade each period's weeks across the whole height of ``ax``: the rectangles ``ax.axvspan`` makes.

    Added as plain artists with the periods' dates taken into the x data limits once, rather than
    one ``axvspan`` each (each updates the limits through the patch's path and asks for a new
    view); the caller then autoscales x once.
    """
    x0 = [ax.convert_xunits(t) for t in periods["start"]]
    x1 = [ax.convert_xunits(t) for t in periods["end"]]
    for lo, hi in zip(x0, x1):
        span = plt.Rectangle((lo, 0), hi - lo, 1, color=TARGET_COLOUR, alpha=0.12, lw=0, zorder=0,
                             transform=ax.get_xaxis_transform(which="grid"))
        ax.add_artist(span)
    if x0:
        ax.update_datalim([(x, 0.0) for x in x0 + x1], updatey=False)


def _reading_anchor(ax, period) -> tuple:
    """Where a period's reading is written: from its start, or ending at its end near the right edge."""
    x0, _ = _span_in(ax, period)
    right = ax.get_position().x1 * ax.figure.get_size_inches()[0]
    fits = x0 + text_width_in(str(period.reading)) <= right + 0.2
    return (period.start, "left") if fits else (period.end, "right")


def _span_in(ax, period) -> tuple[float, float]:
    """A period's start and end on the figure, in inches from its left edge."""
    fig_w = ax.figure.get_size_inches()[0]
    pos = ax.get_position()
    lo, hi = ax.get_xlim()
    def at(t):
        return (pos.x0 + pos.width * (mdates.date2num(pd.Timestamp(t)) - lo) / (hi - lo)) * fig_w
    return at(period.start), at(period.end)


def _reading_rows(ax, periods: pd.DataFrame) -> list[int]:
    """The line (0 nearest the panel) each period's reading goes on, so that no two touch."""
    extents = []
    for p in periods.itertuples():
        _, ha = _reading_anchor(ax, p)
        x0, x1 = _span_in(ax, p)
        width = text_width_in(str(p.reading))
        extents.append((x0, x0 + width) if ha == "left" else (x1 - width, x1))
    ends: list[float] = []  # where each line's last reading ends, placing them left to right
    rows = [0] * len(extents)
    for i in sorted(range(len(extents)), key=lambda i: extents[i][0]):
        left, right = extents[i]
        rows[i] = next((row for row, end in enumerate(ends) if end + 0.12 <= left), len(ends))
        ends[rows[i]:rows[i] + 1] = [right]
    return rows
