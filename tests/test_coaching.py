"""The coaching loop: diagnosis, patterns, shrinkage, focus areas, scenarios and questions."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from coachnb import coaching
from coachnb.coaching import (
    ActivityLink, Diagnosis, Findings, bootstrap_ratio, classify, commitment_pattern, diagnose, fit_beta_prior, focus_areas,
    questions_for, scenario, scenario_table, self_view, shrunk_rate,
)

AS_OF = "2026-11-23"


# ----------------------------------------------------------------------------- constructed assessments
@dataclass
class Act:
    adherence: str
    pre_rate: float = 5.0
    post_rate: float = 10.0
    target: float = 10.0


@dataclass
class Pipe:
    verdict: str
    direction: str | None = None
    weeks_needed: int | None = None
    failed_gates: list = dataclasses.field(default_factory=list)
    rate_ratio: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n_pre_weeks: int = 0
    n_post_weeks: int = 0


@dataclass
class Assessment:
    activity: Act
    pipeline: Pipe


COMMITMENT = {"commitment_id": "K0007", "metric": "calls_per_week", "baseline": 5.0, "target": 10.0,
              "end": pd.Timestamp("2026-09-30"), "follow_up": "check in on Friday afternoons"}


def test_kept_and_moved():
    d = diagnose(Assessment(Act("kept"), Pipe("moved", "up")), commitment=COMMITMENT, finished=True)
    assert d.category == "kept_moved" and d.commitment_id == "K0007"
    assert "calls per week" in d.opening_question and d.opening_question.endswith("?")


def test_kept_without_lift_is_nobodys_fault_and_asks_what_to_adjust():
    d = diagnose(Assessment(Act("kept"), Pipe("no meaningful change")), commitment=COMMITMENT, finished=True)
    assert d.category == "kept_no_lift"
    assert "nobody is in trouble" in d.detail.lower()
    assert "adjust" in d.opening_question and d.opening_question.endswith("?")
    # pipeline that moved down after a kept commitment is also "no lift", not a kept_moved
    down = diagnose(Assessment(Act("kept"), Pipe("moved", "down")), commitment=COMMITMENT, finished=True)
    assert down.category == "kept_no_lift"


def test_kept_but_too_early_says_how_many_more_weeks():
    d = diagnose(Assessment(Act("kept"), Pipe("not enough data to tell", weeks_needed=6)),
                 commitment=COMMITMENT, finished=True)
    assert d.category == "kept_too_early"
    assert "about 6 more weeks" in d.opening_question and "6 more weeks" in d.detail


def test_kept_without_a_clear_change_in_activity_is_never_read_as_no_lift():
    """'Kept, no lift' needs a pipeline test; with no clear change in activity there was none."""
    for finished in (True, False):
        d = diagnose(Assessment(Act("kept", post_rate=9.0), Pipe("activity did not change")),
                     commitment=COMMITMENT, finished=finished)
        assert d.category == "kept_unclear"
        assert "no detectable lift" not in d.label.lower() and "pipeline hasn't moved" not in d.opening_question
        assert "too soon to say" in d.opening_question and "calls per week" in d.opening_question
    rep = diagnose(Assessment(Act("kept"), Pipe("activity did not change")), commitment=COMMITMENT, finished=True,
                   audience="rep")
    assert rep.opening_question.startswith("I kept calls per week at or near the target")
    assert classify("kept", "no meaningful change") == "kept_no_lift"


def test_kept_when_no_amount_of_data_would_tell_is_neither_no_lift_nor_wait():
    """'Not enough data to tell' found nothing either way: not 'no detectable lift' (a skill talk
    the data can't support), and not 'wait N weeks' when no number of weeks would show it."""
    d = diagnose(Assessment(Act("kept"), Pipe("not enough data to tell", weeks_needed=None)),
                 commitment=COMMITMENT, finished=True)
    assert d.category == "kept_too_early" and d.label == "Kept; the effect on pipeline can't be judged from the data"
    assert "no detectable lift" not in d.label.lower() and "more weeks" not in d.opening_question
    assert "which deals has it touched" in d.opening_question


VERDICTS = ("moved", "no meaningful change", "not enough data to tell", "activity did not change", None)


def test_kept_no_lift_only_when_the_pipeline_was_tested():
    for verdict in VERDICTS:
        for direction in ("up", "down", None):
            for finished in (True, False, None):
                cat = classify("kept", verdict, direction, finished)
                tested_no_lift = verdict == "no meaningful change" or (verdict == "moved" and direction == "down")
                assert (cat == "kept_no_lift") == tested_no_lift, (verdict, direction, finished, cat)
                if verdict == "activity did not change":
                    assert cat == "kept_unclear"
                if verdict in ("not enough data to tell", None):
                    assert cat == ("in_progress" if finished is False else "kept_too_early")
    assert set(coaching.TESTED_VERDICTS) == {"moved", "no meaningful change"}


def test_an_unconfirmed_activity_change_says_so_and_shows_the_pipeline_result_beside_it():
    pipe = Pipe("activity did not change", rate_ratio=1.85, ci_low=1.05, ci_high=3.41, n_pre_weeks=26, n_post_weeks=8)
    d = diagnose(Assessment(Act("kept", post_rate=9.0), pipe), commitment=COMMITMENT, finished=True)
    assert d.category == "kept_unclear"
    assert d.detail.endswith("For reference, new pipeline ran at 1.85× what the team's trend predicts (95% interval "
                             "1.05× to 3.4×; 26 weeks before, 8 after); with the change in activity not confirmed, "
                             "that is not read as the commitment's effect.")
    assert "no detectable lift" not in d.detail.lower() and "skill" not in d.detail.lower()
    open_ended = Pipe("activity did not change", rate_ratio=1.2, ci_low=0.4, ci_high=float("inf"), n_pre_weeks=1,
                      n_post_weeks=3)
    assert "(95% interval 0.40× to no upper limit; 1 week before, 3 after)" in coaching.pipeline_beside(open_ended)
    nothing = diagnose(Assessment(Act("kept"), Pipe("activity did not change")), commitment=COMMITMENT, finished=True)
    assert nothing.detail.endswith("No figure for new pipeline could be computed for these weeks.")
    # only this reading carries it: a tested verdict speaks for itself
    moved = diagnose(Assessment(Act("kept"), Pipe("moved", "up", rate_ratio=2.0)), commitment=COMMITMENT, finished=True)
    assert "For reference" not in moved.detail


def test_pipeline_not_judged_for_a_failed_data_gate_is_never_worded_as_too_early():
    """'Too early, about N more weeks' only when time is what is missing: a failed baseline, peers or
    dip gate is not settled by waiting."""
    for gate in ("pre_weeks", "peers", "baseline_dip"):
        pipe = Pipe("not enough data to tell", weeks_needed=6, failed_gates=[gate, "post_horizon"])
        d = diagnose(Assessment(Act("kept"), pipe), commitment=COMMITMENT, finished=True)
        assert d.category == "kept_too_early" and coaching.wording_key(d.category, "kept", pipe) == "kept_cannot_tell"
        assert "6 more weeks" not in d.opening_question and "6 more weeks" not in d.detail
    waiting = Pipe("not enough data to tell", weeks_needed=6, failed_gates=["post_horizon"])
    assert coaching.wording_key("kept_too_early", "kept", waiting) == "kept_too_early"
    wide = Pipe("not enough data to tell", weeks_needed=4)  # every gate passed, the interval too wide yet
    assert "about 4 more weeks" in diagnose(Assessment(Act("kept"), wide), COMMITMENT, finished=True).opening_question
    assert coaching.wording_key("not_kept", "partly kept", wide) == "partly_kept"
    assert coaching.wording_key("not_kept", "not kept", wide) == "not_kept"


def test_a_real_unconfirmed_change_keeps_the_pipeline_estimate_for_the_report():
    """On a simulated team whose rep did not change activity, the verdict is 'activity did not change'
    and the pipeline estimate the diagnosis shows beside it is filled (issue #14)."""
    from coachnb.impact import assess_commitment  # the real assessment, only for this end-to-end check
    from coachnb.simulate import simulate_team

    sim = simulate_team(np.random.default_rng(5), n_reps=12, n_weeks=70, change_week=50, activity_ratio=1.0)
    end = sim.activity.index[57]
    pre = float(sim.activity["R00"].iloc[40:50].mean())
    a = assess_commitment(sim.activity, sim.outcome, "R00", sim.start, end, target=pre, baseline=pre)
    assert a.pipeline.verdict == "activity did not change" and not a.activity.changed
    p = a.pipeline
    assert np.isfinite(p.rate_ratio) and p.ci_low <= p.rate_ratio <= p.ci_high and p.n_pre_weeks > 0 < p.n_post_weeks
    d = diagnose(a, commitment=COMMITMENT, finished=True)
    assert d.category == "kept_unclear" and "For reference, new pipeline ran at" in d.detail


def test_not_kept_opens_with_the_follow_up_the_rep_chose():
    d = diagnose(Assessment(Act("not kept", post_rate=5.2), Pipe("activity did not change")),
                 commitment=COMMITMENT, finished=True)
    assert d.category == "not_kept" and d.label == "Not kept"
    assert '"check in on Friday afternoons"' in d.opening_question
    assert d.opening_question.startswith("When we agreed this, you asked me")
    assert d.opening_question.endswith("What got in the way of calls per week?")


def test_not_kept_without_a_recorded_follow_up_asks_how_to_follow_up():
    c = {**COMMITMENT, "follow_up": pd.NA}
    d = diagnose(Assessment(Act("not kept"), Pipe("activity did not change")), commitment=c, finished=True)
    assert d.category == "not_kept"
    assert '"' not in d.opening_question and "how would you like me to check in" in d.opening_question


def test_partly_kept_is_an_execution_talk_that_starts_from_progress():
    d = diagnose(Assessment(Act("partly kept", post_rate=8.0), Pipe("no meaningful change")),
                 commitment=COMMITMENT, finished=True)
    assert d.category == "not_kept" and d.label == "Partly kept"
    assert "from 5 to about 8 a week" in d.opening_question and '"check in on Friday afternoons"' in d.opening_question


def test_in_progress_while_the_commitment_runs():
    assert diagnose(Assessment(Act("too early"), Pipe("not enough data to tell")), commitment=COMMITMENT).category \
        == "in_progress"
    running = diagnose(Assessment(Act("kept"), Pipe("not enough data to tell")), commitment=COMMITMENT,
                       finished=False)
    assert running.category == "in_progress" and "30 Sep" in running.opening_question
    assert classify("not kept", "activity did not change", finished=False) == "in_progress"
    with pytest.raises(ValueError):
        classify("sort of", "moved")


def test_rep_audience_speaks_in_the_first_person():
    d = diagnose(Assessment(Act("not kept"), Pipe("activity did not change")), commitment=COMMITMENT,
                 finished=True, audience="rep")
    assert d.opening_question.startswith("When I agreed this, I asked")


def _d(cat):
    return Diagnosis(cat, cat, "?", "")


def test_patterns_across_commitments():
    two_missed = commitment_pattern([_d("kept_moved"), _d("not_kept"), _d("in_progress"), _d("not_kept")])
    assert two_missed.startswith("Two of the last three commitments weren't kept")
    assert commitment_pattern([_d("kept_no_lift"), _d("kept_no_lift")]).startswith("The last two commitments were kept")
    streak = commitment_pattern([_d("not_kept"), _d("kept_moved"), _d("kept_too_early"), _d("kept_moved")])
    assert streak.startswith("The last three commitments were all kept")
    assert commitment_pattern([_d("not_kept")]) is None
    assert commitment_pattern([_d("not_kept"), _d("kept_moved"), _d("kept_moved"), _d("not_kept")]) is None
    assert commitment_pattern([]) is None


# ----------------------------------------------------------------------------- shrinkage
def test_beta_prior_by_moments_matches_hand_calculation():
    # p = 10/20 = .5; sum n (x - p)^2 / (p q) = (10*.04 + 10*.04) / .25 = 3.2; m = 2, N = 20, sum n^2/N = 10
    # rho = (3.2 - 1) / (20 - 2 + 1 - 10) = 2.2 / 9; alpha + beta = 1/rho - 1 = 34/11
    a, b = fit_beta_prior([3, 7], [10, 10])
    assert a == pytest.approx(17 / 11) and b == pytest.approx(17 / 11)
    assert shrunk_rate([1], [3], a, b)[0] == pytest.approx(28 / 67)  # (1 + 17/11) / (3 + 34/11)


def test_shrinkage_pulls_a_one_of_three_rep_towards_the_team():
    k = np.array([1, 10, 11, 9, 10, 12, 8])
    n = np.array([3, 20, 20, 20, 20, 20, 20])
    a, b = fit_beta_prior(k, n)
    post = shrunk_rate(k, n, a, b)
    team = k[1:].sum() / n[1:].sum()  # 0.5
    assert 1 / 3 < post[0] < team
    assert abs(post[0] - team) < abs(1 / 3 - team) / 2  # more than half way to the team
    # a rep with plenty of deals keeps most of their own rate
    k2, n2 = np.append(k, 60), np.append(n, 200)  # 30% on 200 deals
    a2, b2 = fit_beta_prior(k2, n2)
    assert shrunk_rate([60], [200], a2, b2)[0] == pytest.approx(0.3, abs=0.05)
    assert fit_beta_prior([0], [0]) != fit_beta_prior([0], [0])  # (nan, nan) without trials


# ----------------------------------------------------------------------------- scenarios
def test_scenario_table_matches_hand_calculation():
    link = ActivityLink("pooled ratio", 1 / 6, 0.1, 0.25, 8)
    t = scenario_table(link, 2.0, delta_per_week=5, horizons_days=(30, 90), deal_size=12000, win_rate=0.25)
    assert list(t["horizon_days"]) == [30, 90]
    first = t.iloc[0]
    assert first["extra_opportunities"] == pytest.approx(25 / 7)  # 1/6 * 5 calls * 30/7 weeks
    assert first["low"] == pytest.approx(0.1 * 5 * 30 / 7) and first["high"] == pytest.approx(0.25 * 5 * 30 / 7)
    assert first["extra_pipeline_value"] == pytest.approx(25 / 7 * 12000)
    assert first["extra_won_value"] == pytest.approx(25 / 7 * 12000 * 0.25)
    assert t.iloc[1]["extra_opportunities"] == pytest.approx(3 * 25 / 7)
    assert "average one" in t.attrs["basis"]
    cut = scenario_table(link, 2.0, delta_per_week=-5, horizons_days=(30,), deal_size=1.0)
    assert cut.iloc[0]["low"] < cut.iloc[0]["extra_opportunities"] < cut.iloc[0]["high"] < 0


def test_panel_link_scales_the_reps_own_rate_multiplicatively():
    # 2 opportunities a week, 3% more per extra call a week, 10 more calls: 2 * (1.03^10 - 1) a week
    link = ActivityLink("panel model", 1.03, 1.01, 1.05, 8)
    mid, lo, hi = link.extra_per_week(2.0, 10)
    assert mid == pytest.approx(2 * (1.03 ** 10 - 1))
    assert (lo, hi) == (pytest.approx(2 * (1.01 ** 10 - 1)), pytest.approx(2 * (1.05 ** 10 - 1)))
    assert link.extra_per_week(0.0, 10) == (0.0, 0.0, 0.0)  # no pipeline of one's own: nothing to multiply
    assert "five weeks" in link.basis
    assert "other way" in ActivityLink("panel model", 1.03, 1.01, 1.05, 8, lead_p_value=0.01, lead_coef=0.02).basis
    # activity that fell after good pipeline weeks does not inflate the link: no caveat
    assert "other way" not in ActivityLink("panel model", 1.03, 1.01, 1.05, 8, lead_p_value=0.01, lead_coef=-0.02).basis
    assert "other way" not in ActivityLink("panel model", 1.03, 1.01, 1.05, 8, lead_p_value=0.3, lead_coef=0.02).basis


def test_bootstrap_ratio_is_pooled_and_bounded_by_the_reps():
    ratio, low, high = bootstrap_ratio([2, 3, 5], [10, 20, 30])
    assert ratio == pytest.approx(1 / 6)
    assert 0.15 <= low < ratio < high <= 0.2  # a resampled pooled ratio lies between the reps' own ratios


# ----------------------------------------------------------------------------- with data
@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    from coachnb.loading import load
    from coachnb.demo import write_demo_data

    out = write_demo_data(tmp_path_factory.mktemp("demo"), reps=12, weeks=40, seed=7, end=AS_OF)
    return load(out)


def _with_new_rep(ds, n_deals: int, n_activities: int):
    """A copy of ``ds`` with rep RNEW: ``n_deals`` lost deals and ``n_activities`` calls in the last weeks."""
    reps = ds.reps.copy()
    new = reps.iloc[[0]].copy()
    new["rep_id"] = pd.array(["RNEW"], dtype="string")
    opp = ds.opportunities
    deals = opp[(opp["status"] == "lost") & (opp["closed_at"] < pd.Timestamp(AS_OF, tz=ds.config.timezone))]
    deals = deals.sort_values("closed_at").tail(n_deals).copy()
    deals["rep_id"] = pd.array(["RNEW"] * len(deals), dtype="string")
    deals["opportunity_id"] = pd.array([f"ONEW{i}" for i in range(len(deals))], dtype="string")
    acts = ds.activities[ds.activities["occurred_at"] < pd.Timestamp(AS_OF, tz=ds.config.timezone)]
    acts = acts.sort_values("occurred_at").tail(n_activities).copy()
    acts["rep_id"] = pd.array(["RNEW"] * len(acts), dtype="string")
    acts["activity_id"] = pd.array([f"ANEW{i}" for i in range(len(acts))], dtype="string")
    acts["opportunity_id"] = pd.array([pd.NA] * len(acts), dtype="string")
    return dataclasses.replace(ds, reps=pd.concat([reps, new], ignore_index=True),
                               opportunities=pd.concat([opp, deals], ignore_index=True),
                               activities=pd.concat([ds.activities, acts], ignore_index=True), fingerprint="")


def test_focus_never_more_than_two(ds):
    tables = coaching.funnel_tables(ds, AS_OF)
    counts = []
    for rep in ds.reps["rep_id"]:
        res = focus_areas(ds, rep, AS_OF, max_areas=5, tables=tables)
        counts.append(len(res.areas))
        assert len(res.areas) <= 2
        for a in res.areas:
            assert "team median" in a.reason
            assert a.driver == "data_capture" or a.modeled_gain > 0
            if a.suggested:
                assert a.suggested["metric"] in ds.config.commitment_metrics
                assert a.suggested["target"] != a.suggested["baseline"]
    assert max(counts) == 2  # the demo team has reps with clear gaps


def test_focus_is_empty_with_a_note_for_a_rep_with_too_little_data(ds):
    small = _with_new_rep(ds, n_deals=2, n_activities=3)
    res = focus_areas(small, "RNEW", AS_OF)
    assert res.areas == [] and "Too little data" in res.note and "2 deals won or lost" in res.note


def test_scenario_on_data_uses_the_teams_panel_model(ds, monkeypatch):
    from coachnb import metrics, team_effects

    # the fixture's teams have 6 reps, under the model's 8: lowered here to check the arithmetic
    monkeypatch.setattr(team_effects, "MIN_REPS_FOR_INTERVAL", 6)
    monkeypatch.setattr(coaching, "LINK_MIN_REPS", 6)
    monkeypatch.setattr(coaching, "_FIT_CACHE", {})
    from coachnb.metrics import weekly_panel
    from coachnb.team_effects import team_activity_effect

    rep = "R001"
    t = scenario(ds, rep, AS_OF, metric="calls_per_week", from_value=10, to_value=15, horizons_days=(28,))
    assert t.attrs["method"] == "panel model"
    # by hand: the team's panel model over the 52 whole weeks before the 1:1's week ...
    end = pd.Timestamp("2026-11-23", tz=ds.config.timezone)  # a Monday: the 1:1's week starts here
    team = ds.reps.loc[ds.reps["team"] == ds.reps.set_index("rep_id").at[rep, "team"], "rep_id"].astype(str).tolist()
    act = weekly_panel(metrics.metric_weekly(ds, "calls_per_week", end - pd.Timedelta(weeks=52), end), "value")
    out = weekly_panel(metrics.weekly_pipeline(ds, end - pd.Timedelta(weeks=52), end), "opportunities_created")
    fit = team_activity_effect(act[team], out[team], max_lag=4, n_boot=coaching.LINK_BOOT, p_values=False)
    rr = fit.set_index("term").loc["total (lags 0-4)", "rate_ratio_per_unit"]
    assert f"within each of the {fit.attrs['n_reps']} reps" in t.attrs["basis"] and fit.attrs["n_reps"] >= 5
    # ... applied to R001's own new opportunities a week over the last 26 weeks, 5 more calls, 4 weeks
    o = ds.opportunities
    own = ((o["rep_id"] == rep) & (o["created_at"] >= end - pd.Timedelta(weeks=26)) & (o["created_at"] < end)).sum()
    assert t.iloc[0]["extra_opportunities"] == pytest.approx(own / 26 * (rr ** 5 - 1) * 4)
    assert t.iloc[0]["low"] < t.iloc[0]["extra_opportunities"] < t.iloc[0]["high"]
    with pytest.raises(ValueError):
        scenario(ds, rep, AS_OF, metric="logged_on_time_share", to_value=0.9)


def test_scenario_reuses_the_funnel_the_focus_already_ranked(ds, monkeypatch):
    rep = "R001"
    focus = focus_areas(ds, rep, AS_OF)
    assert focus.funnel is not None and focus.funnel["deal_size"] > 0
    fresh = scenario(ds, rep, AS_OF, metric="calls_per_week", from_value=10, to_value=15)

    def no_second_ranking(*a, **k):
        raise AssertionError("rank_drivers ran again")

    monkeypatch.setattr(coaching, "rank_drivers", no_second_ranking)
    reused = scenario(ds, rep, AS_OF, metric="calls_per_week", from_value=10, to_value=15, funnel=focus.funnel)
    pd.testing.assert_frame_equal(fresh, reused)


def test_scenario_falls_back_to_the_pooled_ratio_for_a_team_too_small_for_the_model(ds):
    rep = "R001"
    team = ds.reps.set_index("rep_id").at[rep, "team"]
    mates = ds.reps.loc[(ds.reps["team"] == team) & (ds.reps["rep_id"] != rep), "rep_id"].tolist()[:3]
    reps = ds.reps.copy()
    reps.loc[reps["rep_id"].isin([rep] + mates), "team"] = "Tiny"  # 4 reps: under the model's 5
    small = dataclasses.replace(ds, reps=reps, fingerprint=ds.fingerprint + "-tiny")
    t = scenario(small, rep, AS_OF, metric="calls_per_week", from_value=10, to_value=15, horizons_days=(28,))
    assert t.attrs["method"] == "pooled ratio" and "average one" in t.attrs["basis"]
    # by hand: calls and new opportunities of the 4 reps over the 26 whole weeks before the 1:1's week
    end = pd.Timestamp("2026-11-23", tz=ds.config.timezone)
    start = end - pd.Timedelta(weeks=26)
    group = set([rep] + mates)
    a, o = ds.activities, ds.opportunities
    calls = ((a["type"] == "call") & (a["occurred_at"] >= start) & (a["occurred_at"] < end)
             & a["rep_id"].isin(group)).sum()
    opps = ((o["created_at"] >= start) & (o["created_at"] < end) & o["rep_id"].isin(group)).sum()
    assert t.iloc[0]["extra_opportunities"] == pytest.approx(opps / calls * 5 * 4)


def test_self_view_keeps_the_latest_score_per_topic(ds):
    sa = pd.DataFrame({"rep_id": pd.array(["R001"] * 3 + ["R002"], dtype="string"),
                       "date": pd.to_datetime(["2026-05-01", "2026-08-01", "2026-06-01", "2026-09-01"]),
                       "topic": pd.array(["Discovery", "Discovery", "Proposal", "Discovery"], dtype="string"),
                       "score": [2.0, 4.0, 3.0, 1.0]})
    view = self_view(dataclasses.replace(ds, self_assessments=sa), "R001")
    assert list(view["topic"]) == ["Discovery", "Proposal"] and list(view["score"]) == [4.0, 3.0]
    assert len(self_view(dataclasses.replace(ds, self_assessments=sa), "R009")) == 0


def test_preread_prompts_are_first_person_with_a_draft_plan(ds):
    focus = focus_areas(ds, "R008", AS_OF)
    pre = coaching.rep_preread_prompts(ds, "R008", ["Discovery", "Proposal"], focus=focus)
    assert len(pre["self_assessment"]) == 2 and all("?" in p for p in pre["self_assessment"])
    for prompt in pre["keep_drop_create"] + pre["skill"]:
        assert re.search(r"\b(I|I'd|my|me)\b", prompt) and not re.search(r"\byou\b", prompt, re.I), prompt
    sugg = next(a.suggested for a in focus.areas if a.suggested)
    assert pre["plan"]["metric"] == sugg["metric"] and pre["plan"]["target"] == sugg["target"]
    plan = coaching.plan_template(focus, [])
    assert dict(plan["prefilled"])["Behaviour"] == sugg["label"]


# ----------------------------------------------------------------------------- questions
RICH = Findings(result_change=-0.05, stage_leak={"stage": "Discovery", "next_stage": "Qualification", "rate": 0.25,
                                                 "team_rate": 0.5},
                stalled_deals=3, activity_change=-0.3, missed_commitment="calls per week",
                follow_up="Ask me on Fridays", late_share=0.45)
ORDERS = ("you must", "make ", "do ", "you need to", "you should", "start ", "stop ", "focus on")


def _no_orders(qs):
    for q in qs:
        assert q.endswith("?"), q
        assert not q.lower().startswith(ORDERS), q
        assert "{" not in q and "}" not in q, q


def test_questions_vary_with_what_the_data_shows():
    quiet = questions_for(Findings())
    rich = questions_for(RICH)
    assert 4 <= len(quiet) <= 7 and 4 <= len(rich) <= 7
    assert quiet != rich
    text = " ".join(rich)
    assert "down 5%" in text and '"Ask me on Fridays"' in text
    assert "About 25% of your deals moved on from Discovery, against a team median of 50%" in text
    assert rich[0].startswith("Before we look at the numbers")  # care first
    stalled_only = questions_for({"stalled_deals": 4})
    assert any("4 deals have been in their stage" in q for q in stalled_only)
    assert any("1 deal has been in its stage" in q or "1 deal has been in their stage" in q
               for q in questions_for({"stalled_deals": 1}))  # singular, not "1 of your deals have"
    assert not any("Discovery" in q for q in stalled_only)
    up = questions_for({"result_change": 0.12})
    assert any("up 12%" in q for q in up) and not any("down" in q for q in up)


def test_rep_questions_are_first_person():
    rep = questions_for(RICH, audience="rep")
    assert "Which of my deals moved past Discovery, and what did I do differently there?" in " ".join(rep)
    assert not any(" your " in f" {q.lower()} " for q in rep)


def test_no_question_is_an_order():
    _no_orders(questions_for(RICH))
    _no_orders(questions_for(RICH, audience="rep"))
    _no_orders(questions_for(Findings(kept_commitment="emails per week", kept_no_lift="calls per week")))
    # every question template in questions.toml, filled with dummy values
    w = coaching.wording()
    dummy = {k: "X" for k in ("metric_label", "baseline", "target", "achieved", "weeks_more", "end", "follow_up",
                              "result_change", "result_label", "missed_metric", "kept_metric", "stage",
                              "next_stage", "rate", "team_rate", "stalled_deals", "aged_deals", "activity_change", "late_share",
                              "late_days", "score")}
    templates = [v for sec in w["questions"].values() for v in sec.values()]
    templates += [v for sec in w["diagnosis"].values() for k, v in sec.items() if k not in ("label", "detail")]
    templates += list(w["preread"].values())
    filled = [coaching.fill(t, dummy) for t in templates]
    _no_orders(filled)


def test_fill_refuses_an_unfilled_placeholder():
    with pytest.raises(KeyError, match="stage"):
        coaching.fill("What happened at {stage}?", {})


# ----------------------------------------------------------------------------- the team fit's cache
def _uncached_fit(ds, team, metric, end, p_values, intervals):
    """``team_link_fit`` as a fresh process computes it: nothing cached before, nothing kept after."""
    saved = dict(coaching._FIT_CACHE)
    coaching._FIT_CACHE.clear()
    try:
        return coaching.team_link_fit(ds, team, metric, end, p_values=p_values, intervals=intervals)
    finally:
        coaching._FIT_CACHE.clear()
        coaching._FIT_CACHE.update(saved)


def test_a_report_scenario_and_the_overview_share_one_team_fit_and_each_gets_what_it_asked_for(
        sample_ds, monkeypatch):
    from coachnb import overview
    from coachnb.team import open_data

    monkeypatch.setattr(coaching, "_FIT_CACHE", {})
    fitted = []
    real = coaching.team_activity_effect
    monkeypatch.setattr(coaching, "team_activity_effect", lambda *a, **k: fitted.append(k) or real(*a, **k))
    _, _, tv = open_data(sample_ds, AS_OF, 13)
    team = str(sample_ds.reps.set_index("rep_id").at["R001", "team"])
    link = coaching.activity_link(sample_ds, "R001", AS_OF, "calls_per_week")  # the report's scenario first
    effects, _ = overview.activity_effects(tv, ["calls_per_week"], teams={team})  # then the rep's overview row
    assert len(fitted) == 1 and fitted[0]["intervals"] == ("total",)  # one fit, and no lag's interval
    assert link.method == "panel model"
    # each is what a fresh process computing only its own request gets
    end = tv.window.end
    alone = _uncached_fit(sample_ds, team, "calls_per_week", end, ("total", "lead"), ("total",))
    total = alone.loc["total (lags 0-4)"]
    assert effects.iloc[0]["extra_pct"] == 100 * (total["rate_ratio_per_unit"] - 1)
    assert effects.iloc[0]["low_pct"] == 100 * (total["ci_low"] - 1) and np.isfinite(total["ci_low"])
    assert effects.iloc[0]["lead_p_value"] == alone.loc["lead 1", "p_value"] == link.lead_p_value
    assert link.lead_coef == alone.loc["lead 1", "coef"]  # the scenario's caveat reads the same fit
    assert (link.estimate, link.low, link.high) == (total["rate_ratio_per_unit"], total["ci_low"], total["ci_high"])


def test_a_cached_team_fit_serves_a_smaller_request_exactly_and_a_larger_one_is_fitted(sample_ds, monkeypatch):
    monkeypatch.setattr(coaching, "_FIT_CACHE", {})
    end = pd.Timestamp(AS_OF, tz=sample_ds.config.timezone)
    team = str(sample_ds.reps["team"].iloc[0])
    small = coaching.team_link_fit(sample_ds, team, "calls_per_week", end, p_values=False, intervals=("total",))
    assert small["p_value"].isna().all() and small["ci_low"].notna().sum() == 1
    full = coaching.team_link_fit(sample_ds, team, "calls_per_week", end, p_values=True, intervals=True)
    assert full["ci_low"].notna().sum() > 1 and full["p_value"].notna().all()  # refitted with more
    pd.testing.assert_frame_equal(full, _uncached_fit(sample_ds, team, "calls_per_week", end, True, True))
    # a later small request comes from the larger fit, identical to one computed for it alone
    again = coaching.team_link_fit(sample_ds, team, "calls_per_week", end, p_values=False, intervals=("total",))
    pd.testing.assert_frame_equal(again, small)
    assert again.attrs == small.attrs
    again.loc[:, "rate_ratio_per_unit"] = 0.0  # a caller's copy: the cache keeps its own
    assert coaching.team_link_fit(sample_ds, team, "calls_per_week", end)["rate_ratio_per_unit"].gt(0).all()


def test_the_team_fit_cache_never_gives_one_data_set_team_or_window_anothers_fit(sample_ds, monkeypatch):
    monkeypatch.setattr(coaching, "_FIT_CACHE", {})
    end = pd.Timestamp(AS_OF, tz=sample_ds.config.timezone)
    team, other_team = sorted(sample_ds.reps["team"].astype(str).unique())[:2]
    # other data in the same process: one rep of the team logged twice the calls (another fingerprint)
    rep = sample_ds.reps.loc[sample_ds.reps["team"].astype(str) == team, "rep_id"].iloc[0]
    acts = sample_ds.activities
    more = pd.concat([acts, acts[(acts["rep_id"] == rep) & (acts["type"] == "call")]], ignore_index=True)
    changed = dataclasses.replace(sample_ds, activities=more, fingerprint=sample_ds.fingerprint + "-more-calls")
    asks = {"p_values": ("total", "lead"), "intervals": ("total",)}
    first = {(name, t, e): coaching.team_link_fit(d, t, "calls_per_week", e, **asks)
             for name, d in (("demo", sample_ds), ("changed", changed))
             for t in (team, other_team) for e in (end, end - pd.Timedelta(weeks=4))}
    assert len(coaching._FIT_CACHE) == 8
    for (name, t, e), fit in first.items():
        d = sample_ds if name == "demo" else changed
        pd.testing.assert_frame_equal(fit, _uncached_fit(d, t, "calls_per_week", e, **asks))
        pd.testing.assert_frame_equal(coaching.team_link_fit(d, t, "calls_per_week", e, **asks), fit)
    # the changed rep's team reads their calls; the data sets' fits differ
    assert first[("demo", team, end)]["coef"].ne(first[("changed", team, end)]["coef"]).any()
    assert first[("demo", team, end)]["coef"].ne(first[("demo", other_team, end)]["coef"]).any()
    assert first[("demo", team, end)]["coef"].ne(first[("demo", team, end - pd.Timedelta(weeks=4))]["coef"]).any()
