"""coachnb: process-based sales coaching reports from CRM data.

The public API for analysts::

    import coachnb
    ds = coachnb.load("data/sample")          # validated Dataset, or DataError listing every problem
"""
from .config import ProcessConfig, load_config
from .errors import CoachnbError, ConfigError, DataError, Problem
from .schema import TABLES, Dataset
from .version import __version__


#: the analyst's entry points, imported on first use so that ``import coachnb`` stays light; the
#: names are the functions themselves, so ``help(coachnb.rep_report)`` shows their own documentation
LAZY = {"load": ("loading", "load"), "rep_report": ("report", "rep_report"),
        "team_overview": ("overview", "team_overview"), "coaching_record": ("record", "coaching_record")}


def __getattr__(name):
    if name not in LAZY:
        raise AttributeError(f"module 'coachnb' has no attribute {name!r}")
    module, attribute = LAZY[name]
    from importlib import import_module  # imported on use: only the first lazy name needs it

    value = getattr(import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


__all__ = ["rep_report", "team_overview", "coaching_record", "CoachnbError", "ConfigError", "DataError", "Dataset",
           "ProcessConfig", "Problem", "TABLES", "load", "load_config", "__version__"]
