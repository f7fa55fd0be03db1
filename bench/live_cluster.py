"""Live-cluster figures: cluster-up with cached binaries, reading a cluster with N pods and config maps (raw JSON,
paginated), `kubeward scan --cluster` end to end, and SubjectAccessReview round trips vs the in-process RBAC engine.

Run: python3 bench/live_cluster.py [--pods 1000] [--configmaps 2000]   (needs scripts/build-apiserver's binaries)
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("kubeward_e2e_harness", REPO / "e2e" / "apiserver" / "harness.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mod  # type: ignore[union-attr]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--configmaps", type=int, default=2000)
    ap.add_argument("--questions", type=int, default=1000)
    args = ap.parse_args()
    harness = _harness()
    bin_dir = harness.build()
    from kubeward.engines.rbac import RBACIndex, Request, UserInfo
    from kubeward.sources.cluster import RBAC_TYPES, SCAN_TYPES, Client, load_cluster

    state = Path(tempfile.mkdtemp(prefix="kubeward-bench-")) / "state"
    t0 = time.perf_counter()
    cluster = harness.up(state, bin_dir=bin_dir)
    print(f"cluster-up (cached binaries, PKI + etcd + apiserver + controller-manager): {time.perf_counter() - t0:.1f} s")
    try:
        admin = Client(str(cluster.kubeconfig))
        admin.json("POST", "/api/v1/namespaces", body={"metadata": {"name": "bench"}})
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"automountServiceAccountToken": False,
               "containers": [{"name": "c", "image": "registry.example/app:1"}]}}

        def make(i: int) -> None:
            if i < args.pods:
                body = {**pod, "metadata": {"name": f"p{i}", "labels": {"app": f"a{i % 20}"}}}
                admin.json("POST", "/api/v1/namespaces/bench/pods", body=body)
            else:
                body = {"metadata": {"name": f"cm{i}"}, "data": {"k": "v" * 200}}
                admin.json("POST", "/api/v1/namespaces/bench/configmaps", body=body)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(make, range(args.pods + args.configmaps)))
        print(f"created {args.pods} pods + {args.configmaps} configmaps in {time.perf_counter() - t0:.1f} s")
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            snap = load_cluster(types=SCAN_TYPES, client=admin)
            best = min(best, time.perf_counter() - t0)
        print(f"load_cluster(SCAN_TYPES): {len(snap)} objects, coverage {snap.coverage}, best of 3 {best:.2f} s "
              f"({len(snap) / best:,.0f} objects/s)")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", "from kubeward.cli.main import main; main()", "scan", "--cluster",
                              "--kubeconfig", str(cluster.kubeconfig), "-o", "json", "--output", "/dev/null"],
                             capture_output=True, text=True, check=False)
        print(f"kubeward scan --cluster -o json (process start to exit, exit {out.returncode}): "
              f"{time.perf_counter() - t0:.2f} s")
        index = RBACIndex.from_snapshot(load_cluster(types=RBAC_TYPES, client=admin), builtin_roles=False)
        req = {"namespace": "bench", "verb": "get", "resource": "pods"}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "jane", "groups": ["system:authenticated"], "resourceAttributes": req}}
        t0 = time.perf_counter()
        for _ in range(args.questions):
            admin.json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
        sar = (time.perf_counter() - t0) / args.questions
        user, r = UserInfo("jane", ("system:authenticated",)), Request("get", "pods", namespace="bench")
        t0 = time.perf_counter()
        for _ in range(args.questions * 20):
            index.authorize(user, r)
        eng = (time.perf_counter() - t0) / (args.questions * 20)
        print(f"SubjectAccessReview round trip: {sar * 1e3:.2f} ms; RBACIndex.authorize: {eng * 1e6:.1f} µs "
              f"(×{sar / eng:,.0f})")
    finally:
        harness.down(state)


if __name__ == "__main__":
    main()
