"""Assemble everything one rep's coaching report shows, as plain data.

The notebook ``notebooks/rep_report.ipynb`` calls :func:`rep_report` once and hands the
sections to :mod:`coachnb.display`. Nothing here draws or prints; everything here is
testable without a kernel.

Team-wide computations (metrics for every rep at once) come from :mod:`coachnb.team`, done
once per data folder, coaching date and window; this module picks the rep's part, sets it
against the team and words it.

Privacy: a :class:`RepReport` holds the rep's own records and team *distributions*
(median, quartiles, number of reps) only; no other rep's id, name, deal or account.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import adherence, coaching, impact
from .calendar import weeks_before
from .config import ACTIVITY_TYPES
from .formatting import STEP_ARROW, esc, fmt_money, fmt_num, fmt_pct, fmt_times
from .metrics import KnownValue, known_value
from .store import store_of
from .team import (TeamView, active_commitments, active_reps, aged_threshold, cached, impact_settings, last_session,
                   metric_history, open_data, outcome_history, peer_group, peer_quartiles, peer_rows, peers_who_changed,
                   rep_commitments, rep_row, rep_series, secondary_histories, too_few_teammates,
                   weekly_against_team)

#: said wherever a team figure would pool fewer than ``thresholds.min_teammates`` other reps
TOO_FEW = "There are too few teammates to compare with."



class ShownInJupyter:
    """Report objects show themselves in JupyterLab: the sentence, then each table (escaped)."""

    def _repr_html_(self) -> str:
        parts = [f"<p>{esc(self.sentence)}</p>"] if isinstance(getattr(self, "sentence", None), str) else []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame) and len(value):
                parts.append(f"<p><code>.{esc(f.name)}</code></p>" + value.head(20).to_html(escape=True))
            elif isinstance(value, ShownInJupyter):
                parts.append(f"<h4>{esc(f.name)}</h4>" + value._repr_html_())
            elif isinstance(value, list) and value and all(isinstance(v, ShownInJupyter) for v in value):
                parts += [f"<h4>{esc(f.name)}[{i}]</h4>" + v._repr_html_() for i, v in enumerate(value)]
        return "".join(parts)


def cur_of(tv: TeamView):
    """The team's currency (``process.toml`` ``[presentation]``), for every amount a sentence shows."""
    return tv.ds.config.presentation.currency


def value_words(v: KnownValue, currency=None) -> str:
    """"value 12,000", or as much of it as the amounts recorded support."""
    if v.n == 0 or v.complete:
        return f"value {fmt_money(v.total, currency)}"
    if v.n_known == 0:
        return "value unknown: none of them has an amount"
    return f"value {fmt_money(v.total, currency)} for the {v.n_known} with an amount; {v.n - v.n_known} have none"


# --------------------------------------------------------------------------- 1. header
@dataclass
class Header(ShownInJupyter):
    rep_id: str
    name: str
    team: str
    manager: str
    period: str
    as_of: pd.Timestamp
    last_session: pd.Timestamp | None
    days_since_session: int | None
    overdue: bool
    cadence_days: int
    sentence: str
    data_note: str | None = None  # said when the period holds no records at all


def header_section(tv: TeamView, rep_id: str) -> Header:
    ds, w = tv.ds, tv.window
    rep = rep_row(ds, rep_id)
    last = last_session(ds, rep_id, w.as_of)
    days = int((w.as_of - last).days) if last is not None else None
    cadence = ds.config.thresholds.cadence_days
    recorded = len(ds.coaching_sessions) > 0  # "overdue" needs recorded 1:1s
    overdue = recorded and (days is None or days > cadence)
    data_note = _data_note(tv)
    if not recorded:
        sentence = "No 1:1s are recorded in the data, so how long since the last one can't be shown."
    elif last is None:
        sentence = "No earlier 1:1 is on record."
    else:
        sentence = f"Last 1:1 on {last:%d %b %Y}, {days} days ago"
        sentence += f" (the team aims for one at least every {cadence} days)." if overdue else "."
    return Header(rep_id, str(rep["name"]), str(rep["team"]), str(rep["manager"]), w.label, w.as_of,
                  last, days, overdue, cadence, sentence, data_note)


def _data_note(tv: TeamView) -> str | None:
    """Say so when the period holds no records at all: an empty quarter is not a quiet one."""
    w = tv.window
    weeks = []
    if tv.ds.has("activities"):
        wa = tv.weekly_activity
        weeks.append(wa.loc[wa["total"] > 0, "week"])
    wp = tv.weekly_pipeline
    weeks.append(wp.loc[(wp["opportunities_created"] > 0) | (wp["stage_advancements"] > 0), "week"])
    busy = pd.concat(weeks)
    if (busy >= w.start.tz_localize(None)).any():
        return None
    if len(busy):
        return (f"The data holds no records for this period: the newest is from the week of "
                f"{busy.max():%d %b %Y}. Every figure below is empty for that reason, not a quiet quarter.")
    return ("No records fall in this period or the year before it: the data ends earlier or starts later. "
            "Every figure below is empty for that reason.")


# --------------------------------------------------------------------------- 3a. activity
@dataclass
class ActivitySection(ShownInJupyter):
    rep_weekly: pd.DataFrame  # week, call..other, total (the report window)
    band: pd.DataFrame  # week, median, q25, q75, n_reps (teammates, anonymous)
    rep_mix: pd.Series  # share by type
    team_mix: pd.Series  # median share by type across teammates
    rep_total: float
    team: dict  # median, q25, q75, n_reps of teammates' activities per week in the role
    trend_ratio: float  # last 4 weeks / earlier weeks, per week
    stands_out: bool
    sentence: str
    below_team: bool = False  # volume per week in the role below the teammates' lower quartile


