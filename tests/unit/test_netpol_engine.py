"""Unit tests of the NetworkPolicy engine pieces: defaulting, peers, ports, ipBlocks, edges (self, node),
workload representatives, all-ports summaries, lint, flows and generation."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from kubeward.engines.netpol import ClassIndex, External, decide, evaluate_flow, from_snapshot
from kubeward.engines.netpol import lint as lint_mod
from kubeward.engines.netpol.flows import FlowChecker, FlowError, parse_flow, read_flows
from kubeward.engines.netpol.generate import generate
from kubeward.engines.netpol.ipblock import IPBlock
from kubeward.engines.netpol.policy import default_policy_types
from kubeward.engines.netpol.ports import ALL_PORTS, PortSpace, describe
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(namespace: str, name: str, labels: dict[str, str], ip: str | None = None,
        ports: list[dict[str, Any]] | None = None, host_ip: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ip:
        status = {"podIP": ip, "podIPs": [{"ip": ip}]}
    if host_ip:
        status["hostIP"] = host_ip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports or []}]}, "status": status}


def np(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def cluster(*objs: dict[str, Any], by_ip: bool = True) -> Any:
    return from_snapshot(Snapshot(Resource(o, file="t.yaml", line=1) for o in objs), ipblock_matches_pods=by_ip)


def ok(c: Any, src: str, dst: str, port: int, proto: str = "TCP") -> bool:
    checker = FlowChecker(c)
    return checker.allowed(src, dst, port, proto)


# ---- defaulting and rule shapes ----------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "types"), [
    ({}, {"Ingress"}),
    ({"egress": []}, {"Ingress"}),
    ({"egress": [{}]}, {"Ingress", "Egress"}),
    ({"policyTypes": ["Egress"], "ingress": [{}]}, {"Egress"}),
])
def test_policy_types_defaulting(spec: dict[str, Any], types: set[str]) -> None:
    assert default_policy_types(spec) == types


def test_ingress_empty_rule_allows_all_and_empty_list_denies_all() -> None:
    base = (ns("a"), ns("b"), pod("a", "s", {"app": "s"}), pod("b", "c", {"app": "c"}))
    assert ok(cluster(*base, np("a", "p", {"podSelector": {}, "ingress": [{}]})), "b/c", "a/s", 80)
    assert not ok(cluster(*base, np("a", "p", {"podSelector": {}, "ingress": []})), "b/c", "a/s", 80)
    # from: [] and a missing from are the same: all peers
    assert ok(cluster(*base, np("a", "p", {"podSelector": {}, "ingress": [{"from": []}]})), "b/c", "a/s", 80)


def test_empty_peer_is_invalid_and_matches_nothing() -> None:
    c = cluster(ns("a"), pod("a", "s", {}), pod("a", "c", {}), np("a", "p", {"podSelector": {}, "ingress": [{"from": [{}]}]}))
    assert not ok(c, "a/c", "a/s", 80)
    assert any("must specify a peer" in m for _, m in c.policies[0].problems)


def test_ipblock_with_selector_is_rejected() -> None:
    c = cluster(ns("a"), pod("a", "s", {}), np("a", "p", {"podSelector": {}, "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}))
    assert any("both ipBlock and another peer" in m for _, m in c.policies[0].problems)
    assert not evaluate_flow(c, External(ipaddress.ip_address("10.1.1.1")), c.pods[0], 80)


def test_policy_only_selects_its_own_namespace() -> None:
    c = cluster(ns("a"), ns("b"), pod("a", "s", {"app": "x"}), pod("b", "s", {"app": "x"}), pod("b", "c", {}),
                np("a", "deny", {"podSelector": {"matchLabels": {"app": "x"}}}))
    assert not ok(c, "b/c", "a/s", 80)
    assert ok(c, "b/c", "b/s", 80)


# ---- ports -------------------------------------------------------------------------------------------------

def test_named_port_resolves_on_destination_for_egress() -> None:
    c = cluster(ns("a"), pod("a", "client", {"app": "c"}, ports=[{"name": "http", "containerPort": 9999}]),
                pod("a", "srv", {"app": "s"}, ports=[{"name": "http", "containerPort": 8080}]),
                np("a", "eg", {"podSelector": {"matchLabels": {"app": "c"}}, "policyTypes": ["Egress"],
                               "egress": [{"ports": [{"port": "http"}]}]}))
    assert ok(c, "a/client", "a/srv", 8080)
    assert not ok(c, "a/client", "a/srv", 9999)  # the source's own "http" is irrelevant
    assert not ok(c, "a/client", "10.0.0.1", 8080)  # an IP destination never matches a named port


def test_protocol_only_port_means_every_port_of_that_protocol() -> None:
    c = cluster(ns("a"), pod("a", "s", {}), pod("a", "c", {}),
                np("a", "p", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP"}]}]}))
    assert ok(c, "a/c", "a/s", 1, "UDP") and ok(c, "a/c", "a/s", 65535, "UDP")
    assert not ok(c, "a/c", "a/s", 53, "TCP")


def test_invalid_end_port_matches_nothing_and_is_reported() -> None:
    c = cluster(ns("a"), pod("a", "s", {}), pod("a", "c", {}),
                np("a", "p", {"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}))
    assert not ok(c, "a/c", "a/s", 85)
    assert any("endPort" in m for _, m in c.policies[0].problems)


# ---- ipBlock -----------------------------------------------------------------------------------------------

def test_ipblock_except_and_validation() -> None:
    b = IPBlock.parse({"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24", "10.9.0.0/24"]})
    assert b.contains(ipaddress.ip_address("10.0.0.5"))
    assert not b.contains(ipaddress.ip_address("10.0.1.5"))
    assert not b.contains(ipaddress.ip_address("10.1.0.1"))
    assert not b.contains(ipaddress.ip_address("::1"))
    assert b.problems == ("except 10.9.0.0/24 is not within CIDR range 10.0.0.0/16",)
    assert IPBlock.parse({"cidr": "nope"}).block is None


def test_ipblock_matching_pods_is_switchable() -> None:
    objs = (ns("a"), pod("a", "s", {"app": "s"}, ip="10.0.0.2"), pod("a", "c", {"app": "c"}, ip="10.0.0.3"),
            np("a", "p", {"podSelector": {"matchLabels": {"app": "s"}},
                          "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.3/32"}}]}]}))
    assert ok(cluster(*objs), "a/c", "a/s", 80)
    off = cluster(*objs, by_ip=False)
    assert not ok(off, "a/c", "a/s", 80)
    at = {p.key: i for i, p in enumerate(off.pods)}
    assert not ClassIndex(off).matrix(80).allowed(at["a/c"], at["a/s"])
    assert ClassIndex(cluster(*objs)).matrix(80).allowed(at["a/c"], at["a/s"])
    # a flow from the pod's IP resolves to the pod, so the switch applies to it as well
    assert not ok(off, "10.0.0.3", "a/s", 80)


# ---- edges: self and node ----------------------------------------------------------------------------------

def test_pod_reaches_itself_and_its_node() -> None:
    c = cluster(ns("a"), pod("a", "s", {}, ip="10.0.0.2", host_ip="192.168.1.1"),
                np("a", "deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    s = c.pods[0]
    assert decide(c, s, s, 80).allowed
    assert evaluate_flow(c, External(ipaddress.ip_address("192.168.1.1")), s, 10250)
    assert evaluate_flow(c, s, External(ipaddress.ip_address("192.168.1.1")), 10250)
    assert not evaluate_flow(c, External(ipaddress.ip_address("192.168.1.2")), s, 80)
    assert ClassIndex(c).matrix(80).allowed(0, 0)


# ---- sources: workload representatives ---------------------------------------------------------------------

def test_workload_representatives_when_only_templates_exist() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
           "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]}}}}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-1", "namespace": "a", "ownerReferences": [{"kind": "Deployment", "name": "web"}]},
          "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}
    c = cluster(ns("a"), dep, rs)
    assert [p.key for p in c.pods] == ["a/web"]
    assert c.pods[0].workload == "Deployment/web" and c.pods[0].resolve("http", "TCP") == 80
    # a Pod owned by the Deployment's ReplicaSet stands for it: no representative is added
    owned = pod("a", "web-1-xyz", {"app": "web", "pod-template-hash": "1"})
    owned["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web-1", "controller": True}]
    c2 = cluster(ns("a"), dep, rs, owned)
    assert [p.key for p in c2.pods] == ["a/web-1-xyz"]


# ---- all-ports summaries -----------------------------------------------------------------------------------

def test_port_space_summary() -> None:
    c = cluster(ns("a"), pod("a", "s", {"app": "s"}, ports=[{"name": "dns", "containerPort": 53, "protocol": "UDP"}]),
                pod("a", "c", {"app": "c"}),
                np("a", "p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [
                    {"ports": [{"port": 80}, {"port": 8000, "endPort": 8080}, {"port": "dns", "protocol": "UDP"}]}]}))
    idx = ClassIndex(c)
    space = PortSpace.build(idx)
    s, cl = (idx.pod_class[i] for i in (1, 0)) if c.pods[0].name == "c" else (idx.pod_class[i] for i in (0, 1))
    assert describe(space.allowed(cl, s)) == "TCP 80,8000-8080; UDP 53"
    assert describe(space.allowed(s, cl)) == "All"
    assert describe({}) == "None" and describe(ALL_PORTS) == "All"
    assert describe({"TCP": [(1, 65535)], "UDP": [(53, 53)]}) == "TCP all; UDP 53"


# ---- lint --------------------------------------------------------------------------------------------------

def test_lint_issues() -> None:
    c = cluster(
        ns("a"), pod("a", "s", {"app": "s"}, ports=[{"name": "http", "containerPort": 80}]), pod("a", "c", {"app": "c"}),
        np("a", "none", {"podSelector": {"matchLabels": {"app": "ghost"}}}),
        np("a", "peers", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "ghost"}}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "ghost"}}}]},
            {"ports": [{"port": "grpc"}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/24"]}}]}]}),
        np("a", "open", {"podSelector": {"matchLabels": {"app": "c"}}, "ingress": [{}],
                         "egress": [{"ports": [{"port": 443}]}]}),
    )
    got = lint_mod.by_code(c)
    assert [i.resource.name for i in got[lint_mod.SELECTS_NONE]] == ["none"]
    assert len(got[lint_mod.PEER_NONE]) == 2
    assert "'grpc'" in got[lint_mod.NAMED_UNRESOLVED][0].message
    assert got[lint_mod.EXCEPT_OUTSIDE][0].path == "/spec/ingress/3/from/0/ipBlock"
    assert [i.resource.name for i in got[lint_mod.OPEN_INGRESS]] == ["c"]
    assert [i.resource.name for i in got[lint_mod.DNS_BLOCKED]] == ["c"]


def test_lint_dns_allowed_by_rule_is_quiet() -> None:
    c = cluster(ns("a"), ns("kube-system"), pod("a", "c", {"app": "c"}),
                np("a", "eg", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                             "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                     "ports": [{"port": 53, "protocol": "UDP"}]}]}))
    assert lint_mod.DNS_BLOCKED not in lint_mod.by_code(c)


# ---- flows and generation ----------------------------------------------------------------------------------

def test_flow_parsing() -> None:
    assert parse_flow({"src": "a/b", "dst": "10.0.0.1", "port": "80"}).protocol == "TCP"
    with pytest.raises(FlowError):
        parse_flow({"src": "a/b", "dst": "c/d", "port": 0})
    with pytest.raises(FlowError):
        parse_flow({"src": "a/b", "dst": "c/d", "port": 80, "protocol": "ICMP"})
    items = list(read_flows([b'{"src":"a/b","dst":"c/d","port":1}', b"", b"{", b"[1]"]))
    assert [type(i).__name__ for i in items] == ["Flow", "FlowError", "FlowError"]
    assert str(items[1]).startswith("line 3:")


def test_generated_policies_allow_exactly_the_observed_flows() -> None:
    base = [ns("a"), ns("b"),
            pod("a", "web-1", {"app": "web", "pod-template-hash": "x"}, ip="10.0.0.1"),
            pod("a", "web-2", {"app": "web", "pod-template-hash": "y"}, ip="10.0.0.2"),
            pod("a", "api", {"app": "api"}, ip="10.0.0.3"),
            pod("b", "db", {"app": "db"}, ip="10.0.1.1")]
    flows = [parse_flow(f) for f in (
        {"src": "a/web-1", "dst": "a/api", "port": 8080},
        {"src": "a/api", "dst": "b/db", "port": 5432},
        {"src": "203.0.113.7", "dst": "a/web-2", "port": 443},
        {"src": "a/api", "dst": "8.8.8.8", "port": 53, "protocol": "UDP"},
    )]
    policies = generate(FlowChecker(cluster(*base)), flows)
    assert {p["metadata"]["name"] for p in policies} == {"web-least-privilege", "api-least-privilege",
                                                         "db-least-privilege"}
    after = cluster(*base, *policies)
    checker = FlowChecker(after)
    for f in flows:
        assert checker.check(f) is None, f
    # replicas share the workload's policy; anything not observed is denied
    assert checker.allowed("a/web-2", "a/api", 8080)
    for src, dst, port in (("a/api", "a/web-1", 443), ("a/web-1", "b/db", 5432), ("a/api", "b/db", 5433),
                           ("203.0.113.8", "a/web-1", 443), ("b/db", "a/api", 8080)):
        assert not checker.allowed(src, dst, port), (src, dst, port)


def test_check_flow_alert_names_the_deciding_policies() -> None:
    c = cluster(ns("a"), pod("a", "s", {"app": "s"}), pod("a", "c", {"app": "c"}),
                np("a", "deny", {"podSelector": {"matchLabels": {"app": "s"}}}))
    alert = FlowChecker(c).check(parse_flow({"src": "a/c", "dst": "a/s", "port": 80}))
    assert alert == {"alert": "unauthorized communication attempt", "src": "a/c", "dst": "a/s", "port": 80,
                     "protocol": "TCP", "denied": ["ingress"], "policies": ["a/deny"]}
    with pytest.raises(FlowError, match="unknown pod"):
        FlowChecker(c).endpoint("a/ghost")


def test_admin_nodes_peer_matches_node_addresses() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"role": "infra"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.5.5"}]}}
    anp = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
           "metadata": {"name": "no-infra"},
           "spec": {"priority": 1, "subject": {"namespaces": {}},
                    "egress": [{"name": "deny-infra", "action": "Deny", "to": [{"nodes": {"matchLabels": {"role": "infra"}}}]}]}}
    c = cluster(ns("a"), pod("a", "s", {}, ip="10.0.0.2"), node, anp)
    assert not ok(c, "a/s", "192.168.5.5", 22)
    assert ok(c, "a/s", "192.168.5.6", 22)
    d = decide(c, c.pods[0], External(ipaddress.ip_address("192.168.5.5")), 22)
    assert d.egress is not None and d.egress.reasons[0].policy == "AdminNetworkPolicy/no-infra"


def test_port_validation_problems() -> None:
    c = cluster(ns("a"), pod("a", "s", {}), np("a", "p", {"podSelector": {}, "ingress": [{"ports": [
        {"port": "80"}, {"port": "Bad_Name"}, {"port": 70000}, {"port": "http", "endPort": 90},
        {"port": 80, "protocol": "ICMP"}]}]}))
    msgs = [m for _, m in c.policies[0].problems]
    assert any("is a string" in m for m in msgs)
    assert any("invalid port name 'Bad_Name'" in m for m in msgs)
    assert any("between 1 and 65535" in m for m in msgs)
    assert any("not a number" in m for m in msgs)
    assert any("unsupported protocol" in m for m in msgs)


def test_admin_port_shapes_are_validated() -> None:
    anp = {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "x"},
           "spec": {"priority": 1, "subject": {"namespaces": {}}, "ingress": [
               {"name": "r", "action": "Deny", "from": [{"namespaces": {}}],
                "ports": [{"portNumber": {"protocol": "TCP"}}, {"portRange": {"start": 90, "end": 80}}]}]}}
    c = cluster(ns("a"), pod("a", "s", {}), pod("a", "c", {}), anp)
    assert len(c.admin[0].problems) == 1  # a missing port is rejected by the CRD
    assert len(c.admin[0].ineffective) == 1  # start >= end is stored by the apiserver, and matches no port
    assert ok(c, "a/c", "a/s", 80)  # invalid ports match nothing, so the Deny does not apply


def test_flow_checker_matrix_path_agrees_with_pairwise() -> None:
    c = cluster(ns("a"), ns("b"), pod("a", "s", {"app": "s"}, ip="10.0.0.2"), pod("a", "c", {"app": "c"}),
                pod("b", "x", {"app": "x"}),
                np("a", "p", {"podSelector": {"matchLabels": {"app": "s"}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "c"}}}]}]}))
    slow, fast = FlowChecker(c, matrix_after=10**9), FlowChecker(c, matrix_after=1)
    keys = [p.key for p in c.pods] + ["10.0.0.2", "192.0.2.1"]
    for a in keys:
        for b in keys:
            assert slow.allowed(a, b, 80) == fast.allowed(a, b, 80), (a, b)
    assert fast._matrices  # the matrix path was taken


def test_scan_controls_cover_every_lint_code() -> None:
    """controls/netpol.py names lint codes as text (it loads the engine lazily): they must be lint's codes."""
    import re
    from pathlib import Path

    from kubeward.engines.netpol import lint

    source = Path("src/kubeward/controls/netpol.py").read_text()
    used = set(re.findall(r'_hits\(snapshot, "([^"]+)"\)', source))
    codes = {lint.INVALID, lint.EXCEPT_OUTSIDE, lint.SELECTS_NONE, lint.PEER_NONE, lint.NAMED_UNRESOLVED,
             lint.OPEN_INGRESS, lint.OPEN_EGRESS, lint.DNS_BLOCKED, lint.DUPLICATE}
    assert used == codes


