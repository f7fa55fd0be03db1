"""Restricted checks, one function per upstream versioned CheckPod (policy/check_<id>.go, named on each)."""

from __future__ import annotations

from .baseline import CONTAINER, Outcome, _caps, proc_mount_1_0, valid_seccomp
from .messages import join_quote, setters
from .pod import Obj, PodInput, name, sc, sub, text

# check_restrictedVolumes.go: the inline volume sources restricted allows (image since the v1.33 binary,
# patched into the 1.0 function, so it applies at every policy version).
ALLOWED_VOLUME_SOURCES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
)
# The forbidden sources in upstream's switch order: the first one present names the volume's type.
RESTRICTED_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)


def restricted_volume_type(v: Obj) -> str | None:
    """The type restricted forbids a volume for (the first forbidden source present, in upstream's order, else
    "unknown"), or None when restricted allows it (check_restrictedVolumes.go)."""
    if any(v.get(k) is not None for k in ALLOWED_VOLUME_SOURCES):
        return None
    # The apiserver defaults a volume with no source to emptyDir before admission sees it
    # (pkg/apis/core/v1/defaults.go SetDefaults_Volume), so a bare `- name: x` is allowed.
    if all(val is None for k, val in v.items() if k != "name"):
        return None
    return next((k for k in RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown")


def restricted_volumes_1_0(p: PodInput) -> Outcome:
    """Only configMap, csi, downwardAPI, emptyDir, ephemeral, image, PVC, projected and secret volumes."""
    vols = p.spec.get("volumes")
    bad: list[str] = []
    types: set[str] = set()
    for v in vols if isinstance(vols, list) else ():
        if not isinstance(v, dict) or (kind := restricted_volume_type(v)) is None:
            continue
        bad.append(text(v.get("name")))
        types.add(kind)
    if bad:
        n = len(bad)
        return "restricted volume types", (
            f"{setters(('volume', 'volumes'), bad)} {'uses' if n == 1 else 'use'} "
            f"{'restricted volume type' if len(types) == 1 else 'restricted volume types'} {join_quote(sorted(types))}"
        )
    return None


def allow_privilege_escalation_1_8(p: PodInput) -> Outcome:
    """check_allowPrivilegeEscalation.go: every container must set allowPrivilegeEscalation=false."""
    bad = [name(c) for c in p.containers if (s := sc(c)) is None or s.get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{setters(CONTAINER, bad)} must set securityContext.allowPrivilegeEscalation=false"
        )
    return None


def allow_privilege_escalation_1_25(p: PodInput) -> Outcome:
    """v1.25: Windows pods (spec.os.name=windows) are exempt."""
    return None if p.windows else allow_privilege_escalation_1_8(p)


def run_as_non_root_1_0(p: PodInput) -> Outcome:
    """check_runAsNonRoot.go: runAsNonRoot=true on the pod, or on every container that does not inherit it."""
    bad_setters: list[str] = []
    pod_ok = False
    pod_value = p.pod_sc.get("runAsNonRoot") if p.pod_sc is not None else None
    if isinstance(pod_value, bool):
        if pod_value:
            pod_ok = True
        else:
            bad_setters.append("pod")
    explicit: list[str] = []
    implicit: list[str] = []
    for c in p.containers:
        s = sc(c)
        value = s.get("runAsNonRoot") if s is not None else None
        if isinstance(value, bool):
            if not value:
                explicit.append(name(c))
        elif not pod_ok:
            implicit.append(name(c))
    if explicit:
        bad_setters.append(setters(CONTAINER, explicit))
    if bad_setters:
        return "runAsNonRoot != true", f"{' and '.join(bad_setters)} must not set securityContext.runAsNonRoot=false"
    if implicit:
        return "runAsNonRoot != true", f"pod or {setters(CONTAINER, implicit)} must set securityContext.runAsNonRoot=true"
    return None


def run_as_non_root_1_35(p: PodInput) -> Outcome:
    """v1.35: user-namespaced pods (hostUsers: false) are exempt (KEP-127)."""
    return None if p.user_namespace else run_as_non_root_1_0(p)


def _is_zero(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def run_as_user_1_23(p: PodInput) -> Outcome:
    """check_runAsUser.go: runAsUser must not be 0 on the pod or any container."""
    bad_setters = ["pod"] if p.pod_sc is not None and _is_zero(p.pod_sc.get("runAsUser")) else []
    bad = [name(c) for c in p.containers if (s := sc(c)) is not None and _is_zero(s.get("runAsUser"))]
    if bad:
        bad_setters.append(setters(CONTAINER, bad))
    if bad_setters:
        return "runAsUser=0", f"{' and '.join(bad_setters)} must not set runAsUser=0"
    return None


def run_as_user_1_35(p: PodInput) -> Outcome:
    """v1.35: user-namespaced pods (hostUsers: false) are exempt (KEP-127)."""
    return None if p.user_namespace else run_as_user_1_23(p)


def seccomp_profile_restricted_1_19(p: PodInput) -> Outcome:
    """check_seccompProfile_restricted.go: RuntimeDefault or Localhost, on the pod or on every container."""
    bad_setters: list[str] = []
    values: set[str] = set()
    pod_ok = False
    prof = sub(p.pod_sc, "seccompProfile")
    if prof is not None:
        if valid_seccomp(prof):
            pod_ok = True
        else:
            bad_setters.append("pod")
            values.add(text(prof.get("type")))
    explicit: list[str] = []
    implicit: list[str] = []
    for c in p.containers:
        prof = sub(sc(c), "seccompProfile")
        if prof is not None:
            if not valid_seccomp(prof):
                explicit.append(name(c))
                values.add(text(prof.get("type")))
        elif not pod_ok:
            implicit.append(name(c))
    if explicit:
        bad_setters.append(setters(CONTAINER, explicit))
    if bad_setters:
        return "seccompProfile", (
            f"{' and '.join(bad_setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}"
        )
    if implicit:
        return "seccompProfile", (
            f'pod or {setters(CONTAINER, implicit)} must set securityContext.seccompProfile.type to '
            f'"RuntimeDefault" or "Localhost"'
        )
    return None


def seccomp_profile_restricted_1_25(p: PodInput) -> Outcome:
    """v1.25: Windows pods are exempt."""
    return None if p.windows else seccomp_profile_restricted_1_19(p)


def drops_all(c: Obj) -> bool:
    """capabilities.drop holds the literal "ALL" (check_capabilities_restricted.go)."""
    return sub(sc(c), "capabilities") is not None and "ALL" in _caps(c, "drop")


def restricted_add_allowed(cap: str) -> bool:
    """The one capability restricted lets a container add, compared literally (check_capabilities_restricted.go)."""
    return cap == "NET_BIND_SERVICE"


def restricted_adds(c: Obj) -> list[tuple[int, str]]:
    """(index, name) of each capabilities.add entry other than NET_BIND_SERVICE (check_capabilities_restricted.go)."""
    return [(i, v) for i, v in enumerate(_caps(c, "add")) if not restricted_add_allowed(v)]


def capabilities_restricted_1_22(p: PodInput) -> Outcome:
    """check_capabilities_restricted.go: drop must include ALL; add may only hold NET_BIND_SERVICE."""
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in p.containers:
        if not drops_all(c):
            missing_drop.append(name(c))
        extra = [v for _, v in restricted_adds(c)]
        if extra:
            adding.append(name(c))
            caps.update(extra)
    details = []
    if missing_drop:
        details.append(f'{setters(CONTAINER, missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(
            f"{setters(CONTAINER, adding)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def capabilities_restricted_1_25(p: PodInput) -> Outcome:
    """v1.25: Windows pods are exempt."""
    return None if p.windows else capabilities_restricted_1_22(p)


def proc_mount_restricted_1_35(p: PodInput) -> Outcome:
    """check_procMount_restricted.go: "Default" only, with no user-namespace relaxation."""
    return proc_mount_1_0(p)