def activity_section(tv: TeamView, rep_id: str) -> ActivitySection:
    """Weekly activity against the team, compared per week in the role (a new hire is not judged on
    weeks before they started)."""
    w = tv.window
    wa, mine, band, team, rep_weeks = weekly_against_team(tv, "weekly_activity", rep_id, "total")
    rep_total = float(mine["total"].sum())
    mix_cols = [c for c in ACTIVITY_TYPES if c in wa.columns]
    rep_mix = (mine[mix_cols].sum() / rep_total) if rep_total else pd.Series(0.0, index=mix_cols)
    # each rep's sums, once for the team; a rep's teammates are every row but theirs
    group = peer_group(tv, rep_id)
    by_rep = cached(tv, ("mix_by_rep", tuple(mix_cols), tv.window), lambda: wa.groupby("rep_id")[mix_cols].sum())
    by_rep = by_rep[by_rep.index.astype(str).isin(group.ids)]
    shares = by_rep.div(by_rep.sum(axis=1).replace(0, np.nan), axis=0)
    team_mix = shares.median() if len(shares.dropna(how="all")) >= group.least else shares.median() * np.nan

    # trend over the weeks in the role only: zeros before the hire date are not a rise
    in_role = mine.tail(max(int(np.floor(rep_weeks)), 0))
    recent, earlier = in_role["total"].iloc[-4:], in_role["total"].iloc[:-4]
    trend = float(recent.mean() / earlier.mean()) if len(earlier) >= 4 and earlier.mean() > 0 else np.nan
    if rep_weeks < 2:
        hired = tv.ds.reps.set_index("rep_id").at[rep_id, "hire_date"]
        s = (f"New in the role since {hired:%d %b %Y}: {fmt_num(rep_total)} activities so far, "
             "too early to compare with the team.")
        return ActivitySection(mine, band, rep_mix, team_mix, rep_total, team, trend, False, s)
    per_week = rep_total / rep_weeks
    span = (f"in the {w.weeks} weeks" if rep_weeks >= w.weeks
            else f"in the {fmt_num(rep_weeks, 0)} weeks since starting")
    s = f"{fmt_num(rep_total)} activities {span} ({fmt_num(per_week)} a week)"
    if team["n_reps"]:
        s += (f"; team median {fmt_num(team['median'])} a week (middle half {fmt_num(team['q25'])} to "
              f"{fmt_num(team['q75'])}, {team['n_reps']} teammates).")
    else:
        s += f". {TOO_FEW}"
    notes = []
    if team["n_reps"] and per_week < team["q25"]:
        notes.append("Volume is below most of the team")
    elif team["n_reps"] and per_week > team["q75"]:
        notes.append("Volume is above most of the team")
    if np.isfinite(trend) and (trend < 0.7 or trend > 1.3):
        notes.append(f"the last 4 weeks ran at {fmt_pct(trend)} of the weeks before")
    stands_out = bool(notes)
    if notes:
        s += " " + "; ".join(notes) + "."
    elif team["n_reps"]:
        s += " Nothing stands out in volume or trend."
    below = bool(team["n_reps"] and per_week < team["q25"])
    return ActivitySection(mine, band, rep_mix, team_mix, rep_total, team, trend, stands_out, s, below)


# --------------------------------------------------------------------------- 3b. pipeline created
@dataclass
class PipelineSection(ShownInJupyter):
    rep_weekly: pd.DataFrame  # week, opportunities_created, pipeline_created (the report window)
    band: pd.DataFrame  # week, median, q25, q75, n_reps of teammates' new opportunities
    created: int  # new opportunities in the period
    value: KnownValue  # their value (currency), as far as amounts are known
    team: dict  # quartiles of teammates' new opportunities per week in the role
    cycle_days: float  # median days from creation to win, deals won in the period
    team_cycle_days: float
    stands_out: bool
    sentence: str


def pipeline_section(tv: TeamView, rep_id: str) -> PipelineSection:
    """New pipeline: the leading indicator closest to the result, computable from deals alone."""
    _, mine, band, team, rep_weeks = weekly_against_team(tv, "weekly_pipeline", rep_id, "opportunities_created")
    created = int(mine["opportunities_created"].sum())
    opps = tv.ds.opportunities
    made = opps[(opps["rep_id"] == rep_id) & (opps["created_at"] >= tv.window.start)
                & (opps["created_at"] < tv.window.end)]
    value = known_value(made["amount"])
    rep_weeks = max(rep_weeks, 1.0)
    per_week = created / rep_weeks
    out = tv.outcomes
    cyc = out.loc[out["rep_id"] == rep_id, "median_cycle_days"]
    cycle = float(cyc.iloc[0]) if len(cyc) and pd.notna(cyc.iloc[0]) else np.nan
    team_cycle = peer_quartiles(tv, out, rep_id, "median_cycle_days")["median"]

    s = f"{created} new opportunities in the period ({fmt_num(per_week)} a week, {value_words(value, cur_of(tv))})"
    s += (f"; team median {fmt_num(team['median'])} a week (middle half {fmt_num(team['q25'])} to "
          f"{fmt_num(team['q75'])})." if team["n_reps"] else f". {TOO_FEW}")
    stands_out = bool(team["n_reps"] and rep_weeks >= 2 and per_week < team["q25"])
    if stands_out:
        s += " New pipeline is below most of the team; it is usually where a short quarter starts."
    if np.isfinite(cycle):
        s += f" Deals won in the period took a median of {fmt_num(cycle, 0)} days from creation"
        s += f" (team median {fmt_num(team_cycle, 0)})." if np.isfinite(team_cycle) else "."
    return PipelineSection(mine, band, created, value, team, cycle, team_cycle, stands_out, s)


# --------------------------------------------------------------------------- 3b. conversion
@dataclass
class ConversionSection(ShownInJupyter):
    rep: pd.DataFrame  # step, entered, advanced, dropped, still_open, rate, low, high
    team: pd.DataFrame  # step, median, q25, q75, n_reps
    weakest_step: str | None  # the step whose gap to the team costs the most deals
    low_steps: list  # every step whose whole interval lies below the team median, costliest first
    sentence: str


def _with_step(conv: pd.DataFrame) -> pd.DataFrame:
    out = conv.copy()
    out["step"] = out["from_stage"].astype(str) + f" {STEP_ARROW} " + out["to_stage"].astype(str)
    return out


