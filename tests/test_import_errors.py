"""Import problems per cause, not per row; located in the export; missing optional things stated, never a traceback.

The issue's failures, each on the spreadsheet export of the style corpus
(``tests/fixtures/crm/styles/spreadsheet``) or the Salesforce one, with a mapping written here.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from coachnb import importers
from coachnb.errors import ConfigError, DataError, Problem

STYLES = Path(__file__).parent / "fixtures" / "crm" / "styles"
SHEET = STYLES / "spreadsheet"

MAPPING = """
[mapping]
missing_created = "{missing_created}"
[process]
stages = ["Prospecting", "Engaging"]
[stages]
Won = "won"
Lost = "lost"
[reps]
file = "sales_teams.csv"
[reps.columns]
name = "sales_agent"
manager = "manager"
{team}
[opportunities]
file = "sales_pipeline.csv"
{where}
[opportunities.columns]
opportunity_id = "opportunity_id"
owner_name = "sales_agent"
account = "account"
created_at = "engage_date"
amount = "close_value"
stage = "deal_stage"
closed_at = "close_date"
[opportunities.defaults]
amount = "unknown"
"""


def _mapping(tmp_path: Path, missing_created="error", team='team = "regional_office"', where="") -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING.format(missing_created=missing_created, team=team, where=where), encoding="utf-8")
    return path


def _pipeline() -> pd.DataFrame:
    return pd.read_csv(SHEET / "sales_pipeline.csv", dtype=str, keep_default_na=False)


def test_deals_without_created_date_are_one_counted_error_with_the_fix(tmp_path):
    undated = _pipeline()["engage_date"] == ""
    with pytest.raises(DataError) as err:
        importers.run_import(_mapping(tmp_path), [SHEET], tmp_path / "data")
    [problem] = err.value.problems
    assert (problem.file, problem.column, problem.rule) == ("sales_pipeline.csv", "engage_date", "missing_created")
    assert f"{int(undated.sum())} rows" in problem.message and "'Prospecting'" in problem.message
    first = [i + 2 for i in undated[undated].index[:5]]  # spreadsheet rows: the header is row 1
    assert f"rows {', '.join(map(str, first))}" in problem.message
    assert "missing_created" in problem.hint and "where" in problem.hint
    assert not (tmp_path / "data").exists()


def test_missing_created_exclude_leaves_them_out_and_counts_them(tmp_path):
    result = importers.run_import(_mapping(tmp_path, "exclude"), [SHEET], tmp_path / "data")
    undated = int((_pipeline()["engage_date"] == "").sum())
    assert len(result.tables["opportunities"]) == len(_pipeline()) - undated
    [left_out] = [p for p in result.excluded if p.rule == "missing_created"]
    assert f"{undated} rows" in left_out.message


def test_rows_filtered_with_where_are_counted(tmp_path):
    where = 'where = { deal_stage = ["Engaging", "Won", "Lost"] }'
    result = importers.run_import(_mapping(tmp_path, where=where), [SHEET], tmp_path / "data")
    prospecting = int((_pipeline()["deal_stage"] == "Prospecting").sum())
    [filtered] = [p for p in result.excluded if p.rule == "filtered_by_where"]
    assert filtered.file == "sales_pipeline.csv" and filtered.column == "deal_stage"
    assert filtered.message.startswith(f"{prospecting} row(s) left out")
    assert len(result.tables["opportunities"]) == len(_pipeline()) - prospecting


def test_people_file_without_hire_date_or_team_column_imports_and_says_what_stands_in(tmp_path):
    """Was KeyError: '_col_hire_date'; agents without deals then failed as 'reps.csv, row 12'."""
    result = importers.run_import(_mapping(tmp_path, "exclude", team=""), [SHEET], tmp_path / "data")
    reps = pd.read_csv(tmp_path / "data" / "reps.csv", dtype=str, keep_default_na=False).set_index("name")
    opps = _pipeline()
    opps = opps[opps["engage_date"] != ""]
    first = opps.groupby("sales_agent")["engage_date"].min()
    assert reps.loc[first.index, "hire_date"].tolist() == first.tolist()
    assert set(reps["team"]) == {"Unassigned"}
    rules = {p.rule for p in result.warnings}
    assert {"hire_date_from_data", "default_team"} <= rules
    teams = pd.read_csv(SHEET / "sales_teams.csv", dtype=str)
    idle = [i + 2 for i, n in enumerate(teams["sales_agent"]) if n not in set(opps["sales_agent"])]
    assert sorted((p.file, p.row) for p in result.excluded if p.rule == "rep_without_data") == \
        [("sales_teams.csv", r) for r in idle]


def test_loader_problems_with_the_output_name_the_export(tmp_path):
    text = importers.infer_mapping([STYLES / "salesforce"])
    backwards = 'stages = ["Negotiation/Review", "Proposal/Price Quote", "Qualification", "Prospecting"]'
    text = re.sub(r"^stages = \[.*\]$", backwards, text, count=1, flags=re.MULTILINE)
    (tmp_path / "m.toml").write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        importers.run_import(tmp_path / "m.toml", [STYLES / "salesforce"], tmp_path / "data")
    [problem] = err.value.problems
    assert (problem.file, problem.column, problem.rule) == ("OpportunityHistory.csv", "CreatedDate",
                                                            "stage_dates_out_of_order")
    assert "stage_history.csv" not in str(err.value)


def test_inferred_import_repeats_exactly_with_its_mapping_and_never_overwrites_it(tmp_path):
    data = tmp_path / "data"
    first = importers.infer_and_import([SHEET], data)
    written = {p.name: p.read_bytes() for p in data.iterdir()}
    with pytest.raises(ConfigError, match="mapping.toml exists"):
        importers.infer_and_import([SHEET], data)
    importers.run_import(first.mapping_path, [SHEET], data)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == written
    steps = importers.next_steps(first, [SHEET])
    assert f"coachnb import --mapping {data / 'mapping.toml'}" in steps and f"coachnb run {data}" in steps
    last = max(_pipeline()["engage_date"].max(), _pipeline()["close_date"].max())
    assert f"the last record is on {last}" in steps


def test_infer_orders_open_stages_from_names_numbers_or_data():
    assert importers.order_open_stages(["Engaging", "Prospecting"])[0] == ["Prospecting", "Engaging"]
    assert importers.order_open_stages(["3-Propose", "1-Qualify", "2-Develop"])[0] == \
        ["1-Qualify", "2-Develop", "3-Propose"]
    # names without a known word: deals without dates first, then the newest deals' stage
    ages = {"Alpha": (0.0, 100.0), "Beta": (0.0, 300.0), "Gamma": (0.9, 400.0)}
    order, basis = importers.order_open_stages(["Alpha", "Beta", "Gamma"], ages)
    assert order == ["Gamma", "Beta", "Alpha"] and "data" in basis


def test_what_an_inferred_import_prints_is_escaped(tmp_path, capsys):
    """Column and stage names come from the export: an escape sequence in one is shown, never sent to the terminal."""
    rows = _pipeline()
    rows["deal_stage"] = rows["deal_stage"].replace({"Prospecting": "Prosp\x1b[2Jecting"})
    (tmp_path / "export").mkdir()
    rows.rename(columns={"product": "pro\x1b]0;duct"}).to_csv(tmp_path / "export" / "sales_pipeline.csv", index=False)
    importers.import_inferred([tmp_path / "export"], tmp_path / "data")
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\\x1b]0;duct" in err and "\\x1b[2Jecting" in err


def test_a_loader_summary_is_translated_to_the_exports_rows_and_collapsed_with_its_rows():
    origin = pd.DataFrame({"_file": ["Deals.csv"] * 6, "_row": [10, 11, 12, 14, 15, 17], "_col_stage": ["Phase"] * 6})
    message = "entered this stage before an earlier stage"
    first = [Problem("stage_history.csv", r, "stage", None, "out_of_order", message) for r in (2, 3, 4)]
    summary = Problem("stage_history.csv", None, "stage", None, "out_of_order",
                      f"{message} -- and 3 more rows like this (rows 5, 6, 7)")
    located = [importers.to_source(p, {"stage_history": origin}) for p in [*first, summary]]
    assert [(p.file, p.row, p.column) for p in located[:3]] == [("Deals.csv", r, "Phase") for r in (10, 11, 12)]
    assert located[3].file == "Deals.csv" and "rows 14, 15, 17" in located[3].message
    [one] = importers.collapse(located)
    assert (one.file, one.row, one.column) == ("Deals.csv", None, "Phase")
    assert one.message == f"{message}: 6 rows (e.g. rows 10, 11, 12)"


def test_history_rows_left_out_are_counted(tmp_path):
    """A history row without a stage, and one of a deal the deals file doesn't hold: each left out and said."""
    export = tmp_path / "export"
    export.mkdir()
    for f in (STYLES / "salesforce").iterdir():
        (export / f.name).write_bytes(f.read_bytes())
    history = pd.read_csv(export / "OpportunityHistory.csv", dtype=str, keep_default_na=False)
    extra = pd.DataFrame([{**history.iloc[0], "Id": "H-x1", "StageName": ""},
                          {**history.iloc[0], "Id": "H-x2", "OpportunityId": "0065g00000NOTADEAL"}])
    pd.concat([history, extra]).to_csv(export / "OpportunityHistory.csv", index=False)
    result = importers.infer_and_import([export], tmp_path / "data")
    left_out = {p.rule: (p.file, p.row, p.column) for p in result.excluded}
    rows = len(history) + 2  # the two added rows are the file's last (the header is row 1)
    assert left_out["history_without_stage"] == ("OpportunityHistory.csv", rows, "StageName")
    assert left_out["history_of_unknown_deal"] == ("OpportunityHistory.csv", rows + 1, "OpportunityId")
