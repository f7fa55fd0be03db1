"""`audit serve`: an audit webhook backend that hostile clients and stuck outputs cannot stall.

kube-apiserver with --audit-webhook-config-file POSTs batches as an `audit.k8s.io/v1` EventList JSON body to the
server named in that kubeconfig (k8s.io/apiserver/plugin/pkg/audit/webhook). We answer 200 once the batch is
analyzed; 400 for a body that is not an EventList (the apiserver logs it and does not resend), 413 for a body over
--max-body, 429 with Retry-After when the server cannot take the batch in time (k8s.io/apiserver/pkg/util/webhook
DefaultShouldRetry retries 429 and responses that suggest a client delay).

Standard library (a thread per connection), with the limits a public endpoint needs:
- at most `max_connections` connections at once (the rest are closed at accept, counted), bodies of at most
  `max_body` bytes, and at most `max_buffered` bytes of bodies held at once over all connections (a request that
  would exceed it waits, then gets 429 with Retry-After, which the apiserver's webhook client retries), plus one
  parsed batch (batches are parsed and analyzed one at a time): memory stays bounded whatever the clients do;
- deadlines, not per-read timeouts: a request's line and headers must arrive within `header_timeout` of its first
  byte (or of the connection, which covers the TLS handshake), its body within `request_timeout`, and a kept-alive
  connection may idle `idle_timeout` between requests; trickling a byte at a time does not extend them;
- every response is one write on a TCP_NODELAY socket (status, headers and body together), so no response waits on
  Nagle's algorithm and the client's delayed ACK;
- one malformed event is one counted error, the rest of its batch is analyzed;
- /healthz answers 503 while the pipeline is stuck: a sink stuck (full queue not moving, or one write not
  returning) or one batch in analysis for `stall_after` seconds.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from .analyzer import Analyzer
from .feed import analyze, batch_events
from .reader import ReadStats

# The apiserver's webhook batches hold at most 400 events (--audit-webhook-batch-max-size; with truncation enabled at
# most 10 MiB, --audit-webhook-truncate-max-batch-size), k8s.io/apiserver/pkg/server/options/audit.go.
MAX_BODY = 4 * 1024 * 1024
MAX_CONNECTIONS = 512  # threads blocked on a socket are cheap; bodies are bounded by MAX_BUFFERED, not by this
MAX_BUFFERED = 64 * 1024 * 1024
MAX_REQUEST_LINE = 65536


class AuditWebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], analyzer: Analyzer, on_alert: Callable[[Any], None], *,
                 max_body: int = MAX_BODY, max_connections: int = MAX_CONNECTIONS,
                 max_buffered: int = MAX_BUFFERED, header_timeout: float = 10.0,
                 request_timeout: float = 10.0, idle_timeout: float = 60.0, stall_after: float = 10.0,
                 stalled: Callable[[float], list[str]] | None = None,
                 on_problem: Callable[[str], object] | None = None) -> None:
        super().__init__(address, _Handler)
        self.analyzer, self.on_alert = analyzer, on_alert
        self.max_body, self.max_connections = max_body, max_connections
        self.max_buffered = max(max_buffered, max_body)
        self._buffered = 0
        self._budget = threading.Condition()
        self.header_timeout, self.request_timeout, self.idle_timeout = header_timeout, request_timeout, idle_timeout
        self.stall_after = stall_after
        self._sinks_stalled = stalled or (lambda _after: [])
        self._on_problem = on_problem
        self.read_stats = ReadStats()
        self.batches = 0
        self.connection_errors = 0  # handshake failures, resets, deadlines missed
        self.rejected_connections = 0  # over max_connections
        self.busy_rejections = 0  # 429: no room for the body, or the analysis did not take it, in time
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open = 0
        self._open_lock = threading.Lock()
        self._lock = threading.Lock()  # the analyzer's state (bursts, dedup) is not thread-safe
        self._busy_since: float | None = None

    # -- connections -----------------------------------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.rejected_connections += 1
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open += 1
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            super().process_request(request, client_address)
        except Exception:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1
        self._slots.release()

    @property
    def open_connections(self) -> int:
        return self._open

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshake failures, resets and deadlines of one client: counted, never a traceback.
        self.connection_errors += 1

    # -- memory budget ---------------------------------------------------------------------------------------
    def reserve(self, length: int, timeout: float) -> bool:
        """Room for a body of `length` bytes among all connections, waiting at most `timeout` seconds."""
        end = time.monotonic() + timeout
        with self._budget:
            while self._buffered + length > self.max_buffered:
                left = end - time.monotonic()
                if left <= 0:
                    self.busy_rejections += 1
                    return False
                self._budget.wait(left)
            self._buffered += length
            return True

    def release(self, length: int) -> None:
        with self._budget:
            self._buffered -= length
            self._budget.notify_all()

    # -- analysis and health ---------------------------------------------------------------------------------
    def handle_body(self, body: bytes, where: str) -> tuple[int, dict[str, Any]]:
        """Parse and analyze one batch (one at a time, which also bounds parsed memory to one batch)."""
        if not self._lock.acquire(timeout=self.request_timeout):
            self.busy_rejections += 1
            return 429, {"error": "analysis is not keeping up; retry later"}
        try:
            self._busy_since = time.monotonic()
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError:
                self.read_stats.error(where, "body is not JSON")
                return 400, {"error": "body is not JSON"}
            del body
            if not (isinstance(obj, dict) and obj.get("kind") == "EventList"):
                self.read_stats.error(where, "not an audit.k8s.io EventList")
                return 400, {"error": "expected an audit.k8s.io EventList"}
            before = self.read_stats.bad_lines
            n = analyze(self.analyzer, batch_events(obj, where, self.read_stats), self.on_alert, where,
                        self.read_stats)
            self.batches += 1
            bad = self.read_stats.bad_lines - before
            if bad and before == 0 and self.read_stats.errors and self._on_problem is not None:
                first = str(self.read_stats.errors[0]).removeprefix("kubeward: ")
                self._on_problem(f"{first} (further bad events are counted; summary at exit)")
            return 200, ({"events": n, "errors": bad} if bad else {"events": n})
        finally:
            self._busy_since = None
            self._lock.release()

    def problems(self) -> list[str]:
        out = list(self._sinks_stalled(self.stall_after))
        since = self._busy_since
        if since is not None and time.monotonic() - since >= self.stall_after:
            out.append(f"analysis stuck on one batch for {time.monotonic() - since:.0f}s")
        return out

    def health(self) -> tuple[int, dict[str, Any]]:
        problems = self.problems()
        body: dict[str, Any] = {"status": "stalled" if problems else "ok", "events": self.analyzer.stats.events,
                                "batches": self.batches, "badEvents": self.read_stats.bad_lines,
                                "openConnections": self._open, "rejectedConnections": self.rejected_connections}
        if problems:
            body["problems"] = problems
        return (503 if problems else 200), body


class _DeadlineReader(io.RawIOBase):
    """Socket reads that honour the handler's current deadline, however the bytes trickle in."""

    def __init__(self, handler: _Handler) -> None:
        self._h = handler

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        left = self._h.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        sock = self._h.connection
        sock.settimeout(left)
        return int(sock.recv_into(b))


