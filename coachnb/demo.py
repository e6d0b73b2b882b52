"""A deterministic, realistic demo team with planted, known effects (``coachnb demo-data``).

The generator is a small causal model of a sales team. Everything is drawn from one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments always give
byte-identical files.

Activity (per rep, day and activity type)::

    log rate[r, w] = log level_r + team_shock[team, w] + ar1_r[w]        (weekly, AR(1) noise)
    rate[r, d, t]  = exp(log rate) * gamma_rw * gamma_rwt * mix_r[t]
                     * season_team[d] * weekday[d] * ramp_r[d]             (per day)
    count[r, d, t] ~ Poisson(rate)          -> gamma-Poisson (negative binomial) weekly counts

``season`` holds quarter-end pushes, an August dip and a Christmas/New Year dip, scaled per
team. A kept commitment adds ``Poisson(max(target_rate - rate, 0))`` extra activities of the
committed type inside its window, so the rep reaches about the target (holiday weeks included).

Opportunities are created from *organic* activity with a lag (kernel over 1-4 weeks)::

    mu[r, w] = opp_base_r * sum_l kernel[l] * effective_activity[r, w - l] / expected_r
    created[r, d] ~ Poisson(mu[r, week(d)] * weekday[d] * lift[r, d])

``lift`` is the planted effect: ``> 1`` only for ``kept_effect`` commitments, from
``start + lag_weeks`` to ``end + lag_weeks``. The extra activity of a ``kept_no_effect``
commitment never enters ``effective_activity``, so it truly does not change opportunity
creation. Each opportunity then walks the stages with per-rep conversion and lognormal
days in stage; outcomes after ``end`` are cut off (the deal is open, its stage history ends at
its current stage).

The planted truth (commitment categories, lifts, lags, funnel leaks, late loggers, base
rates) is returned as a dict and written to ``ground_truth.json``, which the loader ignores.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .config import ACTIVITY_TYPES, DEFAULT_STAGES
from .schema import TABLES

__all__ = ["generate_demo_data", "write_demo_data", "process_toml", "DEMO_TIMEZONE", "CATEGORIES", "LEAK_TYPES"]

DEMO_TIMEZONE = "Europe/London"
CATEGORIES = ("kept_effect", "kept_no_effect", "not_kept", "none")
LEAK_TYPES = ("none", "discovery_leak", "qualification_leak", "proposal_stall", "negotiation_leak")

_BURN_IN_WEEKS = 6  # simulated before the data starts so lags and AR(1) noise are warmed up
_SECONDS_PER_DAY = 86_400
_DAY0_WEEKDAY = 0  # day 0 of the simulation (sim_start) is always a Monday
_N_TYPES = len(ACTIVITY_TYPES)  # call, email, meeting, demo, other
_TYPE_INDEX = {t: i for i, t in enumerate(ACTIVITY_TYPES)}
_METRIC_TYPE = {"calls_per_week": "call", "meetings_per_week": "meeting"}
# relative weight of one activity of each type in creating opportunities (meetings and demos count most)
_OPP_WEIGHT = np.array([1.0, 0.4, 3.0, 4.0, 0.3])
# share of the opportunity-creating effect of activity l = 1..4 weeks earlier (peak at 2-3 weeks)
_LAG_KERNEL = np.array([0.15, 0.35, 0.30, 0.20])
# activity by weekday (Mon..Sun), before normalizing; weekends are nearly empty
_WEEKDAY = np.array([1.0, 1.05, 1.0, 0.95, 0.8, 0.06, 0.03])
# activity on the days around Christmas and New Year: (month, day) -> multiplier
_XMAS = {(12, 22): 0.7, (12, 23): 0.55, (12, 24): 0.25, (12, 25): 0.03, (12, 26): 0.03, (12, 27): 0.2,
         (12, 28): 0.25, (12, 29): 0.3, (12, 30): 0.3, (12, 31): 0.2, (1, 1): 0.03, (1, 2): 0.6}

# The default team's plan: rep i follows _PLAN[i % 24]. Early entries cover every category so
# that small teams (reps=4) still hold one of each. Fields: main commitment category, metric,
# funnel leak, late logger, special case.
_PLAN = [
    ("kept_effect", "calls_per_week", "none", False, ""),
    ("kept_no_effect", "calls_per_week", "discovery_leak", False, ""),
    ("not_kept", "meetings_per_week", "proposal_stall", False, ""),
    ("none", None, "none", False, ""),
    ("kept_effect", "meetings_per_week", "negotiation_leak", False, ""),
    ("kept_no_effect", "meetings_per_week", "none", True, ""),
    ("not_kept", "calls_per_week", "qualification_leak", False, ""),
    ("none", None, "none", False, "overdue_coaching"),
    ("kept_effect", "calls_per_week", "none", False, ""),
    ("kept_no_effect", "calls_per_week", "proposal_stall", False, ""),
    ("not_kept", "calls_per_week", "none", False, ""),
    ("none", None, "discovery_leak", False, ""),
    ("kept_effect", "meetings_per_week", "none", False, ""),
    ("kept_no_effect", "meetings_per_week", "none", False, ""),
    ("not_kept", "meetings_per_week", "none", False, ""),
    ("none", None, "negotiation_leak", False, ""),
    ("kept_effect", "calls_per_week", "none", False, ""),
    ("none", None, "none", False, "few_deals"),
    ("kept_no_effect", "calls_per_week", "none", False, ""),
    ("not_kept", "calls_per_week", "none", False, ""),
    ("kept_effect", "calls_per_week", "none", False, ""),
    ("none", None, "none", False, "overdue_coaching"),
    ("none", None, "none", False, "recent_hire"),
    ("none", None, "none", False, "mid_period_hire"),
]
# plan slots with a commitment running at `end`: slot -> (behaviour, metric); slot 11's is revised once
_CURRENT = {0: ("not_kept", "meetings_per_week"), 3: ("kept_no_effect", "calls_per_week"),
            9: ("not_kept", "calls_per_week"), 11: ("kept_no_effect", "calls_per_week"),
            15: ("not_kept", "meetings_per_week")}
_SUPERSEDED_SLOT = 11
_SELF_ASSESSMENT_SLOTS = (0, 1, 2, 6, 13)
# the stage (position in DEFAULT_STAGES) a rep with each funnel leak overrates in self-assessments
_LEAK_STAGE = {"discovery_leak": 0, "qualification_leak": 1, "proposal_stall": 2, "negotiation_leak": 3}

_REP_NAMES = [
    "Zoë Ångström", "José Núñez", "Aisha Rahman", "Tom Fletcher", "Priya Natarajan", "Liam O'Connor",
    "Mei Lin Wong", "Kwame Mensah", "Sofia Rossi", "Jakub Kowalski", "Fatima Al-Sayed", "Hannah Schmidt",
    "Diego Herrera", "Chloé Dubois", "Ravi Kapoor", "Grace Okafor", "Ethan Brooks", "Yuki Tanaka",
    "Amara Nwosu", "Lars Eriksson", "Siobhán Murphy", "Noah Williams", "Leila Haddad", "Mateo García",
]
_FIRST = ["Ana", "Ben", "Carla", "Dev", "Elif", "Finn", "Gita", "Hugo", "Ines", "Jon", "Kemi", "Luca", "Mara",
          "Nils", "Olu", "Paula", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Viktor", "Wen", "Xavier", "Yara",
          "Zain", "Björn", "Céline", "Dagny", "Émile", "Jürgen", "Łucja", "Nour", "Sinéad", "Tomás", "Ayşe"]
_LAST = ["Adams", "Bauer", "Costa", "Dlamini", "Evans", "Fischer", "Gómez", "Hughes", "Ivanova", "Jensen",
         "Khan", "López", "Mahlangu", "Novak", "Osei", "Park", "Quispe", "Reyes", "Singh", "Takahashi", "Ueda",
         "Varga", "Walsh", "Xu", "Yilmaz", "Zielińska", "Ó Briain", "Søndergaard", "Nguyen", "Mbeki"]
_TEAMS = [("Thames", "London & South East", "Maya Chen"),
          ("Pennine", "North of England", "Oluwaseun Adeyemi"),
          ("Clyde", "Scotland & Ireland", "Ingrid Larsen")]
_TEAM_EXTRA = ["Severn", "Mersey", "Tyne", "Trent", "Avon", "Tamar", "Wye", "Ouse", "Tweed", "Dee"]
_REGION_EXTRA = ["Midlands", "Wales & West", "East Anglia", "Northern Ireland", "South West"]
_ACCOUNT_A = ["Acme", "Brightwater", "Northwind", "Kestrel", "Harbour", "Summit", "Bluebell", "Ironbridge",
              "Lumen", "Meridian", "Oakridge", "Pioneer", "Quayside", "Redwood", "Silverline", "Thistle",
              "Union", "Vantage", "Westgate", "Yew Tree", "Zenith", "Albion", "Beacon", "Cobalt", "Delta",
              "Evergreen", "Falcon", "Granite", "Heron", "Juniper", "Kingfisher", "Larch", "Mosaic", "Nimbus",
              "Orchid", "Pebble", "Riverside", "Saffron", "Tidewater", "Willow", "Müller", "Nordlicht", "Société",
              "Ørsted", "Čapek", "Rossi", "Bergström", "Fjord", "Alder", "Compass"]
_ACCOUNT_B = ["Logistics", "Foods", "Health", "Engineering", "Media", "Labs", "Retail", "Energy", "Finance",
              "Systems", "Analytics", "Brewing", "Motors", "Pharma", "Textiles", "Robotics", "Homes", "Travel",
              "Insurance", "Design", "Software", "Capital", "Packaging", "Outdoor", "Dental"]
_ACCOUNT_C = ["Ltd", "plc", "GmbH", "AB", "SA", "BV", "& Co", "Group", "Inc", "AG", "Oy", "SRL"]
_DEAL_SUFFIX = ["{n} seats", "Renewal", "Expansion", "Pilot", "Platform", "Team licence", "{n} users", "Phase 2"]
_FOLLOW_UPS = ["Check in on Friday afternoons", "Ask me at the Monday stand-up",
               "Ping me on Slack on Wednesday mornings", "Look at my call log in our next 1:1",
               "Send me a reminder mid-week", "Call it out if the dashboard is red on Thursday", None]
_NOTES = ["Focus on existing accounts", "New territory after the reorg, needs pipeline",
          "Prospect into mid-market logistics", "Use the new discovery call script",
          "Re-engage lapsed customers", "Block two hours of calling every morning",
          "Pipeline coverage is below 3x for next quarter", None]
_SKILLS = ("Prospecting", "CRM hygiene")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 of ``datetime64[D]`` values (1970-01-01 was a Thursday)."""
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


