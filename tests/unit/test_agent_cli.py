"""CLI contract for user errors: one line `kubeward: <file or object>: <reason>`, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kubeward.cli.main import cli


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["agent", *args])
    return r.exit_code, r.output


def test_help_lists_commands() -> None:
    code, out = run("--help")
    assert code == 0 and "exec" in out and "flows" in out
    code, out = run("exec", "--help")
    assert code == 0 and "learn" in out and "enforce" in out


def test_enforce_bad_allowlist(tmp_path: Path) -> None:
    bad = tmp_path / "al.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\n")
    code, out = run("exec", "enforce", "--allowlist", str(bad), "--mount", str(tmp_path))
    assert code == 2
    assert out.strip() == f"kubeward: {bad}: apiVersion must be kubeward.io/v1 and kind ExecAllowlist, got 'v1'/'ConfigMap'"


def test_enforce_missing_files(tmp_path: Path) -> None:
    code, out = run("exec", "enforce", "--allowlist", str(tmp_path / "nope.yaml"), "--mount", str(tmp_path))
    assert code == 2 and out.startswith(f"kubeward: {tmp_path / 'nope.yaml'}: ") and "Traceback" not in out
    code, out = run("exec", "enforce", "--allowlist", "x", "--mount", str(tmp_path / "absent"))
    assert code == 2 and "absent: no such file or directory (--mount)" in out


def test_enforce_requires_mount(tmp_path: Path) -> None:
    code, out = run("exec", "enforce", "--allowlist", "x")
    assert code == 2 and "--mount" in out
