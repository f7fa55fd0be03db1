"""`admission serve` under load, on loopback only: the real CLI as a child process (HTTPS with a kubeward PKI
certificate), sent AdmissionReview v1 requests over keep-alive connections, as the apiserver reuses its
connections. A realistic mix: compliant and privileged Pods, Deployments, RoleBindings and ClusterRoleBindings.

Phases (each bounded by a request count and a time limit):
  throughput   CLIENTS keep-alive clients as fast as the server answers: reviews/s sustained
  paced        one review every 1/RATE s (open loop, 300/s by default): p50/p99/max latency
  memory       the server's RSS after the warm-up and after --memory-reviews more reviews (flat means no growth)

    python bench/admission_load.py                               # 20,000 / 3,000 / 100,000 reviews
    python bench/admission_load.py --reviews 2000 --paced 600 --memory-reviews 5000
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CLIENTS = 4
PHASE_LIMIT = 300.0


def _pki(tmp: Path) -> tuple[Path, Path, Path]:
    from kubeward.pki.files import cert_pem, key_pem
    from kubeward.pki.issue import SERVER_AUTH, AltNames, LeafSpec, new_ca, new_key, sign_leaf

    ca_key = new_key("ecdsa")
    ca = new_ca("bench-ca", ca_key)
    key = new_key("ecdsa")
    alt = AltNames()
    alt.add(["127.0.0.1"])
    leaf = sign_leaf(LeafSpec("kubeward-admission", usages=(SERVER_AUTH,), alt=alt), key, ca, ca_key)
    out = tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key"
    out[0].write_bytes(cert_pem(ca))
    out[1].write_bytes(cert_pem(leaf))
    out[2].write_bytes(key_pem(key))
    os.chmod(out[2], 0o600)
    return out


def _objects() -> list[dict[str, Any]]:
    good_spec = {"automountServiceAccountToken": False, "serviceAccountName": "app",
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "app", "image": "registry.example.com/app@sha256:" + "a" * 64,
                                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                               "requests": {"cpu": "1", "memory": "1Gi"}},
                                 "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                     "runAsUser": 10001, "capabilities": {"drop": ["ALL"]}}}]}
    bad_spec = {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]}
    meta = {"name": "x", "namespace": "team"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    rbac = "rbac.authorization.k8s.io"
    return [
        {**pod, "spec": good_spec}, {**pod, "spec": good_spec}, {**pod, "spec": bad_spec},
        {**dep, "spec": {"replicas": 2, "template": {"metadata": {"labels": {"a": "b"}}, "spec": good_spec}}},
        {**dep, "spec": {"replicas": 2, "template": {"metadata": {"labels": {"a": "b"}}, "spec": bad_spec}}},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "reader"}, "subjects": [{"kind": "User", "name": "a"}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "User", "name": "bob"}]},
    ]


def _bodies() -> list[bytes]:
    out = []
    for i, obj in enumerate(_objects()):
        ns = obj["metadata"].get("namespace", "")
        out.append(orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": f"bench-{i}", "operation": "CREATE", "namespace": ns, "object": obj,
            "userInfo": {"username": "bench", "groups": ["system:authenticated"]}}}))
    return out


class Client:
    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)

    def review(self, body: bytes) -> float:
        t = time.perf_counter()
        self.conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200 or b'"response"' not in data:
            raise SystemExit(f"bad answer: {r.status} {data[:200]!r}")
        return time.perf_counter() - t


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else 0.0


def throughput(port: int, ctx: ssl.SSLContext, bodies: list[bytes], n: int) -> tuple[float, float]:
    per = n // CLIENTS
    lat: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + PHASE_LIMIT

    def work(k: int) -> None:
        c = Client(port, ctx)
        mine = []
        for i in range(per):
            if time.monotonic() > deadline:
                break
            mine.append(c.review(bodies[(i + k) % len(bodies)]))
        with lock:
            lat.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    return len(lat) / took, _pct(lat, 0.99)


def paced(port: int, ctx: ssl.SSLContext, bodies: list[bytes], n: int, rate: float) -> dict[str, float]:
    """Open loop over 4 connections: request i is due at start + i/rate; latency counts from when it was due."""
    lat: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    deadline = time.monotonic() + PHASE_LIMIT

    def work(k: int) -> None:
        c = Client(port, ctx)
        mine = []
        for i in range(k, n, CLIENTS):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() > deadline:
                break
            c.review(bodies[i % len(bodies)])
            mine.append(time.perf_counter() - due)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"n": len(lat), "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "max": max(lat, default=0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=int, default=20000)
    ap.add_argument("--paced", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--memory-reviews", type=int, default=100000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca, crt, key = _pki(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen([sys.executable, "-m", "kubeward.cli.main", "admission", "serve", "--port", "0",
                                 "--tls-cert", str(crt), "--tls-key", str(key)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert proc.stderr is not None
            m = re.search(r":(\d+)/validate", proc.stderr.readline().decode())
            if not m:
                raise SystemExit("admission serve did not start")
            port = int(m.group(1))
            ctx = ssl.create_default_context(cafile=str(ca))
            bodies = _bodies()
            throughput(port, ctx, bodies, 2000)  # warm-up: modules, caches
            rss0 = _rss_kib(proc.pid)
            rps, p99 = throughput(port, ctx, bodies, args.reviews)
            print(f"throughput  {args.reviews} reviews, {CLIENTS} keep-alive clients: {rps:,.0f} reviews/s "
                  f"(p99 {p99 * 1e3:.1f} ms)")
            r = paced(port, ctx, bodies, args.paced, args.rate)
            print(f"paced       {r['n']:.0f} reviews at {args.rate:.0f}/s: p50 {r['p50'] * 1e3:.1f} ms, "
                  f"p99 {r['p99'] * 1e3:.1f} ms, max {r['max'] * 1e3:.1f} ms")
            rss1 = _rss_kib(proc.pid)
            throughput(port, ctx, bodies, args.memory_reviews)
            rss2 = _rss_kib(proc.pid)
            print(f"memory      RSS {rss0 / 1024:.1f} MiB after warm-up, {rss1 / 1024:.1f} MiB after "
                  f"{args.reviews + args.paced:,}, {rss2 / 1024:.1f} MiB after {args.memory_reviews:,} more")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
