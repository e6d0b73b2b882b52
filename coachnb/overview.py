"""The manager's entry page: one row per rep with the flags that matter, and cadence per manager.

:func:`team_overview` returns plain tables; ``notebooks/team_overview.ipynb`` shows them and
the batch renders the result to ``reports/<as_of>/index.html``.

A batch computes each rep's row once per run, beside the rep's report where there is one, and
keeps every row and the teams' activity effects with the feature store
(:func:`complete_overview`); the index and every manager page read them (:func:`stored_overview`).
A row is only ever read with the store it was computed from: other data, date, window or code
make another store, whose rows are computed again.

When several reps' "did it move pipeline" verdicts are listed together, some would look
significant by chance alone; the p-values are adjusted with Benjamini–Hochberg and the page
says so.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .coaching import LINK_MAX_LAG, team_link_fit
from .errors import CoachnbError
from .formatting import fmt_pct
from .fsutil import atomic_write_text
from .impact import bh_adjust
from .record import recent_verdicts
from .report import (
    activity_section,
    capture_section,
    commitment_reviews,
    conversion_section,
    kept_section,
    pipeline_section,
)
from .store import store_of
from .team import active_reps, before_hire_as_missing, open_data, stalled_counts
from .team_effects import ASSUMPTIONS


@dataclass
class Overview:
    as_of: pd.Timestamp
    period: str
    reps: pd.DataFrame  # one row per rep (see team_overview)
    managers: pd.DataFrame  # cadence and diagnosis counts per manager
    fdr_note: str
    failed: pd.DataFrame  # reps whose report failed in the batch (rep_id, name, error)
    effects: pd.DataFrame  # per team: new opportunities per extra unit of activity (see activity_effects)
    effects_assumptions: str
    inactive_note: str = ""  # reps with no record in the period, by name: listed, not reported on
    manager: str = ""  # the manager whose reps the page lists ("": every rep)
    manager_pages: dict = field(default_factory=dict)  # manager -> file name of their page (company page only)


def _manifest(manifest_path) -> dict:
    if not manifest_path:
        return {}
    p = Path(manifest_path)
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def _entries(manifest: dict) -> list[dict]:
    return list(manifest.get("reports", []))


def _report_links(manifest: dict, audience: str = "manager") -> dict[str, str]:
    """rep_id -> path of the rep's report for ``audience``, relative to the report folder (where the index is).

    A report sits in its manager's folder (``<manager>/...``); a recorded path that is absolute
    or climbs out of the folder is not linked.
    """
    links = {}
    for entry in _entries(manifest):
        # a failed rep keeps its last good report, which is still worth linking
        if entry.get("audience", "manager") == audience and isinstance(entry.get("html"), str):
            path = Path(entry["html"])
            if not path.is_absolute() and ".." not in path.parts:
                links[str(entry["rep_id"])] = path.as_posix()
    return links


def team_overview(data, as_of=None, lookback_weeks: int = 13, manifest_path=None, manager: str = "") -> Overview:
    """One row per rep with the flags that matter for the coming 1:1s.

    ``manager``, when given, keeps only that manager's reps (team figures still pool the whole
    team, as each report's do); a name not in the data is a CoachnbError naming the managers there.

    Returns
    -------
    Overview
        ``reps`` columns: rep_id, name, team, manager, active (any record in the period),
        report and preread (file names of the manager's report and the rep's pre-read, or None),
        days_since_1to1, overdue, activity_trend (last 4 weeks / the weeks before in the role, per
        week, as the report computes it), stalled_deals, flags (list of plain-word flags, the rows
        ordered by how many), process_flags, weakest_step,
        commitment, diagnosis, verdict, p_value, q_value (BH-adjusted across the listed verdicts),
        recent_verdicts (the last few readings of the rep's coaching record with their start months,
        :func:`coachnb.record.recent_verdicts`; None without a reviewed commitment),
        activity_weekly and pipeline_weekly (the rep's weeks against the team's middle half, for the
        sparklines: :func:`weekly_series`; activity_weekly None without an activity log).

    From a feature store the batch has completed (:func:`complete_overview`) the rows and team
    effects are read, not computed.
    """
    ds, as_of_ts, tv = open_data(data, as_of, int(lookback_weeks))  # data folder, Dataset or feature store
    known = set(ds.reps["manager"].astype(str))
    if manager and manager not in known:
        raise CoachnbError(f"manager {manager!r} is not in reps; the managers there are {', '.join(sorted(known))}")
    manifest = _manifest(manifest_path)
    stored, effects = stored_overview(ds)  # what the batch computed once for every page (complete_overview)
    reps = overview_rows(ds, tv, as_of_ts, manifest, stored)  # every rep: q-values over every verdict listed
    if manager:
        reps = reps[reps["manager"].astype(str) == manager].reset_index(drop=True)
    tested = int(reps["p_value"].notna().sum())
    fdr_note = (f"{tested} 'did it move pipeline?' verdicts are tested on this page, and with several "
                "some would look like a real change by chance alone. Each says whether chance could explain it "
                "when every verdict of the team is counted (a Benjamini–Hochberg adjustment): 'unlikely to be "
                "chance' holds up even then.") if tested else ""
    listed = set(reps["rep_id"].astype(str))
    this_run = manifest.get("started_at")  # a failure of an earlier run was replaced or is not this page's news
    failed_entries = [e for e in _entries(manifest) if e.get("status") == "failed" and str(e.get("rep_id")) in listed
                      and e.get("run", this_run) == this_run]
    failed = pd.DataFrame([{"rep_id": e.get("rep_id"), "error": str(e.get("error", ""))[:200]}
                           for e in failed_entries], columns=["rep_id", "error"])
    if effects is None:
        effects, _ = activity_effects(tv)
    assumptions = ASSUMPTIONS.format(max_lag=LINK_MAX_LAG) if ds.has("activities") else ""  # as activity_effects says
    if manager:  # the teams this manager's reps are in
        effects = effects[effects["team"].isin(set(reps["team"]))].reset_index(drop=True)
    pages = {} if manager else {str(p["manager"]): Path(p["html"]).name for p in manifest.get("manager_pages") or []
                                if p.get("status") == "ok" and p.get("html") and p.get("manager")}
    return Overview(as_of_ts, tv.window.label, reps, manager_table(reps, ds), fdr_note, failed, effects,
                    assumptions, inactive_sentence(reps), manager, pages)


def overview_rows(ds, tv, as_of_ts, manifest: dict, stored: dict | None = None) -> pd.DataFrame:
    """Every rep's overview row (see :func:`team_overview`), most flags first.

    ``stored``: rep_id -> row kept with the feature store (:func:`stored_overview`); the rows of
    other reps are computed here (:func:`rep_columns`).
    """
    reps = ds.reps[["rep_id", "name", "team", "manager"]].copy()
    reps["active"] = reps["rep_id"].astype(str).isin(active_reps(tv))
    sessions = ds.coaching_sessions[ds.coaching_sessions["held_on"] < as_of_ts]
    last = sessions.groupby("rep_id")["held_on"].max()
    reps["days_since_1to1"] = reps["rep_id"].map((as_of_ts - last).dt.days)
    reps["overdue"] = reps["days_since_1to1"].isna() | (reps["days_since_1to1"] > ds.config.thresholds.cadence_days)
    reps["overdue"] &= len(ds.coaching_sessions) > 0  # "overdue" needs recorded 1:1s
    reps["stalled_deals"] = reps["rep_id"].map(stalled_counts(tv))  # the reports' own rule, so they agree

    # A batch computes these columns once per rep and keeps them with the store (complete_overview)
    stored = stored or {}
    rows = [stored[str(r)] if str(r) in stored else rep_columns(ds, tv, r) for r in reps["rep_id"]]
    for column in ROW_COLUMNS:
        reps[column] = [row[column] for row in rows]
    reps["activity_trend"] = reps["activity_trend"].astype(float).where(reps["active"])
    reps["flags"] = [attention(rec) for rec in reps.to_dict("records")]
    # what needs a look in the next 1:1 first (most flags, then longest since a 1:1): not a ranking of people
    days = pd.to_numeric(reps["days_since_1to1"], errors="coerce").astype(float).fillna(-1.0).to_numpy()
    n_flags, names = [len(f) for f in reps["flags"]], [str(n) for n in reps["name"]]
    order = sorted(range(len(reps)), key=lambda i: (-n_flags[i], -days[i], names[i]))
    reps = reps.iloc[order].reset_index(drop=True)
    tested = reps["p_value"].notna()
    reps["q_value"] = np.nan
    if tested.any():
        reps.loc[tested, "q_value"] = bh_adjust(reps.loc[tested, "p_value"].to_numpy())
    reps["report"] = reps["rep_id"].map(_report_links(manifest))
    reps["preread"] = reps["rep_id"].map(_report_links(manifest, "rep"))
    return reps


def manager_table(reps: pd.DataFrame, ds) -> pd.DataFrame:
    """Cadence and diagnosis counts per manager of the listed reps."""
    managers = (reps.groupby("manager")
                .agg(reps=("rep_id", "size"), overdue=("overdue", "sum"),
                     median_days_since_1to1=("days_since_1to1", "median"))
                .reset_index())
    managers["cadence_kept"] = 1 - managers["overdue"] / managers["reps"]
    counts = reps.dropna(subset=["diagnosis"]).pivot_table(index="manager", columns="diagnosis", values="rep_id",
                                                           aggfunc="count", fill_value=0)
    managers = managers.merge(counts.reset_index(), on="manager", how="left")
    managers[list(counts.columns)] = managers[list(counts.columns)].fillna(0)  # counts only: no days become 0
    if ds.coaching_sessions.empty:
        managers["cadence_kept"] = np.nan
    return managers


def inactive_sentence(reps: pd.DataFrame) -> str:
    """Who had no record in the period (no activity, new deal, stage move or close), or ""."""
    idle = reps[~reps["active"]]
    if idle.empty:
        return ""
    names = ", ".join(f"{n} ({r})" if str(n) != str(r) else str(r) for r, n in zip(idle["rep_id"], idle["name"]))
    return (f"No activity, new deal, stage move or closed deal is recorded in this period for {len(idle)} "
            f"rep{'s' if len(idle) != 1 else ''}: {names}. They are left out of team figures; a report would "
            "show only zeros, which say nothing about their work.")


def activity_effects(tv, metrics_used=None, history_weeks: int = 52, teams=None,
                     known: dict | None = None) -> tuple[pd.DataFrame, str]:
    """Per team: how many more new opportunities go with one more unit of an activity a week.

    A Poisson panel model per team (rep and week fixed effects, lags 0-4 weeks, a lead term as a
    check that pipeline isn't driving activity), with wild-cluster-bootstrap intervals that hold
    with few reps (:func:`coachnb.team_effects.team_activity_effect`). Teams are fitted apart:
    the model's intervals hold from 8 reps (``coachnb.team_effects.MIN_REPS_FOR_INTERVAL``); smaller
    teams are left out.

    Parameters
    ----------
    teams : collection of str, optional
        Only these teams (default: every team).
    known : dict, optional
        team -> this table's records for the team, computed already from the same data (a batch
        worker's, :func:`summary_row`): used as they are, the team is not fitted again.

    Returns
    -------
    (DataFrame[team, metric, reps, extra_pct, low_pct, high_pct, p_value, lead_p_value], assumptions)
        ``extra_pct``: % more new opportunities over the following 0-4 weeks per extra unit a week.
    """
    ds = tv.ds
    if not ds.has("activities"):
        return effects_frame([]), ""
    if metrics_used is None:
        used = [m for m in ds.commitments["metric"].astype(str).unique()
                if m in ds.config.commitment_metrics and ds.config.commitment_metrics[m].kind == "activity_count"]
        metrics_used = sorted(used) or ["activities_per_week"]
    rows = []
    for metric in metrics_used:
        label = ds.config.commitment_metrics[metric].label
        for team in sorted(ds.reps["team"].astype(str).unique()):
            if teams is not None and team not in teams:
                continue
            if known is not None and team in known:
                rows += [r for r in known[team] if r["metric"] == label]
                continue
            # the same (cached) fit the reports' scenarios use; None: too few reps, or nothing to fit
            fit = team_link_fit(ds, team, metric, tv.window.end, history_weeks, p_values=("total", "lead"),
                                intervals=("total",))
            if fit is None:
                continue
            total = fit.loc[fit.index.str.startswith("total")].iloc[0]
            lead = fit.loc[fit.index.str.startswith("lead")].iloc[0]
            rows.append({"team": team, "metric": label, "reps": int(fit.attrs["n_reps"]),
                         "extra_pct": 100 * (total["rate_ratio_per_unit"] - 1),
                         "low_pct": 100 * (total["ci_low"] - 1), "high_pct": 100 * (total["ci_high"] - 1),
                         "p_value": total["p_value"], "lead_p_value": lead["p_value"]})
    return effects_frame(rows), ASSUMPTIONS.format(max_lag=LINK_MAX_LAG)


#: the columns of :func:`activity_effects`' table: team and metric (text), reps, then numbers
EFFECT_COLUMNS = ("team", "metric", "reps", "extra_pct", "low_pct", "high_pct", "p_value", "lead_p_value")


def effects_frame(records: list) -> pd.DataFrame:
    """:func:`activity_effects`' table from its records: numbers as floats (None -> NaN), reps as int."""
    frame = pd.DataFrame(records, columns=list(EFFECT_COLUMNS)).astype({c: float for c in EFFECT_COLUMNS[3:]})
    frame["reps"] = frame["reps"].astype(int)
    return frame


def effects_json(frame: pd.DataFrame) -> list[dict]:
    """:func:`activity_effects`' table as plain JSON records (NaN -> None)."""
    return [{c: (str(rec[c]) if c in ("team", "metric") else int(rec[c]) if c == "reps" else _plain_number(rec[c]))
             for c in EFFECT_COLUMNS} for rec in frame.to_dict("records")]


def checked_effects(raw) -> list[dict] | None:
    """``raw`` (read back from JSON) as :func:`effects_json` records, or None when it is not such a list."""
    ok = isinstance(raw, list) and all(
        isinstance(e, dict) and set(e) == set(EFFECT_COLUMNS) and isinstance(e["team"], str)
        and isinstance(e["metric"], str) and isinstance(e["reps"], int) and not isinstance(e["reps"], bool)
        and all(_number(e[c]) for c in EFFECT_COLUMNS[3:]) for e in raw)
    return raw if ok else None


ROW_COLUMNS = ("weakest_step", "commitment", "diagnosis", "verdict", "p_value", "recent_verdicts", "activity_trend",
               "process_flags", "activity_weekly", "pipeline_weekly")


def attention(rec: dict) -> list[str]:
    """Everything in a rep's overview row worth a look in the next 1:1, in plain words."""
    out = ["1:1 overdue"] if rec.get("overdue") else []
    n = rec.get("stalled_deals")
    if n is not None and np.isfinite(n) and n > 0:
        out.append(f"{n:.0f} stalled deal{'s' if n != 1 else ''}")
    if isinstance(rec.get("process_flags"), str):
        out += rec["process_flags"].split("; ")
    if not rec.get("active", True):
        out = ["no record in the period"]
    return out


def process_flags(ds, tv, rep_id, sections=None) -> tuple[float, list[str]]:
    """The rep's activity trend and the process flags their report raises, in the report's own words.

    Computed by the report's section functions, so the overview flags exactly what the report says
    stands out: (last 4 weeks / the weeks before in the role, per week; flags). ``sections``: the
    rep's (activity or None, pipeline) sections when the caller has them (:func:`rep_sections`).
    """
    act, pipe = sections if sections is not None else rep_sections(ds, tv, rep_id)
    flags, trend = [], np.nan
    if act is not None:
        trend = float(act.trend_ratio)
        if act.below_team:
            flags.append("activity below most of the team")
        if np.isfinite(trend) and trend < 0.7:  # the report's rule for "the last 4 weeks ran at ..."
            flags.append("activity down in the last 4 weeks")
        if kept_section(tv, rep_id, "capture", capture_section).stands_out:
            flags.append("activities logged late")
    if pipe.stands_out:
        flags.append("new pipeline below most of the team")
    return trend, flags


def rep_sections(ds, tv, rep_id) -> tuple:
    """The rep's activity section (None without an activity log) and pipeline section, as the report has
    them (the report's own when this process just built it from the same store: :func:`coachnb.report.kept_section`)."""
    return ((kept_section(tv, rep_id, "activity", activity_section) if ds.has("activities") else None),
            kept_section(tv, rep_id, "pipeline", pipeline_section))


def weekly_series(tv, rep_id, weekly: pd.DataFrame, band: pd.DataFrame, column: str) -> dict:
    """One measure of the rep's report window, week by week, with the team's middle half (for a sparkline).

    Parameters
    ----------
    weekly, band : DataFrame
        A report section's ``rep_weekly`` (``week``, ``column``) and ``band`` (``week``, ``q25``,
        ``q75``: the rep's peers pooled, :func:`coachnb.team.weekly_against_team`).

    Returns
    -------
    dict
        ``weeks`` (ISO dates of the weeks' first days), ``values`` (None for a week before the
        rep's hire: missing, never zero, :func:`coachnb.team.before_hire_as_missing`), ``low`` and
        ``high`` (the band's quartiles, None where there is none), all plain JSON values.
    """
    mine = weekly.set_index("week")[[column]].rename(columns={column: str(rep_id)})
    observed = before_hire_as_missing(tv.ds, mine)[str(rep_id)]
    quartiles = band.set_index("week").reindex(mine.index)

    def plain(values):
        return [None if pd.isna(v) else float(v) for v in values]

    return {"weeks": [f"{pd.Timestamp(w):%Y-%m-%d}" for w in mine.index], "values": plain(observed),
            "low": plain(quartiles["q25"]), "high": plain(quartiles["q75"])}


def rep_columns(ds, tv, rep_id) -> dict:
    """The overview's per-rep columns that take real work: flags, weakest step, verdicts, weekly series."""
    weakest = kept_section(tv, rep_id, "conversion", conversion_section).weakest_step if ds.has("stage_history") else None
    reviews = commitment_reviews(tv, rep_id) if ds.has("commitments") else []
    last_review = reviews[-1] if reviews else None
    # the record's readings, older ones included; this window's reviews are not assessed twice
    recent = recent_verdicts(tv, rep_id, reviews=reviews) if ds.has("commitments") else None
    act, pipe = sections = rep_sections(ds, tv, rep_id)
    trend, flags = process_flags(ds, tv, rep_id, sections)
    if weakest:
        flags.append(f"{weakest} below the team")
    base = {"weakest_step": weakest, "recent_verdicts": recent, "activity_trend": trend,
            "activity_weekly": None if act is None else weekly_series(tv, rep_id, act.rep_weekly, act.band, "total"),
            "pipeline_weekly": weekly_series(tv, rep_id, pipe.rep_weekly, pipe.band, "opportunities_created")}
    if last_review is None:
        return {**base, "commitment": None, "diagnosis": None, "verdict": None, "p_value": np.nan,
                "process_flags": "; ".join(flags) or None}
    p = last_review.assessment.pipeline if last_review.assessment else None
    # a running commitment has no verdict yet, whatever its first weeks show
    running = last_review.diagnosis is not None and last_review.diagnosis.category == "in_progress"
    tested = p is not None and not running and p.verdict in ("moved", "no meaningful change")
    if last_review.diagnosis is not None and last_review.diagnosis.category == "not_kept":
        partly = last_review.assessment is not None and last_review.assessment.activity.adherence == "partly kept"
        flags.append(f"last commitment {'partly kept' if partly else 'not kept'}")
    c = last_review.commitment
    return {**base, "commitment": f"{last_review.label}, {c['start']:%d %b} to {c['end']:%d %b %Y}",
            "diagnosis": last_review.diagnosis.label if last_review.diagnosis else None,
            "verdict": "still running" if running else p.verdict if p else None,
            "p_value": p.p_value if tested else np.nan, "process_flags": "; ".join(flags) or None}


def _store_key(ds) -> str | None:
    fs = store_of(ds)
    return None if fs is None else fs.info.get("key")


# --------------------------------------------------------------------------- rows kept with the store
#: the file in a feature store's folder (:mod:`coachnb.store`) that keeps every rep's overview row and
#: the teams' activity effects computed from that store: written by the batch once per run
#: (:func:`complete_overview`), read by the index and every manager page (:func:`stored_overview`)
ROWS_FILE = "overview_rows.json"
TEXT_COLUMNS = ("weakest_step", "commitment", "diagnosis", "verdict", "recent_verdicts", "process_flags")
NUMBER_COLUMNS = ("p_value", "activity_trend")
SERIES_COLUMNS = ("activity_weekly", "pipeline_weekly")
SERIES_KEYS = ("weeks", "values", "low", "high")


def _number(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x))


