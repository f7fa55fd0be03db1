"""Policy mistakes and exposure the engine can prove, as (code, resource, JSON pointer, message) issues.

Codes map to scan controls in kubeward/controls/netpol.py (KW-N1xx). Checks that depend on "no pod matches"
run only when the inputs contain pods or workloads in that scope, so a policies-only folder is not flagged, and a
peer naming a namespace the inputs do not hold (by `kubernetes.io/metadata.name`) is not "matching nothing".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ...resource import Resource
from ...snapshot import METADATA_NAME_LABEL
from .cluster import DUPLICATE as CLUSTER_DUPLICATE
from .cluster import Cluster
from .decide import evaluate_direction
from .model import Pod
from .policy import EGRESS, INGRESS, Policy, peer_matches

INVALID, EXCEPT_OUTSIDE, SELECTS_NONE, PEER_NONE = "invalid", "except", "selects-none", "peer-none"
NAMED_UNRESOLVED = "named"
OPEN_INGRESS, OPEN_EGRESS, DNS_BLOCKED = "open-ingress", "open-egress", "dns-blocked"
DUPLICATE = CLUSTER_DUPLICATE  # an object defined twice in the inputs, or an admin rule name used twice

DNS_POD = Pod(namespace="kube-system", name="kube-dns", labels={"k8s-app": "kube-dns"},
              ns_labels={"kubernetes.io/metadata.name": "kube-system"},
              named_ports=frozenset({("dns", "UDP", 53), ("dns-tcp", "TCP", 53)}))


@dataclass(frozen=True, slots=True)
class Issue:
    code: str
    resource: Resource | None
    path: str
    message: str


class _ByNamespace:
    """The cluster's pods and idle workloads by namespace, built once per lint: a policy only ever selects pods
    of its own namespace, so each policy looks at its namespace's pods, not every pod."""

    def __init__(self, cluster: Cluster) -> None:
        self.pods: dict[str, list[Pod]] = {}
        self.idle: dict[str, list[Pod]] = {}
        for p in cluster.pods:
            self.pods.setdefault(p.namespace, []).append(p)
        for p in cluster.idle:
            self.idle.setdefault(p.namespace, []).append(p)

    def any_in(self, namespaces: set[str]) -> bool:
        """Some pod or idle workload in one of `namespaces`."""
        return any(ns in self.pods or ns in self.idle for ns in namespaces)


def _policy_issues(cluster: Cluster, pol: Policy, by_ns: _ByNamespace) -> Iterator[Issue]:
    res = pol.resource
    for path, msg in pol.problems:
        yield Issue(EXCEPT_OUTSIDE if "not within CIDR" in msg else INVALID, res, path,
                    f"NetworkPolicy {pol.key}: {msg} (the apiserver rejects this)")
    if not cluster.pods:
        return
    own = by_ns.pods.get(pol.namespace, [])
    scaled_down = by_ns.idle.get(pol.namespace, [])  # its pods return when scaled up
    if own and pol.pod_sel is not None and not any(pol.selects(p) for p in (*own, *scaled_down)):
        yield Issue(SELECTS_NONE, res, "/spec/podSelector",
                    f"NetworkPolicy {pol.key} selects no pod (podSelector {pol.pod_sel.text})")
    for direction, key in ((INGRESS, "from"), (EGRESS, "to")):
        for rule in pol.rules(direction):
            base = f"/spec/{direction.lower()}/{rule.index}"
            for j, peer in enumerate(rule.peers or ()):
                if peer.is_ip or not peer.valid:
                    continue
                at = f"{base}/{key}/{j}"
                if peer.ns_sel is None:
                    scope = {pol.namespace}
                else:
                    scope = {n for n, lbl in cluster.namespaces.items() if peer.ns_sel.matches(lbl)}
                    if not scope and not peer.ns_sel.empty:
                        if _names_namespaces(res, f"{at}/namespaceSelector"):
                            continue  # it names namespaces the inputs do not hold (kube-system for DNS, say)
                        yield Issue(PEER_NONE, res, at,
                                    f"NetworkPolicy {pol.key}: peer {peer.text} matches no namespace")
                        continue
                if not by_ns.any_in(scope):
                    continue  # no pod of those namespaces in the inputs: "no pod matches" would be a guess
                # a peer without namespaceSelector matches pods of the policy's namespace only (peer_matches)
                others = cluster.pods if peer.ns_sel is not None else by_ns.pods.get(pol.namespace, [])
                if not any(peer_matches(peer, pol.namespace, p, None, False) for p in others):
                    if not _dns_pods(cluster) and peer_matches(peer, pol.namespace, DNS_POD, None, False):
                        continue  # the cluster DNS, which every cluster runs: the rule KW-N112 asks for
                    yield Issue(PEER_NONE, res, at, f"NetworkPolicy {pol.key}: peer {peer.text} matches no pod")
            for j, pm in enumerate(rule.ports or ()):
                if not isinstance(pm.port, str):
                    continue
                # Named ports resolve on the destination: the selected pods for ingress, the peers for egress.
                if direction == INGRESS:
                    candidates = [p for p in own if pol.selects(p)]
                else:
                    candidates = list(cluster.pods)
                if candidates and not any(p.resolve(pm.port, pm.protocol) is not None for p in candidates):
                    yield Issue(NAMED_UNRESOLVED, res, f"{base}/ports/{j}",
                                f"NetworkPolicy {pol.key}: named port {pm.port!r}/{pm.protocol} is declared by no "
                                f"{'selected' if direction == INGRESS else 'destination'} pod, so it allows nothing")


