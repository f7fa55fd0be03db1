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

from typing import Any

from ...records import field, record
from ...resource import Resource
from ...selectors import Selector, SelectorError, compile_selector
from .ipblock import IP, IPBlock, parse_ip
from .model import PROTOCOLS, Pod
from .policy import EGRESS, INGRESS, PortMatch

ALLOW, DENY, PASS = "Allow", "Deny", "Pass"


@record(frozen=True)
class AdminPeer:
    """namespaces (selector) or pods (namespace AND pod selector) or networks (CIDRs, egress only)."""

    ns_sel: Selector | None = None
    pod_sel: Selector | None = None  # None with ns_sel set = every pod of those namespaces
    networks: tuple[IPBlock, ...] = ()
    node_ips: frozenset[IP] | None = None  # `nodes` peer (egress): the addresses of the selected Node objects
    any_peer: bool = False  # fail-closed Deny/Pass
    valid: bool = True
    text: str = ""

    def matches(self, other: Pod | None, ip: Any) -> bool:
        if self.any_peer:
            return True
        if not self.valid:
            return False
        if self.node_ips is not None:
            # adminnetworkpolicy_types.go Nodes: "selects the nodeIPs ... matching on the IPs present in the
            # node.Status.Addresses field". A host-networked pod has its node's addresses, so traffic to it is
            # traffic to those nodeIPs (conformance AdminNetworkPolicyEgressNodePeers pokes such a pod).
            if other is None:
                return ip is not None and ip in self.node_ips
            return host_node_address(other, self.node_ips)
        if self.networks:
            if other is None:
                return ip is not None and any(b.contains(ip) for b in self.networks)
            # Unlike NetworkPolicy ipBlock (implementation-defined: --ipblock-matches-pods), the API defines
            # this: "cluster-internal traffic will be checked against the rule as well. So if you Allow or Deny
            # traffic to "0.0.0.0/0", that will allow or deny all IPv4 pod-to-pod traffic as well" (Networks).
            return any(b.contains(a) for b in self.networks for a in other.ips)
        if other is None or self.ns_sel is None or other.host_network:
            return False  # "host-networked pods are not included in this type of peer"
        if not self.ns_sel.matches(other.ns_labels):
            return False
        return self.pod_sel is None or self.pod_sel.matches(other.labels)


NodeAddrs = list[tuple[dict[str, str], tuple[IP, ...]]]  # (labels, addresses) per Node object


def host_node_address(pod: Pod, node_ips: frozenset[IP]) -> bool:
    """A host-networked pod is reached at its node's addresses: one of them among a `nodes` peer's nodeIPs."""
    return pod.host_network and any(a in node_ips for a in pod.ips)


@record(frozen=True)
class AdminRule:
    index: int
    name: str
    action: str
    peers: tuple[AdminPeer, ...]
    ports: tuple[PortMatch, ...] | None  # None = all ports

    def port_matches(self, port: int, protocol: str, dst: Pod | None) -> bool:
        return self.ports is None or any(p.matches(port, protocol, dst) for p in self.ports)


@record
class AdminPolicy:
    kind: str  # AdminNetworkPolicy | BaselineAdminNetworkPolicy
    name: str
    priority: int  # BANP: sorts after every ANP
    subject_ns: Selector | None
    subject_pods: Selector | None
    ingress: tuple[AdminRule, ...]
    egress: tuple[AdminRule, ...]
    resource: Resource | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # what the apiserver would reject
    warnings: list[tuple[str, str]] = field(default_factory=list)  # accepted, but wrong (duplicate rule names)
    ineffective: list[tuple[str, str]] = field(default_factory=list)  # accepted, but can never match

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


Problems = list[tuple[str, str]]  # (JSON pointer, message)


@record
class Found:
    """What compiling one object found, by how the apiserver treats it: `rejected` (schema or CEL: the object
    cannot be created), `ineffective` (stored, but documented as invalid or not evaluable: it matches no traffic),
    `warnings` (valid, but misleading: two rules with one name)."""

    rejected: Problems = field(default_factory=list)
    ineffective: Problems = field(default_factory=list)
    warnings: Problems = field(default_factory=list)
