"""The upstream AdminNetworkPolicy conformance suite (sigs.k8s.io/network-policy-api v0.1.7), without a cluster.

The base manifests (the houses' namespaces and StatefulSets) and each test's policies are vendored unchanged in
tests/data/netpol/anp-conformance/; expectations.yaml transcribes every t.Run of conformance/tests/*.go. Each
poke is asked of the engine's pairwise decision (decide.py) after the sub-test's mutations, applied cumulatively
as upstream patches the live objects.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.engines.netpol import ClassIndex, decide, from_snapshot
from kubeward.engines.netpol.flows import FlowChecker
from kubeward.engines.netpol.model import Pod
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

DATA = Path(__file__).parent.parent / "data" / "netpol" / "anp-conformance"
PREFIX = "network-policy-conformance-"
GO_TESTS = 24  # ConformanceTests in conformance/tests/*.go (22 files; the experimental egress ones hold two each)
POKES = 289  # kubernetes.PokeServer calls in conformance/tests/*.go
# Nodes as in a kind cluster: replica i of every StatefulSet runs on node i; the StatefulSet `centaur` is
# host-networked, so its pods' IPs are their nodes' addresses (which the `nodes` peers select).
NODES = ({"name": "kind-worker", "ip": "172.18.0.2"}, {"name": "kind-worker2", "ip": "172.18.0.3"})
_IP_REF = re.compile(r"\{ip:([a-z-]+)/([a-z0-9-]+)\}")


def _load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DATA / name).read_text()) if d]


def _pods(base: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The StatefulSets' pods as the controller creates them (`<name>-<ordinal>`), with deterministic IPs."""
    pods: dict[str, dict[str, Any]] = {}
    houses = [d["metadata"]["name"] for d in base if d["kind"] == "Namespace"]
    for sts in (d for d in base if d["kind"] == "StatefulSet"):
        ns, tmpl = sts["metadata"]["namespace"], sts["spec"]["template"]
        for i in range(sts["spec"]["replicas"]):
            node = NODES[i]
            ip = node["ip"] if tmpl["spec"].get("hostNetwork") else f"10.244.{houses.index(ns) + 1}.{i + 10}"
            name = f"{sts['metadata']['name']}-{i}"
            pods[f"{ns.removeprefix(PREFIX)}/{name}"] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": dict(tmpl["metadata"]["labels"]),
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                  "name": sts["metadata"]["name"], "controller": True}]},
                "spec": {**copy.deepcopy(tmpl["spec"]), "nodeName": node["name"]},
                "status": {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": node["ip"]},
            }
    return pods


BASE = _load("manifests.yaml")
PODS = _pods(BASE)
NODE_OBJS = [{"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": n["name"], "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": n["name"]}},
              "status": {"addresses": [{"type": "InternalIP", "address": n["ip"]}]}} for n in NODES]
EXPECT = yaml.safe_load((DATA / "expectations.yaml").read_text())


def _ip(short: str) -> str:
    return str(PODS[short]["status"]["podIP"])


def _subst(value: Any) -> Any:
    if isinstance(value, str):
        return _IP_REF.sub(lambda m: _ip(f"{m.group(1)}/{m.group(2)}"), value)
    if isinstance(value, list):
        return [_subst(v) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v) for k, v in value.items()}
    return value


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return "/".join([obj["kind"], *([meta["namespace"]] if "namespace" in meta else []), meta["name"]])


def _walk(obj: Any, path: str) -> tuple[Any, str | int]:
    """The container and the last key of a JSON pointer (RFC 6901; no escapes in these paths)."""
    parts: list[str] = path.strip("/").split("/")
    for part in parts[:-1]:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    last = parts[-1]
    return obj, int(last) if isinstance(obj, list) else last


