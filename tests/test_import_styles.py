"""Ten CRM export styles through ``coachnb import --infer`` with no hand edits, to a validated folder and rendered reports.

The corpus is under ``tests/fixtures/crm/styles`` (``make_styles.py`` there writes it). For each
style this test reads the export itself, with its own small rules (which column is the owner,
which rows are won or lost, how the amounts are written), and checks the imported folder
against them: deals, won and lost deals and won value per rep. It never asks the importer.
"""
from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from coachnb import importers
from coachnb.batch import run_batch
from coachnb.calendar import latest_as_of
from coachnb.loading import load, validate

STYLES = Path(__file__).parent / "fixtures" / "crm" / "styles"
pytestmark = pytest.mark.slow


def _plain(v: str) -> float:
    return float(v)


def _dollars(v: str) -> float:
    return float(v.replace("$", "").replace(",", ""))


def _euro_de(v: str) -> float:
    return float(v.replace("€", "").strip().replace(".", "").replace(",", "."))


def _salesforce_owner(rows: pd.DataFrame) -> pd.Series:
    users = _read(STYLES / "salesforce" / "User.csv").set_index("Id")["Name"]
    return rows["OwnerId"].map(users)


#: style -> (deals file, owner: column or function, won value(s), lost value(s) of the outcome column,
#: outcome column, amount column and parser; None = the export has no amounts)
TRUTH = {
    "salesforce": ("Opportunity.csv", _salesforce_owner, "StageName", ["Closed Won"], ["Closed Lost"], "Amount", _plain),
    "hubspot": ("all-deals.csv", "Deal owner", "Deal Stage", ["Closed Won"], ["Closed Lost"], "Amount", _plain),
    "pipedrive": ("deals-export.csv", "Deal - Owner", "Deal - Status", ["won"], ["lost"], "Deal - Value", _plain),
    "zoho": ("Deals_001.csv", "Deal Owner", "Stage", ["Closed Won"], ["Closed Lost"], "Amount", _plain),
    "dynamics365": ("Opportunities.csv", "Owner", "Status", ["Won"], ["Lost"], "Est. Revenue", _dollars),
    "close": ("opportunities.csv", "user_name", "status_type", ["won"], ["lost"], "value", _plain),
    "copper": ("opportunities_export.csv", "Owner", "Status", ["Won"], ["Lost", "Abandoned"], "Value", _plain),
    "spreadsheet": ("sales_pipeline.csv", "sales_agent", "deal_stage", ["Won"], ["Lost"], "close_value", _plain),
    "funnel": ("closed_deals.csv", "sr_id", None, None, [], None, None),
    "localised": ("Verkaufschancen.csv", "Zuständig", "Phase", ["Gewonnen"], ["Verloren"], "Betrag", _euro_de),
}


#: each export's open stages in the order its CRM's pipeline lists them (make_styles.py writes them so)
STAGE_ORDER = {
    "salesforce": ["Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review"],
    "hubspot": ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Contract Sent"],
    "pipedrive": ["Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"],
    "zoho": ["Qualification", "Needs Analysis", "Value Proposition", "Proposal/Price Quote", "Negotiation/Review"],
    "dynamics365": ["1-Qualify", "2-Develop", "3-Propose", "4-Close"],
    "close": ["Qualified", "Demo Completed", "Proposal Sent", "Contract Out"],
    "copper": ["Qualified", "Meeting Scheduled", "Proposal Sent", "Negotiation"],
    "spreadsheet": ["Prospecting", "Engaging"],
    "localised": ["Erstkontakt", "Bedarfsanalyse", "Angebot", "Verhandlung"],
}


def _read(path: Path) -> pd.DataFrame:
    sep = ";" if path.read_text(encoding="utf-8-sig").split("\n", 1)[0].count(";") else ","
    return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8-sig")


def _expected(style: str) -> pd.DataFrame:
    """Per owner as the export names them: deals, won, lost, won value (NaN when the export has no amounts)."""
    file, owner, outcome, won, lost, amount, parse = TRUTH[style]
    rows = _read(STYLES / style / file)
    if style == "spreadsheet":  # deals still in Prospecting carry no date at all: the import leaves them out
        rows = rows[rows["engage_date"] != ""]
    who = owner(rows) if callable(owner) else rows[owner]
    is_won = rows[outcome].isin(won) if outcome else pd.Series(True, index=rows.index)
    is_lost = rows[outcome].isin(lost) if outcome else pd.Series(False, index=rows.index)
    value = rows[amount].where(is_won, "0").map(parse) if amount else pd.Series(float("nan"), index=rows.index)
    frame = pd.DataFrame({"owner": who, "deals": 1, "won": is_won.astype(int), "lost": is_lost.astype(int),
                          "won_value": value})
    return frame.groupby("owner").sum(min_count=1).sort_index()


