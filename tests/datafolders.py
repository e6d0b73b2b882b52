"""Small hand-made data folders for the loader's tests.

``clean_tables()`` is a complete, consistent team (every rule holds, no warnings);
tests copy it, break one thing, write it with :func:`write_folder` and check the problem
found. Row numbers in a written CSV: header row 1, ``rows[i]`` is row ``i + 2``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from coachnb.schema import TABLES

PROCESS_TOML = """\
[process]
stages = ["Discovery", "Qualification", "Proposal", "Negotiation"]
timezone = "Europe/Berlin"

[activity_types]
"Phone Call" = "call"
"""

_CLEAN = {
    "reps": [
        {"rep_id": "00123", "name": "Ana Souza", "team": "West", "manager": "Maya Chen", "hire_date": "2024-03-04",
         "region": "EMEA", "quota_per_quarter": "250000"},
        {"rep_id": "R007", "name": "Bo Lindqvist", "team": "West", "manager": "Maya Chen", "hire_date": "2023-01-09",
         "region": "EMEA", "quota_per_quarter": "200000"},
        {"rep_id": "R008", "name": "Chen Wei", "team": "East", "manager": "Omar Haddad", "hire_date": "2025-06-02",
         "region": "", "quota_per_quarter": ""},
    ],
    "opportunities": [
        {"opportunity_id": "O1", "rep_id": "00123", "account": "Acme GmbH", "name": "Acme - 50 seats",
         "created_at": "2026-04-28", "amount": "48000", "status": "open", "closed_at": ""},
        {"opportunity_id": "O2", "rep_id": "R007", "account": "Globex", "name": "Globex pilot",
         "created_at": "2026-03-02", "amount": "12000.50", "status": "won", "closed_at": "2026-06-15"},
        {"opportunity_id": "O3", "rep_id": "R008", "account": "Initech", "name": "Initech renewal",
         "created_at": "2026-02-10", "amount": "0", "status": "lost", "closed_at": "2026-05-01"},
    ],
    "activities": [
        {"activity_id": "A1", "rep_id": "00123", "occurred_at": "2026-05-04 10:30", "type": "call",
         "opportunity_id": "O1", "logged_at": "2026-05-04 11:00"},
        {"activity_id": "A2", "rep_id": "00123", "occurred_at": "2026-05-05 09:00", "type": "Phone Call",
         "opportunity_id": "", "logged_at": "2026-05-05"},
        {"activity_id": "A3", "rep_id": "R007", "occurred_at": "2026-05-06 14:00", "type": "email",
         "opportunity_id": "O2", "logged_at": ""},
        {"activity_id": "A4", "rep_id": "R008", "occurred_at": "2026-05-07 16:15", "type": "demo",
         "opportunity_id": "O3", "logged_at": "2026-05-08 08:00"},
    ],
    "stage_history": [
        {"opportunity_id": "O1", "stage": "Discovery", "entered_at": "2026-04-28"},
        {"opportunity_id": "O1", "stage": "Qualification", "entered_at": "2026-05-10"},
        {"opportunity_id": "O2", "stage": "Discovery", "entered_at": "2026-03-02"},
        {"opportunity_id": "O2", "stage": "Proposal", "entered_at": "2026-04-01"},
        {"opportunity_id": "O3", "stage": "Discovery", "entered_at": "2026-02-10"},
    ],
    "commitments": [
        {"commitment_id": "K1", "rep_id": "00123", "agreed_on": "2026-09-01", "start": "2026-09-01",
         "end": "2026-09-30", "metric": "calls_per_week", "baseline": "5", "target": "10",
         "follow_up": "Ask me on Fridays", "note": "", "supersedes": ""},
        {"commitment_id": "K2", "rep_id": "00123", "agreed_on": "2026-09-15", "start": "2026-09-15",
         "end": "2026-10-15", "metric": "calls_per_week", "baseline": "5", "target": "8",
         "follow_up": "", "note": "lowered", "supersedes": "K1"},
    ],
    "coaching_sessions": [
        {"rep_id": "00123", "held_on": "2026-09-01", "manager": "Maya Chen"},
        {"rep_id": "R008", "held_on": "2026-09-02", "manager": "Omar Haddad"},
    ],
    "self_assessments": [
        {"rep_id": "00123", "date": "2026-09-01", "topic": "Discovery", "score": "3"},
        {"rep_id": "R007", "date": "2026-09-01", "topic": "Proposal", "score": "4.5"},
    ],
}


def clean_tables() -> dict[str, list[dict]]:
    """A fresh deep copy of the clean team (cells are strings, as in a CSV)."""
    return copy.deepcopy(_CLEAN)


def write_folder(path: Path, tables: dict[str, list[dict]] | None = None, *, process_toml: str | None = PROCESS_TOML,
                 sep: str = ",", line_end: str = "\n", encoding: str = "utf-8", columns: dict | None = None,
                 parquet: tuple[str, ...] = ()) -> Path:
    """Write ``tables`` (default: the clean team) as a data folder and return its path.

    Parameters
    ----------
    columns : dict of table -> list of column names, optional
        Header to write (default: the keys of the first row, or the schema's columns).
    parquet : tables to write as Parquet (all columns as text) instead of CSV.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tables = clean_tables() if tables is None else tables
    for name, rows in tables.items():
        if rows is None:
            continue
        cols = (columns or {}).get(name) or (list(rows[0]) if rows else TABLES[name].column_names)
        if name in parquet:
            pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows], columns=cols).astype("string").to_parquet(
                path / f"{name}.parquet")
            continue
        lines = [sep.join(cols)] + [sep.join(_cell(r.get(c, ""), sep) for c in cols) for r in rows]
        (path / f"{name}.csv").write_bytes((line_end.join(lines) + line_end).encode(encoding))
    if process_toml is not None:
        (path / "process.toml").write_text(process_toml, encoding="utf-8")
    return path


def _cell(value: str, sep: str) -> str:
    value = str(value)
    if sep in value or '"' in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value
