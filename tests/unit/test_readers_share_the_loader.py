"""Every command that reads manifests or config files refuses a recursive alias with one line, never hangs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.agent.allowlist import AllowlistError, load_allowlist
from kubeward.cli.main import cli

RECURSIVE = "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: x, labels: {<<: *m}}\n"


@pytest.mark.parametrize(
    "args",
    [["scan"], ["pss", "check", "--level", "baseline"], ["rbac", "who-can", "get", "pods", "-f"],
     ["netpol", "lint"], ["audit", "policy", "check"], ["encryption", "check"]],
)
def test_recursive_alias_is_one_line_for_every_reader(tmp_path: Path, args: list[str]) -> None:
    f = tmp_path / "rec.yaml"
    f.write_text(RECURSIVE)
    result = CliRunner().invoke(cli, [*args, str(f)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if "rec.yaml" in line]
    assert lines == [f"kubeward: {f}: document 1: line 3: an alias refers to the node anchored here from inside "
                     "it (a recursive document Kubernetes refuses)"]


def test_allowlist_reload_refuses_a_recursive_alias(tmp_path: Path) -> None:
    f = tmp_path / "al.yaml"
    f.write_text("apiVersion: kubeward.io/v1alpha1\nkind: ExecAllowlist\nspec: &s {rules: [*s]}\n")
    with pytest.raises(AllowlistError, match="recursive"):
        load_allowlist(str(f))