def _plain_number(x):
    return None if x is None or pd.isna(x) else float(x)


def row_json(row: dict, key: str) -> dict:
    """A row of :func:`rep_columns` as plain JSON values (NaN -> None) with the store's ``key``."""
    out = {k: row.get(k) for k in TEXT_COLUMNS + SERIES_COLUMNS}
    out.update({k: _plain_number(row.get(k)) for k in NUMBER_COLUMNS}, key=key)
    return out


def checked_row(raw, key: str) -> dict | None:
    """``raw`` (read back from JSON) as a row of :func:`rep_columns`, or None when it is not one of ``key``.

    Every value is checked to be of its column's type (text, number, weekly series of numbers),
    since the file sits in a cache folder others may write to; NaN stands for a missing number again.
    """
    if not isinstance(raw, dict) or raw.get("key") != key:
        return None
    if not all(raw.get(k) is None or isinstance(raw.get(k), str) for k in TEXT_COLUMNS):
        return None
    if not all(_number(raw.get(k)) for k in NUMBER_COLUMNS):
        return None
    for k in SERIES_COLUMNS:
        series = raw.get(k)
        if series is None:
            continue
        if not isinstance(series, dict) or set(series) != set(SERIES_KEYS):
            return None
        if not isinstance(series["weeks"], list) or not all(isinstance(w, str) for w in series["weeks"]):
            return None
        n = len(series["weeks"])
        if not all(isinstance(series[s], list) and len(series[s]) == n and all(map(_number, series[s]))
                   for s in ("values", "low", "high")):
            return None
    out = {k: raw.get(k) for k in ROW_COLUMNS}
    out.update({k: np.nan if raw[k] is None else float(raw[k]) for k in NUMBER_COLUMNS})
    return out


