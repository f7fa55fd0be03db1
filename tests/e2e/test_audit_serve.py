"""`kubeward audit serve` as a real HTTPS audit webhook backend on loopback, fed EventList batches the way
kube-apiserver's webhook backend sends them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.e2e


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeward-audit-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    c, k = tmp / "tls.crt", tmp / "tls.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def ev(i: int, **over: Any) -> dict[str, Any]:
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": f"a{i}",
         "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/web/pods", "verb": "create",
         "user": {"username": "jane", "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
         "objectRef": {"resource": "pods", "namespace": "web", "name": f"p{i}", "apiVersion": "v1"},
         "responseStatus": {"code": 201}, "stageTimestamp": "2024-05-01T10:00:00Z",
         "requestObject": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}}
    e.update(over)
    return e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, subprocess.Popen[str], Path]]:
    cert, key = self_signed(tmp_path)
    alerts_file = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--host", "127.0.0.1", "--port", "0",
         "--tls-cert", str(cert), "--tls-key", str(key), "--insecure-no-client-auth", "--alert-format", "json",
         "--alert-file", str(alerts_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"https://127\.0\.0\.1:(\d+)", line)
    assert m, line
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        yield f"https://127.0.0.1:{m.group(1)}", ctx, proc, alerts_file
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def post(url: str, ctx: ssl.SSLContext, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_receives_eventlists_and_alerts(server: Any) -> None:
    url, ctx, proc, alerts_file = server
    with urllib.request.urlopen(url + "/healthz", context=ctx, timeout=10) as r:
        assert r.status == 200
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
             "items": [ev(1), ev(2, requestObject={"spec": {"containers": [{"name": "c"}]}}),
                       ev(3, verb="get", objectRef={"resource": "secrets", "namespace": "web", "name": "db"},
                          requestObject=None, responseStatus={"code": 200})]}
    assert post(url + "/audit", ctx, json.dumps(batch).encode()) == (200, {"events": 3})
    assert post(url + "/audit", ctx, b"{not json")[0] == 400
    assert post(url + "/audit", ctx, json.dumps({"kind": "Pod"}).encode())[0] == 400
    batch2 = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev(4)]}
    assert post(url, ctx, json.dumps(batch2).encode()) == (200, {"events": 1})

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    alerts = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert sorted((a["auditID"], a["rule"]) for a in alerts) == [
        ("a1", "privileged-pod"), ("a3", "secret-read"), ("a4", "privileged-pod")]
    assert [json.loads(x) for x in alerts_file.read_text().splitlines()] == alerts
    assert "4 events, 3 alerts" in err and "Traceback" not in err


def test_serve_rejects_plain_http_and_survives(server: Any) -> None:
    url, ctx, proc, _ = server
    plain = url.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(plain + "/healthz", timeout=5)
    time.sleep(0.1)
    with urllib.request.urlopen(url + "/healthz", context=ctx, timeout=10) as r:
        assert r.status == 200
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err


def test_serve_bad_certificate_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    r = subprocess.run([sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--port", "0",
                        "--tls-cert", str(bad), "--tls-key", str(bad), "--insecure-no-client-auth"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith(f"kubeward: {bad}: cannot load"), r.stderr
    assert r.returncode == 2 and r.stderr.startswith("kubeward: ") and len(r.stderr.strip().splitlines()) == 1


def test_serve_refuses_oversized_bodies(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--host", "127.0.0.1", "--port", "0",
         "--tls-cert", str(cert), "--tls-key", str(key), "--insecure-no-client-auth", "--max-body", "1K",
         "--alert-format", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        m = re.search(r":(\d+)$", proc.stderr.readline().strip())
        assert m
        url = f"https://127.0.0.1:{m.group(1)}/"
        ctx = ssl.create_default_context(cafile=str(cert))
        big = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev(i) for i in range(20)]}
        assert post(url, ctx, json.dumps(big).encode())[0] == 413
        small = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}
        assert post(url, ctx, json.dumps(small).encode()) == (200, {"events": 0})
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err


def _issue(ca_key: Any, ca_name: x509.Name, cn: str, tmp: Path, server: bool) -> tuple[Path, Path]:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                               else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    c, k = tmp / f"{cn}.crt", tmp / f"{cn}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def test_serve_mtls_and_tls_alert_webhook(tmp_path: Path) -> None:
    """The apiserver side presents a client certificate; alerts go on to an HTTPS receiver trusted via a CA file."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    srv_crt, srv_key = _issue(ca_key, ca_name, "audit-server", tmp_path, server=True)
    rcv_crt, rcv_key = _issue(ca_key, ca_name, "receiver", tmp_path, server=True)
    cli_crt, cli_key = _issue(ca_key, ca_name, "kube-apiserver", tmp_path, server=False)

    received: list[Any] = []

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    rcv = HTTPServer(("127.0.0.1", 0), Receiver)
    rctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    rctx.load_cert_chain(str(rcv_crt), str(rcv_key))
    rcv.socket = rctx.wrap_socket(rcv.socket, server_side=True)
    threading.Thread(target=rcv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeward.cli.main", "audit", "serve", "--host", "127.0.0.1", "--port", "0",
         "--tls-cert", str(srv_crt), "--tls-key", str(srv_key), "--client-ca", str(ca_file),
         "--alert-format", "none", "--alert-webhook", f"https://127.0.0.1:{rcv.server_address[1]}/hook",
         "--alert-webhook-ca", str(ca_file), "--slack"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        m = re.search(r":(\d+)$", proc.stderr.readline().strip())
        assert m
        url = f"https://127.0.0.1:{m.group(1)}/"
        body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev(1)]}).encode()
        anonymous = ssl.create_default_context(cafile=str(ca_file))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
            post(url, anonymous, body)  # no client certificate: the handshake is refused
        mutual = ssl.create_default_context(cafile=str(ca_file))
        mutual.load_cert_chain(str(cli_crt), str(cli_key))
        assert post(url, mutual, body) == (200, {"events": 1})
        deadline = time.monotonic() + 15
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        rcv.shutdown()
    assert proc.returncode == 0 and "Traceback" not in err
    assert len(received) == 1 and received[0]["text"].startswith("[high] privileged-pod")


def test_serve_picks_up_a_renewed_certificate(server: Any, tmp_path: Path) -> None:
    """cert-manager or a kubelet secret volume swaps the files: new connections get the new certificate."""
    url, _ctx, proc, _ = server
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])

    def serial() -> int:
        with socket.create_connection((host, port), timeout=10) as raw:
            plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            plain.check_hostname, plain.verify_mode = False, ssl.CERT_NONE
            with plain.wrap_socket(raw) as s:
                der = s.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    first = serial()
    new = tmp_path / "renewed"
    new.mkdir()
    cert, key = self_signed(new)
    old_cert = Path(proc.args[proc.args.index("--tls-cert") + 1])
    old_key = Path(proc.args[proc.args.index("--tls-key") + 1])
    os.replace(key, old_key)
    os.replace(cert, old_cert)
    deadline = time.monotonic() + 10
    while serial() == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert serial() != first
    assert proc.poll() is None
