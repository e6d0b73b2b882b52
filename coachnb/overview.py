"""The manager's entry page: one row per rep with the flags that matter, and cadence per manager.

:func:`team_overview` returns plain tables; ``notebooks/team_overview.ipynb`` shows them and
the batch renders the result to ``reports/<as_of>/index.html``.

When several reps' "did it move pipeline" verdicts are listed together, some would look
significant by chance alone; the p-values are adjusted with Benjamini–Hochberg and the page
says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .coaching import LINK_MAX_LAG, team_link_fit
from .errors import CoachnbError
from .formatting import fmt_pct
from .impact import bh_adjust
from .record import recent_verdicts
from .report import activity_section, capture_section, commitment_reviews, conversion_section, pipeline_section
from .store import store_of
from .team import active_reps, open_data, stalled_counts
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
    """rep_id -> file name of the rep's report for ``audience`` (relative to the index)."""
    links = {}
    for entry in _entries(manifest):
        # a failed rep keeps its last good report, which is still worth linking
        if entry.get("audience", "manager") == audience and entry.get("html"):
            links[str(entry["rep_id"])] = Path(entry["html"]).name
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
        :func:`coachnb.record.recent_verdicts`; None without a reviewed commitment).
    """
    ds, as_of_ts, tv = open_data(data, as_of, int(lookback_weeks))  # data folder, Dataset or feature store
    known = set(ds.reps["manager"].astype(str))
    if manager and manager not in known:
        raise CoachnbError(f"manager {manager!r} is not in reps; the managers there are {', '.join(sorted(known))}")
    manifest = _manifest(manifest_path)
    reps = overview_rows(ds, tv, as_of_ts, manifest)  # every rep: q-values over every verdict listed anywhere
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
    effects, assumptions = activity_effects(tv)
    if manager:  # the teams this manager's reps are in
        effects = effects[effects["team"].isin(set(reps["team"]))].reset_index(drop=True)
    pages = {} if manager else {str(p["manager"]): Path(p["html"]).name for p in manifest.get("manager_pages") or []
                                if p.get("status") == "ok" and p.get("html") and p.get("manager")}
    return Overview(as_of_ts, tv.window.label, reps, manager_table(reps, ds), fdr_note, failed, effects,
                    assumptions, inactive_sentence(reps), manager, pages)


def overview_rows(ds, tv, as_of_ts, manifest: dict) -> pd.DataFrame:
    """Every rep's overview row (see :func:`team_overview`), most flags first."""
    reps = ds.reps[["rep_id", "name", "team", "manager"]].copy()
    reps["active"] = reps["rep_id"].astype(str).isin(active_reps(tv))
    sessions = ds.coaching_sessions[ds.coaching_sessions["held_on"] < as_of_ts]
    last = sessions.groupby("rep_id")["held_on"].max()
    reps["days_since_1to1"] = reps["rep_id"].map((as_of_ts - last).dt.days)
    reps["overdue"] = reps["days_since_1to1"].isna() | (reps["days_since_1to1"] > ds.config.thresholds.cadence_days)
    reps["overdue"] &= len(ds.coaching_sessions) > 0  # "overdue" needs recorded 1:1s
    reps["stalled_deals"] = reps["rep_id"].map(stalled_counts(tv))  # the reports' own rule, so they agree

    # A batch's workers compute these columns beside each rep's report (summary_row); rows computed
    # from this very store are taken from the manifest, the rest are computed here.
    key = _store_key(ds)
    done = {str(e["rep_id"]): e["overview_row"] for e in _entries(manifest)
            if key and isinstance(e.get("overview_row"), dict) and e["overview_row"].get("key") == key}
    rows = [_from_json(done[str(r)]) if str(r) in done else rep_columns(ds, tv, r) for r in reps["rep_id"]]
    for column in ROW_COLUMNS:
        reps[column] = [row[column] for row in rows]
    reps["activity_trend"] = reps["activity_trend"].astype(float).where(reps["active"])
    reps["flags"] = [attention(rec) for rec in reps.to_dict("records")]
    # what needs a look in the next 1:1 first (most flags, then longest since a 1:1): not a ranking of people
    days = pd.to_numeric(reps["days_since_1to1"], errors="coerce").astype(float).fillna(-1.0).to_numpy()
    order = sorted(range(len(reps)), key=lambda i: (-len(reps["flags"].iloc[i]), -days[i], str(reps["name"].iloc[i])))
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


