"""Attack-path controls (KW-P1xx): a path in the attack graph (kubeward.paths) is a finding, so a scan in CI fails
on a new one. Each finding points at the workload where the path enters and names every step; the graph is built
once per snapshot and shared by the three controls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..resource import POD_KINDS, Resource
from ..snapshot import Snapshot
from .registry import control

if TYPE_CHECKING:
    from ..paths import Analysis, Graph, Path

Found = Iterator[tuple[Resource, str, str]]
READS = ("Service", "Ingress", "NetworkPolicy", "ServiceAccount", "Namespace", "Role", "ClusterRole", "RoleBinding",
         "ClusterRoleBinding")


def _exposable(snapshot: Snapshot) -> bool:
    """False when nothing in the snapshot can give an internet edge (kubeward.paths.build._exposure and _exposed:
    a LoadBalancer or NodePort Service, externalIPs, an Ingress, hostNetwork, a hostPort): then no path starts at
    the internet and the graph need not be built. A necessary condition only; the graph decides the rest."""
    if snapshot.of_kind("Ingress"):
        return True
    for svc in snapshot.of_kind("Service"):
        spec = svc.obj.get("spec")
        if isinstance(spec, dict) and (spec.get("type") in ("LoadBalancer", "NodePort") or spec.get("externalIPs")):
            return True
    for res in snapshot.of_kind(*POD_KINDS):
        view = res.pod()
        if view is None:
            continue
        if view.spec.get("hostNetwork"):
            return True
        for fld in ("initContainers", "containers", "ephemeralContainers"):
            for c in view.spec.get(fld) or ():
                if isinstance(c, dict) and any(isinstance(p, dict) and p.get("hostPort")
                                               for p in c.get("ports") or ()):
                    return True
    return False


def _two_workloads(snapshot: Snapshot) -> bool:
    """KW-P102 needs a pod reached from another pod: the graph holds one pod node per workload (netpol pods_of:
    a representative per workload), so with fewer than two there is no witness."""
    return len(snapshot.of_kind(*POD_KINDS)) >= 2


def _graph(snapshot: Snapshot) -> Graph:
    from ..paths import build
    from .netpol import netpol_cluster
    from .rbac_engine import _escalations, _index

    return snapshot.derived("paths.graph", lambda s: build(s, _index(s), escalations=_escalations(s),
                                                            cluster=netpol_cluster(s)),
                            update=lambda before, s, _: build(s, _index(s), escalations=_escalations(s),
                                                              cluster=netpol_cluster(s), reuse=before))


def _analysis(snapshot: Snapshot, source: str, target: str) -> Analysis:
    from ..paths import analyze

    return snapshot.derived(f"paths.{source}>{target}",
                            lambda s: analyze(s, source, target, graph=_graph(s), per_entry=source != "pods"))


def _entry(snapshot: Snapshot, p: Path, step: int) -> tuple[Resource, str] | None:
    """The workload of the path's pod at `step` (0: the source itself), and the pointer of its pod spec."""
    node = p.key[step]
    if not node.startswith("pod "):
        return None
    ns, _, name = node[4:].partition("/")
    for e in p.edges:
        for obj in (e.obj,):
            if obj is not None and obj.namespace == ns and obj.kind in POD_KINDS:
                res = snapshot.get(obj.kind, ns, obj.name)
                if res is not None and (res.name == name or name.endswith(res.name)):
                    view = res.pod()
                    return res, view.spec_path if view is not None else ""
    for kind in sorted(POD_KINDS):
        res = snapshot.get(kind, ns, name)
        if res is not None:
            view = res.pod()
            return res, view.spec_path if view is not None else ""
    return None


def _report(snapshot: Snapshot, paths: list[Path], step: int, what: str) -> Found:
    seen: set[int] = set()
    for p in paths:
        hit = _entry(snapshot, p, step)
        if hit is None or id(hit[0]) in seen:
            continue
        seen.add(id(hit[0]))
        yield hit[0], hit[1], f"{what} (score {p.cost}): {p} (kubeward paths --why explains it)"


def reported_paths(snapshot: Snapshot, report: Any, limit: int = 20) -> list[Path]:
    """The KW-P101 paths whose finding is in the report (not suppressed), for the HTML report's graph view; the
    analysis is the one the control already made (cached on the snapshot)."""
    flagged = {(f.object.kind, f.object.namespace, f.object.name) for f in report.findings
               if f.control.id == "KW-P101"}
    out = []
    for p in _analysis(snapshot, "internet", "cluster-admin").paths:
        hit = _entry(snapshot, p, 1)
        if hit is not None and (hit[0].kind, hit[0].namespace, hit[0].name) in flagged:
            out.append(p)
    return out[:limit]


