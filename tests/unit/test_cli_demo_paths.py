"""Every command reading `--demo` shows the demo's files as `scan --demo` does: relative to the demo's folder,
never as the absolute path of the installed package."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubeward.cli.common import DEMO_DIR
from kubeward.cli.main import cli

# Arguments a command needs besides --demo to run on it.
ARGS = {
    ("pss", "check"): ["--level", "baseline"],
    ("rbac", "can-i"): ["get", "secrets", "-n", "ops-tools", "--as", "alice"],
    ("rbac", "who-can"): ["get", "secrets"],
    ("rbac", "matrix"): ["--sa", "ops-tools/deployer"],
    ("netpol", "explain"): ["shop-frontend/checkout", "payments/ledger", "--port", "8080"],
}
FLOWS = '{"src": "shop-frontend/storefront", "dst": "payments/ledger", "port": 8080, "protocol": "TCP"}\n'
for _cmd in ("generate", "check-flows"):
    ARGS["netpol", _cmd] = ["--flows", "flows.jsonl"]  # written in the working directory (_elsewhere)


def _demo_commands() -> list[tuple[str, ...]]:
    ctx = click.Context(cli)
    out: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, (*path, name))
        elif any("--demo" in p.opts for p in cmd.params):
            out.append(path)

    walk(cli, ())
    return out


COMMANDS = _demo_commands()


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where a user of the installed package does: far from the demo's folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows.jsonl").write_text(FLOWS)


def test_the_commands_with_demo_are_found() -> None:
    assert {("scan",), ("pss", "check"), ("pss", "namespaces"), ("rbac", "risks"), ("netpol", "lint"),
            ("admission", "test")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_demo_files_are_shown_relative_to_the_demo_folder(path: tuple[str, ...]) -> None:
    r = CliRunner().invoke(cli, [*path, *ARGS.get(path, []), "--demo"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 1), r.output
    out = r.stdout + r.stderr
    assert f"{DEMO_DIR}{os.sep}" not in out and f"demo{os.sep}" not in out  # (scan names the folder: "Files in")


def test_the_demo_files_read_as_scan_shows_them() -> None:
    scan = CliRunner().invoke(cli, ["scan", "--demo", "--details"]).stdout
    pss = CliRunner().invoke(cli, ["pss", "check", "--level", "baseline", "--demo"]).stdout
    assert "ops-tools.yaml:" in scan and "  ops-tools.yaml:2" in pss
