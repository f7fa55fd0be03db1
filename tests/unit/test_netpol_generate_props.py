"""`netpol generate` on random clusters and flows: once the generated policies are applied, every observed flow is
allowed, DNS still works for every isolated pod, kubeward's own lint finds nothing, and the YAML round-trips."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.engines.netpol import from_snapshot, lint
from kubeward.engines.netpol.flows import FlowChecker, parse_flow
from kubeward.engines.netpol.generate import generate
from kubeward.engines.netpol.lint import DNS_POD
from kubeward.engines.netpol.model import Pod
from kubeward.engines.netpol.policy import EGRESS
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

NS = ("a", "b", "kube-system")
labels_st = st.dictionaries(st.sampled_from(["app", "tier", "pod-template-hash", "k8s-app"]),
                            st.sampled_from(["x", "y", "kube-dns"]), max_size=3)


@st.composite
def scenario(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                                  for n in NS if draw(st.booleans()) or n != "kube-system"]
    keys, ips = [], []
    for i in range(draw(st.integers(1, 6))):
        ns = draw(st.sampled_from(NS))
        ip = f"10.0.{i}.{draw(st.integers(1, 9))}"
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"p{i}", "namespace": ns, "labels": draw(labels_st)},
                     "spec": {"containers": [{"name": "c"}]}, "status": {"podIP": ip}})
        keys.append(f"{ns}/p{i}")
        ips.append(ip)
    if draw(st.booleans()):  # workload representatives (several replicas) as flow ends too
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "a"},
                     "spec": {"replicas": draw(st.sampled_from([1, 3])), "template": {
                         "metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c"}]}}}})
        keys.append("a/w")
    ends = st.sampled_from(keys) | st.sampled_from(ips) | st.sampled_from(["203.0.113.7", "2001:db8::1"])
    flows = draw(st.lists(st.fixed_dictionaries({
        "src": ends, "dst": ends, "port": st.sampled_from([53, 80, 443, 8080]),
        "protocol": st.sampled_from(["TCP", "UDP", "SCTP"])}), min_size=1, max_size=10))
    return objs, flows


def _cluster(objs: list[dict[str, Any]]) -> Any:
    return from_snapshot(Snapshot(Resource(o, file="in.yaml", line=i + 1) for i, o in enumerate(objs)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_generated_policies_allow_every_observed_flow_keep_dns_and_lint_clean(
        case: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    objs, raw_flows = case
    flows = [parse_flow(f, n) for n, f in enumerate(raw_flows, 1)]
    policies = generate(FlowChecker(_cluster(objs)), flows)
    text = yaml.safe_dump_all(policies, sort_keys=False)
    assert "&id" not in text and "*id" not in text  # no YAML aliases: each policy stands alone
    applied = list(yaml.safe_load_all(text))
    after = _cluster([*objs, *applied])
    checker = FlowChecker(after)
    for f in flows:
        assert checker.check(f) is None, f
    issues = list(lint.issues(after))
    assert issues == [], [i.message for i in issues]
    dns = [p for p in after.pods if p.namespace == "kube-system" and p.labels.get("k8s-app") == "kube-dns"]
    for pod in after.pods:
        if not after.selecting(pod, EGRESS):
            continue
        for target in dns or [DNS_POD]:
            for proto in ("UDP", "TCP"):
                assert checker.allowed(pod.key, target.key, 53, proto) if isinstance(target, Pod) and \
                    after.pod(target.key) is target else _egress_ok(after, pod, target, proto)


def _egress_ok(cluster: Any, pod: Pod, target: Pod, proto: str) -> bool:
    from kubeward.engines.netpol.decide import evaluate_direction

    return evaluate_direction(cluster, pod, EGRESS, target, None, 53, proto, False).allowed
