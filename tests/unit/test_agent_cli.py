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


def test_learn_checks_output_before_watching(tmp_path: Path) -> None:
    code, out = run("exec", "learn", "--duration", "60", "--output", str(tmp_path / "missing" / "al.yaml"))
    assert code == 2  # returned at once: the 60 s of learning never started
    assert out.strip() == (f"kubeward: {tmp_path / 'missing' / 'al.yaml'}: directory {tmp_path / 'missing'} "
                           "does not exist or is not writable")


def test_alerts_target_unwritable(tmp_path: Path) -> None:
    al = tmp_path / "al.yaml"
    al.write_text("apiVersion: kubeward.io/v1\nkind: ExecAllowlist\nspec: {rules: []}\n")
    code, out = run("exec", "enforce", "--allowlist", str(al), "--mount", str(tmp_path),
                    "--alerts", str(tmp_path / "no" / "a.jsonl"))
    assert code == 2 and out.strip() == f"kubeward: {tmp_path / 'no' / 'a.jsonl'}: No such file or directory"


def test_flows_snapshot_without_pods(tmp_path: Path) -> None:
    snap = tmp_path / "s.yaml"
    snap.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    code, out = run("flows", "--snapshot", str(snap), "--duration", "1")
    assert code == 2
    assert out.strip() == f"kubeward: {snap}: no Pod objects (pod IPs are needed to map flows)"
