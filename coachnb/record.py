"""The coaching record: every commitment a rep has on record, what came of each, over time.

A report's "Since last time" reviews the commitments of *this* conversation (running in the
period or agreed since the last 1:1, :func:`coachnb.team.active_commitments`). Older ones are
the rep's *record*: they are reviewed the same way (:func:`coachnb.report.review_commitment`, so
a verdict here is the one a report would give) and named with their dates and years, never as
"since last time".

:func:`coaching_record` returns plain data: one row of numbers per commitment (formatting only
at display), a sentence for each, and the weekly series behind the record's chart (the
committed behaviours and new pipeline across the last several 1:1s, with each commitment's
period). Only the rep's own commitments and series are read into it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .calendar import weeks_before
from .coaching import commitment_pattern, wording_key
from .formatting import fmt_level, fmt_ratio, plural
from .report import CommitmentReview, kept_review
from .store import store_of
from .team import active_commitments, impact_settings, open_data, outcome_history, rep_row, rep_series

#: the recent commitments the report's compact table, the chart and the overview's column show
RECENT = 3
#: weeks the chart shows before the first of the commitments it marks (their baseline)
CHART_LEAD_WEEKS = 8
#: the chart covers at least this many weeks before the 1:1
CHART_MIN_WEEKS = 26
#: committed behaviours charted at most (one panel each; the newest commitments' metrics first)
CHART_MAX_METRICS = 3

#: a reading at a glance (the overview's column, the compact table), by :func:`reading_key`
SHORT = {
    "kept_moved": "kept·moved",
    "kept_no_lift": "kept·no lift",
    "kept_too_early": "kept·too early",
    "kept_cannot_tell": "kept·can't tell",
    "kept_unclear": "kept·change not confirmed",
    "not_kept": "not kept",
    "partly_kept": "partly kept",
    "in_progress": "running",
    "replaced": "replaced",
    "not_started": "not started",
    "not_reviewed": "not reviewed here",
}

#: the conversation each reading calls for (coaching principles: skill or will)
CONVERSATION = {
    "kept_moved": "keep it; what next",
    "kept_no_lift": "a skill or strategy question",
    "kept_too_early": "judge by the behaviour for now",
    "kept_cannot_tell": "judge by the behaviour and the deals it touched",
    "kept_unclear": "not a skill question yet: did the behaviour change?",
    "not_kept": "an execution question",
    "partly_kept": "an execution question, from the progress made",
    "in_progress": "",
    "replaced": "",
    "not_started": "",
    "not_reviewed": "",
}

#: the record's columns, in order (see :class:`CoachingRecord`)
COLUMNS = ["commitment_id", "agreed_on", "start", "end", "metric", "label", "baseline", "target", "status", "replaced_by",
           "since_last_time", "finished", "adherence", "weeks_in_period", "weeks_on_target", "achieved",
           "verdict", "direction", "rate_ratio", "ci_low", "ci_high", "p_value", "mde_ratio", "weeks_needed",
           "n_pre_weeks", "pre_weeks_in_data", "pipeline_judged", "diagnosis", "diagnosis_label", "reading",
           "conversation", "sentence"]


@dataclass
class CoachingRecord:
    """One rep's commitments over time, as :func:`coaching_record` returns it.

    Attributes
    ----------
    rep_id, name : str
    as_of : Timestamp
        The coaching date the record is read on.
    commitments : DataFrame
        One row per commitment of the rep agreed or started before ``as_of``, oldest first
        (:data:`COLUMNS`): ``commitment_id``; ``agreed_on``, ``start``, ``end`` (dates);
        ``metric`` (id) and ``label`` (in words), ``baseline``, ``target`` (a week);
        ``status``: ``"reviewed"``, ``"replaced"`` (a later commitment took its place; the
        reports review that one; ``replaced_by`` names it), ``"not started"`` or ``"not reviewed"`` (read from a feature
        store that doesn't hold the weeks its review needs); ``since_last_time``: True for the ones
        the report's "Since last time" reviews, False for the record; ``finished``;
        ``adherence`` (``"kept"``, ``"partly kept"``, ``"not kept"``, ``"too early"``),
        ``weeks_in_period``, ``weeks_on_target``, ``achieved`` (mean a week in the period);
        the pipeline test: ``verdict`` (:data:`coachnb.impact.VERDICTS`), ``direction``,
        ``rate_ratio`` (against the team's trend), ``ci_low``, ``ci_high`` (95%), ``p_value``,
        ``mde_ratio``, ``weeks_needed`` (all as :func:`coachnb.report.review_commitment` gives
        them); ``n_pre_weeks``: baseline weeks the test used, ``pre_weeks_in_data``: weeks from
        the data's first week with a new opportunity to the baseline's end, ``pipeline_judged``:
        False when the test used more baseline weeks than the data holds (weeks before the data
        read as zeros), in which case the reading and the sentence don't rest on the pipeline
        verdict; the reading: ``diagnosis`` (category),
        ``diagnosis_label``, ``reading`` (:data:`SHORT`), ``conversation``
        (:data:`CONVERSATION`); ``sentence``. Numbers stay numbers; NaN where none applies.
    reviews : dict of str -> CommitmentReview
        The review behind each reviewed row, by commitment id.
    weekly : DataFrame
        The chart's weeks: ``week``, ``new_opportunities`` and one column per charted metric id
        (the rep's weekly level; NaN before the hire).
    sessions : list of Timestamp
        The rep's 1:1s within the chart's weeks.
    summary : str
        What the record holds, in one or two sentences ("" when it holds nothing).
    pattern : str or None
        A pattern across the finished commitments (:func:`coachnb.coaching.commitment_pattern`).
    """

    rep_id: str
    name: str
    as_of: pd.Timestamp
    commitments: pd.DataFrame
    reviews: dict
    weekly: pd.DataFrame
    sessions: list
    summary: str
    pattern: str | None

    def recent(self, n: int = RECENT) -> pd.DataFrame:
        """The last ``n`` reviewed commitments (oldest first), as the compact table shows them."""
        c = self.commitments
        return c[c["status"] == "reviewed"].tail(n)

    def charted(self) -> pd.DataFrame:
        """The commitments whose periods the chart marks: those starting within its weeks."""
        c = self.commitments
        if not len(self.weekly) or not len(c):  # an empty frame's dates are no datetime column
            return c.iloc[:0]
        first = self.weekly["week"].min()
        return c[(c["status"] == "reviewed") & (c["end"].dt.tz_localize(None) >= first)]


def coaching_record(data, rep_id: str, as_of=None, lookback_weeks: int = 13, reviews=None) -> CoachingRecord:
    """Every commitment of one rep, each reviewed as a report reviews it, and the record's chart data.

    Parameters
    ----------
    data : str, Path, Dataset or feature store
        As :func:`coachnb.report.rep_report` takes it.
    rep_id : str
    as_of : str or Timestamp or None
        The coaching date; ``None`` or ``""``: the latest date the data covers.
    lookback_weeks : int
        The report's window (which commitments count as "since last time").
    reviews : list of CommitmentReview, optional
        Reviews already made for this rep, date and window (a report's ``commitments``): reused
        for the same commitment ids instead of being computed again.

    Returns
    -------
    CoachingRecord

    Raises
    ------
    RepNotFound
        For an unknown rep; a bad date or folder as :func:`coachnb.team.open_data` raises.
    """
    rep_id = str(rep_id)
    ds, as_of_ts, tv = open_data(data, as_of, int(lookback_weeks), rep_id)
    rep = rep_row(ds, rep_id)
    frame, done = record_rows(tv, rep_id, reviews=reviews)
    weekly, sessions = chart_weeks(tv, rep_id, frame)
    return CoachingRecord(rep_id, str(rep["name"]), as_of_ts, frame, done, weekly, sessions,
                          summary_sentence(frame), commitment_pattern(record_diagnoses(frame, done)))


def record_diagnoses(frame: pd.DataFrame, reviews: dict) -> list:
    """The reviewed commitments' diagnoses, oldest first, as the record reads them (for the pattern).

    A verdict the record doesn't use (``pipeline_judged`` False) counts as kept with the effect
    not judged, never as a lift or its absence.
    """
    out = []
    for cid, judged in zip(frame["commitment_id"].astype(str), frame["pipeline_judged"]):
        d = reviews[cid].diagnosis if cid in reviews else None
        if d is None:
            continue
        if not judged and d.category in ("kept_moved", "kept_no_lift"):
            d = replace(d, category="kept_too_early")
        out.append(d)
    return out


def record_rows(tv, rep_id: str, reviews=None, last: int | None = None) -> tuple[pd.DataFrame, dict]:
    """The record's table (:data:`COLUMNS`) and the review behind each reviewed row.

    Parameters
    ----------
    tv : coachnb.team.TeamView
        The team view of the coaching date (its window says what is "since last time").
    rep_id : str
    reviews : list of CommitmentReview, optional
        Reviews to reuse by commitment id (see :func:`coaching_record`).
    last : int, optional
        Review only the last ``last`` commitments that have a review (the overview's column);
        None: all of them.

    Returns
    -------
    (DataFrame, dict of str -> CommitmentReview)
    """
    ds, as_of = tv.ds, tv.window.as_of
    known = {str(rv.commitment["commitment_id"]): rv for rv in (reviews or [])}
    rows, done = [], {}
    if ds.has("commitments"):
        current = set(active_commitments(ds, rep_id, tv.window)["commitment_id"].astype(str))
        chosen = commitments_on_record(ds, rep_id, as_of)
        if last is not None:
            keep = {id(c) for c in [c for c in chosen if c["status"] == "reviewed"][-last:]}
            chosen = [c for c in chosen if id(c) in keep]
        for c in chosen:
            cid = str(c["commitment_id"])
            rv, data_weeks = None, np.nan
            if c["status"] == "reviewed" and cid not in known and not held_by_store(tv, c):
                c["status"] = "not reviewed"
            if c["status"] == "reviewed":
                rv = known.get(cid) or kept_review(tv, rep_id, c)  # once a process per rep, store and window
                done[cid] = rv
                data_weeks = baseline_weeks_in_data(tv, c)
            rows.append(record_row(c, rv, cid in current, as_of, data_weeks))
    return pd.DataFrame(rows, columns=COLUMNS), done


def review_start(tv, c: dict) -> pd.Timestamp:
    """The first week :func:`coachnb.report.review_commitment` reads for commitment ``c``."""
    return min(weeks_before(c["start"], 52), tv.history_start)


def held_by_store(tv, c: dict) -> bool:
    """Whether the data holds every week the commitment's review reads (always, for a data folder).

    A feature store holds the days its reports read (:mod:`coachnb.store_build`); an older
    commitment's review may need earlier ones.
    """
    fs = store_of(tv.ds)
    return fs is None or review_start(tv, c) >= fs.meta["cube_start"]


def baseline_weeks_in_data(tv, c: dict) -> int:
    """Weeks from the data's first week with a new opportunity to the end of the pipeline test's baseline.

    The test's baseline ends ``gap_weeks`` before the commitment's first week; weeks before the
    data's first record are no data, whatever a panel holds for them.
    """
    panel = outcome_history(tv, review_start(tv, c))
    weeks = pd.DatetimeIndex(panel.index)
    busy = weeks[np.nansum(panel.to_numpy(dtype=float), axis=1) > 0]
    if not len(busy):
        return 0
    start = c["start"].tz_localize(None) if c["start"].tzinfo is not None else c["start"]
    first_after = int(weeks.searchsorted(start, side="left"))
    baseline_end = first_after - int(impact_settings(tv.ds).gap_weeks)
    return int(max(0, baseline_end - weeks.get_loc(busy.min())))


def commitments_on_record(ds, rep_id: str, as_of: pd.Timestamp) -> list[dict]:
    """The rep's commitments agreed or started before ``as_of``, oldest first, each with a ``status``.

    ``"reviewed"``: started and not replaced (the reports' set, :func:`coachnb.team.rep_commitments`);
    ``"replaced"``: a later commitment names it in ``supersedes`` (``replaced_by``, ``replaced_on``: its id
    and date of agreement); ``"not started"``: agreed
    before ``as_of``, starting on or after it.
    """
    c = ds.commitments
    mine = c[c["rep_id"].astype(str) == rep_id]
    agreed = mine["agreed_on"].lt(as_of).fillna(False).astype(bool)
    mine = mine[agreed | (mine["start"] < as_of)].sort_values(["start", "commitment_id"], kind="stable")
    later = c.dropna(subset=["supersedes"])
    by = dict(zip(later["supersedes"].astype(str), zip(later["commitment_id"].astype(str), later["agreed_on"])))
    out = []
    for row in mine.to_dict("records"):
        replaced = by.get(str(row["commitment_id"]))
        row["status"] = "replaced" if replaced else "reviewed" if row["start"] < as_of else "not started"
        row["replaced_by"] = replaced[0] if replaced else None
        row["replaced_on"] = replaced[1] if replaced else pd.NaT
        out.append(row)
    return out


def reading_key(review: CommitmentReview) -> str:
    """The reading of a reviewed commitment as a key of :data:`SHORT`: the diagnosis' own wording key.

    As :func:`coachnb.coaching.diagnose` words it (:func:`coachnb.coaching.wording_key`): a
    ``not_kept`` with progress is ``partly_kept``; a ``kept_too_early`` that waiting would not
    settle is ``kept_cannot_tell``.
    """
    d, a = review.diagnosis, review.assessment
    if d is None:
        return "in_progress"
    return wording_key(d.category, a.activity.adherence, a.pipeline)


def record_row(c: dict, review: CommitmentReview | None, since_last_time: bool, as_of: pd.Timestamp,
               pre_weeks_in_data: float = np.nan) -> dict:
    """One row of the record (:data:`COLUMNS`) from a commitment and its review (None: not reviewed)."""
    spec_label = review.label if review is not None else str(c["metric"]).replace("_", " ")
    row = {k: c.get(k) for k in ("commitment_id", "agreed_on", "start", "end", "metric", "baseline", "target",
                                 "status", "replaced_by")}
    row.update(label=spec_label, since_last_time=bool(since_last_time and review is not None))
    row.update({k: np.nan for k in ("weeks_in_period", "weeks_on_target", "achieved", "rate_ratio", "ci_low",
                                    "ci_high", "p_value", "mde_ratio", "weeks_needed", "n_pre_weeks")})
    row.update(pre_weeks_in_data=pre_weeks_in_data, pipeline_judged=False)
    row.update(finished=bool(c["end"] < as_of) if review is None else review.finished, adherence=None,
               verdict=None, direction=None, diagnosis=None, diagnosis_label=None)
    key = c["status"].replace(" ", "_")
    if review is not None and review.assessment is not None:
        act, p = review.assessment.activity, review.assessment.pipeline
        row.update(adherence=act.adherence, weeks_in_period=act.weeks_in_period,
                   weeks_on_target=act.weeks_on_or_above_target, achieved=act.post_rate, verdict=p.verdict,
                   direction=p.direction, rate_ratio=p.rate_ratio, ci_low=p.ci_low, ci_high=p.ci_high,
                   p_value=p.p_value, mde_ratio=p.mde_ratio,
                   weeks_needed=np.nan if p.weeks_needed is None else float(p.weeks_needed),
                   n_pre_weeks=p.n_pre_weeks, pipeline_judged=not p.n_pre_weeks > pre_weeks_in_data)
        key = reading_key(review)
        if not row["pipeline_judged"] and key in ("kept_moved", "kept_no_lift", "kept_too_early"):
            key = "kept_cannot_tell"  # kept; the effect can't be judged on weeks the data doesn't hold
        if review.diagnosis is not None:
            row.update(diagnosis=review.diagnosis.category, diagnosis_label=review.diagnosis.label)
    row.update(reading=SHORT[key], conversation=CONVERSATION[key])
    row["sentence"] = commitment_sentence({**row, "replaced_on": c.get("replaced_on")}, key)
    return row


def _day(ts) -> str:
    return "an unrecorded date" if ts is None or pd.isna(ts) else f"{pd.Timestamp(ts):%d %b %Y}"


def commitment_sentence(row: dict, key: str) -> str:
    """What was agreed and what came of it, in the record's voice (dates with years, past for past)."""
    what = (f"{row['label'][:1].upper()}{row['label'][1:]}: from {fmt_level(row['baseline'])} to "
            f"{fmt_level(row['target'])}, {_day(row['start'])} to {_day(row['end'])} "
            f"(agreed on {_day(row['agreed_on'])}).")
    if row["status"] == "replaced":
        return f"{what} Replaced by {row['replaced_by']} (agreed on {_day(row['replaced_on'])})."
    if row["status"] == "not started":
        return f"{what} It had not started by this 1:1."
    if row["status"] == "not reviewed":
        return (f"{what} Not reviewed here: its review reads weeks this run's precomputed data doesn't hold; "
                "the coaching record's page on the data folder reviews it.")
    if row["adherence"] is None:
        return what
    return " ".join(filter(None, (what, adherence_words(row, key), pipeline_words(row, key))))


def adherence_words(row: dict, key: str) -> str:
    """Whether the behaviour happened, with the weeks it rests on."""
    weeks = int(row["weeks_in_period"]) if pd.notna(row["weeks_in_period"]) else 0
    on = int(row["weeks_on_target"]) if pd.notna(row["weeks_on_target"]) else 0
    if row["adherence"] == "too early" or weeks == 0:
        return "Too early to say whether it is kept."
    level = f"{fmt_level(row['achieved'])} a week on average, on or above target in {on} of {plural(weeks, 'week')}"
    if key == "in_progress":
        return f"Still running: {level} so far."
    return {"kept": "Kept", "partly kept": "Partly kept", "not kept": "Not kept"}[row["adherence"]] + f": {level}."


def pipeline_words(row: dict, key: str) -> str:
    """The did-it-move verdict with its effect size and interval, only as far as the test went."""
    verdict = row["verdict"]
    effect = (f"{fmt_ratio(row['rate_ratio'])} the team's trend, 95% interval {fmt_ratio(row['ci_low'])} to "
              f"{fmt_ratio(row['ci_high'])}") if pd.notna(row["rate_ratio"]) else ""
    if key == "in_progress":
        return "Too soon for a verdict on new pipeline."
    if verdict == "activity did not change":
        beside = f"; for reference, new pipeline ran at {effect}" if effect else ""
        return (f"The change in the behaviour couldn't be confirmed, so new pipeline was not judged as its "
                f"effect{beside}.")
    if not row["pipeline_judged"]:
        return (f"Whether new pipeline moved isn't judged here: the test's baseline of "
                f"{plural(int(row['n_pre_weeks']), 'week')} reaches back before the data begins (only "
                f"{int(row['pre_weeks_in_data'])} of them hold data).")
    if verdict == "moved":
        moved = "rose" if row["direction"] != "down" else "fell"
        return f"New pipeline {moved} beyond the team's trend ({effect})."
    if verdict == "no meaningful change":
        return f"No detectable lift in new pipeline ({effect})."
    return f"Not enough data to tell whether new pipeline moved ({effect})." if effect else \
        "Not enough data to tell whether new pipeline moved."


def summary_sentence(frame: pd.DataFrame) -> str:
    """How many commitments the record holds since when, and how they read."""
    if not len(frame):
        return "No commitments are on record yet."
    reviewed = frame[frame["status"] == "reviewed"]
    counts = frame["reading"].value_counts()
    ordered = [r for r in SHORT.values() if r in counts.index]
    s = (f"{plural(len(frame), 'commitment')} on record since {frame['start'].min():%b %Y}: "
         + ", ".join(f"{r} ({counts[r]})" for r in ordered) + ".")
    current = int(reviewed["since_last_time"].sum())
    if current and current < len(reviewed):
        s += (f" {current} of them {'is' if current == 1 else 'are'} reviewed under 'Since last time'; "
              "the others belong to the record.")
    return s


def chart_weeks(tv, rep_id: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """The weeks the record's chart shows: the rep's committed behaviours and new opportunities a week.

    From :data:`CHART_LEAD_WEEKS` before the first of the last :data:`RECENT` reviewed commitments
    (at least :data:`CHART_MIN_WEEKS`) to the end of the report's window; only the rep's column
    of each team panel is kept.
    """
    end = tv.window.end
    start = weeks_before(end, CHART_MIN_WEEKS)
    reviewed = frame[frame["status"] == "reviewed"]
    recent = reviewed.tail(RECENT)
    if len(recent):
        start = min(start, weeks_before(recent["start"].min(), CHART_LEAD_WEEKS))
    start = max(start, weeks_before(end, 520))  # at most ten years: a chart, not an archive
    fs = store_of(tv.ds)
    if fs is not None:
        start = max(start, weeks_before(fs.meta["cube_start"], -1))  # a store holds what its reports read
    hist_start = min(start, tv.history_start)
    outcome = outcome_history(tv, hist_start)
    naive = start.tz_localize(None) if start.tzinfo is not None else start
    weeks = outcome.index[outcome.index >= naive]
    weekly = pd.DataFrame({"week": weeks,
                           "new_opportunities": outcome.loc[weeks, rep_id].to_numpy(dtype=float)
                           if rep_id in outcome.columns else np.nan})
    metrics = list(dict.fromkeys(reversed(list(reviewed.loc[reviewed["end"] >= start, "metric"].astype(str)))))
    for metric in metrics[:CHART_MAX_METRICS]:
        if metric not in tv.ds.config.commitment_metrics:
            continue
        series = rep_series(tv, metric, hist_start, rep_id).set_index("week")["value"]
        weekly[metric] = series.reindex(weeks).to_numpy(dtype=float)
    s = tv.ds.coaching_sessions
    held = s.loc[(s["rep_id"].astype(str) == rep_id) & (s["held_on"] >= start) & (s["held_on"] < tv.window.as_of),
                 "held_on"]
    return weekly, sorted(held)


# --------------------------------------------------------------------------- what the pages show
def shown_table(frame: pd.DataFrame, audience: str = "manager") -> pd.DataFrame:
    """The record's rows in words, one a commitment, as a report or the record's page shows them.

    Parameters
    ----------
    frame : DataFrame
        Rows of :attr:`CoachingRecord.commitments` (e.g. :meth:`CoachingRecord.recent`).
    audience : {"manager", "rep"}
        The manager's table adds the conversation each reading calls for.

    Returns
    -------
    DataFrame of str
        ``commitment``, ``period``, ``agreed`` (baseline → target a week), ``kept?``,
        ``did it move pipeline?``, ``reading`` (and ``conversation`` for the manager).
    """
    out = pd.DataFrame({
        "commitment": frame["label"].astype(str),
        "period": [f"{_day(s)} to {_day(e)}" for s, e in zip(frame["start"], frame["end"])],
        "agreed": [f"{fmt_level(b)} → {fmt_level(t)}" for b, t in zip(frame["baseline"], frame["target"])],
        "kept?": [_kept_cell(r) for r in frame.to_dict("records")],
        "did it move pipeline?": [_pipeline_cell(r) for r in frame.to_dict("records")],
        "reading": frame["reading"].astype(str),
    })
    if audience == "manager":
        out["conversation"] = frame["conversation"].fillna("").astype(str).replace("", "–")
    return out


def _kept_cell(row: dict) -> str:
    if pd.isna(row["adherence"]) or pd.isna(row["weeks_in_period"]) or row["adherence"] == "too early":
        return "–" if row["status"] != "reviewed" else "too early"
    weeks = f"{int(row['weeks_on_target'])} of {int(row['weeks_in_period'])} weeks on target"
    return f"{'so far: ' if row['reading'] == SHORT['in_progress'] else ''}{row['adherence']}, {weeks}"


def _pipeline_cell(row: dict) -> str:
    verdict = row["verdict"]
    if pd.isna(verdict) or row["reading"] == SHORT["in_progress"]:
        return "–" if pd.isna(verdict) else "too soon"
    if verdict == "activity did not change":
        ref = "" if pd.isna(row["rate_ratio"]) else (
            f"; for reference {fmt_ratio(row['rate_ratio'])} ({fmt_ratio(row['ci_low'])} to {fmt_ratio(row['ci_high'])})")
        return f"not judged: the change in behaviour isn't confirmed{ref}"
    if not row["pipeline_judged"]:
        return "not judged: its baseline reaches back before the data begins"
    if pd.isna(row["rate_ratio"]):
        return verdict
    return (f"{verdict}: {fmt_ratio(row['rate_ratio'])} "
            f"({fmt_ratio(row['ci_low'])} to {fmt_ratio(row['ci_high'])})")


def chart_periods(rec: CoachingRecord) -> pd.DataFrame:
    """The periods the record's chart shades: ``metric``, ``start``, ``end`` (naive), ``target``, ``reading``."""
    c = rec.charted()
    return pd.DataFrame({"metric": c["metric"].astype(str), "start": c["start"].dt.tz_localize(None),
                         "end": c["end"].dt.tz_localize(None), "target": c["target"].astype(float),
                         "reading": c["reading"].astype(str)}).reset_index(drop=True)


def chart_alt(rec: CoachingRecord) -> str:
    """The record's chart in words: its weeks, each commitment's period and reading, new pipeline's range."""
    w = rec.weekly
    if not len(w):
        return "Chart of the coaching record: no weeks to show."
    periods = chart_periods(rec)
    labels = dict(zip(rec.commitments["metric"].astype(str), rec.commitments["label"].astype(str)))
    drawn = [labels.get(m, m) for m in w.columns if m not in ("week", "new_opportunities")]
    opps = pd.to_numeric(w["new_opportunities"], errors="coerce").dropna()
    text = (f"Chart of {', '.join(drawn) + ' and ' if drawn else ''}new opportunities per week from "
            f"{w['week'].min():%d %b %Y} to {w['week'].max():%d %b %Y}"
            + (f" (new opportunities {fmt_level(opps.min())} to {fmt_level(opps.max())} a week, "
               f"{fmt_level(opps.mean())} on average)" if len(opps) else "") + ". ")
    if len(periods):
        text += "Shaded commitment periods: " + "; ".join(
            f"{labels.get(p.metric, p.metric)} {p.start:%d %b %Y} to {p.end:%d %b %Y}, target "
            f"{fmt_level(p.target)}, {p.reading}" for p in periods.itertuples()) + "."
    return text + (f" Triangles mark the {plural(len(rec.sessions), '1:1')}." if rec.sessions else "")


def chart_labels(rec: CoachingRecord) -> dict:
    """Metric id -> the metric in words, for the chart's panels."""
    return dict(zip(rec.commitments["metric"].astype(str), rec.commitments["label"].astype(str)))


def recent_verdicts(tv, rep_id: str, n: int = RECENT, reviews=None) -> str | None:
    """The last ``n`` readings at a glance, oldest first, each with its start month ("not kept (Aug 2025), ...").

    The overview's column: the same rows :func:`coaching_record` gives (:func:`record_rows`), so
    the two always agree. None when the rep has no reviewed commitment. ``reviews`` (a list of
    CommitmentReview, optional) are reused by commitment id instead of assessed again.
    """
    frame, _ = record_rows(tv, str(rep_id), reviews=reviews, last=n)
    reviewed = frame[frame["status"] == "reviewed"]
    if not len(reviewed):
        return None
    return ", ".join(f"{r} ({s:%b %Y})" for r, s in zip(reviewed["reading"], reviewed["start"]))