def conversion_section(tv: TeamView, rep_id: str) -> ConversionSection:
    conv = _with_step(tv.conversion)
    mine = conv[conv["rep_id"] == rep_id].reset_index(drop=True)
    rest = peer_rows(tv, conv, rep_id)
    team = (rest.dropna(subset=["rate"]).groupby("step", sort=False)["rate"]
            .agg(median="median", q25=lambda s: s.quantile(0.25), q75=lambda s: s.quantile(0.75), n_reps="size")
            .reindex(mine["step"]).reset_index())
    team.loc[~(team["n_reps"] >= peer_group(tv, rep_id).least), ["median", "q25", "q75"]] = np.nan  # too few
    joined = mine.merge(team, on="step", how="left")
    # a step stands out only when even the top of the rep's interval is below the team median
    gaps = joined[(joined["high"] < joined["median"])]
    weakest, low_steps = None, []
    if len(gaps):
        resolved = gaps["advanced"] + gaps["dropped"]
        # rank by deals the gap costs, not by the gap alone: 0 of 4 is less telling than 9 of 31
        gaps = gaps.assign(cost=(gaps["median"] - gaps["rate"]) * resolved).sort_values("cost", ascending=False)
        low_steps = list(gaps["step"])
        g = gaps.iloc[0]
        weakest = str(g["step"])
        s = (f"{weakest} stands out: {int(g['advanced'])} of {int(g['advanced'] + g['dropped'])} deals moved on "
             f"({fmt_pct(g['rate'])}, 95% interval {fmt_pct(g['low'])} to {fmt_pct(g['high'])}); "
             f"team median {fmt_pct(g['median'])}.")
        if len(low_steps) > 1:
            s += f" Also below the team: {', '.join(low_steps[1:])}."
    elif joined["rate"].notna().any() and joined["median"].isna().all():
        s = "There are too few teammates with closed-out deals to compare stage conversion with."
    elif joined["rate"].notna().any():
        s = "No stage stands out: at every step the team median lies within your interval."
    else:
        s = "Not enough closed-out deals in the period to judge stage conversion."
    return ConversionSection(mine, team, weakest, low_steps, s)


@dataclass
class StageMixSection(ShownInJupyter):
    table: pd.DataFrame  # stage, your deals, your value, team median share
    sentence: str


def stage_mix_section(tv: TeamView, rep_id: str) -> StageMixSection | None:
    """Where the rep's open deals stand now, against the team: computable from one table of deals."""
    mix = tv.open_stage_mix
    if mix.empty:
        return None
    stages = list(tv.ds.config.stages)
    counts = mix.pivot_table(index="rep_id", columns="stage", values="deals", aggfunc="sum",
                             fill_value=0, observed=True).reindex(columns=stages, fill_value=0)
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    group = peer_group(tv, rep_id)
    rest = shares[shares.index.astype(str).isin(group.ids)]
    team_share = rest.median() if len(rest.dropna(how="all")) >= group.least else rest.median() * np.nan
    mine = mix[mix["rep_id"] == rep_id].set_index("stage").reindex(stages)
    n = mine["deals"].fillna(0).astype(int)
    table = pd.DataFrame({"stage": stages, "your open deals": n.to_numpy(),
                          "their value": [fmt_money(0 if k == 0 else v, cur_of(tv)) if k == 0 or pd.notna(v)
                                          else "unknown" for k, v in zip(n, mine["value"])],
                          "your share": (n / max(n.sum(), 1)).map(fmt_pct).to_numpy(),
                          "team median share": team_share.reindex(stages).map(fmt_pct).to_numpy()})
    if n.sum() == 0:
        return StageMixSection(table, "No open deals with a current stage right now.")
    early = stages[0]
    s = (f"{n.sum()} open deals with a current stage; {fmt_pct(n[early] / n.sum())} of them are at {early} "
         f"(team median {fmt_pct(team_share.get(early, np.nan))}).")
    return StageMixSection(table, s)


# --------------------------------------------------------------------------- 3c. velocity
@dataclass
class VelocitySection(ShownInJupyter):
    rep: pd.DataFrame  # stage, n_entered, n_censored, median_days
    team: pd.DataFrame  # stage, median_days, p75_days, n_reps: quartiles of the peers' own medians
    slow_stage: str | None
    sentence: str


def stage_days_of_peers(tv: TeamView, rep_id: str) -> pd.DataFrame:
    """Per stage, the median and upper quartile of the peer group's own median days in stage.

    One statistic for "the team's time in stage" wherever a report states it (the focus areas
    take the same median): each teammate's Kaplan-Meier median is one value, as every other team
    figure is one value per rep. Returns DataFrame[stage, median_days, p75_days, n_reps].
    """
    stages = list(tv.ds.config.stages)
    rows = peer_rows(tv, tv.velocity, rep_id).dropna(subset=["median_days"])
    least = peer_group(tv, rep_id).least
    by = rows.groupby("stage", observed=True)["median_days"]
    out = pd.DataFrame({"median_days": by.median(), "p75_days": by.quantile(0.75), "n_reps": by.size()})
    out = out.reindex(stages)
    out.loc[~(out["n_reps"] >= least), ["median_days", "p75_days"]] = np.nan  # too few to pool
    return out.rename_axis("stage").reset_index()


def velocity_section(tv: TeamView, rep_id: str) -> VelocitySection:
    stages = list(tv.ds.config.stages)
    mine = tv.velocity[tv.velocity["rep_id"] == rep_id].set_index("stage").reindex(stages).reset_index()
    team = stage_days_of_peers(tv, rep_id)
    j = mine.merge(team[["stage", "median_days", "p75_days"]], on="stage", suffixes=("", "_team"))
    slow = j[(j["median_days"] > j["p75_days"]) & (j["n_entered"] >= 3)]
    if len(slow):
        r = slow.assign(ratio=slow["median_days"] / slow["median_days_team"]).sort_values("ratio").iloc[-1]
        s = (f"Deals sit in {r['stage']} for a median of {fmt_num(r['median_days'], 0)} days "
             f"({int(r['n_entered'])} deals, {int(r['n_censored'])} still there); the team's median is "
             f"{fmt_num(r['median_days_team'], 0)} days.")
        slow_stage = str(r["stage"])
    else:
        slow_stage = None
        if peer_group(tv, rep_id).scope == "none":
            s = "There are too few teammates to compare time in stage with."
        elif j["median_days"].notna().any():
            s = "Time in stage is in line with the team."
        else:
            s = "Too few deals have left a stage to measure time in stage yet."
    return VelocitySection(mine, team, slow_stage, s + " Deals still in a stage count as 'at least this long', not as finished.")


