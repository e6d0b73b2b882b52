"""The loader and validator: every rule names file, row (header = row 1), column and rule."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coachnb import DataError
from coachnb.errors import ConfigError
from coachnb.loading import clean_number, contract_markdown, load, parse_datetimes, validate
from coachnb.schema import TABLES

sys.path.insert(0, str(Path(__file__).parent))
from datafolders import PROCESS_TOML, clean_tables, write_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def problems_of(path, rule):
    return [p for p in validate(path).problems if p.rule == rule]


def only(path, rule):
    found = problems_of(path, rule)
    assert len(found) == 1, [p.format() for p in validate(path).problems]
    return found[0]


# --------------------------------------------------------------------------- clean data


def test_clean_folder_loads_with_schema_dtypes_and_no_warnings(tmp_path):
    ds = load(write_folder(tmp_path))
    assert ds.warnings == []
    assert len(ds.excluded) == 0
    assert ds.present == frozenset(TABLES)
    for name, table in TABLES.items():
        frame = ds.table(name)
        assert list(frame.columns) == table.column_names
        for col in table.columns:
            dtype = frame[col.name].dtype
            if col.kind in ("datetime", "date"):
                assert str(dtype) == "datetime64[ns, Europe/Berlin]", (name, col.name)
            elif col.kind == "float":
                assert dtype == np.float64, (name, col.name)
            else:
                assert dtype == "string", (name, col.name)
    assert ds.reps["rep_id"].tolist()[0] == "00123"  # leading zeros kept
    assert ds.opportunities["amount"].tolist() == [48000.0, 12000.5, 0.0]
    assert pd.isna(ds.reps["quota_per_quarter"].iloc[2])
    assert pd.isna(ds.reps["region"].iloc[2])
    # "Phone Call" mapped through [activity_types]
    assert ds.activities["type"].tolist() == ["call", "call", "email", "demo"]


def test_naive_times_are_local_and_offsets_are_converted(tmp_path):
    tables = clean_tables()
    tables["activities"][0]["occurred_at"] = "2026-05-04 10:30"  # Berlin summer time = UTC+2
    tables["activities"][1]["occurred_at"] = "2026-05-05T07:00:00Z"
    tables["activities"][1]["logged_at"] = "2026-05-05T09:30:00+02:00"
    ds = load(write_folder(tmp_path, tables))
    occurred = ds.activities["occurred_at"]
    assert occurred.iloc[0].tz_convert("UTC") == pd.Timestamp("2026-05-04 08:30", tz="UTC")
    assert occurred.iloc[1] == pd.Timestamp("2026-05-05 09:00", tz="Europe/Berlin")
    assert ds.activities["logged_at"].iloc[1] == pd.Timestamp("2026-05-05 09:30", tz="Europe/Berlin")
    # date columns are local midnight
    assert ds.reps["hire_date"].iloc[0] == pd.Timestamp("2024-03-04 00:00", tz="Europe/Berlin")


def test_timezone_defaults_to_utc_without_process_toml(tmp_path):
    # "Phone Call" is not mapped without process.toml
    assert only(write_folder(tmp_path / "a", process_toml=None), "unknown_activity_type").row == 3
    tables = clean_tables()
    tables["activities"][1]["type"] = "call"
    ds = load(write_folder(tmp_path / "b", tables, process_toml=None))
    assert str(ds.activities["occurred_at"].dt.tz) == "UTC"
    assert ds.activities["occurred_at"].iloc[0] == pd.Timestamp("2026-05-04 10:30", tz="UTC")


def test_optional_tables_absent_become_empty_frames_with_a_warning(tmp_path):
    tables = clean_tables()
    for name in ("activities", "stage_history", "commitments", "coaching_sessions", "self_assessments"):
        del tables[name]
    path = write_folder(tmp_path, tables)
    ds = load(path)
    assert ds.present == frozenset({"reps", "opportunities"})
    assert len(ds.activities) == 0 and list(ds.activities.columns) == TABLES["activities"].column_names
    assert str(ds.activities["occurred_at"].dtype) == "datetime64[ns, Europe/Berlin]"
    missing = {p.file: p for p in ds.warnings if p.rule == "missing_file"}
    assert set(missing) == {"activities.csv", "stage_history.csv", "commitments.csv", "coaching_sessions.csv",
                            "self_assessments.csv"}
    assert "activity_volume" in missing["activities.csv"].message
    assert "since_last_time" in missing["commitments.csv"].message
    report = validate(path)
    assert report.ok
    assert report.sections_supported["pipeline"]
    assert not report.sections_supported["activity_volume"]
    assert report.sections_supported["activity_volume"].reason == "needs activities.csv"
    assert not report.sections_supported["stage_velocity"]
    assert not report.sections_supported["since_last_time"]
    assert "Report sections not supported" in report.format()


def test_other_files_and_extra_columns_are_ignored(tmp_path):
    tables = clean_tables()
    for row in tables["reps"]:
        row["favourite_colour"] = "blue"
    path = write_folder(tmp_path, tables)
    (path / "ground_truth.json").write_text("{not even json")
    ds = load(path)
    assert "favourite_colour" not in ds.reps.columns
    (warning,) = [p for p in ds.warnings if p.rule == "unknown_columns"]
    assert warning.file == "reps.csv" and "favourite_colour" in warning.value


def test_optional_column_absent_is_added_empty(tmp_path):
    tables = clean_tables()
    for row in tables["activities"]:
        del row["logged_at"]
    ds = load(write_folder(tmp_path, tables))
    assert ds.activities["logged_at"].isna().all()
    assert str(ds.activities["logged_at"].dtype) == "datetime64[ns, Europe/Berlin]"
    assert not validate(tmp_path).sections_supported["logging_timeliness"]


# --------------------------------------------------------------------------- file-level rules


def test_missing_required_file_is_an_error(tmp_path):
    tables = clean_tables()
    del tables["reps"]
    path = write_folder(tmp_path, tables)
    p = only(path, "missing_file")
    assert (p.file, p.severity) == ("reps.csv", "error")
    with pytest.raises(DataError) as info:
        load(path)
    assert "reps.csv" in str(info.value)


def test_csv_and_parquet_for_one_table_is_an_error_naming_both(tmp_path):
    path = write_folder(tmp_path)
    write_folder(tmp_path, {"reps": clean_tables()["reps"]}, parquet=("reps",))
    p = only(path, "duplicate_file")
    assert "reps.csv" in p.message and "reps.parquet" in p.message


def test_empty_file_and_header_only(tmp_path):
    path = write_folder(tmp_path)
    (path / "activities.csv").write_bytes(b"")
    (path / "reps.csv").write_text(",".join(TABLES["reps"].column_names) + "\n")
    assert only(path, "empty_file").file == "activities.csv"
    assert only(path, "no_rows").file == "reps.csv"


def test_header_only_optional_file_is_fine_but_sections_are_not_supported(tmp_path):
    path = write_folder(tmp_path)
    (path / "commitments.csv").write_text(",".join(TABLES["commitments"].column_names) + "\n")
    report = validate(path)
    assert report.ok
    assert report.sections_supported["since_last_time"].reason == "commitments has no rows"


def test_missing_required_column(tmp_path):
    tables = clean_tables()
    for row in tables["opportunities"]:
        del row["amount"]
    p = only(write_folder(tmp_path, tables), "missing_column")
    assert (p.file, p.row, p.column) == ("opportunities.csv", 1, "amount")
    assert "opportunity_id" in p.hint  # lists what the header has


def test_garbled_csv_rows_are_named_with_their_row(tmp_path):
    path = write_folder(tmp_path)
    text = (path / "activities.csv").read_text().splitlines()
    text[2] = text[2][:15]  # row 3 truncated mid-line
    (path / "activities.csv").write_text("\n".join(text) + '\nA9,R007,"2026-05-09\n')  # row 6: unclosed quote
    found = problems_of(path, "wrong_field_count")
    assert [(p.file, p.row) for p in found] == [("activities.csv", 3), ("activities.csv", 6)]
    # other rules keep the user's row numbers after the bad row is skipped
    lines = (path / "activities.csv").read_text().splitlines()
    lines[4] = lines[4].replace("R008", "R404")  # row 5
    (path / "activities.csv").write_text("\n".join(lines) + "\n")
    assert only(path, "unknown_reference").row == 5


def test_latin1_file_is_read_with_an_encoding_warning(tmp_path):
    tables = clean_tables()
    tables["reps"][1]["name"] = "Björn Müller"
    path = write_folder(tmp_path, tables)
    (path / "reps.csv").write_bytes((path / "reps.csv").read_text(encoding="utf-8").encode("latin-1"))
    ds = load(path)
    assert ds.reps["name"].iloc[1] == "Björn Müller"
    (w,) = [p for p in ds.warnings if p.rule == "encoding"]
    assert (w.file, w.row) == ("reps.csv", 3)


@pytest.mark.parametrize("sep,line_end,encoding", [(";", "\r\n", "utf-8-sig"), ("\t", "\n", "utf-8"),
                                                   (",", "\r\n", "utf-16")])
def test_bom_delimiters_and_windows_line_ends(tmp_path, sep, line_end, encoding):
    tables = clean_tables()
    tables["opportunities"][0]["account"] = "Acme; Berlin, Germany"  # quoted: holds both delimiters
    ds = load(write_folder(tmp_path, tables, sep=sep, line_end=line_end, encoding=encoding))
    assert ds.reps["rep_id"].tolist() == ["00123", "R007", "R008"]
    assert ds.opportunities["account"].iloc[0] == "Acme; Berlin, Germany"
    assert ds.opportunities["closed_at"].iloc[2] == pd.Timestamp("2026-05-01", tz="Europe/Berlin")
    assert ds.warnings == []


def test_parquet_input_with_typed_columns(tmp_path):
    path = write_folder(tmp_path, parquet=("activities",))
    (path / "opportunities.csv").unlink()
    opps = pd.DataFrame(clean_tables()["opportunities"])
    opps["amount"] = opps["amount"].astype(float)
    opps["created_at"] = pd.to_datetime(opps["created_at"])  # naive -> local time
    opps["closed_at"] = pd.to_datetime(opps["closed_at"]).dt.tz_localize("UTC")
    opps.to_parquet(path / "opportunities.parquet")
    ds = load(path)
    assert ds.opportunities["amount"].tolist() == [48000.0, 12000.5, 0.0]
    assert ds.opportunities["created_at"].iloc[0] == pd.Timestamp("2026-04-28", tz="Europe/Berlin")
    assert ds.opportunities["closed_at"].iloc[1] == pd.Timestamp("2026-06-15 02:00", tz="Europe/Berlin")
    assert ds.activities["rep_id"].tolist()[0] == "00123"


# --------------------------------------------------------------------------- value rules


def break_one(tmp_path, table, index, column, value):
    tables = clean_tables()
    tables[table][index][column] = value
    return write_folder(tmp_path, tables)


@pytest.mark.parametrize("table,index,column,value,rule", [
    ("activities", 2, "occurred_at", "yesterday", "unparseable_date"),
    ("opportunities", 1, "amount", "twelve", "unparseable_number"),
    ("opportunities", 0, "amount", "-5", "negative_amount"),
    ("opportunities", 0, "amount", "inf", "not_finite"),
    ("opportunities", 2, "amount", "NaN", "not_finite"),
    ("reps", 1, "rep_id", "00123", "duplicate_id"),
    ("reps", 2, "name", "", "missing_value"),
    ("opportunities", 1, "rep_id", "R999", "unknown_reference"),
    ("activities", 3, "opportunity_id", "O404", "unknown_reference"),
    ("stage_history", 4, "opportunity_id", "O404", "unknown_reference"),
    ("commitments", 1, "supersedes", "K0", "unknown_reference"),
    ("coaching_sessions", 1, "rep_id", "R1", "unknown_reference"),
    ("activities", 1, "type", "Task", "unknown_activity_type"),
    ("opportunities", 2, "closed_at", "2026-01-01", "closed_before_created"),
    ("opportunities", 1, "closed_at", "", "closed_without_date"),
    ("opportunities", 0, "status", "pending", "invalid_status"),
    ("commitments", 0, "end", "2026-08-31", "end_before_start"),
    ("commitments", 0, "metric", "smiles_per_week", "unknown_metric"),
    ("activities", 0, "logged_at", "2026-05-04 10:00", "logged_before_occurred"),
    ("activities", 1, "logged_at", "2026-05-04", "logged_before_occurred"),
    ("self_assessments", 1, "score", "6", "score_out_of_range"),
    ("self_assessments", 0, "score", "0.5", "score_out_of_range"),
    ("stage_history", 3, "entered_at", "2026-02-01", "stage_dates_out_of_order"),
])
def test_each_error_names_file_row_column_and_rule(tmp_path, table, index, column, value, rule):
    path = break_one(tmp_path, table, index, column, value)
    p = only(path, rule)
    assert (p.file, p.row, p.column, p.severity) == (f"{table}.csv", index + 2, column, "error")
    with pytest.raises(DataError) as info:
        load(path)
    assert any(q.rule == rule for q in info.value.problems)


@pytest.mark.parametrize("ids", [["A1", "A2", "A2", "A3"], ["A1", "A2", "A3", "A3"], ["A1", "A1", "A2", "A3"]])
def test_a_repeated_id_among_ids_in_order_is_found(tmp_path, ids):
    # ids in increasing order are known unique without hashing them; a repeat breaks the order
    tables = clean_tables()
    base = tables["activities"][0]
    tables["activities"] = [dict(base, activity_id=i) for i in ids]
    p = only(write_folder(tmp_path, tables), "duplicate_id")
    assert (p.file, p.column, p.row) == ("activities.csv", "activity_id", ids.index(p.value, ids.index(p.value) + 1) + 2)


def test_hints_point_to_the_fix(tmp_path):
    assert '"Task" = "other"' in only(break_one(tmp_path / "a", "activities", 1, "type", "Task"),
                                      "unknown_activity_type").hint
    assert "calls_per_week" in only(break_one(tmp_path / "b", "commitments", 0, "metric", "x"), "unknown_metric").hint
    dup = only(break_one(tmp_path / "c", "reps", 2, "rep_id", "R007"), "duplicate_id")
    assert dup.row == 4 and "row 3" in dup.hint


@pytest.mark.parametrize("table,index,column,value,rule", [
    ("opportunities", 0, "closed_at", "2026-06-01", "open_with_closed_at"),
    ("commitments", 1, "target", "5", "target_equals_baseline"),
    ("activities", 0, "logged_at", "2026-05-07 10:31", "late_logging"),
])
def test_warnings_do_not_stop_loading(tmp_path, table, index, column, value, rule):
    path = break_one(tmp_path, table, index, column, value)
    p = only(path, rule)
    assert (p.file, p.column, p.severity) == (f"{table}.csv", column, "warning")
    assert f"row {index + 2}" in p.message
    ds = load(path)
    assert rule in {w.rule for w in ds.warnings}


def test_late_logging_is_one_warning_with_count_and_first_rows(tmp_path):
    tables = clean_tables()
    base = tables["activities"][0]
    tables["activities"] = [dict(base, activity_id=f"A{i}", logged_at="2026-05-10 10:00") for i in range(1000)]
    tables["activities"][500]["logged_at"] = "2026-05-04 12:00"  # on time
    p = only(write_folder(tmp_path, tables), "late_logging")
    assert "999 row(s)" in p.message and "rows 2, 3, 4, 5, 6 and 994 more" in p.message


def test_many_bad_values_are_listed_ten_then_summarised(tmp_path):
    tables = clean_tables()
    base = tables["activities"][0]
    tables["activities"] = [dict(base, activity_id=f"A{i}", occurred_at="soon", logged_at="") for i in range(25)]
    found = problems_of(write_folder(tmp_path, tables), "unparseable_date")
    assert [p.row for p in found] == list(range(2, 12)) + [None]
    assert "15 more rows" in found[-1].message


def test_opportunity_without_stage_history_is_an_aggregated_warning(tmp_path):
    tables = clean_tables()
    tables["stage_history"] = [r for r in tables["stage_history"] if r["opportunity_id"] != "O2"]
    p = only(write_folder(tmp_path, tables), "no_stage_history")
    assert (p.file, p.severity) == ("opportunities.csv", "warning") and "row 3" in p.message


def test_unknown_stage_rows_are_excluded_and_reported(tmp_path):
    tables = clean_tables()
    tables["stage_history"].append({"opportunity_id": "O2", "stage": "Closed Won", "entered_at": "2026-06-15"})
    path = write_folder(tmp_path, tables)
    ds = load(path)
    (w,) = [p for p in ds.warnings if p.rule == "unknown_stage"]
    assert "'Closed Won'" in w.message and "row 7" in w.message
    assert ds.excluded.to_dict("records") == [{"file": "stage_history.csv", "row": 7,
                                               "reason": "stage not in process.toml"}]
    assert len(ds.stage_history) == 5 and "Closed Won" not in set(ds.stage_history["stage"])


def test_blank_rows_are_excluded_not_dropped_silently(tmp_path):
    path = write_folder(tmp_path)
    with open(path / "reps.csv", "a") as f:
        f.write(",,,,,,\n")
    ds = load(path)
    assert ds.excluded[["file", "row"]].to_dict("records") == [{"file": "reps.csv", "row": 5}]
    assert len(ds.reps) == 3


def test_an_empty_status_is_named_not_a_crash(tmp_path):
    # found by the fuzz test: an empty status cell reached a boolean mask as NA
    tables = clean_tables()
    tables["opportunities"][0]["status"] = ""
    tables["opportunities"][0]["closed_at"] = ""
    p = only(write_folder(tmp_path, tables), "missing_value")
    assert (p.row, p.column) == (2, "status")


def test_an_empty_line_keeps_the_row_numbers_of_the_rows_after_it(tmp_path):
    # a spreadsheet shows an empty line as an empty row: errors after it must name the row it shows
    path = write_folder(tmp_path)
    lines = (path / "opportunities.csv").read_text().splitlines()
    header = lines[0].split(",")
    last = lines[3].split(",")
    last[header.index("amount")] = "lots"
    lines[3] = ",".join(last)
    (path / "opportunities.csv").write_text("\n".join(lines[:2] + [""] + lines[2:3] + [",".join(last)]) + "\n")
    p = only(path, "unparseable_number")
    assert p.row == 5 and p.column == "amount"  # header 1, a row 2, empty row 3, a row 4, this row 5
    with pytest.raises(DataError):
        load(path)
    lines[3] = lines[3].replace("lots", "12")
    (path / "opportunities.csv").write_text("\n".join(lines[:2] + ["", ""] + lines[2:]) + "\n")
    ds = load(path)
    assert ds.excluded[["file", "row"]].to_dict("records") == [{"file": "opportunities.csv", "row": 3},
                                                               {"file": "opportunities.csv", "row": 4}]
    assert len(ds.opportunities) == 3


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("values,expected", [
    (["03/15/2026 14:05", "04/01/2026"], ["2026-03-15 14:05", "2026-04-01 00:00"]),  # 15 decides month-first
    (["15/03/2026", "01/04/2026"], ["2026-03-15", "2026-04-01"]),  # 15 decides day-first
    (["15.03.2026", "01.04.2026 09:30"], ["2026-03-15", "2026-04-01 09:30"]),  # dots: day-first
    (["46096", "46096.5"], ["2026-03-15", "2026-03-15 12:00"]),  # Excel serial day numbers
    (["3/15/26 2:05 PM"], ["2026-03-15 14:05"]),
    (["15-Mar-2026"], ["2026-03-15"]),
])
def test_excel_style_dates(values, expected):
    parsed, bad, notes = parse_datetimes(pd.Series(values, dtype="string"), "UTC")
    assert not bad.any()
    assert parsed.tolist() == [pd.Timestamp(e, tz="UTC") for e in expected]
    assert all(rule in ("non_iso_dates", "excel_serial_dates") for rule, _ in notes)


@pytest.mark.parametrize("values", [
    ["2024-02-29 10:00:00", "2026-03-29 01:30:00", "2026-10-25 01:30:00", "1900-01-01 00:00:00", "2100-12-31 23:59:59"],
    ["2023-02-29 10:00:00", "2024-04-31 00:00:00", "2024-01-01 10:00:00"],  # days the month lacks
    ["2024-01-01 24:00:00", "2024-01-01 23:59:60", "2024-01-01 10:60:00", "2024-13-01 10:00:00", "2024-00-01 00:00:00"],
    ["1899-12-31 23:59:59", "2101-01-01 00:00:00", "-024-01-01 10:00:00", "2024-01-01 10:00:00"],  # outside the years
    ["2024-01-01T10:00:00", "2024-01-01 10:00+01", "2024-01-01 10:00:0Z", "2024-1-01 10:00:000", "2024 01 01 10:00:00"],
    ["2024-02-29", "2026-03-29", "2023-02-29", "2024-00-10", "1899-12-31", "2024-01-0a"],
    ["2000-02-29", "1900-02-29", "2100-02-29", "2096-02-29", "2024-02-30", "2024-06-31", "2024-12-32", "2024-1/-01"],
    ["15.03.2026", "16.03.2026"],
])
@pytest.mark.parametrize("tz", ["UTC", "Europe/London", "America/Sao_Paulo"])
def test_a_column_of_one_width_is_read_as_a_mixed_one_is(values, tz):
    # a column whose values all have 19 (or 10) characters takes the byte-wise reader; with one
    # value of another width the same values go through pandas: both must read every value alike
    fixed = pd.Series(values, dtype="string")
    mixed = pd.Series(values + ["2024-01-01 10:00:00.5"], dtype="string")
    parsed, bad, notes = parse_datetimes(fixed, tz)
    parsed_mixed, bad_mixed, notes_mixed = parse_datetimes(mixed, tz)
    pd.testing.assert_series_equal(parsed, parsed_mixed.iloc[:-1])
    assert bad.tolist() == bad_mixed[:-1].tolist() and notes == notes_mixed
    assert parsed_mixed.iloc[-1] == pd.Timestamp("2024-01-01 10:00:00.5", tz=tz)


def test_a_bad_value_far_down_a_long_column_of_one_width_is_named():
    # NumPy's string-to-datetime cast crashed the process on such a column (an invalid value past its
    # first buffer); the byte-wise reader never calls a parser that can fail
    values = ["2026-05-04 10:00:00"] * 20000
    values[15000] = "2026-02-30 10:00:00"
    parsed, bad, _ = parse_datetimes(pd.Series(values, dtype="string"), "UTC")
    assert np.flatnonzero(bad).tolist() == [15000] and parsed.notna().sum() == 19999


def test_every_day_of_the_years_read_is_read_right():
    days = pd.date_range("1900-01-01", "2100-12-31", freq="D")
    texts = pd.Series(days.strftime("%Y-%m-%d"), dtype="string")
    parsed, bad, _ = parse_datetimes(texts, "UTC")
    assert not bad.any() and (parsed.dt.tz_localize(None).to_numpy() == days.to_numpy()).all()
    times = pd.Series((days + pd.Timedelta(hours=23, minutes=59, seconds=58)).strftime("%Y-%m-%d %H:%M:%S"),
                      dtype="string")
    parsed, bad, _ = parse_datetimes(times, "UTC")
    assert not bad.any() and (parsed.dt.tz_localize(None) - pd.Series(days)).eq(pd.Timedelta("23:59:58")).all()


def test_a_column_of_one_width_reads_wall_clock_times_and_refuses_what_is_no_date():
    values = ["2026-10-25 01:30:00", "2026-03-29 01:30:00", "2024-02-29 23:59:59", "2023-02-29 10:00:00",
              "2024-01-01 24:00:00", "2101-01-01 00:00:00"]
    parsed, bad, _ = parse_datetimes(pd.Series(values, dtype="string"), "Europe/London")
    assert parsed.iloc[0] == pd.Timestamp("2026-10-25 00:30", tz="UTC")  # the first 01:30: summer time
    assert parsed.iloc[1] == pd.Timestamp("2026-03-29 02:00", tz="Europe/London")  # skipped hour: moved to its end
    assert parsed.iloc[2] == pd.Timestamp("2024-02-29 23:59:59", tz="Europe/London")
    assert bad.tolist() == [False, False, False, True, True, True]


@pytest.mark.parametrize("value", ["2026-05-04 10:00:0Z", "2026-05-04T10Z", "2026-05-04 10:00:0-05"])
def test_a_time_with_a_stray_offset_is_an_unreadable_cell_not_a_crash(tmp_path, value):
    path = break_one(tmp_path, "activities", 1, "logged_at", value)  # once, a traceback from pandas
    p = only(path, "unparseable_date")
    assert (p.file, p.row, p.column, p.severity) == ("activities.csv", 3, "logged_at", "error")
    with pytest.raises(DataError):
        load(path)


def test_ambiguous_and_mixed_slashed_dates_are_column_errors(tmp_path):
    tables = clean_tables()
    for row, value in zip(tables["reps"], ["03/04/2024", "01/09/2023", "06/02/2025"]):
        row["hire_date"] = value
    p = only(write_folder(tmp_path / "a", tables), "ambiguous_date_format")
    assert (p.file, p.column, p.row) == ("reps.csv", "hire_date", None)
    tables["reps"][0]["hire_date"] = "03/14/2024"  # month-first only
    tables["reps"][1]["hire_date"] = "13/01/2023"  # day-first only
    p = only(write_folder(tmp_path / "b", tables), "mixed_date_formats")
    assert "03/14/2024" in p.message and "13/01/2023" in p.message
    assert problems_of(tmp_path / "b", "unparseable_date") == []  # reported once, for the column


@pytest.mark.parametrize("text,expected", [
    ("$48,000", 48000.0), ("48.000,50 €", 48000.5), ("EUR 1.234.567", 1234567.0), ("(1,200)", -1200.0),
    ("3,5", 3.5), ("1'250", 1250.0), ("1 250,75", 1250.75), ("USD 12,000.25", 12000.25),
    ("12,34,5", None), ("1.2.3", None), ("abc", None), ("", None), ("$", None),
])
def test_clean_number(text, expected):
    assert clean_number(text) == expected


def test_formatted_amounts_are_read_with_a_warning(tmp_path):
    tables = clean_tables()
    tables["opportunities"][0]["amount"] = "€48,000"
    tables["opportunities"][1]["amount"] = "12.000,50 €"
    ds = load(write_folder(tmp_path, tables))
    assert ds.opportunities["amount"].tolist() == [48000.0, 12000.5, 0.0]
    assert [w.column for w in ds.warnings if w.rule == "formatted_numbers"] == ["amount"]


# --------------------------------------------------------------------------- config, CLI, fingerprint


def test_invalid_process_toml(tmp_path):
    path = write_folder(tmp_path, process_toml='[process]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError):
        load(path)
    p = only(path, "invalid_config")
    assert p.file == "process.toml" and "Mars/Olympus" in p.message


def test_fingerprint_changes_with_data_and_config(tmp_path):
    a = load(write_folder(tmp_path / "a")).fingerprint
    assert load(write_folder(tmp_path / "b")).fingerprint == a  # same bytes, same hash
    assert load(break_one(tmp_path / "c", "opportunities", 0, "amount", "48001")).fingerprint != a
    assert load(write_folder(tmp_path / "d", process_toml=PROCESS_TOML + "\n[thresholds]\nlate_logging_days = 3\n")
                ).fingerprint != a
    assert re.fullmatch(r"[0-9a-f]{64}", a)


def test_folder_with_a_dozen_faults_lists_each_and_cli_exits_non_zero(tmp_path):
    clean = write_folder(tmp_path / "clean")
    t = clean_tables()
    t["reps"][1]["hire_date"] = "not a date"                    # reps row 3
    t["reps"].append(dict(t["reps"][0], name="Ana Again"))     # reps row 5: duplicate id
    t["opportunities"][0]["amount"] = "-100"                    # opportunities row 2
    t["opportunities"][1]["status"] = "maybe"                   # opportunities row 3
    t["opportunities"][2]["closed_at"] = "2026-01-01"           # row 4: before created_at
    t["activities"][0]["rep_id"] = "R404"                       # activities row 2
    t["activities"][1]["type"] = "Carrier pigeon"               # activities row 3
    t["activities"][3]["logged_at"] = "2026-05-01"              # activities row 5: before occurred
    t["stage_history"][1]["entered_at"] = "2026-04-01"          # stage_history row 3: before Discovery
    t["commitments"][0]["metric"] = "hugs_per_week"             # commitments row 2
    t["commitments"][1]["end"] = "2026-09-01"                   # commitments row 3: end before start
    t["self_assessments"][0]["score"] = "7"                     # self_assessments row 2
    broken = write_folder(tmp_path / "broken", t)
    expected = {
        ("reps.csv", 3, "hire_date", "unparseable_date"), ("reps.csv", 5, "rep_id", "duplicate_id"),
        ("opportunities.csv", 2, "amount", "negative_amount"), ("opportunities.csv", 3, "status", "invalid_status"),
        ("opportunities.csv", 4, "closed_at", "closed_before_created"),
        ("activities.csv", 2, "rep_id", "unknown_reference"), ("activities.csv", 3, "type", "unknown_activity_type"),
        ("activities.csv", 5, "logged_at", "logged_before_occurred"),
        ("stage_history.csv", 3, "entered_at", "stage_dates_out_of_order"),
        ("commitments.csv", 2, "metric", "unknown_metric"), ("commitments.csv", 3, "end", "end_before_start"),
        ("self_assessments.csv", 2, "score", "score_out_of_range"),
    }
    report = validate(broken)
    found = {(p.file, p.row, p.column, p.rule) for p in report.errors}
    assert found == expected
    text = report.format()
    assert "12 error(s)" in text
    for file, row, column, rule in expected:
        assert f"{file}, row {row}, column '{column}'" in text and f"[{rule}]" in text

    run = [sys.executable, "-m", "coachnb", "validate"]
    bad = subprocess.run(run + [str(broken)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "[stage_dates_out_of_order]" in bad.stdout
    good = subprocess.run(run + [str(clean)], capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 error(s), 0 warning(s)" in good.stdout


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as info:
        load(tmp_path / "nope")
    assert info.value.problems[0].rule == "missing_folder"


# --------------------------------------------------------------------------- docs


def test_docs_data_md_holds_the_generated_contract():
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    assert contract_markdown() in text
    for name in TABLES:
        assert f"### `{name}.csv`" in contract_markdown()
    assert "| `opportunity_id` | id (text) | yes | Unique id of the opportunity | `O00042` |" in contract_markdown()


# --------------------------------------------------------------------------- edges of the date range


@pytest.mark.parametrize("timezone,value", [
    ("Europe/Berlin", "1700-01-01"),            # with a 2026 logged_at: the difference overflowed
    ("America/New_York", "2262-04-11 23:00"),   # past pandas' last nanosecond once in UTC
    ("Asia/Tokyo", "1677-09-21 00:30"),         # before pandas' first nanosecond once in UTC
    ("UTC", "0001-01-01"), ("UTC", "9999-12-31 23:59"), ("UTC", "1899-12-31"), ("UTC", "2101-01-01"),
    ("UTC", "2262-04-11T23:00:00-05:00"),
])
def test_dates_outside_the_range_are_a_problem_naming_file_row_and_column(tmp_path, timezone, value):
    tables = clean_tables()
    tables["activities"][1]["occurred_at"] = value  # its logged_at is 2026-05-05
    path = write_folder(tmp_path, tables)
    (path / "process.toml").write_text(PROCESS_TOML.replace("Europe/Berlin", timezone), encoding="utf-8")
    (problem,) = [p for p in validate(path).errors]
    assert (problem.file, problem.row, problem.column, problem.rule) == (
        "activities.csv", 3, "occurred_at", "unparseable_date")
    assert "1900-2100" in problem.message
    with pytest.raises(DataError):
        load(path)


def test_the_first_and_last_day_of_the_range_load(tmp_path):
    tables = clean_tables()
    tables["reps"][0]["hire_date"] = "1900-01-01"
    tables["commitments"][0]["end"] = "2100-12-31"
    ds = load(write_folder(tmp_path, tables))
    assert ds.reps["hire_date"].iloc[0] == pd.Timestamp("1900-01-01", tz="Europe/Berlin")
    assert ds.commitments["end"].iloc[0] == pd.Timestamp("2100-12-31", tz="Europe/Berlin")


def test_a_commitment_ending_in_2261_is_refused(tmp_path):
    tables = clean_tables()
    tables["commitments"][0]["end"] = "2261-12-31"
    problem = only(write_folder(tmp_path, tables), "unparseable_date")
    assert (problem.file, problem.row, problem.column) == ("commitments.csv", 2, "end")


def test_parquet_dates_outside_the_range_are_named(tmp_path):
    path = write_folder(tmp_path, parquet=())
    reps = pd.read_csv(path / "reps.csv", dtype=str, keep_default_na=False)
    (path / "reps.csv").unlink()
    reps["hire_date"] = pd.Series(np.array(["9999-12-31", "2024-01-08", "0001-01-01"], dtype="datetime64[us]"))
    reps.to_parquet(path / "reps.parquet")
    found = [(p.file, p.row, p.column) for p in problems_of(path, "unparseable_date")]
    assert found == [("reps.parquet", 2, "hire_date"), ("reps.parquet", 4, "hire_date")]


def test_a_field_over_a_megabyte_is_read(tmp_path):
    tables = clean_tables()
    tables["opportunities"][1]["name"] = "big deal " + "x" * 3_000_000
    ds = load(write_folder(tmp_path, tables))
    assert len(ds.opportunities["name"].iloc[1]) == 3_000_009
    assert ds.opportunities["opportunity_id"].tolist() == ["O1", "O2", "O3"]


def test_a_field_over_a_megabyte_keeps_row_numbers_of_bad_rows(tmp_path):
    tables = clean_tables()
    tables["opportunities"][0]["name"] = "y" * 2_000_000
    tables["opportunities"][2]["amount"] = "twelve"
    problem = only(write_folder(tmp_path, tables), "unparseable_number")
    assert (problem.file, problem.row) == ("opportunities.csv", 4)
