"""The team's mapped sales process (``process.toml``) and the registry of commitment metrics.

A data folder may hold a ``process.toml``; every key is optional and falls back to the
defaults below. Example::

    [process]
    stages = ["Discovery", "Qualification", "Proposal", "Negotiation"]
    week_start = "monday"
    timezone = "Europe/Berlin"

    [activity_types]          # the CRM's own type names -> coachnb's canonical types
    "Phone Call" = "call"
    "Onsite" = "meeting"

    [thresholds]
    stalled_percentile = 75   # a deal is stalled above this percentile of team days-in-stage
    late_logging_days = 2     # logged more than this many days after it happened = late

    [commitment_metrics.linkedin_messages_per_week]
    label = "LinkedIn messages per week"
    kind = "activity_count"
    activity_types = ["other"]
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from .errors import ConfigError

ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "other")
STATUSES = ("open", "won", "lost")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_STAGES = ("Discovery", "Qualification", "Proposal", "Negotiation")

# Metric kinds a commitment can be measured by; reports, validation and the CLI all read this.
METRIC_KINDS = ("activity_count", "opportunities_created", "stage_advancements", "logged_on_time_share")


@dataclass(frozen=True)
class CommitmentMetric:
    """A behaviour a rep can commit to, measured per week.

    Attributes
    ----------
    name : str
        Identifier used in ``commitments.metric`` (e.g. ``calls_per_week``).
    label : str
        Plain-words label for reports.
    kind : str
        One of :data:`METRIC_KINDS`.
    activity_types : tuple of str
        Canonical activity types counted, for ``kind == "activity_count"``.
    unit : str
        Unit of one week's value (``"calls"``, ``"share"`` ...).
    """

    name: str
    label: str
    kind: str
    activity_types: tuple[str, ...] = ()
    unit: str = "per week"


def _default_metrics() -> dict[str, CommitmentMetric]:
    m = [
        CommitmentMetric("calls_per_week", "calls per week", "activity_count", ("call",), "calls"),
        CommitmentMetric("emails_per_week", "emails per week", "activity_count", ("email",), "emails"),
        CommitmentMetric("meetings_per_week", "meetings per week", "activity_count", ("meeting",), "meetings"),
        CommitmentMetric("demos_per_week", "demos per week", "activity_count", ("demo",), "demos"),
        CommitmentMetric("activities_per_week", "activities per week", "activity_count", ACTIVITY_TYPES, "activities"),
        CommitmentMetric("opportunities_created_per_week", "new opportunities per week", "opportunities_created", (), "opportunities"),
        CommitmentMetric("stage_advancements_per_week", "stage advancements per week", "stage_advancements", (), "advancements"),
        CommitmentMetric("logged_on_time_share", "share of activities logged on time", "logged_on_time_share", (), "share"),
    ]
    return {x.name: x for x in m}


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs for flags. Units are in the names (days, percent, weeks)."""

    stalled_percentile: float = 75.0
    late_logging_days: float = 2.0
    #: a rep is flagged behind when a leading indicator is below this team percentile
    behind_percentile: float = 25.0
    #: weeks before a change kept out of its baseline (Ashenfelter's dip)
    baseline_gap_weeks: int = 2
    #: weeks of history a baseline needs before any "did it move" verdict
    min_pre_weeks: int = 8
    #: practical-equivalence band for "no meaningful change", as a rate ratio half-width
    equivalence_margin: float = 0.15
    #: days after which a rep is overdue for a 1:1
    cadence_days: int = 21
    #: a team figure (median, band, total) is shown only when it pools at least this many other
    #: reps, so that no teammate's own figure can be recognised; 3 or more
    min_teammates: int = 3


