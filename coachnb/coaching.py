"""The coaching loop: read a commitment, pick one or two focus areas, model scenarios, ask questions.

* :func:`diagnose` turns a :class:`coachnb.impact.CommitmentAssessment` into one of six
  readings (kept and moved; kept without lift, only when pipeline was tested; kept with the
  pipeline not judged; kept with the change in activity not confirmed; not kept; in
  progress), each with an opening question for the next 1:1; :func:`commitment_pattern`
  notices a pattern across several commitments.
* :func:`focus_areas` ranks the drivers of the rep's pipeline by how much moving each one to
  the team median would add, with small samples shrunk towards the team (empirical Bayes),
  and returns at most two.
* :func:`scenario` answers "what if I made more calls?" with an interval.
* :func:`questions_for`, :func:`rep_preread_prompts` and :func:`plan_template` give the 1:1's
  questions and the rep's pre-read. All wording lives in ``questions.toml``.
"""
from __future__ import annotations

import math
import string
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics, store
from .calendar import focus_window, to_local, weeks_before
from .config import ProcessConfig
from .formatting import fmt_estimate, fmt_level, fmt_money, fmt_num, fmt_pct, fmt_ratio, plural
from .metrics import LATE_SHARE
from .schema import Dataset
from .team import min_teammates
from .team_effects import MIN_REPS_FOR_INTERVAL, team_activity_effect

QUESTIONS_FILE = Path(__file__).with_name("questions.toml")
MAX_FOCUS_AREAS = 2
#: too little data for a focus: fewer resolved deals than this AND fewer active weeks than below
MIN_RESOLVED_DEALS = 5
MIN_ACTIVE_WEEKS = 4
#: peers needed for a team comparison
MIN_PEERS = 3
#: the share of a rep's new deals that must carry an amount for their mean to stand for their size
KNOWN_AMOUNT_SHARE = 0.8
#: a driver whose modeled gain is below this share of the rep's modeled won value is noise
MIN_GAIN_SHARE = 0.02
#: weeks of deals used for conversion, win rate and deal size (more than the 13-week window)
CONVERSION_WEEKS = 26
#: credibility pseudo-count for deal size: weight n / (n + DEAL_SIZE_PRIOR_N) on the rep's mean
DEAL_SIZE_PRIOR_N = 5.0
#: bounds on the beta prior's strength alpha + beta (pseudo-deals)
PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX = 1.0, 200.0
BOOTSTRAP_SAMPLES = 2000
ACTIVITY_DRIVERS = ("call", "email", "meeting", "demo")


# =============================================================================== wording
@lru_cache(maxsize=1)
def wording() -> dict:
    """The parsed ``questions.toml``."""
    return tomllib.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))


def fill(template: str, values: dict) -> str:
    """``template`` with every ``{placeholder}`` filled; KeyError names a missing one."""
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = names - set(values)
    if missing:
        raise KeyError(f"no value for placeholder(s) {sorted(missing)} in {template!r}")
    return template.format(**values)


# =============================================================================== 1. diagnosis
CATEGORIES = ("kept_moved", "kept_no_lift", "kept_too_early", "kept_unclear", "not_kept", "in_progress")


@dataclass(frozen=True)
class Diagnosis:
    """How to read one commitment at the next 1:1.

    Attributes
    ----------
    category : str
        One of :data:`CATEGORIES`.
    label : str
        Short plain-words reading (``"Partly kept"`` is a ``not_kept`` with progress).
    opening_question : str
        The question that opens the conversation about it (from ``questions.toml``).
    detail : str
        For the manager: what this reading means and how to hold the conversation.
    commitment_id : str or None
    """

    category: str
    label: str
    opening_question: str
    detail: str
    commitment_id: str | None = None


def _clean(value) -> str | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = " ".join(str(value).split())
    return text or None


#: pipeline verdicts that mean the test was run and read: only these can make a "kept, no lift"
TESTED_VERDICTS = ("moved", "no meaningful change")


def classify(adherence: str, verdict: str | None, direction: str | None = None,
             finished: bool | None = None) -> str:
    """The diagnosis category from the activity adherence and the pipeline verdict.

    Parameters
    ----------
    adherence : {"kept", "partly kept", "not kept", "too early"}
    verdict : {"moved", "no meaningful change", "not enough data to tell", "activity did not change"}
    direction : {"up", "down"} or None
        Direction of the pipeline move when ``verdict == "moved"``.
    finished : bool or None
        Whether the commitment's end is past; ``False`` means in progress.

    Returns
    -------
    str
        One of :data:`CATEGORIES`. For a kept commitment:

        * ``kept_moved``: pipeline tested and moved up;
        * ``kept_no_lift``: pipeline tested (a verdict in :data:`TESTED_VERDICTS`: "no
          meaningful change", or "moved" down) and no lift: a skill or strategy question;
        * ``kept_unclear``: the change in activity can't be confirmed (verdict "activity did
          not change"), so pipeline was not judged as its effect;
        * ``kept_too_early``: activity confirmed, pipeline not judged ("not enough data to
          tell": a data gate failed or the interval is too wide); ``in_progress`` while the
          commitment still runs.

    Notes
    -----
    "Partly kept" is an execution conversation (``not_kept``) that starts from the progress
    made. Pipeline that moved *down* after a kept commitment is read as no lift: the
    behaviour happened, the bet did not pay.
    """
    if adherence == "too early":
        return "in_progress"
    if adherence in ("not kept", "partly kept"):
        return "in_progress" if finished is False else "not_kept"
    if adherence != "kept":
        raise ValueError(f"unknown adherence {adherence!r}")
    if verdict == "moved" and direction != "down":
        return "kept_moved"
    if verdict in TESTED_VERDICTS:
        return "kept_no_lift"
    if verdict == "activity did not change":
        return "kept_unclear"
    return "in_progress" if finished is False else "kept_too_early"


def wording_key(category: str, adherence: str | None, pipeline) -> str:
    """The ``[diagnosis]`` entry of ``questions.toml`` a diagnosis is worded by (the record's reading too).

    Parameters
    ----------
    category : str
        From :func:`classify`.
    adherence : str or None
        The activity's adherence.
    pipeline : coachnb.impact.PipelineImpact or None
        Uses ``weeks_needed`` and ``failed_gates``.

    Returns
    -------
    str
        ``category``, except: a ``not_kept`` with progress is ``partly_kept``; a
        ``kept_too_early`` is worded "too early" only when time is what is missing (more weeks
        would tell and no gate but ``post_horizon`` failed), else ``kept_cannot_tell`` (the
        pipeline can't be judged on this data, now or after more weeks).
    """
    if category == "not_kept" and adherence == "partly kept":
        return "partly_kept"
    if category == "kept_too_early":
        failed = set(getattr(pipeline, "failed_gates", None) or [])
        if not getattr(pipeline, "weeks_needed", None) or not failed <= {"post_horizon"}:
            return "kept_cannot_tell"
    return category


def pipeline_beside(pipeline) -> str:
    """The pipeline result shown beside an unconfirmed activity change, said as not its effect.

    Takes a :class:`coachnb.impact.PipelineImpact` (its estimate is computed whatever the
    verdict); returns one sentence with the rate ratio, its 95% interval and the weeks it
    rests on, or that no figure could be computed.
    """
    rr = getattr(pipeline, "rate_ratio", float("nan"))
    if pipeline is None or not np.isfinite(rr):
        return "No figure for new pipeline could be computed for these weeks."
    hi = pipeline.ci_high
    upper = fmt_ratio(hi) if np.isfinite(hi) else "no upper limit"
    return (f"For reference, new pipeline ran at {fmt_ratio(rr)} what the team's trend predicts (95% interval "
            f"{fmt_ratio(pipeline.ci_low)} to {upper}; {plural(int(pipeline.n_pre_weeks), 'week')} before, "
            f"{int(pipeline.n_post_weeks)} after); with the change in activity not confirmed, that is not "
            "read as the commitment's effect.")


