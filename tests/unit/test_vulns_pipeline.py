"""`vulns` findings through the normal pipeline: every format, exceptions with expiry, SARIF, the HTML report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tests.unit.test_vulns_images import MANIFESTS, TRIVY

from kubeward.cli.main import cli


def _run(tmp_path: Path, *args: str) -> Any:
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    return CliRunner().invoke(cli, ["vulns", str(tmp_path / "m.yaml"), "--version", "1.30.0", "--images",
                                    str(tmp_path / "trivy.json"), "--today", "2024-12-01", "--fail-on", "high",
                                    *args])


def _ids(doc: dict[str, Any], key: str = "findings") -> set[tuple[str, str]]:
    return {(x["control"]["id"], x["object"]["name"]) for x in doc[key]}


def test_json_and_yaml_carry_both_kinds_of_vulnerability(tmp_path: Path) -> None:
    doc = json.loads(_run(tmp_path, "-o", "json").stdout)
    want = {("CVE-2023-44487", "web"), ("CVE-2024-5321", "1.30.0"), ("KW-V000", "k8s-cve-feed-osv")}
    assert want <= _ids(doc)
    assert doc["summary"]["bySeverity"]["high"] >= 2
    assert yaml.safe_load(_run(tmp_path, "-o", "yaml").stdout) == doc


def test_table_names_cves_and_objects(tmp_path: Path) -> None:
    out = _run(tmp_path, "-o", "table", "--no-color").stdout
    assert "CVE-2023-44487" in out and "CVE-2024-5321" in out and "Deployment/shop/web" in out


def test_sarif_rules_results_and_risk(tmp_path: Path) -> None:
    run = json.loads(_run(tmp_path, "-o", "sarif").stdout)["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {"CVE-2023-44487", "CVE-2024-5321", "KW-V000"} <= rules.keys()
    results = [r for r in run["results"] if r["ruleId"] == "CVE-2023-44487"]
    assert len(results) == 2  # the init and the nginx container of web
    assert {r["level"] for r in results} == {"error"}  # high
    assert all(r["properties"]["risk"]["score"] >= 0 for r in results)
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("m.yaml") for r in results)


def test_junit_fails_the_cve_testcase(tmp_path: Path) -> None:
    root = ET.fromstring(_run(tmp_path, "-o", "junit").stdout)
    failed = {(tc.get("classname"), tc.get("name")) for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert {("kubeward.CVE-2023-44487", "Deployment/shop/web"), ("kubeward.CVE-2024-5321", "KubernetesRelease/1.30.0")
            } <= failed


def test_html_vulnerabilities_section_holds_image_and_component_cves(tmp_path: Path) -> None:
    html = _run(tmp_path, "-o", "html").stdout
    section = html[html.index('id="vulnerabilities"'):html.index("<h2>Findings")]
    assert "CVE-2023-44487" in section and "CVE-2024-5321" in section


@pytest.mark.parametrize(("expires", "suppressed"), [("2999-01-01", True), ("2000-01-01", False)])
def test_accepted_cve_on_one_workload_until_it_expires(tmp_path: Path, expires: str, suppressed: bool) -> None:
    ex = tmp_path / "ex.yaml"
    ex.write_text(f"exceptions:\n- controls: [CVE-2023-44487]\n  kinds: [Deployment]\n  names: [web]\n"
                  f"  reason: HTTP/2 off at the proxy\n  expires: {expires}\n")
    out = _run(tmp_path, "-o", "json", "--exceptions", str(ex))
    doc = json.loads(out.stdout)
    assert (("CVE-2023-44487", "web") in _ids(doc, "suppressed")) is suppressed
    assert (("CVE-2023-44487", "web") in _ids(doc)) is not suppressed
    assert bool(doc["expiredExceptions"]) is not suppressed
    if not suppressed:
        assert "expired exception no longer applies" in out.stderr
    else:
        assert all(x["suppressed"]["reason"] for x in doc["suppressed"])
        sarif = json.loads(_run(tmp_path, "-o", "sarif", "--exceptions", str(ex)).stdout)["runs"][0]
        kept = [r for r in sarif["results"] if r["ruleId"] == "CVE-2023-44487"]
        assert kept and all(r.get("suppressions") for r in kept)  # SARIF keeps them, marked suppressed
