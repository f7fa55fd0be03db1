"""OSV affected-range evaluation, as the OSV schema specifies it (https://ossf.github.io/osv-schema/, "Evaluation"
and the `affected[].ranges[].events` and `affected[].versions` fields).

A version is affected by an `affected` entry when it is listed in `versions`, or when some range includes it.
For one range: the events other than `limit` are sorted by version (`introduced: "0"` first) and walked; an
`introduced` at or below the version sets affected, a `fixed` at or below it clears it, a `last_affected`
strictly below it clears it. `limit` events bound the range from above: when a range has any, the version must be
below one of them (`"*"` is no bound). Only SEMVER ranges are ordered here; ECOSYSTEM and GIT ranges are reported
as not evaluable rather than read as "not affected".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .semver import ZERO, SemverError, Version, parse

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class OSVError(ValueError):
    """A record or range the evaluator cannot read (the message names the field)."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # introduced | fixed | last_affected | limit
    version: Version | None  # None: limit "*" (no upper bound)


@dataclass(frozen=True, slots=True)
class Range:
    events: tuple[Event, ...]  # non-limit events in the order evaluation walks them
    limits: tuple[Event, ...] = ()

    def includes(self, v: Version) -> bool:
        if self.limits and not any(e.version is None or v < e.version for e in self.limits):
            return False
        affected = False
        for e in self.events:
            assert e.version is not None
            if e.kind == "introduced":
                if v >= e.version:
                    affected = True
            elif e.kind == "fixed":
                if v >= e.version:
                    affected = False
            elif v > e.version:  # last_affected
                affected = False
        return affected

    def fixes_above(self, v: Version) -> list[Version]:
        """The `fixed` versions above v: where an upgrade leaves this range (the nearest first)."""
        return sorted(e.version for e in self.events if e.kind == "fixed" and e.version is not None and e.version > v)


def _event_version(kind: str, text: Any, where: str) -> Version | None:
    if not isinstance(text, str):
        raise OSVError(f"{where}.{kind}: not a string")
    if kind == "introduced" and text == "0":
        return ZERO
    if kind == "limit" and text == "*":
        return None
    try:
        return parse(text)
    except SemverError as exc:
        raise OSVError(f"{where}.{kind}: {exc}") from None


def parse_range(raw: Mapping[str, Any], where: str = "range") -> Range:
    """A SEMVER range; OSVError for another type or a malformed event (never a silent 'not affected')."""
    if not isinstance(raw, Mapping):
        raise OSVError(f"{where}: not an object")
    if raw.get("type") != "SEMVER":
        raise OSVError(f"{where}.type: {raw.get('type')!r} ranges are not evaluated (only SEMVER)")
    events_raw = raw.get("events")
    if not isinstance(events_raw, list) or not events_raw:
        raise OSVError(f"{where}.events: must be a non-empty list")
    events: list[Event] = []
    limits: list[Event] = []
    for i, e in enumerate(events_raw):
        if not isinstance(e, Mapping) or len(e) != 1 or next(iter(e)) not in EVENT_KINDS:
            raise OSVError(f"{where}.events[{i}]: must have exactly one of {', '.join(EVENT_KINDS)}")
        kind, text = next(iter(e.items()))
        ev = Event(kind, _event_version(kind, text, f"{where}.events[{i}]"))
        (limits if kind == "limit" else events).append(ev)
    # The schema's evaluation sorts the events by version; a stable sort keeps the written order among equals.
    events.sort(key=lambda ev: ev.version.key if ev.version is not None else ())
    return Range(tuple(events), tuple(limits))


@dataclass(frozen=True, slots=True)
class Affected:
    """One `affected[]` entry: a package and where its versions are vulnerable."""

    ecosystem: str
    package: str
    ranges: tuple[Range, ...]
    versions: frozenset[str] = frozenset()
    cvss_v3: str = ""

    def includes(self, v: Version, text: str | None = None) -> bool:
        return (text or str(v)) in self.versions or any(r.includes(v) for r in self.ranges)

    def fixed_versions(self, v: Version) -> list[Version]:
        return sorted({f for r in self.ranges if r.includes(v) for f in r.fixes_above(v)}, key=lambda x: x.key)


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    summary: str
    published: str
    modified: str
    affected: tuple[Affected, ...]
    references: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


def parse_record(raw: Mapping[str, Any]) -> Record:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise OSVError("record: no string id")
    rid = raw["id"]
    affected: list[Affected] = []
    for i, a in enumerate(raw.get("affected") or []):
        where = f"{rid}: affected[{i}]"
        pkg = a.get("package") if isinstance(a, Mapping) else None
        if not isinstance(pkg, Mapping) or not isinstance(pkg.get("name"), str):
            raise OSVError(f"{where}.package: no name")
        ranges = tuple(parse_range(r, f"{where}.ranges[{j}]") for j, r in enumerate(a.get("ranges") or []))
        versions = a.get("versions") or []
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise OSVError(f"{where}.versions: must be a list of strings")
        cvss = next((s.get("score", "") for s in (a.get("severity") or raw.get("severity") or [])
                     if isinstance(s, Mapping) and str(s.get("type", "")).startswith("CVSS_V3")), "")
        affected.append(Affected(str(pkg.get("ecosystem", "")), pkg["name"], ranges, frozenset(versions), cvss))
    refs = tuple(str(r.get("url")) for r in raw.get("references") or [] if isinstance(r, Mapping) and r.get("url"))
    return Record(rid, str(raw.get("summary", "")), str(raw.get("published", "")), str(raw.get("modified", "")),
                  tuple(affected), refs, tuple(str(a) for a in raw.get("aliases") or []))


def affecting(records: Iterable[Record], package: str, v: Version) -> list[tuple[Record, Affected]]:
    """Every (record, entry) of `package` whose ranges or versions include v."""
    return [(r, a) for r in records for a in r.affected if a.package == package and a.includes(v)]