def activity_effects(tv, metrics_used=None, history_weeks: int = 52) -> tuple[pd.DataFrame, str]:
    """Per team: how many more new opportunities go with one more unit of an activity a week.

    A Poisson panel model per team (rep and week fixed effects, lags 0-4 weeks, a lead term as a
    check that pipeline isn't driving activity), with wild-cluster-bootstrap intervals that hold
    with few reps (:func:`coachnb.team_effects.team_activity_effect`). Teams are fitted apart:
    the model's intervals hold from 8 reps (``coachnb.team_effects.MIN_REPS_FOR_INTERVAL``); smaller
    teams are left out.

    Returns
    -------
    (DataFrame[team, metric, reps, extra_pct, low_pct, high_pct, p_value, lead_p_value], assumptions)
        ``extra_pct``: % more new opportunities over the following 0-4 weeks per extra unit a week.
    """
    ds = tv.ds
    cols = ["team", "metric", "reps", "extra_pct", "low_pct", "high_pct", "p_value", "lead_p_value"]
    if not ds.has("activities"):
        return pd.DataFrame(columns=cols), ""
    if metrics_used is None:
        used = [m for m in ds.commitments["metric"].astype(str).unique()
                if m in ds.config.commitment_metrics and ds.config.commitment_metrics[m].kind == "activity_count"]
        metrics_used = sorted(used) or ["activities_per_week"]
    rows = []
    for metric in metrics_used:
        for team in sorted(ds.reps["team"].astype(str).unique()):
            # the same (cached) fit the reports' scenarios use; None: too few reps, or nothing to fit
            fit = team_link_fit(ds, team, metric, tv.window.end, history_weeks, p_values=("total", "lead"))
            if fit is None:
                continue
            total = fit.loc[fit.index.str.startswith("total")].iloc[0]
            lead = fit.loc[fit.index.str.startswith("lead")].iloc[0]
            rows.append({"team": team, "metric": ds.config.commitment_metrics[metric].label,
                         "reps": int(fit.attrs["n_reps"]),
                         "extra_pct": 100 * (total["rate_ratio_per_unit"] - 1),
                         "low_pct": 100 * (total["ci_low"] - 1), "high_pct": 100 * (total["ci_high"] - 1),
                         "p_value": total["p_value"], "lead_p_value": lead["p_value"]})
    return pd.DataFrame(rows, columns=cols), ASSUMPTIONS.format(max_lag=LINK_MAX_LAG)


ROW_COLUMNS = ("weakest_step", "commitment", "diagnosis", "verdict", "p_value", "recent_verdicts", "activity_trend",
               "process_flags")


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


def process_flags(ds, tv, rep_id) -> tuple[float, list[str]]:
    """The rep's activity trend and the process flags their report raises, in the report's own words.

    Computed by the report's section functions, so the overview flags exactly what the report says
    stands out: (last 4 weeks / the weeks before in the role, per week; flags).
    """
    flags, trend = [], np.nan
    if ds.has("activities"):
        act = activity_section(tv, rep_id)
        trend = float(act.trend_ratio)
        if act.below_team:
            flags.append("activity below most of the team")
        if np.isfinite(trend) and trend < 0.7:  # the report's rule for "the last 4 weeks ran at ..."
            flags.append("activity down in the last 4 weeks")
        if capture_section(tv, rep_id).stands_out:
            flags.append("activities logged late")
    if pipeline_section(tv, rep_id).stands_out:
        flags.append("new pipeline below most of the team")
    return trend, flags


def rep_columns(ds, tv, rep_id) -> dict:
    """The overview's per-rep columns that take real work: weakest step and last commitment's verdict."""
    weakest = conversion_section(tv, rep_id).weakest_step if ds.has("stage_history") else None
    reviews = commitment_reviews(tv, rep_id) if ds.has("commitments") else []
    last_review = reviews[-1] if reviews else None
    recent = recent_verdicts(tv, rep_id) if ds.has("commitments") else None  # the record's, older ones included
    trend, flags = process_flags(ds, tv, rep_id)
    if weakest:
        flags.append(f"{weakest} below the team")
    base = {"weakest_step": weakest, "recent_verdicts": recent, "activity_trend": trend}
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


def summary_row(store, as_of, lookback_weeks: int, rep_id) -> dict | None:
    """One rep's overview columns from a feature store, as JSON-safe values with the store's key.

    A batch worker calls this beside the rep's report, so that the index doesn't compute every
    rep's commitment review again in one process; :func:`team_overview` uses a row only when its
    key is the key of the store the overview reads (same data, date, window and code).
    """
    ds, _, tv = open_data(store, as_of, int(lookback_weeks))
    key = _store_key(ds)
    if key is None:
        return None
    row = rep_columns(ds, tv, str(rep_id))
    for k in ("weakest_step", "commitment", "diagnosis", "verdict", "recent_verdicts", "process_flags"):
        if row[k] is not None and not isinstance(row[k], str):
            return None  # not a JSON round trip; team_overview computes it
    for k in ("p_value", "activity_trend"):
        row[k] = None if row[k] is None or pd.isna(row[k]) else float(row[k])
    row["key"] = key
    return row


def _from_json(row: dict) -> dict:
    out = {k: row.get(k) for k in ROW_COLUMNS}
    for k in ("p_value", "activity_trend"):
        out[k] = np.nan if out[k] is None else float(out[k])
    return out


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
