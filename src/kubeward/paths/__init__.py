"""Attack paths: the graph of what an attacker can do next, built from the engines (graph, build), ranked (rank)
and cut (cut). `analyze` is the library entry point the CLI, the scan controls and the tests share."""

from __future__ import annotations

from dataclasses import dataclass

from ..identity import parse_subject
from ..snapshot import Snapshot
from .build import build
from .cut import Cut, min_cut
from .graph import CLUSTER_ADMIN, INTERNET, NODES, SECRETS, Edge, EdgeKind, Graph, pod_node
from .rank import Distances, Path, paths_from

__all__ = ["CLUSTER_ADMIN", "INTERNET", "NODES", "SECRETS", "Analysis", "Cut", "Edge", "EdgeKind", "Graph", "Path",
           "analyze", "build", "source_nodes", "target_node"]


class QueryError(ValueError):
    """A --from or --to the graph cannot answer (one line for the user)."""


def target_node(text: str) -> str:
    """--to: cluster-admin, secrets, nodes, or a namespace (run as any of its service accounts)."""
    t = text.strip()
    if t in ("cluster-admin", "admin"):
        return CLUSTER_ADMIN
    if t in ("secrets", "secret"):
        return SECRETS
    if t in ("nodes", "node"):
        return NODES
    if not t or "/" in t or " " in t:
        raise QueryError(f"--to {text!r}: cluster-admin, secrets, nodes or a namespace name")
    return f"any service account in {t}"


def source_nodes(text: str | None, g: Graph) -> list[str]:
    """--from: internet (default), `pod NS/NAME`, `subject S` (any subject spelling kubeward reads), or
    `pods` (every pod: what an attacker in any one pod can do)."""
    if text is None or text.strip() == "internet":
        return [INTERNET]
    head, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if head == "pods" and not rest:
        return sorted(n for n, k in g.nodes.items() if k == "pod")
    if head == "pod" and "/" in rest:
        node = pod_node(*rest.split("/", 1))
        if node not in g.nodes:
            raise QueryError(f"--from {text!r}: no such pod or workload in the inputs")
        return [node]
    if head == "subject" and rest:
        ref = parse_subject(rest)
        return [str(ref) if ref.kind else f"User {ref.name}"]
    raise QueryError(f"--from {text!r}: internet, pods, 'pod NS/NAME' or 'subject SUBJECT'")


@dataclass(slots=True)
class Analysis:
    graph: Graph
    sources: list[str]
    target: str
    distances: Distances
    paths: list[Path]

    def cut(self) -> Cut:
        return min_cut(self.graph, self.distances, self.sources, self.paths)


def analyze(snapshot: Snapshot, source: str | None = None, target: str = "cluster-admin", *,
            graph: Graph | None = None, per_entry: bool = True) -> Analysis:
    g = graph if graph is not None else build(snapshot)
    t = target_node(target)
    srcs = source_nodes(source, g)
    dist = Distances(g, t)
    return Analysis(g, srcs, t, dist, paths_from(g, dist, srcs, per_entry=per_entry))