# --------------------------------------------------------------------------- 3d. stalled deals
@dataclass
class StalledSection(ShownInJupyter):
    deals: pd.DataFrame  # name, account, stage, days_in_stage, threshold_days, amount
    n_open: int
    sentence: str
    basis: str = "stage"  # "stage": days in the current stage; "age": days since created (no stage history)


def stalled_section(tv: TeamView, rep_id: str) -> StalledSection:
    ds = tv.ds
    mine = tv.stalled[tv.stalled["rep_id"] == rep_id]
    deals = mine[["name", "account", "stage", "days_in_stage", "threshold_days", "amount"]].reset_index(drop=True)
    opps = ds.opportunities
    n_open = int(((opps["rep_id"] == rep_id) & (opps["status"] == "open") & (opps["created_at"] < tv.window.as_of)).sum())
    if too_few_teammates(ds):  # "longer than usual" would rest on one or two teammates' deals
        return StalledSection(deals.iloc[:0], n_open, f"{TOO_FEW[:-1]} on how long deals usually sit in a stage.")
    if n_open == 0:
        s = "You have no open deals right now."
    elif deals.empty:
        s = f"None of your {n_open} open deals has been in its stage longer than most deals in the data (every rep's)."
    else:
        s = (f"{len(deals)} of your {n_open} open deals ({value_words(known_value(deals['amount']), cur_of(tv))}) "
             f"{'has' if len(deals) == 1 else 'have'} been in "
             f"their stage longer than {ds.config.thresholds.stalled_percentile:.0f}% of deals in the data (every rep's) stay there.")
    return StalledSection(deals, n_open, s)


def aged_deals_section(tv: TeamView, rep_id: str) -> StalledSection:
    """Stalls judged from the dates there are: with no stage history, open deals older than most."""
    ds = tv.ds
    ages = tv.open_deal_ages
    pct = ds.config.thresholds.stalled_percentile
    threshold = aged_threshold(tv)
    mine = ages[(ages["rep_id"] == rep_id) & (ages["age_days"] > threshold)]
    names = ds.opportunities.set_index("opportunity_id")[["name", "account"]]
    deals = mine.join(names, on="opportunity_id").sort_values("age_days", ascending=False)
    deals = deals.assign(stage="(no stage history)", threshold_days=threshold).rename(
        columns={"age_days": "days_in_stage"})[["name", "account", "stage", "days_in_stage", "threshold_days",
                                               "amount"]].reset_index(drop=True)
    n_open = int((ages["rep_id"] == rep_id).sum())
    if too_few_teammates(ds):
        return StalledSection(deals.iloc[:0], n_open, f"{TOO_FEW[:-1]} on how old open deals usually get.",
                              basis="age")
    if n_open == 0:
        s = "You have no open deals right now."
    elif deals.empty:
        s = f"None of your {n_open} open deals is older than most open deals in the data (every rep's)."
    else:
        s = (f"{len(deals)} of your {n_open} open deals ({value_words(known_value(deals['amount']), cur_of(tv))}) "
             f"{'is' if len(deals) == 1 else 'are'} older than "
             f"{pct:.0f}% of open deals in the data, every rep's ({fmt_num(threshold, 0)} days). Without stage history, age is "
             "the only sign of a stall.")
    return StalledSection(deals, n_open, s, basis="age")


# --------------------------------------------------------------------------- 3e. data capture
@dataclass
class CaptureSection(ShownInJupyter):
    rep: dict
    team: dict  # quartiles of share_late
    stands_out: bool
    sentence: str


def capture_section(tv: TeamView, rep_id: str) -> CaptureSection:
    t = tv.timeliness
    row = t[t["rep_id"] == rep_id]
    rep = row.iloc[0].to_dict() if len(row) else {}
    team = peer_quartiles(tv, t, rep_id, "share_late")
    days = tv.ds.config.thresholds.late_logging_days
    n_logged = int(rep.get("n_with_logged_at", 0) or 0)
    if n_logged == 0:
        return CaptureSection(rep, team, False, "No logging times are recorded, so timeliness can't be judged.")
    share = float(rep["share_late"])
    s = (f"{fmt_pct(share)} of your activities were logged more than {fmt_num(days)} days after they happened "
         f"(median delay {fmt_num(rep['median_lag_days'])} days)")
    s += f"; team median {fmt_pct(team['median'])}." if team["n_reps"] else f". {TOO_FEW}"
    stands_out = bool(team["n_reps"] and share > max(team["q75"], 0.1))
    s += " Late entries make the rest of this report less certain." if stands_out else ""
    return CaptureSection(rep, team, stands_out, s)


# --------------------------------------------------------------------------- 7. results
#: each result's team table and column (team view), for the numbers behind the shown rows
RESULT_SOURCES = {"Won this quarter so far": ("attainment", "won_amount_qtd"),
                  "Share of quarterly quota won": ("attainment", "attainment"),
                  "Open pipeline against quarterly quota": ("coverage", "coverage"),
                  "Win rate in the period": ("outcomes", "win_rate"),
                  "Average won deal": ("outcomes", "avg_won_amount")}
MONEY_COLUMNS = ("won_amount_qtd", "attainment", "coverage", "avg_won_amount")  # rest on amounts


@dataclass
class ResultsSection(ShownInJupyter):
    rows: pd.DataFrame  # measure, you, team median: as the report writes them
    sentence: str
    values: pd.DataFrame | None = None  # the same rows as numbers (currency, shares, times; NaN: unknown)


