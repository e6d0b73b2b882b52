"""Feature store: reports from the store equal reports from the raw folder; reruns skip; edits invalidate."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from coachnb import store as fstore
from coachnb import store_build
from coachnb.loading import input_fingerprint
from coachnb.overview import team_overview
from coachnb.report import rep_report

from .conftest import DEMO_AS_OF


def assert_same(a, b, where="report"):
    """Deep equality of report objects: dataclasses field by field, frames exactly (dtypes too)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.name == "ds":
                continue
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def store(sample_dir, tmp_path_factory):
    return store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path_factory.mktemp("reports"))


def _reps_with_everything(ds, n=4):
    """A few reps whose reports exercise commitments (reviews), focus areas and scenarios."""
    c = ds.commitments
    with_commitments = list(dict.fromkeys(c.sort_values("start")["rep_id"].astype(str)))
    reps = list(ds.reps["rep_id"].astype(str))
    return list(dict.fromkeys(with_commitments[-(n - 1):] + [reps[0]]))


def test_store_reports_equal_raw_reports(sample_dir, sample_ds, store):
    reps = _reps_with_everything(sample_ds)
    checked = {"reviews": 0, "focus": 0, "scenarios": 0}
    for rep_id in reps:
        for audience in ("manager", "rep"):
            raw = rep_report(sample_dir, rep_id, DEMO_AS_OF, 13, audience)
            stored = rep_report(store, rep_id, DEMO_AS_OF, 13, audience)
            assert_same(raw, stored, f"{rep_id}/{audience}")
            checked["reviews"] += len(raw.commitments)
            checked["focus"] += len(raw.focus.areas)
            checked["scenarios"] += len(raw.scenarios)
    # the comparison covered the parts that need the store's panels, not just empty sections
    assert checked["reviews"] > 0 and checked["focus"] > 0 and checked["scenarios"] > 0, checked


def test_store_overview_equals_raw_overview(sample_dir, store):
    assert_same(team_overview(sample_dir, DEMO_AS_OF, 13), team_overview(store, DEMO_AS_OF, 13), "overview")


def test_store_worker_holds_one_reps_records_and_no_activities(sample_ds, store):
    rep_id = str(sample_ds.reps["rep_id"].iloc[3])
    ds = fstore.open_store(store).dataset_for(rep_id)
    assert len(ds.activities) == 0 and ds.has("activities")
    assert set(ds.opportunities["rep_id"]) == {rep_id}
    mine = sample_ds.opportunities[sample_ds.opportunities["rep_id"] == rep_id]
    pd.testing.assert_frame_equal(ds.opportunities, mine.reset_index(drop=True))
    own_opps = set(mine["opportunity_id"])
    assert set(ds.stage_history["opportunity_id"]) <= own_opps and len(ds.stage_history)


def test_unknown_rep_and_wrong_date_are_errors(store):
    from coachnb.errors import RepNotFound

    with pytest.raises(RepNotFound):
        rep_report(store, "NOBODY", DEMO_AS_OF, 13)
    with pytest.raises(ValueError, match="feature store"):
        rep_report(store, fstore.open_store(store).whole["reps"]["rep_id"].iloc[0], "2026-10-05", 13)


def test_input_fingerprint_equals_dataset_fingerprint(sample_dir, sample_ds):
    assert input_fingerprint(sample_dir) == sample_ds.fingerprint


