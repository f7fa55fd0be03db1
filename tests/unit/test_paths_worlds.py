"""Scenario worlds from public attack write-ups (tests/data/paths): the expected paths are found and no others,
and applying the fix the min-cut suggests (to the manifests, then rebuilding the graph) removes every path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.paths import analyze
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

WORLDS = Path(__file__).parent.parent / "data" / "paths"
Docs = list[dict[str, Any]]

# world → target → the visible nodes of every path from the internet (ranked)
EXPECTED: dict[str, dict[str, list[tuple[str, ...]]]] = {
    "dashboard": {
        "cluster-admin": [("internet", "pod kubernetes-dashboard/dashboard",
                           "ServiceAccount kubernetes-dashboard/dashboard", "cluster-admin")],
        "secrets": [("internet", "pod kubernetes-dashboard/dashboard", "ServiceAccount kubernetes-dashboard/dashboard",
                     "secrets (every namespace)")],
    },
    "daemonset": {
        "cluster-admin": [],
        "nodes": [("internet", "pod logging/shipper", "node (any)")],
    },
    "ci-runner": {
        "cluster-admin": [("internet", "pod ci/runner", "ServiceAccount ci/runner", "any service account in kube-system",
                           "ServiceAccount kube-system/ops-admin", "cluster-admin")],
    },
    "token-secret": {
        "cluster-admin": [("internet", "pod shop/web", "ServiceAccount shop/web", "ServiceAccount shop/deployer",
                           "cluster-admin")],
    },
    "lateral": {
        "cluster-admin": [],
        "nodes": [],
        "secrets": [("internet", "pod app/frontend", "pod app/backup", "ServiceAccount app/backup",
                     "secrets (every namespace)")],
    },
    "netpol-blocked": {"cluster-admin": [], "secrets": [], "nodes": []},
    "docker-socket": {
        "cluster-admin": [("internet", "pod jenkins/jenkins", "node (any)", "ServiceAccount kube-system/cni",
                           "cluster-admin")],
        "nodes": [("internet", "pod jenkins/jenkins", "node (any)")],
    },
    "impersonate": {
        "cluster-admin": [("internet", "pod support/helpdesk", "ServiceAccount support/helpdesk", "cluster-admin")],
    },
}


def load(world: str) -> Docs:
    return [d for d in yaml.safe_load_all((WORLDS / f"{world}.yaml").read_text()) if d]


def snap(docs: Docs) -> Snapshot:
    return Snapshot([Resource(copy.deepcopy(d), file=f"{i}.yaml") for i, d in enumerate(docs)])


def find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod_spec(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    d = find(docs, kind, name)
    return d["spec"] if kind == "Pod" else d["spec"]["template"]["spec"]


def drop_subject(kind: str, name: str) -> Callable[[Docs], None]:
    def fix(docs: Docs) -> None:
        find(docs, kind, name)["subjects"] = []
    return fix


def no_automount(kind: str, name: str) -> Callable[[Docs], None]:
    def fix(docs: Docs) -> None:
        pod_spec(docs, kind, name)["automountServiceAccountToken"] = False
    return fix


def unprivileged(docs: Docs) -> None:
    pod_spec(docs, "DaemonSet", "shipper")["containers"][0]["securityContext"]["privileged"] = False


# world → target → the manifest change that the suggested fix describes
FIXES: dict[tuple[str, str], Callable[[Docs], None]] = {
    ("dashboard", "cluster-admin"): no_automount("Deployment", "dashboard"),
    ("dashboard", "secrets"): no_automount("Deployment", "dashboard"),
    ("daemonset", "nodes"): unprivileged,
    ("ci-runner", "cluster-admin"): drop_subject("RoleBinding", "runner-pods"),
    ("token-secret", "cluster-admin"): drop_subject("RoleBinding", "web-secrets"),
    ("lateral", "secrets"): drop_subject("ClusterRoleBinding", "backup-secrets"),
    ("docker-socket", "cluster-admin"): drop_subject("ClusterRoleBinding", "cni"),
    ("docker-socket", "nodes"): lambda docs: find(docs, "Service", "jenkins")["spec"].update(type="ClusterIP"),
    ("impersonate", "cluster-admin"): drop_subject("ClusterRoleBinding", "helpdesk-impersonate"),
}
# what the suggested fix says, so the change applied above is the one the user is told to make
FIX_WORDS: dict[tuple[str, str], str] = {
    ("dashboard", "cluster-admin"): "automountServiceAccountToken: false",
    ("daemonset", "nodes"): "privileged: false",
    ("ci-runner", "cluster-admin"): 'RoleBinding "runner-pods/kube-system"',
    ("token-secret", "cluster-admin"): 'RoleBinding "web-secrets/shop"',
    ("lateral", "secrets"): 'ClusterRoleBinding "backup-secrets"',
    ("docker-socket", "cluster-admin"): 'ClusterRoleBinding "cni"',
    ("docker-socket", "nodes"): "ClusterIP",
    ("impersonate", "cluster-admin"): 'ClusterRoleBinding "helpdesk-impersonate"',
}


def test_at_least_eight_worlds() -> None:
    assert len(list(WORLDS.glob("*.yaml"))) >= 8
    assert set(EXPECTED) == {p.stem for p in WORLDS.glob("*.yaml")}


@pytest.mark.parametrize(("world", "target"), [(w, t) for w, ts in EXPECTED.items() for t in ts])
def test_expected_paths_and_no_others(world: str, target: str) -> None:
    a = analyze(snap(load(world)), "internet", target)
    assert [p.key for p in a.paths] == EXPECTED[world][target]
    for p in a.paths:
        for s in p.steps:
            assert s.main.evidence and s.main.engine  # every step says what makes it possible
        assert p.cost == sum(e.cost for e in p.edges) > 0


@pytest.mark.parametrize(("world", "target"), sorted(FIXES))
def test_suggested_fix_removes_every_path(world: str, target: str) -> None:
    docs = load(world)
    a = analyze(snap(docs), "internet", target)
    assert a.paths
    cut = a.cut()
    assert not cut.uncuttable and len(cut.fixes) == 1
    if (world, target) in FIX_WORDS:
        assert FIX_WORDS[(world, target)] in cut.fixes[0].fix
    # the cut on the graph itself
    after = analyze(snap(docs), "internet", target, graph=a.graph.without(set(cut.removes)))
    assert after.paths == []
    # and the change made to the manifests, recomputed from scratch
    FIXES[(world, target)](docs)
    assert analyze(snap(docs), "internet", target).paths == []


def test_from_pods_and_subject() -> None:
    s = snap(load("token-secret"))
    a = analyze(s, "subject ServiceAccount:shop:web", "cluster-admin")
    assert [p.key for p in a.paths] == [("ServiceAccount shop/web", "ServiceAccount shop/deployer", "cluster-admin")]
    a = analyze(s, "pods", "cluster-admin")
    assert {p.source for p in a.paths} == {"pod shop/web"}
    a = analyze(s, "pod shop/web", "shop")  # --to a namespace: run as any of its service accounts
    assert a.paths and a.paths[0].key[-1] == "any service account in shop"


def test_subject_no_binding_names_inherits_its_groups() -> None:
    docs = load("impersonate")
    docs[3]["subjects"] = [{"kind": "Group", "name": "system:serviceaccounts:dev", "apiGroup": "rbac.authorization.k8s.io"}]
    a = analyze(snap(docs), "subject dev/nobody", "cluster-admin")
    assert [p.key for p in a.paths] == [("ServiceAccount dev/nobody", "Group system:serviceaccounts:dev",
                                         "cluster-admin")]
    assert analyze(snap(docs), "subject User:alice", "cluster-admin").paths == []


def test_cut_counts_changes_not_edges() -> None:
    """One binding that grants many steps (impersonate any group: every group and system:masters) is one change."""
    docs = load("impersonate")
    a = analyze(snap(docs), "pods", "cluster-admin")
    helpdesk = [e for e in a.graph.out["ServiceAccount support/helpdesk"] if e.kind.value == "rbac"]
    assert len(helpdesk) > 1 and len({e.fix for e in helpdesk}) == 1
    cut = a.cut()
    assert len(cut.fixes) == 1 and cut.removes >= {(e.src, e.dst) for e in helpdesk}


def test_cut_of_several_worlds_together() -> None:
    docs = [d for w in ("dashboard", "ci-runner", "token-secret", "impersonate") for d in load(w)]
    a = analyze(snap(docs), "internet", "cluster-admin")
    cut = a.cut()
    assert len(a.paths) == 4 and len(cut.fixes) == 4 and sum(cut.breaks.values()) == 4
    assert analyze(snap(docs), "internet", "cluster-admin", graph=a.graph.without(set(cut.removes))).paths == []
