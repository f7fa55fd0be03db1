"""`admission vap`: the controls CEL can express, as ValidatingAdmissionPolicy objects (admissionregistration.k8s.io/v1).

Each expression restates one PSS check (kubeward.engines.pss, at the latest policy version) over the typed pod spec,
so the apiserver denies exactly what the control fails: containers are init, regular and ephemeral containers, as
the engine (pod-security-admission policy/visitor.go visitContainers). The lists are checked one by one, since
Container and EphemeralContainer are different CEL types. The type checker checks every expression against each
matched kind, so one policy is written per place of the pod spec (Pod, templates, PodTemplate, CronJob) rather than
one field path chosen at run time.

Modes (docs/admission.md), as the webhook's: for each place of the pod spec a policy bound with `Deny`, one with
`Warn` and one with `Audit`; in each, a control applies where its severity is at or above the namespace's threshold
for that mode, read from the namespace's `kubeward.io/<mode>` label (through `namespaceObject`) over the config's
default. Exempt namespaces become the bindings' namespaceSelector, exempt users and groups the policies'
matchConditions. Unworsened UPDATEs are the webhook's only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..controls.registry import Control
from ..controls.workload.capabilities import SPECIFIC_CAPS
from ..engines.pss.baseline import (
    APPARMOR_ANNOTATION_PREFIX,
    CAPABILITIES_ALLOWED_1_0,
    SELINUX_TYPES_1_31,
    SYSCTLS_LATEST,
)
from ..engines.pss.restricted import ALLOWED_VOLUME_SOURCES
from ..findings import Severity
from .config import LABEL_PREFIX, NONE, AdmissionConfig
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


def _host_namespace(field: str, control: str) -> Rule:  # baseline.host_namespace, one field per control
    return Rule("hostNamespaces", f"!(has(variables.spec.{field}) && variables.spec.{field} == true)",
                f"'{field}=true'", control)


def _host_path() -> Rule:  # baseline.host_path_volumes_1_0 (and restrictedVolumes' hostPath type)
    ok = "(!has(variables.spec.volumes) || variables.spec.volumes.all(v, !has(v.hostPath)))"
    return Rule("hostPathVolumes", ok,
                "'volumes ' + variables.spec.volumes.filter(v, has(v.hostPath)).map(v, v.name).join(', ')", "KW-W006")


# Python's str.upper (controls.workload.common._norm_cap) maps these non-ASCII letters into ASCII, as Go's
# strings.ToUpper in the container runtimes does for U+0131 and U+017F; CEL has upperAscii only, so they are
# replaced first and the upper-cased name is the control's for every string.
_UPPER_TO_ASCII = {ch: ch.upper() for ch in "\u00df\u0131\u017f\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"}
assert all(u.isascii() and u.isupper() for u in _UPPER_TO_ASCII.values())


def _norm_cap_in(a: str, names: frozenset[str]) -> str:
    """controls.workload.common._norm_cap(a) in names, in CEL: upper-cased, then CAP_ stripped. No name starts
    with CAP_, so that is the upper-cased name being a name or CAP_ and a name."""
    assert not any(n.startswith("CAP_") for n in names)
    up = a + "".join(f".replace({cel_string(k)}, {cel_string(v)})" for k, v in _UPPER_TO_ASCII.items())
    return f"{up}.upperAscii() in {_quoted(names | {'CAP_' + n for n in names})}"


def _capabilities_extra() -> Rule:  # baseline.capabilities_baseline_1_0, less what a dangerous-capability control reports
    ok = (f"!({_sc('capabilities.add')}) || c.securityContext.capabilities.add.all(a, a in "
          f"{_quoted(CAPABILITIES_ALLOWED_1_0)} || {_norm_cap_in('a', frozenset(SPECIFIC_CAPS))})")
    return Rule("capabilities_baseline", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not add capabilities outside the runtime default set'",
                "KW-W010")


def _capabilities_dangerous(cid: str) -> Rule:  # controls.workload.capabilities _added: the control's names
    caps = frozenset(c for c, owner in SPECIFIC_CAPS.items() if owner == cid)
    ok = f"!({_sc('capabilities.add')}) || c.securityContext.capabilities.add.all(a, !({_norm_cap_in('a', caps)}))"
    return Rule("capabilities_baseline", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not add ' + {cel_string(', '.join(sorted(caps)))}", cid)


def _drops_all() -> Rule:  # restricted.drops_all (KW-W018, the drop half of capabilities_restricted_1_25)
    ok = f"({_sc('capabilities.drop')} && 'ALL' in c.securityContext.capabilities.drop)"
    return Rule("capabilities_restricted", f"{_WINDOWS} || ({_every(ok)})",
                f"'containers ' + {_names(ok)} + ' must set securityContext.capabilities.drop=[\"ALL\"]'",
                "KW-W018")


def _restricted_adds() -> Rule:  # restricted.restricted_adds within the default set (what KW-W010/W011..17 leave)
    ok = (f"(!({_sc('capabilities.add')}) || c.securityContext.capabilities.add.all(a, !(a in "
          f"{_quoted(CAPABILITIES_ALLOWED_1_0)}) || a == 'NET_BIND_SERVICE'))")
    return Rule("capabilities_restricted", f"{_WINDOWS} || ({_every(ok)})",
                f"'containers ' + {_names(ok)} + ' must not add capabilities other than NET_BIND_SERVICE'",
                "KW-W056")


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


def _seccomp_unset() -> Rule:  # restricted.seccomp_profile_restricted_1_25, less a set bad type (KW-W027's)
    pod_set = f"(has({_POD_SC}) && has({_POD_SC}.seccompProfile))"
    ok = f"({_sc('seccompProfile')})"
    return Rule("seccompProfile_restricted", f"{_WINDOWS} || {pod_set} || ({_every(ok)})",
                f"'pod or containers ' + {_names(ok)} + ' must set securityContext.seccompProfile.type to "
                f"\"RuntimeDefault\" or \"Localhost\"'", "KW-W026")


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


def _profile_ok(prof: str, allowed: str) -> str:
    """A set seccomp / AppArmor profile has a type among `allowed` (baseline.valid_seccomp and the AppArmor check:
    a profile without a type is not valid)."""
    return f"(has({prof}.type) && {prof}.type in {allowed})"


def _pod_profile_ok(field: str, allowed: str) -> str:
    prof = f"{_POD_SC}.{field}"
    return f"!(has({_POD_SC}) && has({prof}) && !{_profile_ok(prof, allowed)})"


def _seccomp_baseline() -> Rule:  # baseline.seccomp_profile_baseline_1_19: the fields, annotations no longer read
    ok = f"(!({_sc('seccompProfile')}) || {_profile_ok('c.securityContext.seccompProfile', _SECCOMP_OK)})"
    return Rule("seccompProfile_baseline", f"{_pod_profile_ok('seccompProfile', _SECCOMP_OK)} && {_every(ok)}",
                f"'pod or containers ' + {_names(ok)} + ' must not set securityContext.seccompProfile.type to "
                f"\"Unconfined\"'", "KW-W027")


def _app_armor() -> Rule:  # baseline.app_armor_profile_1_0: pod and container fields, and the beta annotations
    allowed = "['RuntimeDefault', 'Localhost']"
    ok = f"(!({_sc('appArmorProfile')}) || {_profile_ok('c.securityContext.appArmorProfile', allowed)})"
    prefix = cel_string(APPARMOR_ANNOTATION_PREFIX)
    annotations = ("variables.annotations.all(k, !k.startsWith(" + prefix + ") || variables.annotations[k] == '' || "
                   "variables.annotations[k] == 'runtime/default' || variables.annotations[k].startsWith('localhost/'))")
    return Rule("appArmorProfile", f"{_pod_profile_ok('appArmorProfile', allowed)} && {annotations} && {_every(ok)}",
                f"'pod, annotations or containers ' + {_names(ok)} + ' must not set an AppArmor profile other than "
                f"RuntimeDefault or Localhost'", "KW-W028")


def _se_linux() -> Rule:  # baseline.se_linux_options_1_31: allowed types; user and role empty
    def valid(o: str) -> str:
        return (f"((!has({o}.type) || {o}.type in {_quoted(SELINUX_TYPES_1_31)}) && "
                f"(!has({o}.user) || {o}.user == '') && (!has({o}.role) || {o}.role == ''))")

    pod = f"!(has({_POD_SC}) && has({_POD_SC}.seLinuxOptions) && !{valid(f'{_POD_SC}.seLinuxOptions')})"
    ok = f"(!({_sc('seLinuxOptions')}) || {valid('c.securityContext.seLinuxOptions')})"
    return Rule("seLinuxOptions", f"{pod} && {_every(ok)}",
                f"'pod or containers ' + {_names(ok)} + ' set forbidden securityContext.seLinuxOptions (a type other "
                f"than container_t, container_init_t, container_kvm_t or container_engine_t; user or role)'", "KW-W029")


def _sysctls() -> Rule:  # baseline.sysctls_1_37: each name, as written, in the safe set
    ok = (f"!(has({_POD_SC}) && has({_POD_SC}.sysctls)) || {_POD_SC}.sysctls.all(s, has(s.name) && s.name in "
          f"{_quoted(SYSCTLS_LATEST)})")
    return Rule("sysctls", ok, f"'forbidden sysctls ' + {_POD_SC}.sysctls.filter(s, !(has(s.name) && s.name in "
                               f"{_quoted(SYSCTLS_LATEST)})).map(s, has(s.name) ? s.name : '').join(', ')", "KW-W031")


def _git_repo() -> Rule:  # restricted.restricted_volumes_1_0, the gitRepo type (a hostPath one is KW-W006's)
    ok = "!(has(v.gitRepo) && !has(v.hostPath))"
    return Rule("restrictedVolumes", f"!has(variables.spec.volumes) || variables.spec.volumes.all(v, {ok})",
                f"'volumes ' + variables.spec.volumes.filter(v, !({ok})).map(v, v.name).join(', ') + ' are gitRepo "
                f"volumes'", "KW-W035")


def _other_volumes() -> Rule:  # restricted.restricted_volumes_1_0, less the hostPath and gitRepo types
    # A volume with no source is defaulted to emptyDir before admission (core/v1 SetDefaults_Volume), so every
    # volume CEL sees has a source: it passes when that is an allowed one, or hostPath or gitRepo (theirs).
    ok = " || ".join(f"has(v.{k})" for k in (*ALLOWED_VOLUME_SOURCES, "hostPath", "gitRepo"))
    return Rule("restrictedVolumes", f"!has(variables.spec.volumes) || variables.spec.volumes.all(v, {ok})",
                f"'volumes ' + variables.spec.volumes.filter(v, !({ok})).map(v, v.name).join(', ') + ' use restricted "
                f"volume types'", "KW-W055")


def _host_probes_and_lifecycle() -> Rule:  # baseline.host_probes_and_host_lifecycle_1_34
    def no_host(handler: str) -> str:
        return " && ".join(f"!(has({handler}.{a}) && has({handler}.{a}.host) && {handler}.{a}.host != '')"
                           for a in ("httpGet", "tcpSocket"))

    probes = [f"(!has(c.{p}) || ({no_host(f'c.{p}')}))" for p in ("livenessProbe", "readinessProbe", "startupProbe")]
    hooks = [f"(!has(c.lifecycle.{h}) || ({no_host(f'c.lifecycle.{h}')}))" for h in ("postStart", "preStop")]
    ok = f"({' && '.join(probes)} && (!has(c.lifecycle) || ({' && '.join(hooks)})))"
    return Rule("hostProbesAndHostLifecycle", _every(ok),
                f"'containers ' + {_names(ok)} + ' must not set a host in probes or lifecycle handlers'", "KW-W033")


def _by_control(rules: tuple[Rule, ...]) -> dict[str, Rule]:
    """Each rule under the one control it restates. A PSS check reported by several controls (hostNamespaces:
    KW-W002/3/4; capabilities: KW-W010, W011..W017, W018, W056; seccomp: KW-W026/W027; procMount: KW-W030 and
    KW-PSS-procMount_restricted; restrictedVolumes: KW-W006/W035/W055) has one rule per control, each restating
    exactly that control's part of the check."""
    from ..controls.pss import REPORTED_BY

    out: dict[str, Rule] = {}
    for r in rules:
        assert r.control in REPORTED_BY.get(r.check, (f"KW-PSS-{r.check}",)), (r.control, r.check)
        assert r.control not in out, r.control
        out[r.control] = r
    return out


