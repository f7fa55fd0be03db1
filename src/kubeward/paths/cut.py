"""The fewest fixes that cut every path from the sources to a target: a minimum cut, found as a maximum flow
(Edmonds–Karp). One fix can break several edges (removing a subject from a binding breaks every step that binding
grants it), and those edges all leave the same node, so each (node, fix) becomes one intermediate node reached at
capacity 1 from which its edges leave uncuttable; structural edges (membership, what the kubelet needs) are
uncuttable too. By max-flow/min-cut the saturated fixes into the residual sink side are a smallest set of changes;
each is shown with how many of the listed paths it breaks.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .graph import Edge, Graph
from .rank import Distances, Path

INF = 1 << 30
SUPER = "\0source"


@dataclass(frozen=True, slots=True)
class Cut:
    fixes: tuple[Edge, ...]  # one edge per change to make (its `fix` says what)
    breaks: dict[tuple[str, str], int]  # (src, dst) of that edge → number of listed paths the change breaks
    uncuttable: bool  # some path has no fix-able edge (only structural steps): no fix set exists
    removes: frozenset[tuple[str, str]] = frozenset()  # every edge the changes break (the graph after them)

    def to_json(self) -> list[dict[str, object]]:
        return [{**e.to_json(), "paths": self.breaks.get((e.src, e.dst), 0)} for e in self.fixes]


def _price(e: Edge) -> int:
    """A fix costs 1, but taking full authority (`*` on `*`) from a subject bound to it costs 2: such a subject is
    usually an administrator meant to hold it, so of two equally small cuts the one that stops others from
    reaching it wins; it is still chosen when it alone replaces several other fixes."""
    return 2 if any(c[:3] == ("*", "*", "*") for c in e.claims) else 1


def _reachable(g: Graph, start: list[str], follow: Callable[[Edge], bool]) -> set[str]:
    """The nodes reached from `start` (included) over the edges `follow` accepts, breadth first."""
    seen = set(start)
    todo = deque(start)
    while todo:
        for e in g.out.get(todo.popleft(), ()):
            if e.dst not in seen and follow(e):
                seen.add(e.dst)
                todo.append(e.dst)
    return seen


def min_cut(g: Graph, dist: Distances, sources: Iterable[str], paths: Iterable[Path] = (),
            limit: int = 200) -> Cut:
    srcs = [s for s in sources if s in dist.dist and s != dist.target]
    # the part of the graph on some path: reachable from a source and able to reach the target
    useful = _reachable(g, srcs, lambda e: e.dst in dist.dist)
    # A path of structural steps only cannot be cut by any fix. Asked first, on its own: the flow below cannot tell
    # it reliably (once a finite path shares a source's edge, an all-structural path pushes just under INF).
    t = dist.target
    if t in _reachable(g, srcs, lambda e: not e.fixable and e.dst in useful):
        return Cut((), {}, True)
    cap: dict[str, dict[str, int]] = defaultdict(dict)
    group: dict[str, list[Edge]] = {}  # intermediate node of one (node, fix) → the edges that fix breaks

    def link(u: str, v: str, c: int) -> None:
        cap[u][v] = min(INF, cap[u].get(v, 0) + c)
        cap[v].setdefault(u, 0)

    for u in useful:
        for e in g.out.get(u, ()):
            if e.dst not in useful:
                continue
            if not e.fixable:
                link(u, e.dst, INF)
                continue
            mid = f"\0fix\0{u}\0{e.fix}\0{e.obj}"
            if mid not in group:
                group[mid] = []
                link(u, mid, _price(e))
            group[mid].append(e)
            link(mid, e.dst, INF)
    for s in srcs:
        cap[SUPER][s] = INF
        cap[s].setdefault(SUPER, 0)
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
    chosen = [mid for mid, edges in group.items() if edges[0].src not in sink and mid in sink]
    breaks: dict[tuple[str, str], int] = defaultdict(int)
    plist = list(paths)
    fixes: list[Edge] = []
    removes: set[tuple[str, str]] = set()
    for mid in chosen:
        pairs = {(x.src, x.dst) for x in group[mid]}
        head = group[mid][0]
        # the change breaks every edge it makes possible, also those that lead nowhere near the target
        removes |= {(x.src, x.dst) for x in g.out.get(head.src, ()) if (x.fix, x.obj) == (head.fix, head.obj)}
        fixes.append(head)
        breaks[(head.src, head.dst)] = sum(1 for p in plist if any((x.src, x.dst) in pairs for x in p.edges))
    fixes.sort(key=lambda e: (-breaks[(e.src, e.dst)], e.src, e.dst))
    return Cut(tuple(fixes), dict(breaks), False, frozenset(removes))