def summary_row(store, as_of, lookback_weeks: int, rep_id) -> dict | None:
    """One rep's overview columns from a feature store, as JSON-safe values with the store's key.

    A batch worker calls this beside the rep's report, so that the overview's rows are computed
    in parallel with the reports, from the same store; :func:`complete_overview` keeps a row only
    when its key is the key of the store the overview reads (same data, date, window and code).
    The row also holds ``team_effects`` (the rep's team and its :func:`activity_effects` records)
    unless the store keeps every team's already.
    """
    ds, _, tv = open_data(store, as_of, int(lookback_weeks))
    key = _store_key(ds)
    if key is None:
        return None
    row = row_json(rep_columns(ds, tv, str(rep_id)), key)
    # the rep's team's activity effects too: fitted once per team in this worker (cached), in
    # parallel with the other workers' teams, instead of every team one after another at the end;
    # not when the store keeps them already (complete_overview writes them with the rows)
    team = ds.reps.loc[ds.reps["rep_id"].astype(str) == str(rep_id), "team"].astype(str)
    if len(team) and not (Path(store_of(ds).path) / ROWS_FILE).is_file():
        row["team_effects"] = {"team": team.iloc[0], "rows": effects_json(activity_effects(tv, teams={team.iloc[0]})[0])}
    json.dumps(row, allow_nan=False)  # plain values only; ValueError/TypeError otherwise
    return row