# CRD limits (config/crd/standard/policy.networking.k8s.io_adminnetworkpolicies.yaml, v0.1.7): ingress and egress
# maxItems 100; from/to minItems 1, maxItems 100; ports minItems 1, maxItems 100; networks minItems 1, maxItems 25,
# each at most 43 characters and `isCIDR(self)`, a set (no duplicates); rule name maxLength 100.
MAX_RULES = MAX_PEERS = MAX_PORTS = MAX_RULE_NAME = 100
MAX_NETWORKS, MAX_CIDR_LEN = 25, 43


def _is_int(v: Any) -> bool:
    """An integer as a CRD schema sees JSON: `3` or `3.0` (an integral number), never a boolean."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _schema_types(spec: dict[str, Any], path: str, found: Found) -> bool:
    """The LabelSelector schema in the CRD: matchLabels a map of strings, matchExpressions a list of
    {key: string (required), operator: string (required), values: [string]}. The CRD checks nothing more."""
    ok = True
    labels, exprs = spec.get("matchLabels"), spec.get("matchExpressions")
    if labels is not None and (not isinstance(labels, dict) or any(not isinstance(v, str) for v in labels.values())):
        found.rejected.append((f"{path}/matchLabels", "matchLabels must be a map of strings"))
        ok = False
    if exprs is not None:
        if not isinstance(exprs, list):
            found.rejected.append((f"{path}/matchExpressions", "matchExpressions must be a list"))
            return False
        for i, e in enumerate(exprs):
            at = f"{path}/matchExpressions/{i}"
            values = e.get("values") if isinstance(e, dict) else None
            if not isinstance(e, dict) or not isinstance(e.get("key"), str) or not isinstance(e.get("operator"), str):
                found.rejected.append((at, "needs key and operator, both strings"))
                ok = False
            elif values is not None and (not isinstance(values, list) or any(not isinstance(v, str) for v in values)):
                found.rejected.append((f"{at}/values", "values must be a list of strings"))
                ok = False
    return ok


def _sel(spec: Any, path: str, found: Found) -> Selector | None:
    """A label selector field: the wrong JSON types are rejected by the CRD schema; what only the selector
    semantics forbid (an unknown operator, In without values) is stored, and matches nothing here."""
    if not isinstance(spec, dict):
        found.rejected.append((path, "must be a label selector (a map)"))
        return None
    if not _schema_types(spec, path, found):
        return None
    try:
        return compile_selector(spec)
    except SelectorError as exc:
        found.ineffective.append((path, f"invalid selector: {exc}"))
        return None


def _exactly_one(raw: dict[str, Any], fields: tuple[str, ...], path: str, found: Found,
                 what: str) -> str | None:
    """The CRD's `minProperties: 1, maxProperties: 1`: exactly one of `fields`. The apiserver prunes fields its
    schema does not know before validating, so only known fields count; None when not exactly one is set."""
    present = [f for f in fields if raw.get(f) is not None]
    if len(present) > 1:
        found.rejected.append((path, f"{what} sets {' and '.join(present)}: exactly one of {', '.join(fields)} is allowed"))
        return None
    return present[0] if present else None


def _pods(raw: Any, path: str, found: Found) -> tuple[Selector | None, Selector | None, bool]:
    """`pods: {namespaceSelector, podSelector}`, both required by the CRD (an empty one selects all)."""
    if not isinstance(raw, dict):
        found.rejected.append((path, "must be a map with namespaceSelector and podSelector"))
        return None, None, False
    sels: list[Selector | None] = []
    for key in ("namespaceSelector", "podSelector"):
        if raw.get(key) is None:
            found.rejected.append((f"{path}/{key}", f"{key} is required"))
            sels.append(None)
        else:
            sels.append(_sel(raw[key], f"{path}/{key}", found))
    ns, pod = sels
    return ns, pod, ns is not None and pod is not None


def _subject(raw: Any, found: Found) -> tuple[Selector | None, Selector | None]:
    """shared_types.go AdminNetworkPolicySubject: exactly one of namespaces, pods (required)."""
    path = "/spec/subject"
    if not isinstance(raw, dict):
        found.rejected.append((path, "subject is required (namespaces or pods)" if raw is None else "must be a map"))
        return None, None
    which = _exactly_one(raw, ("namespaces", "pods"), path, found, "subject")
    if which is None:
        if not any(raw.get(f) is not None for f in ("namespaces", "pods")):
            found.rejected.append((path, "subject must set namespaces or pods"))
        return None, None
    if which == "namespaces":
        return _sel(raw["namespaces"], f"{path}/namespaces", found), None
    ns, pod, ok = _pods(raw["pods"], f"{path}/pods", found)
    return (ns, pod) if ok else (None, None)


def _protocol(raw: dict[str, Any], path: str, found: Found) -> str | None:
    proto = raw.get("protocol", "TCP")  # CRD `default: TCP`
    if proto is None:
        proto = "TCP"
    if not isinstance(proto, str):
        found.rejected.append((f"{path}/protocol", f"protocol {proto!r} must be a string"))
        return None
    if proto not in PROTOCOLS:
        # The CRD has no enum here (the apiserver stores it), but traffic is only TCP, UDP or SCTP.
        found.ineffective.append((f"{path}/protocol", f"protocol {proto!r} is not TCP, UDP or SCTP"))
        return None
    return proto


def _port_number(v: Any) -> bool:
    return _is_int(v) and 1 <= v <= 65535  # CRD: format int32, minimum 1, maximum 65535



def _ports(raw: Any, path: str, found: Found) -> tuple[PortMatch, ...] | None:
    """shared_types.go AdminNetworkPolicyPort: exactly one of portNumber, portRange, namedPort; None = all ports
    (the field is optional), () = a list the apiserver rejects, matching nothing."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        found.rejected.append((path, "ports must be a list"))
        return ()
    if not raw:
        found.rejected.append((path, "ports must have at least one entry when set"))
        return ()
    if len(raw) > MAX_PORTS:
        found.rejected.append((path, f"{len(raw)} ports: at most {MAX_PORTS}"))
    out: list[PortMatch] = []
    for i, p in enumerate(raw):
        pp = f"{path}/{i}"
        if not isinstance(p, dict):
            found.rejected.append((pp, "port entry must be a map"))
            out.append(PortMatch("TCP", valid=False))
            continue
        which = _exactly_one(p, ("portNumber", "portRange", "namedPort"), pp, found, "port entry")
        if which is None:
            if not any(p.get(f) is not None for f in ("portNumber", "portRange", "namedPort")):
                found.rejected.append((pp, "port entry sets none of portNumber, portRange, namedPort"))
            out.append(PortMatch("TCP", valid=False))
        elif which == "namedPort":
            name = p["namedPort"]
            if not isinstance(name, str) or not name:
                found.rejected.append((f"{pp}/namedPort", "namedPort must be a port name"))
                out.append(PortMatch("TCP", valid=False))
            else:
                # A named port carries no protocol: it matches whatever protocol the destination's port declares.
                out.extend(PortMatch(proto, name) for proto in PROTOCOLS)
        elif not isinstance(p[which], dict):
            found.rejected.append((f"{pp}/{which}", "must be a map"))
            out.append(PortMatch("TCP", valid=False))
        elif which == "portNumber":
            n = p["portNumber"]
            proto, num = _protocol(n, f"{pp}/portNumber", found), n.get("port")
            ok = _port_number(num)
            if not ok:
                found.rejected.append((f"{pp}/portNumber/port", "port must be a number from 1 to 65535"))
            out.append(PortMatch(proto or "TCP", int(num) if ok else 0, valid=ok and proto is not None))
        else:
            r = p["portRange"]
            proto, start, end = _protocol(r, f"{pp}/portRange", found), r.get("start"), r.get("end")
            ok = _port_number(start) and _port_number(end)
            if not ok:
                found.rejected.append((f"{pp}/portRange", "start and end must be ports from 1 to 65535"))
            elif start >= end:
                # shared_types.go PortRange: "the Start value must be less than End" (documented, not enforced
                # by the CRD: the apiserver stores it, and no port is in the range).
                found.ineffective.append((f"{pp}/portRange", f"start {start} is not less than end {end}"))
                ok = False
            out.append(PortMatch(proto or "TCP", int(start) if ok else 0, int(end) if ok else None,
                                 valid=ok and proto is not None))
    return tuple(out)


