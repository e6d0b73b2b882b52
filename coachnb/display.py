"""Show report sections in a notebook: escaped HTML for text and tables, figures for charts.

Everything that came from the data passes through :func:`coachnb.formatting.esc`: a deal named
``<script>`` shows as text. Every output carries a real ``text/plain`` form beside its HTML (the
sentence, the table as text) and every chart its alt text, built from the numbers it draws, so a
screen reader, a text-only mail client or ``jupyter nbconvert --to markdown`` reads what the page
shows. Tables mark each cell with its column's name (``data-label``, for the stacked rows of the
phone layout) and number columns with ``class="num"`` (right-aligned, header included).
"""
from __future__ import annotations

import functools
import io
import math
import re

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from .formatting import esc, fmt_money, fmt_num, fmt_pct
from .report import in_first_person
from .record import chart_alt, chart_labels, chart_periods, shown_table


def show_html(html: str, text: str) -> None:
    """Display ``html`` with ``text`` as its plain-text form (what a text-only reader shows)."""
    display({"text/html": html, "text/plain": text}, raw=True)


def para(text: str, css: str = "") -> None:
    """One paragraph of plain text (escaped)."""
    cls = f' class="{css}"' if css else ""
    show_html(f"<p{cls}>{esc(text)}</p>", str(text))


def key_sentence(text: str) -> None:
    """The one sentence that closes a block: what stands out, or that nothing does."""
    para(text, "cnb-key")


def bullets(items: list[str], css: str = "") -> None:
    if not items:
        return
    cls = f' class="{css}"' if css else ""
    show_html(f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>",
              "\n".join(f"- {i}" for i in items))


#: a cell that reads as a number: an optional sign and currency, digits, a unit ("%", "×"), and
#: optionally an interval in brackets or an arrow to a second number ("1.3 → 2.1")
NUMBER_CELL = re.compile(r"[-+\u2212]?(?:[^\w\s]{1,3}|[A-Za-z]{1,4}\u00a0)?\d[\d,.'\u00a0\u202f ]*"
                         r"(?:%|×|\u00a0\S{1,4})?(?:\s*\(.*\))?(?:\s*→\s*\S.*)?")
EMPTY_CELLS = frozenset({"", "–", "n/a"})


