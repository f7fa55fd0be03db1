"""Controls that skip an engine when the snapshot cannot give them a finding: the attack-path controls without
internet exposure (fewer than two workloads for KW-P102), the RBAC-engine controls without input bindings. Their
findings must be those of the full engine, on the demo cluster and every world of test_paths_worlds, as is and
stripped so that the shortcut applies."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.controls import paths as ctl
from kubeward.formats.paths import DEMO_DIR
from kubeward.resource import POD_KINDS, Resource
from kubeward.snapshot import Snapshot

WORLDS = Path(__file__).parent.parent / "data" / "paths"
Docs = list[dict[str, Any]]
CONTROLS = (ctl.exposed_to_cluster_admin, ctl.reachable_secret_reader, ctl.exposed_to_node)


def _docs(folder: Path, pattern: str) -> Docs:
    return [d for f in sorted(folder.rglob(pattern)) for d in yaml.safe_load_all(f.read_text())
            if isinstance(d, dict)]


def _unexposed(docs: Docs) -> Docs:
    """No Ingress, every Service ClusterIP without externalIPs, no hostNetwork, no hostPort."""
    out = []
    for d in copy.deepcopy(docs):
        if d.get("kind") == "Ingress":
            continue
        spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
        if d.get("kind") == "Service":
            spec.pop("externalIPs", None)
            spec["type"] = "ClusterIP"
        pod = Resource(d).pod()
        if pod is not None:
            pod.spec.pop("hostNetwork", None)
            for c in pod.spec.get("containers") or []:
                for p in c.get("ports") or []:
                    p.pop("hostPort", None)
        out.append(d)
    return out


def _one_workload(docs: Docs) -> Docs:
    first = next((i for i, d in enumerate(docs) if d.get("kind") in POD_KINDS), None)
    return [d for i, d in enumerate(docs) if d.get("kind") not in POD_KINDS or i == first]


def _findings(docs: Docs) -> list[list[tuple[str, str, str]]]:
    snap = Snapshot([Resource(copy.deepcopy(d), file=f"{i}.yaml") for i, d in enumerate(docs)])
    return [[(str(r.ref()), path, msg) for r, path, msg in c(snap)] for c in CONTROLS]


def _controller_pods() -> Docs:
    """Pods running as kube-system controller accounts the bootstrap policy binds (to escalate, to read every
    secret): with no binding in the inputs, what the RBAC index holds for them is the bootstrap policy's alone."""
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": sa, "namespace": "kube-system"},
             "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x:1"}]}}
            for sa in ("clusterrole-aggregation-controller", "generic-garbage-collector", "namespace-controller")]


def _worlds() -> dict[str, Docs]:
    worlds = {f.stem: _docs(WORLDS, f.name) for f in sorted(WORLDS.glob("*.yaml"))}
    worlds["demo"] = _docs(Path(DEMO_DIR), "*.yaml")
    worlds["kube-system-controllers"] = _controller_pods()
    return worlds


VARIANTS: dict[str, Callable[[Docs], Docs]] = {
    "as-is": lambda d: d, "unexposed": _unexposed, "one-workload": _one_workload,
    "unexposed-one-workload": lambda d: _one_workload(_unexposed(d)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("world", sorted(_worlds()))
def test_shortcut_gives_the_full_graphs_findings(world: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = VARIANTS[variant](_worlds()[world])
    fast = _findings(docs)
    with monkeypatch.context() as m:
        m.setattr(ctl, "_exposable", lambda s: True)
        m.setattr(ctl, "_two_workloads", lambda s: True)
        full = _findings(docs)
    assert fast == full


def test_shortcut_applies_where_it_should() -> None:
    """The stripped variants really take the shortcut, the original worlds (all exposed) do not."""
    worlds = _worlds()
    snap = lambda docs: Snapshot([Resource(copy.deepcopy(d)) for d in docs])  # noqa: E731
    assert all(ctl._exposable(snap(docs)) for name, docs in worlds.items()
               if name not in ("demo", "kube-system-controllers"))
    assert not any(ctl._exposable(snap(_unexposed(docs))) for docs in worlds.values())
    assert not any(ctl._two_workloads(snap(_one_workload(docs))) for docs in worlds.values())
    # and the full graph finds something on the originals, so equality above is not between two empty lists
    assert any(any(f) for docs in worlds.values() for f in _findings(docs))


def _without(*kinds: str) -> Callable[[Docs], Docs]:
    return lambda docs: [d for d in docs if d.get("kind") not in kinds]


RBAC_VARIANTS: dict[str, Callable[[Docs], Docs]] = {
    "as-is": lambda d: d, "no-bindings": _without("RoleBinding", "ClusterRoleBinding"),
    "no-clusterroles": _without("ClusterRole"), "no-rbac": _without("Role", "ClusterRole", "RoleBinding",
                                                                      "ClusterRoleBinding"),
}


@pytest.mark.parametrize("variant", sorted(RBAC_VARIANTS))
@pytest.mark.parametrize("world", sorted(_worlds()))
def test_rbac_shortcut_gives_the_full_indexs_findings(world: str, variant: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """KW-R101..R104 skip the RBAC index when the inputs hold no binding (no ClusterRole for R104)."""
    from kubeward.controls import rbac_engine as rb

    controls = (rb.escalation_path, rb.pod_inherits_critical, rb.dangling_binding, rb.aggregation_injects)
    docs = RBAC_VARIANTS[variant](_worlds()[world])

    def run() -> list[list[tuple[str, str, str]]]:
        snap = Snapshot([Resource(copy.deepcopy(d), file=f"{i}.yaml") for i, d in enumerate(docs)])
        return [[(str(r.ref()), path, msg) for r, path, msg in c(snap)] for c in controls]

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(rb, "_no_input", lambda s, *kinds: False)
        full = run()
    assert fast == full
    if variant == "as-is" and world == "demo":
        assert any(full)  # the demo's RBAC findings: equality is not between empty lists
