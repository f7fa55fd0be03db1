"""`audit serve`: an audit webhook backend that hostile clients and stuck outputs cannot stall.

kube-apiserver with --audit-webhook-config-file POSTs batches as an `audit.k8s.io/v1` EventList JSON body to the
server named in that kubeconfig (k8s.io/apiserver/plugin/pkg/audit/webhook). We answer 200 once the batch is
analyzed; 400 for a body that is not an EventList (the apiserver logs it and does not resend), 413 for a body over
--max-body, 429 with Retry-After when the server cannot take the batch in time (k8s.io/apiserver/pkg/util/webhook
DefaultShouldRetry retries 429 and responses that suggest a client delay).

The server is `kubeward.httpserve.BoundedHTTPServer` (connection, body, memory and deadline limits, one write per
response on TCP_NODELAY; see there), plus one parsed batch at a time (batches are parsed and analyzed one at a
time), so memory stays bounded whatever the clients do;
- one malformed event is one counted error, the rest of its batch is analyzed;
- /healthz answers 503 while the pipeline is stuck: a sink stuck (full queue not moving, or one write not
  returning) or one batch in analysis for `stall_after` seconds.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..httpserve import BoundedHandler, BoundedHTTPServer, tls_context
from .analyzer import Analyzer
from .feed import analyze, batch_events
from .reader import ReadStats

# The apiserver's webhook batches hold at most 400 events (--audit-webhook-batch-max-size; with truncation enabled at
# most 10 MiB, --audit-webhook-truncate-max-batch-size), k8s.io/apiserver/pkg/server/options/audit.go.
MAX_BODY = 4 * 1024 * 1024
MAX_CONNECTIONS = 512  # threads blocked on a socket are cheap; bodies are bounded by MAX_BUFFERED, not by this
MAX_BUFFERED = 64 * 1024 * 1024
__all__ = ["AuditWebhookServer", "make_server", "tls_context"]


class AuditWebhookServer(BoundedHTTPServer):
    usage = "POST EventList batches; GET /healthz"

    def __init__(self, address: tuple[str, int], analyzer: Analyzer, on_alert: Callable[[Any], None], *,
                 max_body: int = MAX_BODY, max_connections: int = MAX_CONNECTIONS,
                 max_buffered: int = MAX_BUFFERED, header_timeout: float = 10.0,
                 request_timeout: float = 10.0, idle_timeout: float = 60.0, stall_after: float = 10.0,
                 stalled: Callable[[float], list[str]] | None = None,
                 on_problem: Callable[[str], object] | None = None,
                 tls: Callable[[], ssl.SSLContext] | None = None) -> None:
        super().__init__(address, _Handler, tls=tls, max_body=max_body, max_connections=max_connections,
                         max_buffered=max_buffered, header_timeout=header_timeout,
                         request_timeout=request_timeout, idle_timeout=idle_timeout)
        self.analyzer, self.on_alert = analyzer, on_alert
        self.stall_after = stall_after
        self._sinks_stalled = stalled or (lambda _after: [])
        self._on_problem = on_problem
        self.read_stats = ReadStats()
        self.batches = 0
        self._lock = threading.Lock()  # the analyzer's state (bursts, dedup) is not thread-safe
        self._busy_since: float | None = None

    # -- analysis and health ---------------------------------------------------------------------------------
    def handle_body(self, body: bytes, where: str, path: str = "/") -> tuple[int, dict[str, Any]]:
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


    def handle_get(self, path: str) -> tuple[int, dict[str, Any]]:
        if path in ("/healthz", "/readyz", "/livez"):
            return self.health()
        return 404, {"error": self.usage}


class _Handler(BoundedHandler):
    server_version = "kubeward-audit"


def make_server(host: str, port: int, ctx: ssl.SSLContext | None, analyzer: Analyzer,
                on_alert: Callable[[Any], None], **kw: Any) -> AuditWebhookServer:
    """`ctx` is a fixed TLS context (None: plain HTTP, for tests); pass `tls=` a provider such as
    httpserve.ReloadingTLS instead to pick up renewed certificates."""
    if ctx is not None:
        kw.setdefault("tls", lambda: ctx)
    return AuditWebhookServer((host, port), analyzer, on_alert, **kw)
