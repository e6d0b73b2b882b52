"""Unit tests of coachnb.impact on constructed series with known answers (issue #4)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from coachnb.impact import (PIPELINE_VALUE, ImpactSettings, PipelineImpact, _offset_statistic,
                            assess_commitment, bh_adjust, deal_units, pipeline_impact)
from coachnb.simulate import simulate_team

WEEKS = pd.date_range("2025-01-06", periods=60, freq="W-MON")
#: an effect that shows at once, judged over 12 weeks
SHORT_LAG = ImpactSettings(lag_weeks=0, horizon_weeks=12)


def _panel(n_reps=12, n_weeks=60, rate=4.0, seed=0, wave=None):
    """Poisson panel; ``wave`` multiplies every rep's rate in the weeks given (team-wide event)."""
    rng = np.random.default_rng(seed)
    mult = np.ones(n_weeks)
    if wave is not None:
        mult[wave[0]:wave[1]] = wave[2]
    rates = rate * np.exp(rng.normal(0, 0.2, n_reps))
    y = rng.poisson(rates[None, :] * mult[:, None])
    return pd.DataFrame(y.astype(float), index=WEEKS[:n_weeks], columns=[f"R{i}" for i in range(n_reps)])


# ------------------------------------------------------------------------- pipeline_impact
def test_clean_tripling_is_moved_up_with_interval_around_three():
    out = _panel(seed=1)
    t0 = 36
    rng = np.random.default_rng(11)
    out.iloc[t0:, 0] = rng.poisson(3 * out.iloc[:t0, 0].mean(), len(out) - t0)
    r = pipeline_impact(out, "R0", WEEKS[t0], ImpactSettings(lag_weeks=0, horizon_weeks=12))
    assert isinstance(r, PipelineImpact)
    assert r.verdict == "moved" and r.direction == "up"
    assert r.ci_low < 3 < r.ci_high
    assert 2.2 < r.rate_ratio < 4.0
    assert r.p_value <= 0.05
    assert r.n_post_weeks == 12 and r.n_pre_weeks == 26
    assert "rose from" in r.sentence and "interval" in r.sentence
    assert all(v == "passed" or v == "not checked" for v in r.gates.values())


def test_team_wide_wave_without_individual_effect_is_not_moved():
    # everyone doubles from week 36 on: the naive before/after test fires, coachnb does not
    out = _panel(seed=2, wave=(36, 60, 2.0))
    r = pipeline_impact(out, "R0", WEEKS[36], ImpactSettings(lag_weeks=0, horizon_weeks=12))
    assert r.naive_p_value < 0.001 and r.naive_rate_ratio > 1.6
    assert r.verdict != "moved"
    assert r.ci_low < 1 < r.ci_high
    assert 0.7 < r.rate_ratio < 1.4
    # counterfactual carries the team's doubling
    assert r.counterfactual_rate > 1.6 * r.pre_rate


def test_three_weeks_of_post_data_is_not_enough_with_weeks_needed():
    out = _panel(seed=3, n_weeks=60)
    start = WEEKS[55]  # lag 2 -> weeks 57, 58, 59 observed
    r = pipeline_impact(out, "R0", start, ImpactSettings(lag_weeks=2, horizon_weeks=8))
    assert r.n_post_weeks == 3
    assert r.verdict == "not enough data to tell"
    assert r.gates["post_horizon"].startswith("failed")
    assert r.weeks_needed is not None and r.weeks_needed >= 5
    assert r.mde_ratio > 1.5
    assert r.sentence.startswith("Too early to tell: with 3 weeks of data")
    assert f"about {r.weeks_needed} more weeks" in r.sentence


def test_activity_did_not_change_verdict_wins():
    out = _panel(seed=4)
    r = pipeline_impact(out, "R0", WEEKS[36], activity_changed=False)
    assert r.verdict == "activity did not change"
    assert r.gates["activity_changed"].startswith("failed")
    assert "can't be confirmed yet" in r.sentence


