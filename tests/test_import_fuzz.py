"""Fuzz ``coachnb import``: random exports and mappings (missing sections, missing columns, wrong types).

Whatever goes in, the import either writes a folder the loader accepts or raises one of
coachnb's own errors; a :class:`DataError` names a file for every problem. Never a traceback.
"""
from __future__ import annotations

import string
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachnb import importers
from coachnb.errors import CoachnbError, ConfigError, DataError
from coachnb.loading import validate

COLUMNS = ["Owner", "Deal Owner", "sales_agent", "OwnerId", "sr_id", "Stage", "deal_stage", "Status", "Amount",
           "close_value", "Created", "engage_date", "Close Date", "won_date", "Id", "opportunity_id", "Account",
           "Name", "manager", "regional_office", "Type", "ActivityDate", "OpportunityId", "StageName", "Hire Date",
           "Team", "mql_id", "first_contact_date"]
TARGETS = ["opportunity_id", "rep_id", "owner_name", "account", "name", "created_at", "amount", "stage", "status",
           "closed_at", "team", "manager", "hire_date", "occurred_at", "type", "entered_at", "region", "bogus"]

cells = st.one_of(
    st.sampled_from(["", "Won", "Lost", "Closed Won", "Prospecting", "Engaging", "open", "Ana Souza", "Jon Berg",
                     "2026-03-04", "04/03/2026", "13.02.2026", "2026-02-30", "1770113100000", "12,500.50",
                     "€1.234,50", "(500)", "-3", "abc", "=cmd|' /C calc'!A0", "call", "NOTE", "R1", "R2"]),
    st.text(alphabet=string.printable + "éü€\u202e\x00", max_size=12))


DATES = ["2026-03-04", "2026-03-04T10:00:00Z", "04/03/2026", "13.02.2026", "2026-02-30", "1770113100000", "-3",
         "9999-01-01", ""]
POOLS = {
    "date": DATES, "amount": ["12,500.50", "€1.234,50", "(500)", "-3", "0", "48000", "", "abc", "1e400"],
    "stage": ["Won", "Lost", "Closed Won", "Prospecting", "Engaging", "", "Nowhere"],
    "owner": ["Ana Souza", "Jon Berg", "", "R1", "R2", "=cmd|' /C calc'!A0", "Zoë \u202eevil"],
    "id": ["1", "2", "2", "", "a-1", "b\x00"], "type": ["call", "NOTE", "Meeting", "", "??"],
}
KIND = {"Deal - Owner": "owner", "Zuständig": "owner", "Deal - Stage": "stage", "Phase": "stage",
        "Deal - Status": "stage", "Deal - Value": "amount", "Betrag": "amount", "Deal - Deal created": "date",
        "Deal - Won time": "date", "Erstellt am": "date", "CreatedDate": "date", "CloseDate": "date",
        "WhatId": "id", "sdr_id": "owner", "manager": "owner", "regional_office": "stage", "account": "owner",
        "Owner": "owner", "Deal Owner": "owner", "sales_agent": "owner", "OwnerId": "owner", "sr_id": "owner",
        "Stage": "stage", "deal_stage": "stage", "Status": "stage", "StageName": "stage", "Amount": "amount",
        "close_value": "amount", "Created": "date", "engage_date": "date", "Close Date": "date", "won_date": "date",
        "ActivityDate": "date", "Hire Date": "date", "first_contact_date": "date", "Id": "id",
        "opportunity_id": "id", "OpportunityId": "id", "mql_id": "id", "Type": "type"}


def _rows(draw, cols):
    """Rows whose cells are mostly what such a column holds (any of it possibly wrong), sometimes anything."""
    return draw(st.lists(st.tuples(*[st.sampled_from(POOLS[KIND[c]]) | cells if c in KIND else cells
                                     for c in cols]).map(list), min_size=draw(st.sampled_from([1, 0])), max_size=6))


