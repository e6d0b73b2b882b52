"""The demo team's planted truth, read back through the report: adherence, verdicts, diagnoses.

The rates asserted are the ones the calibration benchmark predicts for effects this large
(lift 1.8-2.5x, 6-13 weeks after): power roughly 0.3-0.6 per rep, false positives about 5%.
With 5-6 reps per category, the bounds are loose on purpose; what they catch is a method that
calls everything, or nothing, "moved".
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from coachnb.calendar import resolve_as_of
from coachnb.report import review_commitment
from coachnb.team import team_view

AS_OF = "2026-11-23"


@pytest.fixture(scope="module")
def reviewed(sample_ds, sample_dir):
    truth = json.loads((sample_dir / "ground_truth.json").read_text())
    tv = team_view(sample_ds, resolve_as_of(AS_OF, sample_ds), 13)
    rows = sample_ds.commitments.set_index("commitment_id")
    out = []
    for c in truth["commitments"]:
        if c["role"] != "main":
            continue
        row = rows.loc[c["commitment_id"]].to_dict()
        row["commitment_id"] = c["commitment_id"]
        out.append((c, review_commitment(tv, c["rep_id"], row)))
    return out


def _category(reviewed, name):
    return [rv for c, rv in reviewed if c["category"] == name]


def test_demo_team_plants_every_category(reviewed):
    for name in ("kept_effect", "kept_no_effect", "not_kept"):
        assert len(_category(reviewed, name)) >= 4, name


def test_kept_commitments_read_as_kept(reviewed):
    kept = _category(reviewed, "kept_effect") + _category(reviewed, "kept_no_effect")
    share = sum(rv.assessment.activity.adherence == "kept" for rv in kept) / len(kept)
    assert share >= 0.8


def test_commitments_not_kept_do_not_read_as_kept(reviewed):
    missed = _category(reviewed, "not_kept")
    share = sum(rv.assessment.activity.adherence != "kept" for rv in missed) / len(missed)
    assert share >= 0.6
    assert sum(rv.diagnosis.category == "not_kept" for rv in missed) >= len(missed) // 2


def test_large_planted_effects_are_found_and_null_ones_are_not(reviewed):
    effect = _category(reviewed, "kept_effect")
    null = _category(reviewed, "kept_no_effect")
    moved_effect = [rv for rv in effect if rv.assessment.pipeline.verdict == "moved"]
    moved_null = [rv for rv in null if rv.assessment.pipeline.verdict == "moved"
                  and rv.assessment.pipeline.direction == "up"]
    assert len(moved_effect) >= 1
    assert len(moved_null) <= 1
    for rv in moved_effect:
        p = rv.assessment.pipeline
        assert p.direction == "up" and p.ci_low > 1
        assert rv.diagnosis.category == "kept_moved"


def test_every_verdict_carries_its_evidence(reviewed):
    for _, rv in reviewed:
        p = rv.assessment.pipeline
        assert p.n_pre_weeks > 0 and p.sentence
        if p.verdict in ("moved", "no meaningful change"):
            assert p.ci_low <= p.rate_ratio <= p.ci_high
            assert 0 <= p.p_value <= 1
        if p.verdict == "not enough data to tell":
            assert "enough" in p.sentence.lower() or "early" in p.sentence.lower()


def test_comparison_uses_teammates_who_did_not_change(reviewed, sample_ds):
    # in the demo, about half the team keeps a commitment in the same summer weeks; those are left
    # out of the comparison (and teammates whose activity shows a change of its own, recorded or
    # not), teammates whose commitment did not change anything stay in
    peers = [rv.assessment.pipeline.n_peers for _, rv in reviewed]
    kept_reps = {c["rep_id"] for c, _ in reviewed if c["category"].startswith("kept")}
    assert min(peers) >= 4
    assert max(peers) <= len(sample_ds.reps) - len(kept_reps) + 1
    assert any(rv.assessment.pipeline.n_changed_peers for _, rv in reviewed)


def test_every_verdict_a_report_shows_agrees_with_what_the_demo_planted(sample_ds, sample_dir):
    """Each commitment a demo report shows, read against ground_truth.json: a planted null never
    reads as 'moved', a planted lift never as 'no meaningful change', a commitment planted as not
    kept never as kept, and 'kept and moved' only where both were planted."""
    from coachnb.report import rep_report

    truth = {c["commitment_id"]: c for c in json.loads((sample_dir / "ground_truth.json").read_text())["commitments"]}
    shown = 0
    for rep_id in sample_ds.reps["rep_id"]:
        for rv in rep_report(sample_ds, rep_id, AS_OF).commitments:
            planted = truth[rv.commitment["commitment_id"]]
            a, d = rv.assessment, rv.diagnosis
            if a is None:
                continue
            shown += 1
            where = (rep_id, planted["commitment_id"], planted["category"], a.activity.adherence, a.pipeline.verdict)
            if planted["category"] != "kept_effect":
                assert a.pipeline.verdict != "moved", where
                assert d is None or d.category != "kept_moved", where
            else:
                assert a.pipeline.verdict != "no meaningful change", where
            if planted["category"] == "not_kept":
                assert a.activity.adherence != "kept", where
    assert shown >= 15  # most of the team has a commitment to read


def test_weeks_before_a_hire_are_missing_not_zero_in_every_test(sample_ds, sample_dir):
    """R024 joined in March 2026: the baseline of a commitment in April can't be 26 weeks of zeros."""
    from coachnb.team import before_hire_as_missing, outcome_history

    hire = sample_ds.reps.set_index("rep_id").at["R024", "hire_date"]
    truth = json.loads((sample_dir / "ground_truth.json").read_text())["commitments"]
    early = next(c for c in truth if c["rep_id"] == "R024" and c["role"] == "early")
    tv = team_view(sample_ds, resolve_as_of(AS_OF, sample_ds), 13)
    row = sample_ds.commitments.set_index("commitment_id").loc[early["commitment_id"]].to_dict()
    row["commitment_id"] = early["commitment_id"]
    p = review_commitment(tv, "R024", row).assessment.pipeline
    weeks_in_role = (row["start"] - hire).days / 7
    assert 0 < p.n_pre_weeks <= weeks_in_role + 1
    assert p.verdict != "moved"
    panel = outcome_history(tv, tv.history_start)
    before = panel.index + pd.Timedelta(days=7) <= hire.tz_localize(None)  # weeks that ended before the hire
    assert before.any() and panel.loc[before, "R024"].isna().all()
    assert panel.loc[~before, "R024"].notna().all()
    assert before_hire_as_missing(sample_ds, panel.iloc[:0]).empty


