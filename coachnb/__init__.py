"""coachnb: process-based sales coaching reports from CRM data.

The public API for analysts::

    import coachnb
    ds = coachnb.load("data/sample")          # validated Dataset, or DataError listing every problem
"""
from .config import ProcessConfig, load_config
from .errors import CoachnbError, ConfigError, DataError, Problem
from .schema import TABLES, Dataset

__version__ = "0.1.0"


def load(data_dir, **kwargs):
    """Load and validate a data folder; see :func:`coachnb.loading.load`."""
    from .loading import load as _load

    return _load(data_dir, **kwargs)


__all__ = ["CoachnbError", "ConfigError", "DataError", "Dataset", "ProcessConfig", "Problem", "TABLES",
           "load", "load_config", "__version__"]