def diagnose(assessment, commitment: dict | None = None, finished: bool | None = None,
             audience: str = "manager") -> Diagnosis:
    """Read one assessed commitment for the next 1:1.

    Parameters
    ----------
    assessment : coachnb.impact.CommitmentAssessment
        Uses ``assessment.activity`` (adherence, post_rate, pre_rate, target) and
        ``assessment.pipeline`` (verdict, direction, weeks_needed, failed_gates, and the
        estimate for :func:`pipeline_beside`).
    commitment : dict, optional
        The commitments row: ``follow_up`` (quoted in a not-kept opening), ``metric``,
        ``baseline``, ``target``, ``end``, ``commitment_id``. A ``label`` key, if present,
        names the metric in words; otherwise the metric name is spelled out.
    finished : bool, optional
        Whether the commitment has ended. ``False`` makes anything but a clear
        "kept and moved"/"kept, no lift" read ``in_progress``.
    audience : {"manager", "rep"}

    Returns
    -------
    Diagnosis
        Worded by :func:`wording_key`; the detail of a ``kept_unclear`` (change in activity not
        confirmed) ends with :func:`pipeline_beside`.
    """
    c = dict(commitment or {})
    act = assessment.activity
    pipe = assessment.pipeline
    category = classify(act.adherence, getattr(pipe, "verdict", None), getattr(pipe, "direction", None), finished)
    weeks_needed = getattr(pipe, "weeks_needed", None)
    # "not enough data to tell" is never "no lift" (nothing was found either way), and "wait N weeks"
    # only when waiting would tell
    key = wording_key(category, act.adherence, pipe)
    section = wording()["diagnosis"][key]

    metric = _clean(c.get("label")) or _clean(c.get("metric")) or "the agreed activity"
    if metric and "_" in metric:
        spec = ProcessConfig().commitment_metrics.get(metric)
        metric = spec.label if spec else metric.replace("_", " ")
    target = c.get("target", getattr(act, "target", None))
    baseline = c.get("baseline", getattr(act, "pre_rate", None))
    end = c.get("end")
    values = {
        "metric_label": metric,
        "baseline": fmt_level(float(baseline)) if baseline is not None else "n/a",
        "target": fmt_level(float(target)) if target is not None else "n/a",
        "achieved": fmt_level(float(getattr(act, "post_rate", float("nan")))),
        "weeks_more": str(int(weeks_needed)) if weeks_needed else "several",
        "end": f"{pd.Timestamp(end):%d %b %Y}" if end is not None and not pd.isna(end) else "its end date",
        "follow_up": _clean(c.get("follow_up")) or "",
    }
    variant = audience
    if category == "not_kept" and not values["follow_up"]:
        variant = f"{audience}_no_follow_up"
    opening = fill(section[variant], values)
    opening = opening[:1].upper() + opening[1:]
    detail = fill(section["detail"], values)
    if category == "kept_unclear":
        detail = f"{detail} {pipeline_beside(pipe)}"
    return Diagnosis(category, section["label"], opening, detail, _clean(c.get("commitment_id")))


def commitment_pattern(diagnoses: list[Diagnosis], window: int = 3) -> str | None:
    """A pattern across the rep's recent commitments, said gently; None when there is none.

    Parameters
    ----------
    diagnoses : list of Diagnosis
        Oldest first. ``in_progress`` ones are not counted.
    window : int
        How many of the latest finished commitments to look at.

    Returns
    -------
    str or None
        Two or more not kept among the last ``window``; else the last two (or more) all kept
        without lift; else the last three (or more) all kept.
    """
    done = [d.category for d in diagnoses if d is not None and d.category != "in_progress"]
    recent = done[-window:]
    text = wording()["pattern"]

    def say(key: str, n: int, m: int) -> str:
        out = fill(text[key], {"n": _count_word(n), "m": _count_word(m)})
        return out[:1].upper() + out[1:]

    n_not = sum(c == "not_kept" for c in recent)
    if n_not >= 2:
        return say("not_kept", n_not, len(recent))
    no_lift_run = _run_length(done, {"kept_no_lift"})
    if no_lift_run >= 2:
        return say("kept_no_lift", no_lift_run, no_lift_run)
    kept_run = _run_length(done, {"kept_moved", "kept_no_lift", "kept_too_early", "kept_unclear"})
    if kept_run >= 3:
        return say("kept_streak", kept_run, kept_run)
    return None


def _run_length(items: list[str], allowed: set[str]) -> int:
    n = 0
    for item in reversed(items):
        if item not in allowed:
            break
        n += 1
    return n


def _count_word(n: int) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    text = words[n] if 0 <= n < len(words) else str(n)
    return text


# =============================================================================== 2. shrinkage
def fit_beta_prior(successes, trials) -> tuple[float, float]:
    """Beta prior of a rate across reps, by the method of moments for the beta-binomial.

    Parameters
    ----------
    successes, trials : array-like of int
        One entry per rep (reps with no trials are ignored).

    Returns
    -------
    (alpha, beta) : floats
        Prior mean ``p = sum(k) / sum(n)``; strength ``alpha + beta = 1 / rho - 1`` where the
        intra-class correlation ``rho`` solves
        ``E[sum n_i (x_i - p)^2] = p (1 - p) [(m - 1) + rho (N - m + 1 - sum n_i^2 / N)]``,
        clipped to ``[PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX]`` (so no spread beyond binomial
        noise means strong pooling, not infinite). ``(nan, nan)`` without any trials.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    keep = n > 0
    k, n = k[keep], n[keep]
    if len(n) == 0:
        return float("nan"), float("nan")
    N, m = n.sum(), len(n)
    p = k.sum() / N
    p_safe = min(max(p, 1e-6), 1 - 1e-6)
    spread = float(np.sum(n * (k / n - p) ** 2)) / (p_safe * (1 - p_safe))
    denom = N - m + 1 - float(np.sum(n ** 2)) / N
    rho = (spread - (m - 1)) / denom if m > 1 and denom > 0 else 0.0
    strength = 1.0 / rho - 1.0 if rho > 0 else PRIOR_STRENGTH_MAX
    strength = float(np.clip(strength, PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX))
    return p_safe * strength, (1 - p_safe) * strength


def shrunk_rate(successes, trials, alpha: float, beta: float) -> np.ndarray:
    """Posterior mean ``(k + alpha) / (n + alpha + beta)`` per rep (the prior mean when n = 0)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    return (k + alpha) / (n + alpha + beta)


def shrunk_mean(rep_mean: float, n: float, team_value: float, prior_n: float = DEAL_SIZE_PRIOR_N) -> float:
    """Credibility-weighted mean: ``w * rep_mean + (1 - w) * team_value`` with ``w = n / (n + prior_n)``."""
    if not np.isfinite(rep_mean) or n <= 0:
        return float(team_value)
    w = n / (n + prior_n)
    return float(w * rep_mean + (1 - w) * team_value)


# =============================================================================== 3. focus areas
@dataclass(frozen=True)
class FocusArea:
    """One thing worth working on, backed by numbers against the team.

    Attributes
    ----------
    area : str
        What, in plain words (``"Discovery → Qualification"``, ``"calls per week"`` ...).
    driver : str
        ``activity``, ``opportunity_rate``, ``conversion``, ``days_in_stage``, ``deal_size``
        or ``data_capture``.
    reason : str
        The rep's number against the team median, and the modeled gain.
    rep_value, team_value : float
        The driver's level for the rep (shrunk where noted) and the teammates' median.
    modeled_gain : float
        Expected extra *won* value (currency) per ``lookback_weeks`` if the rep moved to the
        team median on this driver alone, everything else held as it is. NaN for data capture,
        whose effect the model can't price.
    modeled_gain_opportunities : float
        Extra opportunities created (activity drivers) or extra deals moving on (stage drivers)
        per ``lookback_weeks``; NaN where it doesn't apply.
    suggested : dict or None
        A behaviour commitment that fits: ``metric``, ``label``, ``baseline``, ``target``
        (weekly levels).
    """

    area: str
    driver: str
    reason: str
    rep_value: float
    team_value: float
    modeled_gain: float
    modeled_gain_opportunities: float = float("nan")
    suggested: dict | None = None


@dataclass(frozen=True)
class FocusResult:
    """At most :data:`MAX_FOCUS_AREAS` areas, and a note when the data can't say more."""

    areas: list
    note: str | None = None
    #: the rep's modeled funnel (:func:`rank_drivers`), for scenarios on the same window; None
    #: when there were too few teammates to model it
    funnel: dict | None = None


def _peers(ds: Dataset, rep_id: str) -> list[str]:
    """Teammates of ``rep_id`` (same ``team``), or everyone else when the team has fewer than
    ``thresholds.min_teammates`` other reps."""
    reps = ds.reps
    team = reps.loc[reps["rep_id"] == rep_id, "team"]
    others = reps[reps["rep_id"] != rep_id]
    if len(team):
        same = others[others["team"] == team.iloc[0]]
        if len(same) >= min_teammates(ds):
            return list(same["rep_id"].astype(str))
    return list(others["rep_id"].astype(str))


