"""Numbers and text as a report shows them: one place for every format a sentence or table uses.

A leaf of the package: metrics, statistics, the coaching analyses and the report all write
sentences, so they all format through here. Each function states its rule; a missing or
non-finite value is always ``"n/a"``.
"""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

#: between two stages in a step's name: "Discovery → Proposal"
STEP_ARROW = "→"


def _missing(x) -> bool:
    """None, NaN, NA or infinite: nothing a sentence can state."""
    if x is None or x is pd.NA:
        return True
    try:
        return not np.isfinite(x)
    except TypeError:
        return bool(pd.isna(x))


def esc(text) -> str:
    """Any text that came from the data, escaped before it reaches HTML (``None``/NaN -> "")."""
    return html.escape("" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text))


def fmt_num(x, digits: int = 1) -> str:
    """A count or level: whole numbers with thousands separators, others with ``digits`` decimals."""
    if _missing(x):
        return "n/a"
    if abs(x - round(x)) < 1e-9:
        return f"{int(round(x)):,}"
    return f"{x:,.{digits}f}"


def fmt_level(x) -> str:
    """A weekly level in a target or plan ("10", "2.5"): no decimals within 0.05 of a whole number."""
    if _missing(x):
        return "n/a"
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def fmt_figure(x) -> str:
    """A measured figure in a flag: thousands separators; one decimal only below 100 and not whole."""
    if _missing(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 or abs(x) >= 100 else f"{x:,.1f}"


def fmt_rate(x) -> str:
    """A rate per week in a statistical sentence: one decimal, two below 1."""
    if _missing(x):
        return "n/a"
    return f"{x:.2f}" if abs(x) < 1 else f"{x:.1f}"


def fmt_money(x) -> str:
    """An amount in the team's currency, whole units with thousands separators."""
    if _missing(x):
        return "n/a"
    return f"{x:,.0f}"


def fmt_estimate(x) -> str:
    """A model's estimate, rounded to two significant figures: 38,707 -> "39,000", 4.26 -> "4.3".

    A modeled figure is never more precise than that; five digits would claim what the model can't.
    """
    if _missing(x):
        return "n/a"
    if x == 0:
        return "0"
    digits = 1 - int(np.floor(np.log10(abs(x))))
    value = round(float(x), digits)
    return f"{value:,.{max(digits, 0)}f}"


def fmt_pct(x) -> str:
    """A share in [0, 1] as a whole percentage: 0.237 -> "24%"."""
    if _missing(x):
        return "n/a"
    return f"{100 * x:.0f}%"


def fmt_times(x) -> str:
    """A multiple, e.g. pipeline coverage: '2.6×'."""
    text = fmt_num(x)
    return text if text == "n/a" else text + "×"


def fmt_ratio(x) -> str:
    """A rate ratio: two decimals below 1.95, one above ("0.85×", "2.4×")."""
    if _missing(x):
        return "n/a"
    return f"{x:.2f}×" if x < 1.95 else f"{x:.1f}×"


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, with an "s" unless ``n`` is 1: "1 week", "3 weeks"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# Characters that steer a terminal rather than print: C0 controls (ESC starts colour, cursor and
# title sequences; CR and BS overwrite what was shown), DEL, C1 controls (0x9b is a one-byte CSI),
# the bidi marks, embeddings, overrides and isolates that reorder what follows them ("Trojan
# source"), the Unicode line and paragraph separators, and lone surrogates (bytes of a file name
# that were not UTF-8; printing them raises UnicodeEncodeError).
_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029"
                              "\u2066-\u2069\ud800-\udfff]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_one(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text, *, keep_newlines: bool = False) -> str:
    """Text that came from the data, made safe to print on a terminal: it shows, it never steers.

    Control characters (C0, DEL, C1, so also ESC and every escape sequence it would start), bidi
    controls, line/paragraph separators and lone surrogates are written as Python-style escapes
    (``\\x1b``, ``\\n``, ``\\u202e``); everything else, accented letters, CJK, emoji and the
    report's own "→" and "×", is kept as it is. Backslashes are kept too, so ``\\x1b`` typed
    literally in the data reads the same as an escaped ESC: the text is shown, not round-tripped.

    Parameters
    ----------
    text : object
        Any value; ``None`` gives ``""``, anything else goes through ``str``.
    keep_newlines : bool
        Keep ``"\\n"`` as a line break, for messages of several lines that coachnb built itself
        (a line break only starts a new line; it cannot hide or rewrite what was printed).

    Returns
    -------
    str
        The escaped text.

    Examples
    --------
    >>> terminal_safe("Ana\\x1b[2J")
    'Ana\\\\x1b[2J'
    >>> terminal_safe("Zoë 日本")
    'Zoë 日本'
    """
    text = "" if text is None else str(text)
    if keep_newlines:
        return "\n".join(_TERMINAL_UNSAFE.sub(_escape_one, line) for line in text.split("\n"))
    return _TERMINAL_UNSAFE.sub(_escape_one, text)
