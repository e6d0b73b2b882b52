"""Show report sections in a notebook: escaped HTML for text and tables, figures for charts.

Everything that came from the data passes through :func:`coachnb.report.esc` or
``DataFrame.to_html(escape=True)``: a deal named ``<script>`` shows as text.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

from .report import esc


def para(text: str, css: str = "") -> None:
    """One paragraph of plain text (escaped)."""
    cls = f' class="{css}"' if css else ""
    display(HTML(f"<p{cls}>{esc(text)}</p>"))


def key_sentence(text: str) -> None:
    """The one sentence that closes a block: what stands out, or that nothing does."""
    para(text, "cnb-key")


def bullets(items: list[str], css: str = "") -> None:
    if not items:
        return
    cls = f' class="{css}"' if css else ""
    display(HTML(f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"))


def table(frame: pd.DataFrame, *, formats: dict | None = None, caption: str | None = None) -> None:
    """A small table, escaped, without the index."""
    f = frame.copy()
    for col, fn in (formats or {}).items():
        if col in f.columns:
            f[col] = f[col].map(fn)
    html = f.to_html(index=False, escape=True, border=0, classes="cnb-table", na_rep="–")
    if caption:
        html = html.replace(">\n  <thead>", f">\n  <caption>{esc(caption)}</caption>\n  <thead>", 1)
    display(HTML(html))


def figure(fig: plt.Figure) -> None:
    """Show a figure once and free it (a batch renders hundreds)."""
    display(fig)
    plt.close(fig)


def definition_list(pairs: list[tuple[str, str]]) -> None:
    display(HTML('<dl class="cnb-facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
                 + "</dl>"))


def blank_lines(labels: list[str]) -> None:
    """Lines to fill in by hand (the 30-day plan prints well)."""
    display(HTML('<div class="cnb-fill">' + "".join(
        f'<p><span class="cnb-label">{esc(label)}</span><span class="cnb-line"></span></p>' for label in labels)
        + "</div>"))
