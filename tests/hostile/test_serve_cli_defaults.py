"""`audit serve` as a process: safe defaults (loopback, client certificates required), SIGTERM with a stdout nobody
reads, and `audit watch` surviving malformed events."""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson
from click.testing import CliRunner

from kubeward.audit.analyzer import Analyzer
from kubeward.audit.reader import ReadStats
from kubeward.audit.watch import Follower, follow_events
from kubeward.cli.main import cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from test_audit_serve import ev, self_signed


def test_client_ca_is_required_unless_insecure(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    r = CliRunner().invoke(cli, ["audit", "serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key)])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("kubeward: audit serve: --client-ca is required")


def test_loopback_by_default() -> None:
    from kubeward.cli.audit import serve

    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_sigterm_with_a_stdout_nobody_reads(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--port", "0", "--tls-cert", str(cert),
         "--tls-key", str(key), "--insecure-no-client-auth", "--alert-format", "json", "--queue-size", "100",
         "--shutdown-timeout", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # stdout is never read
    err: list[bytes] = []
    assert proc.stderr is not None
    first = proc.stderr.readline()
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        m = re.search(rb"https://127\.0\.0\.1:(\d+)", first)
        assert m, first
        url = f"https://127.0.0.1:{m.group(1).decode()}/"
        ctx = ssl.create_default_context(cafile=str(cert))
        secret = {"verb": "get", "objectRef": {"resource": "secrets", "namespace": "a", "name": "s"},
                  "requestObject": None, "responseStatus": {"code": 200}}
        t0 = time.monotonic()
        for b in range(20):  # 4000 alerts: the pipe and the queue are full long before the end
            body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                               "items": [ev(b * 200 + i, **secret) for i in range(200)]}).encode()
            req = urllib.request.Request(url, data=body, method="POST")
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                assert r.status == 200
        assert time.monotonic() - t0 < 20
    finally:
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        took = time.monotonic() - t1
    time.sleep(0.2)
    text = b"".join(err).decode()
    assert rc == 0 and took < 5, (rc, took, text)  # SIGTERM could not stop it before
    assert "4000 events, 4000 alerts" in text and "dropped" in text and "Traceback" not in text


def test_watch_survives_a_malformed_event(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    good = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "g", "stage": "ResponseComplete",
            "verb": "get", "user": {"username": "jane"},
            "objectRef": {"resource": "secrets", "namespace": "a", "name": "s"}, "responseStatus": {"code": 200}}
    lines = [orjson.dumps({**good, "apiVersion": {}}), b"[1, 2]", orjson.dumps({**good, "auditID": "g2"}),
             orjson.dumps({"kind": "EventList", "items": [{**good, "apiVersion": []}, {**good, "auditID": "g3"}]})]
    log.write_bytes(b"\n".join(lines) + b"\n")
    stop = threading.Event()
    follower = Follower(str(log), from_start=True, poll=0.02, stop=stop)
    analyzer = Analyzer()
    got: list[str] = []
    rs = ReadStats()

    def on_event(e: dict) -> None:
        got.extend(a.audit_id for a in analyzer.feed(e))
        if e["auditID"] == "g2":
            raise RuntimeError("a sink broke")  # counted too

    t = threading.Thread(target=follow_events, args=(follower, rs, on_event))
    t.start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    t.join(5)
    assert not t.is_alive() and got == ["g2", "g3"]  # the first line killed the watch before
    assert rs.bad_lines == 4

