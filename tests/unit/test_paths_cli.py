"""`kubeward paths` (table, json, sarif, --why, --fixes, exit codes, bad input) and the KW-P scan controls."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.scan import ScanOptions, scan

WORLDS = Path(__file__).parent.parent / "data" / "paths"
SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "formats" / "sarif-schema-2.1.0.json").read_text())


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["paths", *args])
    return r.exit_code, r.stdout, r.stderr


def test_table_lists_ranked_paths_and_exits_1() -> None:
    code, out, _ = run(str(WORLDS / "token-secret.yaml"))
    assert code == 1
    assert out.startswith("1 attack path from internet to cluster-admin")
    assert "pod shop/web" in out and "ServiceAccount shop/deployer" in out


def test_no_path_exits_0() -> None:
    code, out, _ = run(str(WORLDS / "netpol-blocked.yaml"), "--to", "secrets")
    assert code == 0 and out == "no attack paths from internet to secrets (every namespace)\n"


def test_why_names_object_field_and_fix() -> None:
    code, out, _ = run(str(WORLDS / "docker-socket.yaml"), "--why", "1")
    assert code == 1
    assert "mounts the container runtime socket /var/run/docker.sock" in out
    assert "/spec/template/spec/volumes/0/hostPath/path" in out and "docker-socket.yaml:25" in out
    assert 'fix:     remove hostPath volume "docker"' in out


def test_fixes_and_json() -> None:
    code, out, _ = run(str(WORLDS / "ci-runner.yaml"), "--fixes")
    assert "1 change cut every path" in out and 'RoleBinding "runner-pods/kube-system"' in out
    code, out, _ = run(str(WORLDS / "ci-runner.yaml"), "-o", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["to"] == "cluster-admin" and doc["total"] == 1 and not doc["uncuttable"]
    kinds = [s["type"] for s in doc["paths"][0]["steps"]]
    assert kinds == ["exposed", "runs-as", "rbac", "member", "rbac"]
    assert doc["fixes"][0]["object"] == {"kind": "RoleBinding", "namespace": "kube-system", "name": "runner-pods",
                                         "path": "/subjects"}


def test_sarif_path_is_a_code_flow() -> None:
    code, out, _ = run(str(WORLDS / "dashboard.yaml"), "-o", "sarif")
    assert code == 1
    doc = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    (result,) = doc["runs"][0]["results"]
    flow = result["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [loc["kinds"] for loc in flow] == [["exposed"], ["runs-as"], ["rbac"]]
    assert flow[0]["location"]["physicalLocation"]["region"]["startLine"] == 31


def test_bad_from_and_to_are_one_line() -> None:
    code, _, err = run(str(WORLDS / "dashboard.yaml"), "--from", "pod nope/nothing")
    assert code == 2 and err.count("\n") == 1 and "no such pod" in err
    code, _, err = run(str(WORLDS / "dashboard.yaml"), "--to", "a/b")
    assert code == 2 and "--to" in err and "Traceback" not in err


def test_scan_controls_fail_ci_on_a_path() -> None:
    report = scan([str(WORLDS / "dashboard.yaml")], ScanOptions(include_controls=("KW-P101", "KW-P102", "KW-P103")))
    ids = sorted((f.control.id, f.object.name) for f in report.findings)
    assert ids == [("KW-P101", "dashboard")]
    report = scan([str(WORLDS / "lateral.yaml")], ScanOptions(include_controls=("KW-P101", "KW-P102", "KW-P103")))
    assert sorted((f.control.id, f.object.name) for f in report.findings) == [("KW-P102", "backup")]
    report = scan([str(WORLDS / "daemonset.yaml")], ScanOptions(include_controls=("KW-P101", "KW-P102", "KW-P103")))
    assert sorted((f.control.id, f.object.name) for f in report.findings) == [("KW-P103", "shipper")]
    report = scan([str(WORLDS / "netpol-blocked.yaml")], ScanOptions(include_controls=("KW-P101", "KW-P102", "KW-P103")))
    assert report.findings == []


def test_html_view_is_self_contained_and_lists_every_path() -> None:
    code, out, _ = run(str(WORLDS / "docker-socket.yaml"), "-o", "html")
    assert code == 1
    assert out.startswith("<!DOCTYPE html>") and "default-src 'none'" in out
    assert "http://" not in out.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in out
    assert out.count('<tr class="path"') == 1 and out.count('<g class="node"') == 5
    assert 'remove hostPath volume &#34;docker&#34;' in out  # autoescaped


def test_kw_p102_flags_every_reachable_secret_reader(tmp_path: Path) -> None:
    """A pod that reads every secret itself still makes another such pod it can reach a finding."""
    text = (WORLDS / "lateral.yaml").read_text()
    text = text.replace("subjects: [{kind: ServiceAccount, name: backup, namespace: app}]",
                        "subjects: [{kind: ServiceAccount, name: backup, namespace: app}, "
                        "{kind: ServiceAccount, name: frontend, namespace: app}]")
    text = text.replace("automountServiceAccountToken: false\n", "")
    world = tmp_path / "both.yaml"
    world.write_text(text)
    report = scan([str(world)], ScanOptions(include_controls=("KW-P102",)))
    assert sorted(f.object.name for f in report.findings) == ["backup", "frontend"]
