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
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..findings import InputError

if TYPE_CHECKING:
    from .prefilter import IdleFilter

# v1alpha1 is what 1.7-1.8 apiservers wrote (older captures); its fields are a subset the detections read alike.
V1 = "audit.k8s.io/v1"  # what today's apiservers write: compared first, as a fresh string is not hashed
API_VERSIONS = frozenset({V1, "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"})
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
        return api is None or (isinstance(api, str) and api in API_VERSIONS)  # a list would not even hash
    return kind is None and "auditID" in obj


BLOCK = 1 << 16  # 64 KiB: below the allocator's mmap threshold, and its lines stay in the CPU caches


def bounded_lines(f: Any, limit: int) -> Iterator[bytes | None]:
    """Lines of a binary stream, never holding more than `limit` bytes: a longer line is skipped to its end and
    reported as None (a hostile or corrupt log cannot exhaust memory)."""
    for block in line_blocks(f, limit):
        yield from block


def line_blocks(f: Any, limit: int, size: int = BLOCK) -> Iterator[Iterable[bytes | None]]:
    """Lines in batches, each with its newline (the stream's last line may have none): big blocks are read and
    their whole lines iterated by io.BytesIO in C. A line longer than `limit` (newline not counted) becomes None;
    its bytes are dropped as they arrive, so memory stays bounded.

    BytesIO rather than bytes.split: split makes the block's ~80 lines at once, past the allocator's per-size
    cache, where BytesIO makes each as it is read and the line before it is freed by then; over the bench log
    the loop with the parse costs ~4,000 fewer instructions a line, ~15 % less CPU time."""
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
        start = nl + 1
        if skipping:
            yield [None]
            skipping = False
        elif pending:
            line = b"".join(pending) + chunk[:start]
            # The pending piece plus this chunk's head may make the line too long.
            yield [line if len(line) - 1 <= limit else None]
            pending, pending_len = [], 0
        else:
            start = 0
        end = chunk.rfind(b"\n") + 1
        if end < len(chunk):
            last = chunk[end:]
            if len(last) > limit:
                skipping = True
            else:
                pending, pending_len = [last], len(last)
        if end > start:
            lines = io.BytesIO(chunk[start:end] if start or end < len(chunk) else chunk)
            yield [p if len(p) - 1 <= limit else None for p in lines] if check_each else lines
    if skipping:
        yield [None]
    elif pending:
        yield [b"".join(pending)]


BOM = b"\xef\xbb\xbf"
PEEK_LINES = 8  # lines looked at after an unparsable first line to tell JSON lines from one pretty-printed document


