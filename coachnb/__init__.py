"""coachnb: process-based sales coaching reports from CRM data.

The public API for analysts::

    import coachnb
    ds = coachnb.load("data/sample")          # validated Dataset, or DataError listing every problem
"""
from .config import ProcessConfig, load_config
from .errors import CoachnbError, ConfigError, DataError, Problem
from .schema import TABLES, Dataset
from .version import __version__


def load(data_dir, **kwargs):
    """Load and validate a data folder; see :func:`coachnb.loading.load`."""
    from .loading import load as load_folder  # imported on use: `import coachnb` stays light

    return load_folder(data_dir, **kwargs)


def rep_report(data, rep_id, as_of=None, lookback_weeks=13, audience="manager"):
    """Everything one rep's report shows; see :func:`coachnb.report.rep_report`."""
    from .report import rep_report as build_report  # imported on use: `import coachnb` stays light

    return build_report(data, rep_id, as_of, lookback_weeks, audience)


__all__ = ["rep_report", "CoachnbError", "ConfigError", "DataError", "Dataset", "ProcessConfig", "Problem", "TABLES",
           "load", "load_config", "__version__"]
