"""`rbac risks` output: the same bytes on every run (sorted, no hash-order dependence) and lines that fit the
terminal (80..200 columns) without breaking a name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeward.cli.rbac import terminal_width, wrapped_table

DATA = "tests/data/rbac/cluster"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _risks(seed: str, columns: int, *extra: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed, "COLUMNS": str(columns), "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "rbac", "risks", "-f", DATA, *extra],
                         capture_output=True, env=env, check=False)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


def test_same_bytes_whatever_the_hash_seed() -> None:
    runs = {_risks(seed, 120, "--include-defaults") for seed in ("0", "1", "4242")}
    assert len(runs) == 1 and next(iter(runs))
    assert len({_risks(seed, 120, "-o", "json") for seed in ("0", "7")}) == 1


def _names(text: str) -> set[str]:
    return {w for line in text.splitlines() for w in line.split()}


@pytest.mark.parametrize("columns", [80, 100, 132, 160, 200])
def test_lines_fit_the_terminal_and_names_stay_whole(columns: int) -> None:
    text = _risks("0", columns).decode()
    wide = _risks("0", 200).decode()
    assert max(len(line) for line in text.splitlines()) <= columns
    for name in ('"deployer-admin"', "kube-system/deployer", '"ci-launch/kube-system"', "Pod/kube-system/deploy-bot"):
        assert name in _names(text) and name in _names(wide)


def test_wrapped_table_wraps_only_at_spaces() -> None:
    words = "one two three four five six seven eight nine ten"
    text = wrapped_table([(["A"], ["B"]), (["x" * 30], [words])], 50)
    assert max(len(line) for line in text.splitlines()) <= 50
    assert "x" * 30 in text and _names(text) == {"A", "B", "x" * 30, *words.split(" ")}
    narrow = wrapped_table([(["A"], ["B"]), (["y" * 60], ["z" * 60])], 80)  # cannot fit as a table: records
    assert "y" * 60 in narrow and "b: " + "z" * 60 in narrow


def test_terminal_width_is_clamped(monkeypatch: pytest.MonkeyPatch) -> None:
    for cols, want in (("40", 80), ("150", 150), ("500", 200)):
        monkeypatch.setenv("COLUMNS", cols)
        assert terminal_width() == want