RULES: dict[str, Rule] = _by_control((
    _privileged(), _host_namespace("hostPID", "KW-W002"), _host_namespace("hostIPC", "KW-W003"),
    _host_namespace("hostNetwork", "KW-W004"), _host_path(), _capabilities_extra(),
    *(_capabilities_dangerous(c) for c in sorted(set(SPECIFIC_CAPS.values()))), _drops_all(), _restricted_adds(),
    _allow_privilege_escalation(), _run_as_non_root(), _seccomp_unset(), _seccomp_baseline(), _host_ports(),
    _proc_mount("procMount", False), _proc_mount("procMount_restricted", True), _run_as_user(),
    _windows_host_process(), _app_armor(), _se_linux(), _sysctls(), _git_repo(), _other_volumes(),
    _host_probes_and_lifecycle()))


@dataclass(slots=True)
class Export:
    objects: list[dict[str, Any]]
    exported: list[Control]
    not_expressed: list[Control]  # chosen controls kubeward has no CEL for: listed, never silently dropped
    dormant: list[Control]  # exported controls no default mode acts on: they act only where labels lower a threshold


# The three webhook modes and the validationAction each becomes; one policy per (place of the pod spec, mode).
ACTIONS = (("enforce", "deny", "Deny"), ("warn", "warn", "Warn"), ("audit", "audit", "Audit"))
OFF = max(int(s) for s in Severity) + 1  # a threshold no severity reaches: the mode is off


