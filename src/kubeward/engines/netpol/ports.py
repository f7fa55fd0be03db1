"""All ports at once: split 1-65535 per protocol into intervals no policy can tell apart, one matrix per interval.

Every numeric port, range bound and resolved named port in any rule is a cut point, so within an interval every
port gets the same answer and one representative port decides it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .classes import ClassIndex, ClassMatrix
from .model import PROTOCOLS
from .policy import PortMatch

MAX_PORT = 65535


def _cuts(idx: ClassIndex) -> dict[str, set[int]]:
    cuts: dict[str, set[int]] = {p: {1, MAX_PORT + 1} for p in PROTOCOLS}
    matchers: list[PortMatch] = []
    for pol in idx.cluster.policies:
        for rule in (*pol.ingress, *pol.egress):
            matchers.extend(rule.ports or ())
    for ap in idx.cluster.admin:
        for arule in (*ap.ingress, *ap.egress):
            matchers.extend(arule.ports or ())
    names = {(m.port, m.protocol) for m in matchers if isinstance(m.port, str)}
    for m in matchers:
        if m.protocol not in cuts or not m.valid:
            continue
        if isinstance(m.port, int):
            cuts[m.protocol].update((m.port, (m.end_port if m.end_port is not None else m.port) + 1))
    for name, proto, num in idx.named:
        if (name, proto) in names and proto in cuts:
            cuts[proto].update((num, num + 1))
    return cuts


@dataclass(slots=True)
class PortSpace:
    """Per protocol, the intervals and their matrices; answers "which ports may class s reach on class d"."""

    index: ClassIndex
    intervals: dict[str, list[tuple[int, int, ClassMatrix]]]

    @classmethod
    def build(cls, idx: ClassIndex) -> PortSpace:
        out: dict[str, list[tuple[int, int, ClassMatrix]]] = {}
        for proto, cuts in _cuts(idx).items():
            points = sorted(c for c in cuts if 1 <= c <= MAX_PORT + 1)
            out[proto] = [(lo, hi - 1, idx.matrix(lo, proto)) for lo, hi in itertools.pairwise(points)]
        return cls(idx, out)

    def allowed(self, s: int, d: int) -> dict[str, list[tuple[int, int]]]:
        """Allowed port ranges per protocol from class s to class d, adjacent ranges merged."""
        res: dict[str, list[tuple[int, int]]] = {}
        for proto, items in self.intervals.items():
            ranges: list[tuple[int, int]] = []
            for lo, hi, m in items:
                if m.rows[s] >> d & 1:
                    if ranges and ranges[-1][1] + 1 == lo:
                        ranges[-1] = (ranges[-1][0], hi)
                    else:
                        ranges.append((lo, hi))
            if ranges:
                res[proto] = ranges
        return res


def describe(allowed: dict[str, list[tuple[int, int]]]) -> str:
    """"All", "None", or e.g. "TCP 80,443,8000-8080; UDP 53" ("TCP all" when every TCP port is allowed)."""
    if not allowed:
        return "None"
    if all(allowed.get(p) == [(1, MAX_PORT)] for p in PROTOCOLS):
        return "All"
    parts = []
    for proto in PROTOCOLS:
        ranges = allowed.get(proto)
        if not ranges:
            continue
        if ranges == [(1, MAX_PORT)]:
            parts.append(f"{proto} all")
        else:
            parts.append(f"{proto} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges))
    return "; ".join(parts)


ALL_PORTS: dict[str, list[tuple[int, int]]] = {p: [(1, MAX_PORT)] for p in PROTOCOLS}
