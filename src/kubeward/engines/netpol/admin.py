"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1), compiled once.

Upstream: kubernetes-sigs/network-policy-api apis/v1alpha1 adminnetworkpolicy_types.go,
baselineadminnetworkpolicy_types.go and shared_types.go:
- ANP `priority` 0..1000, lower = higher precedence; within a policy, rules apply in order (first match wins);
- actions Allow and Deny are final, Pass hands the connection to the NetworkPolicy tier;
- when no ANP rule matches (or Pass), NetworkPolicy decides if any selects the pod in that direction, otherwise the
  single BANP (named "default") decides with ordered Allow/Deny rules, otherwise the traffic is allowed;
- a peer with no known field "fails closed": an Allow rule matches nothing, a Deny/Pass rule denies everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...resource import Resource
from ...selectors import Selector, SelectorError, compile_selector
from .ipblock import IP, IPBlock, parse_ip
from .model import PROTOCOLS, Pod
from .policy import EGRESS, INGRESS, PortMatch

ALLOW, DENY, PASS = "Allow", "Deny", "Pass"


@dataclass(frozen=True, slots=True)
class AdminPeer:
    """namespaces (selector) or pods (namespace AND pod selector) or networks (CIDRs, egress only)."""

    ns_sel: Selector | None = None
    pod_sel: Selector | None = None  # None with ns_sel set = every pod of those namespaces
    networks: tuple[IPBlock, ...] = ()
    node_ips: frozenset[IP] | None = None  # `nodes` peer (egress): the addresses of the selected Node objects
    any_peer: bool = False  # fail-closed Deny/Pass
    valid: bool = True
    text: str = ""

    def matches(self, other: Pod | None, ip: Any, ipblock_matches_pods: bool) -> bool:
        if self.any_peer:
            return True
        if not self.valid:
            return False
        if self.node_ips is not None:
            return other is None and ip is not None and ip in self.node_ips
        if self.networks:
            if other is None:
                return ip is not None and any(b.contains(ip) for b in self.networks)
            return ipblock_matches_pods and any(b.contains(a) for b in self.networks for a in other.ips)
        if other is None or self.ns_sel is None or other.host_network:
            return False  # "host-networked pods are not included in this type of peer"
        if not self.ns_sel.matches(other.ns_labels):
            return False
        return self.pod_sel is None or self.pod_sel.matches(other.labels)


@dataclass(frozen=True, slots=True)
class AdminRule:
    index: int
    name: str
    action: str
    peers: tuple[AdminPeer, ...]
    ports: tuple[PortMatch, ...] | None  # None = all ports

    def port_matches(self, port: int, protocol: str, dst: Pod | None) -> bool:
        return self.ports is None or any(p.matches(port, protocol, dst) for p in self.ports)


@dataclass(slots=True)
class AdminPolicy:
    kind: str  # AdminNetworkPolicy | BaselineAdminNetworkPolicy
    name: str
    priority: int  # BANP: sorts after every ANP
    subject_ns: Selector | None
    subject_pods: Selector | None
    ingress: tuple[AdminRule, ...]
    egress: tuple[AdminRule, ...]
    resource: Resource | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def selects(self, pod: Pod) -> bool:
        if pod.host_network or self.subject_ns is None:  # subjects exclude host-networked pods
            return False
        if not self.subject_ns.matches(pod.ns_labels):
            return False
        return self.subject_pods is None or self.subject_pods.matches(pod.labels)

    def rules(self, direction: str) -> tuple[AdminRule, ...]:
        return self.ingress if direction == INGRESS else self.egress


def _sel(spec: Any, path: str, problems: list[tuple[str, str]]) -> Selector | None:
    try:
        return compile_selector(spec)
    except SelectorError as exc:
        problems.append((path, f"invalid selector: {exc}"))
        return None


def _pair(raw: Any, path: str, problems: list[tuple[str, str]]) -> tuple[Selector | None, Selector | None, bool]:
    """`namespaces: {…}` or `pods: {namespaceSelector, podSelector}` → (ns, pod, ok)."""
    if not isinstance(raw, dict):
        return None, None, False
    if raw.get("namespaces") is not None:
        ns = _sel(raw["namespaces"], f"{path}/namespaces", problems)
        return ns, None, ns is not None
    pods = raw.get("pods")
    if isinstance(pods, dict):
        ns = _sel(pods.get("namespaceSelector") or {}, f"{path}/pods/namespaceSelector", problems)
        pod = _sel(pods.get("podSelector") or {}, f"{path}/pods/podSelector", problems)
        return ns, pod, ns is not None and pod is not None
    return None, None, False