class _Handler(BaseHTTPRequestHandler):
    server: AuditWebhookServer
    protocol_version = "HTTP/1.1"
    server_version = "kubeward-audit"

    def setup(self) -> None:
        self.connection = self.request
        self.deadline = time.monotonic() + self.server.header_timeout  # also bounds the TLS handshake
        self.served = 0
        self._in = io.BufferedReader(_DeadlineReader(self), 64 * 1024)
        self.rfile = self._in  # parse_request reads the headers from here

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: alerts go to the sinks, not access logs
        return

    def _send(self, data: bytes) -> None:
        self.connection.settimeout(self.server.request_timeout)  # a client that does not read cannot pin us
        self.connection.sendall(data)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        """Status line, headers and body in one write."""
        data = orjson.dumps(body)
        phrase = HTTPStatus(code).phrase
        head = (f"HTTP/1.1 {code} {phrase}\r\nServer: {self.server_version}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n")
        if code in (429, 503):
            head += "Retry-After: 1\r\n"

        if self.close_connection:
            head += "Connection: close\r\n"
        self._send(head.encode("ascii") + b"\r\n" + data)

    def handle_expect_100(self) -> bool:
        self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._reply(code, {"error": message or HTTPStatus(code).phrase})

    def handle_one_request(self) -> None:
        srv = self.server
        try:
            # Waiting for a request: header_timeout on a new connection, idle_timeout between requests.
            self.deadline = time.monotonic() + (srv.idle_timeout if self.served else srv.header_timeout)
            if not self._in.peek(1):
                self.close_connection = True
                return
            self.deadline = time.monotonic() + srv.header_timeout
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():  # reads the headers (at most 100, each at most 64 KiB), same deadline
                self.close_connection = True
                return
            if self.command == "GET":
                self._get()
            elif self.command == "POST":
                self._post()
            else:
                self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "POST EventList batches; GET /healthz")
            self.served += 1
        except OSError:  # TimeoutError (a deadline), ssl.SSLError, resets
            srv.connection_errors += 1
            self.close_connection = True

    def _get(self) -> None:
        if self.path in ("/healthz", "/readyz", "/livez"):
            self._reply(*self.server.health())
        else:
            self._reply(404, {"error": "POST EventList batches; GET /healthz"})

    def _post(self) -> None:
        srv = self.server
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._reply(411, {"error": "Content-Length required (no chunked bodies)"})
            return
        # RFC 9110 8.6: Content-Length is 1*DIGIT; differing duplicates are an error (as Go's net/http rejects
        # them), never resolved by picking one.
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(values) != 1 or not next(iter(values)).isascii() or not next(iter(values)).isdigit():
            self.close_connection = True
            if len(values) > 1:
                self._reply(400, {"error": "conflicting Content-Length headers"})
            else:
                self._reply(411, {"error": "Content-Length required"})
            return
        length = int(next(iter(values)))
        if length < 0 or length > srv.max_body:
            self.close_connection = True  # the body is never read
            self._reply(413, {"error": f"body larger than {srv.max_body} bytes (--max-body)"})
            return
        self.deadline = time.monotonic() + srv.request_timeout
        if not srv.reserve(length, srv.request_timeout):
            self.close_connection = True  # the body is not read
            self._reply(429, {"error": "too many bodies in flight; retry later"})
            return
        try:
            body = self.rfile.read(length)
            if len(body) < length:
                self.close_connection = True
                return
            self._reply(*srv.handle_body(body, f"webhook {self.client_address[0]}"))
        finally:
            srv.release(length)


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with client_ca, clients must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def make_server(host: str, port: int, ctx: ssl.SSLContext | None, analyzer: Analyzer,
                on_alert: Callable[[Any], None], **kw: Any) -> AuditWebhookServer:
    srv = AuditWebhookServer((host, port), analyzer, on_alert, **kw)
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    return srv
