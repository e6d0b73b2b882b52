"""coachnb import: shipped mappings on realistic exports, quirks, source-named errors, --infer, CLI."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from coachnb import importers
from coachnb.errors import CoachnbError, ConfigError, DataError

loading = pytest.importorskip("coachnb.loading")

FIXTURES = Path(__file__).parent / "fixtures" / "crm"
REPO = Path(__file__).parent.parent


def _import(name: str, out: Path, mapping=None):
    return importers.run_import(mapping or name, [FIXTURES / name], out)


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _mapping_text(name: str, **replace) -> str:
    text = importers.shipped_mappings()[name].read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


# ---------------------------------------------------------------- shipped mappings


def test_shipped_mappings_are_listed():
    assert set(importers.shipped_mappings()) >= {"salesforce", "hubspot", "generic"}


@pytest.mark.parametrize("name", ["salesforce", "hubspot", "generic"])
def test_shipped_mapping_imports_its_fixture_and_the_folder_loads(tmp_path, name):
    result = _import(name, tmp_path / "data")
    ds = loading.load(tmp_path / "data")
    assert len(ds.opportunities) == len(result.tables["opportunities"]) > 0
    assert set(ds.opportunities["rep_id"]) <= set(ds.reps["rep_id"])
    stages = tomllib.loads((tmp_path / "data" / "process.toml").read_text())["process"]["stages"]
    assert list(ds.config.stages) == stages
    assert set(ds.stage_history["stage"]) <= set(stages)


def test_generic_export_quirks(tmp_path):
    """BOM, CRLF, ';', day-first dates, '€1.234,50', owner names -> slug ids, pipeline-only output."""
    result = _import("generic", tmp_path / "data")
    out = tmp_path / "data"
    assert sorted(p.name for p in out.iterdir()) == ["opportunities.csv", "process.toml", "reps.csv"]
    opps = _csv(out / "opportunities.csv").set_index("name")
    assert opps.loc["Umbrella - phase 2", "amount"] == "1234.5"
    assert opps.loc["Globex - renewal", "amount"] == "12500.5"
    assert opps.loc["Umbrella - phase 2", "created_at"].startswith("2026-03-20")
    assert opps.loc["Acme - 50 seats", "status"] == "won"
    assert opps.loc["Acme - 50 seats", "closed_at"].startswith("2026-04-20")
    assert opps.loc["Globex - renewal", "status"] == "lost"
    assert opps.loc["Initech - pilot", ["status", "closed_at"]].tolist() == ["open", ""]
    reps = _csv(out / "reps.csv").set_index("rep_id")
    assert reps.loc["jose-nunez", "name"] == "José Núñez"
    assert set(reps["team"]) == set(reps["manager"]) == {"Unassigned"}
    # the first day an owner shows up stands in for the hire date
    assert reps.loc["jose-nunez", "hire_date"] == "2026-04-06"
    # the deal without an owner is left out, and said so with its source location
    assert [(p.file, p.row, p.column) for p in result.excluded] == [("deals_export.csv", 7, "Deal Owner")]
    assert "Inbound - Pied Piper" not in opps.index
    ds = loading.load(out)
    assert ds.present == frozenset({"reps", "opportunities"})
    assert loading.validate(out).sections_supported["pipeline"]
    assert not loading.validate(out).sections_supported["activity_volume"]


def test_generated_ids_are_stable_across_imports(tmp_path):
    _import("generic", tmp_path / "a")
    _import("generic", tmp_path / "b")
    a, b = _csv(tmp_path / "a" / "opportunities.csv"), _csv(tmp_path / "b" / "opportunities.csv")
    assert a["opportunity_id"].tolist() == b["opportunity_id"].tolist()
    assert a["opportunity_id"].is_unique


def test_salesforce_history_status_and_activities(tmp_path):
    result = _import("salesforce", tmp_path / "data")
    out = tmp_path / "data"
    hist = _csv(out / "stage_history.csv")
    acme = hist[hist["opportunity_id"] == "0065g00000Opp0001AAA"]
    # the save that only changed the amount is not a second Qualification entry; Closed Won is a status
    assert acme["stage"].tolist() == ["Prospecting", "Qualification", "Proposal/Price Quote"]
    opps = _csv(out / "opportunities.csv").set_index("opportunity_id")
    assert opps.loc["0065g00000Opp0001AAA", ["status", "closed_at"]].tolist() == ["won", "2026-04-20 00:00:00"]
    # no Amount: unknown, not 0 (empty where the data contract allows it, else 0 and a warning saying so)
    unknown = "" if importers.TABLES["opportunities"].column("amount").nullable else "0"
    assert opps.loc["0065g00000Opp0004AAA", ["amount", "name"]].tolist() == [unknown, 'Umbrella - "Phase 2"']
    assert any(p.rule == "unknown_amount" and p.column == "Amount" for p in result.warnings)
    # CreatedDate ...Z is UTC; the mapping's zone is UTC, so the wall-clock time is unchanged
    assert opps.loc["0065g00000Opp0002AAA", "created_at"] == "2026-02-10 14:30:00"
    acts = _csv(out / "activities.csv").set_index("activity_id")
    assert acts.loc["00U5g00000Evt0001AAA", "type"] == "demo"
    assert acts.loc["00U5g00000Evt0002AAA", "type"] == "meeting"  # no Type on the event: mapping default
    assert acts.loc["00T5g00000Tsk0004AAA", "type"] == "other"  # LinkedIn
    assert acts.loc["00T5g00000Tsk0006AAA", "occurred_at"] == "2026-04-03 15:20:00"  # no ActivityDate
    assert acts.loc["00T5g00000Tsk0002AAA", "opportunity_id"] == ""  # WhatId was an account
    assert acts.loc["00U5g00000Evt0000AAA", "logged_at"] == ""  # booked before it happened
    assert {p.rule for p in result.warnings} >= {"unlinked_activity", "scheduled_activity"}
    reps = _csv(out / "reps.csv").set_index("rep_id")
    assert reps.loc["0055g00000CCCCCCC3", ["name", "team", "hire_date"]].tolist() == ["Li Wei", "Unassigned", "2025-01-13"]


def test_salesforce_timezone_converts_utc_times(tmp_path):
    mapping = tmp_path / "sf.toml"
    mapping.write_text(_mapping_text("salesforce", **{'timezone = "UTC"': 'timezone = "Europe/Berlin"'}))
    importers.run_import(mapping, [FIXTURES / "salesforce"], tmp_path / "data")
    opps = _csv(tmp_path / "data" / "opportunities.csv").set_index("opportunity_id")
    assert opps.loc["0065g00000Opp0002AAA", "created_at"] == "2026-02-10 15:30:00"


def test_hubspot_stage_entry_columns_engagements_and_unassigned_deals(tmp_path):
    result = _import("hubspot", tmp_path / "data")
    out = tmp_path / "data"
    hist = _csv(out / "stage_history.csv")
    assert hist[hist["opportunity_id"] == "9003"]["stage"].tolist() == [
        "appointmentscheduled", "qualifiedtobuy", "presentationscheduled"]
    opps = _csv(out / "opportunities.csv").set_index("opportunity_id")
    assert "9006" not in opps.index  # no hubspot_owner_id
    assert opps.loc["9002", ["status", "closed_at", "amount"]].tolist() == ["lost", "2026-04-02 09:00:00", "12500.5"]
    acts = _csv(out / "activities.csv").set_index("activity_id")
    assert "E4" not in acts.index  # NOTE -> skip
    assert acts.loc["E1", "occurred_at"] == "2026-02-03 10:05:00"  # hs_timestamp in epoch milliseconds
    assert acts.loc["E7", "type"] == "email"  # INCOMING_EMAIL
    assert acts.loc["E9", "opportunity_id"] == ""  # its deal was excluded
    excluded = {(p.file, p.row, p.column, p.rule) for p in result.excluded}
    assert excluded == {("deals.csv", 7, "hubspot_owner_id", "empty_owner"),
                        ("engagements.csv", 5, "hs_engagement_type", "skipped_activity_type")}
    assert "deals.csv, row 7, column 'hubspot_owner_id'" in result.format()


def test_hubspot_closed_at_falls_back_to_won_stage_entry(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    deals = _csv(FIXTURES / "hubspot" / "deals.csv")
    deals.loc[deals["hs_object_id"] == "9001", "closedate"] = ""
    deals.to_csv(src / "deals.csv", index=False)
    importers.run_import("hubspot", [src], tmp_path / "data")
    opps = _csv(tmp_path / "data" / "opportunities.csv").set_index("opportunity_id")
    assert opps.loc["9001", "closed_at"] == "2026-04-20 09:00:00"
    assert not (tmp_path / "data" / "activities.csv").exists()  # engagements not given: no table


# ---------------------------------------------------------------- errors name the source


def test_empty_owner_error_names_source_file_row_and_column(tmp_path):
    mapping = tmp_path / "strict.toml"
    mapping.write_text(_mapping_text("generic", **{'missing_owner = "exclude"': 'missing_owner = "error"'}))
    with pytest.raises(DataError) as exc:
        importers.run_import(mapping, [FIXTURES / "generic"], tmp_path / "data")
    (problem,) = exc.value.problems
    assert (problem.file, problem.row, problem.column, problem.rule) == ("deals_export.csv", 7, "Deal Owner",
                                                                          "empty_owner")
    assert "deals_export.csv, row 7, column 'Deal Owner': empty owner" in str(exc.value)
    assert not (tmp_path / "data").exists()


def test_unknown_stage_and_bad_date_are_all_reported_with_source_names(tmp_path):
    src = tmp_path / "deals_export.csv"
    text = (FIXTURES / "generic" / "deals_export.csv").read_text(encoding="utf-8-sig")
    src.write_text(text.replace(";Proposal;", ";Proposal Sent;").replace("25/02/2026", "2026-02-31"),
                   encoding="utf-8")
    with pytest.raises(DataError) as exc:
        importers.run_import("generic", [src], tmp_path / "data")
    found = {(p.file, p.row, p.column, p.rule, p.value) for p in exc.value.problems}
    assert found == {("deals_export.csv", 4, "Stage", "unknown_stage", "Proposal Sent"),
                     ("deals_export.csv", 6, "Created", "unparseable_date", "2026-02-31")}


def test_unparseable_amount_names_column(tmp_path):
    src = tmp_path / "deals_export.csv"
    text = (FIXTURES / "generic" / "deals_export.csv").read_text(encoding="utf-8-sig")
    src.write_text(text.replace("€9.900,00", "tbd"), encoding="utf-8")
    with pytest.raises(DataError) as exc:
        importers.run_import("generic", [src], tmp_path / "data")
    assert [(p.row, p.column, p.value) for p in exc.value.problems] == [(4, "Value", "tbd")]


def test_missing_source_file_and_column_are_named(tmp_path):
    with pytest.raises(DataError, match="no source file matches 'Opportunity.csv'"):
        importers.convert("salesforce", [FIXTURES / "hubspot"])
    mapping = tmp_path / "m.toml"
    mapping.write_text(_mapping_text("generic", **{'amount = "Value"': 'amount = "Deal Value"'}))
    with pytest.raises(DataError) as exc:
        importers.convert(mapping, [FIXTURES / "generic"])
    (p,) = exc.value.problems
    assert (p.file, p.column, p.rule) == ("deals_export.csv", "Deal Value", "missing_column")
    assert "'Value'" in p.hint  # lists the file's real columns


@pytest.mark.parametrize("edit, message", [
    ({'"Won" = "won"': '"Won" = "Closed"'}, "not one of \\[process\\] stages"),
    ({"[mapping]": "[mapings]\n[mapping]"}, "unknown section"),
    ({'missing_owner = "exclude"': 'missing_owner = "ignore"'}, "missing_owner must be"),
    ({'owner_name = "Deal Owner"': 'owner = "Deal Owner"'}, "unknown column"),
])
def test_mapping_mistakes_are_config_errors(tmp_path, edit, message):
    mapping = tmp_path / "m.toml"
    mapping.write_text(_mapping_text("generic", **edit))
    with pytest.raises(ConfigError, match=message):
        importers.convert(mapping, [FIXTURES / "generic"])


def test_failed_import_leaves_existing_folder_untouched(tmp_path):
    out = tmp_path / "data"
    _import("generic", out)
    before = (out / "opportunities.csv").read_bytes()
    src = tmp_path / "deals_export.csv"
    src.write_text((FIXTURES / "generic" / "deals_export.csv").read_text(encoding="utf-8-sig")
                   .replace("€9.900,00", "tbd"), encoding="utf-8")
    with pytest.raises(DataError):
        importers.run_import("generic", [src], out)
    assert (out / "opportunities.csv").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging folder cleaned up


def test_reimport_keeps_user_tables_and_process_settings_drops_stale_tables(tmp_path):
    out = tmp_path / "data"
    _import("hubspot", out)
    (out / "process.toml").write_text((out / "process.toml").read_text() + "\n[thresholds]\nlate_logging_days = 3\n")
    result = _import("generic", out)
    assert not (out / "activities.csv").exists() and not (out / "stage_history.csv").exists()
    assert "stale_table_removed" in {p.rule for p in result.warnings}
    config = tomllib.loads((out / "process.toml").read_text())
    assert config["thresholds"] == {"late_logging_days": 3}
    assert config["process"]["stages"][0] == "Lead"
    loading.load(out)


# ---------------------------------------------------------------- value parsing


@pytest.mark.parametrize("text, decimal, thousands, expected", [
    ("€1.234,50", ",", ".", 1234.5),
    ("$12,500.00", ".", ",", 12500.0),
    ("1 234", ".", ",", 1234.0),
    ("CHF 1'234.50", ".", ",", 1234.5),
    ("(500)", ".", ",", -500.0),
    ("12.500 EUR", ",", ".", 12500.0),
])
def test_parse_numbers(text, decimal, thousands, expected):
    assert importers.parse_numbers(pd.Series([text]), decimal, thousands)[0] == expected


def test_parse_numbers_rejects_text_and_keeps_empty_missing():
    parsed = importers.parse_numbers(pd.Series(["tbd", ""]))
    assert parsed.isna().all()


def test_parse_dates_formats_and_zones():
    values = pd.Series(["2026-03-04T09:15:00.000Z", "2026-03-04", "1772615700000", "31/03/2026", ""])
    parsed = importers.parse_dates(values, ["iso", "epoch_ms", "%d/%m/%Y"], "Europe/Berlin")
    assert parsed.tolist()[:4] == [pd.Timestamp("2026-03-04 10:15"), pd.Timestamp("2026-03-04"),
                                   pd.Timestamp("2026-03-04 10:15"), pd.Timestamp("2026-03-31")]
    assert pd.isna(parsed[4])
    assert importers.parse_dates(pd.Series(["31/03/2026"]), ["%m/%d/%Y"]).isna().all()


@pytest.mark.parametrize("values, formats, sure", [
    (["03/04/2026", "25/04/2026"], ["%d/%m/%Y"], True),
    (["03/04/2026", "04/25/2026 14:05"], ["%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"], True),
    (["03.04.2026", "01.02.2026"], ["%d.%m.%Y"], False),
    (["2026-04-03T10:00:00Z"], ["iso"], True),
])
def test_detect_date_formats(values, formats, sure):
    found, note = importers.detect_date_formats(pd.Series(values))
    assert found == formats
    assert ("CHECK" not in note) == sure


def test_slug():
    assert importers.slug("José  Núñez") == "jose-nunez"
    assert importers.slug("王伟").startswith("rep-") and importers.slug("王伟") != importers.slug("李娜")


# ---------------------------------------------------------------- --infer


def test_infer_round_trip_on_generic_export(tmp_path):
    text = importers.infer_mapping([FIXTURES / "generic" / "deals_export.csv"])
    raw = tomllib.loads(text)
    assert raw["formats"] == {"dates": ["%d/%m/%Y"], "decimal": ",", "thousands": "."}
    assert raw["opportunities"]["columns"]["owner_name"] == "Deal Owner"
    assert raw["stages"]["Won"] == "won" and raw["stages"]["Lost"] == "lost"
    assert sorted(raw["process"]["stages"]) == ["Lead", "Negotiation", "Proposal", "Qualified"]
    assert raw["mapping"]["missing_owner"] == "exclude"  # the file has a deal without owner
    mapping = tmp_path / "inferred.toml"
    mapping.write_text(text)
    importers.run_import(mapping, [FIXTURES / "generic"], tmp_path / "data")
    inferred = _csv(tmp_path / "data" / "opportunities.csv")
    _import("generic", tmp_path / "shipped")
    shipped = _csv(tmp_path / "shipped" / "opportunities.csv")
    pd.testing.assert_frame_equal(inferred, shipped)
    loading.load(tmp_path / "data")


def test_infer_recognises_hubspot_and_orders_stages_by_entry_columns(tmp_path):
    raw = tomllib.loads(importers.infer_mapping([FIXTURES / "hubspot"]))
    assert raw["opportunities"]["columns"]["rep_id"] == "hubspot_owner_id"
    assert raw["process"]["stages"] == tomllib.loads(
        importers.shipped_mappings()["hubspot"].read_text())["process"]["stages"]
    assert raw["activities"][0]["columns"]["occurred_at"][0] == "hs_timestamp"
    assert raw["activity_types"]["CALL"] == "call" and raw["activity_types"]["NOTE"] == "skip"
    mapping = tmp_path / "inferred.toml"
    mapping.write_text(importers.infer_mapping([FIXTURES / "hubspot"]))
    importers.run_import(mapping, [FIXTURES / "hubspot"], tmp_path / "data")
    assert len(loading.load(tmp_path / "data").activities) == 8


def test_infer_recognises_salesforce_files():
    raw = tomllib.loads(importers.infer_mapping([FIXTURES / "salesforce"]))
    assert raw["reps"]["file"] == "User.csv"
    assert raw["opportunities"]["columns"]["rep_id"] == "OwnerId"
    assert raw["stage_history"][0]["file"] == "OpportunityHistory.csv"
    assert raw["process"]["stages"][0] == "Prospecting"
    assert {a["file"] for a in raw["activities"]} == {"Task.csv", "Event.csv"}


def test_infer_without_a_deals_file_says_so(tmp_path):
    with pytest.raises(CoachnbError, match="no deals file"):
        importers.infer_mapping([FIXTURES / "salesforce" / "User.csv"])


# ---------------------------------------------------------------- CLI


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "coachnb", "import", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_import_and_infer(tmp_path):
    ok = _cli(FIXTURES / "generic" / "deals_export.csv", "--mapping", "generic", "--out", tmp_path / "data")
    assert ok.returncode == 0, ok.stderr
    assert "imported into" in ok.stdout and "row 7, column 'Deal Owner'" in ok.stderr
    infer = _cli("--infer", FIXTURES / "generic" / "deals_export.csv")
    assert infer.returncode == 0 and tomllib.loads(infer.stdout)["opportunities"]


def test_cli_errors_exit_2(tmp_path):
    missing = _cli(FIXTURES / "generic", "--mapping", tmp_path / "nope.toml", "--out", tmp_path / "data")
    assert missing.returncode == 2 and "nope.toml" in missing.stderr and "not found" in missing.stderr
    no_out = _cli(FIXTURES / "generic", "--mapping", "generic")
    assert no_out.returncode == 2 and "--out" in no_out.stderr
    wrong = _cli(FIXTURES / "hubspot", "--mapping", "salesforce", "--out", tmp_path / "data")
    assert wrong.returncode == 2 and "Opportunity.csv" in wrong.stderr


def test_example_mapping_in_docs_is_valid():
    import re

    text = (REPO / "docs" / "importing.md").read_text(encoding="utf-8")
    block = re.search(r"## The mapping file\n\n```toml\n(.*?)```", text, re.S).group(1)
    importers.load_mapping(tomllib.loads(block))
