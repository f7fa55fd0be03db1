"""`admission vap`: the controls CEL can express, as ValidatingAdmissionPolicy objects (admissionregistration.k8s.io/v1).

Each expression restates one PSS check (kubeward.engines.pss, at the latest policy version) over the typed pod spec,
so the apiserver denies exactly what the control fails: containers are init, regular and ephemeral containers, as
the engine (pod-security-admission policy/visitor.go visitContainers). The lists are checked one by one, since
Container and EphemeralContainer are different CEL types. The type checker checks every expression against each
matched kind, so one policy is written per place of the pod spec (Pod, templates, PodTemplate, CronJob) rather than
one field path chosen at run time.

Modes (docs/admission.md): a control at or above the config's default enforce threshold goes into a policy bound
with `Deny`, one below it but at or above warn into a `Warn` one, with `Audit` added at or above audit. Exempt
namespaces become the binding's namespaceSelector, exempt users and groups the policy's matchConditions. Per-namespace
`kubeward.io/*` labels and unworsened UPDATEs are the webhook's only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..controls.registry import Control
from ..controls.workload.capabilities import SPECIFIC_CAPS
from ..engines.pss.baseline import CAPABILITIES_ALLOWED_1_0
from .config import AdmissionConfig
from .decide import admission_controls

API_VERSION = "admissionregistration.k8s.io/v1"
PREFIX = "kubeward-"
LISTS = ("initContainers", "containers", "ephemeralContainers")

# Where each pod-carrying kind keeps its pod spec (kubeward.resource.POD_SPEC_PATHS), with the resourceRules.
SHAPES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "pods": ("object.spec", [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]),
    "templates": ("object.spec.template.spec", [
        {"apiGroups": ["apps"], "apiVersions": ["v1"],
         "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs"]},
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["replicationcontrollers"]}]),
    "podtemplates": ("object.template.spec", [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["podtemplates"]}]),
    "cronjobs": ("object.spec.jobTemplate.spec.template.spec",
                 [{"apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["cronjobs"]}]),
}


def _sc(field: str, c: str = "c") -> str:
    """`c.securityContext.<field>` is set (CEL has() on each step of the path)."""
    parts = field.split(".")
    steps = [f"has({c}.securityContext)"]
    for i in range(len(parts)):
        steps.append(f"has({c}.securityContext.{'.'.join(parts[: i + 1])})")
    return " && ".join(steps)


def _every(ok: str) -> str:
    """`ok` (over `c`) holds for every container of every list."""
    return " && ".join(f"(!has(variables.spec.{lst}) || variables.spec.{lst}.all(c, {ok}))" for lst in LISTS)


def _names(ok: str) -> str:
    """The names of the containers for which `ok` fails, in the engine's order, as one string."""
    parts = [f"(has(variables.spec.{lst}) ? variables.spec.{lst}.filter(c, !({ok})).map(c, c.name) : [])"
             for lst in LISTS]
    return "(" + " + ".join(parts) + ").join(', ')"


