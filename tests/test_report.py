"""The report's assembly: windows, sections, sentences, partial data and privacy."""
from __future__ import annotations

import dataclasses
import re
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import coachnb
from coachnb.config import ProcessConfig
from coachnb.calendar import report_window
from coachnb.report import findings_for, rep_report
from coachnb.team import team_view

from .test_odd_data import shown_html

AS_OF = "2026-11-23"


def test_report_window_is_whole_weeks_before_the_week_of_the_1to1():
    cfg = ProcessConfig(timezone="Europe/London")
    # Monday 23 Nov 2026 opens its own week, so the period ends Sunday 22 Nov; 13 weeks back is Monday 24 Aug
    w = report_window(pd.Timestamp("2026-11-23", tz="Europe/London"), cfg, 13)
    assert w.end == pd.Timestamp("2026-11-23", tz="Europe/London")
    assert w.start == pd.Timestamp("2026-08-24", tz="Europe/London")
    # a Wednesday 1:1 falls in the same week: same window
    w2 = report_window(pd.Timestamp("2026-11-25", tz="Europe/London"), cfg, 13)
    assert (w2.start, w2.end) == (w.start, w.end)
    assert w.label == "24 Aug 2026 to 22 Nov 2026 (13 weeks)"


def test_report_window_follows_the_configured_week_start():
    cfg = ProcessConfig(week_start="sunday")
    w = report_window(pd.Timestamp("2026-11-25", tz="UTC"), cfg, 2)
    assert w.end == pd.Timestamp("2026-11-22", tz="UTC")  # Sunday before the Wednesday
    assert w.start == pd.Timestamp("2026-11-08", tz="UTC")


def test_lookback_must_be_positive():
    with pytest.raises(ValueError):
        report_window(pd.Timestamp("2026-11-23", tz="UTC"), ProcessConfig(), 0)


def test_unknown_rep_and_audience_are_refused(sample_ds):
    with pytest.raises(coachnb.errors.RepNotFound):
        rep_report(sample_ds, "NOPE", AS_OF)
    with pytest.raises(ValueError, match="audience"):
        rep_report(sample_ds, "R001", AS_OF, audience="ceo")


@pytest.fixture(scope="module")
def truth(sample_dir):
    return json.loads((sample_dir / "ground_truth.json").read_text())


def test_planted_discovery_leak_is_the_step_that_stands_out(sample_ds, truth):
    leaky = [r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "discovery_leak"]
    assert leaky, "the demo team should plant a discovery leak"
    for rep_id in leaky:
        r = rep_report(sample_ds, rep_id, AS_OF)
        assert "Discovery → Qualification" in r.conversion.low_steps
        assert "Discovery → Qualification" in r.conversion.sentence
        # the focus picks it up too, and never more than two areas
        assert 1 <= len(r.focus.areas) <= 2