def _networks(raw: Any, path: str, found: Found) -> tuple[IPBlock, ...]:
    """`networks`: 1 to 25 CIDRs, each at most 43 characters and `isCIDR(self)` (host bits allowed, as Go's
    netip.ParsePrefix), no duplicates (x-kubernetes-list-type: set)."""
    if not isinstance(raw, list):
        found.rejected.append((path, "networks must be a list of CIDRs"))
        return ()
    if not 1 <= len(raw) <= MAX_NETWORKS:
        found.rejected.append((path, f"{len(raw)} networks: from 1 to {MAX_NETWORKS} CIDRs"))
    blocks: list[IPBlock] = []
    seen: set[str] = set()
    for k, c in enumerate(raw):
        if not isinstance(c, str) or len(c) > MAX_CIDR_LEN:
            found.rejected.append((f"{path}/{k}", "Invalid CIDR format provided"))
            continue
        if c in seen:
            found.rejected.append((f"{path}/{k}", f"duplicate network {c!r} (the list is a set)"))
        seen.add(c)
        block = IPBlock.parse({"cidr": c})
        if block.block is None or "/" not in c:
            found.rejected.append((f"{path}/{k}", f"Invalid CIDR format provided: {c!r}"))
            continue
        blocks.append(block)
    return tuple(blocks)