@st.composite
def cases(draw):
    """A mapping and an export made for each other, then broken in a few places (see :func:`mappings`)."""
    raw = draw(mappings())
    files = {}
    for name, table in (("deals.csv", "opportunities"), ("sales_teams.csv", "reps"), ("Task.csv", "activities"),
                        ("history.csv", "stage_history")):
        spec = raw.get(table)
        spec = spec[0] if isinstance(spec, list) and spec else spec
        used = spec.get("columns", {}) if isinstance(spec, dict) else {}
        cols = [c for v in (used.values() if isinstance(used, dict) else []) for c in (v if isinstance(v, list)
                                                                                         else [v])
                if isinstance(c, str)]
        cols = list(dict.fromkeys(cols + draw(st.lists(st.sampled_from(COLUMNS), max_size=2))))
        if cols and draw(st.integers(0, 4)) == 4:
            cols.remove(draw(st.sampled_from(cols)))  # a column the mapping names, missing from the file
        if cols and (table == "opportunities" or spec is not None):
            files[name] = (draw(st.sampled_from([",", ";"])), cols, _rows(draw, cols))
    if draw(st.booleans()):
        files["leads.csv"] = (",", ["mql_id", "first_contact_date"], _rows(draw, ["mql_id", "first_contact_date"]))
    return files or {"deals.csv": (",", ["Owner"], [])}, raw


@st.composite
def exports(draw):
    """One or two small CSV files: real exports' headers (some columns dropped, random ones added) or random ones."""
    files = {}
    for name in draw(st.lists(st.sampled_from(["deals.csv", "sales_teams.csv", "leads.csv", "Task.csv",
                                                "history.csv"]), min_size=1, max_size=2, unique=True)):
        cols = list(draw(st.sampled_from(HEADERS))) if draw(st.booleans()) else []
        for _ in range(draw(st.integers(0, 2))):
            if cols:
                cols.remove(draw(st.sampled_from(cols)))
        extra = draw(st.lists(st.sampled_from(COLUMNS) | st.text(string.ascii_letters + " _", min_size=1, max_size=8),
                              min_size=0 if cols else 1, max_size=4))
        cols = list({c.lower(): c for c in cols + extra}.values())
        files[name] = (draw(st.sampled_from([",", ";"])), cols, _rows(draw, cols))
    return files


#: headers of real exports (the style corpus's, shortened)
HEADERS = [
    ("opportunity_id", "sales_agent", "account", "deal_stage", "engage_date", "close_date", "close_value"),
    ("sales_agent", "manager", "regional_office"),
    ("mql_id", "sr_id", "sdr_id", "won_date"), ("mql_id", "first_contact_date"),
    ("Id", "OwnerId", "Name", "StageName", "Amount", "CloseDate", "CreatedDate"),
    ("Id", "OpportunityId", "StageName", "CreatedDate"), ("Id", "OwnerId", "WhatId", "ActivityDate", "Type"),
    ("Deal - Owner", "Deal - Stage", "Deal - Status", "Deal - Value", "Deal - Deal created", "Deal - Won time"),
    ("Verkaufschance", "Zuständig", "Phase", "Erstellt am", "Betrag"),
]


WRONG = st.sampled_from([3, 1.5, True, [], [1], {}, {"a": 1}, "", "Nope"])


