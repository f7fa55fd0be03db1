#!/usr/bin/env python3
"""Benchmark: kubeward vs kube-score (Go) vs Checkov on manifests shaped like real repositories.

Corpora (the first two generated here, deterministic, under a temporary folder; nothing is committed):
- operator: one ~30k-line install.yaml as operators ship it: CustomResourceDefinitions with big
  openAPIV3Schema trees, RBAC, a webhook configuration and a few Deployments;
- monitoring: a CRD-heavy monitoring stack of ~100k lines over ~100 files (a dozen CRDs make most of the lines;
  the rest: Deployments, a node-exporter DaemonSet, Services, RBAC, ServiceMonitors, PrometheusRules);
- pss: the 4,537 upstream Pod Security fixtures (bench/corpus.py);
- one-file: one Deployment (start-up dominates).

Per corpus and tool: best wall time over --repeat rounds (the tools take turns within a round, so the shared
machine's slow spells fall on all alike), best CPU time (user + system from wait4, forked children included) and
the largest peak RSS. Then the ratios of the issue's targets: kubeward at most kube-score's wall time on every
corpus, >= 50x faster than Checkov, a one-file scan under 60 ms.

kube-score: ~/.cache/kubeward/bin/tools/kube-score, or `--kube-score PATH`; build it with
  GOBIN=~/.cache/kubeward/bin/tools go install github.com/zegl/kube-score/cmd/kube-score@latest
Checkov: `checkov` on PATH, ~/.cache/kubeward-bench/checkov-venv/bin/checkov, or `--checkov PATH`;
`--no-checkov` skips it (it takes minutes).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from corpus import pss_corpus
from scan_vs_checkov import VENV, kubeward_binary

TOOLS = Path.home() / ".cache" / "kubeward" / "bin" / "tools"
WORDS = ("the", "field", "of", "a", "resource", "that", "is", "used", "to", "configure", "when", "set", "value",
         "must", "be", "defaults", "to", "if", "not", "specified", "selector", "label", "pods", "endpoint",
         "namespace", "secret", "key", "TLS", "config", "scrape", "interval", "timeout", "relabel", "target")
SCALARS = (("string", None), ("integer", "int32"), ("boolean", None), ("string", "date-time"), ("integer", "int64"))


# ----------------------------------------------------------------------------------------------- corpus makers


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _schema(rng: random.Random, budget: list[int], depth: int) -> dict[str, Any]:
    """An openAPIV3Schema object as controller-gen writes them: descriptions on every field, nested objects and
    arrays of objects, until `budget` (properties left) runs out."""
    props: dict[str, Any] = {}
    for i in range(rng.randint(4, 14)):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        name = f"{rng.choice(WORDS)}{rng.choice(WORDS).capitalize()}{i}"
        roll = rng.random()
        if depth < 7 and roll < 0.22:
            props[name] = {"description": _sentence(rng, rng.randint(8, 40)), **_schema(rng, budget, depth + 1)}
        elif depth < 7 and roll < 0.32:
            props[name] = {"description": _sentence(rng, rng.randint(8, 30)), "type": "array",
                           "items": _schema(rng, budget, depth + 1)}
        else:
            typ, fmt = rng.choice(SCALARS)
            field: dict[str, Any] = {"description": _sentence(rng, rng.randint(5, 25)), "type": typ}
            if fmt:
                field["format"] = fmt
            if typ == "string" and rng.random() < 0.15:
                field["enum"] = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
            props[name] = field
    out: dict[str, Any] = {"type": "object", "properties": props}
    if props and rng.random() < 0.3:
        out["required"] = sorted(props)[:2]
    return out


def _crd(rng: random.Random, group: str, kind: str, fields: int) -> dict[str, Any]:
    plural = kind.lower() + "s"
    schema = {"description": _sentence(rng, 30), "type": "object",
              "properties": {"apiVersion": {"type": "string", "description": _sentence(rng, 20)},
                             "kind": {"type": "string", "description": _sentence(rng, 20)},
                             "metadata": {"type": "object"},
                             "spec": _schema(rng, [fields], 1),
                             "status": _schema(rng, [fields // 6], 1)}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}",
                         "annotations": {"controller-gen.kubebuilder.io/version": "v0.16.1"}},
            "spec": {"group": group, "names": {"kind": kind, "listKind": kind + "List", "plural": plural,
                                               "singular": kind.lower()},
                     "scope": "Namespaced",
                     "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": schema}}]}}


def _deployment(name: str, ns: str, image: str, *, hardened: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "args": ["--leader-elect", "--metrics-bind=:8080"],
                                 "ports": [{"containerPort": 8080, "name": "metrics"}]}
    if hardened:
        container |= {"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                          "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                      "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                    "requests": {"cpu": "100m", "memory": "128Mi"}},
                      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081}},
                      "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8081}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                        "labels": {"app": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"serviceAccountName": name, "containers": [container]}}}}


def _rbac(rng: random.Random, name: str, ns: str, groups: list[str]) -> list[dict[str, Any]]:
    rules = [{"apiGroups": [g], "resources": [f"{rng.choice(WORDS)}s", f"{rng.choice(WORDS)}s/status"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]} for g in groups]
    rules += [{"apiGroups": [""], "resources": ["secrets", "configmaps", "pods", "services"],
               "verbs": ["get", "list", "watch"]},
              {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]


def _service(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"name": "metrics", "port": 8080, "targetPort": 8080}]}}


def _dump(docs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False, width=120)


def make_operator(root: Path) -> Path:
    """One install.yaml of ~30k lines, as an operator release ships it."""
    rng = random.Random(17)
    ns, group = "acme-system", "acme.example.com"
    kinds = ["Cluster", "Backup", "Restore", "Pooler", "ScheduledBackup", "Database", "Publication",
             "Subscription", "ImageCatalog", "ClusterImageCatalog"]
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    docs += [_crd(rng, group, k, 1200 if i < 2 else 460) for i, k in enumerate(kinds)]
    docs += _rbac(rng, "acme-operator", ns, [group, "apps", "batch", "policy"])
    docs += _rbac(rng, "acme-webhook", ns, [group])
    docs += [_deployment("acme-operator", ns, "ghcr.io/acme/operator:1.24.0", hardened=True),
             _deployment("acme-webhook", ns, "ghcr.io/acme/webhook:1.24.0", hardened=True),
             _deployment("acme-dashboard", ns, "ghcr.io/acme/dashboard:latest", hardened=False),
             _service("acme-operator", ns), _service("acme-webhook", ns),
             {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "acme-validating"},
              "webhooks": [{"name": f"v{k.lower()}.{group}", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                            "clientConfig": {"service": {"name": "acme-webhook", "namespace": ns,
                                                         "path": f"/validate-{k.lower()}"}},
                            "rules": [{"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                       "resources": [k.lower() + "s"]}]} for k in kinds]}]
    path = root / "operator" / "install.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(_dump(docs))
    return path


def make_monitoring(root: Path) -> Path:
    """A monitoring stack of ~100k lines over ~100 files, mostly CRD schemas."""
    rng = random.Random(42)
    ns, group = "monitoring", "monitoring.example.com"
    base = root / "monitoring"
    (base / "crds").mkdir(parents=True)
    kinds = {"Prometheus": 2880, "Alertmanager": 2000, "ThanosRuler": 1800, "PrometheusAgent": 2320,
             "ScrapeConfig": 1600, "ServiceMonitor": 880, "PodMonitor": 880, "Probe": 880,
             "AlertmanagerConfig": 2000, "PrometheusRule": 270, "Grafana": 1360, "GrafanaDashboard": 720}
    for kind, fields in kinds.items():
        (base / "crds" / f"{kind.lower()}.yaml").write_text(_dump([_crd(rng, group, kind, fields)]))
    components = ["prometheus-operator", "kube-state-metrics", "grafana", "blackbox-exporter", "alertmanager",
                  "prometheus-adapter", "thanos-query", "thanos-store"]
    for name in components:
        docs = [_deployment(name, ns, f"quay.io/example/{name}:v0.{rng.randint(10, 80)}.0",
                            hardened=rng.random() < 0.6), _service(name, ns), *_rbac(rng, name, ns, [group])]
        for kind, doc in (("deployment", docs[0]), ("service", docs[1])):
            (base / f"{name}-{kind}.yaml").write_text(_dump([doc]))
        (base / f"{name}-rbac.yaml").write_text(_dump(docs[2:]))
    node = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "node-exporter", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                     "template": {"metadata": {"labels": {"app": "node-exporter"}},
                                  "spec": {"hostNetwork": True, "hostPID": True,
                                           "containers": [{"name": "node-exporter",
                                                           "image": "quay.io/prometheus/node-exporter:v1.8.2",
                                                           "args": ["--path.rootfs=/host/root"],
                                                           "volumeMounts": [{"name": "root", "mountPath": "/host/root",
                                                                             "readOnly": True}]}],
                                           "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}}
    (base / "node-exporter-daemonset.yaml").write_text(_dump([node]))
    for i in range(40):
        target = rng.choice(components)
        monitor = {"apiVersion": f"{group}/v1", "kind": "ServiceMonitor",
                   "metadata": {"name": f"{target}-{i}", "namespace": ns},
                   "spec": {"selector": {"matchLabels": {"app": target}},
                            "endpoints": [{"port": "metrics", "interval": "30s"}]}}
        rules = {"apiVersion": f"{group}/v1", "kind": "PrometheusRule",
                 "metadata": {"name": f"{target}-rules-{i}", "namespace": ns},
                 "spec": {"groups": [{"name": f"{target}.rules", "rules": [
                     {"alert": f"{target.title()}Down{j}", "expr": f'up{{job="{target}"}} == 0', "for": "5m",
                      "labels": {"severity": "critical"}, "annotations": {"summary": _sentence(rng, 12)}}
                     for j in range(rng.randint(3, 12))]}]}}
        (base / f"servicemonitor-{i:02d}.yaml").write_text(_dump([monitor]))
        (base / f"prometheusrule-{i:02d}.yaml").write_text(_dump([rules]))
    return base


def make_one_file(root: Path) -> Path:
    path = root / "one" / "deployment.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(_dump([_deployment("web", "shop", "nginx:1.25", hardened=False)]))
    return path


def lines_and_files(path: Path) -> tuple[int, int]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    return sum(p.read_bytes().count(b"\n") for p in files), len(files)


# ----------------------------------------------------------------------------------------------- measuring

Result = tuple[float, float, float]  # best wall, best cpu, peak RSS MB
GNU_TIME = "/usr/bin/time"


def measure_once(cmd: list[str], ok: tuple[int, ...] = (0, 1)) -> Result:
    """Wall time (here), CPU time and peak RSS of one run. The command runs under GNU time, a small process:
    Linux carries a process's RSS high-water mark across fork and exec, so a command started straight from this
    (larger) process would report this one's RSS as its own. Output goes to /dev/null, never into memory here."""
    with tempfile.NamedTemporaryFile("r") as usage, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-q", "-f", "%U %S %M", "-o", usage.name, *cmd],
                              stdout=subprocess.DEVNULL, stderr=err, check=False)
        wall = time.perf_counter() - start
        if proc.returncode not in ok:
            err.seek(0)
            sys.exit(f"{cmd[0]} exited with {proc.returncode}: {err.read().decode(errors='replace')[-2000:]}")
        fields = usage.read().split()[-3:]
    user, system, rss_kb = float(fields[0]), float(fields[1]), int(fields[2])
    return wall, user + system, rss_kb / 1024


