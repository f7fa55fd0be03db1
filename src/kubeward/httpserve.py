"""A bounded HTTP/1.1 server for webhooks the kube-apiserver calls (`audit serve`, `admission serve`).

Standard library (a thread per connection), with the limits a public endpoint needs:
- at most `max_connections` connections at once (the rest are closed at accept, counted), bodies of at most
  `max_body` bytes, and at most `max_buffered` bytes of bodies held at once over all connections (a request that
  would exceed it waits, then gets 429 with Retry-After): memory stays bounded whatever the clients do;
- deadlines, not per-read timeouts: a request's line and headers must arrive within `header_timeout` of its first
  byte (or of the connection, which covers the TLS handshake), its body within `request_timeout`, and a kept-alive
  connection may idle `idle_timeout` between requests; trickling a byte at a time does not extend them;
- every response is one write on a TCP_NODELAY socket (status, headers and body together), so no response waits on
  Nagle's algorithm and the client's delayed ACK;
- TLS is applied per accepted connection from a context provider, so a `ReloadingTLS` can swap certificates
  without a restart (the listening socket is never wrapped).

Subclasses implement `handle_body(body, where, path)` and `handle_get(path)`, each returning (status, JSON body)
or (status, JSON body, extra headers).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

MAX_REQUEST_LINE = 65536
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with client_ca, clients must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class ReloadingTLS:
    """The current server context, rebuilt when the certificate, key or client CA files change (mtime, size or
    inode: cert-manager and kubelet secret volumes swap a symlink). Checked at most once per `every` seconds; a
    pair that does not load (half-written during rotation) keeps the previous context and is retried."""

    def __init__(self, cert: str, key: str, client_ca: str | None = None, *, every: float = 1.0,
                 on_problem: Callable[[str], object] | None = None) -> None:
        self.paths = tuple(p for p in (cert, key, client_ca) if p)
        self._args = (cert, key, client_ca)
        self.every = every
        self.on_problem = on_problem
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._ctx = tls_context(*self._args)  # the first load must work: the caller reports the error
        self._checked = time.monotonic()
        self.reloads = 0

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for p in self.paths:
            try:
                st = os.stat(p)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((0, 0, 0))
        return tuple(out)

    def __call__(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self.every:
            return self._ctx
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                try:
                    self._ctx = tls_context(*self._args)
                    self._stamp = stamp
                    self.reloads += 1
                except (ssl.SSLError, OSError) as exc:
                    if self.on_problem is not None:
                        self.on_problem(f"{self._args[0]}: certificate reload failed, keeping the "
                                         f"previous one: {exc}")
            return self._ctx


def serve_until_terminated(srv: ThreadingHTTPServer, *, hard_exit_after: float) -> None:
    """Serve until SIGTERM or Ctrl-C. SIGTERM starts the graceful shutdown on another thread (shutdown() waits for
    serve_forever) and, as a last resort, ends the process `hard_exit_after` seconds later whatever else hangs."""
    import signal

    def stop(*_: Any) -> None:
        threading.Thread(target=srv.shutdown, daemon=True).start()
        hard = threading.Timer(hard_exit_after, lambda: os._exit(1))
        hard.daemon = True
        hard.start()

    signal.signal(signal.SIGTERM, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


class BoundedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    usage = "POST to / ; GET /healthz"

    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], *,
                 tls: Callable[[], ssl.SSLContext] | None = None, max_body: int, max_connections: int,
                 max_buffered: int, header_timeout: float = 10.0, request_timeout: float = 10.0,
                 idle_timeout: float = 60.0) -> None:
        super().__init__(address, handler)
        self.tls = tls
        self.max_body, self.max_connections = max_body, max_connections
        self.max_buffered = max(max_buffered, max_body)
        self._buffered = 0
        self._budget = threading.Condition()
        self.header_timeout, self.request_timeout, self.idle_timeout = header_timeout, request_timeout, idle_timeout
        self.connection_errors = 0  # handshake failures, resets, deadlines missed
        self.rejected_connections = 0  # over max_connections
        self.busy_rejections = 0  # 429: no room for the body, or the work did not take it, in time
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open = 0
        self._open_lock = threading.Lock()

    # -- connections -----------------------------------------------------------------------------------------
    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:  # the handshake runs on the first read, under the header deadline
            try:
                sock = self.tls().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError):
                sock.close()
                self.connection_errors += 1
                raise
        return sock, addr

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

    # -- what subclasses serve -------------------------------------------------------------------------------
    def handle_body(self, body: bytes, where: str, path: str) -> Reply:
        raise NotImplementedError

    def handle_get(self, path: str) -> Reply:
        return 404, {"error": self.usage}


class _DeadlineReader(io.RawIOBase):
    """Socket reads that honour the handler's current deadline, however the bytes trickle in."""

    def __init__(self, handler: BoundedHandler) -> None:
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


class BoundedHandler(BaseHTTPRequestHandler):
    server: BoundedHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "kubeward"

    def setup(self) -> None:
        self.connection = self.request
        self.deadline = time.monotonic() + self.server.header_timeout  # also bounds the TLS handshake
        self.served = 0
        self._in = io.BufferedReader(_DeadlineReader(self), 64 * 1024)
        self.rfile = self._in  # parse_request reads the headers from here

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no access logs on stderr
        return

    def _send(self, data: bytes) -> None:
        self.connection.settimeout(self.server.request_timeout)  # a client that does not read cannot pin us
        self.connection.sendall(data)

    def _reply(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Status line, headers and body in one write; bytes are sent as they are (text/plain), the rest as JSON."""
        if isinstance(body, bytes):
            data, ctype = body, "text/plain; version=0.0.4; charset=utf-8"
        else:
            data, ctype = orjson.dumps(body), "application/json"
        phrase = HTTPStatus(code).phrase
        head = (f"HTTP/1.1 {code} {phrase}\r\nServer: {self.server_version}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\n")
        if code in (429, 503):
            head += "Retry-After: 1\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        self._send(head.encode("ascii") + b"\r\n" + data)

    def _answer(self, reply: Reply) -> None:
        self._reply(*reply)

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
                self._answer(srv.handle_get(self.path))
            elif self.command == "POST":
                self._post()
            else:
                self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, srv.usage)
            self.served += 1
        except OSError:  # TimeoutError (a deadline), ssl.SSLError, resets
            srv.connection_errors += 1
            self.close_connection = True

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
        if length > srv.max_body:
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
            self._answer(srv.handle_body(body, f"webhook {self.client_address[0]}", self.path))
        finally:
            srv.release(length)
