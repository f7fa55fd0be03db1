"""`audit policy check`: lint an audit Policy with the exact evaluator (engines.auditpolicy).

Findings: rules that can never match (an earlier rule matches every request they would), credential-bearing
bodies logged (secrets, token reviews, token requests), and container access (exec/attach/port-forward) or secret
access that the policy does not log at all for ordinary users.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..controls.registry import Control, Shape, control, meta_of, registered
from ..engines.auditpolicy import (
    GROUP_RESOURCE_FIELDS,
    POLICY_FIELDS,
    RULE_FIELDS,
    Attributes,
    GroupResources,
    Policy,
    PolicyError,
    PolicyRule,
    UserInfo,
    level_at_least,
    parse_policy,
    rule_matches,
    union_stages,
)
from ..findings import ControlResult, Finding, InputError, ObjectRef, Report
from ..resource import Resource

Hit = tuple[str, str]

@dataclass(frozen=True, slots=True)
class Sensitive:
    """A credential-bearing target and the level from which its bodies reach the log."""

    group: str
    resource: str
    subresource: str
    leaks_from: dict[str, str]  # verb -> the lowest level whose bodies carry the credential for that verb
    why: str
    control: str = "AUDIT-POL-002"  # the check that reports it

    @property
    def verbs(self) -> tuple[str, ...]:
        return tuple(self.leaks_from)


# Request level adds the request body, RequestResponse also the response body (audit.k8s.io/v1 Level docs).
_RR = "RequestResponse"
SENSITIVE = (
    Sensitive("", "secrets", "", {"create": "Request", "update": "Request", "patch": "Request", "get": _RR,
                                  "list": _RR, "watch": _RR}, "secret data"),
    Sensitive("authentication.k8s.io", "tokenreviews", "", {"create": "Request"}, "bearer tokens under review"),
    Sensitive("", "serviceaccounts", "token", {"create": _RR}, "issued service account tokens"),
    # Configmap writes at Request are what the configmap-credentials detection needs (a credential put in a
    # configmap is then logged once, at the write to fix); response bodies of reads would log every configmap of
    # the cluster again at each get, list and watch.
    Sensitive("", "configmaps", "", {"get": _RR, "list": _RR, "watch": _RR},
              "the data of every configmap read, where credentials often end up", "AUDIT-POL-007"),
)

PROBE_USERS = (
    UserInfo("jane@example.com", ("system:authenticated",)),
    UserInfo("system:serviceaccount:default:app",
             ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated")),
)


def _candidates(rule: PolicyRule, s: Sensitive) -> Iterator[Attributes]:
    """Requests to the sensitive target shaped so that this rule's own selectors can match, if any can."""
    users = [UserInfo(rule.users[0] if rule.users else "jane@example.com",
                      (rule.user_groups[0],) if rule.user_groups else ("system:authenticated",))]
    verbs = [v for v in s.verbs if not rule.verbs or v in rule.verbs]
    namespaces = list(rule.namespaces) or ["default"]
    names = [""] + [n for gr in rule.resources for n in gr.resource_names]
    for u in users:
        for v in verbs:
            for ns in namespaces:
                for name in names:
                    yield Attributes(v, s.resource, s.subresource, s.group, ns, name, user=u)


def _catches_all(rule: PolicyRule, s: Sensitive) -> bool:
    """The rule matches every request to the target (so nothing after it is consulted for the target)."""
    if rule.users or rule.user_groups or rule.namespaces or rule.non_resource_urls:
        return False
    if rule.verbs and not set(s.verbs) <= set(rule.verbs):
        return False
    if not rule.resources:
        return True
    probe = Attributes(s.verbs[0], s.resource, s.subresource, s.group)
    return any(not gr.resource_names and rule_matches(PolicyRule(rule.level, resources=(gr,)), probe)
               for gr in rule.resources)


def _covers_res(ri: str, rj: str) -> bool:
    """Every request that resource pattern rj matches is matched by ri (checker.go resource forms)."""
    if ri == rj or ri == "*":
        return True
    if "*" in rj:
        return False
    if "/" in rj:
        r, sub = rj.split("/", 1)
        return ri in (f"*/{sub}", f"{r}/*")
    return ri == f"{rj}/*"  # upstream `res/*` also matches the bare resource


def _covers_gr(gi: GroupResources, gj: GroupResources) -> bool:
    if gi.group != gj.group:
        return False
    if not gi.resources:
        return True
    if not gj.resources:
        return False
    if gi.resource_names and not (gj.resource_names and set(gj.resource_names) <= set(gi.resource_names)):
        return False
    return all(any(_covers_res(ri, rj) for ri in gi.resources) for rj in gj.resources)


