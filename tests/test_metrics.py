"""Hand-worked examples for coachnb.metrics; every expected number is derived in a comment."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coachnb import calendar as C
from coachnb import metrics as M
from coachnb.config import ProcessConfig, Thresholds, week_start
from coachnb.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))  # the helper sits next to the tests, package or not
from metricframes import make_ds  # noqa: E402

W1, W2 = pd.Timestamp("2026-11-02"), pd.Timestamp("2026-11-09")  # Mondays
START, END = "2026-11-02", "2026-11-16"  # two full Monday weeks, end exclusive


def act(aid, rep, occurred, type_, logged=None):
    return dict(activity_id=aid, rep_id=rep, occurred_at=occurred, type=type_, logged_at=logged)


def opp(oid, rep, created, amount, status, closed=None):
    return dict(opportunity_id=oid, rep_id=rep, account=f"Acc {oid}", name=f"Deal {oid}", created_at=created,
                amount=amount, status=status, closed_at=closed)


def sh(oid, stage, entered):
    return dict(opportunity_id=oid, stage=stage, entered_at=entered)


@pytest.fixture(scope="module")
def ds():
    """Three reps; R3 has no activity and no deals. Stages D, Q, P, N (default). UTC, Monday weeks."""
    reps = [
        dict(rep_id="R1", name="Ana", team="T", manager="M", hire_date="2020-01-01", quota_per_quarter=100000),
        dict(rep_id="R2", name="Ben", team="T", manager="M", hire_date="2020-01-01"),  # no quota
        dict(rep_id="R3", name="Cy", team="T", manager="M", hire_date="2020-01-01", quota_per_quarter=50000),
    ]
    activities = [
        act("A1", "R1", "2026-11-02 09:00", "call", "2026-11-02 10:00"),  # lag 1/24 d, on time
        act("A2", "R1", "2026-11-03 09:00", "call", "2026-11-06 09:00"),  # lag 3 d > 2: late
        act("A3", "R1", "2026-11-08 23:59", "email"),  # Sunday: still week 1; never logged
        act("A4", "R1", "2026-11-09 00:00", "meeting", "2026-11-11 00:00"),  # lag exactly 2 d: on time
        act("A5", "R1", "2026-11-16 00:00", "demo", "2026-11-16 01:00"),  # = end: outside
        act("A6", "R1", "2026-11-01 23:59", "call", "2026-11-02 00:00"),  # before start: outside
        act("B1", "R2", "2026-11-10 12:00", "other", "2026-11-10 12:00"),  # lag 0
        act("B2", "R2", "2026-11-10 13:00", "call", "2026-11-10 12:00"),  # logged ahead: lag 0
    ]
    opportunities = [
        opp("O1", "R1", "2026-11-02", 1000, "won", "2026-11-12"),
        opp("O2", "R1", "2026-11-03", 500, "lost", "2026-11-10"),
        opp("O3", "R1", "2026-11-10", 2000, "open"),
        opp("O4", "R2", "2026-10-20", 800, "open"),
        opp("O5", "R2", "2026-11-09", 300, "lost", "2026-11-20"),  # closes after the window / as_of
    ]
    stage_history = [
        sh("O1", "Discovery", "2026-11-02"), sh("O1", "Qualification", "2026-11-04"),
        sh("O1", "Proposal", "2026-11-06"), sh("O1", "Negotiation", "2026-11-09"),
        sh("O2", "Discovery", "2026-11-03"), sh("O2", "Qualification", "2026-11-05"),
        sh("O3", "Discovery", "2026-11-10"), sh("O3", "Proposal", "2026-11-13"),  # skips Qualification
        sh("O4", "Discovery", "2026-10-20"), sh("O4", "Qualification", "2026-10-27"),
        sh("O4", "Proposal", "2026-11-03"), sh("O4", "Qualification", "2026-11-05"),  # goes back
        sh("O4", "Proposal", "2026-11-10"),  # and forward again: not a new advancement
        sh("O5", "Discovery", "2026-11-10"),
        sh("O5", "Pilot", "2026-11-11"),  # not a process stage: ignored everywhere
    ]
    return make_ds(reps, activities, opportunities, stage_history)


def rows(df, **key):
    mask = np.ones(len(df), dtype=bool)
    for k, v in key.items():
        mask &= (df[k] == v).to_numpy(dtype=bool)
    assert mask.sum() == 1, key
    return df[mask].iloc[0]


# ------------------------------------------------------------------ weekly activity


def test_weekly_activity_counts_zero_fill_and_window(ds):
    wa = M.weekly_activity(ds, START, END)
    assert list(wa.columns) == ["rep_id", "week", "call", "email", "meeting", "demo", "other", "total"]
    # 3 reps x 2 weeks, R3 (no activity) present with zeros
    assert len(wa) == 6
    got = wa.set_index(["rep_id", "week"])[["call", "email", "meeting", "demo", "other", "total"]]
    # R1 week 1: A1, A2 calls + A3 email (Sunday 23:59); A5 (= end) and A6 (before start) excluded
    assert got.loc[("R1", W1)].tolist() == [2, 1, 0, 0, 0, 3]
    assert got.loc[("R1", W2)].tolist() == [0, 0, 1, 0, 0, 1]
    assert got.loc[("R2", W1)].tolist() == [0] * 6
    assert got.loc[("R2", W2)].tolist() == [1, 0, 0, 0, 1, 2]
    assert got.loc[("R3", W1)].tolist() == [0] * 6 and got.loc[("R3", W2)].tolist() == [0] * 6
    assert wa["rep_id"].dtype == "string" and wa["total"].dtype == np.int64


def test_weekly_activity_partial_week_and_empty_window(ds):
    # window from Wednesday 11-04: the week of 11-02 is still listed but A1, A2 (Mon, Tue) are not counted
    wa = M.weekly_activity(ds, "2026-11-04", "2026-11-10")
    assert sorted(wa["week"].unique()) == [W1, W2]
    assert rows(wa, rep_id="R1", week=W1)["total"] == 1  # A3 only
    assert len(M.weekly_activity(ds, END, START)) == 0  # end before start: no weeks


def test_week_is_same_as_config_week_start():
    # the integer week arithmetic must agree with coachnb.config.week_start for every weekday setting
    ts = pd.Series(pd.date_range("2025-12-20", "2026-04-10", freq="7h", tz="America/New_York"))
    for day in ("monday", "wednesday", "sunday"):
        cfg = ProcessConfig(week_start=day, timezone="America/New_York")
        ours = C.days_to_week_ts(C.week_day(C.local_days(ts, cfg), cfg), cfg)
        assert ours.equals(week_start(ts, cfg).reset_index(drop=True))


def test_timezone_sunday_late_evening_is_local_week():
    # New York: Sunday 2026-11-22 23:30 local = Monday 04:30 UTC. Monday weeks, local time rules:
    # it belongs to the week starting Mon 2026-11-16, not 2026-11-23 (its UTC day).
    cfg = ProcessConfig(timezone="America/New_York")
    d = make_ds(["R1"], activities=[
        act("A1", "R1", pd.Timestamp("2026-11-23 04:30", tz="UTC"), "call"),  # given in UTC, converted
        act("A2", "R1", "2026-11-23 00:30", "call"),  # local Monday: next week
    ], config=cfg)
    wa = M.weekly_activity(d, "2026-11-16", "2026-11-30")
    assert wa.set_index("week")["total"].to_dict() == {pd.Timestamp("2026-11-16"): 1, pd.Timestamp("2026-11-23"): 1}
    # window bounds are local too: "2026-11-23" = 05:00 UTC, so A1 (04:30 UTC) is before it
    assert M.weekly_activity(d, "2026-11-23", "2026-11-30")["total"].sum() == 1


def test_timezone_week_start_sunday():
    # Berlin (UTC+1 in winter), weeks start Sunday. Sunday 2026-11-22 00:30 local = Saturday 23:30 UTC:
    # local week of Sun 11-22. Saturday 2026-11-21 23:30 local: week of Sun 11-15.
    cfg = ProcessConfig(week_start="sunday", timezone="Europe/Berlin")
    d = make_ds(["R1"], activities=[
        act("A1", "R1", pd.Timestamp("2026-11-21 23:30", tz="UTC"), "email"),
        act("A2", "R1", "2026-11-21 23:30", "call"),
    ], config=cfg)
    wa = M.weekly_activity(d, "2026-11-15", "2026-11-29")
    got = wa.set_index("week")[["call", "email"]]
    assert got.loc[pd.Timestamp("2026-11-15")].tolist() == [1, 0]
    assert got.loc[pd.Timestamp("2026-11-22")].tolist() == [0, 1]
    assert C.week_of("2026-11-28 23:59", cfg) == pd.Timestamp("2026-11-22")


# ------------------------------------------------------------------ weekly pipeline, metric_weekly


def test_weekly_pipeline(ds):
    wp = M.weekly_pipeline(ds, START, END).set_index(["rep_id", "week"])
    cols = ["opportunities_created", "pipeline_created", "stage_advancements"]
    # R1 wk1: O1 + O2 created (1000 + 500); advancements O1->Q (11-04), O1->P (11-06), O2->Q (11-05) = 3
    assert wp.loc[("R1", W1), cols].tolist() == [2, 1500.0, 3]
    # R1 wk2: O3 created (2000); O1->N (11-09), O3 D->P skipping Q (11-13) = 2
    assert wp.loc[("R1", W2), cols].tolist() == [1, 2000.0, 2]
    # R2 wk1: O4 created 10-20 (outside); O4->P 11-03 is new furthest stage (1 -> 2); back to Q 11-05 is not
    assert wp.loc[("R2", W1), cols].tolist() == [0, 0.0, 1]
    # R2 wk2: O5 created (300); O4 re-entering P 11-10 is not new; O5 Discovery is the first stage; Pilot unknown
    assert wp.loc[("R2", W2), cols].tolist() == [1, 300.0, 0]
    assert wp.loc[("R3", W1), cols].tolist() == [0, 0.0, 0]


def test_metric_weekly_kinds(ds):
    def values(name):
        return M.metric_weekly(ds, name, START, END).set_index(["rep_id", "week"])["value"]

    calls = values("calls_per_week")
    assert calls[("R1", W1)] == 2 and calls[("R1", W2)] == 0 and calls[("R2", W2)] == 1
    total = values("activities_per_week")  # every type summed = weekly_activity total
    assert total[("R1", W1)] == 3 and total[("R2", W2)] == 2
    assert values("opportunities_created_per_week")[("R1", W1)] == 2
    assert values("stage_advancements_per_week")[("R1", W2)] == 2
    share = values("logged_on_time_share")
    # R1 wk1: logged A1 (on time), A2 (late); A3 has no logged_at and is left out -> 1/2
    assert share[("R1", W1)] == 0.5
    assert share[("R1", W2)] == 1.0  # A4 lag exactly 2 days = on time
    assert share[("R2", W2)] == 1.0  # B1 lag 0, B2 logged ahead
    assert np.isnan(share[("R2", W1)]) and np.isnan(share[("R3", W1)])  # no activities: NaN, not 0


def test_metric_weekly_custom_and_unknown(ds):
    from coachnb.config import CommitmentMetric

    cfg = ProcessConfig(commitment_metrics={"touches": CommitmentMetric("touches", "t", "activity_count",
                                                                        ("call", "other"))})
    d = make_ds(["R2"], activities=[act("B1", "R2", "2026-11-10", "other"), act("B2", "R2", "2026-11-10", "call"),
                                    act("B3", "R2", "2026-11-10", "email")], config=cfg)
    assert M.metric_weekly(d, "touches", START, END)["value"].tolist() == [0.0, 2.0]  # call + other, not email
    with pytest.raises(ConfigError, match="unknown commitment metric"):
        M.metric_weekly(ds, "cold_calls", START, END)


# ------------------------------------------------------------------ stage conversion


def test_stage_conversion(ds):
    sc = M.stage_conversion(ds)
    assert list(sc.columns) == ["rep_id", "from_stage", "to_stage", "entered", "advanced", "dropped", "still_open",
                                "rate", "low", "high"]
    assert len(sc) == 3 * 4
    cols = ["entered", "advanced", "dropped", "still_open"]
    # R1 D->Q: O1 (won), O2 (reached Q), O3 (skipped Q, reached P: still advanced) -> 3/3
    r = rows(sc, rep_id="R1", from_stage="Discovery")
    assert r["to_stage"] == "Qualification" and r[cols].tolist() == [3, 3, 0, 0] and r["rate"] == 1.0
    # Wilson 3/3, z = 1.96: centre (1 + z^2/6) / (1 + z^2/3) = 1.6402/2.2805 = 0.7192;
    # half-width z*sqrt(z^2/36)/(1 + z^2/3) = 1.96*0.3267/2.2805 = 0.2808 -> [0.4385, 1.0]
    assert r["low"] == pytest.approx(0.4385, abs=1e-4) and r["high"] == pytest.approx(1.0)
    # R1 Q->P: O1 advanced, O2 lost in Q = dropped -> 1/2
    r = rows(sc, rep_id="R1", from_stage="Qualification")
    assert r[cols].tolist() == [2, 1, 1, 0] and r["rate"] == 0.5
    # Wilson 1/2: centre 0.5, half-width 1.96*sqrt(0.125 + 3.8415/16)/(1 + 1.9208) = 1.96*0.6040/2.9208 = 0.4053
    assert r["low"] == pytest.approx(0.0945, abs=1e-4) and r["high"] == pytest.approx(0.9055, abs=1e-4)
    # R1 P->N: O1 advanced; O3 open in P: still open, not in the rate -> rate 1/1
    r = rows(sc, rep_id="R1", from_stage="Proposal")
    assert r[cols].tolist() == [2, 1, 0, 1] and r["rate"] == 1.0
    r = rows(sc, rep_id="R1", from_stage="Negotiation")  # -> Won: O1 won
    assert r["to_stage"] == "Won" and r[cols].tolist() == [1, 1, 0, 0]
    # R2 D->Q: O4 advanced, O5 lost in D -> 1/2. Q->P: O4 (first Q entry 10-27, later P) advanced.
    assert rows(sc, rep_id="R2", from_stage="Discovery")[cols].tolist() == [2, 1, 1, 0]
    assert rows(sc, rep_id="R2", from_stage="Qualification")[cols].tolist() == [1, 1, 0, 0]
    # R2 P->N: O4 entered P twice, counted once, open -> still open; rate NaN (nothing resolved)
    r = rows(sc, rep_id="R2", from_stage="Proposal")
    assert r[cols].tolist() == [1, 0, 0, 1] and np.isnan(r["rate"]) and np.isnan(r["low"])
    r3 = sc[sc["rep_id"] == "R3"]
    assert (r3["entered"] == 0).all() and r3["rate"].isna().all()


def test_stage_conversion_window(ds):
    # from 11-01: O4's first D (10-20) and Q (10-27) entries are outside; R2 D->Q is then O5 only (dropped)
    sc = M.stage_conversion(ds, start="2026-11-01")
    r = rows(sc, rep_id="R2", from_stage="Discovery")
    assert r[["entered", "advanced", "dropped"]].tolist() == [1, 0, 1] and r["rate"] == 0.0
    assert rows(sc, rep_id="R2", from_stage="Qualification")["entered"] == 0
    # up to 11-06: R1's Proposal entries (O1 11-06, O3 11-13) are out
    assert rows(M.stage_conversion(ds, end="2026-11-06"), rep_id="R1", from_stage="Proposal")["entered"] == 0


# ------------------------------------------------------------------ team benchmark


def test_team_benchmark():
    t = pd.DataFrame({"rep_id": ["a", "b", "c", "d", "a", "b"], "week": [1, 1, 1, 1, 2, 2],
                      "v": [2.0, 4.0, 6.0, 12.0, 5.0, np.nan]})
    b = M.team_benchmark(t, "v", by=("week",)).set_index("week")
    assert list(b.columns) == ["median", "q25", "q75", "n_reps"]
    # week 1 values 2, 4, 6, 12: median 5; q25 at position 0.75 -> 2 + 0.75*2 = 3.5; q75 at 2.25 -> 6 + 0.25*6 = 7.5
    assert b.loc[1].tolist() == [5.0, 3.5, 7.5, 4]
    # week 2: only a has a value (b is NaN: left out)
    assert b.loc[2].tolist() == [5.0, 5.0, 5.0, 1]
    # whole team, without rep d: 2, 4, 6, 5, 4... -> values a2, b4, c6, a5 = [2, 4, 5, 6]: median 4.5
    whole = M.team_benchmark(t, "v", exclude_rep="d")
    assert whole["median"].iloc[0] == 4.5 and whole["n_reps"].iloc[0] == 3
    # a group where nobody has a value still appears
    t2 = pd.DataFrame({"rep_id": ["a", "b"], "week": [1, 2], "v": [1.0, np.nan]})
    b2 = M.team_benchmark(t2, "v", by=["week"]).set_index("week")
    assert b2.loc[2, "n_reps"] == 0 and np.isnan(b2.loc[2, "median"])


# ------------------------------------------------------------------ stage velocity (Kaplan-Meier)

AS_OF = "2026-11-16"


def test_stage_velocity_km_with_censoring(ds):
    sv = M.stage_velocity(ds, AS_OF)
    assert list(sv.columns) == ["rep_id", "stage", "n_entered", "n_exited", "n_censored", "median_days",
                                "mean_days_restricted"]
    cols = ["n_entered", "n_exited", "n_censored"]
    # R1 Discovery: O1 2 d, O2 2 d, O3 3 d, all left. KM: at 2 d S = 1/3 < 0.5 -> median 2.
    r = rows(sv, rep_id="R1", stage="Discovery")
    assert r[cols].tolist() == [3, 3, 0] and r["median_days"] == 2.0
    assert r["mean_days_restricted"] == pytest.approx(2 + 1 / 3)  # area: 2*1 + 1*(1/3)
    # R1 Qualification: O1 2 d, O2 5 d (lost). S(2) = 0.5, not below; S(5) = 0 -> median 5 (statsmodels/SAS rule)
    r = rows(sv, rep_id="R1", stage="Qualification")
    assert r["median_days"] == 5.0 and r["mean_days_restricted"] == pytest.approx(3.5)
    # R1 Proposal: O1 left after 3 d; O3 entered 11-13, still there: censored at as_of after 3 d.
    # S(3) = 1 - 1/2 = 0.5 and stays: median unknown (NaN). Had O3 been treated as leaving today, median = 3.
    r = rows(sv, rep_id="R1", stage="Proposal")
    assert r[cols].tolist() == [2, 1, 1] and np.isnan(r["median_days"])
    assert r["mean_days_restricted"] == pytest.approx(3 + 0.5 * 87)  # flat at 0.5 up to the 90-day horizon
    # R2 Qualification: O4 10-27 -> 11-03 (7 d) and 11-05 -> 11-10 (5 d): S(5) = .5, S(7) = 0 -> 7
    assert rows(sv, rep_id="R2", stage="Qualification")["median_days"] == 7.0
    # R2 Discovery: O4 7 d (left); O5 entered 11-10, closed 11-20 = after as_of: censored at 6 d
    r = rows(sv, rep_id="R2", stage="Discovery")
    assert r[cols].tolist() == [2, 1, 1] and r["median_days"] == 7.0
    r3 = sv[sv["rep_id"] == "R3"]
    assert (r3["n_entered"] == 0).all() and r3["median_days"].isna().all() and r3["mean_days_restricted"].isna().all()


def test_team_stage_velocity_pooled(ds):
    tv = M.team_stage_velocity(ds, AS_OF).set_index("stage")
    # Discovery spells: 2, 2, 3 (R1), 7 (O4), 6 censored (O5). At 2: 3/5 = .6; at 3: .6*2/3 = .4 -> median 3;
    # 6 censored; at 7: 0 -> p75 (S < .25) 7
    assert tv.loc["Discovery", ["n_entered", "n_exited", "n_censored"]].tolist() == [5, 4, 1]
    assert tv.loc["Discovery", "median_days"] == 3.0 and tv.loc["Discovery", "p75_days"] == 7.0
    # Qualification: 2, 5, 5, 7 all left: S(2)=.75, S(5)=.25 (not < .25), S(7)=0 -> median 5, p75 7
    assert tv.loc["Qualification", ["median_days", "p75_days"]].tolist() == [5.0, 7.0]
    # Proposal: 2 (left), 3 (left), 3 censored, 6 censored: S(2)=.75, S(3)=.75*2/3=.5 -> never below .5
    assert np.isnan(tv.loc["Proposal", "median_days"]) and np.isnan(tv.loc["Proposal", "p75_days"])
    assert (tv["stall_threshold_days"].fillna(-1) == tv["p75_days"].fillna(-1)).all()  # default percentile 75


def test_as_of_hides_later_events(ds):
    # as_of 11-11: O1 entered N 11-09 and closes 11-12 (later): censored at 2 d; O3 (11-10) is in D, censored 1 d
    sv = M.stage_velocity(ds, "2026-11-11")
    r = rows(sv, rep_id="R1", stage="Negotiation")
    assert r[["n_entered", "n_exited", "n_censored"]].tolist() == [1, 0, 1]
    assert rows(sv, rep_id="R1", stage="Proposal")["n_entered"] == 1  # O3's P entry (11-13) not yet known


@pytest.fixture(scope="module")
def stall_ds():
    """Discovery only. R1 closed 8 deals after 1..8 days in Discovery; open deals in Discovery at as_of:
    S1 (R1) 10 days, S2 (R2) 5 days, S3 (R2) 2 days, S4 (R2) 9 days. R3 has no deals."""
    as_of = pd.Timestamp("2026-06-01")
    start = as_of - pd.Timedelta(days=30)
    opps, hist = [], []
    for k in range(1, 9):
        opps.append(opp(f"C{k}", "R1", start, 50, "lost", start + pd.Timedelta(days=k)))
        hist.append(sh(f"C{k}", "Discovery", start))
    for oid, rep, days, amount in [("S1", "R1", 10, 100), ("S2", "R2", 5, 200), ("S3", "R2", 2, 300),
                                   ("S4", "R2", 9, 100)]:
        opps.append(opp(oid, rep, as_of - pd.Timedelta(days=days), amount, "open"))
        hist.append(sh(oid, "Discovery", as_of - pd.Timedelta(days=days)))
    return make_ds(["R1", "R2", "R3"], opportunities=opps, stage_history=hist)


def test_stalled_deals(stall_ds):
    # Pooled Discovery KM: events 1..8, censored 2, 5, 9, 10 (12 spells).
    # S: 1: 11/12; 2: *10/11 = .833; 3: *8/9 = .741; 4: *7/8 = .648; 5: *6/7 = .556; 6: *4/5 = .444;
    # 7: *3/4 = .333; 8: *2/3 = .222 < .25 -> p75 = 8 days; median (first < .5) = 6
    tv = M.team_stage_velocity(stall_ds, "2026-06-01").set_index("stage")
    assert tv.loc["Discovery", ["median_days", "p75_days"]].tolist() == [6.0, 8.0]
    st = M.stalled_deals(stall_ds, "2026-06-01")
    assert list(st.columns) == ["rep_id", "opportunity_id", "name", "account", "stage", "entered_at",
                                "days_in_stage", "amount", "threshold_days"]
    # S1 10 d (2 over), S4 9 d (1 over); S2 (5) and S3 (2) are within 8
    assert st["opportunity_id"].tolist() == ["S1", "S4"]
    assert st["days_in_stage"].tolist() == [10.0, 9.0] and st["threshold_days"].tolist() == [8.0, 8.0]
    assert st["rep_id"].tolist() == ["R1", "R2"] and st["name"].tolist() == ["Deal S1", "Deal S4"]
    # a stricter percentile: 50 -> threshold 6 days; S1, S4 still; S2 (5) not
    strict = make_ds(stall_ds.reps.to_dict("records"), opportunities=stall_ds.opportunities.to_dict("records"),
                     stage_history=stall_ds.stage_history.to_dict("records"),
                     config=ProcessConfig(thresholds=Thresholds(stalled_percentile=50)))
    assert M.stalled_deals(strict, "2026-06-01")["threshold_days"].unique().tolist() == [6.0]


# ------------------------------------------------------------------ outcomes, coverage, attainment, capture


def test_deal_outcomes(ds):
    do = M.deal_outcomes(ds, "2026-11-01", END).set_index("rep_id")
    assert list(do.columns) == ["won", "lost", "win_rate", "win_rate_low", "win_rate_high", "avg_won_amount",
                                "median_cycle_days"]
    # R1: O1 won 11-12 (created 11-02: 10-day cycle), O2 lost 11-10. O5 (R2) closes 11-20: outside.
    assert do.loc["R1", ["won", "lost", "win_rate", "avg_won_amount", "median_cycle_days"]].tolist() == \
        [1, 1, 0.5, 1000.0, 10.0]
    assert do.loc["R1", "win_rate_low"] == pytest.approx(0.0945, abs=1e-4)  # Wilson 1/2, see conversion test
    assert do.loc["R2", ["won", "lost"]].tolist() == [0, 0] and np.isnan(do.loc["R2", "win_rate"])
    assert np.isnan(do.loc["R3", "avg_won_amount"]) and np.isnan(do.loc["R3", "median_cycle_days"])


def test_pipeline_coverage_and_attainment(ds):
    pc = M.pipeline_coverage(ds, AS_OF).set_index("rep_id")
    # open at 11-16: O3 2000 (R1); O4 800 + O5 300 (R2; O5 closes 11-20, after as_of)
    assert pc["open_pipeline"].tolist() == [2000.0, 1100.0, 0.0]
    assert pc.loc["R1", "coverage"] == pytest.approx(0.02)  # 2000 / 100000
    assert np.isnan(pc.loc["R2", "coverage"]) and pc.loc["R3", "coverage"] == 0.0
    at = M.attainment(ds, AS_OF).set_index("rep_id")
    # quarter from 2026-10-01: O1 won 11-12, 1000 of 100000
    assert (at["quarter_start"] == pd.Timestamp("2026-10-01")).all()
    assert at.loc["R1", ["won_amount_qtd", "attainment"]].tolist() == [1000.0, 0.01]
    assert np.isnan(at.loc["R2", "attainment"]) and at.loc["R3", "attainment"] == 0.0
    # as_of 11-12 00:00: O1 closes at that instant -> not yet counted; O1 also still open then
    assert M.attainment(ds, "2026-11-12").set_index("rep_id").loc["R1", "won_amount_qtd"] == 0.0
    assert M.pipeline_coverage(ds, "2026-11-12").set_index("rep_id").loc["R1", "open_pipeline"] == 3000.0


def test_capture_timeliness(ds):
    ct = M.capture_timeliness(ds, START, END).set_index("rep_id")
    # R1: A1..A4 in window; logged A1 (1/24 d), A2 (3 d), A4 (2 d). Median 2; p90 at position 1.8 of
    # [0.042, 2, 3] = 2 + 0.8 * 1 = 2.8; late (> 2 d): A2 only -> 1/3
    r = ct.loc["R1"]
    assert r[["n_activities", "n_with_logged_at"]].tolist() == [4, 3]
    assert r["median_lag_days"] == 2.0 and r["p90_lag_days"] == pytest.approx(2.8)
    assert r["share_late"] == pytest.approx(1 / 3)
    # R2: lags 0 and -1 h (counted 0)
    assert ct.loc["R2", ["median_lag_days", "p90_lag_days", "share_late"]].tolist() == [0.0, 0.0, 0.0]
    assert ct.loc["R3", "n_activities"] == 0 and np.isnan(ct.loc["R3", "share_late"])


# ------------------------------------------------------------------ red flags


@pytest.fixture(scope="module")
def flag_ds():
    """as_of Mon 2026-11-23: lookback = 13 weeks from 2026-08-24; recent 4 weeks from 2026-10-26.

    R1-R4: 10 calls every week, 3 new deals. R5: 10/week for 9 weeks then 2/week; no new deals.
    R6: hired 2026-11-01, 2 calls (too new to judge). R7: 2 calls in the first 9 weeks, none since.
    R1 logs every call 3 days late; the others never fill logged_at.
    """
    weeks = pd.date_range("2026-08-24", periods=13, freq="7D")
    acts, opps = [], []
    n = 0

    def add(rep, when, k, logged_days=None):
        nonlocal n
        for _ in range(k):
            n += 1
            logged = when + pd.Timedelta(days=logged_days) if logged_days is not None else None
            acts.append(act(f"A{n}", rep, when, "call", logged))

    for i, w in enumerate(weeks):
        add("R1", w + pd.Timedelta(hours=10), 10, logged_days=3)
        for rep in ("R2", "R3", "R4"):
            add(rep, w + pd.Timedelta(hours=10), 10)
        add("R5", w + pd.Timedelta(hours=10), 10 if i < 9 else 2)
    add("R6", pd.Timestamp("2026-11-03 10:00"), 2)
    add("R7", pd.Timestamp("2026-09-01 10:00"), 2)
    for rep in ("R1", "R2", "R3", "R4", "R7"):
        for k in range(3):
            opps.append(opp(f"{rep}-{k}", rep, "2026-09-15", 100, "open"))
    reps = [dict(rep_id=r, name=r, team="T", manager="M", hire_date="2024-01-01")
            for r in ("R1", "R2", "R3", "R4", "R5", "R7")]
    reps.append(dict(rep_id="R6", name="R6", team="T", manager="M", hire_date="2026-11-01"))
    return make_ds(reps, activities=acts, opportunities=opps)


def test_red_flags(flag_ds):
    rf = M.red_flags(flag_ds, "2026-11-23")
    assert list(rf.columns) == ["rep_id", "flag", "metric", "rep_value", "team_median", "team_q25", "threshold",
                                "message"]
    got = set(zip(rf["rep_id"], rf["flag"]))
    # recent 4 weeks (R6 left out: hired after 10-26): R1-R4 40, R5 8, R7 0 -> sorted [0, 8, 40, 40, 40, 40]
    # q25 at position 1.25 = 8 + .25 * 32 = 16; median 40 -> R5 and R7 behind
    low = rf[rf["flag"] == "low_activity"].set_index("rep_id")
    assert sorted(low.index) == ["R5", "R7"]
    assert low.loc["R5", ["rep_value", "team_median", "team_q25"]].tolist() == [8.0, 40.0, 16.0]
    assert low.loc["R5", "message"] == "Activities in the last 4 weeks: 8, team median 40."
    # trend: R5 2/week vs 10/week = 0.2 < 0.7; binomial P(X <= 8 | n = 98, p = 4/13) is tiny -> flagged.
    # R7: 0 vs 2/9 per week, ratio 0, but P(X <= 0 | n = 2, p = 4/13) = (9/13)^2 = 0.48: could be chance -> not
    assert ("R5", "activity_falling") in got and ("R7", "activity_falling") not in got
    msg = rf[(rf["rep_id"] == "R5") & (rf["flag"] == "activity_falling")]["message"].iloc[0]
    assert msg == ("Activities per week: 2 in the last 4 weeks, down from 10 in the 9 weeks before (-80%); "
                   "team median change 0%.")
    # new deals in 13 weeks: R1-R4, R7 3, R5 0 (R6 too new) -> [0, 3, 3, 3, 3, 3]: q25 = 0.75 -> R5
    assert {r for r, f in got if f == "few_new_opportunities"} == {"R5"}
    # late logging: R1 logged every call 3 days after (> 2): share 1.0 > 0.3
    assert {r for r, f in got if f == "late_logging"} == {"R1"}
    assert not any(r == "R6" for r, _ in got)  # a new hire is never "behind"
    # no stage history: no advancement or stalled flags
    assert not {"few_stage_advancements", "stalled_pipeline"} & set(rf["flag"])


def test_red_flags_stalled_pipeline(stall_ds):
    rf = M.red_flags(stall_ds, "2026-06-01")
    st = rf[rf["flag"] == "stalled_pipeline"]
    # stalled amount / open: R1 S1 100/100 = 1.0; R2 S4 100/(200+300+100) = 1/6; R3 no pipeline (NaN, left out).
    # q75 of [1/6, 1] = 1/6 + .75 * 5/6 = 0.7917; median 0.5833 -> R1 flagged
    assert st["rep_id"].tolist() == ["R1"]
    assert st["threshold"].iloc[0] == pytest.approx(0.7917, abs=1e-4)
    assert st["message"].iloc[0] == "100% of open pipeline (100 of 100) is in stalled deals, team median 58%."
    # new deals in the 13 weeks before 06-01: R1 9, R2 3, R3 0 -> q25 at position .5 = 1.5 -> R3
    few = rf[rf["flag"] == "few_new_opportunities"]
    assert few["rep_id"].tolist() == ["R3"] and few["team_q25"].iloc[0] == 1.5
    assert "low_activity" not in set(rf["flag"])  # no activities table: no activity flags


# --------------------------------------------------------------------------- codes_of (Arrow lookup)
@pytest.mark.parametrize("categories", [["c", "a", "b"], ("c", "a", "b"), pd.Index(["c", "a", "b"], dtype=object),
                                        pd.Index(["c", "a", "b"], dtype="string")])
def test_codes_of_arrow_strings_match_get_indexer(categories):
    values = pd.Series(["a", "b", None, "z", "c", "A", "a "] * 3, dtype="string[pyarrow]")
    expected = pd.Index(list(categories)).get_indexer(pd.Index(values.astype(object))).astype(np.int64)
    got = C.codes_of(values, categories)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert list(got[:7]) == [1, 2, -1, -1, 0, -1, -1]  # missing, absent, case and spaces are not matches


def test_codes_of_other_values_take_the_pandas_path():
    np.testing.assert_array_equal(C.codes_of(pd.Series([1, 2, 3]), [3, 1]), [1, -1, 0])
    np.testing.assert_array_equal(C.codes_of(pd.Series(["b", "a"], dtype=object), ["a", "b"]), [1, 0])
    with pytest.raises(Exception):  # duplicate categories: refused, as get_indexer does, never a first match
        C.codes_of(pd.Series(["a"], dtype="string[pyarrow]"), ["a", "a"])
