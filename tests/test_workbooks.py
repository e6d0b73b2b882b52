"""coachnb.workbooks: what the analyst's notebooks compute, tested without running a notebook."""
from __future__ import annotations

from pathlib import Path

import pytest

from coachnb.errors import DataError
from coachnb.workbooks import data_folder


# --------------------------------------------------------------------------- data_folder


def test_a_relative_data_folder_is_found_from_a_subfolder_and_from_the_root(tmp_path):
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    expected = (tmp_path / "data" / "sample").resolve()
    assert data_folder("data/sample", start=tmp_path) == expected
    assert data_folder("data/sample", start=tmp_path / "notebooks") == expected


def test_the_nearest_folder_wins(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks" / "data").mkdir(parents=True)
    assert data_folder("data", start=tmp_path / "notebooks") == (tmp_path / "notebooks" / "data").resolve()


def test_an_absolute_folder_is_taken_as_it_is(tmp_path):
    assert data_folder(tmp_path) == tmp_path
    assert data_folder(str(tmp_path), start="/") == tmp_path


def test_an_empty_parameter_means_the_demo_team(tmp_path):
    (tmp_path / "data" / "sample").mkdir(parents=True)
    assert data_folder("", start=tmp_path / "data") == (tmp_path / "data" / "sample").resolve()


@pytest.mark.parametrize("name", ["nope", "/definitely/not/a/folder"])
def test_a_missing_folder_is_a_data_error_that_names_it(tmp_path, name):
    with pytest.raises(DataError) as caught:
        data_folder(name, start=tmp_path)
    assert caught.value.problems[0].rule == "missing_folder"
    assert name in str(caught.value) and "does not exist" in str(caught.value)


def test_a_file_is_not_a_data_folder(tmp_path):
    (tmp_path / "reps.csv").write_text("rep_id\n")
    with pytest.raises(DataError):
        data_folder("reps.csv", start=tmp_path)


# --------------------------------------------------------------------------- from plan to record


PLAN_AS_OF, NEXT_AS_OF = "2026-10-12", "2026-11-23"


@pytest.fixture()
def team_copy(repo_sample_dir, tmp_path) -> Path:
    """The demo team, copied: ``coachnb plan`` writes into it."""
    import shutil

    return Path(shutil.copytree(repo_sample_dir, tmp_path / "data"))


def test_the_plan_a_report_proposes_is_recorded_and_the_next_report_reviews_it(team_copy):
    import csv
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import coachnb
    from coachnb import cli
    from coachnb.workbooks import proposed_commitment

    ds = coachnb.load(team_copy)
    reports = (coachnb.rep_report(ds, rep, PLAN_AS_OF) for rep in sorted(ds.reps["rep_id"].astype(str)))
    report = next(r for r in reports if proposed_commitment(r) is not None)
    proposed, rep_id = proposed_commitment(report), report.header.rep_id
    assert proposed["metric"] in ds.config.commitment_metrics and proposed["target"] > proposed["baseline"]

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["plan", str(team_copy), "--rep", rep_id, "--as-of", PLAN_AS_OF,
                         "--follow-up", "Ask me on Fridays"])
    assert code == 0, err.getvalue()
    with open(team_copy / "commitments.csv", newline="", encoding="utf-8-sig") as fh:
        written = list(csv.DictReader(fh))[-1]
    assert written["commitment_id"] in out.getvalue() and "(the date of the 1:1;" in out.getvalue()
    assert (written["rep_id"], written["metric"]) == (rep_id, proposed["metric"])
    assert (float(written["baseline"]), float(written["target"])) == (proposed["baseline"], proposed["target"])
    assert (written["agreed_on"], written["start"], written["end"]) == (PLAN_AS_OF, PLAN_AS_OF, "2026-11-10")
    assert written["follow_up"] == "Ask me on Fridays"

    later = coachnb.rep_report(team_copy, rep_id, NEXT_AS_OF)
    reviewed = {rv.commitment["commitment_id"]: rv for rv in later.commitments}
    assert written["commitment_id"] in reviewed
    review = reviewed[written["commitment_id"]]
    assert review.commitment["metric"] == proposed["metric"] and review.diagnosis is not None


def test_a_plan_that_proposes_nothing_writes_nothing(team_copy):
    import coachnb
    from coachnb.errors import CoachnbError
    from coachnb.workbooks import proposed_commitment, record_plan

    ds = coachnb.load(team_copy)
    reports = (coachnb.rep_report(ds, rep, PLAN_AS_OF) for rep in sorted(ds.reps["rep_id"].astype(str)))
    report = next(r for r in reports if proposed_commitment(r) is None)
    before = (team_copy / "commitments.csv").read_bytes()
    with pytest.raises(CoachnbError, match="proposes no commitment") as caught:
        record_plan(team_copy, report.header.rep_id, PLAN_AS_OF)
    assert report.plan["note"] in str(caught.value)
    assert (team_copy / "commitments.csv").read_bytes() == before


