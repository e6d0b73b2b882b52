"""Unit tests of coachnb.adherence on constructed series with known answers (issue #4)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from coachnb.adherence import ActivityChange, activity_change, detect_activity_change

WEEKS = pd.date_range("2025-01-06", periods=60, freq="W-MON")


# ------------------------------------------------------------------------- activity_change
def _series(values, start=0):
    return pd.Series(np.asarray(values, float), index=WEEKS[start:start + len(values)])


def test_activity_kept_with_sentence():
    a = _series([5, 4, 6, 5, 5, 6, 4, 5, 5, 6, 5, 4, 0, 0, 9, 11, 10, 10])
    r = activity_change(a, WEEKS[14], WEEKS[17], target=10, label="calls")
    assert isinstance(r, ActivityChange)
    assert r.weeks_in_period == 4 and r.weeks_on_or_above_target == 3
    assert r.share_on_target == pytest.approx(0.75)
    assert r.adherence == "kept" and r.changed and r.direction == "up"
    assert r.pre_rate == pytest.approx(np.mean([5, 4, 6, 5, 5, 6, 4, 5, 5, 6, 5, 4]))
    assert r.sentence == ("Calls averaged 10.0 a week over the 4 weeks (target 10, before 5.0): "
                          "on or above target in 3 of 4 weeks.")


@pytest.mark.parametrize("post, expected", [
    ([10, 10, 9, 11], "kept"),  # mean 10 >= 0.9 x 10
    ([8, 8, 7, 8], "partly kept"),  # more than half way from 5 to 10, never on target
    ([5, 10, 5, 5], "partly kept"),  # 1 of 4 weeks on target (25%)
    ([5, 6, 5, 4], "not kept"),
    ([12], "too early"),
])
def test_adherence_categories(post, expected):
    a = _series([5] * 12 + [0, 0] + post)
    r = activity_change(a, WEEKS[14], WEEKS[14 + 3], target=10)
    assert r.adherence == expected


def test_activity_change_with_known_baseline_and_downward_target():
    a = _series([20, 21, 19, 20, 8, 7, 9, 8, 8, 7])
    r = activity_change(a, WEEKS[4], WEEKS[9], target=8, baseline=20.0)
    assert r.direction == "down" and r.changed and r.adherence == "kept"
    assert r.n_pre_weeks == 2 and r.pre_rate == 20.0  # its own weeks before the gap give the dispersion


def test_unchanged_activity_is_not_changed():
    rng = np.random.default_rng(0)
    a = _series(rng.poisson(6, 40))
    r = activity_change(a, WEEKS[30], WEEKS[39], target=10)
    assert not r.changed
    assert r.adherence == "not kept"
    assert r.ci_low < 1 < r.ci_high




# --------------------------------------------------------------- v2: the interval, known answers (issue #14)
# Baseline weeks alternating 4, 6 (Pearson dispersion below 1, so floored at 1; negative
# lag-1 autocorrelation, so clipped to 0) and a flat period: phi = 1, rho = 0 exactly, and the
# interval is the documented formula with nothing estimated but the means.
PRE = [4, 6] * 13  # 26 weeks, mean 5
POST = [10, 10, 10, 10]


def _flat_case():
    return _series(PRE + [5, 5] + POST)  # two gap weeks, then the period from row 28


def test_estimated_baseline_interval_is_the_pooled_quasi_poisson_formula():
    r = activity_change(_flat_case(), WEEKS[28], WEEKS[31])
    rr = (40 + 0.5) / 4 / ((130 + 0.5) / 26)
    se = math.sqrt(1 / 40.5 + 1 / 130.5)
    q = stats.t.ppf(0.975, 26 + 4 - 2)  # pooled df: both windows around their own means
    assert r.n_pre_weeks == 26 and r.pre_rate == pytest.approx(5.0)
    assert r.rate_ratio == pytest.approx(rr)
    assert r.ci_low == pytest.approx(rr * math.exp(-q * se))
    assert r.ci_high == pytest.approx(rr * math.exp(q * se))
    assert r.changed and math.isnan(r.team_ratio) and r.n_teammates == 0


def test_recorded_baseline_is_the_reference_but_not_exact():
    r = activity_change(_flat_case(), WEEKS[28], WEEKS[31], baseline=5.0)
    rr = 40.5 / 4 / 5.0
    se = math.sqrt(1 / 40.5 + 1 / (5.0 * 8 + 0.5))  # a recorded baseline counts as a mean of 8 weeks
    q = stats.t.ppf(0.975, 26 + 4 - 2)  # the rep's own weeks still give the df
    assert r.pre_rate == 5.0 and r.n_pre_weeks == 26
    assert r.ci_low == pytest.approx(rr * math.exp(-q * se))
    # the interval of an exact baseline (the old rule) would be narrower: the recorded level has a variance
    exact_half_width = stats.t.ppf(0.975, 3) * math.sqrt(1 / 40.5)
    assert math.log(r.ci_high / r.ci_low) / 2 > math.sqrt(1 / 40.5) * q
    assert math.log(r.ci_high / r.ci_low) / 2 != pytest.approx(exact_half_width)
    # the same baseline recorded for a rep with no weeks in the data: still not exact
    alone = activity_change(_series([np.nan] * 28 + POST), WEEKS[28], WEEKS[31], baseline=5.0)
    assert alone.n_pre_weeks == 0
    assert alone.ci_low == pytest.approx(rr * math.exp(-stats.t.ppf(0.975, 3) * se))


def test_missing_weeks_before_a_hire_are_skipped_never_zeros():
    hired = _series([np.nan] * 20 + [5, 5, 5, 5, 5, 5] + [5, 5] + [6, 5, 6, 5])
    zeros = _series([0] * 20 + [5, 5, 5, 5, 5, 5] + [5, 5] + [6, 5, 6, 5])
    r = activity_change(hired, WEEKS[28], WEEKS[31])
    assert r.n_pre_weeks == 6 and r.pre_rate == pytest.approx(5.0) and not r.changed
    z = activity_change(zeros, WEEKS[28], WEEKS[31])
    # read as zeros they would claim a rise of nearly 5x from "1.2 a week"
    assert z.n_pre_weeks == 26 and z.pre_rate < 1.5 and z.rate_ratio > 4 > 1.2 > r.rate_ratio


def _team(n_peers, pre_level, post_level, rows=32, extra=None):
    cols = {f"P{i}": [pre_level] * 28 + [post_level] * (rows - 28) for i in range(n_peers)}
    cols.update(extra or {})
    return pd.DataFrame({k: np.asarray(v, float) for k, v in cols.items()}, index=WEEKS[:rows])


def test_team_adjustment_divides_by_the_teammates_median_ratio():
    # the whole team went from 10 to 20 a week over the same weeks: the rep's doubling is the team's
    team = _team(6, 10, 20)
    rep = _series([10] * 28 + [20] * 4)
    alone = activity_change(rep, WEEKS[28], WEEKS[31])
    adjusted = activity_change(rep, WEEKS[28], WEEKS[31], team=team)
    assert alone.changed and not adjusted.changed
    assert adjusted.team_ratio == pytest.approx(20.5 / 10.5) and adjusted.n_teammates == 6
    # the sentence says what the comparison allowed for, the plain one says nothing of a team
    assert adjusted.sentence.endswith("Over the same weeks teammates' activity typically ran at 2.0× their "
                                      "earlier level, which the comparison allows for.")
    assert "teammates" not in alone.sentence
    assert adjusted.rate_ratio == pytest.approx(alone.rate_ratio / (20.5 / 10.5))
    # identical teammates: no spread, so the team term adds no variance
    assert math.log(adjusted.ci_high / adjusted.ci_low) == pytest.approx(math.log(alone.ci_high / alone.ci_low))


def test_team_adjustment_resists_a_teammate_who_changed_and_skips_missing_ones():
    flat = {f"F{i}": [10] * 28 + [10 + d] * 4 for i, d in enumerate((0, 1, -1, 0))}
    changed = {"C": [10] * 28 + [40] * 4}  # tripled on their own: the median ignores them
    gone = {"G": [10] * 20 + [np.nan] * 12}  # left the team: not observed in every week, left out
    team = _team(0, 10, 10, extra={**flat, **changed, **gone})
    rep = _series([5] * 28 + [10] * 4, 0)
    r = activity_change(rep, WEEKS[28], WEEKS[31], team=team)
    assert r.n_teammates == 5 and r.team_ratio == pytest.approx(1.0)
    assert r.changed and "teammates" not in r.sentence  # a team that didn't move goes unmentioned
    # the spread of the teammates' ratios enters the interval: wider than without the team
    alone = activity_change(rep, WEEKS[28], WEEKS[31])
    assert r.ci_high / r.ci_low > alone.ci_high / alone.ci_low


def test_too_few_teammates_leave_the_ratio_unadjusted_and_the_rep_is_never_their_own_teammate():
    rep = _series([10] * 28 + [20] * 4).rename("R1")
    few = _team(3, 10, 20)
    r = activity_change(rep, WEEKS[28], WEEKS[31], team=few)
    assert r.n_teammates == 0 and math.isnan(r.team_ratio) and r.changed
    with_rep = _team(3, 10, 20, extra={"R1": [10] * 28 + [20] * 4})
    assert activity_change(rep, WEEKS[28], WEEKS[31], team=with_rep).n_teammates == 0  # 3 teammates, not 4


def _nb(rng, mu, shape=5.0):
    return rng.poisson(mu * rng.gamma(shape, 1 / shape, size=len(mu))).astype(float)


def test_confirms_real_doublings_and_rarely_confirms_no_change():
    # negative-binomial weekly counts (shape 5), 26 baseline weeks, 4-8 weeks of commitment
    rng = np.random.default_rng(2026)
    hits, false = 0, 0
    n = 300
    for i in range(n):
        mu, weeks = rng.uniform(8, 30), int(rng.integers(4, 9))
        pre = _nb(rng, np.full(28, mu))
        up = _series(np.r_[pre, _nb(rng, np.full(weeks, 2.2 * mu))])
        same = _series(np.r_[pre, _nb(rng, np.full(weeks, mu))])
        hits += activity_change(up, WEEKS[28], WEEKS[28 + weeks - 1]).changed
        false += activity_change(same, WEEKS[28], WEEKS[28 + weeks - 1]).changed
    assert hits / n >= 0.9
    assert false / n <= 0.05  # nominal 2.5% (one side of a 95% interval)


# ----------------------------------------------------------------------------- change points
def test_detect_activity_change_finds_a_step_and_ignores_noise():
    rng = np.random.default_rng(12)
    y = np.r_[rng.poisson(5, 30), rng.poisson(10, 20)]
    found = detect_activity_change(_series(y))
    assert found is not None and abs(WEEKS.get_loc(found) - 30) <= 2
    flat = _series(rng.poisson(5, 50))
    assert detect_activity_change(flat) is None
    assert detect_activity_change(_series([1, 2, 3])) is None


def test_a_team_wide_lull_in_the_baseline_is_not_read_as_the_reps_change():
    # the whole team (the rep included) runs at 0.5x for the last 12 baseline weeks (a summer lull),
    # then back to normal in the period: no one changed, yet the rep's raw ratio is above 1
    rng = np.random.default_rng(7)
    season = np.r_[np.ones(16), np.full(12, 0.5), np.ones(6)]  # 28 baseline rows (the last 2 the gap), 6 period weeks
    n, raw, adjusted = 200, 0, 0
    for _ in range(n):
        levels = rng.uniform(8, 30, 9)
        panel = pd.DataFrame({f"R{i}": _nb(rng, lv * season) for i, lv in enumerate(levels)}, index=WEEKS[:34])
        rep = panel["R0"]
        raw += activity_change(rep, WEEKS[28], WEEKS[33]).changed
        adjusted += activity_change(rep, WEEKS[28], WEEKS[33], team=panel).changed
    assert adjusted / n <= 0.05
    assert raw / n >= 2 * max(adjusted / n, 0.02)  # what the adjustment is for


# ------------------------------------------------------------------------- weeks the pipeline test reads (issue #14)
def test_a_change_is_confirmed_over_the_weeks_after_the_period_when_the_test_reads_them():
    rng = np.random.default_rng(4)
    y = np.concatenate([rng.poisson(6, 30), rng.poisson(9, 30)]).astype(float)  # x1.5 from week 30 on
    a = pd.Series(y, index=WEEKS)
    period = activity_change(a, WEEKS[30], WEEKS[32], target=9, label="calls")
    longer = activity_change(a, WEEKS[30], WEEKS[32], target=9, label="calls", through=WEEKS[59])
    # three weeks can't confirm a x1.5 change; thirty can, and the adherence is still the period's
    assert not period.changed and longer.changed
    assert (period.weeks_tested, longer.weeks_tested) == (3, 30)
    assert longer.adherence == period.adherence and longer.weeks_in_period == period.weeks_in_period == 3
    assert longer.post_rate == period.post_rate
    assert longer.ci_high / longer.ci_low < period.ci_high / period.ci_low
    assert longer.sentence.endswith("Over the 30 weeks since it started, the change from before is confirmed.")
    # a ``through`` before the period's end reads the period, nothing less
    assert activity_change(a, WEEKS[30], WEEKS[32], target=9, through=WEEKS[31]).weeks_tested == 3
    # a change the period confirms is the period's, whatever came after (the rep went back to before)
    back = a.copy()
    back.iloc[30:38] = rng.poisson(18, 8)
    back.iloc[38:] = rng.poisson(6, 22)
    kept = activity_change(back, WEEKS[30], WEEKS[37], target=12, through=WEEKS[59])
    assert kept.changed and kept.weeks_tested == 8 == kept.weeks_in_period


def test_an_unconfirmed_change_says_how_many_weeks_were_read():
    rng = np.random.default_rng(5)
    a = pd.Series(rng.poisson(6, 60).astype(float), index=WEEKS)
    r = activity_change(a, WEEKS[30], WEEKS[33], target=9, label="calls", through=WEEKS[49])
    assert not r.changed and r.weeks_tested == 20
    assert r.sentence.endswith("A change from before can't be confirmed yet, even over the 20 weeks since it started.")


def _reference_scan(y, m=6, block=4, n_perm=199, seed=0):
    """The block-permutation scan written plainly: (p-value, split row)."""
    def max_lr(x):
        n, best = len(x), (-1.0, 0)
        for k in range(m, n - m + 1):
            parts = [(x[:k].sum(), k), (x[k:].sum(), n - k)]
            ll = sum(s * math.log(s / c) for s, c in parts if s > 0)
            lr = 2 * (ll - (x.sum() * math.log(x.sum() / n) if x.sum() > 0 else 0.0))
            best = max(best, (lr, k), key=lambda t: t[0])
        return best

    rng = np.random.default_rng(seed)
    obs, k = max_lr(y)
    blocks = [y[i * block:(i + 1) * block] for i in range(math.ceil(len(y) / block))]
    null = [max_lr(np.concatenate([blocks[i] for i in rng.permutation(len(blocks))]))[0] for _ in range(n_perm)]
    return (1 + sum(v >= obs - 1e-9 for v in null)) / (n_perm + 1), k


def test_changes_found_gives_each_column_the_answer_of_the_plain_permutation_test():
    from coachnb.adherence import changes_found

    rng = np.random.default_rng(6)
    block = rng.poisson(5, (50, 12)).astype(float)
    block[25:, ::3] = rng.poisson(12, (25, 4))  # four columns step up at row 25
    block[30:, 1] = rng.poisson(7.5, 20)  # a smaller step: near the edge of 5%
    found, row = changes_found(block)
    for j in range(12):
        p, k = _reference_scan(block[:, j])
        assert found[j] == (p <= 0.05), (j, p)
        if found[j]:
            assert row[j] == k
            assert detect_activity_change(pd.Series(block[:, j], index=WEEKS[:50])) == WEEKS[k]
    assert found[::3].all() and found.sum() <= 5
    assert changes_found(block[:10]).__len__() == 2 and not changes_found(block[:10])[0].any()  # too short to split


def test_changes_found_scans_many_series_a_chunk_at_a_time_with_the_same_answers():
    from coachnb.adherence import SCAN_CHUNK, changes_found

    rng = np.random.default_rng(8)
    k = 2 * SCAN_CHUNK + 5
    block = rng.poisson(6, (40, k)).astype(float)
    block[20:, ::4] = rng.poisson(11, (20, len(range(0, k, 4))))
    found, row = changes_found(block)
    alone = [changes_found(block[:, [j]]) for j in range(k)]
    assert found.tolist() == [bool(f[0]) for f, _ in alone]
    assert row.tolist() == [int(r[0]) for _, r in alone]
    assert found[::4].mean() > 0.8 and found.sum() < len(range(0, k, 4)) + 5
