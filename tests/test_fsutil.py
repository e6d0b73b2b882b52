"""Atomic writes and safe file names for rep ids."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachnb import fsutil
from coachnb.fsutil import (READABLE_MAX, atomic_write_bytes, atomic_write_text, path_inside, readable_filename,
                            safe_filename)


@pytest.mark.parametrize("rep_id", ["r007", "00123", "a_b-c"])
def test_plain_lowercase_ids_are_kept(rep_id):
    assert safe_filename(rep_id) == rep_id


@pytest.mark.parametrize("rep_id", ["../../etc/passwd", "a/b", "a\\b", "..", ".", "", " ", "CON", "con", "nul",
                                    "com1", "LPT9", "index", "x" * 300, "R\u00e9my", "a\x00b", "-x", ".hidden"])
def test_hostile_ids_become_safe_names_inside_the_folder(tmp_path, rep_id):
    name = safe_filename(rep_id)
    assert name and len(name) <= 64
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in ("..", ".")
    assert name.split(".")[0] not in fsutil.RESERVED_NAMES
    assert path_inside(tmp_path, name + ".html").parent == tmp_path.resolve()


def test_ids_differing_only_by_case_get_distinct_case_insensitive_names():
    ids = ["R007", "r007", "R007 ", "r0o7"]
    names = [safe_filename(i).lower() for i in ids]
    assert len(set(names)) == len(ids)


def test_ids_that_slug_alike_stay_distinct_and_names_are_stable():
    ids = ["a/b", "a\\b", "a b", "a_b", "A_B", "a.b"]
    names = [safe_filename(i) for i in ids]
    assert len(set(n.lower() for n in names)) == len(ids)
    assert names == [safe_filename(i) for i in ids]  # deterministic: resume depends on it


def test_an_id_cannot_collide_with_the_rep_audience_suffix():
    # "x" audience rep -> x.rep.html; the id "x.rep" must not produce the same file
    assert safe_filename("x.rep") + ".html" != safe_filename("x") + ".rep.html"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=2, max_size=6, unique=True))
def test_distinct_ids_never_share_a_name(ids):
    names = {safe_filename(i).lower() for i in ids}
    assert len(names) == len(ids)


def test_path_inside_rejects_escapes(tmp_path):
    for bad in ("../x.html", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError):
            path_inside(tmp_path, bad)


def test_atomic_write_replaces_content(tmp_path):
    target = tmp_path / "sub" / "r.html"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two \u00e9")
    assert target.read_text(encoding="utf-8") == "two \u00e9"
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]


def test_new_files_get_the_usual_permissions_and_rewrites_keep_them(tmp_path):
    target = tmp_path / "r.html"
    atomic_write_text(target, "x")
    assert target.stat().st_mode & 0o777 == fsutil.NEW_FILE_MODE
    assert fsutil.NEW_FILE_MODE & 0o044  # readable by others under the common umasks, not 0600
    target.chmod(0o640)
    atomic_write_text(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    target = tmp_path / "r.html"
    target.write_text("old good report")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new report, half written" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old good report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_failed_first_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    target = tmp_path / "new.html"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, expected", [
    ("Priya Natarajan", "Priya Natarajan"),
    ("Zoë  Ångström", "Zoë Ångström"),                       # kept readable, white space folded
    ("../../etc/passwd", "etc-passwd"),                       # no separators, no leading dots
    ('a<b>c:d"e|f?g*h\\i', "a-b-c-d-e-f-g-h-i"),              # what Windows refuses
    ("\u202eevil\u200b name\x00", "evil name"),               # bidi override, zero-width, NUL dropped
    ("Dr. J. ", "Dr. J"),                                     # no trailing dot or space (Windows)
    ("CON", "CON_"), ("nul.txt", "nul.txt_"),                 # Windows device names
    ("...", "r001"), ("", "r001"),                            # nothing readable: the fallback
])
def test_readable_filename(text, expected):
    assert readable_filename(text, "r001") == expected


def test_readable_filename_is_short_and_writable(tmp_path):
    name = readable_filename("Ä" * 300, "r001")
    assert len(name) == READABLE_MAX
    (tmp_path / f"{name} — coaching report 2026-11-23.html").write_text("ok", encoding="utf-8")
