"""The one plot style of coachnb, and the report's charts.

Every chart is readable at A4/letter width (7.5 in wide), uses seaborn's colour-blind-safe
palette, labels its axes with units and has a title that says what to look at. Team
benchmarks are drawn as a band (interquartile range) and a median line: teammates are
never shown individually.
"""
from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # headless outside Jupyter; a kernel keeps its inline backend for analysts

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = sns.color_palette("colorblind")
REP_COLOUR = PALETTE[0]
TEAM_COLOUR = "0.55"
TARGET_COLOUR = PALETTE[1]
GOOD_COLOUR = PALETTE[2]
WIDTH_IN = 7.5


def use_style() -> None:
    """Apply coachnb's plot style (call once at the top of a notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.95)
    plt.rcParams.update({
        "figure.dpi": 96, "savefig.dpi": 110, "figure.figsize": (WIDTH_IN, 3.0),
        "axes.titlesize": 11.5, "axes.titleweight": "bold", "axes.titlelocation": "left",
        "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "figure.constrained_layout.use": False,
        # titles sit at the top of the axes: no x tick labels or offset text up there to dodge, so
        # matplotlib's automatic title placement (a tight-bbox pass per draw) would not move them
        "axes.titley": 1.0,
        # stage names and metric labels come from the data: "$" is a dollar sign, never mathtext
        "text.parse_math": False,
    })


def _margins(fig: plt.Figure, left_in: float = 0.75, bottom_in: float = 0.55, top_in: float = 0.4) -> None:
    """Fixed margins in inches. A layout engine would draw every figure twice, and a batch renders
    thousands: this halves the time a report spends on charts."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left_in / w, right=1 - 0.15 / w, bottom=bottom_in / h, top=1 - top_in / h)


def _legend_below(ax, ncols: int = 3) -> None:
    """Legend in a row under the x-axis label, where it can't cover data (call after _margins)."""
    axes_height_in = ax.get_position().height * ax.figure.get_size_inches()[1]
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.5 / axes_height_in), ncols=ncols, fontsize=8.5)


def _label_margin(labels) -> float:
    """Left margin (inches) that fits the longest y tick label at the style's font size."""
    longest = max((len(str(x)) for x in labels), default=4)
    return 0.3 + 0.085 * longest


def _week_axis(ax) -> None:
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))


def _paired_bars(labels, rep_values, team_values, *, xlabel: str, title: str, team_label: str,
                 row_in: float) -> plt.Figure:
    """Horizontal bars, the rep's above the team's, one pair per label."""
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, row_in * len(labels) + 1.5))
    ax.barh(y - 0.2, rep_values, height=0.38, color=REP_COLOUR, label="you")
    if np.isfinite(np.asarray(team_values, dtype=float)).any():  # no team figure: no team bar, no legend entry
        ax.barh(y + 0.2, team_values, height=0.38, color=TEAM_COLOUR, label=team_label)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    _margins(fig, left_in=_label_margin(labels), bottom_in=0.95)
    _legend_below(ax, 2)
    return fig


