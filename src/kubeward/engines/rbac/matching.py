"""Rule matching with the exact semantics of pkg/apis/rbac/v1/evaluation_helpers.go and rbac.go RuleAllows.

Every comparison is exact and case-sensitive; `*` is the only wildcard (plus `*/sub` for resources and a
trailing `*` for non-resource URLs). There is no `pods/*` form.
"""

from __future__ import annotations

from .model import Request, Rule


def verb_matches(rule: Rule, verb: str) -> bool:
    # evaluation_helpers.go VerbMatches: VerbAll or equal.
    return "*" in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    # APIGroupMatches: APIGroupAll or equal (core is "").
    return "*" in rule.groups or group in rule.groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    # ResourceMatches: `*` covers everything incl. subresources; else exact `res` / `res/sub`;
    # with a subresource, `*/sub` also matches.
    res = rule.resources
    if "*" in res or combined in res:
        return True
    return bool(subresource) and f"*/{subresource}" in res


def resource_name_matches(rule: Rule, name: str) -> bool:
    # ResourceNameMatches: an empty list allows all; otherwise the name must be listed (so "" never is
    # unless "" itself is listed, which validation forbids).
    return not rule.names or name in rule.names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    # NonResourceURLMatches: `*`, exact, or a trailing `*` meaning prefix (`/apis/*` ⇏ `/apis`).
    for url in rule.urls:
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(req: Request, rule: Rule) -> bool:
    """plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows."""
    if req.resource_request:
        return (verb_matches(rule, req.verb) and api_group_matches(rule, req.api_group)
                and resource_matches(rule, req.combined, req.subresource)
                and resource_name_matches(rule, req.name))
    return verb_matches(rule, req.verb) and non_resource_url_matches(rule, req.path)
