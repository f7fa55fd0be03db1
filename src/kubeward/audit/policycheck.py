"""`audit policy check`: lint an audit Policy with the exact evaluator (engines.auditpolicy).

Findings: rules that can never match (an earlier rule matches every request they would), credential-bearing
bodies logged (secrets, token reviews, token requests), and container access (exec/attach/port-forward) or secret
access that the policy does not log at all for ordinary users.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..engines.auditpolicy import (
    STAGES,
    Attributes,
    GroupResources,
    Policy,
    PolicyError,
    PolicyRule,
    UserInfo,
    level_at_least,
    parse_policy,
    rule_matches,
)
from ..findings import ControlMeta, Finding, InputError, Report, Severity
from ..resource import Resource

UNREACHABLE = ControlMeta("AUDIT-POL-001", "Audit policy rule can never match", Severity.MEDIUM, "audit",
                          remediation="Move the rule before the broader rule that shadows it, or delete it.")
SECRET_BODIES = ControlMeta("AUDIT-POL-002", "Audit policy logs credential-bearing bodies", Severity.HIGH, "audit",
                            ("cis-3.2.2",),
                            remediation="Log secrets, configmaps, tokenreviews and serviceaccounts/token at "
                                        "Metadata, in a rule placed before any Request/RequestResponse rule.")
EXEC_UNLOGGED = ControlMeta("AUDIT-POL-003", "Audit policy does not log container access", Severity.HIGH, "audit",
                            ("cis-3.2.2",),
                            remediation="Add a rule logging pods/exec, pods/attach and pods/portforward at Metadata "
                                        "or above, and do not omit both ResponseStarted and ResponseComplete.")
CONFIGMAP_BODIES = ControlMeta("AUDIT-POL-007", "Audit policy logs configmap bodies", Severity.LOW, "audit",
                               remediation="Log configmap reads at Metadata (writes at Request let "
                                           "configmap-credentials see credentials put in configmaps).")
PORTFORWARD_UNLOGGED = ControlMeta("AUDIT-POL-006", "Audit policy does not log port-forwarding", Severity.MEDIUM,
                                   "audit", ("cis-3.2.2",), remediation=EXEC_UNLOGGED.remediation)
SECRETS_UNLOGGED = ControlMeta("AUDIT-POL-004", "Audit policy does not log secret access", Severity.MEDIUM, "audit",
                               ("cis-3.2.2",),
                               remediation="Log secrets at Metadata for all users.")
BLINDS_DETECTION = ControlMeta("AUDIT-POL-008", "Audit policy blinds a kubeward detection", Severity.MEDIUM,
                               "audit", remediation="Log the request at the level the detection needs (see the "
                               "detection table in docs/audit.md), or accept that the detection cannot fire.")
DOUBLE_LOGGED = ControlMeta("AUDIT-POL-005", "Audit policy logs every request twice", Severity.INFO, "audit",
                            remediation="Add `omitStages: [RequestReceived]` at the policy level.")


@dataclass(frozen=True, slots=True)
class Sensitive:
    """A credential-bearing target and the level from which its bodies reach the log."""

    group: str
    resource: str
    subresource: str
    leaks_from: dict[str, str]  # verb -> the lowest level whose bodies carry the credential for that verb
    why: str
    meta: ControlMeta | None = None  # default SECRET_BODIES

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
              "the data of every configmap read, where credentials often end up", CONFIGMAP_BODIES),
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
                    yield Attributes(u, v, True, ns, s.group, s.resource, s.subresource, name)


def _catches_all(rule: PolicyRule, s: Sensitive) -> bool:
    """The rule matches every request to the target (so nothing after it is consulted for the target)."""
    if rule.users or rule.user_groups or rule.namespaces or rule.non_resource_urls:
        return False
    if rule.verbs and not set(s.verbs) <= set(rule.verbs):
        return False
    if not rule.resources:
        return True
    probe = Attributes(None, s.verbs[0], True, "", s.group, s.resource, s.subresource, "")
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


def check_policy(policy: Policy, res: Resource) -> list[Finding]:
    findings: list[Finding] = []

    def add(meta: ControlMeta, path: str, message: str) -> None:
        findings.append(Finding(meta, res.ref(), res.location(path), path, message))

    for j, rj in enumerate(policy.rules):
        for i in range(j):
            if shadows(policy.rules[i], rj):
                add(UNREACHABLE, f"/rules/{j}", f"rule {j} can never match: rule {i} before it matches every "
                    "request it would" + (f" (rule {i} matches everything)"
                                          if policy.rules[i].is_catch_all else ""))
                break

    for s in SENSITIVE:
        target = f"{s.resource}/{s.subresource}" if s.subresource else s.resource
        for rule in policy.rules:
            verbs = {a.verb for a in _candidates(rule, s) if rule_matches(rule, a)}
            if not verbs:
                continue
            if any(level_at_least(rule.level, s.leaks_from[v]) for v in verbs):
                add(s.meta or SECRET_BODIES, f"/rules/{rule.index}/level",
                    f"rule {rule.index} logs {target} at {rule.level}: {s.why} would be written to the audit log")
            if _catches_all(rule, s):
                break

    logged = set(STAGES) - set(policy.omit_stages)
    for sub, meta in (("exec", EXEC_UNLOGGED), ("attach", EXEC_UNLOGGED), ("portforward", PORTFORWARD_UNLOGGED)):
        for u in PROBE_USERS:
            d = policy.evaluate(Attributes(u, "create", True, "default", "", "pods", sub, "web-0"))
            stages_left = {"ResponseStarted", "ResponseComplete"} - d.omit_stages
            if d.level == "None" or not stages_left:
                why = (f"rule {d.rule} sets level None" if d.rule is not None and d.level == "None"
                       else "no rule matches (default None)" if d.rule is None
                       else f"rule {d.rule} omits both ResponseStarted and ResponseComplete")
                path = f"/rules/{d.rule}" if d.rule is not None else "/rules"
                add(meta, path, f"pods/{sub} by {u.name} is not logged: {why}")
                break

    for u in PROBE_USERS:
        d = policy.evaluate(Attributes(u, "get", True, "default", "", "secrets", "", "db-password"))
        if d.level == "None" or "ResponseComplete" in d.omit_stages:
            path = f"/rules/{d.rule}" if d.rule is not None else "/rules"
            add(SECRETS_UNLOGGED, path, f"reading a secret as {u.name} is not logged"
                + (f" (rule {d.rule})" if d.rule is not None else " (no rule matches)"))
            break

    if "RequestReceived" in logged and any(r.level != "None" for r in policy.rules):
        add(DOUBLE_LOGGED, "/omitStages" if "omitStages" in res.obj else "",
            "RequestReceived is not omitted: every logged request produces an extra event")
    return findings


def detection_findings(policy: Policy, res: Resource) -> list[Finding]:
    """One finding per built-in detection the policy blinds (audit/coverage.py), at the rule that does it."""
    from .coverage import blinded

    out = []
    for b in blinded(policy):
        path = f"/rules/{b.rule}" if b.rule is not None else "/rules"
        out.append(Finding(BLINDS_DETECTION, res.ref(), res.location(path), path,
                           f"detection {b.detection} is blind to {b.request}: {b.why}"))
    return out


def check_file(path: str, for_detections: bool = False) -> Report:
    """Load and lint one policy file; problems reading or validating it become report errors (objects = 0).
    With for_detections, also which built-in detections of `audit analyze` the policy blinds."""
    from ..sources.files import load_paths

    loaded = load_paths([path])
    report = Report(objects=0, findings=[], errors=list(loaded.errors))
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
        report.findings.extend(check_policy(policy, res))
        if for_detections:
            report.findings.extend(detection_findings(policy, res))
    return report
