"""`kubeward versions`: the version skew policy between the components found, at its boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.findings import Location, ObjectRef
from kubeward.vulns.components import Found, read_version
from kubeward.vulns.skew import skew_findings
from kubeward.vulns.versions import build_versions


def found(component: str, text: str, name: str = "") -> Found:
    v, note = read_version(text)
    return Found(component, text, v, ObjectRef("v1", "X", None, name or f"{component}-{text}"), Location(), "/p", "t",
                 note)


@pytest.mark.parametrize(("api", "component", "version", "want"), [
    ("1.30.2", "kubelet", "1.30.9", None),  # patches never matter
    ("1.30.2", "kubelet", "1.31.0", "KW-V011"),
    ("1.30.2", "kubelet", "1.27.0", None),  # three minors older
    ("1.30.2", "kubelet", "1.26.0", "KW-V012"),
    ("1.26.0", "kubelet", "1.24.3", None),  # a kubelet below 1.25: two minors
    ("1.27.0", "kubelet", "1.24.3", "KW-V012"),
    ("1.30.2", "kube-proxy", "1.27.0", None),
    ("1.30.2", "kube-proxy", "1.31.0", "KW-V011"),
    ("1.30.2", "kube-controller-manager", "1.29.0", None),
    ("1.30.2", "kube-controller-manager", "1.28.5", "KW-V012"),
    ("1.30.2", "kube-scheduler", "1.31.0", "KW-V011"),
    ("1.30.2", "ingress-nginx", "1.9.0", None),  # add-ons have their own versions
])
def test_skew_rules(api: str, component: str, version: str, want: str | None) -> None:
    got = [f.control.id for f in skew_findings([found("kube-apiserver", api), found(component, version)])]
    assert got == ([want] if want else [])


def test_ha_apiservers() -> None:
    """With instances at 1.30 and 1.29 a 1.30 kubelet is newer than one of them; 1.28 and 1.30 are too far apart."""
    ids = [f.control.id for f in skew_findings([found("kube-apiserver", "1.30.0", "a"),
                                               found("kube-apiserver", "1.29.4", "b"), found("kubelet", "1.30.0")])]
    assert ids == ["KW-V011"]
    apart = [f.control.id for f in skew_findings([found("kube-apiserver", "1.30.0", "a"),
                                                 found("kube-apiserver", "1.28.4", "b")])]
    assert apart == ["KW-V010"]
    assert list(skew_findings([found("kubelet", "1.20.0")])) == []  # no apiserver version: nothing to judge


def test_inventory() -> None:
    import datetime as dt

    report = build_versions([found("kube-apiserver", "v1.30.2"), found("kubelet", "v1.29.0-eks-1")],
                            today=dt.date(2024, 12, 1))
    inventory = [f for f in report.findings if f.control.id == "KW-V100"]
    assert len(inventory) == 2 and "compared as 1.29.0" in inventory[1].message
    # No skew finding; each minor's support window on that day (1.29 entered maintenance on 2024-12-28).
    assert sorted(f.control.id for f in report.findings if f.control.id != "KW-V100") == [
        "KW-V020", "KW-V020", "KW-V024"]


def test_cli(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver-a, namespace: kube-system}\n"
                 "spec: {containers: [{name: a, image: 'registry.k8s.io/kube-apiserver:v1.30.2'}]}\n---\n"
                 "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\nstatus: {nodeInfo: {kubeletVersion: v1.26.1}}\n")
    out = CliRunner().invoke(cli, ["versions", str(f), "-o", "json", "--fail-on", "medium"])
    assert out.exit_code == 1
    ids = [(x["control"]["id"], x["object"]["name"]) for x in json.loads(out.stdout)["findings"]]
    assert ids[0] == ("KW-V012", "node-1") and ("KW-V100", "kube-apiserver-a") in ids
    assert CliRunner().invoke(cli, ["versions", "--version", "1.30", "--today", "2024-12-01"]).exit_code == 0
    assert CliRunner().invoke(cli, ["versions", "--version", "1.30", "--today", "2025-07-15"]).exit_code == 1  # EOL
    assert CliRunner().invoke(cli, ["versions"]).exit_code == 2