def _covers_url(ui: str, uj: str) -> bool:
    return ui == "*" or ui == uj or (ui.endswith("*") and uj.startswith(ui.rstrip("*")))


def _subset(i: tuple[str, ...], j: tuple[str, ...]) -> bool:
    return not i or (bool(j) and set(j) <= set(i))


def shadows(i: PolicyRule, j: PolicyRule) -> bool:
    """Conservative: True only when rule i provably matches every request rule j matches."""
    if not (_subset(i.users, j.users) and _subset(i.user_groups, j.user_groups) and _subset(i.verbs, j.verbs)):
        return False
    i_res, j_res = bool(i.resources or i.namespaces), bool(j.resources or j.namespaces)
    if i_res:
        if not j_res or not _subset(i.namespaces, j.namespaces):
            return False
        if not i.resources:
            return True
        return bool(j.resources) and all(any(_covers_gr(gi, gj) for gi in i.resources) for gj in j.resources)
    if i.non_resource_urls:
        return (not j_res and bool(j.non_resource_urls)
                and all(any(_covers_url(ui, uj) for ui in i.non_resource_urls) for uj in j.non_resource_urls))
    return True


def _policy_check(id: str, title: str, severity: str, remediation: str, frameworks: tuple[str, ...] = ()) -> Any:
    return control(id, title, severity, "audit", frameworks=frameworks, remediation=remediation,
                   shape=Shape.AUDIT_POLICY)


@_policy_check("AUDIT-POL-001", "Audit policy rule can never match", "medium",
               "Move the rule before the broader rule that shadows it, or delete it.")
def unreachable(policy: Policy, res: Resource) -> Iterator[Hit]:
    """No rule is shadowed by an earlier rule that provably matches every request it would: the first matching
    rule decides the level, so a shadowed rule is dead and what it was meant to log is logged as the earlier rule
    says. Upstream: staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go (first match wins)."""
    for j, rj in enumerate(policy.rules):
        for i in range(j):
            if shadows(policy.rules[i], rj):
                yield f"/rules/{j}", (f"rule {j} can never match: rule {i} before it matches every request it would"
                                      + (f" (rule {i} matches everything)" if policy.rules[i].is_catch_all else ""))
                break


def _bodies(policy: Policy, cid: str) -> Iterator[Hit]:
    for s in SENSITIVE:
        if s.control != cid:
            continue
        target = f"{s.resource}/{s.subresource}" if s.subresource else s.resource
        for rule in policy.rules:
            verbs = {a.verb for a in _candidates(rule, s) if rule_matches(rule, a)}
            if not verbs:
                continue
            if any(level_at_least(rule.level, s.leaks_from[v]) for v in verbs):
                yield (f"/rules/{rule.index}/level",
                       f"rule {rule.index} logs {target} at {rule.level}: {s.why} would be written to the audit log")
            if _catches_all(rule, s):
                break


@_policy_check("AUDIT-POL-002", "Audit policy logs credential-bearing bodies", "high",
               "Log secrets, configmaps, tokenreviews and serviceaccounts/token at Metadata, in a rule placed before "
               "any Request/RequestResponse rule.", ("cis-3.2.2",))
def secret_bodies(policy: Policy, res: Resource) -> Iterator[Hit]:
    """No rule that can match logs secrets, tokenreviews or serviceaccounts/token at a level whose bodies carry
    the credential (Request for writes, RequestResponse for reads): the audit log would hold secret data and
    bearer tokens. Upstream: audit.k8s.io/v1 Level (staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go);
    the Auditing task (kubernetes.io/docs/tasks/debug/debug-cluster/audit/); CIS 3.2.2."""
    yield from _bodies(policy, "AUDIT-POL-002")


@_policy_check("AUDIT-POL-007", "Audit policy logs configmap bodies", "low",
               "Log configmap reads at Metadata (writes at Request let configmap-credentials see credentials put in "
               "configmaps).")
def configmap_bodies(policy: Policy, res: Resource) -> Iterator[Hit]:
    """No rule that can match logs configmap reads at RequestResponse: every get, list and watch would write the
    data of every configmap read, where credentials often end up, again into the log. Writes at Request are
    what the configmap-credentials detection needs. Upstream: audit.k8s.io/v1 Level."""
    yield from _bodies(policy, "AUDIT-POL-007")


