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
