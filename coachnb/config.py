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

    [presentation]            # how amounts are written and the paper PDFs are printed on
    currency = "GBP"          # an ISO 4217 code, or the symbol itself ("£", "kr"); none by default
    thousands_separator = "," # ",", ".", " ", "'" or ""
    currency_position = "before"  # or "after": "12.900 €"
    paper = "A4"              # or "Letter"

    [results]
    quarter_to_date = "day_before"  # "won this quarter so far" ends the day before the 1:1,
                                    # or "inclusive": deals won on the day of the 1:1 count too

    [commitment_metrics.linkedin_messages_per_week]
    label = "LinkedIn messages per week"
    kind = "activity_count"
    activity_types = ["other"]

:func:`config_from_dict` checks every section and key: TOML types (a boolean is not a number,
one name is not a list of names), each threshold's range (:data:`THRESHOLD_RANGES`) and known
keys only, with a "did you mean" for a typo; a key that was ignored would silently mean its
default (``timezon =`` would mean UTC). It reports every problem at once, one a line, in one
:class:`~coachnb.errors.ConfigError`, which ``coachnb validate`` lists as ``invalid_config``.
"""
from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from .errors import ConfigError
from .formatting import CURRENCY_SYMBOLS, Currency

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
    #: weeks after a change before its effect on new pipeline can show ("did it move" post window starts here)
    pipeline_lag_weeks: int = 2
    #: practical-equivalence band for "no meaningful change", as a rate ratio half-width
    equivalence_margin: float = 0.15
    #: days after which a rep is overdue for a 1:1
    cadence_days: int = 21
    #: a team figure (median, band, total) is shown only when it pools at least this many other
    #: reps, so that no teammate's own figure can be recognised; 3 or more
    min_teammates: int = 3


PAPER_SIZES = ("A4", "Letter")
THOUSANDS_SEPARATORS = (",", ".", " ", "\u00a0", "\u202f", "'", "")


@dataclass(frozen=True)
class Presentation:
    """How reports write amounts and on which paper their PDFs are printed (``[presentation]``).

    Attributes
    ----------
    currency : formatting.Currency
        The symbol, its side and the thousands separator every amount is written with
        (:func:`coachnb.formatting.fmt_money`); by default no currency is named.
    paper : str
        ``"A4"`` or ``"Letter"``: the page size of PDFs (:mod:`coachnb.pdf`).
    """

    currency: Currency = field(default_factory=Currency)
    paper: str = "A4"


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
    presentation : Presentation
        Currency, thousands separator and paper size.
    quarter_to_date : str
        ``"day_before"`` (default): "won this quarter so far" counts up to the day before the
        1:1; ``"inclusive"``: the day of the 1:1 too (``[results] quarter_to_date``).
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    activity_type_map: dict[str, str] = field(default_factory=dict)
    week_start: str = "monday"
    timezone: str = "UTC"
    thresholds: Thresholds = field(default_factory=Thresholds)
    commitment_metrics: dict[str, CommitmentMetric] = field(default_factory=_default_metrics)
    presentation: Presentation = field(default_factory=Presentation)
    quarter_to_date: str = "day_before"

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
        With the file name and the key that is wrong: every wrong key at once, one a line;
        a TOML syntax error with its line and column; a file that is not UTF-8 text.
    """
    if data_dir is None:
        return ProcessConfig()
    path = Path(data_dir) / "process.toml"
    if not path.exists():
        return ProcessConfig()
    if not path.is_file():
        raise ConfigError(f"{path.name}: is not a file (a folder or a special file has that name)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path.name}: is not UTF-8 text (byte {data[exc.start]:#04x} on line {line}); "
                          "save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table; thousands of them exhaust the stack
        raise ConfigError(f"{path.name}: not valid TOML: arrays or tables nested too deeply") from None
    return config_from_dict(raw, source=path.name)


@dataclass(frozen=True)
class _Range:
    """The values a threshold may take: a whole number or any number, between two bounds."""

    whole: bool
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    unit: str = ""

    def rule(self) -> str:
        """The range in words, as an error message states it."""
        kind = "a whole number" if self.whole else "a number"
        low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        high = f"less than {self.high:g}" if self.high_open else f"at most {self.high:g}"
        unit = f" ({self.unit})" if self.unit else ""
        return f"must be {kind} {low} and {high}{unit}"

    def holds(self, value: int | float) -> bool:
        """Whether ``value`` is within the bounds (its type is checked by the caller)."""
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


# Every threshold's range. Upper bounds on days and weeks (ten years) keep date arithmetic far
# from pandas' overflow; percentiles exclude 0 and 100, where "above the percentile" is empty or all.
THRESHOLD_RANGES = {
    "stalled_percentile": _Range(False, 0, 100, True, True, "a percentile"),
    "late_logging_days": _Range(False, 0, 3650, unit="days; 0 = any delay is late"),
    "behind_percentile": _Range(False, 0, 100, True, True, "a percentile"),
    "baseline_gap_weeks": _Range(True, 0, 520, unit="weeks"),
    "min_pre_weeks": _Range(True, 1, 520, unit="weeks"),
    "pipeline_lag_weeks": _Range(True, 0, 26, unit="weeks"),
    "equivalence_margin": _Range(False, 0, 1, True, True, "a rate-ratio half-width, e.g. 0.15"),
    "cadence_days": _Range(True, 1, 3650, unit="days"),
    "min_teammates": _Range(True, 3, 10_000, unit="other reps"),
}

SECTIONS = ("process", "activity_types", "thresholds", "commitment_metrics", "presentation", "results")
QUARTER_TO_DATE = ("day_before", "inclusive")
PRESENTATION_KEYS = ("currency", "thousands_separator", "currency_position", "paper")
PROCESS_KEYS = ("stages", "week_start", "timezone")
METRIC_KEYS = ("label", "kind", "activity_types", "unit")


class _Problems:
    """Every problem of one ``process.toml``, so that one edit can fix them all."""

    def __init__(self, source: str):
        self.source = source
        self.messages: list[str] = []

    def add(self, where: str, text: str) -> None:
        self.messages.append(f"{self.source}: {where} {text}")

    def raise_if_any(self) -> None:
        if self.messages:
            # one line per problem; Problem.format and the CLI print the message as it is
            raise ConfigError("\n    ".join(self.messages))


def _shown(value) -> str:
    """A value's TOML type and a short repr of it, for an error message."""
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
             (dict, "table"))
    kind = next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def _known_keys(table: dict, known, where: str, problems: _Problems) -> None:
    """An error for each key of ``table`` not in ``known``, with a "did you mean" for a typo."""
    known = [str(k) for k in known]
    for key in table:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
        problems.add(where, f"has an unknown key {str(key)!r}; {hint}")


