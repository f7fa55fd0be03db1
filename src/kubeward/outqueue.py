"""Output that never blocks its producer: a bounded queue and one writer thread per output.

Alerts and log lines of the long-running commands (the exec agent, `audit serve`, `audit watch`) go through this,
so a consumer that stops reading (a full pipe, a stuck disk, a closed pipe) can never stall a decision or the
analysis. What cannot be queued is dropped and counted; what cannot be written (EPIPE, ENOSPC) is counted; both are
reported. Writes go straight to the file descriptor (never through `sys.stdout`'s buffer), so interpreter exit never
waits on a reader that is gone.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .textsafe import printable

T = TypeVar("T")

BATCH_ITEMS = 256  # items joined into one write: fewer syscalls when the writer catches up on a backlog
LOG_LINE = 2000  # a log line quoting hostile input is cut here


def fd_writer(fd: int) -> Callable[[bytes], None]:
    """Write all of `data` to `fd` (os.write may write part of it to a pipe)."""
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    return write


@dataclass(slots=True)
class OutCounters:
    accepted: int = 0  # handed over by producers
    written: int = 0
    dropped: int = 0  # queue full, or still queued when close gave up waiting
    failed: int = 0  # could not be encoded or written


class BoundedWriter(Generic[T]):
    """`put` never blocks; a daemon thread encodes and writes. `stalled_for` says how long the queue has been full
    (health checks use it); `close` drains within a time bound and counts whatever is left as dropped."""

    def __init__(self, name: str, write: Callable[[bytes], None], encode: Callable[[T], bytes], *,
                 queue_size: int = 1024, on_first_drop: Callable[[str], object] | None = None,
                 on_first_error: Callable[[str], object] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.name = name
        self.counters = OutCounters()
        self._write, self._encode, self._on_close = write, encode, on_close
        self._q: queue.Queue[T] = queue.Queue(maxsize=max(1, queue_size))
        self._on_first_drop, self._on_first_error = on_first_drop, on_first_error
        self._last_take = time.monotonic()
        self._writing_since: float | None = None
        self._inflight = 0
        self._closing = threading.Event()
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=f"kubeward-out-{name}", daemon=True)
        self._thread.start()

    def put(self, item: T) -> bool:
        """Queue one item; False (and counted) when the queue is full or the writer is closed."""
        if self._closing.is_set():
            self.counters.dropped += 1
            return False
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.counters.dropped += 1
            if self.counters.dropped == 1 and self._on_first_drop is not None:
                with contextlib.suppress(Exception):
                    self._on_first_drop(f"{self.name}: output not keeping up, dropping (counted)")
            return False
        self.counters.accepted += 1
        return True

    def stalled_for(self, now: float | None = None) -> float:
        """How long the output has been stuck: inside one write, or with a full queue the writer does not take
        from (0 when it is keeping up)."""
        now = time.monotonic() if now is None else now
        since = self._writing_since
        in_write = now - since if since is not None else 0.0
        full = now - self._last_take if self._q.full() else 0.0
        return max(0.0, in_write, full)

    @property
    def queued(self) -> int:
        return self._q.qsize()

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            self._last_take = time.monotonic()
            batch = [first]
            while len(batch) < BATCH_ITEMS:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            chunks = []
            for item in batch:
                try:
                    chunks.append(self._encode(item))
                except Exception:  # one item that cannot be rendered is one failure, not a dead writer
                    self.counters.failed += 1
            self._inflight = len(chunks)
            self._writing_since = time.monotonic()
            try:
                self._write(b"".join(chunks))
            except Exception as exc:  # EPIPE, ENOSPC, EBADF…: counted, and the writer keeps going
                if not self._abandoned:
                    self.counters.failed += len(chunks)
                    if self.counters.failed == len(chunks) and self._on_first_error is not None:
                        with contextlib.suppress(Exception):
                            self._on_first_error(f"{self.name}: cannot write: {exc}")
            else:
                if not self._abandoned:
                    self.counters.written += len(chunks)
            self._writing_since = None
            self._inflight = 0

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, waiting at most `timeout` seconds; the rest is counted as dropped."""
        self._closing.set()
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            self._abandoned = True
            left = self._inflight
            while True:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break
                left += 1
            self.counters.dropped += left
        on_close, self._on_close = self._on_close, None  # once, even if close is called again
        if on_close is not None:
            with contextlib.suppress(OSError):
                on_close()

    def problems(self) -> str | None:
        c = self.counters
        if not (c.dropped or c.failed):
            return None
        return f"{c.dropped} dropped (output not keeping up or shutdown), {c.failed} could not be written"


def stderr_log(queue_size: int = 256) -> BoundedWriter[str]:
    """`kubeward: <message>` lines on stderr for long-running commands, control characters escaped, each cut at
    LOG_LINE characters, through a bounded queue: a stderr nobody reads cannot stall the caller."""
    return BoundedWriter("log", fd_writer(2), lambda m: f"kubeward: {printable(m)[:LOG_LINE]}\n".encode(),
                         queue_size=queue_size)
