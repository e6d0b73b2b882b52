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

from .errors import CoachnbError, DataError, Problem

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


# --------------------------------------------------------------------------- from plan to record


def proposed_commitment(report) -> dict | None:
    """The commitment a rep's report proposes in its 30-day plan.

    Parameters
    ----------
    report : coachnb.report.RepReport

    Returns
    -------
    dict or None
        ``metric`` (an id of the team's commitment metrics), ``label``, ``baseline`` and
        ``target`` (weekly levels, as the plan shows them); None when the plan proposes nothing
        (its ``note`` says why).
    """
    suggested = (report.plan or {}).get("suggested")
    if not suggested:
        return None
    return {k: suggested[k] for k in ("metric", "label", "baseline", "target")}


def record_plan(data_dir, rep_id: str, as_of="", start=None, days: int = 30, target=None, agreed_on=None,
                follow_up=None, note=None, supersedes=None) -> dict:
    """Record the commitment the rep's report proposes, as ``coachnb plan`` does.

    Builds the manager's report for ``rep_id`` on ``as_of`` (the very plan the report shows) and
    appends its proposed commitment with :func:`coachnb.commitments.add_commitment`.

    Parameters
    ----------
    data_dir : str or Path
        The data folder (the commitment is written to its ``commitments.csv``).
    rep_id : str
    as_of : str, optional
        Date of the 1:1 whose report proposes the plan; empty: the latest date the data covers.
    start, agreed_on : str or date, optional
        First day and date of agreement; both default to the date of the 1:1.
    days : int
        Length in days (7 to 120); the report's plan is for 30.
    target : float, optional
        The agreed weekly level when it differs from the report's draft target.
    follow_up, note, supersedes : str, optional
        As for :func:`coachnb.commitments.add_commitment`.

    Returns
    -------
    dict
        The row written, with its ``warnings`` (see :func:`coachnb.commitments.add_commitment`).

    Raises
    ------
    CoachnbError
        An unknown rep (with the closest id), a missing folder, a date the data can't cover, or a
        report whose plan proposes no commitment (its note says why); nothing is written then.
    """
    # imported on use: the report loads every analysis, which data_folder's callers don't need
    from .commitments import add_commitment, check_selection
    from .report import rep_report

    if not Path(data_dir).is_dir():
        raise DataError([Problem(str(data_dir), None, None, None, "missing_folder",
                                 "the data folder does not exist", "pass the folder holding reps.csv")],
                        str(data_dir))
    check_selection(data_dir, reps=[str(rep_id)])
    report = rep_report(data_dir, str(rep_id).strip(), as_of or None)
    proposed = proposed_commitment(report)
    if proposed is None:
        raise CoachnbError(f"the report for {rep_id} on {report.header.as_of:%Y-%m-%d} proposes no commitment "
                           f"({report.plan.get('note') or 'no suggestion'}); record the one you agree on with "
                           "coachnb commit add")
    day = report.header.as_of.strftime("%Y-%m-%d")
    return add_commitment(data_dir, str(rep_id).strip(), proposed["metric"],
                          proposed["target"] if target is None else target, baseline=proposed["baseline"],
                          start=start or day, days=days, agreed_on=agreed_on or day, follow_up=follow_up,
                          note=note, supersedes=supersedes)
