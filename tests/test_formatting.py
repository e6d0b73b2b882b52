"""Every number a sentence shows goes through coachnb.formatting: each rule, and missing values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coachnb import formatting as F

MISSING = [None, float("nan"), np.nan, pd.NA, math.inf, -np.inf]


@pytest.mark.parametrize("fn", [F.fmt_num, F.fmt_level, F.fmt_figure, F.fmt_rate, F.fmt_money, F.fmt_pct,
                                F.fmt_times, F.fmt_ratio])
@pytest.mark.parametrize("value", MISSING)
def test_a_missing_or_infinite_value_reads_n_a(fn, value):
    assert fn(value) == "n/a"


def test_counts_and_levels():
    assert F.fmt_num(12345) == "12,345"
    assert F.fmt_num(2.25) == "2.2" and F.fmt_num(2.26, digits=2) == "2.26"
    assert F.fmt_num(np.int64(7)) == "7"
    assert F.fmt_level(9.97) == "10" and F.fmt_level(2.5) == "2.5" and F.fmt_level(12345.0) == "12345"
    assert F.fmt_figure(3.25) == "3.2" and F.fmt_figure(150.4) == "150" and F.fmt_figure(1200) == "1,200"


def test_rates_shares_amounts_and_multiples():
    assert F.fmt_rate(0.456) == "0.46" and F.fmt_rate(3.456) == "3.5"
    assert F.fmt_money(1234567.6) == "1,234,568"
    assert F.fmt_pct(0.237) == "24%" and F.fmt_pct(-0.5) == "-50%"
    assert F.fmt_times(2.64) == "2.6×" and F.fmt_times(3) == "3×"
    assert F.fmt_ratio(0.854) == "0.85×" and F.fmt_ratio(1.94) == "1.94×" and F.fmt_ratio(2.44) == "2.4×"


def test_money_is_rounded_to_what_kind_of_figure_it_is():
    # a recorded amount or a sum of them: whole units, as every report showed before currencies
    assert F.fmt_money(1234567.6) == "1,234,568" and F.fmt_money(-0.4) == "0"
    # a mean or median: three significant figures; a model's estimate: two, like fmt_estimate
    assert F.fmt_money(49_838, kind="average") == "49,800" and F.fmt_money(12_949, kind="average") == "12,900"
    assert F.fmt_money(38_707, kind="estimate") == "39,000" == F.fmt_estimate(38_707)
    assert F.fmt_money(87.4, kind="average") == "87" and F.fmt_money(0.3, kind="average") == "0"  # never below units
    assert F.fmt_money(float("nan"), kind="average") == "n/a"
    with pytest.raises(ValueError, match="kind must be one of recorded, average, estimate"):
        F.fmt_money(1, kind="exact")


def test_money_in_the_teams_currency():
    gbp = F.Currency("£")
    assert F.fmt_money(38_707, gbp, kind="average") == "£38,700" and F.fmt_money(-1500, gbp) == "-£1,500"
    assert F.fmt_money(49_838, F.Currency("€", before=False, thousands="."), kind="average") == "49.800\u00a0€"
    assert F.fmt_money(1_234_567, F.Currency("CHF", thousands="'")) == "CHF\u00a01'234'567"
    assert F.fmt_money(1_234_567, F.Currency(thousands="")) == "1234567"
    assert F.fmt_money(None, gbp) == "n/a"  # never "£n/a"


def test_plural_and_escaping():
    assert F.plural(1, "week") == "1 week" and F.plural(0, "week") == "0 weeks" and F.plural(3, "deal") == "3 deals"
    assert F.esc('<script>alert("x")</script> & co') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"
    assert F.esc(None) == "" and F.esc(float("nan")) == "" and F.esc(42) == "42"


def test_a_models_estimate_keeps_two_significant_figures():
    assert F.fmt_estimate(38707) == "39,000" and F.fmt_estimate(37001) == "37,000"
    assert F.fmt_estimate(4.26) == "4.3" and F.fmt_estimate(0.0347) == "0.035" and F.fmt_estimate(-1234) == "-1,200"
    assert F.fmt_estimate(0) == "0" and F.fmt_estimate(float("nan")) == "n/a"