def mutate(objects: dict[str, dict[str, Any]], m: dict[str, Any]) -> None:
    key, op = m["policy"], m["op"]
    if op == "remove" and m["path"] == "":
        del objects[key]
        return
    obj = objects[key]
    parent, last = _walk(obj, m["path"])
    if op == "swap":
        other, olast = _walk(obj, m["with"])
        parent[last], other[olast] = other[olast], parent[last]
    elif op == "replace":
        parent[last] = _subst(copy.deepcopy(m["value"]))
    elif op == "add":
        parent.insert(last, _subst(copy.deepcopy(m["value"])))
    else:  # pragma: no cover - a typo in the data
        raise AssertionError(f"unknown op {op!r}")


def _sub_id(test: dict[str, Any], sub: dict[str, Any]) -> str:
    return f"{test['test']}/{sub['name']}"


def test_every_upstream_test_and_poke_is_transcribed() -> None:
    tests = EXPECT["tests"]
    assert len(tests) == GO_TESTS and len({t["test"] for t in tests}) == GO_TESTS
    assert sum(len(s["pokes"]) for t in tests for s in t["subtests"]) == POKES
    used = {m for t in tests for m in t["manifests"]}
    vendored = {str(p.relative_to(DATA)) for p in DATA.rglob("*.yaml")} - {"manifests.yaml", "expectations.yaml"}
    assert used == vendored  # every vendored policy manifest is some test's, and every test's is vendored


def test_unsupported_is_exactly_the_declared_list() -> None:
    """No silent skip: what the engine does not model is listed with its reason, and nothing else is skipped."""
    declared = EXPECT["unsupported"]
    ids = {_sub_id(t, s) for t in EXPECT["tests"] for s in t["subtests"]}
    assert set(declared) <= ids
    assert declared == {}  # every sub-test is decided by the engine


@pytest.mark.parametrize("test", EXPECT["tests"], ids=lambda t: t["test"])
def test_conformance(test: dict[str, Any]) -> None:
    objects = {_key(o): o for o in copy.deepcopy(BASE) + list(PODS.values()) + NODE_OBJS}
    for name in test["manifests"]:
        objects.update({_key(o): o for o in _load(name)})
    agree: list[str] = []
    wrong: list[str] = []
    for sub in test["subtests"]:
        if _sub_id(test, sub) in EXPECT["unsupported"]:
            continue  # pragma: no cover - none today (test_unsupported_is_exactly_the_declared_list)
        for m in sub.get("mutations", []):
            mutate(objects, m)
        cluster = from_snapshot(Snapshot(Resource(copy.deepcopy(o), file="conformance.yaml", line=1)
                                         for o in objects.values()))
        assert not [n for n in cluster.notes if n.error], cluster.notes
        ends = FlowChecker(cluster)
        classes = ClassIndex(cluster)  # one per sub-test: the objects change only between sub-tests
        for client, server, protocol, port, expect in sub["pokes"]:
            src = cluster.pod(f"{PREFIX}{client}")
            # upstream pokes serverPod.Status.PodIP: an IP resolves to its pod, as for flows (a host-networked
            # pod's IP is its node's address)
            dst = ends.endpoint(_ip(server))
            assert isinstance(src, Pod) and isinstance(dst, Pod) and dst.key == f"{PREFIX}{server}"
            got = decide(cluster, src, dst, port, protocol)
            line = f"{sub['name']}: {client} -> {server} {protocol}/{port} expected {expect}, got " \
                   f"{'allow' if got.allowed else 'deny'} ({got.egress and got.egress.reasons}; " \
                   f"{got.ingress and got.ingress.reasons})"
            (agree if got.allowed == (expect == "allow") else wrong).append(line)
            # the class engine (reach) must say the same
            row, col = cluster.pods.index(src), cluster.pods.index(dst)
            assert classes.matrix(port, protocol).allowed(row, col) == got.allowed, line
    assert not wrong, f"{len(agree)} of {len(agree) + len(wrong)} pokes agree:\n" + "\n".join(wrong)
    assert len(agree) == sum(len(s["pokes"]) for s in test["subtests"])
