"""A store build's shared pass (coachnb.calendar.one_pass): the same tables, and never a stale value.

Inside a pass for a Dataset the team metrics reuse each row's rep code, local day and week, the
activities' logging lags and the stage entries instead of working them out per call. These
tests hold the pass to giving exactly what each function computes on its own, for windows that
start and end at odd times (across the clocks going back), and to answering only the very
Dataset and tables it began with.
"""
from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import pandas as pd
import pytest

from coachnb import calendar as C
from coachnb import metrics as M
from coachnb import store_build
from coachnb.schema import Dataset

AS_OF = pd.Timestamp("2026-11-23", tz="Europe/London")


def _windows():
    """(start, end) pairs: the year before the 1:1, 13 weeks whose start is not a local midnight (168 h
    multiples across the end of summer time), a window after the data and an empty one."""
    end = AS_OF
    return [
        (C.weeks_before(end, 52), end),
        (end - pd.Timedelta(weeks=13), end),  # 25 Aug 01:00 local: BST then, GMT at the end
        (pd.Timestamp("2026-10-25 00:30", tz="Europe/London"), pd.Timestamp("2026-10-25 01:30", tz="UTC")),
        (end + pd.Timedelta(weeks=60), end + pd.Timedelta(weeks=62)),
        (end, end),
    ]


def _tables(ds) -> list[pd.DataFrame]:
    """Every pass-aware metric of ``ds``, over every window."""
    out = []
    for start, end in _windows():
        out += [M.weekly_activity(ds, start, end), M.weekly_pipeline(ds, start, end),
                M.capture_timeliness(ds, start, end)]
        out += [M.metric_weekly(ds, name, start, end) for name in sorted(ds.config.commitment_metrics)]
    out += [M.stage_entries(ds), M.stage_entries(ds, before=AS_OF), M.stage_conversion(ds),
            M.stage_velocity(ds, AS_OF), M.stage_velocity(ds, AS_OF, start=AS_OF - pd.Timedelta(weeks=52)),
            M.team_stage_velocity(ds, AS_OF), M.stalled_deals(ds, AS_OF), M.red_flags(ds, AS_OF, 13)]
    return out


def test_a_pass_gives_every_table_exactly_as_computed_alone(sample_ds):
    alone = _tables(sample_ds)
    with C.one_pass(sample_ds):
        assert C.event_codes(sample_ds, "activities", "rep_id", "occurred_at") is not None  # the pass is used
        shared = _tables(sample_ds)
        again = _tables(sample_ds)  # from the memo this time
    assert len(alone) == len(shared) == len(again)
    for a, s, g in zip(alone, shared, again):
        pd.testing.assert_frame_equal(a, s, check_exact=True)
        pd.testing.assert_frame_equal(a, g, check_exact=True)
    assert any(len(t) and t.select_dtypes("number").to_numpy().any() for t in alone)  # the windows held data


def _store_digests(path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != "features.json"}  # it holds the time


def test_the_store_built_with_the_pass_is_byte_identical_to_one_built_without(sample_ds, tmp_path, monkeypatch):
    with_pass = store_build.build_store(sample_ds, "2026-11-23", 13, tmp_path / "a", force=True)
    monkeypatch.setattr(store_build, "one_pass", lambda ds: contextlib.nullcontext())
    without = store_build.build_store(sample_ds, "2026-11-23", 13, tmp_path / "b", force=True)
    digests = _store_digests(with_pass)
    assert len(digests) > 20 and digests == _store_digests(without)


def test_the_memo_answers_only_its_dataset_and_tables_and_ends_with_the_block(sample_ds):
    start, end = C.weeks_before(AS_OF, 52), AS_OF
    other = pd.DataFrame(sample_ds.activities)  # the same rows in another frame object
    half = Dataset(**{**vars(sample_ds), "activities": sample_ds.activities.iloc[::2].reset_index(drop=True)})
    ds = Dataset(**vars(sample_ds))  # a Dataset of its own, whose table this test swaps
    expected_half = M.weekly_activity(half, start, end)
    with C.one_pass(ds):
        full = M.weekly_activity(ds, start, end)
        assert C.event_codes(half, "activities", "rep_id", "occurred_at") is None  # no pass for that one
        pd.testing.assert_frame_equal(M.weekly_activity(half, start, end), expected_half)
        ds.activities = half.activities  # a table swapped during the pass: never answered from the memo
        pd.testing.assert_frame_equal(M.weekly_activity(ds, start, end), expected_half)
        ds.activities = other
        pd.testing.assert_frame_equal(M.weekly_activity(ds, start, end), full)
    assert full["total"].sum() > expected_half["total"].sum() > 0
    assert C.event_codes(ds, "activities", "rep_id", "occurred_at") is None  # the block has ended


def test_pass_memo_computes_once_per_key_inside_and_every_time_outside(sample_ds):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3)

    C.pass_memo(sample_ds, ("k",), compute)
    C.pass_memo(sample_ds, ("k",), compute)
    assert len(calls) == 2
    with C.one_pass(sample_ds):
        first = C.pass_memo(sample_ds, ("k",), compute)
        assert C.pass_memo(sample_ds, ("k",), compute) is first
        C.pass_memo(sample_ds, ("another key",), compute)
        with pytest.raises(ValueError):
            first[0] = 5  # what the memo hands out can't be changed by a caller
    assert len(calls) == 4
    with C.one_pass(sample_ds):  # a new block starts empty
        C.pass_memo(sample_ds, ("k",), compute)
    assert len(calls) == 5


def test_a_caller_changing_its_stage_entries_changes_no_other_callers(sample_ds):
    with C.one_pass(sample_ds):
        e = M.stage_entries(sample_ds)
        clean = e.copy(deep=True)
        e["later_max"] = 1  # as stage_conversion does
        e.loc[e.index[0], "stage_idx"] = 99
        pd.testing.assert_frame_equal(M.stage_entries(sample_ds), clean)
