"""Attack paths: the graph of what an attacker can do next, built from the engines (graph, build), ranked (rank)
and cut (cut). `analyze` is the library entry point the CLI, the scan controls and the tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..identity import parse_subject
from ..records import record
from ..snapshot import Snapshot
from .build import build
from .graph import CLUSTER_ADMIN, INTERNET, NODES, SECRETS, Edge, EdgeKind, Graph, pod_node
from .rank import Distances, Path, paths_from

if TYPE_CHECKING:
    from .cut import Cut

__all__ = ["CLUSTER_ADMIN", "INTERNET", "NODES", "SECRETS", "Analysis", "Cut", "Edge", "EdgeKind", "Graph", "Path",
           "analyze", "build", "source_nodes", "target_node"]


def __getattr__(name: str) -> Any:
    """`Cut` on first use: the min-cut module loads only for the commands that cut (`kubeward paths`)."""
    if name == "Cut":
        from .cut import Cut

        return Cut
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@record
class Analysis:
    graph: Graph
    sources: list[str]
    target: str
    distances: Distances
    paths: list[Path]

    def cut(self) -> Cut:
        from .cut import min_cut  # `kubeward paths` asks for it; the scan's KW-P1xx controls never do

        return min_cut(self.graph, self.distances, self.sources, self.paths)


def analyze(snapshot: Snapshot, source: str | None = None, target: str = "cluster-admin", *,
            graph: Graph | None = None, per_entry: bool = True) -> Analysis:
    g = graph if graph is not None else build(snapshot)
    t = target_node(target)
    srcs = source_nodes(source, g)
    for s in srcs:
        if s not in g.nodes:
            _implicit_groups(g, s)
    dist = Distances(g, t)
    return Analysis(g, srcs, t, dist, paths_from(g, dist, srcs, per_entry=per_entry))


def _implicit_groups(g: Graph, subject: str) -> None:
    """A subject no binding names still has the groups the authenticators add (authenticated_group_adder.go;
    serviceaccount/util.go for a service account's two groups): its paths are theirs."""
    groups = ["system:authenticated"]
    if subject.startswith("ServiceAccount "):
        ns = subject.split(" ", 1)[1].split("/", 1)[0]
        groups = [f"system:serviceaccounts:{ns}", "system:serviceaccounts", *groups]
    elif not subject.startswith("User ") or subject.startswith("User system:anonymous"):
        return
    for grp in groups:
        node = f"Group {grp}"
        if node in g.nodes:
            g.add(Edge(subject, node, EdgeKind.MEMBER, "rbac", "member of", "", 0))
