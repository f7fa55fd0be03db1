"""Properties of the ranking and the cut on random graphs (no Kubernetes involved): the distances are the true
cheapest costs, every listed path is made of graph edges, the cut disconnects every source from the target, and no
smaller set of changes does (checked by brute force on small graphs)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.paths.cut import min_cut
from kubeward.paths.graph import Edge, EdgeKind, Graph
from kubeward.paths.rank import Distances, paths_from

NODES = [f"n{i}" for i in range(7)]
TARGET = "t"


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    g = Graph()
    n_edges = draw(st.integers(1, 16))
    for _ in range(n_edges):
        u = draw(st.sampled_from(NODES))
        v = draw(st.sampled_from([*NODES, TARGET]))
        cost = draw(st.integers(0, 3))
        fix = draw(st.sampled_from(["", "fix-a", "fix-b", f"fix-{u}-{v}"]))
        g.add(Edge(u, v, EdgeKind.RBAC, "test", f"{u}->{v}", fix, cost))
    g.node(TARGET, "t")
    return g


def reaches(g: Graph, sources: list[str], removed: set[tuple[str, str]]) -> bool:
    seen, todo = set(sources), list(sources)
    while todo:
        u = todo.pop()
        if u == TARGET:
            return True
        for e in g.out.get(u, ()):
            if (e.src, e.dst) not in removed and e.dst not in seen:
                seen.add(e.dst)
                todo.append(e.dst)
    return False


def cheapest(g: Graph) -> dict[str, int]:
    """Bellman–Ford towards the target on costs alone."""
    best = {TARGET: 0}
    for _ in range(len(NODES) + 1):
        for e in g.edges():
            if e.dst in best and best[e.dst] + e.cost < best.get(e.src, 1 << 30):
                best[e.src] = best[e.dst] + e.cost
    return best


@settings(max_examples=300, deadline=None)
@given(graphs(), st.sets(st.sampled_from(NODES), min_size=1, max_size=3))
def test_rank_and_cut(g: Graph, sources: set[str]) -> None:
    srcs = sorted(sources)
    dist = Distances(g, TARGET)
    truth = cheapest(g)
    assert {n: d[0] for n, d in dist.dist.items()} == truth
    edges = {(e.src, e.dst) for e in g.edges()}
    for p in paths_from(g, dist, srcs):
        assert p.source in sources and p.edges[-1].dst == TARGET
        assert all((e.src, e.dst) in edges for e in p.edges)
        assert all(a.dst == b.src for a, b in itertools.pairwise(p.edges))
        first = p.edges[0]
        assert p.cost == first.cost + truth[first.dst]  # the cheapest through its first step
    cut = min_cut(g, dist, srcs)
    if not reaches(g, srcs, set()):
        assert cut.fixes == ()
        return
    # changes available: (source node, fix) groups of fix-able edges
    groups: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for e in g.edges():
        if e.fixable:
            groups.setdefault((e.src, e.fix), set()).add((e.src, e.dst))
    if cut.uncuttable:
        assert reaches(g, srcs, {pair for pairs in groups.values() for pair in pairs})
        return
    assert not reaches(g, srcs, set(cut.removes))
    for k in range(len(cut.fixes)):
        for combo in itertools.combinations(groups.values(), k):
            removed = set().union(*combo) if combo else set()
            assert reaches(g, srcs, removed), f"{k} changes would do, the cut has {len(cut.fixes)}"


def test_a_structural_path_beside_a_fixable_one_is_uncuttable() -> None:
    """n0 → t can be fixed, n0 → n1 → t cannot: no set of fixes cuts n0 off, and the cut must say so (the flow
    once pushed just under its infinity through the structural path and answered "nothing to cut")."""
    g = Graph()
    g.add(Edge("n0", TARGET, EdgeKind.RBAC, "test", "n0->t", "fix-a", 0))
    g.add(Edge("n0", "n1", EdgeKind.RBAC, "test", "n0->n1", "", 0))
    g.add(Edge("n1", TARGET, EdgeKind.RBAC, "test", "n1->t", "", 0))
    g.node(TARGET, "t")
    cut = min_cut(g, Distances(g, TARGET), ["n0"])
    assert cut.uncuttable and cut.fixes == ()