def results_section(tv: TeamView, rep_id: str) -> ResultsSection:
    known_values: dict = {}  # each figure is read once, for the table's text and for its numbers

    def pick(name, col):
        if (name, col, "you") not in known_values:
            table = getattr(tv, name)
            r = table[table["rep_id"] == rep_id]
            known_values[name, col, "you"] = float(r[col].iloc[0]) if len(r) and pd.notna(r[col].iloc[0]) else np.nan
        return known_values[name, col, "you"]

    def team_med(name, col):
        if (name, col, "team") not in known_values:
            known_values[name, col, "team"] = peer_quartiles(tv, getattr(tv, name), rep_id, col)["median"]
        return known_values[name, col, "team"]

    # a win rate needs recorded losses; a won value needs won deals with an amount above zero (team-wide:
    # from the team tables, which a feature store holds too, not from this rep's deals alone)
    out = tv.outcomes
    won_n = pd.to_numeric(out["won"], errors="coerce").fillna(0).sum()
    lost_n = pd.to_numeric(out["lost"], errors="coerce").fillna(0).sum()
    has_losses = bool(lost_n > 0 or won_n == 0)  # only wins in the period: a win rate would say nothing
    has_amounts = bool(won_n == 0 or (pd.to_numeric(out["avg_won_amount"], errors="coerce") > 0).any())
    cur = cur_of(tv)
    money = ((lambda x, kind="recorded": fmt_money(x, cur, kind=kind)) if has_amounts
             else (lambda x, kind="recorded": "unknown"))
    rows = [
        ("Won this quarter so far", money(pick("attainment", "won_amount_qtd")),
         money(team_med("attainment", "won_amount_qtd"), kind="average")),
        ("Share of quarterly quota won", fmt_pct(pick("attainment", "attainment")),
         fmt_pct(team_med("attainment", "attainment"))),
        ("Open pipeline against quarterly quota", fmt_times(pick("coverage", "coverage")),
         fmt_times(team_med("coverage", "coverage"))),
        ("Average won deal", money(pick("outcomes", "avg_won_amount"), kind="average"),
         money(team_med("outcomes", "avg_won_amount"), kind="average")),
    ]
    if has_losses:
        rows.insert(3, ("Win rate in the period", fmt_pct(pick("outcomes", "win_rate")),
                        fmt_pct(team_med("outcomes", "win_rate"))))
    if not has_amounts:  # shares of quota and coverage rest on amounts too
        rows = [r for r in rows if r[0] not in ("Share of quarterly quota won", "Open pipeline against quarterly quota")]
    open_unknown = bool(np.isnan(pick("coverage", "open_pipeline")))  # some open deal has no amount
    if open_unknown:
        rows = [r for r in rows if r[0] != "Open pipeline against quarterly quota"]
    table = pd.DataFrame(rows, columns=["measure", "you", "team median"])
    sources = [RESULT_SOURCES[m] for m in table["measure"]]
    known = [has_amounts or column not in MONEY_COLUMNS for _, column in sources]
    values = pd.DataFrame({"measure": table["measure"],
                           "you": [pick(t, c) if k else np.nan for (t, c), k in zip(sources, known)],
                           "team median": [team_med(t, c) if k else np.nan
                                           for (t, c), k in zip(sources, known)]})
    no_peers = peer_group(tv, rep_id).scope == "none"
    if no_peers:
        table = table.drop(columns="team median")  # n/a in every row says less than leaving it out
        values = values.drop(columns="team median")
    att = pick("attainment", "attainment")
    s = ("For the record, here is where the numbers stand. They follow from the process above; "
         "the conversation is about the process.")
    qs = tv.attainment["quarter_start"]
    inclusive = tv.ds.config.quarter_to_date == "inclusive"
    last_day = (tv.window.as_of - pd.Timedelta(days=0 if inclusive else 1)).tz_localize(None)
    started = bool(len(qs) and pd.notna(qs.iloc[0]) and last_day >= qs.iloc[0])  # not on its first day
    if np.isfinite(att) and has_amounts and started:
        s = f"You have won {fmt_pct(att)} of this quarter's quota so far. " + s
    if started:
        s += (f" \"Won this quarter so far\" counts deals won from {qs.iloc[0]:%d %b} to {last_day:%d %b %Y}, "
              + ("the day of the 1:1 included." if inclusive else "the day before the 1:1."))
    else:
        s += " The quarter starts on the day of this 1:1, so nothing has been won in it yet."
    if not has_losses:
        s += " No deals are recorded as lost in this period, so there is no win rate."
    if not has_amounts:
        s += " The deals won in this period carry no amounts, so their values are unknown."
    if open_unknown:
        s += " Some of your open deals have no amount, so open pipeline against quota is unknown."
    if no_peers:
        s += f" {TOO_FEW[:-1]}, so no team figures are shown."
    return ResultsSection(table, s, values)


# --------------------------------------------------------------------------- 2. since last time
@dataclass
class CommitmentReview(ShownInJupyter):
    """One commitment of the rep: what was agreed, what happened, and what it means."""

    commitment: dict
    label: str  # the metric in plain words
    weekly: pd.DataFrame  # week, value (the committed metric, around the period)
    finished: bool
    assessment: object | None  # coachnb.impact.CommitmentAssessment
    diagnosis: object | None  # coachnb.coaching.Diagnosis
    agreed: str  # "On 01 Sep you agreed to ..."


def _panel(long: pd.DataFrame, value: str) -> pd.DataFrame:
    """Long rep-week frame -> week x rep panel (zero-filled by the metrics already)."""
    return long.pivot_table(index="week", columns="rep_id", values=value, aggfunc="sum", observed=True).sort_index()


def commitment_reviews(tv: TeamView, rep_id: str, audience: str = "manager") -> list[CommitmentReview]:
    """Every commitment "since last time" (:func:`coachnb.team.active_commitments`), assessed
    (:func:`kept_review`: once per process for the same rep, store and window)."""
    chosen = active_commitments(tv.ds, rep_id, tv.window)
    return [kept_review(tv, rep_id, row.to_dict(), audience) for _, row in chosen.iterrows()]


