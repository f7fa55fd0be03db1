"""Shared test helpers: run the real pipeline on files, and invoke the CLI in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _cwd_is_repo_root() -> None:
    """Tests name repository files relative to its root (upstream fixtures: tests/vendored.py)."""
    os.chdir(ROOT)


@pytest.fixture(autouse=True)
def _no_user_vulndata(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vulns` prefers data a user stored with `vulns update`; tests judge with the shipped snapshot only."""
    monkeypatch.setenv("KUBEWARD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kubeward-cache"))
