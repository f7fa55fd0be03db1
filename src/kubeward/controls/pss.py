"""Pod Security Standards controls for `kubeward scan`: every upstream PSA check at the latest policy version.

The judgement is the PSS engine's (kubeward.engines.pss), so scan findings and `kubeward pss check` always agree.
A check whose fact a workload control already reports (privileged, host namespaces, ...) is that control: MERGED
maps it to the KW-W id(s) that carry its PSS frameworks, and its old KW-PSS id stays an alias of them (accepted by
--include/--exclude-controls, exceptions and `kubeward.io/ignore`).

One problem, one finding: where a restricted check overrides a baseline one (hostPath and volume types,
capabilities, seccomp, procMount), the field both fail is reported once, by the control of the more specific
fact, which carries both levels; the restricted-only remainder has a control of its own (KW-W026 for an unset
seccomp profile, KW-W056 for an added default capability, KW-PSS-procMount_restricted for a user-namespaced pod).
So the controls carrying `pss-<level>` fail a pod exactly when PSA at that level does (tests/unit/test_pod_facts.py).
One gap, on pods the apiserver refuses before admission: a Windows pod setting seccompProfile or
capabilities.add (validation.go validateWindows forbids both) or a volume with two sources also fails pss-restricted
here, while PSA's restricted checks exempt or allow it; never the other way round.
Frameworks: a baseline check is in pss-baseline, and in pss-restricted too unless a restricted check overrides it
(upstream OverrideCheckIDs); a restricted check is in pss-restricted only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..engines.pss import CHECKS, CHECKS_BY_ID, MAX_MINOR, Check, Level, PodInput
from ..engines.pss.facts import faults
from ..engines.pss.registry import overriding
from ..resource import PodView
from .registry import Hit, alias, control

# PSS check -> the workload control(s) reporting its fact (controls/workload/); together they fail exactly when
# the check does (tests/unit/test_pod_facts.py).
_CAPS = ("KW-W010", "KW-W011", "KW-W012", "KW-W013", "KW-W014", "KW-W015", "KW-W016", "KW-W017")
MERGED: dict[str, tuple[str, ...]] = {
    "privileged": ("KW-W001",),
    "hostNamespaces": ("KW-W002", "KW-W003", "KW-W004"),
    "hostPorts": ("KW-W005",),
    "hostPathVolumes": ("KW-W006",),
    "restrictedVolumes": ("KW-W006", "KW-W035", "KW-W055"),
    "capabilities_baseline": _CAPS,
    "capabilities_restricted": (*_CAPS, "KW-W018", "KW-W056"),
    "runAsNonRoot": ("KW-W020",),
    "runAsUser": ("KW-W021",),
    "allowPrivilegeEscalation": ("KW-W024",),
    "seccompProfile_restricted": ("KW-W026", "KW-W027"),
    "seccompProfile_baseline": ("KW-W027",),
    "appArmorProfile": ("KW-W028",),
    "seLinuxOptions": ("KW-W029",),
    "procMount": ("KW-W030",),
    "sysctls": ("KW-W031",),
    "windowsHostProcess": ("KW-W032",),
    "hostProbesAndHostLifecycle": ("KW-W033",),
}
# Checks that keep a KW-PSS control for what no workload control reports: the faults beyond those of the check
# named here (procMount_restricted: only a user-namespaced pod's, which baseline allows since 1.35).
RESIDUAL: dict[str, str] = {"procMount_restricted": "procMount"}
# Every check -> the controls whose findings together are exactly its faults.
REPORTED_BY: dict[str, tuple[str, ...]] = {
    **MERGED, **{c: (*MERGED[rest], f"KW-PSS-{c}") for c, rest in RESIDUAL.items()},
}

SEVERITY = {
    "privileged": "critical",
    "hostNamespaces": "high",
    "hostPathVolumes": "high",
    "capabilities_baseline": "high",
    "windowsHostProcess": "high",
    "seccompProfile_restricted": "low",
}
REMEDIATION = {
    "hostNamespaces": "Remove hostNetwork, hostPID and hostIPC (or set them to false).",
    "privileged": "Remove securityContext.privileged or set it to false.",
    "capabilities_baseline": "Add only capabilities from the runtime default set to securityContext.capabilities.add.",
    "hostPathVolumes": "Replace hostPath volumes with PVCs, configMaps, secrets or emptyDir.",
    "hostPorts": "Remove hostPort from container ports; expose the pod through a Service.",
    "appArmorProfile": "Use appArmorProfile.type RuntimeDefault or Localhost; drop unconfined annotations.",
    "seLinuxOptions": "Leave seLinuxOptions.user and role empty; use a container_* type only.",
    "procMount": "Remove securityContext.procMount or set it to Default.",
    "seccompProfile_baseline": "Do not set seccompProfile.type (or the seccomp annotations) to Unconfined.",
    "sysctls": "Set only the safe, namespaced sysctls.",
    "windowsHostProcess": "Remove windowsOptions.hostProcess or set it to false.",
    "hostProbesAndHostLifecycle": "Remove host from httpGet/tcpSocket probes and lifecycle handlers.",
    "restrictedVolumes": "Use only configMap, csi, downwardAPI, emptyDir, ephemeral, image, PVC, projected or secret.",
    "runAsNonRoot": "Set securityContext.runAsNonRoot: true on the pod (or every container).",
    "runAsUser": "Do not set runAsUser: 0; run as a non-zero UID.",
    "allowPrivilegeEscalation": "Set securityContext.allowPrivilegeEscalation: false on every container.",
    "seccompProfile_restricted": "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
    "capabilities_restricted": 'Set capabilities.drop: ["ALL"]; add back only NET_BIND_SERVICE.',
    "procMount_restricted": "Remove securityContext.procMount or set it to Default.",
}
# Checks that read pod annotations as well as the spec: their findings point at the template's metadata when the
# spec has nothing to show.
_ANNOTATION_CHECKS = frozenset({"appArmorProfile", "seccompProfile_baseline"})
# The field each container-level check reads, relative to the container (and to spec for pod-level setters).
_CONTAINER_FIELD = {
    "privileged": "securityContext/privileged",
    "capabilities_baseline": "securityContext/capabilities/add",
    "capabilities_restricted": "securityContext/capabilities",
    "hostPorts": "ports",
    "appArmorProfile": "securityContext/appArmorProfile",
    "seLinuxOptions": "securityContext/seLinuxOptions",
    "procMount": "securityContext/procMount",
    "procMount_restricted": "securityContext/procMount",
    "seccompProfile_baseline": "securityContext/seccompProfile",
    "seccompProfile_restricted": "securityContext/seccompProfile",
    "windowsHostProcess": "securityContext/windowsOptions/hostProcess",
    "allowPrivilegeEscalation": "securityContext/allowPrivilegeEscalation",
    "runAsNonRoot": "securityContext/runAsNonRoot",
    "runAsUser": "securityContext/runAsUser",
    "hostProbesAndHostLifecycle": "",
}


def pss_frameworks(*check_ids: str) -> tuple[str, ...]:
    """The PSS levels the checks belong to at the latest version, for the control that reports their fact (a
    field both a baseline check and the restricted check overriding it fail is in both levels)."""
    levels = {fw for cid in check_ids for fw in _frameworks(CHECKS_BY_ID[cid])}
    return tuple(fw for fw in ("pss-baseline", "pss-restricted") if fw in levels)


def _frameworks(check: Check) -> tuple[str, ...]:
    if check.level is Level.RESTRICTED:
        return ("pss-restricted",)
    if any(True for _ in overriding(check.id, MAX_MINOR)):
        return ("pss-baseline",)
    return ("pss-baseline", "pss-restricted")


def _pss_input(pod: PodView) -> PodInput:
    return PodInput(pod.meta, pod.spec)


def pss_input(pod: PodView) -> PodInput:
    """The pod as the PSS checks read it, built once per pod and shared by every control."""
    return pod.derived("pss", _pss_input)


def pss_hits(check_id: str, pod: PodView, beyond: str | None = None) -> Iterator[Hit]:
    """One hit per container (or pod-level setting) failing the PSS check `check_id` at the latest version: the
    fact is the engine's (kubeward.engines.pss.facts), so a scan finding exists exactly when PSA would refuse.
    With `beyond`, only the parts that do not also fail that check (whose control reports them)."""
    p = pss_input(pod)
    found = faults(check_id, p)
    if found and beyond is not None:
        covered = {id(f.container) for f in faults(beyond, p)}
        found = [f for f in found if id(f.container) not in covered]
    if not found:
        return
    paths = {id(c): path for c, path, _ in pod.containers()}
    for f in found:
        cpath = paths.get(id(f.container)) if f.container is not None else None
        yield (locate(check_id, pod, f.detail) if cpath is None else locate(check_id, pod, f.detail, cpath)), f.message


def _residual(check_id: str, beyond: str | None) -> Callable[[PodView], Iterator[Hit]]:
    def run(pod: PodView) -> Iterator[Hit]:
        return pss_hits(check_id, pod, beyond)
    run.__name__ = f"pss_{check_id}"
    return run


def locate(check_id: str, pod: PodView, detail: str, container_path: str | None = None) -> str:
    """A JSON pointer to the first offending field the detail names (or, given `container_path`, to the field in
    that container), so the finding carries a useful file:line."""
    spec = pod.spec_path
    if container_path is not None:
        cfield = _CONTAINER_FIELD.get(check_id, "")
        if check_id == "hostProbesAndHostLifecycle":
            return _handler_host(pod, container_path)
        return _deeper(pod, f"{container_path}/{cfield}", check_id) if cfield else container_path
    if check_id == "hostNamespaces":
        return next((f"{spec}/{f}" for f in ("hostNetwork", "hostPID", "hostIPC") if pod.spec.get(f) is True), spec)
    if check_id == "sysctls":
        return f"{spec}/securityContext/sysctls"
    if check_id in ("hostPathVolumes", "restrictedVolumes"):
        for vol, path in pod.volumes():
            if f'"{vol.get("name", "")}"' in detail:
                return path
        return spec
    if check_id in _ANNOTATION_CHECKS and "annotation" in detail.split(" must ")[0].split(" set ")[0]:
        return f"{pod.base}/metadata/annotations"
    field = _CONTAINER_FIELD.get(check_id)
    if field is None:
        return spec
    if detail.startswith("pod ") and not detail.startswith("pod or "):
        return _deeper(pod, f"{spec}/{field}", check_id) if field.startswith("securityContext/") else spec
    for container, path, _ in pod.containers():
        if f'"{container.get("name", "")}"' in detail:
            return f"{path}/{field}" if field else path
    return f"{spec}/securityContext" if detail.startswith("pod or ") else spec


# The key inside the field that holds the offending value, when present (seccompProfile.type ...).
_SUBKEYS = {
    "seccompProfile_baseline": ("type",), "seccompProfile_restricted": ("type",), "appArmorProfile": ("type",),
    "seLinuxOptions": ("type", "user", "role"),
}


def _deeper(pod: PodView, path: str, check_id: str) -> str:
    keys = _SUBKEYS.get(check_id)
    if not keys:
        return path
    node: object = pod.resource.obj
    for part in path.split("/")[1:]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return path
    if isinstance(node, dict):
        for k in keys:
            if node.get(k):
                return f"{path}/{k}"
    return path


_HANDLERS = (("livenessProbe",), ("readinessProbe",), ("startupProbe",), ("lifecycle", "postStart"),
             ("lifecycle", "preStop"))


def _handler_host(pod: PodView, container_path: str) -> str:
    """The first probe or lifecycle handler of the container that sets a host (check_hostProbesAndHostLifecycle.go)."""
    container = next((c for c, p, _ in pod.containers() if p == container_path), None)
    for keys in _HANDLERS if container is not None else ():
        node: object = container
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        for action in ("httpGet", "tcpSocket"):
            handler = node.get(action) if isinstance(node, dict) else None
            if isinstance(handler, dict) and handler.get("host"):
                return f"{container_path}/{'/'.join(keys)}/{action}/host"
    return container_path


for _check in CHECKS:
    if _check.id in MERGED:
        alias(f"KW-PSS-{_check.id}", *MERGED[_check.id])
        continue
    _rest = RESIDUAL.get(_check.id)
    _only = f"; only where {_rest} allows it, {', '.join(MERGED[_rest])} reporting the rest" if _rest else ""
    control(
        f"KW-PSS-{_check.id}",
        f"PSS {_check.level.value}: {_check.title}",
        SEVERITY.get(_check.id, "medium"),
        "pod-security",
        frameworks=_frameworks(_check),
        remediation=REMEDIATION[_check.id],
        description=f"Pod Security Standards {_check.level.value} check {_check.id} at the latest policy version "
                    f"(reads {', '.join(_check.fields)}{_only}).",
    )(_residual(_check.id, _rest))