@control(
    "KW-P101", "Internet-exposed workload can reach cluster-admin", "critical", "paths",
    frameworks=("nsa", "mitre-T1190", "mitre-T1078"),
    remediation="Apply the fix `kubeward paths --fixes` names: usually the binding or token mount in the middle, "
                "or the exposure in front.",
    description="A path in the attack graph from the internet (LoadBalancer, NodePort, Ingress, externalIPs, "
                "hostNetwork, hostPort) through pods, tokens, node escapes and RBAC grants to full authority. "
                "Upstream: MITRE ATT&CK T1190 (exploit public-facing application) then T1078 (valid accounts); "
                "kubernetes.io/docs/concepts/security/rbac-good-practices/.",
    shape="snapshot", kinds=POD_KINDS, reads=READS,
)
def exposed_to_cluster_admin(snapshot: Snapshot) -> Found:
    if not _exposable(snapshot):
        return
    yield from _report(snapshot, _analysis(snapshot, "internet", "cluster-admin").paths, 1,
                       "reachable from the internet and leads to cluster-admin")


@control(
    "KW-P102", "Pod whose service account reads every secret is reachable from other pods", "high", "paths",
    frameworks=("nsa", "mitre-T1552.007", "mitre-T1210"),
    remediation="Isolate the pod's ingress with a NetworkPolicy, or take the secrets grant from its service "
                "account.",
    description="Another pod reaches it over the pod network (the NetworkPolicy engine's verdict on the ports it "
                "serves), and its token reads Secrets in every namespace. Upstream: MITRE ATT&CK T1210 and "
                "T1552.007; kubernetes.io/docs/concepts/services-networking/network-policies/; "
                "kubernetes.io/docs/concepts/security/rbac-good-practices/ (listing Secrets).",
    shape="snapshot", kinds=POD_KINDS, reads=READS,
)
def reachable_secret_reader(snapshot: Snapshot) -> Found:
    if not _two_workloads(snapshot):
        return
    from ..paths import EdgeKind

    a = _analysis(snapshot, "pods", "secrets")
    g = a.graph
    # the network layer backwards: pod ← destination group ← source group (NETWORK edge) ← member pods
    groups_to: dict[str, list[str]] = defaultdict(list)
    sources_to: dict[str, list[str]] = defaultdict(list)
    members: dict[str, list[str]] = defaultdict(list)
    for e in g.edges():
        if e.src.startswith("netdg:"):
            groups_to[e.dst].append(e.src)
        elif e.kind is EdgeKind.NETWORK:
            sources_to[e.dst].append(e.src)
        elif e.dst.startswith("netgrp:"):
            members[e.dst].append(e.src)
    found = []
    for node in sorted(groups_to):
        own = a.distances.path(node)
        if own is None or any(e.kind is EdgeKind.NETWORK for e in own.edges):
            continue  # its own token does not read every secret
        witness = next((p for dg in groups_to[node] for grp in sources_to.get(dg, ()) for p in members.get(grp, ())
                        if p != node), None)
        hit = _entry(snapshot, own, 0) if witness is not None else None
        if hit is not None:
            found.append((hit, f"reachable from other pods (e.g. {witness}) and reads every secret "
                               f"(score {own.cost}): {own}"))
    for (res, path), message in found:
        yield res, path, message


@control(
    "KW-P103", "Internet-exposed workload can escape to a node", "high", "paths",
    frameworks=("nsa", "mitre-T1190", "mitre-T1611"),
    remediation="Remove the host access the path names (privileged, hostPID, sensitive hostPath, capabilities) "
                "or the exposure in front of it.",
    description="A path from the internet to a node: a pod that breaks out (Pod Security facts, sensitive host "
                "paths) or an identity that may create privileged pods. Upstream: MITRE ATT&CK T1190 and T1611 "
                "(escape to host); the Pod Security Standards "
                "(kubernetes.io/docs/concepts/security/pod-security-standards/).",
    shape="snapshot", kinds=POD_KINDS, reads=READS,
)
def exposed_to_node(snapshot: Snapshot) -> Found:
    if not _exposable(snapshot):
        return
    from ..paths import CLUSTER_ADMIN

    # a path through cluster-admin is KW-P101's: this one is about breaking out without it
    found = [p for p in _analysis(snapshot, "internet", "nodes").paths if CLUSTER_ADMIN not in p.key]
    yield from _report(snapshot, found, 1, "reachable from the internet and escapes to a node")
