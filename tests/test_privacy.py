"""Small-group privacy: a rep's report shows a team figure only when it pools at least
``thresholds.min_teammates`` (3) other reps, in both audiences, for every median, band and total.

Teams of 1, 2, 3 and 4 reps: with 0, 1 or 2 teammates no team figure appears and the report says
there are too few teammates to compare with; with 3 teammates the figures are back.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from coachnb.demo import write_demo_data
from coachnb.loading import load
from coachnb.team import min_teammates

from .test_odd_data import AS_OF, page_text, render


@pytest.fixture(scope="module", params=[1, 2, 3, 4])
def team(request, tmp_path_factory):
    n = request.param
    d = Path(write_demo_data(tmp_path_factory.mktemp(f"team{n}") / "data", reps=n, weeks=40, seed=5, end=AS_OF))
    return n, load(d)


def _team_figures(r) -> list:
    """Every team figure a report object holds, as numbers (NaN where none is shown)."""
    figs = [r.activity.team["median"], r.activity.team["q25"], r.activity.team["q75"], r.pipeline.team["median"],
            r.pipeline.team_cycle_days, r.capture.team["median"]]
    figs += list(r.activity.band[["median", "q25", "q75"]].to_numpy().ravel())
    figs += list(r.pipeline.band[["median", "q25", "q75"]].to_numpy().ravel())
    figs += list(r.activity.team_mix.to_numpy())
    if r.conversion is not None:
        figs += list(r.conversion.team[["median", "q25", "q75"]].to_numpy().ravel())
    if r.velocity is not None:
        figs += list(r.velocity.team[["median_days", "p75_days"]].to_numpy().ravel())
    figs += [np.nan if v == "n/a" else 1.0 for v in r.results.rows.get("team median", [])]
    return [float(x) for x in figs]


@pytest.mark.parametrize("audience", ["manager", "rep"])
def test_team_figures_need_three_teammates(team, audience, monkeypatch):
    n, ds = team
    for rep_id, name in ds.reps[["rep_id", "name"]].itertuples(index=False):
        r, markup = render(ds, rep_id, audience=audience, monkeypatch=monkeypatch)
        text = page_text(markup)
        figures = _team_figures(r)
        if n - 1 < 3:
            assert all(np.isnan(figures)), (n, rep_id)
            assert "team median" not in text.lower() and "middle half" not in text, (n, rep_id)
            assert "too few teammates" in text, (n, rep_id)
            assert r.stalled.deals.empty and not r.focus.areas
        else:
            assert np.isfinite(figures).sum() > 10, (n, rep_id)
            assert "team median" in text.lower()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return load(Path(write_demo_data(tmp_path_factory.mktemp("pair") / "data", reps=2, weeks=40, seed=5, end=AS_OF)))


def test_a_two_rep_team_never_shows_the_other_reps_figures(pair, monkeypatch):
    ds = pair
    (a, _), (b, b_name) = ds.reps[["rep_id", "name"]].itertuples(index=False)
    r_b, _ = render(ds, b, monkeypatch=monkeypatch)
    r_a, markup = render(ds, a, audience="rep", monkeypatch=monkeypatch)
    text = page_text(markup)
    assert b_name not in text
    theirs = r_b.results.rows.set_index("measure")["you"]
    for measure in ("Won this quarter so far", "Average won deal"):
        value = theirs[measure]
        if value not in ("n/a", "0"):
            assert value not in r_a.results.rows.get("team median", []), measure


def test_the_pool_size_is_configurable_but_never_below_three(team):
    n, ds = team
    more = dataclasses.replace(ds.config, thresholds=dataclasses.replace(ds.config.thresholds, min_teammates=5))
    fewer = dataclasses.replace(ds.config, thresholds=dataclasses.replace(ds.config.thresholds, min_teammates=1))
    assert min_teammates(dataclasses.replace(ds, config=more)) == 5
    assert min_teammates(dataclasses.replace(ds, config=fewer)) == 3


# --------------------------------------------------------------------------- text from the data in charts
HOSTILE_STAGES = ["Proposal ($5k-$10k)", "Negotiation $_$", r"Closing \frac{a}{b} $x^2$"]


def test_stage_names_and_labels_are_drawn_literally_never_as_mathtext():
    """A stage named 'Negotiation $_$' passed validation and then failed every report (mathtext)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from coachnb import plots

    plots.use_style()
    steps = [f"{a} → {b}" for a, b in zip(HOSTILE_STAGES, HOSTILE_STAGES[1:])]
    conv = pd.DataFrame({"step": steps, "rate": [0.5, 0.2], "low": [0.3, 0.1], "high": [0.7, 0.4]})
    team = pd.DataFrame({"step": steps, "median": [0.4, 0.3], "q25": [0.3, 0.2], "q75": [0.5, 0.4]})
    days = pd.DataFrame({"stage": HOSTILE_STAGES, "median_days": [10.0, 20.0, 5.0]})
    weekly = pd.DataFrame({"week": pd.date_range("2026-09-07", periods=6, freq="W-MON"), "value": [3, 4, 5, 6, 5, 7]})
    figs = [plots.conversion_vs_team(conv, team), plots.days_in_stage_vs_team(days, days),
            plots.commitment_progress(weekly, 6, 3, "calls to $ accounts ($5k+)", weekly["week"].iloc[2],
                                      weekly["week"].iloc[4])]
    from matplotlib.text import Text

    for fig in figs:
        fig.canvas.draw()  # mathtext parsing would raise here
        # every text of the chart (tick labels are drawn as plain texts of their own)
        texts = [t for t in fig.findobj(Text) if t.get_text()]
        drawn = " ".join(t.get_text() for t in texts)
        assert any(s in drawn for s in HOSTILE_STAGES + ["calls to $ accounts ($5k+)"])
        assert all(t.get_parse_math() is False for t in texts if "$" in t.get_text())
        plt.close(fig)


def test_the_managers_note_stays_out_of_the_reps_pre_read(tmp_path, monkeypatch):
    from coachnb.commitments import add_commitment

    data = Path(write_demo_data(tmp_path / "data", reps=6, weeks=30, seed=5, end=AS_OF))
    add_commitment(data, "R002", "calls_per_week", target=40, start="2026-11-02", days=30, agreed_on="2026-11-02",
                   note="Worried about burnout <b>", note_for_rep="Start with the Acme renewal")
    ds = load(data)
    _, manager = render(ds, "R002", audience="manager", monkeypatch=monkeypatch)
    _, rep = render(ds, "R002", audience="rep", monkeypatch=monkeypatch)
    assert "Worried about burnout <b>" in page_text(manager) and "<b>" not in manager.replace("&lt;b&gt;", "")
    assert "Worried about burnout" not in page_text(rep)
    for text in (page_text(manager), page_text(rep)):
        assert "Start with the Acme renewal" in text
