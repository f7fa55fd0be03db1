"""Least-privilege NetworkPolicies from observed flows: one policy per workload, selecting it by its labels,
isolating both directions and allowing exactly the observed peers on the observed ports.

Workloads are identified by the pod's labels minus the per-pod ones controllers add (pod-template-hash and
friends), so all replicas share one policy. Peers in the same namespace are selected by podSelector alone; other
namespaces add a namespaceSelector on the immutable `kubernetes.io/metadata.name` label; external ends become
`ipBlock` /32 (or /128) entries. Egress always allows the cluster DNS (kube-system k8s-app=kube-dns, UDP and TCP
53), and the DNS pods' own policy, when they appear in the flows, answers every pod on those ports, so the isolation
the policies add does not break name resolution.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .flows import Flow, FlowChecker
from .model import External, Pod

# Labels a controller sets per pod or per revision; selecting on them would pin a policy to one replica.
PER_POD_LABELS = frozenset({
    "pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index", "pod-template-generation", "controller-uid", "job-name",
    "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/job-completion-index",
})
NS_LABEL = "kubernetes.io/metadata.name"
# Egress isolation must keep name resolution working: every generated policy lets its pods reach the cluster DNS,
# the kube-system pods labelled k8s-app=kube-dns (the label kube-dns and CoreDNS deployments carry, and the one
# the kubernetes.io NetworkPolicy docs and lint's KW-N112 use), on UDP and TCP 53 (DNS falls back to TCP for large
# answers, RFC 7766).
DNS_PEER: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NS_LABEL: "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
DNS_PORTS = (("UDP", 53), ("TCP", 53))

Workload = tuple[str, tuple[tuple[str, str], ...]]  # (namespace, selector labels)


def workload_of(pod: Pod) -> Workload:
    return pod.namespace, tuple(sorted((k, v) for k, v in pod.labels.items() if k not in PER_POD_LABELS))


@dataclass(slots=True)
class _Rules:
    """peer (JSON-able, as a hashable key) → set of (protocol, port)."""

    by_peer: dict[str, tuple[dict[str, Any], set[tuple[str, int]]]] = field(default_factory=dict)

    def add(self, peer: dict[str, Any], protocol: str, port: int) -> None:
        key = repr(sorted(peer.items()))
        self.by_peer.setdefault(key, (peer, set()))[1].add((protocol, port))

    def render(self, peer_key: str) -> list[dict[str, Any]]:
        rules = []
        for _, (peer, ports) in sorted(self.by_peer.items()):
            rules.append({peer_key: [peer],
                          "ports": [{"protocol": proto, "port": port} for proto, port in sorted(ports)]})
        return rules


def _peer(end: Pod | External, home_ns: str) -> dict[str, Any]:
    if isinstance(end, External):
        return {"ipBlock": {"cidr": f"{end.ip}/{32 if end.ip.version == 4 else 128}"}}
    ns, labels = workload_of(end)
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(labels)} if labels else {}}
    if ns != home_ns:
        peer["namespaceSelector"] = {"matchLabels": {NS_LABEL: ns}}
    return peer


def _name(labels: tuple[tuple[str, str], ...], fallback: str) -> str:
    d = dict(labels)
    base = d.get("app.kubernetes.io/name") or d.get("app") or d.get("k8s-app") or d.get("name") or fallback
    return "".join(c if c.isalnum() or c in "-." else "-" for c in str(base).lower()).strip("-.")[:200] or "workload"


def generate(checker: FlowChecker, flows: Iterable[Flow]) -> list[dict[str, Any]]:
    """NetworkPolicy manifests (dicts) allowing exactly `flows`, for every workload that appears in them."""
    ingress: dict[Workload, _Rules] = {}
    egress: dict[Workload, _Rules] = {}
    samples: dict[Workload, Pod] = {}
    for f in flows:
        src, dst = checker.endpoint(f.src), checker.endpoint(f.dst)
        if src is dst and isinstance(src, Pod) and src.single:
            continue  # loopback is always allowed (a representative of several replicas needs its rule)
        if isinstance(dst, Pod):
            w = workload_of(dst)
            samples.setdefault(w, dst)
            ingress.setdefault(w, _Rules()).add(_peer(src, dst.namespace), f.protocol, f.port)
            egress.setdefault(w, _Rules())
        if isinstance(src, Pod):
            w = workload_of(src)
            samples.setdefault(w, src)
            egress.setdefault(w, _Rules()).add(_peer(dst, src.namespace), f.protocol, f.port)
            ingress.setdefault(w, _Rules())
    for rules in egress.values():
        for proto, port in DNS_PORTS:
            rules.add(copy.deepcopy(DNS_PEER), proto, port)  # no shared objects: YAML would alias them
    dns = [p.labels for p in checker.cluster.pods if p.namespace == "kube-system"
           and p.labels.get("k8s-app") == "kube-dns"] or [{"k8s-app": "kube-dns"}]
    for w, rules in ingress.items():
        ns, labels = w
        if ns == "kube-system" and any(all(d.get(k) == v for k, v in labels) for d in dns):
            # This policy selects the DNS pods (their own, or a broader one): they must still answer every pod
            # of every namespace once isolated.
            for proto, port in DNS_PORTS:
                rules.add({"namespaceSelector": {}}, proto, port)
    out = []
    used: set[tuple[str, str]] = set()
    for w in sorted(samples):
        ns, labels = w
        name = base = f"{_name(labels, samples[w].name)}-least-privilege"
        n = 2
        while (ns, name) in used:
            name, n = f"{base}-{n}", n + 1
        used.add((ns, name))
        out.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app.kubernetes.io/managed-by": "kubeward"}},
            "spec": {
                "podSelector": {"matchLabels": dict(labels)} if labels else {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": ingress[w].render("from"),
                "egress": egress[w].render("to"),
            },
        })
    return out
