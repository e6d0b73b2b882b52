"""Feature store: reports from the store equal reports from the raw folder; reruns skip; edits invalidate."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

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


def test_rows_kept_with_the_store_read_back_as_computed(sample_dir, store, monkeypatch):
    from coachnb import overview

    raw = team_overview(sample_dir, DEMO_AS_OF, 13)
    overview.complete_overview(store, DEMO_AS_OF, 13)  # every row and the team effects, kept as JSON
    assert (Path(store) / overview.ROWS_FILE).is_file()
    monkeypatch.setattr(overview, "rep_columns", lambda *a: pytest.fail("a kept row was computed again"))
    monkeypatch.setattr(overview, "activity_effects", lambda *a: pytest.fail("the kept team effects were refitted"))
    for manager in ("", str(raw.reps["manager"].iloc[0])):
        kept = team_overview(store, DEMO_AS_OF, 13, manager=manager)
        fresh = raw if not manager else None
        if fresh is None:  # the manager's page from the raw data, computed (not patched) before
            monkeypatch.undo()
            fresh = team_overview(sample_dir, DEMO_AS_OF, 13, manager=manager)
        assert_same(fresh, kept, f"overview {manager or 'index'}")  # through JSON, exactly the same values


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


# =============================================================================== data at rest
def _odd_config():
    """A config unlike the default in every field: nested thresholds (an int where a float is
    the default, as a TOML file may give it), an extra commitment metric, a DST time zone."""
    from coachnb.config import CommitmentMetric, ProcessConfig, Thresholds

    metrics = dict(ProcessConfig().commitment_metrics)
    metrics["linkedin_per_week"] = CommitmentMetric("linkedin_per_week", "LinkedIn messages", "activity_count",
                                                    ("other", "email"), "messages")
    return ProcessConfig(stages=("Intro", "Proposal ($5k-$10k)", "Négociation"),
                         activity_type_map={"Phone Call": "call", "Onsite": "meeting"}, week_start="sunday",
                         timezone="Europe/Berlin",
                         thresholds=Thresholds(stalled_percentile=80, late_logging_days=1.5, min_pre_weeks=6),
                         commitment_metrics=metrics)


def _json_round_trip(value):
    return json.loads(json.dumps(value))


def test_config_round_trips_exactly_through_json():
    cfg = _odd_config()
    rebuilt = fstore.from_json(_json_round_trip(fstore.to_json(cfg)), type(cfg), "meta.json", "config")
    assert rebuilt == cfg
    # equal is not enough where a report formats the value: an int stays an int, a tuple a tuple
    assert type(rebuilt.thresholds.stalled_percentile) is int and type(rebuilt.thresholds.late_logging_days) is float
    assert type(rebuilt.stages) is tuple and type(rebuilt.commitment_metrics["linkedin_per_week"].activity_types) is tuple
    assert list(rebuilt.commitment_metrics) == list(cfg.commitment_metrics)


def test_meta_round_trips_exactly_through_json():
    from coachnb.errors import Problem

    cfg = _odd_config()
    # across the autumn DST change: a window start 168 h multiples before a local midnight
    end = pd.Timestamp("2026-11-02", tz=cfg.timezone)
    start = end - pd.Timedelta(weeks=8)
    meta = {"config": cfg,
            "warnings": [Problem("activities.csv", 7, "occurred_at", "3/4/26", "ambiguous_date", "day or month?",
                                 "use ISO dates", "warning"), Problem("reps.csv", None, None, None, "x", "y")],
            "funnel": {13: {"start": start, "end": end, "weeks": 13, "has_activity": True, "has_stages": False}},
            "windows": {("metric", "calls_per_week", start, end): "window_metric.calls_per_week.parquet",
                        ("pipeline", None, start, end): "window_pipeline.parquet"},
            "cube_start": start - pd.Timedelta(weeks=52), "has": {n: n != "self_assessments" for n in fstore.HAS_TABLES},
            "present": frozenset({"reps", "activities"}), "data_dir": None}
    rebuilt = fstore.decode_meta(_json_round_trip(fstore.encode_meta(meta)), "meta.json")
    assert rebuilt == meta
    assert str(rebuilt["cube_start"].tz) == cfg.timezone and rebuilt["cube_start"] == meta["cube_start"]
    # the reader looks a window up by the local timestamps it computes: the stored key must hash alike
    key = ("metric", "calls_per_week", start.tz_convert("UTC").tz_convert(cfg.timezone), end)
    assert rebuilt["windows"][key] == "window_metric.calls_per_week.parquet"


def test_store_holds_data_only_and_reads_back_the_datasets_metadata(sample_ds, store):
    assert not [p for p in store.rglob("*") if p.suffix not in (".json", ".parquet") and p.is_file()]
    fs = fstore.FeatureStore(store)
    assert fs.config == sample_ds.config
    assert fs.meta["warnings"] == sample_ds.warnings and fs.meta["present"] == sample_ds.present
    pd.testing.assert_frame_equal(fs.meta["excluded"], sample_ds.excluded.reset_index(drop=True))
    assert fs.meta["has"] == {n: sample_ds.has(n) for n in fstore.HAS_TABLES}


def _tamper(path, name, edit):
    """Rewrite the JSON file ``name`` of the store at ``path`` with ``edit`` applied to its data."""
    raw = json.loads((path / name).read_text())
    edit(raw)
    (path / name).write_text(json.dumps(raw))


@pytest.mark.parametrize("name, edit", [
    ("meta.json", lambda m: m["config"]["thresholds"].update(cadence_days="21")),
    ("meta.json", lambda m: m["config"].update(timezone_typo="UTC")),
    ("meta.json", lambda m: m.pop("has")),
    ("meta.json", lambda m: m["windows"][0].update(file="../../outside.parquet")),
    ("meta.json", lambda m: m.update(cube_start="2026-01-01")),  # no UTC offset
    ("meta.json", lambda m: m["warnings"].append({"py/object": "os.system"})),
    ("features.json", lambda m: m.update(lookback_weeks="13")),
])
def test_tampered_metadata_raises_a_value_error_naming_the_file(store, tmp_path, name, edit):
    copy = tmp_path / store.name
    shutil.copytree(store, copy)
    _tamper(copy, name, edit)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        fstore.FeatureStore(copy)


def test_garbage_metadata_raises_a_value_error_naming_the_file(store, tmp_path):
    copy = tmp_path / store.name
    shutil.copytree(store, copy)
    (copy / fstore.META).write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(ValueError, match=r"meta\.json"):
        fstore.FeatureStore(copy)


def _copied_store(store, root):
    """The module's store copied under ``root`` with its key: what build_store finds there."""
    features = root / ".features"
    shutil.copytree(store, features / store.name)
    return features / store.name


