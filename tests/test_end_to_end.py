"""The whole demo team through the batch: every report and the index, checked as a reader would.

The data is the demo team with one deal renamed to hostile HTML, so escaping is checked on
the real path from CSV to rendered page.
"""
from __future__ import annotations

import base64
import re
import shutil
from html import escape, unescape
from urllib.parse import unquote

import pandas as pd
import pytest

from coachnb.batch import run_batch

from .cdp import Browser, require_chromium

AS_OF = "2026-11-23"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(sample_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("e2e") / "data"
    shutil.copytree(sample_dir, data)
    opps = pd.read_csv(data / "opportunities.csv", dtype=str, keep_default_na=False)
    sh = pd.read_csv(data / "stage_history.csv", dtype=str, keep_default_na=False)
    # an open deal of R001 gets a hostile name, and is made stalled so it shows in the report
    mine_open = opps[(opps["rep_id"] == "R001") & (opps["status"] == "open")]
    target = mine_open["opportunity_id"].iloc[0]
    opps.loc[opps["opportunity_id"] == target, "name"] = HOSTILE
    opps.loc[opps["opportunity_id"] == target, "account"] = HOSTILE
    hist = sh[sh["opportunity_id"] == target]
    sh = sh.drop(hist.index[1:])  # only its first stage remains: entered long ago
    sh.loc[hist.index[0], "entered_at"] = "2026-06-01 09:00:00"
    opps.loc[opps["opportunity_id"] == target, "created_at"] = "2026-06-01 09:00:00"
    opps.to_csv(data / "opportunities.csv", index=False)
    sh.to_csv(data / "stage_history.csv", index=False)
    out = tmp_path_factory.mktemp("e2e-reports")
    result = run_batch(data, AS_OF, out=out, audience="both", jobs=2, timeout=300)
    reps = pd.read_csv(data / "reps.csv", dtype=str, keep_default_na=False)
    return result, reps, opps


def _text(html: str) -> str:
    t = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    t = re.sub(r"<[^>]+>", " ", t)
    return t


def test_every_report_and_the_index_are_written(batch):
    result, reps, _ = batch
    assert result.ok, [r for r in result.reports if r["status"] != "ok"]
    written = [r for r in result.reports if r["status"] == "ok"]
    assert len(written) == 2 * len(reps)
    assert (result.report_dir / "index.html").stat().st_size > 1000
    for r in written:
        assert (result.report_dir / r["html"]).stat().st_size > 1000


def test_reports_are_clean_self_contained_and_private(batch):
    result, reps, opps = batch
    names = dict(zip(reps["rep_id"], reps["name"]))
    for r in result.reports:
        html = (result.report_dir / r["html"]).read_text(encoding="utf-8")
        text = _text(html)
        for bad in ("Traceback", "Error", "Warning", "In [", "Out[", "papermill"):
            assert bad not in text, (r["rep_id"], bad)
        assert 'class="jp-InputArea' not in html and "highlight" not in html
        assert not re.search(r'(src|href)="https?://', html)
        imgs = re.findall(r'<img[^>]*src="([^"]*)"', html)
        assert len(imgs) >= 3 and all(i.startswith("data:image/svg+xml;base64,") and len(i) > 2000 for i in imgs)
        # a chart is a picture: no script, no reference but to itself, no other rep's name in its text
        charts = [base64.b64decode(i.split(",", 1)[1]).decode("utf-8") for i in imgs]
        assert not any(re.search(r"<script|href=\"(?!#)|<foreignObject|url\((?!#)", c, re.I) for c in charts)
        text += " ".join(unescape(re.sub(r"<[^>]+>", " ", c)) for c in charts)  # what the charts write counts too
        # names as text and as HTML escapes them (O'Connor is O&#x27;Connor in the markup)
        def shows(s: str) -> bool:
            return s in text or escape(s) in html or escape(s, quote=False) in html

        assert shows(names[r["rep_id"]])
        for other, name in names.items():
            if other != r["rep_id"]:
                assert not shows(name), f"{name} appears in {r['rep_id']}'s report"
        theirs = set(opps.loc[opps["rep_id"] != r["rep_id"], "name"]) - set(opps.loc[opps["rep_id"] == r["rep_id"], "name"])
        leaked = [n for n in theirs if len(n) > 8 and shows(n)]
        assert not leaked, (r["rep_id"], leaked[:3])


def test_hostile_text_is_escaped(batch):
    result, _, _ = batch
    r001 = next(r for r in result.reports if r["rep_id"] == "R001" and r["audience"] == "manager")
    html = (result.report_dir / r001["html"]).read_text(encoding="utf-8")
    # the deal name appears, as text: no live script or image tag comes from the data
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in html


def test_rep_preread_speaks_to_the_rep(batch):
    result, _, _ = batch
    pre = next(r for r in result.reports if r["rep_id"] == "R002" and r["audience"] == "rep")
    text = _text((result.report_dir / pre["html"]).read_text(encoding="utf-8"))
    assert "pre-read" in text and "How I rate myself" in text


def test_commitments_show_secondary_outcomes_and_scenarios_say_what_they_rest_on(batch):
    result, _, _ = batch
    texts = [_text((result.report_dir / r["html"]).read_text(encoding="utf-8"))
             for r in result.reports if r["audience"] == "manager"]
    # reports with a verdict table (not only the method note's "Did it move pipeline?") on a real change
    judged = [t for t in texts if "Effect (rate ratio) with 95% interval" in t and "can't be confirmed" not in t]
    assert judged and all("Also checked the same way, as supporting evidence: pipeline value" in t for t in judged)
    # a scenario on an activity says what it rests on (one on new opportunities themselves needs no model)
    on_activity = [t for t in texts if re.search(r"What if (calls|emails|meetings|demos|activities)", t)]
    assert on_activity
    assert all("within each of the" in t or "team's new opportunities per unit" in t for t in on_activity)


def test_index_links_every_rep(batch):
    result, reps, _ = batch
    index = (result.report_dir / "index.html").read_text(encoding="utf-8")
    links = {unquote(h) for h in re.findall(r'<a href="([^"]+\.html)"', index)}
    manager_reports = {r["html"] for r in result.reports if r["audience"] == "manager"}
    assert manager_reports <= links
    for target in links:
        assert (result.report_dir / target).is_file()


@pytest.mark.browser
def test_reports_open_in_a_real_browser(batch, tmp_path):
    require_chromium()
    result, reps, _ = batch
    r001 = next(r for r in result.reports if r["rep_id"] == "R001" and r["audience"] == "manager")
    with Browser() as b:
        for path in (result.report_dir / r001["html"], result.report_dir / "index.html"):
            page = b.open(path)
            errors = [c for c in page.console if c[0] in ("error", "warning")]
            assert not errors, errors
            assert not page.exceptions and not page.dialogs, (page.exceptions, page.dialogs)
            assert page.broken_images == 0
            assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
            assert len(page.screenshot) > 20_000  # a blank page compresses to a few kB
            (tmp_path / (path.stem + ".png")).write_bytes(page.screenshot)
        assert page.images == 0  # the index is a table
        assert "Zoë Ångström" in page.text
        report = b.open(result.report_dir / r001["html"])
        assert report.images >= 3
        assert HOSTILE.split("<img")[0] in report.text  # the script tag shows as text
