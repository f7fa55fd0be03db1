"""`vulns --images` with CycloneDX JSON (1.5/1.6): SBOM vulnerabilities mapped to the workloads running the image,
and VEX analysis states: not_affected / resolved / false_positive suppress (the justification is the reason),
in_triage / exploitable keep. Documents shaped as the CycloneDX spec examples (CycloneDX/bom-examples VEX/) and
`trivy image -f cyclonedx` write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.vulns.cyclonedx import parse_cyclonedx
from kubeward.vulns.images import ReportError, parse_report, runs

DIGEST = "sha256:" + "4" * 64


def sbom(spec: str = "1.5") -> dict[str, Any]:
    """An image SBOM with vulnerabilities and analyses, as `trivy image -f cyclonedx` lays it out."""
    return {
        "$schema": f"http://cyclonedx.org/schema/bom-{spec}.schema.json",
        "bomFormat": "CycloneDX", "specVersion": spec,
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", "version": 1,
        "metadata": {"timestamp": "2026-11-30T10:00:00+00:00",
                     "tools": {"components": [{"type": "application", "group": "aquasecurity", "name": "trivy",
                                               "version": "0.57.0"}]},
                     "component": {"bom-ref": f"pkg:oci/nginx@{DIGEST.replace(':', '%3A')}?repository_url="
                                              "index.docker.io%2Flibrary%2Fnginx",
                                   "type": "container", "name": "nginx:1.25.3",
                                   "purl": f"pkg:oci/nginx@{DIGEST.replace(':', '%3A')}?repository_url="
                                           "index.docker.io%2Flibrary%2Fnginx",
                                   "properties": [{"name": "aquasecurity:trivy:RepoDigest",
                                                   "value": f"nginx@{DIGEST}"},
                                                  {"name": "aquasecurity:trivy:RepoTag", "value": "nginx:1.25.3"}]}},
        "components": [
            {"bom-ref": "pkg:deb/debian/libnghttp2-14@1.52.0-1?distro=debian-12.4", "type": "library",
             "name": "libnghttp2-14", "version": "1.52.0-1", "purl": "pkg:deb/debian/libnghttp2-14@1.52.0-1"},
            {"bom-ref": "pkg:deb/debian/apt@2.6.1", "type": "library", "name": "apt", "version": "2.6.1"},
            {"bom-ref": "pkg:deb/debian/libssl3@3.0.11-1", "type": "library", "name": "libssl3",
             "version": "3.0.11-1"},
        ],
        "vulnerabilities": [
            {"id": "CVE-2023-44487", "source": {"name": "debian", "url": "https://salsa.debian.org/security-tracker-team/security-tracker"},
             "ratings": [{"source": {"name": "nvd"}, "score": 7.5, "severity": "high", "method": "CVSSv31",
                          "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
                         {"source": {"name": "debian"}, "severity": "medium"}],
             "description": "HTTP/2 Rapid Reset",
             "analysis": {"state": "exploitable", "response": ["update"], "detail": "reachable through the proxy"},
             "affects": [{"ref": "pkg:deb/debian/libnghttp2-14@1.52.0-1?distro=debian-12.4",
                          "versions": [{"version": "1.52.0-1", "status": "affected"},
                                       {"version": "1.52.0-1+deb12u1", "status": "unaffected"}]}]},
            {"id": "CVE-2011-3374", "ratings": [{"severity": "low"}], "description": "apt: weak key validation",
             "analysis": {"state": "not_affected", "justification": "code_not_reachable",
                          "response": ["will_not_fix"],
                          "detail": "apt is never run in the container after the build."},
             "affects": [{"ref": "pkg:deb/debian/apt@2.6.1"}]},
            {"id": "CVE-2023-5678", "ratings": [{"severity": "medium"}], "description": "OpenSSL DH checks",
             "analysis": {"state": "resolved", "detail": "patched in the base image rebuild"},
             "affects": [{"ref": "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg:deb/debian/libssl3@3.0.11-1"}]},
            {"id": "CVE-2023-6129", "ratings": [{"severity": "medium"}],
             "analysis": {"state": "false_positive", "detail": "not the POLY1305 code path on amd64"},
             "affects": [{"ref": "pkg:deb/debian/libssl3@3.0.11-1"}]},
            {"id": "CVE-2024-0727", "ratings": [{"severity": "medium"}], "analysis": {"state": "in_triage"},
             "affects": [{"ref": "pkg:deb/debian/libssl3@3.0.11-1"}]},
            {"id": "CVE-2024-2511", "affects": [{"ref": "pkg:deb/debian/libssl3@3.0.11-1"}]},  # no rating, no analysis
        ],
    }


# A standalone VEX document about the same image (CycloneDX 1.6), as VEX/Use-Cases shape them: no components,
# the image identified by its purl, one statement.
VEX_16 = {
    "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
    "metadata": {"component": {"type": "container", "name": "nginx", "version": DIGEST,
                               "purl": f"pkg:oci/nginx@{DIGEST.replace(':', '%3A')}?tag=1.25.3"}},
    "vulnerabilities": [{"id": "CVE-2023-44487", "source": {"name": "NVD"},
                         "analysis": {"state": "not_affected", "justification": "requires_configuration",
                                      "detail": "HTTP/2 is disabled in our nginx.conf"},
                         "affects": [{"ref": "urn:cdx:f08a6ccd-4dce-4759-bd84-c626675d60a7/1#nginx"}]}],
}

MANIFEST = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  template:
    spec:
      containers:
      - {{name: nginx, image: "nginx@{DIGEST}"}}
"""


