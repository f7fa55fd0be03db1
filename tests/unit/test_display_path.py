"""display_path: the file names of the JSON contract, relative below the working directory, else absolute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubeward.formats.paths import display_path


def test_below_the_working_directory_is_relative_even_when_a_name_starts_with_two_dots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_path(str(tmp_path / "..cache" / "audit.log")) == os.path.join("..cache", "audit.log")
    assert display_path(str(tmp_path / "logs" / "audit.log")) == os.path.join("logs", "audit.log")


def test_outside_the_working_directory_stays_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    outside = str(tmp_path / "other" / "audit.log")
    assert display_path(outside) == outside
    assert display_path(str(tmp_path)) == str(tmp_path)  # the parent itself (relpath "..")
    assert display_path("./a/../b.log") == "b.log"  # a relative name is only normalised
