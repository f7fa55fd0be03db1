"""List then watch one resource type, as client-go's Reflector does (k8s.io/client-go/tools/cache/reflector.go).

The list's resourceVersion starts the watch; every event and bookmark (allowWatchBookmarks) moves it on, so a
watch that ends (server timeout, dropped connection) resumes where it was without a relist. A 410 Gone, as the
HTTP status or as an ERROR event carrying a Status with code 410 ("too old resource version": etcd compacted
past it, the watch cache no longer holds it), means events were lost: the type is listed again and the state
replaced by the new list (objects missing from it were deleted meanwhile). Errors back off exponentially with
jitter. A type the server refuses (403, 404, or an answer that is not the API's) is reported unreadable, so
the monitor counts it as not assessed, and is retried with backoff: access granted later is picked up.
Semantics of resourceVersion, watch and bookmarks: https://kubernetes.io/docs/reference/using-api/api-concepts/
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..sources.cluster import NOT_API, Client, ClusterError, ResourceType, _status_reason

MAX_LINE = 64 << 20  # one watch event (an object is at most ~1.5 MiB in etcd; a generous cap against garbage)


@dataclass(slots=True)
class Change:
    """What a reflector tells the monitor: a relist (`items`), one watch event, or the type being unreadable."""

    rtype: ResourceType
    what: str  # "list" | "ADDED" | "MODIFIED" | "DELETED" | "unreadable"
    obj: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0
    reason: str = ""
    at: float = field(default_factory=time.monotonic)  # when it was received (change-to-report latency)


class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.n = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * (2 ** self.n))
        self.n = min(self.n + 1, 16)
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.n = 0


class Reflector(threading.Thread):
    """One type: list, watch from the list's resourceVersion, relist on 410 Gone and every `resync` seconds."""

    def __init__(self, client: Client, rtype: ResourceType, out: queue.Queue[Change], stop: threading.Event, *,
                 watch_timeout: int = 300, resync: float = 0.0,
                 on_restart: Callable[[ResourceType, str], None] = lambda _t, _r: None,
                 on_problem: Callable[[str], None] = lambda _m: None, backoff: Backoff | None = None) -> None:
        super().__init__(name=f"watch {rtype.name}", daemon=True)
        self.client, self.rtype, self.out, self.stop = client, rtype, out, stop
        self.watch_timeout, self.resync = watch_timeout, resync
        self.on_restart, self.on_problem = on_restart, on_problem
        self.backoff = backoff or Backoff()
        self._resp: Any = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                items, status, reason, rv = self.client.list_versioned(self.rtype)
            except ClusterError as exc:
                self.on_problem(f"{self.rtype.name}: list: {exc}")
                self.on_restart(self.rtype, "error")
                self._sleep(self.backoff.next())
                continue
            if status != 200:
                self.out.put(Change(self.rtype, "unreadable", status=status, reason=reason))
                self._sleep(max(5.0, self.backoff.next()))  # access may be granted (or the API installed) later
                continue
            self.out.put(Change(self.rtype, "list", items=items))
            self.backoff.reset()
            why = self._watch(rv, time.monotonic())
            self.on_restart(self.rtype, why)
            if why == "forbidden":
                self._sleep(self.backoff.next())

    def close(self) -> None:
        """Unblock a watch waiting for its next event (shutdown)."""
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.close()

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _watch(self, rv: str, listed_at: float) -> str:
        """Watch from `rv` until a relist is due; returns why: gone (410), resync, forbidden, stopped. A broken
        or refused connection is retried from the last resourceVersion seen, after a backoff."""
        while not self.stop.is_set():
            why, rv = self._watch_once(rv, listed_at)
            if why != "error":
                return why
            self.on_restart(self.rtype, "error")
            self._sleep(self.backoff.next())
        return "stopped"

    def _watch_once(self, rv: str, listed_at: float) -> tuple[str, str]:
        """One watch request; returns (why it ended, the resourceVersion to go on from)."""
        while not self.stop.is_set():
            if self.resync and time.monotonic() - listed_at >= self.resync:
                return "resync", rv
            # Server-side timeout as client-go picks it: between the minimum and twice that, so watches of many
            # types do not all end (and reconnect) together.
            timeout = int(self.watch_timeout * (1 + random.random())) if self.watch_timeout >= 2 else 1
            query = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                     "timeoutSeconds": timeout}
            try:
                status, resp = self.client.stream(self.rtype.path, query, read_timeout=timeout + 30)
            except ClusterError as exc:
                self.on_problem(f"{self.rtype.name}: watch: {exc}")
                return "error", rv
            if status == 410:
                return "gone", rv
            if status != 200:
                body = _read_all(resp)
                if status in (401, 403, 404):
                    reason = f"watch: {_status_reason(status, _loads(body))}"
                    self.out.put(Change(self.rtype, "unreadable", status=status, reason=reason))
                    return "forbidden", rv
                self.on_problem(f"{self.rtype.name}: watch: {_status_reason(status, _loads(body))}")
                return "error", rv
            self._resp = resp
            try:
                for line in _lines(resp):
                    ev = _loads(line)
                    if not isinstance(ev, dict) or not isinstance(ev.get("object"), dict):
                        self.on_problem(f"{self.rtype.name}: watch: an event that is not the API's JSON")
                        return "error", rv
                    kind, obj = ev.get("type"), ev["object"]
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return "gone", rv
                        self.on_problem(f"{self.rtype.name}: watch: {_status_reason(int(obj.get('code') or 0), obj)}")
                        return "error", rv
                    new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                    if kind == "BOOKMARK":
                        rv = new_rv or rv
                        continue
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        if obj.get("apiVersion") != self.rtype.group_version or obj.get("kind") != self.rtype.kind:
                            self.on_problem(f"{self.rtype.name}: watch: an event for another type")
                            return "error", rv
                        self.out.put(Change(self.rtype, kind, obj=obj))
                        rv = new_rv or rv
            except Exception as exc:  # reset, read timeout, protocol error: resume from the last version seen
                if not self.stop.is_set():
                    self.on_problem(f"{self.rtype.name}: watch: {type(exc).__name__}")
                    return "error", rv
            finally:
                self._resp = None
                with contextlib.suppress(Exception):
                    resp.release_conn()
            self.backoff.reset()
        return "stopped", rv


def _lines(resp: Any) -> Iterator[bytes]:
    """Newline-separated JSON events as the chunks arrive."""
    buf = b""
    for chunk in resp.stream(64 * 1024, decode_content=True):
        buf += chunk
        if b"\n" not in chunk:
            if len(buf) > MAX_LINE:
                raise ValueError("watch event over the size limit")
            continue
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buf.strip():
        yield buf


def _read_all(resp: Any) -> bytes:
    if resp is None:
        return b""
    try:
        return bytes(resp.read() or b"")
    except Exception:
        return b""
    finally:
        with contextlib.suppress(Exception):
            resp.release_conn()


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


__all__ = ["NOT_API", "Backoff", "Change", "Reflector"]
