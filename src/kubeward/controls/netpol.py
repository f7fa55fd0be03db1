"""Network controls backed by the NetworkPolicy engine (KW-N1xx): mistakes the engine can prove and exposure
that remains despite isolation. The simple per-object network checks live in controls/network.py (KW-N0xx)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..resource import POD_KINDS, Resource
from ..snapshot import Snapshot
from .registry import control

if TYPE_CHECKING:
    from ..engines.netpol.cluster import Cluster
    from ..engines.netpol.lint import Issue

Found = Iterator[tuple[Resource, str, str]]
POLICY_KINDS = ("NetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


def _lint(snapshot: Snapshot, before: Any = None) -> dict[str, list[Issue]]:
    # Every issue lint raises stems from a policy (a pod with none selecting it is isolated by nothing), so
    # without policies there is nothing to find, no pod model to build and no engine to load.
    if not snapshot.of_kind(*POLICY_KINDS):
        return {}
    from ..engines.netpol import lint

    # `before`: the monitor's previous lane run's lint, whose pods' issues per namespace may be reused
    return lint.by_code(netpol_cluster(snapshot), before if isinstance(before, lint.Lint) else None)


def netpol_cluster(snapshot: Snapshot) -> Cluster:
    """The compiled NetworkPolicy model of the snapshot, once per snapshot: lint and the attack graph share it."""
    from ..engines.netpol.cluster import from_snapshot, updated

    return snapshot.derived("netpol.cluster", from_snapshot, update=updated)


def _issues(snapshot: Snapshot, code: str) -> list[Issue]:
    """Lint runs once per snapshot; every control reads its share (`code` is a lint code, e.g. lint.SELECTS_NONE)."""
    return snapshot.derived("netpol.lint", _lint, update=lambda before, s, _: _lint(s, before)).get(code, [])


def _hits(snapshot: Snapshot, code: str) -> Found:
    for issue in _issues(snapshot, code):
        if issue.resource is not None:
            yield issue.resource, issue.path, issue.message


@control(
    "KW-N101", "NetworkPolicy selects no pod", "low", "network",
    frameworks=("nsa",),
    remediation="Fix spec.podSelector to match the intended pods' labels, or delete the policy.",
    shape="snapshot", kinds=("NetworkPolicy",),
)
def selects_no_pod(snapshot: Snapshot) -> Found:
    """A NetworkPolicy's podSelector selects at least one pod of its namespace in the input: a policy that
    selects none isolates nothing, usually a label typo, and the pods meant to be protected stay open. Upstream:
    kubernetes.io/docs/concepts/services-networking/network-policies/ (a policy applies to the pods its podSelector selects in its own namespace)."""
    yield from _hits(snapshot, "selects-none")


@control(
    "KW-N102", "NetworkPolicy peer matches nothing", "low", "network",
    frameworks=("nsa",),
    remediation="Fix the peer's namespaceSelector/podSelector; a peer that matches nothing allows nothing.",
    shape="snapshot", kinds=("NetworkPolicy",),
)
def peer_matches_nothing(snapshot: Snapshot) -> Found:
    """Every from/to peer (namespaceSelector and podSelector) of a NetworkPolicy matches some pod of the input:
    a peer that matches nothing allows nothing, so the traffic it was written for is denied. Upstream:
    kubernetes.io/docs/concepts/services-networking/network-policies/ (behavior of to and from selectors)."""
    yield from _hits(snapshot, "peer-none")


@control(
    "KW-N103", "NetworkPolicy named port never resolves", "medium", "network",
    frameworks=("nsa",),
    remediation="Use a containerPort name (and protocol) the destination pods declare, or a port number.",
    shape="snapshot", kinds=("NetworkPolicy",),
)
def named_port_unresolved(snapshot: Snapshot) -> Found:
    """A named port of a NetworkPolicy rule resolves, with its protocol, to a containerPort name some
    destination pod declares: a name no pod declares matches no port, so the rule allows nothing. Upstream:
    k8s.io/api networking/v1 types.go (NetworkPolicyPort.port: a named port on the pods)."""
    yield from _hits(snapshot, "named")


@control(
    "KW-N104", "NetworkPolicy ipBlock except outside cidr", "medium", "network",
    frameworks=("nsa",),
    remediation="Every except entry must be a strict subnet of the ipBlock cidr (the apiserver rejects others).",
    shape="snapshot", kinds=("NetworkPolicy",),
)
def except_outside_cidr(snapshot: Snapshot) -> Found:
    """Every ipBlock.except entry is a strict subnet of the ipBlock's cidr: the apiserver rejects the policy
    otherwise. Upstream: pkg/apis/networking/validation/validation.go (ValidateIPBlock)."""
    yield from _hits(snapshot, "except")


@control(
    "KW-N105", "Network policy the apiserver would reject, or a part that can never match", "medium", "network",
    frameworks=("nsa",),
    remediation="Fix the field named in the message; kubeward evaluates the invalid part as matching nothing.",
    shape="snapshot", kinds=("NetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy"),
    reads=("Node",),  # the engine resolves ANP `nodes` peers from Node addresses
)
def invalid_policy(snapshot: Snapshot) -> Found:
    """A NetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy passes the apiserver's validation (or
    the CRD's schema and rules), and no part of it can never match: kubeward judges an invalid part as matching
    nothing, which is what the user did not mean. Upstream: pkg/apis/networking/validation/validation.go;
    sigs.k8s.io/network-policy-api (AdminNetworkPolicy types and validation)."""
    yield from _hits(snapshot, "invalid")


@control(
    "KW-N106", "Object defined twice in the network inputs, or admin rule name reused", "medium", "network",
    frameworks=("nsa",),
    remediation="Keep one definition per kind, namespace and name (only the last one applied survives), and give "
    "every AdminNetworkPolicy rule its own name.",
    shape="snapshot", kinds=("NetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "Namespace",
                             *sorted(POD_KINDS)),
)
def duplicate_objects(snapshot: Snapshot) -> Found:
    """No NetworkPolicy, admin network policy, Namespace or pod-carrying object is defined twice in the inputs
    (only the last one applied survives, so the reach computed from the files is not the cluster's), and no
    AdminNetworkPolicy rule name is used twice. Upstream: the apiserver keeps one object per kind, namespace and
    name; sigs.k8s.io/network-policy-api (rule names)."""
    yield from _hits(snapshot, "duplicate")


@control(
    "KW-N110", "Isolated pod still reachable from every pod on every port", "medium", "network",
    frameworks=("nsa", "cis-5.3.2", "mitre-T1046"),
    remediation="Replace the allow-all ingress rule with from/ports naming the expected clients.",
    shape="snapshot", kinds=POD_KINDS,
)
def isolated_but_open_ingress(snapshot: Snapshot) -> Found:
    """A pod that some NetworkPolicy isolates for ingress is not still reachable from every pod on every port
    through an allow-all rule: the isolation then protects nothing. Judged by the netpol engine's policy model of
    the input's pods. Upstream: the Network Policies docs; CIS 5.3.2."""
    yield from _hits(snapshot, "open-ingress")


@control(
    "KW-N111", "Egress isolation that still allows every destination", "low", "network",
    frameworks=("nsa", "mitre-T1041"),
    remediation="Replace the allow-all egress rule with to/ports naming the needed destinations (and DNS).",
    shape="snapshot", kinds=POD_KINDS,
)
def isolated_but_open_egress(snapshot: Snapshot) -> Found:
    """A pod isolated for egress is not still allowed to every destination on every port through an allow-all
    egress rule: the egress policy then restricts nothing. Upstream:
    kubernetes.io/docs/concepts/services-networking/network-policies/ (isolation, allow-all egress)."""
    yield from _hits(snapshot, "open-egress")


@control(
    "KW-N112", "Egress isolation blocks DNS", "medium", "network",
    frameworks=("nsa",),
    remediation="Add an egress rule to kube-system/kube-dns on UDP and TCP 53 for the isolated pods.",
    shape="snapshot", kinds=POD_KINDS,
)
def dns_blocked(snapshot: Snapshot) -> Found:
    """A pod isolated for egress may still reach cluster DNS on UDP 53 (the input's kube-dns pods, or
    kube-system/kube-dns as kubeadm labels it): without it every name lookup fails, which is usually discovered
    in production. Upstream: the Network Policies docs; the DNS for Services and Pods docs
    (kubernetes.io/docs/concepts/services-networking/dns-pod-service/)."""
    yield from _hits(snapshot, "dns-blocked")
