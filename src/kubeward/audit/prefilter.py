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

The decision is taken after orjson has parsed the line, not from its raw bytes: a pattern that proves a raw line
is JSON and reads its fields exactly (escapes such as "\\u0073ecrets", key order, duplicate keys) was measured to
cost as much as the parse itself, and skipping the proof would count corrupt lines as events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analyzer import Analyzer

IdleFilter = Callable[[dict[str, Any]], bool]
NOTHING, CALLER, FEED = 0, 1, 2


def idle_filter(analyzer: Analyzer) -> IdleFilter | None:
    """`idle(ev)`: True when Analyzer.feed(ev) would return no alert and change nothing but the event count, which
    it then has counted (analyzer.stats.events). None when the analyzer has rules gated on a top-level key other
    than impersonatedUser (the filter does not look for them). Make it after the analyzer is set up (workers set
    burst_inputs first): it reads the analyzer's configuration once."""
    if not analyzer.prefilter_ok():
        return None
    from .detections import Detection

    candidates = analyzer._candidates
    exempt = analyzer._identities.exempt
    plain = analyzer._plain
    # resource -> True when no dispatched rule names it (most of a log: leases, events of kinds no rule watches),
    # so its verdict is NOTHING whatever the stage, subresource and verb: one lookup, no key built.
    quiet_resources: dict[Any, bool] = {}
    # (stage, resource, subresource, verb) -> NOTHING (no rule), CALLER (rules that all leave the control plane
    # alone, so nothing when the caller is exempt: Analyzer._apply returns before anything else) or FEED.
    table: dict[tuple[Any, Any, Any, Any], int] = {}
    capacity = analyzer.memo_capacity

    def resource_quiet(resource: Any) -> bool:
        q = not any(d.resources is None or resource in d.resources for d in plain)
        if len(quiet_resources) < capacity:
            quiet_resources[resource] = q
        return q

    def verdict(key: tuple[Any, Any, Any, Any]) -> int:
        dets = candidates(*key)
        v = FEED if dets else NOTHING
        if dets and all(d.__class__ is Detection and d.exempt_control_plane for d in dets):
            v = CALLER
        if len(table) < capacity:
            table[key] = v
        return v

    by_user = analyzer._by_user
    # One user-gated name (the built-ins: system:anonymous) is compared, not hashed: the freshly parsed user name
    # of an event no rule wants is otherwise never hashed. Anything but a string takes feed's path.
    only_user = next(iter(by_user)) if len(by_user) == 1 else None
    stats = analyzer.stats
    hooks = analyzer.complete_hooks
    source = analyzer.source
    # Only (address, agent) pairs of strings are ever added, so a pair of anything else is simply not in it.
    quiet = source._quiet if source is not None else None
    gate = "impersonatedUser" if analyzer._keyed else None

    def idle(ev: dict[str, Any]) -> bool:
        # Subscripts, not .get: a missing field raises KeyError and the event takes feed's path, which reads it
        # with its own defaults. An optional field (subresource, userAgent) is read as feed reads it.
        try:
            ref = ev["objectRef"]
            stage = ev["stage"]
            if ref.__class__ is not dict or stage is None:
                return False  # feed normalises it (requestinfo.py): its own path
            resource = ref["resource"]  # an empty objectRef raises KeyError: feed's path
            q = quiet_resources.get(resource)
            if q is None:
                q = resource_quiet(resource)
            if not q:
                key = (stage, resource, ref.get("subresource"), ev["verb"])
                v = table.get(key)
                if v is None:
                    v = verdict(key)
                if v and (v == FEED or not exempt(ev)):
                    return False
            if gate is not None and gate in ev:
                return False
            if by_user:
                name = ev["user"]["username"]
                if only_user is not None:
                    if name.__class__ is not str or name == only_user:
                        return False
                elif name in by_user:
                    return False
            if hooks and stage == "ResponseComplete":
                c = ev["responseStatus"]["code"]
                if c == 403 or c == 401:
                    return False
                if quiet is not None and (ev["sourceIPs"][-1], ev.get("userAgent") or "") not in quiet:
                    return False
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            return False  # something missing or of an unexpected type: feed's path (and its malformed count)
        stats.events += 1
        return True

    return idle
