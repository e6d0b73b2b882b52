"""Odd but valid data renders: empty reps, tiny reps, a team of one, periods without data, any script.

Every case goes through :func:`coachnb.report.rep_report` with the notebook's display calls
(fast, both audiences), and a few go through the real notebook with :func:`run_batch`. A report
must render without a traceback or error text, show the rep's name, show text from the data
escaped, and never print ``nan``/``inf`` where a number is missing.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest

import coachnb.display as show
from coachnb.batch import run_batch
from coachnb.loading import load, validate
from coachnb.record import coaching_record
from coachnb.report import rep_report
from coachnb.demo import write_demo_data
from coachnb.errors import AsOfError

AS_OF = "2026-11-23"
UNI_ID = "李-07"
UNI_NAME = "Ngọc Ánh Trần 李小龍 🚀"
UNI_DEAL = "Δέλτα — 発注 🎉 <i>Phase 2</i>"
UNI_ACCOUNT = "АО «Ромашка» שלום & Co"
HTML_NOTE = '<b>bold</b> <script>alert("x")</script> & 🚀'
HTML_FOLLOW_UP = "اتصل بي يوم الجمعة 📞 <img src=x onerror=alert(1)>"
ODD_REPS = {  # rep id -> what is odd about them
    "RNOACT": "no activities at all (deals only)",
    "RONE": "exactly one deal",
    "RNEW": "hired last week: a few activities, nothing else",
    "ROPEN": "every deal still open",
    UNI_ID: "non-Latin and emoji in name, deal, account, commitment; HTML in the note",
}
SECTIONS = ("header", "since_last_time", "activity", "conversion", "velocity", "stalled", "capture", "focus",
            "questions", "plan", "results", "method_notes")  # the notebook's cells, in order


def _read(d: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)


def build_odd_team(root: Path) -> Path:
    """The 4-rep demo team plus one rep per odd case (copies of R001-R004's records, re-keyed)."""
    d = Path(write_demo_data(root, reps=4, weeks=30, seed=3, end=AS_OF))
    t = {n: _read(d, n) for n in ("reps", "opportunities", "stage_history", "activities", "commitments")}
    base = t["reps"].iloc[0].to_dict()

    def add(name, rows):
        t[name] = pd.concat([t[name], pd.DataFrame(rows)], ignore_index=True)

    def add_rep(rep_id, name, **extra):
        add("reps", [dict(base, rep_id=rep_id, name=name, **extra)])

    def copy_deals(ids, rep_id, prefix, **over):
        o = t["opportunities"][t["opportunities"]["opportunity_id"].isin(ids)].copy()
        h = t["stage_history"][t["stage_history"]["opportunity_id"].isin(ids)].copy()
        new_id = {old: f"{prefix}{i}" for i, old in enumerate(ids)}
        o["opportunity_id"], h["opportunity_id"] = o["opportunity_id"].map(new_id), h["opportunity_id"].map(new_id)
        o["rep_id"] = rep_id
        for k, v in over.items():
            o[k] = v
        add("opportunities", o.to_dict("records"))
        add("stage_history", h.to_dict("records"))
        return list(new_id.values())

    def copy_activities(src_rep, rep_id, prefix, since=""):
        a = t["activities"][(t["activities"]["rep_id"] == src_rep) & (t["activities"]["occurred_at"] >= since)].copy()
        a["activity_id"] = [f"{prefix}{i}" for i in range(len(a))]
        a["rep_id"], a["opportunity_id"] = rep_id, ""
        add("activities", a.to_dict("records"))

    opps = t["opportunities"]
    r1 = opps[opps["rep_id"] == "R001"]
    add_rep("RNOACT", "Nora Quiet")
    copy_deals(list(r1["opportunity_id"][:3]), "RNOACT", "ONA")
    add_rep("RONE", "Otto Single")
    copy_deals(list(r1.loc[r1["status"] == "won", "opportunity_id"][:1]), "RONE", "OONE")
    copy_activities("R002", "RONE", "AONE")
    add_rep("RNEW", "Nina Newcomer", hire_date="2026-11-16")
    copy_activities("R003", "RNEW", "ANEW", since="2026-11-16")
    add_rep("ROPEN", "Olga Open")
    copy_deals(list(r1.loc[r1["status"] == "open", "opportunity_id"][:4]), "ROPEN", "OOPN")
    copy_activities("R004", "ROPEN", "AOPN")
    add_rep(UNI_ID, UNI_NAME)
    uni = copy_deals(list(r1["opportunity_id"][3:8]), UNI_ID, "OUNI", account=UNI_ACCOUNT)
    copy_activities("R001", UNI_ID, "AUNI")
    # one of them open and stuck in its first stage since June, so the stalled-deals table shows it
    o, sh = t["opportunities"], t["stage_history"]
    o.loc[o["opportunity_id"] == uni[0], ["name", "status", "closed_at", "created_at"]] = \
        [UNI_DEAL, "open", "", "2026-06-01 09:00:00"]
    first = sh.index[sh["opportunity_id"] == uni[0]]
    t["stage_history"] = sh.drop(first[1:])
    t["stage_history"].loc[first[0], "entered_at"] = "2026-06-01 09:00:00"
    # a commitment far above what the rep does: not kept, so the report quotes the follow-up back
    add("commitments", [dict(t["commitments"].iloc[0].to_dict(), commitment_id="K9001", rep_id=UNI_ID,
                             agreed_on="2026-10-05", start="2026-10-05", end="2026-11-01", metric="calls_per_week",
                             baseline="20", target="500", note=HTML_NOTE, follow_up=HTML_FOLLOW_UP, supersedes="",
                             note_for_rep=HTML_NOTE)])
    for name, frame in t.items():
        frame.to_csv(d / f"{name}.csv", index=False)
    return d


@pytest.fixture(scope="module")
def odd_dir(tmp_path_factory) -> Path:
    d = build_odd_team(tmp_path_factory.mktemp("odd") / "data")
    report = validate(d)
    assert report.ok and not report.warnings, report.format()  # odd, but valid
    return d


@pytest.fixture(scope="module")
def odd_ds(odd_dir):
    return load(odd_dir)


@pytest.fixture(scope="module")
def solo_dir(tmp_path_factory) -> Path:
    """A team of one rep: no teammates to compare with."""
    return Path(write_demo_data(tmp_path_factory.mktemp("solo") / "data", reps=1, weeks=30, seed=3, end=AS_OF))


def render(data, rep_id, as_of=AS_OF, audience="manager", monkeypatch=None):
    """The report as the notebook shows it: every section's display output, joined."""
    shown = []
    monkeypatch.setattr(show, "display", lambda *objs, **kw: shown.extend(objs))
    r = rep_report(data, rep_id, as_of, 13, audience)
    for section in SECTIONS:
        getattr(show, section)(r)
        if section == "since_last_time":  # the notebook's next cell: the coaching record
            show.coaching_record(coaching_record(data, rep_id, as_of, 13, reviews=r.commitments), audience)
    return r, "\n".join(shown_html(o) for o in shown)


def shown_html(obj) -> str:
    """The HTML a displayed object puts on the page: a MIME bundle's text/html, an HTML object's
    data, "<img>" for a picture."""
    if isinstance(obj, dict):
        return obj["text/html"] if "text/html" in obj else "<img>"
    data = getattr(obj, "data", None)
    return data if isinstance(data, str) else "<img>"


def page_text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


def assert_clean(markup: str, name: str) -> str:
    text = page_text(markup)
    for bad in ("Traceback", "Error", "Exception", "Warning"):
        assert bad not in text, bad
    missing = re.search(r".{0,60}\b(nan|NaN|inf|NaT)\b.{0,20}", text)  # ("n/a×": see the xfail below)
    assert not missing, missing.group(0)
    assert name in text
    assert not re.search(r"<script|<[a-z]+[^>]*\son[a-z]+=", markup, re.I)  # no live script from the data
    return text


# --------------------------------------------------------------------------- through rep_report


@pytest.mark.parametrize("audience", ["manager", "rep"])
@pytest.mark.parametrize("rep_id", list(ODD_REPS))
def test_odd_rep_renders(odd_ds, rep_id, audience, monkeypatch):
    name = odd_ds.reps.set_index("rep_id").at[rep_id, "name"]
    r, markup = render(odd_ds, rep_id, audience=audience, monkeypatch=monkeypatch)
    text = assert_clean(markup, name)
    assert r.header.name == name
    if rep_id == "RNOACT":
        assert r.activity.rep_total == 0 and "0 activities" in text
        assert r.capture.sentence.startswith("No logging times")
    if rep_id == "RONE":
        assert len(odd_ds.opportunities.query("rep_id == 'RONE'")) == 1
        assert r.conversion.rep["entered"].max() <= 1 and r.stalled.n_open == 0
    if rep_id == "RNEW":
        assert 0 < r.activity.rep_total < 200 and not r.focus.areas  # too little data for a focus
    if rep_id == "ROPEN":
        assert r.stalled.n_open == 4
        rows = r.results.rows.set_index("measure")
        assert rows.at["Win rate in the period", "me" if audience == "rep" else "you"] == "n/a"
    if rep_id == UNI_ID:
        assert UNI_DEAL in text and UNI_ACCOUNT in text
        assert html.escape(UNI_DEAL) in markup  # the deal's <i> is text, not markup
        assert HTML_NOTE in text and "&lt;script&gt;" in markup and "<b>bold" not in markup
        if audience == "manager":  # the manager's copy quotes the follow-up the rep asked for
            assert HTML_FOLLOW_UP in text and "<img src=x" not in markup


def test_team_of_one_renders_and_says_there_is_no_one_to_compare_with(solo_dir, monkeypatch):
    ds = load(solo_dir)
    (rep_id, name), = ds.reps[["rep_id", "name"]].itertuples(index=False)
    for audience in ("manager", "rep"):
        r, markup = render(ds, rep_id, audience=audience, monkeypatch=monkeypatch)
        text = assert_clean(markup, name)
        assert r.activity.team["n_reps"] == 0
        assert "A focus needs at least 3 teammates to compare with; there are 0." in text
        assert "too few unchanged teammates (0)" in text  # the commitment verdict says why it can't tell


def test_team_of_one_makes_no_claim_about_a_team(solo_dir, monkeypatch):
    ds = load(solo_dir)
    rep_id = ds.reps["rep_id"].iloc[0]
    r, markup = render(ds, rep_id, monkeypatch=monkeypatch)
    text = page_text(markup)
    assert "team median lies within" not in text and "team median n/a" not in text and "n/a×" not in text
    assert "too few teammates" in text.lower()


@pytest.mark.parametrize("as_of", ["2020-01-06"], ids=["before-the-data"])
@pytest.mark.parametrize("rep_id", ["R001", "RNEW"])
def test_period_without_data_renders(odd_ds, as_of, rep_id, monkeypatch):
    name = odd_ds.reps.set_index("rep_id").at[rep_id, "name"]
    r, markup = render(odd_ds, rep_id, as_of=as_of, monkeypatch=monkeypatch)
    assert_clean(markup, name)
    assert r.activity.rep_total == 0
    assert r.activity.team["n_reps"] == 0 or r.activity.team["median"] == 0  # nobody in the role yet, or idle
    assert str(pd.Timestamp(as_of).year) in r.header.period


def test_period_after_the_data_is_refused_with_the_date_it_ends(odd_ds, monkeypatch):
    """Weeks after the last record would read as zeros: no report, a clear error naming the dates."""
    with pytest.raises(AsOfError, match=r"the data ends on \d{2} \w{3} 2026.*--as-of 2026-"):
        render(odd_ds, "R001", as_of="2029-06-01", monkeypatch=monkeypatch)


def test_new_hire_is_not_judged_on_weeks_before_they_started(odd_ds, monkeypatch):
    r, _ = render(odd_ds, "RNEW", monkeypatch=monkeypatch)
    assert "below most of the team" not in r.activity.sentence


# --------------------------------------------------------------------------- through the real notebook


@pytest.mark.slow
def test_odd_reps_render_through_the_notebook(odd_dir, tmp_path):
    result = run_batch(odd_dir, AS_OF, out=tmp_path, reps=list(ODD_REPS), audience="both", jobs=1, progress=False,
                       timeout=300)
    assert result.ok, result.failed
    assert result.overview["status"] == "ok"
    names = _read(odd_dir, "reps").set_index("rep_id")["name"]
    assert len(result.reports) == 2 * len(ODD_REPS)
    # RNOACT's three deals are all older than the period: no record in it, so no report of zeros
    idle = {e["rep_id"] for e in result.reports if e["status"] == "inactive"}
    assert idle == {"RNOACT"}
    for e in result.reports:
        if e["status"] == "inactive":
            continue
        markup = (result.report_dir / e["html"]).read_text(encoding="utf-8")
        text = assert_clean(markup, names[e["rep_id"]])
        assert f"<title>{html.escape(names[e['rep_id']], quote=False)}" in markup
        if e["rep_id"] == UNI_ID:
            assert UNI_DEAL in text and HTML_NOTE in text
    index = page_text((result.report_dir / "index.html").read_text(encoding="utf-8"))
    assert all(names[r] in index for r in ODD_REPS)


@pytest.mark.slow
def test_team_of_one_renders_through_the_notebook(solo_dir, tmp_path):
    result = run_batch(solo_dir, AS_OF, out=tmp_path, jobs=1, progress=False, timeout=300)
    assert result.ok, (result.failed, result.overview)
    name = _read(solo_dir, "reps")["name"].iloc[0]
    assert_clean((result.report_dir / result.reports[0]["html"]).read_text(encoding="utf-8"), name)
    assert name in page_text((result.report_dir / "index.html").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_batch_after_the_data_is_refused_before_any_report(odd_dir, tmp_path):
    with pytest.raises(AsOfError, match="the data ends on"):
        run_batch(odd_dir, "2029-06-01", out=tmp_path, reps=["R001"], jobs=1, progress=False, timeout=300)
    assert not list(tmp_path.rglob("*.html"))


@pytest.mark.slow
@pytest.mark.parametrize("as_of", ["2020-01-06"], ids=["before-the-data"])
def test_period_without_data_renders_through_the_notebook(odd_dir, tmp_path, as_of):
    result = run_batch(odd_dir, as_of, out=tmp_path, reps=["R001", "RNEW"], jobs=1, progress=False, timeout=300)
    assert result.ok, (result.failed, result.overview)
    # nobody has a record in a period before the data: no report of zeros, each rep listed as inactive
    assert {e["status"] for e in result.reports} == {"inactive"} and not list(result.report_dir.glob("r*.html"))
    names = _read(odd_dir, "reps").set_index("rep_id")["name"]
    index = page_text((result.report_dir / "index.html").read_text(encoding="utf-8"))
    assert "No activity, new deal, stage move or closed deal is recorded in this period" in index
    assert all(names[r] in index for r in ("R001", "RNEW"))


def test_builder_really_makes_the_odd_cases(odd_ds):
    """Guards the fixture: each odd rep is odd in the way the tests above assume."""
    o, a = odd_ds.opportunities, odd_ds.activities
    assert not (a["rep_id"] == "RNOACT").any() and (o["rep_id"] == "RNOACT").sum() == 3
    assert (o["rep_id"] == "RONE").sum() == 1
    assert set(o.loc[o["rep_id"] == "ROPEN", "status"]) == {"open"}
    new = a[a["rep_id"] == "RNEW"]
    assert len(new) and new["occurred_at"].min() >= pd.Timestamp("2026-11-16", tz=odd_ds.config.timezone)
    assert not (o["rep_id"] == "RNEW").any()
    assert UNI_NAME in set(odd_ds.reps["name"]) and UNI_DEAL in set(o["name"])