def test_plan_refuses_an_unknown_rep_or_folder_before_building_a_report(team_copy, tmp_path):
    from unittest import mock

    from coachnb.errors import CoachnbError
    from coachnb.workbooks import record_plan

    with mock.patch("coachnb.report.rep_report") as build:
        with pytest.raises(CoachnbError, match="did you mean R003"):
            record_plan(team_copy, "r003", PLAN_AS_OF)
        with pytest.raises(DataError, match="does not exist"):
            record_plan(tmp_path / "nope", "R003", PLAN_AS_OF)
    assert not build.called


# --------------------------------------------------------------------------- explore_team


AS_OF = "2026-11-23"


@pytest.fixture(scope="module")
def team_ds(repo_sample_dir):
    import coachnb

    return coachnb.load(repo_sample_dir)


def _window(ds, weeks):
    from coachnb.calendar import report_window, resolve_as_of

    return report_window(resolve_as_of(AS_OF, ds), ds.config, weeks)


def test_explore_team_counts_every_activity_and_opportunity_of_the_team_in_its_weeks(team_ds):
    from coachnb.workbooks import explore_team

    x = explore_team(team_ds, "Clyde", AS_OF, 26)
    w = _window(team_ds, 26)
    mine = set(team_ds.reps.loc[team_ds.reps["team"] == "Clyde", "rep_id"].astype(str))
    acts, opps = team_ds.activities, team_ds.opportunities
    in_acts = acts["rep_id"].astype(str).isin(mine) & (acts["occurred_at"] >= w.start) & (acts["occurred_at"] < w.end)
    in_opps = opps["rep_id"].astype(str).isin(mine) & (opps["created_at"] >= w.start) & (opps["created_at"] < w.end)
    assert x.reps == len(mine) and x.period == w.label
    assert int(x.activity["total"].sum()) == int(in_acts.sum())
    assert int(x.activity[["call", "email", "meeting", "demo", "other"]].sum().sum()) == int(in_acts.sum())
    assert int(x.pipeline["opportunities_created"].sum()) == int(in_opps.sum())
    assert len(x.activity) <= 26 and x.activity.index.min() >= w.start.tz_localize(None)


def test_explore_team_fits_the_panel_model_per_team_and_refuses_an_unknown_team(team_ds):
    from coachnb.errors import CoachnbError
    from coachnb.workbooks import explore_team

    every = explore_team(team_ds, "", AS_OF, 52)
    assert every.reps == len(team_ds.reps)
    teams = sorted(team_ds.reps["team"].astype(str).unique())
    assert sorted(every.panel_model["team"].unique()) == teams
    totals = every.panel_model[every.panel_model["term"].str.startswith("total")]
    assert len(totals) == len(teams) and totals["p_value"].between(0, 1).all()
    assert (totals["ci_low"] <= totals["rate_ratio_per_unit"]).all() and (totals["rate_ratio_per_unit"] <= totals["ci_high"]).all()
    with pytest.raises(CoachnbError, match="did you mean Clyde"):
        explore_team(team_ds, "clyde", AS_OF)


def test_an_unknown_panel_metric_is_said_not_fitted(team_ds):
    from coachnb.workbooks import explore_team

    x = explore_team(team_ds, "Clyde", AS_OF, 13, metric="nope")
    assert x.panel_model.empty and "no activity metric" in x.panel_note


def test_team_funnel_pools_the_reps_counts_with_a_wilson_interval():
    import pandas as pd

    from coachnb.workbooks import team_funnel

    conv = pd.DataFrame({"rep_id": ["A", "B", "C", "A", "B"], "from_stage": ["D", "D", "D", "P", "P"],
                         "to_stage": ["P", "P", "P", "Won", "Won"], "entered": [10, 6, 50, 3, 0],
                         "advanced": [6, 2, 40, 0, 0], "dropped": [2, 2, 10, 0, 0], "still_open": [2, 2, 0, 3, 0]})
    out = team_funnel(conv, ["A", "B"])  # C is another team's
    first = out.iloc[0]
    assert (first["entered"], first["advanced"], first["dropped"]) == (16, 8, 4)
    assert first["rate"] == pytest.approx(8 / 12) and first["low"] < 8 / 12 < first["high"]
    assert first["low"] == pytest.approx(0.3906, abs=1e-3)  # Wilson 95% for 8 of 12
    assert out.iloc[1][["rate", "low", "high"]].isna().all()  # nothing resolved: no rate


# --------------------------------------------------------------------------- did_it_move