def stored_overview(ds) -> tuple[dict, pd.DataFrame | None]:
    """The rows and team effects kept in ``ds``'s feature store (:data:`ROWS_FILE`), if they are its own.

    Returns
    -------
    rows : dict
        rep_id -> row (as :func:`rep_columns` returns it) for every row of this store's key that
        passes :func:`checked_row`; {} for a Dataset without a store, or no readable file.
    effects : DataFrame or None
        :func:`activity_effects`' table as stored; None when there is none.
    """
    fs, key = store_of(ds), _store_key(ds)
    if fs is None or key is None:
        return {}, None
    path = Path(fs.path) / ROWS_FILE
    try:
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    except OSError:
        data = b""
    # the same bytes for the same store key were parsed and checked already in this process (a
    # worker renders every manager page in turn); keyed by content, so a rewritten file is read again
    file_id = (hashlib.sha256(data).hexdigest(), key)
    if _STORED_ROWS.get("file") != file_id:
        _STORED_ROWS.clear()
        _STORED_ROWS.update(file=file_id, rows=_parse_stored_rows(data, key))
    rows, effects = _STORED_ROWS["rows"]
    # new dicts per call (a caller may add to them); the values are only read (text, numbers, series)
    return {r: dict(row) for r, row in rows.items()}, (None if effects is None else effects_frame(effects))


