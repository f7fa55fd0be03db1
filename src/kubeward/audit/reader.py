"""Stream audit events from JSON-lines logs, `.gz` files, stdin and `EventList` documents without loading a log.

Accepted: one `audit.k8s.io/v1` or `v1beta1` Event per line (what `--audit-log-path` writes), a line holding an
`EventList` (what the webhook backend batches), or a whole file that is one JSON `EventList` (bounded by a size
limit because it must be parsed at once). Bad lines are counted and the first few named; reading goes on.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..findings import InputError

API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
MAX_ERRORS_SHOWN = 20
DEFAULT_MAX_DOCUMENT = 256 * 1024 * 1024


@dataclass(slots=True)
class ReadStats:
    """What the reader saw: events yielded, lines it could not use (first few named)."""

    events: int = 0
    bad_lines: int = 0
    errors: list[InputError] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(InputError(where, message))


def open_log(path: str, stdin: IO[bytes] | None = None) -> IO[bytes]:
    """Binary stream for a path, '-' (stdin) or a gzip file (by magic number, not by name)."""
    if path == "-":
        raw: Any = stdin if stdin is not None else sys.stdin.buffer
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        if buffered.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
        return buffered
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    f.seek(0)
    return f


def events_from_obj(obj: Any, where: str, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """An Event yields itself; an EventList its items; anything else is an error."""
    if not isinstance(obj, dict):
        stats.error(where, "not a JSON object")
        return
    kind = obj.get("kind")
    if kind == "EventList":
        items = obj.get("items") or []
        if not isinstance(items, list):
            stats.error(where, "EventList items is not a list")
            return
        for i, item in enumerate(items):
            if isinstance(item, dict) and _is_event(item):
                stats.events += 1
                yield item
            else:
                stats.error(f"{where}: items[{i}]", "not an audit Event")
        return
    if _is_event(obj):
        stats.events += 1
        yield obj
        return
    stats.error(where, f"not an audit Event (kind {kind!r}, apiVersion {obj.get('apiVersion')!r})")


def _is_event(obj: dict[str, Any]) -> bool:
    # Events written by the log backend carry kind/apiVersion; be lenient with a missing kind if it has auditID.
    kind = obj.get("kind")
    if kind == "Event":
        api = obj.get("apiVersion")
        return api is None or api in API_VERSIONS
    return kind is None and "auditID" in obj


BLOCK = 1 << 20


def bounded_lines(f: Any, limit: int) -> Iterator[bytes | None]:
    """Lines of a binary stream, never holding more than `limit` bytes: a longer line is skipped to its end and
    reported as None (a hostile or corrupt log cannot exhaust memory)."""
    for block in line_blocks(f, limit):
        yield from block


def line_blocks(f: Any, limit: int, size: int = BLOCK) -> Iterator[list[bytes | None]]:
    """Lines in batches: read big blocks and split them in C (much cheaper per line than readline). A line longer
    than `limit` becomes None; its bytes are dropped as they arrive, so memory stays bounded."""
    pending: list[bytes] = []  # pieces of the current, unfinished line
    pending_len = 0
    skipping = False
    check_each = limit < size
    while chunk := f.read(size):
        nl = chunk.find(b"\n")
        if nl < 0:
            if not skipping:
                pending.append(chunk)
                pending_len += len(chunk)
                if pending_len > limit:
                    pending, pending_len, skipping = [], 0, True
            continue
        if skipping:
            out: list[bytes | None] = [None]
            chunk = chunk[nl + 1:]
            skipping = False
            parts: list[Any] = chunk.split(b"\n")
        else:
            out = []
            if pending:
                parts = (b"".join(pending) + chunk).split(b"\n")
                if len(parts[0]) > limit:
                    parts[0] = None  # the pending piece plus this chunk's head made the line too long
                pending, pending_len = [], 0
            else:
                parts = chunk.split(b"\n")
        last = parts.pop()
        if last:
            if len(last) > limit:
                skipping = True
            else:
                pending, pending_len = [last], len(last)
        if check_each:
            parts = [p if p is None or len(p) <= limit else None for p in parts]
        if out:
            out.extend(parts)
            yield out
        elif parts:
            yield parts
    if skipping:
        yield [None]
    elif pending:
        yield [b"".join(pending)]


def iter_stream(f: Any, shown: str, stats: ReadStats, max_document: int = DEFAULT_MAX_DOCUMENT,
                first_line: int = 1, allow_document: bool = True) -> Iterator[dict[str, Any]]:
    """Events from an open binary stream (or an iterable of lines), one JSON value per line; a pretty-printed
    document is read whole. Lines longer than max_document are skipped and counted."""
    loads = orjson.loads
    lineno = first_line - 1
    if hasattr(f, "read"):
        # The first line alone, so that a pretty-printed JSON document can still be read whole from the stream.
        head = f.readline(max_document)
        if not head:
            return
        if allow_document and head.lstrip()[:1] in (b"{", b"[") and head.endswith(b"\n"):
            try:
                loads(head)
            except orjson.JSONDecodeError:
                yield from _whole_document(head, f, shown, stats, max_document)
                return
        blocks: Iterator[Any] = _prepend(head, f, max_document)
    else:
        blocks = iter([f])
    for block in blocks:
        for raw in block:
            lineno += 1
            if raw is None:
                stats.error(f"{shown}:{lineno}", f"line longer than {max_document} bytes, skipped")
                continue
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                if raw.strip():
                    stats.error(f"{shown}:{lineno}", "not a JSON audit event")
                continue
            if obj.__class__ is dict and obj.get("kind") == "Event" and obj.get("apiVersion") in API_VERSIONS:
                stats.events += 1  # fast path: the common case checks nothing else
                yield obj
            else:
                yield from events_from_obj(obj, f"{shown}:{lineno}", stats)


def _prepend(head: bytes, f: Any, limit: int) -> Iterator[list[Any]]:
    """The first line (already read) followed by the rest in blocks; an over-long first line is finished here."""
    if len(head) >= limit and not head.endswith(b"\n"):
        while (more := f.readline(limit)) and not more.endswith(b"\n"):
            pass
        yield [None]
    elif head.endswith(b"\n"):
        yield [head]
    else:
        # No newline and shorter than the limit: the stream ended; it is the only line.
        yield [head]
        return
    yield from line_blocks(f, limit)


def _whole_document(head: bytes, f: IO[bytes], shown: str, stats: ReadStats, limit: int) -> Iterator[dict[str, Any]]:
    buf = bytearray(head)
    while chunk := f.read(1 << 20):
        buf += chunk
        if len(buf) > limit:
            stats.error(shown, f"JSON document larger than {limit} bytes (use JSON lines for big logs)")
            return
    try:
        obj = orjson.loads(bytes(buf))
    except orjson.JSONDecodeError as exc:
        stats.error(shown, f"not JSON lines and not a JSON document ({exc.msg} at char {exc.pos})")
        return
    yield from events_from_obj(obj, shown, stats)


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Files as given; a directory becomes its regular files, oldest first (rotated logs then the live one)."""
    for path in paths:
        if path != "-" and os.path.isdir(path):
            entries = []
            for e in os.scandir(path):
                if e.is_file() and not e.name.startswith("."):
                    entries.append((e.stat().st_mtime, e.name, e.path))
            yield from (p for _, _, p in sorted(entries))
        else:
            yield path


def iter_events(paths: Iterable[str], stats: ReadStats, *, stdin: IO[bytes] | None = None,
                max_document: int = DEFAULT_MAX_DOCUMENT) -> Iterator[dict[str, Any]]:
    """All events of all paths (directories: their files, oldest first), in order; an unreadable path is one
    error and the others are still read."""
    for path in expand(paths):
        shown = "-" if path == "-" else _shown(path)
        try:
            f = open_log(path, stdin)
        except OSError as exc:
            stats.error(shown, exc.strerror or str(exc))
            continue
        try:
            yield from iter_stream(f, shown, stats, max_document)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            stats.error(shown, f"read failed: {exc}")
        finally:
            if path != "-":
                f.close()


def _shown(path: str) -> str:
    from ..sources.files import display_path

    return display_path(path)
