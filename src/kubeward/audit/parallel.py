"""`audit analyze --workers N`: split a plain JSON-lines file into byte ranges on line boundaries, one per process;
the first range is analyzed by the calling process itself, each other by a child forked once the analyzer is
built (no re-import, no rules compiled again, no events shipped between processes: each child reads its own range
of the file). Children return their alerts and statistics through a pipe.

Stateless detections run where the range is read; the inputs of the stateful burst detector (the few 401/403
events) travel back with the position among the range's alerts where they occurred, and are replayed in log order
by the parent's own burst detector, so burst alerts equal and sit where a single-process run puts them. The first
range shares all state with the rest of the run; a later range starts from the state the analyzer had before the
file. Unexpected-source alerts come back with their (user, address, agent) identity and the parent keeps only the
first in log order, as one process does. For a report that is a JSON document (`records`), a child sends its alerts
as their JSON records (Alert.to_json, written by orjson as the report lays them out) rather than pickled Alerts,
which cost several times more to write and to read, on the path the report waits for; the parent splices them
into a JSON report unread (report_json). Still per range: once-per-request dedup of exec stages straddling a
boundary, escalation-binding's memory of roles created earlier in the log and the memory of workloads planted in
kube-system."""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..alerts import Alert
from ..findings import InputError, Severity
from .analyzer import Analyzer, Stats
from .reader import BLOCK, DEFAULT_MAX_DOCUMENT, ReadStats, _lines_to_events, line_blocks

# An alert record's line breaks inside a JSON report (formats.document: orjson's OPT_INDENT_2, records at depth 2).
INDENT = b"\n    "


class Record:
    """An alert a worker sent as its record, already written as the JSON report holds it (`raw`): what a JSON (or
    YAML) report and the exit code read of it."""

    __slots__ = ("raw", "rule", "severity")

    def __init__(self, raw: bytes, rule: str, severity: Severity) -> None:
        self.raw, self.rule, self.severity = raw, rule, severity

    @classmethod
    def of(cls, alert: Alert) -> Record:
        return cls(orjson.dumps(alert.to_json(), option=orjson.OPT_INDENT_2).replace(b"\n", INDENT), alert.rule,
                   alert.severity)

    def to_json(self) -> dict[str, Any]:
        return orjson.loads(self.raw)


@dataclass(slots=True)
class ChunkResult:
    alerts: list[Any]  # Alert, or Record once a child's records are read back
    stats: Stats
    burst_inputs: list[tuple[int, dict[str, Any]]]  # (alerts before it in this range, the event's burst view)
    source_keys: dict[int, tuple[Any, ...]]  # unexpected-source alert index -> its (user, address, agent)
    events: int
    bad_lines: int
    errors: list[InputError]
    records: list[bytes] | None = None  # a child's alerts as their JSON records (alerts then empty)
    rules: list[str] | None = None  # their rules
    severities: bytes = b""  # their severities, one byte each

    def pack(self) -> None:
        """Alerts to records, in the child, written as the report holds them (report_json splices them)."""
        records = [Record.of(a) for a in self.alerts]
        self.alerts = []
        self.records = [r.raw for r in records]
        self.rules = [r.rule for r in records]
        self.severities = bytes(int(r.severity) for r in records)

    def unpack(self) -> None:
        """Records back to alerts, in the parent."""
        if self.records is not None and self.rules is not None:
            by_value = {int(s): s for s in Severity}
            self.alerts = [Record(r, rule, by_value[s]) for r, rule, s in zip(self.records, self.rules,
                                                                               self.severities, strict=True)]
            self.records = self.rules = None
            self.severities = b""