def _metric_label(ds: Dataset, metric: str) -> str:
    spec = ds.config.commitment_metrics.get(metric)
    return spec.label if spec else metric.replace("_", " ")


def _activity_metric(ds: Dataset, activity_type: str) -> str | None:
    """The commitment metric counting exactly one activity type, if the registry has one."""
    for name, m in ds.config.commitment_metrics.items():
        if m.kind == "activity_count" and tuple(m.activity_types) == (activity_type,):
            return name
    return None


def _metric_of_kind(ds: Dataset, kind: str) -> str | None:
    return next((n for n, m in ds.config.commitment_metrics.items() if m.kind == kind), None)


def step_target(baseline: float, team_value: float) -> float:
    """A weekly target one step towards the team: the team median, rounded up, but at most
    double the baseline (and at least one more than it), so the change is one the rep can keep."""
    goal = math.ceil(team_value - 1e-9)
    cap = max(math.ceil(2 * baseline), math.floor(baseline) + 1)
    return float(max(min(goal, cap), math.floor(baseline) + 1))


_TABLES_CACHE: dict = {}


def funnel_tables(ds: Dataset, as_of, lookback_weeks: int = 13) -> dict:
    """Cached :func:`compute_funnel_tables` (per data fingerprint, date and window; hand-built
    datasets without a fingerprint are not cached)."""
    stored = store.funnel_tables(ds, as_of, lookback_weeks)  # a Dataset read from a feature store
    if stored is not None:
        return stored
    if not ds.fingerprint:
        return compute_funnel_tables(ds, as_of, lookback_weeks)
    key = (ds.fingerprint, str(focus_window(as_of, ds, lookback_weeks)), lookback_weeks)
    if key not in _TABLES_CACHE:
        if len(_TABLES_CACHE) > 8:
            _TABLES_CACHE.clear()
        _TABLES_CACHE[key] = compute_funnel_tables(ds, as_of, lookback_weeks)
    return _TABLES_CACHE[key]


def new_deal_sizes(ds: Dataset, start, end) -> pd.DataFrame:
    """Opportunities created in ``[start, end)`` per rep, and the mean of their known amounts.

    Returns
    -------
    DataFrame[rep_id, n_created, n_known, mean_amount]
        Every rep of ``ds.reps``; ``n_known`` counts the deals with an amount (empty = unknown,
        not 0); ``mean_amount`` (currency) is the mean of the known amounts, NaN unless at least
        :data:`KNOWN_AMOUNT_SHARE` of the rep's new deals have one.
    """
    wp = metrics.weekly_pipeline(ds, start, end)
    n_created = wp.groupby("rep_id", observed=True)["opportunities_created"].sum()
    o = ds.opportunities
    made = o[(o["created_at"] >= to_local(start, ds.config)) & (o["created_at"] < to_local(end, ds.config))]
    known = made[made["amount"].notna()].groupby("rep_id", observed=True)["amount"]
    out = pd.DataFrame({"n_created": n_created})
    out["n_known"] = out.index.map(known.size()).fillna(0).astype(np.int64)
    mean = out.index.map(known.mean()).astype(float)
    # amounts recorded on some deals only (often the won ones) would show those deals' size
    out["mean_amount"] = np.where(out["n_known"] >= KNOWN_AMOUNT_SHARE * out["n_created"], mean, np.nan)
    return out.rename_axis("rep_id")


def compute_funnel_tables(ds: Dataset, as_of, lookback_weeks: int = 13) -> dict:
    """Every rep's drivers, from :mod:`coachnb.metrics`, for :func:`focus_areas` and :func:`scenario`.

    Returns
    -------
    dict of DataFrames
        ``activity`` [rep_id, call, email, meeting, demo, other, total, active_weeks] (means per
        week; active_weeks = weeks with any activity), ``pipeline`` [rep_id,
        opportunities_created, pipeline_created] (window sums), ``conversion`` (stage_conversion
        over the last CONVERSION_WEEKS), ``outcomes`` (deal_outcomes, same span), ``deals``
        [rep_id, n_created, n_known, mean_amount] (same span, :func:`new_deal_sizes`), ``velocity`` (stage_velocity over a year),
        ``timeliness`` (capture_timeliness over the window).
    """
    start, end = focus_window(as_of, ds, lookback_weeks)
    long_start = end - pd.Timedelta(weeks=max(lookback_weeks, CONVERSION_WEEKS))
    wa = metrics.weekly_activity(ds, start, end)
    cols = ["call", "email", "meeting", "demo", "other", "total"]
    activity = wa.groupby("rep_id", observed=True)[cols].mean()
    activity["active_weeks"] = (wa["total"] > 0).groupby(wa["rep_id"], observed=True).sum()
    wp = metrics.weekly_pipeline(ds, start, end)
    pipeline = wp.groupby("rep_id", observed=True)[["opportunities_created", "pipeline_created"]].sum()
    deals = new_deal_sizes(ds, long_start, end)
    return {
        "start": start, "end": end, "weeks": lookback_weeks,
        "activity": activity.reset_index(),
        "pipeline": pipeline.reset_index(),
        "conversion": metrics.stage_conversion(ds, long_start, end),
        "outcomes": metrics.deal_outcomes(ds, long_start, end),
        "deals": deals.reset_index(),
        "velocity": metrics.stage_velocity(ds, end, start=end - pd.Timedelta(weeks=52)),
        "timeliness": metrics.capture_timeliness(ds, start, end),
        "has_activity": ds.has("activities"),
        "has_stages": ds.has("stage_history"),
    }