def cell_text(value) -> str:
    """A table cell as text: missing as "–", whole numbers with thousands separators."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return fmt_num(value) if float(value).is_integer() else f"{value:,.6g}"


def is_number_column(values, dtype=None) -> bool:
    """Whether a column holds numbers (right-aligned): a numeric dtype, or every shown cell reads as one."""
    if dtype is not None and pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return True
    shown = [v for v in values if v not in EMPTY_CELLS]
    return bool(shown) and all(NUMBER_CELL.fullmatch(v) for v in shown)


def table_html(header: list[str], rows: list[list[str]], numeric: list[bool], *, css: str = "cnb-table",
               caption: str | None = None, raw_cells: bool = False) -> str:
    """An HTML table: headers ``scope="col"``, each cell labelled with its column, number columns ``num``.

    Cells are escaped unless ``raw_cells`` (the caller escaped them and added links).
    """
    def cls(i):
        return ' class="num"' if numeric[i] else ""

    head = "".join(f'<th scope="col"{cls(i)}>{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(
        f'<td{cls(i)} data-label="{esc(header[i])}">{v if raw_cells else esc(v)}</td>' for i, v in enumerate(row))
        + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="{css}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def table_text(header: list[str], rows: list[list[str]]) -> str:
    """The table as aligned plain text, one row a line (its ``text/plain`` form)."""
    widths = [max([len(str(h))] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()
                     for line in [header, *rows])


def table(frame: pd.DataFrame, *, formats: dict | None = None, caption: str | None = None) -> None:
    """A small table, escaped, without the index; text columns left, number columns right."""
    f = frame.copy()
    for col, fn in (formats or {}).items():
        if col in f.columns:
            f[col] = f[col].map(fn)
    header = [str(c) for c in f.columns]
    rows = [[cell_text(v) for v in rec] for rec in f.itertuples(index=False, name=None)]
    numeric = [is_number_column([r[i] for r in rows], f.dtypes.iloc[i]) for i in range(len(header))]
    text = table_text(header, rows)
    show_html(table_html(header, rows, numeric, caption=caption), f"{caption}\n{text}" if caption else text)


#: SVG output: text stays text (the reader's font, sharp at any size, selectable, in a PDF's text);
#: ids salted with a constant and no date or creator, so the same chart gives the same bytes
SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "coachnb"}
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def figure(fig: plt.Figure, alt: str) -> None:
    """Show a figure once, as SVG with its alt text, and free it (a batch renders hundreds).

    Saving it here, rather than leaving it to the kernel's plotting backend, gives the same image
    under every engine, in JupyterLab and in a batch. SVG rather than PNG: on the demo it takes
    ~40 % less CPU to write and half the bytes, and scaled to a phone or printed its text stays
    sharp (matplotlib escapes text from the data as XML; the page shows it with ``<img>``, where
    an SVG can run no script and load nothing). ``alt`` is the image's ``text/plain`` form, which
    the report template writes as its ``alt``: what the chart shows and its key numbers, in words.
    """
    from .plots import ReportSVGCanvas  # imported on use: the overview draws no chart and seaborn is slow to import

    ReportSVGCanvas(fig)  # the figure's canvas from now on: it measures each text once per process
    buf = io.StringIO()
    with plt.rc_context(SVG_RC):
        fig.savefig(buf, format="svg", metadata=SVG_METADATA)
    plt.close(fig)
    display({"image/svg+xml": buf.getvalue(), "text/plain": alt}, raw=True)


def definition_list(pairs: list[tuple[str, str]]) -> None:
    show_html('<dl class="cnb-facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs) + "</dl>",
              "\n".join(f"{k}: {v}" for k, v in pairs))


def blank_lines(labels: list[str]) -> None:
    """Lines to fill in by hand (the 30-day plan prints well)."""
    show_html('<div class="cnb-fill">' + "".join(
        f'<p><span class="cnb-label">{esc(label)}</span><span class="cnb-line"></span></p>' for label in labels)
        + "</div>", "\n".join(f"{label} ____________________" for label in labels))


# --------------------------------------------------------------------------- alt text of the charts
def _span(weeks) -> str:
    return f"{pd.Timestamp(weeks.min()):%d %b %Y} to {pd.Timestamp(weeks.max()):%d %b %Y}"


def weekly_alt(what: str, weekly: pd.DataFrame, value: str, band: pd.DataFrame) -> str:
    """Alt text of a weekly line against the team band: the weeks, the rep's range, mean and last week."""
    v = pd.to_numeric(weekly[value], errors="coerce").dropna()
    if v.empty:
        return f"Line chart of {what}: no weeks to show."
    text = (f"Line chart of {what}, week by week from {_span(weekly['week'])}: yours ran from {fmt_num(v.min())} "
            f"to {fmt_num(v.max())}, {fmt_num(v.mean())} on average, {fmt_num(v.iloc[-1])} in the last week.")
    median = pd.to_numeric(band["median"], errors="coerce").dropna() if "median" in band else pd.Series(dtype=float)
    if median.empty:
        return text + " No team figure is drawn."
    return (text + f" The team's median ran from {fmt_num(median.min())} to {fmt_num(median.max())}, "
            "with the middle half of the team shaded.")


def mix_alt(rep_mix: pd.Series, team_mix: pd.Series) -> str:
    """Alt text of the activity mix: each type's share, the team median's beside it."""
    parts = []
    for kind, share in rep_mix.items():
        team = team_mix.get(kind, float("nan"))
        parts.append(f"{kind} {fmt_pct(share)}" + ("" if pd.isna(team) else f" (team {fmt_pct(team)})"))
    return "Bar chart of the share of your activities by type" + (
        ", against the team's median share: " if team_mix.notna().any() else ": ") + "; ".join(parts) + "."