def _decode_error(raw: bytes) -> str | None:
    """Why a line is not JSON (orjson's reason: truncated, invalid UTF-8, nested too deep), None when it is."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return exc.msg
    return None


def _is_json_line(raw: bytes) -> bool:
    """A whole JSON object on one line: what the log backend writes, never what a pretty-printer does."""
    raw = raw.strip()
    return raw[:1] == b"{" and raw[-1:] == b"}" and _decode_error(raw) is None


def iter_stream(f: Any, shown: str, stats: ReadStats, max_document: int = DEFAULT_MAX_DOCUMENT,
                first_line: int = 1, allow_document: bool = True,
                skip: IdleFilter | None = None) -> Iterator[dict[str, Any]]:
    """Events from an open binary stream (or an iterable of lines), one JSON value per line; a pretty-printed
    document is read whole. Lines longer than max_document are skipped and counted.

    The format is decided robustly: a first line that does not parse is a pretty-printed document only when none
    of the next few lines is a JSON object either; otherwise (a corrupt first line of JSON lines: truncated,
    invalid UTF-8, too deep) that line is named and the rest is read. A document that does not parse as a whole is
    read line by line too, so no file is ever dropped whole. `skip` (prefilter.idle_filter) sees each event of a
    JSON line first: one it returns True for is an event the analyzer has counted and has nothing to do with, so it
    is counted and not yielded."""
    lineno = first_line - 1
    if hasattr(f, "read"):
        head = f.readline(max_document)
        if not head:
            return
        if head.startswith(BOM):  # a UTF-8 byte order mark (editors, Windows exports) is not part of the JSON
            head = head[len(BOM):]
        if allow_document and head.lstrip()[:1] in (b"{", b"[") and head.endswith(b"\n") and _decode_error(head):
            peeked = [head]
            while len(peeked) <= PEEK_LINES and (nxt := f.readline(max_document)):
                peeked.append(nxt)
                if nxt.strip():
                    break
            if not any(_is_json_line(p) for p in peeked[1:]):
                yield from _whole_document(b"".join(peeked), f, shown, stats, max_document, lineno, skip)
                return
            blocks: Iterator[Any] = _chain([peeked], _prepend(b"", f, max_document))
        else:
            blocks = _prepend(head, f, max_document)
    else:
        blocks = iter([f])
    yield from _lines_to_events(blocks, shown, stats, max_document, lineno, skip)


def _chain(first: list[list[Any]], rest: Iterator[Iterable[Any]]) -> Iterator[Iterable[Any]]:
    yield from first
    yield from rest


def _lines_to_events(blocks: Iterable[Any], shown: str, stats: ReadStats, max_document: int,
                     lineno: int, skip: IdleFilter | None = None) -> Iterator[dict[str, Any]]:
    from .prefilter import events  # the loop, with the analyzer's idle verdict inline (prefilter.py)

    return events(blocks, shown, stats, max_document, lineno, skip)


def unparsed_line(raw: bytes | None, where: str, stats: ReadStats, max_document: int) -> Iterator[dict[str, Any]]:
    """A line orjson refused: an over-long line (None), a line with a byte order mark (files concatenated with
    their BOMs), blank, or an error."""
    if raw is None:
        stats.error(where, f"line longer than {max_document} bytes, skipped")
        return
    if raw.startswith(BOM) and _decode_error(raw[len(BOM):]) is None:
        yield from events_from_obj(orjson.loads(raw[len(BOM):]), where, stats)
    elif raw.strip():
        stats.error(where, f"not a JSON audit event ({_decode_error(raw)})")


def _prepend(head: bytes, f: Any, limit: int) -> Iterator[Iterable[Any]]:
    """The first line (already read; b"" if none is pending) followed by the rest in blocks; an over-long first
    line is finished here."""
    if not head:
        pass
    elif len(head) >= limit and not head.endswith(b"\n"):
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


def _whole_document(head: bytes, f: IO[bytes], shown: str, stats: ReadStats, limit: int,
                    lineno: int, skip: IdleFilter | None = None) -> Iterator[dict[str, Any]]:
    buf = bytearray(head)
    while len(buf) <= limit and (chunk := f.read(1 << 20)):
        buf += chunk
    if len(buf) <= limit:
        try:
            obj = orjson.loads(bytes(buf))
        except orjson.JSONDecodeError:
            pass
        else:
            yield from events_from_obj(obj, shown, stats)
            return
    # Not one document (or too big to be read as one): read it as JSON lines, each bad line named.
    data = bytes(buf)
    cut = data.rfind(b"\n") + 1
    lines: list[Any] = data[:cut].split(b"\n")[:-1]
    rest = data[cut:]
    tail: Iterator[Iterable[Any]] = _prepend(rest + f.readline(limit), f, limit) if rest else line_blocks(f, limit)
    yield from _lines_to_events(_chain([lines], tail), shown, stats, limit, lineno, skip)


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
                max_document: int = DEFAULT_MAX_DOCUMENT, skip: IdleFilter | None = None) -> Iterator[dict[str, Any]]:
    """All events of all paths (directories: their files, oldest first), in order; an unreadable path is one
    error and the others are still read."""
    for path in expand(paths):
        shown = "-" if path == "-" else _shown(path)
        try:
            f = open_log(path, stdin)
        except OSError as exc:
            stats.error(shown, exc.strerror or str(exc))
            continue
        events, bad, shown_errors = stats.events, stats.bad_lines, len(stats.errors)
        try:
            yield from iter_stream(f, shown, stats, max_document, skip=skip)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            stats.error(shown, f"read failed: {exc}")
        else:
            if stats.events == events and stats.bad_lines > bad:
                # Nothing in it is an audit event: one line for the file, not one per line.
                first = stats.errors[shown_errors] if len(stats.errors) > shown_errors else None
                del stats.errors[shown_errors:]
                stats.bad_lines = bad
                where = first.file.removeprefix(shown).lstrip(":") if first else ""
                hint = f" ({'line ' + where + ': ' if where else ''}{first.message})" if first else ""
                stats.error(shown, f"not an audit log{hint}")
        finally:
            if path != "-":
                f.close()


def _shown(path: str) -> str:
    from ..formats.paths import display_path  # not sources.files: no YAML import on the audit path

    return display_path(path)
