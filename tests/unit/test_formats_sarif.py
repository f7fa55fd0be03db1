"""SARIF 2.1.0 output: valid against the official OASIS schema, and carrying what code scanning needs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from kubeward.findings import Severity
from kubeward.formats import render, sarif

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "formats"))
import formats_reports as reports

SCHEMA = json.loads(Path("tests/data/formats/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def sarif_of(report: reports.Report) -> dict:
    doc = json.loads(render(report, "sarif", color=False))
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return doc


@pytest.mark.parametrize(
    "build",
    [reports.pipeline_report, reports.edge_report, reports.empty_report, reports.clean_report, reports.errors_only_report],
)
def test_validates_against_official_schema(build) -> None:
    doc = sarif_of(build())
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1


def test_schema_rejects_a_broken_log() -> None:
    """The validator is live: a result without a message must fail."""
    doc = json.loads(render(reports.edge_report(), "sarif"))
    del doc["runs"][0]["results"][0]["message"]
    assert list(VALIDATOR.iter_errors(doc))


def test_pipeline_results_match_findings() -> None:
    report = reports.pipeline_report()
    doc = sarif_of(report)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(report.controls)
    assert len(run["results"]) == len(report.findings) + len(report.suppressed)
    assert report.findings, "the format manifests are meant to produce findings"
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert phys["artifactLocation"]["uri"].startswith("tests/data/formats/manifests/")
        assert phys["region"]["startLine"] >= 1
    # the broken manifest is an input error, reported as a notification naming the file
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any(
        n["level"] == "error" and n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("broken.yaml")
        for n in notes
    )


def test_privileged_finding_points_into_the_template() -> None:
    doc = sarif_of(reports.pipeline_report())
    web = [
        r for r in doc["runs"][0]["results"]
        if r["ruleId"] == "KW-W001" and r["properties"]["object"]["name"] == "web"
    ]
    assert len(web) == 2  # two privileged containers
    lines = sorted(r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in web)
    assert lines == [29, 33]  # the `privileged: true` lines in web.yaml
    assert all(r["level"] == "error" for r in web)


def test_suppressions_inline_and_external() -> None:
    doc = sarif_of(reports.pipeline_report())
    supp = {r["properties"]["object"]["name"]: r["suppressions"][0] for r in doc["runs"][0]["results"] if "suppressions" in r}
    assert supp["node-agent"]["kind"] == "inSource"
    assert "reviewed by security" in supp["node-agent"]["justification"]
    assert supp["old-app"]["kind"] == "external"
    assert supp["old-app"]["justification"] == "legacy namespace is being retired"


def test_rules_carry_help_and_github_severity() -> None:
    doc = sarif_of(reports.edge_report())
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    crit = rules["T-CRIT"]
    assert crit["name"] == "PrivilegedContainer"
    assert crit["shortDescription"]["text"] == "Privileged container"
    assert "Fix T-CRIT." in crit["help"]["text"] and "mitre-T1611" in crit["help"]["text"]
    assert crit["defaultConfiguration"]["level"] == "error"
    assert "security" in crit["properties"]["tags"] and "cis-5.2.2" in crit["properties"]["tags"]
    # GitHub buckets: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
    buckets = {"T-CRIT": (9.0, 10.0), "T-HIGH": (7.0, 8.9), "T-MED": (4.0, 6.9), "T-LOW": (0.1, 3.9)}
    for cid, (lo, hi) in buckets.items():
        assert lo <= float(rules[cid]["properties"]["security-severity"]) <= hi
    assert rules["T-MED"]["defaultConfiguration"]["level"] == "warning"
    assert rules["T-LOW"]["defaultConfiguration"]["level"] == "note"


def test_cluster_object_has_logical_location_only() -> None:
    doc = sarif_of(reports.edge_report())
    res = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "T-LOW")
    loc = res["locations"][0]
    assert "physicalLocation" not in loc
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "Pod/kube-system/kube-proxy-x1"
    assert res["properties"]["cluster"] == "prod-eu"


def test_result_without_line_has_no_region() -> None:
    doc = sarif_of(reports.edge_report())
    res = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "T-INFO")
    assert "region" not in res["locations"][0]["physicalLocation"]


def test_not_assessed_and_expired_are_notifications() -> None:
    inv = sarif_of(reports.edge_report())["runs"][0]["invocations"][0]
    texts = [n["message"]["text"] for n in inv["toolExecutionNotifications"]]
    assert any("not assessed: rbac.authorization.k8s.io/ClusterRoleBinding: 403 Forbidden" in t for t in texts)
    assert "expired" in inv["toolConfigurationNotifications"][0]["message"]["text"]


def test_errors_only_is_unsuccessful_execution() -> None:
    inv = sarif_of(reports.errors_only_report())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert len(inv["toolExecutionNotifications"]) == 3


def test_fingerprint_ignores_line_but_not_path() -> None:
    a = reports.edge_report().findings[0]
    b = reports.edge_report().findings[0]
    b.location = reports.Location("deploy/web.yaml", 99)
    assert sarif.fingerprint(a) == sarif.fingerprint(b)
    b.path = "/spec/template/spec/containers/1/securityContext/privileged"
    assert sarif.fingerprint(a) != sarif.fingerprint(b)


def test_absolute_and_spaced_paths_are_uris() -> None:
    assert sarif.artifact_location("/abs/dir/a b.yaml") == {"uri": "file:///abs/dir/a%20b.yaml"}
    assert sarif.artifact_location("rel/x.yaml") == {"uri": "rel/x.yaml", "uriBaseId": "%SRCROOT%"}


def test_level_mapping_is_total() -> None:
    assert set(sarif.LEVELS) == set(Severity) == set(sarif.SECURITY_SEVERITY)


def test_rule_tags_are_capped_for_code_scanning() -> None:
    many = reports.meta("T-MANY", "high", "Many", tuple(f"cis-5.{i}" for i in range(30)))
    rule = sarif._rule(many)
    assert len(rule["properties"]["tags"]) == sarif.MAX_TAGS
    assert rule["properties"]["tags"][0] == "security"
    assert "cis-5.29" in rule["help"]["text"]  # every mapping still in the help text
