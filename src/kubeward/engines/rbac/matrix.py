"""An access matrix for one subject, resources × verbs (as rakkess shows it), answered by the authorizer.

Offline there is no discovery API, so the resource list is the common built-in resources plus every
resource the snapshot's rules name explicitly (wildcards and subresources excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

from .index import RBACIndex
from .model import Request, UserInfo

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")  # rakkess defaults
# (apiGroup, resource, namespaced) — kubectl api-resources of a stock cluster, the commonly audited subset.
BUILTIN: tuple[tuple[str, str, bool], ...] = (
    ("", "bindings", True), ("", "configmaps", True), ("", "endpoints", True), ("", "events", True),
    ("", "limitranges", True), ("", "namespaces", False), ("", "nodes", False),
    ("", "persistentvolumeclaims", True), ("", "persistentvolumes", False), ("", "pods", True),
    ("", "podtemplates", True), ("", "replicationcontrollers", True), ("", "resourcequotas", True),
    ("", "secrets", True), ("", "serviceaccounts", True), ("", "services", True),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", False),
    ("apiextensions.k8s.io", "customresourcedefinitions", False),
    ("apps", "controllerrevisions", True), ("apps", "daemonsets", True), ("apps", "deployments", True),
    ("apps", "replicasets", True), ("apps", "statefulsets", True),
    ("autoscaling", "horizontalpodautoscalers", True), ("batch", "cronjobs", True), ("batch", "jobs", True),
    ("certificates.k8s.io", "certificatesigningrequests", False), ("coordination.k8s.io", "leases", True),
    ("discovery.k8s.io", "endpointslices", True), ("networking.k8s.io", "ingresses", True),
    ("networking.k8s.io", "networkpolicies", True), ("policy", "poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io", "clusterrolebindings", False), ("rbac.authorization.k8s.io", "clusterroles", False),
    ("rbac.authorization.k8s.io", "rolebindings", True), ("rbac.authorization.k8s.io", "roles", True),
    ("storage.k8s.io", "storageclasses", False),
)


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    resource: str
    namespaced: bool
    allowed: dict[str, bool]

    @property
    def label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def access_matrix(index: RBACIndex, user: UserInfo, namespace: str = "",
                  verbs: tuple[str, ...] = VERBS) -> list[Row]:
    """With a namespace: namespaced resources in it; without: every resource at cluster scope."""
    known = {(g, r): ns for g, r, ns in BUILTIN}
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
