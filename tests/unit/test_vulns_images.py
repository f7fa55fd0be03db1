"""`vulns --images`: Trivy and Grype JSON reports mapped to the workloads that run each image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.vulns.images import ReportError, normalise, parse_report, runs

INDEX = "sha256:" + "1" * 64  # a multi-arch index digest
AMD64 = "sha256:" + "2" * 64  # the platform manifest under it

TRIVY = {  # trivy image -f json (SchemaVersion 2), trimmed
    "SchemaVersion": 2, "ArtifactName": "nginx:1.25.3", "ArtifactType": "container_image",
    "Metadata": {"ImageID": "sha256:" + "9" * 64, "RepoTags": ["nginx:1.25.3"],
                 "RepoDigests": [f"nginx@{INDEX}"]},
    "Results": [
        {"Target": "nginx:1.25.3 (debian 12.4)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2023-44487", "PkgName": "libnghttp2-14", "InstalledVersion": "1.52.0-1",
             "FixedVersion": "1.52.0-1+deb12u1", "Severity": "HIGH", "Title": "HTTP/2 Rapid Reset"},
            {"VulnerabilityID": "CVE-2011-3374", "PkgName": "apt", "InstalledVersion": "2.6.1",
             "Severity": "LOW", "Title": "apt: weak key validation"}]},
        {"Target": "Java", "Class": "lang-pkgs", "Type": "jar"}]}

GRYPE = {  # grype -o json, trimmed
    "matches": [{"vulnerability": {"id": "GHSA-xxxx-yyyy-zzzz", "severity": "Critical",
                                   "fix": {"versions": ["2.17.1"], "state": "fixed"}, "description": "log4shell"},
                 "artifact": {"name": "log4j-core", "version": "2.14.0", "type": "java-archive"}},
                {"vulnerability": {"id": "CVE-2024-0001", "severity": "Negligible", "fix": {"versions": [],
                                                                                           "state": "not-fixed"}},
                 "artifact": {"name": "zlib", "version": "1.2"}}],
    "source": {"type": "image", "target": {"userInput": "ghcr.io/acme/api:2.0", "imageID": "sha256:" + "8" * 64,
                                           "manifestDigest": AMD64, "tags": ["ghcr.io/acme/api:2.0"],
                                           "repoDigests": [f"ghcr.io/acme/api@{INDEX.replace('1', '3')}"]}}}

MANIFESTS = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  template:
    spec:
      initContainers:
      - {{name: init, image: "docker.io/library/nginx:1.25.3"}}
      containers:
      - {{name: nginx, image: "nginx@{INDEX}"}}
      - {{name: other, image: "nginx:1.25.4"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: api, namespace: shop}}
spec:
  containers:
  - {{name: api, image: "ghcr.io/acme/api@{AMD64}"}}
  ephemeralContainers:
  - {{name: debug, image: "ghcr.io/acme/api:2.0"}}
"""


@pytest.mark.parametrize(("image", "want"), [
    ("nginx", ("docker.io/library/nginx:latest", None)),
    ("nginx:1.25", ("docker.io/library/nginx:1.25", None)),
    ("index.docker.io/library/nginx:1.25", ("docker.io/library/nginx:1.25", None)),
    (f"nginx@{INDEX}", (None, INDEX)),
    (f"nginx:1.25@{INDEX}", ("docker.io/library/nginx:1.25", INDEX)),
    ("localhost:5000/a:1", ("localhost:5000/a:1", None)),
])
def test_normalise(image: str, want: tuple[str | None, str | None]) -> None:
    assert normalise(image) == want


def test_matching() -> None:
    t = parse_report(TRIVY, "t.json")
    assert runs("nginx:1.25.3", t) and runs("docker.io/library/nginx:1.25.3", t) and runs(f"nginx@{INDEX}", t)
    assert not runs("nginx:1.25.4", t) and not runs("nginx", t)
    assert not runs(f"nginx:1.25.3@{AMD64}", t)  # a digest decides: the runtime pulls by it, whatever the tag
    g = parse_report(GRYPE, "g.json")
    assert runs(f"ghcr.io/acme/api@{AMD64}", g) and runs("ghcr.io/acme/api:2.0", g)
    assert [(v.id, v.severity.label, v.fixed) for v in g.vulns] == [
        ("GHSA-xxxx-yyyy-zzzz", "critical", "2.17.1"), ("CVE-2024-0001", "low", "")]


@pytest.mark.parametrize(("doc", "needle"), [
    ([], "not a JSON object"), ({"foo": 1}, "neither a Trivy"),
    ({"SchemaVersion": 2, "ArtifactName": 3}, "ArtifactName"),
    ({**TRIVY, "Results": [{"Vulnerabilities": [{"PkgName": "x"}]}]}, "VulnerabilityID"),
    ({**GRYPE, "matches": {}}, "matches: not a list"),
    ({"matches": [], "source": {"type": "directory", "target": "/src"}}, "userInput"),
])
def test_malformed(doc: Any, needle: str) -> None:
    with pytest.raises(ReportError, match=needle):
        parse_report(doc, "r.json")


def test_cli_maps_reports_to_workloads(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    (tmp_path / "grype.json").write_text(json.dumps(GRYPE))
    (tmp_path / "bad.json").write_text("{not json")
    out = CliRunner().invoke(cli, ["vulns", str(tmp_path / "m.yaml"), "--images", str(tmp_path / "trivy.json"),
                                   "--images", str(tmp_path / "bad.json"), "--images", str(tmp_path / "grype.json"),
                                   "-o", "json", "--today", "2024-12-01"])
    assert out.exit_code == 1, out.output  # critical and high findings; the bad report is one line on stderr
    assert "bad.json" in out.stderr and "Traceback" not in out.stderr
    got = {(x["control"]["id"], x["object"]["name"], x["path"]) for x in json.loads(out.stdout)["findings"]
           if not x["control"]["id"].startswith("KW-")}
    assert got == {
        ("CVE-2023-44487", "web", "/spec/template/spec/initContainers/0/image"),
        ("CVE-2011-3374", "web", "/spec/template/spec/initContainers/0/image"),
        ("CVE-2023-44487", "web", "/spec/template/spec/containers/0/image"),
        ("CVE-2011-3374", "web", "/spec/template/spec/containers/0/image"),
        ("GHSA-xxxx-yyyy-zzzz", "api", "/spec/containers/0/image"),
        ("CVE-2024-0001", "api", "/spec/containers/0/image"),
        ("GHSA-xxxx-yyyy-zzzz", "api", "/spec/ephemeralContainers/0/image"),
        ("CVE-2024-0001", "api", "/spec/ephemeralContainers/0/image"),
    }


def test_cli_image_exceptions_and_only_bad_reports(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    ex = tmp_path / "ex.yaml"
    ex.write_text("exceptions:\n- controls: [CVE-2023-44487]\n  reason: HTTP/2 disabled\n")
    out = CliRunner().invoke(cli, ["vulns", str(tmp_path / "m.yaml"), "--images", str(tmp_path / "trivy.json"),
                                   "--exceptions", str(ex), "-o", "json", "--today", "2024-12-01"])
    assert out.exit_code == 0, out.output  # only the LOW apt finding remains
    (tmp_path / "bad.json").write_text("[]")
    bad = CliRunner().invoke(cli, ["vulns", str(tmp_path / "m.yaml"), "--images", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "not a JSON object" in bad.stderr
