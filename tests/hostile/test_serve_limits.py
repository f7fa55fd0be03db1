"""`audit serve` against hostile clients and stuck outputs: bad events, big bodies, slowloris, too many
connections, Nagle stalls, a blocked stdout sink. In-process over plain HTTP on loopback (TLS is covered by
tests/e2e/test_audit_serve.py), every wait bounded."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kubeward.alertsinks import Alerting, StreamSink
from kubeward.audit.analyzer import Analyzer
from kubeward.audit.serve import AuditWebhookServer, make_server


def ev(i: int, **over: Any) -> dict[str, Any]:
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"a{i}", "stage": "ResponseComplete",
         "verb": "get", "user": {"username": "jane"}, "sourceIPs": ["10.0.0.9"],
         "objectRef": {"resource": "secrets", "namespace": "web", "name": f"s{i}"},
         "responseStatus": {"code": 200}, "stageTimestamp": "2024-05-01T10:00:00Z"}  # secret-read: one alert
    e.update(over)
    return e


def batch(*items: Any) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)})


class Running:
    def __init__(self, srv: AuditWebhookServer, alerts: list[Any]) -> None:
        self.srv, self.alerts = srv, alerts
        self.port = srv.server_address[1]

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def post(self, body: bytes, c: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, Any]]:
        c = c or self.conn()
        c.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, orjson.loads(r.read())


def start(**kw: Any) -> Iterator[Running]:
    alerts: list[Any] = []
    on_alert = kw.pop("on_alert", alerts.append)
    srv = make_server("127.0.0.1", 0, None, Analyzer(), on_alert, **kw)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield Running(srv, alerts)
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@pytest.fixture
def server() -> Iterator[Running]:
    yield from start(header_timeout=0.5, idle_timeout=1.0, request_timeout=2.0, max_connections=8,
                     max_body=64 * 1024)


def test_malformed_event_is_one_error_and_the_batch_goes_on(server: Running) -> None:
    # apiVersion {} made the reader raise (unhashable), which dropped the whole batch before
    items = [ev(1), ev(2, apiVersion={}), 5, {"kind": "EventList", "items": [ev(9)]}, ev(3, user=[1, 2]), ev(4)]
    code, body = server.post(batch(*items))
    assert code == 200 and body == {"events": 3, "errors": 3}
    assert sorted(a.audit_id for a in server.alerts) == ["a1", "a4"]
    assert server.srv.read_stats.bad_lines == 3
    assert len(server.srv.read_stats.errors) == 3  # named, and the list is bounded (ReadStats)
    code, _ = server.post(batch(ev(5)))  # and the server goes on
    assert code == 200


def test_a_failing_sink_costs_one_alert_not_the_batch() -> None:
    calls: list[str] = []

    def flaky(a: Any) -> None:
        calls.append(a.audit_id)
        if a.audit_id == "a1":
            raise RuntimeError("sink broke")

    for run in start(on_alert=flaky):
        assert run.post(batch(ev(1), ev(2)))[0] == 200
        assert calls == ["a1", "a2"] and run.srv.read_stats.bad_lines == 1


def test_oversized_bodies_are_refused_unread(server: Running) -> None:
    """Twelve clients announcing 60 MB each: refused from the headers, nothing is buffered."""
    results: list[int] = []

    def one() -> None:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 62914560\r\n\r\n" + b"x" * 65536)
        results.append(int(s.recv(4096).split(b" ")[1]))
        s.close()

    ts = [threading.Thread(target=one) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert results == [413] * 12


def test_chunked_and_missing_length_are_refused(server: Running) -> None:
    for head in (b"Transfer-Encoding: chunked\r\n", b""):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 411 ")
        s.close()


def _closed_within(s: socket.socket, limit: float, trickle: bytes = b"") -> float:
    """Send `trickle` one byte every 50 ms until the server closes the connection; return when that was."""
    t0 = time.monotonic()
    s.settimeout(0.05)
    i = 0
    while time.monotonic() - t0 < limit:
        try:
            if trickle:
                s.send(trickle[i % len(trickle):i % len(trickle) + 1])
                i += 1
            data = s.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - t0
    return float("inf")


def test_trickled_headers_hit_the_header_deadline(server: Running) -> None:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    took = _closed_within(s, 5.0, b"POST / HTTP/1.1\r\nX-Slow: " + b"a" * 10000)
    s.close()
    assert took < 1.5, took  # header_timeout 0.5 s; a byte every 50 ms kept it open for ever before


def test_trickled_body_hits_the_request_deadline(server: Running) -> None:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n")
    took = _closed_within(s, 8.0, b"x")
    s.close()
    assert took < 3.5, took  # request_timeout 2 s


def test_idle_keepalive_is_closed(server: Running) -> None:
    c = server.conn()
    assert server.post(batch(ev(1)), c)[0] == 200
    assert c.sock is not None
    took = _closed_within(c.sock, 5.0)
    assert 0.8 < took < 2.0, took  # idle_timeout 1 s


def test_connection_cap(server: Running) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(8)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    extra.settimeout(2)
    assert extra.recv(10) == b""  # closed at accept
    assert server.srv.rejected_connections >= 1
    for s in idle:
        s.close()
    extra.close()
    deadline = time.monotonic() + 5
    while server.srv.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.post(batch(ev(1)))[0] == 200  # slots come back


def test_one_write_per_response_no_nagle_stall(server: Running) -> None:
    """50 requests on one kept-alive connection: ~44 ms each (Nagle + delayed ACK) before, about 1 ms now."""
    c = server.conn()
    body = batch(ev(1))
    t0 = time.monotonic()
    for _ in range(50):
        assert server.post(body, c)[0] == 200
    assert time.monotonic() - t0 < 1.0


def test_blocked_stdout_sink_neither_stalls_analysis_nor_lies_in_healthz() -> None:
    r, w = os.pipe()  # nobody reads r: the sink's writer blocks once the pipe is full
    try:
        out = os.fdopen(w, "w", closefd=False)
        sink = StreamSink("json", out, queue_size=50)
        alerting = Alerting([sink])
        for run in start(on_alert=alerting.emit, stall_after=0.3, stalled=alerting.stalled):
            t0 = time.monotonic()
            for i in range(40):
                assert run.post(batch(*[ev(i * 100 + j) for j in range(100)]))[0] == 200
            assert time.monotonic() - t0 < 10  # 4000 alerts, the sink stuck after a few hundred
            assert run.srv.analyzer.stats.events == 4000
            time.sleep(0.5)
            c = run.conn()
            c.request("GET", "/healthz")
            resp = c.getresponse()
            health = orjson.loads(resp.read())
            assert resp.status == 503 and health["status"] == "stalled"
            assert any("stdout" in p for p in health["problems"])
        t1 = time.monotonic()
        problems = alerting.close(0.5)
        assert time.monotonic() - t1 < 2.0  # shutdown is bounded though the writer never returns
        assert sink.dropped > 3000 and any("dropped" in p for p in problems)
    finally:
        os.close(r)
        os.close(w)


def test_healthy_when_keeping_up(server: Running) -> None:
    c = server.conn()
    c.request("GET", "/healthz")
    resp = c.getresponse()
    assert resp.status == 200 and orjson.loads(resp.read())["status"] == "ok"


def test_buffered_bodies_are_bounded_over_all_connections() -> None:
    """Bodies held at once are capped over all connections: one that does not fit in time gets 429 + Retry-After
    (which the apiserver's webhook client retries) and its body is never read."""
    for run in start(max_body=64 * 1024, max_buffered=100 * 1024, request_timeout=0.5):
        srv = run.srv
        assert srv.reserve(60000, 0.1)
        t0 = time.monotonic()
        assert not srv.reserve(50000, 0.2) and 0.15 < time.monotonic() - t0 < 1.0
        threading.Timer(0.1, srv.release, args=(60000,)).start()
        assert srv.reserve(50000, 2.0)  # room given back: the waiter gets it
        c = run.conn()
        c.request("POST", "/", body=b"x" * 60000)  # 50000 + 60000 do not fit
        r = c.getresponse()
        assert r.status == 429 and r.getheader("Retry-After") == "1" and srv.busy_rejections == 2
        srv.release(50000)
        assert run.post(batch(ev(1)))[0] == 200


def test_stuck_analysis_shows_in_healthz_and_busy_batches_get_429() -> None:
    gate = threading.Event()
    entered = threading.Event()

    def stuck(_a: Any) -> None:  # an alert hook that never returns: the analysis of this batch is stuck
        entered.set()
        gate.wait(10)

    for run in start(on_alert=stuck, stall_after=0.3, request_timeout=0.5):
        t = threading.Thread(target=run.post, args=(batch(ev(1)),))
        t.start()
        assert entered.wait(5)
        time.sleep(0.4)
        c = run.conn()
        c.request("GET", "/healthz")
        resp = c.getresponse()
        health = orjson.loads(resp.read())
        assert resp.status == 503 and any("analysis stuck" in p for p in health["problems"])
        code, _ = run.post(batch(ev(2)))
        assert code == 429  # waited request_timeout for the analysis, then told to retry
        gate.set()
        t.join(5)
        c.request("GET", "/healthz")
        resp = c.getresponse()
        assert resp.status == 200 and orjson.loads(resp.read())["status"] == "ok"


def test_many_trickling_connections_are_all_closed_and_others_still_served(server: Running) -> None:
    """Slowloris with several connections at once (under the cap): each is closed at the header deadline while a
    kept-alive client goes on being served."""
    c = server.conn()
    assert server.post(batch(ev(0)), c)[0] == 200
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(6)]
    took: list[float] = []
    ts = [threading.Thread(target=lambda s=s: took.append(_closed_within(s, 5.0, b"GET / HTTP/1.1\r\nX: " + b"a" * 999)))
          for s in socks]
    for t in ts:
        t.start()
    for i in range(10):
        assert server.post(batch(ev(i + 1)), c)[0] == 200
    for t in ts:
        t.join(10)
    for s in socks:
        s.close()
    assert len(took) == 6 and max(took) < 1.5, took


@pytest.mark.parametrize("head,code", [
    (b"Content-Length: 5\r\nContent-Length: 99999\r\n", 400),  # smuggling-style duplicates
    (b"Content-Length: +5\r\n", 411), (b"Content-Length: -1\r\n", 411), (b"Content-Length: 0x10\r\n", 411),
    (b"Content-Length: \xd9\xa5\r\n", 411),  # a non-ASCII digit int() would accept
])
def test_content_length_is_digits_only(server: Running, head: bytes, code: int) -> None:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}")
    assert s.recv(4096).startswith(b"HTTP/1.1 %d " % code)
    s.close()
