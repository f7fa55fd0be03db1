"""`kubeward scan` end to end in-process: contract, selection, exceptions and exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from sample_manifests import PRIV


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "deploy.yaml").write_text(PRIV)
    return tmp_path


def test_json_contract(manifests: Path) -> None:
    code, out, _ = run("scan", str(manifests), "-o", "json", "--include-controls", "KW-W001")
    assert code == 1
    doc = json.loads(out)
    assert doc["schemaVersion"] == "1"
    assert doc["tool"]["name"] == "kubeward"
    assert doc["summary"]["objects"] == 1
    assert doc["summary"]["findings"] == 1
    assert doc["summary"]["bySeverity"] == {"critical": 1, "high": 0, "medium": 0, "low": 0}
    [f] = doc["findings"]
    assert f["control"]["id"] == "KW-W001"
    assert f["control"]["severity"] == "critical"
    assert "nsa" in f["control"]["frameworks"]
    assert f["object"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}
    assert f["location"] == {"file": str(manifests / "deploy.yaml"), "line": 15}
    assert f["path"] == "/spec/template/spec/containers/0/securityContext/privileged"
    assert f["message"] and f["remediation"]
    assert doc["errors"] == []


def test_relative_paths_in_locations(manifests: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(manifests)
    _, out, _ = run("scan", ".", "-o", "json", "--include-controls", "KW-W001")
    assert json.loads(out)["findings"][0]["location"]["file"] == "deploy.yaml"


def test_stdin_and_fail_on(manifests: Path) -> None:
    code, out, _ = run("scan", "-", "-o", "json", "--include-controls", "KW-W001", "--fail-on", "critical", input=PRIV)
    assert code == 1
    assert json.loads(out)["findings"][0]["location"]["file"] == "<stdin>"
    clean = PRIV.replace("privileged: true", "privileged: false")
    code, out, _ = run("scan", "-", "-o", "json", "--include-controls", "KW-W001", input=clean)
    assert code == 0 and json.loads(out)["findings"] == []


def test_unknown_control_and_framework_exit_2(manifests: Path) -> None:
    code, _, err = run("scan", str(manifests), "--include-controls", "KW-NOPE")
    assert code == 2 and "unknown control id(s): KW-NOPE" in err
    code, _, err = run("scan", str(manifests), "--exclude-controls", "KW-W001,KW-X999")
    assert code == 2 and "KW-X999" in err
    code, _, err = run("scan", str(manifests), "--framework", "bogus")
    assert code == 2 and "unknown framework" in err


def test_nothing_scannable_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [\n")
    code, out, err = run("scan", str(tmp_path), "-o", "json")
    assert code == 2
    assert "invalid YAML" in err and err.startswith("kubeward: ")
    assert json.loads(out)["errors"][0]["file"].endswith("bad.yaml")
    code, _, err = run("scan")
    assert code == 2 and "nothing to scan" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unreadable_manifest_fails_the_gate_but_not_the_scan(manifests: Path, workers: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: one unreadable file next to a bad one must not turn the gate green."""
    monkeypatch.setenv("KUBEWARD_WORKERS", workers)
    (manifests / "broken.json").write_text("[1, 2")
    (manifests / "clean.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n")
    code, out, err = run("scan", str(manifests), "-o", "json", "--include-controls", "KW-W001")
    doc = json.loads(out)
    assert code == 2 and doc["summary"]["findings"] == 1
    assert len(doc["errors"]) == 1 and err.count("kubeward: ") == 1 and "broken.json" in err
    code, out, _ = run("scan", str(manifests), "-o", "json", "--include-controls", "KW-W001",
                       "--allow-input-errors")
    assert code == 1 and len(json.loads(out)["errors"]) == 1
    code, _, _ = run("scan", str(manifests / "clean.yaml"), str(manifests / "broken.json"), "--allow-input-errors")
    assert code == 0
    code, _, _ = run("scan", str(manifests / "clean.yaml"), str(manifests / "broken.json"))
    assert code == 2