def test_sbom_maps_components_severities_and_fixes() -> None:
    rep = parse_report(sbom(), "sbom.cdx.json")
    assert runs(f"nginx@{DIGEST}", rep) and runs("docker.io/library/nginx:1.25.3", rep)
    by_id = {v.id: v for v in rep.vulns}
    assert by_id["CVE-2023-44487"].severity.label == "high"  # the highest rating
    assert (by_id["CVE-2023-44487"].package, by_id["CVE-2023-44487"].fixed) == ("libnghttp2-14", "1.52.0-1+deb12u1")
    assert by_id["CVE-2023-5678"].package == "libssl3"  # a BOM-Link ref resolves to the component
    assert by_id["CVE-2024-2511"].severity.label == "medium"  # no rating: medium
    assert {k: s.suppresses for k, s in rep.vex.items()} == {
        "CVE-2023-44487": False, "CVE-2011-3374": True, "CVE-2023-5678": True, "CVE-2023-6129": True,
        "CVE-2024-0727": False}


def test_spec_example_analysis_shapes_are_read() -> None:
    """CycloneDX/bom-examples VEX/vex.json writes `response` as a string; the 1.4 CISA case has no components."""
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1,
           "metadata": {"component": {"name": "ABC", "version": "4.2", "type": "application",
                                      "bom-ref": "product-ABC"}},
           "vulnerabilities": [{"id": "CVE-2021-44228", "ratings": [{"score": 10.0, "severity": "critical",
                                                                     "method": "CVSSv31"}],
                                "analysis": {"state": "not_affected", "justification": "code_not_present",
                                             "response": "will_not_fix", "detail": "Class removed."},
                                "affects": [{"ref": "product-ABC"}]}]}
    rep = parse_cyclonedx(doc, "vex.json")
    st = rep.vex["CVE-2021-44228"]
    assert st.suppresses and st.response == ("will_not_fix",)
    assert st.reason() == ("VEX not_affected, justification code_not_present, response will_not_fix: Class removed. "
                           "(from vex.json)")
    assert rep.vulns[0].package == "ABC" and rep.vulns[0].severity.label == "critical"
    # A statement whose ref is another BOM's names no package: it is about the vulnerability in the image.
    assert [(v.id, v.package) for v in parse_cyclonedx(VEX_16, "v.json").vulns] == [("CVE-2023-44487", "")]


