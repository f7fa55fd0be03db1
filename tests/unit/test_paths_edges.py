"""Every edge type, and the one fact behind it: with the fact the edge is there, without it the edge is gone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubeward.paths import build
from kubeward.paths.graph import NODES, SECRETS, EdgeKind
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

Docs = list[dict[str, Any]]
RBAC = "rbac.authorization.k8s.io/v1"


def deploy(name: str, ns: str = "app", sa: str = "web", kind: str = "Deployment", **spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"serviceAccountName": sa, "containers": [
        {"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}], **spec}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def service(name: str, ns: str = "app", kind: str = "LoadBalancer", target: Any = "http") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": target}]}}


def crb(name: str, role: str, sa: str, ns: str = "app") -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}


def cr(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def ns(name: str, level: str | None = None) -> dict[str, Any]:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def edges(docs: Docs) -> set[tuple[str, str, EdgeKind]]:
    g = build(Snapshot([Resource(copy.deepcopy(d)) for d in docs]))
    out = set()
    for e in g.edges():
        dst = "pod" if e.dst.startswith("netdg:") else e.dst
        out.add((e.src if not e.src.startswith("netgrp:") else "net", dst, e.kind))
    return out


def spec_of(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]


def set_spec(**kv: Any) -> Callable[[Docs], None]:
    def change(docs: Docs) -> None:
        spec_of(docs[1]).update(kv)
    return change


WEB = "pod app/web"
SA = "ServiceAccount app/web"
CASES: dict[str, tuple[Docs, tuple[str, str, EdgeKind], Callable[[Docs], None]]] = {
    "exposed: LoadBalancer → ClusterIP": (
        [ns("app", "restricted"), deploy("web"), service("web")], ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: d[2]["spec"].update(type="ClusterIP")),
    "exposed: NodePort → ClusterIP": (
        [ns("app", "restricted"), deploy("web"), service("web", kind="NodePort")], ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: d[2]["spec"].update(type="ClusterIP")),
    "exposed: LoadBalancer source ranges": (
        [ns("app", "restricted"), deploy("web"), service("web", kind="LoadBalancer")],
        ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: d[2]["spec"].update(loadBalancerSourceRanges=["10.0.0.0/8"], allocateLoadBalancerNodePorts=False)),
    "exposed: targetPort name the pod does not define": (
        [ns("app", "restricted"), deploy("web"), service("web")], ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: d[2]["spec"]["ports"][0].update(targetPort="metrics")),
    "exposed: a NetworkPolicy admits no outside address": (
        [ns("app", "restricted"), deploy("web"), service("web")], ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: d.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": "lock", "namespace": "app"},
                            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                                     "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}})),
    "exposed: Ingress backend": (
        [ns("app", "restricted"), deploy("web"), service("web", kind="ClusterIP"),
         {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "app"},
          "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}],
        ("internet", WEB, EdgeKind.EXPOSED), lambda d: d.pop()),
    "exposed: hostNetwork": (
        [ns("app"), deploy("web", hostNetwork=True)], ("internet", WEB, EdgeKind.EXPOSED),
        set_spec(hostNetwork=False)),
    "exposed: hostPort": (
        [ns("app"), deploy("web")], ("internet", WEB, EdgeKind.EXPOSED),
        lambda d: spec_of(d[1])["containers"][0]["ports"][0].pop("hostPort")),
    "network: a NetworkPolicy isolates the destination": (
        [ns("app", "restricted"), deploy("web"), deploy("db", sa="db")], ("net", "pod", EdgeKind.NETWORK),
        lambda d: d.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": "deny", "namespace": "app"},
                            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})),
    "runs-as: automounted token": (
        [ns("app"), deploy("web")], (WEB, SA, EdgeKind.RUNS_AS), set_spec(automountServiceAccountToken=False)),
    "runs-as: the ServiceAccount turns automount off": (
        [ns("app"), deploy("web")], (WEB, SA, EdgeKind.RUNS_AS),
        lambda d: d.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "app"},
                            "automountServiceAccountToken": False})),
    "runs-as: projected token volume": (
        [ns("app"), deploy("web", automountServiceAccountToken=False,
                           volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}])],
        (WEB, SA, EdgeKind.RUNS_AS), set_spec(volumes=[])),
    "runs-as: token Secret volume": (
        [ns("app"), deploy("web", automountServiceAccountToken=False,
                           volumes=[{"name": "t", "secret": {"secretName": "admin-token"}}]),
         {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
          "metadata": {"name": "admin-token", "namespace": "app",
                       "annotations": {"kubernetes.io/service-account.name": "admin"}}}],
        (WEB, "ServiceAccount app/admin", EdgeKind.RUNS_AS), lambda d: d[2].update(type="Opaque")),
    "escapes: privileged": (
        [ns("app"), deploy("web")], (WEB, NODES, EdgeKind.ESCAPES),
        lambda d: spec_of(d[1])["containers"][0]["securityContext"].update(privileged=False)),
    "escapes: hostPID": (
        [ns("app"), deploy("web", hostPID=True)], (WEB, NODES, EdgeKind.ESCAPES), set_spec(hostPID=False)),
    "escapes: sensitive hostPath": (
        [ns("app"), deploy("web", volumes=[{"name": "h", "hostPath": {"path": "/var/lib/../lib/kubelet/"}}])],
        (WEB, NODES, EdgeKind.ESCAPES), set_spec(volumes=[{"name": "h", "hostPath": {"path": "/data/cache"}}])),
    "escapes: runtime socket": (
        [ns("app"), deploy("web", volumes=[{"name": "h", "hostPath": {"path": "/run/containerd/containerd.sock"}}])],
        (WEB, NODES, EdgeKind.ESCAPES), set_spec(volumes=[{"name": "h", "emptyDir": {}}])),
    "escapes: SYS_ADMIN": (
        [ns("app"), deploy("web")], (WEB, NODES, EdgeKind.ESCAPES),
        lambda d: spec_of(d[1])["containers"][0]["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE"])),
    "node-credentials: the node may get the pod's service account token": (
        [ns("app"), deploy("web", kind="DaemonSet")], (NODES, SA, EdgeKind.NODE_CREDENTIALS), lambda d: d.pop()),
    "rbac: a binding's grant": (
        [ns("app"), deploy("web"), cr("imp", {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["groups"]}),
         crb("imp", "imp", "web")], (SA, "cluster-admin", EdgeKind.RBAC), lambda d: d[3].update(subjects=[])),
    "rbac: pod creation in a namespace admitting privileged pods": (
        [ns("app"), deploy("web"), cr("pods", {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}),
         crb("pods", "pods", "web")], ("create-pods *", NODES, EdgeKind.ESCAPES),
        lambda d: d.extend(ns(n, "baseline") for n in ("app", "default", "kube-system", "kube-public",
                                                          "kube-node-lease"))),
    "reads-secret: get secrets cluster-wide": (
        [ns("app"), deploy("web"), cr("s", {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}),
         crb("s", "s", "web")], (SA, SECRETS, EdgeKind.READS_SECRET),
        lambda d: d[2]["rules"][0].update(resourceNames=["one"])),
}


def _prime(name: str, docs: Docs) -> None:
    if name == "exposed: hostPort":
        spec_of(docs[1])["containers"][0]["ports"][0]["hostPort"] = 8080
    if name in ("escapes: privileged", "escapes: SYS_ADMIN"):
        sc: dict[str, Any] = {"privileged": True} if "privileged" in name else {"capabilities": {"add": ["SYS_ADMIN"]}}
        spec_of(docs[1])["containers"][0]["securityContext"] = sc


@pytest.mark.parametrize("name", sorted(CASES))
def test_edge_needs_its_fact(name: str) -> None:
    docs, edge, change = CASES[name]
    docs = copy.deepcopy(docs)
    _prime(name, docs)
    assert edge in edges(docs)
    change(docs)
    assert edge not in edges(docs)


def test_every_edge_type_has_a_case() -> None:
    kinds = {edge[2] for _, edge, _ in CASES.values()}
    assert kinds == set(EdgeKind) - {EdgeKind.MEMBER}


def test_undeclared_port_is_a_harder_step() -> None:
    docs = [ns("app", "restricted"), deploy("web"), deploy("db", sa="db")]
    spec_of(docs[2])["containers"][0].pop("ports")
    g = build(Snapshot([Resource(d) for d in docs]))
    costs = {e.cost for e in g.edges() if e.kind is EdgeKind.NETWORK and "app/db" in e.evidence.split(" to ")[1]}
    assert costs == {3}


def test_rbac_steps_claim_requests_the_authorizer_allows() -> None:
    """Each RBAC step names the requests it needs (what the live test asks SubjectAccessReview); offline, the RBAC
    authorizer must allow every one for the step's identity."""
    from pathlib import Path

    import yaml

    from kubeward.engines.rbac import RBACIndex, Request, UserInfo

    for world in sorted((Path(__file__).parent.parent / "data" / "paths").glob("*.yaml")):
        snap = Snapshot([Resource(d) for d in yaml.safe_load_all(world.read_text()) if d])
        idx = RBACIndex.from_snapshot(snap)
        g = build(snap, idx)
        for e in g.edges():
            if e.kind not in (EdgeKind.RBAC, EdgeKind.READS_SECRET) or not e.src.startswith(("User ", "ServiceAccount ")):
                continue
            assert e.claims, e
            kind, _, rest = e.src.partition(" ")
            user = f"system:serviceaccount:{rest.replace('/', ':')}" if kind == "ServiceAccount" else rest
            for verb, group, resource, sub, ns, name in e.claims:
                d = idx.authorize(UserInfo(user, ()), Request(verb, resource, sub, group, ns, name))
                assert d.allowed, (world, e.src, e.evidence, verb, resource, ns, name)


def test_cluster_wide_pod_creation_counts_the_namespaces_every_cluster_has() -> None:
    docs = [ns("app", "restricted"), deploy("web"),
            cr("pods", {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}), crb("pods", "pods", "web")]
    assert ("create-pods *", NODES, EdgeKind.ESCAPES) in edges(docs)  # "default" is unlabelled: privileged
    docs += [ns(n, "baseline") for n in ("default", "kube-system", "kube-public", "kube-node-lease")]
    assert ("create-pods *", NODES, EdgeKind.ESCAPES) not in edges(docs)
