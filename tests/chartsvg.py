"""A chart saved as the reports save it, as SVG text, for the chart tests."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt

from coachnb import plots
from coachnb.display import SVG_METADATA, SVG_RC


def svg_text(fig, ours: bool = True) -> str:
    """``fig`` as SVG text with the reports' settings (closed after); ``ours``: through the reports'
    canvas (:class:`coachnb.plots.ReportSVGCanvas`), else matplotlib's own."""
    if ours:
        plots.ReportSVGCanvas(fig)
    buf = io.StringIO()
    with plt.rc_context(SVG_RC):
        fig.savefig(buf, format="svg", metadata=SVG_METADATA)
    plt.close(fig)
    return buf.getvalue()
