"""Smoke tests of the calibration study (``benchmarks/calibration.py``, issue #14) on both simulators.

A quick run of every pre-registered scenario of both simulators (a few hundred teams each,
deterministic given the seed) checks the measuring instrument and the one property the
issue asks a test for across calibration runs: no diagnosis "kept, no lift" without a tested
pipeline. The independent simulator (``benchmarks/sim_fiscal.py``) is checked for the panel
conventions coachnb assumes and for the features it promises (missing weeks before a hire,
lags, teammates who change, the fiscal calendar).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def calibration():
    return _load("calibration")


@pytest.fixture(scope="module")
def fiscal(calibration):
    return sys.modules["sim_fiscal"]  # imported by calibration.py from beside it


@pytest.fixture(scope="module")
def quick_runs(calibration):
    """Every scenario of both simulators, one seed, 60 nulls / 40 per effect cell (about 15 s)."""
    return {sim: calibration.run(sim, [11], n_null=60, n_effect=40, jobs=1) for sim in calibration.SIMULATORS}


# ------------------------------------------------------------------ the diagnosis layer across calibration runs
def test_no_kept_no_lift_without_a_tested_pipeline_on_either_simulator(calibration, quick_runs):
    for sim, rows in quick_runs.items():
        n_null = sum(sc.is_null for sc in calibration.scenarios(sim))
        assert len(rows) == n_null * 60 + 3 * 40 and n_null == (8 if sim == "first" else 6)
        bad = [r for r in rows if r["untested_no_lift"]]
        assert not bad, (sim, len(bad), bad[:3])
        # a "no lift" rests on a confirmed activity change and a verdict that was reached
        no_lift = [r for r in rows if r["category"] == "kept_no_lift"]
        assert all(r["activity_changed"] and not r["not_enough"] for r in no_lift), (sim, no_lift[:3])
        unconfirmed = [r for r in rows if r["category"] == "kept_unclear"]
        assert all(not r["activity_changed"] and not r["moved"] for r in unconfirmed), (sim, unconfirmed[:3])
        # the runs do reach the diagnoses this guards: kept commitments with untested pipelines exist
        cats = {r["category"] for r in rows}
        assert "kept_too_early" in cats or "kept_unclear" in cats, (sim, cats)


def test_the_untested_no_lift_count_catches_a_misstated_diagnosis(calibration, monkeypatch):
    # the bug of issue #14: "kept" + "activity did not change" read as "kept, no lift"
    def buggy(adherence, verdict, direction=None, finished=None):
        if adherence == "kept" and verdict in ("activity did not change", "not enough data to tell"):
            return "kept_no_lift"
        return "not_kept"

    monkeypatch.setattr(calibration, "classify", buggy)
    rows = [calibration.run_one(("fiscal", 3, 0, i)) for i in range(40)]
    assert sum(r["untested_no_lift"] for r in rows) > 0
    summary, meta = calibration.summarize("fiscal", rows)
    assert meta["untested_no_lift"] > 0
    failed = [what for what, ok, _ in calibration.checks(summary, meta) if not ok]
    assert "no 'kept, no lift' without a tested pipeline" in failed


# ------------------------------------------------------------------ the summaries and the primary comparison
def test_size_adjustment_holds_each_test_to_five_percent_on_its_own_null(calibration, quick_runs):
    for sim, rows in quick_runs.items():
        th = calibration.thresholds_by_seed(sim, rows)
        base = [r for r in rows if r["sc"] == 0]
        c, n = calibration.adjusted_rejections(base, th)
        assert c.mean() <= 0.05 and n.mean() <= 0.05, (sim, c.mean(), n.mean())
        summary, meta = calibration.summarize(sim, rows)
        assert [s["name"] for s in summary] == [s.name for s in calibration.scenarios(sim)]
        for s in summary:
            assert 0 <= s["rate"] <= 1 and s["rate_ci"][0] <= s["rate"] <= s["rate_ci"][1]
            if not s["null"]:
                assert 0 <= s["adj"] <= 1 and 0 <= s["naive_adj"] <= 1
                assert np.isfinite(s["adj_diff"][0]) and s["adj_diff"][1] > 0
        assert np.isfinite(meta["adj_diff"][0])


def test_the_table_names_every_scenario_and_check(calibration, quick_runs):
    summary, meta = calibration.summarize("fiscal", quick_runs["fiscal"])
    text = calibration.format_table(summary, meta)
    assert text.startswith("Simulator: fiscal (seeds 11;")
    for sc in calibration.scenarios("fiscal"):
        assert sc.name in text
    assert "primary, all cells" in text and "Pre-registered checks" in text
    first = calibration.format_table(*calibration.summarize("first", quick_runs["first"]))
    table, _, descriptive = first.partition("Descriptive, not pre-registered")
    assert "misuse: date found in PIPELINE" in descriptive and "misuse" not in table
    checked = first.split("Pre-registered checks")[1]
    assert "date found" not in checked  # descriptive rows decide nothing
    n_checks = len(calibration.checks(summary, meta))
    assert text.count("  PASS  ") + text.count("  FAIL  ") == n_checks


def test_size_threshold_never_splits_a_tie(calibration):
    p = np.array([0.01, 0.02, 0.02, 0.5, 0.9, 0.3, 0.02, 0.7])
    assert calibration.size_threshold(p, share=0.25) == 0.01  # 0.02 would bring it to 4 of 8
    assert calibration.size_threshold(p, share=0.5) == 0.02  # exactly 4 allowed
    assert calibration.size_threshold(p, share=0.1) == 0.0


def test_quasi_poisson_test(calibration):
    flat = np.full(12, 4.0)
    rr, p = calibration.quasi_poisson_test(flat, flat[:8])
    assert rr == pytest.approx(1.0, abs=0.01) and p > 0.9  # half-event offsets: not exactly 1
    rr, p = calibration.quasi_poisson_test(np.full(12, 2.0), np.full(8, 8.0))
    assert rr > 3 and p < 1e-3
    # overdispersed weeks widen it: the same means with spread-out weeks give a larger p
    spread_pre = np.array([0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4], float)
    spread_post = np.array([0, 6, 0, 6, 0, 6, 0, 6], float)
    _, p_even = calibration.quasi_poisson_test(np.full(12, 2.0), np.full(8, 3.0))
    _, p_spread = calibration.quasi_poisson_test(spread_pre, spread_post)
    assert p_spread > p_even
    # missing weeks (before a hire) are left out, not counted as zero
    rr_nan, _ = calibration.quasi_poisson_test(np.r_[np.full(6, np.nan), np.full(6, 2.0)], np.full(8, 2.0))
    assert rr_nan == pytest.approx(1.0, abs=0.03)
    assert np.isnan(calibration.quasi_poisson_test(np.array([]), np.full(8, 2.0))[1])


def test_wilson_and_paired_difference(calibration):
    lo, hi = calibration.wilson(5, 100)
    assert lo == pytest.approx(0.0215, abs=1e-3) and hi == pytest.approx(0.1118, abs=1e-3)
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0], bool)
    b = np.array([0, 1, 0, 0, 0, 1, 0, 0], bool)
    mean, half = calibration.paired_difference(a, b)
    assert mean == pytest.approx(3 / 8)
    assert half == pytest.approx(1.96 * (a.astype(float) - b).std(ddof=1) / np.sqrt(8))


def test_runs_are_deterministic_given_the_seed(calibration):
    one = calibration.run_one(("first", 5, 1, 3))
    assert calibration.run_one(("first", 5, 1, 3)) == one
    assert calibration.run_one(("fiscal", 5, 1, 3)) != calibration.run_one(("fiscal", 6, 1, 3))


# ------------------------------------------------------------------ the independent simulator
def test_fiscal_panels_follow_coachnb_conventions(fiscal):
    rng = np.random.default_rng(4)
    for _ in range(5):
        sim = fiscal.simulate_fiscal_team(rng, fiscal.FiscalSpec(effect_ratio=2.0))
        for panel in (sim.activity, sim.outcome):
            assert isinstance(panel.index, pd.DatetimeIndex) and (panel.index.day_of_week == 0).all()
            assert (np.diff(panel.index.values) == np.timedelta64(7, "D")).all()
            assert list(panel.columns) == list(sim.outcome.columns) and sim.rep_id == panel.columns[0]
            v = panel.to_numpy(float)
            assert ((v[np.isfinite(v)] >= 0) & (v[np.isfinite(v)] == np.round(v[np.isfinite(v)]))).all()
        assert 5 <= sim.outcome.shape[1] <= 40
        assert 1 <= sim.lag_weeks <= 8 and 1.8 <= sim.activity_ratio <= 2.5
        eff = sim.true_ratio_by_week
        assert (eff[: sim.change_row + sim.lag_weeks] == 1).all() and eff[-1] == pytest.approx(2.0)
        assert 4 <= (sim.commitment_end - sim.start).days // 7 + 1 <= 8


def test_fiscal_new_hire_weeks_are_missing_not_zero(fiscal):
    rng = np.random.default_rng(8)
    sim = fiscal.simulate_fiscal_team(rng, fiscal.FiscalSpec(rep_hired_before=(10, 20)))
    rep = sim.outcome[sim.rep_id]
    assert 10 <= sim.change_row - sim.hire_row <= 20
    assert rep.iloc[: sim.hire_row].isna().all() and rep.iloc[sim.hire_row:].notna().all()
    assert sim.activity[sim.rep_id].iloc[: sim.hire_row].isna().all()


def test_fiscal_teammates_change_at_other_dates(fiscal):
    rng = np.random.default_rng(9)
    sims = [fiscal.simulate_fiscal_team(rng, fiscal.FiscalSpec(changed_peer_share=0.5, team=(20, 30)))
            for _ in range(3)]
    changed = [row for s in sims for row in s.changed_peers.values()]
    assert len(changed) >= 15
    assert len({row for row in changed}) > 5  # spread over the panel, not the rep's date
    assert any(row != s.change_row for s in sims for row in s.changed_peers.values())


def test_fiscal_calendar_has_troughs_holidays_and_a_year_end_push(fiscal):
    weeks = pd.date_range("2024-01-01", periods=104, freq="7D")
    season = fiscal.fiscal_calendar(weeks, 4)  # fiscal year from April
    s = pd.Series(season, index=weeks)
    assert s[(weeks.month == 12) & (weeks.day >= 23)].max() <= fiscal.YEAR_END_HOLIDAY + 1e-9
    assert (s[(weeks.month == 3) & (weeks.day >= 8)] > 0).all()  # fiscal year-end push in March
    assert (s[(weeks.month == 5) & (weeks.day >= 8) & (weeks.day <= 21)] < 0).all()  # mid-quarter trough
    assert s.idxmax().month == 3
    assert not np.allclose(season, fiscal.fiscal_calendar(weeks, 7))  # the fiscal start moves it


def test_fiscal_lull_scenario_puts_a_lull_in_the_baseline(fiscal):
    rng = np.random.default_rng(12)
    for _ in range(5):
        sim = fiscal.simulate_fiscal_team(rng, fiscal.FiscalSpec(after_lull=True))
        season = fiscal.fiscal_calendar(sim.outcome.index, sim.fiscal_start_month)
        before = season[sim.change_row - 10: sim.change_row - 2]
        assert before.min() <= fiscal.SUMMER_LULL + 1e-9


# ------------------------------------------------------------------ the tables written into the docs
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


def test_write_docs_puts_both_tables_seeds_n_and_command_between_the_markers(calibration, quick_runs, tmp_path):
    saved = tmp_path / "runs.json"
    saved.write_text(json.dumps(dict(rows=quick_runs, seeds=[11], n_null=60, n_effect=40)))
    doc = tmp_path / "methods.md"
    doc.write_text(f"before\n{calibration.DOCS_START}\nstale\n{calibration.DOCS_END}\nafter\n")
    assert calibration.main(["--load", str(saved), "--write-docs", str(doc)]) == 0
    text = doc.read_text()
    # a file saved without its command: the command line given, without the file options
    assert text.startswith(f"before\n{calibration.DOCS_START}\nGenerated by `python benchmarks/calibration.py --write-docs")
    assert text.endswith(f"```\n{calibration.DOCS_END}\nafter\n") and "stale" not in text
    assert "(seeds 11; 60 simulated teams per seed in each null row, 40 in each effect row)" in text
    assert "Simulator: first" in text and "Simulator: fiscal" in text
    assert not any(line != line.rstrip() for line in text.splitlines())  # no trailing spaces in the docs
    assert not list(tmp_path.glob(".methods.md.*"))  # the atomic write left no temporary file


def test_a_saved_run_names_its_own_command_in_the_docs(calibration, tmp_path):
    saved, doc = tmp_path / "runs.json", tmp_path / "methods.md"
    assert calibration.main(["--simulator", "fiscal", "--seed", "4", "--seeds", "1", "--n-null", "20",
                             "--n-effect", "0", "--save", str(saved)]) == 0
    assert json.loads(saved.read_text())["command"] == (
        "python benchmarks/calibration.py --simulator fiscal --seed 4 --seeds 1 --n-null 20 --n-effect 0")
    doc.write_text(f"{calibration.DOCS_START}\n{calibration.DOCS_END}\n")
    assert calibration.main(["--load", str(saved), "--write-docs", str(doc)]) == 0
    text = doc.read_text()
    assert "Generated by `python benchmarks/calibration.py --simulator fiscal --seed 4 --seeds 1 --n-null 20" in text
    assert "(seeds 4; 20 simulated teams per seed in each null row, 0 in each effect row)" in text
    assert "Simulator: fiscal" in text and "Simulator: first" not in text


def test_write_docs_checks_the_markers_before_simulating(calibration, tmp_path):
    doc = tmp_path / "no_markers.md"
    doc.write_text("nothing to replace\n")
    with pytest.raises(SystemExit):  # argparse's error exit, before any simulation
        calibration.main(["--n-null", "100000", "--write-docs", str(doc)])
    assert doc.read_text() == "nothing to replace\n"


def test_the_methods_page_has_one_generated_block_with_both_simulators(calibration):
    text = calibration.DOCS.read_text()
    assert text.count(calibration.DOCS_START) == 1 and text.count(calibration.DOCS_END) == 1
    block = text.split(calibration.DOCS_START)[1].split(calibration.DOCS_END)[0]
    assert "Simulator: first" in block and "Simulator: fiscal" in block
