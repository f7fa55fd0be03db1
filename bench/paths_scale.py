"""Attack paths at scale: 10,000 pods in 200 namespaces, 2,000 NetworkPolicies, 50,000 RBAC bindings, exposed
Services; the full graph, the top paths from the internet to cluster-admin and the minimum cut.

Run: python bench/paths_scale.py [--seed N] [--exposed K]
The pods and policies are bench/netpol_bench.py's; the RBAC objects are generated here in rbac_bench.py's shape
(1,000 ClusterRoles, 4,000 Roles, 5,000 ClusterRoleBindings, 45,000 RoleBindings; pods run as its accounts); K namespaces get a LoadBalancer Service in front of one app. Prints each phase's time,
the graph's size, the paths found and the peak RSS (ru_maxrss). Targets (docs/benchmarks.md): graph + top paths
under 10 s and 2 GiB.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import random

import netpol_bench
from kubeward.engines.rbac import RBACIndex
from kubeward.paths import analyze, build
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

RBAC = "rbac.authorization.k8s.io/v1"
RESOURCES = [("", "pods"), ("", "secrets"), ("", "configmaps"), ("", "services"), ("", "serviceaccounts"),
             ("", "serviceaccounts/token"), ("", "pods/exec"), ("", "pods/log"), ("", "nodes"), ("", "namespaces"),
             ("", "endpoints"), ("", "events"), ("apps", "deployments"), ("apps", "daemonsets"),
             ("apps", "statefulsets"), ("batch", "jobs"), ("batch", "cronjobs"), ("networking.k8s.io", "ingresses"),
             ("networking.k8s.io", "networkpolicies"), ("rbac.authorization.k8s.io", "roles"),
             ("rbac.authorization.k8s.io", "rolebindings"), ("policy", "poddisruptionbudgets"),
             ("autoscaling", "horizontalpodautoscalers"), ("coordination.k8s.io", "leases")]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def _rules(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for _ in range(rng.randint(1, 5)):
        picks = rng.sample(RESOURCES, rng.randint(1, 3))
        out.append({"apiGroups": sorted({g for g, _ in picks}), "resources": [r for _, r in picks],
                    "verbs": rng.sample(VERBS, rng.randint(1, 4))})
    if rng.random() < 0.01:
        out.append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    return out


def _subjects(rng: random.Random, ns: str | None) -> list[dict[str, str]]:
    out = []
    for _ in range(rng.randint(1, 3)):
        x = rng.random()
        if x < 0.6:
            out.append({"kind": "ServiceAccount", "name": f"sa-{rng.randrange(100)}",
                        "namespace": ns if ns is not None and rng.random() > 0.3 else f"ns-{rng.randrange(100)}"})
        elif x < 0.9:
            out.append({"kind": "User", "name": f"user-{rng.randrange(2000)}"})
        else:
            out.append({"kind": "Group", "name": f"group-{rng.randrange(200)}"})
    return out


def rbac_objects(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    objs: list[dict[str, Any]] = []
    objs += [{"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": f"cr-{i}"}, "rules": _rules(rng)}
             for i in range(1_000)]
    objs += [{"apiVersion": RBAC, "kind": "Role", "metadata": {"name": f"r-{i % 40}", "namespace": f"ns-{i // 40}"},
              "rules": _rules(rng)} for i in range(4_000)]
    objs += [{"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": f"crb-{i}"},
              "roleRef": {"kind": "ClusterRole", "name": f"cr-{rng.randrange(1_000)}"},
              "subjects": _subjects(rng, None)} for i in range(5_000)]
    for i in range(45_000):
        ns = f"ns-{rng.randrange(100)}"
        ref = ({"kind": "Role", "name": f"r-{rng.randrange(40)}"} if rng.random() < 0.6
               else {"kind": "ClusterRole", "name": f"cr-{rng.randrange(1_000)}"})
        objs.append({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": f"rb-{i}", "namespace": ns},
                     "roleRef": ref, "subjects": _subjects(rng, ns)})
    objs += [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{i % 100}",
                                                                        "namespace": f"ns-{i // 100}"}}
             for i in range(10_000)]
    return objs


def objects(seed: int, exposed: int) -> list[dict[str, Any]]:
    objs = netpol_bench.objects(200, 50, False, 4)
    for o in objs:  # rbac_bench's namespaces are ns-0 … ns-99, its accounts sa-0 … sa-99 in each
        meta = o["metadata"]
        if o["kind"] == "Namespace":
            meta["name"] = f"ns-{int(meta['name'][3:])}"
        elif "namespace" in meta:
            meta["namespace"] = f"ns-{int(meta['namespace'][3:])}"
        if o["kind"] == "Pod":
            o["spec"]["serviceAccountName"] = f"sa-{int(meta['name'].rsplit('-', 1)[1]) % 100}"
    rbac = rbac_objects(seed)
    svcs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": f"ns-{n * 7 % 200}"},
             "spec": {"type": "LoadBalancer", "selector": {"app": "app-1"}, "ports": [{"port": 80, "targetPort": "http"}]}}
            for n in range(exposed)]
    return objs + rbac + svcs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exposed", type=int, default=40)
    args = ap.parse_args()
    objs = objects(args.seed, args.exposed)
    t0 = time.perf_counter()
    snap = Snapshot(Resource(o) for o in objs)
    index = RBACIndex.from_snapshot(snap)
    t1 = time.perf_counter()
    gc.disable()
    graph = build(snap, index)
    t2 = time.perf_counter()
    result = analyze(snap, "internet", "cluster-admin", graph=graph)
    t3 = time.perf_counter()
    cut = result.cut()
    t4 = time.perf_counter()
    gc.enable()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pods = sum(1 for n, k in graph.nodes.items() if k == "pod")
    edges = len(graph.edges())
    kinds = {k: len(snap.of_kind(k)) for k in ("Pod", "NetworkPolicy", "RoleBinding", "ClusterRoleBinding", "Service")}
    print(f"objects={len(snap):,} " + " ".join(f"{k}={v:,}" for k, v in kinds.items()))
    print(f"graph: {len(graph.nodes):,} nodes ({pods:,} pods), {edges:,} edges")
    print(f"snapshot + RBAC index: {t1 - t0:.2f}s")
    print(f"graph build: {t2 - t1:.2f}s")
    print(f"paths internet → cluster-admin: {t3 - t2:.2f}s ({len(result.paths):,} paths; best score "
          f"{result.paths[0].cost if result.paths else '-'})")
    print(f"minimum cut: {t4 - t3:.2f}s ({len(cut.fixes)} fixes{', uncuttable' if cut.uncuttable else ''})")
    total = t3 - t1
    print(f"graph + top paths: {total:.2f}s (target < 10 s: {total / 10:.2f} of it); peak RSS {rss:,.0f} MiB "
          f"(target < 2048 MiB: {rss / 2048:.2f} of it)")


if __name__ == "__main__":
    main()