def _names_namespaces(res: Resource | None, pointer: str) -> bool:
    """Whether the selector at `pointer` picks namespaces by name (`kubernetes.io/metadata.name`, which the API
    sets on every namespace): then matching none of the inputs' namespaces means they are not in the inputs."""
    node: Any = res.obj if res is not None else None
    for step in pointer.strip("/").split("/"):
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return False
    if not isinstance(node, dict):
        return False
    labels = node.get("matchLabels")
    if isinstance(labels, dict) and METADATA_NAME_LABEL in labels:
        return True
    exprs = node.get("matchExpressions")
    return isinstance(exprs, list) and any(
        isinstance(e, dict) and e.get("key") == METADATA_NAME_LABEL and e.get("operator") == "In" for e in exprs)


def _admin_governs(cluster: Cluster, pod: Pod) -> bool:
    return any(ap.selects(pod) for ap in cluster.admin)


def _allows_everyone(pol: Policy, direction: str) -> bool:
    """A rule with no port limit whose peers cover every pod of every namespace (and, for egress, every IP)."""
    for rule in pol.rules(direction):
        if rule.ports is not None:
            continue
        if rule.peers is None:
            return True
        if direction == INGRESS and any(p.valid and not p.is_ip and p.ns_sel is not None and p.ns_sel.empty
                                        and (p.pod_sel is None or p.pod_sel.empty) for p in rule.peers):
            return True
    return False


def _dns_pods(cluster: Cluster) -> list[Pod]:
    return [p for p in cluster.pods if p.namespace == "kube-system" and p.labels.get("k8s-app") == "kube-dns"]


def pod_issues(cluster: Cluster) -> Iterator[Issue]:
    """Isolated pods whose policies still allow everything, and egress isolation that blocks DNS. Pods with no
    isolation at all are the simple-form controls' business (KW-N008/KW-N009)."""
    yield from _pod_issues(cluster, cluster.pods, _dns_target(cluster))


def _dns_target(cluster: Cluster) -> Pod:
    dns = _dns_pods(cluster)
    return dns[0] if dns else DNS_POD


def _pod_issues(cluster: Cluster, pods: Iterable[Pod], dns_target: Pod) -> Iterator[Issue]:
    for pod in pods:
        if pod.host_network or _admin_governs(cluster, pod):
            continue  # host-network pods are outside NetworkPolicy; admin tiers need the full engine (explain)
        what = pod.workload or f"Pod/{pod.key}"
        ing = cluster.selecting(pod, INGRESS)
        if ing and (open_by := [p.key for p in ing if _allows_everyone(p, INGRESS)]):
            yield Issue(OPEN_INGRESS, pod.resource, "",
                        f"{what} is isolated for ingress, but {', '.join(open_by)} allows every pod of every "
                        "namespace on every port")
        egr = cluster.selecting(pod, EGRESS)
        if not egr:
            continue
        if open_by := [p.key for p in egr if _allows_everyone(p, EGRESS)]:
            yield Issue(OPEN_EGRESS, pod.resource, "",
                        f"{what} is isolated for egress, but {', '.join(open_by)} allows every destination on "
                        "every port")
        elif pod is not dns_target:
            r = evaluate_direction(cluster, pod, EGRESS, dns_target, None, 53, "UDP", False)
            if not r.allowed:
                names = ", ".join(p.key for p in egr)
                yield Issue(DNS_BLOCKED, pod.resource, "",
                            f"{what}: egress isolation ({names}) blocks DNS (UDP 53 to {dns_target.key})")


