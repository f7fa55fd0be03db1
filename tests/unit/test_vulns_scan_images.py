"""`vulns --scan-images`: the scanner absent (one line says what to install, images not assessed), and a fake
`trivy` on PATH printing a recorded report: run once per distinct image, cached, failures one line each."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli

REPORT = {"SchemaVersion": 2, "ArtifactName": "nginx:1.25.3", "ArtifactType": "container_image",
          "Metadata": {"RepoTags": ["nginx:1.25.3"]},
          "Results": [{"Target": "nginx:1.25.3 (debian 12.4)", "Class": "os-pkgs", "Vulnerabilities": [
              {"VulnerabilityID": "CVE-2023-44487", "PkgName": "libnghttp2-14", "InstalledVersion": "1.52.0-1",
               "FixedVersion": "1.52.0-1+deb12u1", "Severity": "HIGH", "Title": "HTTP/2 Rapid Reset"}]}]}
MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "nginx:1.25.3"}
      - {name: b, image: "nginx:1.25.3"}
      - {name: c, image: "broken:1"}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # nothing else: no real scanner is found
    monkeypatch.setenv("KUBEWARD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def fake_trivy(world: Path) -> Path:
    """A `trivy` that logs its arguments and prints the recorded report (fails for the image `broken:1`)."""
    (world / "report.json").write_text(json.dumps(REPORT))
    script = world / "bin" / "trivy"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {world}/calls.log
for last; do :; done
if [ "$last" = "broken:1" ]; then echo "FATAL image scan error: unable to find the specified image" >&2; exit 1; fi
/bin/cat {world}/report.json
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run(world: Path) -> Any:
    return CliRunner().invoke(cli, ["vulns", str(world / "m.yaml"), "--scan-images", "-o", "json",
                                    "--fail-on", "none", "--today", "2024-12-01"])


def test_absent_scanner_is_one_line_and_not_assessed(world: Path) -> None:
    r = run(world)
    assert "neither trivy nor grype is on PATH: install one (https://trivy.dev" in r.stderr
    assert r.stderr.count("neither trivy nor grype") == 1
    doc = json.loads(r.stdout)
    assert {"what": "image vulnerabilities (--scan-images)", "reason": "neither trivy nor grype is on PATH"} in doc[
        "notAssessed"]


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for trivy")
def test_fake_trivy_runs_once_per_image_and_is_cached(world: Path) -> None:
    fake_trivy(world)
    r = run(world)
    assert r.exit_code == 2, r.output  # the broken image is an input error (exit 2 when nothing else fails)
    doc = json.loads(r.stdout)
    hits = [(f["control"]["id"], f["path"]) for f in doc["findings"] if f["control"]["category"] == "image-vulns"]
    assert hits == [("CVE-2023-44487", "/spec/template/spec/containers/0/image"),
                    ("CVE-2023-44487", "/spec/template/spec/containers/1/image")]
    assert "kubeward: trivy broken:1: exit 1: FATAL image scan error" in r.stderr
    calls = (world / "calls.log").read_text().splitlines()
    assert calls == ["image --quiet --format json -- broken:1", "image --quiet --format json -- nginx:1.25.3"]
    cached = list((world / "cache" / "images").iterdir())
    assert len(cached) == 1 and stat.S_IMODE(cached[0].stat().st_mode) == 0o600
    run(world)  # the second run reads nginx from the cache, and retries the failed one
    assert (world / "calls.log").read_text().splitlines()[2:] == ["image --quiet --format json -- broken:1"]


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for trivy")
def test_unusable_scanner_output_is_one_line(world: Path) -> None:
    script = world / "bin" / "trivy"
    script.write_text("#!/bin/sh\necho 'not json'\n")
    script.chmod(0o755)
    r = run(world)
    assert "trivy nginx:1.25.3: its report is not usable" in r.stderr and "Traceback" not in r.output