# ---- decoding as the apiserver decodes (checked against a real apiserver in tests/e2e/cluster) -------------

@pytest.mark.parametrize(("spec", "expect"), [
    ({"podSelector": {"matchLabels": {"app": "10.0.0.0/8"}}}, "invalid label value '10.0.0.0/8'"),
    ({"podSelector": {"matchLabels": {"a b": "x"}}}, "invalid label key 'a b'"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x" * 64]}]}},
     "invalid label value"),
    ({"podSelector": {"matchLabels": {"a": 1}}}, "cannot be decoded: a string is expected"),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}, "more than two policyTypes"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1/24"}}]}]},
     "must not have bits set beyond the prefix length"),
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]}, "a prefix length is required"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 80.0}]}]}, "cannot be decoded: an int or string"),
    ({"podSelector": {}, "ingress": 5}, "cannot be decoded: a list is expected"),
])
def test_policies_the_apiserver_refuses_are_problems(spec: dict[str, Any], expect: str) -> None:
    c = cluster(ns("a"), np("a", "p", spec))
    assert any(expect in m for _, m in c.policies[0].problems), c.policies[0].problems


def test_nulls_are_zero_values_as_the_apiserver_decodes_them() -> None:
    base = (ns("a"), pod("a", "s", {"app": "s"}), pod("a", "c", {}))
    assert ok(cluster(*base, np("a", "p", {"podSelector": {}, "ingress": [None]})), "a/c", "a/s", 80)  # = [{}]
    c = cluster(*base, np("a", "p", {"podSelector": {}, "ingress": [{"ports": [None]}]}))  # = every TCP port
    assert ok(c, "a/c", "a/s", 8080) and not ok(c, "a/c", "a/s", 53, "UDP")
    assert cluster(*base, np("a", "p", {"podSelector": {"matchLabels": {"app": None}}})).policies[0].problems == []
    assert cluster(ns("a"), np("a", "p", {"podSelector": {"matchLabels": {"example.com/a-b": "x_y.z"}}})
                   ).policies[0].problems == []