def _to_weekday(day: int, weekday_of_day0: int, forward: bool = True) -> int:
    """Move day index ``day`` off a weekend (to Monday when ``forward``, else Friday)."""
    wd = (day + weekday_of_day0) % 7
    if wd < 5:
        return day
    return day + (7 - wd) if forward else day - (wd - 4)


def _format_ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + zero-padded 1..n, at least ``width`` digits wide."""
    width = max(width, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)) if n else np.array([], str)


def _ascii_column(parts: list, n: int):
    """Arrow string array of fixed-width ASCII built column by column, without Python strings.

    ``parts`` holds literal strings and ``(values, width)`` pairs of non-negative integers,
    written zero-padded. Millions of rows take a fraction of a second (``strftime`` and
    ``str.zfill`` take seconds).
    """
    width = sum(len(p) if isinstance(p, str) else p[1] for p in parts)
    chunks = []
    for lo in range(0, max(n, 1), 1_000_000):  # chunks keep the byte matrix small
        hi = min(n, lo + 1_000_000)
        out = np.empty((hi - lo, width), dtype=np.uint8)
        col = 0
        for p in parts:
            if isinstance(p, str):
                out[:, col:col + len(p)] = np.frombuffer(p.encode("ascii"), dtype=np.uint8)
                col += len(p)
                continue
            values, w = p
            v = np.asarray(values[lo:hi], dtype=np.int64)
            for k in range(w - 1, -1, -1):
                v, digit = np.divmod(v, 10)
                out[:, col + k] = 48 + digit
            col += w
        offsets = np.arange(0, (hi - lo + 1) * width, width, dtype=np.int32)
        chunks.append(pa.StringArray.from_buffers(hi - lo, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())))
    return pa.chunked_array(chunks, type=pa.string())


def _format_ids_arrow(prefix: str, n: int, width: int):
    """Like :func:`_format_ids` for millions of rows."""
    return _ascii_column([prefix, (np.arange(1, n + 1), max(width, len(str(n))))], n)


def _format_seconds(epoch: np.datetime64, seconds: np.ndarray):
    """Arrow strings ``YYYY-MM-DD HH:MM:SS`` of ``epoch + seconds``; negative seconds -> null."""
    seconds = np.asarray(seconds, dtype=np.int64)
    missing = seconds < 0
    stamps = epoch.astype("datetime64[s]") + np.where(missing, 0, seconds).astype("timedelta64[s]")
    days = stamps.astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    months = days.astype("datetime64[M]")
    clock = (stamps - days).astype(np.int64)
    year = years.astype(np.int64) + 1970
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    text = _ascii_column([(year, 4), "-", (month, 2), "-", (day, 2), " ", (clock // 3600, 2), ":",
                          (clock // 60 % 60, 2), ":", (clock % 60, 2)], len(seconds))
    if missing.any():
        text = pc.if_else(pa.chunked_array([pa.array(~missing)]), text, pa.scalar(None, pa.string()))
    return text


def _date_text(epoch: np.datetime64, days) -> list[str]:
    """``YYYY-MM-DD`` of each of ``days`` (day counts) after the date ``epoch``."""
    return [str(epoch + np.timedelta64(int(d), "D")) for d in days]


def _round_to(x: float, step: float) -> float:
    """``x`` rounded to a multiple of ``step`` (half to even)."""
    return float(np.round(x / step) * step)


def _rep_name_pool(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct rep names: the 24 fixed ones, then random first-last combinations.

    Draws (a permutation) only when ``n`` > 24.
    """
    names = list(_REP_NAMES[:n])
    if n > len(names):
        combos = [f"{f} {l}" for f in _FIRST for l in _LAST]
        extra = rng.permutation(len(combos))
        taken = set(names)
        for i in extra:
            if len(names) == n:
                break
            if combos[i] not in taken:
                names.append(combos[i])
                taken.add(combos[i])
        k = 2
        while len(names) < n:  # more reps than name combinations: number the repeats
            names.append(f"{combos[len(names) % len(combos)]} {k}")
            k += 1 if len(names) % len(combos) == 0 else 0
    return names


def _teams(n_teams: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """``n_teams`` (team, region, manager): the 3 fixed teams, then river names with random managers."""
    teams = list(_TEAMS[:n_teams])
    managers_taken = {m for _, _, m in teams}
    i = 0
    while len(teams) < n_teams:
        base = _TEAM_EXTRA[i % len(_TEAM_EXTRA)]
        name = base if i < len(_TEAM_EXTRA) else f"{base} {i // len(_TEAM_EXTRA) + 1}"
        region = _REGION_EXTRA[i % len(_REGION_EXTRA)]
        while True:
            manager = f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}"
            if manager not in managers_taken:
                break
        managers_taken.add(manager)
        teams.append((name, region, manager))
        i += 1
    return teams


# --------------------------------------------------------------------------------------------
# the generator: one function per part of the story, drawn in the order of the driver
# --------------------------------------------------------------------------------------------

@dataclass
class _Calendar:
    """Where the simulated days lie; no random draws.

    Day indices count from ``sim_start`` (day 0, always a Monday); times are seconds since
    ``sim_start`` 00:00, read as naive local time in :data:`DEMO_TIMEZONE`.

    Attributes
    ----------
    end_day : numpy.datetime64
        The last day of data, ``end`` (``datetime64[D]``).
    data_start : numpy.datetime64
        Monday of the first week in the data, ``weeks`` weeks before the Monday of ``end``.
    sim_start : numpy.datetime64
        Day 0: ``_BURN_IN_WEEKS`` weeks before ``data_start``.
    n_weeks : int
        Simulated weeks: burn-in, the ``weeks`` of data and the week holding ``end``.
    first_data_day, last_data_day : int
        Day indices of ``data_start`` and of ``end``.
    end_weekday : int
        Weekday of ``end`` (Monday = 0).
    weekday_share : ndarray
        Per day index, the share of a week's activity done on that weekday (length ``n_days``).
    """

    end_day: np.datetime64
    data_start: np.datetime64
    sim_start: np.datetime64
    n_weeks: int
    first_data_day: int
    last_data_day: int
    end_weekday: int
    weekday_share: np.ndarray

    @property
    def n_days(self) -> int:
        """Simulated days, ``7 * n_weeks``."""
        return 7 * self.n_weeks

    @property
    def end_second(self) -> int:
        """The last second of ``end`` (seconds since ``sim_start``): later events are not in the export."""
        return (self.last_data_day + 1) * _SECONDS_PER_DAY - 1

    @property
    def epoch(self) -> np.datetime64:
        """``sim_start`` as ``datetime64[s]``, the origin of every time in seconds."""
        return np.datetime64(self.sim_start, "s")

    def day_text(self, day) -> str:
        """``YYYY-MM-DD`` of day index ``day``."""
        return str(self.sim_start + np.timedelta64(int(day), "D"))


@dataclass
class _People:
    """The team: who the reps are, the part of the planted story each plays, when each was hired.

    Attributes
    ----------
    rep_ids, names : list of str
        Per rep ``R001`` ... and display names.
    teams : list of (team, region, manager)
        One entry per team.
    team_of : ndarray of int
        Per rep, its index into ``teams``.
    plan : list of tuple
        Per rep, its row of ``_PLAN`` (category, metric, leak, late logger, special case).
    category, leak, special : list of str
        The plan's main commitment category, funnel leak and special case ("" for none).
    late_logger : ndarray of bool
        Reps who log activities days late.
    hire : ndarray of int
        Hire day index (negative: hired before ``sim_start``).
    """

    rep_ids: list[str]
    names: list[str]
    teams: list[tuple[str, str, str]]
    team_of: np.ndarray
    plan: list[tuple]
    category: list[str]
    leak: list[str]
    special: list[str]
    late_logger: np.ndarray
    hire: np.ndarray

    @property
    def n(self) -> int:
        """Number of reps."""
        return len(self.rep_ids)

    @property
    def n_teams(self) -> int:
        """Number of teams (one manager each)."""
        return len(self.teams)