#: the rows and effects :func:`stored_overview` read last, with the sha256 of the file's bytes and the store key
_STORED_ROWS: dict = {}


def _parse_stored_rows(data: bytes, key: str) -> tuple[dict, list | None]:
    """Rows and effect records in a :data:`ROWS_FILE`'s bytes that pass the checks, for store ``key``."""
    try:
        raw = json.loads(data.decode("utf-8")) if data else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raw = {}
    if not isinstance(raw, dict) or raw.get("key") != key:
        return {}, None
    rows = {str(r): row for r, row in ((r, checked_row(v, key)) for r, v in (raw.get("rows") or {}).items())
            if row is not None} if isinstance(raw.get("rows"), dict) else {}
    return rows, checked_effects(raw.get("effects"))


def fresh_team_effects(fresh: dict, key: str) -> dict:
    """team -> :func:`activity_effects` records, from the rows of ``fresh`` (:func:`summary_row`) of store ``key``."""
    known = {}
    for row in fresh.values():
        team_effects = row.get("team_effects") if checked_row(row, key) is not None else None
        if isinstance(team_effects, dict) and isinstance(team_effects.get("team"), str):
            records = checked_effects(team_effects.get("rows"))
            if records is not None and all(r["team"] == team_effects["team"] for r in records):
                known[team_effects["team"]] = records
    return known


