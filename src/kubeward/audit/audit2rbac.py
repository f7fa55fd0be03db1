"""`audit2rbac`: the least RBAC that allows exactly the requests a user was observed making.

Approach of liggitt/audit2rbac: take the user's requests from the audit log (the impersonated identity when the
caller impersonated), turn each into authorizer attributes, and emit a Role + RoleBinding per namespace for
namespaced requests and one ClusterRole + ClusterRoleBinding for cluster-scope and non-resource requests. Rules keep
`resourceNames` whenever every request of that verb on that resource named an object, so nothing broader than what
was observed is granted. A request counts when it passed authorization (decision `allow`, or a response code other
than 401/403 when the annotation is absent); `include_denied` also takes the 403s (to grant what an app tried).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..attributes import Attributes
from ..identity import SA_PREFIX
from ..records import replace

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"


# One request as the authorizer saw it: the shared authorizer.Attributes (kubeward.attributes), without the user
# (collect filters by user) and, for resource requests, without the URL path, so equal requests count once.
Observed = Attributes


def effective_user(ev: dict[str, Any]) -> str:
    """The identity authorization judged: the impersonated user when present."""
    return ((ev.get("impersonatedUser") or ev.get("user")) or {}).get("username", "")


def allowed(ev: dict[str, Any], include_denied: bool) -> bool:
    decision = (ev.get("annotations") or {}).get("authorization.k8s.io/decision")
    code = (ev.get("responseStatus") or {}).get("code")
    if decision == "forbid" or code == 403:
        return include_denied
    if decision == "allow":
        return True
    return code is not None and code != 401


def observe(ev: dict[str, Any]) -> Observed | None:
    """The request's attributes (a create carries no name unless its URL names one, as the authorizer saw it),
    or None when its fields are not the types the API writes."""
    attrs = Attributes.from_audit_event(ev, "none")
    if attrs is None:
        return None
    return replace(attrs, path="") if attrs.resource_request else attrs


# Granted to every authenticated user by the bootstrap ClusterRoles system:discovery and system:public-info-viewer
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), so a generated role need not repeat them.
DISCOVERY_PATHS = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                   "/healthz", "/livez", "/readyz")


def is_discovery(o: Observed) -> bool:
    if o.resource_request or o.verb != "get":
        return False
    return any(o.path == p or (p.endswith("*") and o.path.startswith(p[:-1])) for p in DISCOVERY_PATHS)


def collect(events: Iterable[dict[str, Any]], user: str, include_denied: bool = False,
            include_discovery: bool = False) -> set[Observed]:
    out: set[Observed] = set()
    for ev in events:
        stage = ev.get("stage")
        if stage not in ("ResponseComplete", "ResponseStarted", None):
            continue
        try:
            if effective_user(ev) != user or not allowed(ev, include_denied):
                continue
        except AttributeError:
            continue
        o = observe(ev)
        if o is not None and o.verb and (o.resource or o.path) and (include_discovery or not is_discovery(o)):
            out.add(o)
    return out


def _rules(reqs: Iterable[Observed]) -> list[dict[str, Any]]:
    """Compact rules: per (group, resource, verb) the observed names, or no names if any request was unnamed;
    then resources and verbs sharing the same shape are merged into one rule."""
    names: dict[tuple[str, str, str], set[str] | None] = {}
    paths: dict[str, set[str]] = defaultdict(set)
    for r in reqs:
        if not r.resource_request:
            paths[r.path].add(r.verb)
            continue
        key = (r.api_group, r.combined, r.verb)
        if not r.name:
            names[key] = None
        elif key not in names:
            names[key] = {r.name}
        elif names[key] is not None:
            names[key].add(r.name)  # type: ignore[union-attr]
    # (group, resource, names) -> verbs
    by_shape: dict[tuple[str, str, tuple[str, ...]], set[str]] = defaultdict(set)
    for (group, res, verb), ns in names.items():
        by_shape[(group, res, tuple(sorted(ns)) if ns else ())].add(verb)
    # (group, verbs, names) -> resources
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], set[str]] = defaultdict(set)
    for (group, res, nm), verb_set in by_shape.items():
        merged[(group, tuple(sorted(verb_set)), nm)].add(res)
    rules: list[dict[str, Any]] = []
    for (group, verbs, nm), resources in sorted(merged.items()):
        rule: dict[str, Any] = {"apiGroups": [group], "resources": sorted(resources)}
        if nm:
            rule["resourceNames"] = list(nm)
        rule["verbs"] = list(verbs)
        rules.append(rule)
    by_verbs: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for p, path_verbs in sorted(paths.items()):
        by_verbs[tuple(sorted(path_verbs))].append(p)
    for url_verbs, ps in sorted(by_verbs.items()):
        rules.append({"nonResourceURLs": sorted(ps), "verbs": list(url_verbs)})
    return rules


def subject_for(user: str) -> dict[str, str]:
    if user.startswith(SA_PREFIX):
        ns, _, name = user[len(SA_PREFIX):].partition(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": ns}
    return {"kind": "User", "apiGroup": RBAC_GROUP, "name": user}


def generate(observed: set[Observed], user: str, name: str | None = None) -> list[dict[str, Any]]:
    """Roles/RoleBindings per namespace and a ClusterRole/ClusterRoleBinding for the rest."""
    role_name = name or f"audit2rbac:{user}"
    labels = {"app.kubernetes.io/managed-by": "kubeward-audit2rbac"}
    subject = subject_for(user)
    per_ns: dict[str, list[Observed]] = defaultdict(list)
    cluster: list[Observed] = []
    for o in observed:
        (per_ns[o.namespace] if o.resource_request and o.namespace else cluster).append(o)
    docs: list[dict[str, Any]] = []
    if cluster:
        docs.append({"apiVersion": RBAC_API, "kind": "ClusterRole",
                     "metadata": {"name": role_name, "labels": labels}, "rules": _rules(cluster)})
        docs.append({"apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
                     "metadata": {"name": role_name, "labels": labels},
                     "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role_name},
                     "subjects": [subject]})
    for ns in sorted(per_ns):
        docs.append({"apiVersion": RBAC_API, "kind": "Role",
                     "metadata": {"name": role_name, "namespace": ns, "labels": labels},
                     "rules": _rules(per_ns[ns])})
        docs.append({"apiVersion": RBAC_API, "kind": "RoleBinding",
                     "metadata": {"name": role_name, "namespace": ns, "labels": labels},
                     "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role_name},
                     "subjects": [subject]})
    return docs


def rule_covers(rule: dict[str, Any], o: Observed) -> bool:
    """Whether one generated rule allows the observed request, by the RBAC engine's own rule matching
    (plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows), for the self-check of generated output."""
    from ..engines.rbac.matching import rule_allows
    from ..engines.rbac.model import Rule

    return rule_allows(o, Rule.parse(rule))


def covered(docs: list[dict[str, Any]], o: Observed) -> bool:
    """Whether the generated documents grant the observed request (by the role that applies to its scope)."""
    for d in docs:
        applies = d["kind"] == "ClusterRole" or (
            d["kind"] == "Role" and d["metadata"]["namespace"] == o.namespace and o.resource_request)
        if applies and any(rule_covers(r, o) for r in d["rules"]):
            return True
    return False
