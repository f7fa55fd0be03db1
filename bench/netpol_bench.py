"""NetworkPolicy reachability at scale: 10,000 pods, 200 namespaces, 2,000 policies, full matrix for one port.

Run: python bench/netpol_bench.py [--pods-per-ns 50] [--namespaces 200] [--unique-labels] [--open-every K]
Prints build and matrix times, class counts and peak memory (ru_maxrss). `--unique-labels` gives every pod its
own labels (no two pods share a class), the worst case for the class engine.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from typing import Any

from kubeward.engines.netpol import ClassIndex, decide, from_snapshot
from kubeward.engines.netpol.flows import FlowChecker
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

TIERS = ("frontend", "backend", "db")


def objects(namespaces: int, pods_per_ns: int, unique: bool, open_every: int) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    apps = 10
    for n in range(namespaces):
        ns = f"ns-{n:03d}"
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"team": f"t{n % 10}", "env": "prod" if n % 2 else "dev"}}})
        for p in range(pods_per_ns):
            app = p % apps
            labels = {"app": f"app-{app}", "tier": TIERS[app % 3], "version": f"v{p % 2}"}
            if unique:
                labels["pod"] = f"p{p}"
            ports = [{"name": "http", "containerPort": 8080 + app % 2, "protocol": "TCP"},
                     {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
            ip = f"10.{n // 100}.{n % 100}.{p + 1}"
            objs.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"app-{app}-{p}", "namespace": ns, "labels": labels},
                         "spec": {"containers": [{"name": "main", "ports": ports}]},
                         "status": {"podIP": ip, "podIPs": [{"ip": ip}]}})
        objs.extend(policies(ns, n, open_every > 0 and n % open_every == 0))
    return objs


def policies(ns: str, n: int, open_ns: bool) -> list[dict[str, Any]]:
    """Ten policies per namespace, in the shapes real clusters use; an open namespace has egress policies only
    (no ingress isolation), which makes the matrix dense."""
    def pol(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns}, "spec": spec}

    out = [
        pol("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        pol("monitoring", {"podSelector": {}, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns-000"}}}],
            "ports": [{"port": "metrics"}]}]}),
        pol("frontend-from-teams", {"podSelector": {"matchLabels": {"tier": "frontend"}}, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"team": f"t{(n + 1) % 10}"}},
                      "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In",
                                                            "values": ["frontend", "backend"]}]}}],
            "ports": [{"port": "http"}]}]}),
        pol("egress", {"podSelector": {"matchLabels": {"app": "app-0"}}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]},
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"10.{n // 100}.{n % 100}.0/28"]}}],
             "ports": [{"port": 8080}, {"port": 30000, "endPort": 32767}]}]}),
        pol("nodeports", {"podSelector": {"matchLabels": {"tier": "db"}}, "ingress": [{
            "from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}], "ports": [{"port": 30000, "endPort": 32767}]}]}),
    ]
    for a in range(5):
        out.append(pol(f"app-{a}-from-app-{a + 5}", {
            "podSelector": {"matchLabels": {"app": f"app-{a}"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"app-{a + 5}"}}}],
                         "ports": [{"port": 8080 + a % 2, "protocol": "TCP"}]}]}))
    if open_ns:
        out = [p for p in out if "Egress" in p["spec"].get("policyTypes", [])]
        out += [pol(f"egress-{a}", {"podSelector": {"matchLabels": {"app": f"app-{a}"}}, "policyTypes": ["Egress"],
                                    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]})
                for a in range(1, 10)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--namespaces", type=int, default=200)
    ap.add_argument("--pods-per-ns", type=int, default=50)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--unique-labels", action="store_true")
    ap.add_argument("--stream-pods", type=int, default=2000, metavar="N",
                    help="also time the streamed JSON pairs output for the first N pods (0: skip)")
    ap.add_argument("--open-every", type=int, default=4, metavar="K",
                    help="every K-th namespace has no ingress isolation (0: default-deny everywhere)")
    args = ap.parse_args()

    objs = objects(args.namespaces, args.pods_per_ns, args.unique_labels, args.open_every)
    t0 = time.perf_counter()
    snap = Snapshot(Resource(o) for o in objs)
    cluster = from_snapshot(snap)
    t1 = time.perf_counter()
    index = ClassIndex(cluster)
    t2 = time.perf_counter()
    matrix = index.matrix(args.port, "TCP")
    t3 = time.perf_counter()
    pairs = matrix.allowed_pairs()
    t4 = time.perf_counter()
    # Spot-check the class matrix against the pairwise definition on a sample of pod pairs.
    pods = cluster.pods
    step = max(1, len(pods) // 60)
    sample = [(i, j) for i in range(0, len(pods), step) for j in range(0, len(pods), step)]
    bad = sum(matrix.allowed(i, j) != decide(cluster, pods[i], pods[j], args.port, "TCP").allowed for i, j in sample)
    # Flow checks (the node agent's path): cold includes name resolution, the first pairwise answers and the
    # class index + matrix the checker switches to; warm is the steady state.
    checker = FlowChecker(cluster)
    rng = random.Random(5)
    flows = [(pods[rng.randrange(len(pods))].key, pods[rng.randrange(len(pods))].key) for _ in range(300_000)]
    t6 = time.perf_counter()
    denied = sum(not checker.allowed(a, b, args.port, "TCP") for a, b in flows)
    flow_dt = time.perf_counter() - t6
    t7 = time.perf_counter()
    sum(not checker.allowed(a, b, args.port, "TCP") for a, b in flows)
    warm_dt = time.perf_counter() - t7
    stream = ""
    if args.stream_pods:
        from kubeward.cli.netpol import _reach_json

        chosen = list(range(min(args.stream_pods, len(pods))))
        t5 = time.perf_counter()
        with open(os.devnull, "w") as sink:
            _reach_json(sink, [pods[i].key for i in chosen], chosen, matrix, {"port": args.port, "protocol": "TCP"})
        dt = time.perf_counter() - t5
        stream = (f"JSON pairs stream: {len(chosen) ** 2:,} pairs in {dt:.2f}s "
                  f"({len(chosen) ** 2 / dt / 1e6:.1f} M pairs/s)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(pods)
    print(f"pods={n} namespaces={args.namespaces} policies={len(cluster.policies)} port=TCP/{args.port}")
    print(f"classes={index.size} (pods per class {n / index.size:.1f})")
    print(f"snapshot+compile: {t1 - t0:.2f}s")
    print(f"class index:      {t2 - t1:.2f}s")
    print(f"class matrix:     {t3 - t2:.2f}s")
    print(f"count pairs:      {t4 - t3:.2f}s  allowed {pairs:,} of {n * n:,} ordered pod pairs")
    print(f"total engine:     {t3 - t1:.2f}s (index + matrix), {t3 - t0:.2f}s with compile")
    print(f"pairwise spot check: {len(sample)} pairs, {bad} mismatches")
    print(f"flow checks: {len(flows):,} in {flow_dt:.2f}s cold ({len(flows) / flow_dt / 1e3:.0f}k flows/s, "
          f"{denied:,} denied), {warm_dt:.2f}s warm ({len(flows) / warm_dt / 1e3:.0f}k flows/s)")
    if stream:
        print(stream)
    print(f"peak RSS: {rss:.0f} MiB")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
