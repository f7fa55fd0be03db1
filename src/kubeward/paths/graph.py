"""The attack graph: nodes (the internet, pods, identities, nodes, secrets, cluster-admin) and edges, each edge
carrying the engine that decided it, the object and field or rule that makes it possible, and the change that
breaks it. Built by `build.py`; searched by `rank.py`; cut by `cut.py`.

Node ids are strings whose first word is the node kind (`pod NS/NAME`, `ServiceAccount NS/NAME`, `User X`,
`Group X`, the RBAC engine's own spelling for identities, so its edges join the graph unchanged). Network
positions (`netgrp:`/`netdg:` nodes) are hidden: a pod joins the source group of its netpol class (classes with
the same reach), a source group reaches destination groups (classes reached by the same source groups), a
destination group reaches its pods. That keeps the network layer at groups of classes, not pods², and a fix for a
network edge is one NetworkPolicy change between two groups.
"""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Any

from ..records import field, record


class EdgeKind(StrEnum):
    EXPOSED = "exposed"  # internet → pod
    NETWORK = "network"  # pod → pod (through hidden network positions)
    RUNS_AS = "runs-as"  # pod → service account (automounted token, token Secret volume)
    ESCAPES = "escapes-to-node"  # pod → node
    NODE_CREDENTIALS = "node-credentials"  # node → identities the kubelet's credentials reach
    RBAC = "rbac"  # identity → identity / target (the escalation paths engine)
    READS_SECRET = "reads-secret"  # identity → all secrets
    MEMBER = "member"  # structural, never a fix: group membership, network position


INTERNET = "internet"
CLUSTER_ADMIN = "cluster-admin"
SECRETS = "secrets (every namespace)"
NODES = "node (any)"
HIDDEN_PREFIXES = ("netgrp:", "netdg:")


def is_hidden(node: str) -> bool:
    return node.startswith(HIDDEN_PREFIXES)


def pod_node(ns: str, name: str) -> str:
    return f"pod {ns}/{name}"


@record(frozen=True)
class Obj:
    """The object whose change removes an edge, and the JSON pointer of the field (or rule) that makes it."""

    kind: str
    namespace: str | None
    name: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind}/{where}" + (f" {self.path}" if self.path else "")

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "path": self.path}


@record(frozen=True)
class Edge:
    src: str
    dst: str
    kind: EdgeKind
    engine: str  # which engine decided it: netpol, rbac, pss, hostpaths, services, node-authorizer
    evidence: str  # what makes it possible, in words
    fix: str  # the change that breaks it ("" for structural edges)
    cost: int  # difficulty of the step, 0 for structural edges (docs/paths.md "Scoring")
    obj: Obj | None = None  # the object to change
    file: str | None = None
    line: int | None = None
    # RBAC steps: the requests (verb, apiGroup, resource, subresource, namespace, name) the step needs the source
    # identity to be allowed, so a live SubjectAccessReview can confirm it
    claims: tuple[tuple[str, str, str, str, str, str], ...] = ()

    @property
    def fixable(self) -> bool:
        return bool(self.fix)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"from": self.src, "to": self.dst, "type": self.kind.value, "engine": self.engine,
                                  "evidence": self.evidence, "fix": self.fix, "cost": self.cost}
        if self.obj is not None:
            out["object"] = self.obj.to_json()
        if self.file:
            out["file"], out["line"] = self.file, self.line
        if self.claims:
            out["requests"] = [dict(zip(("verb", "apiGroup", "resource", "subresource", "namespace", "name"), c,
                                        strict=True)) for c in self.claims]
        return out


@record
class Graph:
    """Nodes with a label each, edges by source; the first edge between two nodes per kind is kept, a cheaper one
    replaces it."""

    nodes: dict[str, str] = field(default_factory=dict)  # id → node kind
    out: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)  # what the build had to assume or leave out
    _pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    # what each pod gave the graph, and from what (build.PodParts): what the monitor's next build reuses
    parts: Any = field(default=None, compare=False, repr=False)

    def node(self, nid: str, kind: str) -> str:
        self.nodes.setdefault(nid, kind)
        return nid

    def add(self, e: Edge) -> None:
        if e.src == e.dst:
            return
        self.nodes.setdefault(e.src, e.src.split(" ", 1)[0])
        self.nodes.setdefault(e.dst, e.dst.split(" ", 1)[0])
        key = (e.src, e.dst)
        lst = self.out[e.src]
        at = self._pairs.get(key)
        if at is None:
            self._pairs[key] = len(lst)
            lst.append(e)
        elif e.cost < lst[at].cost:
            lst[at] = e

    def edges(self) -> list[Edge]:
        return [e for lst in self.out.values() for e in lst]

    def without(self, removed: set[tuple[str, str]]) -> Graph:
        """A copy with the given (src, dst) edges gone: the graph after their fixes."""
        g = Graph(dict(self.nodes), defaultdict(list), list(self.notes))
        for e in self.edges():
            if (e.src, e.dst) not in removed:
                g.add(e)
        return g
