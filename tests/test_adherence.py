"""Unit tests of coachnb.adherence on constructed series with known answers (issue #4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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



# ----------------------------------------------------------------------------- change points
def test_detect_activity_change_finds_a_step_and_ignores_noise():
    rng = np.random.default_rng(12)
    y = np.r_[rng.poisson(5, 30), rng.poisson(10, 20)]
    found = detect_activity_change(_series(y))
    assert found is not None and abs(WEEKS.get_loc(found) - 30) <= 2
    flat = _series(rng.poisson(5, 50))
    assert detect_activity_change(flat) is None
    assert detect_activity_change(_series([1, 2, 3])) is None
