"""The team overview: one row per rep, cadence per manager, adjusted verdicts, links."""
from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from coachnb import display as show
from coachnb import overview_page as page
from coachnb.overview import cadence_sentence, team_overview

from .test_odd_data import shown_html

AS_OF = "2026-11-23"


@pytest.fixture(scope="module")
def overview(sample_ds):
    return team_overview(sample_ds, AS_OF)


def test_one_row_per_rep_with_days_since_last_1to1(overview, sample_ds):
    reps = overview.reps
    assert sorted(reps["rep_id"]) == sorted(sample_ds.reps["rep_id"])
    # rows with the most to look at come first (then the longest since a 1:1): never a ranking by results
    n_flags = reps["flags"].map(len).tolist()
    assert n_flags == sorted(n_flags, reverse=True) and n_flags[0] > n_flags[-1]
    for rec in reps.to_dict("records"):
        assert ("1:1 overdue" in rec["flags"]) == bool(rec["overdue"])
        assert (f"{rec['stalled_deals']:.0f} stalled deal" in ", ".join(rec["flags"])) == (rec["stalled_deals"] > 0)
    s = sample_ds.coaching_sessions
    as_of = pd.Timestamp(AS_OF, tz=sample_ds.config.timezone)
    for rep_id in ("R001", "R008"):
        last = s.loc[(s["rep_id"] == rep_id) & (s["held_on"] < as_of), "held_on"].max()
        row = reps.set_index("rep_id").loc[rep_id]
        assert row["days_since_1to1"] == (as_of - last).days
        assert row["overdue"] == ((as_of - last).days > sample_ds.config.thresholds.cadence_days)


def test_planted_overdue_reps_are_flagged(overview, sample_dir):
    truth = json.loads((sample_dir / "ground_truth.json").read_text())
    overdue = [r["rep_id"] for r in truth["reps"] if (r.get("special") or "").startswith("overdue")]
    assert overdue, "the demo team plants reps overdue for a 1:1"
    flagged = set(overview.reps.loc[overview.reps["overdue"], "rep_id"])
    assert set(overdue) <= flagged


def test_q_values_are_benjamini_hochberg_of_listed_p_values(overview):
    tested = overview.reps.dropna(subset=["p_value"])
    p = tested["p_value"].to_numpy()
    q = tested["q_value"].to_numpy()
    assert np.all(q >= p - 1e-12) and np.all(q <= 1)
    # BH by hand: q_(i) = min_{j>=i} p_(j) * m / j
    order = np.argsort(p)
    m = len(p)
    expected = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    assert np.allclose(np.sort(q), np.minimum(expected, 1)) or m == 0
    if m:
        assert "Benjamini" in overview.fdr_note


def test_managers_table_counts_reps_and_cadence(overview):
    m = overview.managers.set_index("manager")
    counts = overview.reps.groupby("manager").size()
    assert (m["reps"] == counts.reindex(m.index)).all()
    overdue = overview.reps.groupby("manager")["overdue"].sum()
    assert np.allclose(m["cadence_kept"], 1 - overdue.reindex(m.index) / counts.reindex(m.index))
    assert "overdue for a 1:1" in cadence_sentence(overview)


