"""Show report sections in a notebook: escaped HTML for text and tables, figures for charts.

Everything that came from the data passes through :func:`coachnb.formatting.esc` or
``DataFrame.to_html(escape=True)``: a deal named ``<script>`` shows as text.
"""
from __future__ import annotations

import functools
import io
import math
from urllib.parse import quote

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Image, display

from .formatting import esc
from .overview import cadence_sentence


def para(text: str, css: str = "") -> None:
    """One paragraph of plain text (escaped)."""
    cls = f' class="{css}"' if css else ""
    display(HTML(f"<p{cls}>{esc(text)}</p>"))


def key_sentence(text: str) -> None:
    """The one sentence that closes a block: what stands out, or that nothing does."""
    para(text, "cnb-key")


def bullets(items: list[str], css: str = "") -> None:
    if not items:
        return
    cls = f' class="{css}"' if css else ""
    display(HTML(f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"))


def table(frame: pd.DataFrame, *, formats: dict | None = None, caption: str | None = None) -> None:
    """A small table, escaped, without the index."""
    f = frame.copy()
    for col, fn in (formats or {}).items():
        if col in f.columns:
            f[col] = f[col].map(fn)
    html = f.to_html(index=False, escape=True, border=0, classes="cnb-table", na_rep="–")
    if caption:
        html = html.replace(">\n  <thead>", f">\n  <caption>{esc(caption)}</caption>\n  <thead>", 1)
    display(HTML(html))


def figure(fig: plt.Figure) -> None:
    """Show a figure once, as a PNG, and free it (a batch renders hundreds).

    Saving the PNG here, rather than leaving it to the kernel's plotting backend, gives the same
    image under every engine, in JupyterLab and in a batch.
    """
    buf = io.BytesIO()
    # zlib level 1 instead of PIL's 6: the same pixels, encoded ~4x faster, files ~15-25% larger
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


def definition_list(pairs: list[tuple[str, str]]) -> None:
    display(HTML('<dl class="cnb-facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
                 + "</dl>"))


def blank_lines(labels: list[str]) -> None:
    """Lines to fill in by hand (the 30-day plan prints well)."""
    display(HTML('<div class="cnb-fill">' + "".join(
        f'<p><span class="cnb-label">{esc(label)}</span><span class="cnb-line"></span></p>' for label in labels)
        + "</div>"))


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
    who = "Your pre-read" if r.audience == "rep" else "Coaching report"
    display(HTML(
        f'<header class="cnb-header"><p class="cnb-kicker">{esc(who)} · 1:1 on {h.as_of:%A %d %B %Y}</p>'
        f"<h1>{esc(h.name)}</h1></header>"))
    definition_list([("Team", h.team), ("Manager", h.manager), ("Period", h.period),
                     ("Last 1:1", h.sentence)])
    if h.data_note:
        para(h.data_note, "cnb-missing")
    para(r.intro)


@_needs("activity")
def activity(r) -> None:
    a = r.activity
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    figure(plots.weekly_vs_team(a.rep_weekly, a.band))
    if a.rep_total:
        figure(plots.activity_mix(a.rep_mix, a.team_mix))
    key_sentence(a.sentence)


def pipeline(r) -> None:
    """New opportunities per week against the team, and how long won deals took."""
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    p = r.pipeline
    figure(plots.weekly_vs_team(p.rep_weekly, p.band, value="opportunities_created",
                                ylabel="new opportunities per week",
                                title="New opportunities per week: you against the team"))
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
        figure(plots.conversion_vs_team(c.rep, c.team))
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
        figure(plots.days_in_stage_vs_team(v.rep, v.team))
    key_sentence(v.sentence)


def stalled(r) -> None:
    s = r.stalled
    if len(s.deals):
        days = "days in stage" if s.basis == "stage" else "days open"
        limit = f"team's {r.stalled_percentile:.0f}th percentile (days)"
        deals = s.deals if s.basis == "stage" else s.deals.drop(columns="stage")
        table(deals.rename(columns={"name": "deal", "days_in_stage": days, "threshold_days": limit}),
              formats={"amount": lambda x: f"{x:,.0f}", days: lambda x: f"{x:.0f}", limit: lambda x: f"{x:.0f}"})
    key_sentence(s.sentence)


@_needs("capture")
def capture(r) -> None:
    c = r.capture
    key_sentence(c.sentence)



def _h3(text: str) -> None:
    display(HTML(f"<h3>{esc(text)}</h3>"))


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
            display(HTML(f'<p class="cnb-verdict {VERDICT_CSS.get(p.verdict, "")}">'
                         f"<strong>Did pipeline move after it?</strong> {esc(p.sentence)}</p>"))
            if r.audience == "manager":
                table(evidence_table(p))
        return
    from . import plots  # imported on use: the overview draws no chart and seaborn is slow to import

    for rv in r.commitments:
        c = rv.commitment
        _h3(f"{rv.label[:1].upper()}{rv.label[1:]}, {c['start']:%d %b %Y} to {c['end']:%d %b %Y}")
        para(rv.agreed)
        if c.get("note"):
            para(f"Note from the 1:1: {c['note']}")
        if len(rv.weekly):
            figure(plots.commitment_progress(rv.weekly, float(c["target"]), float(c["baseline"]), rv.label,
                                             c["start"].tz_localize(None), c["end"].tz_localize(None)))
        a = rv.assessment
        if a is not None:
            key_sentence(a.activity.sentence)
            p = a.pipeline
            display(HTML(f'<p class="cnb-verdict {VERDICT_CSS.get(p.verdict, "")}">'
                         f"<strong>Did it move pipeline?</strong> {esc(p.sentence)}</p>"))
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
            table(scenario_table(t))
            if t.attrs.get("basis"):
                para(t.attrs["basis"])


def scenario_table(t: pd.DataFrame) -> pd.DataFrame:
    def rng(a, lo, hi, money=False):
        f = (lambda v: f"{v:,.0f}") if money else (lambda v: f"{v:.1f}")
        if f(lo) == f(hi):  # an interval with no width says nothing an interval should
            return f(a)
        return f"{f(a)} ({f(lo)} to {f(hi)})"

    return pd.DataFrame({
        "over": [f"{d:.0f} days" for d in t["horizon_days"]],
        "extra new opportunities": [rng(a, lo, hi) for a, lo, hi in zip(t["extra_opportunities"], t["low"], t["high"])],
        "extra pipeline value": [rng(a, lo, hi, True) for a, lo, hi in
                                 zip(t["extra_pipeline_value"], t["low_value"], t["high_value"])],
    })


def questions(r) -> None:
    if r.audience == "rep":
        para("Questions to think about before the 1:1:")
    display(HTML('<ol class="cnb-questions">' + "".join(f"<li>{esc(q)}</li>" for q in r.questions) + "</ol>"))
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
    bullets(notes, "cnb-notes")


# --------------------------------------------------------------------------- team overview
def overview_header(ov) -> None:
    display(HTML(f'<header class="cnb-header"><p class="cnb-kicker">Team overview · 1:1s from '
                 f"{ov.as_of:%A %d %B %Y}</p><h1>Before this week's 1:1s</h1></header>"))
    para(f"Period: {ov.period}. One row per rep: the process flags worth a look, not a ranking.")


def overview_table(ov) -> None:
    """One row per rep, each name linking to the rep's report."""
    def cell(v, fmt=str):
        return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else esc(fmt(v))

    rows = []
    for rec in ov.reps.to_dict("records"):
        name = esc(rec["name"])
        if isinstance(rec.get("report"), str):
            name = f'<a href="{esc(quote(rec["report"]))}">{name}</a>'
        overdue = ' class="cnb-flag"' if rec["overdue"] else ""
        rows.append(
            "<tr>"
            f"<td>{name}</td><td>{cell(rec['team'])}</td><td>{cell(rec['manager'])}</td>"
            f"<td{overdue}>{cell(rec['days_since_1to1'], lambda d: f'{d:.0f}')}</td>"
            f"<td>{cell(rec['activity_trend'], lambda x: f'{100 * x:.0f}%')}</td>"
            f"<td>{cell(rec['stalled_deals'], lambda n: f'{n:.0f}')}</td><td>{cell(rec['weakest_step'])}</td>"
            f"<td>{cell(rec['commitment'])}</td><td>{cell(rec['diagnosis'])}</td><td>{cell(rec['verdict'])}</td>"
            f"<td>{cell(rec['q_value'], lambda q: f'{q:.2f}')}</td>"
            "</tr>")
    head = ("<tr><th>rep</th><th>team</th><th>manager</th><th>days since 1:1</th>"
            "<th>activity, last 4 weeks vs before</th><th>stalled deals</th><th>step that stands out</th>"
            "<th>last commitment</th><th>diagnosis</th><th>did it move pipeline?</th><th>q-value</th></tr>")
    display(HTML(f'<table class="cnb-table cnb-overview"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'))
    if ov.fdr_note:
        para(ov.fdr_note, "cnb-notes")


def overview_managers(ov) -> None:
    key_sentence(cadence_sentence(ov))
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
             "(the model needs an activity log and at least 5 reps in a team).", "cnb-missing")
        return
    shown = pd.DataFrame({
        "team": e["team"], "activity": e["metric"], "reps": e["reps"],
        "new opportunities per extra unit a week": [f"{x:+.1f}% ({lo:+.1f}% to {hi:+.1f}%)" for x, lo, hi in
                                                    zip(e["extra_pct"], e["low_pct"], e["high_pct"])],
        "check: activity led by pipeline? (p)": e["lead_p_value"].map(lambda p: f"{p:.2f}"),
    })
    table(shown)
    para("Read: one more unit of the activity a week goes with this many percent more new opportunities "
         "over the following 0 to 4 weeks (95% interval). The check should show no relation (a large p); "
         "a small one means pipeline may be driving activity rather than the other way round.", "cnb-notes")
    para(ov.effects_assumptions, "cnb-notes")


def overview_failed(ov) -> None:
    if len(ov.failed):
        para(f"{len(ov.failed)} report(s) could not be rendered this time; their last good report, if any, "
             "is unchanged. Details are in the run's log.", "cnb-missing")
        table(ov.failed)