def _container_access(policy: Policy, subresources: tuple[str, ...]) -> Iterator[Hit]:
    for sub in subresources:
        for u in PROBE_USERS:
            d = policy.evaluate(Attributes("create", "pods", sub, "", "default", "web-0", user=u))
            stages_left = {"ResponseStarted", "ResponseComplete"} - d.omit_stages
            if d.level == "None" or not stages_left:
                why = (f"rule {d.rule} sets level None" if d.rule is not None and d.level == "None"
                       else "no rule matches (default None)" if d.rule is None
                       else f"rule {d.rule} omits both ResponseStarted and ResponseComplete")
                path = f"/rules/{d.rule}" if d.rule is not None else "/rules"
                yield path, f"pods/{sub} by {u.name} is not logged: {why}"
                break


@_policy_check("AUDIT-POL-003", "Audit policy does not log container access", "high",
               "Add a rule logging pods/exec, pods/attach and pods/portforward at Metadata or above, and do not omit "
               "both ResponseStarted and ResponseComplete.", ("cis-3.2.2",))
def exec_unlogged(policy: Policy, res: Resource) -> Iterator[Hit]:
    """pods/exec and pods/attach by an ordinary user or service account are logged (level above None, and not both
    response stages omitted), judged by the exact policy evaluator: a shell in a container is the first thing to
    look for after an intrusion. Upstream: staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go; CIS 3.2.2."""
    yield from _container_access(policy, ("exec", "attach"))


@_policy_check("AUDIT-POL-006", "Audit policy does not log port-forwarding", "medium",
               "Add a rule logging pods/exec, pods/attach and pods/portforward at Metadata or above, and do not omit "
               "both ResponseStarted and ResponseComplete.", ("cis-3.2.2",))
def portforward_unlogged(policy: Policy, res: Resource) -> Iterator[Hit]:
    """pods/portforward by an ordinary user or service account is logged: a port-forward reaches a pod's ports
    past every NetworkPolicy. Upstream: staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go; CIS 3.2.2."""
    yield from _container_access(policy, ("portforward",))


@_policy_check("AUDIT-POL-004", "Audit policy does not log secret access", "medium",
               "Log secrets at Metadata for all users.", ("cis-3.2.2",))
def secrets_unlogged(policy: Policy, res: Resource) -> Iterator[Hit]:
    """Reading a secret as an ordinary user or service account is logged, with its ResponseComplete stage:
    without it, who read which credential cannot be told afterwards. Upstream:
    staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go; CIS 3.2.2."""
    for u in PROBE_USERS:
        d = policy.evaluate(Attributes("get", "secrets", "", "", "default", "db-password", user=u))
        if d.level == "None" or "ResponseComplete" in d.omit_stages:
            path = f"/rules/{d.rule}" if d.rule is not None else "/rules"
            yield path, (f"reading a secret as {u.name} is not logged"
                         + (f" (rule {d.rule})" if d.rule is not None else " (no rule matches)"))
            break


@_policy_check("AUDIT-POL-005", "Audit policy logs every request twice", "info",
               "Add `omitStages: [RequestReceived]` at the policy level (or on each rule that logs).")
def double_logged(policy: Policy, res: Resource) -> Iterator[Hit]:
    """The policy omits the RequestReceived stage wherever it logs: otherwise every request a rule logs produces
    a second event at RequestReceived, doubling the log for no information. A rule's omitStages count with the
    policy's (their union is what the apiserver omits), so a policy omitting it on each logging rule passes.
    Upstream: audit.k8s.io/v1 Stage (staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go), the union in
    staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go."""
    logging = [r for r in policy.rules if r.level != "None"]
    doubled = [r for r in logging if "RequestReceived" not in union_stages(policy.omit_stages, r.omit_stages)]
    if doubled and len(doubled) == len(logging):
        yield ("/omitStages" if "omitStages" in res.obj else "",
               "RequestReceived is not omitted: every logged request produces an extra event")
        return
    for r in doubled:
        yield (f"/rules/{r.index}",
               f"rule {r.index} does not omit RequestReceived: every request it logs produces an extra event")


@_policy_check("AUDIT-POL-009", "Audit policy field the kube-apiserver ignores", "medium",
               "Move the field to where it belongs (a rule's verbs sit beside its resources, not inside one) or "
               "delete it.")