# --------------------------------------------------------------------------- kept for the same rep
# A batch worker builds a rep's report, then the rep's coaching record and overview row from the
# same feature store: each asks again for reviews and sections the report already has. They are
# kept here for the last few reps, keyed by the rep's id with the store (its key: data, date,
# window, code) and the window, so a rep only ever gets back their own, computed from the same data.

#: reps (with audience) whose commitment reviews and report sections a process keeps
REVIEWS_KEPT = 4
_REVIEWS: dict = {}
_SECTIONS: dict = {}


def rep_key(tv: TeamView, rep_id: str, *more) -> tuple | None:
    """What is kept for ``rep_id`` is keyed by this: ``tv``'s feature store and window, the rep and
    ``more``; None for data not read from a feature store (nothing is kept then)."""
    fs = store_of(tv.ds)
    if fs is None:
        return None
    return (str(fs.path), fs.info.get("key"), tv.window, tv.history_start, str(rep_id), *more)


def _kept_for(cache: dict, key: tuple) -> dict:
    """``cache[key]`` (a dict, made when missing), the oldest keys dropped beyond ``REVIEWS_KEPT``."""
    if key not in cache:
        cache[key] = {}
        while len(cache) > REVIEWS_KEPT:
            del cache[next(iter(cache))]
    return cache[key]


def kept_review(tv: TeamView, rep_id: str, c: dict, audience: str = "manager") -> CommitmentReview:
    """:func:`review_commitment`, computed once per process for the same rep, commitment, audience,
    store and window (the report's, then the record's and the overview row's reviews).

    The review returned holds ``c`` as its ``commitment``, whoever asked first.
    """
    key = rep_key(tv, rep_id, audience)
    if key is None:
        return review_commitment(tv, rep_id, c, audience)
    kept = _kept_for(_REVIEWS, key)
    cid = str(c["commitment_id"])
    if cid not in kept:
        kept[cid] = review_commitment(tv, rep_id, c, audience)
    review = kept[cid]
    return review if review.commitment is c else dataclasses.replace(review, commitment=c)


def keep_sections(tv: TeamView, rep_id: str, sections: dict) -> None:
    """Keep a report's sections (name -> section) for the rep's overview row (:func:`kept_section`)."""
    key = rep_key(tv, rep_id)
    if key is not None:
        _kept_for(_SECTIONS, key).update({k: v for k, v in sections.items() if v is not None})


def kept_section(tv: TeamView, rep_id: str, name: str, compute):
    """The section ``name`` the rep's report built from the same store and window, else ``compute(tv, rep_id)``.

    Only :func:`rep_report` keeps sections; the team overview reads them for the rep's row
    (a section of the report's, before the rep's pre-read rewords it).
    """
    key = rep_key(tv, rep_id)
    kept = _SECTIONS.get(key, {}) if key is not None else {}
    return kept[name] if name in kept else compute(tv, rep_id)


def review_commitment(tv: TeamView, rep_id: str, c: dict, audience: str = "manager") -> CommitmentReview:
    """Assess one commitment (a ``commitments`` row as a dict): adherence, pipeline verdict, diagnosis."""
    ds, w = tv.ds, tv.window
    spec = ds.config.commitment_metrics.get(c["metric"])
    label = spec.label if spec else str(c["metric"])
    hist_start = min(weeks_before(c["start"], 52), tv.history_start)
    activity_panel = metric_history(tv, c["metric"], hist_start)
    outcome_panel = outcome_history(tv, hist_start)
    finished = bool(c["end"] < w.as_of)
    assessment = impact.assess_commitment(
        activity_panel, outcome_panel, rep_id, c["start"].tz_localize(None), c["end"].tz_localize(None),
        float(c["target"]), baseline=float(c["baseline"]), excluded_peers=peers_who_changed(tv, rep_id, c),
        secondary=secondary_histories(tv, hist_start, outcome_panel), settings=impact_settings(ds))
    diagnosis = coaching.diagnose(assessment, commitment={**c, "label": label}, finished=finished,
                                  audience=audience)
    mine = rep_series(tv, c["metric"], hist_start, rep_id)
    lo = weeks_before(c["start"], 8).tz_localize(None)
    hi = min(w.end.tz_localize(None), c["end"].tz_localize(None) + pd.Timedelta(weeks=13))
    weekly = mine[(mine["week"] >= lo) & (mine["week"] < hi)].reset_index(drop=True)
    agreed = (f"On {c['agreed_on']:%d %b %Y} the agreement was {label}: from {fmt_num(c['baseline'])} "
              f"to {fmt_num(c['target'])}, from {c['start']:%d %b} to {c['end']:%d %b %Y}.")
    return CommitmentReview(c, label, weekly, finished, assessment, diagnosis, agreed)


@dataclass
class DetectedChange:
    """A change in a rep's activity found in the data (no commitment on record), and what followed."""

    week: pd.Timestamp  # first week at the new level
    pre_rate: float  # activities per week before
    post_rate: float  # activities per week after
    pipeline: object  # coachnb.impact.PipelineImpact
    sentence: str


def detected_change(tv: TeamView, rep_id: str) -> DetectedChange | None:
    """For a rep with no commitment on record: the one clear change in weekly activity over the last year,
    if there is one, and whether new pipeline moved after it.

    The change is looked for in *activity* only; a date found in the pipeline series itself would make
    any pipeline test at that date meaningless (see ``benchmarks/calibration.py``).
    """
    if not tv.ds.has("activities"):
        return None
    series = rep_series(tv, "activities_per_week", tv.history_start, rep_id).set_index("week")["value"]
    hired = tv.ds.reps.set_index("rep_id").at[rep_id, "hire_date"]
    series = series[series.index >= hired.tz_localize(None)]  # zeros before the hire are no change
    week = adherence.detect_activity_change(series)
    if week is None:
        return None
    outcome_panel = outcome_history(tv, tv.history_start)
    changed = tv.commitment_changes
    others_changed = sorted(set(changed.loc[changed["changed"] & (changed["rep_id"] != rep_id), "rep_id"]
                                .astype(str)))
    pipe = impact.pipeline_impact(outcome_panel, rep_id, week, impact_settings(tv.ds), excluded_peers=others_changed,
                                  activity_changed=True)
    pre, post = float(series[series.index < week].mean()), float(series[series.index >= week].mean())
    direction = "rose" if post > pre else "fell"
    s = (f"No commitment is on record, but activity {direction} around the week of {week:%d %b %Y}: "
         f"from {fmt_num(pre)} to {fmt_num(post)} a week. Was that a deliberate change?")
    return DetectedChange(week, pre, post, pipe, s)


