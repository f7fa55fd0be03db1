"""Where live alerts go, for `audit analyze/watch/serve` and the node agent alike: stdout (table line or JSON
line), a JSON-lines file or descriptor, an HTTP webhook (generic JSON or a Slack-compatible payload). No sink ever
blocks detection (an exec decision, the analysis): alerts wait in a bounded queue for the sink's own thread
(kubeward.outqueue; webhook delivery retries with exponential backoff), every alert dropped (queue full, shutdown)
or undeliverable is counted and reported, and `stalled_for` tells health checks how long a sink has been stuck."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

import orjson

from .alerts import Alert
from .findings import Severity
from .outqueue import BoundedWriter, fd_writer


class Sink(Protocol):
    name: str

    @property
    def dropped(self) -> int: ...

    def emit(self, alert: Alert) -> None: ...

    def stalled_for(self, now: float | None = None) -> float: ...

    def close(self, timeout: float = ...) -> None: ...

    def problems(self) -> str | None: ...


class _QueuedSink:
    """A sink whose writes happen on its own thread (kubeward.outqueue): emit never blocks the analysis, and what
    does not fit in the queue is dropped and counted."""

    name: str
    _out: BoundedWriter[Alert]

    def emit(self, alert: Alert) -> None:
        self._out.put(alert)

    def stalled_for(self, now: float | None = None) -> float:
        return self._out.stalled_for(now)

    @property
    def dropped(self) -> int:
        return self._out.counters.dropped

    @property
    def failed(self) -> int:
        return self._out.counters.failed

    def close(self, timeout: float = 5.0) -> None:
        self._out.close(timeout)

    def problems(self) -> str | None:
        p = self._out.problems()
        return f"alerts: {p}" if p else None


class StreamSink(_QueuedSink):
    """Table lines or JSON lines on stdout (written to descriptor 1), or on a given text stream (tests)."""

    def __init__(self, fmt: str = "table", stream: IO[str] | None = None, *, queue_size: int = 10000,
                 on_problem: Callable[[str], object] | None = None) -> None:
        self.name, self.fmt = "stdout", fmt
        if stream is None:
            write = fd_writer(1)
        else:
            def write(data: bytes) -> None:
                stream.write(data.decode())
                stream.flush()
        self._out = BoundedWriter("stdout", write, self._encode, queue_size=queue_size, on_first_drop=on_problem,
                                  on_first_error=on_problem)

    def _encode(self, alert: Alert) -> bytes:
        text = orjson.dumps(alert.to_json()).decode() if self.fmt == "json" else alert.line()
        return (text + "\n").encode()


class FileSink(_QueuedSink):
    """Appends one JSON alert per line as soon as it can, so `tail -f` and log shippers see alerts at once."""

    def __init__(self, path: str, *, queue_size: int = 10000,
                 on_problem: Callable[[str], object] | None = None) -> None:
        self.name = path
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._out = BoundedWriter(path, fd_writer(fd), _json_line,
                                  queue_size=queue_size, on_first_drop=on_problem, on_first_error=on_problem,
                                  on_close=functools.partial(os.close, fd))


def _json_line(alert: Alert) -> bytes:
    return orjson.dumps(alert.to_json(), default=str) + b"\n"


class AlertSink(_QueuedSink):
    """The node agent's alert output, one JSON line per alert: `-` is stdout, a path is opened for appending, an
    int is a descriptor the caller owns, None discards. `count` is what was handed over."""

    def __init__(self, target: str | int | None, *, queue_size: int = 4096,
                 on_problem: Callable[[str], object] | None = None) -> None:
        self.count = 0
        self._open = target is not None
        close: Callable[[], None] | None = None
        if target is None or isinstance(target, int) or target == "-":
            self.name = "alerts"
            write = (lambda _data: None) if target is None else fd_writer(1 if target == "-" else int(target))
        else:
            self.name = target
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            write, close = fd_writer(fd), functools.partial(os.close, fd)
        self._out = BoundedWriter(self.name, write, _json_line, queue_size=queue_size, on_first_drop=on_problem,
                                  on_first_error=on_problem, on_close=close)

    def emit(self, alert: Alert) -> None:
        self.count += 1
        if self._open:
            self._out.put(alert)

    def counters(self) -> dict[str, int]:
        """Alerts dropped (queue full or still queued at exit) and alerts whose write failed."""
        return {"alerts_dropped": self.dropped, "alerts_failed": self.failed}


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
        self._last_take = time.monotonic()
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
            self._last_take = time.monotonic()
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

    @property
    def dropped(self) -> int:
        return self.counters.dropped

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds the queue has been full without delivery taking an alert (retries are expected, a full queue
        that does not move is not)."""
        if not self._q.full():
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self._last_take)

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
    """Fan an alert out to every sink at or above the minimum severity; report stalls, and drops on close."""

    def __init__(self, sinks: list[Sink], min_severity: Severity = Severity.INFO) -> None:
        self.sinks, self.min_severity = sinks, min_severity
        self.emitted = 0
        self.failed = 0  # alerts a sink raised on (never expected: sinks count their own losses)
        self._lock = threading.Lock()

    def emit(self, alert: Alert) -> None:
        if alert.severity < self.min_severity:
            return
        with self._lock:
            self.emitted += 1
        for s in self.sinks:
            try:
                s.emit(alert)
            except Exception:
                self.failed += 1

    def stalled(self, after: float) -> list[str]:
        """One line per sink stuck for `after` seconds or more."""
        now = time.monotonic()
        out = []
        for s in self.sinks:
            stuck = s.stalled_for(now)
            if stuck >= after:
                out.append(f"{s.name}: alert output stuck for {stuck:.0f}s")
        return out

    def dropped(self) -> int:
        return sum(s.dropped for s in self.sinks)

    def close(self, timeout: float = 10.0) -> list[str]:
        """Close every sink within `timeout` seconds in all; returns one line per sink that lost alerts."""
        end = time.monotonic() + timeout
        out = []
        for s in self.sinks:
            s.close(max(0.1, end - time.monotonic()))
            p = s.problems()
            if p:
                out.append(f"{s.name}: {p}")
        if self.failed:
            out.append(f"{self.failed} alerts could not be handed to a sink")
        return out
