"""JSON-line alert sink shared by the exec enforcer and the flow monitor (one object per line).

`emit` never blocks and never raises: records wait in a bounded queue for a writer thread (kubeward.outqueue), so
an alert reader that stops reading, or a closed pipe (EPIPE), can never hold up an exec decision or the watchdog.
Drops and write failures are counted and reported by the caller.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from ..outqueue import BoundedWriter, fd_writer

DEFAULT_QUEUE = 4096


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, default=str) + b"\n"


class AlertSink:
    """`-` means stdout, None discards; a path is opened for appending, an int is a descriptor the caller owns.
    `count` is what was handed over."""

    def __init__(self, target: str | int | None, *, queue_size: int = DEFAULT_QUEUE,
                 on_problem: Callable[[str], object] | None = None) -> None:
        self.count = 0
        self._out: BoundedWriter[dict[str, Any]] | None = None
        if target is None:
            return
        if isinstance(target, int) or target == "-":
            fd, close, name = (1 if target == "-" else int(target)), None, "alerts"
        else:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            close, name = functools.partial(os.close, fd), target
        self._out = BoundedWriter(name, fd_writer(fd), _encode,
                                  queue_size=queue_size, on_first_drop=on_problem, on_first_error=on_problem,
                                  on_close=close)

    def emit(self, record: dict[str, Any]) -> None:
        record.setdefault("time", now_rfc3339())
        self.count += 1
        if self._out is not None:
            self._out.put(record)

    def counters(self) -> dict[str, int]:
        """Alerts dropped (queue full or still queued at exit) and alerts whose write failed."""
        c = self._out.counters if self._out is not None else None
        return {"alerts_dropped": c.dropped if c else 0, "alerts_failed": c.failed if c else 0}

    def close(self, timeout: float = 2.0) -> None:
        if self._out is not None:
            self._out.close(timeout)


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
