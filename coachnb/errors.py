"""Exceptions and the problem record shared by loading, validation and the batch runner."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in the input data.

    Attributes
    ----------
    file : str
        File name as the user sees it (e.g. ``activities.csv``).
    row : int or None
        Row number as the user sees it in a spreadsheet: the header is row 1, so the
        first data row is row 2. ``None`` when the problem concerns the whole file.
    column : str or None
        Column name, or ``None`` when the problem is not about one column.
    value : str or None
        The offending value, shortened for display.
    rule : str
        Short name of the rule broken (e.g. ``unparseable_date``).
    message : str
        What is wrong, in plain words.
    hint : str
        What to do about it.
    severity : str
        ``"error"`` (loading fails) or ``"warning"`` (loading goes on).
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    message: str
    hint: str = ""
    severity: str = "error"

    def format(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column '{self.column}'"
        text = f"{self.severity.upper()}: {where}: {self.message} [{self.rule}]"
        if self.value is not None:
            text += f" (value: {self.value!r})"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return asdict(self)


class CoachnbError(Exception):
    """Base class of every error coachnb raises on purpose."""


class ConfigError(CoachnbError):
    """``process.toml`` is missing a required value or holds one that makes no sense."""


class DataError(CoachnbError):
    """The input data breaks the data contract.

    Carries *every* problem found, not just the first, so a user can fix a file in one pass.
    """

    def __init__(self, problems: list[Problem], data_dir: str | None = None):
        self.problems = list(problems)
        self.data_dir = data_dir
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{len(errors)} problem(s) in the data"
        if data_dir:
            head += f" at {data_dir}"
        shown = "\n".join(p.format() for p in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{head}:\n{shown}{more}")


class RepNotFound(CoachnbError):
    """The requested rep_id is not in ``reps``."""


class AsOfError(CoachnbError):
    """A coaching date the data can't cover: its report period runs past the data's last record."""
