"""`audit watch`: follow a live audit log like `tail -F`.

Rotation (the file renamed and a new one created, as kube-apiserver's --audit-log-maxsize rotation does): the old
file is read to its end, then the new file from its start. Truncation (copytruncate): reading restarts at offset 0.
A missing file is waited for. Lines are handed over only when complete (ending in a newline), so an event being
written is never parsed half-way; each complete line is delivered exactly once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .feed import batch_events
from .reader import ReadStats

MAX_LINE = 64 * 1024 * 1024  # a line longer than this is dropped (counted), not buffered forever


class Follower:
    def __init__(self, path: str, *, from_start: bool = False, poll: float = 0.25,
                 stop: threading.Event | None = None) -> None:
        self.path, self.poll = path, poll
        self.stop = stop or threading.Event()
        self._from_start = from_start
        self._f: Any = None
        self._id: tuple[int, int] | None = None
        self._buf = b""
        self.rotations = self.truncations = self.oversized = 0

    def _open(self, at_end: bool) -> bool:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except OSError:
            return False
        st = os.fstat(f.fileno())
        if at_end:
            f.seek(0, os.SEEK_END)
        self._f, self._id, self._buf = f, (st.st_dev, st.st_ino), b""
        return True

    def _read_available(self) -> Iterator[bytes]:
        while True:
            chunk = self._f.read(1 << 20)
            if not chunk:
                return
            self._buf += chunk
            *complete, self._buf = self._buf.split(b"\n")
            yield from complete
            if len(self._buf) > MAX_LINE:
                self.oversized += 1
                self._buf = b""

    def lines(self) -> Iterator[bytes]:
        """Complete lines as they are written, until `stop` is set."""
        first = True
        while not self.stop.is_set():
            if self._f is None:
                if not self._open(at_end=first and not self._from_start):
                    first = False
                    self.stop.wait(self.poll)
                    continue
                first = False
            yield from self._read_available()
            try:
                st = os.stat(self.path)
            except OSError:
                st = None  # renamed away and not yet recreated: keep draining the old file
            if st is not None and (st.st_dev, st.st_ino) != self._id:
                yield from self._read_available()  # whatever was appended before the rename
                self._f.close()
                self._f = None
                self.rotations += 1
                if self._open(at_end=False):
                    continue
            elif st is not None and st.st_size < self._f.tell():
                self._f.seek(0)
                self._buf = b""
                self.truncations += 1
                continue
            self.stop.wait(self.poll)
        if self._f is not None:
            self._f.close()


def follow_events(follower: Follower, stats: ReadStats,
                  on_event: Callable[[dict[str, Any]], None]) -> None:
    """Parse each complete line as an Event (or EventList) and hand events over; a bad line or event is one counted
    error (the first few named) and following goes on."""
    shown = follower.path
    for line in follower.lines():
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            stats.error(shown, "not a JSON audit event")
            continue
        for ev in batch_events(obj, shown, stats):
            try:
                on_event(ev)
            except Exception as exc:  # the analyzer or a sink failing on one event must not stop the watch
                stats.error(shown, f"event {str(ev.get('auditID'))[:64]!r} could not be analyzed: "
                                   f"{type(exc).__name__}")