def _peer(raw: Any, pp: str, egress: bool, action: str, nodes: NodeAddrs, found: Found) -> AdminPeer:
    if not isinstance(raw, dict):
        found.rejected.append((pp, "peer must be a map"))
        return AdminPeer(valid=False, text="<invalid peer>")
    # Ingress peers: namespaces, pods; egress peers add networks and nodes (shared_types.go).
    fields = ("namespaces", "pods", "networks", "nodes") if egress else ("namespaces", "pods")
    if not any(raw.get(f) is not None for f in fields):
        # "If an implementation sees no fields are set … it should fail closed": an Allow rule matches nothing,
        # a Deny or Pass rule denies everything.
        found.rejected.append((pp, "peer with no supported field: fails closed"))
        return AdminPeer(any_peer=action != ALLOW, valid=False, text="<unknown peer>")
    which = _exactly_one(raw, fields, pp, found, "peer")
    if which is None:
        return AdminPeer(valid=False, text="<invalid peer>")
    value = raw[which]
    if which == "namespaces":
        sel = _sel(value, f"{pp}/namespaces", found)
        return AdminPeer(ns_sel=sel, valid=sel is not None, text=f"namespaces({sel.text if sel else '?'})")
    if which == "pods":
        ns, pod, ok = _pods(value, f"{pp}/pods", found)
        text = f"pods({ns.text if ns else '?'}; {pod.text if pod else '?'})"
        return AdminPeer(ns_sel=ns, pod_sel=pod, valid=ok, text=text)
    if which == "networks":
        blocks = _networks(value, f"{pp}/networks", found)
        return AdminPeer(networks=blocks, valid=bool(blocks), text="networks " + ",".join(b.cidr for b in blocks))
    sel = _sel(value, f"{pp}/nodes", found)
    ips = frozenset(ip for labels, addrs in nodes if sel is not None and sel.matches(labels) for ip in addrs)
    return AdminPeer(node_ips=ips, valid=sel is not None, text=f"nodes({sel.text if sel else '?'})")


def node_addresses(nodes: list[Resource]) -> NodeAddrs:
    out: NodeAddrs = []
    for n in nodes:
        status = n.obj.get("status")
        addrs = status.get("addresses") if isinstance(status, dict) else None
        items = addrs if isinstance(addrs, list) else []
        ips = tuple(ip for a in items if isinstance(a, dict) and (ip := parse_ip(str(a.get("address", "")))))
        out.append(({str(k): str(v) for k, v in n.labels.items()}, ips))
    return out