@pytest.mark.parametrize("damage", ["fingerprint", "garbage meta", "missing table"])
def test_a_store_that_claims_other_inputs_or_is_damaged_is_rebuilt(sample_dir, store, tmp_path, damage):
    found = _copied_store(store, tmp_path)
    if damage == "fingerprint":
        _tamper(found, fstore.MARKER, lambda m: m.update(fingerprint="0" * 16))
    elif damage == "garbage meta":
        (found / fstore.META).write_text("{not json")
    else:
        (found / "team" / "stalled.parquet").unlink()
    (found / "sentinel").touch()  # gone once the folder is replaced by a fresh build
    assert store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path) == found
    assert not (found / "sentinel").exists()
    assert fstore.verify_store(found, {"fingerprint": json.loads((store / fstore.MARKER).read_text())["fingerprint"]}) \
        is None


def test_an_intact_store_is_reused(sample_dir, store, tmp_path):
    found = _copied_store(store, tmp_path)
    (found / "sentinel").touch()
    assert store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path) == found
    assert (found / "sentinel").exists()


class _Payload:
    """Unpickling this creates ``marker``: what an attacker's pickle would do, harmlessly."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_is_never_executed(sample_dir, sample_ds, store, tmp_path):
    import pickle

    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists()  # the payload does run when unpickled

    marker = tmp_path / "executed"
    found = _copied_store(store, tmp_path)
    (found / "meta.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    path = store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path)
    assert path == found and (found / "meta.pkl").exists()  # reused: the planted file was simply ignored
    fstore.open_store(path)
    rep_id = str(sample_ds.reps["rep_id"].iloc[0])
    assert rep_report(path, rep_id, DEMO_AS_OF, 13).header.rep_id == rep_id
    assert not marker.exists()


# =============================================================================== leftovers
def _age(path, seconds):
    """Set the modification time of ``path`` and everything under it ``seconds`` into the past."""
    when = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (when, when), follow_symlinks=False)


def test_killed_builds_temporaries_are_removed_but_a_running_builds_are_kept(sample_dir, store, tmp_path):
    found = _copied_store(store, tmp_path)
    temps = {}
    for name, age in (("killed", 3600), ("running", 0), ("running_slow", 3600)):
        temp = found.parent / f".{store.name}.{name}"
        (temp / "team").mkdir(parents=True)
        (temp / "team" / "stalled.parquet").write_bytes(b"x")
        _age(temp, age)
        temps[name] = temp
    # a running build that last wrote deep inside its folder, long after creating it
    (temps["running_slow"] / "team" / "weekly_activity.parquet").write_bytes(b"x")
    store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path)
    assert not temps["killed"].exists()
    assert temps["running"].exists() and temps["running_slow"].exists()


def test_old_stores_are_pruned_keeping_the_most_recent_and_the_current(sample_dir, store, tmp_path, monkeypatch):
    found = _copied_store(store, tmp_path)
    features = found.parent
    olds = []
    for i in range(5):  # i hours old
        old = features / f"{i:020x}"
        old.mkdir()
        (old / fstore.MARKER).write_text("{}")
        _age(old, 3600 * (i + 1))
        olds.append(old)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").touch()
    (features / ("f" * 20)).symlink_to(outside)  # a symlink named like a store is never followed
    (features / "notes").mkdir()  # nor is anything not named like a store touched
    _age(found, 9 * 3600)  # the current store is the oldest: reusing it makes it the most recent
    assert store_build.build_store(sample_dir, DEMO_AS_OF, 13, tmp_path) == found
    left = sorted(p.name for p in features.iterdir())
    assert left == sorted([found.name, olds[0].name, olds[1].name, "f" * 20, "notes"])
    assert (outside / "keep").exists()
    assert store_build.KEEP_STORES == 3

    # pruning never removes the store just built, however old its folder looks
    _age(found, 99 * 3600)
    monkeypatch.setattr(store_build, "KEEP_STORES", 1)
    assert set(store_build.clean_leftovers(features, found)) == {olds[0], olds[1]}
    assert found.exists()


def test_a_planted_old_format_store_is_refused_without_unpickling(sample_ds, store, tmp_path):
    """A store of the pickle era (format 1, ``meta.pkl``) opened directly, as ``rep_report(<store>)`` does:
    refused by its features.json before any other file is read."""
    import pickle

    marker = tmp_path / "executed"
    old = tmp_path / "old"
    shutil.copytree(store, old)
    (old / fstore.META).unlink()
    (old / "meta.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    _tamper(old, fstore.MARKER, lambda m: m.update(format=1))
    with pytest.raises(ValueError, match="another coachnb version"):
        rep_report(old, str(sample_ds.reps["rep_id"].iloc[0]), DEMO_AS_OF, 13)
    assert not marker.exists()


def test_week_windows_kept_by_a_store_give_the_panels_a_fresh_store_gives(sample_dir, sample_ds, store, tmp_path):
    """A store keeps each window's grid for its own Datasets only: panels read through kept windows
    equal a fresh store's, a Dataset with other reps gets its own grid, and another store (other
    data, same process) its own panels."""
    from coachnb.calendar import weeks_before
    from coachnb.team import open_data

    rep = str(sample_ds.reps["rep_id"].iloc[0])
    ds, _, tv = open_data(store, DEMO_AS_OF, 13, rep)
    fs = fstore.store_of(ds)
    windows = [(tv.history_start, tv.window.end), (weeks_before(tv.window.end, 30), tv.window.end),
               (tv.history_start, tv.window.start)]
    first = [fstore.metric_panel(ds, "calls_per_week", s, e) for s, e in windows]
    assert all(fs.week_window(ds, s, e) is fs.week_window(ds, s, e) for s, e in windows)  # kept
    again = [fstore.metric_panel(ds, "calls_per_week", s, e) for s, e in windows]
    fresh = fstore.FeatureStore(fs.path)  # nothing kept yet
    fresh_ds = fresh.dataset_for(rep)
    for (s, e), a, b in zip(windows, first, again):
        expected = fresh.panel(fresh_ds, s, e, ["call"])[0].wide(fresh.panel(fresh_ds, s, e, ["call"])[1]["call"])
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        pd.testing.assert_frame_equal(a, expected.astype(float), check_exact=True)
        assert a.shape[0] == len(pd.date_range(s.tz_localize(None), e.tz_localize(None), freq="7D", inclusive="left"))
    # a Dataset with one rep less: its own grid (its reps), and the store keeps nothing of it
    fewer = dataclasses.replace(ds, reps=ds.reps.iloc[1:].copy())
    kept = dict(fs._windows)
    grid, _, _ = fs.week_window(fewer, *windows[0])
    assert grid.n_reps == len(ds.reps) - 1 and grid is not fs.week_window(ds, *windows[0])[0]
    assert dict(fs._windows) == kept
    # another store in the same process (the first rep's calls doubled): its own panels
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    acts = pd.read_csv(data / "activities.csv", dtype=str)
    calls = acts[(acts["rep_id"] == rep) & (acts["type"] == "call")].copy()
    calls["activity_id"] = "X" + calls["activity_id"]
    pd.concat([acts, calls]).to_csv(data / "activities.csv", index=False)
    other = store_build.build_store(data, DEMO_AS_OF, 13, tmp_path / "out")
    ods, _, _ = open_data(other, DEMO_AS_OF, 13, rep)
    doubled = fstore.metric_panel(ods, "calls_per_week", *windows[0])
    pd.testing.assert_series_equal(doubled[rep], 2 * first[0][rep], check_exact=True)
    pd.testing.assert_frame_equal(doubled.drop(columns=rep), first[0].drop(columns=rep), check_exact=True)
    assert fstore.store_of(ods) is not fs


def test_panel_start_reaches_back_for_every_reps_chosen_commitments_only(sample_ds):
    """The store's panels start 52 weeks before the earliest commitment any rep's record reviews
    (as rep_commitments chooses them: started, not superseded); a superseded one is not read."""
    from coachnb.calendar import resolve_as_of, weeks_before
    from coachnb.store_build import _panel_start, as_of_date
    from coachnb.team import compute_team_view, rep_commitments

    def reference(ds, tv):
        start = min(tv.history_start, _panel_start(dataclasses.replace(ds, commitments=ds.commitments.iloc[:0]), tv))
        for rep_id in ds.reps["rep_id"].astype(str):
            for s in rep_commitments(ds, rep_id, tv.window.as_of)["start"]:
                start = min(start, weeks_before(s, 52))
        return start

    as_of = resolve_as_of(as_of_date("2026-11-23"), sample_ds)
    tv = compute_team_view(sample_ds, as_of, 13)
    assert _panel_start(sample_ds, tv) == reference(sample_ds, tv)
    c = sample_ds.commitments.copy()
    earliest = c["start"].idxmin()
    moved = c.loc[earliest, "start"] - pd.Timedelta(weeks=60)
    c.loc[earliest, "start"] = moved  # now the earliest by far ...
    ds = dataclasses.replace(sample_ds, commitments=c)
    assert _panel_start(ds, tv) == reference(ds, tv) == weeks_before(moved, 52)
    later = c.drop(index=earliest).iloc[[0]].assign(commitment_id="C-NEW", supersedes=c.loc[earliest, "commitment_id"])
    ds = dataclasses.replace(sample_ds, commitments=pd.concat([c, later], ignore_index=True))
    assert _panel_start(ds, tv) == reference(ds, tv) > weeks_before(moved, 52)  # ... until superseded


def test_commitment_panels_are_rows_of_one_panel_a_view_builds_once(sample_ds):
    """Every commitment's history is a slice of one panel per metric (team.history_rows): the
    same numbers as a panel built for that start, whole weeks even from a mid-week start."""
    from coachnb.calendar import resolve_as_of, weeks_before
    from coachnb.store import metric_panel
    from coachnb.team import compute_team_view, metric_history, outcome_history, unobserved_as_missing

    tv = compute_team_view(sample_ds, resolve_as_of("2026-11-23", sample_ds), 13)
    start = weeks_before(tv.window.end, 40)  # a week's first day, after the data began
    direct = unobserved_as_missing(sample_ds, metric_panel(sample_ds, "calls_per_week", start, tv.window.end))
    shown = metric_history(tv, "calls_per_week", start)
    pd.testing.assert_frame_equal(shown, direct, check_freq=False)
    built = {k for k in tv.cache if k[0] == "metric_wide"}
    later = metric_history(tv, "calls_per_week", weeks_before(start, -3))
    pd.testing.assert_frame_equal(later, direct.iloc[3:], check_freq=False)
    assert {k for k in tv.cache if k[0] == "metric_wide"} == built  # sliced, not built again
    mid_week = metric_history(tv, "calls_per_week", start + pd.Timedelta(days=3))
    pd.testing.assert_frame_equal(mid_week, direct, check_freq=False)  # its first week whole, not 4 days of it
    assert outcome_history(tv, start).index.equals(direct.index)
