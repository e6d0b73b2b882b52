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
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ACTIVITY_TYPES, DEFAULT_STAGES
from .schema import TABLES

__all__ = ["generate_demo_data", "write_demo_data", "process_toml", "DEMO_TIMEZONE", "CATEGORIES", "LEAK_TYPES"]

DEMO_TIMEZONE = "Europe/London"
CATEGORIES = ("kept_effect", "kept_no_effect", "not_kept", "none")
LEAK_TYPES = ("none", "discovery_leak", "qualification_leak", "proposal_stall", "negotiation_leak")

_BURN_IN_WEEKS = 6  # simulated before the data starts so lags and AR(1) noise are warmed up
_SECONDS_PER_DAY = 86_400
_N_TYPES = len(ACTIVITY_TYPES)  # call, email, meeting, demo, other
_TYPE_INDEX = {t: i for i, t in enumerate(ACTIVITY_TYPES)}
_METRIC_TYPE = {"calls_per_week": "call", "meetings_per_week": "meeting"}
# relative weight of one activity of each type in creating opportunities (meetings and demos count most)
_OPP_WEIGHT = np.array([1.0, 0.4, 3.0, 4.0, 0.3])
# share of the opportunity-creating effect of activity l = 1..4 weeks earlier (peak at 2-3 weeks)
_LAG_KERNEL = np.array([0.15, 0.35, 0.30, 0.20])
# activity by weekday (Mon..Sun), before normalizing; weekends are nearly empty
_WEEKDAY = np.array([1.0, 1.05, 1.0, 0.95, 0.8, 0.06, 0.03])

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
    import pyarrow as pa

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
    import pyarrow as pa
    import pyarrow.compute as pc

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
    return [str(epoch + np.timedelta64(int(d), "D")) for d in days]


def _round_to(x: float, step: float) -> float:
    return float(np.round(x / step) * step)


