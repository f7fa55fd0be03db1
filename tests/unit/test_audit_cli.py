"""`kubeward audit analyze` and `kubeward audit policy generate|check` through the CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from vendored import AUDIT_SAMPLE

SAMPLE = str(AUDIT_SAMPLE)
CASES = yaml.safe_load((Path(__file__).parent.parent / "data/audit/detection_cases.yaml").read_text())


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input)


def _log(tmp_path: Path, n_copies: int = 1) -> Path:
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", "requestURI": "/x",
            "user": {"username": "jane"}, "sourceIPs": ["10.0.0.1"], "responseStatus": {"code": 200},
            "stageTimestamp": "2024-05-01T10:00:00Z"}
    lines = []
    for k in range(n_copies):
        for i, c in enumerate(CASES):
            ev = copy.deepcopy(base)
            ev.update(copy.deepcopy(c["event"]))
            ev["auditID"] = f"{k}-{i}"
            lines.append(orjson.dumps(ev))
    p = tmp_path / "audit.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return p


def test_analyze_json_contract_and_exit_code(tmp_path: Path) -> None:
    r = run("audit", "analyze", "-o", "json", str(_log(tmp_path)))
    assert r.exit_code == 1  # high and critical alerts, default --fail-on high
    doc = orjson.loads(r.stdout)
    assert set(doc) >= {"alerts", "stats"}
    a = doc["alerts"][0]
    assert list(a)[:13] == ["rule", "severity", "auditID", "time", "user", "groups", "sourceIPs", "userAgent", "verb",
                            "objectRef", "requestURI", "outcome", "message"]
    assert doc["stats"]["events"] == len(CASES)
    assert doc["stats"]["alerts"] == len(doc["alerts"]) == sum(len(c["expect"]) for c in CASES)
    assert doc["stats"]["byRule"]["cluster-admin-binding"] == 1


def test_analyze_fail_on_threshold(tmp_path: Path) -> None:
    assert run("audit", "analyze", "--fail-on", "critical", "--disable", "cluster-admin-binding",
               str(_log(tmp_path))).exit_code == 0


def test_analyze_stdin_and_table() -> None:
    data = Path(SAMPLE).read_bytes()
    r = run("audit", "analyze", "-", input=data)
    assert r.exit_code == 0
    assert r.stdout.strip().splitlines()[-1].startswith(
        "37 events, 38 alerts (impersonation 37, secret-access-denied 1)")


def test_analyze_workers_equal_single_process(tmp_path: Path) -> None:
    log = _log(tmp_path, n_copies=30)
    one = orjson.loads(run("audit", "analyze", "-o", "json", "--burst-threshold", "3", str(log)).stdout)
    two = orjson.loads(run("audit", "analyze", "-o", "json", "--burst-threshold", "3", "--workers", "2",
                           str(log)).stdout)
    key = lambda a: (a["auditID"], a["rule"], a["message"])  # noqa: E731
    assert one["stats"] == two["stats"]
    assert sorted(map(key, one["alerts"])) == sorted(map(key, two["alerts"]))


@pytest.mark.parametrize("fmt", ["json", "yaml", "table"])
def test_workers_report_and_exit_code_equal_single_process(tmp_path: Path, fmt: str) -> None:
    # JSON and YAML reports take the children's alerts as JSON records, the table their Alerts: each report
    # byte for byte, and the exit code (read from each alert's severity), as one process makes them.
    log = _log(tmp_path, n_copies=30)
    args = ["audit", "analyze", "-o", fmt, "--burst-threshold", "3", "--fail-on", "high", str(log)]
    one = run(*args)
    two = run(*args, "--workers", "2")
    assert one.exit_code == 1 and two.exit_code == one.exit_code
    assert two.stdout == one.stdout and len(one.stdout) > 1000


def test_workers_keep_burst_state_across_files_and_impersonation(tmp_path: Path) -> None:
    # The real log impersonates bob and friends; their 403s must be counted for the impersonated identity, across
    # two files, whether analyzed in one process or split over workers.
    d = tmp_path / "logs"
    d.mkdir()
    for name in ("a.log", "b.log"):
        (d / name).write_bytes(Path(SAMPLE).read_bytes())
    args = ["audit", "analyze", "-o", "json", "--burst-threshold", "4", "--burst-window", "3600", str(d)]
    one = orjson.loads(run(*args).stdout)
    two = orjson.loads(run(*args, "--workers", "2").stdout)
    assert one["stats"] == two["stats"] and one["stats"]["byRule"]["forbidden-burst"] >= 1
    bursts = lambda doc: sorted(a["message"] for a in doc["alerts"] if a["rule"] == "forbidden-burst")  # noqa: E731
    assert bursts(one) == bursts(two)
    assert any("user bob" in m or "user system:serviceaccount:ns1:sa1" in m for m in bursts(one))


@pytest.mark.parametrize(("args", "needle"), [
    (["audit", "analyze"], "nothing to analyze"),
    (["audit", "analyze", "/no/such.log"], "/no/such.log: No such file"),
    (["audit", "analyze", "--allowed-cidr", "300.1.1.1/8", SAMPLE], "not a network"),
    (["audit", "analyze", "--rules", "/no/rules.yaml", SAMPLE], "/no/rules.yaml"),
])
def test_analyze_usage_errors(args: list[str], needle: str) -> None:
    r = run(*args)
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_analyze_non_audit_input_is_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "pods.yaml"
    p.write_text("kind: Pod\n")
    r = run("audit", "analyze", str(p))
    assert r.exit_code == 2 and "no audit events read" in r.stderr


@pytest.mark.parametrize("profile", ["minimal", "recommended", "forensic"])
def test_generated_profiles_pass_their_own_check(tmp_path: Path, profile: str) -> None:
    out = tmp_path / "p.yaml"
    assert run("audit", "policy", "generate", "--profile", profile, "--output", str(out)).exit_code == 0
    r = run("audit", "policy", "check", "-o", "json", "--fail-on", "info", str(out))
    assert r.exit_code == 0, r.stdout
    assert orjson.loads(r.stdout)["findings"] == []


def test_generated_policy_semantics() -> None:
    from kubeward.audit.policygen import policy_document
    from kubeward.engines.auditpolicy import Attributes, UserInfo, parse_policy

    p = parse_policy(policy_document("recommended"))
    u = UserInfo("jane", ("system:authenticated",))
    lvl = lambda *a, **k: p.evaluate(Attributes(*a, **k, user=u)).level  # noqa: E731
    assert lvl("create", "secrets", namespace="a") == "Metadata"
    assert lvl("create", "pods", "exec", namespace="a") == "RequestResponse"
    assert lvl("create", "clusterrolebindings", api_group="rbac.authorization.k8s.io") == "RequestResponse"
    assert lvl("create", "pods", namespace="a") == "Request"
    assert lvl("get", resource_request=False, path="/healthz") == "None"
    assert lvl("list", "pods", namespace="a") == "Metadata"


POLICY_BAD = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  resources:
  - group: ""
- level: Metadata
  resources:
  - group: ""
    resources: [secrets]
- level: None
  resources:
  - group: ""
    resources: ["pods/*"]
- level: Metadata
"""