def _table(raw: dict, name: str, problems: _Problems) -> dict:
    """Section ``name`` of ``raw`` ({} when absent or, with an error, when it is not a table)."""
    value = raw.get(name, {})
    if isinstance(value, dict):
        return value
    problems.add(f"[{name}]", f"must be a table (a [{name}] section), not {_shown(value)}")
    return {}


def _string_list(value, where: str, what: str, problems: _Problems) -> tuple[str, ...] | None:
    """``value`` as a tuple of strings, or ``None`` (with an error) when it is not an array of them."""
    if not isinstance(value, list):
        problems.add(where, f"must be an array of {what}, e.g. [\"a\", \"b\"], not {_shown(value)}")
        return None
    wrong = [v for v in value if not isinstance(v, str)]
    if wrong:
        problems.add(where, f"must hold only {what} (text in quotes), not {_shown(wrong[0])}")
        return None
    return tuple(value)


def _stages(proc: dict, problems: _Problems) -> tuple[str, ...]:
    stages = _string_list(proc.get("stages", list(DEFAULT_STAGES)), "[process] stages", "stage names", problems)
    if stages is None:
        return DEFAULT_STAGES
    if not stages or not all(s.strip() for s in stages):
        problems.add("[process] stages", "must be a non-empty list of names (no empty name)")
    elif len(set(stages)) != len(stages):
        problems.add("[process] stages", f"has a name twice: {list(stages)}")
    return stages


def _zone(value, problems: _Problems) -> str:
    """The IANA zone name ``value`` if both zoneinfo and pandas can use it, else "UTC" with an error."""
    rule = "is not an IANA time zone (e.g. 'Europe/Berlin')"
    if not isinstance(value, str):
        problems.add("[process] timezone", f"must be a time zone name in quotes, not {_shown(value)}")
        return "UTC"
    try:
        ZoneInfo(value)
        pd.Timestamp("2026-01-01", tz="UTC").tz_convert(value)
    except Exception:  # noqa: BLE001 - names of folders, files too long, NULs ... raise many kinds; all mean "no zone"
        problems.add("[process] timezone", f"{value[:60]!r} {rule}")
        return "UTC"
    return value


