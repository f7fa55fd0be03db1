"""The analyzer's verdict "nothing to do but count it" for a parsed event, in as few dictionary lookups as Python
allows, taken inside the reader's loop so such an event never travels through the generators and Analyzer.feed.

Most of a log (leases, watches, node status patches, reads of ordinary objects) reaches no detection; for those
feed's dispatch, user gates and completion hooks (source rules, bursts) cost more than parsing the line. The
filter answers exactly what feed would do: True only when feed would raise no alert and change no state, i.e. the
dispatch table has no rule for (stage, resource, subresource, verb) or only rules that leave the control plane
alone and the caller is the control plane (identities.py), no user-gated rule names the caller, there is
no impersonatedUser, and on ResponseComplete the response is not a 401/403 (bursts) and the (connection address,
user agent) pair is one the source rules already found allowed. Anything unusual (no stage or objectRef, a field
of an unexpected type, a flattened sourceIPs) is left to feed.

The verdict is written inside the loop over the lines (`events`, the reader's only loop over JSON lines), not
called per event: most events end there, and a call, the per-event counters and the way out of a function were a
measurable part of their cost. The events are counted per block (its lines less those the full path took; the
idle ones, those not yielded) and written to the statistics when the block ends or the consumer stops: read
between two events of a block, the counts are the earlier blocks' (nothing reads them before the end).

The decision is taken after orjson has parsed the line, not from its raw bytes: a pattern that proves a raw line
is JSON and reads its fields exactly (escapes such as "\\u0073ecrets", key order, duplicate keys) was measured to
cost as much as the parse itself, and skipping the proof would count corrupt lines as events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from .reader import API_VERSIONS, V1, ReadStats, events_from_obj, unparsed_line

if TYPE_CHECKING:
    from .analyzer import Analyzer

NOTHING, CALLER, FEED = 0, 1, 2


def _same(ev: Any) -> Any:
    return ev


class IdleFilter:
    """The analyzer's configuration as the idle verdict reads it, read once (make it after the analyzer is set up:
    workers set burst_inputs first). `idle(ev)` is the verdict on one parsed event; `events` takes it inline."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        # resource -> True when no dispatched rule names it (most of a log: leases, events of kinds no rule
        # watches), so its verdict is NOTHING whatever the stage, subresource and verb: one lookup, no key built.
        self.quiet_resources: dict[Any, bool] = {}
        # (stage, resource, subresource, verb) -> NOTHING (no rule), CALLER (rules that all leave the control
        # plane alone, so nothing when the caller is exempt: Analyzer._apply returns before anything else) or FEED.
        self.table: dict[tuple[Any, Any, Any, Any], int] = {}
        self.capacity = analyzer.memo_capacity
        self.exempt = analyzer._identities.exempt
        self.by_user = analyzer._by_user
        # One user-gated name (the built-ins: system:anonymous) is compared, not hashed: the freshly parsed user
        # name of an event no rule wants is otherwise never hashed. Anything but a string takes feed's path.
        self.only_user = next(iter(self.by_user)) if len(self.by_user) == 1 else None
        self.stats = analyzer.stats
        self.hooks = analyzer.complete_hooks
        source = analyzer.source
        # Only strings are ever added, so an address or agent of anything else is simply not in them.
        self.quiet_ips = source._quiet_ips if source is not None else None
        self.quiet_agents = source._quiet_agents if source is not None else set()
        self.gate = "impersonatedUser" if analyzer._keyed else None

    def resource_quiet(self, resource: Any) -> bool:
        q = not any(d.resources is None or resource in d.resources for d in self.analyzer._plain)
        if len(self.quiet_resources) < self.capacity:
            self.quiet_resources[resource] = q
        return q

    def verdict(self, key: tuple[Any, Any, Any, Any]) -> int:
        from .detections import Detection

        dets = self.analyzer._candidates(*key)
        v = FEED if dets else NOTHING
        if dets and all(d.__class__ is Detection and d.exempt_control_plane for d in dets):
            v = CALLER
        if len(self.table) < self.capacity:
            self.table[key] = v
        return v

    def __call__(self, ev: dict[str, Any]) -> bool:
        """True when Analyzer.feed(ev) would return no alert and change nothing but the event count, which it
        then has counted (analyzer.stats.events); False for anything but one plain Event (feed's own path)."""
        rs = ReadStats()
        return next(events([[ev]], "", rs, 0, 0, self, _same), None) is None and rs.events == 1