def _rep_name_pool(n: int, rng: np.random.Generator) -> list[str]:
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
# the generator
# --------------------------------------------------------------------------------------------

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
    rng = np.random.default_rng(seed)
    end_day = np.datetime64(end, "D")
    end_monday = end_day - int(_weekday(np.array([end_day]))[0])
    data_start = end_monday - np.timedelta64(7 * weeks, "D")
    sim_start = data_start - np.timedelta64(7 * _BURN_IN_WEEKS, "D")  # a Monday
    n_weeks = _BURN_IN_WEEKS + weeks + 1
    n_days = 7 * n_weeks
    first_data_day = 7 * _BURN_IN_WEEKS
    last_data_day = int((end_day - sim_start).astype(int))
    n = reps

    # ---- people -------------------------------------------------------------------------
    n_teams = max(1, int(round(n / 8)))
    teams = _teams(n_teams, rng)
    team_of = np.arange(n) % n_teams
    names = _rep_name_pool(n, rng)
    rep_ids = list(_format_ids("R", n, 3))
    plan = [_PLAN[i % len(_PLAN)] for i in range(n)]
    category = [p[0] for p in plan]
    leak = [p[2] for p in plan]
    late_logger = np.array([p[3] for p in plan])
    special = [p[4] for p in plan]

    # hire day index relative to sim_start (negative: hired long before the data starts)
    hire = -rng.integers(200, 2200, size=n) + first_data_day
    for i, s in enumerate(special):
        if s == "recent_hire":
            hire[i] = last_data_day - int(_weekday(np.array([end_day]))[0]) - 7 * 9  # a Monday, 9 weeks back
        elif s == "mid_period_hire":
            hire[i] = max(first_data_day, last_data_day - int(_weekday(np.array([end_day]))[0]) - 7 * 35)

    # ---- base rates ---------------------------------------------------------------------
    level = np.exp(rng.normal(np.log(55.0), 0.3, size=n))  # activities per week, all types
    mix_centre = np.array([0.38, 0.33, 0.12, 0.05, 0.12])
    mix = rng.dirichlet(mix_centre * 40, size=n)
    for i in range(n):  # a few archetypes so mixes differ visibly
        if i % 6 == 1:
            mix[i] = rng.dirichlet(np.array([0.2, 0.55, 0.1, 0.05, 0.1]) * 40)  # emailer
        elif i % 6 == 4:
            mix[i] = rng.dirichlet(np.array([0.5, 0.2, 0.17, 0.06, 0.07]) * 40)  # caller, meets a lot
    opp_base = np.clip(np.exp(rng.normal(np.log(1.3), 0.3, size=n)), 0.6, 3.0)  # opportunities per week
    opp_base[np.array(category) == "kept_effect"] = np.maximum(opp_base[np.array(category) == "kept_effect"], 1.3)
    opp_base[np.array(special) == "few_deals"] = 0.07
    gamma_shape = rng.uniform(15.0, 40.0, size=n)  # week-to-week overdispersion per rep (CV 16-26 %)

    # stage conversion (advance probability per stage; the last is the win rate) and days in stage
    typical_advance = np.array([0.7, 0.7, 0.65, 0.6])  # about 1 in 5 new deals is won
    advance = 1 / (1 + np.exp(-(np.log(typical_advance / (1 - typical_advance)) + rng.normal(0, 0.25, size=(n, 4)))))
    stage_days = np.array([10.0, 18.0, 21.0, 24.0]) * np.exp(rng.normal(0, 0.2, size=(n, 4)))
    for i, lk in enumerate(leak):
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
    log_lag_median_h = np.where(late_logger, np.log(3.5 * 24), np.log(rng.uniform(0.7, 3.0, size=n)))

    # ---- calendar: seasonality by day --------------------------------------------------------
    dates = pd.DatetimeIndex(sim_start + np.arange(n_days).astype("timedelta64[D]"))
    month, dom = dates.month.to_numpy(), dates.day.to_numpy()
    season = np.ones(n_days)
    season[month == 8] = 0.86  # summer holidays
    season[(month == 8) & (dom >= 8) & (dom <= 22)] = 0.78
    xmas = {(12, 22): 0.7, (12, 23): 0.55, (12, 24): 0.25, (12, 25): 0.03, (12, 26): 0.03, (12, 27): 0.2,
            (12, 28): 0.25, (12, 29): 0.3, (12, 30): 0.3, (12, 31): 0.2, (1, 1): 0.03, (1, 2): 0.6}
    for (m, d), f in xmas.items():
        season[(month == m) & (dom == d)] = f
    quarter_end = np.isin(month, (3, 6, 9)) & (dom >= 18) | (month == 12) & (dom >= 8) & (dom <= 19)
    push = np.where(quarter_end, 1.15, 1.0)
    amplitude = rng.uniform(0.7, 1.25, size=n_teams)
    season_team = np.exp(amplitude[:, None] * np.log(season)[None, :]) * push[None, :]  # (team, day)
    weekday_of_day0 = 0  # sim_start is a Monday
    dow = np.arange(n_days) % 7
    weekday_share = (_WEEKDAY / _WEEKDAY.sum())[dow]  # share of a week's activity on that day

    # ---- weekly latent rate: team shock + rep AR(1) + gamma overdispersion -----------------------
    def ar1(shape, phi, sd):
        eps = rng.normal(0, sd, size=shape)
        out = np.empty(shape)
        out[..., 0] = eps[..., 0] / np.sqrt(1 - phi ** 2)
        for w in range(1, shape[-1]):  # loop over weeks only (~100), vectorized over reps
            out[..., w] = phi * out[..., w - 1] + eps[..., w]
        return out

    team_shock = ar1((n_teams, n_weeks), 0.5, 0.07)
    rep_noise = ar1((n, n_weeks), 0.6, 0.10)
    weekly = level[:, None] * np.exp(team_shock[team_of] + rep_noise)
    weekly *= rng.gamma(gamma_shape[:, None], 1 / gamma_shape[:, None], size=(n, n_weeks))
    type_noise = rng.gamma(20.0, 1 / 20.0, size=(n, n_weeks, _N_TYPES))

    day_index = np.arange(n_days)
    active = (day_index[None, :] >= np.maximum(hire, first_data_day - 7 * _BURN_IN_WEEKS)[:, None]) & \
             (day_index[None, :] <= last_data_day)
    since_hire_weeks = (day_index[None, :] - hire[:, None]) / 7.0
    ramp = np.clip(0.3 + 0.7 * since_hire_weeks / 8.0, 0.0, 1.0) * active  # new hires ramp up over 8 weeks
    per_day = np.repeat(weekly, 7, axis=1) * season_team[team_of] * weekday_share[None, :] * ramp  # (rep, day)
    rate = (per_day[:, :, None] * np.repeat(type_noise, 7, axis=1)) * mix[:, None, :]  # (rep, day, type)
    organic = rng.poisson(rate).astype(np.int32)
    extra = np.zeros_like(organic)

    # ---- coaching sessions (cadence per rep, some overdue) -----------------------------------
    cadence = rng.uniform(12, 26, size=n)
    sessions: list[list[int]] = []
    for i in range(n):
        start = max(first_data_day, hire[i] + 7) + int(rng.integers(0, 10))
        stop = last_data_day - 1
        if special[i] == "overdue_coaching":
            stop = last_data_day - int(rng.integers(42, 64))
        gaps = rng.gamma(8.0, cadence[i] / 8.0, size=int(n_days / 8) + 4)
        days = start + np.concatenate([[0.0], np.cumsum(gaps)]).round().astype(int)
        days = [_to_weekday(int(d), weekday_of_day0, forward=bool(d % 2)) for d in days]
        sessions.append(sorted({d for d in days if first_data_day <= d <= stop and d > hire[i]}))

    # ---- commitments ----------------------------------------------------------------------
    lift = np.ones((n, n_days))
    commitments: list[dict] = []

    def weekly_level(i: int, t: int, day: int) -> float:
        """Mean weekly count of type t over up to 8 full weeks before ``day`` (in data, after hiring)."""
        lo = max(day - 56, first_data_day, hire[i])
        if day - lo < 7:
            lo = max(day - 56, hire[i], 0)
        d = organic[i, lo:day, t] + extra[i, lo:day, t]
        return float(d.sum()) * 7.0 / max(day - lo, 1)

    def add_commitment(i: int, role: str, behaviour: str, metric: str, agreed: int, start: int, length: int,
                       effect: bool, supersedes: int | None = None, window_end: int | None = None,
                       baseline: float | None = None, target: float | None = None) -> dict:
        t = _TYPE_INDEX[_METRIC_TYPE[metric]]
        step = 1.0 if metric == "calls_per_week" else 0.5
        if baseline is None:
            baseline = max(step, _round_to(weekly_level(i, t, start), step))
        if target is None:
            target = max(baseline + step, _round_to(baseline * rng.uniform(1.5, 2.0), step))
        kept = behaviour in ("kept_effect", "kept_no_effect")
        # a kept commitment reaches about its target, holiday weeks included (that is what keeping
        # it means, and what the report's adherence rule checks); the rep's organic activity
        # continues underneath, the extra activities make up the difference
        achieved = target * rng.uniform(0.95, 1.1) if kept else baseline
        multiplier = achieved / baseline
        stop = start + length - 1
        behave_until = min(stop if window_end is None else window_end, last_data_day)
        if kept and behave_until >= start:
            days = slice(start, behave_until + 1)
            wanted = achieved * weekday_share[days]
            extra[i, days, t] += rng.poisson(np.maximum(wanted - rate[i, days, t], 0.0)).astype(np.int32)
        planted_lift, lag = 1.0, 0
        if effect:
            planted_lift = float(np.round(rng.uniform(1.8, 2.5), 3))
            lag = int(rng.integers(2, 4))
            lift[i, start + 7 * lag: min(stop + 7 * lag, n_days - 1) + 1] = planted_lift
        row = {"i": i, "role": role, "category": behaviour, "metric": metric, "agreed": agreed, "start": start,
               "stop": stop, "baseline": baseline, "target": target, "multiplier": multiplier,
               "lift": planted_lift, "lag": lag, "supersedes": supersedes,
               "follow_up": _FOLLOW_UPS[int(rng.integers(len(_FOLLOW_UPS)))],
               "note": _NOTES[int(rng.integers(len(_NOTES)))]}
        commitments.append(row)
        return row

    def agree_before(i: int, start: int) -> int:
        """A 1:1 a few days before ``start`` (or on it); added to the rep's sessions."""
        day = _to_weekday(start - int(rng.choice([0, 3, 4, 5])), weekday_of_day0, forward=False)
        day = max(day, hire[i] + 1)
        # the 1:1 replaces generated sessions in the same week (one 1:1 a week at most)
        sessions[i] = sorted([d for d in sessions[i] if abs(d - day) > 5] + [day])
        return day

    def monday_on_or_after(day: int) -> int:
        return day + (-day) % 7

    def metric_for(i: int, wanted: str) -> str:
        # nobody commits to 1.5 meetings a week: reps who meet rarely commit to calls instead
        if wanted == "meetings_per_week" and level[i] * mix[i, _TYPE_INDEX["meeting"]] < 3.0:
            return "calls_per_week"
        return wanted

    for i in range(n):
        slot = i % len(_PLAN)
        main_start = None
        if category[i] != "none":
            post_weeks = int(rng.integers(9, 13))
            length = int(rng.choice([56, 63, 70, 84, 91])) if category[i] == "kept_effect" else \
                int(rng.choice([30, 42, 56, 63, 70, 84, 91]))
            main_start = max(7 * (n_weeks - 1) - 7 * (post_weeks + int(np.ceil(length / 7))), first_data_day + 7)
            main_start = max(main_start, monday_on_or_after(hire[i] + 14))
            early_start = monday_on_or_after(max(first_data_day + 7 * int(rng.integers(9, 13)), hire[i] + 21))
        else:
            early_start = monday_on_or_after(max(first_data_day + 7 * int(rng.integers(9, 16)), hire[i] + 21))
        # an earlier, finished commitment (the main one is far enough after it to have a clean baseline)
        early_len = int(rng.choice([30, 35, 42]))
        early_behaviour = "not_kept" if (category[i] == "none" or i % 2) else "kept_no_effect"
        if special[i] == "recent_hire":
            early_behaviour = "kept_no_effect"
            early_len = 30
        fits = early_start + early_len - 1 < last_data_day - 7 and (
            main_start is None or early_start + early_len - 1 <= main_start - 7 * 20)
        if fits or main_start is None:
            if not fits:  # no room at all (a very short history): start as soon as possible
                early_start = monday_on_or_after(max(first_data_day, hire[i] + 7))
            early_metric = metric_for(i, "calls_per_week" if i % 3 else "meetings_per_week")
            add_commitment(i, "early", early_behaviour, early_metric, agree_before(i, early_start), early_start,
                           early_len, effect=False)
        if main_start is not None:
            add_commitment(i, "main", category[i], metric_for(i, plan[i][1]), agree_before(i, main_start), main_start,
                           length, effect=category[i] == "kept_effect")
        if slot in _CURRENT and special[i] != "overdue_coaching":
            behaviour, metric = _CURRENT[slot]
            metric = metric_for(i, metric)
            start = monday_on_or_after(last_data_day - int(rng.integers(21, 36)))
            length = max(30, (last_data_day - start) + int(rng.integers(-2, 15)))
            if slot == _SUPERSEDED_SLOT:
                # revised two weeks in: the first row stays as it was (history is never rewritten)
                first = add_commitment(i, "current", behaviour, metric, agree_before(i, start), start, length,
                                       effect=False, window_end=start + 13)
                revised = start + 14
                step = 1.0 if metric == "calls_per_week" else 0.5
                add_commitment(i, "current", behaviour, metric, agree_before(i, revised), revised, length - 14,
                               effect=False, supersedes=len(commitments) - 1, baseline=first["baseline"],
                               target=max(first["baseline"] + step, _round_to(first["target"] * 0.85, step)))
            else:
                add_commitment(i, "current", behaviour, metric, agree_before(i, start), start, length,
                               effect=False)

    # ---- opportunities from lagged organic activity ----------------------------------------------
    effective = (organic.reshape(n, n_weeks, 7, _N_TYPES).sum(axis=2) * _OPP_WEIGHT).sum(axis=2)  # (rep, week)
    expected = level * (mix * _OPP_WEIGHT).sum(axis=1)
    padded = np.concatenate([np.repeat(expected[:, None], 4, axis=1), effective], axis=1)
    lagged = sum(_LAG_KERNEL[l - 1] * padded[:, 4 - l: 4 - l + n_weeks] for l in range(1, 5))
    index = lagged / expected[:, None]
    opp_rate_day = np.repeat(opp_base[:, None] * index, 7, axis=1) * weekday_share[None, :] * lift
    opp_rate_day[:, :first_data_day] = 0.0
    opp_rate_day[:, last_data_day + 1:] = 0.0
    opp_rate_day[day_index[None, :] < hire[:, None]] = 0.0
    opp_counts = rng.poisson(opp_rate_day)
    opp_cell = np.flatnonzero(opp_counts)
    opp_cell = np.repeat(opp_cell, opp_counts.ravel()[opp_cell])
    opp_rep, opp_day = np.divmod(opp_cell, n_days)
    n_opps = len(opp_rep)
    created = opp_day * _SECONDS_PER_DAY + rng.integers(9 * 3600, 17 * 3600 + 1800, size=n_opps)

    # ---- stage walk ------------------------------------------------------------------------
    n_stages = len(DEFAULT_STAGES)
    entered = np.full((n_opps, n_stages), -1, dtype=np.int64)  # seconds since sim_start, -1 = never
    entered[:, 0] = created
    alive = np.ones(n_opps, dtype=bool)
    won = np.zeros(n_opps, dtype=bool)
    closed_day = np.zeros(n_opps, dtype=np.int64)
    current_day = opp_day.copy()
    for s in range(n_stages):
        stall = rng.random(n_opps) < 0.1  # some deals sit far longer than usual
        days = stage_days[opp_rep, s] * np.exp(rng.normal(0, 0.6, size=n_opps)) * np.where(stall, 3.0, 1.0)
        goes_on = rng.random(n_opps) < advance[opp_rep, s]
        if s == n_stages - 1:
            slip = rng.random(n_opps) < 0.2  # the buyer's signature slips by weeks
            days = days + np.where(slip, rng.uniform(14, 45, size=n_opps), 0.0)
        days = np.where(goes_on, days, days * 1.4)  # losing a deal is noticed late
        nxt = current_day + np.maximum(1, np.round(days)).astype(np.int64)
        wd = (nxt + weekday_of_day0) % 7
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
    # quarter-end: many buyers sign in the last days of the quarter rather than early in the next
    close_dates = sim_start + closed_day.astype("timedelta64[D]")
    months = close_dates.astype("datetime64[M]")
    quarter_last = (months.astype(np.int64) // 3 * 3 + 3).astype("datetime64[M]").astype("datetime64[D]") - 1
    to_quarter_end = (quarter_last - close_dates).astype(np.int64)
    pull = won & (to_quarter_end > 0) & (to_quarter_end <= 21) & (rng.random(n_opps) < 0.4)
    target_day = closed_day + to_quarter_end - rng.integers(0, 3, size=n_opps)
    target_day = target_day - np.where((target_day + weekday_of_day0) % 7 == 5, 1, 0)
    target_day = target_day - np.where((target_day + weekday_of_day0) % 7 == 6, 2, 0)
    closed_day = np.where(pull & (target_day > closed_day), target_day, closed_day)
    last_entered = entered.max(axis=1)
    closed = np.maximum(closed_day * _SECONDS_PER_DAY + rng.integers(9 * 3600, 18 * 3600, size=n_opps),
                        last_entered + 60)
    end_second = (last_data_day + 1) * _SECONDS_PER_DAY - 1
    is_closed = closed <= end_second
    entered[entered > end_second] = -1
    status = np.where(~is_closed, "open", np.where(won, "won", "lost"))

    # opportunity ids in order of creation
    order = np.lexsort((opp_rep, created))
    opp_rep, created, entered, closed, is_closed, status, won = (
        opp_rep[order], created[order], entered[order], closed[order], is_closed[order], status[order], won[order])
    opp_ids = _format_ids("O", n_opps, 6)
    amount = np.round(deal_median[opp_rep] * np.exp(rng.normal(0, 0.7, size=n_opps)), -2)
    amount = np.maximum(amount, 500.0)

    # accounts: each rep works a territory of accounts, with repeat business
    combos = len(_ACCOUNT_A) * len(_ACCOUNT_B) * len(_ACCOUNT_C)
    per_rep_accounts = 18
    pool = rng.choice(combos, size=min(combos, n * per_rep_accounts), replace=False)
    account_pick = (opp_rep * per_rep_accounts + rng.integers(0, per_rep_accounts, size=n_opps)) % len(pool)
    code = pool[account_pick]
    a, rest = np.divmod(code, len(_ACCOUNT_B) * len(_ACCOUNT_C))
    b, c = np.divmod(rest, len(_ACCOUNT_C))
    suffix_pick = rng.integers(0, len(_DEAL_SUFFIX), size=n_opps)
    seats = rng.choice([10, 15, 25, 40, 50, 75, 100, 250], size=n_opps)
    accounts = [f"{_ACCOUNT_A[x]} {_ACCOUNT_B[y]} {_ACCOUNT_C[z]}" for x, y, z in zip(a, b, c)]
    deal_names = [f"{acc} - {_DEAL_SUFFIX[s].format(n=k)}" for acc, s, k in zip(accounts, suffix_pick, seats)]
    quoted_deal = None
    if n_opps:
        # one awkward but valid name: quotes, an apostrophe and an ampersand (and a zero-value pilot)
        j = int(np.flatnonzero(opp_rep == opp_rep[0])[min(2, int((opp_rep == opp_rep[0]).sum()) - 1)])
        accounts[j] = "O'Brien & Sons"
        deal_names[j] = 'O\'Brien & Sons - "Pilot"'
        amount[j] = 0.0
        quoted_deal = str(opp_ids[j])

    # ---- activities -----------------------------------------------------------------------
    total = organic + extra
    total[:, :first_data_day] = 0  # the burn-in weeks are simulated but not part of the data
    counts = total.ravel()
    del total
    cell = np.flatnonzero(counts)
    cell = np.repeat(cell, counts[cell])
    act_rep, rest = np.divmod(cell, n_days * _N_TYPES)
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
    tod[slot_types] = rng.integers(18, 34, size=int(slot_types.sum())) * 1800  # meetings start on the half hour
    occurred = act_day.astype(np.int64) * _SECONDS_PER_DAY + tod
    del tod, act_day, slot_types, is_email
    # logging lag: minutes to hours for most reps, days for late loggers, sometimes the next morning
    lag = np.exp(log_lag_median_h[act_rep] + rng.normal(0, 0.9, size=n_act)) * 3600
    next_morning = ~late_logger[act_rep] & (rng.random(n_act) < 0.06)
    lag = np.where(next_morning, rng.uniform(12, 30, size=n_act) * 3600, lag)
    logged = occurred + np.maximum(lag, 60).astype(np.int64)
    logged_tod = logged % _SECONDS_PER_DAY
    # nobody logs at night: shift into working hours (also keeps clear of DST-changing hours)
    logged = np.where(logged_tod < 7 * 3600, logged - logged_tod + 7 * 3600 + 1800 + logged_tod // 8, logged)
    logged = np.where(logged_tod >= 21 * 3600,
                      logged - logged_tod + _SECONDS_PER_DAY + 7 * 3600 + 1800 + (logged_tod - 21 * 3600) // 2,
                      logged)
    del lag, next_morning, logged_tod
    in_crm = logged <= end_second  # not yet logged at `end` -> not in the export
    no_logged_at = rng.random(n_act) < 0.002  # a few rows from an old integration without the field
    keep = in_crm | no_logged_at
    act_rep, act_type, occurred, logged = act_rep[keep], act_type[keep], occurred[keep], logged[keep]
    no_logged_at = no_logged_at[keep]
    logged = np.where(no_logged_at, -1, logged)
    order = np.argsort(occurred * n + act_rep, kind="stable")
    act_rep, act_type, occurred, logged = act_rep[order], act_type[order], occurred[order], logged[order]
    del order, keep, in_crm, no_logged_at
    n_act = len(act_rep)

    # link activities to one of the rep's deals open at the time (mostly meetings and demos)
    link_p = np.array([0.2, 0.25, 0.7, 0.9, 0.1])[act_type]
    wants = rng.random(n_act) < link_p
    opp_link = np.full(n_act, -1, dtype=np.int64)
    if n_opps:
        span = np.int64(n_days) * _SECONDS_PER_DAY + 1
        by_rep = np.lexsort((created, opp_rep))
        opp_key = opp_rep[by_rep] * span + created[by_rep]
        act_key = act_rep * span + occurred
        pos = np.searchsorted(opp_key, act_key, side="left") - 1 - rng.integers(0, 4, size=n_act)
        ok = wants & (pos >= 0)
        pos = np.clip(pos, 0, None)
        cand = by_rep[pos]
        ok &= (opp_rep[cand] == act_rep) & (created[cand] < occurred) & (~is_closed[cand] | (closed[cand] > occurred))
        opp_link = np.where(ok, cand, -1)

    epoch = np.datetime64(sim_start, "s")
    import pyarrow as pa
    import pyarrow.compute as pc

    types_arr = pa.array(np.asarray(ACTIVITY_TYPES, dtype=object)[act_type], type=pa.string())
    opp_id_arr = pa.array(opp_ids.astype(object) if n_opps else np.array([], dtype=object), type=pa.string())
    link_arr = pc.take(opp_id_arr, pa.array(opp_link, mask=opp_link < 0)) if n_opps else \
        pa.nulls(n_act, type=pa.string())
    rep_id_arr = pa.array(np.asarray(rep_ids, dtype=object), type=pa.string())
    activities = pa.table({
        "activity_id": _format_ids_arrow("A", n_act, 7),
        "rep_id": pc.take(rep_id_arr, pa.array(act_rep)),
        "occurred_at": _format_seconds(epoch, occurred),
        "type": types_arr,
        "opportunity_id": link_arr,
        "logged_at": _format_seconds(epoch, logged),
    }).to_pandas()

    # ---- tables -----------------------------------------------------------------------------
    rep_names = np.asarray(rep_ids, dtype=object)
    opportunities = pd.DataFrame({
        "opportunity_id": opp_ids.astype(object),
        "rep_id": rep_names[opp_rep],
        "account": accounts,
        "name": deal_names,
        "created_at": _format_seconds(epoch, created).to_pylist(),
        "amount": amount.astype(np.float64),
        "status": status,
        "closed_at": _format_seconds(epoch, np.where(is_closed, closed, -1)).to_pylist(),
    })
    reached = entered >= 0
    sh_opp, sh_stage = np.nonzero(reached)  # row-major: by opportunity, then stage in process order
    stage_history = pd.DataFrame({
        "opportunity_id": opp_ids.astype(object)[sh_opp] if n_opps else np.array([], dtype=object),
        "stage": np.asarray(DEFAULT_STAGES, dtype=object)[sh_stage],
        "entered_at": _format_seconds(epoch, entered[sh_opp, sh_stage]).to_pylist(),
    })

    # quota: a stretch on what the rep's funnel is expected to win in a quarter
    win_through = advance.prod(axis=1)
    expected_won = opp_base * 13 * win_through * deal_median * np.exp(0.7 ** 2 / 2)
    stretch = rng.uniform(1.05, 1.3, size=n)
    stretch[np.array(special) == "recent_hire"] = 0.5  # a ramp quota for the first quarters
    quota = np.maximum(5000.0, np.round(expected_won * stretch / 5000) * 5000)
    reps_df = pd.DataFrame({
        "rep_id": rep_ids,
        "name": names,
        "team": [teams[t][0] for t in team_of],
        "manager": [teams[t][2] for t in team_of],
        "hire_date": _date_text(sim_start, hire),
        "region": [teams[t][1] for t in team_of],
        "quota_per_quarter": quota.astype(np.float64),
    })

    # commitment ids in the order they were agreed
    corder = sorted(range(len(commitments)), key=lambda k: (commitments[k]["agreed"], commitments[k]["i"], k))
    cid_of = {k: f"K{rank + 1:04d}" for rank, k in enumerate(corder)}
    commitments_df = pd.DataFrame({
        "commitment_id": [cid_of[k] for k in corder],
        "rep_id": [rep_ids[commitments[k]["i"]] for k in corder],
        "agreed_on": _date_text(sim_start, [commitments[k]["agreed"] for k in corder]),
        "start": _date_text(sim_start, [commitments[k]["start"] for k in corder]),
        "end": _date_text(sim_start, [commitments[k]["stop"] for k in corder]),
        "metric": [commitments[k]["metric"] for k in corder],
        "baseline": np.array([commitments[k]["baseline"] for k in corder], dtype=np.float64),
        "target": np.array([commitments[k]["target"] for k in corder], dtype=np.float64),
        "follow_up": [commitments[k]["follow_up"] for k in corder],
        "note": [commitments[k]["note"] for k in corder],
        "supersedes": [cid_of[commitments[k]["supersedes"]] if commitments[k]["supersedes"] is not None else None
                       for k in corder],
    })

    # coaching sessions: mostly the rep's manager; now and then another manager covers
    s_rep, s_day, s_manager = [], [], []
    for i in range(n):
        for d in sessions[i]:
            own = teams[team_of[i]][2]
            cover = n_teams > 1 and rng.random() < 0.04
            s_rep.append(rep_ids[i])
            s_day.append(d)
            s_manager.append(teams[(team_of[i] + 1) % n_teams][2] if cover else own)
    sessions_df = pd.DataFrame({"rep_id": s_rep, "held_on": _date_text(sim_start, s_day), "manager": s_manager})

    # self-assessments: a few reps score themselves twice; they overrate the stage where they leak
    sa_rows = []
    sa_truth = {}
    for i in range(n):
        if i % len(_PLAN) not in _SELF_ASSESSMENT_SLOTS or len(sessions[i]) < 2:
            continue
        first_day = min(sessions[i], key=lambda d: abs(d - (last_data_day - 26 * 7)))
        last_day = sessions[i][-1]
        for when in sorted({first_day, last_day}):
            for topic in list(DEFAULT_STAGES) + list(_SKILLS):
                score = float(np.clip(np.round(rng.normal(3.4, 0.7)), 1, 5))
                stage_pos = DEFAULT_STAGES.index(topic) if topic in DEFAULT_STAGES else -1
                leak_stage = {"discovery_leak": 0, "qualification_leak": 1, "proposal_stall": 2,
                              "negotiation_leak": 3}.get(leak[i], -2)
                if stage_pos == leak_stage:
                    score = 4.0  # the blind spot: confident exactly where the funnel leaks
                sa_rows.append((rep_ids[i], str(sim_start + np.timedelta64(int(when), "D")), topic, score))
        sa_truth[rep_ids[i]] = leak[i]
    self_df = pd.DataFrame(sa_rows, columns=["rep_id", "date", "topic", "score"])
    self_df["score"] = self_df["score"].astype(np.float64)

    # the current stage of an open deal, as a CRM export shows it: the last stage it entered
    last_stage = (stage_history.sort_values(["opportunity_id", "entered_at"], kind="stable")
                  .drop_duplicates("opportunity_id", keep="last").set_index("opportunity_id")["stage"])
    opportunities["stage"] = np.where(opportunities["status"] == "open",
                                      opportunities["opportunity_id"].map(last_stage).fillna(""), "")

    tables = {
        "reps": reps_df, "activities": activities, "opportunities": opportunities,
        "stage_history": stage_history, "commitments": commitments_df,
        "coaching_sessions": sessions_df, "self_assessments": self_df,
    }
    for name, frame in tables.items():
        tables[name] = frame[TABLES[name].column_names]

    # ---- ground truth ----------------------------------------------------------------------
    def day_text(d: int) -> str:
        return str(sim_start + np.timedelta64(int(d), "D"))

    truth_commitments = []
    for k in corder:
        c = commitments[k]
        lag_days = 7 * c["lag"]
        truth_commitments.append({
            "commitment_id": cid_of[k], "rep_id": rep_ids[c["i"]], "role": c["role"], "category": c["category"],
            "metric": c["metric"], "agreed_on": day_text(c["agreed"]), "start": day_text(c["start"]),
            "end": day_text(c["stop"]),
            "activity_multiplier": round(float(c["multiplier"]), 4),
            "lift": c["lift"], "lag_weeks": c["lag"],
            "effect_start": day_text(c["start"] + lag_days) if c["lift"] != 1.0 else None,
            "effect_end": day_text(c["stop"] + lag_days) if c["lift"] != 1.0 else None,
            "pre_weeks_in_data": int(max(0, c["start"] - max(first_data_day, hire[c["i"]])) // 7),
            "post_weeks_in_data": int(max(0, last_data_day - c["stop"]) // 7),
            "supersedes": cid_of[c["supersedes"]] if c["supersedes"] is not None else None,
        })
    truth_reps = []
    for i in range(n):
        truth_reps.append({
            "rep_id": rep_ids[i], "name": names[i], "team": teams[team_of[i]][0],
            "main_category": category[i], "funnel_leak": leak[i], "late_logger": bool(late_logger[i]),
            "special": special[i] or None, "hire_date": day_text(hire[i]),
            "activities_per_week": round(float(level[i]), 3),
            "activity_mix": {t: round(float(mix[i, j]), 4) for j, t in enumerate(ACTIVITY_TYPES)},
            "opportunities_per_week": round(float(opp_base[i]), 4),
            "stage_advance_probability": {s: round(float(advance[i, j]), 4) for j, s in enumerate(DEFAULT_STAGES)},
            "median_days_in_stage": {s: round(float(stage_days[i, j]), 2) for j, s in enumerate(DEFAULT_STAGES)},
            "median_logging_lag_hours": round(float(np.exp(log_lag_median_h[i])), 3),
            "coaching_cadence_days": round(float(cadence[i]), 2),
            "self_assessment_blind_spot": sa_truth.get(rep_ids[i]),
        })
    truth = {
        "args": {"reps": reps, "weeks": weeks, "seed": seed, "end": str(end_day)},
        "timezone": DEMO_TIMEZONE,
        "data_start": str(data_start), "end": str(end_day),
        "opportunity_lag_kernel_weeks": {str(l + 1): float(k) for l, k in enumerate(_LAG_KERNEL)},
        "quoted_deal": quoted_deal,
        "reps": truth_reps,
        "commitments": truth_commitments,
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
        import pyarrow as pa
        import pyarrow.csv as pacsv

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
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            pq.write_table(table, path)
    (out / "process.toml").write_text(process_toml(), encoding="utf-8")
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