def _imported(data: Path) -> pd.DataFrame:
    """The same figures from the imported folder, per rep name."""
    opps = pd.read_csv(data / "opportunities.csv", dtype=str, keep_default_na=False)
    names = pd.read_csv(data / "reps.csv", dtype=str, keep_default_na=False).set_index("rep_id")["name"]
    amount = pd.to_numeric(opps["amount"].replace("", None))
    frame = pd.DataFrame({"owner": opps["rep_id"].map(names), "deals": 1, "won": (opps["status"] == "won").astype(int),
                          "lost": (opps["status"] == "lost").astype(int),
                          "won_value": amount.where(opps["status"] == "won", 0.0)})
    return frame.groupby("owner").sum(min_count=1).sort_index()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Every style imported once with --infer's one command (no mapping written by hand)."""
    out = {}
    for style in TRUTH:
        data = tmp_path_factory.mktemp(style) / "data"
        out[style] = (data, importers.infer_and_import([STYLES / style], data))
    return out


def test_the_corpus_has_ten_styles():
    assert sorted(TRUTH) == sorted(p.name for p in STYLES.iterdir() if p.is_dir())
    assert len(TRUTH) >= 10


@pytest.mark.parametrize("style", sorted(TRUTH))
def test_style_imports_with_no_edits_to_a_valid_folder_with_the_exports_figures(imported, style):
    data, result = imported[style]
    assert validate(data).ok
    assert (data / "mapping.toml").read_text(encoding="utf-8") == result.mapping_path.read_text(encoding="utf-8")
    expected, got = _expected(style), _imported(data)
    assert list(got.index) == list(expected.index)
    pd.testing.assert_frame_equal(got[["deals", "won", "lost"]], expected[["deals", "won", "lost"]],
                                  check_dtype=False)
    pd.testing.assert_series_equal(got["won_value"], expected["won_value"], check_dtype=False)
    stages = load(data).config.stages
    if style in STAGE_ORDER:  # the open stages in the CRM's own order (the funnel export has none)
        assert list(stages) == STAGE_ORDER[style]


def test_each_style_renders_a_report_batch(imported, tmp_path):
    """Every rep of every style through the batch, with the team overview."""
    for style, (data, _) in imported.items():
        ds = load(data)
        reps = list(ds.reps["rep_id"])
        as_of = latest_as_of(ds).strftime("%Y-%m-%d")
        result = run_batch(data, as_of, out=tmp_path / style, jobs=2, timeout=300, progress=False, dataset=ds)
        assert result.ok, (style, result.failed)
        assert {e["rep_id"] for e in result.reports} == set(reps)
        assert result.overview["status"] == "ok"
        written = [e for e in result.reports if e["status"] == "ok"]
        assert written and all(e["status"] in ("ok", "inactive") for e in result.reports)
        for e in written:
            text = html.unescape(re.sub(r"<[^>]+>", " ", (result.report_dir / e["html"]).read_text(encoding="utf-8")))
            assert "Traceback" not in text and e["name"] in text


def test_what_infer_says_about_the_spreadsheet_export(imported):
    """The issue's first export: every file accounted for, the teams file used, stages in order, exclusions counted."""
    data, result = imported["spreadsheet"]
    text = result.mapping_path.read_text(encoding="utf-8")
    assert "sales_teams.csv: people (reps)" in text
    assert re.search(r"accounts\.csv: not used", text) and re.search(r"products\.csv: not used", text)
    assert 'stages = ["Prospecting", "Engaging"]' in text
    prospecting = (_read(STYLES / "spreadsheet" / "sales_pipeline.csv")["engage_date"] == "").sum()
    [left_out] = [p for p in result.excluded if p.rule == "missing_created"]
    assert f"{prospecting} rows" in left_out.message and left_out.column == "engage_date"
    teams = _read(STYLES / "spreadsheet" / "sales_teams.csv")
    reps = pd.read_csv(data / "reps.csv", dtype=str, keep_default_na=False).set_index("name")
    with_deals = set(_read(STYLES / "spreadsheet" / "sales_pipeline.csv")["sales_agent"])
    for _, person in teams.iterrows():
        if person["sales_agent"] in with_deals:
            assert reps.loc[person["sales_agent"], ["manager", "team"]].tolist() == [person["manager"],
                                                                                    person["regional_office"]]
    skipped = {p.row for p in result.excluded if p.rule == "rep_without_data"}
    assert skipped == {i + 2 for i, n in enumerate(teams["sales_agent"]) if n not in with_deals}
    assert any(p.rule == "hire_date_from_data" for p in result.warnings)
    steps = importers.next_steps(result, [STYLES / "spreadsheet"])
    assert "mode: pipeline-only" in steps and "mode: won-only" not in steps
    assert "sales_teams.csv: people (reps)" in steps and "accounts.csv: not used" in steps