def _ports(raw: Any, path: str, problems: list[tuple[str, str]]) -> tuple[PortMatch, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    out = []
    for i, p in enumerate(raw):
        if not isinstance(p, dict):
            out.append(PortMatch("TCP", valid=False))
            continue
        if isinstance(p.get("portNumber"), dict):
            n = p["portNumber"]
            num = n.get("port")
            ok = isinstance(num, int) and not isinstance(num, bool) and 1 <= num <= 65535
            if not ok:
                problems.append((f"{path}/{i}/portNumber/port", "port must be a number from 1 to 65535"))
            out.append(PortMatch(str(n.get("protocol") or "TCP"), num if ok else 0, valid=ok))
        elif isinstance(p.get("portRange"), dict):
            r = p["portRange"]
            start, end = r.get("start"), r.get("end")
            ok = all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535 for v in (start, end))
            ok = ok and start < end  # shared_types.go PortRange: "the Start value must be less than End"
            if not ok:
                problems.append((f"{path}/{i}/portRange", "start and end must be ports with start < end"))
            out.append(PortMatch(str(r.get("protocol") or "TCP"), start if ok else 0, end if ok else None, valid=ok))
        elif isinstance(p.get("namedPort"), str):
            # A named port carries no protocol: it matches whatever protocol the destination's port declares.
            out.extend(PortMatch(proto, p["namedPort"]) for proto in PROTOCOLS)
        else:
            problems.append((f"{path}/{i}", "port entry sets none of portNumber, portRange, namedPort"))
            out.append(PortMatch("TCP", valid=False))
    return tuple(out)


NodeAddrs = list[tuple[dict[str, str], tuple[IP, ...]]]  # (labels, addresses) per Node object


def node_addresses(nodes: list[Resource]) -> NodeAddrs:
    out: NodeAddrs = []
    for n in nodes:
        status = n.obj.get("status")
        addrs = status.get("addresses") if isinstance(status, dict) else None
        ips = tuple(ip for a in addrs or [] if isinstance(a, dict) and (ip := parse_ip(str(a.get("address", "")))))
        out.append((dict(n.labels), ips))
    return out


def _rules(raw: Any, peer_key: str, path: str, banp: bool, problems: list[tuple[str, str]],
           nodes: NodeAddrs) -> tuple[AdminRule, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict):
            continue
        rp = f"{path}/{i}"
        action = str(r.get("action", ""))
        allowed_actions = (ALLOW, DENY) if banp else (ALLOW, DENY, PASS)
        if action not in allowed_actions:
            problems.append((f"{rp}/action", f"unknown action {action!r}"))
            action = DENY  # fail closed
        peers = []
        for j, pr in enumerate(r.get(peer_key) or []):
            pp = f"{rp}/{peer_key}/{j}"
            if isinstance(pr, dict) and isinstance(pr.get("networks"), list) and peer_key == "to":
                blocks = tuple(IPBlock.parse({"cidr": c}) for c in pr["networks"])
                peers.append(AdminPeer(networks=blocks, text="networks " + ",".join(map(str, pr["networks"]))))
                continue
            if isinstance(pr, dict) and pr.get("nodes") is not None and peer_key == "to":
                sel = _sel(pr["nodes"], f"{pp}/nodes", problems)
                ips = frozenset(ip for labels, addrs in nodes if sel is not None and sel.matches(labels)
                                for ip in addrs)
                peers.append(AdminPeer(node_ips=ips, valid=sel is not None,
                                       text=f"nodes({sel.text if sel else '?'})"))
                continue
            ns, pod, ok = _pair(pr, pp, problems)
            if ok:
                assert ns is not None
                text = f"namespaces({ns.text})" if pod is None else f"pods({ns.text}; {pod.text})"
                peers.append(AdminPeer(ns_sel=ns, pod_sel=pod, text=text))
            else:
                problems.append((pp, "peer with no supported field: fails closed"))
                peers.append(AdminPeer(any_peer=action != ALLOW, valid=False, text="<unknown peer>"))
        out.append(AdminRule(i, str(r.get("name", f"rule-{i}")), action, tuple(peers),
                             _ports(r.get("ports"), f"{rp}/ports", problems)))
    return tuple(out)


def compile_admin(res: Resource, nodes: NodeAddrs | None = None) -> AdminPolicy:
    obj = res.obj
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    problems: list[tuple[str, str]] = []
    banp = res.kind == "BaselineAdminNetworkPolicy"
    subject = spec.get("subject") if isinstance(spec.get("subject"), dict) else {}
    ns, pods, ok = _pair(subject, "/spec/subject", problems)
    if not ok:
        problems.append(("/spec/subject", "subject must set namespaces or pods"))
        ns, pods = None, None
    prio = spec.get("priority", 0)
    if banp:
        priority = 1 << 30
        if res.name != "default":
            problems.append(("/metadata/name", "a BaselineAdminNetworkPolicy must be named \"default\""))
    else:
        priority = prio if isinstance(prio, int) and not isinstance(prio, bool) else 1000
        if not 0 <= priority <= 1000:
            problems.append(("/spec/priority", f"priority {priority} outside 0..1000"))
    return AdminPolicy(
        kind=res.kind, name=res.name, priority=priority, subject_ns=ns, subject_pods=pods,
        ingress=_rules(spec.get("ingress"), "from", "/spec/ingress", banp, problems, nodes or []),
        egress=_rules(spec.get("egress"), "to", "/spec/egress", banp, problems, nodes or []),
        resource=res, problems=problems,
    )


__all__ = ["ALLOW", "DENY", "EGRESS", "INGRESS", "PASS", "AdminPeer", "AdminPolicy", "AdminRule", "compile_admin"]
