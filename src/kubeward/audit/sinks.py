"""Where live alerts go: stdout (table line or JSON line), a JSON-lines file, an HTTP webhook (generic JSON or a
Slack-compatible payload). The webhook never blocks detection: alerts wait in a bounded queue, delivery retries
with exponential backoff, and every alert dropped (queue full) or undeliverable is counted and reported."""

from __future__ import annotations

import contextlib
import queue
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

import orjson

from ..findings import Severity
from .alerts import Alert


class Sink(Protocol):
    name: str

    def emit(self, alert: Alert) -> None: ...

    def close(self) -> None: ...

    def problems(self) -> str | None: ...


class StreamSink:
    """Table lines or JSON lines on a text stream (stdout by default)."""

    def __init__(self, fmt: str = "table", stream: IO[str] | None = None) -> None:
        self.name, self.fmt = "stdout", fmt
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, alert: Alert) -> None:
        text = orjson.dumps(alert.to_json()).decode() if self.fmt == "json" else alert.line()
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream.flush()

    def problems(self) -> str | None:
        return None


class FileSink:
    """Appends one JSON alert per line and flushes, so `tail -f` and log shippers see alerts at once."""

    def __init__(self, path: str) -> None:
        self.name = path
        self._f = open(path, "ab")  # noqa: SIM115 - held for the sink's lifetime, closed by close()
        self._lock = threading.Lock()
        self.failed = 0

    def emit(self, alert: Alert) -> None:
        with self._lock:
            try:
                self._f.write(orjson.dumps(alert.to_json()) + b"\n")
                self._f.flush()
            except OSError:
                self.failed += 1

    def close(self) -> None:
        with self._lock:
            self._f.close()

    def problems(self) -> str | None:
        return f"{self.failed} alerts could not be written" if self.failed else None


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook shape: `text` plus one attachment colored by severity."""
    color = {Severity.CRITICAL: "#8b0000", Severity.HIGH: "#d00000", Severity.MEDIUM: "#ff9900"}.get(
        alert.severity, "#439fe0")
    return {"text": f"[{alert.severity.label}] {alert.rule}: {alert.message}",
            "attachments": [{"color": color, "fields": [
                {"title": "user", "value": alert.user, "short": True},
                {"title": "verb", "value": alert.verb, "short": True},
                {"title": "object", "value": alert.target() or "-", "short": True},
                {"title": "source", "value": ", ".join(alert.source_ips) or "-", "short": True},
                {"title": "auditID", "value": alert.audit_id, "short": False}]}]}


@dataclass(slots=True)
class WebhookCounters:
    delivered: int = 0
    dropped: int = 0  # queue full: never attempted
    failed: int = 0  # attempted, every retry failed
    retries: int = 0


class WebhookSink:
    """POSTs each alert as JSON from a background thread (bounded queue, retry with backoff)."""

    def __init__(self, url: str, *, slack: bool = False, queue_size: int = 1000, retries: int = 3,
                 backoff: float = 0.5, timeout: float = 5.0, sleep: Callable[[float], None] = time.sleep,
                 on_first_drop: Callable[[str], None] | None = None, ca_file: str | None = None) -> None:
        self.name, self.url, self.slack = url, url, slack
        # A private CA for an in-cluster receiver; otherwise the system trust store verifies the server.
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.retries, self.backoff, self.timeout, self._sleep = retries, backoff, timeout, sleep
        self.counters = WebhookCounters()
        self._q: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_size)
        self._on_first_drop = on_first_drop
        self._inflight = False
        self._thread = threading.Thread(target=self._run, name="kubeward-webhook-sink", daemon=True)
        self._thread.start()

    def emit(self, alert: Alert) -> None:
        try:
            self._q.put_nowait(alert)
        except queue.Full:
            self.counters.dropped += 1
            if self.counters.dropped == 1 and self._on_first_drop:
                self._on_first_drop(f"{self.url}: alert queue full, dropping alerts (counted)")

    def _run(self) -> None:
        while True:
            alert = self._q.get()
            if alert is None:
                return
            self._inflight = True
            self._deliver(alert)
            self._inflight = False

    def _deliver(self, alert: Alert) -> None:
        body = orjson.dumps(slack_payload(alert) if self.slack else alert.to_json())
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters.retries += 1
                self._sleep(self.backoff * (2 ** (attempt - 1)))
            try:
                req = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "kubeward-audit"})
                with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:
                    if 200 <= resp.status < 300:
                        self.counters.delivered += 1
                        return
            except (urllib.error.URLError, OSError, ValueError):
                continue
        self.counters.failed += 1

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (bounded by timeout); whatever is left is counted as dropped."""
        with contextlib.suppress(queue.Full):
            self._q.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive() and self._inflight:
            self.counters.dropped += 1  # still retrying when we gave up waiting
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.counters.dropped += 1

    def problems(self) -> str | None:
        c = self.counters
        if not (c.dropped or c.failed):
            return None
        return f"{c.dropped} alerts dropped (queue full or shutdown), {c.failed} failed after retries"


class Alerting:
    """Fan an alert out to every sink at or above the minimum severity; report drops on close."""

    def __init__(self, sinks: list[Any], min_severity: Severity = Severity.INFO) -> None:
        self.sinks, self.min_severity = sinks, min_severity
        self.emitted = 0
        self._lock = threading.Lock()

    def emit(self, alert: Alert) -> None:
        if alert.severity < self.min_severity:
            return
        with self._lock:
            self.emitted += 1
        for s in self.sinks:
            s.emit(alert)

    def close(self) -> list[str]:
        """Close every sink; returns one line per sink that lost alerts (never silent)."""
        out = []
        for s in self.sinks:
            s.close()
            p = s.problems()
            if p:
                out.append(f"{s.name}: {p}")
        return out