def older_commitment_note(tv: TeamView, rep_id: str) -> str | None:
    """When no commitment runs in the period but older ones exist: say so, with the last one's dates."""
    mine = rep_commitments(tv.ds, rep_id, tv.window.as_of)
    if mine.empty:
        return None
    c = mine.iloc[-1]
    spec = tv.ds.config.commitment_metrics.get(c["metric"])
    label = spec.label if spec else str(c["metric"])
    return (f"No commitment runs in this period or was agreed since the last 1:1. The last one on record, "
            f"{label} from {c['start']:%d %b %Y} to {c['end']:%d %b %Y}, belongs to the record rather than "
            "to this conversation. Agreeing one or two behaviour changes at this 1:1 lets the next report "
            "check whether they happened and whether they moved pipeline.")


# --------------------------------------------------------------------------- findings for questions
def findings_for(tv: TeamView, rep_id: str, reviews: list, sections: dict):
    """What the data shows about the rep, as :class:`coachnb.coaching.Findings` (chooses the questions)."""
    ds, w = tv.ds, tv.window
    opps = ds.opportunities
    won = opps[(opps["rep_id"] == rep_id) & (opps["status"] == "won")]
    this = known_value(won.loc[(won["closed_at"] >= w.start) & (won["closed_at"] < w.end), "amount"])
    before = known_value(won.loc[(won["closed_at"] >= weeks_before(w.start, w.weeks)) & (won["closed_at"] < w.start),
                                 "amount"])
    whole = this.n_known == this.n and before.n_known == before.n  # a floor over a floor is no change
    result_change = float(this.total / before.total - 1) if whole and before.total > 0 else None

    leak = None
    conv = sections.get("conversion")
    if conv is not None and conv.weakest_step:
        row = conv.rep[conv.rep["step"] == conv.weakest_step].iloc[0]
        team_rate = conv.team.set_index("step").loc[conv.weakest_step, "median"]
        leak = {"stage": row["from_stage"], "next_stage": row["to_stage"], "rate": float(row["rate"]),
                "team_rate": float(team_rate)}
    act = sections.get("activity")
    activity_change = float(act.trend_ratio - 1) if act is not None and np.isfinite(act.trend_ratio) else None
    stalled = sections.get("stalled")
    cap = sections.get("capture")

    f = dict(result_change=result_change, stage_leak=leak,
             stalled_deals=len(stalled.deals) if stalled is not None else 0,
             stalled_by_age=stalled is not None and stalled.basis == "age",
             activity_change=activity_change,
             late_share=float(cap.rep["share_late"]) if cap is not None and cap.rep.get("n_with_logged_at") else None,
             late_days=ds.config.thresholds.late_logging_days)
    for rv in reviews:
        cat = getattr(rv.diagnosis, "category", None)
        if cat == "kept_moved":
            f["kept_commitment"] = rv.label
        elif cat == "kept_no_lift":
            f["kept_no_lift"] = rv.label
        elif cat == "not_kept":
            f["missed_commitment"] = rv.label
            f["follow_up"] = rv.commitment.get("follow_up") or None
    return coaching.Findings(**f)


# --------------------------------------------------------------------------- the whole report
MISSING = {
    "activity": "No activity log was provided, so activity volume and mix can't be shown. "
                "With one, this section compares weekly calls, emails, meetings and demos with the team.",
    "conversion": "No stage history was provided, so stage-to-stage conversion can't be shown. "
                  "With it, this section shows where deals move on or drop out, against the team.",
    "velocity": "No stage history was provided, so days in each stage can't be measured.",
    "capture": "No activity log was provided, so data-capture timeliness can't be judged.",
    "commitments": "No commitments are recorded yet. Agreeing one or two behaviour changes at this 1:1 "
                   "lets the next report check whether they happened and whether they moved pipeline.",
}


@dataclass
class RepReport(ShownInJupyter):
    """Everything one rep's report shows (manager's report or the rep's own pre-read)."""

    audience: str
    intro: str
    header: Header
    commitments: list
    pattern: str | None
    detected_change: DetectedChange | None  # only when no commitment is on record
    activity: ActivitySection | None
    pipeline: PipelineSection
    conversion: ConversionSection | None
    stage_mix: StageMixSection | None  # only without stage history: open deals by current stage
    velocity: VelocitySection | None
    stalled: StalledSection | None
    capture: CaptureSection | None
    focus: object  # coachnb.coaching.FocusResult
    scenarios: list  # (FocusArea, DataFrame) pairs
    questions: list[str]
    plan: dict
    preread: dict | None
    results: ResultsSection
    missing: dict
    stalled_percentile: float
    self_view: pd.DataFrame  # topic, score (1-5), date: the rep's own latest view, set beside the data
    excluded_note: str | None
    commitments_note: str | None = None  # no commitment since last time, but older ones on record
    currency: object = None  # formatting.Currency the team's amounts are written in
    team_figures: bool = True  # False: too few teammates to pool, so no team figure is shown


INTRO = {
    "manager": ("This report is for the 1:1. It starts from the process (what was agreed last time, "
                "activity, how deals move) and ends with results, which are acknowledged rather than led with. "
                "Teammates appear only as anonymous team figures."),
    "rep": ("My pre-read for the 1:1: my own data, set beside anonymous team figures. It's my session: I "
            "come with what I see in it, what I want to change, and what support would help."),
}