def best_of(cmds: dict[str, list[str]], repeat: int) -> dict[str, Result]:
    best: dict[str, Result] = {name: (float("inf"), float("inf"), 0.0) for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            wall, cpu, rss = measure_once(cmd)  # exit 1: findings (kubeward, kube-score, checkov)
            b = best[name]
            best[name] = (min(b[0], wall), min(b[1], cpu), max(b[2], rss))
    return best


def yaml_files(path: Path) -> list[str]:
    """kube-score takes files, not folders."""
    if path.is_file():
        return [str(path)]
    return [str(p) for p in sorted(path.rglob("*")) if p.suffix in (".yaml", ".yml", ".json")]


def find_checkov(given: str | None) -> str | None:
    for candidate in (given, shutil.which("checkov"), str(VENV / "bin" / "checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds per corpus (the one-file scan takes 4x as many)")
    ap.add_argument("--kube-score", default=str(TOOLS / "kube-score"))
    ap.add_argument("--checkov", help="path to a checkov binary")
    ap.add_argument("--no-checkov", action="store_true", help="skip Checkov (minutes per corpus)")
    ap.add_argument("--only", help="comma-separated corpora: operator, monitoring, pss, one-file")
    ap.add_argument("--keep", help="write the generated corpora here instead of a temporary folder")
    ap.add_argument("--baseline", metavar="SRC",
                    help="also run the kubeward whose package is under SRC (e.g. another checkout's src/), for a "
                    "before/after row")
    args = ap.parse_args()
    if not Path(args.kube_score).exists():
        sys.exit(f"no kube-score at {args.kube_score}: GOBIN={TOOLS} go install "
                 "github.com/zegl/kube-score/cmd/kube-score@latest")
    checkov = None if args.no_checkov else find_checkov(args.checkov)
    if not args.no_checkov and checkov is None:
        sys.exit("no checkov found (pip install checkov into a virtualenv, --checkov PATH, or --no-checkov)")
    kubeward = kubeward_binary()
    # An installed kubeward runs from compiled bytecode (pip compiles on install); a source checkout under
    # PYTHONDONTWRITEBYTECODE would compile every module on every run and measure the compiler instead.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path.home() / ".cache" / "kubeward" / "pycache"))
    measure_once([kubeward, "--version"])  # warm: the bytecode cache and the page cache
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = fh.read().split()[0]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kubeward-bench-"))
    if args.keep:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
    makers: dict[str, Callable[[Path], Path]] = {
        "operator": make_operator, "monitoring": make_monitoring, "pss": lambda _: pss_corpus(),
        "one-file": make_one_file}
    wanted = args.only.split(",") if args.only else list(makers)
    no_exceptions = root / "no-exceptions.yaml"  # an empty exceptions file: no ./.kubeward.yaml applies
    no_exceptions.write_text("")
    print(f"kubeward {kubeward} (cpu count {os.cpu_count()}, python {sys.version.split()[0]}, "
          f"load average {load})")
    failed: list[str] = []
    try:
        for name in wanted:
            corpus = makers[name](root)
            n_lines, n_files = lines_and_files(corpus)
            cmds: dict[str, list[str]] = {
                "kubeward scan -o json": [kubeward, "scan", str(corpus), "-o", "json", "--exceptions", str(no_exceptions),
                                          "--output", os.devnull],
                "kube-score score -o json": [args.kube_score, "score", "-o", "json", *yaml_files(corpus)],
            }
            if args.baseline:
                cmds["kubeward scan -o json (baseline)"] = ["env", f"PYTHONPATH={args.baseline}",
                                                            *cmds["kubeward scan -o json"]]
            if name == "one-file":
                cmds["kubeward --version"] = [kubeward, "--version"]
                cmds["python3 -c pass (interpreter)"] = [sys.executable, "-c", "pass"]
            results = best_of(cmds, args.repeat * (4 if name == "one-file" else 1))
            if checkov is not None:
                flag = "-f" if corpus.is_file() else "-d"
                results["checkov --framework kubernetes"] = measure_once(
                    [checkov, flag, str(corpus), "--framework", "kubernetes", "-o", "json", "--quiet"])
            print(f"\n{name}: {n_lines:,} lines in {n_files:,} files")
            print(f"  {'':<34} {'wall':>9} {'cpu':>9} {'peak RSS':>10}")
            for tool, (wall, cpu, rss) in results.items():
                print(f"  {tool:<34} {wall * 1000:7.0f} ms {cpu * 1000:6.0f} ms {rss:7.1f} MB")
            kw, kw_cpu = results["kubeward scan -o json"][:2]
            ks, ks_cpu = results["kube-score score -o json"][:2]
            verdict = "met" if kw <= ks else "NOT met"
            cpu_ratio = f"{kw_cpu / ks_cpu:.2f}x" if ks_cpu > 0 else "n/a (kube-score under 10 ms)"
            print(f"  kubeward / kube-score wall: {kw / ks:.2f}x   (target <= 1x: {verdict}); cpu: {cpu_ratio}")
            if kw > ks:
                failed.append(f"{name}: kube-score")
            if "checkov --framework kubernetes" in results:
                ck = results["checkov --framework kubernetes"][0]
                verdict = "met" if ck / kw >= 50 else "NOT met"
                print(f"  checkov / kubeward wall: {ck / kw:.1f}x faster   (target >= 50x: {verdict})")
                if ck / kw < 50:
                    failed.append(f"{name}: checkov")
            if name == "one-file":
                verdict = "met" if kw < 0.060 else "NOT met"
                print(f"  one-file scan: {kw * 1000:.0f} ms   (target < 60 ms: {verdict})")
                if kw >= 0.060:
                    failed.append("one-file: 60 ms")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\ntargets not met: " + (", ".join(failed) if failed else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