@dataclass
class _Rates:
    """Each rep's true base rates (arrays over reps, or reps x something).

    Attributes
    ----------
    level : ndarray
        Activities per week, all types together, before seasonality and noise.
    mix : ndarray
        (rep, type) share of each activity type, rows summing to 1.
    opp_base : ndarray
        Opportunities created per week at the rep's usual activity.
    gamma_shape : ndarray
        Shape of the rep's weekly gamma multiplier (mean 1): smaller is more overdispersed.
    advance : ndarray
        (rep, stage) probability a deal moves on from each stage; the last is the win rate.
    stage_days : ndarray
        (rep, stage) median days a deal spends in each stage.
    deal_median : ndarray
        Median deal amount (currency units).
    log_lag_median_h : ndarray
        Log of the median hours between doing an activity and logging it.
    """

    level: np.ndarray
    mix: np.ndarray
    opp_base: np.ndarray
    gamma_shape: np.ndarray
    advance: np.ndarray
    stage_days: np.ndarray
    deal_median: np.ndarray
    log_lag_median_h: np.ndarray


@dataclass
class _Stream:
    """The activity stream, as counts per (rep, day index, activity type).

    Attributes
    ----------
    rate : ndarray of float
        Expected organic count (zero outside the rep's employment and after ``end``).
    organic : ndarray of int32
        What the rep did anyway; only this drives opportunity creation.
    extra : ndarray of int32
        Added by kept commitments (:meth:`_Commitments.add`); starts at zero.
    """

    rate: np.ndarray
    organic: np.ndarray
    extra: np.ndarray


@dataclass
class _Deals:
    """The opportunities, in order of creation (row ``j`` is ``ids[j]``).

    Attributes
    ----------
    rep : ndarray of int
        Rep index of each deal.
    created : ndarray of int64
        Creation time, seconds since ``sim_start``.
    entered : ndarray of int64
        (deal, stage) time the deal entered each stage, seconds; -1 = never, or after ``end``.
    closed : ndarray of int64
        Time the deal is won or lost, seconds (maybe after ``end``: see ``is_closed``).
    is_closed : ndarray of bool
        Closed by the end of ``end``.
    status : ndarray of str
        ``"open"``, ``"won"`` or ``"lost"`` as of ``end``.
    ids : ndarray of str
        ``O000001`` ...
    amount : ndarray of float
        Deal amount (currency units, rounded to 100).
    accounts, names : list of str
        Account and deal name.
    quoted : str or None
        Id of the deal with the awkward (quoted) name, None when there are no deals.
    """

    rep: np.ndarray
    created: np.ndarray
    entered: np.ndarray
    closed: np.ndarray
    is_closed: np.ndarray
    status: np.ndarray
    ids: np.ndarray
    amount: np.ndarray
    accounts: list[str]
    names: list[str]
    quoted: str | None


def _calendar(weeks: int, end: str) -> _Calendar:
    """The calendar of ``weeks`` weeks of data up to ``end`` (``YYYY-MM-DD``), after the burn-in."""
    end_day = np.datetime64(end, "D")
    end_weekday = int(_weekday(np.array([end_day]))[0])
    end_monday = end_day - end_weekday
    data_start = end_monday - np.timedelta64(7 * weeks, "D")
    sim_start = data_start - np.timedelta64(7 * _BURN_IN_WEEKS, "D")
    n_weeks = _BURN_IN_WEEKS + weeks + 1
    return _Calendar(
        end_day=end_day, data_start=data_start, sim_start=sim_start, n_weeks=n_weeks,
        first_data_day=7 * _BURN_IN_WEEKS, last_data_day=int((end_day - sim_start).astype(int)),
        end_weekday=end_weekday, weekday_share=(_WEEKDAY / _WEEKDAY.sum())[np.arange(7 * n_weeks) % 7],
    )


def _people(n: int, cal: _Calendar, rng: np.random.Generator) -> _People:
    """``n`` reps in teams of about 8, each following the plan slot ``i % 24``, with hire days.

    Draws the extra teams' managers, the extra rep names and the hire days.
    """
    n_teams = max(1, int(round(n / 8)))
    teams = _teams(n_teams, rng)
    names = _rep_name_pool(n, rng)
    plan = [_PLAN[i % len(_PLAN)] for i in range(n)]
    special = [p[4] for p in plan]
    hire = -rng.integers(200, 2200, size=n) + cal.first_data_day
    end_monday = cal.last_data_day - cal.end_weekday
    for i, s in enumerate(special):
        if s == "recent_hire":
            hire[i] = end_monday - 7 * 9
        elif s == "mid_period_hire":
            hire[i] = max(cal.first_data_day, end_monday - 7 * 35)
    return _People(
        rep_ids=list(_format_ids("R", n, 3)), names=names, teams=teams, team_of=np.arange(n) % n_teams,
        plan=plan, category=[p[0] for p in plan], leak=[p[2] for p in plan], special=special,
        late_logger=np.array([p[3] for p in plan]), hire=hire,
    )


def _rep_rates(people: _People, rng: np.random.Generator) -> _Rates:
    """Each rep's activity level and mix, opportunity rate, funnel and logging habit.

    The plan's funnel leaks and special cases are written over the drawn values.
    """
    n = people.n
    category, special = np.array(people.category), np.array(people.special)
    level = np.exp(rng.normal(np.log(55.0), 0.3, size=n))
    mix_centre = np.array([0.38, 0.33, 0.12, 0.05, 0.12])
    mix = rng.dirichlet(mix_centre * 40, size=n)
    for i in range(n):  # a few archetypes so mixes differ visibly
        if i % 6 == 1:
            mix[i] = rng.dirichlet(np.array([0.2, 0.55, 0.1, 0.05, 0.1]) * 40)  # emailer
        elif i % 6 == 4:
            mix[i] = rng.dirichlet(np.array([0.5, 0.2, 0.17, 0.06, 0.07]) * 40)  # caller, meets a lot
    opp_base = np.clip(np.exp(rng.normal(np.log(1.3), 0.3, size=n)), 0.6, 3.0)
    # a planted effect needs enough deals to be seen
    opp_base[category == "kept_effect"] = np.maximum(opp_base[category == "kept_effect"], 1.3)
    opp_base[special == "few_deals"] = 0.07
    gamma_shape = rng.uniform(15.0, 40.0, size=n)  # week-to-week CV of 16-26 %

    typical_advance = np.array([0.7, 0.7, 0.65, 0.6])  # about 1 in 5 new deals is won
    advance = 1 / (1 + np.exp(-(np.log(typical_advance / (1 - typical_advance)) + rng.normal(0, 0.25, size=(n, 4)))))
    stage_days = np.array([10.0, 18.0, 21.0, 24.0]) * np.exp(rng.normal(0, 0.2, size=(n, 4)))
    for i, lk in enumerate(people.leak):
        if lk == "discovery_leak":
            advance[i, 0] = 0.22
        elif lk == "qualification_leak":
            advance[i, 1] = 0.25
        elif lk == "proposal_stall":
            stage_days[i, 2] = 70.0
            advance[i, 2] = min(advance[i, 2], 0.45)
        elif lk == "negotiation_leak":
            advance[i, 3] = 0.2
    deal_median = np.exp(rng.normal(np.log(38_000), 0.35, size=n))
    # drawn for every rep (late loggers too) so the draws do not depend on the plan
    log_lag_median_h = np.where(people.late_logger, np.log(3.5 * 24), np.log(rng.uniform(0.7, 3.0, size=n)))
    return _Rates(level=level, mix=mix, opp_base=opp_base, gamma_shape=gamma_shape, advance=advance,
                  stage_days=stage_days, deal_median=deal_median, log_lag_median_h=log_lag_median_h)


def _seasonality(cal: _Calendar, n_teams: int, rng: np.random.Generator) -> np.ndarray:
    """Activity multiplier per (team, day index): holiday dips and quarter-end pushes.

    Each team feels the dips more or less strongly (a drawn amplitude); the quarter-end push
    of +15 % is the same for all.
    """
    dates = pd.DatetimeIndex(cal.sim_start + np.arange(cal.n_days).astype("timedelta64[D]"))
    month, dom = dates.month.to_numpy(), dates.day.to_numpy()
    season = np.ones(cal.n_days)
    season[month == 8] = 0.86  # summer holidays
    season[(month == 8) & (dom >= 8) & (dom <= 22)] = 0.78
    for (m, d), f in _XMAS.items():
        season[(month == m) & (dom == d)] = f
    quarter_end = np.isin(month, (3, 6, 9)) & (dom >= 18) | (month == 12) & (dom >= 8) & (dom <= 19)
    push = np.where(quarter_end, 1.15, 1.0)
    amplitude = rng.uniform(0.7, 1.25, size=n_teams)
    return np.exp(amplitude[:, None] * np.log(season)[None, :]) * push[None, :]


