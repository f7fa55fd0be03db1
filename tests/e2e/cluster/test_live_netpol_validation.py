"""Differential: a NetworkPolicy the real kube-apiserver refuses is exactly one kubeward reports as rejected
(KW-N105), on hand-picked cases and on random mutations of a full policy (server-side dry-run, nothing stored).
`null` is decoded as the apiserver decodes it: `egress: [null]` is `egress: [{}]`, which allows everything."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_live_netpol_admin import json_value

from kubeward.engines.netpol import decide, from_snapshot
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

PATH = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"


def _sel() -> dict[str, Any]:
    return {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}


def _np(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "default"}, "spec": spec}


FULL = _np({"podSelector": _sel(), "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": _sel(), "namespaceSelector": _sel()},
                                  {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                         "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}]}],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]})
ALL = {"podSelector": {}}
CASES: dict[str, dict[str, Any]] = {
    "label value with a slash": {"podSelector": {"matchLabels": {"app": "10.0.0.0/8"}}},
    "label key with a space": {"podSelector": {"matchLabels": {"a b": "x"}}},
    "label value of 64 characters": {"podSelector": {"matchLabels": {"a": "x" * 64}}},
    "label key with a prefix": {"podSelector": {"matchLabels": {"example.com/a": "x"}}},
    "expression value invalid": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In",
                                                                       "values": ["a/b"]}]}},
    "expression operator invalid": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
    "expression key invalid": {"podSelector": {"matchExpressions": [{"key": "a b", "operator": "Exists"}]}},
    "cidr with host bits": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1/24"}}]}]},
    "cidr without a prefix": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]},
    "cidr with leading zeros": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "010.0.0.0/8"}}]}]},
    "except equal to cidr": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24",
                                                                       "except": ["10.0.0.0/24"]}}]}]},
    "except of another family": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "::/0",
                                                                           "except": ["10.0.0.0/8"]}}]}]},
    "three policyTypes": {**ALL, "policyTypes": ["Ingress", "Egress", "Ingress"]},
    "unknown policyType": {**ALL, "policyTypes": ["Foo"]},
    "repeated policyType": {**ALL, "policyTypes": ["Ingress", "Ingress"]},
    "endPort without port": {**ALL, "ingress": [{"ports": [{"endPort": 90}]}]},
    "port 0": {**ALL, "ingress": [{"ports": [{"port": 0}]}]},
    "port 80.0": {**ALL, "ingress": [{"ports": [{"port": 80.0}]}]},
    "port name of 16 characters": {**ALL, "ingress": [{"ports": [{"port": "abcdefghijklmnop"}]}]},
    "protocol in lower case": {**ALL, "ingress": [{"ports": [{"protocol": "tcp"}]}]},
    "empty peer": {**ALL, "ingress": [{"from": [{}]}]},
    "ipBlock with a selector": {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                                              "podSelector": {}}]}]},
    "null rule": {**ALL, "egress": [None]},
    "null port": {**ALL, "ingress": [{"ports": [None]}]},
    "null label value": {"podSelector": {"matchLabels": {"a": None}}},
    "wrong type for a label value": {"podSelector": {"matchLabels": {"a": 1}}},
    "unknown field": {**ALL, "zz": 1},
}


def _api_accepts(client: Any, obj: dict[str, Any]) -> tuple[bool, str]:
    status, doc = client.json("POST", PATH, body=obj, query={"dryRun": "All"})
    if status in (200, 201):
        return True, ""
    assert status in (400, 422), (status, doc)
    return False, (doc or {}).get("message", "") if isinstance(doc, dict) else ""


def _kubeward_accepts(obj: dict[str, Any]) -> tuple[bool, list[tuple[str, str]]]:
    policy = from_snapshot(Snapshot([Resource(copy.deepcopy(obj))])).policies[0]
    return not policy.problems, policy.problems


def test_the_full_policy_is_valid_for_both(admin: Any) -> None:
    assert _api_accepts(admin, copy.deepcopy(FULL))[0] and _kubeward_accepts(FULL)[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_picked_cases_agree(admin: Any, name: str) -> None:
    obj = _np(CASES[name])
    api_ok, message = _api_accepts(admin, copy.deepcopy(obj))
    ours_ok, problems = _kubeward_accepts(obj)
    assert api_ok == ours_ok, (message, problems)


def test_a_null_rule_allows_everything_as_the_apiserver_stores_it() -> None:
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "default"},
             "spec": {"containers": [{"name": "c"}]}} for n in ("a", "b")]
    c = from_snapshot(Snapshot(Resource(o) for o in [*pods, _np({**ALL, "ingress": [None]})]))
    assert decide(c, c.pod("default/a"), c.pod("default/b"), 80).allowed


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    obj = copy.deepcopy(FULL)
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, at: tuple[Any, ...]) -> None:
        paths.append(at)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*at, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*at, i))

    walk(obj["spec"], ("spec",))
    path = draw(st.sampled_from(paths))
    node: Any = obj
    for step in path[:-1]:
        node = node[step]
    if draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(draw(json_value))
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(mutated())
def test_random_mutations_agree_with_the_apiserver(admin: Any, obj: dict[str, Any]) -> None:
    api_ok, message = _api_accepts(admin, copy.deepcopy(obj))
    ours_ok, problems = _kubeward_accepts(obj)
    event(f"apiserver {'accepts' if api_ok else 'rejects'}")
    assert api_ok == ours_ok, (obj, message, problems)
