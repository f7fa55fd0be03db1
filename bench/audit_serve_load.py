"""`audit serve` under hostile load, on loopback only: the real CLI as a child process (TLS with a client CA), fed
EventList batches by keep-alive clients while attackers do their worst. Every case has a bounded request count and
a time limit, and the script stops by itself.

Cases:
  baseline     4 keep-alive clients posting batches of 100 events (10 of which raise an alert)
  slow-client  the same, while 300 connections trickle their headers one byte every 0.5 s (slowloris), kept up past
               the 5 s header deadline to count the connections the server closed
  big-body     the same, while 12 clients announce 60 MB bodies over and over, and 2 post 4 MB bodies (the limit)
  blocked-sink the same, with the stdout sink (queue 1000) on a pipe nobody reads; a file sink gets every alert

For each: requests/s and events/s, p50/p99 request latency, the server's peak RSS, and alerts lost per sink
(expected alerts minus alerts written), next to the server's own drop counter for that sink.

    python bench/audit_serve_load.py                       # every case, 1500 batches each
    python bench/audit_serve_load.py --requests 500 --cases baseline,blocked-sink
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EVENTS_PER_BATCH = 100
ALERTS_PER_BATCH = 10
CLIENTS = 4
CASE_TIME_LIMIT = 120.0
HEADER_TIMEOUT = 5.0
STALL_AFTER = 2.0


# --- certificates -----------------------------------------------------------------------------------------------
def _pki(tmp: Path) -> dict[str, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    out = {"ca": tmp / "ca.crt"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cn, server in (("server", True), ("apiserver", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=2))
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                   else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        out[f"{cn}.crt"], out[f"{cn}.key"] = tmp / f"{cn}.crt", tmp / f"{cn}.key"
        out[f"{cn}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{cn}.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return out


# --- load -------------------------------------------------------------------------------------------------------
def _batch(n: int) -> bytes:
    items = []
    for i in range(EVENTS_PER_BATCH):
        alert = i < ALERTS_PER_BATCH
        items.append({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"b{n}-{i}",
            "stage": "ResponseComplete", "verb": "get" if alert else "update",
            "requestURI": "/api/v1/namespaces/shop/secrets/db" if alert else
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler",
            "user": {"username": "jane@example.com" if alert else "system:kube-scheduler",
                     "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.9"], "userAgent": "kubectl/v1.30.2 (linux/amd64)",
            "objectRef": ({"resource": "secrets", "namespace": "shop", "name": "db", "apiVersion": "v1"} if alert
                          else {"resource": "leases", "namespace": "kube-system", "name": "kube-scheduler",
                                "apiGroup": "coordination.k8s.io", "apiVersion": "v1"}),
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
            "stageTimestamp": "2024-05-01T10:00:00.002000Z"})
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})


def _client_ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.load_cert_chain(str(pki["apiserver.crt"]), str(pki["apiserver.key"]))
    return ctx


def _load(port: int, ctx: ssl.SSLContext, requests: int, deadline: float) -> tuple[list[float], int, float]:
    """CLIENTS keep-alive connections share `requests` batches; returns latencies, failures, wall time."""
    lat: list[float] = []
    failures = [0]
    counter = iter(range(requests))
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body = _batch(n)
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/audit", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
            dt_ = time.perf_counter() - t0
            with lock:
                if ok:
                    lat.append(dt_)
                else:
                    failures[0] += 1
        conn.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, failures[0], time.monotonic() - t0


class Attack:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stats = {"opened": 0, "closed_by_server": 0, "refused_413": 0}
        self._lock = threading.Lock()

    def bump(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def start(self, target: Any, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=target, args=(self,), daemon=True)
            t.start()
            self.threads.append(t)

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


def _slowloris(port: int, ctx: ssl.SSLContext) -> Any:
    def run(a: Attack) -> None:
        while not a.stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=5)
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            except OSError:
                a.bump("closed_by_server")  # refused over the connection cap, or the handshake deadline
                a.stop.wait(0.5)
                continue
            a.bump("opened")
            line = b"POST /audit HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
            try:
                for i in range(len(line)):
                    s.send(line[i:i + 1])
                    if a.stop.wait(0.5):
                        break
            except OSError:
                a.bump("closed_by_server")
            s.close()
    return run


def _bigbody(port: int, ctx: ssl.SSLContext, announce: int) -> Any:
    def run(a: Attack) -> None:
        while not a.stop.is_set():
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                c.putrequest("POST", "/audit")
                c.putheader("Content-Length", str(announce))
                c.endheaders()
                c.send(b"x" * 65536)
                r = c.getresponse()
                if r.status == 413:
                    a.bump("refused_413")
                c.close()
            except OSError:
                a.bump("closed_by_server")
            a.stop.wait(0.05)
    return run


def _at_limit(port: int, ctx: ssl.SSLContext, size: int) -> Any:
    pad = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [],
                        "metadata": {"x": "p" * (size - 200)}})

    def run(a: Attack) -> None:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        while not a.stop.is_set():
            try:
                c.request("POST", "/audit", body=pad)
                c.getresponse().read()
                a.bump("opened")
            except OSError:
                c.close()
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    return run


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _health(port: int, ctx: ssl.SSLContext) -> tuple[int, dict[str, Any]]:
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", "/healthz")
    r = c.getresponse()
    body = orjson.loads(r.read())
    c.close()
    return r.status, body


def run_case(case: str, requests: int, pki: dict[str, Path], tmp: Path) -> dict[str, Any]:
    alert_file = tmp / f"{case}.jsonl"
    argv = [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--host", "127.0.0.1", "--port", "0",
            "--tls-cert", str(pki["server.crt"]), "--tls-key", str(pki["server.key"]), "--client-ca",
            str(pki["ca"]), "--alert-file", str(alert_file), "--header-timeout", str(HEADER_TIMEOUT), "--stall-after", str(STALL_AFTER),
            "--shutdown-timeout", "3"]
    # blocked-sink: a 1000-alert queue in front of a stdout pipe nobody reads; the file sink must still get all
    argv += ["--alert-format", "json", "--queue-size", "1000"] if case == "blocked-sink" else ["--alert-format", "none"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # stdout is read only at the end
    assert proc.stderr is not None and proc.stdout is not None
    first = proc.stderr.readline().decode()
    m = re.search(r"https://127\.0\.0\.1:(\d+)", first)
    if not m:
        proc.kill()
        raise SystemExit(f"audit serve did not start: {first}")
    port = int(m.group(1))
    err: list[bytes] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    ctx = _client_ctx(pki)
    attack = Attack()
    if case == "slow-client":
        attack.start(_slowloris(port, ctx), 300)
        time.sleep(1.0)
    elif case == "big-body":
        attack.start(_bigbody(port, ctx, 60 * 1024 * 1024), 12)
        attack.start(_at_limit(port, ctx, 4 * 1024 * 1024 - 1024), 2)
        time.sleep(0.5)
    deadline = time.monotonic() + CASE_TIME_LIMIT
    started = time.monotonic()
    lat, failures, wall = _load(port, ctx, requests, deadline)
    if case == "slow-client":
        time.sleep(max(0.0, started + HEADER_TIMEOUT + 2.5 - time.monotonic()))
    if case == "blocked-sink":
        time.sleep(max(0.0, started + STALL_AFTER + 1.0 - time.monotonic()))  # long enough to count as stuck
    try:
        health = _health(port, ctx)  # a new connection: refused while attackers hold every slot
    except OSError:
        health = (0, {})
    attack.end()
    rss = _peak_rss_mib(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout_bytes = b""
    if case == "blocked-sink":
        time.sleep(0.2)
        os.set_blocking(proc.stdout.fileno(), False)
        chunks = []
        while True:
            try:
                chunk = proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        stdout_bytes = b"".join(chunks)
    rc = proc.wait(30)
    stop_s = time.monotonic() - t0
    time.sleep(0.1)
    text = b"".join(err).decode(errors="replace")
    expected = len(lat) * ALERTS_PER_BATCH
    file_alerts = sum(1 for _ in alert_file.open("rb")) if alert_file.exists() else 0
    lat.sort()
    out: dict[str, Any] = {
        "case": case, "ok": len(lat), "failed": failures, "rps": len(lat) / wall,
        "eps": len(lat) * EVENTS_PER_BATCH / wall, "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "peak_rss_mib": rss, "stop_s": stop_s, "rc": rc, "expected_alerts": expected,
        "file_lost": expected - file_alerts, "health": health[0], "attack": dict(attack.stats),
        "summary": next((x for x in text.splitlines() if " events, " in x), ""),
    }
    m2 = re.search(r"stdout: alerts: (\d+) dropped", text)
    if case == "blocked-sink":
        written = stdout_bytes.count(b"\n")
        out["stdout_lost"] = expected - written
        out["stdout_dropped_counter"] = int(m2.group(1)) if m2 else 0
    m3 = re.search(r"(\d+) connections over --max-connections", text)
    out["rejected_connections"] = int(m3.group(1)) if m3 else 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1500, help="batches per case (each 100 events)")
    ap.add_argument("--cases", default="baseline,slow-client,big-body,blocked-sink")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kw-serve-bench-") as d:
        tmp = Path(d)
        pki = _pki(tmp)
        print(f"{'case':<13} {'batches':>7} {'req/s':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'peak MiB':>8} {'lost(file)':>10} {'lost(stdout)/counter':>21} {'healthz':>7} {'stop s':>6}")
        for case in args.cases.split(","):
            r = run_case(case.strip(), args.requests, pki, tmp)
            so = f"{r['stdout_lost']}/{r['stdout_dropped_counter']}" if "stdout_lost" in r else "-"
            print(f"{r['case']:<13} {r['ok']:>7} {r['rps']:>7.0f} {r['eps']:>9.0f} {r['p50_ms']:>7.1f} "
                  f"{r['p99_ms']:>7.1f} {r['peak_rss_mib']:>8.0f} {r['file_lost']:>10} {so:>21} "
                  f"{r['health']:>7} {r['stop_s']:>6.1f}")
            extra = {k: r[k] for k in ("failed", "rc", "rejected_connections") if r[k]}
            if any(r["attack"].values()):
                extra["attack"] = r["attack"]
            if extra:
                print(f"{'':<13} {orjson.dumps(extra).decode()}")
            print(f"{'':<13} server: {r['summary'].removeprefix('kubeward: ')}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
