"""What the analyst's workbooks (``notebooks/*.ipynb``) compute, so their cells only call and show.

Each workbook is a thin notebook: a ``parameters`` cell, then one call per cell into this module
(or the report's own modules) and a chart or table of the result. Every function here takes plain
values and returns a DataFrame or a small dataclass of DataFrames, so a cell's result can be
inspected, filtered and plotted by hand in JupyterLab.

The one rule every workbook shares is :func:`data_folder`: a relative data path is found from the
working directory or any folder above it, so ``data/sample`` works when papermill runs from the
repository root and when JupyterLab runs the notebook from ``notebooks/``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from . import impact, metrics
from .calendar import weeks_before
from .coaching import LINK_MAX_LAG, team_link_fit
from .errors import CoachnbError, DataError, Problem
from .loading import load, validate
from .report import review_commitment
from .schema import TABLES, Dataset
from .team import impact_settings, open_data, outcome_history, peers_who_changed, rep_commitments
from .team_effects import ASSUMPTIONS

#: the demo team's folder, relative to the repository root (``make sample`` writes it)
SAMPLE_DATA = "data/sample"


def data_folder(data_dir: str | Path = SAMPLE_DATA, start: str | Path | None = None) -> Path:
    """The data folder a workbook's ``data_dir`` parameter names.

    Parameters
    ----------
    data_dir : str or Path
        An absolute path is taken as it is. A relative one is looked for in ``start`` and then in
        each folder above it, nearest first, so the default ``data/sample`` is found from the
        repository root and from ``notebooks/`` alike.
    start : str or Path, optional
        Where to start looking; the working directory when not given.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    DataError
        When no such folder exists (rule ``missing_folder``), naming where it was looked for.
    """
    wanted = Path(str(data_dir).strip() or SAMPLE_DATA).expanduser()
    if wanted.is_absolute():
        if wanted.is_dir():
            return wanted
        places = [wanted]
    else:
        here = Path(start if start is not None else Path.cwd()).resolve()
        places = [folder / wanted for folder in (here, *here.parents)]
        for place in places:
            if place.is_dir():
                return place
    hint = ("pass data_dir, the folder holding reps.csv and opportunities.csv"
            + ("; `make sample` writes the demo team to data/sample" if str(wanted) == SAMPLE_DATA else ""))
    looked = ", ".join(str(p) for p in places[:3]) + (" and the folders above" if len(places) > 3 else "")
    raise DataError([Problem(str(data_dir), None, None, None, "missing_folder",
                             f"the data folder does not exist (looked in {looked})", hint)], str(data_dir))


def _data(data):
    """A Dataset as it is; a folder's path through :func:`data_folder` (a missing one is a DataError)."""
    return data if isinstance(data, Dataset) else data_folder(data)


# --------------------------------------------------------------------------- from plan to record


def proposed_commitment(report) -> dict | None:
    """The commitment a rep's report proposes in its 30-day plan.

    Parameters
    ----------
    report : coachnb.report.RepReport

    Returns
    -------
    dict or None
        ``metric`` (an id of the team's commitment metrics), ``label``, ``baseline`` and
        ``target`` (weekly levels, as the plan shows them); None when the plan proposes nothing
        (its ``note`` says why).
    """
    suggested = (report.plan or {}).get("suggested")
    if not suggested:
        return None
    return {k: suggested[k] for k in ("metric", "label", "baseline", "target")}