def _ar1_weeks(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) paths along the last axis (weeks), innovation sd ``sd``, coefficient ``phi``."""
    eps = rng.normal(0, sd, size=shape)
    out = np.empty(shape)
    out[..., 0] = eps[..., 0] / np.sqrt(1 - phi ** 2)
    for w in range(1, shape[-1]):  # loop over weeks only (~100), vectorized over reps
        out[..., w] = phi * out[..., w - 1] + eps[..., w]
    return out


def _organic_activity(people: _People, rates: _Rates, cal: _Calendar, season_team: np.ndarray,
                      rng: np.random.Generator) -> _Stream:
    """The activity each rep does anyway: a weekly latent rate spread over days and types.

    The weekly rate is the rep's level times a team AR(1) shock, the rep's own AR(1) noise and
    a gamma overdispersion; each (week, type) gets its own gamma noise. Days get the team's
    ``season_team`` (team, day index) multiplier, the weekday share and the new hire's ramp-up;
    nothing happens before hiring or after ``end``.
    """
    n = people.n
    team_shock = _ar1_weeks(rng, (people.n_teams, cal.n_weeks), 0.5, 0.07)
    rep_noise = _ar1_weeks(rng, (n, cal.n_weeks), 0.6, 0.10)
    weekly = rates.level[:, None] * np.exp(team_shock[people.team_of] + rep_noise)
    weekly *= rng.gamma(rates.gamma_shape[:, None], 1 / rates.gamma_shape[:, None], size=(n, cal.n_weeks))
    type_noise = rng.gamma(20.0, 1 / 20.0, size=(n, cal.n_weeks, _N_TYPES))

    day_index = np.arange(cal.n_days)
    active = (day_index[None, :] >= np.maximum(people.hire, cal.first_data_day - 7 * _BURN_IN_WEEKS)[:, None]) & \
             (day_index[None, :] <= cal.last_data_day)
    since_hire_weeks = (day_index[None, :] - people.hire[:, None]) / 7.0
    ramp = np.clip(0.3 + 0.7 * since_hire_weeks / 8.0, 0.0, 1.0) * active  # new hires ramp up over 8 weeks
    per_day = np.repeat(weekly, 7, axis=1) * season_team[people.team_of] * cal.weekday_share[None, :] * ramp
    rate = (per_day[:, :, None] * np.repeat(type_noise, 7, axis=1)) * rates.mix[:, None, :]
    organic = rng.poisson(rate).astype(np.int32)
    return _Stream(rate=rate, organic=organic, extra=np.zeros_like(organic))


def _coaching_sessions(people: _People, cal: _Calendar, rng: np.random.Generator
                       ) -> tuple[np.ndarray, list[list[int]]]:
    """1:1 days of each rep at a cadence of its own; ``overdue_coaching`` reps stopped 6-9 weeks ago.

    Returns
    -------
    cadence : ndarray
        Mean days between a rep's 1:1s.
    sessions : list of list of int
        Per rep, sorted 1:1 day indices (weekdays, in the data, after hiring). The commitments
        add the 1:1s at which they were agreed (:meth:`_Commitments.agree_before`).
    """
    cadence = rng.uniform(12, 26, size=people.n)
    sessions: list[list[int]] = []
    for i in range(people.n):
        start = max(cal.first_data_day, people.hire[i] + 7) + int(rng.integers(0, 10))
        stop = cal.last_data_day - 1
        if people.special[i] == "overdue_coaching":
            stop = cal.last_data_day - int(rng.integers(42, 64))
        gaps = rng.gamma(8.0, cadence[i] / 8.0, size=int(cal.n_days / 8) + 4)
        days = start + np.concatenate([[0.0], np.cumsum(gaps)]).round().astype(int)
        days = [_to_weekday(int(d), _DAY0_WEEKDAY, forward=bool(d % 2)) for d in days]
        sessions.append(sorted({d for d in days if cal.first_data_day <= d <= stop and d > people.hire[i]}))
    return cadence, sessions


def _monday_on_or_after(day: int) -> int:
    """The day index of the first Monday on or after day index ``day`` (day 0 is a Monday)."""
    return day + (-day) % 7


def _metric_step(metric: str) -> float:
    """Resolution of a commitment's baseline and target: whole calls, half meetings (per week)."""
    return 1.0 if metric == "calls_per_week" else 0.5


@dataclass
class _Commitments:
    """The commitments planned so far, and what keeping them does.

    Adding a commitment draws from ``rng``, adds the kept commitment's extra activities to
    ``stream.extra``, its planted effect to ``lift`` and the 1:1 it was agreed at to
    ``sessions`` (all in place).

    Attributes
    ----------
    lift : ndarray
        (rep, day index) multiplier on opportunity creation; 1 except in planted effects.
    rows : list of dict
        One per commitment in the order planned (``supersedes`` holds a position in it).
        Days are day indices; ``baseline`` and ``target`` are counts per week.
    """

    rng: np.random.Generator
    cal: _Calendar
    people: _People
    rates: _Rates
    stream: _Stream
    sessions: list[list[int]]
    lift: np.ndarray
    rows: list[dict] = field(default_factory=list)

    def weekly_level(self, i: int, t: int, day: int) -> float:
        """Rep ``i``'s mean weekly count of type ``t`` over up to 8 weeks before day ``day``.

        Counts the data weeks after hiring; with less than a week of those, the burn-in too.
        """
        hire = self.people.hire[i]
        lo = max(day - 56, self.cal.first_data_day, hire)
        if day - lo < 7:
            lo = max(day - 56, hire, 0)
        d = self.stream.organic[i, lo:day, t] + self.stream.extra[i, lo:day, t]
        return float(d.sum()) * 7.0 / max(day - lo, 1)

    def add(self, i: int, role: str, behaviour: str, metric: str, agreed: int, start: int, length: int,
            effect: bool, supersedes: int | None = None, window_end: int | None = None,
            baseline: float | None = None, target: float | None = None) -> dict:
        """Plan one commitment of rep ``i`` and make the rep behave accordingly.

        Parameters
        ----------
        role : str
            ``"early"``, ``"main"`` or ``"current"`` (for the ground truth).
        behaviour : str
            One of :data:`CATEGORIES` except ``"none"``.
        agreed, start : int
            Day indices it was agreed on and starts on; it runs ``length`` days.
        effect : bool
            Plant an opportunity lift of x1.8-2.5, 2-3 weeks after the window.
        supersedes : int, optional
            Position in ``rows`` of the commitment this one revises.
        window_end : int, optional
            Last day the rep behaves by it (when revised early); default its end.
        baseline, target : float, optional
            Per week; default the recent weekly level and 1.5-2 times it.

        Returns
        -------
        dict
            The new row of ``rows``.
        """
        rng, cal = self.rng, self.cal
        t = _TYPE_INDEX[_METRIC_TYPE[metric]]
        step = _metric_step(metric)
        if baseline is None:
            baseline = max(step, _round_to(self.weekly_level(i, t, start), step))
        if target is None:
            target = max(baseline + step, _round_to(baseline * rng.uniform(1.5, 2.0), step))
        kept = behaviour in ("kept_effect", "kept_no_effect")
        if not kept:  # a commitment not kept asks for more than the rep goes on doing anyway
            days = slice(start, min(start + length, cal.last_data_day + 1))
            if days.stop > days.start:
                usual = float(self.stream.organic[i, days, t].sum()) * 7.0 / (days.stop - days.start)
                target = max(target, _round_to(usual * 1.4, step))
        # a kept commitment reaches about its target, holiday weeks included (that is what keeping
        # it means, and what the report's adherence rule checks); the rep's organic activity
        # continues underneath, the extra activities make up the difference
        achieved = target * rng.uniform(0.95, 1.1) if kept else baseline
        stop = start + length - 1
        behave_until = min(stop if window_end is None else window_end, cal.last_data_day)
        if kept and behave_until >= start:
            days = slice(start, behave_until + 1)
            wanted = achieved * cal.weekday_share[days]
            self.stream.extra[i, days, t] += rng.poisson(
                np.maximum(wanted - self.stream.rate[i, days, t], 0.0)).astype(np.int32)
        planted_lift, lag = 1.0, 0
        if effect:
            planted_lift = float(np.round(rng.uniform(1.8, 2.5), 3))
            lag = int(rng.integers(2, 4))
            self.lift[i, start + 7 * lag: min(stop + 7 * lag, cal.n_days - 1) + 1] = planted_lift
        row = {"i": i, "role": role, "category": behaviour, "metric": metric, "agreed": agreed, "start": start,
               "stop": stop, "baseline": baseline, "target": target, "multiplier": achieved / baseline,
               "lift": planted_lift, "lag": lag, "supersedes": supersedes,
               "follow_up": _FOLLOW_UPS[int(rng.integers(len(_FOLLOW_UPS)))],
               "note": _NOTES[int(rng.integers(len(_NOTES)))]}
        self.rows.append(row)
        return row

    def agree_before(self, i: int, start: int) -> int:
        """Day index of a 1:1 a few weekdays before ``start`` (or on it), added to rep ``i``'s sessions."""
        day = _to_weekday(start - int(self.rng.choice([0, 3, 4, 5])), _DAY0_WEEKDAY, forward=False)
        day = max(day, self.people.hire[i] + 1)
        # the 1:1 replaces generated sessions in the same week (one 1:1 a week at most)
        self.sessions[i] = sorted([d for d in self.sessions[i] if abs(d - day) > 5] + [day])
        return day

    def metric_for(self, i: int, wanted: str) -> str:
        """The plan's ``wanted`` metric, or calls when rep ``i`` meets too rarely for a meeting target."""
        # nobody commits to 1.5 meetings a week: reps who meet rarely commit to calls instead
        if wanted == "meetings_per_week" and self.rates.level[i] * self.rates.mix[i, _TYPE_INDEX["meeting"]] < 3.0:
            return "calls_per_week"
        return wanted


