"""`admission serve` in-process: AdmissionReviews over HTTPS, bad bodies, health, metrics, certificate reload."""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from admission_certs import webhook_pki

from kubeward.admission.decide import Decider
from kubeward.admission.namespaces import NamespaceCache
from kubeward.admission.server import AdmissionServer
from kubeward.httpserve import ReloadingTLS

PRIV = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": True}}]}}


def review(obj: Any, uid: str = "u1") -> bytes:
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "request": {"uid": uid, "operation": "CREATE", "namespace": "team", "object": obj,
                                     "userInfo": {"username": "jane"}}})


class Running:
    def __init__(self, srv: AdmissionServer, ca: Path) -> None:
        self.srv, self.port = srv, srv.server_address[1]
        self.ctx = ssl.create_default_context(cafile=str(ca))

    def conn(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)

    def call(self, method: str, path: str, body: bytes | None = None,
             c: http.client.HTTPSConnection | None = None) -> tuple[int, bytes]:
        c = c or self.conn()
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    return webhook_pki(tmp_path)


def _start(pki: tuple[Path, Path, Path], cache: NamespaceCache | None = None, **kw: Any) -> Iterator[Running]:
    ca, crt, key = pki
    cache = cache or NamespaceCache({"relaxed": {"kubeward.io/enforce": "none"}})
    tls = ReloadingTLS(str(crt), str(key), every=0.0)
    srv = AdmissionServer(("127.0.0.1", 0), Decider(namespaces=cache), cache=cache, tls=tls, **kw)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield Running(srv, ca)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@pytest.fixture
def server(pki: tuple[Path, Path, Path]) -> Iterator[Running]:
    cache = NamespaceCache({"relaxed": {"kubeward.io/enforce": "none"}})
    cache.replace({})
    yield from _start(pki, cache, max_body=256 * 1024, header_timeout=1.0, request_timeout=2.0)


def test_reviews_over_https_with_connection_reuse(server: Running) -> None:
    c = server.conn()
    code, body = server.call("POST", "/validate", review(PRIV, "a"), c)
    resp = orjson.loads(body)["response"]
    assert code == 200 and resp["uid"] == "a" and resp["allowed"] is False and "KW-W001" in resp["status"]["message"]
    relaxed = {**PRIV, "metadata": {"name": "p", "namespace": "relaxed"}}
    code, body = server.call("POST", "/validate", review(relaxed, "b"), c)  # same connection
    resp = orjson.loads(body)["response"]
    assert code == 200 and resp["allowed"] is True and any(w.startswith("KW-W001") for w in resp["warnings"])


def test_bad_bodies_get_400_and_the_server_goes_on(server: Running) -> None:
    for body in (b"{", b"[]", orjson.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                                             "request": {"uid": "x"}})):
        code, out = server.call("POST", "/validate", body)
        assert code == 400 and orjson.loads(out)["error"]
    c = server.conn()  # the body is never read: announce it only
    c.putrequest("POST", "/validate")
    c.putheader("Content-Length", str(300 * 1024))
    c.endheaders()
    assert c.getresponse().status == 413
    code, _ = server.call("POST", "/elsewhere", review(PRIV))
    assert code == 404
    code, out = server.call("POST", "/validate", review(PRIV))
    assert code == 200 and orjson.loads(out)["response"]["allowed"] is False


def test_health_ready_and_metrics(pki: tuple[Path, Path, Path]) -> None:
    cache = NamespaceCache()
    for run in _start(pki, cache):
        assert run.call("GET", "/healthz")[0] == 200
        assert run.call("GET", "/readyz")[0] == 503  # the namespace cache has not listed yet
        cache.replace({})
        assert run.call("GET", "/readyz")[0] == 200
        run.call("POST", "/validate", review(PRIV))
        run.call("POST", "/validate", b"nope")
        code, text = run.call("GET", "/metrics")
        lines = text.decode().splitlines()
        assert code == 200
        assert 'kubeward_admission_reviews_total{decision="denied"} 1.0' in lines
        assert 'kubeward_admission_findings_total{control="KW-W001",mode="deny"} 1.0' in lines
        assert 'kubeward_admission_bad_requests_total{reason="not-json"} 1.0' in lines
        assert "kubeward_admission_review_duration_seconds_count 1.0" in lines
        assert 'kubeward_admission_review_duration_seconds_bucket{le="+Inf"} 1.0' in lines
        assert "# TYPE kubeward_admission_reviews_total counter" in lines
        assert run.srv.metrics.reviews == {"denied": 1} and run.srv.metrics.errors == {"not-json": 1}


def test_each_server_counts_only_its_own_reviews(pki: tuple[Path, Path, Path]) -> None:
    """A registry per server: two servers in one process do not collide, and nothing lands in the global one."""
    from prometheus_client import REGISTRY

    for one in _start(pki):
        for two in _start(pki):
            one.call("POST", "/validate", review(PRIV))
            one.call("POST", "/validate", review(PRIV))
            two.call("POST", "/validate", review(PRIV))
            assert one.srv.metrics.reviews == {"denied": 2} and two.srv.metrics.reviews == {"denied": 1}
            assert 'kubeward_admission_reviews_total{decision="denied"} 1.0' in two.call("GET", "/metrics")[1].decode()
    assert REGISTRY.get_sample_value("kubeward_admission_reviews_total", {"decision": "denied"}) is None