def test_no_commitment_on_record_reads_as_moved_where_the_demo_planted_no_lift(sample_ds, sample_dir):
    """The coaching record shows every commitment, 2025's too: weeks before the data begins are
    missing, so an early commitment's baseline is not a run of zeros (R019's 2025 one read 2.6x)."""
    truth = json.loads((sample_dir / "ground_truth.json").read_text())["commitments"]
    tv = team_view(sample_ds, resolve_as_of(AS_OF, sample_ds), 13)
    rows = sample_ds.commitments.set_index("commitment_id")
    for c in truth:
        row = dict(rows.loc[c["commitment_id"]].to_dict(), commitment_id=c["commitment_id"])
        p = review_commitment(tv, c["rep_id"], row).assessment.pipeline
        if c["category"] != "kept_effect":
            assert p.verdict != "moved", (c["rep_id"], c["role"], p.sentence)


def test_weeks_before_the_data_begins_are_missing_for_everyone():
    from coachnb.team import before_data_as_missing

    weeks = pd.date_range("2025-01-06", periods=6, freq="W-MON")
    panel = pd.DataFrame({"A": [0, 0, 1, 0, 2, 0], "B": [0, 0, 0, 3, 0, 1]}, index=weeks, dtype=float)
    out = before_data_as_missing(panel)
    assert out.iloc[:2].isna().all().all() and (out.iloc[2:] == panel.iloc[2:]).all().all()
    assert before_data_as_missing(panel.iloc[2:]).equals(panel.iloc[2:])  # data from the first week: unchanged
    assert before_data_as_missing(panel * 0).equals(panel * 0)  # nothing recorded at all: nothing to mark
