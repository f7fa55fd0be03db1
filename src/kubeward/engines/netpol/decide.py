"""One connection decided pairwise, with the policies and rules that decided it (explain, flows, the node agent).

This is the definition the class engine (classes.py) must agree with; property tests compare the two.
Semantics (kubernetes.io/docs/concepts/services-networking/network-policies):
- a connection needs egress allowed at the source AND ingress allowed at the destination;
- a pod is isolated for a direction iff some policy selects it and lists that direction in policyTypes;
  a non-isolated direction allows everything; an isolated one allows the union of the applicable rules;
- "a pod cannot block access to itself"; traffic from/to the pod's own node is always allowed; only a single pod
  is itself: a workload representative standing for several replicas goes through the policies (model.py);
- AdminNetworkPolicy tiers come first and BaselineAdminNetworkPolicy last (see admin.py).
"""

from __future__ import annotations

from typing import Any

from ...records import field, record
from .admin import ALLOW, DENY
from .cluster import Cluster
from .ipblock import IP
from .model import Endpoint, External, Pod
from .policy import EGRESS, INGRESS, peer_matches


@record(frozen=True)
class Reason:
    tier: str  # "admin" | "netpol" | "baseline" | "node" | "self"
    policy: str  # "ns/name" or "Kind/name"; "" when no policy decided
    rule: str  # e.g. "ingress[0]", "egress[1] (name)"; "" for isolation without a matching rule
    action: str  # "allow" | "deny" | "pass"

    def to_json(self) -> dict[str, str]:
        return {"tier": self.tier, "policy": self.policy, "rule": self.rule, "action": self.action}

    def __str__(self) -> str:
        where = f"{self.policy} {self.rule}".strip()
        return f"{self.action} by {where} ({self.tier})" if where else f"{self.action} ({self.tier})"


@record
class DirectionResult:
    direction: str
    allowed: bool
    isolated: bool
    reasons: list[Reason] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "isolated": self.isolated, "reasons": [r.to_json() for r in self.reasons]}


@record
class Decision:
    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str
    allowed: bool
    egress: DirectionResult | None  # None: the source is not a pod, so no egress policy applies
    ingress: DirectionResult | None

    def denying_policies(self) -> list[str]:
        """The policies that decided each denied direction (isolating policies, or the admin rule's policy)."""
        out: list[str] = []
        for d in (self.egress, self.ingress):
            if d is None or d.allowed:
                continue
            for r in d.reasons:
                if r.policy and r.policy not in out:
                    out.append(r.policy)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "src": self.src.key, "dst": self.dst.key, "port": self.port, "protocol": self.protocol,
            "allowed": self.allowed,
            "egress": self.egress.to_json() if self.egress else None,
            "ingress": self.ingress.to_json() if self.ingress else None,
        }


def evaluate_direction(cluster: Cluster, subject: Pod, direction: str, other: Pod | None, ip: IP | None,
               port: int, protocol: str, explain: bool) -> DirectionResult:
    dst_pod = subject if direction == INGRESS else other  # named ports resolve on the destination
    lower = direction.lower()
    m = cluster.ipblock_matches_pods
    # Tier 1: AdminNetworkPolicies by priority; the first matching rule's Allow/Deny is final, Pass skips the tier.
    banps = []
    passed = False
    for ap in cluster.admin:
        if ap.kind != "AdminNetworkPolicy":
            banps.append(ap)
            continue
        if passed or not ap.selects(subject):
            continue
        for rule in ap.rules(direction):
            if rule.port_matches(port, protocol, dst_pod) and any(p.matches(other, ip) for p in rule.peers):
                reason = Reason("admin", ap.key, f"{lower}[{rule.index}] ({rule.name})", rule.action.lower())
                if rule.action in (ALLOW, DENY):
                    return DirectionResult(direction, rule.action == ALLOW, True, [reason])
                passed = True
                break
    # Tier 2: NetworkPolicy, the union of the rules of every policy isolating the pod for this direction.
    isolating = cluster.selecting(subject, direction)
    if isolating:
        reasons: list[Reason] = []
        for pol in isolating:
            for nrule in pol.rules(direction):
                if not nrule.port_matches(port, protocol, dst_pod):
                    continue
                if nrule.peers is None or any(peer_matches(p, pol.namespace, other, ip, m) for p in nrule.peers):
                    reasons.append(Reason("netpol", pol.key, f"{lower}[{nrule.index}]", "allow"))
                    if not explain:
                        return DirectionResult(direction, True, True, reasons)
        if reasons:
            return DirectionResult(direction, True, True, reasons)
        return DirectionResult(direction, False, True, [Reason("netpol", p.key, "", "deny") for p in isolating])
    # Tier 3: the BaselineAdminNetworkPolicy, ordered Allow/Deny rules.
    for bp in banps:
        if not bp.selects(subject):
            continue
        for rule in bp.rules(direction):
            if rule.port_matches(port, protocol, dst_pod) and any(p.matches(other, ip) for p in rule.peers):
                reason = Reason("baseline", bp.key, f"{lower}[{rule.index}] ({rule.name})", rule.action.lower())
                return DirectionResult(direction, rule.action == ALLOW, True, [reason])
    return DirectionResult(direction, True, False, [Reason("admin", "", "", "pass")] if passed else [])


def decide(cluster: Cluster, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP",
           *, explain: bool = True) -> Decision:
    """Is src → dst:port/protocol allowed, and why. IPs that belong to a pod should be resolved beforehand."""
    if isinstance(src, Pod) and src is dst and src.single:
        # Loopback. A representative of several pods (replicas) with itself is replica-to-replica traffic between
        # two different pods, which policy decides like any other pair.
        r = DirectionResult(EGRESS, True, False, [Reason("self", "", "", "allow")])
        return Decision(src, dst, port, protocol, True, r, DirectionResult(INGRESS, True, False, list(r.reasons)))
    egress = ingress = None
    if isinstance(src, Pod):
        dst_pod = dst if isinstance(dst, Pod) else None
        dst_ip = dst.ip if isinstance(dst, External) else None
        if dst_ip is not None and src.host_ip is not None and dst_ip == src.host_ip:
            egress = DirectionResult(EGRESS, True, False, [Reason("node", "", "", "allow")])
        else:
            egress = evaluate_direction(cluster, src, EGRESS, dst_pod, dst_ip, port, protocol, explain)
    if isinstance(dst, Pod) and (egress is None or egress.allowed or explain):
        src_pod = src if isinstance(src, Pod) else None
        src_ip = src.ip if isinstance(src, External) else None
        if src_ip is not None and dst.host_ip is not None and src_ip == dst.host_ip:
            ingress = DirectionResult(INGRESS, True, False, [Reason("node", "", "", "allow")])
        else:
            ingress = evaluate_direction(cluster, dst, INGRESS, src_pod, src_ip, port, protocol, explain)
    allowed = (egress is None or egress.allowed) and (ingress is None or ingress.allowed)
    return Decision(src, dst, port, protocol, allowed, egress, ingress)


def evaluate_flow(cluster: Cluster, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """The fast yes/no used by check-flows and the node agent: stops at the first allowing rule."""
    return decide(cluster, src, dst, port, protocol, explain=False).allowed


def allowed(cluster: Cluster, src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    """The pairwise definition for two pods (the reference the class engine is tested against)."""
    return evaluate_flow(cluster, src, dst, port, protocol)