def test_certificate_is_reloaded_without_restart(pki: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _ca, crt, key = pki
    for run in _start(pki):
        def served_serial(run: Running = run) -> int:
            c = run.conn()
            c.connect()
            der = c.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            c.close()
            from cryptography import x509
            return x509.load_der_x509_certificate(der).serial_number

        first = served_serial()
        new = tmp_path / "new"
        new.mkdir()
        # a new leaf from a new CA: trust both so the client accepts either
        ca2, crt2, key2 = webhook_pki(new)
        run.ctx.load_verify_locations(str(ca2))
        os.replace(crt2, crt)
        os.replace(key2, key)
        deadline = time.monotonic() + 5
        while served_serial() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served_serial() != first
        assert run.srv.tls is not None and run.srv.tls.reloads >= 1  # type: ignore[attr-defined]


def test_half_written_certificate_keeps_the_previous_one(pki: tuple[Path, Path, Path]) -> None:
    _ca, crt, key = pki
    problems: list[str] = []
    tls = ReloadingTLS(str(crt), str(key), every=0.0, on_problem=problems.append)
    before = tls()
    crt.write_bytes(crt.read_bytes()[:100])
    assert tls() is before and problems and "keeping the previous" in problems[0]


def test_namespace_cache_events() -> None:
    cache = NamespaceCache({"offline": {"a": "b"}})
    assert cache.labels("offline") == {"a": "b"} and not cache.synced
    cache.replace({"x": {"kubeward.io/enforce": "low"}})
    cache.apply("MODIFIED", "x", {"kubeward.io/enforce": "none"})
    cache.apply("ADDED", "y", {})
    cache.apply("DELETED", "y", {})
    assert cache.synced and cache.labels("x") == {"kubeward.io/enforce": "none"} and cache.labels("y") is None


def test_a_defect_in_a_decision_is_a_500_and_the_server_goes_on(server: Running) -> None:
    problems: list[str] = []
    server.srv.on_problem = problems.append
    real = server.srv.decider.decide

    def broken(request: dict[str, Any], origin: Any = None) -> Any:
        if request["uid"] == "boom":
            raise KeyError("x")
        return real(request, origin)

    server.srv.decider.decide = broken  # type: ignore[method-assign]
    c = server.conn()
    code, out = server.call("POST", "/validate", review(PRIV, "boom"), c)
    assert code == 500 and orjson.loads(out)["error"] and "KeyError" in problems[0]
    code, out = server.call("POST", "/validate", review(PRIV, "fine"), c)  # same connection, still served
    assert code == 200 and orjson.loads(out)["response"]["uid"] == "fine"


def test_a_trickling_client_does_not_hold_up_reviews(server: Running) -> None:
    import socket

    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"\x16\x03\x01")  # the start of a TLS hello, then nothing
    t = time.monotonic()
    code, _ = server.call("POST", "/validate", review(PRIV))
    assert code == 200 and time.monotonic() - t < 2.0
    slow.settimeout(5)
    assert slow.recv(1024) == b""  # closed at the header deadline (1 s here)
    slow.close()


def test_client_ca_requires_and_verifies_client_certificates(pki: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """--client-ca: a certificate the CA signed is served; none, or one from another CA, is refused at the
    handshake; a new CA file is picked up without a restart (ReloadingTLS watches it as it does the pair)."""
    from admission_certs import client_pki

    ca, crt, key = pki
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    client_ca, client_crt, client_key = client_pki(tmp_path / "a")
    other_ca, other_crt, other_key = client_pki(tmp_path / "b")
    trusted = tmp_path / "client-ca.crt"
    trusted.write_bytes(client_ca.read_bytes())
    cache = NamespaceCache()
    cache.replace({})
    tls = ReloadingTLS(str(crt), str(key), str(trusted), every=0.0)
    srv = AdmissionServer(("127.0.0.1", 0), Decider(namespaces=cache), cache=cache, tls=tls, header_timeout=2.0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    port = srv.server_address[1]

    def call(cert: Path | None, keyfile: Path | None) -> int:
        ctx = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(keyfile))
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        try:
            c.request("POST", "/validate", body=review(PRIV), headers={"Content-Type": "application/json"})
            return c.getresponse().status
        except (ssl.SSLError, ConnectionError):
            return 0  # refused in the handshake (TLS 1.3 reports it on the first read)
        finally:
            c.close()

    try:
        assert call(client_crt, client_key) == 200
        assert call(None, None) == 0
        assert call(other_crt, other_key) == 0
        trusted.write_bytes(other_ca.read_bytes())  # rotate the client CA
        deadline = time.monotonic() + 5
        while call(other_crt, other_key) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert call(other_crt, other_key) == 200 and call(client_crt, client_key) == 0
        assert srv.metrics.reviews == {"denied": 3}  # only the verified clients reached a decision
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