@pytest.mark.parametrize("fmt", ["json", "table", "sarif", "junit", "html"])
def test_yaml_that_is_no_kubernetes_object_is_counted_as_skipped(manifests: Path, fmt: str) -> None:
    (manifests / "values.yaml").write_text("replicaCount: 2\nimage: {repository: nginx}\n")
    (manifests / ".github" / "workflows").mkdir(parents=True)
    (manifests / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {test: {runs-on: ubuntu-latest}}\n")
    (manifests / "kubelet.yaml").write_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    code, out, err = run("scan", str(manifests), "-o", fmt, "--include-controls", "KW-W001")
    assert code == 1 and "values.yaml" not in err  # no input error, named only with -v
    if fmt == "json":
        doc = json.loads(out)
        assert doc["summary"]["skipped"] == 3 and doc["errors"] == []
        assert sorted(Path(s["file"]).name for s in doc["skipped"]) == ["ci.yml", "kubelet.yaml", "values.yaml"]
    elif fmt == "table":
        assert "3 not Kubernetes objects" in out
    elif fmt == "sarif":
        doc = json.loads(out)
        assert doc["runs"][0]["properties"]["skipped"] == 3
        jsonschema.validate(doc, json.loads(Path("tests/data/formats/sarif-schema-2.1.0.json").read_text()))
        assert [n["level"] for n in doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]] == ["note"] * 3
    elif fmt == "junit":
        assert out.count("skipped: document 1") == 3
    else:
        assert 'id="kw-skipped">3<' in out
    code, _, err = run("scan", str(manifests), "-v", "-o", fmt, "--include-controls", "KW-W001")
    assert code == 1 and err.count("skipped, document 1") == 3 and "values.yaml: skipped" in err


def test_exceptions_file_suppresses_and_counts(manifests: Path) -> None:
    exc = manifests / "exc.yaml"
    exc.write_text(
        "exceptions:\n- controls: [KW-W001]\n  namespaces: [shop]\n  names: ['we*']\n  reason: vendor image needs it\n"
    )
    code, out, _ = run("scan", str(manifests / "deploy.yaml"), "-o", "json", "--include-controls", "KW-W001",
                       "--exceptions", str(exc))
    doc = json.loads(out)
    assert code == 0
    assert doc["findings"] == []
    assert doc["summary"]["suppressed"] == 1
    assert doc["suppressed"][0]["suppressed"] == {"reason": "vendor image needs it"}


def test_expired_exception_stops_applying(manifests: Path) -> None:
    exc = manifests / "exc.yaml"
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    exc.write_text(f"exceptions:\n- controls: [KW-W001]\n  reason: temporary\n  expires: {yesterday}\n")
    code, out, err = run("scan", str(manifests / "deploy.yaml"), "-o", "json", "--include-controls", "KW-W001",
                         "--exceptions", str(exc))
    doc = json.loads(out)
    assert code == 1 and len(doc["findings"]) == 1
    assert "expired exception" in err and doc["expiredExceptions"]


def test_inline_annotation(tmp_path: Path) -> None:
    annotated = PRIV.replace(
        "  namespace: shop\n",
        "  namespace: shop\n  annotations:\n    kubeward.io/ignore: KW-W001, KW-W999\n"
        "    kubeward.io/ignore-reason: needs device access\n",
    )
    (tmp_path / "d.yaml").write_text(annotated)
    code, out, _ = run("scan", str(tmp_path), "-o", "json", "--include-controls", "KW-W001")
    doc = json.loads(out)
    assert code == 0 and doc["summary"]["suppressed"] == 1
    assert "needs device access" in doc["suppressed"][0]["suppressed"]["reason"]


def test_malformed_exceptions_file_exit_2(manifests: Path) -> None:
    exc = manifests / "exc.yaml"
    exc.write_text("exceptions:\n- controls: [KW-W001]\n")
    code, _, err = run("scan", str(manifests / "deploy.yaml"), "--exceptions", str(exc))
    assert code == 2 and "a reason is required" in err


def test_exclude_namespaces(manifests: Path) -> None:
    code, out, _ = run("scan", str(manifests), "-o", "json", "--include-controls", "KW-W001",
                       "--exclude-namespaces", "shop")
    assert code == 0 and json.loads(out)["findings"] == []


def test_output_file(manifests: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run("scan", str(manifests), "-o", "json", "--output", str(target), "--include-controls", "KW-W001")
    assert code == 1 and out == ""
    assert json.loads(target.read_text())["summary"]["findings"] == 1


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0 and "kubeward, version" in out
    code, out, _ = run("--help")
    assert code == 0 and "scan" in out
    code, out, _ = run("scan", "--help")
    assert code == 0 and "--fail-on" in out


@pytest.mark.parametrize("console", [False, True])
def test_collector_off_only_in_the_console_process(monkeypatch: pytest.MonkeyPatch, console: bool) -> None:
    """The console script's scan switches the cyclic collector off for the rest of its short life; a scan run
    inside another program (tests, an embedding application) leaves it as it was."""
    import gc

    from kubeward.cli import common

    monkeypatch.setattr(common, "CONSOLE", console)
    assert gc.isenabled()
    try:
        result = CliRunner().invoke(cli, ["scan", "--demo", "-o", "json"])
        assert result.exit_code == 1, result.output
        assert gc.isenabled() is not console
    finally:
        gc.enable()
