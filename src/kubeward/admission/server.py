"""`admission serve`: the validating admission webhook over HTTPS, on the bounded server of `kubeward.httpserve`.

The apiserver POSTs an AdmissionReview v1 and reads the AdmissionReview in a 200 answer; any other status or a body
that does not decode is a failed call, to which the webhook's failurePolicy applies (k8s.io/apiserver/pkg/admission/
plugin/webhook/validating/dispatcher.go). So a body that is not an AdmissionReview gets 400, and the server goes on.
GET /healthz (the process serves), /readyz (the namespace cache has listed once, when there is one), /metrics.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..httpserve import BoundedHandler, BoundedHTTPServer
from ..textsafe import printable
from .decide import Decider, ReviewError, parse_review
from .metrics import AdmissionMetrics
from .namespaces import NamespaceCache

# The apiserver caps the objects it stores at 1.5 MiB (etcd's request limit, --max-request-bytes 1.5 MiB); an
# AdmissionReview of an UPDATE carries object and oldObject, plus the request's metadata.
MAX_BODY = 8 * 1024 * 1024
MAX_CONNECTIONS = 256
MAX_BUFFERED = 64 * 1024 * 1024
PATHS = ("/", "/validate")


class AdmissionServer(BoundedHTTPServer):
    usage = "POST AdmissionReview v1 to /validate; GET /healthz, /readyz, /metrics"

    def __init__(self, address: tuple[str, int], decider: Decider, *, cache: NamespaceCache | None = None,
                 tls: Callable[[], ssl.SSLContext] | None = None, max_body: int = MAX_BODY,
                 max_connections: int = MAX_CONNECTIONS, max_buffered: int = MAX_BUFFERED,
                 header_timeout: float = 10.0, request_timeout: float = 10.0, idle_timeout: float = 60.0,
                 on_problem: Callable[[str], object] | None = None) -> None:
        super().__init__(address, _Handler, tls=tls, max_body=max_body, max_connections=max_connections,
                         max_buffered=max_buffered, header_timeout=header_timeout, request_timeout=request_timeout,
                         idle_timeout=idle_timeout)
        self.decider, self.cache = decider, cache
        self.metrics = AdmissionMetrics()
        self.on_problem = on_problem

    def handle_body(self, body: bytes, where: str, path: str) -> tuple[int, Any]:
        if path.split("?", 1)[0] not in PATHS:
            return 404, {"error": self.usage}
        start = time.perf_counter()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.metrics.error("not-json")
            return 400, {"error": "body is not JSON"}
        del body
        try:
            request = parse_review(doc)
        except ReviewError as exc:
            self.metrics.error("not-admissionreview")
            return 400, {"error": str(exc)}
        try:
            decision = self.decider.decide(request)
        except Exception as exc:  # a defect, never the client's fault: answer it (failurePolicy applies) and go on
            self.metrics.error("internal-error")
            if self.on_problem is not None:
                self.on_problem(f"review {printable(str(request.get('uid')))[:64]}: internal error: "
                                f"{type(exc).__name__}: {printable(str(exc))[:300]}")
            return 500, {"error": "internal error deciding the review"}
        answer = {"apiVersion": doc["apiVersion"], "kind": "AdmissionReview",
                  "response": decision.response(request["uid"])}
        self.metrics.observe(decision, time.perf_counter() - start)
        return 200, answer

    def handle_get(self, path: str) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        if path in ("/healthz", "/livez"):
            return 200, {"status": "ok", "openConnections": self.open_connections,
                         "rejectedConnections": self.rejected_connections}
        if path == "/readyz":
            if self.cache is not None and not self.cache.synced:
                return 503, {"status": "namespace cache not synced", "error": self.cache.last_error}
            return 200, {"status": "ok"}
        if path == "/metrics":
            return 200, self.metrics.render()
        return 404, {"error": self.usage}


class _Handler(BoundedHandler):
    server_version = "kubeward-admission"
