"""Hypothesis properties of the NetworkPolicy engine on random small clusters:
- the equivalence-class matrix equals the pairwise definition (decide.py) for every pod pair;
- adding an allow rule never removes a connection;
- adding a default-deny policy never adds one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.engines.netpol import ClassIndex, decide, from_snapshot, lint
from kubeward.engines.netpol.policy import default_policy_types
from kubeward.engines.netpol.ports import PortSpace
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

NS = ("n1", "n2")
PORTS = ((80, "TCP"), (81, "TCP"), (53, "UDP"), (80, "SCTP"))
NAMED = (("http", "TCP", 80), ("http", "TCP", 81), ("dns", "UDP", 53), ("web", "SCTP", 80))
NODE_IPS = ("10.0.1.1", "10.0.1.2")

labels_st = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]), max_size=2)
ns_labels_st = st.dictionaries(st.sampled_from(["env", "team"]), st.sampled_from(["p", "q"]), max_size=2)


@st.composite
def selector_st(draw: Any) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    if draw(st.booleans()):
        sel["matchLabels"] = draw(st.dictionaries(st.sampled_from(["app", "tier", "env", "team"]),
                                                  st.sampled_from(["a", "b", "p", "q"]), max_size=1))
    if draw(st.booleans()):
        op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(["app", "env", "kubernetes.io/metadata.name"])),
                                "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(st.lists(st.sampled_from(["a", "b", "p", "n1", "n2"]), min_size=1, max_size=2))
        sel["matchExpressions"] = [expr]
    return sel


@st.composite
def peer_st(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ip"]))
    if kind == "ip":
        block: dict[str, Any] = {"cidr": draw(st.sampled_from(["10.0.0.0/29", "10.0.0.0/30", "10.0.0.4/31"]))}
        if draw(st.booleans()):
            block["except"] = [draw(st.sampled_from(["10.0.0.1/32", "10.0.0.4/32"]))]
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selector_st())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(selector_st())
    return peer


@st.composite
def port_st(draw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if draw(st.booleans()):
        p["protocol"] = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
    form = draw(st.sampled_from(["none", "num", "named", "named", "range"]))
    if form == "num":
        p["port"] = draw(st.sampled_from([53, 80, 81]))
    elif form == "named":
        p["port"] = draw(st.sampled_from(["http", "dns", "web", "nope"]))
    elif form == "range":
        p["port"] = draw(st.sampled_from([50, 80]))
        p["endPort"] = draw(st.sampled_from([80, 81]))
    return p


@st.composite
def rule_st(draw: Any, peer_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[peer_key] = draw(st.lists(peer_st(), max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(port_st(), max_size=2))
    return rule


@st.composite
def policy_st(draw: Any, i: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selector_st())}
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rule_st("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rule_st("to"), max_size=2))
    if draw(st.booleans()):
        spec["policyTypes"] = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i}", "namespace": draw(st.sampled_from(NS))}, "spec": spec}


@st.composite
def admin_st(draw: Any, i: int) -> dict[str, Any]:
    banp = draw(st.booleans())
    def admin_rule(peer_key: str) -> dict[str, Any]:
        actions = ["Allow", "Deny"] if banp else ["Allow", "Deny", "Pass"]
        kind = draw(st.sampled_from(["namespaces", "pods", "nodes"] if peer_key == "to" else ["namespaces", "pods"]))
        peers = [{"pods": {"namespaceSelector": draw(selector_st()), "podSelector": draw(selector_st())}}] \
            if kind == "pods" else [{kind: draw(selector_st())}]  # nodes: egress only (shared_types.go)
        rule: dict[str, Any] = {"name": "r", "action": draw(st.sampled_from(actions)), peer_key: peers}
        if draw(st.booleans()):
            rule["ports"] = [draw(st.sampled_from([{"portNumber": {"protocol": "TCP", "port": 80}},
                                                    {"portRange": {"protocol": "UDP", "start": 50, "end": 60}},
                                                    {"namedPort": "http"}]))]
        return rule
    spec: dict[str, Any] = {"subject": {"namespaces": draw(selector_st())},
                            "ingress": [admin_rule("from") for _ in range(draw(st.integers(0, 2)))],
                            "egress": [admin_rule("to") for _ in range(draw(st.integers(0, 2)))]}
    if banp:
        return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
                "metadata": {"name": "default"}, "spec": spec}
    spec["priority"] = draw(st.integers(0, 3))
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
            "metadata": {"name": f"anp{i}"}, "spec": spec}


@st.composite
def cluster_objs(draw: Any, with_admin: bool = False) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for ns in NS:
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": draw(ns_labels_st)}})
    n = draw(st.integers(2, 7))
    for i in range(n):
        ports = [{"name": name, "protocol": proto, "containerPort": num}
                 for name, proto, num in draw(st.lists(st.sampled_from(NAMED), max_size=2, unique_by=lambda t: t[0]))]
        pod_spec: dict[str, Any] = {"containers": [{"name": "c", "ports": ports}]}
        ip = f"10.0.0.{i}"
        if with_admin and draw(st.booleans()):  # host-networked: its IP is a node's address (`nodes` peers)
            pod_spec["hostNetwork"] = True
            ip = draw(st.sampled_from(NODE_IPS))
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"pod{i}", "namespace": draw(st.sampled_from(NS)), "labels": draw(labels_st)},
                     "spec": pod_spec, "status": {"podIP": ip}})
    # Workloads stand for their pods: a Deployment of several replicas (or a DaemonSet, one pod per node) is
    # several pods, so its own cell is replica-to-replica traffic; replicas 0 runs no pod.
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["Deployment", "Deployment", "StatefulSet", "DaemonSet"]))
        spec: dict[str, Any] = {}
        if kind != "DaemonSet" and draw(st.booleans()):
            spec["replicas"] = draw(st.sampled_from([0, 1, 2, 5]))
        ports = [{"name": name, "protocol": proto, "containerPort": num}
                 for name, proto, num in draw(st.lists(st.sampled_from(NAMED), max_size=1))]
        spec["template"] = {"metadata": {"labels": draw(labels_st)},
                            "spec": {"containers": [{"name": "c", "ports": ports}]}}
        objs.append({"apiVersion": "apps/v1", "kind": kind,
                     "metadata": {"name": f"wl{i}", "namespace": draw(st.sampled_from(NS))}, "spec": spec})
    for i in range(draw(st.integers(1, 4))):
        objs.append(draw(policy_st(i)))
    if with_admin:
        for k, node_ip in enumerate(NODE_IPS):
            objs.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node{k}", "labels": draw(labels_st)},
                         "status": {"addresses": [{"type": "InternalIP", "address": node_ip}]}})
        seen_banp = False
        for i in range(draw(st.integers(0, 3))):
            a = draw(admin_st(i))
            if a["kind"] == "BaselineAdminNetworkPolicy":
                if seen_banp:
                    continue
                seen_banp = True
            objs.append(a)
    return objs


def _cluster(objs: list[dict[str, Any]], ipblock_matches_pods: bool = True) -> Any:
    return from_snapshot(Snapshot(Resource(o) for o in objs), ipblock_matches_pods=ipblock_matches_pods)


def _pairwise(cluster: Any, port: int, proto: str) -> set[tuple[str, str]]:
    return {(a.key, b.key) for a in cluster.pods for b in cluster.pods if decide(cluster, a, b, port, proto).allowed}


def _classwise(cluster: Any, port: int, proto: str) -> set[tuple[str, str]]:
    m = ClassIndex(cluster).matrix(port, proto)
    pods = cluster.pods
    return {(pods[i].key, pods[j].key) for i in range(len(pods)) for j in range(len(pods)) if m.allowed(i, j)}


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cluster_objs(), st.sampled_from(PORTS), st.booleans())
def test_classes_equal_pairwise(objs: list[dict[str, Any]], probe: tuple[int, str], by_ip: bool) -> None:
    cluster = _cluster(objs, by_ip)
    port, proto = probe
    assert _classwise(cluster, port, proto) == _pairwise(cluster, port, proto)
    # only a single pod is exempt from policy towards itself; a representative of several replicas is not
    for p in cluster.pods:
        if p.single:
            assert decide(cluster, p, p, port, proto).allowed


@FAST
@given(cluster_objs(with_admin=True), st.sampled_from(PORTS))
def test_classes_equal_pairwise_with_admin_tiers(objs: list[dict[str, Any]], probe: tuple[int, str]) -> None:
    cluster = _cluster(objs)
    port, proto = probe
    assert _classwise(cluster, port, proto) == _pairwise(cluster, port, proto)


@FAST
@given(cluster_objs(), st.sampled_from(PORTS), st.data())
def test_adding_an_allow_rule_never_removes_a_connection(objs: list[dict[str, Any]], probe: tuple[int, str],
                                                         data: Any) -> None:
    port, proto = probe
    before = _classwise(_cluster(objs), port, proto)
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    if not policies:
        return
    target = data.draw(st.sampled_from(policies))
    direction, key = data.draw(st.sampled_from([("ingress", "from"), ("egress", "to")]))
    rule = data.draw(rule_st(key))
    # Only add where the direction is already in the effective policyTypes: a first egress rule would otherwise
    # add Egress by defaulting (defaults.go), which isolates and so is not "adding an allow rule".
    if direction.capitalize() not in default_policy_types(target["spec"]):
        return
    target["spec"].setdefault(direction, []).append(rule)
    after = _classwise(_cluster(objs), port, proto)
    assert before <= after


@FAST
@given(cluster_objs(), st.sampled_from(PORTS), st.sampled_from(NS),
       st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]), selector_st())
def test_a_default_deny_never_adds_a_connection(objs: list[dict[str, Any]], probe: tuple[int, str], ns: str,
                                                types: list[str], sel: dict[str, Any]) -> None:
    port, proto = probe
    before = _classwise(_cluster(objs), port, proto)
    objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "zz-deny", "namespace": ns}, "spec": {"podSelector": sel, "policyTypes": types}})
    after = _classwise(_cluster(objs), port, proto)
    assert after <= before


json_st = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(["", "x", "TCP", "10.0.0.0/8", "80", "http"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["podSelector", "namespaceSelector", "ipBlock", "cidr", "except", "from", "to", "ports",
                         "port", "endPort", "protocol", "matchLabels", "matchExpressions", "key", "operator",
                         "values", "ingress", "egress", "policyTypes", "subject", "namespaces", "pods", "action",
                         "priority", "portNumber", "portRange", "networks", "nodes", "app"]),
        inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["NetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy",
                                           "Pod", "Deployment", "Namespace"]), json_st), max_size=5))
def test_hostile_shapes_never_raise(items: list[tuple[str, Any]]) -> None:
    objs = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n1", "labels": {"app": "a"}},
             "spec": {"containers": [{"name": "c"}]}, "status": {"podIP": "10.0.0.1"}}]
    for i, (kind, body) in enumerate(items):
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind,
                               "metadata": {"name": f"o{i}", "namespace": "n1", "labels": body if i % 2 else {}}}
        obj["spec" if i % 3 else "status"] = body
        obj["spec"] = body if kind != "Pod" else {"containers": body}
        objs.append(obj)
    cluster = _cluster(objs)
    index = ClassIndex(cluster)
    for port, proto in PORTS:
        m = index.matrix(port, proto)
        for i, a in enumerate(cluster.pods):
            for j, b in enumerate(cluster.pods):
                assert m.allowed(i, j) == decide(cluster, a, b, port, proto).allowed
    PortSpace.build(index)
    list(lint.issues(cluster))
