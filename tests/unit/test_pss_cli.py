"""`kubeward pss check` and `kubeward pss namespaces` in-process: JSON contract, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels:
    pod-security.kubernetes.io/enforce: baseline
    pod-security.kubernetes.io/enforce-version: v1.30
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: web}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          hostPID: true
          containers: [{name: job, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: web}
spec:
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: strict, namespace: locked}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: x
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: locked
  labels: {pod-security.kubernetes.io/enforce: strict-ish}
"""


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "all.yaml"
    path.write_text(MANIFESTS)
    return path


def test_check_json_contract_and_exit_1(manifests: Path) -> None:
    code, out, _ = run("pss", "check", str(manifests), "--level", "baseline", "-o", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["level"] == "baseline" and doc["version"] == "latest"
    by_name = {r["object"]["name"]: r for r in doc["results"]}
    assert set(by_name) == {"nightly", "plain", "strict"}
    cron = by_name["nightly"]
    assert cron["object"] == {"apiVersion": "batch/v1", "kind": "CronJob", "namespace": "web", "name": "nightly"}
    assert cron["location"] == {"file": str(manifests), "line": 10}
    assert cron["allowed"] is False
    assert cron["violations"] == [{"check": "hostNamespaces", "message": "host namespaces (hostPID=true)"}]
    assert by_name["plain"]["allowed"] is True and by_name["plain"]["violations"] == []


def test_check_all_allowed_exits_0_and_table(manifests: Path, tmp_path: Path) -> None:
    only = tmp_path / "strict.yaml"
    only.write_text(MANIFESTS.split("---\n")[3])
    code, out, _ = run("pss", "check", str(only), "--level", "restricted", "--version", "v1.25")
    assert code == 0
    assert "ALLOWED  Pod/locked/strict" in out
    assert "1 checked at restricted:v1.25: 1 allowed, 0 denied" in out


def test_check_namespace_filter(manifests: Path) -> None:
    code, out, _ = run("pss", "check", str(manifests), "--level", "restricted", "-n", "locked", "-o", "json")
    assert code == 0
    assert [r["object"]["name"] for r in json.loads(out)["results"]] == ["strict"]


def test_check_reads_stdin(manifests: Path) -> None:
    code, out, _ = run("pss", "check", "-", "--level", "restricted", "-o", "json", input=manifests.read_text())
    assert code == 1
    assert {r["object"]["name"] for r in json.loads(out)["results"] if not r["allowed"]} == {"nightly", "plain"}


@pytest.mark.parametrize(("args", "needle"), [
    (("--level", "baseline", "--version", "1.25"), "invalid version '1.25'"),
    (("--level", "strict"), "Invalid value for '--level'"),
])
def test_bad_flags_exit_2_one_line(manifests: Path, args: tuple[str, ...], needle: str) -> None:
    code, _, err = run("pss", "check", str(manifests), *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_input_errors_exit_2(tmp_path: Path, manifests: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: x\n")
    code, _, err = run("pss", "check", str(manifests), str(bad), "--level", "baseline")
    assert code == 2
    assert err.startswith(f"kubeward: {bad}")
    code, _, err = run("pss", "check", str(tmp_path / "missing.yaml"), "--level", "baseline")
    assert code == 2 and "Traceback" not in err


def test_check_nothing_to_judge_exit_2(tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    code, _, err = run("pss", "check", str(cm), "--level", "baseline")
    assert code == 2 and "no Pods or workload pod templates" in err
    code, _, err = run("pss", "check", "--level", "baseline")
    assert code == 2 and "nothing to check" in err


def test_namespaces_json(manifests: Path) -> None:
    code, out, err = run("pss", "namespaces", str(manifests), "-o", "json")
    assert code == 1  # the CronJob's pods would be rejected at web's enforce level
    doc = {n["name"]: n for n in json.loads(out)["namespaces"]}
    web = doc["web"]
    assert web["enforce"] == {"level": "baseline", "version": "v1.30"}
    assert web["declared"] is True and web["labelled"] is True
    assert web["warn"] == {"level": "restricted", "version": "latest"}
    assert web["audit"] == {"level": "privileged", "version": "latest"}
    assert web["next"] == {"level": "restricted", "version": "v1.30"}
    assert web["summary"] == {"workloads": 2, "rejected": 1, "audited": 0, "warned": 2, "rejectedAtNext": 2}
    cron = next(w for w in web["workloads"] if w["object"]["name"] == "nightly")
    assert cron["enforce"]["violations"][0]["check"] == "hostNamespaces"
    # an unparseable enforce level fails closed to restricted, with one error line naming the namespace
    locked = doc["locked"]
    assert locked["enforce"] == {"level": "restricted", "version": "latest"}
    assert locked["next"] is None and locked["summary"]["rejected"] == 0
    assert "kubeward: Namespace/locked: label pod-security.kubernetes.io/enforce='strict-ish'" in err


def test_namespaces_table_and_exemptions(manifests: Path) -> None:
    code, out, _ = run("pss", "namespaces", str(manifests), "--exempt-namespace", "web")
    assert code == 0
    assert "web: enforce=baseline:v1.30 audit=privileged:latest warn=restricted:latest (exempt)" in out
    code, out, _ = run("pss", "namespaces", str(manifests), "-n", "web")
    assert code == 1
    assert "rejected: CronJob/web/nightly" in out and "locked" not in out
    code, _, err = run("pss", "namespaces", str(manifests), "-n", "nope")
    assert code == 2 and "namespace(s) not found: nope" in err