def conversion_alt(rep: pd.DataFrame, team: pd.DataFrame) -> str:
    """Alt text of stage conversion: each step's rate with its interval, and the team's median."""
    med = team.set_index("step")["median"] if "median" in team else pd.Series(dtype=float)
    parts = []
    for step, rate, low, high in zip(rep["step"], rep["rate"], rep["low"], rep["high"]):
        shown = "no deals finished this step" if pd.isna(rate) else f"{fmt_pct(rate)} ({fmt_pct(low)} to {fmt_pct(high)})"
        team_rate = med.get(step, float("nan"))
        parts.append(f"{step} {shown}" + ("" if pd.isna(team_rate) else f", team median {fmt_pct(team_rate)}"))
    return ("Chart of the share of deals that moved on at each step, yours with a 95% interval"
            + (" against the team's middle half" if med.notna().any() else "") + ": " + "; ".join(parts) + ".")


def days_alt(rep: pd.DataFrame, team: pd.DataFrame) -> str:
    """Alt text of days in stage: the rep's median days in each stage, the team's beside it."""
    mine = rep.set_index("stage")["median_days"]
    parts = []
    for stage, team_days in zip(team["stage"], team["median_days"]):
        own = mine.get(stage, float("nan"))
        parts.append(f"{stage} {'n/a' if pd.isna(own) else fmt_num(own, 0)} days"
                     + ("" if pd.isna(team_days) else f" (team {fmt_num(team_days, 0)})"))
    return "Bar chart of the median days deals spend in each stage, yours against the team: " + "; ".join(parts) + "."


def progress_alt(label: str, weekly: pd.DataFrame, target: float, baseline: float, start, end) -> str:
    """Alt text of a commitment's weekly progress: every week's value against the target and baseline."""
    values = ", ".join(fmt_num(v) for v in pd.to_numeric(weekly["value"], errors="coerce"))
    return (f"Bar chart of {label} each week from {_span(weekly['week'])}: {values}; "
            f"target {fmt_num(target)}, before the commitment {fmt_num(baseline)}; the commitment period, "
            f"{pd.Timestamp(start):%d %b %Y} to {pd.Timestamp(end):%d %b %Y}, is shaded.")


# --------------------------------------------------------------------------- report sections
def _needs(section: str):
    """Show the section, or the one sentence saying which data it needs when that data is absent."""
    def wrap(show_section):
        @functools.wraps(show_section)
        def shown(r) -> None:
            if getattr(r, section) is None:
                para(r.missing[section], "cnb-missing")
            else:
                show_section(r)
        return shown
    return wrap


def header(r) -> None:
    """Title block: who, when, and the 1:1 cadence."""
    h = r.header
    who = "Pre-read" if r.audience == "rep" else "Coaching report"
    kicker = f"{who} · 1:1 on {h.as_of:%A %d %B %Y}"
    show_html(f'<header class="cnb-header"><p class="cnb-kicker">{esc(kicker)}</p><h1>{esc(h.name)}</h1></header>',
              f"{h.name}\n{kicker}")
    definition_list([("Team", h.team), ("Manager", h.manager), ("Period", h.period),
                     ("Last 1:1", h.sentence)])
    if h.data_note:
        para(h.data_note, "cnb-missing")
    para(r.intro)


@_needs("activity")
def activity(r) -> None:
    a = r.activity
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    figure(plots.weekly_vs_team(a.rep_weekly, a.band), weekly_alt("activities per week", a.rep_weekly, "total", a.band))
    if a.rep_total:
        figure(plots.activity_mix(a.rep_mix, a.team_mix), mix_alt(a.rep_mix, a.team_mix))
    key_sentence(a.sentence)


def pipeline(r) -> None:
    """New opportunities per week against the team, and how long won deals took."""
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    p = r.pipeline
    figure(plots.weekly_vs_team(p.rep_weekly, p.band, value="opportunities_created",
                                ylabel="new opportunities per week",
                                title="New opportunities per week: you against the team"),
           weekly_alt("new opportunities per week", p.rep_weekly, "opportunities_created", p.band))
    key_sentence(p.sentence)


