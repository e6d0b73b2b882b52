"""Statement audit: odd-but-real data folders, each with the false statement it must not show and
the caveat it must show instead (both audiences, and the overview where it says the same thing).

Folders (each a copy of a small demo team with one odd-but-real change): no 1:1 records; no stage
history; no activity log; a rep with no open deals; names used as ids; won-only data; amounts all 0;
amounts only on won deals; some amounts unknown; a running commitment; a quarter's first day; the
day of the 1:1 counted in the quarter (``[results] quarter_to_date``); a rep who left; a rep with no
records at all; a team too small to pool (the company fallback) and three reps in all (no team
figures); a team currency; the rep's pre-read voice. (Coaching dates after the data, stale
commitments, new hires, a team of two and kept-but-untested commitments are audited in
test_report.py, test_odd_data.py and test_privacy.py; the demo's verdicts against its planted truth
in test_ground_truth.py.)
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import coachnb.display as show
import coachnb.overview_page as page
from coachnb.batch import _id_suffix
from coachnb.demo import write_demo_data
from coachnb.loading import load
from coachnb.overview import cadence_sentence, team_overview
from coachnb.report import rep_report

from .test_odd_data import AS_OF, page_text, render, shown_html


@pytest.fixture(scope="module")
def team_dir(tmp_path_factory) -> Path:
    return Path(write_demo_data(tmp_path_factory.mktemp("audit") / "data", reps=6, weeks=40, seed=11, end=AS_OF))


def variant(team_dir: Path, tmp_path: Path, drop=(), edit=None) -> Path:
    """A copy of the team without the ``drop`` tables, after ``edit(tables)`` on the CSV texts."""
    d = tmp_path / "data"
    shutil.copytree(team_dir, d)
    for name in drop:
        (d / f"{name}.csv").unlink()
    if edit:
        tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in d.glob("*.csv")}
        edit(tables)
        for name, frame in tables.items():
            frame.to_csv(d / f"{name}.csv", index=False)
    return d


def overview_text(ds, monkeypatch) -> str:
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    ov = team_overview(ds, AS_OF)
    page.overview_table(ov)
    page.overview_managers(ov)
    return ov, page_text("\n".join(shown_html(o) for o in shown))


def test_no_1to1_records_no_claim_of_overdue_or_zero_days(team_dir, tmp_path, monkeypatch):
    ds = load(variant(team_dir, tmp_path, drop=("coaching_sessions",)))
    for audience in ("manager", "rep"):
        r, markup = render(ds, "R001", audience=audience, monkeypatch=monkeypatch)
        text = page_text(markup)
        assert not r.header.overdue and "No 1:1s are recorded" in text
        assert "team aims for one" not in text
    ov, text = overview_text(ds, monkeypatch)
    assert cadence_sentence(ov) == "No 1:1s are recorded, so cadence can't be shown."
    assert "are overdue" not in text and "0% of reps seen on time" not in text
    assert not ov.reps["overdue"].any() and ov.managers["median_days_since_1to1"].isna().all()


def test_no_stage_history_stalls_are_worded_as_age_and_the_overview_agrees(team_dir, tmp_path, monkeypatch):
    ds = load(variant(team_dir, tmp_path, drop=("stage_history",)))
    ov, _ = overview_text(ds, monkeypatch)
    counts = ov.reps.set_index("rep_id")["stalled_deals"]
    aged = 0
    for rep_id in ds.reps["rep_id"]:
        for audience in ("manager", "rep"):
            r, markup = render(ds, rep_id, audience=audience, monkeypatch=monkeypatch)
            text = page_text(markup)
            assert r.stalled.basis == "age"
            assert "in their stage longer than usual" not in text and "in its stage" not in text
            if len(r.stalled.deals):
                aged += 1
                assert "older than most" in " ".join(r.questions)
        assert counts[rep_id] == len(r.stalled.deals), rep_id  # the overview counts as the report does
    assert aged


def test_no_activity_log_says_so_and_explains_no_section_it_does_not_show(team_dir, tmp_path, monkeypatch):
    ds = load(variant(team_dir, tmp_path, drop=("activities",)))
    for audience in ("manager", "rep"):
        r, markup = render(ds, "R002", audience=audience, monkeypatch=monkeypatch)
        text = page_text(markup)
        assert "week(s)" not in text and "0 weeks with logged activity" not in text
        assert r.activity is None and r.capture is None
    ds = load(variant(team_dir, tmp_path / "b", drop=("stage_history", "commitments")))
    r, markup = render(ds, "R002", monkeypatch=monkeypatch)
    text = page_text(markup)
    assert "Kaplan-Meier" not in text and "Wilson" not in text  # no conversion or time-in-stage section
    assert ("compares your new opportunities" in text) == bool(r.commitments or r.detected_change)


def test_a_rep_with_no_open_deals_is_told_so_plainly(team_dir, tmp_path, monkeypatch):
    def hand_over_r003s_open_deals(t):
        o = t["opportunities"]
        o.loc[(o["rep_id"] == "R003") & (o["status"] == "open"), "rep_id"] = "R001"
    ds = load(variant(team_dir, tmp_path, edit=hand_over_r003s_open_deals))
    r, markup = render(ds, "R003", monkeypatch=monkeypatch)
    text = page_text(markup)
    assert r.stalled.n_open == 0 and "You have no open deals right now." in text
    assert "None of your 0" not in text


@pytest.mark.parametrize("rep, suffix", [({"rep_id": "Jane Doe", "name": "Jane Doe"}, ""),
                                         ({"rep_id": "R003", "name": "Jane Doe"}, " (R003)"),
                                         ({"rep_id": "R003", "name": ""}, "")])
def test_a_title_never_repeats_a_name_used_as_the_id(rep, suffix):
    assert _id_suffix(rep) == suffix


def test_the_rep_pre_read_has_no_p_value_table_and_no_false_precision(team_dir, monkeypatch):
    ds = load(team_dir)
    for rep_id in ds.reps["rep_id"]:
        r, markup = render(ds, rep_id, audience="rep", monkeypatch=monkeypatch)
        text = page_text(markup)
        assert "p-value" not in text and "Smallest effect this data could detect" not in text
        for area in r.focus.areas:
            gain = re.search(r"about ([\d,]+) more won value", area.reason)
            if gain:
                digits = gain.group(1).replace(",", "").lstrip("-")
                assert len(digits.rstrip("0")) <= 2, area.reason  # two significant figures at most
    _, markup = render(ds, ds.reps["rep_id"].iloc[0], monkeypatch=monkeypatch)
    assert "p-value" in page_text(markup) or "Did it move pipeline?" not in page_text(markup)


def test_won_only_data_shows_no_win_rate_and_unknown_amounts_no_values(team_dir, tmp_path, monkeypatch):
    def won_only(t):
        o = t["opportunities"]
        o.loc[o["status"] == "lost", "status"] = "won"
    ds = load(variant(team_dir, tmp_path, edit=won_only))
    r, markup = render(ds, "R001", monkeypatch=monkeypatch)
    text = page_text(markup)
    measures = list(r.results.rows["measure"])
    assert "Win rate in the period" not in measures and "100%" not in " ".join(r.results.rows["you"])
    assert "No deals are recorded as lost in this period, so there is no win rate." in text

    def no_amounts(t):
        t["opportunities"]["amount"] = "0"
    ds = load(variant(team_dir, tmp_path / "b", edit=no_amounts))
    r, markup = render(ds, "R001", monkeypatch=monkeypatch)
    rows = r.results.rows.set_index("measure")
    assert rows.at["Won this quarter so far", "you"] == "unknown" and rows.at["Average won deal", "you"] == "unknown"
    assert "Share of quarterly quota won" not in rows.index and "quota so far" not in page_text(markup)
    assert "values are unknown" in r.results.sentence


def test_the_overview_never_gives_a_running_commitment_a_verdict(team_dir, monkeypatch):
    ds = load(team_dir)
    ov, _ = overview_text(ds, monkeypatch)
    running = ov.reps[ov.reps["diagnosis"] == "In progress"]
    assert len(running) and (running["verdict"] == "still running").all() and running["q_value"].isna().all()
    assert not ((ov.reps["diagnosis"] == "In progress") & (ov.reps["verdict"] == "activity did not change")).any()


def test_quarter_to_date_states_its_dates_and_a_quarters_first_day_claims_nothing(team_dir):

    ds = load(team_dir)
    s = rep_report(ds, "R001", AS_OF).results.sentence
    assert '"Won this quarter so far" counts deals won from 01 Oct to 22 Nov 2026, the day before the 1:1.' in s
    first_day = rep_report(ds, "R001", "2026-10-01").results.sentence
    assert "quota so far" not in first_day and "starts on the day of this 1:1" in first_day


def test_amounts_known_only_for_won_deals_are_not_read_as_zero_or_as_deal_size(team_dir, tmp_path, monkeypatch):
    def amounts_on_won_only(t):
        o = t["opportunities"]
        o.loc[o["status"] != "won", "amount"] = ""
    ds = load(variant(team_dir, tmp_path, edit=amounts_on_won_only))
    for rep_id in ("R001", "R002", "R003"):
        r, markup = render(ds, rep_id, monkeypatch=monkeypatch)
        text = page_text(markup)
        assert not re.search(r"value 0\b", text), re.search(r".{80}value 0\b.{20}", text).group(0)
        assert "a week, value unknown: none of them has an amount)" in r.pipeline.sentence
        assert all(a.driver != "deal_size" and "won value" not in a.reason for a in r.focus.areas)
        assert "Open pipeline against quarterly quota" not in set(r.results.rows["measure"])
        assert "open pipeline against quota is unknown" in r.results.sentence
        assert "Won this quarter so far" in set(r.results.rows["measure"])  # the won deals' amounts are known
    warnings = [p for p in load(variant(team_dir, tmp_path / "zeros", edit=lambda t: t["opportunities"].__setitem__(
        "amount", "0"))).warnings if p.rule == "many_zero_amounts"]
    assert len(warnings) == 1 and "leave amount empty" in warnings[0].hint


def test_some_unknown_amounts_make_totals_say_how_many_deals_they_cover(team_dir, tmp_path, monkeypatch):
    def blank_every_third(t):
        o = t["opportunities"]
        o.loc[o.index % 3 == 0, "amount"] = ""
    ds = load(variant(team_dir, tmp_path, edit=blank_every_third))
    r, _ = render(ds, "R002", monkeypatch=monkeypatch)
    v = r.pipeline.value
    assert 0 < v.n_known < v.n
    assert f"for the {v.n_known} with an amount; {v.n - v.n_known} have none" in r.pipeline.sentence


def _leave(t, rep_id, last_day):
    """``rep_id`` left on ``last_day``: nothing of theirs after it (their open deals stay open)."""
    a, o = t["activities"], t["opportunities"]
    t["activities"] = a[~((a["rep_id"] == rep_id) & (a["occurred_at"] > last_day))]
    mine_later = (o["rep_id"] == rep_id) & (o["created_at"] > last_day)
    gone = set(o.loc[mine_later, "opportunity_id"])
    t["opportunities"] = o[~mine_later]
    o = t["opportunities"]
    late_close = (o["rep_id"] == rep_id) & (o["closed_at"] > last_day)
    o.loc[late_close, ["status", "closed_at"]] = ["open", ""]
    for name in ("stage_history", "activities"):
        t[name] = t[name][~t[name]["opportunity_id"].isin(gone)]
    h = t["stage_history"]
    mine = set(o.loc[o["rep_id"] == rep_id, "opportunity_id"])
    t["stage_history"] = h[~(h["opportunity_id"].isin(mine) & (h["entered_at"] > last_day))]


def test_a_rep_who_left_is_listed_as_inactive_and_is_nobodys_benchmark(team_dir, tmp_path, monkeypatch):
    ds = load(variant(team_dir, tmp_path, edit=lambda t: _leave(t, "R006", "2026-05-31")))
    ov, text = overview_text(ds, monkeypatch)
    assert not ov.reps.set_index("rep_id").at["R006", "active"]
    assert ov.reps["active"].sum() == 5 and "R006" in ov.inactive_note and "R001" not in ov.inactive_note
    assert pd.isna(ov.reps.set_index("rep_id").at["R006", "activity_trend"])
    gone = rep_report(ds, "R006", AS_OF)
    assert "this rep has no recorded activity, new deal, stage move or closed deal" in gone.intro
    r = rep_report(ds, "R001", AS_OF)
    assert "over the 4 other reps of team Thames active in this period" in r.intro
    assert r.activity.team["n_reps"] == 4 and (r.activity.band["n_reps"] == 4).all()
    # the same rep, active, counts again
    assert "over the 5 other reps" in rep_report(load(team_dir), "R001", AS_OF).intro


def test_a_rep_with_no_records_at_all_is_listed_not_reported_as_zeros(team_dir, tmp_path, monkeypatch):
    def newcomer_without_records(t):
        row = dict(t["reps"].iloc[0].to_dict(), rep_id="R099", name="Noor Nobody", hire_date="2026-11-16")
        t["reps"] = pd.concat([t["reps"], pd.DataFrame([row])], ignore_index=True)
    ds = load(variant(team_dir, tmp_path, edit=newcomer_without_records))
    ov, text = overview_text(ds, monkeypatch)
    assert "Noor Nobody (R099)" in ov.inactive_note and ov.reps["active"].sum() == 6
    assert "No activity, new deal, stage move or closed deal is recorded in this period for 1 rep: Noor Nobody" in text
    for audience, who in (("manager", "this rep has"), ("rep", "I have")):
        r, markup = render(ds, "R099", audience=audience, monkeypatch=monkeypatch)
        assert f"In this period {who} no recorded activity" in page_text(markup)
        assert not r.focus.areas


def test_a_team_too_small_to_pool_falls_back_to_everyone_and_says_so(team_dir, tmp_path, monkeypatch):
    def two_teams(t):
        t["reps"].loc[t["reps"]["rep_id"].isin(["R001", "R002"]), "team"] = "Severn"
    ds = load(variant(team_dir, tmp_path, edit=two_teams))
    r, markup = render(ds, "R001", monkeypatch=monkeypatch)
    assert ("Team Severn has fewer than 3 other reps active in this period, so team figures are medians over "
            "all 5 other active reps in the data.") in page_text(markup)
    assert r.activity.team["n_reps"] == 5 and r.team_figures
    thames = rep_report(ds, "R003", AS_OF)
    assert "over the 3 other reps of team Thames" in thames.intro and thames.activity.team["n_reps"] == 3
    # three reps in all: two others can't be pooled anonymously, whatever the team
    def three_reps(t):
        keep = {"R001", "R002", "R003"}
        for name in ("reps", "activities", "opportunities", "commitments", "coaching_sessions", "self_assessments"):
            if name in t and "rep_id" in t[name]:
                t[name] = t[name][t[name]["rep_id"].isin(keep)]
        ids = set(t["opportunities"]["opportunity_id"])
        t["stage_history"] = t["stage_history"][t["stage_history"]["opportunity_id"].isin(ids)]
        t["activities"] = t["activities"][t["activities"]["opportunity_id"].isin(ids) | (t["activities"]["opportunity_id"] == "")]
    small = load(variant(team_dir, tmp_path / "three", edit=three_reps))
    r, markup = render(small, "R001", monkeypatch=monkeypatch)
    text = page_text(markup)
    assert not r.team_figures and "no team figures are shown" in text and "team median" not in text


def test_won_this_quarter_can_include_the_day_of_the_1to1_and_says_which(team_dir, tmp_path):
    def won_on_the_day(t):
        o = t["opportunities"]
        i = o.index[(o["rep_id"] == "R001") & (o["status"] == "open")][0]
        o.loc[i, ["status", "closed_at", "amount"]] = ["won", f"{AS_OF} 11:00:00", "7000"]
    day_before = variant(team_dir, tmp_path, edit=won_on_the_day)
    inclusive = variant(team_dir, tmp_path / "inclusive", edit=won_on_the_day)
    (inclusive / "process.toml").write_text((inclusive / "process.toml").read_text()
                                            + '\n[results]\nquarter_to_date = "inclusive"\n')
    a, b = rep_report(load(day_before), "R001", AS_OF), rep_report(load(inclusive), "R001", AS_OF)
    won_a = a.results.rows.set_index("measure").at["Won this quarter so far", "you"]
    won_b = b.results.rows.set_index("measure").at["Won this quarter so far", "you"]
    o = pd.read_csv(inclusive / "opportunities.csv", dtype=str, keep_default_na=False)
    on_the_day = o[(o["rep_id"] == "R001") & (o["status"] == "won") & o["closed_at"].str.startswith(AS_OF)]
    assert len(on_the_day) >= 1
    as_number = lambda text: float(re.sub(r"[^\d.]", "", text))  # noqa: E731
    gap = as_number(won_b) - as_number(won_a)
    assert gap == pytest.approx(on_the_day["amount"].astype(float).sum(), rel=0.02)  # both shown rounded
    assert "to 22 Nov 2026, the day before the 1:1." in a.results.sentence
    assert "to 23 Nov 2026, the day of the 1:1 included." in b.results.sentence


def test_every_amount_a_sentence_shows_is_in_the_teams_currency(team_dir, tmp_path, monkeypatch):
    d = variant(team_dir, tmp_path)
    (d / "process.toml").write_text((d / "process.toml").read_text() + '\n[presentation]\ncurrency = "GBP"\n')
    ds = load(d)
    for rep_id in ("R001", "R002", "R004"):
        r, markup = render(ds, rep_id, monkeypatch=monkeypatch)
        text = page_text(markup)
        assert "value £" in r.pipeline.sentence
        # every amount written in words carries the symbol: "value 12,000" or "1,200 more won value" never bare
        assert not re.search(r"[(,] value \d|\(value \d", text) and not re.search(r"about [\d,.]+ more won value", text)
        shown = r.results.rows.set_index("measure")["you"]
        assert shown["Won this quarter so far"].startswith("£")
        for area in r.focus.areas:
            if "more won value" in area.reason:
                assert re.search(r"about £[\d,]+ more won value", area.reason)


def test_the_reps_pre_read_speaks_in_the_reps_own_voice(team_dir, monkeypatch):
    ds = load(team_dir)
    for rep_id in ds.reps["rep_id"]:
        r, markup = render(ds, rep_id, audience="rep", monkeypatch=monkeypatch)
        text = page_text(markup)
        second = re.search(r".{60}\b([Yy]ou|[Yy]our|[Yy]ours|yourself)\b.{20}", text)
        assert not second, (rep_id, second.group(0))
        assert r.intro.startswith("My pre-read for the 1:1")
        assert "me" in r.results.rows.columns and "you" not in r.results.rows.columns
    m, markup = render(ds, "R001", audience="manager", monkeypatch=monkeypatch)
    assert "you" in m.results.rows.columns and re.search(r"\byour\b", page_text(markup))


def test_open_deals_by_stage_are_shown_only_where_the_stage_column_is_current(team_dir, tmp_path):
    def no_history_unknown_amounts(t):
        o = t["opportunities"]
        o.loc[o.index % 2 == 0, "amount"] = ""
    ds = load(variant(team_dir, tmp_path, drop=("stage_history",), edit=no_history_unknown_amounts))
    now = rep_report(ds, "R001", AS_OF)
    assert now.stage_mix is not None
    shown = now.stage_mix.table.set_index("stage")
    assert "unknown" in set(shown["their value"])  # a stage whose deals lack amounts has no value
    assert all(v == "0" for v, k in zip(shown["their value"], shown["your open deals"]) if k == 0)
    # two months before the data ends, 'stage' is the deals' stage today: the section stays silent
    assert rep_report(ds, "R001", "2026-09-21").stage_mix is None


def test_a_batch_writes_no_report_for_a_rep_without_records_and_warns(team_dir, tmp_path, capsys):
    from coachnb.batch import run_batch

    data = variant(team_dir, tmp_path, edit=lambda t: _leave(t, "R006", "2026-05-31"))
    result = run_batch(data, AS_OF, out=tmp_path / "out", reps=["R005", "R006"], audience="both", jobs=1,
                       timeout=300)
    assert result.ok
    by_rep = {(e["rep_id"], e["audience"]): e for e in result.reports}
    assert {by_rep[("R006", a)]["status"] for a in ("manager", "rep")} == {"inactive"}
    assert by_rep[("R006", "manager")]["html"] is None and not list(result.report_dir.glob("r006*"))
    assert by_rep[("R005", "manager")]["status"] == "ok"
    err = capsys.readouterr().err
    assert "WARNING 1 rep(s) with no record in the period, no report written: R006" in err
    index = page_text((result.report_dir / "index.html").read_text(encoding="utf-8"))
    assert "No activity, new deal, stage move or closed deal is recorded in this period for 1 rep" in index


def test_the_overview_shows_the_failures_of_its_own_run_only(team_dir, tmp_path):
    import json

    manifest = {"started_at": "2026-11-23T08:00:00+00:00", "reports": [
        {"rep_id": "R001", "audience": "manager", "status": "failed", "error": "boom now",
         "run": "2026-11-23T08:00:00+00:00", "html": None},
        {"rep_id": "R002", "audience": "manager", "status": "failed", "error": "boom last week",
         "run": "2026-11-16T08:00:00+00:00", "html": "r002.html"},
    ]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    ov = team_overview(load(team_dir), AS_OF, manifest_path=path)
    assert list(ov.failed["rep_id"]) == ["R001"]


def test_the_pre_reads_page_title_and_header_are_not_in_the_second_person(team_dir, monkeypatch):
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    show.header(rep_report(load(team_dir), "R001", AS_OF, audience="rep"))
    text = page_text(shown_html(shown[0]))
    assert text.strip().startswith("Pre-read · 1:1 on") and not re.search(r"\b[Yy]our\b", text)
