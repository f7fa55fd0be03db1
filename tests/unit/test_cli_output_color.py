"""`--output FILE` says what it wrote (one stderr line); colour follows one rule (terminal, --no-color, NO_COLOR)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from kubeward.cli.common import color_wanted, describe_output, findings_summary
from kubeward.cli.main import cli

PRIV = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: app
    image: nginx:1.25
    securityContext: {privileged: true}
"""
ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admins}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
"""
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def pod(tmp_path: Path) -> Path:
    p = tmp_path / "pod.yaml"
    p.write_text(PRIV)
    return p


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


# ---- --output ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "html"])
def test_scan_output_prints_one_summary_line(pod: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    code, out, err = invoke("scan", str(pod), "-o", fmt, "--output", str(target))
    assert code == 1 and out == "" and target.stat().st_size > 0
    doc = orjson.loads(invoke("scan", str(pod), "-o", "json")[1])
    counts = doc["summary"].get("bySeverity")
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kubeward: wrote {target} (")
    total = doc["summary"]["findings"]
    assert f"({total} findings: " in lines[0]
    if counts:
        assert all(f"{n} {sev}" in lines[0] for sev, n in counts.items() if n)


def test_scan_json_two_process_path_says_the_same(tmp_path: Path) -> None:
    for i in range(400):  # enough files for the two-process JSON path
        (tmp_path / f"p{i}.yaml").write_text(PRIV.replace("name: web", f"name: web{i}"))
    target = tmp_path / "out.json"
    code, _, err = invoke("scan", str(tmp_path), "-o", "json", "--output", str(target))
    doc = orjson.loads(target.read_bytes())
    assert code == 1 and err.splitlines()[-1].startswith(f"kubeward: wrote {target} ({doc['summary']['findings']} findings: ")


def test_stdout_dash_prints_no_summary(pod: Path) -> None:
    code, out, err = invoke("scan", str(pod), "-o", "json", "--output", "-")
    assert code == 1 and orjson.loads(out)["findings"] and "wrote" not in err


def test_other_commands_say_what_they_wrote(tmp_path: Path) -> None:
    (tmp_path / "crb.yaml").write_text(ROLE)
    target = tmp_path / "risks.json"
    invoke("rbac", "risks", "-f", str(tmp_path), "-o", "json", "--output", str(target))
    risks = len(orjson.loads(target.read_bytes())["risks"])
    _, _, err = invoke("rbac", "risks", "-f", str(tmp_path), "-o", "json", "--output", str(target))
    assert f"kubeward: wrote {target} ({risks} risks)" in err
    policy = tmp_path / "policy.yaml"
    _, _, err = invoke("audit", "policy", "generate", "--output", str(policy))
    assert f"kubeward: wrote {policy} (1 object)" in err
    _, _, err = invoke("audit", "policy", "check", str(policy), "--output", str(tmp_path / "check.txt"))
    assert f"kubeward: wrote {tmp_path / 'check.txt'} (" in err and " finding" in err
    enc = tmp_path / "enc.yaml"
    _, _, err = invoke("encryption", "generate", "--output", str(enc))
    assert err.strip() == f"kubeward: wrote {enc} (EncryptionConfiguration with a new aesgcm key, mode 0600)"


def test_describe_output_and_summary() -> None:
    assert describe_output('{"subjects": [1, 2], "via": [3]}') == "2 subjects"
    assert describe_output("apiVersion: v1\nkind: A\n---\napiVersion: v1\nkind: B\n") == "2 objects"
    assert describe_output("a\nb") == "2 lines"
    assert findings_summary(5, {"critical": 1, "high": 0, "medium": 2, "low": 0}, 3, 1) == \
        "5 findings: 1 critical, 2 medium, 2 info; 3 suppressed; 1 input error"
    assert findings_summary(0, {"critical": 0}) == "0 findings"
    assert findings_summary(1, {"high": 1}, skipped=2) == "1 finding: 1 high; 2 skipped"


# ---- colour -----------------------------------------------------------------------------------------------------

class _Tty:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "flag", "file", "want"), [
    ({}, False, None, True), ({"NO_COLOR": "1"}, False, None, False), ({"NO_COLOR": ""}, False, None, True),
    ({}, True, None, False), ({}, False, "out.txt", False), ({}, False, "-", True),
])
def test_color_rule(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], flag: bool, file: str | None,
                    want: bool) -> None:
    import click

    monkeypatch.delenv("NO_COLOR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "stdout", _Tty())
    ctx = click.Context(cli)
    if flag:
        ctx.meta["kubeward.no_color"] = True
    with ctx:
        assert color_wanted(file) is want


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run kubeward with stdout on a pseudo-terminal; what it printed there."""
    master, slave = pty.openpty()
    full = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "120", **env}
    if "NO_COLOR" not in env:
        full.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", *args], stdout=slave,
                            stderr=subprocess.DEVNULL, env=full)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("command", ["scan", "netpol"])
def test_terminal_colour_and_its_two_switches(pod: Path, command: str) -> None:
    args = ["scan", str(pod)] if command == "scan" else ["netpol", "lint", str(pod)]
    assert "\x1b[" in _on_a_terminal(args, {})
    assert "\x1b[" not in _on_a_terminal(args, {"NO_COLOR": "1"})
    assert "\x1b[" not in _on_a_terminal([*args, "--no-color"], {})
    assert "\x1b[" not in _on_a_terminal(["--no-color", *args], {})


def test_no_color_is_accepted_by_every_command() -> None:
    import click

    root = cli
    ctx = click.Context(root)  # commands are loaded lazily: get_command gives them --no-color
    missing = []

    def walk(cmd: click.Command, path: str) -> None:
        if path and not any(p.name == "no_color" for p in cmd.params):
            missing.append(path)
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, f"{path} {name}".strip())

    walk(root, "")
    assert missing == []


def test_pki_check_table_colours_like_scan(tmp_path: Path) -> None:
    from kubeward.pki.layout import InitOptions, init

    init(tmp_path / "pki", InitOptions(node_name="cp1", key_type="ecdsa"))
    args = ["pki", "check", str(tmp_path / "pki")]
    assert "\x1b[" in _on_a_terminal(args, {})
    assert "\x1b[" not in _on_a_terminal(args, {"NO_COLOR": "yes"})


def test_streamed_outputs_are_described_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "pods.yaml").write_text(PRIV + "---\n" + PRIV.replace("name: web", "name: api"))
    target = tmp_path / "reach.json"
    code, out, err = invoke("netpol", "reach", str(tmp_path / "pods.yaml"), "-o", "json", "--output", str(target))
    pods = len(orjson.loads(target.read_bytes())["pods"])
    assert code == 0 and out == "" and err.splitlines()[-1] == f"kubeward: wrote {target} ({pods} pods)"