def conversion(r) -> None:
    c = r.conversion
    if c is None:
        para(r.missing["conversion"], "cnb-missing")
        if r.stage_mix is not None:  # where open deals stand now is known from the deals table alone
            table(r.stage_mix.table)
            key_sentence(r.stage_mix.sentence)
        return
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    if c.rep["rate"].notna().any():
        figure(plots.conversion_vs_team(c.rep, c.team), conversion_alt(c.rep, c.team))
    shown = c.rep[["step", "entered", "advanced", "dropped", "still_open"]].rename(columns={
        "entered": "deals in stage", "advanced": "moved on", "dropped": "lost there", "still_open": "still open"})
    if len(r.self_view):
        # the rep's own score for the stage a step starts from, beside what the data shows
        scores = r.self_view.set_index("topic")["score"]
        own = "self-assessment (1-5)" if r.audience == "manager" else "my own score (1-5)"
        shown[own] = c.rep["from_stage"].map(scores).map(lambda x: "–" if pd.isna(x) else f"{x:g}")
    table(shown)
    key_sentence(c.sentence)


@_needs("velocity")
def velocity(r) -> None:
    v = r.velocity
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    if v.rep["median_days"].notna().any() or v.team["median_days"].notna().any():
        figure(plots.days_in_stage_vs_team(v.rep, v.team), days_alt(v.rep, v.team))
    key_sentence(v.sentence)


def stalled(r) -> None:
    s = r.stalled
    if len(s.deals):
        days = "days in stage" if s.basis == "stage" else "days open"
        limit = f"{r.stalled_percentile:.0f}th percentile of all deals (days)"
        deals = s.deals if s.basis == "stage" else s.deals.drop(columns="stage")
        table(deals.rename(columns={"name": "deal", "days_in_stage": days, "threshold_days": limit}),
              formats={"amount": lambda x: "unknown" if pd.isna(x) else fmt_money(x, currency_of(r)),
                       days: lambda x: f"{x:.0f}",
                       limit: lambda x: f"{x:.0f}"})
    key_sentence(s.sentence)


@_needs("capture")
def capture(r) -> None:
    c = r.capture
    key_sentence(c.sentence)



def _h3(text: str) -> None:
    show_html(f"<h3>{esc(text)}</h3>", f"### {text}")


def verdict(question: str, p) -> None:
    """A pipeline verdict: the question in bold, then the answer."""
    show_html(f'<p class="cnb-verdict {VERDICT_CSS.get(p.verdict, "")}"><strong>{esc(question)}</strong> '
              f"{esc(p.sentence)}</p>", f"{question} {p.sentence}")


VERDICT_CSS = {"moved": "cnb-verdict-moved", "no meaningful change": "cnb-verdict-flat",
               "not enough data to tell": "cnb-verdict-unknown", "activity did not change": "cnb-verdict-unknown"}


def since_last_time(r) -> None:
    """Each commitment: the agreement, what happened week by week, and whether pipeline moved."""
    if not r.commitments:
        para(r.commitments_note or r.missing["commitments"], "cnb-missing")
        ch = r.detected_change
        if ch is not None:
            para(ch.sentence)
            p = ch.pipeline
            verdict("Did pipeline move after it?", p)
            if r.audience == "manager":
                table(evidence_table(p))
        return
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    for rv in r.commitments:
        c = rv.commitment
        _h3(f"{rv.label[:1].upper()}{rv.label[1:]}, {c['start']:%d %b %Y} to {c['end']:%d %b %Y}")
        para(rv.agreed)
        # the manager's own note stays in the manager's report; a note marked for the rep goes to both
        if c.get("note") and r.audience == "manager":
            para(f"Note from the 1:1 (yours, not in the rep's pre-read): {c['note']}")
        if c.get("note_for_rep"):
            para(f"Note from the 1:1: {c['note_for_rep']}")
        if len(rv.weekly):
            figure(plots.commitment_progress(rv.weekly, float(c["target"]), float(c["baseline"]), rv.label,
                                             c["start"].tz_localize(None), c["end"].tz_localize(None)),
                   progress_alt(rv.label, rv.weekly, float(c["target"]), float(c["baseline"]), c["start"], c["end"]))
        a = rv.assessment
        if a is not None:
            key_sentence(a.activity.sentence)
            p = a.pipeline
            verdict("Did it move pipeline?", p)
            if r.audience == "manager":  # the rep's pre-read keeps the plain sentence, not the statistics
                table(evidence_table(p))
            if a.secondary_sentence:
                para(a.secondary_sentence)
        d = rv.diagnosis
        if d is not None and r.audience == "manager":
            para(f"{d.label}. {d.detail}".strip())
            para(d.opening_question, "cnb-question")
        elif d is not None:
            para(d.opening_question, "cnb-question")
    if r.pattern:
        para(r.pattern)


