"""What the analyst's workbooks (``notebooks/*.ipynb``) compute, so their cells only call and show.

Each workbook is a thin notebook: a ``parameters`` cell, then one call per cell into this module
(or the report's own modules) and a chart or table of the result. Every function here takes plain
values and returns a DataFrame or a small dataclass of DataFrames, so a cell's result can be
inspected, filtered and plotted by hand in JupyterLab.

The one rule every workbook shares is :func:`data_folder`: a relative data path is found from the
working directory or any folder above it, so ``data/sample`` works when papermill runs from the
repository root and when JupyterLab runs the notebook from ``notebooks/``.
"""
from __future__ import annotations

from pathlib import Path

from .errors import DataError, Problem

#: the demo team's folder, relative to the repository root (``make sample`` writes it)
SAMPLE_DATA = "data/sample"


def data_folder(data_dir: str | Path = SAMPLE_DATA, start: str | Path | None = None) -> Path:
    """The data folder a workbook's ``data_dir`` parameter names.

    Parameters
    ----------
    data_dir : str or Path
        An absolute path is taken as it is. A relative one is looked for in ``start`` and then in
        each folder above it, nearest first, so the default ``data/sample`` is found from the
        repository root and from ``notebooks/`` alike.
    start : str or Path, optional
        Where to start looking; the working directory when not given.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    DataError
        When no such folder exists (rule ``missing_folder``), naming where it was looked for.
    """
    wanted = Path(str(data_dir).strip() or SAMPLE_DATA).expanduser()
    if wanted.is_absolute():
        if wanted.is_dir():
            return wanted
        places = [wanted]
    else:
        here = Path(start if start is not None else Path.cwd()).resolve()
        places = [folder / wanted for folder in (here, *here.parents)]
        for place in places:
            if place.is_dir():
                return place
    hint = ("pass data_dir, the folder holding reps.csv and opportunities.csv"
            + ("; `make sample` writes the demo team to data/sample" if str(wanted) == SAMPLE_DATA else ""))
    looked = ", ".join(str(p) for p in places[:3]) + (" and the folders above" if len(places) > 3 else "")
    raise DataError([Problem(str(data_dir), None, None, None, "missing_folder",
                             f"the data folder does not exist (looked in {looked})", hint)], str(data_dir))
