"""/metrics, /healthz and /readyz of `kubeward monitor`, on the bounded server the webhooks use (httpserve).

/readyz answers 200 once the first evaluation is done, and also while the process waits for the leader Lease:
a standby replica is healthy, and a rolling update (one replica, maxUnavailable 0) must see the new pod ready so
the old one is stopped and releases the Lease. /healthz answers 503 when the monitor loop has died or an alert
sink has been stuck for a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..httpserve import BoundedHandler, BoundedHTTPServer

GET_ONLY = 1024


class MonitorServer(BoundedHTTPServer):
    usage = "GET /metrics, /healthz or /readyz"

    def __init__(self, address: tuple[str, int], *, metrics: Callable[[], bytes], healthy: Callable[[], str | None],
                 ready: Callable[[], str | None]) -> None:
        super().__init__(address, BoundedHandler, max_body=GET_ONLY, max_connections=32, max_buffered=GET_ONLY)
        self.metrics, self.healthy, self.ready = metrics, healthy, ready

    def handle_get(self, path: str) -> tuple[int, Any]:
        route = path.split("?", 1)[0]
        if route == "/metrics":
            return 200, self.metrics()
        if route in ("/healthz", "/livez"):
            problem = self.healthy()
            return (503, {"status": problem}) if problem else (200, {"status": "ok"})
        if route == "/readyz":
            problem = self.ready()
            return (503, {"status": problem}) if problem else (200, {"status": "ok"})
        return 404, {"error": self.usage}

    def handle_body(self, body: bytes, where: str, path: str) -> tuple[int, Any]:
        return 405, {"error": self.usage}