def record_plan(data_dir, rep_id: str, as_of="", start=None, days: int = 30, target=None, agreed_on=None,
                follow_up=None, note=None, supersedes=None, note_for_rep=None) -> dict:
    """Record the commitment the rep's report proposes, as ``coachnb plan`` does.

    Builds the manager's report for ``rep_id`` on ``as_of`` (the very plan the report shows) and
    appends its proposed commitment with :func:`coachnb.commitments.add_commitment`.

    Parameters
    ----------
    data_dir : str or Path
        The data folder (the commitment is written to its ``commitments.csv``).
    rep_id : str
    as_of : str, optional
        Date of the 1:1 whose report proposes the plan; empty: the latest date the data covers.
    start, agreed_on : str or date, optional
        First day and date of agreement; both default to the date of the 1:1.
    days : int
        Length in days (7 to 120); the report's plan is for 30.
    target : float, optional
        The agreed weekly level when it differs from the report's draft target.
    follow_up, note, supersedes, note_for_rep : str, optional
        As for :func:`coachnb.commitments.add_commitment`.

    Returns
    -------
    dict
        The row written, with its ``warnings`` (see :func:`coachnb.commitments.add_commitment`).

    Raises
    ------
    CoachnbError
        An unknown rep (with the closest id), a missing folder, a date the data can't cover, or a
        report whose plan proposes no commitment (its note says why); nothing is written then.
    """
    # imported on use: commitments is loaded by the module anyway; report's rep_report is
    # looked up at call time so a test can stand in for it
    from .commitments import add_commitment, check_selection
    from .report import rep_report

    if not Path(data_dir).is_dir():
        raise DataError([Problem(str(data_dir), None, None, None, "missing_folder",
                                 "the data folder does not exist", "pass the folder holding reps.csv")],
                        str(data_dir))
    check_selection(data_dir, reps=[str(rep_id)])
    report = rep_report(data_dir, str(rep_id).strip(), as_of or None)
    proposed = proposed_commitment(report)
    if proposed is None:
        raise CoachnbError(f"the report for {rep_id} on {report.header.as_of:%Y-%m-%d} proposes no commitment "
                           f"({report.plan.get('note') or 'no suggestion'}); record the one you agree on with "
                           "coachnb commit add")
    day = report.header.as_of.strftime("%Y-%m-%d")
    return add_commitment(data_dir, str(rep_id).strip(), proposed["metric"],
                          proposed["target"] if target is None else target, baseline=proposed["baseline"],
                          start=start or day, days=days, agreed_on=agreed_on or day, follow_up=follow_up,
                          note=note, supersedes=supersedes, note_for_rep=note_for_rep)



# --------------------------------------------------------------------------- explore_team.ipynb


@dataclass
class TeamExploration:
    """A team's process over time, as :func:`explore_team` returns it (every table plain numbers).

    Attributes
    ----------
    team : str
        The team, or ``""`` for every rep of the data.
    period : str
        The weeks covered, in words.
    reps : int
        Reps counted.
    activity : DataFrame
        Index ``week``; columns ``call``, ``email``, ``meeting``, ``demo``, ``other``, ``total``:
        the team's logged activities a week.
    pipeline : DataFrame
        Index ``week``; ``opportunities_created``, ``pipeline_created`` (currency: the sum of the
        known amounts) and ``stage_advancements``: the team's new pipeline a week.
    funnel : DataFrame
        One row per stage step: ``from_stage``, ``to_stage``, ``entered``, ``advanced``,
        ``dropped``, ``still_open``, ``rate`` = advanced / (advanced + dropped) pooled over the
        team's reps, and its Wilson 95% interval ``low``, ``high``.
    panel_model : DataFrame
        The activity-to-pipeline panel model (:func:`coachnb.coaching.team_link_fit`) per team:
        ``team``, ``term``, ``lag``, ``rate_ratio_per_unit``, ``ci_low``, ``ci_high``,
        ``p_value`` (for the total and the lead term, the ones the team overview shows; NaN for
        single lags), ``reps``. Teams under the model's 8 reps are left out (see ``panel_note``).
    panel_note : str
        Which teams were fitted and which were too small.
    assumptions : str
        What the panel model assumes, in words.
    """

    team: str
    period: str
    reps: int
    activity: pd.DataFrame
    pipeline: pd.DataFrame
    funnel: pd.DataFrame
    panel_model: pd.DataFrame
    panel_note: str
    assumptions: str