#: second person -> first person, for the rep's pre-read (the sentences are built once, for the 1:1)
FIRST_PERSON = ((r"\bYou have\b", "I have"), (r"\byou have\b", "I have"), (r"\bYour\b", "My"),
                (r"\byour\b", "my"), (r"^you$", "me"))


def in_first_person(text):
    """``text`` as the rep would say it ("your open deals" -> "my open deals"); None stays None."""
    if not isinstance(text, str):
        return text
    for pattern, words in FIRST_PERSON:
        text = re.sub(pattern, words, text)
    return text


def as_rep_voice(sections: dict) -> dict:
    """The report's sections with every sentence and table header in the rep's own voice."""
    out = {}
    for name, sec in sections.items():
        if sec is None or not dataclasses.is_dataclass(sec):
            out[name] = sec
            continue
        changes = {"sentence": in_first_person(sec.sentence)} if hasattr(sec, "sentence") else {}
        for field in ("table", "rows"):
            frame = getattr(sec, field, None)
            if isinstance(frame, pd.DataFrame):
                changes[field] = frame.rename(columns=in_first_person)
        out[name] = dataclasses.replace(sec, **changes)
    return out


def idle_note(tv: TeamView, rep_id: str, audience: str) -> str:
    """What to say when the rep has no record in the period ("" when they have one)."""
    if rep_id in set(active_reps(tv)):
        return ""
    who = "I have" if audience == "rep" else "this rep has"
    return (f"In this period {who} no recorded activity, new deal, stage move or closed deal, so the zeros "
            "below say nothing about the work; the data may end before the period, or the rep may be away "
            "or have left.")


def rep_report(data, rep_id: str, as_of=None, lookback_weeks: int = 13, audience: str = "manager") -> RepReport:
    """Build one rep's report.

    Parameters
    ----------
    data : str, Path or Dataset
        A data folder (loaded once per process and cached), a loaded Dataset, or a feature
        store written by :func:`coachnb.store_build.build_store` (the batch's path: the report is
        built from precomputed team tables and the rep's own records, without the raw
        activities; same content as from the folder).
    rep_id : str
    as_of : str or Timestamp or None
        Date of the 1:1; ``None`` or ``""`` means today.
    lookback_weeks : int
        Whole weeks before the 1:1's week that the period covers.
    audience : {"manager", "rep"}
        ``"rep"`` speaks to the rep and adds the pre-read prompts; it leaves out manager-only notes.
    """
    if audience not in INTRO:
        raise ValueError(f"audience must be 'manager' or 'rep', not {audience!r}")
    rep_id = str(rep_id)
    ds, as_of_ts, tv = open_data(data, as_of, int(lookback_weeks), rep_id)
    has_activity = ds.has("activities")
    has_stages = ds.has("stage_history")

    reviews = commitment_reviews(tv, rep_id, audience) if ds.has("commitments") else []
    record_note = older_commitment_note(tv, rep_id) if ds.has("commitments") and not reviews else None
    # a change found in the data is asked about only when no commitment was ever recorded: otherwise it
    # is most likely the recorded one, which the record holds
    change = detected_change(tv, rep_id) if not reviews and record_note is None else None
    pattern = coaching.commitment_pattern([r.diagnosis for r in reviews if r.diagnosis is not None])
    group = peer_group(tv, rep_id)
    focus = coaching.focus_areas(ds, rep_id, as_of_ts, lookback_weeks=int(lookback_weeks), peers=list(group.ids))
    scenarios = []
    for area in focus.areas:
        sc = getattr(area, "suggested", None)
        if sc and sc.get("metric") in ds.config.commitment_metrics and has_activity:
            try:
                scenarios.append((area, coaching.scenario(ds, rep_id, as_of_ts, metric=sc["metric"],
                                                          from_value=sc["baseline"], to_value=sc["target"],
                                                          funnel=focus.funnel)))
            except ValueError:
                pass  # a scenario the data can't support is left out; the focus area still stands
    sections = dict(
        activity=activity_section(tv, rep_id) if has_activity else None,
        pipeline=pipeline_section(tv, rep_id),
        conversion=conversion_section(tv, rep_id) if has_stages else None,
        velocity=velocity_section(tv, rep_id) if has_stages else None,
        stalled=stalled_section(tv, rep_id) if has_stages else aged_deals_section(tv, rep_id),
        stage_mix=None if has_stages else stage_mix_section(tv, rep_id),
        capture=capture_section(tv, rep_id) if has_activity else None,
    )
    keep_sections(tv, rep_id, sections)  # for the rep's overview row, computed next in a batch worker
    questions = coaching.questions_for(findings_for(tv, rep_id, reviews, sections), audience=audience)
    plan = coaching.plan_template(focus, reviews)
    preread = (coaching.rep_preread_prompts(ds, rep_id, list(ds.config.stages), as_of=as_of_ts, focus=focus)
               if audience == "rep" else None)
    sections["results"] = results_section(tv, rep_id)
    if audience == "rep":  # the pre-read speaks as the rep, as its questions do
        sections = as_rep_voice(sections)

    excluded = ds.excluded
    excluded_note = None
    if len(excluded):
        excluded_note = (f"{len(excluded)} row(s) of the data were left out while loading "
                         f"({', '.join(sorted(set(excluded['reason'].astype(str))))[:300]}).")
    return RepReport(
        audience=audience,
        intro=" ".join(filter(None, (INTRO[audience], group.sentence, idle_note(tv, rep_id, audience)))),
        header=header_section(tv, rep_id),
        commitments=reviews, pattern=pattern, detected_change=change, **sections, focus=focus, scenarios=scenarios, questions=questions, plan=plan, preread=preread,
        missing=MISSING, excluded_note=excluded_note,
        stalled_percentile=ds.config.thresholds.stalled_percentile,
        self_view=coaching.self_view(ds, rep_id),
        team_figures=group.scope != "none",
        commitments_note=record_note,
        currency=ds.config.presentation.currency,
    )