def weekly_vs_team(rep_weekly: pd.DataFrame, band: pd.DataFrame, *, value: str = "total",
                   ylabel: str = "activities per week",
                   title: str = "Activities per week: you against the team") -> plt.Figure:
    """A weekly series of one rep over the team's interquartile band.

    Parameters
    ----------
    rep_weekly : DataFrame[week, <value>]
    band : DataFrame[week, median, q25, q75] (team, the rep excluded)
    ylabel : str, the value and its unit per week
    """
    fig, ax = plt.subplots()
    if band[["median", "q25", "q75"]].notna().to_numpy().any():  # no team figure: no band, no legend entry
        ax.fill_between(band["week"], band["q25"], band["q75"], color=TEAM_COLOUR, alpha=0.25, lw=0,
                        label="team, middle half")
        ax.plot(band["week"], band["median"], color=TEAM_COLOUR, lw=1.2, ls="--", label="team median")
    ax.plot(rep_weekly["week"], rep_weekly[value], color=REP_COLOUR, lw=2.2, marker="o", ms=3, label="you")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("week starting")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=3)
    _week_axis(ax)
    _margins(fig)
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
    label : str, the metric in plain words (y-axis)
    """
    fig, ax = plt.subplots()
    ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=TARGET_COLOUR, alpha=0.10, lw=0,
               label="commitment period")
    ax.bar(weekly["week"], weekly["value"], width=5, color=REP_COLOUR, alpha=0.85, label="you, per week")
    ax.axhline(target, color=TARGET_COLOUR, lw=2, label=f"target {target:g}")
    ax.axhline(baseline, color=TEAM_COLOUR, lw=1.2, ls=":", label=f"baseline {baseline:g}")
    ax.set_ylabel(label)
    ax.set_xlabel("week starting")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{label[:1].upper()}{label[1:]} against the target")
    ax.legend(loc="upper left", ncols=2, fontsize=8)
    _week_axis(ax)
    _margins(fig)
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
    y = np.arange(len(steps))
    team = team_conv.set_index("step").reindex(steps)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.55 * len(steps) + 1.6))
    if team[["median", "q25", "q75"]].notna().to_numpy().any():  # no team figure: nothing of the team drawn
        ax.barh(y, (team["q75"] - team["q25"]) * 100, left=team["q25"] * 100, height=0.5,
                color=TEAM_COLOUR, alpha=0.3, label="team, middle half")
        ax.scatter(team["median"] * 100, y, marker="|", s=300, color=TEAM_COLOUR, label="team median")
    rate = rep_conv["rate"].to_numpy(dtype=float) * 100
    lo = rep_conv["low"].to_numpy(dtype=float) * 100
    hi = rep_conv["high"].to_numpy(dtype=float) * 100
    ok = ~np.isnan(rate)
    # clip: rounding can put an interval end a hair inside the rate at 0% or 100%
    err = np.clip([rate[ok] - lo[ok], hi[ok] - rate[ok]], 0, None)
    ax.errorbar(rate[ok], y[ok], xerr=err, fmt="o", color=REP_COLOUR,
                capsize=3, label="you, with 95% interval")
    ax.set_yticks(y, steps)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("deals that moved on (%)")
    ax.set_title(title)
    _margins(fig, left_in=_label_margin(steps), bottom_in=0.95)
    _legend_below(ax, 3)
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
                        xlabel="median days in stage", title=title, team_label="team", row_in=0.55)


def coaching_record_chart(weekly: pd.DataFrame, periods: pd.DataFrame, labels: dict, sessions=()) -> plt.Figure:
    """The committed behaviours and new opportunities a week across several 1:1s, each commitment's period shaded.

    Parameters
    ----------
    weekly : DataFrame[week, new_opportunities, <metric id>...]
        One panel per metric column (its weekly level), then new opportunities a week.
    periods : DataFrame[metric, start, end, target, reading]
        Each commitment's period (naive dates), its target (drawn over the period in its
        metric's panel) and its reading (written above the period).
    labels : dict of str -> str
        Metric id -> the metric in plain words (each panel's y-axis).
    sessions : sequence of Timestamp
        The rep's 1:1s (naive), marked under the last panel.
    """
    metrics = [m for m in weekly.columns if m not in ("week", "new_opportunities")]
    heights = [1.5] * len(metrics) + [1.7]
    fig, axes = plt.subplots(len(heights), 1, sharex=True, figsize=(WIDTH_IN, sum(heights) + 1.3),
                             gridspec_kw={"height_ratios": heights})
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        ax.plot(weekly["week"], weekly[metric], color=REP_COLOUR, lw=1.8, marker="o", ms=2.5)
        mine = periods[periods["metric"] == metric]
        ax.hlines(mine["target"], mine["start"], mine["end"], color=TARGET_COLOUR, lw=2,
                  label="target" if len(mine) else None)
        ax.set_ylabel(_wrapped(labels.get(metric, metric)), fontsize=8.5)
    last = axes[-1]
    last.bar(weekly["week"], weekly["new_opportunities"], width=5, color=GOOD_COLOUR, alpha=0.85)
    last.set_ylabel("new opportunities\nper week", fontsize=8.5)
    if len(sessions):
        last.plot(list(sessions), [0] * len(sessions), ls="", marker="^", ms=5, color=TEAM_COLOUR, clip_on=False,
                  label="1:1")
    for ax in axes:
        ax.set_ylim(bottom=0)
        for p in periods.itertuples():
            ax.axvspan(p.start, p.end, color=TARGET_COLOUR, alpha=0.12, lw=0)
    for p in periods.itertuples():  # the reading above each period, in the first panel
        axes[0].annotate(str(p.reading), (p.start, 1), xycoords=("data", "axes fraction"), fontsize=7.5,
                         va="bottom", ha="left", annotation_clip=False)
    last.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10)))  # the year on every tick: a record spans years
    last.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    fig.suptitle("The committed behaviour and new pipeline, commitment by commitment", x=0.01, ha="left",
                 fontsize=11.5, fontweight="bold")
    _margins(fig, left_in=1.0, bottom_in=0.95, top_in=0.7)
    handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
    names = [n for ax in axes for n in ax.get_legend_handles_labels()[1]]
    handles.append(plt.Rectangle((0, 0), 1, 1, color=TARGET_COLOUR, alpha=0.12))
    names.append("commitment period")
    last.legend(dict(zip(names, handles)).values(), dict(zip(names, handles)).keys(), loc="upper left",
                bbox_to_anchor=(0, -0.55 / (heights[-1])), ncols=3, fontsize=8.5)
    return fig


def _wrapped(label: str, width: int = 18) -> str:
    """A y-axis label on at most two lines."""
    words, lines = str(label).split(), [""]
    for w in words:
        if lines[-1] and len(lines[-1]) + len(w) + 1 > width and len(lines) < 2:
            lines.append(w)
        else:
            lines[-1] = f"{lines[-1]} {w}".strip()
    return "\n".join(lines)
