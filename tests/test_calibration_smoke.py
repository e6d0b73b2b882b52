"""Fast calibration smoke test of the pipeline-impact method (issue #4).

A few hundred simulations from the benchmark's own DGP (overdispersed, autocorrelated
counts with team seasonality and shocks). Deterministic given the seed; a regression in
the method (size, power or coverage) makes it fail. Runs in a few seconds.
"""
from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "benchmarks" / "calibration.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def summary(calibration):
    names = [s.name for s in calibration.scenarios()]
    which = [names.index("null: known date"), names.index("null: dip before change"),
             names.index(calibration.VALUE_NULL), names.index("+150%, 13 wk"), names.index("+100%, 8 wk")]
    by = calibration.run(seed=11, n_null=400, n_effect=150, jobs=1, which=which)
    # more draws where the FPR is closest to its bound (seeds 7/11/13, 2,000 draws: 0.050-0.054)
    by.update(calibration.run(seed=11, n_null=1000, n_effect=0, jobs=1, which=[names.index(calibration.STRONG_NULL)]))
    rows, meta = calibration.summarize(by)
    return {r["name"]: r for r in rows}, meta


def test_false_positive_rate_holds(summary):
    rows, _ = summary
    for name in ("null: known date", "null: dip before change", "null: strong team-wide swings",
                 "null: pipeline value (secondary)"):
        r = rows[name]
        assert r["n"] == (1000 if "strong" in name else 400)
        assert r["rate"] <= 0.08, (name, r["rate"])
        # consistent with the target (at most 0.06); the dip scenario runs at 0.05-0.066 over seeds
        # 7/11/13/2026 x 1,000-2,000 draws with and without the fitted trend share
        assert r["rate_ci"][0] <= 0.06, (name, r["rate_ci"])
        assert r["coverage"] >= 0.92, (name, r["coverage"])
        assert r["ks"] <= 0.1, (name, r["ks"])


def test_false_positives_are_spread_evenly_over_volume(summary):
    # coachnb holds ~5% for low- and high-volume reps alike; the naive test, even size-adjusted
    # with one global threshold, is far above 5% for high-volume reps (its power comes from there)
    _, meta = summary
    band = meta["coachnb_band_fpr"]
    assert all(x <= 0.13 for x in band if np.isfinite(x)), band
    assert meta["band_fpr_global"][-1] >= 0.08, meta["band_fpr_global"]


def test_naive_test_is_inflated_on_this_dgp(summary):
    # if this fails the simulator got too easy to tell anything
    rows, _ = summary
    assert rows["null: known date"]["naive_rate"] >= 0.12
    # team-wide swings inflate the naive test further; coachnb's peer trend removes them
    assert rows["null: strong team-wide swings"]["naive_rate"] >= rows["null: known date"]["naive_rate"] + 0.03


def test_power_and_coverage_under_effects(summary):
    rows, _ = summary
    big = rows["+150%, 13 wk"]
    mid = rows["+100%, 8 wk"]
    # seeds 11-13: +150%/13wk 0.61-0.70 (0.59-0.67 before the weighted team trend), +100%/8wk 0.33-0.35
    assert big["rate"] >= 0.45, big["rate"]
    assert mid["rate"] >= 0.22, mid["rate"]
    assert big["rate"] >= mid["rate"] - 0.05
    for r in (big, mid):
        assert r["coverage"] >= 0.92, (r["name"], r["coverage"])
        assert r["wrong_sign"] <= 0.05


def test_more_power_than_the_naive_test_at_the_same_false_moved_up_rate(summary):
    # both held to 2.5% false "moved up" claims in the known-date null (the primary comparison);
    # full run (seed 2026): coachnb ahead in 10 of 12 effect x horizon cells, within a point behind in two
    rows, meta = summary
    assert 0 < meta["alpha_up_coachnb"] <= 0.05 and 0 < meta["alpha_up"] < 0.01  # the naive one must shrink a lot
    for name in ("+150%, 13 wk", "+100%, 8 wk"):
        r = rows[name]
        assert r["adj_up"] >= r["naive_adj_up"] - 0.03, (name, r["adj_up"], r["naive_adj_up"])
        assert r["adj_up"] <= r["rate"]  # held to a stricter standard than its nominal 5%, never looser


def test_up_threshold_never_splits_a_tie(calibration):
    p = np.array([0.01, 0.02, 0.02, 0.5, 0.9, 0.3, 0.02, 0.7])
    up = np.array([True, True, True, True, False, True, False, True])
    # at most 2 of 8 may claim an increase: 0.01 alone (1), 0.02 would bring it to 3
    assert calibration._up_threshold(p, up, share=0.25) == 0.01
    assert calibration._up_threshold(p, up, share=0.5) == 0.3  # 4 upward rows at or below 0.3: exactly 4 allowed
    assert calibration._up_threshold(p, up, share=0.1) == 0.0


