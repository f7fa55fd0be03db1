"""One control registry for every check: the standalone commands' checks are registered like scan's, described
by their docstrings, selected by scan's flags, and listed by `kubeward controls`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.controls.registry import (
    SCAN_SHAPES,
    Selection,
    SelectionError,
    Shape,
    all_controls,
    every_control,
)
from kubeward.controls.standalone import known_control_ids
from kubeward.engines.encryption import generate

STANDALONE = {Shape.NODE: "KW-CIS-", Shape.CERTIFICATE: "KW-PKI-", Shape.PKI: "KW-PKI-",
              Shape.ENCRYPTION: "KW-ENC-", Shape.ETCD: "KW-ETCD-", Shape.AUDIT_POLICY: "AUDIT-POL-",
              Shape.CREDENTIAL: "KW-C0"}


def test_every_shape_has_its_checks_and_scan_runs_only_its_own() -> None:
    every = every_control()
    by_shape: dict[Shape, list[str]] = {}
    for cid, c in every.items():
        by_shape.setdefault(c.shape, []).append(cid)
    assert set(by_shape) == set(STANDALONE) | SCAN_SHAPES
    assert len(by_shape[Shape.NODE]) >= 80 and len(by_shape[Shape.AUDIT_POLICY]) == 9
    assert len(by_shape[Shape.CERTIFICATE]) + len(by_shape[Shape.PKI]) == 12
    for shape, prefix in STANDALONE.items():
        assert all(cid.startswith(prefix) or cid.startswith("KW-NODE-") for cid in by_shape[shape]), shape
    assert all(c.shape in SCAN_SHAPES for c in all_controls().values())
    assert set(every) <= known_control_ids()


def test_every_standalone_check_says_what_why_and_where_upstream() -> None:
    """The description is the check's docstring; every standalone check names its upstream reference."""
    for cid, c in every_control().items():
        if c.shape in SCAN_SHAPES:
            continue
        m = c.meta
        assert m.title and m.remediation and m.category, cid
        assert len(m.description) > 60, cid
        assert "Upstream" in m.description, f"{cid}: no upstream reference in {m.description!r}"
        if c.shape == Shape.NODE and cid.startswith("KW-CIS-"):
            number = cid.removeprefix("KW-CIS-")
            assert f"CIS Kubernetes Benchmark v1.12 {number} (kube-bench cfg/cis-1.12/" in m.description, cid


def test_catalog_prints_the_descriptions() -> None:
    result = CliRunner().invoke(cli, ["controls", "-o", "json"])
    rows = {r["id"]: r for r in orjson.loads(result.stdout)}
    assert "typed default" not in rows["KW-CIS-1.2.1"]["description"]
    assert "defaults to true" in rows["KW-CIS-1.2.1"]["description"]
    assert "checker.go" in rows["AUDIT-POL-001"]["description"]
    markdown = CliRunner().invoke(cli, ["controls", "-o", "markdown"]).stdout
    assert "what and why" in markdown and "first provider" in markdown


def test_node_package_one_module_per_topic_under_600_lines() -> None:
    from kubeward.controls import node

    folder = Path(node.__file__).parent
    for module in folder.glob("*.py"):
        assert len(module.read_text().splitlines()) < 600, module.name
    modules = {c.func.__module__.rsplit(".", 1)[-1] for c in every_control().values() if c.shape == Shape.NODE}
    assert modules == set(node.COMPONENT_MODULES)  # adding a component is adding a module to this list


def test_selection_over_one_commands_pool() -> None:
    pool = {k: c for k, c in every_control().items() if c.shape == Shape.NODE}
    chosen = Selection(include=("KW-CIS-1.2.1",)).choose(pool, every_control)
    assert [c.meta.id for c in chosen] == ["KW-CIS-1.2.1"]
    with pytest.raises(SelectionError, match="not a check of this command: KW-W001"):
        Selection(include=("KW-W001",)).choose(pool, every_control)
    with pytest.raises(SelectionError, match="unknown control id"):
        Selection(include=("KW-NOPE",)).choose(pool, every_control)
    # A framework only other commands' checks map to is named as such (running nothing would pass silently);
    # one nobody maps to is unknown.
    with pytest.raises(SelectionError, match="none of this command's checks is in framework mitre"):
        Selection(frameworks=("mitre",)).choose(pool, every_control)
    assert Selection(frameworks=("mitre", "nsa")).choose(pool, every_control)
    with pytest.raises(SelectionError, match="unknown framework"):
        Selection(frameworks=("nope",)).choose(pool, every_control)
    nsa = Selection(frameworks=("nsa",)).choose(pool, every_control)
    assert {c.meta.id for c in nsa} == {"KW-CIS-2.7", "KW-NODE-001"}