def _process(raw: dict, problems: _Problems) -> tuple[tuple[str, ...], str, str]:
    """``[process]``: stages, week start and time zone."""
    proc = _table(raw, "process", problems)
    _known_keys(proc, PROCESS_KEYS, "[process]", problems)
    stages = _stages(proc, problems)
    week = proc.get("week_start", "monday")
    if not isinstance(week, str) or week.lower() not in WEEKDAYS:
        shown = repr(week) if isinstance(week, str) else _shown(week)
        problems.add("[process] week_start", f"must be a weekday name ({', '.join(WEEKDAYS)}), not {shown}")
        week = "monday"
    return stages, week.lower(), _zone(proc.get("timezone", "UTC"), problems)


def _activity_types(raw: dict, problems: _Problems) -> dict[str, str]:
    """``[activity_types]``: CRM type name -> canonical type, each value checked."""
    type_map: dict[str, str] = {}
    seen: dict[str, str] = {}
    for crm, target in _table(raw, "activity_types", problems).items():
        where = f"[activity_types] {str(crm)!r}"
        if not isinstance(target, str) or target.lower() not in ACTIVITY_TYPES:
            problems.add(where, f"must map to one of {', '.join(ACTIVITY_TYPES)}, not "
                                f"{repr(target) if isinstance(target, str) else _shown(target)}")
            continue
        target = target.lower()
        key = str(crm).strip().lower()
        if key in ACTIVITY_TYPES and key != target:
            # canonical names are never looked up in the map, so this line would be ignored in silence
            problems.add(where, f"is already coachnb's type {key!r}; it cannot be mapped to {target!r}")
        elif seen.get(key, target) != target:
            problems.add(where, f"maps to {target!r} but the same name (ignoring case) maps to {seen[key]!r}")
        seen.setdefault(key, target)
        type_map[str(crm)] = target
    return type_map


def _thresholds(raw: dict, problems: _Problems) -> Thresholds:
    """``[thresholds]``: each a number (never a boolean) in its range; defaults for the rest."""
    th_raw = _table(raw, "thresholds", problems)
    _known_keys(th_raw, THRESHOLD_RANGES, "[thresholds]", problems)
    values = {}
    for key, value in th_raw.items():
        rng = THRESHOLD_RANGES.get(key)
        if rng is None:
            continue
        where = f"[thresholds] {key}"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            problems.add(where, f"{rng.rule()}, not {_shown(value)}")
        elif rng.whole and isinstance(value, float) and not value.is_integer():
            problems.add(where, f"{rng.rule()}, not {value!r}")
        elif not rng.holds(value):
            problems.add(where, f"{rng.rule()}, not {value!r}")
        else:
            values[key] = int(value) if rng.whole else float(value)
    return Thresholds(**values)


def _metric(name: str, spec, problems: _Problems) -> CommitmentMetric | None:
    """One ``[commitment_metrics.<name>]`` table as a metric, or ``None`` with its errors."""
    where = f"[commitment_metrics.{name}]"
    if not isinstance(spec, dict):
        problems.add(where, f"must be a table with label, kind and activity_types, not {_shown(spec)}")
        return None
    before = len(problems.messages)
    if not name.strip():
        problems.add("[commitment_metrics]", "has a metric with an empty name")
    _known_keys(spec, METRIC_KEYS, where, problems)
    label = spec.get("label", name.replace("_", " "))
    if not isinstance(label, str) or not label.strip():
        problems.add(f"{where} label", f"must be a non-empty text, not {_shown(label)}")
    unit = spec.get("unit", "per week")
    if not isinstance(unit, str):
        problems.add(f"{where} unit", f"must be a text, not {_shown(unit)}")
    kind = spec.get("kind", "activity_count")
    if not isinstance(kind, str) or kind not in METRIC_KINDS:
        problems.add(f"{where} kind", f"must be one of {', '.join(METRIC_KINDS)}, not {_shown(kind)}")
    types = _string_list(spec.get("activity_types", []), f"{where} activity_types", "activity types", problems)
    if types is not None and kind == "activity_count" and (not types or any(t not in ACTIVITY_TYPES for t in types)):
        problems.add(f"{where} activity_types", f"must list types from {', '.join(ACTIVITY_TYPES)}, not {list(types)}")
    elif types and kind in METRIC_KINDS and kind != "activity_count":
        problems.add(f"{where} activity_types", f"is only used with kind = \"activity_count\", not {kind!r}")
    if len(problems.messages) > before:
        return None
    return CommitmentMetric(name, label, kind, types or (), unit)