def issues(cluster: Cluster) -> Iterator[Issue]:
    yield from _object_issues(cluster)
    yield from pod_issues(cluster)


def _object_issues(cluster: Cluster) -> Iterator[Issue]:
    """Every issue but the pods' own (pod_issues), in issues() order."""
    for note in cluster.notes:
        if note.code == DUPLICATE:
            yield Issue(DUPLICATE, note.resource, "/metadata/name", f"{note.where}: {note.message}")
    by_ns = _ByNamespace(cluster)
    for pol in cluster.policies:
        yield from _policy_issues(cluster, pol, by_ns)
    for ap in cluster.admin:
        for path, msg in ap.problems:
            yield Issue(INVALID, ap.resource, path, f"{ap.key}: {msg} (the apiserver rejects this)")
        for path, msg in ap.ineffective:
            yield Issue(INVALID, ap.resource, path, f"{ap.key}: {msg} (the apiserver accepts it; it matches nothing)")
        for path, msg in ap.warnings:
            yield Issue(DUPLICATE, ap.resource, path, f"{ap.key}: {msg}")


class Lint(dict[str, list[Issue]]):
    """`by_code`'s issues by code, and per namespace its pods' issues with what they were made from (what
    `by_code(cluster, before=)` reuses)."""

    blocks: dict[str, tuple[tuple[Any, ...], list[Issue]]]
    context: tuple[Any, ...] | None


def by_code(cluster: Cluster, before: Lint | None = None) -> Lint:
    """Issues by code, in issues() order. `before`: the lint of an earlier model (the monitor's previous lane
    run): the pods' issues of a namespace are taken from it when they were made from the same things: the
    same Pod objects (same versions, names and counts), the same compiled policies of the namespace, its
    labels, and the same DNS target and admin tiers (none), which is all pod_issues reads for those pods."""
    out = Lint()
    for i in _object_issues(cluster):
        out.setdefault(i.code, []).append(i)
    target = _dns_target(cluster)
    # the DNS target stands in every pod's DNS check; admin tiers may select any pod: then nothing is reused
    context = None if cluster.admin else (target.resource, target.key, tuple(sorted(target.ns_labels.items())),
                                          target.labels, target.ips, target.named_ports,
                                          cluster.ipblock_matches_pods)
    old = before.blocks if before is not None and context is not None and _same(before.context, context) else {}
    out.context, out.blocks = context, {}
    groups: dict[str, list[Pod]] = {}
    for p in cluster.pods:
        groups.setdefault(p.namespace, []).append(p)
    ordered = [p.namespace for p in cluster.pods]
    contiguous = all(a <= b for a, b in pairwise(ordered))  # pods_of sorts them: per namespace in turn
    found: list[Issue] = []
    for ns, pods in groups.items() if contiguous else ():
        sig = (tuple(p.resource for p in pods), tuple((p.name, p.count, p.workload) for p in pods),
               tuple(cluster.policies_in(ns)), tuple(sorted(pods[0].ns_labels.items())))
        kept = old.get(ns)
        made = kept[1] if kept is not None and _same(kept[0], sig) else list(_pod_issues(cluster, pods, target))
        out.blocks[ns] = (sig, made)
        found += made
    if not contiguous:
        found = list(_pod_issues(cluster, cluster.pods, target))
    for i in found:
        out.setdefault(i.code, []).append(i)
    return out


def _same(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    """Two signatures (objects first, values after) equal: the objects (resources, compiled policies) by
    identity, which the signature holding them keeps meaningful; the values by ==."""
    if a is None or b is None or len(a) != len(b):
        return a is b
    for x, y in zip(a, b, strict=True):
        if isinstance(x, tuple) and isinstance(y, tuple) and x and isinstance(x[0], (Resource, Policy)):
            if len(x) != len(y) or any(u is not v for u, v in zip(x, y, strict=True)):
                return False
        elif isinstance(x, Resource) or isinstance(y, Resource):
            if x is not y:
                return False
        elif x != y:
            return False
    return True
