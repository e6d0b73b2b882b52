"""Tests of the demo-team generator (:mod:`coachnb.demo`).

The default team is generated once per module (well under a second) and read back from disk,
so every test checks what a user actually gets from ``coachnb demo-data``.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from coachnb.config import DEFAULT_STAGES, load_config
from coachnb.demo import generate_demo_data, write_demo_data
from coachnb.schema import TABLES

END = pd.Timestamp("2026-11-23")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def data(demo_dir):
    """Every table as text exactly as written (empty cell -> "")."""
    return {name: pd.read_csv(demo_dir / f"{name}.csv", dtype=str, keep_default_na=False) for name in TABLES}


@pytest.fixture(scope="module")
def truth(demo_dir):
    return json.loads((demo_dir / "ground_truth.json").read_text(encoding="utf-8"))


def _ts(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.replace("", None), format="%Y-%m-%d %H:%M:%S")


# ---- files and format -------------------------------------------------------------------------

def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path):
    a = write_demo_data(tmp_path / "a", reps=6, weeks=50, seed=3)
    b = write_demo_data(tmp_path / "b", reps=6, weeks=50, seed=3)
    c = write_demo_data(tmp_path / "c", reps=6, weeks=50, seed=4)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert len(names) == len(TABLES) + 2  # tables + process.toml + ground_truth.json
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "activities.csv").read_bytes() != (c / "activities.csv").read_bytes()
    assert (a / "opportunities.csv").read_bytes() != (c / "opportunities.csv").read_bytes()


def test_every_file_has_exactly_the_schema_columns(demo_dir, data):
    for name, table in TABLES.items():
        header = (demo_dir / f"{name}.csv").read_text(encoding="utf-8").split("\n", 1)[0]
        assert header == ",".join(table.column_names), name
        assert len(data[name]) > 0, f"{name} is empty"


def test_in_memory_tables_match_the_schema_and_the_files(data):
    tables, truth = generate_demo_data()
    assert set(tables) == set(TABLES)
    for name, frame in tables.items():
        assert list(frame.columns) == TABLES[name].column_names
        assert len(frame) == len(data[name])
    assert truth["args"] == {"reps": 24, "weeks": 78, "seed": 7, "end": "2026-11-23"}


def test_values_are_written_in_the_documented_formats(data):
    assert data["reps"]["rep_id"].str.fullmatch(r"R\d{3}").all()
    assert data["opportunities"]["opportunity_id"].str.fullmatch(r"O\d{6}").all()
    assert data["activities"]["activity_id"].str.fullmatch(r"A\d{7}").all()
    assert data["commitments"]["commitment_id"].str.fullmatch(r"K\d{4}").all()
    for name, table in TABLES.items():
        frame = data[name]
        for col in table.columns:
            values = frame[col.name]
            filled = values[values != ""]
            if not col.nullable:
                assert len(filled) == len(values), f"{name}.{col.name} has empty cells"
            if col.kind == "datetime":
                assert filled.str.match(TIMESTAMP).all(), f"{name}.{col.name}"
            elif col.kind == "date":
                assert filled.str.match(DATE).all(), f"{name}.{col.name}"
            elif col.kind == "float":
                assert np.isfinite(filled.astype(float)).all()
            elif col.kind == "choice":
                assert filled.isin(col.choices).all(), f"{name}.{col.name}"
        if table.key:
            assert frame[table.key].is_unique, name


def test_process_toml_is_the_default_process_in_london(demo_dir):
    config = load_config(demo_dir)
    assert config.stages == DEFAULT_STAGES
    assert config.timezone == "Europe/London"
    assert config.week_start == "monday"


def test_parquet_holds_the_same_values_and_replaces_csv(tmp_path):
    out = tmp_path / "team"
    write_demo_data(out, reps=6, weeks=50, seed=5)
    csv_acts = pd.read_csv(out / "activities.csv", dtype=str, keep_default_na=False)
    write_demo_data(out, reps=6, weeks=50, seed=5, fmt="parquet")
    assert not list(out.glob("*.csv")), "stale CSV files would make the folder ambiguous"
    assert sorted(p.stem for p in out.glob("*.parquet")) == sorted(TABLES)
    pq_acts = pd.read_parquet(out / "activities.parquet")
    assert list(pq_acts.columns) == TABLES["activities"].column_names
    pd.testing.assert_frame_equal(pq_acts.fillna("").astype(str).reset_index(drop=True), csv_acts.astype(str),
                                  check_dtype=False)
    with pytest.raises(ValueError):
        write_demo_data(out, reps=6, weeks=50, fmt="xlsx")


# ---- integrity --------------------------------------------------------------------------------

def test_every_reference_points_at_an_existing_row(data):
    reps = set(data["reps"]["rep_id"])
    opps = set(data["opportunities"]["opportunity_id"])
    for name in ("activities", "opportunities", "commitments", "coaching_sessions", "self_assessments"):
        assert set(data[name]["rep_id"]) <= reps, name
    linked = data["activities"]["opportunity_id"]
    assert set(linked[linked != ""]) <= opps
    assert (linked != "").mean() > 0.1, "some activities should relate to deals"
    assert set(data["stage_history"]["opportunity_id"]) == opps, "every deal has its stage history"
    supersedes = data["commitments"]["supersedes"]
    assert set(supersedes[supersedes != ""]) <= set(data["commitments"]["commitment_id"])
    assert (supersedes != "").sum() >= 1


def test_stage_history_follows_process_order_with_increasing_dates(data):
    sh = data["stage_history"].copy()
    sh["at"] = _ts(sh["entered_at"])
    sh["idx"] = sh["stage"].map({s: i for i, s in enumerate(DEFAULT_STAGES)})
    assert sh["idx"].notna().all()
    g = sh.groupby("opportunity_id", sort=False)
    # stages are entered in process order without gaps, starting at the first stage
    assert (g["idx"].transform(lambda s: np.array_equal(s.to_numpy(), np.arange(len(s))))).all()
    assert (g["at"].diff().dropna() > pd.Timedelta(0)).all()
    opps = data["opportunities"].set_index("opportunity_id")
    first = sh[sh["idx"] == 0].set_index("opportunity_id")["at"]
    assert (first == _ts(opps["created_at"]).reindex(first.index)).all()
    assert sh["at"].max() <= END + pd.Timedelta(days=1)


def test_deal_status_and_dates_are_consistent(data):
    opps = data["opportunities"]
    created, closed = _ts(opps["created_at"]), _ts(opps["closed_at"])
    is_open = opps["status"] == "open"
    assert closed[is_open].isna().all()
    assert closed[~is_open].notna().all()
    assert (closed[~is_open] >= created[~is_open]).all()
    assert closed.max() < END + pd.Timedelta(days=1)
    last_stage = _ts(data["stage_history"]["entered_at"]).groupby(data["stage_history"]["opportunity_id"]).max()
    assert (closed[~is_open].to_numpy() >= last_stage.reindex(opps["opportunity_id"][~is_open]).to_numpy()).all()
    # a realistic funnel: mostly lost, some won, a live pipeline at the end
    share = opps["status"].value_counts(normalize=True)
    assert 0.05 < share["won"] < 0.3 and share["lost"] > 0.5 and 0.05 < share["open"] < 0.3
    assert (opps["amount"].astype(float) >= 0).all()


def test_activities_lie_in_the_data_window_and_are_logged_after_they_happen(data, truth):
    acts = data["activities"]
    occurred, logged = _ts(acts["occurred_at"]), _ts(acts["logged_at"])
    assert occurred.min() >= pd.Timestamp(truth["data_start"])
    assert occurred.max() < END + pd.Timedelta(days=1)
    assert logged.max() < END + pd.Timedelta(days=1), "activities not yet logged are not in the export"
    assert (logged.dropna() >= occurred[logged.notna()]).all()
    assert 0 < logged.isna().mean() < 0.01
    hired = data["reps"].set_index("rep_id")["hire_date"].map(pd.Timestamp)
    assert (occurred >= acts["rep_id"].map(hired)).all()
    # an activity linked to a deal happened while that deal was open
    opps = data["opportunities"].set_index("opportunity_id")
    linked = acts[acts["opportunity_id"] != ""]
    at = _ts(linked["occurred_at"])
    assert (at.to_numpy() > _ts(opps["created_at"]).reindex(linked["opportunity_id"]).to_numpy()).all()
    closed = _ts(opps["closed_at"]).reindex(linked["opportunity_id"]).to_numpy()
    assert (pd.isna(closed) | (at.to_numpy() < closed)).all()


# ---- the default team -------------------------------------------------------------------------

def test_default_team_is_three_named_teams_with_diverse_names(data):
    reps = data["reps"]
    assert len(reps) == 24
    assert reps["team"].nunique() == 3 and reps["manager"].nunique() == 3
    assert reps.groupby("team")["manager"].nunique().eq(1).all()
    assert {"Zoë Ångström", "José Núñez"} <= set(reps["name"])
    assert reps["name"].is_unique
    assert (reps["quota_per_quarter"].astype(float) > 0).all()


def test_edge_cases_are_present(data, truth):
    opps = data["opportunities"]
    assert 'O\'Brien & Sons - "Pilot"' in set(opps["name"]), "the quoted name must survive CSV quoting"
    per_rep = opps["rep_id"].value_counts()
    few = next(r["rep_id"] for r in truth["reps"] if r["special"] == "few_deals")
    assert per_rep.get(few, 0) <= 12 and per_rep.median() > 50
    recent = next(r for r in truth["reps"] if r["special"] == "recent_hire")
    assert END - pd.Timestamp(recent["hire_date"]) < pd.Timedelta(weeks=12)
    first_activity = _ts(data["activities"]["occurred_at"][data["activities"]["rep_id"] == recent["rep_id"]]).min()
    assert first_activity >= pd.Timestamp(recent["hire_date"])


def test_reps_differ_in_volume_mix_and_logging(data, truth):
    acts = data["activities"]
    mix = pd.crosstab(acts["rep_id"], acts["type"], normalize="index")
    assert set(mix.columns) == {"call", "email", "meeting", "demo", "other"}
    assert mix["call"].max() - mix["call"].min() > 0.15
    volume = acts["rep_id"].value_counts()
    assert volume.max() > 1.5 * volume.median()
    lag_days = (_ts(acts["logged_at"]) - _ts(acts["occurred_at"])).dt.total_seconds() / 86400
    median_lag = lag_days.groupby(acts["rep_id"]).median()
    late = {r["rep_id"] for r in truth["reps"] if r["late_logger"]}
    assert late and all(median_lag[r] > 2 for r in late)
    assert (median_lag.drop(list(late)) < 0.5).all()


def test_funnel_leaks_show_in_the_data(data, truth):
    sh = data["stage_history"]
    reached = pd.crosstab(sh["opportunity_id"].map(data["opportunities"].set_index("opportunity_id")["rep_id"]),
                          sh["stage"])
    q_rate = reached["Qualification"] / reached["Discovery"]
    leakers = [r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "discovery_leak"]
    others = [r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "none" and r["special"] is None]
    assert leakers
    assert q_rate[leakers].max() < q_rate[others].median() - 0.2


def test_proposal_stallers_sit_longer_in_proposal(data, truth):
    sh = data["stage_history"].copy()
    sh["at"] = _ts(sh["entered_at"])
    wide = sh.pivot(index="opportunity_id", columns="stage", values="at")
    days = (wide["Negotiation"] - wide["Proposal"]).dt.days.dropna()
    owner = data["opportunities"].set_index("opportunity_id")["rep_id"]
    median = days.groupby(owner.reindex(days.index)).median()
    stallers = [r["rep_id"] for r in truth["reps"] if r["funnel_leak"] == "proposal_stall"]
    assert stallers
    assert median[stallers].min() > 2 * median.drop(stallers).median()


def test_seasonality_christmas_dip(data):
    day = _ts(data["activities"]["occurred_at"]).dt.normalize()
    per_day = day.value_counts()
    weekdays = per_day[per_day.index.day_of_week < 5]
    xmas = weekdays[(weekdays.index >= "2025-12-24") & (weekdays.index <= "2026-01-01")]
    assert xmas.mean() < 0.4 * weekdays.median()


def test_coaching_cadence_and_commitments_agreed_in_sessions(data, truth):
    sessions = data["coaching_sessions"]
    held = pd.to_datetime(sessions["held_on"])
    assert held.max() < END
    assert (held.dt.day_of_week < 5).all()
    last = held.groupby(sessions["rep_id"]).max()
    assert ((END - last) > pd.Timedelta(days=35)).sum() >= 2, "some reps are overdue for a 1:1"
    gaps = held.groupby(sessions["rep_id"]).diff().dt.days.dropna()
    assert 10 < gaps.median() < 30
    pairs = set(zip(sessions["rep_id"], sessions["held_on"]))
    com = data["commitments"]
    assert all((r, d) in pairs for r, d in zip(com["rep_id"], com["agreed_on"]))
    assert (pd.to_datetime(com["end"]) >= pd.to_datetime(com["start"])).all()
    assert (pd.to_datetime(com["start"]) >= pd.to_datetime(com["agreed_on"])).all()
    assert (com["baseline"].astype(float) < com["target"].astype(float)).all()


# ---- ground truth and planted effects --------------------------------------------------------

def test_ground_truth_covers_every_rep_and_commitment(data, truth):
    assert [r["rep_id"] for r in truth["reps"]] == list(data["reps"]["rep_id"])
    assert [c["commitment_id"] for c in truth["commitments"]] == list(data["commitments"]["commitment_id"])
    mains = [c for c in truth["commitments"] if c["role"] == "main"]
    categories = {c["category"] for c in mains}
    assert categories == {"kept_effect", "kept_no_effect", "not_kept"}
    assert {r["main_category"] for r in truth["reps"]} == {"kept_effect", "kept_no_effect", "not_kept", "none"}
    for c in truth["commitments"]:
        if c["category"] == "kept_effect":
            assert 1.8 <= c["lift"] <= 2.5 and c["lag_weeks"] in (2, 3) and c["effect_start"] is not None
        else:
            assert c["lift"] == 1.0 and c["effect_start"] is None
    for c in mains:  # evaluable: enough history before and a post horizon after
        assert c["pre_weeks_in_data"] >= 20 and c["post_weeks_in_data"] >= 8
        assert 30 <= (pd.Timestamp(c["end"]) - pd.Timestamp(c["start"])).days + 1 <= 13 * 7
    finished = {c["rep_id"] for c in truth["commitments"] if pd.Timestamp(c["end"]) < END}
    assert finished == set(data["reps"]["rep_id"]), "every rep has at least one past commitment"
    current = [c for c in truth["commitments"] if pd.Timestamp(c["start"]) <= END <= pd.Timestamp(c["end"])]
    assert len(current) >= 3


def _weekly_rate(days: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    """Events per week between lo and hi (inclusive days)."""
    weeks = ((hi - lo).days + 1) / 7
    return float(((days >= lo) & (days <= hi)).sum()) / weeks


def _pre_post(data, truth, category):
    opps = data["opportunities"]
    created = _ts(opps["created_at"]).dt.normalize()
    acts = data["activities"]
    occurred = _ts(acts["occurred_at"]).dt.normalize()
    rows = []
    for c in truth["commitments"]:
        if c["role"] != "main" or c["category"] != category:
            continue
        start, end = pd.Timestamp(c["start"]), pd.Timestamp(c["end"])
        lag = pd.Timedelta(weeks=c["lag_weeks"] or 2)
        mine = created[opps["rep_id"] == c["rep_id"]]
        kind = "call" if c["metric"] == "calls_per_week" else "meeting"
        done = occurred[(acts["rep_id"] == c["rep_id"]) & (acts["type"] == kind)]
        rows.append({
            "opp_pre": _weekly_rate(mine, start - pd.Timedelta(weeks=20), start - pd.Timedelta(days=1)),
            "opp_post": _weekly_rate(mine, start + lag, end + lag),
            "act_pre": _weekly_rate(done, start - pd.Timedelta(weeks=8), start - pd.Timedelta(days=1)),
            "act_during": _weekly_rate(done, start, end),
        })
    return pd.DataFrame(rows)


def test_kept_effect_raises_opportunity_creation_after_the_lag(data, truth):
    pp = _pre_post(data, truth, "kept_effect")
    assert len(pp) >= 4
    # planted lifts are 1.8-2.5; seasonality and noise blur single reps, so: pooled, and most reps
    assert pp["opp_post"].sum() > 1.5 * pp["opp_pre"].sum()
    assert (pp["opp_post"] > 1.2 * pp["opp_pre"]).mean() >= 0.6
    assert pp["act_during"].sum() > 1.3 * pp["act_pre"].sum()
    assert (pp["act_during"] > 1.1 * pp["act_pre"]).mean() >= 0.75


def test_kept_without_effect_raises_activity_but_not_opportunities(data, truth):
    pp = _pre_post(data, truth, "kept_no_effect")
    assert len(pp) >= 3
    assert pp["act_during"].sum() > 1.3 * pp["act_pre"].sum()
    assert (pp["act_during"] > 1.1 * pp["act_pre"]).mean() >= 0.75
    assert pp["opp_post"].sum() < 1.25 * pp["opp_pre"].sum()


def test_not_kept_leaves_activity_unchanged(data, truth):
    pp = _pre_post(data, truth, "not_kept")
    assert len(pp) >= 3
    assert pp["act_during"].sum() < 1.25 * pp["act_pre"].sum()


def test_weekly_activity_counts_are_overdispersed(data, truth):
    acts = data["activities"]
    week = _ts(acts["occurred_at"]).dt.to_period("W-SUN").dt.start_time
    established = [r["rep_id"] for r in truth["reps"]
                   if pd.Timestamp(r["hire_date"]) < pd.Timestamp(truth["data_start"])]
    counts = pd.crosstab(acts["rep_id"], week).loc[established]
    counts = counts.iloc[:, 1:-1]  # drop the partial last week
    calls = pd.crosstab(acts["rep_id"][acts["type"] == "call"], week[acts["type"] == "call"]).loc[established]
    calls = calls.iloc[:, 1:-1]
    for table in (counts, calls):
        ratio = table.var(axis=1) / table.mean(axis=1)
        assert (ratio > 1).mean() >= 0.9
        assert ratio.median() > 1.5
    # weeks are autocorrelated (shared shocks and the rep's AR(1) noise), not independent draws
    lag1 = [np.corrcoef(row[:-1], row[1:])[0, 1] for row in counts.to_numpy(dtype=float)]
    assert np.median(lag1) > 0.1


# ---- scale and integration ---------------------------------------------------------------------

def test_larger_teams_scale_ids_and_teams(tmp_path):
    tables, truth = generate_demo_data(reps=60, weeks=30, seed=1)
    reps = tables["reps"]
    assert len(reps) == 60 and reps["name"].is_unique and reps["rep_id"].is_unique
    assert reps["team"].nunique() == 8
    assert len(tables["activities"]) > 60 * 30 * 20
    assert {c["category"] for c in truth["commitments"]} >= {"kept_effect", "kept_no_effect", "not_kept"}


def test_cli_writes_the_demo_folder(tmp_path, capsys):
    from coachnb.cli import main

    assert main(["demo-data", "--out", str(tmp_path / "d"), "--reps", "4", "--weeks", "30"]) == 0
    assert (tmp_path / "d" / "reps.csv").exists()
    assert "wrote demo data" in capsys.readouterr().out


def test_demo_data_loads_without_problems(demo_dir, data):
    from coachnb.loading import load

    ds = load(demo_dir)  # raises DataError on any error-level problem
    assert len(ds.excluded) == 0
    assert {w.rule for w in ds.warnings} <= {"late_logging"}
    assert len(ds.activities) == len(data["activities"])
    assert len(ds.opportunities) == len(data["opportunities"])
    assert str(ds.activities["occurred_at"].dt.tz) == "Europe/London"
