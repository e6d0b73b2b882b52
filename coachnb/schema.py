"""The data contract: which tables a data folder holds and what their columns mean.

This module is the single source of truth for column names and types. The loader
(:func:`coachnb.loading.load`) enforces it, ``docs/data.md`` documents it, the demo generator
(:mod:`coachnb.demo`) writes it and the importers (:mod:`coachnb.importers`) map onto it.

After loading, column dtypes are:

=========  =====================================================================
kind       pandas dtype
=========  =====================================================================
id         ``string`` (ids are text: ``00123`` stays ``00123``)
text       ``string``
datetime   ``datetime64[ns, <config.timezone>]`` (naive input is local time)
date       same as datetime, at local midnight
float      ``float64`` (NaN where an optional value is empty)
choice     ``string`` holding one of the allowed values
=========  =====================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .config import ACTIVITY_TYPES, STATUSES, ProcessConfig


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | text | datetime | date | float | choice
    required: bool  # the column must be present
    meaning: str
    example: str
    nullable: bool = False  # empty cells allowed (optional columns are always nullable)
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str  # file stem: <name>.csv or <name>.parquet
    required: bool  # the file must exist (others may be absent: partial-data mode, with a warning)
    key: str | None  # unique id column, if any
    columns: tuple[Column, ...]
    meaning: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


C = Column
TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table("reps", True, "rep_id", (
            C("rep_id", "id", True, "Unique id of the rep", "R007"),
            C("name", "text", True, "Rep's display name", "Ana Souza"),
            C("team", "text", True, "Team the rep belongs to", "West"),
            C("manager", "text", True, "Manager who coaches the rep", "Maya Chen"),
            C("hire_date", "date", True, "First day in the role", "2024-03-04"),
            C("region", "text", False, "Sales region", "EMEA", nullable=True),
            C("quota_per_quarter", "float", False, "Quota per quarter, in the team's currency", "250000", nullable=True),
        ), "One row per rep."),
        Table("activities", False, "activity_id", (
            C("activity_id", "id", True, "Unique id of the activity", "A000123"),
            C("rep_id", "id", True, "Rep who did it (must be in reps)", "R007"),
            C("occurred_at", "datetime", True, "When it happened", "2026-05-04 10:30"),
            C("type", "choice", True, "call, email, meeting, demo or other (CRM names mapped in process.toml)", "call",
              choices=ACTIVITY_TYPES),
            C("opportunity_id", "id", False, "Opportunity it relates to (must be in opportunities)", "O00042", nullable=True),
            C("logged_at", "datetime", False, "When it was entered into the CRM (data-capture timeliness)",
              "2026-05-05 09:00", nullable=True),
        ), "One row per sales activity."),
        Table("opportunities", True, "opportunity_id", (
            C("opportunity_id", "id", True, "Unique id of the opportunity", "O00042"),
            C("rep_id", "id", True, "Owner (must be in reps)", "R007"),
            C("account", "text", True, "Customer account", "Acme GmbH"),
            C("name", "text", True, "Deal name", "Acme - 50 seats"),
            C("created_at", "datetime", True, "When the opportunity was created", "2026-04-28"),
            C("amount", "float", True, "Deal value in the team's currency (not negative); empty when unknown, "
              "which is not the same as 0", "48000", nullable=True),
            C("status", "choice", True, "open, won or lost", "open", choices=STATUSES),
            C("closed_at", "datetime", False, "When it was won or lost (required unless open)", "2026-07-15",
              nullable=True),
            C("stage", "text", False, "Current stage of an open deal (one of process.toml's stages); used "
              "when there is no stage history", "Proposal", nullable=True),
        ), "One row per opportunity (deal)."),
        Table("stage_history", False, None, (
            C("opportunity_id", "id", True, "Opportunity (must be in opportunities)", "O00042"),
            C("stage", "text", True, "Stage entered (one of process.toml's stages)", "Proposal"),
            C("entered_at", "datetime", True, "When the opportunity entered the stage", "2026-05-20"),
        ), "One row per stage an opportunity entered."),
        Table("commitments", False, "commitment_id", (
            C("commitment_id", "id", True, "Unique id of the commitment", "K0007"),
            C("rep_id", "id", True, "Rep who committed (must be in reps)", "R007"),
            C("agreed_on", "date", True, "Date of the 1:1 where it was agreed", "2026-09-01"),
            C("start", "date", True, "First day of the commitment", "2026-09-01"),
            C("end", "date", True, "Last day of the commitment (not before start)", "2026-09-30"),
            C("metric", "text", True, "What is measured (a commitment metric, e.g. calls_per_week)", "calls_per_week"),
            C("baseline", "float", True, "Level before, in the metric's unit per week", "5"),
            C("target", "float", True, "Agreed level, in the metric's unit per week", "10"),
            C("follow_up", "text", False, "How the rep asked to be followed up if it slips (`commit add` puts a "
              "`'` before text starting with = + - @, so a spreadsheet shows it as text)", "Ask me on Fridays",
              nullable=True),
            C("note", "text", False, "The manager's note from the 1:1: shown in the manager's report only (the "
              "same `'` rule as follow_up)", "Focus on existing accounts", nullable=True),
            C("supersedes", "id", False, "commitment_id this row replaces (history is never rewritten)", "K0005",
              nullable=True),
            C("note_for_rep", "text", False, "A note from the 1:1 for the rep too: shown in both reports (the same "
              "`'` rule)", "Start with the Acme renewal", nullable=True),
        ), "One row per agreed behaviour change."),
        Table("coaching_sessions", False, None, (
            C("rep_id", "id", True, "Rep coached (must be in reps)", "R007"),
            C("held_on", "date", True, "Date of the 1:1", "2026-09-01"),
            C("manager", "text", True, "Who held it", "Maya Chen"),
        ), "Optional: one row per 1:1 held."),
        Table("self_assessments", False, None, (
            C("rep_id", "id", True, "Rep (must be in reps)", "R007"),
            C("date", "date", True, "When the rep scored themself", "2026-09-01"),
            C("topic", "text", True, "A stage or skill", "Discovery"),
            C("score", "float", True, "1 (weak) to 5 (strong)", "3"),
        ), "Optional: the rep's own view of their skills."),
    ]
}
del C

OPTIONAL_TABLES = tuple(name for name, t in TABLES.items() if not t.required)


@dataclass(repr=False)
class Dataset:
    """A loaded, validated data folder.

    Every frame has exactly the columns of its :data:`TABLES` entry (optional columns
    are added, empty, when the file lacks them) with the dtypes listed in this module's
    docstring. Optional tables that are absent are empty frames with those columns.

    Attributes
    ----------
    excluded : DataFrame
        Rows left out while loading, with columns ``file, row, reason`` (never silent).
    warnings : list of Problem
        Problems that did not stop loading.
    fingerprint : str
        Hash of the input files and config, for caching and the batch manifest.
    """

    reps: pd.DataFrame
    activities: pd.DataFrame
    opportunities: pd.DataFrame
    stage_history: pd.DataFrame
    commitments: pd.DataFrame
    coaching_sessions: pd.DataFrame
    self_assessments: pd.DataFrame
    config: ProcessConfig = field(default_factory=ProcessConfig)
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "row", "reason"]))
    warnings: list = field(default_factory=list)
    fingerprint: str = ""
    data_dir: str | None = None
    #: which tables were present in the folder (partial data: pipeline-only mode)
    present: frozenset = frozenset()

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def __repr__(self) -> str:
        """One line: the folder, the rows of each table provided, and the rows left out."""
        counts = ", ".join(f"{name} {len(self.table(name)):,}" for name in TABLES if name in self.present)
        left_out = f"; {len(self.excluded):,} row(s) left out" if len(self.excluded) else ""
        return f"Dataset({self.data_dir or 'in memory'}: {counts or 'no tables'}{left_out})"

    def has(self, name: str) -> bool:
        """True when the table was provided and holds at least one row."""
        return name in self.present and len(self.table(name)) > 0


def empty_frame(table: str, tz: str = "UTC") -> pd.DataFrame:
    """An empty frame with the columns and dtypes of ``table``."""
    cols = {}
    for c in TABLES[table].columns:
        if c.kind in ("datetime", "date"):
            cols[c.name] = pd.Series([], dtype=f"datetime64[ns, {tz}]")
        elif c.kind == "float":
            cols[c.name] = pd.Series([], dtype="float64")
        else:
            cols[c.name] = pd.Series([], dtype="string")
    return pd.DataFrame(cols)