def test_rerun_skips_and_changed_input_invalidates(sample_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    root = tmp_path / "out"
    first = store_build.build_store(data, DEMO_AS_OF, 13, root)
    written = json.loads((first / fstore.MARKER).read_text())["written_at"]

    import coachnb.loading

    def no_load(*a, **k):
        raise AssertionError("an unchanged rerun must not load the data")

    monkeypatch.setattr(coachnb.loading, "load", no_load)
    again = store_build.build_store(data, DEMO_AS_OF, 13, root)
    assert again == first
    assert json.loads((again / fstore.MARKER).read_text())["written_at"] == written
    monkeypatch.undo()

    # another window is another store
    assert store_build.build_store(data, DEMO_AS_OF, 8, root) != first

    # one changed cell in an input file: new key, new store, and its content follows the edit
    opps = pd.read_csv(data / "opportunities.csv", dtype=str)
    rep_id = opps["rep_id"].iloc[0]
    before = rep_report(first, rep_id, DEMO_AS_OF, 13)
    open_ids = opps.index[(opps["rep_id"] == rep_id) & (opps["status"] == "open")]
    opps = opps.drop(index=open_ids[:1])
    opps.to_csv(data / "opportunities.csv", index=False)
    sh = pd.read_csv(data / "stage_history.csv", dtype=str)
    sh[sh["opportunity_id"].isin(opps["opportunity_id"])].to_csv(data / "stage_history.csv", index=False)
    acts = pd.read_csv(data / "activities.csv", dtype=str)
    acts.loc[~acts["opportunity_id"].isin(opps["opportunity_id"]), "opportunity_id"] = pd.NA
    acts.to_csv(data / "activities.csv", index=False)
    changed = store_build.build_store(data, DEMO_AS_OF, 13, root)
    assert changed != first and fstore.is_store(changed)
    after = rep_report(changed, rep_id, DEMO_AS_OF, 13)
    assert after.stalled.n_open == before.stalled.n_open - len(open_ids[:1])
    assert_same(rep_report(data, rep_id, DEMO_AS_OF, 13), after, "after edit")


def test_store_panels_equal_pivoted_long_frames(sample_ds, store):
    """The wide panels read from the cube equal metrics.weekly_panel of the long frames, cell for cell,
    for windows starting mid-week and on a week start, and for every metric kind (a share falls
    back to the long frame)."""
    from coachnb.calendar import weeks_before
    from coachnb.metrics import weekly_panel as _panel
    from coachnb.team import open_data

    ds, _, tv = open_data(store, DEMO_AS_OF, 13, str(sample_ds.reps["rep_id"].iloc[0]))
    starts = [tv.history_start, weeks_before(tv.window.end - pd.Timedelta(days=3), 52)]
    assert starts[1].day_of_week != starts[0].day_of_week  # one window starts mid-week
    for start in starts:
        for metric in ds.config.commitment_metrics:
            wide = fstore.metric_panel(ds, metric, start, tv.window.end)
            long = fstore.metric_weekly(ds, metric, start, tv.window.end)
            pd.testing.assert_frame_equal(wide, _panel(long, "value"), check_exact=True)
        wide = fstore.pipeline_panel(ds, start, tv.window.end)
        long = fstore.weekly_pipeline(ds, start, tv.window.end)
        pd.testing.assert_frame_equal(wide, _panel(long, "opportunities_created"), check_exact=True)
        assert wide.to_numpy().sum() > 0


def test_cube_is_held_compact_and_sorted_by_day(store):
    codes, day, values = fstore.open_store(store).cube()
    assert (np.diff(day) >= 0).all() and (codes >= 0).all()
    assert values["call"].dtype.itemsize <= 2 and day.dtype == np.int32
    assert values["pipeline_created"].dtype.kind == "f"


def test_rep_slice_equals_a_filtered_parquet_read(sample_dir, sample_ds, tmp_path, monkeypatch):
    """Reading a rep's row groups and filtering gives the frame of pandas' filtered read, for every
    rep (row groups holding several reps, reps spanning row groups) and for an id that owns nothing."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(store_build, "ROW_GROUP_ROWS", 50)
    fs = fstore.open_store(store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path))
    assert pq.ParquetFile(fs.path / "reps" / "stage_history.parquet").num_row_groups > 5
    reps = list(sample_ds.reps["rep_id"].astype(str))
    for name in fstore.PER_REP:
        path = fs.path / "reps" / f"{name}.parquet"
        for rep_id in reps + ["NOBODY"]:
            expected = pd.read_parquet(path, filters=[(fstore.OWNER, "==", rep_id)])
            expected = expected.drop(columns=[fstore.OWNER]).reset_index(drop=True)
            if expected.empty:
                expected = expected.astype(fs._empty[name].dtypes.to_dict())
            pd.testing.assert_frame_equal(fs.rep_slice(name, rep_id), expected, check_exact=True)
    assert len(fs.rep_slice("opportunities", reps[-1])) > 0
