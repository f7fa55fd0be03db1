"""Wrongly typed fields anywhere in the objects the NetworkPolicy engine reads never raise out of the engine:
each bad object is reported (lint / notes) and everything else is still decided (issue: one `to: 5` in an
AdminNetworkPolicy used to crash the whole scan)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.engines.netpol import ClassIndex, decide, from_snapshot, lint
from kubeward.engines.netpol.flows import FlowChecker, parse_flow
from kubeward.engines.netpol.generate import generate
from kubeward.engines.netpol.ports import PortSpace
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

SEL = {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}
TEMPLATES: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1", "labels": {"team": "t"}}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node", "labels": {"role": "w"}},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.1"}]}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "p", "namespace": "n1", "labels": {"app": "a"},
                  "ownerReferences": [{"kind": "ReplicaSet", "name": "d-1", "controller": True}]},
     "spec": {"hostNetwork": False, "containers": [{"name": "c", "ports": [
         {"name": "http", "containerPort": 80, "protocol": "TCP"}]}]},
     "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "192.168.0.1"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n1"},
     "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "b"}},
                                          "spec": {"containers": [{"name": "c", "ports": [
                                              {"name": "web", "containerPort": 8080}]}]}}}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "n1"},
     "spec": {"concurrencyPolicy": "Forbid", "jobTemplate": {"spec": {"parallelism": 2, "template": {
         "metadata": {"labels": {"app": "c"}}, "spec": {"containers": [{"name": "c"}]}}}}}},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "n1"},
     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "n1"},
     "spec": {"podSelector": SEL, "policyTypes": ["Ingress", "Egress"],
              "ingress": [{"from": [{"podSelector": SEL, "namespaceSelector": SEL},
                                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                           "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}]}],
              "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]}},
    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": "anp"},
     "spec": {"priority": 3, "subject": {"pods": {"namespaceSelector": SEL, "podSelector": SEL}},
              "ingress": [{"name": "i", "action": "Deny", "from": [{"namespaces": SEL}],
                           "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]}],
              "egress": [{"name": "e", "action": "Pass", "to": [{"networks": ["10.0.0.0/8"]}, {"nodes": SEL},
                                                                 {"pods": {"namespaceSelector": {},
                                                                           "podSelector": {}}}],
                          "ports": [{"portRange": {"protocol": "UDP", "start": 50, "end": 60}},
                                    {"namedPort": "http"}]}]}},
    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
     "metadata": {"name": "default"},
     "spec": {"subject": {"namespaces": {}},
              "ingress": [{"name": "b", "action": "Allow", "from": [{"pods": {"namespaceSelector": {},
                                                                              "podSelector": SEL}}]}],
              "egress": [{"name": "b", "action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]}},
]

garbage = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=8) | st.sampled_from(["", "TCP", "Allow", "10.0.0.0/8", "::/0", "80", "http", "In"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def mangled(draw: Any) -> list[dict[str, Any]]:
    objs = copy.deepcopy(TEMPLATES)
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(objs) - 1))
        paths = [p for p in _paths(objs[i]) if p and p[0] not in ("apiVersion", "kind")]
        path = draw(st.sampled_from(paths))
        _set(objs[i], path, draw(garbage))
    return objs


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_garbage_in_any_field_never_raises(objs: list[dict[str, Any]]) -> None:
    cluster = from_snapshot(Snapshot(Resource(o, file="g.yaml", line=1) for o in objs))
    index = ClassIndex(cluster)
    for port, proto in ((80, "TCP"), (53, "UDP"), (8080, "TCP")):
        m = index.matrix(port, proto)
        for i, a in enumerate(cluster.pods):
            for j, b in enumerate(cluster.pods):
                assert m.allowed(i, j) == decide(cluster, a, b, port, proto).allowed
    PortSpace.build(index)
    list(lint.issues(cluster))
    checker = FlowChecker(cluster)
    flows = [parse_flow({"src": a.key, "dst": b.key, "port": 80}) for a in cluster.pods for b in cluster.pods]
    flows.append(parse_flow({"src": "192.0.2.1", "dst": cluster.pods[0].key, "port": 443})) if cluster.pods else None
    generate(checker, flows)
    for a in cluster.pods:
        for note in cluster.notes:
            assert str(note)
        decide(cluster, a, checker.endpoint("192.168.0.1"), 22)


def test_to_5_in_an_admin_policy_is_one_problem_and_the_rest_is_decided() -> None:
    objs = copy.deepcopy(TEMPLATES)
    objs[7]["spec"]["egress"][0]["to"] = 5
    cluster = from_snapshot(Snapshot(Resource(o) for o in objs))
    anp = next(a for a in cluster.admin if a.name == "anp")
    assert any(path == "/spec/egress/0/to" for path, _ in anp.problems)
    assert len(anp.ingress) == 1 and anp.ingress[0].action == "Deny"
