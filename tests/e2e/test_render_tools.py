"""Helm charts and kustomizations rendered by the real helm (v4) and kustomize (v5), built from their official Go
modules by scripts/build-tools; the charts and kustomizations are in tests/data/render."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.sources.files import LoadResult
from kubeward.sources.render import ORIGIN_ANNOTATION, Renderable, render_inputs

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DATA = "tests/data/render"
CHART = f"{DATA}/webchart"
OVERLAY = f"{DATA}/kustomize/overlays/prod"


@pytest.fixture(scope="module")
def tools() -> Path:
    try:
        out = subprocess.run([str(REPO / "scripts" / "build-tools")], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        if shutil.which("go") is None:
            pytest.skip("helm and kustomize absent and no Go toolchain to build them")
        pytest.fail(f"scripts/build-tools failed: {exc.stderr[-1500:]}", pytrace=False)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def on_path(tools: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.chdir(REPO)
    yield tools


def scan(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, ["scan", *args, "-o", "json", "--fail-on", "none"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


def places(doc: dict) -> list[tuple[str, str, str | None, int | None]]:
    return sorted((f["control"]["id"], f["object"]["name"], f["location"].get("file"), f["location"].get("line"))
                  for f in doc["findings"])


def test_chart_with_default_values(on_path: Path) -> None:
    code, doc, err = scan(CHART, "--include-controls", "KW-W001,KW-W002,KW-W004")
    assert (code, err) == (0, "")  # the raw templates ({{ }}) were not read as YAML: no input errors
    assert doc["errors"] == []
    # the subchart's templated StatefulSet: its template file, without a line
    assert places(doc) == [
        ("KW-W004", "release-name-cache", f"{CHART}/charts/cache/templates/statefulset.yaml", None)]
    # CRD (crds/, as helm install creates it), Deployment, Service, the subchart's StatefulSet; no debug Pod
    assert doc["summary"]["objects"] == 4


def test_values_files_sets_release_and_namespace(on_path: Path) -> None:
    _, doc, err = scan(CHART, "--values", f"{DATA}/values/debug.yaml", "--values", f"{DATA}/values/no-cache.yaml",
                          "--set", "privileged=true", "--release-name", "shop", "-n", "prod",
                          "--include-controls", "KW-W001,KW-W002,KW-W004")
    assert err == ""
    assert places(doc) == [
        ("KW-W001", "shop-web", f"{CHART}/templates/deployment.yaml", None),  # include/values: no honest line
        # the conditional template's document is literal text in the template: its lines are the file's
        ("KW-W001", "web-debug", f"{CHART}/templates/debug-pod.yaml", 12),
        ("KW-W002", "web-debug", f"{CHART}/templates/debug-pod.yaml", 7),
    ]
    assert {f["object"]["namespace"] for f in doc["findings"]} == {"prod"}


def test_a_folder_of_charts_and_kustomizations(on_path: Path) -> None:
    _, doc, err = scan(f"{DATA}/webchart", f"{DATA}/kustomize", "--include-controls", "KW-W001,KW-W004")
    assert err == ""
    found = places(doc)
    assert doc["summary"]["objects"] == 4 + 2 + 3  # the chart, the base, the overlay (with its ConfigMap)
    # the overlay's patch made the base Deployment privileged and host-networked; kustomize's origin names the
    # resource file (the patch is not traced), with no line (kustomize re-serializes)
    assert ("KW-W001", "api", f"{DATA}/kustomize/base/deployment.yaml", None) in found
    assert ("KW-W004", "api", f"{DATA}/kustomize/base/deployment.yaml", None) in found
    # the base alone is rendered too (it is a kustomization of its own), and is not privileged
    assert [f for f in doc["findings"] if f["object"]["name"] == "api"
            and f["object"]["namespace"] == "default"] == []


def test_kustomize_objects_are_the_plain_builds_without_the_origin(on_path: Path) -> None:
    plain = subprocess.run([str(on_path / "kustomize"), "build", OVERLAY], check=True, capture_output=True).stdout
    expected = [d for d in yaml.safe_load_all(plain) if d]
    result = LoadResult()
    render_inputs([Renderable("kustomize", OVERLAY, OVERLAY)], result)
    assert result.errors == []
    assert [r.obj for r in result.resources] == expected
    assert all(ORIGIN_ANNOTATION not in r.annotations for r in result.resources)
    files = {r.kind: (r.file, r.line) for r in result.resources}
    assert files == {
        "ConfigMap": (f"{OVERLAY}/kustomization.yaml", None),  # generated: its generator's kustomization file
        "Deployment": (f"{DATA}/kustomize/base/deployment.yaml", None),
        "Service": (f"{DATA}/kustomize/base/service.yaml", None),
    }


def test_helm_render_failure_is_one_line_and_the_rest_goes_on(on_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    (bad / "templates").mkdir(parents=True)
    (bad / "Chart.yaml").write_text("apiVersion: v2\nname: bad\nversion: 0.1.0\n")
    (bad / "templates" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.a.b }}\n")
    _, doc, err = scan(str(bad), CHART, "--include-controls", "KW-W004")
    [line] = err.splitlines()
    assert line == (f"kubeward: {bad}: helm template failed: bad/templates/cm.yaml:4:18: executing "
                    '"bad/templates/cm.yaml" at <.Values.a.b>: nil pointer evaluating interface {}.b')
    assert len(doc["findings"]) == 1  # the good chart was still scanned


def test_kustomize_failure_is_one_line(on_path: Path, tmp_path: Path) -> None:
    k = tmp_path / "k"
    k.mkdir()
    (k / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    code, _, err = scan(str(k))
    [line] = err.splitlines()
    # kustomize's own words for this folder, not those of the wrapper that turns origin annotations on
    plain = subprocess.run([str(on_path / "kustomize"), "build", str(k)], capture_output=True, text=True)
    assert plain.returncode != 0
    assert line == f"kubeward: {k}: kustomize build failed: {plain.stderr.splitlines()[0].removeprefix('Error: ')}"
    assert "missing.yaml" in line
    assert code == 2  # nothing could be scanned


def test_the_tools_are_the_pinned_versions(on_path: Path) -> None:
    pins = dict(line.split("=", 1) for line in (REPO / "scripts" / "build-tools").read_text().splitlines()
                if line.endswith('"') and "_module=" in line)
    helm = subprocess.run([str(on_path / "helm"), "version", "--short"], check=True, capture_output=True, text=True)
    kustomize = subprocess.run([str(on_path / "kustomize"), "version"], check=True, capture_output=True, text=True)
    assert helm.stdout.startswith(pins["helm_module"].strip('"').split("@")[1])
    assert kustomize.stdout.strip() == pins["kustomize_module"].strip('"').split("@")[1]


def test_aliased_and_packaged_subcharts(on_path: Path, tmp_path: Path) -> None:
    chart = tmp_path / "webchart"
    shutil.copytree(REPO / CHART, chart)
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("condition: cache.enabled", "alias: store"))
    _, doc, err = scan(str(chart), "--include-controls", "KW-W004")
    assert err == ""
    # helm names it web/charts/store/…: the alias leads to the folder of the chart called cache
    assert [f["location"] for f in doc["findings"]] == [{"file": f"{chart}/charts/cache/templates/statefulset.yaml"}]
    subprocess.run([str(on_path / "helm"), "package", str(chart / "charts" / "cache"), "-d", str(chart / "charts")],
                   check=True, capture_output=True)
    shutil.rmtree(chart / "charts" / "cache")
    _, doc, err = scan(str(chart), "--include-controls", "KW-W004")
    assert err == ""
    assert [f["location"] for f in doc["findings"]] == [{"file": f"{chart}/charts/cache-0.1.0.tgz"}]



def test_a_packaged_chart_is_rendered_as_its_folder(on_path: Path, tmp_path: Path) -> None:
    """`helm template CHART.tgz` renders what `helm package` wrote: named on the command line, the archive is
    scanned as its folder is (before, one `binary file` error and nothing scanned), each object named by the
    template inside the archive; `--values` applies to it too."""
    subprocess.run([str(on_path / "helm"), "package", CHART, "-d", str(tmp_path)], check=True, capture_output=True)
    [archive] = sorted(tmp_path.glob("web-*.tgz"))
    _, folder, _ = scan(CHART)
    _, doc, err = scan(str(archive))
    assert (err, doc["errors"]) == ("", [])
    assert doc["summary"]["objects"] == folder["summary"]["objects"] == 4
    assert sorted(f["control"]["id"] for f in doc["findings"]) == sorted(f["control"]["id"] for f in folder["findings"])
    assert {f["location"]["file"] for f in doc["findings"]} >= {f"{archive}/charts/cache/templates/statefulset.yaml"}
    assert all("line" not in f["location"] for f in doc["findings"])
    _, debug, _ = scan(str(archive), "--values", f"{DATA}/values/debug.yaml")
    assert debug["summary"]["objects"] == 5  # the debug Pod the values switch on