def idle_filter(analyzer: Analyzer) -> IdleFilter | None:
    """The filter of `analyzer`'s events; None when the analyzer has rules gated on a top-level key other than
    impersonatedUser (the filter does not look for them)."""
    return IdleFilter(analyzer) if analyzer.prefilter_ok() else None


def events(blocks: Iterable[Any], shown: str, stats: ReadStats, max_document: int, lineno: int,
           idle: IdleFilter | None = None,
           loads: Callable[[Any], Any] = orjson.loads) -> Iterator[dict[str, Any]]:
    """The events of blocks of JSON lines (reader.line_blocks), each counted in `stats`; with `idle`, an event it
    finds idle is counted by the analyzer too and not yielded. A line that is not one plain Event (an EventList,
    a BOM, bad JSON, an over-long line: None) takes the reader's full path."""
    judge = idle is not None
    if idle is not None:
        quiet_resources, resource_quiet, table, verdict = (idle.quiet_resources, idle.resource_quiet, idle.table,
                                                           idle.verdict)
        exempt, gate, by_user, only_user, hooks = idle.exempt, idle.gate, idle.by_user, idle.only_user, idle.hooks
        quiet_ips, quiet_agents, astats = idle.quiet_ips, idle.quiet_agents, idle.stats
    for block in blocks:
        # Counted per block, not per line: its plain events are its lines but those the full path took (and
        # counted); the idle ones, those not yielded. Written when the block ends or the consumer stops.
        first, other, fed = lineno, 0, 0
        try:
            for raw in block:
                lineno += 1
                try:
                    ev = loads(raw)
                except orjson.JSONDecodeError:  # None (an over-long line) too
                    other += 1
                    yield from unparsed_line(raw, f"{shown}:{lineno}", stats, max_document)
                    continue
                try:  # the common case checks nothing else (anything else raises or fails: the full path)
                    api = ev["apiVersion"]
                    plain = ev["kind"] == "Event" and (api == V1 or api in API_VERSIONS) and ev.__class__ is dict
                except (KeyError, TypeError):  # no such key, not a dict, an unhashable apiVersion
                    plain = False
                if not plain:
                    other += 1
                    yield from events_from_obj(ev, f"{shown}:{lineno}", stats)
                    continue
                if judge:
                    # The verdict (module docstring). Subscripts, not .get: a missing field raises KeyError and the
                    # event takes feed's path, which reads it with its own defaults; an optional field (subresource,
                    # userAgent) is read as feed reads it. `busy`: feed has something to do with it.
                    try:
                        ref = ev["objectRef"]
                        stage = ev["stage"]
                        if ref.__class__ is not dict or stage is None:
                            busy = True  # feed normalises it (requestinfo.py): its own path
                        else:
                            resource = ref["resource"]  # an empty objectRef raises KeyError: feed's path
                            q = quiet_resources.get(resource)
                            if q is None:
                                q = resource_quiet(resource)
                            if q:
                                busy = False
                            else:
                                key = (stage, resource, ref.get("subresource"), ev["verb"])
                                v = table.get(key)
                                if v is None:
                                    v = verdict(key)
                                busy = v != NOTHING and (v == FEED or not exempt(ev))
                            if not busy and gate is not None:
                                busy = gate in ev
                            if not busy and by_user:
                                name = ev["user"]["username"]
                                if only_user is not None:
                                    busy = name.__class__ is not str or name == only_user
                                else:
                                    busy = name in by_user
                            if not busy and hooks and stage == "ResponseComplete":
                                c = ev["responseStatus"]["code"]
                                busy = c == 403 or c == 401 or (quiet_ips is not None and (
                                    ev["sourceIPs"][-1] not in quiet_ips
                                    or (ev.get("userAgent") or "") not in quiet_agents))
                    except (AttributeError, TypeError, KeyError, ValueError, IndexError):
                        busy = True  # something missing or of an unexpected type: feed's path (and its malformed count)
                    if not busy:
                        continue
                fed += 1
                yield ev
        finally:
            plain = lineno - first - other
            stats.events += plain
            if judge:
                astats.events += plain - fed