def _past_commitments(book: _Commitments, i: int) -> None:
    """Rep ``i``'s finished commitments: an early one, then the plan's main one.

    The main commitment (not for category ``"none"``) ends 9-12 weeks before ``end`` so its
    effect can be evaluated; the early one ends at least 20 weeks before the main one starts
    so the main one has a clean baseline, and is left out when it does not fit (unless there
    is no main one: then it starts as early as the rep's history allows).
    """
    people, cal, rng = book.people, book.cal, book.rng
    category, hire = people.category[i], people.hire[i]
    main_start = None
    if category != "none":
        post_weeks = int(rng.integers(9, 13))
        length = int(rng.choice([56, 63, 70, 84, 91])) if category == "kept_effect" else \
            int(rng.choice([30, 42, 56, 63, 70, 84, 91]))
        main_start = max(7 * (cal.n_weeks - 1) - 7 * (post_weeks + int(np.ceil(length / 7))), cal.first_data_day + 7)
        main_start = max(main_start, _monday_on_or_after(hire + 14))
        early_start = _monday_on_or_after(max(cal.first_data_day + 7 * int(rng.integers(9, 13)), hire + 21))
    else:
        early_start = _monday_on_or_after(max(cal.first_data_day + 7 * int(rng.integers(9, 16)), hire + 21))
    early_len = int(rng.choice([30, 35, 42]))
    early_behaviour = "not_kept" if (category == "none" or i % 2) else "kept_no_effect"
    if people.special[i] == "recent_hire":
        early_behaviour = "kept_no_effect"
        early_len = 30
    fits = early_start + early_len - 1 < cal.last_data_day - 7 and (
        main_start is None or early_start + early_len - 1 <= main_start - 7 * 20)
    if fits or main_start is None:
        if not fits:  # no room at all (a very short history): start as soon as possible
            early_start = _monday_on_or_after(max(cal.first_data_day, hire + 7))
        early_metric = book.metric_for(i, "calls_per_week" if i % 3 else "meetings_per_week")
        book.add(i, "early", early_behaviour, early_metric, book.agree_before(i, early_start), early_start,
                 early_len, effect=False)
    if main_start is not None:
        book.add(i, "main", category, book.metric_for(i, people.plan[i][1]), book.agree_before(i, main_start),
                 main_start, length, effect=category == "kept_effect")


def _current_commitment(book: _Commitments, i: int) -> None:
    """The commitment rep ``i`` is working on at ``end``, for the plan slots in ``_CURRENT``.

    It started 3-5 weeks before ``end``. The ``_SUPERSEDED_SLOT``'s is revised two weeks in:
    a second row with a lower target supersedes the first, which stays as it was (history is
    never rewritten).
    """
    people, cal, rng = book.people, book.cal, book.rng
    slot = i % len(_PLAN)
    if slot not in _CURRENT or people.special[i] == "overdue_coaching":
        return
    behaviour, metric = _CURRENT[slot]
    metric = book.metric_for(i, metric)
    start = _monday_on_or_after(cal.last_data_day - int(rng.integers(21, 36)))
    length = max(30, (cal.last_data_day - start) + int(rng.integers(-2, 15)))
    if slot != _SUPERSEDED_SLOT:
        book.add(i, "current", behaviour, metric, book.agree_before(i, start), start, length, effect=False)
        return
    first = book.add(i, "current", behaviour, metric, book.agree_before(i, start), start, length,
                     effect=False, window_end=start + 13)
    revised = start + 14
    step = _metric_step(metric)
    book.add(i, "current", behaviour, metric, book.agree_before(i, revised), revised, length - 14,
             effect=False, supersedes=len(book.rows) - 1, baseline=first["baseline"],
             target=max(first["baseline"] + step, _round_to(first["target"] * 0.85, step)))


def _agree_commitments(people: _People, rates: _Rates, cal: _Calendar, stream: _Stream,
                       sessions: list[list[int]], rng: np.random.Generator) -> _Commitments:
    """Every rep's commitments, rep by rep: past ones, then the current one.

    Fills ``stream.extra`` and adds the 1:1s the commitments were agreed at to ``sessions``,
    in place; the returned book holds the rows and the planted opportunity ``lift``.
    """
    book = _Commitments(rng=rng, cal=cal, people=people, rates=rates, stream=stream, sessions=sessions,
                        lift=np.ones((people.n, cal.n_days)))
    for i in range(people.n):
        _past_commitments(book, i)
        _current_commitment(book, i)
    return book


