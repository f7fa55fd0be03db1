"""Everything the engine needs from a snapshot, gathered by one function (`from_snapshot`) and compiled once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ...resource import Resource
from ...snapshot import Snapshot
from .admin import AdminPolicy, compile_admin, node_addresses
from .ipblock import IP, parse_ip
from .model import Pod, named_ports_of
from .policy import EGRESS, INGRESS, Policy, compile_policy

# Owners whose pods are represented by the owner itself (a Deployment stands for its ReplicaSets' pods).
_OWNED_BY = {"ReplicaSet": "Deployment", "Job": "CronJob"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")


@dataclass(slots=True)
class Cluster:
    pods: list[Pod]
    policies: list[Policy]
    admin: list[AdminPolicy] = field(default_factory=list)  # ANPs by priority, then the BANP (last tier)
    ipblock_matches_pods: bool = True
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    _by_key: dict[str, Pod] = field(init=False, repr=False)
    _by_ip: dict[IP, Pod] = field(init=False, repr=False)
    _by_ns: dict[str, list[Policy]] = field(init=False, repr=False)
    _selecting: dict[tuple[int, str], list[Policy]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.admin.sort(key=lambda a: (a.priority, a.name))
        self._by_key = {p.key: p for p in self.pods}
        self._by_ip = {}
        for p in self.pods:
            for ip in p.ips:
                self._by_ip.setdefault(ip, p)
        self._by_ns = {}
        for pol in self.policies:
            self._by_ns.setdefault(pol.namespace, []).append(pol)
        self._selecting = {}

    def pod(self, key: str) -> Pod | None:
        return self._by_key.get(key)

    def pod_by_ip(self, ip: IP) -> Pod | None:
        return self._by_ip.get(ip)

    def policies_in(self, namespace: str) -> list[Policy]:
        return self._by_ns.get(namespace, [])

    def selecting(self, pod: Pod, direction: str) -> list[Policy]:
        """Policies that isolate `pod` for `direction` (docs: "any NetworkPolicy that both selects the pod and has
        <direction> in its policyTypes")."""
        if self._by_key.get(pod.key) is not pod:  # a pod from elsewhere: no memo
            return [p for p in self.policies_in(pod.namespace) if direction in p.types and p.selects(pod)]
        key = (id(pod), direction)
        found = self._selecting.get(key)
        if found is None:
            found = [p for p in self.policies_in(pod.namespace) if direction in p.types and p.selects(pod)]
            self._selecting[key] = found
        return found

    def isolated(self, pod: Pod) -> dict[str, bool]:
        return {d: bool(self.selecting(pod, d)) for d in (INGRESS, EGRESS)}


def _str_map(labels: object) -> dict[str, str]:
    """Labels as strings (hostile input may carry numbers or lists; the API only stores strings)."""
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _ips(status: object) -> tuple[IP, ...]:
    if not isinstance(status, dict):
        return ()
    texts: list[str] = []
    for item in status.get("podIPs") or []:
        if isinstance(item, dict) and item.get("ip"):
            texts.append(str(item["ip"]))
    if status.get("podIP"):
        texts.append(str(status["podIP"]))
    seen: list[IP] = []
    for t in texts:
        ip = parse_ip(t)
        if ip is not None and ip not in seen:
            seen.append(ip)
    return tuple(seen)


def _owned_by(res: Resource, kind: str) -> bool:
    refs = res.metadata.get("ownerReferences")
    return isinstance(refs, list) and any(isinstance(r, dict) and r.get("kind") == kind for r in refs)


def pods_of(snapshot: Snapshot, ns_labels: dict[str, dict[str, str]]) -> list[Pod]:
    """Pods as written; plus one representative per workload whose pods are not in the snapshot (manifests)."""
    out: list[Pod] = []
    seen: set[str] = set()
    by_ns: dict[str, list[Pod]] = {}

    def labels_for(ns: str) -> dict[str, str]:
        if ns not in ns_labels:
            ns_labels[ns] = _str_map(snapshot.namespace_labels(ns))
        return ns_labels[ns]

    for res in snapshot.of_kind("Pod"):
        view = res.pod()
        if view is None:
            continue
        ns = res.namespace or "default"
        status = res.obj.get("status")
        pod = Pod(
            namespace=ns, name=res.name, labels=_str_map(res.labels), ns_labels=labels_for(ns), ips=_ips(status),
            named_ports=named_ports_of(view.spec),
            host_ip=parse_ip(str(status.get("hostIP"))) if isinstance(status, dict) and status.get("hostIP") else None,
            host_network=view.spec.get("hostNetwork") is True, resource=res,
        )
        if pod.key in seen:
            continue
        seen.add(pod.key)
        out.append(pod)
        by_ns.setdefault(ns, []).append(pod)
    for res in snapshot.of_kind(*WORKLOAD_KINDS):
        owner = _OWNED_BY.get(res.kind)
        if owner and _owned_by(res, owner):
            continue
        view = res.pod()
        if view is None:
            continue
        ns = res.namespace or "default"
        labels = _str_map(view.labels)
        # A workload is already represented when a real pod in its namespace carries its template labels.
        if any(all(p.labels.get(k) == v for k, v in labels.items()) for p in by_ns.get(ns, ())) and labels:
            continue
        name = res.name
        key = f"{ns}/{name}"
        if key in seen:
            name = f"{res.kind.lower()}-{name}"
            key = f"{ns}/{name}"
        seen.add(key)
        out.append(Pod(namespace=ns, name=name, labels=labels, ns_labels=labels_for(ns),
                       named_ports=named_ports_of(view.spec), host_network=view.spec.get("hostNetwork") is True,
                       workload=f"{res.kind}/{res.name}", resource=res))
    out.sort(key=lambda p: (p.namespace, p.name))
    return out


def from_snapshot(snapshot: Snapshot, *, ipblock_matches_pods: bool = True) -> Cluster:
    """The single place where pods and policies come from; live-cluster sources produce a Snapshot too."""
    ns_labels = {ns: _str_map(snapshot.namespace_labels(ns)) for ns in snapshot.namespaces()}
    pods = pods_of(snapshot, ns_labels)
    policies = [compile_policy(r) for r in snapshot.of_kind("NetworkPolicy")]
    nodes = node_addresses(snapshot.of_kind("Node"))
    admin = [compile_admin(r, nodes) for r in snapshot.of_kind("AdminNetworkPolicy", "BaselineAdminNetworkPolicy")]
    return Cluster(pods, policies, admin, ipblock_matches_pods, ns_labels)


def build(pods: Iterable[Pod], policies: Iterable[Policy], admin: Iterable[AdminPolicy] = (), *,
          ipblock_matches_pods: bool = True) -> Cluster:
    """A cluster from already-built parts (tests, benchmarks, the node agent)."""
    pods = list(pods)
    ns = {p.namespace: dict(p.ns_labels) for p in pods}
    return Cluster(pods, list(policies), list(admin), ipblock_matches_pods, ns)
