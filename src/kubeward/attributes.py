"""One request-attributes type for every engine that judges a request: the RBAC authorizer, audit2rbac and the
audit-policy evaluator.

Upstream has one such type, k8s.io/apiserver/pkg/authorization/authorizer.Attributes (AttributesRecord), filled
from the URL by the request-info resolver (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) and read both by
the authorizers and by the audit policy checker (k8s.io/apiserver/pkg/audit/policy/checker.go). Two constructors
fill it the two ways kubeward meets requests: `from_audit_event` (what the apiserver saw for a logged request) and
`question` (what `kubectl auth can-i` asks, a SubjectAccessReview).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .identity import UserInfo
from .records import record

Identity = Literal["authenticated", "authorized", "none"]


@record(frozen=True)
class Attributes:
    """authorizer.AttributesRecord: a resource request (namespace "" for cluster scope) or a non-resource path.

    `path` is the URL path for every request, as upstream's GetPath; resource matching never reads it.
    """

    verb: str
    resource: str = ""
    subresource: str = ""
    api_group: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True
    user: UserInfo | None = None

    @classmethod
    def non_resource(cls, verb: str, path: str, user: UserInfo | None = None) -> Attributes:
        return cls(verb=verb, path=path, resource_request=False, user=user)

    @classmethod
    def question(cls, verb: str, resource: str = "", subresource: str = "", api_group: str = "",
                 namespace: str = "", name: str = "", path: str = "", user: UserInfo | None = None) -> Attributes:
        """A SubjectAccessReview as `kubectl auth can-i` sends it: a path makes it a non-resource request, and the
        name is kept as asked, for create too (pkg/registry/authorization/util/helpers.go ResourceAttributesFrom
        copies spec.resourceAttributes.name verbatim)."""
        if path:
            return cls.non_resource(verb, path, user)
        return cls(verb, resource, subresource, api_group, namespace, name, user=user)

    @classmethod
    def from_audit_event(cls, ev: Mapping[str, Any], identity: Identity = "authenticated") -> Attributes | None:
        """The attributes the apiserver computed for a logged request; None when its fields are not the types the
        API writes.

        `identity` picks the user: "authenticated" is `user`, which the audit policy saw (the audit filter runs
        before impersonation, server/config.go DefaultBuildHandlerChain); "authorized" is `impersonatedUser` when
        set, which the authorizer saw; "none" leaves it out.

        The name: audit/request.go LogRequestMetadata copies objectRef from the request-info attributes, and
        LogRequestObject later fills an empty objectRef.name from the request body. A create's URL names no object
        (requestinfo.go takes the name from the path segment after the resource), so the authorizer and the policy
        checker saw no name although the event carries one; it is read back from requestURI as requestinfo.go
        reads it.
        """
        verb = ev.get("verb", "")
        ref = ev.get("objectRef")
        uri = ev.get("requestURI") or ""
        if not isinstance(verb, str) or not isinstance(ref, dict | None) or not isinstance(uri, str):
            return None
        user = _user(ev, identity)
        if user is False:
            return None
        path = uri.split("?", 1)[0]
        if not ref:
            return cls.non_resource(verb, path or "/", user or None)
        fields = [ref.get(k) or "" for k in ("apiGroup", "resource", "subresource", "namespace", "name")]
        if not all(isinstance(f, str) for f in fields):
            return None
        group, resource, sub, namespace, name = fields
        if verb == "create":
            from_url = url_name(path, resource, sub)
            name = from_url if from_url is not None else (name if sub else "")
        return cls(verb, resource, sub, group, namespace, name, path, True, user or None)

    @property
    def combined(self) -> str:
        """`resource/subresource` as RBAC and audit rules spell it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        if not self.resource_request:
            return f"{self.verb} {self.path}"
        grp = f".{self.api_group}" if self.api_group else ""
        name = f" {self.name}" if self.name else ""
        ns = f" in namespace {self.namespace}" if self.namespace else " (cluster scope)"
        return f"{self.verb} {self.combined}{grp}{name}{ns}"


def _user(ev: Mapping[str, Any], identity: Identity) -> UserInfo | Literal[False] | None:
    if identity == "none":
        return None
    u = ev.get("impersonatedUser") if identity == "authorized" else None
    u = u or ev.get("user")
    if not u:
        return None
    if not isinstance(u, dict):
        return False
    name, groups = u.get("username", ""), u.get("groups") or []
    if not isinstance(name, str) or not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return False
    return UserInfo(name, tuple(groups))


def url_name(path: str, resource: str, subresource: str) -> str | None:
    """The name requestinfo.go NewRequestInfo reads from a resource URL, the part after the resource; None when
    the path is not a URL of this resource and subresource (a hand-written event). The URL is parsed once, by
    audit/requestinfo.py object_ref (the same requestinfo.go reading that recovers a dropped objectRef)."""
    from .audit.requestinfo import object_ref

    ref = object_ref(path)
    if ref is None or ref.get("resource") != resource or ref.get("subresource", "") != subresource:
        return None
    return ref.get("name", "")
