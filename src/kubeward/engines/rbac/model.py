"""RBAC objects reduced to what authorization reads: rules, subjects, bindings, users and requests.

Field names follow rbac.authorization.k8s.io/v1 (k8s.io/api/rbac/v1/types.go); malformed fields are read as
empty rather than fatal, because the apiserver would have rejected them and we still want the rest.
"""

from __future__ import annotations

from typing import Any

from ...attributes import Attributes

# Users, groups and the well-known names live in kubeward.identity (shared with the audit engines).
from ...identity import (  # noqa: F401 (re-exported: the engine's modules and callers import them from here)
    ALL_SERVICE_ACCOUNTS,
    ANONYMOUS,
    AUTHENTICATED,
    MASTERS,
    SA_PREFIX,
    UNAUTHENTICATED,
    UserInfo,
    user_info,
)
from ...records import field, record
from ...resource import Resource


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if v is not None)


@record(frozen=True)
class Rule:
    """One PolicyRule, with sets for O(1) membership; `raw` keeps the written order for explain and equality."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]
    raw: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, obj: Any) -> Rule:
        d = obj if isinstance(obj, dict) else {}
        verbs, groups, res = _strs(d.get("verbs")), _strs(d.get("apiGroups")), _strs(d.get("resources"))
        names, urls = _strs(d.get("resourceNames")), _strs(d.get("nonResourceURLs"))
        return cls(frozenset(verbs), frozenset(groups), frozenset(res), frozenset(names), urls,
                   (verbs, groups, res, names, urls))

    def to_json(self) -> dict[str, list[str]]:
        keys = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")
        return {k: list(v) for k, v in zip(keys, self.raw, strict=True) if v}

    def __str__(self) -> str:
        j = self.to_json()
        return "; ".join(f"{k}={','.join(x or chr(34) * 2 for x in v)}" for k, v in j.items()) or "(empty rule)"


@record(frozen=True)
class Subject:
    kind: str  # User | Group | ServiceAccount (anything else never matches)
    name: str
    namespace: str = ""  # as written; ServiceAccount subjects fall back to the binding's namespace

    def key(self, binding_ns: str) -> tuple[str, str] | None:
        """Index key: ("user", username) or ("group", name); None when it can never match.

        rule.go appliesToUser: User compares the name (no wildcard), Group checks membership, ServiceAccount
        uses subject.Namespace or else the binding's namespace (empty → no match) and MatchesUsername.
        """
        if self.kind == "User":
            return ("user", self.name)
        if self.kind == "Group":
            return ("group", self.name)
        if self.kind == "ServiceAccount":
            ns = self.namespace or binding_ns
            if not ns:
                return None
            return ("user", f"{SA_PREFIX}{ns}:{self.name}")
        return None

    def to_json(self, binding_ns: str = "") -> dict[str, str]:
        d = {"kind": self.kind, "name": self.name}
        if self.kind == "ServiceAccount":
            d["namespace"] = self.namespace or binding_ns
        return d

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@record
class Binding:
    """A RoleBinding (namespace set) or ClusterRoleBinding (namespace "")."""

    index: int
    kind: str
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    resource: Resource | None = None
    bootstrap: bool = False  # labelled kubernetes.io/bootstrapping=rbac-defaults (bootstrappolicy)
    role_key: tuple[str, str, str] = ("", "", "")  # where roleRef points: Role in the binding's namespace

    def __post_init__(self) -> None:
        self.role_key = (self.role_kind, self.namespace if self.role_kind == "Role" else "", self.role_name)

    def describe(self) -> str:
        """The source string of rule.go (`ClusterRoleBinding "N" of ClusterRole "R"`, `RoleBinding "N/NS" …`)."""
        if self.kind == "ClusterRoleBinding":
            return f'ClusterRoleBinding "{self.name}" of {self.role_kind} "{self.role_name}"'
        return f'RoleBinding "{self.name}/{self.namespace}" of {self.role_kind} "{self.role_name}"'

    def ref(self) -> dict[str, str]:
        d = {"kind": self.kind, "name": self.name}
        if self.namespace:
            d["namespace"] = self.namespace
        return d


# authorizer.Attributes, shared with audit2rbac and the audit-policy evaluator (kubeward.attributes).
Request = Attributes


@record
class Decision:
    allowed: bool
    reason: str = ""
    binding: Binding | None = None
    role: str = ""
    rule: Rule | None = None
    errors: list[str] = field(default_factory=list)