@pytest.mark.parametrize(("doc", "said"), [
    ({"bomFormat": "CycloneDX", "specVersion": "1.5"}, "metadata.component: no image named"),
    ({**VEX_16, "vulnerabilities": {"id": "x"}}, "vulnerabilities: not a list"),
    ({**VEX_16, "vulnerabilities": [{"analysis": {}}]}, "vulnerabilities[0]: no id"),
    ({**VEX_16, "vulnerabilities": [{"id": "CVE-1", "analysis": {"state": "fixed"}}]},
     "'fixed' is not a CycloneDX impact analysis state"),
    ({**VEX_16, "vulnerabilities": [{"id": "CVE-1", "affects": [{"ref": 3}]}]}, "affects[0].ref: not a string"),
])
def test_bad_documents_name_the_field(doc: dict[str, Any], said: str) -> None:
    with pytest.raises(ReportError, match=said.replace("[", r"\[").replace("]", r"\]")):
        parse_report(doc, "x.json")


def _run(tmp_path: Path, *docs: dict[str, Any]) -> tuple[dict[str, Any], str]:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    args = ["vulns", str(tmp_path / "m.yaml"), "-o", "json", "--fail-on", "none", "--today", "2024-12-01"]
    for i, d in enumerate(docs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(d))
        args += ["--images", str(tmp_path / f"r{i}.json")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), r.stderr


@pytest.mark.parametrize("spec", ["1.5", "1.6"])
def test_vex_suppresses_with_its_justification_and_keeps_the_rest(tmp_path: Path, spec: str) -> None:
    doc, err = _run(tmp_path, sbom(spec))
    kept = {f["control"]["id"]: f for f in doc["findings"] if f["control"]["category"] == "image-vulns"}
    hidden = {f["control"]["id"]: f for f in doc["suppressed"]}
    assert set(kept) == {"CVE-2023-44487", "CVE-2024-0727", "CVE-2024-2511"}
    assert set(hidden) == {"CVE-2011-3374", "CVE-2023-5678", "CVE-2023-6129"}
    reason = hidden["CVE-2011-3374"]["suppressed"]["reason"]
    assert reason.startswith("VEX not_affected, justification code_not_reachable, response will_not_fix: apt is "
                             "never run")
    assert "VEX exploitable" in kept["CVE-2023-44487"]["message"] and "VEX in_triage" in kept["CVE-2024-0727"][
        "message"]
    assert "fixed in 1.52.0-1+deb12u1" in kept["CVE-2023-44487"]["message"]
    assert "no workload" not in err
    sarif_args = ["vulns", str(tmp_path / "m.yaml"), "--images", str(tmp_path / "r0.json"), "-o", "sarif",
                  "--fail-on", "none", "--today", "2024-12-01"]
    sarif = json.loads(CliRunner().invoke(cli, sarif_args).stdout)
    justified = [r["suppressions"][0]["justification"] for r in sarif["runs"][0]["results"] if "suppressions" in r]
    assert len(justified) == 3 and any("code_not_reachable" in j for j in justified)


def test_a_separate_vex_document_suppresses_another_reports_finding(tmp_path: Path) -> None:
    trivy = {"SchemaVersion": 2, "ArtifactName": "nginx:1.25.3",
             "Metadata": {"RepoTags": ["nginx:1.25.3"], "RepoDigests": [f"nginx@{DIGEST}"]},
             "Results": [{"Target": "debian", "Vulnerabilities": [
                 {"VulnerabilityID": "CVE-2023-44487", "PkgName": "libnghttp2-14", "InstalledVersion": "1.52.0-1",
                  "FixedVersion": "1.52.0-1+deb12u1", "Severity": "HIGH", "Title": "HTTP/2 Rapid Reset"}]}]}
    doc, err = _run(tmp_path, trivy)
    assert [f["control"]["id"] for f in doc["findings"] if f["control"]["category"] == "image-vulns"] == [
        "CVE-2023-44487"]
    doc, err = _run(tmp_path, trivy, VEX_16)
    assert not [f for f in doc["findings"] if f["control"]["category"] == "image-vulns"]
    reasons = [f["suppressed"]["reason"] for f in doc["suppressed"] if f["control"]["id"] == "CVE-2023-44487"]
    assert len(reasons) == 1 and "requires_configuration: HTTP/2 is disabled" in reasons[0]
    assert "no workload" not in err
