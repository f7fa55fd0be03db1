"""The fewest fixes that cut every path from the sources to a target: a minimum edge cut, found as a maximum flow
(Edmonds–Karp) on the graph where a fix-able edge has capacity 1 and a structural one (membership, what the
kubelet needs) is uncuttable. By max-flow/min-cut the saturated edges into the residual sink side are a smallest
set of changes; each is shown with how many of the listed paths it breaks.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from .graph import Edge, Graph
from .rank import Distances, Path

INF = 1 << 30
SUPER = "\0source"


@dataclass(frozen=True, slots=True)
class Cut:
    fixes: tuple[Edge, ...]  # the edges to break
    breaks: dict[tuple[str, str], int]  # (src, dst) → number of listed paths that use it
    uncuttable: bool  # some path has no fix-able edge (only structural steps): no fix set exists

    def to_json(self) -> list[dict[str, object]]:
        return [{**e.to_json(), "paths": self.breaks.get((e.src, e.dst), 0)} for e in self.fixes]


def min_cut(g: Graph, dist: Distances, sources: Iterable[str], paths: Iterable[Path] = (),
            limit: int = 200) -> Cut:
    srcs = [s for s in sources if s in dist.dist and s != dist.target]
    # the part of the graph on some path: reachable from a source and able to reach the target
    useful: set[str] = set(srcs)
    todo = deque(srcs)
    while todo:
        u = todo.popleft()
        for e in g.out.get(u, ()):
            if e.dst in dist.dist and e.dst not in useful:
                useful.add(e.dst)
                todo.append(e.dst)
    cap: dict[str, dict[str, int]] = defaultdict(dict)
    edge_of: dict[tuple[str, str], Edge] = {}
    for u in useful:
        for e in g.out.get(u, ()):
            if e.dst in useful:
                cap[u][e.dst] = cap[u].get(e.dst, 0) + (1 if e.fixable else INF)
                cap[e.dst].setdefault(u, 0)
                edge_of[(u, e.dst)] = e
    for s in srcs:
        cap[SUPER][s] = INF
        cap[s].setdefault(SUPER, 0)
    t = dist.target
    flow = 0
    while flow < limit:
        parent: dict[str, str] = {SUPER: SUPER}
        q = deque([SUPER])
        while q and t not in parent:
            u = q.popleft()
            for v, c in cap[u].items():
                if c > 0 and v not in parent:
                    parent[v] = u
                    q.append(v)
        if t not in parent:
            break
        push = INF
        v = t
        while v != SUPER:
            push = min(push, cap[parent[v]][v])
            v = parent[v]
        if push >= INF:
            return Cut((), {}, True)
        v = t
        while v != SUPER:
            u = parent[v]
            cap[u][v] -= push
            cap[v][u] += push
            v = u
        flow += push
    # The cut nearest the target: the nodes that still reach it in the residual graph form the sink side, so the
    # fixes chosen are the shared last links (one binding rather than every exposure in front of it).
    sink: set[str] = {t}
    q = deque([t])
    while q:
        v = q.popleft()
        for u in cap[v]:
            if u not in sink and cap[u].get(v, 0) > 0:
                sink.add(u)
                q.append(u)
    fixes = [e for (u, v), e in edge_of.items() if u not in sink and v in sink and e.fixable]
    breaks: dict[tuple[str, str], int] = defaultdict(int)
    plist = list(paths)
    for e in fixes:
        for p in plist:
            if any((x.src, x.dst) == (e.src, e.dst) for x in p.edges):
                breaks[(e.src, e.dst)] += 1
    fixes.sort(key=lambda e: (-breaks[(e.src, e.dst)], e.src, e.dst))
    return Cut(tuple(fixes), dict(breaks), False)