def _create_opportunities(people: _People, rates: _Rates, cal: _Calendar, stream: _Stream, lift: np.ndarray,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New opportunities from the organic activity of 1-4 weeks earlier, times the planted ``lift``.

    Returns
    -------
    opp_rep, opp_day : ndarray of int
        Rep index and creation day index per deal, by rep then day.
    created : ndarray of int64
        Creation time (seconds since ``sim_start``), in working hours.
    """
    n, n_weeks = people.n, cal.n_weeks
    # the extra activity of kept commitments is left out: it must not create deals by itself
    effective = (stream.organic.reshape(n, n_weeks, 7, _N_TYPES).sum(axis=2) * _OPP_WEIGHT).sum(axis=2)
    expected = rates.level * (rates.mix * _OPP_WEIGHT).sum(axis=1)
    padded = np.concatenate([np.repeat(expected[:, None], 4, axis=1), effective], axis=1)
    lagged = sum(_LAG_KERNEL[l - 1] * padded[:, 4 - l: 4 - l + n_weeks] for l in range(1, 5))
    index = lagged / expected[:, None]
    rate_day = np.repeat(rates.opp_base[:, None] * index, 7, axis=1) * cal.weekday_share[None, :] * lift
    rate_day[:, :cal.first_data_day] = 0.0
    rate_day[:, cal.last_data_day + 1:] = 0.0
    rate_day[np.arange(cal.n_days)[None, :] < people.hire[:, None]] = 0.0
    counts = rng.poisson(rate_day)
    cell = np.flatnonzero(counts)
    cell = np.repeat(cell, counts.ravel()[cell])
    opp_rep, opp_day = np.divmod(cell, cal.n_days)
    created = opp_day * _SECONDS_PER_DAY + rng.integers(9 * 3600, 17 * 3600 + 1800, size=len(opp_rep))
    return opp_rep, opp_day, created


def _walk_stages(opp_rep: np.ndarray, opp_day: np.ndarray, created: np.ndarray, rates: _Rates,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk every deal through the stages with its rep's conversion and lognormal days in stage.

    Parameters are as returned by :func:`_create_opportunities`.

    Returns
    -------
    entered : ndarray of int64
        (deal, stage) time entered, seconds since ``sim_start``; -1 = never reached.
    won : ndarray of bool
    closed_day : ndarray of int64
        Day index the deal was won or lost (a weekday).
    """
    n_opps, n_stages = len(opp_rep), len(DEFAULT_STAGES)
    entered = np.full((n_opps, n_stages), -1, dtype=np.int64)
    entered[:, 0] = created
    alive = np.ones(n_opps, dtype=bool)
    won = np.zeros(n_opps, dtype=bool)
    closed_day = np.zeros(n_opps, dtype=np.int64)
    current_day = opp_day.copy()
    for s in range(n_stages):
        stall = rng.random(n_opps) < 0.1  # some deals sit far longer than usual
        days = rates.stage_days[opp_rep, s] * np.exp(rng.normal(0, 0.6, size=n_opps)) * np.where(stall, 3.0, 1.0)
        goes_on = rng.random(n_opps) < rates.advance[opp_rep, s]
        if s == n_stages - 1:
            slip = rng.random(n_opps) < 0.2  # the buyer's signature slips by weeks
            days = days + np.where(slip, rng.uniform(14, 45, size=n_opps), 0.0)
        days = np.where(goes_on, days, days * 1.4)  # losing a deal is noticed late
        nxt = current_day + np.maximum(1, np.round(days)).astype(np.int64)
        wd = (nxt + _DAY0_WEEKDAY) % 7
        nxt = nxt + np.where(wd >= 5, 7 - wd, 0)  # nothing changes stage at the weekend
        ends_here = alive & ~goes_on
        closed_day[ends_here] = nxt[ends_here]
        if s < n_stages - 1:
            moves = alive & goes_on
            entered[moves, s + 1] = nxt[moves] * _SECONDS_PER_DAY + rng.integers(9 * 3600, 18 * 3600,
                                                                                  size=int(moves.sum()))
            current_day = np.where(moves, nxt, current_day)
            alive = moves
        else:
            wins = alive & goes_on
            won[wins] = True
            closed_day[wins] = nxt[wins]
    return entered, won, closed_day


def _pull_to_quarter_end(closed_day: np.ndarray, won: np.ndarray, cal: _Calendar,
                         rng: np.random.Generator) -> np.ndarray:
    """Close day indices with 40 % of the wins due in the 3 weeks after a quarter's end moved before it.

    Many buyers sign in the last days of the quarter rather than early in the next; the
    moved deals close on a weekday 0-2 days before the quarter's last day.
    """
    close_dates = cal.sim_start + closed_day.astype("timedelta64[D]")
    months = close_dates.astype("datetime64[M]")
    quarter_last = (months.astype(np.int64) // 3 * 3 + 3).astype("datetime64[M]").astype("datetime64[D]") - 1
    to_quarter_end = (quarter_last - close_dates).astype(np.int64)
    pull = won & (to_quarter_end > 0) & (to_quarter_end <= 21) & (rng.random(len(won)) < 0.4)
    target_day = closed_day + to_quarter_end - rng.integers(0, 3, size=len(won))
    target_day = target_day - np.where((target_day + _DAY0_WEEKDAY) % 7 == 5, 1, 0)
    target_day = target_day - np.where((target_day + _DAY0_WEEKDAY) % 7 == 6, 2, 0)
    return np.where(pull & (target_day > closed_day), target_day, closed_day)


def _name_deals(opp_rep: np.ndarray, n_reps: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Account and deal name per deal: each rep works a territory of 18 accounts, with repeat business."""
    combos = len(_ACCOUNT_A) * len(_ACCOUNT_B) * len(_ACCOUNT_C)
    per_rep_accounts = 18
    n_opps = len(opp_rep)
    pool = rng.choice(combos, size=min(combos, n_reps * per_rep_accounts), replace=False)
    account_pick = (opp_rep * per_rep_accounts + rng.integers(0, per_rep_accounts, size=n_opps)) % len(pool)
    code = pool[account_pick]
    a, rest = np.divmod(code, len(_ACCOUNT_B) * len(_ACCOUNT_C))
    b, c = np.divmod(rest, len(_ACCOUNT_C))
    suffix_pick = rng.integers(0, len(_DEAL_SUFFIX), size=n_opps)
    seats = rng.choice([10, 15, 25, 40, 50, 75, 100, 250], size=n_opps)
    accounts = [f"{_ACCOUNT_A[x]} {_ACCOUNT_B[y]} {_ACCOUNT_C[z]}" for x, y, z in zip(a, b, c)]
    deal_names = [f"{acc} - {_DEAL_SUFFIX[s].format(n=k)}" for acc, s, k in zip(accounts, suffix_pick, seats)]
    return accounts, deal_names


def _opportunities(people: _People, rates: _Rates, cal: _Calendar, stream: _Stream, lift: np.ndarray,
                   rng: np.random.Generator) -> _Deals:
    """The deals: created, walked through the stages, closed (or open at ``end``), priced and named.

    Outcomes after ``end`` are cut off: such a deal is open and its stage history ends at its
    current stage.
    """
    opp_rep, opp_day, created = _create_opportunities(people, rates, cal, stream, lift, rng)
    entered, won, closed_day = _walk_stages(opp_rep, opp_day, created, rates, rng)
    closed_day = _pull_to_quarter_end(closed_day, won, cal, rng)
    n_opps = len(opp_rep)
    closed = np.maximum(closed_day * _SECONDS_PER_DAY + rng.integers(9 * 3600, 18 * 3600, size=n_opps),
                        entered.max(axis=1) + 60)
    is_closed = closed <= cal.end_second
    entered[entered > cal.end_second] = -1
    status = np.where(~is_closed, "open", np.where(won, "won", "lost"))

    # ids in order of creation
    order = np.lexsort((opp_rep, created))
    opp_rep, created, entered, closed, is_closed, status = (
        opp_rep[order], created[order], entered[order], closed[order], is_closed[order], status[order])
    ids = _format_ids("O", n_opps, 6)
    amount = np.round(rates.deal_median[opp_rep] * np.exp(rng.normal(0, 0.7, size=n_opps)), -2)
    amount = np.maximum(amount, 500.0)
    accounts, deal_names = _name_deals(opp_rep, people.n, rng)
    quoted = None
    if n_opps:
        # one awkward but valid name: quotes, an apostrophe and an ampersand (and a zero-value pilot)
        j = int(np.flatnonzero(opp_rep == opp_rep[0])[min(2, int((opp_rep == opp_rep[0]).sum()) - 1)])
        accounts[j] = "O'Brien & Sons"
        deal_names[j] = 'O\'Brien & Sons - "Pilot"'
        amount[j] = 0.0
        quoted = str(ids[j])
    return _Deals(rep=opp_rep, created=created, entered=entered, closed=closed, is_closed=is_closed,
                  status=status, ids=ids, amount=amount, accounts=accounts, names=deal_names, quoted=quoted)


def _activity_times(cal: _Calendar, stream: _Stream, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per activity in the data (organic and extra), with the time it happened.

    Returns
    -------
    act_rep, act_type : ndarray of int32
        Rep index and index into ``ACTIVITY_TYPES``, by rep, day, type.
    occurred : ndarray of int64
        Seconds since ``sim_start``: working hours; emails 7:00-20:00; meetings and demos on
        the half hour.
    """
    total = stream.organic + stream.extra
    total[:, :cal.first_data_day] = 0  # the burn-in weeks are simulated but not part of the data
    counts = total.ravel()
    del total  # the per-activity arrays below run to millions of rows: free what is done with
    cell = np.flatnonzero(counts)
    cell = np.repeat(cell, counts[cell])
    act_rep, rest = np.divmod(cell, cal.n_days * _N_TYPES)
    act_day, act_type = np.divmod(rest, _N_TYPES)
    del cell, rest, counts
    # int32 halves the memory of the millions of per-activity values
    act_rep, act_day, act_type = act_rep.astype(np.int32), act_day.astype(np.int32), act_type.astype(np.int32)
    n_act = len(act_rep)
    tod = np.empty(n_act, dtype=np.int64)
    slot_types = (act_type == _TYPE_INDEX["meeting"]) | (act_type == _TYPE_INDEX["demo"])
    tod[:] = rng.integers(int(8.5 * 3600), int(17.75 * 3600), size=n_act)
    is_email = act_type == _TYPE_INDEX["email"]
    tod[is_email] = rng.integers(7 * 3600, 20 * 3600, size=int(is_email.sum()))
    tod[slot_types] = rng.integers(18, 34, size=int(slot_types.sum())) * 1800
    occurred = act_day.astype(np.int64) * _SECONDS_PER_DAY + tod
    return act_rep, act_type, occurred


def _logging_times(act_rep: np.ndarray, occurred: np.ndarray, people: _People, rates: _Rates,
                   rng: np.random.Generator) -> np.ndarray:
    """When each activity was logged (seconds since ``sim_start``), in working hours.

    The lag is lognormal around the rep's median: minutes to hours for most reps, days for
    late loggers, and sometimes the next morning.
    """
    n_act = len(act_rep)
    lag = np.exp(rates.log_lag_median_h[act_rep] + rng.normal(0, 0.9, size=n_act)) * 3600
    next_morning = ~people.late_logger[act_rep] & (rng.random(n_act) < 0.06)
    lag = np.where(next_morning, rng.uniform(12, 30, size=n_act) * 3600, lag)
    logged = occurred + np.maximum(lag, 60).astype(np.int64)
    logged_tod = logged % _SECONDS_PER_DAY
    # nobody logs at night: shift into working hours (also keeps clear of DST-changing hours)
    logged = np.where(logged_tod < 7 * 3600, logged - logged_tod + 7 * 3600 + 1800 + logged_tod // 8, logged)
    return np.where(logged_tod >= 21 * 3600,
                    logged - logged_tod + _SECONDS_PER_DAY + 7 * 3600 + 1800 + (logged_tod - 21 * 3600) // 2,
                    logged)


def _link_to_deals(act_rep: np.ndarray, act_type: np.ndarray, occurred: np.ndarray, deals: _Deals,
                   cal: _Calendar, rng: np.random.Generator) -> np.ndarray:
    """Per activity, the position in ``deals`` of one of the rep's deals open at the time, or -1.

    Mostly meetings and demos are linked; the deal is one of the rep's 4 latest created before.
    """
    n_act = len(act_rep)
    link_p = np.array([0.2, 0.25, 0.7, 0.9, 0.1])[act_type]
    wants = rng.random(n_act) < link_p
    if not len(deals.rep):
        return np.full(n_act, -1, dtype=np.int64)
    span = np.int64(cal.n_days) * _SECONDS_PER_DAY + 1
    by_rep = np.lexsort((deals.created, deals.rep))
    opp_key = deals.rep[by_rep] * span + deals.created[by_rep]
    act_key = act_rep * span + occurred
    pos = np.searchsorted(opp_key, act_key, side="left") - 1 - rng.integers(0, 4, size=n_act)
    ok = wants & (pos >= 0)
    pos = np.clip(pos, 0, None)
    cand = by_rep[pos]
    ok &= (deals.rep[cand] == act_rep) & (deals.created[cand] < occurred) & \
        (~deals.is_closed[cand] | (deals.closed[cand] > occurred))
    return np.where(ok, cand, -1)


def _activities(people: _People, rates: _Rates, cal: _Calendar, stream: _Stream, deals: _Deals,
                rng: np.random.Generator) -> pd.DataFrame:
    """The ``activities`` table: as the CRM exports it at ``end``, in order of occurrence.

    Activities not yet logged at ``end`` are missing; a few rows (0.2 %, from an old
    integration) have no ``logged_at``.
    """
    act_rep, act_type, occurred = _activity_times(cal, stream, rng)
    logged = _logging_times(act_rep, occurred, people, rates, rng)
    in_crm = logged <= cal.end_second
    no_logged_at = rng.random(len(act_rep)) < 0.002
    keep = in_crm | no_logged_at
    act_rep, act_type, occurred, logged = act_rep[keep], act_type[keep], occurred[keep], logged[keep]
    logged = np.where(no_logged_at[keep], -1, logged)
    order = np.argsort(occurred * people.n + act_rep, kind="stable")
    act_rep, act_type, occurred, logged = act_rep[order], act_type[order], occurred[order], logged[order]
    del order, keep, in_crm, no_logged_at  # millions of rows: free before the links and the table
    opp_link = _link_to_deals(act_rep, act_type, occurred, deals, cal, rng)

    n_act, n_opps = len(act_rep), len(deals.rep)
    types_arr = pa.array(np.asarray(ACTIVITY_TYPES, dtype=object)[act_type], type=pa.string())
    opp_id_arr = pa.array(deals.ids.astype(object) if n_opps else np.array([], dtype=object), type=pa.string())
    link_arr = pc.take(opp_id_arr, pa.array(opp_link, mask=opp_link < 0)) if n_opps else \
        pa.nulls(n_act, type=pa.string())
    rep_id_arr = pa.array(np.asarray(people.rep_ids, dtype=object), type=pa.string())
    return pa.table({
        "activity_id": _format_ids_arrow("A", n_act, 7),
        "rep_id": pc.take(rep_id_arr, pa.array(act_rep)),
        "occurred_at": _format_seconds(cal.epoch, occurred),
        "type": types_arr,
        "opportunity_id": link_arr,
        "logged_at": _format_seconds(cal.epoch, logged),
    }).to_pandas()


def _opportunity_tables(deals: _Deals, people: _People, cal: _Calendar) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``opportunities`` and ``stage_history`` tables; no random draws.

    An open deal's ``stage`` is the last stage it entered, as a CRM export shows it.
    """
    n_opps = len(deals.rep)
    opportunities = pd.DataFrame({
        "opportunity_id": deals.ids.astype(object),
        "rep_id": np.asarray(people.rep_ids, dtype=object)[deals.rep],
        "account": deals.accounts,
        "name": deals.names,
        "created_at": _format_seconds(cal.epoch, deals.created).to_pylist(),
        "amount": deals.amount.astype(np.float64),
        "status": deals.status,
        "closed_at": _format_seconds(cal.epoch, np.where(deals.is_closed, deals.closed, -1)).to_pylist(),
    })
    sh_opp, sh_stage = np.nonzero(deals.entered >= 0)  # row-major: by deal, then stage in process order
    stage_history = pd.DataFrame({
        "opportunity_id": deals.ids.astype(object)[sh_opp] if n_opps else np.array([], dtype=object),
        "stage": np.asarray(DEFAULT_STAGES, dtype=object)[sh_stage],
        "entered_at": _format_seconds(cal.epoch, deals.entered[sh_opp, sh_stage]).to_pylist(),
    })
    last_stage = (stage_history.sort_values(["opportunity_id", "entered_at"], kind="stable")
                  .drop_duplicates("opportunity_id", keep="last").set_index("opportunity_id")["stage"])
    opportunities["stage"] = np.where(opportunities["status"] == "open",
                                      opportunities["opportunity_id"].map(last_stage).fillna(""), "")
    return opportunities, stage_history


def _reps_table(people: _People, rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> pd.DataFrame:
    """The ``reps`` table; the quarterly quota is a 5-30 % stretch on what the rep's funnel should win.

    Quotas are rounded to 5,000 (at least 5,000); a ``recent_hire`` has a half ramp quota.
    """
    win_through = rates.advance.prod(axis=1)
    expected_won = rates.opp_base * 13 * win_through * rates.deal_median * np.exp(0.7 ** 2 / 2)
    stretch = rng.uniform(1.05, 1.3, size=people.n)
    stretch[np.array(people.special) == "recent_hire"] = 0.5  # a ramp quota for the first quarters
    quota = np.maximum(5000.0, np.round(expected_won * stretch / 5000) * 5000)
    teams = [people.teams[t] for t in people.team_of]
    return pd.DataFrame({
        "rep_id": people.rep_ids,
        "name": people.names,
        "team": [t[0] for t in teams],
        "manager": [t[2] for t in teams],
        "hire_date": _date_text(cal.sim_start, people.hire),
        "region": [t[1] for t in teams],
        "quota_per_quarter": quota.astype(np.float64),
    })


def _number_commitments(rows: list[dict]) -> list[dict]:
    """The rows in the order they were agreed, each given ``id`` ``K0001``, ... in that order.

    Ties on the same day go by rep, then by planning order. Also sets ``supersedes_id``.
    """
    order = sorted(range(len(rows)), key=lambda k: (rows[k]["agreed"], rows[k]["i"], k))
    for rank, k in enumerate(order):
        rows[k]["id"] = f"K{rank + 1:04d}"
    for row in rows:
        row["supersedes_id"] = rows[row["supersedes"]]["id"] if row["supersedes"] is not None else None
    return [rows[k] for k in order]


def _commitments_table(agreed: list[dict], people: _People, cal: _Calendar) -> pd.DataFrame:
    """The ``commitments`` table from :func:`_number_commitments`' rows."""
    return pd.DataFrame({
        "commitment_id": [c["id"] for c in agreed],
        "rep_id": [people.rep_ids[c["i"]] for c in agreed],
        "agreed_on": _date_text(cal.sim_start, [c["agreed"] for c in agreed]),
        "start": _date_text(cal.sim_start, [c["start"] for c in agreed]),
        "end": _date_text(cal.sim_start, [c["stop"] for c in agreed]),
        "metric": [c["metric"] for c in agreed],
        "baseline": np.array([c["baseline"] for c in agreed], dtype=np.float64),
        "target": np.array([c["target"] for c in agreed], dtype=np.float64),
        "follow_up": [c["follow_up"] for c in agreed],
        "note": [c["note"] for c in agreed],
        "supersedes": [c["supersedes_id"] for c in agreed],
        "note_for_rep": [None] * len(agreed),  # the demo's notes are the managers' own
    })


def _sessions_table(people: _People, sessions: list[list[int]], cal: _Calendar,
                    rng: np.random.Generator) -> pd.DataFrame:
    """The ``coaching_sessions`` table: mostly the rep's manager; 4 % of 1:1s another manager covers."""
    s_rep, s_day, s_manager = [], [], []
    for i in range(people.n):
        for d in sessions[i]:
            own = people.teams[people.team_of[i]][2]
            cover = people.n_teams > 1 and rng.random() < 0.04
            s_rep.append(people.rep_ids[i])
            s_day.append(d)
            s_manager.append(people.teams[(people.team_of[i] + 1) % people.n_teams][2] if cover else own)
    return pd.DataFrame({"rep_id": s_rep, "held_on": _date_text(cal.sim_start, s_day), "manager": s_manager})


def _self_assessments(people: _People, sessions: list[list[int]], cal: _Calendar, rng: np.random.Generator
                      ) -> tuple[pd.DataFrame, dict[str, str]]:
    """The ``self_assessments`` table: reps of ``_SELF_ASSESSMENT_SLOTS`` score every stage and skill.

    They score at the 1:1 nearest half a year before ``end`` and at their last 1:1 (once when
    these are the same), 1-5, and overrate the stage where their funnel leaks.

    Returns
    -------
    frame : DataFrame
    blind_spots : dict of str -> str
        The funnel leak (maybe ``"none"``) of every rep who scored, by rep id.
    """
    rows, blind_spots = [], {}
    for i in range(people.n):
        if i % len(_PLAN) not in _SELF_ASSESSMENT_SLOTS or len(sessions[i]) < 2:
            continue
        first_day = min(sessions[i], key=lambda d: abs(d - (cal.last_data_day - 26 * 7)))
        last_day = sessions[i][-1]
        for when in sorted({first_day, last_day}):
            for topic in list(DEFAULT_STAGES) + list(_SKILLS):
                score = float(np.clip(np.round(rng.normal(3.4, 0.7)), 1, 5))
                stage_pos = DEFAULT_STAGES.index(topic) if topic in DEFAULT_STAGES else -1
                if stage_pos == _LEAK_STAGE.get(people.leak[i], -2):
                    score = 4.0  # the blind spot: confident exactly where the funnel leaks
                rows.append((people.rep_ids[i], cal.day_text(when), topic, score))
        blind_spots[people.rep_ids[i]] = people.leak[i]
    frame = pd.DataFrame(rows, columns=["rep_id", "date", "topic", "score"])
    frame["score"] = frame["score"].astype(np.float64)
    return frame, blind_spots


def _truth_commitments(agreed: list[dict], people: _People, cal: _Calendar) -> list[dict]:
    """``ground_truth.json``'s commitments: category, achieved activity multiplier, planted lift and lag.

    ``effect_start`` and ``effect_end`` are the commitment's window shifted by the lag (None
    without a planted effect); ``pre_weeks_in_data`` and ``post_weeks_in_data`` count the
    full weeks of data before its start (after hiring) and after its end.
    """
    out = []
    for c in agreed:
        lag_days = 7 * c["lag"]
        out.append({
            "commitment_id": c["id"], "rep_id": people.rep_ids[c["i"]], "role": c["role"],
            "category": c["category"], "metric": c["metric"], "agreed_on": cal.day_text(c["agreed"]),
            "start": cal.day_text(c["start"]), "end": cal.day_text(c["stop"]),
            "activity_multiplier": round(float(c["multiplier"]), 4),
            "lift": c["lift"], "lag_weeks": c["lag"],
            "effect_start": cal.day_text(c["start"] + lag_days) if c["lift"] != 1.0 else None,
            "effect_end": cal.day_text(c["stop"] + lag_days) if c["lift"] != 1.0 else None,
            "pre_weeks_in_data": int(max(0, c["start"] - max(cal.first_data_day, people.hire[c["i"]])) // 7),
            "post_weeks_in_data": int(max(0, cal.last_data_day - c["stop"]) // 7),
            "supersedes": c["supersedes_id"],
        })
    return out


def _truth_reps(people: _People, rates: _Rates, cal: _Calendar, cadence: np.ndarray,
                blind_spots: dict[str, str]) -> list[dict]:
    """``ground_truth.json``'s reps: the plan's roles and every true base rate, rounded."""
    out = []
    for i in range(people.n):
        out.append({
            "rep_id": people.rep_ids[i], "name": people.names[i], "team": people.teams[people.team_of[i]][0],
            "main_category": people.category[i], "funnel_leak": people.leak[i],
            "late_logger": bool(people.late_logger[i]), "special": people.special[i] or None,
            "hire_date": cal.day_text(people.hire[i]),
            "activities_per_week": round(float(rates.level[i]), 3),
            "activity_mix": {t: round(float(rates.mix[i, j]), 4) for j, t in enumerate(ACTIVITY_TYPES)},
            "opportunities_per_week": round(float(rates.opp_base[i]), 4),
            "stage_advance_probability": {s: round(float(rates.advance[i, j]), 4)
                                          for j, s in enumerate(DEFAULT_STAGES)},
            "median_days_in_stage": {s: round(float(rates.stage_days[i, j]), 2) for j, s in enumerate(DEFAULT_STAGES)},
            "median_logging_lag_hours": round(float(np.exp(rates.log_lag_median_h[i])), 3),
            "coaching_cadence_days": round(float(cadence[i]), 2),
            "self_assessment_blind_spot": blind_spots.get(people.rep_ids[i]),
        })
    return out


def generate_demo_data(reps: int = 24, weeks: int = 78, seed: int = 7, end: str = "2026-11-23"
                       ) -> tuple[dict[str, pd.DataFrame], dict]:
    """Simulate a sales team in memory.

    Parameters
    ----------
    reps : int
        Number of reps (24 gives the default team of 3 managers).
    weeks : int
        Full weeks of data before the week holding ``end`` (the data starts on a Monday).
        At least 45 weeks leave every evaluated commitment 20 weeks of history before it
        and 9-12 weeks after it.
    seed : int
        Seed of the single random generator; same arguments give identical tables.
    end : str
        Last day of data, ``YYYY-MM-DD`` (the demo coaching date).

    Returns
    -------
    tables : dict of str -> DataFrame
        One frame per table of :data:`coachnb.schema.TABLES`, exactly its columns, values as
        they are written: ids and text as ``str``, timestamps as ``"YYYY-MM-DD HH:MM:SS"``
        (naive local time in :data:`DEMO_TIMEZONE`), dates as ``"YYYY-MM-DD"``, numbers as
        ``float64``; empty optional cells are missing values.
    truth : dict
        The planted truth: ``args``, ``reps`` (per rep) and ``commitments`` (per commitment);
        see ``ground_truth.json``.
    """
    if reps < 1 or weeks < 4:
        raise ValueError("need reps >= 1 and weeks >= 4")
    # every part draws from this one generator in turn: calling them in another order (or
    # adding a draw) changes every file after that point
    rng = np.random.default_rng(seed)
    cal = _calendar(weeks, end)
    people = _people(reps, cal, rng)
    rates = _rep_rates(people, rng)
    stream = _organic_activity(people, rates, cal, _seasonality(cal, people.n_teams, rng), rng)
    cadence, sessions = _coaching_sessions(people, cal, rng)
    book = _agree_commitments(people, rates, cal, stream, sessions, rng)
    deals = _opportunities(people, rates, cal, stream, book.lift, rng)
    activities = _activities(people, rates, cal, stream, deals, rng)
    opportunities, stage_history = _opportunity_tables(deals, people, cal)
    reps_df = _reps_table(people, rates, cal, rng)
    agreed = _number_commitments(book.rows)
    sessions_df = _sessions_table(people, sessions, cal, rng)
    self_df, blind_spots = _self_assessments(people, sessions, cal, rng)

    tables = {
        "reps": reps_df, "activities": activities, "opportunities": opportunities,
        "stage_history": stage_history, "commitments": _commitments_table(agreed, people, cal),
        "coaching_sessions": sessions_df, "self_assessments": self_df,
    }
    tables = {name: frame[TABLES[name].column_names] for name, frame in tables.items()}
    truth = {
        "args": {"reps": reps, "weeks": weeks, "seed": seed, "end": str(cal.end_day)},
        "timezone": DEMO_TIMEZONE,
        "data_start": str(cal.data_start), "end": str(cal.end_day),
        "opportunity_lag_kernel_weeks": {str(l + 1): float(k) for l, k in enumerate(_LAG_KERNEL)},
        "quoted_deal": deals.quoted,
        "reps": _truth_reps(people, rates, cal, cadence, blind_spots),
        "commitments": _truth_commitments(agreed, people, cal),
    }
    return tables, truth


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def process_toml() -> str:
    """The demo team's ``process.toml`` text (default stages, London time)."""
    stages = ", ".join(f'"{s}"' for s in DEFAULT_STAGES)
    return ("# The demo team's sales process, written by `coachnb demo-data`.\n"
            "[process]\n"
            f"stages = [{stages}]\n"
            'week_start = "monday"\n'
            f'timezone = "{DEMO_TIMEZONE}"\n')


def _float_text(values: pd.Series) -> list[str]:
    """Numbers as a person would type them: ``48000``, ``12.5``; missing -> empty cell."""
    out = []
    for v in values.to_numpy(dtype=np.float64):
        if np.isnan(v):
            out.append("")
        elif float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(repr(float(v)))
    return out


# tables without free text (ids, timestamps, type and stage names): written by Arrow, unquoted
_PLAIN_TABLES = ("activities", "stage_history")


def _write_csv(name: str, frame: pd.DataFrame, path: Path) -> None:
    """CSV with minimal quoting (only cells holding a comma, quote or newline), UTF-8, ``\\n``."""
    if name in _PLAIN_TABLES:
        # no cell of these tables ever needs quotes; Arrow streams millions of rows to disk fast
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with open(path, "wb") as f:
            f.write((",".join(frame.columns) + "\n").encode())
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        return
    text = frame.copy()
    for col in text.columns:
        if pd.api.types.is_float_dtype(text[col]):
            text[col] = _float_text(text[col])
    buf = io.StringIO()
    text.to_csv(buf, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def write_demo_data(out_dir, reps: int = 24, weeks: int = 78, seed: int = 7, end: str = "2026-11-23",
                    fmt: str = "csv") -> Path:
    """Write the demo team of :func:`generate_demo_data` into ``out_dir``.

    Writes one ``<table>.csv`` (or ``.parquet``) per table, ``process.toml`` and
    ``ground_truth.json`` (ignored by the loader). Files of the other format left from an
    earlier run are removed so the folder is never ambiguous. Same arguments, same bytes.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created when missing).
    reps, weeks, seed, end
        See :func:`generate_demo_data`.
    fmt : {"csv", "parquet"}
        File format of the tables; Parquet columns hold the same text as the CSV cells.

    Returns
    -------
    Path
        ``out_dir``.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables, truth = generate_demo_data(reps=reps, weeks=weeks, seed=seed, end=end)
    other = "parquet" if fmt == "csv" else "csv"
    for name, frame in tables.items():
        stale = out / f"{name}.{other}"
        if stale.exists():
            stale.unlink()
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            _write_csv(name, frame, path)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            pq.write_table(table, path)
    (out / "process.toml").write_text(process_toml(), encoding="utf-8")
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
