"""Charts start from a blank figure unpickled per chart (plots.blank_figure): nothing of one chart reaches another."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from coachnb import plots
from tests.test_chart_marks import charts, svg

#: rep A's and rep B's charts of every kind, each rep with their own numbers, names and periods
TWO_REPS = textwrap.dedent('''
    import json, sys
    import numpy as np, pandas as pd
    from coachnb import plots
    from tests.test_chart_marks import svg

    def make(rep):
        rng = np.random.default_rng(rep)
        weeks = pd.date_range("2025-11-24" if rep == 1 else "2026-02-02", periods=40 + 10 * rep, freq="W-MON")
        n = len(weeks)
        stages = ["Discovery", "Proposal", "Won"] if rep == 1 else ["Intro (rep B)", "Demo $B$", "Legal", "Won"]
        steps = [f"{a} -> {b}" for a, b in zip(stages, stages[1:])]
        rate = rng.uniform(0.2, 0.8, len(steps))
        conv = pd.DataFrame({"step": steps, "rate": rate, "low": rate - 0.1, "high": rate + 0.1})
        team = pd.DataFrame({"step": steps, "median": rate, "q25": rate - 0.05, "q75": rate + 0.05})
        weekly = pd.DataFrame({"week": weeks, "total": rng.poisson(50 * rep, n), "value": rng.poisson(9 * rep, n)})
        band = pd.DataFrame({"week": weeks, "median": 40.0 * rep, "q25": 30.0 * rep, "q75": 50.0 * rep})
        starts = weeks[[5, 20]]
        periods = pd.DataFrame({"metric": ["calls", "calls"], "start": starts, "end": starts + pd.Timedelta(days=28),
                                "target": [60.0 * rep, 70.0], "reading": [f"rep {rep}: kept", "not kept"]})
        record = pd.DataFrame({"week": weeks, "new_opportunities": rng.poisson(2 * rep, n), "calls": rng.poisson(50, n)})
        mix = pd.Series(rng.dirichlet(np.ones(3)), index=["call", "email", f"visit {rep}"])
        return [plots.conversion_vs_team(conv, team),
                plots.days_in_stage_vs_team(pd.DataFrame({"stage": stages, "median_days": rng.uniform(1, 40, len(stages))}),
                                            pd.DataFrame({"stage": stages, "median_days": rng.uniform(1, 40, len(stages))})),
                plots.activity_mix(mix, mix[::-1]),
                plots.weekly_vs_team(weekly, band),
                plots.commitment_progress(weekly, 12.0 * rep, 8.0, f"calls per week {rep}", weeks[5], weeks[9]),
                plots.coaching_record_chart(record, periods, {"calls": "calls per week"}, sessions=list(starts))]

    plots.use_style()
    for rep in map(int, sys.argv[1:-1]):
        out = [svg(fig) for fig in make(rep)]
    json.dump(out, open(sys.argv[-1], "w"))
''')


def _render(tmp_path, *reps: int) -> list[str]:
    """The last rep's charts, after the others' in the same fresh process."""
    script, out = tmp_path / "two_reps.py", tmp_path / f"charts-{'-'.join(map(str, reps))}.json"
    script.write_text(TWO_REPS, encoding="utf-8")
    root = str(Path(plots.__file__).resolve().parents[1])  # this coachnb's checkout, for coachnb and tests
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(script), *map(str, reps), str(out)], check=True, cwd=root, env=env)
    return json.loads(out.read_text(encoding="utf-8"))


def test_rep_b_after_rep_a_is_rep_b_drawn_in_a_fresh_process(tmp_path):
    """Every kind of chart, rep A's drawn first from the kept blanks: rep B's then byte for byte as on its own."""
    after_a = _render(tmp_path, 1, 2)
    alone = _render(tmp_path, 2)
    assert len(alone) == 6 and after_a == alone
    assert "rep 1" not in "".join(after_a) and "rep 2: kept" in alone[-1]


@pytest.mark.parametrize("kind", list(charts()))
def test_a_chart_from_a_blank_is_the_chart_from_plt_subplots(kind, monkeypatch):
    plots.use_style()
    ours = svg(charts()[kind]())
    ours_again = svg(charts()[kind]())  # the blank now kept

    def subplots(nrows=1, *, sharex=False):
        fig, axes = plt.subplots(nrows, 1, sharex=sharex, squeeze=False)
        return fig, list(axes[:, 0])

    monkeypatch.setattr(plots, "blank_figure", subplots)
    assert svg(charts()[kind]()) == ours == ours_again


def test_each_blank_is_new_and_empty_whatever_was_drawn_in_the_one_before():
    plots.use_style()
    fig, (ax,) = plots.blank_figure()
    ax.plot([1, 2], [3, 4], label="rep A")
    ax.text(0, 0, "rep A's note")
    fig.legend()
    again, (ax2,) = plots.blank_figure()
    assert again is not fig and ax2 is not ax and ax2.xaxis is not ax.xaxis
    assert not ax2.lines and not ax2.texts and not again.legends and not ax2.collections
    assert ax2.get_xlim() == (0.0, 1.0)
    again.canvas.draw()  # an Agg canvas, as pyplot's figures have
    assert again.canvas.get_renderer() is not None
    stacked, axes = plots.blank_figure(3, sharex=True)
    assert len(axes) == 3 and axes[0].get_shared_x_axes().joined(axes[0], axes[2])
    assert not axes[0].get_shared_x_axes().joined(axes[0], ax2)
    for f in (fig, again, stacked):
        plt.close(f)


def test_other_rc_settings_give_another_blank():
    plots.use_style()
    plain, _ = plots.blank_figure()
    with plt.rc_context({"axes.facecolor": "#fafafa", "figure.figsize": (3.0, 2.0)}):
        other, (ax,) = plots.blank_figure()
    assert tuple(other.get_size_inches()) == (3.0, 2.0) != tuple(plain.get_size_inches())
    assert np.allclose(ax.get_facecolor()[:3], [0xFA / 255] * 3)
    again, (ax2,) = plots.blank_figure()
    assert tuple(again.get_size_inches()) == tuple(plain.get_size_inches()) and ax2.get_facecolor() != ax.get_facecolor()
