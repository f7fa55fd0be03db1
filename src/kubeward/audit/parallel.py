"""`audit analyze --workers N`: split a plain JSON-lines file into byte ranges on line boundaries and analyze them
in separate processes. Stateless detections run in the workers; the inputs of the stateful burst detector (the few
401/403 events) travel back and are replayed in log order by the parent, so bursts equal a single-process run.
Per chunk only: once-per-request dedup (exec stages straddling a boundary), unexpected-source's once-per-identity
memory, escalation-binding's memory of roles created earlier in the log and the memory of workloads planted in
kube-system (pod-in-kube-namespace)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..alerts import Alert
from ..findings import InputError
from .analyzer import Analyzer, AnalyzerConfig, Stats
from .reader import BLOCK, DEFAULT_MAX_DOCUMENT, ReadStats, bounded_lines, iter_stream


@dataclass(slots=True)
class ChunkResult:
    alerts: list[dict[str, Any]]
    stats: Stats
    burst_inputs: list[dict[str, Any]]
    bad_lines: int
    errors: list[InputError]


def chunk_ranges(path: str, n: int) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    step = max(1, size // max(1, n))
    bounds = [min(size, i * step) for i in range(n)] + [size]
    return [(bounds[i], bounds[i + 1]) for i in range(n) if bounds[i] < bounds[i + 1]]


def _lines(path: str, start: int, end: int, limit: int = DEFAULT_MAX_DOCUMENT) -> Iterator[bytes | None]:
    """The lines that begin inside [start, end): a line belongs to the chunk where its first byte is."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            # Finish the line in progress at start-1 (just its newline when a line begins exactly at start).
            while (piece := f.readline(BLOCK)) and not piece.endswith(b"\n"):
                pass
        pos = f.tell()
        if pos < end:
            yield from bounded_lines(_Window(f, end - pos), limit)


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


def analyze_chunk(args: tuple[str, str, int, int, AnalyzerConfig, str | None]) -> ChunkResult:
    path, shown, start, end, config, rules_path = args
    from .detections import Settings, builtin
    from .rules import load_rules_file

    custom, settings = load_rules_file(rules_path) if rules_path else ([], Settings())
    dets = builtin(settings) + custom
    an = Analyzer(dets, config, stateful=False)
    an.burst_inputs = []
    rs = ReadStats()
    alerts: list[dict[str, Any]] = []
    where = f"{shown}@{start}" if start else shown
    for ev in iter_stream(_lines(path, start, end), where, rs, allow_document=False):  # an iterable of lines
        for a in an.feed(ev):
            alerts.append(a.to_json())
    return ChunkResult(alerts, an.stats, an.burst_inputs, rs.bad_lines, rs.errors)


def analyze_file_parallel(path: str, shown: str, workers: int, config: AnalyzerConfig, rules_path: str | None,
                          read_stats: ReadStats, parent: Analyzer | None = None) -> tuple[list[Alert], Stats]:
    """Alerts and statistics of the workers; the burst inputs are replayed through `parent` (whose stats count
    those alerts), so a burst spanning several files or a serial part of the run is still seen."""
    ranges = chunk_ranges(path, workers * 4)
    jobs = [(path, shown, s, e, config, rules_path) for s, e in ranges]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers) as pool:
        results = pool.map(analyze_chunk, jobs, chunksize=1)
    alerts: list[Alert] = []
    total = Stats()
    own_parent = parent is None
    replay = parent if parent is not None else Analyzer([], config)
    for r in results:
        alerts.extend(Alert.from_json(a) for a in r.alerts)
        total.merge(r.stats)
        read_stats.bad_lines += r.bad_lines
        read_stats.errors.extend(r.errors[: max(0, 20 - len(read_stats.errors))])
        for ev in r.burst_inputs:
            alerts.extend(replay.feed_burst_only(ev))
    read_stats.events += total.events
    if own_parent:
        total.merge(Stats(0, replay.stats.alerts, replay.stats.by_rule))
    return alerts, total
