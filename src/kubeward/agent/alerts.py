"""JSON-line alert sink shared by the exec enforcer and the flow monitor (one object per line, flushed)."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AlertSink:
    """Thread-safe writer; `-` means stdout. Counts what it wrote so callers and tests can report it."""

    def __init__(self, target: str | None) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self._own = False
        self._out: IO[bytes] | None
        if target is None:
            self._out = None
        elif target == "-":
            self._out = sys.stdout.buffer
        else:
            self._out = open(target, "ab")  # noqa: SIM115 - lives as long as the agent
            self._own = True

    def emit(self, record: dict[str, Any]) -> None:
        record.setdefault("time", now_rfc3339())
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            self.count += 1
            if self._out is not None:
                self._out.write(line)
                self._out.flush()

    def close(self) -> None:
        if self._own and self._out is not None:
            self._out.close()
        self._out = None


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
