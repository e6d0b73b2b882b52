"""coachnb.workbooks: what the analyst's notebooks compute, tested without running a notebook."""
from __future__ import annotations

from pathlib import Path

import pytest

from coachnb.errors import DataError
from coachnb.workbooks import data_folder


# --------------------------------------------------------------------------- data_folder


def test_a_relative_data_folder_is_found_from_a_subfolder_and_from_the_root(tmp_path):
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    expected = (tmp_path / "data" / "sample").resolve()
    assert data_folder("data/sample", start=tmp_path) == expected
    assert data_folder("data/sample", start=tmp_path / "notebooks") == expected


def test_the_nearest_folder_wins(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks" / "data").mkdir(parents=True)
    assert data_folder("data", start=tmp_path / "notebooks") == (tmp_path / "notebooks" / "data").resolve()


def test_an_absolute_folder_is_taken_as_it_is(tmp_path):
    assert data_folder(tmp_path) == tmp_path
    assert data_folder(str(tmp_path), start="/") == tmp_path


def test_an_empty_parameter_means_the_demo_team(tmp_path):
    (tmp_path / "data" / "sample").mkdir(parents=True)
    assert data_folder("", start=tmp_path / "data") == (tmp_path / "data" / "sample").resolve()


@pytest.mark.parametrize("name", ["nope", "/definitely/not/a/folder"])
def test_a_missing_folder_is_a_data_error_that_names_it(tmp_path, name):
    with pytest.raises(DataError) as caught:
        data_folder(name, start=tmp_path)
    assert caught.value.problems[0].rule == "missing_folder"
    assert name in str(caught.value) and "does not exist" in str(caught.value)


def test_a_file_is_not_a_data_folder(tmp_path):
    (tmp_path / "reps.csv").write_text("rep_id\n")
    with pytest.raises(DataError):
        data_folder("reps.csv", start=tmp_path)
