"""`kubeward monitor` at scale, without an apiserver: watch events replayed into the monitor's state at a fixed
rate, each batch evaluated incrementally and turned into PolicyReport bodies (the API writes are not timed).

    PYTHONPATH=src python3 bench/monitor_scale.py [--pods 10000] [--policies 2000] [--bindings 50000]
                                                  [--rate 50] [--seconds 20] [--window 0.2] [--kinds Pod]

Prints: initial sync + first evaluation time, peak RSS, the median time of one evaluation (wall and CPU: the CPU
time is the steadier figure on a shared machine), and the change-to-report latency (p50/p99/max) of
pod, NetworkPolicy and RoleBinding changes at `rate` changes per second; targets: < 60 s, < 1 GiB, p99 < 2 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

from kubeward.monitor.policyreport import desired
from kubeward.monitor.state import ClusterState, Incremental
from kubeward.scan import ScanOptions, plan, settings
from kubeward.sources.cluster import SCAN_TYPES

TYPES = {t.kind: t for t in SCAN_TYPES}
NAMESPACES = 200


def pod(i: int, rv: int = 1, privileged: bool = False) -> dict[str, Any]:
    ns = f"ns-{i % NAMESPACES}"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i}", "namespace": ns, "resourceVersion": str(rv), "uid": f"u{i}",
                         "labels": {"app": f"app-{i % 50}", "tier": ("web", "db", "cache")[i % 3]}},
            "spec": {"serviceAccountName": f"sa-{i % 20}", "containers": [
                {"name": "c", "image": f"registry.example/app-{i % 50}:1.{i % 7}",
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "securityContext": {"privileged": privileged, "runAsNonRoot": True},
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}


def policy(i: int, rv: int = 1) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"np-{i}", "namespace": f"ns-{i % NAMESPACES}", "resourceVersion": str(rv)},
            "spec": {"podSelector": {"matchLabels": {"app": f"app-{i % 50}"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}],
                                  "ports": [{"port": 8080 + rv % 2}]}]}}


def binding(i: int, rv: int = 1) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"rb-{i}", "namespace": f"ns-{i % NAMESPACES}", "resourceVersion": str(rv)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": ("view", "edit", "admin")[(i + rv) % 3]},
            "subjects": [{"kind": "ServiceAccount", "name": f"sa-{i % 20}", "namespace": f"ns-{i % NAMESPACES}"}]}


def configmap(i: int, rv: int = 1) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": f"ns-{i % NAMESPACES}", "resourceVersion": str(rv)},
            "data": {"password": "hunter2" if rv % 2 else "", "mode": "x"}}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--policies", type=int, default=2_000)
    ap.add_argument("--bindings", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--window", type=float, default=0.2)
    ap.add_argument("--kinds", default="Pod,Pod,Pod,NetworkPolicy,RoleBinding",
                    help="the mix of changes, in turn (default: 3 pods, 1 policy, 1 binding in 5)")
    a = ap.parse_args()
    options = ScanOptions()
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}", "resourceVersion": "1"}}
                  for i in range(NAMESPACES)]
    start = time.perf_counter()
    with settings(options):
        state = ClusterState(SCAN_TYPES, "bench")
        lists = {"Namespace": namespaces, "Pod": [pod(i) for i in range(a.pods)],
                 "NetworkPolicy": [policy(i) for i in range(a.policies)],
                 "RoleBinding": [binding(i) for i in range(a.bindings)]}
        for t in SCAN_TYPES:
            state.replace(t, lists.get(t.kind, []))
        inc = Incremental(state, plan(options), options)
        report = inc.evaluate()
        desired(report, state.namespaces())
        initial = time.perf_counter() - start
        print(f"initial sync + evaluation: {initial:.1f} s ({len(report.findings)} findings over "
              f"{report.objects} objects), peak RSS {rss_mib():.0f} MiB")
        latencies: dict[str, list[float]] = {"Pod": [], "NetworkPolicy": [], "RoleBinding": [], "ConfigMap": []}
        makers = {"Pod": (pod, a.pods), "NetworkPolicy": (policy, a.policies), "RoleBinding": (binding, a.bindings),
                  "ConfigMap": (configmap, 1000)}
        gap = 1.0 / a.rate
        mix = [k.strip() for k in a.kinds.split(",") if k.strip()]
        n, t0 = 0, time.perf_counter()
        pending: list[tuple[str, float]] = []
        evals: list[tuple[float, float]] = []  # (wall, CPU) seconds of each evaluation: CPU is steadier under load
        next_eval = None
        while time.perf_counter() - t0 < a.seconds:
            now = time.perf_counter()
            due = int((now - t0) / gap)
            while n < due:  # the events that would have arrived by now
                kind = mix[n % len(mix)]
                make, count = makers[kind]
                i = (n * 7919) % count
                obj = make(i, 2 + n) if kind != "Pod" else pod(i, 2 + n, privileged=n % 2 == 0)
                state.apply(TYPES[kind], "MODIFIED", obj)
                arrival = t0 + n * gap
                pending.append((kind, arrival))
                next_eval = next_eval or arrival + a.window
                n += 1
            if next_eval is not None and time.perf_counter() >= next_eval:
                began, began_cpu = time.perf_counter(), time.process_time()
                report = inc.evaluate()
                desired(report, state.namespaces(), only=inc.dirty)  # what the loop rewrites
                done = time.perf_counter()
                evals.append((done - began, time.process_time() - began_cpu))
                for kind, arrival in pending:
                    latencies[kind].append(done - arrival)
                pending, next_eval = [], None
            else:
                time.sleep(0.001)
    every = sorted(x for v in latencies.values() for x in v)
    if evals:
        print(f"{len(evals)} evaluations: median {statistics.median(w for w, _ in evals):.2f} s wall, "
              f"{statistics.median(c for _, c in evals):.2f} s CPU")
    print(f"{n} changes ({a.kinds}) at {a.rate:.0f}/s over {a.seconds:.0f} s, batch window {a.window} s; peak RSS "
          f"{rss_mib():.0f} MiB")
    for kind, v in [("all", every), *latencies.items()]:
        if v:
            v = sorted(v)
            p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
            print(f"  {kind:13s} change-to-report p50 {statistics.median(v):.2f} s  p99 {p99:.2f} s  "
                  f"max {v[-1]:.2f} s  ({len(v)} changes)")
    print(f"targets: initial < 60 s ({initial:.1f}), RSS < 1024 MiB ({rss_mib():.0f}), p99 < 2 s "
          f"({every[min(len(every) - 1, int(len(every) * 0.99))]:.2f})" if every else "no changes replayed")


if __name__ == "__main__":
    main()