def explore_team(data, team: str = "", as_of="", weeks: int = 52,
                 metric: str = "activities_per_week") -> TeamExploration:
    """The team's funnel, activity and pipeline week by week, and its activity-to-pipeline model.

    Parameters
    ----------
    data : str, Path or Dataset
        A data folder (found as :func:`data_folder` finds it) or a loaded Dataset.
    team : str
        One team of ``reps.team``; ``""`` for every rep (the panel model is then fitted per team).
    as_of : str
        The coaching date; the weeks covered end before its week. ``""``: the latest the data covers.
    weeks : int
        Whole weeks covered (the panel model is fitted on the same weeks).
    metric : str
        The activity metric of the panel model (a ``commitment_metrics`` id of kind ``activity_count``).

    Returns
    -------
    TeamExploration

    Raises
    ------
    CoachnbError
        An unknown team (with the closest name), an unusable date (AsOfError), or a folder that is
        missing or doesn't load (DataError).
    """
    ds, _, tv = open_data(_data(data), as_of, int(weeks))
    reps = _team_reps(ds, team)
    end, start = tv.window.end, tv.window.start
    act = metrics.weekly_activity(ds, start, end) if ds.has("activities") else None
    activity = (act[act["rep_id"].astype(str).isin(reps)].groupby("week")[
        ["call", "email", "meeting", "demo", "other", "total"]].sum() if act is not None else pd.DataFrame())
    pipe = metrics.weekly_pipeline(ds, start, end)
    pipeline = pipe[pipe["rep_id"].astype(str).isin(reps)].groupby("week")[
        ["opportunities_created", "pipeline_created", "stage_advancements"]].sum(min_count=1)
    funnel = team_funnel(metrics.stage_conversion(ds, start, end), reps) if ds.has("stage_history") else None
    model, note = _panel_models(ds, [team] if team else sorted(ds.reps["team"].astype(str).unique()), metric,
                                end, int(weeks))
    return TeamExploration(team, tv.window.label, len(reps), activity, pipeline,
                           funnel if funnel is not None else pd.DataFrame(), model, note,
                           ASSUMPTIONS.format(max_lag=LINK_MAX_LAG))


def _team_reps(ds, team: str) -> list[str]:
    """Rep ids of ``team`` (every rep for ``""``); CoachnbError naming the closest team otherwise."""
    # imported on use: the one "did you mean" rule lives with the CLI's checks of names
    from .commitments import did_you_mean

    teams = ds.reps["team"].astype(str)
    if team and team not in set(teams):
        raise CoachnbError(f"no reps in team {team!r}{did_you_mean(team, set(teams))}")
    return ds.reps.loc[teams == team if team else slice(None), "rep_id"].astype(str).tolist()


def team_funnel(conversion: pd.DataFrame, reps: list[str]) -> pd.DataFrame:
    """Stage-to-stage conversion pooled over ``reps``, with Wilson 95% intervals.

    Parameters
    ----------
    conversion : DataFrame
        :func:`coachnb.metrics.stage_conversion` (one row per rep and stage step).
    reps : list of str

    Returns
    -------
    DataFrame
        ``from_stage``, ``to_stage``, ``entered``, ``advanced``, ``dropped``, ``still_open``,
        ``rate``, ``low``, ``high``, in the process's stage order; rate and interval NaN where
        no deal was resolved.
    """
    mine = conversion[conversion["rep_id"].astype(str).isin(reps)]
    counts = ["entered", "advanced", "dropped", "still_open"]
    out = mine.groupby(["from_stage", "to_stage"], sort=False)[counts].sum().reset_index()
    resolved = out["advanced"] + out["dropped"]
    ok = resolved > 0
    out["rate"], out["low"], out["high"] = np.nan, np.nan, np.nan
    if ok.any():
        low, high = proportion_confint(out.loc[ok, "advanced"], resolved[ok], alpha=0.05, method="wilson")
        out.loc[ok, "rate"] = out.loc[ok, "advanced"] / resolved[ok]
        out.loc[ok, "low"], out.loc[ok, "high"] = low, high
    return out


def _panel_models(ds, teams: list[str], metric: str, end, weeks: int) -> tuple[pd.DataFrame, str]:
    """The panel model's terms for each team that can be fitted, and a note on those that can't."""
    columns = ["team", "term", "lag", "rate_ratio_per_unit", "ci_low", "ci_high", "p_value", "reps"]
    if metric not in ds.config.commitment_metrics or not ds.has("activities"):
        return pd.DataFrame(columns=columns), f"No panel model: {metric!r} is no activity metric of this data."
    fits, left_out = [], []
    for team in teams:
        # the overview's p-values (total and lead): one restricted refit per term costs seconds a team
        fit = team_link_fit(ds, team, metric, end, weeks, p_values=("total", "lead"))
        if fit is None:
            left_out.append(team)
            continue
        rows = fit.reset_index()[columns[1:-1]]
        fits.append(rows.assign(team=team, reps=int(fit.attrs["n_reps"])))
    frame = pd.concat(fits, ignore_index=True)[columns] if fits else pd.DataFrame(columns=columns)
    note = f"Panel model of new opportunities on {ds.config.commitment_metrics[metric].label}"
    note += f", fitted for {', '.join(t for t in teams if t not in left_out)}." if fits else ": no team could be fitted."
    if left_out:
        note += (f" Not fitted (fewer than 8 reps with data, or no new opportunities to model): "
                 f"{', '.join(left_out)}.")
    return frame, note


