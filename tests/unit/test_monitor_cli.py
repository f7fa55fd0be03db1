"""`kubeward monitor` flags: one line and exit 2 for every usage error, before anything is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli


@pytest.mark.parametrize(("args", "env", "says"), [
    ([], {"KUBERNETES_SERVICE_HOST": ""}, "no cluster: give --cluster (kubeconfig) or --in-cluster"),
    (["--in-cluster"], {"KUBERNETES_SERVICE_HOST": ""}, "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"),
    (["--cluster", "--in-cluster"], {}, "give one"),
    (["--cluster", "--lease-duration", "5", "--renew-deadline", "5"], {}, "must be shorter than --lease-duration"),
    (["--cluster", "--include-controls", "KW-NOPE"], {}, "unknown control id"),
    (["--cluster", "--no-vulns", "--min-risk", "3"], {}, "need --vulns"),
    (["--cluster", "--images", "/nonexistent/trivy.json"], {}, "--images /nonexistent/trivy.json:"),
    (["--cluster", "--vuln-data", "/nonexistent/feed"], {}, "no such file or folder"),
])
def test_usage_errors_are_one_line(args: list[str], env: dict[str, str], says: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["monitor", *args, "--kubeconfig", str(tmp_path / "none")]
                             if "--cluster" in args else ["monitor", *args], env=env)
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], out.output
    assert "Traceback" not in out.output


def test_in_cluster_is_detected_from_the_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    (tmp_path / "ca.crt").write_text("")  # empty CA: the loader refuses it, after detection chose in-cluster
    out = CliRunner().invoke(cli, ["monitor", "--token-file", str(token), "--ca-file", str(tmp_path / "ca.crt")],
                             env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert out.exit_code == 2 and "in-cluster:" in out.output, out.output
