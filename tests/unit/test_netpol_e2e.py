"""Every transcribed upstream e2e connectivity case (plus endPort and admin-tier cases), evaluated two ways:
pairwise (decide.py) and by equivalence classes (classes.py). Loopback cells are ignored, as upstream."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeward.engines.netpol import ClassIndex, decide, from_snapshot
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

# The upstream e2e model (x,y,z × a,b,c) as manifests, and the truth-table expectation language.
NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
IPS = {f"{ns}/{p}": f"10.0.{i}.{j + 1}" for i, ns in enumerate(NAMESPACES) for j, p in enumerate(PODS)}
_IP_REF = re.compile(r"\{ip:([a-z]/[a-z])\}")


def pod_manifest(ns: str, name: str, ports: list[int], protocols: list[str], labels: dict[str, str]) -> dict[str, Any]:
    containers = [
        {"name": f"cont-{port}-{proto.lower()}", "image": "agnhost",
         "ports": [{"name": f"serve-{port}-{proto.lower()}", "containerPort": port, "protocol": proto}]}
        for port in ports for proto in protocols
    ]
    ip = IPS[f"{ns}/{name}"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": containers}, "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


def _subst(value: Any) -> Any:
    if isinstance(value, str):
        return _IP_REF.sub(lambda m: IPS[m.group(1)], value)
    if isinstance(value, list):
        return [_subst(v) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v) for k, v in value.items()}
    return value


def policy_manifest(entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry.get("kind", "NetworkPolicy")
    group = "networking.k8s.io/v1" if kind == "NetworkPolicy" else "policy.networking.k8s.io/v1alpha1"
    meta: dict[str, Any] = {"name": entry["name"]}
    if kind == "NetworkPolicy":
        meta["namespace"] = entry["namespace"]
    return {"apiVersion": group, "kind": kind, "metadata": meta, "spec": _subst(copy.deepcopy(entry["spec"]))}


class ModelState:
    """Namespaces, pods and policies of one case as it goes through its steps."""

    def __init__(self, ports: list[int], protocols: list[str]) -> None:
        self.ns_labels: dict[str, dict[str, str]] = {ns: {} for ns in NAMESPACES}
        self.pod_labels = {f"{ns}/{p}": {"pod": p} for ns in NAMESPACES for p in PODS}
        self.ports, self.protocols = ports, protocols
        self.policies: dict[tuple[str, str, str], dict[str, Any]] = {}

    def apply(self, step: dict[str, Any]) -> None:
        if step.get("delete_all"):
            self.policies.clear()
        for ns, labels in (step.get("ns_labels") or {}).items():
            self.ns_labels[ns].update(labels)
        for pod, labels in (step.get("pod_labels") or {}).items():
            self.pod_labels[pod].update(labels)
        for entry in step.get("create") or []:
            m = policy_manifest(entry)
            self.policies[(m["kind"], entry.get("namespace", ""), entry["name"])] = m

    def snapshot(self) -> Snapshot:
        objs: list[dict[str, Any]] = []
        for ns in NAMESPACES:
            labels = {"kubernetes.io/metadata.name": ns, **self.ns_labels[ns]}
            objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
        for key, labels in self.pod_labels.items():
            ns, name = key.split("/")
            objs.append(pod_manifest(ns, name, self.ports, self.protocols, dict(labels)))
        objs.extend(self.policies.values())
        return Snapshot(Resource(o, file="case.yaml", line=1) for o in objs)


_RULE = re.compile(r"^\s*(\S+)\s*->\s*(\S+)\s*:\s*(true|false)\s*$")


def _matches(pattern: str, pod: str) -> bool:
    if pattern == "*":
        return True
    pns, _, pname = pattern.partition("/")
    ns, _, name = pod.partition("/")
    return pns in ("*", ns) and pname in ("*", name)


def truth_table(expect: list[str]) -> dict[tuple[str, str], bool]:
    """All-true table with the overrides applied in order (upstream NewReachability(pods, true) + Expect*)."""
    pods = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]
    table = {(a, b): True for a in pods for b in pods}
    for line in expect:
        m = _RULE.match(line)
        if m is None:
            raise ValueError(f"bad expectation {line!r}")
        src, dst, value = m.group(1), m.group(2), m.group(3) == "true"
        for a in pods:
            for b in pods:
                if _matches(src, a) and _matches(dst, b):
                    table[(a, b)] = value
    return table


DATA = Path("tests/data/netpol")
FILES = ("upstream_e2e.yaml", "endport.yaml", "admin.yaml")


def _cases() -> list[Any]:
    out = []
    for f in FILES:
        for case in yaml.safe_load((DATA / f).read_text()):
            out.append(pytest.param(case, id=f"{f.split('.')[0]}: {case['name']}"))
    return out


def test_every_upstream_case_is_transcribed() -> None:
    # network_policy.go has 42 TCP-context cases, 3 UDP and 3 SCTP.
    cases = yaml.safe_load((DATA / "upstream_e2e.yaml").read_text())
    assert len(cases) == 48
    assert len({c["name"] for c in cases}) == 48


@pytest.mark.parametrize("case", _cases())
def test_case(case: dict[str, Any]) -> None:
    state = ModelState(case["ports"], case["protocols"])
    for step_no, step in enumerate(case["steps"]):
        state.apply(step)
        cluster = from_snapshot(state.snapshot())
        assert len(cluster.pods) == 9
        index = ClassIndex(cluster)
        pods = {p.key: i for i, p in enumerate(cluster.pods)}
        for probe in step["probes"]:
            port, proto = probe["port"], probe["protocol"]
            expected = truth_table(probe["expect"])
            matrix = index.matrix(port, proto)
            wrong = []
            for (a, b), want in expected.items():
                if a == b:
                    continue
                pa, pb = cluster.pod(a), cluster.pod(b)
                assert pa is not None and pb is not None
                got_pair = decide(cluster, pa, pb, port, proto).allowed
                got_class = matrix.allowed(pods[a], pods[b])
                if got_pair != want or got_class != want:
                    wrong.append(f"{a}->{b} want {want} pairwise {got_pair} classes {got_class}")
            assert not wrong, f"step {step_no} {proto}/{port}: " + "; ".join(wrong)