# --------------------------------------------------------------------------- did_it_move.ipynb


#: the lags and post windows (weeks) the sensitivity table tries, each with the other setting as the reports use it
SENSITIVITY_LAGS = (0, 1, 2, 3, 4)
SENSITIVITY_HORIZONS = (4, 6, 8, 10, 13)


@dataclass
class CommitmentInDepth:
    """One commitment in depth, as :func:`commitment_in_depth` returns it.

    Attributes
    ----------
    commitment : dict
        The ``commitments`` row.
    label : str
        The committed behaviour in words.
    behaviour : DataFrame
        ``week``, ``value``: the rep's weekly level of the committed behaviour around the
        commitment (the series the report charts).
    pipeline : DataFrame
        Index ``week``; ``rep``: the rep's new opportunities a week; ``team_per_rep``: the mean
        of the comparison reps (the teammates who did not change in the same weeks);
        ``in_commitment``: True for weeks of the commitment period.
    assessment : coachnb.impact.CommitmentAssessment
        The report's verdict: did the behaviour change, did pipeline move (``.pipeline``).
    evidence : DataFrame
        ``measure``, ``value``: the test's numbers (rate ratio, interval, p-value, placebo pool,
        minimum detectable effect, weeks needed, gates).
    sensitivity : DataFrame
        The same test with other lags and post windows: ``varied``, ``lag_weeks``,
        ``horizon_weeks``, ``rate_ratio``, ``ci_low``, ``ci_high``, ``p_value``, ``mde_ratio``,
        ``n_post_weeks``, ``weeks_needed``, ``verdict``.
    placebo : ndarray
        The placebo null the p-value ranks the rep against: the studentized statistic at every
        ordinary week of the unchanged comparison reps and of the rep's own past, sorted
        (:func:`coachnb.impact.placebo_statistics`; empty when the pool is too small).
    rep_statistic : float
        The rep's own statistic on the same scale (NaN before any post week, or without a null).
    """

    commitment: dict
    label: str
    behaviour: pd.DataFrame
    pipeline: pd.DataFrame
    assessment: object
    evidence: pd.DataFrame
    sensitivity: pd.DataFrame
    placebo: np.ndarray
    rep_statistic: float


def commitment_in_depth(data, commitment_id: str = "", as_of="") -> CommitmentInDepth:
    """Everything behind one commitment's "did it move pipeline?", as the rep's report tests it.

    Parameters
    ----------
    data : str, Path or Dataset
        A data folder (found as :func:`data_folder` finds it) or a loaded Dataset.
    commitment_id : str
        A ``commitments.commitment_id``; ``""``: the latest commitment started before ``as_of``.
    as_of : str
        The coaching date the commitment is judged on; ``""``: the latest the data covers.

    Returns
    -------
    CommitmentInDepth

    Raises
    ------
    CoachnbError
        No commitments, an unknown id (with the closest one), one replaced or not started yet, an
        unusable date (AsOfError), or a folder that is missing or doesn't load (DataError).
    """
    ds, as_of_ts, tv = open_data(_data(data), as_of, 13)
    c = _chosen_commitment(ds, str(commitment_id).strip(), as_of_ts)
    rep_id = str(c["rep_id"])
    review = review_commitment(tv, rep_id, c)
    hist_start = min(weeks_before(c["start"], 52), tv.history_start)  # the report's history (review_commitment)
    outcome = outcome_history(tv, hist_start)
    a = review.assessment
    # the comparison the report's test used: recorded changes and the ones found in activity
    excluded = list(peers_who_changed(tv, rep_id, c)) + list(a.pipeline.changed_peer_ids)
    changed = None if a.activity.adherence == "too early" else a.activity.changed
    start = c["start"].tz_localize(None)
    sensitivity = impact_sensitivity(outcome, rep_id, start, impact_settings(ds), excluded, changed)
    placebo, rep_z = impact.placebo_statistics(outcome, rep_id, start, impact_settings(ds), excluded_peers=excluded)
    comparison = [r for r in outcome.columns if r != rep_id and r not in set(excluded)]
    period = (outcome.index >= start) & (outcome.index <= c["end"].tz_localize(None))
    pipeline = pd.DataFrame({"rep": outcome[rep_id], "team_per_rep": outcome[comparison].mean(axis=1),
                             "in_commitment": period}, index=outcome.index.rename("week"))
    return CommitmentInDepth(c, review.label, review.weekly, pipeline, a, evidence_frame(a.pipeline), sensitivity,
                             placebo, rep_z)


