"""RBAC engine benchmark: a synthetic cluster of 5,000 roles, 50,000 bindings and 10,000 service accounts.

Targets (issue 4): build the index < 3 s; can-i and who-can < 5 ms each; risks over the cluster < 10 s.
Run: python bench/rbac_bench.py [--seed N]. Prints the figures; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from typing import Any

from kubeward.engines.rbac import RBACIndex, Request, user_info
from kubeward.engines.rbac.matrix import BUILTIN
from kubeward.engines.rbac.paths import escalation_paths
from kubeward.engines.rbac.risks import find_risks
from kubeward.engines.rbac.workloads import pods_by_service_account
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot

NAMESPACES = 100
SAS = 10_000
CLUSTER_ROLES, ROLES = 1_000, 4_000
CRBS, RBS = 5_000, 45_000
WORKLOADS = 5_000
# The built-in resource vocabulary plus the subresources roles commonly name: rules pick a few of them,
# as real roles do (a dense toy vocabulary would make every request match a third of all bindings).
RESOURCES = [(g, r) for g, r, _ in BUILTIN] + [("", "pods/exec"), ("", "pods/log"), ("", "pods/attach"),
                                               ("", "serviceaccounts/token"), ("apps", "deployments/scale")]
# --dense: a toy vocabulary of 11 resources, so a typical request matches a fifth of all bindings (worst case).
DENSE = [("", "pods"), ("", "secrets"), ("", "configmaps"), ("", "services"), ("apps", "deployments"),
         ("apps", "statefulsets"), ("batch", "jobs"), ("", "pods/exec"), ("", "pods/log"),
         ("rbac.authorization.k8s.io", "rolebindings"), ("networking.k8s.io", "networkpolicies")]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
RBAC = "rbac.authorization.k8s.io/v1"


def rules(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for _ in range(rng.randint(1, 5)):
        picks = rng.sample(RESOURCES, rng.randint(1, 3))
        rule: dict[str, Any] = {"apiGroups": sorted({g for g, _ in picks}), "resources": [r for _, r in picks],
                                "verbs": rng.sample(VERBS, rng.randint(1, 4))}
        if rng.random() < 0.05:
            rule["resourceNames"] = [f"obj-{rng.randint(0, 50)}"]
        out.append(rule)
    if rng.random() < 0.01:
        out.append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    return out


def subjects(rng: random.Random, ns: str | None) -> list[dict[str, str]]:
    out = []
    for _ in range(rng.randint(1, 3)):
        x = rng.random()
        if x < 0.6:
            n = rng.randrange(NAMESPACES)
            out.append({"kind": "ServiceAccount", "name": f"sa-{rng.randrange(SAS // NAMESPACES)}",
                        "namespace": f"ns-{n}" if ns is None or rng.random() < 0.3 else ns})
        elif x < 0.9:
            out.append({"kind": "User", "name": f"user-{rng.randrange(2000)}"})
        else:
            out.append({"kind": "Group", "name": f"group-{rng.randrange(200)}"})
    return out


def cluster(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    objs: list[dict[str, Any]] = []
    for i in range(CLUSTER_ROLES):
        objs.append({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": f"cr-{i}"}, "rules": rules(rng)})
    for i in range(ROLES):
        objs.append({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": f"r-{i % 40}",
                     "namespace": f"ns-{i // 40}"}, "rules": rules(rng)})
    for i in range(CRBS):
        objs.append({"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": f"crb-{i}"},
                     "roleRef": {"kind": "ClusterRole", "name": f"cr-{rng.randrange(CLUSTER_ROLES)}"},
                     "subjects": subjects(rng, None)})
    for i in range(RBS):
        ns = f"ns-{rng.randrange(NAMESPACES)}"
        ref = ({"kind": "Role", "name": f"r-{rng.randrange(40)}"} if rng.random() < 0.6
               else {"kind": "ClusterRole", "name": f"cr-{rng.randrange(CLUSTER_ROLES)}"})
        objs.append({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": f"rb-{i}", "namespace": ns},
                     "roleRef": ref, "subjects": subjects(rng, ns)})
    for i in range(SAS):
        objs.append({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": f"sa-{i % (SAS // NAMESPACES)}", "namespace": f"ns-{i // (SAS // NAMESPACES)}"}})
    for i in range(WORKLOADS):
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": f"d-{i}", "namespace": f"ns-{i % NAMESPACES}"},
                     "spec": {"template": {"spec": {"serviceAccountName": f"sa-{i % (SAS // NAMESPACES)}",
                                                    "containers": [{"name": "c", "image": "x"}]}}}})
    return objs


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dense", action="store_true", help="use the 11-resource toy vocabulary (worst case)")
    args = ap.parse_args()
    if args.dense:
        RESOURCES[:] = DENSE
    objs = cluster(args.seed)
    snapshot = Snapshot(Resource(o) for o in objs)
    build, index = timed(RBACIndex.from_snapshot, snapshot)
    gc.collect()
    gc.freeze()  # long-lived index: keep the collector from rescanning it on every query (as the CLI does)
    rng = random.Random(args.seed + 1)
    reqs = []
    for _ in range(args.queries):
        g, r = rng.choice(RESOURCES)
        res, _, sub = r.partition("/")
        reqs.append(Request(rng.choice(VERBS), res, sub, g, f"ns-{rng.randrange(NAMESPACES)}"))
    users = []
    for _ in range(args.queries):
        x = rng.random()
        if x < 0.5:
            users.append(user_info(f"system:serviceaccount:ns-{rng.randrange(NAMESPACES)}:sa-{rng.randrange(100)}"))
        else:
            users.append(user_info(f"user-{rng.randrange(2000)}", [f"group-{rng.randrange(200)}"]))
    can, who = [], []
    allowed = 0
    for u, q in zip(users, reqs, strict=True):
        t, d = timed(index.authorize, u, q)
        can.append(t * 1000)
        allowed += d.allowed
    subjects = 0
    for q in reqs:
        t, a = timed(index.allowed_subjects, q)
        who.append(t * 1000)
        subjects += len(a.subjects)
    t_pods, pods = timed(pods_by_service_account, snapshot)
    t_risks, found = timed(lambda: find_risks(index, pods))
    t_paths, paths = timed(lambda: escalation_paths(index, snapshot))
    print(f"objects: {len(snapshot):,} (roles {CLUSTER_ROLES + ROLES:,}, bindings {CRBS + RBS:,}, "
          f"service accounts {SAS:,}, workloads {WORKLOADS:,})")
    print(f"build index:        {build:8.3f} s   (target < 3 s)")
    print(f"can-i   mean/p50/p99/max: {statistics.mean(can):.3f} / {pct(can, .5):.3f} / {pct(can, .99):.3f} / "
          f"{max(can):.3f} ms over {len(can)} queries ({allowed} allowed)   (target < 5 ms)")
    print(f"who-can mean/p50/p99/max: {statistics.mean(who):.3f} / {pct(who, .5):.3f} / {pct(who, .99):.3f} / "
          f"{max(who):.3f} ms over {len(who)} queries (mean {subjects / len(who):.0f} subjects)   (target < 5 ms)")
    print(f"risks:              {t_risks + t_pods:8.3f} s   ({len(found):,} risks)   (target < 10 s)")
    print(f"escalation paths:   {t_paths:8.3f} s   ({len(paths):,} paths)")


if __name__ == "__main__":
    main()