def test_failed_gates_are_named():
    out = _panel(n_reps=3, seed=5)
    r = pipeline_impact(out, "R0", WEEKS[5])  # 3 baseline weeks, 2 peers
    assert set(r.failed_gates) >= {"pre_weeks", "peers"}
    assert r.verdict == "not enough data to tell"
    assert "history" in r.sentence


def test_dip_before_change_fails_the_dip_gate():
    out = _panel(seed=6, rate=6.0)
    out.iloc[30:36, 0] = [1, 0, 1, 0, 1, 1]  # pipeline collapsed in the 6 weeks before the change
    r = pipeline_impact(out, "R0", WEEKS[36], ImpactSettings(lag_weeks=0, horizon_weeks=12))
    assert r.gates["baseline_dip"].startswith("failed")
    assert r.dip_ratio < 0.5
    assert r.verdict == "not enough data to tell"
    assert "unusually low" in r.sentence


def test_excluded_peers_and_peer_list_are_honoured():
    out = _panel(seed=7)
    r_all = pipeline_impact(out, "R0", WEEKS[36])
    r_ex = pipeline_impact(out, "R0", WEEKS[36], excluded_peers=["R1", "R2"])
    r_some = pipeline_impact(out, "R0", WEEKS[36], peers=["R3", "R4", "R5", "R6", "R7"])
    assert (r_all.n_peers, r_ex.n_peers, r_some.n_peers) == (11, 9, 5)
    assert r_ex.n_placebo < r_all.n_placebo


def test_interval_and_p_value_agree():
    sim = simulate_team(np.random.default_rng(8), n_reps=15, n_weeks=70, effect_ratio=2.0)
    r = pipeline_impact(sim.outcome, sim.rep_id, sim.start)
    assert (r.p_value <= 0.05) == (not (r.ci_low <= 1 <= r.ci_high))
    assert r.ci_low <= r.rate_ratio <= r.ci_high


def test_no_meaningful_change_needs_a_narrow_interval():
    # very high volume, long windows, no effect -> interval inside the +-15% band
    out = _panel(n_reps=30, rate=200.0, seed=9)
    r = pipeline_impact(out, "R0", WEEKS[30], ImpactSettings(lag_weeks=0, horizon_weeks=26))
    assert r.verdict == "no meaningful change"
    assert 0.85 <= r.ci_low and r.ci_high <= 1.15


def test_impact_settings_are_one_frozen_checked_value():
    s = ImpactSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.alpha = 0.1
    longer = dataclasses.replace(s, horizon_weeks=13)
    assert (longer.horizon_weeks, s.horizon_weeks) == (13, 8)
    with pytest.raises(ValueError, match="horizon_weeks"):
        ImpactSettings(horizon_weeks=0)
    with pytest.raises(ValueError, match="alpha"):
        ImpactSettings(alpha=1.5)
    with pytest.raises(ValueError, match="gap_weeks"):
        ImpactSettings(gap_weeks=-1)
    out = _panel(seed=7)
    assert pipeline_impact(out, "R0", WEEKS[36]) == pipeline_impact(out, "R0", WEEKS[36], ImpactSettings())


# ------------------------------------------------------------------------ assess_commitment
def test_assess_commitment_wires_the_activity_gate():
    sim = simulate_team(np.random.default_rng(10), n_reps=10, n_weeks=60, change_week=40, activity_ratio=1.0)
    a = assess_commitment(sim.activity, sim.outcome, "R00", sim.start, sim.outcome.index[-1],
                          target=2 * sim.activity["R00"].mean(), activity_label="calls")
    assert not a.activity.changed
    assert a.verdict == "activity did not change" == a.pipeline.verdict
    assert a.sentence.startswith("Calls averaged")

    sim = simulate_team(np.random.default_rng(10), n_reps=10, n_weeks=60, change_week=40, activity_ratio=2.0)
    a = assess_commitment(sim.activity, sim.outcome, "R00", sim.start, sim.outcome.index[-1], target=None)
    assert a.activity.changed and a.pipeline.gates["activity_changed"] == "passed"