def test_won_only_funnel_is_named_and_keeps_amounts_unknown(imported):
    data, result = imported["funnel"]
    text = result.mapping_path.read_text(encoding="utf-8")
    assert 'status = "won"' in text and "won-only export" in text
    assert 'join = [{ file = "marketing_qualified_leads.csv", on = "mql_id" }]' in text
    opps = pd.read_csv(data / "opportunities.csv", dtype=str, keep_default_na=False)
    assert (opps["amount"] == "").all()
    leads = _read(STYLES / "funnel" / "marketing_qualified_leads.csv").set_index("mql_id")["first_contact_date"]
    assert (opps["created_at"].str.slice(0, 10) == opps["opportunity_id"].map(leads)).all()
    [made_up] = [p for p in result.warnings if p.rule == "made_up_rep"]
    assert "'sr_id'" in made_up.message and "owner id" in made_up.message
    assert any(p.rule == "unknown_amount" for p in result.warnings)
    assert "mode: won-only" in importers.next_steps(result, [STYLES / "funnel"])


def test_the_documented_commands_give_the_same_folder(imported, tmp_path):
    """docs/importing.md's commands of today's CLI (propose to a file, import with it) = the one-call import."""
    export = STYLES / "spreadsheet"
    proposed = subprocess.run([sys.executable, "-m", "coachnb", "import", "--infer", str(export)],
                              capture_output=True, text=True, timeout=300, check=False)
    assert proposed.returncode == 0, proposed.stderr
    (tmp_path / "mapping.toml").write_text(proposed.stdout, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "coachnb", "import", "--mapping", str(tmp_path / "mapping.toml"),
                           str(export), "--out", str(tmp_path / "team")], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    undated = int((_read(export / "sales_pipeline.csv")["engage_date"] == "").sum())
    assert f"{undated} rows" in done.stderr and "missing_created" in done.stderr  # what was left out is said
    data, _ = imported["spreadsheet"]
    for table in ("reps", "opportunities"):
        assert (tmp_path / "team" / f"{table}.csv").read_bytes() == (data / f"{table}.csv").read_bytes()


def test_won_and_lost_stages_without_those_words_are_told_by_their_close_dates_and_values(tmp_path):
    """A pipeline whose closed stages are 'Closed' (with values) and 'Dropped' (value 0): read from the data, marked CHECK."""
    rows = _read(STYLES / "spreadsheet" / "sales_pipeline.csv")
    rows["deal_stage"] = rows["deal_stage"].replace({"Won": "Closed", "Lost": "Dropped"})
    (tmp_path / "export").mkdir()
    rows.to_csv(tmp_path / "export" / "sales_pipeline.csv", index=False)
    result = importers.infer_and_import([tmp_path / "export"], tmp_path / "data")
    text = result.mapping_path.read_text(encoding="utf-8")
    assert 'Closed = "won"   # CHECK' in text and 'Dropped = "lost"   # CHECK' in text
    opps = pd.read_csv(tmp_path / "data" / "opportunities.csv", dtype=str, keep_default_na=False)
    dated = rows[rows["engage_date"] != ""]
    assert (opps["status"] == "won").sum() == (dated["deal_stage"] == "Closed").sum()
    assert (opps["status"] == "lost").sum() == (dated["deal_stage"] == "Dropped").sum()


def test_hubspot_date_entered_columns_become_the_stage_history(imported):
    """'Date entered "Stage (Sales Pipeline)"': one history row per filled open-stage cell, closings as close dates."""
    data, _ = imported["hubspot"]
    deals = _read(STYLES / "hubspot" / "all-deals.csv")
    entered = {re.match(r'Date entered "(.+) \(Sales Pipeline\)"', c).group(1): c for c in deals.columns
               if c.startswith("Date entered")}
    history = pd.read_csv(data / "stage_history.csv", dtype=str, keep_default_na=False)
    for stage in STAGE_ORDER["hubspot"]:
        assert (history["stage"] == stage).sum() == (deals[entered[stage]] != "").sum()
    opps = pd.read_csv(data / "opportunities.csv", dtype=str, keep_default_na=False).set_index("opportunity_id")
    won = deals[deals["Deal Stage"] == "Closed Won"].set_index("Record ID")
    assert (opps.loc[won.index, "closed_at"].str.slice(0, 16) == won["Close Date"]).all()
