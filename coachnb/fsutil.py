"""File-system helpers for the batch runner: atomic writes and safe file names.

Reports are read by managers while a batch may be rewriting them, and a batch may be killed
at any moment; a reader must see either the old file or the new one, never half of one.
Rep ids come from a CRM and may hold anything (``../../etc/passwd``, ``CON``, 300 characters),
so they never become file names unchanged.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

#: Names Windows refuses for files (with any extension), plus ``index`` which the team
#: overview uses in every report folder.
RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", "index"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)

def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode of new files, as ``open()`` would create them (``mkstemp`` alone would give 0600).
NEW_FILE_MODE = 0o666 & ~_current_umask()

_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: characters Windows refuses in a file name, and path separators everywhere
_FORBIDDEN_IN_NAME = re.compile(r'[<>:"/\\|?*]')
#: a readable name is cut to this many characters (a path stays far below every system's limit)
READABLE_MAX = 60
_UNSAFE_RUN = re.compile(r"[^a-z0-9_-]+")
_SLUG_MAX = 48
_HASH_CHARS = 10


def safe_filename(rep_id: str) -> str:
    """Map a rep id to a file-name stem that is safe on every common file system.

    An id that is already a plain lower-case name (``[a-z0-9][a-z0-9_-]*``, at most 64
    characters, not a reserved device name) is kept as it is. Any other id becomes a
    lower-case slug followed by ``.`` and a short hash of the *exact* id, so ids that
    differ only by case, or that slug to the same text, still get distinct names, also on
    case-insensitive file systems. A plain name never contains ``.``, so it can never equal
    a hashed name either.

    Parameters
    ----------
    rep_id : str
        The rep id exactly as it appears in the data.

    Returns
    -------
    str
        A stem without directory separators, without leading dots, of at most 64 characters.

    Examples
    --------
    >>> safe_filename("r007")
    'r007'
    >>> safe_filename("../../etc/passwd")  # doctest: +ELLIPSIS
    'etc_passwd....'
    """
    if not isinstance(rep_id, str):
        raise TypeError(f"rep_id must be a str, not {type(rep_id).__name__}")
    if _PLAIN_NAME.fullmatch(rep_id) and rep_id not in RESERVED_NAMES:
        return rep_id
    slug = _UNSAFE_RUN.sub("_", rep_id.lower()).strip("_-")[:_SLUG_MAX].strip("_-") or "rep"
    if slug in RESERVED_NAMES:  # Windows also refuses "con.<anything>"
        slug += "_"
    digest = hashlib.sha256(rep_id.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{slug}.{digest}"


def readable_filename(text: str, fallback: str) -> str:
    """A person's name (or any text from the data) as a file or folder name a person can read.

    The text is NFC-normalised; control and format characters (bidirectional overrides,
    zero-width marks) are dropped; characters Windows refuses (``<>:"/\\|?*``) become ``-``;
    runs of white space become one space; leading dots and trailing dots and spaces go; the
    result is cut to :data:`READABLE_MAX` characters. A name Windows reserves (``CON``,
    ``nul.txt``, ...) gets a trailing ``_``.

    Parameters
    ----------
    text : str
        The name, e.g. ``"Priya Natarajan"``.
    fallback : str
        Used when nothing readable is left (``fallback`` itself must be a safe name).

    Returns
    -------
    str
        Never empty, never a path. Two different texts can give the same name, and on a
        case-insensitive file system names differing by case collide: the caller makes the
        names of one folder unique (see :func:`coachnb.batch.report_files`).

    Examples
    --------
    >>> readable_filename("Priya Natarajan", "r001")
    'Priya Natarajan'
    >>> readable_filename("  ../A/B: C?  ", "r001")
    'A-B- C-'
    """
    clean = unicodedata.normalize("NFC", str(text))
    clean = "".join(" " if ch.isspace() else ch for ch in clean
                    if ch.isspace() or unicodedata.category(ch)[0] not in "CZ")
    clean = " ".join(_FORBIDDEN_IN_NAME.sub("-", clean).split())
    clean = clean.lstrip(". -")[:READABLE_MAX].rstrip(". ")
    if not clean:
        return fallback
    if clean.split(".")[0].strip().lower() in RESERVED_NAMES - {"index"}:
        clean += "_"
    return clean


def path_inside(base_dir: str | os.PathLike, name: str) -> Path:
    """Join ``name`` to ``base_dir`` and check that the result stays inside ``base_dir``.

    Raises
    ------
    ValueError
        If the resolved path escapes ``base_dir`` (``..``, absolute names, symlinks out).
    """
    base = Path(base_dir).resolve()
    path = (base / name).resolve()
    if path == base or not path.is_relative_to(base):
        raise ValueError(f"refusing to write {name!r}: it resolves outside {base}")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same directory, which is flushed, fsynced and
    then renamed over ``path`` with :func:`os.replace` (atomic on POSIX and Windows). On any
    error the temporary file is removed and ``path`` is left untouched.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                mode = path.stat().st_mode & 0o777  # a rewrite keeps the file's permissions
            except FileNotFoundError:
                mode = NEW_FILE_MODE
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Text version of :func:`atomic_write_bytes` (no newline translation)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
