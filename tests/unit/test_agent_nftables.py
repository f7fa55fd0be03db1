"""The nftables compiler: rules follow the engine's pod-to-pod port ranges; non-pod sources and ICMP are untouched."""

from __future__ import annotations

from kubeward.agent.nftables import Compiler
from kubeward.engines.netpol import from_snapshot
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot


def pod(name: str, ip: str, labels: dict[str, str], ns: str = "app", host_network: bool = False) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": spec, "status": {"podIP": ip}}


def compiler(*policies: dict) -> Compiler:
    objs = [pod("web", "10.250.0.1", {"app": "web"}), pod("db", "10.250.0.2", {"app": "db"}),
            pod("other", "10.250.0.3", {"app": "other"}), pod("node-agent", "192.0.2.10", {}, host_network=True),
            *policies]
    return Compiler(from_snapshot(Snapshot([Resource(o) for o in objs])))


DB_FROM_WEB = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "db", "namespace": "app"},
               "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                     "ports": [{"port": "http"}, {"port": 5432, "endPort": 5440}]}]}}


def test_ingress_rule_compiles_to_port_ranges() -> None:
    plan = compiler(DB_FROM_WEB).plan("ns-db", ["10.250.0.2", "192.0.2.99"])
    lines = plan.script.splitlines()
    assert plan.pods == ["app/db"]
    assert lines[:2] == ["table inet kubeward", "delete table inet kubeward"]
    assert "    ip daddr 10.250.0.2 ip saddr 10.250.0.1 tcp dport { 5432-5440, 8080 } accept" in lines
    assert not any("saddr 10.250.0.3" in x and "accept" in x for x in lines)  # other: nothing allowed
    drop = [x for x in lines if x.strip().endswith("drop")]
    assert drop == ["    ip daddr 10.250.0.2 ip saddr { 10.250.0.1, 10.250.0.3 } meta l4proto { tcp, udp, sctp } drop"]
    assert "192.0.2.10" not in plan.script  # a host-network pod is node traffic: always allowed, never listed


def test_unisolated_pod_accepts_everything() -> None:
    plan = compiler(DB_FROM_WEB).plan("ns-web", ["10.250.0.1"], reject=True)
    lines = plan.script.splitlines()
    for src in ("10.250.0.2", "10.250.0.3"):
        for proto in ("tcp", "udp", "sctp"):
            assert f"    ip daddr 10.250.0.1 ip saddr {src} meta l4proto {proto} accept" in lines
    assert lines[-3].endswith("reject with icmpx admin-prohibited")


def test_namespace_without_snapshot_pods_gets_an_empty_table() -> None:
    plan = compiler().plan("ns-x", ["10.9.9.9"])
    assert plan.pods == [] and plan.rules == 0 and "saddr" not in plan.script