def test_wilson_and_ks_helpers(calibration):
    lo, hi = calibration.wilson(5, 100)
    assert lo == pytest.approx(0.0215, abs=1e-3) and hi == pytest.approx(0.1118, abs=1e-3)
    assert calibration.ks_uniform(np.linspace(0.005, 0.995, 100)) == pytest.approx(0.005, abs=1e-9)
    assert calibration.ks_uniform(np.full(50, 0.01)) > 0.9


def test_ks_sides_and_paired_difference(calibration):
    liberal = np.linspace(0.0, 0.5, 101)  # every p-value too small: only the liberal side is off
    assert calibration.ks_uniform(liberal, "liberal") == pytest.approx(0.5, abs=0.01)
    assert calibration.ks_uniform(liberal, "conservative") <= 0.01
    conservative = np.linspace(0.5, 1.0, 101)
    assert calibration.ks_uniform(conservative, "liberal") <= 0.01
    assert calibration.ks_uniform(conservative) == pytest.approx(0.5, abs=0.01)
    assert calibration.ks_critical(2000) == pytest.approx(0.0304, abs=1e-4)
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0], bool)
    b = np.array([0, 1, 0, 0, 0, 1, 0, 0], bool)
    mean, half = calibration.paired_difference(a, b)
    assert mean == pytest.approx(3 / 8)
    d = a.astype(float) - b
    assert half == pytest.approx(1.96 * d.std(ddof=1) / np.sqrt(8))


def test_misuse_rows_print_apart_from_the_table(calibration):
    names = [s.name for s in calibration.scenarios()]
    by = calibration.run(seed=3, n_null=40, n_effect=0, jobs=1, which=[names.index("null: known date"),
                                                                         names.index("null: date found in PIPELINE")])
    summ, meta = calibration.summarize(by)
    text = calibration.format_table(summ, meta)
    table, _, misuse = text.partition("Misuse, simulated")
    assert "null: known date" in table and "date found in PIPELINE" not in table
    assert "null: date found in PIPELINE" in misuse


# ------------------------------------------------------------------ the table written into the docs
def test_marker_replacement_touches_only_what_lies_between_the_markers(calibration):
    start, end = calibration.DOCS_START, calibration.DOCS_END
    text = f"# Title\n\nintro, {end[:4]} not a marker\n{start}\nold table\nold line\n{end}\n\noutro\n"
    new = calibration.replace_between_markers(text, "new table\n")
    assert new == f"# Title\n\nintro, {end[:4]} not a marker\n{start}\nnew table\n{end}\n\noutro\n"
    assert calibration.replace_between_markers(new, "new table") == new  # idempotent


@pytest.mark.parametrize("text, complaint", [
    ("no markers at all\n", "found 0 and 0"),
    ("<!-- calibration:start -->\nonly the start\n", "found 1 and 0"),
    ("<!-- calibration:start -->\n<!-- calibration:start -->\n<!-- calibration:end -->\n", "found 2 and 1"),
    ("<!-- calibration:end -->\nswapped\n<!-- calibration:start -->\n", "comes before"),
])
def test_marker_replacement_fails_clearly_without_a_proper_pair_of_markers(calibration, text, complaint):
    with pytest.raises(ValueError, match=complaint) as err:
        calibration.replace_between_markers(text, "table")
    assert "calibration:" in str(err.value)  # the message names the markers


def test_write_docs_puts_the_table_seed_n_and_command_between_the_markers(calibration, tmp_path):
    names = [s.name for s in calibration.scenarios()]
    by = calibration.run(seed=5, n_null=30, n_effect=0, jobs=1, which=[names.index("null: known date")])
    saved = tmp_path / "runs.pkl"
    with open(saved, "wb") as f:
        pickle.dump(dict(by=by, n_null=30, n_effect=0, seed=5), f)
    doc = tmp_path / "methods.md"
    doc.write_text(f"before\n{calibration.DOCS_START}\nstale\n{calibration.DOCS_END}\nafter\n")
    assert calibration.main(["--load", str(saved), "--write-docs", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"before\n{calibration.DOCS_START}\nGenerated by `python benchmarks/calibration.py --load")
    assert text.endswith(f"```\n{calibration.DOCS_END}\nafter\n") and "stale" not in text
    assert "(seed 5; 30 simulated teams in each null row, 0 in each effect row)" in text
    assert "null: known date" in text
    assert not any(line != line.rstrip() for line in text.splitlines())  # no trailing spaces in the docs


def test_write_docs_checks_the_markers_before_simulating(calibration, tmp_path):
    doc = tmp_path / "no_markers.md"
    doc.write_text("nothing to replace\n")
    with pytest.raises(SystemExit):  # argparse's error exit, before any simulation
        calibration.main(["--n-null", "100000", "--write-docs", str(doc)])
    assert doc.read_text() == "nothing to replace\n"


def test_the_methods_page_has_one_generated_table(calibration):
    text = calibration.DOCS.read_text()
    assert text.count(calibration.DOCS_START) == 1 and text.count(calibration.DOCS_END) == 1