def test_policy_check_findings(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY_BAD)
    r = run("audit", "policy", "check", "-o", "json", str(p))
    assert r.exit_code == 1
    found = {(f["control"]["id"], f["path"]) for f in orjson.loads(r.stdout)["findings"]}
    assert ("AUDIT-POL-001", "/rules/1") in found  # shadowed by the whole-core-group rule 0
    assert ("AUDIT-POL-002", "/rules/0/level") in found  # secrets at RequestResponse
    assert ("AUDIT-POL-007", "/rules/0/level") in found  # configmaps too (low)
    assert not any(k == "AUDIT-POL-003" for k, _ in found)  # pods/exec logged by rule 0 (core group)
    assert ("AUDIT-POL-001", "/rules/2") in found
    lines = {f["path"]: f["location"]["line"] for f in orjson.loads(r.stdout)["findings"]}
    assert lines["/rules/1"] == 7


def test_policy_check_exec_not_logged(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
                 "- level: None\n  resources: [{group: '', resources: ['pods/*']}]\n- level: Metadata\n")
    doc = orjson.loads(run("audit", "policy", "check", "-o", "json", str(p)).stdout)
    msgs = [f["message"] for f in doc["findings"] if f["control"]["id"] in ("AUDIT-POL-003", "AUDIT-POL-006")]
    assert len(msgs) == 3 and all("rule 0 sets level None" in m for m in msgs)


@pytest.mark.parametrize(("text", "needle"), [
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n", "rules[0].level"),
    ("kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n", "no audit.k8s.io Policy"),
    ("{{{", ""),
])
def test_policy_check_invalid_is_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    r = run("audit", "policy", "check", str(p))
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("kubeward: ")
