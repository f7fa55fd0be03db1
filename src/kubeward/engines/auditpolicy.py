"""Audit policy evaluation with the exact semantics of kube-apiserver.

Upstream: k8s.io/apiserver/pkg/audit/policy/checker.go (rule matching, first match wins, default level None,
omitStages union, omitManagedFields override) and pkg/apis/audit/validation/validation.go (what a valid policy is).
The evaluator is compiled once from a Policy document and then answers many requests cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..attributes import Attributes
from ..identity import UserInfo  # noqa: F401 (re-exported for callers of this module)

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
# checker.go: DefaultAuditLevel = audit.LevelNone when no rule matches.
DEFAULT_LEVEL = "None"


class PolicyError(ValueError):
    """The document is not a valid audit Policy (validation.go); the message names the field."""


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None
    index: int = 0

    @property
    def is_catch_all(self) -> bool:
        """No selector at all: ruleMatches returns true for every request."""
        return not (self.users or self.user_groups or self.verbs or self.resources or self.namespaces
                    or self.non_resource_urls)


@dataclass(frozen=True, slots=True)
class Decision:
    """checker.go RequestAuditConfigWithLevel: the level, the stages to omit and omitManagedFields."""

    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule: int | None  # index of the matching rule, None for the default


@dataclass(slots=True)
class Policy:
    rules: list[PolicyRule] = field(default_factory=list)
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False

    def evaluate(self, attrs: Attributes) -> Decision:
        """First matching rule wins (checker.go EvaluatePolicyRule); no match gives level None."""
        for rule in self.rules:
            if rule_matches(rule, attrs):
                managed = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                # NewPolicyRuleEvaluator: each rule's omitStages is the union with the policy's.
                return Decision(rule.level, frozenset(self.omit_stages) | frozenset(rule.omit_stages), managed,
                                rule.index)
        return Decision(DEFAULT_LEVEL, frozenset(self.omit_stages), self.omit_managed_fields, None)


def union_stages(*lists: Iterable[str] | None) -> frozenset[str]:
    """checker.go unionStages: set union, duplicates collapse, nil is empty."""
    out: set[str] = set()
    for sl in lists:
        out.update(sl or ())
    return frozenset(out)


def rule_matches(r: PolicyRule, a: Attributes) -> bool:
    """checker.go ruleMatches: every non-empty field must match; an empty field matches anything."""
    if r.users and (a.user is None or a.user.name not in r.users):
        return False
    if r.user_groups and (a.user is None or not any(g in r.user_groups for g in a.user.groups)):
        return False
    if r.verbs and a.verb not in r.verbs:
        return False
    # Namespaces or resources make it a resource rule; nonResourceURLs are then not consulted at all.
    if r.namespaces or r.resources:
        return _matches_resource(r, a)
    if r.non_resource_urls:
        return not a.resource_request and any(path_matches(a.path, spec) for spec in r.non_resource_urls)
    return True


def path_matches(path: str, spec: str) -> bool:
    """checker.go pathMatches: `*`, exact, or a trailing-`*` prefix."""
    if spec == "*" or spec == path:
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def _matches_resource(r: PolicyRule, a: Attributes) -> bool:
    """checker.go ruleMatchesResource. Non-namespaced requests carry the namespace ""."""
    if not a.resource_request:
        return False
    if r.namespaces and a.namespace not in r.namespaces:
        return False
    if not r.resources:
        return True
    combined = a.combined
    for gr in r.resources:
        if gr.group != a.api_group:
            continue
        if not gr.resources:
            return True
        if gr.resource_names and a.name not in gr.resource_names:
            continue
        for res in gr.resources:
            if res == combined or res == "*":
                return True
            if a.subresource and res.startswith("*/") and res[2:] == a.subresource:
                return True
            # `res/*`: upstream compares only the resource part, so it also matches the bare resource.
            if res.endswith("/*") and res[:-2] == a.resource:
                return True
    return False


# --- parsing and validation ------------------------------------------------------------------------------------

# The fields of audit.k8s.io/v1 Policy, PolicyRule and GroupResources (staging/src/k8s.io/apiserver/pkg/apis/audit/
# v1/types.go): what parse_policy reads; the kube-apiserver drops any other (audit/policycheck.py AUDIT-POL-009).
POLICY_FIELDS = frozenset({"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"})
RULE_FIELDS = frozenset({"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                         "omitStages", "omitManagedFields"})
GROUP_RESOURCE_FIELDS = frozenset({"group", "resources", "resourceNames"})


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str) -> tuple[str, ...]:
    stages = _strings(value, where)
    for s in stages:
        # validation.go validateOmitStages
        if s not in STAGES:
            raise PolicyError(f"{where}: unsupported stage {s!r} (one of: {', '.join(STAGES)})")
    return stages


def parse_policy(doc: Mapping[str, Any]) -> Policy:
    """Build a Policy from an `audit.k8s.io/v1` document, refusing what the kube-apiserver refuses at start-up
    (staging/src/k8s.io/apiserver/pkg/audit/policy/reader.go LoadPolicyFromBytes: only audit.k8s.io/v1, the
    rules validated as validation.go does, then at least one rule)."""
    if not isinstance(doc, Mapping):
        raise PolicyError("not a mapping")
    kind = doc.get("kind")
    if kind != "Policy":
        raise PolicyError(f"kind is {kind!r}, expected Policy")
    api = doc.get("apiVersion", "")
    if api != "audit.k8s.io/v1":
        hint = " (v1alpha1 and v1beta1 are no longer read)" if str(api).startswith("audit.k8s.io/") else ""
        raise PolicyError(f"apiVersion is {api!r}, expected audit.k8s.io/v1{hint}")
    raw_rules = doc.get("rules")
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise PolicyError("rules: must be a list")
    omf = doc.get("omitManagedFields", False)
    if not isinstance(omf, bool):
        raise PolicyError("omitManagedFields: must be true or false")
    policy = Policy(omit_stages=_stages(doc.get("omitStages"), "omitStages"), omit_managed_fields=omf)
    for i, raw in enumerate(raw_rules):
        policy.rules.append(parse_rule(raw, i))
    if not policy.rules:
        raise PolicyError("no rules: the kube-apiserver refuses a policy with 0 rules")
    return policy


def parse_rule(raw: Any, i: int) -> PolicyRule:
    where = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: must be a mapping")
    level = raw.get("level")
    # validation.go validateLevel
    if level not in LEVELS:
        raise PolicyError(f"{where}.level: {level!r} is not one of {', '.join(LEVELS)}")
    resources: list[GroupResources] = []
    raw_res = raw.get("resources") or []
    if not isinstance(raw_res, list):
        raise PolicyError(f"{where}.resources: must be a list")
    for j, gr in enumerate(raw_res):
        w = f"{where}.resources[{j}]"
        if not isinstance(gr, Mapping):
            raise PolicyError(f"{w}: must be a mapping")
        group = gr.get("group", "") or ""
        if not isinstance(group, str):
            raise PolicyError(f"{w}.group: must be a string")
        res = _strings(gr.get("resources"), f"{w}.resources")
        names = _strings(gr.get("resourceNames"), f"{w}.resourceNames")
        # validation.go validateResources: a non-core group is a DNS subdomain; resourceNames need resources.
        if group and not _DNS_SUBDOMAIN.fullmatch(group):
            raise PolicyError(f"{w}.group: {group!r} is not a valid API group (a DNS subdomain, no version)")
        if names and not res:
            raise PolicyError(f"{w}.resourceNames: using resourceNames requires at least one resource")
        resources.append(GroupResources(group, res, names))
    namespaces = _strings(raw.get("namespaces"), f"{where}.namespaces")
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    # validation.go validateNonResourceURLs: not together with resources/namespaces; absolute; `*` only at the end.
    if urls and (resources or namespaces):
        raise PolicyError(f"{where}: rules cannot apply to both regular resources and non-resource URLs")
    for u in urls:
        if u != "*" and not u.startswith("/"):
            raise PolicyError(f"{where}.nonResourceURLs: {u!r} must start with '/'")
        if u and "*" in u[:-1]:
            raise PolicyError(f"{where}.nonResourceURLs: {u!r} may contain '*' only as its last character")
    omf = raw.get("omitManagedFields")
    if omf is not None and not isinstance(omf, bool):
        raise PolicyError(f"{where}.omitManagedFields: must be true or false")
    return PolicyRule(
        level=level,
        users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        resources=tuple(resources),
        namespaces=namespaces,
        non_resource_urls=urls,
        omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
        omit_managed_fields=omf,
        index=i,
    )


def attributes_from_event(ev: Mapping[str, Any]) -> Attributes:
    """What the apiserver's audit filter evaluated for this event: the authenticated user (the audit filter runs
    before impersonation) and the request-info attributes (kubeward.attributes, where a create carries no name).
    Raises ValueError when the event's fields are not the types the API writes."""
    attrs = Attributes.from_audit_event(ev, "authenticated")
    if attrs is None:
        raise ValueError("audit event fields are not of the types audit.k8s.io/v1 writes")
    return attrs


def level_at_least(level: str, minimum: str) -> bool:
    return LEVEL_RANK[level] >= LEVEL_RANK[minimum]