def test_links_come_from_the_manifest_and_are_escaped(sample_ds, tmp_path, monkeypatch):
    manifest = {"reports": [
        {"rep_id": "R001", "audience": "manager", "status": "ok", "html": "r001.abc.html"},
        {"rep_id": "R001", "audience": "rep", "status": "ok", "html": "r001.abc.rep.html"},
        {"rep_id": "R002", "audience": "manager", "status": "failed", "html": None, "error": "boom <b>"},
    ]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    ov = team_overview(sample_ds, AS_OF, manifest_path=path)
    links = ov.reps.set_index("rep_id")["report"]
    assert links["R001"] == "r001.abc.html"
    assert pd.isna(links["R002"]) and pd.isna(links["R003"])
    assert list(ov.failed["rep_id"]) == ["R002"]
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    page.overview_table(ov)
    page.overview_failed(ov)
    html = "".join(map(shown_html, shown))
    assert html.count("<a href=") + html.count("<a class=\"cnb-preread\" href=") == 2
    assert 'href="r001.abc.html"' in html and 'href="r001.abc.rep.html"' in html
    assert ov.reps.set_index("rep_id").at["R001", "preread"] == "r001.abc.rep.html"
    assert "boom &lt;b&gt;" in html


def test_activity_effects_per_team_carry_interval_and_assumptions(overview, sample_ds):
    e = overview.effects
    teams = sample_ds.reps.groupby("team").size()
    assert set(e["team"]) == set(teams[teams >= 5].index)
    assert (e["low_pct"] <= e["extra_pct"]).all() and (e["extra_pct"] <= e["high_pct"]).all()
    assert ((e["lead_p_value"] >= 0) & (e["lead_p_value"] <= 1)).all()
    assert "not proof of cause" in overview.effects_assumptions.lower()
    # the demo team creates deals from its own earlier activity: calls go with more new pipeline
    calls = e[e["metric"] == "calls per week"]
    assert (calls["extra_pct"] > 0).sum() >= 2


def test_each_reps_last_verdicts_are_shown_with_their_start_months(overview, monkeypatch):
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    page.overview_table(overview)
    table = shown[0]
    header, *lines = table["text/plain"].splitlines()
    assert "last verdicts (start month)" in header
    r010 = next(line for line in lines if line.startswith(overview.reps.set_index("rep_id").at["R010", "name"]))
    # the column before the pre-read link (no manifest here: a dash)
    assert r010.rstrip().removesuffix("–").rstrip().endswith(
        "not kept (Aug 2025), kept·can't tell (Jun 2026), not kept (Oct 2026)")
    assert "kept·can&#x27;t tell (Jun 2026)" in table["text/html"]
    # every rep with a reviewed commitment has the column filled; the rest show a dash
    column = [line.rstrip().removesuffix("–").rstrip().split("  ")[-1] for line in lines]
    assert overview.reps["recent_verdicts"].notna().sum() == sum("(" in c and "20" in c for c in column)


def test_a_managers_page_lists_only_their_reps_and_their_teams(sample_ds, monkeypatch):
    from coachnb.errors import CoachnbError

    everyone = team_overview(sample_ds, AS_OF)
    manager = str(sample_ds.reps["manager"].iloc[0])
    mine = team_overview(sample_ds, AS_OF, manager=manager)
    theirs = sample_ds.reps.loc[sample_ds.reps["manager"] == manager, "rep_id"]
    assert sorted(mine.reps["rep_id"]) == sorted(theirs) and len(mine.reps) < len(everyone.reps)
    assert list(mine.managers["manager"]) == [manager]
    assert set(mine.effects["team"]) <= set(sample_ds.reps.loc[sample_ds.reps["manager"] == manager, "team"])
    # the rows say what the company page says about the same reps
    same = everyone.reps.set_index("rep_id").loc[mine.reps["rep_id"], ["flags", "diagnosis", "stalled_deals"]]
    assert same.reset_index(drop=True).equals(mine.reps[["flags", "diagnosis", "stalled_deals"]])
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    page.overview_header(mine)
    assert f"{manager}'s reps" in shown[0]["text/plain"]
    with pytest.raises(CoachnbError, match="not in reps"):
        team_overview(sample_ds, AS_OF, manager="Nobody")


def test_a_batch_writes_a_page_per_manager_linked_from_the_index(sample_dir, sample_ds, tmp_path):
    import html
    import re

    from coachnb.batch import run_batch

    result = run_batch(sample_dir, AS_OF, out=tmp_path, reps=["R001", "R002"], jobs=1, timeout=300, progress=False)
    assert result.ok
    manifest = json.loads(result.manifest_path.read_text())
    pages = {p["manager"]: p for p in manifest["manager_pages"]}
    managers = set(sample_ds.reps["manager"])
    assert set(pages) == managers and all(p["status"] == "ok" for p in pages.values())
    reps = sample_ds.reps
    for manager, entry in pages.items():
        text = html.unescape(re.sub(r"<[^>]+>", " ", (result.report_dir / entry["html"]).read_text(encoding="utf-8")))
        assert f"{manager}'s reps" in text
        assert all(name in text for name in reps.loc[reps["manager"] == manager, "name"])
        assert not any(name in text for name in reps.loc[reps["manager"] != manager, "name"])
    index = (result.report_dir / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{quote(page["html"])}"' in index for page in pages.values())
    assert all(page["html"].endswith(f"— team overview {AS_OF}.html") for page in pages.values())


def test_the_flags_say_what_the_diagnosis_says(overview):
    for rec in overview.reps.to_dict("records"):
        said = ", ".join(rec["flags"])
        assert ("last commitment partly kept" in said) == (rec["diagnosis"] == "Partly kept")
        assert ("last commitment not kept" in said) == (rec["diagnosis"] == "Not kept")
        if isinstance(rec["weakest_step"], str):
            assert f"{rec['weakest_step']} below the team" in said


def test_a_one_rep_run_renders_only_that_reps_managers_page_again(sample_dir, sample_ds, tmp_path):
    from coachnb.batch import run_batch

    first = run_batch(sample_dir, AS_OF, out=tmp_path, reps=["R001", "R002"], jobs=1, timeout=300, progress=False)
    before = {p["manager"]: (first.report_dir / p["html"]).stat().st_mtime_ns
              for p in json.loads(first.manifest_path.read_text())["manager_pages"]}
    again = run_batch(sample_dir, AS_OF, out=tmp_path, reps=["R001"], jobs=1, timeout=300, progress=False)
    assert again.ok
    pages = json.loads(again.manifest_path.read_text())["manager_pages"]
    assert {p["manager"] for p in pages} == set(before)  # every manager's page is still listed and linked
    mine = sample_ds.reps.set_index("rep_id").at["R001", "manager"]
    after = {p["manager"]: (again.report_dir / p["html"]).stat().st_mtime_ns for p in pages}
    assert after[mine] != before[mine]
    assert all(after[m] == before[m] for m in before if m != mine)


def test_each_row_carries_the_reps_weekly_series_and_the_team_band_of_their_report(overview, sample_ds):
    from coachnb.report import activity_section, pipeline_section
    from coachnb.team import open_data

    _, _, tv = open_data(sample_ds, AS_OF, 13)
    for rep_id in ("R003", "R010"):
        row = overview.reps.set_index("rep_id").loc[rep_id]
        for key, section, column in (("activity_weekly", activity_section, "total"),
                                     ("pipeline_weekly", pipeline_section, "opportunities_created")):
            s = section(tv, rep_id)
            series = row[key]
            assert series["values"] == [float(v) for v in s.rep_weekly[column]]
            assert series["low"] == [float(v) for v in s.band["q25"]] and series["high"] == [float(v) for v in s.band["q75"]]
            assert series["weeks"] == [f"{w:%Y-%m-%d}" for w in s.rep_weekly["week"]]
        json.dumps(row["activity_weekly"], allow_nan=False)  # plain values, kept as JSON


def test_weeks_before_a_hire_are_missing_in_the_series_not_zeros(sample_ds):
    from types import SimpleNamespace

    from coachnb.overview import weekly_series

    weeks = pd.date_range("2026-08-24", periods=6, freq="W-MON")
    weekly = pd.DataFrame({"week": weeks, "total": [0, 0, 0, 4, 6, 5]})
    band = pd.DataFrame({"week": weeks, "q25": [3.0] * 6, "q75": [np.nan] * 2 + [7.0] * 4})
    reps = sample_ds.reps.copy()
    reps.loc[reps["rep_id"] == "R003", "hire_date"] = pd.Timestamp("2026-09-09", tz=reps["hire_date"].dt.tz)
    series = weekly_series(SimpleNamespace(ds=SimpleNamespace(reps=reps)), "R003", weekly, band, "total")
    # the weeks that ended before the hire date are unknown; the week of the hire is a real zero
    assert series["values"] == [None, None, 0.0, 4.0, 6.0, 5.0]
    assert series["high"] == [None, None, 7.0, 7.0, 7.0, 7.0]


def test_stored_rows_of_another_store_or_of_the_wrong_type_are_not_used(sample_dir, tmp_path):
    from coachnb.overview import ROWS_FILE, complete_overview, stored_overview
    from coachnb.store_build import build_store
    from coachnb.team import open_data

    store = build_store(coachnb_load(sample_dir), AS_OF, 13, tmp_path)
    computed = complete_overview(store, AS_OF, 13)
    ds, _, _ = open_data(store, AS_OF, 13)
    assert sorted(computed) == sorted(ds.reps["rep_id"].astype(str))
    rows, effects = stored_overview(ds)
    assert sorted(rows) == sorted(computed) and effects is not None and len(effects)
    assert complete_overview(store, AS_OF, 13) == []  # all kept: nothing computed again
    path = store / ROWS_FILE
    raw = json.loads(path.read_text())
    raw["rows"]["R001"]["p_value"] = "0.01"  # not a number
    raw["rows"]["R002"]["activity_weekly"]["values"][0] = "7"
    path.write_text(json.dumps(raw))
    rows, _ = stored_overview(ds)
    assert "R001" not in rows and "R002" not in rows and "R003" in rows
    assert complete_overview(store, AS_OF, 13) == ["R001", "R002"]  # the bad rows are computed again
    raw = json.loads(path.read_text())
    raw["key"] = "0" * 20  # rows of another store (other data, date, window or code)
    path.write_text(json.dumps(raw))
    assert stored_overview(ds) == ({}, None)



def test_stored_rows_are_read_once_per_file_content_and_store_key(sample_dir, tmp_path, monkeypatch):
    """A worker rendering many manager pages parses and checks the rows file once; a rewritten
    file, another store key or a caller's change to a row never gives a page stale rows."""
    from coachnb import overview
    from coachnb.store_build import build_store
    from coachnb.team import open_data

    store = build_store(coachnb_load(sample_dir), AS_OF, 13, tmp_path)
    overview.complete_overview(store, AS_OF, 13)
    ds, _, _ = open_data(store, AS_OF, 13)
    parsed = []
    real = overview._parse_stored_rows
    monkeypatch.setattr(overview, "_parse_stored_rows", lambda data, key: parsed.append(key) or real(data, key))
    monkeypatch.setattr(overview, "_STORED_ROWS", {})
    first, _ = overview.stored_overview(ds)
    first["R001"]["verdict"] = "changed by a caller"
    again, _ = overview.stored_overview(ds)
    assert len(parsed) == 1  # same bytes, same key: read once
    assert again["R001"]["verdict"] != "changed by a caller" and sorted(again) == sorted(first)
    path = store / overview.ROWS_FILE
    raw = json.loads(path.read_text())
    raw["rows"]["R003"]["verdict"] = "rewritten"
    path.write_text(json.dumps(raw))
    assert overview.stored_overview(ds)[0]["R003"]["verdict"] == "rewritten" and len(parsed) == 2
    monkeypatch.setattr(overview, "_store_key", lambda ds: "0" * 20)  # same file, another store's key
    assert overview.stored_overview(ds) == ({}, None) and len(parsed) == 3


def coachnb_load(folder):
    import coachnb

    return coachnb.load(folder)


def _index_row(index_html: str, name: str) -> str:
    import html

    rows = [r for r in index_html.split("<tr>") if html.escape(name) in r or name in r]
    assert len(rows) == 1, f"{name} should have one row in the index"
    return rows[0]


def _spark_figures(row_html: str) -> tuple[str, str, str]:
    import html
    import re

    label = html.unescape(re.search(r'aria-label="(activities per week[^"]*)"', row_html).group(1))
    return re.search(r"last \d+ weeks: (\S+) to (\S+), last week (\S+?)[;( ]", label).groups()


def test_rows_are_computed_once_per_run_reused_by_a_one_rep_run_and_never_shown_stale(
        sample_dir, sample_ds, tmp_path, monkeypatch):
    import re
    import shutil
    from collections import Counter

    from coachnb import overview
    from coachnb.batch import run_batch

    calls, fits = [], Counter()
    real = overview.rep_columns
    monkeypatch.setattr(overview, "rep_columns", lambda ds, tv, rep_id: calls.append(str(rep_id)) or real(ds, tv, rep_id))
    real_fit = overview.team_link_fit
    monkeypatch.setattr(overview, "team_link_fit",
                        lambda ds, team, metric, *a, **k: fits.update([(team, metric)]) or real_fit(ds, team, metric, *a, **k))
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    out = tmp_path / "out"
    first = run_batch(data, AS_OF, out=out, reps=["R001", "R002"], jobs=1, timeout=300, progress=False)
    assert first.ok
    # every rep's row once (two beside their reports, the rest once for the index and all three manager pages)
    assert sorted(calls) == sorted(sample_ds.reps["rep_id"].astype(str))
    # each team's activity model once (R001's and R002's beside their reports, the third team's after)
    teams = set(sample_ds.reps["team"].astype(str))
    assert {team for team, _ in fits} == teams and set(fits.values()) == {1}
    calls.clear()
    fits.clear()
    again = run_batch(data, AS_OF, out=out, reps=["R001"], jobs=1, timeout=300, progress=False)
    assert again.ok and calls == ["R001"]  # the other reps' rows are read, not computed
    assert not fits  # the team models kept with the store are read: no team is fitted again

    # new data for R001: 60 more calls in the last week of the period
    acts = pd.read_csv(data / "activities.csv", dtype=str)
    extra = pd.DataFrame({"activity_id": [f"AX{i:05d}" for i in range(60)], "rep_id": "R001",
                          "occurred_at": "2026-11-18 10:00:00", "type": "call", "opportunity_id": "",
                          "logged_at": "2026-11-18 10:05:00"})
    pd.concat([acts, extra]).to_csv(data / "activities.csv", index=False)
    calls.clear()
    before = _spark_figures(_index_row((again.report_dir / "index.html").read_text(encoding="utf-8"),
                                       sample_ds.reps.set_index("rep_id").at["R001", "name"]))
    third = run_batch(data, AS_OF, out=out, reps=["R001"], jobs=1, timeout=300, progress=False)
    assert third.ok
    assert sorted(calls) == sorted(sample_ds.reps["rep_id"].astype(str))  # another store: no old row is kept
    entry = next(e for e in json.loads(third.manifest_path.read_text())["reports"] if e["rep_id"] == "R001")
    report = (third.report_dir / entry["html"]).read_text(encoding="utf-8")
    said = re.search(r"Line chart of activities per week, [^:]*: yours ran from (\S+) to (\S+), .*? (\S+) in the last week",
                     report).groups()
    name = sample_ds.reps.set_index("rep_id").at["R001", "name"]
    shown = _spark_figures(_index_row((third.report_dir / "index.html").read_text(encoding="utf-8"), name))
    assert shown == said and shown != before  # the index says what the new report says
    assert float(shown[2].replace(",", "")) == float(before[2].replace(",", "")) + 60


def test_links_keep_the_managers_folder_and_never_leave_the_report_folder(sample_ds, tmp_path, monkeypatch):
    manifest = {"reports": [
        {"rep_id": "R001", "audience": "manager", "status": "ok",
         "html": 'Maya Chen/Zoë "Z" Ångström — coaching report 2026-11-23.html'},
        {"rep_id": "R001", "audience": "rep", "status": "ok",
         "html": "Maya Chen/pre-reads to send/Zoë — pre-read 2026-11-23.html"},
        {"rep_id": "R002", "audience": "manager", "status": "ok", "html": "../elsewhere/r002.html"},
        {"rep_id": "R003", "audience": "manager", "status": "ok", "html": "/etc/r003.html"},
    ]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    ov = team_overview(sample_ds, AS_OF, manifest_path=path)
    links = ov.reps.set_index("rep_id")
    assert links.at["R001", "report"] == 'Maya Chen/Zoë "Z" Ångström — coaching report 2026-11-23.html'
    assert links.at["R001", "preread"] == "Maya Chen/pre-reads to send/Zoë — pre-read 2026-11-23.html"
    assert pd.isna(links.at["R002", "report"]) and pd.isna(links.at["R003", "report"])
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    page.overview_table(ov)
    html = "".join(map(shown_html, shown))
    # the folder's slash kept, everything else of the path quoted: one link that works, no broken attribute
    assert 'href="Maya%20Chen/Zo%C3%AB%20%22Z%22%20%C3%85ngstr%C3%B6m%20%E2%80%94%20coaching%20report%202026-11-23.html"' in html
    assert 'href="Maya%20Chen/pre-reads%20to%20send/' in html
    assert "elsewhere" not in html and "/etc/" not in html


def test_the_table_never_says_the_activity_did_not_change():
    # the test behind that verdict can only fail to confirm a change; the table says so
    assert page.verdict_words("activity did not change", None) == "not judged: the change in activity isn't confirmed"
    assert page.verdict_words("moved", 0.01) == "moved (unlikely to be chance)"
    assert page.verdict_words("no meaningful change", 0.4) == "no meaningful change (could be chance)"