def _chosen_commitment(ds, commitment_id: str, as_of) -> dict:
    """The commitment row (as the report reads it) to look at in depth."""
    # imported on use: the one "did you mean" rule lives with the CLI's checks of names
    from .commitments import did_you_mean

    every = ds.commitments
    if not len(every):
        raise CoachnbError("the data holds no commitments")
    if not commitment_id:
        superseded = set(every["supersedes"].dropna().astype(str))
        started = every[(every["start"] < as_of) & ~every["commitment_id"].astype(str).isin(superseded)]
        if not len(started):
            raise CoachnbError(f"no commitment had started by {as_of:%Y-%m-%d}")
        ended = started[started["end"] < as_of]  # a finished one has its post weeks to test
        commitment_id = str((ended if len(ended) else started).sort_values("end")["commitment_id"].iloc[-1])
    row = every[every["commitment_id"].astype(str) == commitment_id]
    if not len(row):
        raise CoachnbError(f"no commitment {commitment_id!r}{did_you_mean(commitment_id, every['commitment_id'])}")
    rep_id = str(row["rep_id"].iloc[0])
    usable = rep_commitments(ds, rep_id, as_of)
    usable = usable[usable["commitment_id"].astype(str) == commitment_id]
    if not len(usable):
        raise CoachnbError(f"commitment {commitment_id} was replaced by a later one or had not started by "
                           f"{as_of:%Y-%m-%d}; the report reviews the one that replaced it")
    return usable.iloc[0].to_dict()


def impact_sensitivity(outcome: pd.DataFrame, rep_id: str, start, settings, excluded_peers=None,
                       activity_changed=None) -> pd.DataFrame:
    """:func:`coachnb.impact.pipeline_impact` again with each lag and post window of the sensitivity grid.

    Parameters
    ----------
    outcome : DataFrame
        Weekly panel of new opportunities (index weeks, columns rep ids).
    rep_id : str
    start : Timestamp
        The commitment's first day (naive).
    settings : coachnb.impact.ImpactSettings
        The reports' settings; each row changes one of ``lag_weeks`` (:data:`SENSITIVITY_LAGS`) or
        ``horizon_weeks`` (:data:`SENSITIVITY_HORIZONS`) and keeps the rest.
    excluded_peers, activity_changed
        As the report passes them to :func:`coachnb.impact.pipeline_impact`.

    Returns
    -------
    DataFrame
        One row per setting tried; see :class:`CommitmentInDepth` ``sensitivity``. The row with
        the reports' own settings is marked ``varied == "as in the report"``.
    """
    tried = [("as in the report", settings)]
    tried += [("lag", replace(settings, lag_weeks=lag)) for lag in SENSITIVITY_LAGS if lag != settings.lag_weeks]
    tried += [("post window", replace(settings, horizon_weeks=h, max_post_weeks=h)) for h in SENSITIVITY_HORIZONS
              if h != settings.horizon_weeks]
    rows = []
    for varied, s in tried:
        r = impact.pipeline_impact(outcome, rep_id, start, s, excluded_peers=excluded_peers,
                                   activity_changed=activity_changed)
        rows.append({"varied": varied, "lag_weeks": s.lag_weeks, "horizon_weeks": s.horizon_weeks,
                     "rate_ratio": r.rate_ratio, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value,
                     "mde_ratio": r.mde_ratio, "n_post_weeks": r.n_post_weeks,
                     "weeks_needed": np.nan if r.weeks_needed is None else float(r.weeks_needed),
                     "verdict": r.verdict})
    return pd.DataFrame(rows)


