"""Ranking: the cheapest path from each entry to a target (docs/paths.md "Scoring").

An edge's cost says how hard its step is (1 a direct use of what the object grants, 2 a step that needs a node
port or a known escape technique, 3 one that depends on scheduling or on the node being reachable); structural
edges (membership, network positions) cost 0. A path's score is the sum of its costs, ties broken by the number of
steps and then by text, so the order is stable. A reverse Dijkstra from the target gives every node its cheapest
way there at once; each first step out of a source then yields one path (the cheapest through that step), so
`--from internet` lists one path per exposed entry.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable

from ..records import record
from .graph import Edge, Graph, is_hidden


@record(frozen=True)
class Step:
    """One visible step: the node reached and the edges behind it (hidden network positions folded in)."""

    node: str
    edges: tuple[Edge, ...]

    @property
    def main(self) -> Edge:
        return max(self.edges, key=lambda e: e.cost)

    def to_json(self) -> dict[str, object]:
        e = self.main
        return {**e.to_json(), "from": self.edges[0].src, "to": self.node}


@record(frozen=True)
class Path:
    source: str
    target: str
    edges: tuple[Edge, ...]

    @property
    def cost(self) -> int:
        return sum(e.cost for e in self.edges)

    @property
    def steps(self) -> list[Step]:
        out: list[Step] = []
        pending: list[Edge] = []
        for e in self.edges:
            pending.append(e)
            if not is_hidden(e.dst):
                out.append(Step(e.dst, tuple(pending)))
                pending = []
        return out

    @property
    def key(self) -> tuple[str, ...]:
        """The visible nodes, what tests and the scan compare."""
        return (self.source, *(s.node for s in self.steps))

    def __str__(self) -> str:
        return " → ".join(self.key)

    def to_json(self) -> dict[str, object]:
        return {"from": self.source, "to": self.target, "score": self.cost, "steps": [s.to_json() for s in self.steps]}


Weight = tuple[int, int]


def _w(e: Edge) -> Weight:
    return (e.cost, 0 if is_hidden(e.dst) or e.cost == 0 else 1)


class Distances:
    """Cheapest way from every node to `target` (reverse Dijkstra); `next[u]` is the first edge of it."""

    def __init__(self, g: Graph, target: str) -> None:
        self.target = target
        rev: dict[str, list[Edge]] = defaultdict(list)
        for e in g.edges():
            rev[e.dst].append(e)
        self.dist: dict[str, Weight] = {target: (0, 0)}
        self.next: dict[str, Edge] = {}
        heap: list[tuple[Weight, str]] = [((0, 0), target)]
        done: set[str] = set()
        while heap:
            d, v = heapq.heappop(heap)
            if v in done:
                continue
            done.add(v)
            for e in sorted(rev.get(v, ()), key=lambda e: (e.src, e.evidence)):
                w = _w(e)
                nd = (d[0] + w[0], d[1] + w[1])
                if e.src not in self.dist or nd < self.dist[e.src]:
                    self.dist[e.src] = nd
                    self.next[e.src] = e
                    heapq.heappush(heap, (nd, e.src))

    def path(self, source: str, first: Edge | None = None) -> Path | None:
        edges: list[Edge] = []
        cur = source
        if first is not None:
            if first.dst not in self.dist:
                return None
            edges.append(first)
            cur = first.dst
        elif source not in self.dist:
            return None
        seen = {source}
        while cur != self.target:
            e = self.next[cur]
            if e.dst in seen:  # pragma: no cover - Dijkstra pointers form a tree towards the target
                return None
            seen.add(e.dst)
            edges.append(e)
            cur = e.dst
        return Path(source, self.target, tuple(edges)) if edges else None


def rank(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.cost, len(p.steps), str(p)))


def paths_from(g: Graph, dist: Distances, sources: Iterable[str], *, per_entry: bool = True) -> list[Path]:
    """Ranked paths from the sources: with `per_entry`, the cheapest through each first step; otherwise the one
    cheapest per source. A path never passes through another source (its own line stands for it)."""
    found: dict[tuple[str, ...], Path] = {}
    for s in sources:
        if s == dist.target:
            continue
        if per_entry:
            for e in g.out.get(s, ()):
                if e.dst == s:
                    continue
                p = dist.path(s, e)
                if p is not None and s not in p.key[1:]:
                    found.setdefault(p.key, p)
        else:
            p = dist.path(s)
            if p is not None:
                found.setdefault(p.key, p)
    return rank(found.values())
