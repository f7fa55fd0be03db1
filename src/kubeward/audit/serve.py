"""`audit serve`: an audit webhook backend.

kube-apiserver with --audit-webhook-config-file POSTs batches as an `audit.k8s.io/v1` EventList JSON body to the
server named in that kubeconfig (k8s.io/apiserver/plugin/pkg/audit/webhook). We answer 200 once the batch is
analyzed; 400 for a body that is not an EventList (the apiserver logs it and does not resend), 413 for an oversized
body. Standard library only: a threaded HTTPS server with per-connection timeouts so slow clients cannot pin it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from .analyzer import Analyzer
from .reader import ReadStats, events_from_obj

MAX_BODY = 64 * 1024 * 1024


class AuditWebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], analyzer: Analyzer, on_alert: Callable[[Any], None], *,
                 max_body: int = MAX_BODY, timeout: float = 30.0) -> None:
        super().__init__(address, _Handler)
        self.analyzer, self.on_alert = analyzer, on_alert
        self.max_body, self.conn_timeout = max_body, timeout
        self.read_stats = ReadStats()
        self.batches = 0
        self.connection_errors = 0
        self._lock = threading.Lock()  # the analyzer's state (bursts, dedup) is not thread-safe

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshake failures, resets and timeouts of one client: counted, never a traceback.
        self.connection_errors += 1

    def handle_batch(self, obj: Any, where: str) -> int:
        with self._lock:
            before = self.read_stats.bad_lines
            events = list(events_from_obj(obj, where, self.read_stats))
            if not events and self.read_stats.bad_lines > before:
                return 0
            self.batches += 1
            for ev in events:
                for alert in self.analyzer.feed(ev):
                    self.on_alert(alert)
            return len(events)


class _Handler(BaseHTTPRequestHandler):
    server: AuditWebhookServer
    protocol_version = "HTTP/1.1"
    server_version = "kubeward-audit"

    def setup(self) -> None:
        self.request.settimeout(self.server.conn_timeout)  # slow or idle clients cannot pin a thread
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: alerts go to the sinks, not access logs
        return

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/healthz", "/readyz", "/livez"):
            self._reply(200, {"status": "ok", "events": self.server.analyzer.stats.events})
        else:
            self._reply(404, {"error": "POST EventList batches; GET /healthz"})

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._reply(411, {"error": "Content-Length required"})
            return
        if length < 0 or length > self.server.max_body:
            self.close_connection = True
            self._reply(413, {"error": f"body larger than {self.server.max_body} bytes"})
            return
        try:
            body = self.rfile.read(length)
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._reply(400, {"error": "body is not JSON"})
            return
        except OSError:
            self.close_connection = True
            return
        peer = f"webhook {self.client_address[0]}"
        n = self.server.handle_batch(obj, peer)
        if n == 0 and not (isinstance(obj, dict) and obj.get("kind") == "EventList"):
            self._reply(400, {"error": "expected an audit.k8s.io EventList"})
            return
        self._reply(200, {"events": n})


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
