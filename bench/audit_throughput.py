"""Audit analysis throughput: generate realistic audit events (~800 B each) to a temp file, then print
the orjson parse floor (just parsing each line), `audit analyze` with every built-in detection on one core, and
with --workers N (multiprocessing over byte-range chunks), plus peak memory.

    python bench/audit_throughput.py                 # 1,000,000 events
    python bench/audit_throughput.py --events 200000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from typing import Any

import orjson

from kubeward.audit.analyzer import Analyzer, AnalyzerConfig
from kubeward.audit.parallel import analyze_file_parallel
from kubeward.audit.reader import ReadStats, iter_events

USERS = [("system:serviceaccount:kube-system:replicaset-controller", ["system:serviceaccounts"]),
         ("system:kube-scheduler", []), ("system:node:worker-1", ["system:nodes"]),
         ("system:kube-controller-manager", []), ("jane@example.com", ["dev"]), ("ci-bot", ["deployers"])]
UAS = ["kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:x",
       "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350", "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"]
# (weight, verb, group, resource, subresource, namespaced, code)
SHAPES = [
    (30, "get", "coordination.k8s.io", "leases", "", True, 200),
    (20, "update", "coordination.k8s.io", "leases", "", True, 200),
    (15, "watch", "", "pods", "", True, 200),
    (10, "list", "", "configmaps", "", True, 200),
    (8, "patch", "", "nodes", "status", False, 200),
    (6, "get", "", "secrets", "", True, 200),
    (4, "create", "", "pods", "", True, 201),
    (3, "get", "", "pods", "log", True, 200),
    (2, "list", "", "secrets", "", True, 403),
    (1, "create", "", "pods", "exec", True, 101),
    (1, "create", "rbac.authorization.k8s.io", "clusterroles", "", False, 201),
]


def make_event(i: int, rnd: random.Random) -> dict[str, Any]:
    _, verb, group, res, sub, namespaced, code = rnd.choices(SHAPES, weights=[s[0] for s in SHAPES])[0]
    user, groups = rnd.choice(USERS)
    ns = rnd.choice(["default", "kube-system", "payments", "web"]) if namespaced else ""
    name = f"{res[:-1]}-{rnd.randrange(1000):03d}"
    api = f"/apis/{group}/v1" if group else "/api/v1"
    path = f"{api}/namespaces/{ns}/{res}/{name}" if ns else f"{api}/{res}/{name}"
    ts = f"2024-05-01T10:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{i % 1000000:06d}Z"
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": f"{rnd.getrandbits(128):032x}", "stage": "ResponseComplete",
        "requestURI": path + (f"/{sub}" if sub else ""), "verb": verb,
        "user": {"username": user, "groups": [*groups, "system:authenticated"]},
        "sourceIPs": [f"10.0.{rnd.randrange(4)}.{rnd.randrange(250)}"], "userAgent": rnd.choice(UAS),
        "objectRef": {"resource": res, "namespace": ns, "name": name, "apiGroup": group, "apiVersion": "v1",
                      **({"subresource": sub} if sub else {})},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": ts, "stageTimestamp": ts,
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:controller\""},
    }
    if not ns:
        del ev["objectRef"]["namespace"]
    if verb == "create" and res == "pods" and not sub:
        priv = rnd.random() < 0.05
        ev["level"] = "Request"
        ev["requestObject"] = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name},
                               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.2",
                                                        "securityContext": {"privileged": priv}}]}}
    if res == "clusterroles":
        ev["level"] = "Request"
        ev["requestObject"] = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    return ev


def generate(path: str, n: int, seed: int = 1) -> int:
    rnd = random.Random(seed)
    size = 0
    with open(path, "wb") as f:
        buf = []
        for i in range(n):
            line = orjson.dumps(make_event(i, rnd)) + b"\n"
            size += len(line)
            buf.append(line)
            if len(buf) == 10000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    return size


def parse_floor(path: str) -> tuple[float, float]:
    """(events/s by wall clock, events/s by CPU time): the shared machine's load moves the first, less the second."""
    loads = orjson.loads
    t, c = time.perf_counter(), time.process_time()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def analyze_one_core(path: str) -> tuple[float, float, int]:
    an = Analyzer(config=AnalyzerConfig())
    rs = ReadStats()
    alerts = 0
    feed = an.feed
    t, c = time.perf_counter(), time.process_time()
    for ev in iter_events([path], rs):
        r = feed(ev)
        if r:
            alerts += len(r)
    return rs.events / (time.perf_counter() - t), rs.events / (time.process_time() - c), alerts


def analyze_workers(path: str, workers: int) -> tuple[float, int, int]:
    rs = ReadStats()
    t = time.perf_counter()
    alerts, stats = analyze_file_parallel(path, path, workers, AnalyzerConfig(), None, rs)
    return stats.events / (time.perf_counter() - t), len(alerts), stats.events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", metavar="FILE", help="Write the generated log here and keep it.")
    args = ap.parse_args()
    path = args.keep or tempfile.mktemp(prefix="kubeward-audit-bench-", suffix=".log")
    try:
        t = time.perf_counter()
        size = generate(path, args.events)
        print(f"generated      {args.events:,} events, {size / 2**20:.1f} MiB, {size / args.events:.0f} B/event "
              f"({time.perf_counter() - t:.1f} s)")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        floor, floor_cpu = parse_floor(path)
        print(f"parse floor    {floor:,.0f} events/s wall, {floor_cpu:,.0f} events/s CPU (orjson.loads per line)")
        one, one_cpu, alerts = analyze_one_core(path)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"analyze 1 core {one:,.0f} events/s wall = {one / floor:.0%} of the floor; {one_cpu:,.0f} events/s "
              f"CPU = {one_cpu / floor_cpu:.0%} of the floor; {alerts:,} alerts")
        if args.workers > 1:
            w, walerts, wevents = analyze_workers(path, args.workers)
            print(f"analyze {args.workers} workers {w:,.0f} events/s = {w / one:.2f}x one core, {walerts:,} alerts "
                  f"({wevents:,} events)")
        print(f"peak RSS       {rss1 / 1024:.0f} MiB (before analysis {rss0 / 1024:.0f} MiB; file "
              f"{size / 2**20:.0f} MiB, not loaded)")
        print(f"machine        {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    finally:
        if not args.keep and os.path.exists(path):
            os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