def _rank(threshold: Severity | None) -> int:
    return int(threshold) if threshold is not None else OFF


def _threshold(mode: str, default: Severity | None) -> str:
    """The namespace's threshold for `mode` as an int, as AdmissionConfig.policy_for reads the labels: the label
    `kubeward.io/<mode>` (a severity or `none`, case-insensitive) over the default; a value that does not parse
    fails closed for enforce (info: every finding) and open for warn and audit (off), as pod-security-admission
    does with a level it cannot parse (api/helpers.go PolicyToEvaluate)."""
    key = cel_string(LABEL_PREFIX + mode)
    ranks = "{" + ", ".join(f"'{s.label}': {int(s)}" for s in Severity) + f", '{NONE}': {OFF}" + "}"
    bad = int(Severity.INFO) if mode == "enforce" else OFF
    value = f"variables.labels[{key}].lowerAscii()"
    return f"{key} in variables.labels ? ({value} in {ranks} ? {ranks}[{value}] : {bad}) : {_rank(default)}"


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
    """The policies and bindings for the config's chosen controls (default: every admission control): for each
    place of the pod spec, a Deny, a Warn and an Audit policy, each applying a control where the namespace's
    threshold for that mode (its `kubeward.io/*` label, else the config's default) is at or below its severity."""
    cfg = cfg or AdmissionConfig()
    chosen = admission_controls(cfg.include, cfg.exclude)
    exported = [c for c in chosen if c.meta.id in RULES]
    not_expressed = [c for c in chosen if c.meta.id not in RULES]
    d = cfg.defaults
    dormant = [c for c in exported if all(t is None or c.meta.severity < t for t in (d.enforce, d.warn, d.audit))]
    objects: list[dict[str, Any]] = []
    if exported:
        for mode, suffix, action in ACTIONS:
            for shape, (path, rules) in SHAPES.items():
                name = f"{PREFIX}{shape}-{suffix}"
                objects.append(_policy(name, path, rules, exported, cfg, _threshold(mode, getattr(d, mode))))
                objects.append(_binding(name, (action,), cfg))
    return Export(objects, exported, not_expressed, dormant)


def _annotations(path: str) -> str:
    """The annotations beside the pod spec at `path` (the pod's or the template's metadata), empty when unset."""
    meta = path.removesuffix(".spec") + ".metadata"
    guard = f"has({meta}.annotations)" if meta == "object.metadata" else f"has({meta}) && has({meta}.annotations)"
    return f"{guard} ? {meta}.annotations : {{}}"


def _policy(name: str, path: str, rules: list[dict[str, Any]], controls: list[Control],
            cfg: AdmissionConfig, threshold: str) -> dict[str, Any]:
    validations = []
    for c in controls:
        r = RULES[c.meta.id]
        validations.append({
            "expression": f"variables.threshold > {int(c.meta.severity)} || ({r.ok})",
            "messageExpression": cel_string(f"kubeward: {c.meta.id} ({c.meta.severity.label}) {c.meta.title}: ")
                                 + f" + {r.detail}",
            "reason": "Forbidden",
        })
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{**r, "operations": ["CREATE", "UPDATE"]} for r in rules]},
        "variables": [{"name": "spec", "expression": path},
                      {"name": "annotations", "expression": _annotations(path)},
                      {"name": "labels", "expression": "namespaceObject != null && "
                       "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}"},
                      {"name": "threshold", "expression": threshold}],
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