def _by_rep(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(rep_id=frame["rep_id"].astype(str)).set_index("rep_id")


def rank_drivers(tables: dict, rep_id: str, peers: list[str], stages: tuple[str, ...],
                 metric_for: dict | None = None, late_logging_days: float = 2.0,
                 min_peers: int = MIN_PEERS, currency=None) -> tuple[list[FocusArea], dict]:
    """Every driver on which the rep is behind the teammates' median, with its modeled gain.

    Model: won value per window = opportunities created x win rate x deal size, and
    opportunities = activities x opportunities per activity. Moving one factor to the team
    median with the others held fixed gives the driver's gain:

    * activity type t: ``(team_t - rep_t) * weeks`` more activities, times the rep's (shrunk)
      opportunities per activity, times win rate and deal size;
    * opportunities per activity: ``activities * (team - rep)`` more opportunities;
    * stage conversion c_s (shrunk, beta-binomial empirical Bayes across the team):
      won value x ``(team_c / rep_c - 1)``;
    * deal size (credibility-shrunk mean): opportunities x win rate x ``(team - rep)``;
    * days in stage (Kaplan-Meier median): deals close sooner, not more of them: won value x
      ``min(1, (rep_days - team_days) / window_days)`` pulled into the window.

    Data capture has no modeled gain; it is returned first when the rep logs more than
    :data:`LATE_SHARE` of activities late and more than the team median, since every other
    number depends on it.

    Returns
    -------
    (areas sorted by gain, largest first, data capture ahead; the rep's modeled funnel as a dict)
    """
    f = _RepFunnel.model(tables, rep_id, list(peers), metric_for or {}, min_peers, currency)
    out = _activity_areas(f) if f.has_activity else []
    if tables.get("has_stages", True):
        out += _conversion_areas(f, tables["conversion"]) + _velocity_areas(f, tables["velocity"])
    out += _deal_size_area(f)
    out = [a for a in out if a.modeled_gain > max(MIN_GAIN_SHARE * f.value, 0.0)]
    out.sort(key=lambda a: -a.modeled_gain)
    if f.has_activity:
        out = _data_capture_area(f, tables["timeliness"], late_logging_days) + out
    return out, f.summary


@dataclass
class _RepFunnel:
    """The modeled funnel of :func:`rank_drivers`: the rep and teammates' shrunk drivers over one window."""

    rep_id: str
    peers: list
    weeks: int
    metric_for: dict
    win: pd.Series  # shrunk win rate per rep (rep first, then peers)
    size: pd.Series  # credibility-shrunk deal size per rep
    deals: pd.DataFrame  # n_created, mean_amount per rep over the longer span
    opps: pd.Series  # opportunities created in the window per rep
    act: pd.DataFrame  # mean activities per week by type, active_weeks
    acts_total: pd.Series  # activities in the window per rep
    has_activity: bool
    summary: dict  # the rep's funnel as rank_drivers returns it
    min_peers: int = MIN_PEERS  # the fewest teammates a median may pool
    currency: object = None  # formatting.Currency of the team's amounts

    @property
    def team_ids(self) -> list:
        return [self.rep_id] + self.peers

    @property
    def value(self) -> float:
        """The rep's modeled won value per window: opportunities x win rate x deal size."""
        return self.summary["won_value"]

    @classmethod
    def model(cls, tables: dict, rep_id: str, peers: list, metric_for: dict, min_peers: int = MIN_PEERS,
              currency=None) -> _RepFunnel:
        weeks = int(tables["weeks"])
        team_ids = [rep_id] + peers
        outcomes = _by_rep(tables["outcomes"]).reindex(team_ids)
        won, lost = outcomes["won"].fillna(0).to_numpy(), outcomes["lost"].fillna(0).to_numpy()
        a_w, b_w = fit_beta_prior(won, won + lost)
        if not np.isfinite(a_w):
            a_w, b_w = 1.0, 1.0
        win = pd.Series(shrunk_rate(won, won + lost, a_w, b_w), index=team_ids)
        deals = _by_rep(tables["deals"]).reindex(team_ids)
        # Series.median skips NaN and returns NaN for none at all, without numpy's all-NaN warning
        team_size = float(deals.loc[peers, "mean_amount"].median()) if len(peers) else float("nan")
        if not np.isfinite(team_size):
            team_size = float(deals["mean_amount"].median())
        if np.isfinite(team_size):
            size = pd.Series({r: shrunk_mean(deals.at[r, "mean_amount"], deals.at[r, "n_known"], team_size)
                              for r in team_ids})
        else:  # no deal sizes to go on: the funnel counts won deals (every driver is scaled alike)
            size = pd.Series(1.0, index=team_ids)
        opps = _by_rep(tables["pipeline"]).reindex(team_ids).fillna(0)["opportunities_created"].astype(float)
        act = _by_rep(tables["activity"]).reindex(team_ids).fillna(0)
        acts_total = act["total"] * weeks
        w_rep, s_rep, o_rep = float(win[rep_id]), float(size[rep_id]), float(opps[rep_id])
        summary = {"weeks": weeks, "opportunities": o_rep, "win_rate": w_rep, "deal_size": s_rep,
                   "won_value": o_rep * w_rep * s_rep, "activities": float(acts_total[rep_id]),
                   "resolved_deals": int(won[0] + lost[0]), "active_weeks": int(act.at[rep_id, "active_weeks"]),
                   "gain_unit": "won value" if np.isfinite(team_size) else "won deals"}
        has_activity = bool(tables.get("has_activity", True)) and acts_total.sum() > 0
        return cls(rep_id, peers, weeks, metric_for, win, size, deals, opps, act, acts_total, has_activity, summary,
                   min_peers, currency)

    def med(self, series: pd.Series) -> float:
        """The teammates' median of ``series`` (finite values only; NaN when there are none)."""
        vals = series.reindex(self.peers).to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        return float(np.median(vals)) if len(vals) >= max(self.min_peers, 1) else float("nan")


def _activity_areas(f: _RepFunnel) -> list[FocusArea]:
    """Each activity type below the team median, then turning activity into opportunities."""
    rep_id, weeks, acts_total = f.rep_id, f.weeks, f.acts_total
    o_rep = f.summary["opportunities"]
    k = np.minimum(f.opps.to_numpy(), acts_total.to_numpy())
    a_p, b_p = fit_beta_prior(k, acts_total.to_numpy())
    per_act = pd.Series(shrunk_rate(k, acts_total.to_numpy(), a_p, b_p), index=f.team_ids)
    p_rep = float(per_act[rep_id])
    f.summary["opps_per_activity"] = p_rep
    out = []
    for t in ACTIVITY_DRIVERS:
        rep_t, team_t = float(f.act.at[rep_id, t]), f.med(f.act[t])
        if not np.isfinite(team_t) or team_t <= rep_t:
            continue
        extra_opps = (team_t - rep_t) * weeks * p_rep
        metric = f.metric_for.get(t)
        label = f.metric_for.get(f"{t}_label", f"{t}s per week")
        sugg = None
        if metric:
            sugg = {"metric": metric, "label": label, "baseline": round(rep_t, 1), "target": step_target(rep_t, team_t)}
        out.append(FocusArea(
            label[:1].upper() + label[1:], "activity",
            f"{label[:1].upper() + label[1:]}: {fmt_level(rep_t)} a week over the last {weeks} weeks, "
            f"team median {fmt_level(team_t)}.",
            rep_t, team_t, extra_opps * f.summary["win_rate"] * f.summary["deal_size"], extra_opps, sugg))
    team_p = f.med(per_act)
    if np.isfinite(team_p) and team_p > p_rep:
        extra_opps = float(acts_total[rep_id]) * (team_p - p_rep)
        # no suggested target: new opportunities are an outcome, and a 30-day plan commits to behaviour
        # (the conversation finds which behaviour turns activity into opportunities)
        sugg = None
        out.append(FocusArea(
            "Turning activity into opportunities", "opportunity_rate",
            f"Turning activity into opportunities: {int(o_rep)} new opportunities from "
            f"{int(acts_total[rep_id])} activities (about 1 per {fmt_level(1 / p_rep)} after allowing for "
            f"sample size), team median about 1 per {fmt_level(1 / team_p)}.",
            p_rep, team_p, extra_opps * f.summary["win_rate"] * f.summary["deal_size"], extra_opps, sugg))
    return out


def _conversion_areas(f: _RepFunnel, conversion: pd.DataFrame) -> list[FocusArea]:
    """Each stage step whose shrunk conversion is below the teammates' median."""
    conv = conversion.copy()
    conv["rep_id"] = conv["rep_id"].astype(str)
    out = []
    for (frm, to), grp in conv.groupby(["from_stage", "to_stage"], sort=False):
        g = grp.set_index("rep_id").reindex(f.team_ids)
        adv = g["advanced"].fillna(0).to_numpy(dtype=float)
        res = adv + g["dropped"].fillna(0).to_numpy(dtype=float)
        if res[0] <= 0:
            continue
        a_c, b_c = fit_beta_prior(adv, res)
        if not np.isfinite(a_c):
            continue
        post = pd.Series(shrunk_rate(adv, res, a_c, b_c), index=f.team_ids)
        peer_post = post[f.peers][res[1:] > 0]
        if len(peer_post) < f.min_peers:
            continue
        c_rep, c_team = float(post[f.rep_id]), float(np.median(peer_post))
        if c_team <= c_rep:
            continue
        raw = adv[0] / res[0]
        shrunk_note = f"; about {fmt_pct(c_rep)} after allowing for the small sample" if abs(raw - c_rep) >= 0.03 else ""
        per_window = res[0] * f.weeks / max(CONVERSION_WEEKS, f.weeks)
        # the team median said is the conversion section's (teammates' own rates); the model uses shrunk ones
        said = float(np.median((adv[1:] / np.where(res[1:] > 0, res[1:], 1))[res[1:] > 0]))
        out.append(FocusArea(
            f"{frm} → {to}", "conversion",
            f"{frm} → {to}: {int(adv[0])} of {int(res[0])} advanced ({fmt_pct(raw)}{shrunk_note}), "
            f"team median {fmt_pct(said)}.",
            c_rep, c_team, f.value * (c_team / c_rep - 1), per_window * (c_team - c_rep), None))
    return out


def _velocity_areas(f: _RepFunnel, velocity: pd.DataFrame) -> list[FocusArea]:
    """Each stage the rep's deals sit in longer than the teammates' median (deals close later)."""
    vel = velocity.copy()
    vel["rep_id"] = vel["rep_id"].astype(str)
    out = []
    for stage, grp in vel.groupby("stage", sort=False):
        g = grp.set_index("rep_id").reindex(f.team_ids)
        d_rep, n_exit = float(g.at[f.rep_id, "median_days"]), float(g.at[f.rep_id, "n_exited"])
        d_team = f.med(g["median_days"])
        if not (np.isfinite(d_rep) and np.isfinite(d_team)) or n_exit < MIN_RESOLVED_DEALS or d_rep <= d_team:
            continue
        share = min(1.0, (d_rep - d_team) / (7 * f.weeks))
        out.append(FocusArea(
            f"Time in {stage}", "days_in_stage",
            f"Time in {stage}: median {fmt_num(d_rep, 0)} days, team median {fmt_num(d_team, 0)} days "
            f"(deals would close sooner rather than more of them).",
            d_rep, d_team, f.value * share, float("nan"), None))
    return out


def _deal_count(row: pd.Series) -> str:
    n, known = int(row["n_created"]), int(row["n_known"])
    if known == n:
        return f"{n} new opportunities"
    return f"the {known} of {n} new opportunities with an amount"


def _deal_size_area(f: _RepFunnel) -> list[FocusArea]:
    """Deal size, when the rep's shrunk average is below the teammates' median."""
    rep_id, s_rep = f.rep_id, f.summary["deal_size"]
    team_size_med = f.med(f.size)
    if f.summary["gain_unit"] != "won value" or not (np.isfinite(team_size_med) and team_size_med > s_rep and np.isfinite(f.deals.at[rep_id, "mean_amount"])):
        return []
    return [FocusArea(
        "Deal size", "deal_size",
        f"Deal size: average new opportunity {fmt_money(f.deals.at[rep_id, 'mean_amount'], f.currency, kind='average')} "
        f"({_deal_count(f.deals.loc[rep_id])} in {max(CONVERSION_WEEKS, f.weeks)} weeks), "
        f"team median {fmt_money(team_size_med, f.currency, kind='average')}.",
        s_rep, team_size_med, f.summary["opportunities"] * f.summary["win_rate"] * (team_size_med - s_rep),
        float("nan"), None)]


def _data_capture_area(f: _RepFunnel, timeliness: pd.DataFrame, late_logging_days: float) -> list[FocusArea]:
    """Logging on time, first of all when the rep logs more than LATE_SHARE late and more than the team."""
    tl = _by_rep(timeliness).reindex(f.team_ids)
    late_rep, late_team = float(tl.at[f.rep_id, "share_late"]), f.med(tl["share_late"])
    if not (np.isfinite(late_rep) and late_rep > LATE_SHARE and (not np.isfinite(late_team) or late_rep > late_team)):
        return []
    metric = f.metric_for.get("logged")
    sugg = None
    if metric:
        base = round(1 - late_rep, 2)
        goal = round(1 - late_team, 2) if np.isfinite(late_team) else 0.9
        step = round(min(max(goal, base + 0.1), base + 0.4, 1.0), 2)  # one step, not all the way
        sugg = {"metric": metric, "label": f.metric_for.get("logged_label", "share logged on time"),
                "baseline": base, "target": step}
    return [FocusArea(
        "Logging activities on time", "data_capture",
        f"Logging on time: {fmt_pct(late_rep)} of activities logged more than {fmt_level(late_logging_days)} days "
        f"late, team median {fmt_pct(late_team)}. Every other number here depends on it.",
        late_rep, late_team, float("nan"), float("nan"), sugg)]


def _gain_sentence(area: FocusArea, weeks: int, unit: str = "won value", currency=None) -> str:
    if not np.isfinite(area.modeled_gain):
        return ""
    n = area.modeled_gain_opportunities
    gain = (fmt_money(area.modeled_gain, currency, kind="estimate") if unit == "won value"
            else fmt_estimate(area.modeled_gain))
    if area.driver in ("activity", "opportunity_rate"):
        what = f"about {fmt_level(n)} more new {'opportunity' if fmt_level(n) == '1' else 'opportunities'} and "
    elif area.driver == "conversion":
        what = f"about {fmt_level(n)} more {'deal' if fmt_level(n) == '1' else 'deals'} moving on and "
    else:
        what = ""
    return (f" Moving to the team median on this alone, everything else as it is, the model expects "
            f"{what}about {gain} more {unit} over {weeks} weeks.")


def focus_areas(ds: Dataset, rep_id: str, as_of, lookback_weeks: int = 13,
                max_areas: int = MAX_FOCUS_AREAS, tables: dict | None = None, peers: list | None = None) -> FocusResult:
    """One or two things worth working on, ranked by modeled effect on the rep's pipeline.

    Parameters
    ----------
    ds : Dataset
    rep_id : str
    as_of : Timestamp or date string
        The 1:1; the window is the ``lookback_weeks`` whole weeks before its week.
    lookback_weeks : int
    max_areas : int
        Capped at :data:`MAX_FOCUS_AREAS` (one or two changes at a time).
    tables : dict, optional
        Precomputed :func:`funnel_tables` (shared across reps in a batch).
    peers : list of str, optional
        The reps to compare with (a report passes its one peer group, ``team.peer_group``);
        default the rep's team, or everyone else when the team is too small.

    Returns
    -------
    FocusResult
        Empty with a note when the rep has too little data (fewer than 5 resolved deals and
        fewer than 4 active weeks), when there are too few teammates, or when nothing stands out.
    """
    rep_id = str(rep_id)
    max_areas = max(0, min(int(max_areas), MAX_FOCUS_AREAS))
    tables = tables if tables is not None else funnel_tables(ds, as_of, lookback_weeks)
    peers = _peers(ds, rep_id) if peers is None else [str(p) for p in peers]
    least = min_teammates(ds)
    if len(peers) < least:
        return FocusResult([], f"A focus needs at least {least} teammates to compare with; "
                               f"there are {len(peers)}.")
    metric_for = {}
    for t in ACTIVITY_DRIVERS:
        m = _activity_metric(ds, t)
        if m:
            metric_for[t], metric_for[f"{t}_label"] = m, _metric_label(ds, m)
    for key, kind in (("logged", "logged_on_time_share"),):  # outcomes (new opportunities) are never a plan
        m = _metric_of_kind(ds, kind)
        if m:
            metric_for[key], metric_for[f"{key}_label"] = m, _metric_label(ds, m)
    currency = ds.config.presentation.currency
    areas, funnel = rank_drivers(tables, rep_id, peers, tuple(ds.config.stages), metric_for,
                                 ds.config.thresholds.late_logging_days, least, currency)
    if funnel["resolved_deals"] < MIN_RESOLVED_DEALS and funnel["active_weeks"] < MIN_ACTIVE_WEEKS:
        deals = plural(funnel["resolved_deals"], "deal")
        weeks = (f" and {plural(funnel['active_weeks'], 'week')} with logged activity" if ds.has("activities")
                 else "; the data holds no activity log")
        return FocusResult([], (
            f"Too little data yet to pick a focus from the numbers: {deals} won or lost in the last "
            f"{max(lookback_weeks, CONVERSION_WEEKS)} weeks{weeks}. The rep's own view of where to start is the "
            "better guide for now."), funnel)
    if not areas:
        return FocusResult([], "Nothing stands out against the team strongly enough to pick a focus from the "
                               "data; the rep's own view of what to work on leads.", funnel)
    chosen = [FocusArea(**{**asdict(a), "reason": a.reason + _gain_sentence(a, int(tables["weeks"]),
                                                                       funnel["gain_unit"], currency)})
              for a in areas[:max_areas]]
    return FocusResult(chosen, None, funnel)


# =============================================================================== 4. scenarios
def bootstrap_ratio(numerators, denominators, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Pooled ratio ``sum(y) / sum(x)`` across reps with a percentile bootstrap over reps.

    Returns
    -------
    (ratio, low, high)
    """
    y = np.asarray(numerators, dtype=float)
    x = np.asarray(denominators, dtype=float)
    if len(x) == 0 or x.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    ratio = y.sum() / x.sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(samples, len(x)))
    xs, ys = x[idx].sum(axis=1), y[idx].sum(axis=1)
    boot = ys[xs > 0] / xs[xs > 0]
    tail = (1 - level) / 2 * 100
    return float(ratio), float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


#: weeks of history the team's activity-to-pipeline panel model is fitted on
LINK_HISTORY_WEEKS = 52
#: fewest reps for the panel model: below it the model's intervals don't hold (team_effects' coverage study)
LINK_MIN_REPS = MIN_REPS_FOR_INTERVAL
#: activity lags of the panel model (weeks): an extra call may show as an opportunity weeks later
LINK_MAX_LAG = 4
#: wild cluster bootstrap draws for the scenario interval (no p-values are needed there)
LINK_BOOT = 499

_FIT_CACHE: dict = {}
#: the p-values and intervals every team fit computes, whoever asks first: those the team overview
#: shows (the total's and the lead's p-values, the total's interval), which cover what a report's
#: scenario reads (the total's interval), so the two share one fit per team in a process. Each
#: costs a few restricted refits; every lag's interval (the analyst's notebook) costs about 3x the fit.
LINK_SHARED_P_VALUES = frozenset({"total", "lead"})
LINK_SHARED_INTERVALS = frozenset({"total"})
#: the kinds of the panel model's terms (as :func:`coachnb.team_effects.team_activity_effect` names them)
LINK_TERM_KINDS = ("lag", "lead", "total")


def _term_kinds(which: bool | tuple) -> frozenset:
    """The term kinds ``which`` asks for (True: every kind, False: none, or a tuple of kinds)."""
    if isinstance(which, bool):
        return frozenset(LINK_TERM_KINDS) if which else frozenset()
    return frozenset(which)


def _term_kind(term: str) -> str:
    return "lead" if term.startswith("lead") else "total" if term.startswith("total") else "lag"


def _fit_with_only(fit: pd.DataFrame, p_values: frozenset, intervals: frozenset) -> pd.DataFrame:
    """A copy of ``fit`` (indexed by term) with the p-values and intervals of other term kinds left
    out (NaN, ``interval_valid`` False), as :func:`team_activity_effect` leaves what it wasn't asked for."""
    out = fit.copy()  # the cache keeps its own: a caller may change what it gets
    kinds = pd.Index([_term_kind(str(t)) for t in out.index])
    out.loc[~kinds.isin(p_values), "p_value"] = np.nan
    no_interval = ~kinds.isin(intervals)
    out.loc[no_interval, ["ci_low", "ci_high"]] = np.nan
    out.loc[no_interval, "interval_valid"] = False
    return out


def team_link_fit(ds: Dataset, team, metric: str, end, history_weeks: int = LINK_HISTORY_WEEKS,
                  p_values: bool | tuple = False, intervals: bool | tuple = True) -> pd.DataFrame | None:
    """The team's Poisson panel model of new opportunities on weekly ``metric`` (lags 0-4 weeks).

    :func:`coachnb.team_effects.team_activity_effect` on the ``history_weeks`` whole weeks
    before ``end`` for the reps of ``team`` (rep and week fixed effects, a lead term,
    wild-cluster-bootstrap intervals). ``p_values`` and ``intervals`` say which terms get a
    p-value and an interval (True: all, False: none, or a tuple of kinds: ``"lag"``, ``"lead"``,
    ``"total"``); the others are NaN, as ``team_activity_effect`` leaves them.

    Cached per data fingerprint, team, metric, ``end`` and ``history_weeks``: one fit serves
    every call asking for no more than it computed (each fit computes at least
    ``LINK_SHARED_P_VALUES`` and ``LINK_SHARED_INTERVALS``, so a report's scenario and the team
    overview share one), each call getting its own copy with only what it asked for. The fit
    is a team's, from the team's data: nothing of one rep's report is kept.

    Returns None when the team has fewer than ``LINK_MIN_REPS`` reps, or the model can't be
    fitted (e.g. no new opportunities at all).
    """
    end = pd.Timestamp(end)
    want_p, want_intervals = _term_kinds(p_values), _term_kinds(intervals)
    key = (ds.fingerprint, str(team), metric, str(end), int(history_weeks))
    cached = _FIT_CACHE.get(key) if ds.fingerprint else None
    if cached is not None and want_p <= cached[1] and want_intervals <= cached[2]:
        return None if cached[0] is None else _fit_with_only(cached[0], want_p, want_intervals)
    # what this call needs, what every call shares, and what an earlier fit of the key had
    all_p = want_p | LINK_SHARED_P_VALUES | (cached[1] if cached else frozenset())
    all_intervals = want_intervals | LINK_SHARED_INTERVALS | (cached[2] if cached else frozenset())
    fit = _fit_team_link(ds, team, metric, end, int(history_weeks), all_p, all_intervals)
    if ds.fingerprint:
        if len(_FIT_CACHE) > 64:
            _FIT_CACHE.clear()
        _FIT_CACHE[key] = (fit, all_p, all_intervals)
    return None if fit is None else _fit_with_only(fit, want_p, want_intervals)


def _fit_team_link(ds: Dataset, team, metric: str, end: pd.Timestamp, history_weeks: int, p_values: frozenset,
                   intervals: frozenset) -> pd.DataFrame | None:
    """:func:`team_link_fit`'s model, not cached; None when it can't be fitted."""
    members = ds.reps.loc[ds.reps["team"].astype(str) == str(team), "rep_id"].astype(str).tolist()
    if len(members) < LINK_MIN_REPS:
        return None
    start = weeks_before(end, history_weeks)
    act = store.metric_panel(ds, metric, start, end)  # straight from the store's cube when there is one
    out = store.pipeline_panel(ds, start, end)
    act.columns, out.columns = act.columns.astype(str), out.columns.astype(str)
    reps = [r for r in members if r in act.columns and r in out.columns]
    if len(reps) < LINK_MIN_REPS:
        return None
    try:
        return team_activity_effect(act[reps], out[reps], max_lag=LINK_MAX_LAG, n_boot=LINK_BOOT,
                                    p_values=tuple(sorted(p_values)),
                                    intervals=tuple(sorted(intervals))).set_index("term")
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None  # nothing to say: the caller falls back or leaves the team out


@dataclass(frozen=True)
class ActivityLink:
    """How the rep's team's new opportunities respond to one more unit a week of an activity.

    Attributes
    ----------
    method : {"panel model", "pooled ratio", "identity"}
        ``"panel model"``: the team's Poisson panel model (:func:`team_link_fit`): each rep
        compared with themself over time, team-wide weeks removed; ``estimate``/``low``/``high``
        are the rate ratio of new opportunities per extra unit a week (total over lags 0-4).
        ``"pooled ratio"`` (fallback for teams under ``LINK_MIN_REPS`` reps or a model that
        can't be fitted): the team's new opportunities per unit over the period, a
        cross-section that assumes an extra unit is as productive as the team's average one.
        ``"identity"``: the metric *is* new opportunities.
    estimate, low, high : float
        See ``method``; ``low``/``high`` bound a 95% interval.
    n_reps : int
        Reps the estimate rests on.
    lead_p_value, lead_coef : float
        Panel model only: p-value and coefficient (change in log weekly new opportunities per
        unit) of next week's activity "predicting" this week's pipeline (small p and a positive
        coefficient = good pipeline weeks were followed by more activity, so part of the
        estimate may run the other way).
    """

    method: str
    estimate: float
    low: float
    high: float
    n_reps: int
    lead_p_value: float = float("nan")
    lead_coef: float = float("nan")

    def extra_per_week(self, opps_per_week: float, delta_per_week: float) -> tuple[float, float, float]:
        """Extra new opportunities a week from a sustained change of ``delta_per_week`` units.

        Panel model: ``opps_per_week * (rate_ratio ** delta - 1)`` at the steady state (the new
        level kept longer than the model's 4 lag weeks); otherwise ``ratio * delta``. Returns
        (expected, low, high), the range ordered so that a cut in activity reads sensibly.
        """
        if self.method == "panel model":
            def f(rr):
                return opps_per_week * (rr ** delta_per_week - 1.0)
        else:
            def f(r):
                return r * delta_per_week
        a, b = f(self.low), f(self.high)
        return f(self.estimate), min(a, b), max(a, b)

    @property
    def basis(self) -> str:
        """One plain sentence on what the scenario rests on."""
        if self.method == "panel model":
            s = (f"Based on how new opportunities followed changes in this activity within each of the "
                 f"{self.n_reps} reps of the team over the last year, after taking out what the whole team "
                 "went through each week. It counts once the new level has been kept for about five weeks; "
                 "the first weeks add less.")
            if np.isfinite(self.lead_p_value) and self.lead_p_value <= 0.05 and self.lead_coef > 0:
                s += " Activity also rose after good pipeline weeks, so part of the link may run the other way."
            return s
        if self.method == "pooled ratio":
            return (f"Based on the team's new opportunities per unit of this activity ({self.n_reps} reps), "
                    "assuming an extra unit works as well as the team's average one (too few reps for a "
                    "model that follows each rep over time).")
        return ""  # the metric is new opportunities itself: nothing to explain


def activity_link(ds: Dataset, rep_id: str, as_of, metric: str,
                  lookback_weeks: int = CONVERSION_WEEKS) -> ActivityLink:
    """The :class:`ActivityLink` for ``metric`` in ``rep_id``'s team (panel model, else pooled ratio)."""
    spec = ds.config.commitment_metrics.get(metric)
    if spec is None:
        raise ValueError(f"unknown commitment metric {metric!r}")
    if spec.kind not in ("activity_count", "opportunities_created"):
        raise ValueError(f"a scenario needs an activity or opportunity metric, not {metric!r} ({spec.kind})")
    if spec.kind == "opportunities_created":
        return ActivityLink("identity", 1.0, 1.0, 1.0, 1)
    rep_id = str(rep_id)
    team = ds.reps.loc[ds.reps["rep_id"].astype(str) == rep_id, "team"]
    start, end = focus_window(as_of, ds, lookback_weeks)
    # the total's interval is all a scenario reads (the other terms' would cost about 3x the fit); the
    # lead's p-value, shared with the team overview's fit, says whether pipeline may drive activity
    fit = (team_link_fit(ds, team.iloc[0], metric, end, p_values=("lead",), intervals=("total",))
           if len(team) else None)
    if fit is not None:
        total = fit.loc[fit.index.str.startswith("total")].iloc[0]
        lead = fit.loc[fit.index.str.startswith("lead")]
        lead_p, lead_coef = ((float(lead["p_value"].iloc[0]), float(lead["coef"].iloc[0])) if len(lead)
                             else (float("nan"), float("nan")))
        if all(np.isfinite([total["rate_ratio_per_unit"], total["ci_low"], total["ci_high"]])):
            return ActivityLink("panel model", float(total["rate_ratio_per_unit"]), float(total["ci_low"]),
                                float(total["ci_high"]), int(fit.attrs.get("n_reps", 0)), lead_p, lead_coef)
    group = [rep_id] + _peers(ds, rep_id)
    x, y = _window_totals(ds, metric, start, end, group)
    if int((x.drop(index=rep_id, errors="ignore") > 0).sum()) < min_teammates(ds):  # pooled over enough others
        raise ValueError(f"too few reps with {spec.label} to relate it to new opportunities")
    ratio, low, high = bootstrap_ratio(y.to_numpy(), x.to_numpy())
    return ActivityLink("pooled ratio", ratio, low, high, len(group))


def _window_totals(ds: Dataset, metric: str, start, end, reps: list[str]) -> tuple[pd.Series, pd.Series]:
    """Per rep of ``reps``: total of ``metric`` and new opportunities over ``[start, end)`` (0 when none)."""
    mw = store.metric_weekly(ds, metric, start, end)  # from the feature store's cube when ds is read from one
    wp = store.weekly_pipeline(ds, start, end)
    x = mw.groupby(mw["rep_id"].astype(str))["value"].sum().reindex(reps).fillna(0)
    y = wp.groupby(wp["rep_id"].astype(str))["opportunities_created"].sum().reindex(reps).fillna(0)
    return x, y


def scenario_table(link: ActivityLink, opps_per_week: float, delta_per_week: float, horizons_days=(30, 90),
                   deal_size: float = float("nan"), win_rate: float = float("nan")) -> pd.DataFrame:
    """Expected extra opportunities and pipeline from a sustained change of ``delta_per_week``.

    ``extra_opportunities = link.extra_per_week(opps_per_week, delta) * horizon_days / 7`` with
    ``low``/``high`` from the link's 95% interval; ``extra_pipeline_value`` multiplies by
    ``deal_size`` (currency), ``extra_won_value`` also by ``win_rate``. ``attrs['basis']`` is the
    link's plain-words basis.

    Returns
    -------
    DataFrame[horizon_days, extra_opportunities, low, high, extra_pipeline_value, low_value,
    high_value, extra_won_value]
    """
    mid_w, lo_w, hi_w = link.extra_per_week(opps_per_week, delta_per_week)
    rows = []
    for h in horizons_days:
        weeks = float(h) / 7.0
        mid, lo, hi = mid_w * weeks, lo_w * weeks, hi_w * weeks
        rows.append({"horizon_days": float(h), "extra_opportunities": mid, "low": lo, "high": hi,
                     "extra_pipeline_value": mid * deal_size, "low_value": lo * deal_size,
                     "high_value": hi * deal_size, "extra_won_value": mid * deal_size * win_rate})
    t = pd.DataFrame(rows)
    t.attrs["basis"] = link.basis
    t.attrs["method"] = link.method
    return t


def _scenario_inputs(ds: Dataset, rep_id: str, as_of, metric: str, lookback_weeks: int = CONVERSION_WEEKS,
                     funnel: dict | None = None) -> dict:
    """The activity link for ``metric`` and the rep's levels (weekly metric, new opportunities, value).

    ``funnel``: the rep's modeled funnel if already at hand (``FocusResult.funnel``), else ranked here.
    """
    link = activity_link(ds, rep_id, as_of, metric, lookback_weeks)
    rep_id = str(rep_id)
    x, y = (float(v.iloc[0]) for v in _window_totals(ds, metric, *focus_window(as_of, ds, lookback_weeks), [rep_id]))
    if funnel is None:
        _, funnel = rank_drivers(funnel_tables(ds, as_of, 13), rep_id, _peers(ds, rep_id), tuple(ds.config.stages),
                                 min_peers=min_teammates(ds))
    return {"link": link, "current": x / lookback_weeks, "opps_per_week": y / lookback_weeks,
            "deal_size": funnel["deal_size"] if funnel.get("gain_unit") == "won value" else float("nan"),
            "win_rate": funnel["win_rate"],
            "label": ds.config.commitment_metrics[metric].label}


def scenario(ds: Dataset, rep_id: str, as_of, metric: str = "calls_per_week", from_value: float | None = None,
             to_value: float | None = None, horizons_days=(30, 90), funnel: dict | None = None) -> pd.DataFrame:
    """What a sustained change in a weekly behaviour would add, with a 95% interval.

    Parameters
    ----------
    metric : str
        An ``activity_count`` (or ``opportunities_created``) commitment metric.
    from_value : float, optional
        Current weekly level; default the rep's mean over the last 26 weeks.
    to_value : float
        Weekly level in the scenario.
    horizons_days : tuple of int
    funnel : dict, optional
        The rep's modeled funnel from :func:`focus_areas` (``FocusResult.funnel``): its deal size
        and win rate value the scenario; computed here when not given.

    Returns
    -------
    DataFrame
        See :func:`scenario_table`; ``attrs['basis']`` says what the numbers rest on.

    Notes
    -----
    The activity-to-pipeline link comes from the team's panel model (:func:`activity_link`:
    within-rep changes over the last 52 weeks, team-wide weeks removed, lags 0-4 weeks,
    wild-cluster-bootstrap interval), applied to the rep's own rate of new opportunities over
    the last 26 weeks; teams under 8 reps fall back to the team's pooled ratio. Value uses the
    rep's own deal size and win rate, both shrunk towards the team.

    Raises
    ------
    ValueError
        When ``to_value`` is missing or the data can't support a scenario for this metric.
    """
    if to_value is None:
        raise ValueError("scenario needs to_value, the weekly level to model")
    inp = _scenario_inputs(ds, rep_id, as_of, metric, funnel=funnel)
    start = inp["current"] if from_value is None else float(from_value)
    return scenario_table(inp["link"], inp["opps_per_week"], float(to_value) - start, horizons_days,
                          inp["deal_size"], inp["win_rate"])


# =============================================================================== 5. questions
@dataclass
class Findings:
    """What the data shows about a rep, for choosing questions. Every field is optional.

    Attributes
    ----------
    result_change : float
        Change of the result against the period before, as a share (-0.05 = down 5%).
    result_label : str
        What the result is (``"won value"``).
    stage_leak : dict
        ``stage``, ``next_stage``, ``rate``, ``team_rate`` (shares) of the weakest step.
    stalled_deals : int
    stalled_by_age : bool
        The stalls are judged by age alone (no stage history): "older than most", not "in their stage".
    activity_change : float
        Activity in the last four weeks against the weeks before, as a share (-0.3 = down 30%).
    kept_commitment, kept_no_lift, missed_commitment : str
        Metric label of a commitment kept (and moved), kept without lift, or not kept.
    follow_up : str
        The follow-up the rep chose for the missed commitment.
    late_share : float
        Share of activities logged late; ``late_days`` the threshold in days.
    """

    result_change: float | None = None
    result_label: str = "won value"
    stage_leak: dict | None = None
    stalled_deals: int = 0
    stalled_by_age: bool = False
    activity_change: float | None = None
    kept_commitment: str | None = None
    kept_no_lift: str | None = None
    missed_commitment: str | None = None
    follow_up: str | None = None
    late_share: float | None = None
    late_days: float = 2.0


#: (section, priority): the highest priorities are kept when there are more than MAX_QUESTIONS
_PRIORITY = {"care": 100, "missed_commitment": 95, "acknowledge": 90, "plan": 85, "support": 82,
             "follow_up": 80, "stage_leak": 70, "stalled": 65, "kept_no_lift": 62, "activity_drop": 60,
             "kept_commitment": 58, "late_logging": 55, "explore": 40}
_ORDER = ["care", "acknowledge", "missed_commitment", "kept_no_lift", "kept_commitment", "stage_leak", "stalled",
          "activity_drop", "late_logging", "explore", "plan", "support", "follow_up"]
MAX_QUESTIONS, MIN_QUESTIONS = 7, 4
#: result and activity changes smaller than this share are "about level"
LEVEL_BAND = 0.02
#: activity falling by more than this share is worth a question
ACTIVITY_DROP = 0.2


def _as_findings(findings) -> Findings:
    if findings is None:
        return Findings()
    if isinstance(findings, Findings):
        return findings
    known = Findings.__dataclass_fields__
    return Findings(**{k: v for k, v in dict(findings).items() if k in known})


def _has(x) -> bool:
    return x is not None and not (isinstance(x, float) and not np.isfinite(x))


def questions_for(findings, audience: str = "manager") -> list[str]:
    """Four to seven open questions about the process, chosen by what the data shows.

    Parameters
    ----------
    findings : Findings or dict
        See :class:`Findings`.
    audience : {"manager", "rep"}
        ``"rep"`` gives first-person prompts for the rep's pre-read.

    Returns
    -------
    list of str
        Care first, the result acknowledged, then one question per finding (a missed
        commitment, a stage leak, stalled deals, an activity drop, late logging, a kept
        commitment), then the plan, support and how to follow up.
    """
    if audience not in ("manager", "rep"):
        raise ValueError(f"audience must be 'manager' or 'rep', not {audience!r}")
    f = _as_findings(findings)
    q = wording()["questions"]
    picked: dict[str, str] = {}

    def add(key: str, section: str, values: dict | None = None, variant: str | None = None) -> None:
        entry = q[section]
        text = fill(entry[variant or audience], values or {})
        picked[key] = text[:1].upper() + text[1:]

    add("care", "care")
    if _has(f.result_change):
        values = {"result_change": fmt_pct(abs(f.result_change)), "result_label": f.result_label}
        kind = ("acknowledge_down" if f.result_change < -LEVEL_BAND else
                "acknowledge_up" if f.result_change > LEVEL_BAND else "acknowledge_flat")
        add("acknowledge", kind, values)
    if f.missed_commitment:
        follow = _clean(f.follow_up)
        variant = audience if (follow or audience == "rep") else "manager_no_follow_up"
        add("missed_commitment", "missed_commitment", {"missed_metric": f.missed_commitment, "follow_up": follow or ""},
            variant)
    if f.kept_no_lift:
        add("kept_no_lift", "kept_no_lift", {"kept_metric": f.kept_no_lift})
    if f.kept_commitment:
        add("kept_commitment", "kept_commitment", {"kept_metric": f.kept_commitment})
    if f.stage_leak:
        s = f.stage_leak
        add("stage_leak", "stage_leak", {"stage": s["stage"], "next_stage": s.get("next_stage", "the next stage"),
                                         "rate": fmt_pct(s["rate"]), "team_rate": fmt_pct(s["team_rate"])})
    if f.stalled_deals and f.stalled_deals > 0:
        n = int(f.stalled_deals)
        if f.stalled_by_age:
            add("stalled", "aged", {"aged_deals": f"{n} is" if n == 1 else f"{n} are"})
        else:
            add("stalled", "stalled", {"stalled_deals": f"{n} deal has" if n == 1 else f"{n} deals have"})
    if _has(f.activity_change) and f.activity_change <= -ACTIVITY_DROP:
        add("activity_drop", "activity_drop", {"activity_change": fmt_pct(-f.activity_change)})
    if _has(f.late_share) and f.late_share > LATE_SHARE:
        add("late_logging", "late_logging", {"late_share": fmt_pct(f.late_share), "late_days": fmt_level(f.late_days)})
    if (_has(f.result_change) and f.result_change < -LEVEL_BAND) or len(picked) <= 2:
        add("explore", "explore")
    for key in ("plan", "support", "follow_up"):
        add(key, key)

    keep = sorted(picked, key=lambda k: -_PRIORITY[k])[:MAX_QUESTIONS]
    return [picked[k] for k in _ORDER if k in keep]


def self_view(ds: Dataset, rep_id: str) -> pd.DataFrame:
    """The rep's latest self-assessment score per topic, to set beside the data.

    Returns
    -------
    DataFrame[topic, score, date]
        One row per topic (latest date wins; ties keep the last row), sorted by topic;
        empty when the rep has none.
    """
    sa = ds.self_assessments
    mine = sa[sa["rep_id"].astype(str) == str(rep_id)]
    if not len(mine):
        return pd.DataFrame({"topic": pd.Series([], dtype="string"), "score": pd.Series([], dtype=float),
                             "date": pd.Series([], dtype=sa["date"].dtype)})
    latest = mine.sort_values("date", kind="stable").drop_duplicates("topic", keep="last")
    return latest[["topic", "score", "date"]].sort_values("topic").reset_index(drop=True)


def rep_preread_prompts(ds: Dataset, rep_id: str, stages=None, as_of=None, focus: FocusResult | None = None) -> dict:
    """The rep's pre-read: prompts in the rep's own voice, and a draft 30-day plan.

    Parameters
    ----------
    stages : list of str, optional
        Stages to self-assess; default the team's stages.
    as_of : date, optional
        Used to compute the top focus area when ``focus`` isn't given; default today.
    focus : FocusResult, optional

    Returns
    -------
    dict
        ``self_assessment`` (one prompt per stage, citing the last score when there is one),
        ``keep_drop_create`` (three prompts), ``skill`` (two prompts), ``plan`` (dict with
        metric, label, baseline, target, days, text; or None), and ``sections``: the same as
        ``(title, [items])`` pairs for display.
    """
    p = wording()["preread"]
    stages = list(stages) if stages is not None else list(ds.config.stages)
    scores = self_view(ds, rep_id).set_index("topic")["score"] if len(ds.self_assessments) else pd.Series(dtype=float)
    self_prompts = []
    for stage in stages:
        if stage in scores.index and np.isfinite(scores[stage]):
            self_prompts.append(fill(p["self_assessment_with_score"], {"stage": stage, "score": fmt_level(float(scores[stage]))}))
        else:
            self_prompts.append(fill(p["self_assessment"], {"stage": stage}))
    kdc = [p["keep"], p["drop"], p["create"]]
    skill = [p["skill"], p["skill_next"]]
    if focus is None:
        focus = focus_areas(ds, rep_id, as_of if as_of is not None else pd.Timestamp.today().normalize())
    plan = None
    sugg = next((a.suggested for a in focus.areas if a.suggested), None)
    if sugg:
        plan = {**sugg, "days": 30,
                "text": (f"For the next 30 days: {sugg['label']} from {fmt_level(sugg['baseline'])} to "
                         f"{fmt_level(sugg['target'])} a week (a draft to change or replace in the 1:1).")}
    sections = [("How I rate myself, stage by stage", self_prompts),
                ("Keep, drop, create", kdc),
                ("Building skill", skill)]
    if plan:
        sections.append(("A draft 30-day plan", [plan["text"]]))
    return {"self_assessment": self_prompts, "keep_drop_create": kdc, "skill": skill, "plan": plan,
            "sections": sections}


PLAN_BLANKS = ["The one or two changes for the next 30 days", "How I'll know it's happening (metric, level per week)",
               "What would help, and from whom", "How I'd like to be followed up if it slips",
               "Date of the next 1:1"]


def plan_template(focus: FocusResult, reviews: list | None = None) -> dict:
    """The 30-day plan to fill in at the 1:1, prefilled from the top focus area that suggests one.

    Returns
    -------
    dict
        ``prefilled``: list of (label, value) pairs or None; ``note`` when nothing is prefilled;
        ``blanks``: labels of lines to fill by hand; ``suggested``: the suggestion dict or None.
    """
    sugg = next((a.suggested for a in (focus.areas if focus else []) if a.suggested), None)
    area = next((a for a in (focus.areas if focus else []) if a.suggested), None)
    running = [rv for rv in (reviews or []) if getattr(rv, "diagnosis", None) is not None
               and rv.diagnosis.category in ("in_progress", "kept_too_early")]
    if sugg is None:
        note = "No behaviour to suggest from the data; agree the change together."
        if running:
            note = "A commitment is still running; it may be enough to continue it rather than add another."
        return {"prefilled": None, "note": note, "blanks": PLAN_BLANKS, "suggested": None}
    prefilled = [("Suggested from the data", area.area),
                 ("Behaviour", sugg["label"]),
                 ("Now (per week)", fmt_level(sugg["baseline"])),
                 ("Draft target (per week)", fmt_level(sugg["target"])),
                 ("Length", "30 days")]
    if running:
        prefilled.append(("Still running", "a current commitment; one or two changes at a time"))
    return {"prefilled": prefilled, "note": None, "blanks": PLAN_BLANKS, "suggested": sugg}
