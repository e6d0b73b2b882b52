"""Show the team overview in a notebook: the header, one row per rep, the managers and team effects.

The page is built from :class:`coachnb.overview.Overview`; text from the data is escaped with
:func:`coachnb.formatting.esc` and every table has a text form beside its HTML, as in
:mod:`coachnb.display`.
"""
from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd

from .display import key_sentence, para, show_html, table, table_html, table_text
from .formatting import esc
from .overview import cadence_sentence
from .sparklines import sparkline_label, sparkline_svg


def overview_header(ov) -> None:
    whose = f" · {ov.manager}'s reps" if getattr(ov, "manager", "") else ""
    kicker = f"Team overview{whose} · 1:1s from {ov.as_of:%A %d %B %Y}"
    show_html(f'<header class="cnb-header"><p class="cnb-kicker">{esc(kicker)}</p>'
              "<h1>Before this week's 1:1s</h1></header>", f"Before this week's 1:1s\n{kicker}")
    para(f"Period: {ov.period}. One row per rep, those with the most to look at in the next 1:1 first: "
         "the process flags worth a look, not a ranking of people.")


#: the sparklines' column: what the pictures show, and how to read them without colour
WEEKS_HEADER = "week by week (line: the rep; grey: the team's middle half)"
#: each sparkline: the row's series and what a value is
SPARKLINES = (("activity_weekly", "activities per week", "activity"),
              ("pipeline_weekly", "new opportunities per week", "new opportunities"))

OVERVIEW_COLUMNS = (  # (header, record key, format or None for text, number column)
    ("rep", "name", None, False), ("needs a look", "flags", lambda f: ", ".join(f) or "–", False),
    ("team", "team", None, False), ("manager", "manager", None, False),
    ("days since 1:1", "days_since_1to1", lambda d: f"{d:.0f}", True),
    ("activity, last 4 weeks vs before", "activity_trend", lambda x: f"{100 * x:.0f}%", True),
    (WEEKS_HEADER, "activity_weekly", None, False),
    ("last commitment", "commitment", None, False), ("diagnosis", "diagnosis", None, False),
    ("did it move pipeline?", "verdict", None, False),
    ("last verdicts (start month)", "recent_verdicts", None, False),
)
#: the column an overdue 1:1 is flagged in (in words and colour); stalled deals and the step that
#: stands out are said in "needs a look"
DAYS_COLUMN = 4
WEEKS_COLUMN = 6
VERDICT_COLUMN = 9


def row_sparklines(rec: dict) -> tuple[str, str]:
    """The row's pictures (inline SVG, one per measure of :data:`SPARKLINES`) and the same in words.

    A rep without a record in the period, or without a measure (no activity log), gets no
    picture of it; ("", "–") when there is none at all.
    """
    if not rec.get("active", True):
        return "", "–"
    cells, words = [], []
    for key, what, caption in SPARKLINES:
        series = rec.get(key)
        if isinstance(series, dict) and series.get("values"):
            svg = sparkline_svg(what, series["values"], series.get("low"), series.get("high"))
            # the caption is for the eye; a screen reader reads the picture's own label, with its numbers
            cells.append(f'<span class="cnb-spark-cell"><span class="cnb-spark-what" aria-hidden="true">'
                         f'{esc(caption)}</span>{svg}</span>')
            words.append(sparkline_label(what, series["values"], series.get("low"), series.get("high")))
    if not cells:
        return "", "–"
    return f'<div class="cnb-sparks">{"".join(cells)}</div>', "; ".join(words)


#: how the table says a verdict whose test's own name would overstate it
VERDICT_SHOWN = {"activity did not change": "not judged: the change in activity isn't confirmed"}


def verdict_words(verdict, q) -> str:
    """A verdict in the table's words, a tested one with whether chance could explain it among every
    verdict listed (the q-value)."""
    shown = VERDICT_SHOWN.get(verdict, verdict)
    if q is None or pd.isna(q):
        return shown
    return f"{shown} ({'unlikely to be chance' if q <= 0.05 else 'could be chance'})"