def _currency_symbol(value, problems: _Problems) -> str:
    """The sign ``[presentation] currency`` names: a known ISO code's symbol, a code, or the symbol itself."""
    if not isinstance(value, str):
        problems.add("[presentation] currency", f"must be a currency code or symbol in quotes, not {_shown(value)}")
        return ""
    code = value.strip()
    if code.upper() in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[code.upper()]
    # a sign is written beside every amount: no digits (they would read as part of the number),
    # no spaces or control characters, short enough to be a sign
    if not code or len(code) > 4 or any(ch.isdigit() or ch.isspace() or not ch.isprintable() for ch in code):
        problems.add("[presentation] currency", f"must be an ISO 4217 code (e.g. 'GBP', 'USD', 'EUR') or a "
                                                f"symbol of at most 4 characters without digits or spaces, not {code[:60]!r}")
        return ""
    return code


def _presentation(raw: dict, problems: _Problems) -> Presentation:
    """``[presentation]``: the currency, its position, the thousands separator and the paper size."""
    pres = _table(raw, "presentation", problems)
    _known_keys(pres, PRESENTATION_KEYS, "[presentation]", problems)
    symbol = _currency_symbol(pres["currency"], problems) if "currency" in pres else ""
    sep = pres.get("thousands_separator", ",")
    if not isinstance(sep, str) or sep not in THOUSANDS_SEPARATORS:
        shown = " or ".join(repr(x) for x in THOUSANDS_SEPARATORS)
        problems.add("[presentation] thousands_separator", f"must be one of {shown}, not "
                                                           f"{repr(sep) if isinstance(sep, str) else _shown(sep)}")
        sep = ","
    position = pres.get("currency_position", "before")
    if position not in ("before", "after"):
        problems.add("[presentation] currency_position", f"must be \"before\" or \"after\", not "
                                                         f"{repr(position) if isinstance(position, str) else _shown(position)}")
        position = "before"
    paper = pres.get("paper", "A4")
    known = {p.lower(): p for p in PAPER_SIZES}
    if not isinstance(paper, str) or paper.lower() not in known:
        problems.add("[presentation] paper", f"must be one of {', '.join(PAPER_SIZES)}, not "
                                             f"{repr(paper) if isinstance(paper, str) else _shown(paper)}")
        paper = "A4"
    return Presentation(Currency(symbol, position == "before", sep), known[paper.lower()])


def config_from_dict(raw: dict, source: str = "process.toml") -> ProcessConfig:
    """Build a :class:`ProcessConfig` from parsed TOML, checking every section, key and value.

    Parameters
    ----------
    raw : dict
        The parsed file (``tomllib.loads``); every section and key optional.
    source : str
        File name the errors name.

    Raises
    ------
    ConfigError
        Listing every problem, one a line, each naming ``source``, the section and key and
        the rule broken; unknown keys with a "did you mean" for a near miss.
    """
    problems = _Problems(source)
    if not isinstance(raw, dict):
        problems.add("the file", f"must hold TOML tables, not {_shown(raw)}")
        problems.raise_if_any()
    _known_keys(raw, SECTIONS, "the top level", problems)
    stages, week, tz = _process(raw, problems)
    type_map = _activity_types(raw, problems)
    thresholds = _thresholds(raw, problems)
    metrics = _default_metrics()
    for name, spec in _table(raw, "commitment_metrics", problems).items():
        metric = _metric(str(name), spec, problems)
        if metric is not None:
            metrics[metric.name] = metric
    presentation = _presentation(raw, problems)
    quarter_to_date = _results(raw, problems)
    problems.raise_if_any()
    return ProcessConfig(stages=stages, activity_type_map=type_map, week_start=week, timezone=tz,
                         thresholds=thresholds, commitment_metrics=metrics, presentation=presentation,
                         quarter_to_date=quarter_to_date)


def _results(raw: dict, problems: _Problems) -> str:
    """``[results]``: which days "won this quarter so far" counts."""
    res = _table(raw, "results", problems)
    _known_keys(res, ("quarter_to_date",), "[results]", problems)
    value = res.get("quarter_to_date", "day_before")
    if value not in QUARTER_TO_DATE:
        problems.add("[results] quarter_to_date", f"must be \"day_before\" or \"inclusive\", not {_shown(value)}")
        return "day_before"
    return value