def report_json(alerts: list[Any], rest: dict[str, Any]) -> bytes:
    """The JSON report {"alerts": [...], **rest} byte for byte as formats.document writes it (orjson, OPT_INDENT_2),
    the workers' records spliced in as they came rather than parsed and written again (the parent's serial part
    after the workers: half the report)."""
    if not any(a.__class__ is Record for a in alerts):
        return orjson.dumps({"alerts": [a.to_json() for a in alerts], **rest}, option=orjson.OPT_INDENT_2)
    pieces: list[bytes] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if run:  # b"[\n  {...},\n  {...}\n]": the records between the brackets, two spaces deeper
            pieces.append(orjson.dumps(run, option=orjson.OPT_INDENT_2)[4:-2].replace(b"\n", b"\n  "))
            run.clear()

    for a in alerts:
        if a.__class__ is Record:
            flush()
            pieces.append(a.raw)
        else:
            run.append(a.to_json())
    flush()
    tail = orjson.dumps(rest, option=orjson.OPT_INDENT_2)  # b'{\n  "stats": ...\n}'
    return b'{\n  "alerts": [\n    ' + b",\n    ".join(pieces) + b"\n  ],\n" + tail[2:]


def chunk_ranges(path: str, n: int) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    step = max(1, size // max(1, n))
    bounds = [min(size, i * step) for i in range(n)] + [size]
    return [(bounds[i], bounds[i + 1]) for i in range(n) if bounds[i] < bounds[i + 1]]


def _lines(path: str, start: int, end: int, limit: int = DEFAULT_MAX_DOCUMENT) -> Iterator[bytes | None]:
    """The lines that begin inside [start, end): a line belongs to the chunk where its first byte is."""
    for block in _blocks(path, start, end, limit):
        yield from block


class _Window:
    """A file read up to a byte budget, then on to the end of the line that straddles the budget's end."""

    def __init__(self, f: Any, budget: int) -> None:
        self.f, self.budget, self.done = f, budget, False

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        if self.budget > 0:
            data = self.f.read(min(size, self.budget))
            self.budget -= len(data)
            if not data or (self.budget == 0 and data.endswith(b"\n")):
                self.done = True
            return data
        rest = self.f.readline(BLOCK)  # the straddling line, in pieces if it is long
        if not rest or rest.endswith(b"\n"):
            self.done = True
        return rest


def _blocks(path: str, start: int, end: int, limit: int = DEFAULT_MAX_DOCUMENT) -> Iterator[Iterable[Any]]:
    """_lines in the reader's blocks (one list per read), which is what the analysis loop iterates."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            # Finish the line in progress at start-1 (just its newline when a line begins exactly at start).
            while (piece := f.readline(BLOCK)) and not piece.endswith(b"\n"):
                pass
        pos = f.tell()
        if pos < end:
            yield from line_blocks(_Window(f, end - pos), limit)


def analyze_range(an: Analyzer, path: str, shown: str, start: int, end: int, *, defer_bursts: bool,
                  limit: int = DEFAULT_MAX_DOCUMENT) -> ChunkResult:
    """One byte range through `an`. With defer_bursts the burst inputs are collected with their positions instead
    of fed (a child's, or a range analyzed out of order); otherwise `an` is the run's own analyzer, bursts live."""
    from .prefilter import idle_filter

    pending: list[dict[str, Any]] | None = None
    if defer_bursts:
        an.burst = None
        pending = an.burst_inputs = []
    rs = ReadStats()
    alerts: list[Alert] = []
    deferred: list[tuple[int, dict[str, Any]]] = []
    where = f"{shown}@{start}" if start else shown
    keys: dict[int, tuple[Any, ...]] = {}
    source = an.source if defer_bursts else None
    feed = an.feed
    for ev in _lines_to_events(_blocks(path, start, end, limit), where, rs, limit, 0, idle_filter(an)):
        out = feed(ev)
        if out:
            if source is not None:
                for i, a in enumerate(out):  # check() remembered its key just before returning the alert
                    if a.rule == source.RULE:
                        keys[len(alerts) + i] = source.last_key()
            alerts.extend(out)
        if pending:
            deferred.extend((len(alerts), b) for b in pending)
            pending.clear()
    return ChunkResult(alerts, an.stats, deferred, keys, rs.events, rs.bad_lines, rs.errors)


def _uncount(stats: Stats, rule: str) -> None:
    stats.alerts -= 1
    stats.by_rule[rule] -= 1
    if not stats.by_rule[rule]:
        del stats.by_rule[rule]


def _child(an: Analyzer, path: str, shown: str, start: int, end: int, fd: int, records: bool) -> None:
    """A forked child: analyze the range with a copy of the parent's analyzer, write the result, exit without
    running the parent's clean-up (atexit, buffered output)."""
    code = 0
    try:
        an.stats = Stats()
        result: Any = analyze_range(an, path, shown, start, end, defer_bursts=True)
        if records:
            result.pack()
    except BaseException as exc:  # reported by the parent, which then reads the range itself
        result, code = f"{type(exc).__name__}: {exc}", 1
    try:
        with os.fdopen(fd, "wb") as out:
            pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(code)


def _fork(an: Analyzer, path: str, shown: str, start: int, end: int, records: bool) -> tuple[int, Any]:
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(an, path, shown, start, end, w, records)
    os.close(w)
    return pid, os.fdopen(r, "rb")


def analyze_file_parallel(path: str, shown: str, workers: int, parent: Analyzer,
                          read_stats: ReadStats, *, records: bool = False) -> list[Any]:
    """The alerts of the file in log order; `parent` (the run's analyzer) analyzes the first range and replays
    the other ranges' burst inputs, and its stats count every range. With `records` (the caller reads only
    to_json(), rule and severity of each alert) a child's alerts come back as Records, and the first range's
    become Records too while the children finish."""
    ranges = chunk_ranges(path, workers)
    can_fork = hasattr(os, "fork")
    children = [_fork(parent, path, shown, s, e, records) if can_fork else None for s, e in ranges[1:]]
    first = analyze_range(parent, path, shown, *ranges[0], defer_bursts=False) if ranges else None
    if first is not None and records and children and children[0] is not None:
        # The first range's alerts written as records while the children write theirs: the report after the
        # workers is then only spliced together (report_json).
        first.alerts = [Record.of(a) for a in first.alerts]
    results: list[ChunkResult] = [first] if first is not None else []
    for (s, e), child in zip(ranges[1:], children, strict=True):
        got: Any = None
        if child is not None:
            pid, pipe = child
            with pipe:
                try:
                    got = pickle.load(pipe)
                    if isinstance(got, ChunkResult):
                        got.unpack()
                except (EOFError, pickle.UnpicklingError, orjson.JSONDecodeError, ValueError, KeyError):
                    got = "no result"
            os.waitpid(pid, 0)
        if not isinstance(got, ChunkResult):  # no fork here, or the child failed: read the range in this process
            if got is not None:
                print(f"{shown}: worker for bytes {s}-{e} failed ({got}); analyzed in the main process",
                      file=sys.stderr)
            saved, parent.stats = parent.stats, Stats()
            burst, inputs = parent.burst, parent.burst_inputs
            try:
                got = analyze_range(parent, path, shown, s, e, defer_bursts=True)
            finally:
                parent.stats, parent.burst, parent.burst_inputs = saved, burst, inputs
        results.append(got)
    alerts: list[Alert] = []
    dropped = 0  # the children's; the parent's own count is reassigned by every burst replay
    for i, r in enumerate(results):
        if i:
            dropped += r.stats.state_dropped
            r.stats.state_dropped = 0
            parent.stats.merge(r.stats)
            bursts, b = r.burst_inputs, 0
            for j, a in enumerate(r.alerts):
                while b < len(bursts) and bursts[b][0] <= j:
                    alerts.extend(parent.feed_burst_only(bursts[b][1]))
                    b += 1
                key = r.source_keys.get(j)
                if key is not None and parent.source is not None and not parent.source.first_time(key):
                    _uncount(parent.stats, a.rule)  # an earlier range already alerted on this identity
                    continue
                alerts.append(a)
            for _, view in bursts[b:]:
                alerts.extend(parent.feed_burst_only(view))
        else:
            alerts.extend(r.alerts)
        read_stats.events += r.events
        read_stats.bad_lines += r.bad_lines
        read_stats.errors.extend(r.errors[: max(0, 20 - len(read_stats.errors))])
    parent.stats.state_dropped += dropped
    return alerts