def coaching_record(rec, audience: str = "manager", compact: bool = True) -> None:
    """A rep's coaching record (:class:`coachnb.record.CoachingRecord`): what it holds, a table and the chart.

    ``compact``: the last few commitments (the report's section); otherwise every one, each with its sentence.
    """
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    para(rec.summary)
    rows = rec.recent() if compact else rec.commitments
    if len(rows):
        table(shown_table(rows, audience))
    if not compact:
        bullets(list(rec.commitments["sentence"]))
    if len(rec.weekly) and len(rec.charted()):
        figure(plots.coaching_record_chart(rec.weekly, chart_periods(rec), chart_labels(rec),
                                           [pd.Timestamp(t).tz_localize(None) for t in rec.sessions]), chart_alt(rec))
    if rec.pattern:
        para(rec.pattern)


def evidence_table(p) -> pd.DataFrame:
    """The numbers behind a pipeline verdict, in plain labels."""
    def finite(v) -> bool:  # None, NaN and inf (no teammates, no weeks) read as "n/a", never "nan" or "inf×"
        try:
            return v is not None and math.isfinite(float(v))
        except (TypeError, ValueError):
            return False

    def x(v):
        return f"{v:.2f}×" if finite(v) else "n/a"

    def rate(v):
        return f"{v:.1f}" if finite(v) else "n/a"

    rows = [
        ("New opportunities a week, before → after", f"{rate(p.pre_rate)} → {rate(p.post_rate)}"),
        ("What the team's trend predicted", rate(p.counterfactual_rate)),
        ("Effect (rate ratio) with 95% interval", f"{x(p.rate_ratio)} ({x(p.ci_low)} to {x(p.ci_high)})"),
        ("Smallest effect this data could detect", x(p.mde_ratio)),
        ("p-value (against teammates' ordinary weeks)", "n/a" if pd.isna(p.p_value) else f"{p.p_value:.2f}"),
        ("Data", f"{p.n_pre_weeks} weeks before, {p.n_post_weeks} after, {p.n_peers} teammates for comparison"),
    ]
    # the reasons in words, never the gates' internal names ("activity_changed", "post_horizon")
    failed = [str(v).split(":", 1)[1].strip() for v in (p.gates or {}).values() if str(v).startswith("failed:")]
    if failed:
        rows.append(("Checks not passed", "; ".join(f[:1].upper() + f[1:] for f in failed)))
    return pd.DataFrame(rows, columns=["", "value"])


def focus(r) -> None:
    f = r.focus
    if not f.areas:
        para(f.note or "Nothing stands out strongly enough to pick a focus from the data.")
        return
    if f.note:
        para(f.note)
    scen = {id(a): t for a, t in r.scenarios}
    for i, area in enumerate(f.areas, 1):
        _h3(f"{i}. {area.area}")
        para(area.reason)
        t = scen.get(id(area))
        if t is not None and len(t):
            sc = area.suggested
            para(f"What if {sc['label']} went from {sc['baseline']:g} to {sc['target']:g} a week? "
                 "Expected extra new opportunities and pipeline (95% interval):")
            table(scenario_table(t, currency_of(r)))
            if t.attrs.get("basis"):
                para(t.attrs["basis"])