def cel_string(text: str) -> str:
    """A CEL string literal (double-quoted; backslash, quote and control characters escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _quoted(values: frozenset[str]) -> str:
    return "[" + ", ".join(cel_string(v) for v in sorted(values)) + "]"


_WINDOWS = "(has(variables.spec.os) && variables.spec.os.name == 'windows')"  # PodInput.windows
_USERNS = "(has(variables.spec.hostUsers) && variables.spec.hostUsers == false)"  # PodInput.user_namespace
_POD_SC = "variables.spec.securityContext"
_SECCOMP_OK = "['RuntimeDefault', 'Localhost']"  # baseline.valid_seccomp


@dataclass(frozen=True, slots=True)
class Rule:
    """One control as CEL: `ok` holds when the control passes; `detail` is a CEL string naming what fails;
    `check` is the PSS check the control reports (all or part of)."""

    check: str
    ok: str
    detail: str
    control: str


def _privileged() -> Rule:  # baseline.privileged_1_0
    ok = f"!({_sc('privileged')} && c.securityContext.privileged == true)"
    return Rule("privileged", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not set securityContext.privileged=true'", "KW-W001")


def _host_path() -> Rule:  # baseline.host_path_volumes_1_0
    ok = "(!has(variables.spec.volumes) || variables.spec.volumes.all(v, !has(v.hostPath)))"
    return Rule("hostPathVolumes", ok,
                "'volumes ' + variables.spec.volumes.filter(v, has(v.hostPath)).map(v, v.name).join(', ')", "KW-W006")


def _norm_cap(a: str) -> str:
    """controls.workload.common._norm_cap: upper-cased, CAP_ stripped (ASCII case, as every capability name)."""
    return f"({a}.upperAscii().startsWith('CAP_') ? {a}.upperAscii().substring(4) : {a}.upperAscii())"


def _capabilities_extra() -> Rule:  # baseline.capabilities_baseline_1_0, less what a dangerous-capability control reports
    ok = (f"!({_sc('capabilities.add')}) || c.securityContext.capabilities.add.all(a, a in "
          f"{_quoted(CAPABILITIES_ALLOWED_1_0)} || {_norm_cap('a')} in {_quoted(frozenset(SPECIFIC_CAPS))})")
    return Rule("capabilities_baseline", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not add capabilities outside the runtime default set'",
                "KW-W010")


def _capabilities_dangerous(cid: str) -> Rule:  # capabilities.py _added
    caps = frozenset(c for c, owner in SPECIFIC_CAPS.items() if owner == cid)
    ok = f"!({_sc('capabilities.add')}) || c.securityContext.capabilities.add.all(a, !({_norm_cap('a')} in {_quoted(caps)}))"
    return Rule("capabilities_baseline", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not add ' + {cel_string(', '.join(sorted(caps)))}", cid)


def _allow_privilege_escalation() -> Rule:  # restricted.allow_privilege_escalation_1_25
    ok = f"({_sc('allowPrivilegeEscalation')} && c.securityContext.allowPrivilegeEscalation == false)"
    return Rule("allowPrivilegeEscalation", f"{_WINDOWS} || ({_every(ok)})",
                f"'containers ' + {_names(ok)} + ' must set securityContext.allowPrivilegeEscalation=false'", "KW-W024")


def _run_as_non_root() -> Rule:  # restricted.run_as_non_root_1_35
    pod_set = f"(has({_POD_SC}) && has({_POD_SC}.runAsNonRoot))"
    pod_ok = f"({pod_set} && {_POD_SC}.runAsNonRoot == true)"
    ok = f"({_sc('runAsNonRoot')} ? c.securityContext.runAsNonRoot == true : {pod_ok})"
    return Rule("runAsNonRoot", f"{_USERNS} || (!({pod_set} && {_POD_SC}.runAsNonRoot == false) && {_every(ok)})",
                f"'pod or containers ' + {_names(ok)} + ' must set securityContext.runAsNonRoot=true (and none "
                f"false)'", "KW-W020")


_SECCOMP_POD_SET = f"(has({_POD_SC}) && has({_POD_SC}.seccompProfile))"
_SECCOMP_POD_VALID = f"(has({_POD_SC}.seccompProfile.type) && {_POD_SC}.seccompProfile.type in {_SECCOMP_OK})"
_SECCOMP_C_VALID = (f"(has(c.securityContext.seccompProfile.type) && c.securityContext.seccompProfile.type in "
                    f"{_SECCOMP_OK})")


def _seccomp_unset() -> Rule:  # restricted.seccomp_profile_restricted_1_25, less a set bad type (KW-W027)
    ok = f"({_sc('seccompProfile')})"
    return Rule("seccompProfile_restricted", f"{_WINDOWS} || {_SECCOMP_POD_SET} || {_every(ok)}",
                f"'pod or containers ' + {_names(ok)} + ' must set securityContext.seccompProfile.type to "
                f"\"RuntimeDefault\" or \"Localhost\"'", "KW-W026")


def _seccomp_baseline() -> Rule:  # baseline.seccomp_profile_baseline_1_19
    ok = f"(!({_sc('seccompProfile')}) || {_SECCOMP_C_VALID})"
    return Rule("seccompProfile_baseline", f"!({_SECCOMP_POD_SET} && !{_SECCOMP_POD_VALID}) && {_every(ok)}",
                f"'pod or containers ' + {_names(ok)} + ' must not set securityContext.seccompProfile.type other "
                f"than \"RuntimeDefault\" or \"Localhost\"'", "KW-W027")


def _host_ports() -> Rule:  # baseline.host_ports_1_0
    ok = "(!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))"
    return Rule("hostPorts", _every(ok), f"'containers ' + {_names(ok)} + ' must not use hostPort'", "KW-W005")


def _proc_mount(check: str, userns: bool) -> Rule:  # baseline.proc_mount_1_35; restricted 1_35 where baseline allows
    ok = f"(!({_sc('procMount')}) || c.securityContext.procMount == 'Default')"
    expr = f"!{_USERNS} || ({_every(ok)})" if userns else f"{_USERNS} || ({_every(ok)})"
    return Rule(check, expr, f"'containers ' + {_names(ok)} + ' must not set securityContext.procMount other than "
                             f"\"Default\"'", f"KW-PSS-{check}" if userns else "KW-W030")


def _run_as_user() -> Rule:  # restricted.run_as_user_1_35
    pod_zero = f"(has({_POD_SC}) && has({_POD_SC}.runAsUser) && {_POD_SC}.runAsUser == 0)"
    ok = f"!({_sc('runAsUser')} && c.securityContext.runAsUser == 0)"
    return Rule("runAsUser", f"{_USERNS} || (!{pod_zero} && {_every(ok)})",
                f"'pod or containers ' + {_names(ok)} + ' must not set runAsUser=0'", "KW-W021")


def _windows_host_process() -> Rule:  # baseline.windows_host_process_1_0
    pod_bad = (f"(has({_POD_SC}) && has({_POD_SC}.windowsOptions) && has({_POD_SC}.windowsOptions.hostProcess) && "
               f"{_POD_SC}.windowsOptions.hostProcess == true)")
    ok = f"!({_sc('windowsOptions.hostProcess')} && c.securityContext.windowsOptions.hostProcess == true)"
    return Rule("windowsHostProcess", f"!{pod_bad} && {_every(ok)}",
                f"'pod or containers ' + {_names(ok)} + ' must not set securityContext.windowsOptions.hostProcess=true'",
                "KW-W032")


# Each rule under the one control it restates. A check split over controls of its own grain (hostNamespaces:
# KW-W002/3/4; capabilities_restricted: KW-W018 and KW-W056) has no one-to-one CEL rule yet: those controls are
# listed as not expressed rather than exported with a wider rule.
RULES: dict[str, Rule] = {r.control: r for r in (
    _privileged(), _host_path(), _capabilities_extra(), *(_capabilities_dangerous(c) for c in sorted(
        set(SPECIFIC_CAPS.values()))), _allow_privilege_escalation(), _run_as_non_root(), _seccomp_unset(),
    _seccomp_baseline(), _host_ports(), _proc_mount("procMount", False), _proc_mount("procMount_restricted", True),
    _run_as_user(), _windows_host_process())}


@dataclass(slots=True)
class Export:
    objects: list[dict[str, Any]]
    exported: list[Control]
    not_expressed: list[Control]  # chosen controls kubeward has no CEL for: listed, never silently dropped
    unmoded: list[Control]  # exported controls below every threshold (no policy: the webhook would not act)


def _actions(c: Control, cfg: AdmissionConfig) -> tuple[str, ...]:
    p, sev = cfg.defaults, c.meta.severity
    first = ("Deny",) if p.enforce is not None and sev >= p.enforce else (
        ("Warn",) if p.warn is not None and sev >= p.warn else ())
    return first + (("Audit",) if p.audit is not None and sev >= p.audit else ())


def _match_conditions(cfg: AdmissionConfig) -> list[dict[str, str]]:
    """Exempt users and groups (the webhook's `exempt-user` / `exempt-group`): the policy does not apply to them."""
    out = []
    if cfg.exempt_usernames:
        out.append({"name": "not-exempt-user",
                    "expression": f"!(request.userInfo.username in {_quoted(cfg.exempt_usernames)})"})
    if cfg.exempt_groups:
        out.append({"name": "not-exempt-group",
                    "expression": f"!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in "
                                  f"{_quoted(cfg.exempt_groups)}))"})
    return out


def export(cfg: AdmissionConfig | None = None) -> Export:
    """The policies and bindings for the config's chosen controls (default: every admission control)."""
    cfg = cfg or AdmissionConfig()
    chosen = admission_controls(cfg.include, cfg.exclude)
    exported = [c for c in chosen if c.meta.id in RULES]
    not_expressed = [c for c in chosen if c.meta.id not in RULES]
    groups: dict[tuple[str, ...], list[Control]] = {}
    unmoded = []
    for c in exported:
        acts = _actions(c, cfg)
        if acts:
            groups.setdefault(acts, []).append(c)
        else:
            unmoded.append(c)
    objects: list[dict[str, Any]] = []
    for acts, controls in sorted(groups.items()):
        mode = "-".join(a.lower() for a in acts)
        for shape, (path, rules) in SHAPES.items():
            name = f"{PREFIX}{shape}-{mode}"
            objects.append(_policy(name, path, rules, controls, cfg))
            objects.append(_binding(name, acts, cfg))
    return Export(objects, exported, not_expressed, unmoded)


def _policy(name: str, path: str, rules: list[dict[str, Any]], controls: list[Control],
            cfg: AdmissionConfig) -> dict[str, Any]:
    validations = []
    for c in controls:
        r = RULES[c.meta.id]
        validations.append({
            "expression": r.ok,
            "messageExpression": cel_string(f"kubeward: {c.meta.id} ({c.meta.severity.label}) {c.meta.title}: ")
                                 + f" + {r.detail}",
            "reason": "Forbidden",
        })
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{**r, "operations": ["CREATE", "UPDATE"]} for r in rules]},
        "variables": [{"name": "spec", "expression": path}],
        "validations": validations,
    }
    conditions = _match_conditions(cfg)
    if conditions:
        spec["matchConditions"] = conditions
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kubeward"},
                         "annotations": {"kubeward.io/controls": ",".join(c.meta.id for c in controls)}},
            "spec": spec}


def _binding(name: str, acts: tuple[str, ...], cfg: AdmissionConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": name, "validationActions": list(acts)}
    if cfg.exempt_namespaces:  # the webhook's exempt-namespace; the name label is set by the apiserver
        spec["matchResources"] = {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": sorted(cfg.exempt_namespaces)}]}}
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kubeward"}}, "spec": spec}