def _rules(raw: Any, peer_key: str, path: str, banp: bool, found: Found, nodes: NodeAddrs) -> tuple[AdminRule, ...]:
    """Ordered rules. A rule the apiserver would reject keeps its place (indices stay those of the object) and
    matches nothing where it cannot be read; an unknown action fails closed as Deny."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        found.rejected.append((path, "must be a list of rules"))
        return ()
    if len(raw) > MAX_RULES:
        found.rejected.append((path, f"{len(raw)} rules: at most {MAX_RULES}"))
    egress = peer_key == "to"
    names: dict[str, int] = {}
    out = []
    for i, r in enumerate(raw):
        rp = f"{path}/{i}"
        if not isinstance(r, dict):
            found.rejected.append((rp, "rule must be a map"))
            out.append(AdminRule(i, f"rule-{i}", DENY if banp else PASS, (), ()))
            continue
        raw_action = r.get("action")
        allowed_actions = (ALLOW, DENY) if banp else (ALLOW, DENY, PASS)  # CRD enum
        action = raw_action if isinstance(raw_action, str) and raw_action in allowed_actions else DENY
        if raw_action not in allowed_actions:  # reported; fails closed as Deny
            found.rejected.append((f"{rp}/action", "action is required" if raw_action is None else
                             f"unknown action {raw_action!r} ({', '.join(allowed_actions)})"))
        name = r.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_RULE_NAME):
            found.rejected.append((f"{rp}/name", f"name must be a string of at most {MAX_RULE_NAME} characters"))
        label = name if isinstance(name, str) and name else f"rule-{i}"
        if isinstance(name, str) and name:
            if name in names:
                # Not rejected by the CRD, but the name is how implementations report a rule: two rules, one name.
                found.warnings.append((f"{rp}/name", f"rule name {name!r} is also used by {path}/{names[name]}"))
            names.setdefault(name, i)
        raw_peers = r.get(peer_key)
        peers: list[AdminPeer] = []
        if not isinstance(raw_peers, list) or not raw_peers:
            found.rejected.append((f"{rp}/{peer_key}", f"{peer_key} is required: a list of at least one peer"))
        else:
            if len(raw_peers) > MAX_PEERS:
                found.rejected.append((f"{rp}/{peer_key}", f"{len(raw_peers)} peers: at most {MAX_PEERS}"))
            peers = [_peer(pr, f"{rp}/{peer_key}/{j}", egress, action, nodes, found)
                     for j, pr in enumerate(raw_peers)]
        ports = _ports(r.get("ports"), f"{rp}/ports", found)
        if egress and any(p.networks or p.node_ips is not None for p in peers) \
                and any(isinstance(m.port, str) for m in ports or ()):
            # adminnetworkpolicy_types.go AdminNetworkPolicyEgressRule XValidation: "networks/nodes peer cannot
            # be set with namedPorts since there are no namedPorts for networks/nodes".
            found.rejected.append((f"{rp}/ports", "networks/nodes peer cannot be set with namedPorts"))
        out.append(AdminRule(i, label, action, tuple(peers), ports))
    return tuple(out)


def compile_admin(res: Resource, nodes: NodeAddrs | None = None) -> AdminPolicy:
    obj = res.obj
    found = Found()
    raw_spec = obj.get("spec")
    if not isinstance(raw_spec, dict):
        found.rejected.append(("/spec", "spec is required" if raw_spec is None else "spec must be a map"))
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    banp = res.kind == "BaselineAdminNetworkPolicy"
    ns, pods = _subject(spec.get("subject"), found)
    priority: int = 1 << 30  # a BANP sorts after every ANP
    if banp:
        if res.name != "default":
            # baselineadminnetworkpolicies CRD x-kubernetes-validations: `self.metadata.name == 'default'`.
            found.rejected.append(("/metadata/name", "a BaselineAdminNetworkPolicy must be named \"default\""))
    else:
        prio = spec.get("priority")
        # adminnetworkpolicy_types.go Priority: required, int32, Minimum 0, Maximum 1000.
        if prio is None:
            found.rejected.append(("/spec/priority", "priority is required (0 to 1000)"))
        elif not _is_int(prio):
            found.rejected.append(("/spec/priority", f"priority {prio!r} must be an integer from 0 to 1000"))
        elif not 0 <= prio <= 1000:
            found.rejected.append(("/spec/priority", f"priority {prio} outside 0..1000"))
        priority = int(prio) if prio is not None and _is_int(prio) else 1000
    nodes = nodes or []
    return AdminPolicy(
        kind=res.kind, name=res.name, priority=priority, subject_ns=ns, subject_pods=pods,
        ingress=_rules(spec.get("ingress"), "from", "/spec/ingress", banp, found, nodes),
        egress=_rules(spec.get("egress"), "to", "/spec/egress", banp, found, nodes),
        resource=res, problems=found.rejected, warnings=found.warnings, ineffective=found.ineffective,
    )


__all__ = ["ALLOW", "DENY", "EGRESS", "INGRESS", "PASS", "AdminPeer", "AdminPolicy", "AdminRule", "compile_admin"]
