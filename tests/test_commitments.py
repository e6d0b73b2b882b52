"""Recording commitments: validation, atomic appends under concurrency, supersedes, listing."""
from __future__ import annotations

import csv
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from coachnb.commitments import (
    COLUMNS, READABLE_COLUMNS, add_commitment, baseline_window, check_selection, commitment_status,
    commitment_warnings, did_you_mean, list_commitments, mean_weekly_value, next_commitment_id,
    readable_commitments,
)
from coachnb.config import ProcessConfig
from coachnb.errors import CoachnbError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "reps.csv").write_text(
        "rep_id,name,team,manager,hire_date\n"
        "R001,Ana Souza,West,Maya Chen,2024-01-08\n"
        "R002,Ben Ode,West,Maya Chen,2024-01-08\n"
        "00123,Cy Lo,East,Ola Berg,2024-01-08\n",
        encoding="utf-8")
    return tmp_path


def _add(data_dir, **kw):
    args = dict(rep_id="R001", metric="calls_per_week", target=10, baseline="5", start="2026-09-01", days=30,
                follow_up="Ask me on Friday afternoons", note=None, supersedes=None, agreed_on="2026-09-01")
    args.update(kw)
    return add_commitment(data_dir, **args)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_first_add_creates_file_with_header_and_row(data_dir):
    row = _add(data_dir, days=30)
    assert row["commitment_id"] == "K0001"
    assert row["end"] == "2026-09-30"  # start + 30 - 1
    assert row["baseline"] == 5.0 and row["target"] == 10.0
    text = (data_dir / "commitments.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    (written,) = _rows(data_dir / "commitments.csv")
    assert written["rep_id"] == "R001" and written["follow_up"] == "Ask me on Friday afternoons"
    assert written["supersedes"] == ""


def test_text_ids_with_leading_zeros_are_kept(data_dir):
    row = _add(data_dir, rep_id="00123")
    assert _rows(data_dir / "commitments.csv")[0]["rep_id"] == "00123" == row["rep_id"]


def test_ids_count_up_from_the_largest_existing():
    assert next_commitment_id([]) == "K0001"
    assert next_commitment_id(["K0002", "K0010", "X99", "K0007"]) == "K0011"


@pytest.mark.parametrize("bad", [
    dict(rep_id="R999"),                      # unknown rep
    dict(metric="coffees_per_week"),          # not in the registry
    dict(start="2026-13-01"),                 # no such month
    dict(start="next monday"),
    dict(days=6), dict(days=121), dict(days="thirty"),
    dict(target=5),                           # equal to the baseline
    dict(target=-1),
    dict(baseline="lots"),
    dict(metric="logged_on_time_share", baseline="0.6", target=1.5),  # a share above 1
    dict(supersedes="K0099"),                 # no such commitment
    dict(supersedes="K0001", rep_id="R002"),  # someone else's commitment
])
def test_a_bad_call_raises_and_changes_nothing(data_dir, bad):
    _add(data_dir)
    before = (data_dir / "commitments.csv").read_bytes()
    with pytest.raises(CoachnbError):
        _add(data_dir, **bad)
    assert (data_dir / "commitments.csv").read_bytes() == before


def test_bad_call_on_a_folder_without_commitments_creates_no_file(data_dir):
    with pytest.raises(CoachnbError, match="not in reps"):
        _add(data_dir, rep_id="nobody")
    assert not (data_dir / "commitments.csv").exists()


def test_existing_bytes_are_kept_and_crlf_respected(data_dir):
    original = ("\ufeff" + ",".join(COLUMNS) + "\r\n"
                + 'K0005,R001,2026-06-01,2026-06-01,2026-06-30,calls_per_week,4,8,"Text me, Mondays",,,\r\n')
    path = data_dir / "commitments.csv"
    path.write_bytes(original.encode("utf-8"))
    row = _add(data_dir)
    assert row["commitment_id"] == "K0006"
    after = path.read_bytes()
    assert after.startswith(original.encode("utf-8"))
    assert after.endswith(b"\r\n") and b"\n" not in after.replace(b"\r\n", b"")
    assert [r["commitment_id"] for r in _rows(path)] == ["K0005", "K0006"]


def test_older_file_without_supersedes_column_gains_it_values_kept(data_dir):
    old_cols = [c for c in COLUMNS if c != "supersedes"]
    path = data_dir / "commitments.csv"
    path.write_text(",".join(old_cols) + "\nK0001,R001,2026-06-01,2026-06-01,2026-06-30,calls_per_week,4,8,,\n",
                    encoding="utf-8")
    _add(data_dir, supersedes="K0001")
    rows = _rows(path)
    assert rows[0]["baseline"] == "4" and rows[0]["supersedes"] == ""
    assert rows[1]["supersedes"] == "K0001"


def test_supersedes_appends_and_history_stays(data_dir):
    first = _add(data_dir)
    second = _add(data_dir, target=8, supersedes=first["commitment_id"], note="10 was too many with the trade show")
    assert second["supersedes"] == "K0001" and second["commitment_id"] == "K0002"
    table = list_commitments(data_dir)
    assert list(table["commitment_id"]) == ["K0001", "K0002"]
    assert table.loc[0, "superseded_by"] == "K0002" and not table.loc[0, "current"]
    assert pd.isna(table.loc[1, "superseded_by"]) and table.loc[1, "current"]
    # a replaced row can't be replaced twice (that would fork the history)
    with pytest.raises(CoachnbError, match="already replaced by K0002"):
        _add(data_dir, supersedes="K0001")


def test_list_filters_by_rep_and_active_day(data_dir):
    _add(data_dir, start="2026-09-01", days=30)
    _add(data_dir, rep_id="R002", start="2026-09-01", days=14)
    _add(data_dir, start="2026-11-01", days=30)
    assert list(list_commitments(data_dir, rep_id="R001")["commitment_id"]) == ["K0001", "K0003"]
    active = list_commitments(data_dir, active_on="2026-09-20")
    assert list(active["commitment_id"]) == ["K0001"]  # K0002 ended on 09-14
    assert list(list_commitments(data_dir, active_on="2026-09-14")["commitment_id"]) == ["K0001", "K0002"]
    assert len(list_commitments(data_dir, rep_id="R777")) == 0


def test_list_on_a_folder_without_commitments_is_empty(data_dir):
    table = list_commitments(data_dir)
    assert len(table) == 0 and "superseded_by" in table.columns


def _worker(args):
    data_dir, i, barrier = args
    barrier.wait()
    return add_commitment(data_dir, rep_id="R001" if i % 2 else "R002", metric="calls_per_week", target=10 + i,
                          baseline="5", start="2026-09-01", days=30, follow_up=f"check-in {i}",
                          agreed_on="2026-09-01")["commitment_id"]


def test_twenty_concurrent_adds_lose_nothing(data_dir):
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(20)
        with ctx.Pool(20) as pool:
            ids = pool.map(_worker, [(str(data_dir), i, barrier) for i in range(20)])
    assert sorted(ids) == ["K%04d" % k for k in range(1, 21)]
    rows = _rows(data_dir / "commitments.csv")
    assert len(rows) == 20
    assert sorted(r["commitment_id"] for r in rows) == sorted(ids)
    assert sorted(int(r["target"]) for r in rows) == list(range(10, 30))
    assert {r["follow_up"] for r in rows} == {f"check-in {i}" for i in range(20)}
    assert not list(data_dir.glob(".commitments.*.tmp"))


def test_cli_commit_add_and_list(data_dir):
    run = [sys.executable, "-m", "coachnb", "commit"]
    out = subprocess.run(run + ["add", str(data_dir), "--rep", "R002", "--metric", "demos_per_week", "--target", "3",
                                "--baseline", "1", "--start", "2026-10-05", "--days", "28",
                                "--follow-up", "Ask me in our Monday stand-up"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "K0001" in out.stdout and "2026-11-01" in out.stdout
    import datetime  # only this test reads the clock

    assert f"agreed on {datetime.date.today().isoformat()} (today;" in out.stdout  # the default, said
    bad = subprocess.run(run + ["add", str(data_dir), "--rep", "R002", "--metric", "demos_per_week", "--target", "1",
                                "--baseline", "1", "--start", "2026-10-05"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "equals the baseline" in bad.stderr


def test_baseline_window_is_eight_weeks_ending_two_weeks_before_the_start_week():
    first, last = baseline_window(pd.Timestamp("2026-09-03").date(), ProcessConfig())  # a Thursday
    # start week begins Monday 2026-08-31; gap weeks 08-17..08-30; baseline 06-22..08-16
    assert first == pd.Timestamp("2026-06-22") and last == pd.Timestamp("2026-08-16")


def test_mean_weekly_value_counts_silent_weeks_as_zero_and_skips_pre_hire_weeks():
    first, last = pd.Timestamp("2026-06-22"), pd.Timestamp("2026-08-16")
    weekly = pd.DataFrame({"rep_id": ["R001", "R001", "R002"],
                           "week": pd.to_datetime(["2026-06-22", "2026-08-10", "2026-06-22"]),
                           "value": [8.0, 16.0, 99.0]})
    assert mean_weekly_value(weekly, "R001", first, last) == (3.0, 8)  # (8 + 16) / 8 weeks
    # hired on 2026-07-15: counted from the week of 07-13 (five weeks) -> 16 / 5
    assert mean_weekly_value(weekly, "R001", first, last, hire_date=pd.Timestamp("2026-07-15")) == (3.2, 5)
    # a share: weeks with no activity have no value
    assert mean_weekly_value(weekly, "R001", first, last, count_metric=False) == (12.0, 2)


def test_auto_baseline_is_the_mean_of_eight_weeks_before_the_dip_guard(tmp_path):
    from coachnb.demo import write_demo_data

    out = write_demo_data(tmp_path / "demo", reps=6, weeks=30, seed=3, end="2026-11-23")
    before = (out / "commitments.csv").read_bytes()
    row = add_commitment(out, rep_id="R002", metric="calls_per_week", target=40, baseline="auto",
                         start="2026-11-25", days=28, agreed_on="2026-11-23")  # a Wednesday
    # by hand: start week begins Mon 2026-11-23; baseline weeks 2026-09-14 .. 2026-11-08 (8 weeks)
    acts = pd.read_csv(out / "activities.csv", dtype=str)
    when = pd.to_datetime(acts["occurred_at"])
    calls = ((acts["rep_id"] == "R002") & (acts["type"] == "call")
             & (when >= "2026-09-14") & (when < "2026-11-09")).sum()
    assert row["baseline"] == pytest.approx(round(calls / 8, 2))
    after = (out / "commitments.csv").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1


# ----------------------------------------------------------------------------- the loader's rules


def _assert_folder_loads_with(data_dir, **expected):
    """The folder passes the loader's rules for commitments, and its last row holds ``expected``."""
    from coachnb.loading import check_table

    frame, problems = check_table(data_dir, "commitments")
    assert not [p for p in problems if p.severity == "error"], [p.format() for p in problems]
    last = frame.iloc[-1]
    for column, value in expected.items():
        assert last[column] == value, (column, last[column])


@pytest.mark.parametrize("start", ["0226-11-01", "9999-12-31", "0001-01-01", "1899-12-31", "2101-01-01",
                                   "2100-12-15"])  # the last one ends in 2101
def test_dates_the_loader_refuses_are_refused_with_a_clean_error(data_dir, start):
    _add(data_dir)
    before = (data_dir / "commitments.csv").read_bytes()
    with pytest.raises(CoachnbError, match="1900-2100"):
        _add(data_dir, start=start)
    if start != "2100-12-15":
        with pytest.raises(CoachnbError, match="1900-2100"):
            _add(data_dir, agreed_on=start)
    assert (data_dir / "commitments.csv").read_bytes() == before


@pytest.mark.parametrize("encoding,sep", [("utf-16", ","), ("latin-1", ","), ("utf-8", ";"), ("utf-8-sig", "\t"),
                                          ("utf-16", ";")])
def test_reps_in_any_encoding_and_delimiter_validate_accepts(data_dir, encoding, sep):
    (data_dir / "reps.csv").write_bytes(
        (sep.join(["rep_id", "name", "team", "manager", "hire_date"]) + "\n"
         + sep.join(["R001", "Zoë Müller", "West", "Maya Chen", "2024-01-08"]) + "\n").encode(encoding))
    row = _add(data_dir, note="Übung macht den Meister")
    assert row["commitment_id"] == "K0001"
    _assert_folder_loads_with(data_dir, rep_id="R001", note="Übung macht den Meister")


@pytest.mark.parametrize("encoding,sep,eol", [("utf-16", ";", "\r\n"), ("cp1252", ";", "\n"), ("utf-8", "|", "\n")])
def test_appends_in_the_files_own_encoding_and_delimiter(data_dir, encoding, sep, eol):
    original = (sep.join(COLUMNS) + eol
                + sep.join(["K0005", "R001", "2026-06-01", "2026-06-01", "2026-06-30", "calls_per_week", "4", "8",
                            "Café on Mondays", "", "", ""]) + eol).encode(encoding)
    path = data_dir / "commitments.csv"
    path.write_bytes(original)
    row = _add(data_dir, note="Crème brûlée", supersedes="K0005")
    assert row["commitment_id"] == "K0006"
    assert path.read_bytes().startswith(original)
    _assert_folder_loads_with(data_dir, commitment_id="K0006", note="Crème brûlée", supersedes="K0005")
    assert [r["commitment_id"] for r in list_commitments(data_dir).to_dict("records")] == ["K0005", "K0006"]


def test_text_a_windows_1252_file_cannot_hold_is_refused_not_garbled(data_dir):
    path = data_dir / "commitments.csv"
    path.write_bytes((",".join(COLUMNS) + "\n").encode() + "K0001,R001,2026-06-01,2026-06-01,2026-06-30,"
                     "calls_per_week,4,8,Café,,,\n".encode("cp1252"))
    before = path.read_bytes()
    with pytest.raises(CoachnbError, match="UTF-8"):
        _add(data_dir, note="call 🙂 me")
    assert path.read_bytes() == before


@pytest.mark.parametrize("text,stored", [
    ("=HYPERLINK(\"http://x\",\"hi\")", "'=HYPERLINK(\"http://x\",\"hi\")"),
    ("+1 call a day", "'+1 call a day"), ("-5 then +5", "'-5 then +5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'=1+1"), ("\r=1", "'=1"), ("a\x1b[2Jb\x00c", "a [2Jb c"), ("plain = fine", "plain = fine"),
])
def test_formula_like_and_control_text_is_neutralised(data_dir, text, stored):
    row = _add(data_dir, note=text, follow_up=text)
    assert row["note"] == stored == row["follow_up"]
    (written,) = _rows(data_dir / "commitments.csv")
    assert written["note"] == stored and written["follow_up"] == stored
    _assert_folder_loads_with(data_dir, note=stored, follow_up=stored)


@pytest.mark.parametrize("bad", [
    dict(target=float("nan")), dict(target=float("inf")), dict(baseline="-inf"), dict(target=10**400),
    dict(days=float("inf")), dict(days=float("nan")), dict(target=1.7976931348623157e308),
])
def test_numbers_the_loader_refuses_are_refused(data_dir, bad):
    with pytest.raises(CoachnbError):
        _add(data_dir, **bad)
    assert not (data_dir / "commitments.csv").exists()


def test_a_row_that_would_make_the_file_invalid_is_not_written(data_dir):
    path = data_dir / "commitments.csv"
    # a hand-edited earlier row with an unknown rep: appending would keep the file invalid
    path.write_text(",".join(COLUMNS) + "\nK0001,R404,2026-06-01,2026-06-01,2026-06-30,calls_per_week,4,8,,,,\n",
                    encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(CoachnbError, match="unknown_reference"):
        _add(data_dir)
    assert path.read_bytes() == before


def test_broken_reps_give_a_clean_error(data_dir):
    (data_dir / "reps.csv").write_text("id,name\nR001,Ana\n", encoding="utf-8")
    with pytest.raises(CoachnbError, match="reps has errors"):
        _add(data_dir)
    (data_dir / "reps.csv").unlink()
    with pytest.raises(CoachnbError, match="reps"):
        _add(data_dir)


# --------------------------------------------------------------------------- warnings, dates, listing


def test_a_target_below_the_baseline_is_written_with_a_warning(data_dir):
    row = _add(data_dir, target=3, baseline="5")
    assert len(_rows(data_dir / "commitments.csv")) == 1
    (warning,) = row["warnings"]
    assert "below the baseline 5" in warning and "calls per week" in warning


@pytest.mark.parametrize("metric, outcome", [("opportunities_created_per_week", True),
                                             ("stage_advancements_per_week", True),
                                             ("calls_per_week", False), ("logged_on_time_share", False)])
def test_an_outcome_metric_is_warned_about_and_a_behaviour_is_not(metric, outcome):
    spec = ProcessConfig().commitment_metrics[metric]
    target = 0.8 if metric == "logged_on_time_share" else 8
    warnings = commitment_warnings(spec, 0.5, target)
    assert bool(warnings) is outcome
    assert all("outcome, not a behaviour" in w and metric in w for w in warnings)


def test_a_rising_behaviour_target_has_no_warning(data_dir):
    assert _add(data_dir, target=10, baseline="5")["warnings"] == []


def test_agreed_on_is_written_as_given_and_defaults_to_today(data_dir):
    import datetime

    assert _add(data_dir, agreed_on="2026-08-28")["agreed_on"] == "2026-08-28"
    assert _add(data_dir, agreed_on=None)["agreed_on"] == datetime.date.today().isoformat()
    assert [r["agreed_on"] for r in _rows(data_dir / "commitments.csv")] == [
        "2026-08-28", datetime.date.today().isoformat()]


def test_an_unknown_rep_or_metric_says_which_was_meant(data_dir):
    with pytest.raises(CoachnbError, match="did you mean R001"):
        _add(data_dir, rep_id="r001")
    with pytest.raises(CoachnbError, match="did you mean calls_per_week"):
        _add(data_dir, metric="call_per_week")
    assert not (data_dir / "commitments.csv").exists()


@pytest.mark.parametrize("value, known, said", [
    ("r003", ["R001", "R003", "R030"], "R003"),  # case first, even with closer spellings about
    ("R0031", ["R001", "R003"], "R003"), ("Clyd", ["Clyde", "Thames"], "Clyde"), ("zzz", ["R001"], None)])
def test_did_you_mean_names_the_closest_known_value(value, known, said):
    assert did_you_mean(value, known) == (f"; did you mean {said}?" if said else "")


def test_check_selection_refuses_unknown_reps_and_teams_and_passes_known_ones(data_dir):
    check_selection(data_dir, reps=["R001", " 00123"], team=None)
    check_selection(data_dir, team="East")
    with pytest.raises(CoachnbError, match=r"'R999'.*'r002'; did you mean R002\?"):
        check_selection(data_dir, reps=["R001", "R999", "r002"])
    with pytest.raises(CoachnbError, match="did you mean West"):
        check_selection(data_dir, team="west")


def test_check_selection_leaves_an_unreadable_folder_to_the_batch(data_dir, tmp_path):
    check_selection(tmp_path / "nowhere", reps=["R001"])
    (data_dir / "reps.csv").write_text("rep_id,name\nR001,Ana\n", encoding="utf-8")  # columns missing
    check_selection(data_dir, reps=["R999"])


def _history(data_dir):
    _add(data_dir, start="2025-06-02", days=30, agreed_on="2025-05-30")  # K0001, ended long ago
    _add(data_dir, start="2026-09-01", days=30)  # K0002, replaced by K0003
    _add(data_dir, start="2026-09-08", days=60, target=12, supersedes="K0002")  # K0003, running
    _add(data_dir, rep_id="R002", start="2026-12-07", days=30)  # K0004, not started
    return list_commitments(data_dir)


def test_status_words_tell_each_commitments_state_on_a_day(data_dir):
    status = commitment_status(_history(data_dir), "2026-10-01")
    assert list(status) == ["ended 2025-07-01", "replaced by K0003", "running, ends 2026-11-06",
                            "starts 2026-12-07"]
    assert list(commitment_status(list_commitments(data_dir), "2026-11-07"))[2] == "ended 2026-11-06"


def test_the_readable_list_keeps_current_ones_unless_asked_for_history(data_dir):
    frame = _history(data_dir)
    current = readable_commitments(frame, "2026-10-01")
    assert list(current.columns) == READABLE_COLUMNS
    assert list(current["commitment"]) == ["K0003", "K0004"]
    every = readable_commitments(frame, "2026-10-01", history=True)
    assert list(every["commitment"]) == ["K0001", "K0002", "K0003", "K0004"]
    first = every.iloc[0]
    assert first["agreed on"] == "2025-05-30" and first["period"] == "2025-06-02 to 2025-07-01"
    assert first["baseline → target"] == "5 → 10" and first["note"] == ""
    assert not every.map(lambda cell: "<NA>" in cell or "nan" in cell or "NaT" in cell).any().any()


def test_cli_commit_list_is_current_by_default_and_all_gives_history(data_dir):
    _history(data_dir)
    run = [sys.executable, "-m", "coachnb", "commit", "list", str(data_dir), "--active-on"]
    now = subprocess.run(run + ["2026-10-01"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert now.returncode == 0, now.stderr
    lines = now.stdout.splitlines()
    assert lines[0].split()[:3] == ["commitment", "rep", "metric"] and len(lines) == 2  # K0004 not yet running
    assert "K0003" in lines[1] and "running, ends 2026-11-06" in lines[1] and "<NA>" not in now.stdout
    every = subprocess.run(run[:-1] + ["--all"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert [line.split()[0] for line in every.stdout.splitlines()[1:]] == ["K0001", "K0002", "K0003", "K0004"]
    none = subprocess.run(run + ["2027-06-01"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert none.stdout.strip() == "no commitments running on 2027-06-01"


def test_cli_commit_list_of_an_unknown_rep_says_which_was_meant(data_dir):
    _history(data_dir)
    out = subprocess.run([sys.executable, "-m", "coachnb", "commit", "list", str(data_dir), "--rep", "r001"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2 and "did you mean R001?" in out.stderr and out.stdout == ""
