"""`kubeward monitor` at scale, without an apiserver: watch events replayed into the monitor's state at a fixed
rate, each batch evaluated incrementally, its findings events and metrics followed and the PolicyReport bodies
built, as the monitor's loop does (the API writes are not timed); the cross-object lane runs in its thread as in
the monitor, and its results are merged as soon as it is done.

    PYTHONPATH=src python3 bench/monitor_scale.py [--pods 10000] [--policies 2000] [--bindings 50000]
                                                  [--rate 50] [--seconds 20] [--window 0.2] [--kinds Pod]
                                                  [--each]

Prints: initial sync + first evaluation time, peak RSS, the median time of one evaluation (wall and CPU: the CPU
time is the steadier figure on a shared machine; the process's CPU, so the lane's share counts too), the median
wall and CPU time of one cross-object lane run (the lane thread's own CPU), and two
change-to-report latencies (p50/p99/max) per kind at `rate` changes per second: own-object (the changed
object's own findings reported) and cross-object (the cross-object lane's results that include the change
merged; only changes some cross-object control reads). Targets: < 60 s, < 1 GiB, own-object p99 < 2 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections import Counter
from typing import Any

from kubeward.gcpause import freeze_long_lived
from kubeward.monitor import events as ev
from kubeward.monitor.metrics import MonitorMetrics
from kubeward.monitor.policyreport import desired
from kubeward.monitor.state import ClusterState, Incremental, finding_key
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
    ap.add_argument("--each", action="store_true", help="print every evaluation (wall time, changes, merged)")
    a = ap.parse_args()
    options = ScanOptions()
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}", "resourceVersion": "1"}}
                  for i in range(NAMESPACES)]
    start = time.monotonic()
    with settings(options):
        state = ClusterState(SCAN_TYPES, "bench")
        lists = {"Namespace": namespaces, "Pod": [pod(i) for i in range(a.pods)],
                 "NetworkPolicy": [policy(i) for i in range(a.policies)],
                 "RoleBinding": [binding(i) for i in range(a.bindings)]}
        for t in SCAN_TYPES:
            state.replace(t, lists.get(t.kind, []))
        inc = Incremental(state, plan(options), options, lane=True)
        metrics = MonitorMetrics()
        report = inc.evaluate()
        metrics.observe_report(report, state.count(), 0.0)
        current = Counter(map(finding_key, report.findings))
        desired(report, state.namespaces())
        freeze_long_lived()  # as the monitor's loop does after its first evaluation
        initial = time.monotonic() - start
        print(f"initial sync + evaluation: {initial:.1f} s ({len(report.findings)} findings over "
              f"{report.objects} objects), peak RSS {rss_mib():.0f} MiB")
        latencies: dict[str, list[float]] = {"Pod": [], "NetworkPolicy": [], "RoleBinding": [], "ConfigMap": []}
        cross: dict[str, list[float]] = {k: [] for k in latencies}
        waiting: list[tuple[str, float, float]] = []  # (kind, arrival, applied): the cross-object lane's to show
        makers = {"Pod": (pod, a.pods), "NetworkPolicy": (policy, a.policies), "RoleBinding": (binding, a.bindings),
                  "ConfigMap": (configmap, 1000)}
        gap = 1.0 / a.rate
        mix = [k.strip() for k in a.kinds.split(",") if k.strip()]
        n, t0 = 0, time.monotonic()
        pending: list[tuple[str, float]] = []
        evals: list[tuple[float, float]] = []  # (wall, CPU) seconds of each evaluation: CPU is steadier under load
        lane_runs: list[tuple[float, float]] = []  # (wall, lane thread CPU) of each cross-object lane run merged
        next_eval = None
        while time.monotonic() - t0 < a.seconds:
            now = time.monotonic()
            due = int((now - t0) / gap)
            while n < due:  # the events that would have arrived by now
                kind = mix[n % len(mix)]
                make, count = makers[kind]
                i = (n * 7919) % count
                obj = make(i, 2 + n) if kind != "Pod" else pod(i, 2 + n, privileged=n % 2 == 0)
                state.apply(TYPES[kind], "MODIFIED", obj)
                arrival = t0 + n * gap
                pending.append((kind, arrival))
                waiting.append((kind, arrival, time.monotonic()))
                next_eval = next_eval or arrival + a.window
                n += 1
            merge = inc.cross_pending() and inc.wait_cross(0)
            if merge or (next_eval is not None and time.monotonic() >= next_eval):
                began, began_cpu = time.monotonic(), time.process_time()
                report = inc.evaluate()
                metrics.observe_report(report, state.count(), time.monotonic() - began, inc.delta)
                if inc.delta is not None:
                    ev.follow(current, *inc.delta)
                desired(report, state.namespaces(), only=inc.dirty, index=inc)  # what the loop rewrites
                done = time.monotonic()
                evals.append((done - began, time.process_time() - began_cpu))
                if a.each:
                    print(f"  eval {done - began:.2f} s wall at {began - t0:.1f} s, {len(pending)} changes, merged {len(inc.rerun)}")
                for kind, arrival in pending:
                    latencies[kind].append(done - arrival)
                pending, next_eval = [], None
                if inc.cross_started is not None:  # a lane run merged: the changes it saw are shown in full
                    if inc.cross_seconds is not None and inc.cross_cpu is not None:
                        lane_runs.append((inc.cross_seconds, inc.cross_cpu))
                    seen = [w for w in waiting if w[2] <= inc.cross_started]
                    waiting = [w for w in waiting if w[2] > inc.cross_started]
                    for kind, arrival, _ in seen:
                        cross[kind].append(done - arrival)
            else:
                time.sleep(0.001)
    every = sorted(x for v in latencies.values() for x in v)
    if evals:
        print(f"{len(evals)} evaluations: median {statistics.median(w for w, _ in evals):.2f} s wall, "
              f"{statistics.median(c for _, c in evals):.2f} s CPU")
    if lane_runs:
        print(f"{len(lane_runs)} cross-object lane runs: median {statistics.median(w for w, _ in lane_runs):.2f} s "
              f"wall, {statistics.median(c for _, c in lane_runs):.2f} s CPU (max {max(c for _, c in lane_runs):.2f})")
    print(f"{n} changes ({a.kinds}) at {a.rate:.0f}/s over {a.seconds:.0f} s, batch window {a.window} s; peak RSS "
          f"{rss_mib():.0f} MiB")
    every_cross = sorted(x for v in cross.values() for x in v)
    for lane, table, total in (("own-object", latencies, every), ("cross-object", cross, every_cross)):
        print(f"{lane} change-to-report:")
        for kind, v in [("all", total), *table.items()]:
            if v:
                v = sorted(v)
                print(f"  {kind:13s} p50 {statistics.median(v):.2f} s  p99 {_p99(v):.2f} s  max {v[-1]:.2f} s  "
                      f"({len(v)} changes)")
    if waiting:
        print(f"  ({len(waiting)} changes not (yet) shown by the cross-object lane: the last run's, or of kinds "
              f"no cross-object control reads)")
    print(f"targets: initial < 60 s ({initial:.1f}), RSS < 1024 MiB ({rss_mib():.0f}), own-object p99 < 2 s "
          f"({_p99(every):.2f})" if every else "no changes replayed")


def _p99(v: list[float]) -> float:
    return v[min(len(v) - 1, int(len(v) * 0.99))]


if __name__ == "__main__":
    main()
