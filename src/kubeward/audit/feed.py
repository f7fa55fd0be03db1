"""Handing decoded audit documents to the analyzer so that one bad event is one error: used by `audit serve`
(webhook batches) and `audit watch` (log lines). A reader, analyzer or sink failing on one event never costs the
rest of a batch or stops a long-running command; errors are counted and the first few named (ReadStats)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .analyzer import Analyzer
from .reader import ReadStats, events_from_obj


def batch_events(obj: Any, where: str, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """The events of one decoded document (an Event or an EventList), item by item: an item the reader cannot use,
    or that makes it fail, is one counted error and the rest of the batch goes on."""
    items = obj.get("items") if isinstance(obj, dict) and obj.get("kind") == "EventList" else None
    if not isinstance(items, list):
        try:
            found = list(events_from_obj(obj, where, stats))
        except Exception:
            stats.error(where, "not an audit Event")
            return
        yield from found
        return
    for i, item in enumerate(items):
        at = f"{where}: items[{i}]"
        if isinstance(item, dict) and item.get("kind") == "EventList":
            stats.error(at, "an EventList inside an EventList")
            continue
        try:
            found = list(events_from_obj(item, at, stats))
        except Exception:
            stats.error(at, "not an audit Event")
            continue
        yield from found


def analyze(analyzer: Analyzer, events: Iterator[dict[str, Any]], on_alert: Callable[[Any], None],
            where: str, stats: ReadStats) -> int:
    """Feed events one by one; an event the analyzer or a sink fails on is one error, the others go on."""
    n = 0
    for ev in events:
        n += 1
        try:
            alerts = analyzer.feed(ev)
        except Exception as exc:
            stats.error(where, f"event {str(ev.get('auditID'))[:64]!r} could not be analyzed: "
                               f"{type(exc).__name__}")
            continue
        for a in alerts:
            try:
                on_alert(a)
            except Exception as exc:
                stats.error(where, f"alert could not be emitted: {type(exc).__name__}")
    return n