def test_rep_without_a_leak_gets_no_false_alarm_on_conversion(sample_ds, truth):
    clean = [r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "none" and not r.get("special")]
    flagged = [rep for rep in clean if rep_report(sample_ds, rep, AS_OF).conversion.weakest_step]
    # intervals are 95%: an occasional flag is chance, a majority would be a broken rule
    assert len(flagged) <= max(1, len(clean) // 4), flagged


def test_team_figures_exclude_the_rep_and_count_teammates(sample_ds):
    r = rep_report(sample_ds, "R003", AS_OF)
    tv = team_view(sample_ds, r.header.as_of, 13)
    wa = tv.weekly_activity
    w = tv.window
    wa = wa[(wa["week"] >= w.start.tz_localize(None)) & (wa["week"] < w.end.tz_localize(None))]
    # the peer group is R003's own team (every one of them active in the demo's period)
    reps = sample_ds.reps.set_index("rep_id")
    team = reps.index[(reps["team"] == reps.at["R003", "team"]) & (reps.index != "R003")]
    assert 3 <= len(team) < len(reps) - 1
    assert f"over the {len(team)} other reps of team {reps.at['R003', 'team']} active in this period" in r.intro
    # per week in the role: a teammate hired mid-period counts only the weeks since the hire date
    hired = reps["hire_date"]
    weeks = ((w.end - hired.clip(lower=w.start)).dt.days / 7).clip(0, 13).reindex(team)
    weeks = weeks[weeks >= 2]
    totals = wa[wa["rep_id"] != "R003"].groupby("rep_id")["total"].sum().reindex(weeks.index)
    assert r.activity.team["median"] == pytest.approx((totals / weeks).median())
    assert r.activity.team["n_reps"] == len(weeks)
    assert r.activity.rep_total == wa.loc[wa["rep_id"] == "R003", "total"].sum()


def test_questions_follow_what_the_data_shows(sample_ds, truth):
    leaky = next(r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "discovery_leak")
    r = rep_report(sample_ds, leaky, AS_OF)
    f = findings_for(team_view(sample_ds, r.header.as_of, 13), leaky, r.commitments,
                     {"conversion": r.conversion, "activity": r.activity, "stalled": r.stalled, "capture": r.capture})
    assert f.stage_leak["stage"] == "Discovery"
    assert any("Discovery" in q for q in r.questions)
    assert 4 <= len(r.questions) <= 7


def test_rep_audience_speaks_to_the_rep_and_adds_the_preread(sample_ds):
    m = rep_report(sample_ds, "R002", AS_OF, audience="manager")
    p = rep_report(sample_ds, "R002", AS_OF, audience="rep")
    assert m.preread is None and p.preread is not None
    assert "my pre-read" in p.intro.lower() and "my pre-read" not in m.intro.lower()
    assert m.questions != p.questions


def test_commitment_reviews_carry_verdict_and_numbers(sample_ds):
    reviewed = 0
    for rep_id in sample_ds.reps["rep_id"]:
        for rv in rep_report(sample_ds, rep_id, AS_OF).commitments:
            reviewed += 1
            p = rv.assessment.pipeline
            assert p.verdict in {"moved", "no meaningful change", "not enough data to tell", "activity did not change"}
            assert p.sentence
            assert rv.diagnosis.opening_question.endswith("?")
            assert set(rv.weekly.columns) == {"week", "value"}
            # secondary outcomes: the same test on the same windows, never the verdict
            sec = rv.assessment.secondary
            assert set(sec) == {"pipeline value", "stage advancements"}
            for r in sec.values():
                assert (r.n_pre_weeks, r.n_post_weeks, r.gates["activity_changed"]) == (
                    p.n_pre_weeks, p.n_post_weeks, p.gates["activity_changed"])
            assert rv.assessment.verdict == p.verdict
            assert rv.assessment.secondary_sentence.startswith("Also checked the same way") or (
                p.verdict == "activity did not change" and rv.assessment.secondary_sentence == "")
    assert reviewed >= 10


def test_a_kept_commitment_is_read_only_as_far_as_it_was_tested(sample_ds):
    """Issue #14: 'no lift' only for a tested pipeline; an unconfirmed activity change says so with the
    pipeline figure beside it; 'about N more weeks' only when more weeks are what is missing."""
    from coachnb.coaching import TESTED_VERDICTS
    from coachnb.formatting import fmt_ratio

    seen = set()
    for rep_id in sample_ds.reps["rep_id"]:
        for rv in rep_report(sample_ds, rep_id, AS_OF).commitments:
            a, d = rv.assessment, rv.diagnosis
            p = a.pipeline
            seen.add(d.category)
            if d.category == "kept_no_lift":
                assert p.verdict in TESTED_VERDICTS and a.activity.changed, rv.commitment["commitment_id"]
            if d.category == "kept_unclear":
                assert not a.activity.changed and p.verdict == "activity did not change"
                assert "can't be confirmed" in a.activity.sentence
                assert f"new pipeline ran at {fmt_ratio(p.rate_ratio)} what the team" in d.detail
                assert "no detectable lift" not in (d.label + d.detail).lower()
            if "more weeks" in d.opening_question:
                assert set(p.failed_gates) <= {"post_horizon"} and p.weeks_needed
    assert "kept_unclear" in seen  # the demo has a kept commitment whose change can't be confirmed


def test_pipeline_value_is_measured_in_deal_units_from_single_deal_weeks(sample_ds):
    from coachnb import store
    from coachnb.team import before_hire_as_missing, outcome_history, panel_start, secondary_histories

    tv = team_view(sample_ds, pd.Timestamp(AS_OF, tz=sample_ds.config.timezone), 13)
    counts = outcome_history(tv, tv.history_start)
    units = secondary_histories(tv, tv.history_start, counts)["pipeline value"]
    # the unit comes from every week the view's commitment reviews read (one unit for all of them)
    start = panel_start(tv, tv.history_start)
    assert start < tv.history_start  # the demo's commitments reach back further than the report's year
    every = outcome_history(tv, start)
    value = store.pipeline_panel(sample_ds, start, tv.window.end, "pipeline_created")
    single = value.to_numpy()[every.to_numpy() == 1]
    assert len(single) > 50  # plenty of weeks with exactly one new deal
    scale = (single**2).mean() / single.mean()
    expected = before_hire_as_missing(sample_ds, value / scale).loc[counts.index]
    assert units.to_numpy() == pytest.approx(expected.to_numpy(), nan_ok=True)
    assert units.isna().any().any() and (units.isna() == counts.isna()).all().all()  # weeks before a hire
    # in deal units a rep-week's value is on the scale of its count (a deal is a unit or so), not of currency
    busy = counts.to_numpy() > 0
    assert 0.2 < (units.to_numpy()[busy] / counts.to_numpy()[busy]).mean() < 2.0


def test_secondary_panels_kept_for_one_rep_never_decide_for_another(sample_ds):
    """From a store a team view's dataset holds one rep's deals: a rep with an unknown amount gets no
    pipeline-value panel even when a rep with every amount known filled the shared cache first."""
    import dataclasses

    from coachnb.team import outcome_history, secondary_histories

    tv = team_view(sample_ds, pd.Timestamp(AS_OF, tz=sample_ds.config.timezone), 13)
    counts = outcome_history(tv, tv.history_start)
    assert "pipeline value" in secondary_histories(tv, tv.history_start, counts)
    opps = sample_ds.opportunities.copy()
    opps.loc[opps.index[0], "amount"] = pd.NA
    unknown = dataclasses.replace(tv, ds=dataclasses.replace(sample_ds, opportunities=opps))
    assert unknown.cache is tv.cache  # the same shared cache, as for two reps in one worker
    assert "pipeline value" not in secondary_histories(unknown, tv.history_start, counts)
    assert "pipeline value" in secondary_histories(tv, tv.history_start, counts)


def test_partial_data_renders_with_sections_explained(sample_dir, tmp_path):
    part = tmp_path / "pipeline_only"
    shutil.copytree(sample_dir, part)
    for name in ("activities.csv", "stage_history.csv", "commitments.csv"):
        (part / name).unlink()
    r = rep_report(str(part), "R004", AS_OF)
    assert r.activity is None and r.conversion is None and r.velocity is None
    assert r.commitments == []
    assert "No activity log" in r.missing["activity"]
    assert len(r.results.rows) == 5
    # pipeline and stalls judged from deal dates still work without activities or stage history
    assert r.pipeline.created > 0 and "new opportunities" in r.pipeline.sentence
    assert r.stalled.basis == "age"
    ds = coachnb.load(part)
    as_of = r.header.as_of
    o = ds.opportunities
    open_ = o[(o["created_at"] < as_of) & ((o["status"] == "open") | (o["closed_at"] >= as_of))]
    ages = (as_of - open_["created_at"]).dt.total_seconds() / 86400
    p75 = ages.quantile(0.75)
    mine = ages[open_["rep_id"] == "R004"]
    assert r.stalled.n_open == len(mine)
    assert len(r.stalled.deals) == int((mine > p75).sum())
    assert (r.stalled.deals["days_in_stage"] > p75).all()


def test_report_holds_no_other_reps_identity(sample_ds):
    names = dict(zip(sample_ds.reps["rep_id"], sample_ds.reps["name"]))
    opps = sample_ds.opportunities
    r = rep_report(sample_ds, "R005", AS_OF)
    text = repr(dataclasses.asdict(r.header)) + repr(r.stalled.deals) + repr(r.activity.band) + repr(r.conversion.team)
    text += " ".join(r.questions) + repr(r.focus)
    for rep_id, name in names.items():
        if rep_id != "R005":
            assert name not in text
    others = opps[opps["rep_id"] != "R005"]
    assert not set(r.stalled.deals["name"]) & set(others["name"])


def _shown_html(show_section, r, monkeypatch) -> str:
    """What one display function shows, as HTML text (no IPython shell needed)."""
    from coachnb import display as show

    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    show_section(r)
    return "".join(h for h in map(shown_html, shown) if h != "<img>")


def test_self_assessment_is_set_beside_the_conversion_data(sample_ds, monkeypatch):
    from coachnb import display as show

    sa = sample_ds.self_assessments
    rep_id = str(sa["rep_id"].iloc[0])
    latest = sa[sa["rep_id"] == rep_id].sort_values("date").drop_duplicates("topic", keep="last")
    discovery = float(latest.set_index("topic").loc["Discovery", "score"])
    r = rep_report(sample_ds, rep_id, AS_OF)
    assert r.self_view.set_index("topic").loc["Discovery", "score"] == discovery
    html = _shown_html(show.conversion, r, monkeypatch)
    assert "self-assessment (1-5)" in html
    row = re.search(r"<td[^>]*>Discovery → Qualification</td>(.*?)</tr>", html, re.S).group(1)
    assert re.search(rf"<td[^>]*>{discovery:g}</td>", row)
    # a rep without a self-assessment gets no such column
    other = next(x for x in sample_ds.reps["rep_id"] if x not in set(sa["rep_id"]))
    assert "self-assessment" not in _shown_html(show.conversion, rep_report(sample_ds, other, AS_OF), monkeypatch)


def test_a_change_in_activity_is_found_when_no_commitment_is_on_record(sample_dir, tmp_path):
    # the demo team without commitments, where R009 doubles every activity from 6 Jul 2026 on
    data = tmp_path / "no_commitments"
    shutil.copytree(sample_dir, data)
    (data / "commitments.csv").unlink()
    acts = pd.read_csv(data / "activities.csv", dtype=str, keep_default_na=False)
    extra = acts[(acts["rep_id"] == "R009") & (acts["occurred_at"] >= "2026-07-06")].copy()
    extra["activity_id"] = "X" + extra["activity_id"]
    pd.concat([acts, extra]).to_csv(data / "activities.csv", index=False)

    r = rep_report(str(data), "R009", AS_OF)
    assert r.commitments == []
    ch = r.detected_change
    assert ch is not None and "deliberate" in ch.sentence
    assert abs((ch.week - pd.Timestamp("2026-07-06")).days) <= 21
    assert ch.post_rate == pytest.approx(2 * ch.pre_rate, rel=0.35)
    assert ch.pipeline.verdict in {"moved", "no meaningful change", "not enough data to tell"}
    # a rep whose activity did not change gets no guessed change
    steady = [rep for rep in ("R001", "R004", "R013") if rep_report(str(data), rep, AS_OF).detected_change is None]
    assert steady
    # with a commitment on record nothing is guessed
    assert rep_report(sample_dir, "R009", AS_OF).detected_change is None


def test_team_band_from_the_grid_equals_the_group_bys(sample_ds, monkeypatch):
    """The teammates' weekly band and quartiles read from the window's rep x week grid are the
    numbers pandas' group-bys give (the general path), for every rep and both weekly tables."""
    import numpy as np

    from coachnb import team
    from coachnb.calendar import resolve_as_of

    tv = team_view(sample_ds, resolve_as_of("2026-11-23", sample_ds), 13)
    general = team.window_table
    assert general(tv, "weekly_activity", "total").matrix is not None  # the grid path is taken
    for rep_id in sample_ds.reps["rep_id"]:
        for name, column in (("weekly_activity", "total"), ("weekly_pipeline", "opportunities_created")):
            fast = team.weekly_against_team(tv, name, rep_id, column)
            monkeypatch.setattr(team, "window_table", lambda tv, n, c: team.WindowTable(general(tv, n, c).rows))
            slow = team.weekly_against_team(tv, name, rep_id, column)
            monkeypatch.setattr(team, "window_table", general)
            pd.testing.assert_frame_equal(fast[1], slow[1], check_exact=True)
            pd.testing.assert_frame_equal(fast[2], slow[2], check_exact=True)
            assert fast[2]["n_reps"].eq(len(team.peer_group(tv, rep_id))).all() and len(team.peer_group(tv, rep_id)) >= 3
            for k in fast[3]:
                assert fast[3][k] == slow[3][k] or (np.isnan(fast[3][k]) and np.isnan(slow[3][k])), (rep_id, k)
            assert fast[4] == slow[4]


@pytest.fixture(scope="module")
def demo_store(sample_dir, tmp_path_factory):
    """A feature store of the demo team (the batch's path)."""
    from coachnb import store_build

    return store_build.build_store(sample_dir, "2026-11-23", 13, tmp_path_factory.mktemp("store"))


def _reps_with_commitments(store, n):
    """The first ``n`` reps with a commitment since last time and an older one on record."""
    from coachnb import team
    from coachnb.record import commitments_on_record

    ds, as_of, tv = team.open_data(store, "2026-11-23", 13)
    found = [r for r in ds.reps["rep_id"].astype(str)
             if len(team.active_commitments(ds, r, tv.window))
             and sum(c["status"] == "reviewed" for c in commitments_on_record(ds, r, as_of)) > 1]
    assert len(found) >= n
    return found[:n]


def test_commitment_reviews_are_reused_for_the_same_rep_from_a_store(demo_store, monkeypatch):
    """The record and the overview row ask for the reviews the report computed: served from the process,
    each with its own commitment row; another rep or audience never gets them."""
    from coachnb import record, report, team

    monkeypatch.setattr(report, "_REVIEWS", {})
    computed = []
    real = report.review_commitment
    monkeypatch.setattr(report, "review_commitment", lambda tv, rep, c, *a: computed.append((rep, c["commitment_id"]))
                        or real(tv, rep, c, *a))
    rep_id, other = _reps_with_commitments(demo_store, 2)
    r = rep_report(demo_store, rep_id, "2026-11-23", 13)
    rec = record.coaching_record(demo_store, rep_id, "2026-11-23", 13)  # without the report's reviews
    assert r.commitments and len(computed) == len(rec.commitments[rec.commitments["status"] == "reviewed"])
    assert len(set(computed)) == len(computed)  # each commitment of the rep reviewed once
    _, _, tv = team.open_data(demo_store, "2026-11-23", 13)
    again = report.commitment_reviews(tv, rep_id)
    assert [a.assessment for a in again] == [b.assessment for b in r.commitments]
    assert all(a.assessment is b.assessment for a, b in zip(again, r.commitments)) and len(again) == len(r.commitments)
    assert [a.commitment["rep_id"] for a in again] == [rep_id] * len(again)
    assert len(computed) == len(set(computed))  # nothing computed again
    # another rep, another audience: computed, not served; each rep's own commitments
    mine = len(computed)
    theirs = report.commitment_reviews(tv, other)
    assert {c for r_, c in computed[mine:]} == {str(t.commitment["commitment_id"]) for t in theirs}
    assert all(t.commitment["rep_id"] == other for t in theirs) and all(r_ == other for r_, _ in computed[mine:])
    report.commitment_reviews(tv, rep_id, "rep")
    assert len(computed) == mine + len(theirs) + len(r.commitments)


def test_reviews_kept_from_one_store_are_never_read_with_another(sample_dir, demo_store, tmp_path, monkeypatch):
    import shutil

    from coachnb import report, store_build, team

    monkeypatch.setattr(report, "_REVIEWS", {})
    rep_id = _reps_with_commitments(demo_store, 1)[0]
    _, _, tv = team.open_data(demo_store, "2026-11-23", 13)
    first = report.commitment_reviews(tv, rep_id)
    # other data: the rep's commitment targets doubled, in a store of its own
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    c = pd.read_csv(data / "commitments.csv", dtype=str)
    c.loc[c["rep_id"] == rep_id, "target"] = (c.loc[c["rep_id"] == rep_id, "target"].astype(float) * 2).astype(str)
    c.to_csv(data / "commitments.csv", index=False)
    other = store_build.build_store(data, "2026-11-23", 13, tmp_path / "out")
    _, _, tv2 = team.open_data(other, "2026-11-23", 13)
    second = report.commitment_reviews(tv2, rep_id)
    assert [2 * a.commitment["target"] for a in first] == [b.commitment["target"] for b in second]
    assert all(a.assessment is not b.assessment for a, b in zip(first, second))
    # and from a data folder nothing is kept at all
    monkeypatch.setattr(report, "_REVIEWS", {})
    report.commitment_reviews(team.open_data(sample_dir, "2026-11-23", 13)[2], rep_id)
    assert report._REVIEWS == {}


def test_the_overview_row_reads_the_reports_own_sections_and_never_another_reps(demo_store, monkeypatch):
    """A batch worker computes a rep's overview row right after the report: the report's sections are
    reused for that rep only, and the row is the one computed from scratch."""
    from coachnb import overview, report

    monkeypatch.setattr(report, "_SECTIONS", {})
    monkeypatch.setattr(report, "_REVIEWS", {})
    rep_id, other = _reps_with_commitments(demo_store, 2)
    fresh = {r: overview.summary_row(demo_store, "2026-11-23", 13, r) for r in (rep_id, other)}  # nothing kept
    assert report._SECTIONS == {}  # only a report keeps sections
    built = []
    for name in ("activity_section", "pipeline_section", "conversion_section", "capture_section"):
        real = getattr(overview, name)
        monkeypatch.setattr(overview, name, lambda tv, rep, _n=name, _f=real: built.append((_n, rep)) or _f(tv, rep))
    report._REVIEWS.clear()
    rep_report(demo_store, rep_id, "2026-11-23", 13)
    assert overview.summary_row(demo_store, "2026-11-23", 13, rep_id) == fresh[rep_id] and built == []
    assert overview.summary_row(demo_store, "2026-11-23", 13, other) == fresh[other]  # computed, not the report's
    assert {n for n, _ in built} == {"activity_section", "pipeline_section", "conversion_section",
                                     "capture_section"} and {r for _, r in built} == {other}
    assert set(k[4] for k in report._SECTIONS) == {rep_id}


def test_the_teams_thresholds_reach_the_pipeline_test(sample_ds, monkeypatch):
    """process.toml's baseline gap, minimum history and equivalence band are the ones the test uses."""
    from coachnb import impact
    from coachnb.team import impact_settings

    th = dataclasses.replace(sample_ds.config.thresholds, baseline_gap_weeks=3, min_pre_weeks=10,
                             equivalence_margin=0.2)
    ds = dataclasses.replace(sample_ds, config=dataclasses.replace(sample_ds.config, thresholds=th), fingerprint=None)
    s = impact_settings(ds)
    assert (s.gap_weeks, s.min_pre_weeks, s.equivalence_margin) == (3, 10, 0.2)
    seen = []
    real = impact.assess_commitment

    def spy(*args, **kwargs):
        seen.append(kwargs["settings"])
        return real(*args, **kwargs)

    monkeypatch.setattr(impact, "assess_commitment", spy)
    rep_id = str(ds.commitments["rep_id"].iloc[-1])
    assert rep_report(ds, rep_id, AS_OF).commitments
    assert seen and all(x == s for x in seen)


def test_the_evidence_table_gives_reasons_in_words_never_internal_gate_names():
    from types import SimpleNamespace

    from coachnb.display import evidence_table

    p = SimpleNamespace(pre_rate=0.3, post_rate=0.8, counterfactual_rate=0.5, rate_ratio=1.43, ci_low=0.41,
                        ci_high=4.2, mde_ratio=4.84, p_value=0.67, n_pre_weeks=26, n_post_weeks=8, n_peers=12,
                        gates={"activity_changed": "failed: the change in the committed activity can't be confirmed",
                               "pre_weeks": "passed", "post_horizon": "failed: 3 of 8 post weeks observed so far",
                               "peers": "not checked",
                               "baseline_dip": "passed: a dip, but the change also shows against the weeks before"})
    t = evidence_table(p).set_index("")["value"]
    reasons = t["Checks not passed"]
    assert reasons == "The change in the committed activity can't be confirmed; 3 of 8 post weeks observed so far"
    text = " ".join(t)
    for internal in ("activity_changed", "post_horizon", "pre_weeks", "baseline_dip", "not checked", "failed"):
        assert internal not in text


def test_since_last_time_shows_only_commitments_of_this_period_or_since_the_last_1to1(sample_ds):
    """A commitment that ended long before the period belongs to the record, with its year, not to
    'since last time' (the demo's R008, R018, R022 and R024 have only such commitments)."""
    from coachnb.team import last_session

    as_of = pd.Timestamp(AS_OF, tz=sample_ds.config.timezone)
    stale = 0
    for rep_id in sample_ds.reps["rep_id"]:
        r = rep_report(sample_ds, rep_id, AS_OF)
        window_start = pd.Timestamp(r.header.period.split(" to ")[0]).tz_localize(sample_ds.config.timezone)
        last = last_session(sample_ds, rep_id, as_of)
        for rv in r.commitments:
            c = rv.commitment
            assert c["end"] >= window_start or (last is not None and c["agreed_on"] >= last), (rep_id, c)
        mine = sample_ds.commitments[sample_ds.commitments["rep_id"] == rep_id]
        if not r.commitments and len(mine):
            stale += 1
            assert r.commitments_note and "belongs to the record" in r.commitments_note
            assert re.search(r"\d{2} \w{3} 20\d\d to \d{2} \w{3} 20\d\d", r.commitments_note)  # dated, with years
            assert r.detected_change is None  # a change in the data is most likely the recorded one
    assert stale >= 3


def test_plans_and_scenarios_are_about_behaviour_with_real_intervals(sample_ds):
    """A 30-day plan commits to a behaviour, never an outcome such as new opportunities; a what-if
    interval with no width is shown as a value only."""
    from coachnb.display import scenario_table

    behaviours = ("activity_count", "logged_on_time_share")
    for rep_id in sample_ds.reps["rep_id"]:
        r = rep_report(sample_ds, rep_id, AS_OF)
        for area in r.focus.areas:
            if area.suggested:
                assert sample_ds.config.commitment_metrics[area.suggested["metric"]].kind in behaviours, rep_id
        for _, t in r.scenarios:
            shown = scenario_table(t)
            for cell in shown["extra new opportunities"]:
                m = re.fullmatch(r"(\S+) \((\S+) to (\S+)\)", cell)
                assert m is None or m.group(2) != m.group(3), (rep_id, cell)
    t = pd.DataFrame({"horizon_days": [30], "extra_opportunities": [5.1], "low": [5.1], "high": [5.1],
                      "extra_pipeline_value": [100.0], "low_value": [50.0], "high_value": [150.0]})
    row = scenario_table(t).iloc[0]
    assert row["extra new opportunities"] == "5.1" and row["extra pipeline value"] == "100 (50 to 150)"


def test_a_coaching_date_after_the_data_ends_is_refused_and_the_default_is_the_last_covered_week(sample_ds,
                                                                                                 sample_dir, tmp_path):
    """Weeks after the data ends would read as real zeros ("the last 4 weeks ran at 53%"): refused
    with the latest date the data supports, which is also the default instead of today."""
    from coachnb.calendar import data_end, latest_as_of
    from coachnb.errors import AsOfError
    from coachnb.store_build import build_store

    assert data_end(sample_ds).strftime("%Y-%m-%d") == "2026-11-23"
    assert latest_as_of(sample_ds).strftime("%Y-%m-%d") == AS_OF  # the week of the last record is still open
    assert rep_report(sample_ds, "R003").header.as_of.strftime("%Y-%m-%d") == AS_OF
    for late in ("2026-11-24", "2026-12-07", "2030-01-07"):
        with pytest.raises(AsOfError, match=r"ends on 23 Nov 2026.*--as-of 2026-11-23"):
            rep_report(sample_ds, "R003", late)
    with pytest.raises(AsOfError):
        build_store(sample_dir, "2026-12-07", 13, tmp_path)
    assert not list(tmp_path.glob(".features/*/features.json"))  # no store for weeks the data doesn't reach
    assert rep_report(sample_ds, "R003", "2026-11-16").header.as_of.strftime("%Y-%m-%d") == "2026-11-16"


def test_a_reps_days_in_stage_read_the_same_in_the_section_and_the_focus(sample_ds):
    """One value per measure: 'Deals sit in Proposal for a median of 87 days' and 'median 97.9 days'
    were the same measure over two windows, in two formats."""
    seen = 0
    for rep_id in sample_ds.reps["rep_id"]:
        r = rep_report(sample_ds, rep_id, AS_OF)
        mine = r.velocity.rep.set_index("stage")["median_days"]
        for area in r.focus.areas:
            if area.driver == "days_in_stage":
                stage = area.area.removeprefix("Time in ")
                days = re.search(r"median (\S+) days", area.reason).group(1)
                assert days == f"{mine[stage]:.0f}", (rep_id, area.reason, mine[stage])
                seen += 1
    assert seen >= 2


@pytest.mark.parametrize("as_of, why", [("next monday", "is not a date"), ("0226-11-01", "outside the years"),
                                        ("9999-12-31", "outside the years")])
def test_a_coaching_date_that_is_no_date_or_out_of_range_is_a_clear_error(sample_ds, tmp_path, as_of, why):
    """The API and the batch refuse it with AsOfError, never pandas' DateParseError or OutOfBoundsDatetime."""
    from coachnb.batch import run_batch
    from coachnb.errors import AsOfError, CoachnbError

    with pytest.raises(AsOfError, match=why):
        rep_report(sample_ds, "R003", as_of)
    if as_of[0].isdigit():
        with pytest.raises(CoachnbError, match=why):
            run_batch(tmp_path / "data", as_of, out=tmp_path / "reports", progress=False)
        assert not (tmp_path / "reports").exists()


def test_a_missing_data_folder_is_a_data_error_naming_it(tmp_path):
    from coachnb.errors import DataError

    with pytest.raises(DataError, match="nope"):
        coachnb.rep_report(str(tmp_path / "nope"), "R001", AS_OF)


def test_an_analyst_sees_each_section_and_the_numbers_behind_the_results(sample_ds):
    r = rep_report(sample_ds, "R003", AS_OF)
    page = r._repr_html_()
    for name in ("header", "activity", "pipeline", "results", "commitments[0]"):
        assert f"<h4>{name}</h4>" in page
    assert r.activity._repr_html_().startswith("<p>") and "<code>.rep_weekly</code>" in r.activity._repr_html_()
    v = r.results.values.set_index("measure")
    assert v.dtypes.map(lambda d: d.kind == "f").all()  # numbers, not the strings the page shows
    shown = r.results.rows.set_index("measure")
    assert shown.at["Share of quarterly quota won", "you"] == f"{100 * v.at['Share of quarterly quota won', 'you']:.0f}%"
    assert list(v.index) == list(shown.index)
    assert repr(sample_ds).startswith("Dataset(") and "reps 24" in repr(sample_ds) and len(repr(sample_ds)) < 300


def test_the_packages_entry_points_are_the_documented_functions_and_import_stays_light():
    import subprocess
    import sys

    from coachnb.report import rep_report as real

    assert coachnb.rep_report is real and "Parameters" in coachnb.rep_report.__doc__
    code = "import sys, coachnb; print(sorted(m for m in sys.modules if m.startswith('coachnb.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "coachnb.report" not in loaded and "coachnb.loading" not in loaded
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        coachnb.nope  # noqa: B018


def test_a_focus_area_states_the_same_team_median_as_its_section(sample_ds):
    """One value per measure per report: the focus quotes the section's team figure, not another statistic."""
    from coachnb.formatting import fmt_num, fmt_pct

    checked = 0
    for rep_id in sample_ds.reps["rep_id"]:
        r = rep_report(sample_ds, rep_id, AS_OF)
        for area in r.focus.areas:
            if area.driver == "conversion":
                team = r.conversion.team.set_index("step").at[area.area, "median"]
                assert f"team median {fmt_pct(team)}." in area.reason, (rep_id, area.reason)
                checked += 1
            if area.driver == "days_in_stage":
                stage = area.area.removeprefix("Time in ")
                team = r.velocity.team.set_index("stage").at[stage, "median_days"]
                assert f"team median {fmt_num(team, 0)} days" in area.reason, (rep_id, area.reason)
                checked += 1
    assert checked >= 3


def test_each_result_is_the_reps_own_figure_and_the_peer_groups_median(sample_ds):
    """The results' numbers, read once each for the text and the numbers, are the team tables' own."""
    from coachnb.report import RESULT_SOURCES
    from coachnb.team import open_data, peer_group

    for rep_id in ("R003", "R010"):
        r = rep_report(sample_ds, rep_id, AS_OF)
        _, _, tv = open_data(sample_ds, AS_OF, 13)
        peers = set(peer_group(tv, rep_id).ids)
        v = r.results.values.set_index("measure")
        assert len(v) >= 4
        for measure, (name, column) in RESULT_SOURCES.items():
            if measure not in v.index:
                continue
            table = getattr(tv, name)
            own = table.loc[table["rep_id"] == rep_id, column]
            team = pd.to_numeric(table.loc[table["rep_id"].astype(str).isin(peers), column]).dropna()
            assert v.at[measure, "you"] == pytest.approx(float(own.iloc[0]), nan_ok=True), (rep_id, measure)
            assert v.at[measure, "team median"] == pytest.approx(float(team.median()), nan_ok=True), (rep_id, measure)


def test_a_reps_own_rows_are_read_once_and_each_dataset_gets_frames_of_its_own(demo_store, monkeypatch):
    """A report, its record and its row each open the rep's Dataset: the rows are read from the files once
    for that rep, never served for another rep, and changing one Dataset's frame
    changes no other."""
    from coachnb import store

    fs = store.open_store(demo_store)
    monkeypatch.setattr(fs, "_rep_rows", store._Bounded(store.REPS_KEPT))
    reads = []
    real = fs.rep_slice
    monkeypatch.setattr(fs, "rep_slice", lambda name, rep: reads.append((name, rep)) or real(name, rep))
    rep_id, other = _reps_with_commitments(demo_store, 2)
    first, second = fs.dataset_for(rep_id), fs.dataset_for(rep_id)
    assert len(reads) == len(store.PER_REP) and {r for _, r in reads} == {rep_id}
    for name in store.PER_REP:
        pd.testing.assert_frame_equal(getattr(first, name), real(name, rep_id))
        assert getattr(first, name) is not getattr(second, name)
    assert len(first.opportunities) and set(first.opportunities["rep_id"]) == {rep_id}
    first.opportunities.loc[first.opportunities.index[0], "amount"] = -1.0  # one Dataset's frame changed
    assert (second.opportunities["amount"] != -1.0).all() and (fs.dataset_for(rep_id).opportunities["amount"] != -1.0).all()
    theirs = fs.dataset_for(other)  # another rep: read, their own rows only
    assert set(theirs.opportunities["rep_id"]) == {other} and reads[-1][1] == other
    fs.dataset_for("R999" if "R999" not in (rep_id, other) else "R998")  # a third rep pushes out the first
    n = len(reads)
    fs.dataset_for(rep_id)
    assert len(reads) == n + len(store.PER_REP)


def test_weeks_before_a_reps_hire_are_missing_and_the_first_row_of_a_rep_decides():
    """The week that holds the hire date is kept, every week that ended before it is NaN; a rep listed
    twice has the first row's date, a column that is no rep keeps its weeks, the time zone is dropped."""
    from types import SimpleNamespace

    from coachnb.team import before_hire_as_missing, hire_dates

    tz = "Europe/London"
    reps = pd.DataFrame({"rep_id": pd.array(["A", "B", "A"], dtype="string"),
                         "hire_date": pd.to_datetime(["2026-03-11", "2026-02-01", "2025-01-01"]).tz_localize(tz)})
    weeks = pd.date_range("2026-02-23", periods=4, freq="7D")  # Mondays: 23 Feb, 2, 9, 16 Mar
    panel = pd.DataFrame({"A": [1, 2, 3, 4], "B": [5, 6, 7, 8], "X": [0, 0, 1, 1]}, index=weeks)
    out = before_hire_as_missing(SimpleNamespace(reps=reps), panel)
    assert out["A"].iloc[:2].isna().all()  # weeks of 23 Feb and 2 Mar ended before the hire
    assert out["A"].tolist()[2:] == [3.0, 4.0]  # the week of 9 Mar holds the hire on the 11th
    assert out["B"].tolist() == [5.0, 6.0, 7.0, 8.0] and out["X"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert list(out.columns) == ["A", "B", "X"] and out.index.equals(panel.index)
    got = hire_dates(SimpleNamespace(reps=reps), ["B", "X", "A"])
    assert got[0] == np.datetime64("2026-02-01") and np.isnat(got[1]) and got[2] == np.datetime64("2026-03-11")
    late = reps.assign(hire_date=reps["hire_date"] - pd.Timedelta(days=400))
    assert before_hire_as_missing(SimpleNamespace(reps=late), panel) is panel  # nothing to mask: the panel as is


@pytest.mark.parametrize("seed", range(3))
def test_team_quartiles_are_the_numbers_pandas_gives(seed):
    """team.quartiles computes median and quartiles with numpy: the same floats as Series.median and
    Series.quantile, over floats, whole numbers, ties, missing values and nullable dtypes."""
    from coachnb.team import quartiles

    rng = np.random.default_rng(seed)
    for i in range(400):
        n = int(rng.integers(1, 40))
        a = [rng.normal(size=n) * 1e3, rng.integers(0, 9, size=n), rng.exponential(size=n) / 7][i % 3]
        s = pd.Series(a)
        if i % 4 == 0:
            s = s.astype(float).mask(rng.random(n) < 0.3)
        if i % 5 == 0:
            s = s.astype("Float64")
        v = pd.to_numeric(s, errors="coerce").dropna()
        got = quartiles(s)
        if v.empty:
            assert got["n_reps"] == 0 and np.isnan(got["median"])
            continue
        assert (got["median"], got["q25"], got["q75"], got["n_reps"]) == (
            float(v.median()), float(v.quantile(0.25)), float(v.quantile(0.75)), len(v))
        assert quartiles(s, min_reps=len(v) + 1)["n_reps"] == 0  # too few to pool: no figure
    assert quartiles(pd.Series(["3", "x", None, "5"]))["median"] == 4.0  # text that reads as a number counts


def test_a_stores_hire_dates_are_kept_for_its_own_reps_table_only(demo_store):
    """The store's hire dates are worked out once; a Dataset with another reps table (same store) gets its own."""
    from coachnb import store, team

    ds, _, _ = team.open_data(demo_store, "2026-11-23", 13, "R003")
    fs = store.store_of(ds)
    ids = list(ds.reps["rep_id"])
    kept = team.hire_dates(ds, ids)
    assert fs.hire_dates() is fs.hire_dates() and ds.reps is fs.whole["reps"]
    assert [fs.hire_dates()[r] for r in ids] == list(kept) and not np.isnat(kept).any()
    later = ds.reps.assign(hire_date=ds.reps["hire_date"] + pd.Timedelta(days=30))
    other = dataclasses.replace(ds, reps=later)
    moved = team.hire_dates(other, ids) - kept  # 30 days later (an hour either way across a clock change)
    assert ((moved > np.timedelta64(29, "D")) & (moved < np.timedelta64(31, "D"))).all()
    assert (team.hire_dates(ds, ids) == kept).all()  # the store's own answer is unchanged
