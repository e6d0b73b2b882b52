"""Numbers and text as a report shows them: one place for every format a sentence or table uses.

A leaf of the package: metrics, statistics, the coaching analyses and the report all write
sentences, so they all format through here. Each function states its rule; a missing or
non-finite value is always ``"n/a"``.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Currency:
    """How an amount is written: the currency's sign, on which side, and the thousands separator.

    ``process.toml``'s ``[presentation]`` section sets it (:mod:`coachnb.config`); the default
    names no currency and writes ``12,900``, as reports did before a team could set one.

    Attributes
    ----------
    symbol : str
        What stands beside the number: ``"£"``, ``"$"``, ``"CHF"``; ``""`` names no currency.
    before : bool
        ``"£12,900"`` (True) or ``"12 900 kr"`` (False).
    thousands : str
        Between groups of three digits: ``","``, ``"."``, ``" "``, ``"'"`` or ``""``.
    """

    symbol: str = ""
    before: bool = True
    thousands: str = ","

    def write(self, digits: str) -> str:
        """``digits`` (Python's ``"12,900"`` form) with this separator and symbol."""
        text = digits.replace(",", self.thousands)
        if not self.symbol:
            return text
        # a sign of letters ("CHF", "kr") is a word and needs a space; "£" and "$" sit on the number
        space = "\u00a0" if any(ch.isalpha() for ch in self.symbol) else ""
        if not self.before:
            return f"{text}\u00a0{self.symbol}"
        sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
        return f"{sign}{self.symbol}{space}{text}"


#: the symbol each common ISO 4217 code is written with; any other code is written as itself
CURRENCY_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
                    "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "MXN": "MX$",
                    "BRL": "R$", "ILS": "₪", "TRY": "₺", "PLN": "zł", "NGN": "₦", "PHP": "₱", "VND": "₫"}

#: the amount a report shows is one recorded figure or a sum of them ("recorded", whole units), a
#: mean or median over deals ("average", three significant figures: 49,838 -> 49,800) or a model's
#: estimate ("estimate", two, as :func:`fmt_estimate`); more digits would claim what the data can't
MONEY_SIGNIFICANT = {"recorded": None, "average": 3, "estimate": 2}


def _significant(x: float, digits: int) -> float:
    """``x`` rounded to ``digits`` significant figures, never below whole units."""
    if x == 0:
        return 0.0
    places = digits - 1 - int(np.floor(np.log10(abs(x))))
    return round(float(x), min(places, 0))


def fmt_money(x, currency: Currency | None = None, *, kind: str = "recorded") -> str:
    """An amount in the team's currency, rounded to what ``kind`` of figure it is.

    Parameters
    ----------
    x : number
        The amount; missing or infinite gives ``"n/a"``.
    currency : Currency, optional
        The team's currency (``ProcessConfig.presentation.currency``); ``None`` names none and
        separates thousands with ``","``: ``fmt_money(12900.4) == "12,900"``.
    kind : {"recorded", "average", "estimate"}
        A recorded amount or a sum of them is shown in whole units; a mean or median to three
        significant figures; a model's estimate to two (:data:`MONEY_SIGNIFICANT`).

    Returns
    -------
    str
        E.g. ``"£12,900"``, ``"49.800 €"``, ``"CHF 12'900"``.
    """
    if kind not in MONEY_SIGNIFICANT:
        raise ValueError(f"kind must be one of {', '.join(MONEY_SIGNIFICANT)}, not {kind!r}")
    if _missing(x):
        return "n/a"
    digits = MONEY_SIGNIFICANT[kind]
    value = float(x) if digits is None else _significant(float(x), digits)
    text = f"{value:,.0f}"
    if text == "-0":
        text = "0"
    return (currency or Currency()).write(text)


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
