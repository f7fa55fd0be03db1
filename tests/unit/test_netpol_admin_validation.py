"""AdminNetworkPolicy / BaselineAdminNetworkPolicy objects the apiserver would reject (the network-policy-api CRD
v1alpha1 schema and CEL rules) are lint errors; duplicates in the inputs are too; ANP `networks` match pod IPs
whatever `--ipblock-matches-pods` says (that switch is about NetworkPolicy ipBlock)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.engines.netpol import ClassIndex, decide, from_snapshot, lint
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

V1A1 = "policy.networking.k8s.io/v1alpha1"
ANP: dict[str, Any] = {
    "apiVersion": V1A1, "kind": "AdminNetworkPolicy", "metadata": {"name": "anp"},
    "spec": {"priority": 10, "subject": {"namespaces": {}},
             "ingress": [{"name": "in", "action": "Allow", "from": [{"namespaces": {}}]}],
             "egress": [{"name": "out", "action": "Deny", "to": [{"networks": ["10.0.0.0/8"]}],
                         "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]}]}}
BANP: dict[str, Any] = {
    "apiVersion": V1A1, "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
    "spec": {"subject": {"namespaces": {}},
             "ingress": [{"name": "in", "action": "Deny", "from": [{"namespaces": {}}]}]}}


def problems(obj: dict[str, Any]) -> list[str]:
    c = from_snapshot(Snapshot([Resource(obj)]))
    return [f"{path}: {msg}" for path, msg in c.admin[0].problems]


def mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    node: Any = obj
    steps = [int(s) if s.isdigit() else s for s in path.split("/")]
    for step in steps[:-1]:
        node = node[step]
    if value is KeyError:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return obj


# (path to replace, value or KeyError to delete, expected problem): each is an object the CRD rejects.
ANP_CASES: list[tuple[str, Any, str]] = [
    ("spec/priority", 1001, "/spec/priority: priority 1001 outside 0..1000"),
    ("spec/priority", -1, "priority -1 outside 0..1000"),
    ("spec/priority", "5", "must be an integer from 0 to 1000"),
    ("spec/priority", True, "must be an integer"),
    ("spec/priority", KeyError, "priority is required"),
    ("spec/subject", KeyError, "subject is required"),
    ("spec/subject", {"namespaces": {}, "pods": {"namespaceSelector": {}, "podSelector": {}}},
     "subject sets namespaces and pods: exactly one"),
    ("spec/subject", {"pods": {"namespaceSelector": {}}}, "/spec/subject/pods/podSelector: podSelector is required"),
    ("spec/ingress/0/action", "Drop", "unknown action 'Drop'"),
    ("spec/ingress/0/action", KeyError, "action is required"),
    ("spec/ingress/0/from", KeyError, "/spec/ingress/0/from: from is required"),
    ("spec/ingress/0/from", [], "from is required: a list of at least one peer"),
    ("spec/egress/0/to", 5, "/spec/egress/0/to: to is required"),
    ("spec/ingress/0/name", "x" * 101, "name must be a string of at most 100 characters"),
    ("spec/ingress", [{"action": "Allow", "from": [{"namespaces": {}}]}] * 101, "101 rules: at most 100"),
    ("spec/ingress/0/from", [{"namespaces": {}}] * 101, "101 peers: at most 100"),
    ("spec/ingress/0/from/0", {"namespaces": {}, "pods": {"namespaceSelector": {}, "podSelector": {}}},
     "peer sets namespaces and pods: exactly one"),
    ("spec/ingress/0/from/0", {"networks": ["10.0.0.0/8"]}, "peer with no supported field"),  # egress only
    ("spec/ingress/0/from/0/namespaces", [], "must be a label selector"),
    ("spec/subject/namespaces", {"matchLabels": {"app": 1}}, "matchLabels must be a map of strings"),
    ("spec/subject/namespaces", {"matchExpressions": [{"key": "a"}]}, "needs key and operator, both strings"),
    ("spec/subject/namespaces", {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
     "values must be a list of strings"),
    ("spec/ingress/0/name", 5, "name must be a string"),
    ("spec/priority", 3.5, "must be an integer from 0 to 1000"),
    ("spec/egress/0/to/0/networks", [f"10.0.{i}.0/24" for i in range(26)], "26 networks: from 1 to 25 CIDRs"),
    ("spec/egress/0/to/0/networks", [], "0 networks: from 1 to 25"),
    ("spec/egress/0/to/0/networks", ["10.0.0.0/33"], "Invalid CIDR format provided"),
    ("spec/egress/0/to/0/networks", ["10.0.0.1"], "Invalid CIDR format provided"),
    ("spec/egress/0/to/0/networks", ["10.0.0.0/8", "10.0.0.0/8"], "duplicate network '10.0.0.0/8'"),
    ("spec/egress/0/ports", [], "ports must have at least one entry"),
    ("spec/egress/0/ports", [{"portNumber": {"port": 80}}] * 101, "101 ports: at most 100"),
    ("spec/egress/0/ports/0", {"portNumber": {"port": 0}}, "port must be a number from 1 to 65535"),
    ("spec/egress/0/ports/0", {"portRange": {"start": 80, "end": 70000}}, "start and end must be ports"),
    ("spec/egress/0/ports/0", {"portNumber": {"port": 80}, "namedPort": "http"}, "exactly one of portNumber"),
    ("spec/egress/0/ports/0", {"namedPort": "http"}, "networks/nodes peer cannot be set with namedPorts"),
    ("spec", 5, "/spec: spec must be a map"),
]
# Accepted by the apiserver (the CRD does not enforce them) but matching no traffic: reported apart.
INEFFECTIVE_CASES: list[tuple[str, Any, str]] = [
    ("spec/egress/0/ports/0", {"portNumber": {"protocol": "ICMP", "port": 1}}, "protocol 'ICMP' is not TCP, UDP"),
    ("spec/egress/0/ports/0", {"portRange": {"start": 90, "end": 80}}, "start 90 is not less than end 80"),
    ("spec/egress/0/ports/0", {"portRange": {"start": 80, "end": 80}}, "start 80 is not less than end 80"),
    # label selector semantics are not in the CRD schema: stored, and the selector matches nothing
    ("spec/egress/0/to/0", {"namespaces": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
     "unknown operator 'Near'"),
    ("spec/egress/0/to/0", {"namespaces": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     "operator In needs values"),
]
# Accepted as written: a CRD integer may be written 3.0 (an integral JSON number).
ACCEPTED_CASES: list[tuple[str, Any, str]] = [
    ("spec/priority", 3.0, ""),
    ("spec/egress/0/ports/0/portNumber/port", 80.0, ""),
    ("spec/subject/namespaces", {"matchLabels": {"app": "a"}, "unknownField": 1}, ""),
]
BANP_CASES: list[tuple[str, Any, str]] = [
    ("metadata/name", "other", "must be named \"default\""),
    ("spec/ingress/0/action", "Pass", "unknown action 'Pass' (Allow, Deny)"),
]


@pytest.mark.parametrize(("path", "value", "expect"), ANP_CASES)
def test_rejected_admin_policies_are_problems(path: str, value: Any, expect: str) -> None:
    assert problems(copy.deepcopy(ANP)) == []
    got = problems(mutate(ANP, path, value))
    assert any(expect in g for g in got), got


@pytest.mark.parametrize(("path", "value", "expect"), INEFFECTIVE_CASES)
def test_accepted_but_ineffective_ports_are_reported_apart(path: str, value: Any, expect: str) -> None:
    obj = mutate(ANP, path, value)
    c = from_snapshot(Snapshot([Resource(obj)]))
    assert c.admin[0].problems == []
    assert any(expect in m for _, m in c.admin[0].ineffective)
    msgs = [i.message for i in lint.by_code(c)[lint.INVALID]]
    assert any("the apiserver accepts it; it matches nothing" in m for m in msgs)
    rule = c.admin[0].egress[0]
    assert not any(p.valid for p in rule.peers) or not any(m.valid for m in rule.ports or ())  # matches nothing


@pytest.mark.parametrize(("path", "value", "expect"), ACCEPTED_CASES)
def test_integral_numbers_and_unknown_fields_are_accepted(path: str, value: Any, expect: str) -> None:
    c = from_snapshot(Snapshot([Resource(mutate(ANP, path, value))]))
    assert c.admin[0].problems == [] and c.admin[0].ineffective == []
    assert c.admin[0].priority in (3, 10) and isinstance(c.admin[0].priority, int)


@pytest.mark.parametrize(("path", "value", "expect"), BANP_CASES)
def test_rejected_baseline_policies_are_problems(path: str, value: Any, expect: str) -> None:
    assert problems(copy.deepcopy(BANP)) == []
    assert any(expect in g for g in problems(mutate(BANP, path, value)))


def test_only_one_baseline_policy() -> None:
    other = mutate(BANP, "metadata/name", "second")
    c = from_snapshot(Snapshot([Resource(BANP), Resource(other)]))
    msgs = [m for a in c.admin for _, m in a.problems]
    assert any("only one BaselineAdminNetworkPolicy" in m for m in msgs)


def test_duplicate_rule_names_and_objects_are_lint_errors() -> None:
    anp = mutate(ANP, "spec/ingress", [{"name": "same", "action": "Allow", "from": [{"namespaces": {}}]},
                                       {"name": "same", "action": "Deny", "from": [{"namespaces": {}}]}])
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    np_allow = copy.deepcopy(np)
    np_allow["spec"]["ingress"] = [{}]
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "a"},
             "spec": {"containers": [{"name": "c"}]}} for n in ("s", "c")]
    c = from_snapshot(Snapshot([Resource(o, file="in.yaml", line=i + 1)
                                for i, o in enumerate([anp, np, np_allow, *pods])]))
    dups = lint.by_code(c)[lint.DUPLICATE]
    assert sorted(i.message.split(": ", 1)[1] for i in dups) == [
        "NetworkPolicy defined again at in.yaml:3 NetworkPolicy a/p: only the last one is used",
        "rule name 'same' is also used by /spec/ingress/0"]
    # the last copy is the one applied: its ingress: [{}] allows everything
    s, cl = c.pod("a/s"), c.pod("a/c")
    assert len(c.policies) == 1 and decide(c, cl, s, 80).allowed


def test_lint_cli_reports_rejected_admin_policies_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "anp.yaml"
    f.write_text(yaml.safe_dump_all([mutate(ANP, "spec/priority", 5000), ANP, mutate(ANP, "spec/egress/0/to", 5)]))
    r = CliRunner().invoke(cli, ["netpol", "lint", str(f), "-o", "json"])
    found = {(x["control"]["id"], x["message"].split(": ", 1)[-1]) for x in orjson.loads(r.stdout)["findings"]}
    assert any(cid == "KW-N106" for cid, _ in found)
    assert any(cid == "KW-N105" and "to is required" in msg for cid, msg in found)
    assert "Traceback" not in r.stderr


# ---- networks vs --ipblock-matches-pods --------------------------------------------------------------------

def _pods_and(*objs: dict[str, Any], by_ip: bool) -> Any:
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "a", "labels": {"app": n}},
             "spec": {"containers": [{"name": "c"}]}, "status": {"podIP": ip}}
            for n, ip in (("s", "10.0.0.2"), ("c", "10.0.0.3"))]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    return from_snapshot(Snapshot(Resource(o) for o in [ns, *pods, *objs]), ipblock_matches_pods=by_ip)


@pytest.mark.parametrize("by_ip", [True, False])
def test_admin_networks_match_pod_ips_whatever_the_ipblock_switch(by_ip: bool) -> None:
    c = _pods_and(ANP, by_ip=by_ip)  # egress Deny to 10.0.0.0/8 on TCP 80
    src, dst = c.pod("a/c"), c.pod("a/s")
    assert not decide(c, src, dst, 80).allowed
    at = {p.key: i for i, p in enumerate(c.pods)}
    assert not ClassIndex(c).matrix(80).allowed(at["a/c"], at["a/s"])
    assert decide(c, src, dst, 81).allowed


def test_the_switch_still_governs_networkpolicy_ipblock() -> None:
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
          "spec": {"podSelector": {"matchLabels": {"app": "s"}},
                   "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.3/32"}}]}]}}
    on, off = _pods_and(np, by_ip=True), _pods_and(np, by_ip=False)
    assert decide(on, on.pod("a/c"), on.pod("a/s"), 80).allowed
    assert not decide(off, off.pod("a/c"), off.pod("a/s"), 80).allowed