def complete_overview(features, as_of, lookback_weeks: int, fresh: dict | None = None) -> list[str]:
    """Keep every rep's overview row and the teams' activity effects in the feature store, computing what is missing.

    Run once per batch, after the reports and before the overview pages: rows the reports'
    workers computed (``fresh``) and rows kept from an earlier run of the same store are used
    as they are, the others are computed here once, and so are the team effects (the teams the
    workers fitted beside their reports are taken from their rows, the others fitted here); the index and every manager page then read
    them (:func:`stored_overview`) instead of computing them again. Written atomically; a row is
    only ever used with the store it was computed from (same data, date, window and code).

    Parameters
    ----------
    features : str or Path
        The feature store.
    as_of, lookback_weeks
        The batch's coaching date and window (the store's).
    fresh : dict, optional
        rep_id -> row as :func:`summary_row` returns it; rows of another key are ignored.

    Returns
    -------
    list of str
        The reps whose row was computed here.
    """
    ds, _, tv = open_data(features, as_of, int(lookback_weeks))
    key = _store_key(ds)
    if key is None:
        return []
    kept, effects = stored_overview(ds)
    rows = {r: row_json(row, key) for r, row in kept.items()}
    rows.update({str(r): row for r, row in (fresh or {}).items() if checked_row(row, key) is not None})
    computed = [r for r in ds.reps["rep_id"].astype(str).drop_duplicates() if r not in rows]
    for rep_id in computed:
        rows[rep_id] = row_json(rep_columns(ds, tv, rep_id), key)
    if effects is None:  # the teams the reports' workers fitted are not fitted again
        effects, _ = activity_effects(tv, known=fresh_team_effects(fresh or {}, key))
    elif not computed and not fresh:
        return []  # nothing new to keep
    text = json.dumps({"key": key, "rows": rows, "effects": effects_json(effects)}, allow_nan=False,
                      ensure_ascii=False)
    atomic_write_text(Path(store_of(ds).path) / ROWS_FILE, text)
    return computed


def cadence_sentence(ov: Overview) -> str:
    """Reps overdue for a 1:1 and the manager with the lowest cadence; says so when none are recorded."""
    m = ov.managers
    if ov.reps["days_since_1to1"].isna().all():
        return "No 1:1s are recorded, so cadence can't be shown."
    n_over = int(ov.reps["overdue"].sum())
    worst = m.sort_values("cadence_kept").iloc[0] if len(m) else None
    s = f"{n_over} of {len(ov.reps)} reps are overdue for a 1:1."
    if worst is not None and worst["cadence_kept"] < 1:
        s += f" Lowest cadence: {worst['manager']}, {fmt_pct(worst['cadence_kept'])} of reps seen on time."
    return s
