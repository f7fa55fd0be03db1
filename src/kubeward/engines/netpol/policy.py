"""NetworkPolicy objects compiled once into rules, peers and port matchers with the API defaults applied.

Upstream references (cited per rule below):
- k8s.io/api networking/v1/types.go (field docs: NetworkPolicySpec, NetworkPolicyPeer, NetworkPolicyPort, IPBlock);
- pkg/apis/networking/v1/defaults.go `SetDefaults_NetworkPolicy`, `SetDefaults_NetworkPolicyPort`;
- pkg/apis/networking/validation/validation.go `ValidateNetworkPolicyPeer`, `ValidateNetworkPolicyPort`.
Anything the apiserver would reject is recorded in `problems` (lint shows it) and compiled to match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...records import field, record
from ...resource import Resource
from ...selectors import Selector, SelectorError, compile_selector
from .ipblock import IPBlock
from .model import PROTOCOLS, Pod

INGRESS, EGRESS = "Ingress", "Egress"
_PORT_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@record(frozen=True)
class PortMatch:
    """One `ports` entry. port None = every port of the protocol (types.go: "If this field is not provided,
    this matches all port names and numbers"); str = named port; end_port = inclusive range (types.go EndPort)."""

    protocol: str
    port: int | str | None = None
    end_port: int | None = None
    valid: bool = True

    def matches(self, port: int, protocol: str, dst: Pod | None) -> bool:
        if not self.valid or protocol != self.protocol:
            return False
        p = self.port
        if p is None:
            return True
        if isinstance(p, str):
            # Named ports resolve against the destination pod's containerPorts (name and protocol); an IP
            # destination or an unresolved name matches nothing (types.go NetworkPolicyPort.Port).
            return dst is not None and dst.resolve(p, protocol) == port
        if self.end_port is not None:
            return p <= port <= self.end_port
        return p == port

    def __str__(self) -> str:
        if self.port is None:
            return f"{self.protocol} (all ports)"
        rng = f"-{self.end_port}" if self.end_port is not None else ""
        return f"{self.protocol} {self.port}{rng}"


@record(frozen=True)
class Peer:
    """A `from`/`to` entry: pods (namespace selector AND pod selector) or an ipBlock.

    types.go NetworkPolicyPeer: podSelector alone = pods in the policy's namespace; namespaceSelector alone = all
    pods of the selected namespaces; both = pods matching podSelector in the selected namespaces (AND).
    `ns_sel` None means the policy's own namespace; `pod_sel` None means every pod; `valid` False = matches nothing.
    """

    ns_sel: Selector | None = None
    pod_sel: Selector | None = None
    ip_block: IPBlock | None = None
    valid: bool = True
    text: str = ""

    @property
    def is_ip(self) -> bool:
        return self.ip_block is not None


@record(frozen=True)
class Rule:
    """An ingress/egress rule: `peers` None = all peers (from/to empty or missing), `ports` None = all ports."""

    index: int
    peers: tuple[Peer, ...] | None
    ports: tuple[PortMatch, ...] | None

    def port_matches(self, port: int, protocol: str, dst: Pod | None) -> bool:
        # types.go: "If this field is empty or missing, this rule matches all ports".
        return self.ports is None or any(p.matches(port, protocol, dst) for p in self.ports)


@record
class Policy:
    namespace: str
    name: str
    pod_sel: Selector | None  # None only when the selector is invalid (then it selects nothing)
    types: frozenset[str]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    resource: Resource | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (JSON pointer, message)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, pod: Pod) -> bool:
        # types.go PodSelector: "An empty podSelector selects all pods in this namespace"; never other namespaces.
        return pod.namespace == self.namespace and self.pod_sel is not None and self.pod_sel.matches(pod.labels)

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress


def default_policy_types(spec: Mapping[str, Any]) -> frozenset[str]:
    """defaults.go SetDefaults_NetworkPolicy: Ingress always, plus Egress when `len(spec.egress) != 0`, so an
    `egress: []` adds nothing; an explicit policyTypes list is kept as written."""
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return frozenset(str(t) for t in types)
    egress = spec.get("egress")
    return frozenset({INGRESS, EGRESS} if isinstance(egress, list) and egress else {INGRESS})


