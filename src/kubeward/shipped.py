"""Where the data files kubeward ships (`kubeward/data/`) are read from: one path for every reader.

A path beside this module rather than `importlib.resources`: the package is installed as files (a wheel or an
editable install), and `importlib.resources` with its zip readers costs ~2 ms of every scan's start-up.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"


def data_file(name: str) -> Path:
    """The shipped data file `name` (`deprecated_apis.json`, …)."""
    return DATA / name