def evidence_frame(p) -> pd.DataFrame:
    """The numbers behind a pipeline verdict, one a row.

    Parameters
    ----------
    p : coachnb.impact.PipelineImpact

    Returns
    -------
    DataFrame
        ``measure`` (in words), ``value``: numbers stay numbers (NaN where the test couldn't
        compute one); the verdict and each gate's state are text.
    """
    rows = [("verdict", p.verdict), ("rate ratio against the team's trend", p.rate_ratio),
            ("95% interval, low", p.ci_low), ("95% interval, high", p.ci_high), ("p-value (placebo rank)", p.p_value),
            ("placebo comparisons", p.n_placebo), ("comparison reps", p.n_peers),
            ("baseline weeks", p.n_pre_weeks), ("post weeks", p.n_post_weeks),
            ("new opportunities a week before", p.pre_rate), ("new opportunities a week after", p.post_rate),
            ("expected without the change", p.counterfactual_rate),
            ("smallest rate ratio detectable (80% power)", p.mde_ratio),
            ("more post weeks needed", np.nan if p.weeks_needed is None else p.weeks_needed), ("naive before/after rate ratio", p.naive_rate_ratio),
            ("naive p-value (ignores the team and overdispersion)", p.naive_p_value)]
    rows += [(f"gate: {name}", state) for name, state in p.gates.items()]
    return pd.DataFrame(rows, columns=["measure", "value"])


# --------------------------------------------------------------------------- data_check.ipynb


@dataclass
class DataCheck:
    """What a data folder holds and what it supports, as :func:`data_check` returns it.

    Attributes
    ----------
    ok : bool
        True when nothing stops loading (warnings allowed).
    problems : DataFrame
        Every error and warning of :func:`coachnb.loading.validate`: ``severity``, ``file``,
        ``row``, ``column``, ``value``, ``rule``, ``message``, ``hint``.
    sections : DataFrame
        One row per report section: ``section``, ``supported`` (bool), ``reason`` (what is missing).
    coverage : DataFrame
        Rows per month (index: first day of the month) of each table with a date, under the
        table's name; empty when the folder doesn't load.
    dated_by : dict of str -> str
        The date column each table is counted by.
    """

    ok: bool
    problems: pd.DataFrame
    sections: pd.DataFrame
    coverage: pd.DataFrame
    dated_by: dict


def data_check(data_dir) -> DataCheck:
    """Validate a data folder, tell which report sections it supports, and count each table by month.

    Parameters
    ----------
    data_dir : str or Path
        The data folder (see :func:`data_folder`).

    Returns
    -------
    DataCheck
        Coverage is counted only when the folder loads (``ok``); the problems say why otherwise.
    """
    report = validate(data_dir)
    columns = ["severity", "file", "row", "column", "value", "rule", "message", "hint"]
    problems = pd.DataFrame([p.to_dict() for p in report.problems], columns=columns)
    sections = pd.DataFrame([{"section": name, "supported": bool(s.supported), "reason": s.reason}
                             for name, s in report.sections_supported.items()])
    # reps are people, dated by their hire: the other tables' rows are events in time
    dated_by = {name: next(c.name for c in t.columns if c.kind in ("date", "datetime"))
                for name, t in TABLES.items()
                if name != "reps" and any(c.kind in ("date", "datetime") for c in t.columns)}
    coverage = monthly_coverage(load(data_dir), dated_by) if report.ok else pd.DataFrame()
    return DataCheck(report.ok, problems, sections, coverage, dated_by)


def monthly_coverage(ds, dated_by: dict) -> pd.DataFrame:
    """Rows per calendar month of each table, by the date column ``dated_by`` names for it.

    Parameters
    ----------
    ds : Dataset
    dated_by : dict of str -> str
        Table name -> date column.

    Returns
    -------
    DataFrame
        Index: month (first day, naive); one integer column per table present, 0 for a month
        without rows, from the first month any table has to the last.
    """
    counts = {}
    for name, column in dated_by.items():
        if not ds.has(name):
            continue
        dates = pd.to_datetime(ds.table(name)[column]).dropna()
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
        counts[name] = dates.dt.to_period("M").value_counts()
    if not counts:
        return pd.DataFrame()
    frame = pd.DataFrame(counts).sort_index()
    months = pd.period_range(frame.index.min(), frame.index.max(), freq="M")
    frame = frame.reindex(months).fillna(0).astype(int)
    frame.index = months.to_timestamp().rename("month")
    return frame