# ---------------------------------------------------------------------------------- BH
def test_bh_adjust_matches_hand_computation():
    q = bh_adjust([0.01, 0.04, 0.03, np.nan, 0.5])
    # sorted p: .01 .03 .04 .5 (m = 4) -> .04, .0533, .0533, .5
    np.testing.assert_allclose(q[[0, 2, 1, 4]], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(q[3])


# ------------------------------------------------------------------------- secondary outcomes
def test_deal_units_make_weekly_value_about_as_variable_as_a_count():
    # compound Poisson: 3 deals a week, lognormal amounts; in deal units variance ~ mean
    rng = np.random.default_rng(5)
    amounts = np.exp(rng.normal(np.log(8000), 1.0, 200_000))
    counts = rng.poisson(3.0, (4000, 1))
    starts = np.concatenate([[0], np.cumsum(counts[:, 0])[:-1]])
    value = np.array([amounts[s:s + c].sum() for s, c in zip(starts, counts[:, 0])])
    units = deal_units(pd.DataFrame({"R0": value}), amounts[:5000])["R0"]
    assert units.var() / units.mean() == pytest.approx(1.0, abs=0.12)
    assert (value.var() / value.mean()) > 1000  # in currency the Poisson part would be meaningless
    same = pd.DataFrame({"R0": [1.0, 2.0]})
    assert deal_units(same, []).equals(same)  # no amounts: unchanged


def test_secondary_outcomes_use_the_same_test_and_never_set_the_verdict():
    out = _panel(seed=1)
    t0 = 36
    rng = np.random.default_rng(11)
    out.iloc[t0:, 0] = rng.poisson(3 * out.iloc[:t0, 0].mean(), len(out) - t0)
    value = out * 5000.0  # value follows the tripled count
    flat = _panel(seed=9)  # stage advancements did not move
    act = _panel(seed=4, rate=5.0)
    act.iloc[t0:, 0] += 6
    a = assess_commitment(act, out, "R0", WEEKS[t0], WEEKS[t0 + 12], target=11.0, settings=SHORT_LAG,
                          secondary={"pipeline value": deal_units(value, [5000.0]), "stage advancements": flat})
    assert a.verdict == a.pipeline.verdict == "moved"
    assert set(a.secondary) == {"pipeline value", "stage advancements"}
    assert a.secondary["pipeline value"].verdict == "moved"
    assert a.secondary["pipeline value"].rate_ratio == pytest.approx(a.pipeline.rate_ratio, rel=0.05)
    assert a.secondary["stage advancements"].verdict != "moved"
    s = a.secondary_sentence
    assert s.startswith("Also checked the same way") and "pipeline value" in s and "stage advancements" in s
    flat_act = out * 0 + 5.0  # the activity never changed: nothing to attribute, secondaries too
    b = assess_commitment(flat_act, out, "R0", WEEKS[t0], WEEKS[t0 + 12], target=11.0, settings=SHORT_LAG,
                          secondary={"pipeline value": value})
    assert b.verdict == "activity did not change" and b.secondary_sentence == ""
    assert assess_commitment(act, out, "R0", WEEKS[t0], WEEKS[t0 + 12], target=11.0).secondary_sentence == ""


# ----------------------------------------------------------------- the statistic: team shape out, own dispersion
def _team_panel(team_sd: float, seed: int, n_reps: int = 15, n_weeks: int = 80, rate: float = 6.0):
    rng = np.random.default_rng(seed)
    team = rng.normal(0, team_sd, n_weeks) if team_sd else np.zeros(n_weeks)
    own = rng.normal(0, 0.35, (n_weeks, n_reps))  # each rep's own week-to-week noise
    y = rng.poisson(rate * np.exp(team[:, None] + own))
    weeks = pd.date_range("2024-01-01", periods=n_weeks, freq="W-MON")
    return pd.DataFrame(y.astype(float), index=weeks, columns=[f"R{i}" for i in range(n_reps)])


def test_the_statistic_is_the_reps_rate_ratio_against_the_teams():
    y = _team_panel(0.6, 1).to_numpy()
    rep, team = y[:, 0], y[:, 1:].sum(axis=1)
    s, v, log_team, u_pre, u_post, phi = (x[0] for x in _offset_statistic(rep, team, np.array([60]), 26, 2, 2, 8))
    assert (u_pre, u_post) == (rep[32:58].sum(), rep[62:70].sum())
    share = lambda rows, offset: (rep[rows].sum() + offset) / (team[rows].sum() + 0.5 * len(rep[rows]))  # noqa: E731
    assert s == pytest.approx(math.log(share(slice(62, 70), 0.5) / share(slice(32, 58), 0.5 * 26 / 8)))
    assert log_team == pytest.approx(math.log((team[62:70].sum() + 4) / 8 / ((team[32:58].sum() + 13) / 26)))
    assert phi >= 1 and v > phi * (1 / (u_post + 0.5) + 1 / (u_pre + 0.5))  # the team's own variance on top


def test_a_team_wide_swing_does_not_move_the_statistic():
    # every rep's rate tripled over the post window: the rep's ratio is the team's, the statistic about 0
    stats_ = []
    for seed in range(20):
        out = _panel(seed=seed, wave=(36, 60, 3.0))
        s, *_ = _offset_statistic(out["R0"].to_numpy(), out.drop(columns="R0").sum(axis=1).to_numpy(),
                                  np.array([36]), 26, 2, 0, 12)
        stats_.append(float(s[0]))
    assert abs(np.mean(stats_)) < 0.1 and np.mean(np.exp(stats_)) < 1.3


def _dispersion(draw, n=200):
    phis = []
    for seed in range(n):
        y = draw(np.random.default_rng(seed)).astype(float)
        phis.append(float(_offset_statistic(y[:, 0], y[:, 1:].sum(axis=1), np.array([40]), 26, 2, 2, 16)[-1][0]))
    return float(np.mean(phis))


def test_a_units_dispersion_is_about_right_and_sees_autocorrelation():
    # Poisson: the floor of 1 (and a little above it: the estimate's own noise, and an
    # autocorrelation estimate clipped at 0 from below adds about a tenth)
    assert 1.0 <= _dispersion(lambda rng: rng.poisson(4.0, (70, 12))) < 1.35
    # negative binomial of shape 2 at 4 a week: variance 4 + 8, dispersion 3 (and that tenth)
    assert 2.6 < _dispersion(lambda rng: rng.poisson(rng.gamma(2.0, 2.0, (70, 12)))) < 4.0

    def ar_lognormal(rng):
        e = np.zeros(70)
        for t in range(1, 70):
            e[t] = 0.6 * e[t - 1] + rng.normal(0, 0.4)
        y = rng.poisson(4.0, (70, 12))
        y[:, 0] = rng.poisson(4.0 * np.exp(e))
        return y

    def white_lognormal(rng):  # the same marginal noise, no autocorrelation
        y = rng.poisson(4.0, (70, 12))
        y[:, 0] = rng.poisson(4.0 * np.exp(rng.normal(0, 0.4 / 0.8, 70)))
        return y

    assert _dispersion(ar_lognormal) > 1.3 * _dispersion(white_lognormal)  # the lags see the autocorrelation


def test_placebo_statistics_are_the_null_the_p_value_ranks_against():
    from coachnb.impact import _Placebo, _rank_p, placebo_statistics

    out = _panel(seed=1)
    t0 = 36
    out.iloc[t0:, 0] = np.random.default_rng(11).poisson(3 * out.iloc[:t0, 0].mean(), len(out) - t0)
    null, rep = placebo_statistics(out, "R0", WEEKS[t0], SHORT_LAG)
    r = pipeline_impact(out, "R0", WEEKS[t0], SHORT_LAG)
    assert len(null) == r.n_placebo > 20 and np.all(np.diff(null) >= 0)
    assert rep > null[-1]  # a tripling lies beyond every placebo date
    assert _rank_p(rep, _Placebo(z=null))[0] == pytest.approx(r.p_value)
    # before the change shows, there is a null but no statistic of the rep's
    null_early, rep_early = placebo_statistics(out, "R0", WEEKS[-1] + pd.Timedelta(weeks=1), SHORT_LAG)
    assert np.isnan(rep_early)


# ------------------------------------------------------------------ windows and the null (issue #14, items 3-5)
def _long_panel(n_reps=12, n_weeks=120, rate=4.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.poisson(rate * np.exp(rng.normal(0, 0.2, n_reps))[None, :], (n_weeks, n_reps))
    weeks = pd.date_range("2024-01-01", periods=n_weeks, freq="W-MON")
    return pd.DataFrame(y.astype(float), index=weeks, columns=[f"R{i}" for i in range(n_reps)])


def test_post_window_grows_with_the_observed_weeks_up_to_the_cap():
    out = _long_panel()
    cfg = ImpactSettings(lag_weeks=2, horizon_weeks=8, max_post_weeks=26)
    # change at row t: rows t + 2 ... 119 are observed after the lag
    posts = {t: pipeline_impact(out, "R0", out.index[t], cfg).n_post_weeks for t in (40, 80, 100, 110, 114)}
    assert posts == {40: 26, 80: 26, 100: 18, 110: 8, 114: 4}
    assert pipeline_impact(out, "R0", out.index[114], cfg).gates["post_horizon"].startswith("failed: 4 of 8")
    assert pipeline_impact(out, "R0", out.index[100], cfg).gates["post_horizon"] == "passed"
    # the cap is the setting's; a cap below the verdict's minimum means the minimum
    assert pipeline_impact(out, "R0", out.index[40], dataclasses.replace(cfg, max_post_weeks=13)).n_post_weeks == 13
    assert pipeline_impact(out, "R0", out.index[40], dataclasses.replace(cfg, max_post_weeks=3)).n_post_weeks == 8


def test_post_window_is_shortened_to_keep_enough_placebo_dates():
    from coachnb.impact import MIN_PLACEBO_DATES, MIN_PLACEBO_VALUES

    cfg = ImpactSettings(lag_weeks=2, horizon_weeks=8, max_post_weeks=26)
    for n_reps in (31, 8):  # 30 peers: the dates bind; 7 peers: the number of values binds
        out = _long_panel(n_reps=n_reps, n_weeks=70)
        r = pipeline_impact(out, "R0", out.index[40], cfg)  # 28 weeks observed after the lag, baseline 26
        # peers' placebo dates: 70 - 2 - H - 2 - 26 + 1 = 41 - H, at least MIN_PLACEBO_DATES and
        # MIN_PLACEBO_VALUES / peers
        need = max(MIN_PLACEBO_DATES, math.ceil(MIN_PLACEBO_VALUES / (n_reps - 1)))
        assert r.n_post_weeks == max(8, 41 - need), n_reps
        assert r.n_placebo >= min(41 - 8, need) * (n_reps - 1)
    assert 41 - MIN_PLACEBO_DATES > 8 and 41 - math.ceil(MIN_PLACEBO_VALUES / 7) < 41 - MIN_PLACEBO_DATES


def _quiet_and_noisy(seed):
    """A Poisson team, and the same team with rep R0's counts under autocorrelated lognormal noise (same mean)."""
    quiet = _long_panel(n_weeks=100, rate=6.0, seed=seed)
    rng = np.random.default_rng(seed + 100)
    e = np.zeros(100)
    for t in range(1, 100):
        e[t] = 0.6 * e[t - 1] + rng.normal(0, 0.6)
    noisy = quiet.copy()
    noisy["R0"] = rng.poisson(quiet["R0"].mean() * np.exp(e - 0.5 * 0.6**2 / (1 - 0.36))).astype(float)
    return quiet, noisy


def test_a_rep_noisier_than_the_team_is_judged_with_a_wider_interval():
    cfg = ImpactSettings(lag_weeks=2, horizon_weeks=8, max_post_weeks=8)

    def width(panel):
        r = pipeline_impact(panel, "R0", panel.index[60], cfg)
        return np.log(r.ci_high / r.ci_low)

    teams = [_quiet_and_noisy(seed) for seed in range(12)]
    assert np.median([width(n) / width(q) for q, n in teams]) > 1.3


def test_a_changed_peer_is_left_out_of_the_counterfactual_and_the_placebo_pool():
    from coachnb.impact import placebo_statistics

    out = _long_panel(n_weeks=100, seed=6)
    cfg = ImpactSettings(lag_weeks=2, horizon_weeks=8, max_post_weeks=8)
    start = out.index[60]
    changed = out.copy()
    changed.iloc[40:, 1] *= 4  # R1 quadrupled in the rep's baseline: its own change, not the team's
    r_all = pipeline_impact(changed, "R0", start, cfg)
    r_out = pipeline_impact(changed, "R0", start, cfg, excluded_peers=["R1"])
    clean = pipeline_impact(out.drop(columns="R1"), "R0", start, cfg)
    # left out of both: the result is the one of a team without R1 at all
    dates = 100 - 2 - 8 - (2 + 26) + 1  # placebo dates whose windows fit: one value each per peer
    assert (r_out.n_peers, r_out.n_placebo) == (clean.n_peers, clean.n_placebo) == (10, r_all.n_placebo - dates)
    assert r_out.rate_ratio == pytest.approx(clean.rate_ratio) and r_out.p_value == pytest.approx(clean.p_value)
    null_out, _ = placebo_statistics(changed, "R0", start, cfg, excluded_peers=["R1"])
    null_clean, _ = placebo_statistics(out.drop(columns="R1"), "R0", start, cfg)
    assert np.allclose(null_out, null_clean)


def test_assess_commitment_can_leave_out_teammates_whose_activity_changed():
    from coachnb.impact import changed_peers

    out = _long_panel(n_weeks=100, seed=7)
    rng = np.random.default_rng(8)
    act = pd.DataFrame(rng.poisson(20, out.shape).astype(float), index=out.index, columns=out.columns)
    act.iloc[60:, 0] = rng.poisson(40, 40)  # the rep's committed change
    act.iloc[45:, 3] = rng.poisson(45, 55)  # R3 changed on its own, in the rep's baseline
    act.iloc[:20, 5] = rng.poisson(45, 20)  # R5 changed long before the weeks the test reads
    cfg = ImpactSettings(max_post_weeks=8)
    assert cfg.leave_out_changed_peers  # on by default
    assert changed_peers(act, "R0", out.index[60], cfg) == ["R3"]
    off = assess_commitment(act, out, "R0", out.index[60], out.index[67], target=40.0,
                            settings=dataclasses.replace(cfg, leave_out_changed_peers=False))
    on = assess_commitment(act, out, "R0", out.index[60], out.index[67], target=40.0, settings=cfg,
                           excluded_peers=["R7"])
    assert (off.pipeline.n_peers, off.pipeline.n_changed_peers) == (11, 0)
    assert (on.pipeline.n_peers, on.pipeline.n_changed_peers) == (9, 1)  # R7 named, R3 found
    assert on.pipeline.changed_peer_ids == ("R3",)
    # the activity test's teammates are the same clean group: R3's own change is not the team's swing
    assert (off.activity.n_teammates, on.activity.n_teammates) == (11, 9)
    # a teammate's answer is its own: scanning only some candidates (those not named already)
    # flags the same ones, and a named teammate is never scanned, so never counted as found
    assert changed_peers(act, "R0", out.index[60], cfg, peers=["R2", "R3", "R4"]) == ["R3"]
    assert changed_peers(act, "R0", out.index[60], cfg, peers=["R2", "R4", "nobody"]) == []
    named = assess_commitment(act, out, "R0", out.index[60], out.index[67], target=40.0, settings=cfg,
                              excluded_peers=["R3"])
    assert (named.pipeline.n_peers, named.pipeline.n_changed_peers) == (10, 0)


def test_pipeline_lag_is_read_from_process_toml():
    from types import SimpleNamespace

    from coachnb.config import config_from_dict
    from coachnb.errors import ConfigError
    from coachnb.team import impact_settings

    ds = SimpleNamespace(config=config_from_dict({"thresholds": {"pipeline_lag_weeks": 5}}))
    assert impact_settings(ds).lag_weeks == 5
    assert impact_settings(SimpleNamespace(config=config_from_dict({}))).lag_weeks == 2
    with pytest.raises(ConfigError, match=r"\[thresholds\] pipeline_lag_weeks must be a whole number at least 0 "
                                          r"and at most 26 \(weeks\), not 40"):
        config_from_dict({"thresholds": {"pipeline_lag_weeks": 40}})


def test_rank_test_agrees_with_its_acceptance_region():
    from coachnb.impact import _critical_z, _Placebo, _rank_p

    rng = np.random.default_rng(9)
    pl = _Placebo(z=np.sort(rng.gamma(2.0, 1.0, 300) - 2.0))  # skewed, as low counts make it
    lo, hi = _critical_z(pl, 0.05)
    assert lo == -hi and np.sum(np.abs(pl.z) > hi) < 0.05 * 301
    for z0 in np.linspace(-6, 6, 1201):  # rejected (p <= alpha) exactly outside [lo, hi]
        assert (_rank_p(z0, pl)[0] <= 0.05) == (z0 < lo or z0 > hi), z0
    p, up, down = _rank_p(2.0, pl)  # the pool's long upper tail sets the upper p; the t floor the lower one
    rank_up, rank_down = (1 + np.sum(pl.z >= 2.0)) / 301, (1 + np.sum(pl.z <= 2.0)) / 301
    assert rank_up > stats.norm.sf(2.0) and up == pytest.approx(rank_up)
    assert rank_down < stats.norm.cdf(2.0) and down == pytest.approx(stats.norm.cdf(2.0))
    assert _critical_z(_Placebo(z=np.arange(10.0)), 0.05) == (-math.inf, math.inf)  # 10 values can't reach 5%
    # a pool spread less than Student's t (few, overlapping windows) never makes the test less strict than t
    narrow = _Placebo(z=np.sort(rng.normal(0, 0.5, 300)), df=20)
    assert _critical_z(narrow, 0.05)[1] == pytest.approx(stats.t.ppf(0.975, 20))
    assert _rank_p(2.0, narrow)[0] == pytest.approx(2 * stats.t.sf(2.0, 20)) and _rank_p(2.0, narrow)[0] > 0.05


def test_the_estimate_is_kept_when_the_activity_did_not_change():
    out = _panel(seed=1)
    out.iloc[36:, 0] = np.random.default_rng(11).poisson(3 * out.iloc[:36, 0].mean(), len(out) - 36)
    judged = pipeline_impact(out, "R0", WEEKS[36], SHORT_LAG, activity_changed=True)
    unconfirmed = pipeline_impact(out, "R0", WEEKS[36], SHORT_LAG, activity_changed=False)
    assert unconfirmed.verdict == "activity did not change" and judged.verdict == "moved"
    for name in ("rate_ratio", "ci_low", "ci_high", "p_value", "n_pre_weeks", "n_post_weeks", "mde_ratio"):
        assert getattr(unconfirmed, name) == pytest.approx(getattr(judged, name)), name
    assert np.isfinite(unconfirmed.rate_ratio) and unconfirmed.ci_low > 1


def test_a_short_window_still_gets_a_dispersion():
    y = np.random.default_rng(0).poisson(5, (10, 3)).astype(float)
    # windows of 1 week, the last one ending with the panel: no lagged pair fits, none is read past the end
    s, v, _, _, _, phi = _offset_statistic(y, y.sum(axis=1, keepdims=True) - y, np.array([8, 9]), 1, 0, 0, 1)
    assert s.shape == (2, 3) and np.isfinite(v).all() and (phi >= 1).all()


def test_secondary_outcomes_are_tested_like_new_opportunities():
    out = _team_panel(0.0, 5)
    act = out * 0 + 5.0
    act.iloc[50:, 0] = 12.0
    eight = ImpactSettings(max_post_weeks=8)
    a = assess_commitment(act, out, "R0", out.index[50], out.index[62], target=10.0, settings=eight,
                          secondary={PIPELINE_VALUE: out * 2, "stage advancements": out})
    same = pipeline_impact(out, "R0", out.index[50], eight, activity_changed=True)
    value = pipeline_impact(out * 2, "R0", out.index[50], eight, activity_changed=True)
    assert a.secondary["stage advancements"].rate_ratio == pytest.approx(same.rate_ratio)
    assert a.secondary[PIPELINE_VALUE].p_value == pytest.approx(value.p_value)


def test_a_peer_without_an_activity_column_is_no_teammate_of_the_activity_test():
    sim = simulate_team(np.random.default_rng(10), n_reps=10, n_weeks=60, change_week=40, activity_ratio=2.0)
    peers = [c for c in sim.outcome.columns if c != "R00"]
    activity = sim.activity.drop(columns=peers[0])  # a peer with pipeline but no activity log
    a = assess_commitment(activity, sim.outcome, "R00", sim.start, sim.outcome.index[-1], target=None, peers=peers)
    assert a.activity.n_teammates == len(peers) - 1 and a.activity.changed
    assert a.pipeline.n_peers >= len(peers) - 1  # the peer still counts in the pipeline comparison


def test_change_flags_are_kept_per_series_by_its_content(monkeypatch):
    from coachnb import impact
    from coachnb.adherence import detect_activity_change

    scanned = []
    real = impact.changes_found

    def counting(block, *a, **k):
        scanned.append(block.shape[1])
        return real(block, *a, **k)

    monkeypatch.setattr(impact, "changes_found", counting)
    monkeypatch.setattr(impact, "_FLAGS", impact.collections.OrderedDict())
    out = _long_panel(n_weeks=60, seed=12)
    rng = np.random.default_rng(13)
    act = pd.DataFrame(rng.poisson(20, out.shape).astype(float), index=out.index, columns=out.columns)
    act.iloc[30:, 4] = rng.poisson(45, 30)  # R4 changed
    first = impact._change_flags(act)
    assert sum(scanned) == act.shape[1]
    # each answer is the series' own (the single-series scan)
    assert first == {c: detect_activity_change(act[c], impact.PEER_CHANGE_MIN_WEEKS) is not None for c in act}
    assert first["R4"] and sum(first.values()) == 1
    assert impact._change_flags(act.copy()) == first and sum(scanned) == act.shape[1]  # a copy: nothing scanned
    # another set of teammates over the same weeks (another rep's candidates): only the new series scanned
    stepped = act.copy()
    stepped.iloc[30:, 2] = rng.poisson(45, 30)
    again = impact._change_flags(stepped.drop(columns=["R0"]))
    assert again["R2"] and again["R4"] and "R0" not in again and sum(scanned) == act.shape[1] + 1
    assert impact._change_flags(act.rename(columns={"R4": "X4"}))["X4"]  # same numbers, another name: same answer
    assert sum(scanned) == act.shape[1] + 1
    monkeypatch.setattr(impact, "FLAGS_KEPT", 3)  # beyond the bound the oldest series are let go
    impact._change_flags(act + 1)
    assert len(impact._FLAGS) == 3
    impact._change_flags(act)
    assert sum(scanned) > act.shape[1] + 1 + act.shape[1]
