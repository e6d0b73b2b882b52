"""Corrupted input: load either succeeds or raises DataError naming the file -- nothing else."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coachnb import DataError
from coachnb.commitments import add_commitment
from coachnb.errors import CoachnbError
from coachnb.loading import load, validate
from coachnb.schema import TABLES

sys.path.insert(0, str(Path(__file__).parent))
from datafolders import clean_tables, write_folder  # noqa: E402

FILES = {f"{name}.csv" for name in TABLES} | {f"{name}.parquet" for name in TABLES}
NASTY = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "00123", "2026-02-30", "31/31/2026",
         "2026-13-01", "0001-01-01", "9999-12-31 23:59", "1.2.3", "$", "€1.000,00", "\x00", "é", "\ufeff",
         '"', '""', "a,b", "a;b", "\t", "\r\n", "x" * 5000, "R007", "O1", "K1", "call", "Closed Won", "won",
         "46096", "12/13/2026", "13/12/2026", "2026-05-04T10:30:00+99:00", "🙂"]

cell = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
table_name = st.sampled_from(sorted(TABLES))


@st.composite
def corruption(draw):
    """One way to break the clean folder: a (kind, table, details) triple."""
    kind = draw(st.sampled_from(["cell", "drop_column", "duplicate_row", "empty_file", "truncate",
                                 "random_bytes", "drop_file", "header_only", "huge_text", "swap_ids"]))
    return kind, draw(table_name), draw(st.integers(0, 10)), draw(cell), draw(st.binary(max_size=200))


def apply(path: Path, tables: dict, fault) -> dict:
    kind, name, index, value, blob = fault
    rows = tables[name]
    if rows is None:  # the file was dropped by an earlier fault: nothing left to corrupt
        return tables
    cols = TABLES[name].column_names
    if kind == "cell" and rows:
        rows[index % len(rows)][cols[index % len(cols)]] = value
    elif kind == "drop_column":
        for r in rows:
            r.pop(cols[index % len(cols)], None)
    elif kind == "duplicate_row" and rows:
        rows.append(dict(rows[index % len(rows)]))
    elif kind == "drop_file":
        tables[name] = None
    elif kind == "header_only":
        tables[name] = []
    elif kind == "huge_text" and rows:
        rows[0][cols[index % len(cols)]] = value * 2000
    elif kind == "swap_ids" and rows:
        rows[index % len(rows)][cols[0]] = "dangling-" + str(index)
    return tables


def post_write(path: Path, fault) -> None:
    kind, name, index, value, blob = fault
    file = path / f"{name}.csv"
    if not file.exists():
        return
    if kind == "empty_file":
        file.write_bytes(b"")
    elif kind == "truncate":
        data = file.read_bytes()
        file.write_bytes(data[: max(0, len(data) * index // 11)])
    elif kind == "random_bytes":
        data = file.read_bytes()
        at = len(data) * index // 11
        file.write_bytes(data[:at] + blob + data[at:])


def assert_loads_or_names_files(path: Path) -> None:
    try:
        ds = load(path)
    except DataError as exc:
        assert exc.problems, "DataError without problems"
        errors = [p for p in exc.problems if p.severity == "error"]
        assert errors
        for p in exc.problems:
            assert p.file in FILES or p.file == "process.toml", p
            assert p.row is None or p.row >= 1, p
            assert p.column is None or p.column in TABLES[Path(p.file).stem].column_names, p
            assert p.rule and p.message
        return
    # a successful load keeps the contract
    for name, table in TABLES.items():
        assert list(ds.table(name).columns) == table.column_names
    assert set(ds.excluded.columns) == {"file", "row", "reason"}


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(corruption(), min_size=1, max_size=3))
def test_corrupted_folders_load_or_raise_data_error(tmp_path_factory, faults):
    path = tmp_path_factory.mktemp("fuzz")
    tables = clean_tables()
    for fault in faults:
        tables = apply(path, tables, fault)
    write_folder(path, tables)
    for fault in faults:
        post_write(path, fault)
    assert_loads_or_names_files(path)
    report = validate(path)  # the same rules: validate never raises either
    assert report.ok == (not report.errors)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=table_name, blob=st.binary(min_size=0, max_size=400))
def test_random_bytes_as_a_file(tmp_path_factory, name, blob):
    path = write_folder(tmp_path_factory.mktemp("bytes"))
    (path / f"{name}.csv").write_bytes(blob)
    assert_loads_or_names_files(path)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=table_name, blob=st.binary(min_size=0, max_size=400), cut=st.integers(0, 100))
def test_damaged_parquet(tmp_path_factory, name, blob, cut):
    path = write_folder(tmp_path_factory.mktemp("pq"), parquet=tuple(TABLES))
    data = (path / f"{name}.parquet").read_bytes()
    (path / f"{name}.parquet").write_bytes(data[: len(data) * cut // 100] + blob)
    assert_loads_or_names_files(path)


def test_parquet_with_numeric_ids_and_wrong_types(tmp_path):
    """Typed Parquet columns that do not fit the schema are converted or named, never crash."""
    path = write_folder(tmp_path, parquet=())
    (path / "reps.csv").unlink()
    reps = pd.DataFrame({"rep_id": [123, 7, 8], "name": ["a", "b", "c"], "team": [1.5, None, 2.0],
                         "manager": [True, False, True], "hire_date": [20240304, 0, -1]})
    reps.to_parquet(path / "reps.parquet")
    try:
        load(path)
    except DataError as exc:
        assert any(p.file == "reps.parquet" and p.column == "hire_date" for p in exc.problems)


# --------------------------------------------------------------------------- commit add


FORMULAS = ["=1+1", "+SUM(A1)", "-2", "@x", "\t=x", "\r=x", "=HYPERLINK(\"http://e.vil\")", "\x1b[2J", "\x00",
            "a\x85b", "\u2028", "'", '"', ";", "|", "🙂", "é"]
date_text = st.one_of(
    st.dates().map(lambda d: d.isoformat()),                     # years 1 to 9999
    st.dates(date(1890, 1, 1), date(2110, 12, 31)).map(lambda d: d.isoformat()),  # around the range's ends
    st.integers(0, 99999).map(lambda y: f"{y:04d}-06-01"),
    st.sampled_from(["2026-09-01", "2100-12-31", "1900-01-01", "2261-12-31", "2262-04-11", "1677-09-21",
                     "20260901", "2026-W36-1", "2026-02-30"] + NASTY),
    st.text(max_size=12))
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**400),
    st.sampled_from(["7", "0.5", "1e308", "1e309", "-0", "1,5", "auto", "", "nan", "inf"]), st.text(max_size=8))
free_text = st.one_of(st.none(), st.sampled_from(FORMULAS), st.text(max_size=30),
                      st.lists(st.sampled_from(FORMULAS + ["x", " "]), max_size=6).map("".join))


@st.composite
def commit_call(draw):
    """Keyword arguments of one ``add_commitment`` call: a plausible call with up to three
    arguments replaced by absurd values (so that some calls get written), free text always drawn."""
    absurd = {
        "rep_id": st.one_of(st.sampled_from(["00123", "R008", "R999", "", " R007 ", None]), st.text(max_size=6)),
        "metric": st.one_of(st.sampled_from(["demos_per_week", "logged_on_time_share", "smiles_per_week", ""]),
                            st.text(max_size=6)),
        "target": number, "baseline": number, "start": date_text, "agreed_on": st.one_of(st.none(), date_text),
        "days": st.one_of(st.integers(-5, 10**30), st.sampled_from([7, 120, "30", 7.5, float("inf")]), number),
        "supersedes": st.one_of(st.sampled_from(["", "K1", "K2", "K0099"]), st.text(max_size=4)),
    }
    call = dict(rep_id="R007", metric="calls_per_week", target="10", baseline="5", start="2026-09-01",
                agreed_on="2026-09-01", days=30, supersedes=None,
                follow_up=draw(free_text), note=draw(free_text))
    for name in draw(st.sets(st.sampled_from(sorted(absurd)), max_size=3)):
        call[name] = draw(absurd[name])
    return call


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=commit_call(), layout=st.sampled_from([("utf-8", ","), ("utf-16", ";"), ("utf-8-sig", "\t"),
                                                   ("utf-8", "|")]))
def test_commit_add_either_writes_a_loadable_folder_or_raises_a_clean_error(tmp_path_factory, call, layout):
    encoding, sep = layout
    path = write_folder(tmp_path_factory.mktemp("commit"), encoding=encoding, sep=sep)
    before = (path / "commitments.csv").read_bytes()
    try:
        row = add_commitment(path, **call)
    except CoachnbError:
        event("refused")
        assert (path / "commitments.csv").read_bytes() == before  # a refused call changes nothing
        return
    event("written")
    ds = load(path)  # never a row that makes the folder invalid
    assert ds.commitments["commitment_id"].tolist() == ["K1", "K2", row["commitment_id"]]
    for column in ("note", "follow_up"):
        stored = row[column] or ""
        assert not stored.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert not any(ord(ch) < 32 for ch in stored)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=date_text, agreed_on=date_text, days=st.integers(7, 120))
def test_commit_add_with_drawn_dates_writes_only_what_loads(tmp_path_factory, start, agreed_on, days):
    """Every other argument valid: the dates alone decide, by the loader's range rule."""
    path = write_folder(tmp_path_factory.mktemp("commitdate"))
    try:
        add_commitment(path, rep_id="R007", metric="calls_per_week", target="10", baseline="5", start=start,
                       days=days, agreed_on=agreed_on)
    except CoachnbError:
        event("refused")
        return
    event("written")
    load(path)