def ignored_fields(policy: Policy, res: Resource) -> Iterator[Hit]:
    """Every field of the policy is one the apiserver reads: it decodes an unknown field leniently, logging only a
    warning, and drops it, so `verbs` indented under `resources` leaves the rule matching every verb. Upstream:
    staging/src/k8s.io/apiserver/pkg/audit/policy/reader.go (the lenient fallback) and pkg/apis/audit/v1/types.go."""
    doc = res.obj

    def unknown(obj: Any, known: frozenset[str], at: str) -> Iterator[Hit]:
        if isinstance(obj, dict):
            for key in obj:
                if key not in known:
                    yield f"{at}/{key}", f"{at or '/'}: unknown field {key!r}, which the kube-apiserver ignores"

    yield from unknown(doc, POLICY_FIELDS, "")
    rules = doc.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        yield from unknown(rule, RULE_FIELDS, f"/rules/{i}")
        groups = rule.get("resources") if isinstance(rule, dict) else None
        for j, group in enumerate(groups if isinstance(groups, list) else []):
            yield from unknown(group, GROUP_RESOURCE_FIELDS, f"/rules/{i}/resources/{j}")


@_policy_check("AUDIT-POL-008", "Audit policy blinds a kubeward detection", "medium",
               "Log the request at the level the detection needs (see the detection table in docs/audit.md), or "
               "accept that the detection cannot fire.")
def blinds_detection(policy: Policy, res: Resource) -> Iterator[Hit]:
    """Every built-in detection of `audit analyze` sees the requests it needs at the level it needs
    (audit/coverage.py): with `--for-detections` only. Upstream: the Auditing task
    (kubernetes.io/docs/tasks/debug/debug-cluster/audit/) for levels and stages."""
    from .coverage import blinded

    for b in blinded(policy):
        yield (f"/rules/{b.rule}" if b.rule is not None else "/rules",
               f"detection {b.detection} is blind to {b.request}: {b.why}")


UNREACHABLE, SECRET_BODIES, EXEC_UNLOGGED, SECRETS_UNLOGGED = (meta_of(f"AUDIT-POL-00{i}") for i in (1, 2, 3, 4))
DOUBLE_LOGGED, PORTFORWARD_UNLOGGED, CONFIGMAP_BODIES, BLINDS_DETECTION, IGNORED_FIELDS = (
    meta_of(f"AUDIT-POL-00{i}") for i in (5, 6, 7, 8, 9))
FOR_DETECTIONS = BLINDS_DETECTION.id  # runs only when asked (`--for-detections`)


def policy_checks() -> dict[str, Control]:
    """The checks of `audit policy check`, by id."""
    return registered(Shape.AUDIT_POLICY)


def check_policy(policy: Policy, res: Resource, controls: list[Control] | None = None) -> list[Finding]:
    """The findings of the chosen checks (default: all but the detection coverage) on one policy."""
    chosen = [c for c in policy_checks().values() if c.meta.id != FOR_DETECTIONS] if controls is None else controls
    # A policy file is no namespaced object (`Policy/default/` was shown): named as `encryption check` names its
    # file, by metadata.name or else the file name.
    ref = ObjectRef(res.api_version, res.kind, None, res.name or os.path.basename(res.file or ""))
    return [Finding(c.meta, ref, res.location(path), path, message)
            for c in chosen for path, message in c.func(policy, res)]


def check_file(path: str, for_detections: bool = False, controls: list[Control] | None = None) -> Report:
    """Load and lint one policy file; problems reading or validating it become report errors (objects = 0).
    With for_detections, also which built-in detections of `audit analyze` the policy blinds."""
    from ..sources.files import load_paths

    pool = list(policy_checks().values()) if controls is None else controls
    chosen = [c for c in pool if for_detections or c.meta.id != FOR_DETECTIONS]
    loaded = load_paths([path])
    report = Report(objects=0, findings=[], errors=list(loaded.errors),
                    controls={c.meta.id: ControlResult(c.meta) for c in chosen})
    policies = [r for r in loaded.resources if r.kind == "Policy"]
    if not policies and not report.errors:
        shown = loaded.resources[0].file if loaded.resources else path
        report.errors.append(InputError(str(shown), "no audit.k8s.io Policy found"))
    for res in policies:
        try:
            policy = parse_policy(res.obj)
        except PolicyError as exc:
            report.errors.append(InputError(f"{res.location()}", f"invalid audit policy: {exc}"))
            continue
        report.objects += 1
        found = check_policy(policy, res, chosen)
        report.findings.extend(found)
        failed = {f.control.id for f in found}
        for c in chosen:
            report.controls[c.meta.id].evaluated += 1
            report.controls[c.meta.id].failed += c.meta.id in failed
    return report