def currency_of(r):
    """The team's currency a report writes amounts in (``None``: no currency named, as before the setting)."""
    return getattr(r, "currency", None)


def scenario_table(t: pd.DataFrame, currency=None) -> pd.DataFrame:
    """A what-if scenario's rows: extra new opportunities and pipeline, each a model's estimate."""
    def rng(a, lo, hi, money=False):
        f = (lambda v: fmt_money(v, currency, kind="estimate")) if money else (lambda v: f"{v:.1f}")
        if f(lo) == f(hi):  # an interval with no width says nothing an interval should
            return f(a)
        return f"{f(a)} ({f(lo)} to {f(hi)})"

    out = pd.DataFrame({
        "over": [f"{d:.0f} days" for d in t["horizon_days"]],
        "extra new opportunities": [rng(a, lo, hi) for a, lo, hi in zip(t["extra_opportunities"], t["low"], t["high"])],
        "extra pipeline value": [rng(a, lo, hi, True) for a, lo, hi in
                                 zip(t["extra_pipeline_value"], t["low_value"], t["high_value"])],
    })
    if t["extra_pipeline_value"].isna().all():  # no deal size to value them with (amounts unknown)
        out = out.drop(columns="extra pipeline value")
    return out


def questions(r) -> None:
    if r.audience == "rep":
        para("Questions to think about before the 1:1:")
    show_html('<ol class="cnb-questions">' + "".join(f"<li>{esc(q)}</li>" for q in r.questions) + "</ol>",
              "\n".join(f"{i}. {q}" for i, q in enumerate(r.questions, 1)))
    if r.preread:
        for title, items in r.preread.get("sections", []):
            _h3(title)
            bullets(items)


def plan(r) -> None:
    p = r.plan
    if p.get("prefilled"):
        definition_list(p["prefilled"])
    else:
        para(p.get("note", "No suggestion from the data; agree the behaviour together."))
    blank_lines(p["blanks"])
    s = p.get("suggested")
    if s and r.audience == "manager":  # the plan to record loop: one command writes the agreed row
        cmd = f"coachnb plan DATA_DIR --rep {r.header.rep_id} --as-of {r.header.as_of:%Y-%m-%d}"
        show_html(f'<p class="cnb-notes">Once agreed, record it (metric <code>{esc(s["metric"])}</code>, '
                  f'add <code>--target</code> to change the target): <code>{esc(cmd)}</code></p>',
                  f"Once agreed, record it (metric {s['metric']}, add --target to change the target): {cmd}")


def results(r) -> None:
    para(r.results.sentence)
    table(r.results.rows)


def method_notes(r) -> None:
    team = ("Team figures are the median and middle half (25th to 75th percentile) of your teammates; "
            "no teammate is shown by name." if r.team_figures else
            "Team figures appear only when they pool enough teammates that no one's own numbers can be "
            "recognised; there are too few here, so none is shown.")
    # a note for each section shown, none for a section the data left out
    notes = [team]
    if r.conversion is not None:
        notes.append("Stage conversion counts only deals that have moved on or been lost; deals still open are "
                     "shown but not counted as lost. Intervals are 95% Wilson intervals.")
    if r.velocity is not None:
        notes.append("Time in stage treats deals still in a stage as 'at least this long' (Kaplan-Meier), "
                     "not as finished.")
    if r.commitments or r.detected_change is not None:
        notes.append("'Did it move pipeline?' compares your new opportunities after the change with what the "
                     "team's trend predicted, and judges the difference against the same comparison at many "
                     "ordinary weeks of your teammates and of your own past. 'Not enough data to tell' is an "
                     "honest answer: small changes need many weeks to show.")
    if r.excluded_note:
        notes.append(r.excluded_note)
    bullets([in_first_person(n) for n in notes] if r.audience == "rep" else notes, "cnb-notes")
