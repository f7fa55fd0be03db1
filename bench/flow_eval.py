"""Flow evaluations per second against a 1,000-pod snapshot (the `agent flows` hot path: IP → pod, policy decision,
alert record for denied flows), plus socket-table parsing throughput. Run: python bench/flow_eval.py [--flows N]
"""

from __future__ import annotations

import argparse
import random
import time

from kubeward.agent.flows import Conn, FlowEvaluator, connections, parse_table
from kubeward.agent.nftables import Compiler
from kubeward.engines.netpol import from_snapshot
from kubeward.engines.netpol.flows import FlowChecker
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot


def build(namespaces: int, per_ns: int) -> tuple[Snapshot, list[str]]:
    objs: list[dict] = []
    ips: list[str] = []
    for n in range(namespaces):
        ns = f"ns{n}"
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": f"t{n % 5}"}}})
        for p in range(per_ns):
            ip = f"10.{n // 200}.{n % 200}.{p + 1}"
            ips.append(ip)
            objs.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"p{p}", "namespace": ns, "labels": {"app": f"a{p % 5}", "tier": f"t{p % 3}"}},
                         "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}]},
                         "status": {"podIP": ip}})
        objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "default-deny", "namespace": ns},
                     "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
        for a in range(5):
            objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": f"allow-a{a}", "namespace": ns},
                         "spec": {"podSelector": {"matchLabels": {"app": f"a{a}"}}, "policyTypes": ["Ingress", "Egress"],
                                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": f"t{a % 3}"}}},
                                                        {"namespaceSelector": {"matchLabels": {"team": f"t{a}"}}}],
                                               "ports": [{"port": "http"}, {"port": 5432}]}],
                                  "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.9.0/24"]}}]}]}})
    return Snapshot([Resource(o) for o in objs]), ips


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(7)
    t0 = time.perf_counter()
    snap, ips = build(50, 20)
    cluster = from_snapshot(snap)
    evaluator = FlowEvaluator(FlowChecker(cluster))
    print(f"snapshot: {len(ips)} pods, {len(snap.of_kind('NetworkPolicy'))} policies, "
          f"compiled in {time.perf_counter() - t0:.2f} s")
    conns = [Conn(rng.choice(ips), rng.choice(ips), rng.choice((8080, 5432, 443)), rng.choice(("TCP", "UDP")))
             for _ in range(args.flows)]
    for c in conns[:2000]:  # warm the endpoint and selector caches as a running agent would be
        evaluator.evaluate(c)
    t0 = time.perf_counter()
    denied = sum(1 for c in conns if evaluator.evaluate(c)[1] is not None)
    dt = time.perf_counter() - t0
    print(f"flow evaluations: {len(conns)} in {dt:.2f} s = {len(conns) / dt:,.0f} flows/s "
          f"({denied / len(conns):.0%} denied, each with its explained alert)")
    # socket tables: 10,000 connected sockets in one /proc/net/tcp
    head = "  sl  local_address rem_address   st\n"
    rows = [f" {i}: {((i % 250) << 24) | 0x0000FA0A:08X}:{40000 + i % 20000:04X} 0200FA0A:1F90 01 0 0 0 0 0 1 0"
            for i in range(10_000)]
    text = head + "\n".join(rows) + "\n"
    t0 = time.perf_counter()
    for _ in range(10):
        found = connections(parse_table(text, "TCP", 4))
    dt = (time.perf_counter() - t0) / 10
    print(f"socket table: 10,000 rows parsed into {len(found)} connections in {dt * 1000:.1f} ms "
          f"({10_000 / dt:,.0f} rows/s)")
    # nftables compilation for `agent netpol enforce`: the port space once, then one table per pod namespace
    t0 = time.perf_counter()
    compiler = Compiler(cluster)
    t1 = time.perf_counter()
    rules = sum(compiler.plan(f"ns{i}", [ip]).rules for i, ip in enumerate(ips))
    t2 = time.perf_counter()
    print(f"nftables: port space in {t1 - t0:.2f} s, {len(ips)} pod tables ({rules:,} rules) in {t2 - t1:.2f} s "
          f"({(t2 - t1) / len(ips) * 1000:.1f} ms per pod)")


if __name__ == "__main__":
    main()