@st.composite
def mappings(draw):
    """A mapping close to a working one for the export, with up to three things broken.

    Sections go missing, columns point at names the files lack, values get the wrong type;
    most examples get past the mapping's own checks into the rows, where the data's problems are.
    """
    col = st.sampled_from(COLUMNS)
    raw = {
        "mapping": {"missing_owner": draw(st.sampled_from(["error", "exclude"])),
                    "missing_created": draw(st.sampled_from(["error", "exclude"]))},
        "process": {"stages": ["Prospecting", "Engaging"], "timezone": "UTC"},
        "stages": {"Won": "won", "Lost": "lost", "Closed Won": "won", "Prospecting": "Prospecting"},
        "formats": {"dates": draw(st.sampled_from([["iso"], ["%d/%m/%Y", "iso"], ["dayfirst"], ["epoch_ms", "iso"]])),
                    "decimal": draw(st.sampled_from([".", ","])), "thousands": draw(st.sampled_from([",", ".", ""]))},
        "opportunities": {"file": draw(st.sampled_from(["deals.csv", "*.csv", "deal*.csv"])),
                          "columns": {draw(st.sampled_from(["rep_id", "owner_name"])): draw(col),
                                      "stage": draw(col), "created_at": draw(col),
                                      **draw(st.dictionaries(st.sampled_from(TARGETS[:10]),
                                                             col | st.lists(col, min_size=1, max_size=2),
                                                             max_size=5))},
                          "defaults": draw(st.dictionaries(st.sampled_from(["amount", "account", "status", "stage"]),
                                                           st.sampled_from(["unknown", "won", "0", "", "Prospecting"]),
                                                           max_size=2))},
    }
    if draw(st.booleans()):
        raw["reps"] = {"file": "sales_teams.csv", "columns": {draw(st.sampled_from(["rep_id", "name"])): draw(col),
                                                              **draw(st.dictionaries(st.sampled_from(
                                                                  ["team", "manager", "hire_date", "region"]), col,
                                                                  max_size=3))}}
    if draw(st.booleans()):
        raw["activities"] = [{"file": "Task.csv", "columns": {
            draw(st.sampled_from(["rep_id", "owner_name"])): draw(col), "occurred_at": draw(col),
            **draw(st.dictionaries(st.sampled_from(["activity_id", "type", "opportunity_id", "logged_at"]), col,
                                   max_size=3))}}]
    if draw(st.booleans()):
        raw["stage_history"] = [{"file": "history.csv", "columns": {"opportunity_id": draw(col),
                                                                    "stage": draw(col), "entered_at": draw(col)}}]
    if draw(st.integers(0, 3)) == 3 and any(isinstance(c, str) for c in raw["opportunities"]["columns"].values()):
        raw["opportunities"]["where"] = {draw(st.sampled_from([c for c in raw["opportunities"]["columns"].values()
                                                               if isinstance(c, str)])): draw(st.sampled_from(["Won", ["Won", "Lost", "Engaging"]]))}
    if draw(st.integers(0, 3)) == 3:
        raw["opportunities"]["join"] = [{"file": draw(st.sampled_from(["leads.csv", "nope.csv"])),
                                         "on": draw(st.sampled_from(["mql_id", "Id"]))}]
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(sorted(raw)))
        spec = raw[section][0] if isinstance(raw[section], list) and raw[section] else raw[section]
        action = draw(st.sampled_from(["drop_section", "wrong_value", "drop_key", "wrong_section"]))
        if action == "drop_section":
            del raw[section]
        elif action == "wrong_section":
            raw[section] = draw(WRONG)
        elif isinstance(spec, dict) and spec:
            key = draw(st.sampled_from(sorted(spec)))
            if action == "drop_key":
                del spec[key]
            else:
                spec[key] = draw(WRONG)
    return raw


def _write(folder: Path, files: dict) -> None:
    for name, (sep, cols, rows) in files.items():
        lines = [sep.join(cols)] + [sep.join('"' + str(v).replace('"', '""') + '"' for v in r) for r in rows]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _check_error(exc: CoachnbError) -> None:
    """A coachnb error says where: every DataError problem names a file, a ConfigError the mapping."""
    assert str(exc)
    if isinstance(exc, DataError):
        assert exc.problems and all(p.file for p in exc.problems)
        assert all(p.row is not None or p.column or p.rule in ("no_deals", "missing_source", "no_rows", "bad_join")
                   or "rows" in p.message for p in exc.problems if p.severity == "error")
    if isinstance(exc, ConfigError):
        assert "mapping" in str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=cases())
def test_import_of_any_export_and_mapping_is_a_folder_or_a_clear_error(case):
    files, raw = case
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "export"
        src.mkdir()
        _write(src, files)
        try:
            importers.run_import(raw, [src], Path(tmp) / "data")
        except CoachnbError as exc:
            _check_error(exc)
        else:
            assert validate(Path(tmp) / "data").ok


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(files=exports())
def test_infer_on_any_export_is_a_folder_or_a_clear_error(files):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "export"
        src.mkdir()
        _write(src, files)
        try:
            importers.infer_and_import([src], Path(tmp) / "data")
        except CoachnbError as exc:
            _check_error(exc)
        else:
            assert validate(Path(tmp) / "data").ok
