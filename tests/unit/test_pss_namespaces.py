"""Namespace label resolution (api.PolicyToEvaluate) and the per-namespace plan over a Snapshot; scan controls."""

from __future__ import annotations

from typing import Any

import pytest

from kubeward.controls.pss import MERGED
from kubeward.controls.registry import Selection, aliases, all_controls, run
from kubeward.engines.pss import CHECKS, LATEST, Level, Version
from kubeward.engines.pss.namespaces import (
    DEFAULT_POLICY,
    LevelVersion,
    Policy,
    plan_namespaces,
    policy_from_labels,
)
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

P = "pod-security.kubernetes.io/"


def test_no_labels_gives_defaults() -> None:
    assert policy_from_labels({}) == (DEFAULT_POLICY, [])
    assert DEFAULT_POLICY.enforce == LevelVersion(Level.PRIVILEGED, LATEST)


def test_labels_set_each_mode_independently() -> None:
    policy, errors = policy_from_labels({P + "enforce": "baseline", P + "audit-version": "v1.29",
                                         P + "warn": "restricted", P + "warn-version": "v1.0"})
    assert errors == []
    assert policy.enforce == LevelVersion(Level.BASELINE, LATEST)
    assert policy.audit == LevelVersion(Level.PRIVILEGED, Version(29))
    assert policy.warn == LevelVersion(Level.RESTRICTED, Version(0))


@pytest.mark.parametrize(("labels", "expected"), [
    ({P + "enforce": "Baseline"}, Policy(enforce=LevelVersion(Level.RESTRICTED, LATEST))),  # fail closed
    ({P + "audit": "x"}, Policy()),  # fail open
    ({P + "warn": ""}, Policy()),
    ({P + "enforce": "baseline", P + "enforce-version": "v1.025"}, Policy(enforce=LevelVersion(Level.BASELINE, LATEST))),
])
def test_bad_labels_follow_psa_fallbacks(labels: dict[str, str], expected: Policy) -> None:
    policy, errors = policy_from_labels(labels)
    assert policy == expected
    assert len(errors) == 1 and errors[0].startswith("label pod-security.kubernetes.io/")


def test_defaults_are_overridable() -> None:
    defaults = Policy(enforce=LevelVersion(Level.BASELINE, Version(30)))
    policy, _ = policy_from_labels({P + "enforce-version": "v1.31"}, defaults)
    assert policy.enforce == LevelVersion(Level.BASELINE, Version(31))


def _res(obj: dict[str, Any]) -> Resource:
    return Resource(obj, file="m.yaml", line=1)


def _snapshot() -> Snapshot:
    return Snapshot([
        _res({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {P + "enforce": "baseline"}}}),
        _res({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "host", "namespace": "a"},
              "spec": {"hostPID": True, "containers": [{"name": "c"}]}}),
        _res({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kata", "namespace": "a"},
              "spec": {"runtimeClassName": "kata", "hostPID": True, "containers": [{"name": "c"}]}}),
        _res({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds", "namespace": "b"},
              "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}),
        _res({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "b"}}),
    ])


def test_plan_counts_rejections_and_next_level() -> None:
    plans = {p.name: p for p in plan_namespaces(_snapshot(), exempt_runtime_classes=["kata"])}
    a, b = plans["a"], plans["b"]
    assert a.labelled and not b.labelled
    assert a.declared and not b.declared
    assert [w.resource.name for w in a.workloads] == ["host", "kata"]
    assert a.count("enforce") == 1 and a.count("next") == 1
    assert a.workloads[1].exempt == "runtimeClassName kata" and a.workloads[1].results == {}
    assert a.next_level == LevelVersion(Level.RESTRICTED, LATEST)
    assert [w.resource.kind for w in b.workloads] == ["DaemonSet"]  # ConfigMaps carry no pod
    assert b.count("enforce") == 0 and b.count("next") == 0  # privileged → baseline: allowed
    assert b.next_level == LevelVersion(Level.BASELINE, LATEST)


def test_plan_respects_exempt_namespaces_and_filter() -> None:
    plans = plan_namespaces(_snapshot(), exempt_namespaces=["a"], namespaces=["a"])
    assert [p.name for p in plans] == ["a"]
    assert plans[0].exempt and plans[0].count("enforce") == 0


def test_scan_controls_one_per_check_with_frameworks() -> None:
    """A check whose fact a workload control reports is that control (its KW-PSS id an alias); the rest are
    KW-PSS-<check> controls. Every PSS check is in the registry one way or the other, with its levels."""
    controls = all_controls()
    pss = {cid for cid in controls if cid.startswith("KW-PSS-")}
    assert pss == {f"KW-PSS-{c.id}" for c in CHECKS if c.id not in MERGED}
    assert set(aliases()) == {f"KW-PSS-{c}" for c in MERGED}
    # hostPathVolumes is overridden at restricted, but restrictedVolumes forbids hostPath too: one finding, both levels
    assert controls["KW-W006"].meta.frameworks[-2:] == ("pss-baseline", "pss-restricted")
    assert controls["KW-W001"].meta.frameworks[-2:] == ("pss-baseline", "pss-restricted")
    assert controls["KW-W055"].meta.frameworks[-1:] == ("pss-restricted",)
    assert controls["KW-PSS-procMount_restricted"].meta.frameworks == ("pss-restricted",)
    chosen = Selection(include=("KW-PSS-hostNamespaces", "KW-PSS-runAsNonRoot")).choose(controls)
    assert [c.meta.id for c in chosen] == ["KW-W002", "KW-W003", "KW-W004", "KW-W020"]
    report = run(_snapshot(), chosen)
    got = sorted((f.control.id, f.object.name, f.path, f.message) for f in report.findings)
    assert ("KW-W002", "host", "/spec/hostPID", "pod shares the host's process ID namespace (hostPID: true)") in got
    assert ("KW-W020", "ds", "/spec/template/spec/containers/0/securityContext/runAsNonRoot",
            'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)') in got


def test_scan_findings_point_at_the_offending_field() -> None:
    snap = Snapshot([_res({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {
        "container.apparmor.security.beta.kubernetes.io/b": "unconfined"}}, "spec": {
        "securityContext": {"runAsUser": 0},
        "volumes": [{"name": "ok", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "a"}, {"name": "b", "securityContext": {"privileged": True}}]}})])
    ids = ("KW-PSS-privileged", "KW-PSS-hostPathVolumes", "KW-PSS-runAsUser", "KW-PSS-appArmorProfile")
    report = run(snap, Selection(include=ids).choose(all_controls()))
    assert {f.control.id: f.path for f in report.findings} == {
        "KW-W001": "/spec/containers/1/securityContext/privileged",
        "KW-W006": "/spec/volumes/1/hostPath",
        "KW-W021": "/spec/securityContext/runAsUser",
        "KW-W028": "/metadata/annotations",
    }
