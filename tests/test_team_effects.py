"""Tests of coachnb.team_effects: the team-level distributed-lag panel model (issue #4, part 4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from coachnb.coaching import ActivityLink, scenario_table
from coachnb.simulate import simulate_team
from coachnb.team_effects import _fixed_effects_design, _long_design, _poisson_fit, team_activity_effect


def _team_with_lag1_effect(coef, n_reps=6, n_weeks=50, seed=13):
    rng = np.random.default_rng(seed)
    act = simulate_team(rng, n_reps=n_reps, n_weeks=n_weeks, activity_ratio=1.0).activity
    centred = act - act.mean()
    season = np.sin(np.arange(n_weeks) / 4.0)[:, None]  # team-wide wave, absorbed by week effects
    mu = 3.0 * np.exp(coef * centred.shift(1).fillna(0.0).to_numpy() + 0.3 * season)
    return act, act * 0 + rng.poisson(mu)


def test_team_activity_effect_recovers_a_lag_one_effect():
    act, out = _team_with_lag1_effect(0.06)
    df = team_activity_effect(act, out, max_lag=2, n_boot=499)
    assert list(df.columns) == ["term", "lag", "coef", "rate_ratio_per_unit", "ci_low", "ci_high", "p_value"]
    assert list(df["term"]) == ["lag 0", "lag 1", "lag 2", "lead 1", "total (lags 0-2)"]
    lag1 = df.set_index("term").loc["lag 1"]
    assert lag1["ci_low"] < np.exp(0.06) < lag1["ci_high"] and lag1["p_value"] < 0.05
    # the reverse-causality check stays small next to the real lag-1 effect
    assert abs(df.set_index("term").loc["lead 1", "coef"]) < lag1["coef"] / 2
    assert df.attrs["weights"] == "Webb" and "lead term" in df.attrs["assumptions"]
    total = df.set_index("term").loc["total (lags 0-2)"]
    link = ActivityLink("panel model", total["rate_ratio_per_unit"], total["ci_low"], total["ci_high"], 8)
    sc = scenario_table(link, opps_per_week=3.0, delta_per_week=5, horizons_days=(30, 90)).set_index("horizon_days")
    assert sc.loc[90, "extra_opportunities"] == pytest.approx(3 * sc.loc[30, "extra_opportunities"])
    # 5 more a week at a planted 6% per unit: 3 * (e^(0.3) - 1) a week, within the interval
    truth = 3 * (np.exp(0.06 * 5) - 1) * 30 / 7
    assert sc.loc[30, "low"] < truth < sc.loc[30, "high"]
    assert 0 < sc.loc[30, "low"] < sc.loc[30, "extra_opportunities"] < sc.loc[30, "high"]


def test_team_activity_effect_without_p_values_fits_once_with_the_same_estimates():
    act, out = _team_with_lag1_effect(0.06)
    full = team_activity_effect(act, out, max_lag=2, n_boot=199)
    quick = team_activity_effect(act, out, max_lag=2, n_boot=199, p_values=False)
    assert quick["p_value"].isna().all() and full["p_value"].notna().all()
    pd.testing.assert_frame_equal(full.drop(columns="p_value"), quick.drop(columns="p_value"))
    some = team_activity_effect(act, out, max_lag=2, n_boot=199, p_values=("total", "lead")).set_index("term")
    tested = some["p_value"].notna()
    assert list(some.index[tested]) == ["lead 1", "total (lags 0-2)"]
    assert some.loc[tested, "p_value"].tolist() == full.set_index("term").loc[tested[tested].index, "p_value"].tolist()


def test_team_activity_effect_without_effect_is_near_zero():
    act, out = _team_with_lag1_effect(0.0, seed=14)
    df = team_activity_effect(act, out, max_lag=2, n_boot=499).set_index("term")
    # no effect planted: every coefficient is small next to the 0.06 planted above
    assert (df["coef"].abs() < 0.04).all()
    assert df["p_value"].between(0, 1).all()


# ------------------------------------------------- the hand-written Poisson fit against statsmodels
# team_activity_effect fits its Poisson model by its own Newton-Raphson (fast on these small dense
# problems, and refitted once per tested term); statsmodels' GLM is the reference it must equal.
def test_poisson_fit_equals_statsmodels_glm_on_a_fixed_effects_panel():
    rng = np.random.default_rng(21)
    sim = simulate_team(rng, n_reps=6, n_weeks=40, activity_ratio=1.5)
    long, names = _long_design(sim.activity, sim.outcome, 2, True)
    X, y, *_ = _fixed_effects_design(long, names)  # activity lags and lead, rep and week dummies
    assert X.shape[1] > 40  # a design with many fixed effects, as in the reports
    beta, mu = _poisson_fit(X, y)
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-12)
    np.testing.assert_allclose(beta, ref.params, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mu, ref.fittedvalues, rtol=1e-9)


def test_poisson_fit_equals_statsmodels_glm_with_an_offset():
    # a second design: intercept, continuous and binary covariates, an interaction, and exposure
    rng = np.random.default_rng(8)
    n = 400
    x1, x2 = rng.normal(0, 1, n), rng.integers(0, 2, n)
    X = np.column_stack([np.ones(n), x1, x2, x1 * x2])
    offset = np.log(rng.uniform(0.5, 5.0, n))  # log exposure, e.g. working days in the week
    y = rng.poisson(np.exp(X @ [0.3, 0.5, -0.4, 0.2] + offset)).astype(float)
    beta, mu = _poisson_fit(X, y, offset=offset)
    ref = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit(tol=1e-12)
    np.testing.assert_allclose(beta, ref.params, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mu, ref.fittedvalues, rtol=1e-9)
    # the offset is used, not ignored: without it the fit is a different one
    assert np.max(np.abs(_poisson_fit(X, y)[0] - ref.params)) > 0.1
