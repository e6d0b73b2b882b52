"""Shared fixtures: the demo team, generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_AS_OF = "2026-11-23"


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The default demo team (24 reps, 78 weeks), written once into a temporary folder."""
    from coachnb.demo import write_demo_data

    return Path(write_demo_data(tmp_path_factory.mktemp("sample"), end=DEMO_AS_OF))


@pytest.fixture(scope="session")
def sample_ds(sample_dir):
    import coachnb

    return coachnb.load(sample_dir)


@pytest.fixture(scope="session")
def repo_sample_dir() -> Path:
    """``data/sample`` in the repository, as the notebooks' defaults expect it (built if missing)."""
    from coachnb.demo import write_demo_data

    target = REPO / "data" / "sample"
    if not (target / ".done").exists():
        write_demo_data(target, end=DEMO_AS_OF)
        (target / ".done").touch()
    return target