def overview_table(ov) -> None:
    """One row per rep, each name linking to the rep's report."""
    def cell(v, fmt=None):
        return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else (fmt or str)(v)

    header = [h for h, *_ in OVERVIEW_COLUMNS]
    numeric = [num for *_, num in OVERVIEW_COLUMNS]
    texts, rows = [], []
    for rec in ov.reps.to_dict("records"):
        shown = [cell(rec.get(key), fmt) for _, key, fmt, _ in OVERVIEW_COLUMNS]  # a column ov.reps lacks shows "–"
        pictures, shown[WEEKS_COLUMN] = row_sparklines(rec)
        if rec["overdue"]:  # said in words as well as in colour
            shown[DAYS_COLUMN] = f"{shown[DAYS_COLUMN]} (overdue)"
        if isinstance(rec.get("verdict"), str):
            shown[VERDICT_COLUMN] = verdict_words(rec["verdict"], rec.get("q_value"))
        texts.append(shown)
        html = [esc(v) for v in shown]
        if isinstance(rec.get("report"), str):
            html[0] = f'<a href="{esc(quote(rec["report"]))}">{html[0]}</a>'
        if isinstance(rec.get("preread"), str):  # the rep's own copy, to send to them
            html[0] += f' <a class="cnb-preread" href="{esc(quote(rec["preread"]))}">(pre-read)</a>'
        if rec.get("flags"):
            html[1] = f'<span class="cnb-flag">{html[1]}</span>'
        if rec["overdue"]:
            html[DAYS_COLUMN] = f'<span class="cnb-flag">{html[DAYS_COLUMN]}</span>'
        if pictures:  # the SVG is escaped where it is made (coachnb.sparklines)
            html[WEEKS_COLUMN] = pictures
        rows.append(html)
    show_html(table_html(header, rows, numeric, css="cnb-table cnb-overview", raw_cells=True),
              table_text(header, texts))
    if getattr(ov, "inactive_note", ""):
        para(ov.inactive_note, "cnb-missing")
    if ov.fdr_note:
        para(ov.fdr_note, "cnb-notes")


def overview_managers(ov) -> None:
    key_sentence(cadence_sentence(ov))
    pages = getattr(ov, "manager_pages", None) or {}
    if pages:  # each manager's own page: only their reps, the same rows
        links = ", ".join(f'<a href="{esc(quote(f))}">{esc(m)}</a>' for m, f in sorted(pages.items()))
        show_html(f"<p>A page for each manager, with only their reps: {links}.</p>",
                  "A page for each manager, with only their reps: " + ", ".join(sorted(pages)) + ".")
    m = ov.managers.copy()
    m["cadence_kept"] = m["cadence_kept"].map(lambda x: "–" if pd.isna(x) else f"{100 * x:.0f}%")
    m["median_days_since_1to1"] = m["median_days_since_1to1"].map(lambda x: "–" if pd.isna(x) else f"{x:.0f}")
    table(m.rename(columns={"median_days_since_1to1": "median days since 1:1",
                            "cadence_kept": "reps seen on time"}))


def overview_effects(ov) -> None:
    """What an extra unit of activity goes with, per team, with its assumptions stated."""
    e = ov.effects
    if e.empty:
        para("Not enough data to estimate, per team, how activity relates to new pipeline "
             "(the model needs an activity log and at least 8 reps in a team).", "cnb-missing")
        return
    shown = pd.DataFrame({
        "team": e["team"], "activity": e["metric"], "reps": e["reps"],
        "new opportunities per extra unit a week": [
            f"{x:+.1f}% ({lo:+.1f}% to {hi:+.1f}%)" if np.isfinite(lo) and np.isfinite(hi)
            else f"{x:+.1f}% (no reliable range)" for x, lo, hi in zip(e["extra_pct"], e["low_pct"], e["high_pct"])],
        "check: activity led by pipeline? (p)": e["lead_p_value"].map(lambda p: "–" if pd.isna(p) else f"{p:.2f}"),
    })
    table(shown)
    para("Read: one more unit of the activity a week goes with this many percent more new opportunities "
         "over the following 0 to 4 weeks (95% interval). The check should show no relation (a large p); "
         "a small one means pipeline may be driving activity rather than the other way round.", "cnb-notes")
    # the model's full assumptions are for analysts (Overview.effects_assumptions, docs/methods.md)
    para("These figures compare each rep with their own other weeks, after taking out what the whole team "
         "went through each week. They show what goes together, not proof that one causes the other.",
         "cnb-notes")


def overview_failed(ov) -> None:
    if len(ov.failed):
        para(f"{len(ov.failed)} report(s) could not be rendered this time; their last good report, if any, "
             "is unchanged. Details are in the run's log.", "cnb-missing")
        table(ov.failed)
