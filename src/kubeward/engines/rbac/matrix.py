"""An access matrix for one subject, resources × verbs (as rakkess shows it), answered by the authorizer.

Rows are the resources of the API discovery (kubeward.discovery: the built-in API of the target version plus the
input's CustomResourceDefinitions), plus every resource the snapshot's rules name explicitly (wildcards and
subresources excluded), as rakkess lists what discovery serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .index import RBACIndex
from .model import Request, UserInfo

if TYPE_CHECKING:
    from ...discovery import RESTMapper

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")  # rakkess defaults


def matrix_resources(mapper: RESTMapper) -> list[tuple[str, str, bool]]:
    """(apiGroup, resource, namespaced) of every top-level resource discovery serves."""
    return [(r.group, r.name, r.namespaced) for r in mapper.top_level()]


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    resource: str
    namespaced: bool
    allowed: dict[str, bool]

    @property
    def label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def access_matrix(index: RBACIndex, user: UserInfo, namespace: str = "", verbs: tuple[str, ...] = VERBS,
                  resources: list[tuple[str, str, bool]] | None = None) -> list[Row]:
    """With a namespace: namespaced resources in it; without: every resource at cluster scope."""
    if resources is None:
        from ...discovery import RESTMapper

        resources = matrix_resources(RESTMapper.builtin())
    known = {(g, r): ns for g, r, ns in resources}
    for rules in index.roles.values():
        for rule in rules:
            for r in rule.resources:
                if "*" in r or "/" in r:
                    continue
                for g in rule.groups:
                    if g != "*":
                        known.setdefault((g, r), True)
    rows = []
    for (g, r), namespaced in sorted(known.items(), key=lambda x: (x[0][0] != "", x[0][0], x[0][1])):
        if namespace and not namespaced:
            continue
        ns = namespace if namespaced else ""
        allowed = {v: index.authorize(user, Request(v, r, "", g, ns)).allowed for v in verbs}
        rows.append(Row(g, r, namespaced, allowed))
    return rows
