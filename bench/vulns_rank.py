"""`kubeward vulns --images` at scale: synthetic Trivy JSON reports mapped to the workloads of a synthetic cluster
snapshot and ranked with the exposure (netpol), privilege (PSS) and service-account (RBAC) engines.

    PYTHONPATH=src python3 bench/vulns_rank.py [--workloads 2000] [--images 200] [--vulns 20000] [--repeat 3]

The cluster: `workloads` Deployments over 100 namespaces, one Service per ten of them (a third LoadBalancer,
the others ClusterIP), a NetworkPolicy in every other namespace, one ServiceAccount per ten workloads of which a
fifth is bound to `edit`, every seventh workload privileged. Each workload runs one of `images` images; the
`vulns` vulnerabilities are spread evenly over the images (one Trivy report per image, written to a temporary
folder). Phases, each timed (wall and CPU; best of `repeat`) with the RSS it added:

- ingest: read every report and parse it (`orjson.loads` + vulns.images.parse_report, what `vulns --images`
  does);
- floor: `orjson.loads` of the same bytes, the least any reader of the reports must spend;
- mapping: every container matched to the reports of its image, one finding per vulnerability (no ranking);
- ranking: the same with the risk of each finding (vulns.risk.RiskContext on the snapshot) and the order
  `vulns` prints them in (vulns.report.rank_order).

Prints a ratio of ingest to the floor and the findings per second of mapping and ranking; the targets are in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kubeward.findings import Report
from kubeward.resource import Resource
from kubeward.snapshot import Snapshot
from kubeward.vulns.images import ImageReport, image_findings, parse_report
from kubeward.vulns.risk import RiskContext

try:
    from kubeward.vulns.report import rank_order
except ImportError:  # a tree from before the ranking order was a library function (baseline runs)
    def rank_order(report: Report, min_risk: int) -> int:
        report.findings.sort(key=lambda f: -99 if f.risk is None else -f.risk.score)
        return 0

NAMESPACES = 100
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def cluster(workloads: int, images: int) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for n in range(NAMESPACES):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}})
        if n % 2 == 0:
            objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": "web-only", "namespace": f"ns-{n}"},
                         "spec": {"podSelector": {"matchLabels": {"tier": "db"}}, "policyTypes": ["Ingress"],
                                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}]}]}})
    for i in range(workloads):
        ns, app = f"ns-{i % NAMESPACES}", f"app-{i}"
        sa = f"sa-{i // 10}"
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns},
                     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": {
                         "metadata": {"labels": {"app": app, "tier": ("web", "db", "cache")[i % 3]}},
                         "spec": {"serviceAccountName": sa, "containers": [{
                             "name": "c", "image": f"registry.example/img-{i % images}:1.0",
                             "ports": [{"containerPort": 8080}],
                             "securityContext": {"privileged": i % 7 == 0}}]}}}})
        if i % 10 == 0:
            objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}})
            if i % 50 == 0:
                objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                             "metadata": {"name": f"{sa}-edit", "namespace": ns},
                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                         "name": "edit"},
                             "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
            objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                         "spec": {"type": "LoadBalancer" if i % 30 == 0 else "ClusterIP", "selector": {"app": app},
                                  "ports": [{"port": 80, "targetPort": 8080}]}})
    objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
                 "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["*"]}]})
    return objs


def trivy(image: int, vulns: int) -> dict[str, Any]:
    name = f"registry.example/img-{image}:1.0"
    return {"SchemaVersion": 2, "ArtifactName": name, "ArtifactType": "container_image",
            "Metadata": {"RepoTags": [name], "RepoDigests": [f"registry.example/img-{image}@sha256:{image:064x}"]},
            "Results": [{"Target": f"{name} (debian 12)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
                {"VulnerabilityID": f"CVE-2024-{10000 + (image * vulns + v) % 40000}", "PkgName": f"pkg-{v % 300}",
                 "InstalledVersion": f"1.{v}", "FixedVersion": f"1.{v + 1}" if v % 3 else "",
                 "Severity": SEVERITIES[v % 5], "Title": f"synthetic vulnerability {v} of image {image}"}
                for v in range(vulns)]}]}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(label: str, repeat: int, run: Callable[[], Any]) -> tuple[Any, float, float]:
    """Best wall and CPU of `repeat` runs (the last result kept), with the RSS the first run added."""
    before = rss_mib()
    best_wall = best_cpu = float("inf")
    out: Any = None
    added = 0.0
    for i in range(repeat):
        out = None
        w, c = time.perf_counter(), time.process_time()
        out = run()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w), min(best_cpu, time.process_time() - c)
        if i == 0:
            added = rss_mib() - before
    print(f"{label:<9} {best_wall * 1000:9.0f} ms wall {best_cpu * 1000:9.0f} ms CPU   +{added:6.0f} MiB RSS")
    return out, best_wall, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", type=int, default=2000)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--vulns", type=int, default=20000, help="vulnerabilities over all images")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    per_image = args.vulns // args.images
    snap = Snapshot([Resource(o) for o in cluster(args.workloads, args.images)])
    resources = list(snap.resources)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            p = Path(tmp) / f"img-{i}.json"
            p.write_bytes(orjson.dumps(trivy(i, per_image)))
            paths.append(p)
        size = sum(p.stat().st_size for p in paths)
        print(f"{args.workloads} workloads, {args.images} images, {per_image * args.images} vulnerabilities "
              f"({size / 2**20:.1f} MiB of Trivy JSON); {len(resources)} objects; load "
              f"{os.getloadavg()[0]:.2f}")

        def ingest() -> list[ImageReport]:
            return [parse_report(orjson.loads(p.read_bytes()), str(p)) for p in paths]

        def floor() -> list[Any]:
            return [orjson.loads(p.read_bytes()) for p in paths]

        reports, iw, ic = timed("ingest", args.repeat, ingest)
        _, fw, fc = timed("floor", args.repeat, floor)
        mapped, _mw, mc = timed("mapping", args.repeat, lambda: list(image_findings(resources, reports)))

        def ranked() -> Report:
            report = Report(objects=len(resources), findings=list(image_findings(resources, reports,
                                                                                 RiskContext(snap))))
            rank_order(report, 0)
            return report

        report, _rw, rc = timed("ranking", args.repeat, ranked)
    n = len(mapped)
    assert n == len(report.findings) == args.workloads * per_image, (n, len(report.findings))
    top = report.findings[0].risk
    print(f"findings  {n:,}; mapping {n / mc:,.0f}/s CPU, ranking {n / rc:,.0f}/s CPU "
          f"({(rc - mc) / n * 1e6:.1f} µs of ranking per finding); top risk {top.score if top else '-'}")
    print(f"ingest / floor: {iw / fw:.2f}x wall, {ic / fc:.2f}x CPU; ingest + ranking / floor: "
          f"{(ic + rc) / fc:.0f}x CPU; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