# apimachinery pkg/util/validation/validation.go: IsQualifiedName (label keys: an optional DNS-1123 subdomain
# prefix of at most 253 characters and '/', then a name of at most 63) and IsValidLabelValue (at most 63, may be
# empty); metav1validation.ValidateLabelSelector applies them to matchLabels and matchExpressions.
_LABEL_NAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(?=.{0,63}$)(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and (not key.count("/") or (key.count("/") == 1
                                                                       and bool(_DNS_SUBDOMAIN.match(prefix))))


def _label_syntax(spec: Any, path: str, problems: list[tuple[str, str]]) -> None:
    if not isinstance(spec, dict):
        return
    labels = spec.get("matchLabels")
    for k, v in labels.items() if isinstance(labels, dict) else ():
        if isinstance(k, str) and not _qualified_name(k):
            problems.append((f"{path}/matchLabels", f"invalid label key {k!r}"))
        if isinstance(v, str) and not _LABEL_VALUE.match(v):
            problems.append((f"{path}/matchLabels", f"invalid label value {v!r} (key {k!r})"))
    exprs = spec.get("matchExpressions")
    for i, e in enumerate(exprs if isinstance(exprs, list) else ()):
        if not isinstance(e, dict):
            continue
        if isinstance(e.get("key"), str) and e["key"] and not _qualified_name(e["key"]):
            problems.append((f"{path}/matchExpressions/{i}/key", f"invalid label key {e['key']!r}"))
        values = e.get("values")
        for v in values if isinstance(values, list) else ():
            if isinstance(v, str) and not _LABEL_VALUE.match(v):
                problems.append((f"{path}/matchExpressions/{i}/values", f"invalid label value {v!r}"))


def _selector(spec: Any, path: str, problems: list[tuple[str, str]]) -> tuple[Selector | None, bool]:
    _label_syntax(spec, path, problems)
    try:
        return compile_selector(spec), True
    except SelectorError as exc:
        problems.append((path, f"invalid selector: {exc}"))
        return None, False


def _peer(raw: Any, path: str, problems: list[tuple[str, str]]) -> Peer:
    if not isinstance(raw, dict):
        problems.append((path, "peer must be a map"))
        return Peer(valid=False, text="<invalid>")
    has_pod, has_ns, has_ip = (raw.get(k) is not None for k in ("podSelector", "namespaceSelector", "ipBlock"))
    if has_ip:
        # validation.go ValidateNetworkPolicyPeer: "may not specify both ipBlock and another peer".
        block = IPBlock.parse(raw["ipBlock"])
        for msg in block.problems:
            problems.append((f"{path}/ipBlock", msg))
        if has_pod or has_ns:
            problems.append((path, "may not specify both ipBlock and another peer"))
            return Peer(ip_block=block, valid=False, text=f"ipBlock {block}")
        return Peer(ip_block=block, valid=block.block is not None, text=f"ipBlock {block}")
    if not (has_pod or has_ns):
        # validation.go: a peer with no field set is rejected ("must specify a peer").
        problems.append((path, "must specify a peer"))
        return Peer(valid=False, text="<empty peer>")
    ns_sel, ok1 = _selector(raw.get("namespaceSelector"), f"{path}/namespaceSelector", problems)
    pod_sel, ok2 = _selector(raw.get("podSelector"), f"{path}/podSelector", problems)
    parts = []
    if has_ns:
        parts.append(f"namespaces({ns_sel.text if ns_sel else '?'})")
    if has_pod:
        parts.append(f"pods({pod_sel.text if pod_sel else '?'})")
    return Peer(ns_sel=ns_sel, pod_sel=pod_sel, valid=ok1 and ok2, text=" and ".join(parts))


def _port(raw: Any, path: str, problems: list[tuple[str, str]]) -> PortMatch:
    if not isinstance(raw, dict):
        problems.append((path, "port entry must be a map"))
        return PortMatch("TCP", valid=False)
    # defaults.go SetDefaults_NetworkPolicyPort: protocol defaults to TCP.
    protocol = str(raw.get("protocol") or "TCP")
    valid = True
    if protocol not in PROTOCOLS:
        problems.append((f"{path}/protocol", f"unsupported protocol {protocol!r} (TCP, UDP or SCTP)"))
        valid = False
    port = raw.get("port")
    end = raw.get("endPort")
    if isinstance(port, bool) or (port is not None and not isinstance(port, int | str)):
        problems.append((f"{path}/port", "port must be a number or a name"))
        return PortMatch(protocol, valid=False)
    if isinstance(port, str) and port.isascii() and port.isdigit():
        # A quoted number is a port *name* to the API, and an invalid one (IsValidPortName needs a letter).
        problems.append((f"{path}/port", f"port {port!r} is a string: write it unquoted"))
        port = int(port)
    if isinstance(port, int) and not 1 <= port <= 65535:
        problems.append((f"{path}/port", f"port {port} must be between 1 and 65535"))
        valid = False
    if isinstance(port, str) and (not _PORT_NAME.match(port) or "--" in port):
        # validation.go ValidateNetworkPolicyPort → IsValidPortName (IANA_SVC_NAME): at most 15 characters,
        # lowercase letters, digits and '-', at least one letter, no leading/trailing or double '-'.
        problems.append((f"{path}/port", f"invalid port name {port!r}"))
    if end is not None:
        # types.go EndPort: "cannot be defined if the port field is not defined or if the port field is defined
        # as a named (string) port. The endPort must be equal or greater than port."
        if not isinstance(end, int) or isinstance(end, bool):
            problems.append((f"{path}/endPort", "endPort must be a number"))
            valid = False
        elif not isinstance(port, int):
            problems.append((f"{path}/endPort", "may not be specified when port is not a number"))
            valid = False
        elif end < port or end > 65535:
            problems.append((f"{path}/endPort", f"endPort {end} must be between port {port} and 65535"))
            valid = False
    return PortMatch(protocol, port, end if isinstance(end, int) and not isinstance(end, bool) else None, valid)


def _rules(raw: Any, peer_key: str, path: str, problems: list[tuple[str, str]]) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append((path, "must be a list"))
        return ()
    out = []
    for i, r in enumerate(raw):
        rp = f"{path}/{i}"
        if not isinstance(r, dict):
            problems.append((rp, "rule must be a map"))
            out.append(Rule(i, (), ()))
            continue
        raw_peers, raw_ports = r.get(peer_key), r.get("ports")
        # types.go: from/to "If this field is empty or missing, this rule matches all sources/destinations";
        # ports "If this field is empty or missing, this rule matches all ports".
        peers: tuple[Peer, ...] | None = None
        if isinstance(raw_peers, list) and raw_peers:
            peers = tuple(_peer(p, f"{rp}/{peer_key}/{j}", problems) for j, p in enumerate(raw_peers))
        elif raw_peers is not None and not isinstance(raw_peers, list):
            problems.append((f"{rp}/{peer_key}", "must be a list"))
            peers = ()  # rejected by the apiserver: match nothing rather than everything
        ports: tuple[PortMatch, ...] | None = None
        if isinstance(raw_ports, list) and raw_ports:
            ports = tuple(_port(p, f"{rp}/ports/{j}", problems) for j, p in enumerate(raw_ports))
        elif raw_ports is not None and not isinstance(raw_ports, list):
            problems.append((f"{rp}/ports", "must be a list"))
            ports = ()
        out.append(Rule(i, peers, ports))
    return tuple(out)


# How the apiserver decodes a NetworkPolicySpec (Go structs of k8s.io/api networking/v1 types.go, through
# sigs.k8s.io/json): every field has one JSON type, and a value of another type makes the whole object
# undecodable ("cannot be handled as a NetworkPolicy"); unknown fields are dropped; `null` is the zero value, so
# `ingress: [null]` is `ingress: [{}]` (allow all) and a null label value is "".
_STR, _INT32, _INT_OR_STR = "string", "int32", "int or string"
_SELECTOR: dict[str, Any] = {"matchLabels": ("map", _STR),
                             "matchExpressions": ("list", {"key": _STR, "operator": _STR, "values": ("list", _STR)})}
_PEER: dict[str, Any] = {"podSelector": _SELECTOR, "namespaceSelector": _SELECTOR,
                         "ipBlock": {"cidr": _STR, "except": ("list", _STR)}}
_PTR_STR = "string "  # a *string field (Protocol): null is nil, then defaulted
_PORT: dict[str, Any] = {"protocol": _PTR_STR, "port": _INT_OR_STR, "endPort": _INT32}
_SPEC: dict[str, Any] = {"podSelector": _SELECTOR, "policyTypes": ("list", _STR),
                         "ingress": ("list", {"from": ("list", _PEER), "ports": ("list", _PORT)}),
                         "egress": ("list", {"to": ("list", _PEER), "ports": ("list", _PORT)})}


def _is_int32(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31


def decode(value: Any, schema: Any, path: str, problems: list[tuple[str, str]], in_list: bool = False) -> Any:
    """`value` as the apiserver decodes it against `schema` (nulls become zero values); a wrong JSON type is a
    problem and the value is kept as written (compilation then treats it as matching nothing)."""
    if value is None:
        if schema == _STR:
            return ""  # a string field (or list item, or map value): its zero value
        return {} if in_list and isinstance(schema, dict) else None  # a struct in a list: zero; else absent
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            problems.append((path, "cannot be decoded: an object is expected"))
            return value
        return {k: decode(v, schema[k], f"{path}/{k}", problems) for k, v in value.items() if k in schema}
    if isinstance(schema, tuple):
        kind, elem = schema
        if kind == "list":
            if not isinstance(value, list):
                problems.append((path, "cannot be decoded: a list is expected"))
                return value
            return [decode(v, elem, f"{path}/{i}", problems, True) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            problems.append((path, "cannot be decoded: a map of strings is expected"))
            return value
        return {k: decode(v, elem, f"{path}/{k}", problems, True) for k, v in value.items()}
    ok = (isinstance(value, str) if schema in (_STR, _PTR_STR) else _is_int32(value) if schema == _INT32
          else isinstance(value, str) or _is_int32(value))
    if not ok:
        article = "an" if schema in (_INT32, _INT_OR_STR) else "a"
        problems.append((path, f"cannot be decoded: {article} {schema.strip()} is expected"))
    return value


def compile_policy(res: Resource) -> Policy:
    raw_spec = res.obj.get("spec")
    problems: list[tuple[str, str]] = []
    if raw_spec is not None and not isinstance(raw_spec, dict):
        problems.append(("/spec", "cannot be decoded: an object is expected"))
    spec: dict[str, Any] = decode(raw_spec, _SPEC, "/spec", problems) if isinstance(raw_spec, dict) else {}
    # types.go PodSelector: required, but an absent one serialises as {} (empty selector = every pod).
    pod_sel, _ = _selector(spec.get("podSelector") or {}, "/spec/podSelector", problems)
    types = default_policy_types(spec)
    for t in types - {INGRESS, EGRESS}:
        problems.append(("/spec/policyTypes", f"unknown policy type {t!r}"))
    written = spec.get("policyTypes")
    if isinstance(written, list) and len(written) > 2:
        # validation.go ValidateNetworkPolicySpec: "may not specify more than two policyTypes".
        problems.append(("/spec/policyTypes", "may not specify more than two policyTypes"))
    return Policy(
        namespace=res.namespace or "default",
        name=res.name,
        pod_sel=pod_sel,
        types=types,
        ingress=_rules(spec.get("ingress"), "from", "/spec/ingress", problems),
        egress=_rules(spec.get("egress"), "to", "/spec/egress", problems),
        resource=res,
        problems=problems,
    )


def peer_matches(peer: Peer, policy_ns: str, other: Pod | None, ip: Any, ipblock_matches_pods: bool) -> bool:
    """Does `peer` (of a policy in `policy_ns`) select the other end: a pod, or a bare IP when `other` is None."""
    if not peer.valid:
        return False
    if peer.ip_block is not None:
        if other is None:
            return ip is not None and peer.ip_block.contains(ip)
        # Whether ipBlock matches pod IPs is implementation-defined; upstream e2e expects it to (status.podIPs).
        return ipblock_matches_pods and any(peer.ip_block.contains(a) for a in other.ips)
    if other is None:
        return False
    if peer.ns_sel is None:
        if other.namespace != policy_ns:
            return False
    elif not peer.ns_sel.matches(other.ns_labels):
        return False
    return peer.pod_sel is None or peer.pod_sel.matches(other.labels)