def test_scan_names_another_commands_check_as_such() -> None:
    result = CliRunner().invoke(cli, ["scan", "--demo", "--include-controls", "KW-CIS-1.2.1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "kubeward: not a check of this command: KW-CIS-1.2.1 (see `kubeward controls`)"
    result = CliRunner().invoke(cli, ["node", "check", "--framework", "mitre"])
    assert result.exit_code == 2 and "none of this command's checks is in framework mitre" in result.stderr


def _json(args: list[str]) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, [*args, "-o", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, orjson.loads(result.stdout) if result.stdout else {}, result.stderr


@pytest.fixture()
def encryption_file(tmp_path: Path) -> str:
    p = tmp_path / "enc.yaml"
    p.write_text(generate("aescbc", ("secrets",)))
    return str(p)


def test_encryption_check_takes_scans_selection_flags(encryption_file: str) -> None:
    code, doc, _ = _json(["encryption", "check", encryption_file])
    assert {f["control"]["id"] for f in doc["findings"]} == {"KW-ENC-003"} and doc["summary"]["controls"] == 3
    _, doc, _ = _json(["encryption", "check", encryption_file, "--exclude-controls", "KW-ENC-003"])
    assert doc["findings"] == [] and doc["summary"]["controls"] == 2
    _, doc, _ = _json(["encryption", "check", encryption_file, "--severity-threshold", "high"])
    assert doc["findings"] == [] and doc["summary"]["controls"] == 2
    _, doc, _ = _json(["encryption", "check", encryption_file, "--framework", "nsa"])
    assert doc["summary"]["controls"] == 1
    code, _, err = _json(["encryption", "check", encryption_file, "--include-controls", "KW-CIS-1.2.1"])
    assert code == 2 and err.strip() == ("kubeward: not a check of this command: KW-CIS-1.2.1 (see `kubeward "
                                         "controls`)")


def test_node_check_selection_and_exceptions(tmp_path: Path) -> None:
    man = tmp_path / "etc/kubernetes/manifests"
    man.mkdir(parents=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.0",
                                    "command": ["kube-apiserver", "--authorization-mode=AlwaysAllow"]}]}}
    (man / "kube-apiserver.yaml").write_text(yaml.safe_dump(pod))
    root = str(tmp_path)
    code, doc, _ = _json(["node", "check", "--root", root, "--include-controls", "KW-CIS-1.2.6,KW-CIS-1.2.1"])
    assert code == 1 and sorted(doc["summary"]["scores"]) and doc["summary"]["controls"] == 2
    assert {f["control"]["id"] for f in doc["findings"]} == {"KW-CIS-1.2.6", "KW-CIS-1.2.1"}
    exc = tmp_path / "exc.yaml"
    exc.write_text("exceptions:\n- controls: [KW-CIS-1.2.6]\n  reason: lab cluster\n")
    code, doc, _ = _json(["node", "check", "--root", root, "--include-controls", "KW-CIS-1.2.6",
                          "--exceptions", str(exc)])
    assert code == 0 and doc["findings"] == [] and doc["suppressed"][0]["control"]["id"] == "KW-CIS-1.2.6"
    # The benchmark view lists the chosen checks only, without the benchmark's MANUAL lines.
    table = CliRunner().invoke(cli, ["node", "check", "--root", root, "--include-controls", "KW-CIS-1.2.6"]).stdout
    assert "[FAIL] 1.2.6" in table and "[MANUAL]" not in table and "1.2.1 " not in table
    full = CliRunner().invoke(cli, ["node", "check", "--root", root]).stdout
    assert "[MANUAL]" in full and "[FAIL] 1.2.1 " in full


def test_audit_policy_check_selection(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    _, doc, _ = _json(["audit", "policy", "check", str(policy)])
    ids = {f["control"]["id"] for f in doc["findings"]}
    assert {"AUDIT-POL-002", "AUDIT-POL-005"} <= ids and "AUDIT-POL-008" not in ids
    _, doc, _ = _json(["audit", "policy", "check", str(policy), "--include-controls", "AUDIT-POL-005"])
    assert {f["control"]["id"] for f in doc["findings"]} == {"AUDIT-POL-005"}
    _, doc, _ = _json(["audit", "policy", "check", str(policy), "--for-detections"])
    assert doc["summary"]["controls"] == 9


def test_scan_controls_are_described_too() -> None:
    """docs/controls.md says what each check does and why: the network, RBAC, secrets, API and netpol controls
    have their descriptions (the workload package's are not written yet)."""
    missing = [cid for cid, c in every_control().items()
               if not c.meta.description and not c.func.__module__.startswith("kubeward.controls.workload")]
    assert missing == []


def test_controls_lists_a_standalone_framework() -> None:
    out = CliRunner().invoke(cli, ["controls", "--framework", "cis-2.7"]).stdout
    assert {line.split()[0] for line in out.splitlines()} == {"KW-CIS-2.7", "KW-ETCD-003", "KW-ETCD-004",
                                                             "KW-PKI-005"}
