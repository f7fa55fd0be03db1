"""Audit analysis throughput, end to end as a user runs it: generate 300,000 realistic audit events (~840 B each,
deterministic: seeded) to a temporary file, then time, as separate processes with start-up included,

- the parse floor: one Python process that imports orjson and calls `orjson.loads` on every line;
- `kubeward audit analyze FILE -o json` (every built-in detection, plus --allowed-cidr/--allowed-user-agent so the
  source rules run too);
- the same with `--workers N`.

The three take turns in each of --repeat rounds, so a slow spell of a shared machine falls on all of them alike;
best wall time and best CPU time (user + system from wait4, children included) of each; the ratios are what
compare. On a loaded machine CPU time moves much less than wall time.

    python bench/audit_throughput.py                       # 300,000 events, 5 rounds, 2 workers
    python bench/audit_throughput.py --events 100000 --repeat 3 --keep /tmp/a.log --alerts /tmp/a.json
    python bench/audit_throughput.py --src /base/src --src src      # two source trees, in alternating turns

With --src, each source tree runs as `python -m kubeward.cli.main` with that tree first on PYTHONPATH, and the
trees take turns inside each round with the floor, so a change is compared with its baseline under the same load;
--alerts FILE then keeps each tree's report as FILE.1, FILE.2, ... in --src order.
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
from pathlib import Path
from typing import Any

import orjson

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


FLOOR = ("import sys, orjson\nloads = orjson.loads\nn = 0\nwith open(sys.argv[1], 'rb') as f:\n"
         "    for line in f:\n        loads(line)\n        n += 1\nprint(n)\n")
# Every generated source IP and user agent is allowed: the source rules run on every event and stay quiet.
SOURCE_RULES = ["--allowed-cidr", "10.0.0.0/16", "--allowed-user-agent", "^(kube-controller-manager|kubelet|kubectl)/"]


def child_env(cache: str) -> dict[str, str]:
    """The children's environment: byte code cached (in `cache`) as an installed package has it, even where the
    shell sets PYTHONDONTWRITEBYTECODE; otherwise every run would compile kubeward's modules from source."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def measure_once(cmd: list[str], out: str | None, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall time, CPU time (user + system, children included, via wait4) and peak RSS (MiB) of one run; stdout goes
    to `out` (or is discarded). The runs pass `--fail-on none`, so anything but exit 0 (a missing install's
    ImportError exits 1 too) stops the benchmark rather than timing a failure."""
    start = time.perf_counter()
    with open(out or os.devnull, "wb") as sink, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            sys.exit(f"{cmd[0]} exited with {code}: {err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def kubeward_command(src: str | None = None) -> list[str]:
    """`kubeward` as installed beside this interpreter (the console script a user runs), else `python -m`; with a
    source tree always `python -m` (its env puts the tree on PYTHONPATH)."""
    if src is not None:
        return [sys.executable, "-m", "kubeward.cli.main"]
    beside = Path(sys.executable).parent / "kubeward"
    found = str(beside) if beside.exists() else shutil.which("kubeward")
    return [found] if found else [sys.executable, "-m", "kubeward.cli.main"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="FILE", help="Write the generated log here and keep it.")
    ap.add_argument("--alerts", metavar="FILE", help="Keep the one-core run's JSON report here (to compare runs).")
    ap.add_argument("--src", metavar="DIR", action="append",
                    help="Run kubeward from this source tree (repeat to compare trees in alternating turns).")
    args = ap.parse_args()
    path = args.keep or tempfile.mktemp(prefix="kubeward-audit-bench-", suffix=".log")
    try:
        t = time.perf_counter()
        size = generate(path, args.events)
        print(f"generated      {args.events:,} events, {size / 2**20:.1f} MiB, {size / args.events:.0f} B/event "
              f"({time.perf_counter() - t:.1f} s)")
        srcs: list[str | None] = [os.path.abspath(d) for d in args.src] if args.src else [None]
        cache = tempfile.mkdtemp(prefix="kubeward-audit-bench-pyc-")

        def env_of(src: str | None) -> dict[str, str]:
            env = child_env(cache)
            if src is not None:
                env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            return env

        def analyze(log: str, src: str | None) -> list[str]:
            return [*kubeward_command(src), "audit", "analyze", log, "-o", "json", "--fail-on", "none",
                    *SOURCE_RULES]

        runs: dict[str, tuple[list[str], str | None, dict[str, str]]] = {
            "floor": ([sys.executable, "-c", FLOOR, path], None, env_of(None))}
        labels: dict[str, str | None] = {}
        for i, src in enumerate(srcs, 1):
            tag = f"@{i}" if args.src else ""
            labels[tag] = src
            kw = analyze(path, src)
            out = (f"{args.alerts}.{i}" if args.src else args.alerts) if args.alerts else None
            runs["one" + tag] = (kw, out, env_of(src))
            if args.workers > 1:
                runs["workers" + tag] = ([*kw, "--workers", str(args.workers)], None, env_of(src))
        warm = path + ".warm"
        generate(warm, 2000)  # an untimed run on a small log compiles and caches every module the runs import
        for src in srcs:
            measure_once(analyze(warm, src), None, env_of(src))
        os.unlink(warm)
        best = {k: (float("inf"), float("inf"), 0.0) for k in runs}
        for _ in range(args.repeat):
            for k, (cmd, out, env) in runs.items():
                w, c, r = measure_once(cmd, out, env)
                b = best[k]
                best[k] = (min(b[0], w), min(b[1], c), max(b[2], r))
        n = args.events
        fw, fc, _ = best["floor"]
        print(f"parse floor    {n / fw:,.0f} events/s wall, {n / fc:,.0f} events/s CPU "
              f"(best of {args.repeat}: {fw:.2f} s wall, {fc:.2f} s CPU)")
        for tag, src in labels.items():
            if src is not None:
                print(f"source {tag:<7} {src}")
            ow, oc, orss = best["one" + tag]
            print(f"analyze 1 core{tag} {n / ow:,.0f} events/s wall, {n / oc:,.0f} events/s CPU ({ow:.2f} s, "
                  f"{oc:.2f} s) = {fw / ow:.0%} of the floor by wall, {fc / oc:.0%} by CPU; peak RSS {orss:.0f} MiB")
            if "workers" + tag in best:
                ww, wc, wrss = best["workers" + tag]
                print(f"analyze {args.workers} workers{tag} {n / ww:,.0f} events/s wall ({ww:.2f} s; {wc:.2f} s CPU "
                      f"in all) = {fw / ww:.0%} of the one-core floor by wall, {ow / ww:.2f}x one core; "
                      f"peak RSS {wrss:.0f} MiB")
        print(f"machine        {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
              f"{os.getloadavg()[0]:.1f} at the end")
    finally:
        if not args.keep and os.path.exists(path):
            os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