def test_commitment_in_depth_is_the_reports_test_and_its_sensitivity_starts_from_it(team_ds):
    import coachnb
    from coachnb.workbooks import SENSITIVITY_HORIZONS, SENSITIVITY_LAGS, commitment_in_depth

    d = commitment_in_depth(team_ds, "K0036", AS_OF)
    rep = coachnb.rep_report(team_ds, d.commitment["rep_id"], AS_OF)
    (review,) = [rv for rv in rep.commitments if rv.commitment["commitment_id"] == "K0036"]
    assert d.assessment.pipeline.rate_ratio == pytest.approx(review.assessment.pipeline.rate_ratio)
    assert d.assessment.verdict == review.assessment.verdict
    same = d.sensitivity[d.sensitivity["varied"] == "as in the report"].iloc[0]
    assert same["rate_ratio"] == pytest.approx(d.assessment.pipeline.rate_ratio)
    assert sorted(d.sensitivity["lag_weeks"].unique()) == sorted(SENSITIVITY_LAGS)
    assert sorted(d.sensitivity["horizon_weeks"].unique()) == sorted(SENSITIVITY_HORIZONS)
    assert len(d.sensitivity) == len(SENSITIVITY_LAGS) + len(SENSITIVITY_HORIZONS) - 1
    shaded = d.pipeline.index[d.pipeline["in_commitment"]]
    start, end = d.commitment["start"].tz_localize(None), d.commitment["end"].tz_localize(None)
    assert shaded.min() >= start and shaded.max() <= end and len(shaded) >= 7
    evidence = d.evidence.set_index("measure")["value"]
    assert evidence["verdict"] == review.assessment.verdict
    assert evidence["placebo comparisons"] == review.assessment.pipeline.n_placebo


def test_the_placebo_histogram_is_the_null_the_reports_p_value_ranks(team_ds):
    import numpy as np

    from coachnb.workbooks import commitment_in_depth

    d = commitment_in_depth(team_ds, "K0036", AS_OF)
    p = d.assessment.pipeline
    assert len(d.placebo) == p.n_placebo > 0
    assert np.all(np.diff(d.placebo) >= 0)
    assert np.isfinite(d.rep_statistic)
    # the report's two-sided p-value, recomputed from the null and the rep's statistic: the rank of
    # its distance from 0, never below Student's t on the dispersion's degrees of freedom
    from scipy import stats

    n = len(d.placebo)
    rank = (1 + np.sum(np.abs(d.placebo) >= abs(d.rep_statistic))) / (n + 1)
    t_floor = 2 * stats.t.sf(abs(d.rep_statistic), p.n_pre_weeks + p.n_post_weeks - 2)
    assert max(rank, t_floor) == pytest.approx(p.p_value)


def test_the_default_commitment_is_the_one_that_ended_last(team_ds):
    import pandas as pd

    from coachnb.workbooks import commitment_in_depth

    d = commitment_in_depth(team_ds, "", AS_OF)
    c = team_ds.commitments
    live = c[~c["commitment_id"].isin(set(c["supersedes"].dropna())) & (c["end"] < pd.Timestamp(AS_OF, tz=c["end"].dt.tz))]
    assert d.commitment["end"] == live["end"].max()


def test_an_unknown_or_replaced_commitment_is_a_clear_error(team_ds):
    from coachnb.errors import CoachnbError
    from coachnb.workbooks import commitment_in_depth

    with pytest.raises(CoachnbError, match="did you mean K0036"):
        commitment_in_depth(team_ds, "k0036", AS_OF)
    replaced = team_ds.commitments["supersedes"].dropna()
    assert len(replaced)  # the demo team replaces one commitment (K0046 replaces K0045)
    with pytest.raises(CoachnbError, match="replaced"):
        commitment_in_depth(team_ds, str(replaced.iloc[0]), AS_OF)


# --------------------------------------------------------------------------- data_check


def test_data_check_counts_every_dated_row_and_supports_every_section(repo_sample_dir, team_ds):
    from coachnb.workbooks import data_check

    check = data_check(repo_sample_dir)
    assert check.ok and (check.problems["severity"] != "error").all()
    assert check.sections["supported"].all() and "since_last_time" in set(check.sections["section"])
    for table, column in check.dated_by.items():
        assert int(check.coverage[table].sum()) == int(team_ds.table(table)[column].notna().sum()), table
    months = check.coverage.index
    assert (months[1:] - months[:-1]).days.max() <= 31  # every month between the first and the last


def test_data_check_on_a_broken_folder_lists_the_problem_and_counts_nothing(repo_sample_dir, tmp_path):
    import shutil

    from coachnb.workbooks import data_check

    folder = Path(shutil.copytree(repo_sample_dir, tmp_path / "data"))
    (folder / "reps.csv").write_text("rep_id,name\nR001,Ana\n", encoding="utf-8")
    check = data_check(folder)
    assert not check.ok and check.coverage.empty
    assert (check.problems["file"].str.startswith("reps") & (check.problems["severity"] == "error")).any()


def test_monthly_coverage_keeps_months_without_rows_as_zero(team_ds):
    import pandas as pd

    from coachnb.workbooks import monthly_coverage

    cover = monthly_coverage(team_ds, {"coaching_sessions": "held_on"})
    held = team_ds.coaching_sessions["held_on"].dt.tz_localize(None)
    assert int(cover["coaching_sessions"].sum()) == len(held)
    assert cover.index.min() == held.min().to_period("M").to_timestamp()
    assert len(cover) == len(pd.period_range(held.min(), held.max(), freq="M"))


def test_the_workbooks_refuse_a_missing_folder_with_a_data_error(tmp_path):
    from coachnb.workbooks import commitment_in_depth, explore_team

    for call in (lambda: explore_team(tmp_path / "nope"), lambda: commitment_in_depth(str(tmp_path / "nope"))):
        with pytest.raises(DataError, match="does not exist"):
            call()