@dataclass(frozen=True)
class ProcessConfig:
    """The team's sales process as coachnb needs it.

    Attributes
    ----------
    stages : tuple of str
        Open stages in the order a buyer passes through them. Won and lost are
        statuses of the opportunity, not stages.
    activity_type_map : dict
        CRM type name (matched case-insensitively) -> canonical type in :data:`ACTIVITY_TYPES`.
    week_start : str
        First day of the reporting week (``"monday"`` ...).
    timezone : str
        IANA zone; naive timestamps in the data are read as local time in this zone.
    thresholds : Thresholds
    commitment_metrics : dict of str -> CommitmentMetric
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    activity_type_map: dict[str, str] = field(default_factory=dict)
    week_start: str = "monday"
    timezone: str = "UTC"
    thresholds: Thresholds = field(default_factory=Thresholds)
    commitment_metrics: dict[str, CommitmentMetric] = field(default_factory=_default_metrics)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def week_freq(self) -> str:
        """pandas period frequency whose weeks start on :attr:`week_start`."""
        end = WEEKDAYS[(WEEKDAYS.index(self.week_start) - 1) % 7]
        return "W-" + end[:3].upper()

    def canonical_activity_type(self, raw: str) -> str | None:
        """Map a CRM type name to a canonical type; ``None`` when unknown."""
        key = str(raw).strip().lower()
        if key in ACTIVITY_TYPES:
            return key
        lowered = {k.strip().lower(): v for k, v in self.activity_type_map.items()}
        return lowered.get(key)

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)


def week_start(ts: pd.Series | pd.DatetimeIndex, config: ProcessConfig) -> pd.Series:
    """Start of the reporting week (local midnight, naive) of each timestamp.

    Parameters
    ----------
    ts : Series of datetime64 (tz-aware or naive)
        Naive values are taken as local time in ``config.timezone``.
    config : ProcessConfig

    Returns
    -------
    Series of naive datetime64, the local date of the week's first day.
    """
    s = pd.Series(ts)
    if s.dt.tz is not None:
        s = s.dt.tz_convert(config.timezone).dt.tz_localize(None)
    return s.dt.to_period(config.week_freq).dt.start_time


def load_config(data_dir: str | Path | None) -> ProcessConfig:
    """Read ``process.toml`` from ``data_dir``; defaults for everything absent.

    Raises
    ------
    ConfigError
        With the file name and the key that is wrong.
    """
    if data_dir is None:
        return ProcessConfig()
    path = Path(data_dir) / "process.toml"
    if not path.exists():
        return ProcessConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    return config_from_dict(raw, source=path.name)


def config_from_dict(raw: dict, source: str = "process.toml") -> ProcessConfig:
    """Build a :class:`ProcessConfig` from parsed TOML, checking every value."""
    proc = raw.get("process", {})
    stages = tuple(proc.get("stages", DEFAULT_STAGES))
    if not stages or not all(isinstance(s, str) and s.strip() for s in stages):
        raise ConfigError(f"{source}: [process] stages must be a non-empty list of names")
    if len(set(stages)) != len(stages):
        raise ConfigError(f"{source}: [process] stages has a name twice: {list(stages)}")
    week = str(proc.get("week_start", "monday")).lower()
    if week not in WEEKDAYS:
        raise ConfigError(f"{source}: [process] week_start must be a weekday name, not {week!r}")
    tz = str(proc.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: [process] timezone {tz!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None

    type_map = {str(k): str(v).lower() for k, v in raw.get("activity_types", {}).items()}
    bad = {k: v for k, v in type_map.items() if v not in ACTIVITY_TYPES}
    if bad:
        raise ConfigError(f"{source}: [activity_types] maps to unknown types {bad}; use one of {ACTIVITY_TYPES}")

    th_raw = raw.get("thresholds", {})
    known = Thresholds.__dataclass_fields__
    unknown = set(th_raw) - set(known)
    if unknown:
        raise ConfigError(f"{source}: [thresholds] has unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        thresholds = Thresholds(**{k: type(getattr(Thresholds, k))(v) for k, v in th_raw.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [thresholds] {exc}") from None

    metrics = _default_metrics()
    for name, spec in raw.get("commitment_metrics", {}).items():
        kind = spec.get("kind", "activity_count")
        if kind not in METRIC_KINDS:
            raise ConfigError(f"{source}: [commitment_metrics.{name}] kind must be one of {METRIC_KINDS}")
        types = tuple(spec.get("activity_types", ()))
        if kind == "activity_count" and (not types or any(t not in ACTIVITY_TYPES for t in types)):
            raise ConfigError(f"{source}: [commitment_metrics.{name}] activity_types must list types from {ACTIVITY_TYPES}")
        metrics[name] = CommitmentMetric(name, spec.get("label", name.replace("_", " ")), kind, types, spec.get("unit", "per week"))

    return ProcessConfig(stages=stages, activity_type_map=type_map, week_start=week, timezone=tz,
                         thresholds=thresholds, commitment_metrics=metrics)
