"""Objects of kinds no control judges are counted per kind as not assessed, in every path of `scan`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.controls.registry import all_controls, assessed_kinds, run, unassessed_kinds
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DOCS = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: a, namespace: app}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: b, namespace: other}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: app}
data: {LOG: json}
"""


def _res(api: str, kind: str, ns: str | None = "app") -> Resource:
    meta = {"name": "x", **({"namespace": ns} if ns else {})}
    return Resource({"apiVersion": api, "kind": kind, "metadata": meta})


def test_unjudged_kinds_are_counted_per_group_and_kind() -> None:
    objs = [_res("monitoring.coreos.com/v1", "ServiceMonitor"), _res("monitoring.coreos.com/v1", "ServiceMonitor"),
            _res("other.io/v1", "ServiceMonitor"), _res("v1", "ConfigMap"), _res("v1", "Binding")]
    report = run(Snapshot(objs), [all_controls()["KW-W001"]])
    assert [(n.what, n.reason) for n in report.not_assessed] == [
        ("Binding", "1 object of a kind no control judges"),
        ("ServiceMonitor.monitoring.coreos.com", "2 objects of a kind no control judges"),
        ("ServiceMonitor.other.io", "1 object of a kind no control judges"),
    ]


def test_kinds_read_by_cross_object_checks_count_as_assessed() -> None:
    # ResourceQuota and LimitRange are read by KW-W053/W054, Node by the NetworkPolicy engine (ANP nodes peers)
    assert {"ResourceQuota", "LimitRange", "Node", "Pod", "Service", "ClusterRoleBinding"} <= assessed_kinds()
    assert "CustomResourceDefinition" not in assessed_kinds()


def test_excluded_namespaces_are_not_counted() -> None:
    objs = [_res("example.com/v1", "Widget", "skip"), _res("example.com/v1", "Widget", "keep")]
    assert [n.reason for n in unassessed_kinds(objs, frozenset({"skip"}))] == ["1 object of a kind no control judges"]


def test_scan_reports_them_in_json_and_table(tmp_path: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(DOCS)
    out = CliRunner().invoke(cli, ["scan", str(f), "-o", "json"])
    doc = json.loads(out.stdout)
    assert {n["what"]: n["reason"] for n in doc["notAssessed"]} == {
        "CustomResourceDefinition.apiextensions.k8s.io": "1 object of a kind no control judges",
        "ServiceMonitor.monitoring.coreos.com": "2 objects of a kind no control judges",
    }
    table = CliRunner().invoke(cli, ["scan", str(f), "-o", "table"]).stdout
    assert "NOT ASSESSED" in table and "ServiceMonitor.monitoring.coreos.com: 2 objects" in table


def test_two_process_json_scan_reports_the_same(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        (tmp_path / f"f{i}.yaml").write_text(DOCS)
    outs = []
    for workers in ("1", "2"):
        monkeypatch.setenv("KUBEWARD_WORKERS", workers)
        outs.append(CliRunner().invoke(cli, ["scan", str(tmp_path), "-o", "json"]).stdout)
    assert outs[0] == outs[1]
    assert '"ServiceMonitor.monitoring.coreos.com"' in outs[1] and "12 objects" in outs[1]
