"""Workload hardening controls (NSA-CISA hardening guide, CIS Kubernetes Benchmark section 5).

Every pod control sees Pods and the pod templates of every workload kind through PodView, and walks init,
regular and ephemeral containers. Fields that exist at both pod and container level are resolved the way the
kubelet does: the container's securityContext value wins, the pod's securityContext value is the fallback
(k8s.io/api core/v1 types.go, PodSecurityContext: "If set in both SecurityContext and PodSecurityContext, the
value specified in SecurityContext takes precedence").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .. import hostpaths
from ..resource import POD_KINDS, PodView, Resource
from ..snapshot import Snapshot
from ..textsafe import printable
from .imageref import parse_image, split_registry
from .registry import Hit, control
from .settings import current as current_settings

# ---------------------------------------------------------------------------------------------- helpers


# Read-only stand-in for an absent or wrong-typed mapping: the checks only read, so one shared instance serves
# the ~700k lookups of a large scan without allocating a dict each time.
_EMPTY: dict[str, Any] = {}


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _name(c: dict[str, Any]) -> str:
    return str(c.get("name", "?"))


# (container, JSON pointer, field) for init, regular and ephemeral containers, built once per pod by PodView.
_containers = PodView.containers


def _psc(pod: PodView) -> dict[str, Any]:
    sc = pod.spec.get("securityContext")
    return sc if isinstance(sc, dict) else _EMPTY


def _deepest(base: str, node: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The JSON pointer of the field, or of its deepest present parent when it is missing."""
    path = base
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return path
        path = f"{path}/{k}"
        node = node[k]
    return path


def _effective(pod: PodView, c: dict[str, Any], key: str) -> Any:
    """A securityContext field with container-over-pod precedence (None when neither sets it)."""
    sc = c.get("securityContext")
    if isinstance(sc, dict) and (value := sc.get(key)) is not None:
        return value
    psc = pod.spec.get("securityContext")
    if isinstance(psc, dict) and (value := psc.get(key)) is not None:
        return value
    return None


def _effective_at(pod: PodView, c: dict[str, Any], cpath: str, key: str) -> str:
    """The pointer to where `_effective` found the field (or to its deepest present parent): built only for a
    finding, as most containers yield none."""
    if _d(c.get("securityContext")).get(key) is not None:
        return f"{cpath}/securityContext/{key}"
    if _effective(pod, c, key) is not None:  # not the container's: the pod's
        return f"{pod.spec_path}/securityContext/{key}"
    return _deepest(cpath, c, ("securityContext", key))


def _user_namespaced(pod: PodView) -> bool:
    # hostUsers: false runs the pod in a user namespace; uid 0 inside maps to an unprivileged host uid
    # (KEP-127; pod-security-admission check_runAsNonRoot.go / check_runAsUser.go relax for it since v1.35).
    return pod.spec.get("hostUsers") is False


def _windows(pod: PodView) -> bool:
    # spec.os.name: windows exempts Linux-only fields (pod-security-admission check_allowPrivilegeEscalation.go 1.25+)
    os_ = pod.spec.get("os")
    return isinstance(os_, dict) and os_.get("name") == "windows"


def _caps(c: dict[str, Any], which: str) -> list[Any]:
    sc = c.get("securityContext")
    caps = sc.get("capabilities") if isinstance(sc, dict) else None
    found = caps.get(which) if isinstance(caps, dict) else None
    return found if isinstance(found, list) else _NONE


_NONE: list[Any] = []  # read-only, like _EMPTY


def _norm_cap(cap: Any) -> str:
    # the container runtimes (containerd, CRI-O) upper-case capability names and add the CAP_ prefix if missing
    text = str(cap).upper()
    return text[4:] if text.startswith("CAP_") else text


RUNNABLE = ("initContainers", "containers")  # ephemeral containers may not set resources or probes


# ------------------------------------------------------------------------------------- privilege, host


@control(
    "KW-W001", "Privileged container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.2", "mitre-T1611"),
    remediation="Remove securityContext.privileged or set it to false.",
)
def privileged(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in _containers(pod):
        sc = c.get("securityContext")
        if isinstance(sc, dict) and sc.get("privileged") is True:
            yield f"{path}/securityContext/privileged", f'container "{c.get("name")}" runs privileged'


def _host_ns(field: str, what: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        if pod.spec.get(field) is True:
            yield f"{pod.spec_path}/{field}", f"pod shares the host's {what} namespace ({field}: true)"
    check.__name__ = f"host_{field}"
    return check


control(
    "KW-W002", "Host PID namespace shared", "high", "workload",
    frameworks=("nsa", "cis-5.2.3", "mitre-T1611"),
    remediation="Remove spec.hostPID or set it to false; use a debug container instead of host process access.",
)(_host_ns("hostPID", "process ID"))
control(
    "KW-W003", "Host IPC namespace shared", "high", "workload",
    frameworks=("nsa", "cis-5.2.4", "mitre-T1611"),
    remediation="Remove spec.hostIPC or set it to false.",
)(_host_ns("hostIPC", "IPC"))
control(
    "KW-W004", "Host network namespace shared", "high", "workload",
    frameworks=("nsa", "cis-5.2.5", "mitre-T1557"),
    remediation="Remove spec.hostNetwork or set it to false; expose the workload through a Service.",
)(_host_ns("hostNetwork", "network"))


@control(
    "KW-W005", "Container binds a host port", "medium", "workload",
    frameworks=("nsa", "cis-5.2.13"),
    remediation="Remove ports[].hostPort (or set it to 0) and expose the container through a Service.",
)
def host_port(pod: PodView) -> Iterator[Hit]:
    # check_hostPorts.go: any non-zero hostPort fails baseline.
    for c, path, _ in _containers(pod):
        ports = c.get("ports")
        if not isinstance(ports, list):
            continue
        for i, p in enumerate(ports):
            hp = _d(p).get("hostPort")
            if hp not in (None, 0, "0"):
                yield f"{path}/ports/{i}/hostPort", f'container "{_name(c)}" binds host port {hp}'


# hostPath: one predicate for the scan and the audit rules (kubeward.hostpaths).


def _host_paths(pod: PodView) -> Iterator[tuple[dict[str, Any], str, str]]:
    for v, vpath in pod.volumes():
        hp = v.get("hostPath")
        if isinstance(hp, dict):
            yield v, vpath, hostpaths.clean(str(hp.get("path", "")))


@control(
    "KW-W006", "hostPath volume", "medium", "workload",
    frameworks=("nsa", "cis-5.2.12", "mitre-T1611"),
    remediation="Replace the hostPath volume with emptyDir, a ConfigMap/Secret, or a PersistentVolumeClaim.",
)
def host_path(pod: PodView) -> Iterator[Hit]:
    for v, vpath, p in _host_paths(pod):
        yield f"{vpath}/hostPath", f'volume "{v.get("name")}" mounts host path {p}'


@control(
    "KW-W007", "Container runtime socket mounted", "critical", "workload",
    frameworks=("nsa", "cis-5.2.12", "mitre-T1611", "mitre-T1610"),
    remediation="Do not mount docker/containerd/CRI-O sockets into pods; they grant control of the node.",
)
def runtime_socket(pod: PodView) -> Iterator[Hit]:
    for v, vpath, p in _host_paths(pod):
        if hostpaths.is_runtime_socket(p):
            yield f"{vpath}/hostPath/path", f'volume "{v.get("name")}" mounts the container runtime socket {p}'


@control(
    "KW-W008", "Sensitive host path mounted", "high", "workload",
    frameworks=("nsa", "cis-5.2.12", "mitre-T1611", "mitre-T1552.001"),
    remediation="Do not mount node system directories (/, /etc, /proc, /sys, /root, /var/lib/kubelet, "
    "/etc/kubernetes, /var/log...) into pods.",
)
def sensitive_host_path(pod: PodView) -> Iterator[Hit]:
    for v, vpath, p in _host_paths(pod):
        if p in hostpaths.RUNTIME_SOCKETS:
            continue  # KW-W007 reports it
        if hostpaths.is_sensitive(p):
            yield f"{vpath}/hostPath/path", f'volume "{v.get("name")}" mounts sensitive host path {p}'


@control(
    "KW-W009", "hostPath volume mounted writable", "high", "workload",
    frameworks=("nsa", "cis-5.2.12", "mitre-T1611"),
    remediation="Set readOnly: true on every volumeMount of a hostPath volume.",
)
def host_path_writable(pod: PodView) -> Iterator[Hit]:
    names = {str(v.get("name")) for v, _, _ in _host_paths(pod)}
    if not names:
        return
    for c, path, _ in _containers(pod):
        mounts = c.get("volumeMounts")
        if not isinstance(mounts, list):
            continue
        for i, m in enumerate(mounts):
            m = _d(m)
            if str(m.get("name")) in names and m.get("readOnly") is not True:
                yield (_deepest(f"{path}/volumeMounts/{i}", m, ("readOnly",)),
                       f'container "{_name(c)}" mounts hostPath volume "{m.get("name")}" writable')


# ------------------------------------------------------------------------------------------ capabilities

# check_capabilities_baseline.go: the container runtime default set, the only ones baseline allows to add.
BASELINE_CAPS = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def _added(cap_set: frozenset[str], what: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        for c, path, _ in _containers(pod):
            for i, cap in enumerate(_caps(c, "add")):
                if _norm_cap(cap) in cap_set:
                    yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds {cap}{what}'
    return check


@control(
    "KW-W010", "Capability added beyond the runtime default set", "medium", "workload",
    frameworks=("nsa", "cis-5.2.9"),
    remediation="Add only capabilities from the default runtime set (ideally only NET_BIND_SERVICE).",
)
def extra_capabilities(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in _containers(pod):
        for i, cap in enumerate(_caps(c, "add")):
            # pss compares the literal string, so "CAP_CHOWN" or "chown" are not in the allowed set either
            if str(cap) not in BASELINE_CAPS:
                yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds capability {cap}'


control(
    "KW-W011", "CAP_SYS_ADMIN added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Remove SYS_ADMIN from capabilities.add; it is nearly equivalent to privileged.",
)(_added(frozenset({"SYS_ADMIN"}), " (near-root on the node: mount, namespaces, BPF)"))
control(
    "KW-W012", "CAP_NET_ADMIN added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1557"),
    remediation="Remove NET_ADMIN from capabilities.add; leave network configuration to the CNI plugin.",
)(_added(frozenset({"NET_ADMIN"}), " (can reconfigure interfaces, routes and iptables)"))
control(
    "KW-W013", "CAP_NET_RAW added", "medium", "workload",
    frameworks=("nsa", "cis-5.2.8", "mitre-T1040"),
    remediation="Remove NET_RAW from capabilities.add; it enables ARP/DNS spoofing inside the cluster network.",
)(_added(frozenset({"NET_RAW"}), " (raw sockets: spoofing and sniffing)"))
control(
    "KW-W014", "CAP_SYS_PTRACE added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1055"),
    remediation="Remove SYS_PTRACE from capabilities.add.",
)(_added(frozenset({"SYS_PTRACE"}), " (can trace and inject into other processes)"))
control(
    "KW-W015", "CAP_SYS_MODULE added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611", "mitre-T1547.006"),
    remediation="Remove SYS_MODULE from capabilities.add; loading kernel modules is a node takeover.",
)(_added(frozenset({"SYS_MODULE"}), " (can load kernel modules)"))
control(
    "KW-W016", "All capabilities added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Never add ALL; add only the specific capability the process needs.",
)(_added(frozenset({"ALL"}), ""))
control(
    "KW-W017", "Other dangerous capability added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Remove DAC_READ_SEARCH, SYS_RAWIO, BPF, PERFMON, SYS_BOOT, SYS_TIME, MAC_ADMIN, MAC_OVERRIDE, "
    "SYSLOG and similar from capabilities.add.",
)(_added(frozenset({
    "DAC_READ_SEARCH", "SYS_RAWIO", "BPF", "PERFMON", "SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE",
    "SYSLOG", "LINUX_IMMUTABLE", "SYS_RESOURCE", "CHECKPOINT_RESTORE", "WAKE_ALARM", "BLOCK_SUSPEND",
}), " (host-level kernel privilege)"))


def _drops(c: dict[str, Any], cap: str) -> bool:
    # the runtimes compare "ALL" case-insensitively when dropping
    return any(_norm_cap(d) in ("ALL", cap) for d in _caps(c, "drop"))


@control(
    "KW-W018", "Capabilities not dropped", "medium", "workload",
    frameworks=("nsa", "cis-5.2.10"),
    remediation="Set securityContext.capabilities.drop: [ALL] and add back only what is needed.",
)
def not_drop_all(pod: PodView) -> Iterator[Hit]:
    # check_capabilities_restricted.go: every container must drop ALL (Windows pods exempt since 1.25).
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        if not any(str(d).upper() == "ALL" for d in _caps(c, "drop")):
            yield (_deepest(path, c, ("securityContext", "capabilities", "drop")),
                   f'container "{_name(c)}" does not drop ALL capabilities')


@control(
    "KW-W019", "NET_RAW not dropped", "low", "workload",
    frameworks=("cis-5.2.8", "mitre-T1040"),
    remediation="Drop NET_RAW (or ALL) in securityContext.capabilities.drop.",
)
def net_raw_kept(pod: PodView) -> Iterator[Hit]:
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        if _d(c.get("securityContext")).get("privileged") is True:
            continue  # KW-W001 reports it
        if _drops(c, "NET_RAW"):
            continue
        if not any(_norm_cap(a) == "NET_RAW" for a in _caps(c, "add")):
            yield (_deepest(path, c, ("securityContext", "capabilities", "drop")),
                   f'container "{_name(c)}" keeps the default NET_RAW capability')


# ------------------------------------------------------------------------------------------ identities


@control(
    "KW-W020", "Container may run as root", "medium", "workload",
    frameworks=("nsa", "cis-5.2.7", "mitre-T1611"),
    remediation="Set runAsNonRoot: true (pod or container securityContext) and a non-zero runAsUser.",
)
def may_run_as_root(pod: PodView) -> Iterator[Hit]:
    # Container runAsNonRoot/runAsUser override the pod's. The kubelet refuses to start a runAsNonRoot container
    # whose user is 0 (pkg/kubelet/kuberuntime/security_context_others.go verifyRunAsNonRoot); a non-zero
    # runAsUser also guarantees a non-root process.
    if _user_namespaced(pod) or _windows(pod):
        return
    for c, path, _ in _containers(pod):
        nonroot = _effective(pod, c, "runAsNonRoot")
        if nonroot is True:
            continue
        user = _effective(pod, c, "runAsUser")
        if isinstance(user, int) and not isinstance(user, bool) and user > 0:
            continue
        where = _effective_at(pod, c, path, "runAsNonRoot")
        if nonroot is False:
            msg = f'container "{_name(c)}" sets runAsNonRoot: false'
        elif _is_zero(user):
            msg = f'container "{_name(c)}" runs as UID 0 without runAsNonRoot: true'
        else:
            msg = f'container "{_name(c)}" sets neither runAsNonRoot: true nor a non-zero runAsUser'
        yield where, msg


def _is_zero(v: Any) -> bool:
    return v == 0 and not isinstance(v, bool)


@control(
    "KW-W021", "Container runs as UID 0", "high", "workload",
    frameworks=("nsa", "cis-5.2.7", "mitre-T1611"),
    remediation="Set runAsUser to a non-zero UID (and runAsNonRoot: true).",
)
def run_as_uid0(pod: PodView) -> Iterator[Hit]:
    # check_runAsUser.go: runAsUser 0 at pod or container level fails restricted (user namespaces exempt in 1.35).
    if _user_namespaced(pod):
        return
    for c, path, _ in _containers(pod):
        if _is_zero(_effective(pod, c, "runAsUser")):
            yield _effective_at(pod, c, path, "runAsUser"), f'container "{_name(c)}" runs as UID 0 (root)'


@control(
    "KW-W022", "Container runs with GID 0", "medium", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Set runAsGroup to a non-zero GID.",
)
def run_as_gid0(pod: PodView) -> Iterator[Hit]:
    if _user_namespaced(pod):
        return
    for c, path, _ in _containers(pod):
        if _is_zero(_effective(pod, c, "runAsGroup")):
            yield _effective_at(pod, c, path, "runAsGroup"), f'container "{_name(c)}" runs with primary group GID 0 (root)'


# Below this a container UID or GID is likely to exist on the node (system and login accounts): after an escape
# the process holds that host account's files. Checkov CKV_K8S_40 (RootContainersHighUID: runAsUser >= 10000
# passes), kube-score container-security-context-user-group-id and Trivy KSV020/KSV021 use the same bound.
HIGH_ID = 10000


def _low_id(key: str, what: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        # Only an explicit value is judged: unset leaves it to the image (KW-W020 covers a possible root), and 0
        # is reported by KW-W021/KW-W022. A user namespace maps IDs away from the host's; Windows ignores them.
        if _user_namespaced(pod) or _windows(pod):
            return
        for c, path, _ in _containers(pod):
            value = _effective(pod, c, key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < HIGH_ID:
                yield (_effective_at(pod, c, path, key),
                       f'container "{_name(c)}" runs with {what} {value}, below {HIGH_ID} (may match a host account)')
    return check


control(
    "KW-W057", "Container UID below 10000", "low", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Set runAsUser to 10000 or more (pod or container securityContext; the container's wins).",
)(_low_id("runAsUser", "UID"))
control(
    "KW-W058", "Container GID below 10000", "low", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Set runAsGroup to 10000 or more (pod or container securityContext; the container's wins).",
)(_low_id("runAsGroup", "GID"))


@control(
    "KW-W023", "Pod adds the root group (fsGroup or supplementalGroups 0)", "low", "workload",
    frameworks=("nsa",),
    remediation="Use a non-zero fsGroup and remove 0 from supplementalGroups.",
)
def root_groups(pod: PodView) -> Iterator[Hit]:
    psc = _psc(pod)
    base = f"{pod.spec_path}/securityContext"
    if _is_zero(psc.get("fsGroup")):
        yield f"{base}/fsGroup", "pod sets fsGroup: 0 (volumes become owned by the root group)"
    groups = psc.get("supplementalGroups")
    if isinstance(groups, list):
        for i, g in enumerate(groups):
            if _is_zero(g):
                yield f"{base}/supplementalGroups/{i}", "pod adds supplemental group 0 (root) to every container"


@control(
    "KW-W024", "Privilege escalation allowed", "medium", "workload",
    frameworks=("nsa", "cis-5.2.6", "mitre-T1548.001"),
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
)
def privilege_escalation(pod: PodView) -> Iterator[Hit]:
    # check_allowPrivilegeEscalation.go: must be explicitly false per container; the default is true
    # (no_new_privs unset). Windows pods are exempt since 1.25.
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        sc = _d(c.get("securityContext"))
        if sc.get("allowPrivilegeEscalation") is not False:
            state = "allows" if sc.get("allowPrivilegeEscalation") is True else "does not forbid"
            yield (_deepest(path, c, ("securityContext", "allowPrivilegeEscalation")),
                   f'container "{_name(c)}" {state} privilege escalation (setuid binaries)')


@control(
    "KW-W025", "Root filesystem is writable", "low", "workload",
    frameworks=("nsa", "mitre-T1525"),
    remediation="Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where writes are needed.",
)
def writable_root_fs(pod: PodView) -> Iterator[Hit]:
    if _windows(pod):
        return  # readOnlyRootFilesystem cannot be set on Windows (validation.go validateWindows)
    for c, path, _ in _containers(pod):
        sc = _d(c.get("securityContext"))
        if sc.get("readOnlyRootFilesystem") is not True:
            yield (_deepest(path, c, ("securityContext", "readOnlyRootFilesystem")),
                   f'container "{_name(c)}" has a writable root filesystem')


# ------------------------------------------------------------------------------------ kernel sandboxing

SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


@control(
    "KW-W026", "Seccomp profile not set", "medium", "workload",
    frameworks=("nsa", "cis-5.7.2", "mitre-T1611"),
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault (pod level) or a Localhost profile.",
)
def seccomp_missing(pod: PodView) -> Iterator[Hit]:
    # check_seccompProfile_restricted.go: container type, else pod type, must be RuntimeDefault or Localhost;
    # Unconfined is reported by KW-W027. Windows pods are exempt.
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        prof = _effective(pod, c, "seccompProfile")
        if not isinstance(prof, dict) or prof.get("type") in (None, ""):
            yield (_effective_at(pod, c, path, "seccompProfile"),
                   f'container "{_name(c)}" runs without a seccomp profile (the runtime default is Unconfined)')


@control(
    "KW-W027", "Seccomp Unconfined", "high", "workload",
    frameworks=("nsa", "cis-5.7.2", "mitre-T1611"),
    remediation="Use seccompProfile.type RuntimeDefault or Localhost, never Unconfined.",
)
def seccomp_unconfined(pod: PodView) -> Iterator[Hit]:
    # check_seccompProfile_baseline.go: the legacy annotations (pod and per container) and both fields.
    ann = pod.annotations
    meta = pod.base + "/metadata/annotations" if pod.base else "/metadata/annotations"
    if str(ann.get(SECCOMP_POD_ANNOTATION, "")).lower() == "unconfined":
        yield f"{meta}/{SECCOMP_POD_ANNOTATION.replace('/', '~1')}", "pod seccomp annotation is unconfined"
    for c, path, _ in _containers(pod):
        key = SECCOMP_CONTAINER_ANNOTATION + _name(c)
        if str(ann.get(key, "")).lower() == "unconfined":
            yield f"{meta}/{key.replace('/', '~1')}", f'container "{_name(c)}" seccomp annotation is unconfined'
            continue
        prof = _effective(pod, c, "seccompProfile")
        if isinstance(prof, dict) and prof.get("type") == "Unconfined":
            yield f"{_effective_at(pod, c, path, 'seccompProfile')}/type", f'container "{_name(c)}" runs with seccomp Unconfined'


@control(
    "KW-W028", "AppArmor Unconfined", "high", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Use appArmorProfile.type RuntimeDefault or Localhost (or drop the 'unconfined' annotation).",
)
def apparmor_unconfined(pod: PodView) -> Iterator[Hit]:
    # pkg/security/apparmor/helpers.go GetProfile: container field, then the container annotation, then pod field.
    ann = pod.annotations
    meta = pod.base + "/metadata/annotations" if pod.base else "/metadata/annotations"
    for c, path, _ in _containers(pod):
        sc_prof = _d(c.get("securityContext")).get("appArmorProfile")
        key = APPARMOR_ANNOTATION + _name(c)
        if isinstance(sc_prof, dict):
            if sc_prof.get("type") == "Unconfined":
                yield f"{path}/securityContext/appArmorProfile/type", f'container "{_name(c)}" runs AppArmor Unconfined'
        elif key in ann:
            if str(ann[key]) == "unconfined":
                yield f"{meta}/{key.replace('/', '~1')}", f'container "{_name(c)}" AppArmor annotation is unconfined'
        elif _d(_psc(pod).get("appArmorProfile")).get("type") == "Unconfined":
            yield (f"{pod.spec_path}/securityContext/appArmorProfile/type",
                   f'container "{_name(c)}" inherits AppArmor Unconfined from the pod')


# check_seLinuxOptions.go: type must be empty or one of these (container_engine_t since 1.31); user and role empty.
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


@control(
    "KW-W029", "Custom SELinux type, user or role", "medium", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Remove seLinuxOptions.user/role and use only container_t, container_init_t or container_kvm_t types.",
)
def selinux_custom(pod: PodView) -> Iterator[Hit]:
    def judge(opts: Any, base: str, who: str) -> Iterator[Hit]:
        if not isinstance(opts, dict):
            return
        t = opts.get("type")
        if t is not None and str(t) not in SELINUX_TYPES:
            yield f"{base}/type", f"{who} sets SELinux type {t}"
        for k in ("user", "role"):
            if opts.get(k):
                yield f"{base}/{k}", f"{who} sets SELinux {k} {opts[k]}"

    yield from judge(_psc(pod).get("seLinuxOptions"), f"{pod.spec_path}/securityContext/seLinuxOptions", "pod")
    for c, path, _ in _containers(pod):
        opts = _d(c.get("securityContext")).get("seLinuxOptions")
        yield from judge(opts, f"{path}/securityContext/seLinuxOptions", f'container "{_name(c)}"')


@control(
    "KW-W030", "Unmasked /proc mount", "high", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Remove securityContext.procMount or set it to Default.",
)
def proc_unmasked(pod: PodView) -> Iterator[Hit]:
    # check_procMount.go: only Default (or unset) passes; since 1.35 baseline allows any value in a user
    # namespace (hostUsers: false), where /proc of the host is not reachable.
    if _user_namespaced(pod):
        return
    for c, path, _ in _containers(pod):
        pm = _d(c.get("securityContext")).get("procMount")
        if pm not in (None, "", "Default"):
            yield f"{path}/securityContext/procMount", f'container "{_name(c)}" sets procMount: {pm}'


# check_sysctls.go: the safe set as of v1.37 (1.27 +ip_local_reserved_ports, 1.29 +tcp_keepalive_*/fin_timeout,
# 1.32 +tcp_rmem/wmem, 1.37 +tcp_slow_start_after_idle/tcp_notsent_lowat).
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem", "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",
})


_SWAP_SEPARATORS = str.maketrans("./", "/.")


def normalize_sysctl(name: str) -> str:
    """Dotted form of a sysctl name, as k8s.io/component-helpers/node/util/sysctl NormalizeName gives it.

    '/' may be used as the separator; when the first separator is '/', dots and slashes swap roles
    (`net/ipv4/conf/eno2.100/rp_filter` is `net.ipv4.conf.eno2/100.rp_filter`).
    """
    first = next((ch for ch in name if ch in "./"), ".")
    return name if first == "." else name.translate(_SWAP_SEPARATORS)


@control(
    "KW-W031", "Unsafe sysctl", "high", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Set only the safe, namespaced sysctls listed by the Pod Security Standards.",
)
def unsafe_sysctls(pod: PodView) -> Iterator[Hit]:
    sysctls = _psc(pod).get("sysctls")
    if not isinstance(sysctls, list):
        return
    for i, s in enumerate(sysctls):
        name = normalize_sysctl(str(_d(s).get("name", "")))
        if name not in SAFE_SYSCTLS:
            yield f"{pod.spec_path}/securityContext/sysctls/{i}/name", f"pod sets unsafe sysctl {name}"


@control(
    "KW-W032", "Windows HostProcess container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611"),
    remediation="Remove windowsOptions.hostProcess (pod and containers).",
)
def windows_host_process(pod: PodView) -> Iterator[Hit]:
    # check_windowsHostProcess.go: hostProcess true at pod or any container level fails baseline.
    if _d(_psc(pod).get("windowsOptions")).get("hostProcess") is True:
        yield f"{pod.spec_path}/securityContext/windowsOptions/hostProcess", "pod runs as a Windows HostProcess"
    for c, path, _ in _containers(pod):
        if _d(_d(c.get("securityContext")).get("windowsOptions")).get("hostProcess") is True:
            yield (f"{path}/securityContext/windowsOptions/hostProcess",
                   f'container "{_name(c)}" runs as a Windows HostProcess')


@control(
    "KW-W033", "Probe or lifecycle hook targets another host", "medium", "workload",
    frameworks=("mitre-T1090",),
    remediation="Remove the host field from httpGet/tcpSocket probes and lifecycle hooks; the kubelet should "
    "only contact the pod itself.",
)
def probe_host(pod: PodView) -> Iterator[Hit]:
    # check_hostProbesAndHostLifecycle.go (1.34): probes and lifecycle handlers must not set host (kubelet SSRF).
    for c, path, _ in _containers(pod):
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            handler = c.get(probe)
            if isinstance(handler, dict):  # most containers set few or none: no generator for the absent ones
                yield from _handler_host(handler, f"{path}/{probe}", c, probe)
        life = c.get("lifecycle")
        if isinstance(life, dict):
            for hook in ("postStart", "preStop"):
                handler = life.get(hook)
                if isinstance(handler, dict):
                    yield from _handler_host(handler, f"{path}/lifecycle/{hook}", c, hook)


def _handler_host(h: dict[str, Any], base: str, c: dict[str, Any], what: str) -> Iterator[Hit]:
    for action in ("httpGet", "tcpSocket"):
        host = _d(h.get(action)).get("host")
        if host:
            yield f"{base}/{action}/host", f'container "{_name(c)}" {what} contacts host {host}'


@control(
    "KW-W034", "Process namespace shared between containers", "medium", "workload",
    frameworks=("nsa", "mitre-T1055"),
    remediation="Remove spec.shareProcessNamespace unless a sidecar truly needs to see the other processes.",
)
def share_process_namespace(pod: PodView) -> Iterator[Hit]:
    if pod.spec.get("shareProcessNamespace") is True:
        yield f"{pod.spec_path}/shareProcessNamespace", "containers share one process namespace (can read each other's /proc and secrets)"


@control(
    "KW-W035", "gitRepo volume", "high", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Replace the deprecated gitRepo volume with an init container that clones into an emptyDir.",
)
def git_repo_volume(pod: PodView) -> Iterator[Hit]:
    # gitRepo runs git on the node as root (CVE-2018-11235, CVE-2024-10220); deprecated in core/v1 types.go.
    for v, vpath in pod.volumes():
        if "gitRepo" in v:
            yield f"{vpath}/gitRepo", f'volume "{v.get("name")}" is a gitRepo volume (git runs on the node)'


# check_restrictedVolumes.go: volume sources restricted forbids (everything but configMap, csi, downwardAPI,
# emptyDir, ephemeral, persistentVolumeClaim, projected, secret and image). hostPath and gitRepo have their own
# controls (KW-W006, KW-W035); a volume with only a name defaults to emptyDir.
RESTRICTED_VOLUME_TYPES = frozenset({
    "gcePersistentDisk", "awsElasticBlockStore", "nfs", "iscsi", "glusterfs", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "portworxVolume", "scaleIO", "storageos",
})


@control(
    "KW-W055", "Node-attached or network volume in the pod spec", "low", "workload",
    frameworks=("nsa",),
    remediation="Use a PersistentVolumeClaim (the volume itself is then managed by the cluster admin) or a "
    "projected/configMap/secret/emptyDir volume.",
)
def restricted_volume(pod: PodView) -> Iterator[Hit]:
    for v, vpath in pod.volumes():
        for key in v:
            if key in RESTRICTED_VOLUME_TYPES:
                yield f"{vpath}/{key}", f'volume "{v.get("name")}" uses volume type {key} directly in the pod'


@control(
    "KW-W056", "Capability added other than NET_BIND_SERVICE", "low", "workload",
    frameworks=("nsa", "cis-5.2.9"),
    remediation="Add no capabilities except NET_BIND_SERVICE (drop ALL first).",
)
def restricted_capabilities(pod: PodView) -> Iterator[Hit]:
    # check_capabilities_restricted.go: add may contain only NET_BIND_SERVICE (literal); Windows pods exempt.
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        for i, cap in enumerate(_caps(c, "add")):
            if cap != "NET_BIND_SERVICE":
                yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds {cap}'


# ---------------------------------------------------------------------------------------------- resources


def _resource_check(section: str, res: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        for c, path, fld in _containers(pod):
            if fld not in RUNNABLE:
                continue
            resources = _d(c.get("resources"))
            values = _d(resources.get(section))
            # an unset request defaults to the limit (core/v1 defaults.go SetDefaults_Pod), so a limit suffices
            if values.get(res) is None and not (section == "requests" and _d(resources.get("limits")).get(res) is not None):
                yield (_deepest(path, c, ("resources", section)),
                       f'container "{_name(c)}" has no {res} {section[:-1]}')
    return check


control(
    "KW-W036", "No memory limit", "medium", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Set resources.limits.memory on every container (or a namespace LimitRange default).",
)(_resource_check("limits", "memory"))
control(
    "KW-W037", "No CPU limit", "low", "workload",
    frameworks=("nsa", "mitre-T1496"),
    remediation="Set resources.limits.cpu on every container (or a namespace LimitRange default).",
)(_resource_check("limits", "cpu"))
control(
    "KW-W038", "No memory request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.memory so the scheduler can place the pod and evictions are predictable.",
)(_resource_check("requests", "memory"))
control(
    "KW-W039", "No CPU request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.cpu so the scheduler can place the pod fairly.",
)(_resource_check("requests", "cpu"))

control(
    "KW-W059", "No ephemeral-storage request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.ephemeral-storage so the scheduler counts the container's scratch space "
    "and logs.",
)(_resource_check("requests", "ephemeral-storage"))
control(
    "KW-W060", "No ephemeral-storage limit", "low", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Set resources.limits.ephemeral-storage (or a LimitRange default) so one container cannot fill the "
    "node's disk; the kubelet evicts a pod that exceeds it.",
)(_resource_check("limits", "ephemeral-storage"))


# -------------------------------------------------------------------------------------------------- images


Image = tuple[dict[str, Any], str, str, str | None, str | None]  # (container, pointer, image, tag, digest)


def _images(pod: PodView) -> list[Image]:
    """Every container's image reference, parsed once per pod for the image controls."""
    return pod.derived("images", _parse_images)


def _parse_images(pod: PodView) -> list[Image]:
    found: list[Image] = []
    for c, path, _ in _containers(pod):
        image = c.get("image")
        if isinstance(image, str) and image:
            _, tag, digest = parse_image(image)
            found.append((c, path, image, tag, digest))
    return found


@control(
    "KW-W040", "Image tag latest", "medium", "workload",
    frameworks=("nsa", "mitre-T1525", "mitre-T1195.002"),
    remediation="Pin a specific version tag and, better, the image digest (image@sha256:...).",
)
def image_latest(pod: PodView) -> Iterator[Hit]:
    for c, path, image, tag, digest in _images(pod):
        if tag == "latest" and digest is None:
            yield f"{path}/image", f'container "{_name(c)}" uses the mutable tag latest ({image})'


@control(
    "KW-W041", "Image without tag", "medium", "workload",
    frameworks=("nsa", "mitre-T1525", "mitre-T1195.002"),
    remediation="Pin a specific version tag and, better, the image digest (image@sha256:...).",
)
def image_no_tag(pod: PodView) -> Iterator[Hit]:
    for c, path, image, tag, digest in _images(pod):
        if tag is None and digest is None:
            yield f"{path}/image", f'container "{_name(c)}" image {image} has no tag (means latest)'


@control(
    "KW-W042", "Image not pinned by digest", "low", "workload",
    frameworks=("nsa", "mitre-T1195.002"),
    remediation="Reference images by digest (image@sha256:...) so the running code cannot change under the same name.",
)
def image_no_digest(pod: PodView) -> Iterator[Hit]:
    for c, path, image, _tag, digest in _images(pod):
        if digest is None:
            yield f"{path}/image", f'container "{_name(c)}" image {image} is not pinned by digest'


@control(
    "KW-W043", "Mutable image without imagePullPolicy Always", "low", "workload",
    frameworks=("nsa", "mitre-T1525"),
    remediation="Set imagePullPolicy: Always for images referenced by tag, or pin the digest.",
)
def pull_policy(pod: PodView) -> Iterator[Hit]:
    # core/v1 defaults.go SetDefaults_Container: Always for :latest or no tag, IfNotPresent otherwise. A cached
    # mutable tag can run stale code, and IfNotPresent lets any pod reuse a private image the node already pulled.
    for c, path, image, tag, digest in _images(pod):
        if digest is not None:
            continue
        policy = c.get("imagePullPolicy")
        if policy is None:
            policy = "Always" if tag in (None, "latest") else "IfNotPresent"
            where = path
        else:
            where = f"{path}/imagePullPolicy"
        if policy != "Always":
            yield where, f'container "{_name(c)}" image {image} is mutable and pulled with {policy}'


def registry_allowed(domain: str, path: str, allowed: tuple[str, ...]) -> bool:
    """Whether (registry, path) falls under one allowed entry: a registry host, or a host and path prefix
    (`docker.io/library`), both normalized like image references; hosts compare case-insensitively (DNS)."""
    for entry in allowed:
        host, _, prefix = entry.partition("/")
        if host.lower() == domain.lower() and (not prefix or path == prefix or path.startswith(prefix + "/")):
            return True
    return False


@control(
    "KW-W061", "Image from a registry outside the allowed list", "high", "workload",
    frameworks=("nsa", "mitre-T1525", "mitre-T1195.002"),
    remediation="Pull the image from an allowed registry (mirror it there); the list is --allowed-registries.",
)
def image_registry_not_allowed(pod: PodView) -> Iterator[Hit]:
    allowed = current_settings().allowed_registries
    if not allowed:
        return  # off unless a list is given
    for c, path, image, _tag, _digest in _images(pod):
        repo = parse_image(image)[0]
        where = split_registry(repo)
        if where is None:
            yield f"{path}/image", f'container "{_name(c)}" image {printable(image)} is not a valid image reference'
        elif not registry_allowed(*where, allowed):
            yield (f"{path}/image",
                   f'container "{_name(c)}" image {printable(image)} comes from {where[0]}/{where[1]}, not an allowed registry')


# How cluster components mark themselves, in the pod template or on the object: the control-plane static pods
# (kubeadm manifests: tier: control-plane, component: kube-apiserver...), the add-ons of kubernetes/cluster/addons
# and kubeadm (k8s-app: kube-dns, kube-proxy...; addonmanager.kubernetes.io/mode), and pods the scheduler must
# never evict (priorityClassName system-cluster-critical / system-node-critical). Anything else in kube-system
# is a user workload.
_SYSTEM_LABELS = ("k8s-app", "addonmanager.kubernetes.io/mode")
SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


def cluster_component(pod: PodView) -> bool:
    """Whether a pod in kube-system belongs to the control plane or an add-on (documented in controls-guide)."""
    labels = {**pod.resource.labels, **pod.labels}
    return (
        labels.get("tier") == "control-plane"
        or any(key in labels for key in _SYSTEM_LABELS)
        or pod.spec.get("priorityClassName") in SYSTEM_PRIORITY_CLASSES
    )


@control(
    "KW-W062", "User workload in kube-system", "medium", "workload",
    frameworks=("nsa", "cis-5.7.1", "mitre-T1078.001"),
    remediation="Run the workload in its own namespace; kube-system holds the control plane's service accounts "
    "and Secrets, which anyone who may create pods there can use.",
)
def kube_system_workload(pod: PodView) -> Iterator[Hit]:
    if pod.resource.namespace == "kube-system" and not cluster_component(pod):
        where = "/metadata/namespace" if "namespace" in pod.resource.metadata else "/metadata"
        yield where, f"{pod.resource.kind} {printable(pod.resource.name)} runs in kube-system, not as a cluster component"


# ------------------------------------------------------------------------------------- service accounts


def _sa_name(pod: PodView) -> str:
    # serviceAccount is the deprecated alias; serviceAccountName wins (core/v1 types.go), "default" when unset.
    return str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")


@control(
    "KW-W044", "Service account token automounted", "medium", "workload",
    frameworks=("nsa", "cis-5.1.6", "mitre-T1528", "mitre-T1552.007"),
    remediation="Set automountServiceAccountToken: false on the pod (or its ServiceAccount) unless it calls the API.",
    shape="snapshot", kinds=POD_KINDS,
)
def sa_token_automount(snap: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    # The pod field wins over the ServiceAccount's; both unset means mounted
    # (plugin/pkg/admission/serviceaccount/admission.go shouldAutomount).
    for res in snap.workloads():
        pod = res.pod()
        if pod is None:
            continue
        value = pod.spec.get("automountServiceAccountToken")
        if value is False:
            continue
        if value is True:
            yield res, f"{pod.spec_path}/automountServiceAccountToken", "pod explicitly mounts its service account token"
            continue
        sa_name = _sa_name(pod)
        sa = snap.get("ServiceAccount", res.namespace, sa_name)
        if sa is not None and sa.obj.get("automountServiceAccountToken") is False:
            continue
        yield res, pod.spec_path, f'pod mounts the token of service account "{sa_name}" (automount not disabled)'


@control(
    "KW-W045", "Default service account used", "low", "workload",
    frameworks=("nsa", "cis-5.1.5", "mitre-T1078.001"),
    remediation="Create a dedicated ServiceAccount per workload and set serviceAccountName.",
)
def default_service_account(pod: PodView) -> Iterator[Hit]:
    if _sa_name(pod) == "default":
        where = f"{pod.spec_path}/serviceAccountName" if "serviceAccountName" in pod.spec else pod.spec_path
        yield where, 'pod runs as the namespace\'s "default" service account'


# ----------------------------------------------------------------------------------------- environment


@control(
    "KW-W046", "Secret exposed as environment variable", "medium", "workload",
    frameworks=("nsa", "cis-5.4.1", "mitre-T1552.001"),
    remediation="Mount secrets as files (secret volume) instead of env/envFrom; env leaks into logs and crash dumps.",
)
def secret_env(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in _containers(pod):
        env = c.get("env")
        if isinstance(env, list):
            for i, e in enumerate(env):
                ref = _d(_d(_d(e).get("valueFrom")).get("secretKeyRef"))
                if ref:
                    yield (f"{path}/env/{i}/valueFrom/secretKeyRef",
                           f'container "{_name(c)}" reads secret "{ref.get("name")}" into env {_d(e).get("name")}')
        env_from = c.get("envFrom")
        if isinstance(env_from, list):
            for i, e in enumerate(env_from):
                ref = _d(_d(e).get("secretRef"))
                if ref:
                    yield (f"{path}/envFrom/{i}/secretRef",
                           f'container "{_name(c)}" loads every key of secret "{ref.get("name")}" into env')


SENSITIVE_NAME = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|credential|auth[_-]?key"
    r"|client[_-]?secret|conn(ection)?[_-]?str(ing)?)",
    re.IGNORECASE,
)
# names that mention a secret but hold a reference, not a value
_NOT_A_VALUE = re.compile(r"(_FILE|_PATH|_DIR|_NAME|_URL_PATH|_ENABLED|_LENGTH|_TTL|_EXPIR\w*|_REF)$", re.IGNORECASE)


def sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name)) and not _NOT_A_VALUE.search(name)


# Values that stand for a credential someone fills in later, not a credential: a template expression anywhere
# (Helm/Go/Jinja `{{ ... }}`, envsubst/shell `${VAR}`), or the whole value a fill-in marker (`<ADD YOUR KEY>`,
# `INSERT_API_KEY_HERE`, `REPLACE_ME`). Weak real values such as `changeme` or `password` are credentials.
_FILL_IN = re.compile(r"<[^<>\n]+>|(?:INSERT|REPLACE|ADD|ENTER|PUT|YOUR)(?:_[A-Z0-9]+)+|REPLACE_?ME")
_SHELL_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*[:}=?+-]")


def placeholder(value: str) -> bool:
    """Whether an env or config value is a template placeholder rather than a literal (linear time: values
    come from untrusted manifests)."""
    opened = value.find("{{")
    if opened != -1 and value.find("}}", opened + 2) != -1:
        return True
    if "${" in value and _SHELL_VAR.search(value) and "}" in value[value.index("${"):]:
        return True
    return _FILL_IN.fullmatch(value.strip()) is not None


@control(
    "KW-W047", "Credential in plain environment variable", "high", "workload",
    frameworks=("nsa", "mitre-T1552.001"),
    remediation="Move the value into a Secret mounted as a file; never write credentials into manifests.",
)
def env_literal_secret(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in _containers(pod):
        env = c.get("env")
        if not isinstance(env, list):
            continue
        for i, e in enumerate(env):
            e = _d(e)
            name, value = str(e.get("name", "")), e.get("value")
            # $(VAR) is expanded by the kubelet from the container's other variables (core/v1 EnvVar.value)
            if (isinstance(value, str) and value.strip() and "$(" not in value and sensitive_name(name)
                    and not placeholder(value)):
                # never echo the value itself
                yield f"{path}/env/{i}/value", f'container "{_name(c)}" env {name} holds a literal credential-like value'


# -------------------------------------------------------------------------------------------- health

_LONG_RUNNING = POD_KINDS - {"Job", "CronJob", "PodTemplate"}


def _bare_service_pod(pod: PodView) -> bool:
    """A Pod judged like a workload: no controller owns it (its owner is judged instead, as the ReplicaSet or
    Deployment) and it restarts forever (restartPolicy defaults to Always; Never/OnFailure pods run to
    completion like a Job's). core/v1 types.go PodSpec.restartPolicy, meta/v1 OwnerReference.controller."""
    res = pod.resource
    if res.kind != "Pod":
        return True
    owners = res.metadata.get("ownerReferences")
    if isinstance(owners, list) and any(isinstance(o, dict) and o.get("controller") is True for o in owners):
        return False
    return pod.spec.get("restartPolicy") in (None, "", "Always")


def _probe_check(probe: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        if not _bare_service_pod(pod):
            return
        for c, path, fld in _containers(pod):
            if fld == "containers" and not isinstance(c.get(probe), dict):
                yield path, f'container "{_name(c)}" has no {probe}'
    return check


control(
    "KW-W048", "No liveness probe", "low", "workload",
    frameworks=("nsa",),
    remediation="Add a livenessProbe so a hung process is restarted.",
    kinds=_LONG_RUNNING,
)(_probe_check("livenessProbe"))
control(
    "KW-W049", "No readiness probe", "low", "workload",
    frameworks=("nsa",),
    remediation="Add a readinessProbe so traffic only reaches ready pods.",
    kinds=_LONG_RUNNING,
)(_probe_check("readinessProbe"))


@control(
    "KW-W050", "Ephemeral debug container present", "low", "workload",
    frameworks=("mitre-T1609",),
    remediation="Remove ephemeral containers once debugging is done; restrict pods/ephemeralcontainers in RBAC.",
)
def ephemeral_present(pod: PodView) -> Iterator[Hit]:
    for c, path, fld in _containers(pod):
        if fld == "ephemeralContainers":
            yield path, f'ephemeral container "{_name(c)}" was attached to the pod'


# ------------------------------------------------------------------------------------------ namespaces

NAMESPACED_KINDS = frozenset({
    *POD_KINDS, "Service", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "Ingress",
    "NetworkPolicy", "PersistentVolumeClaim", "Endpoints", "HorizontalPodAutoscaler", "PodDisruptionBudget",
})


@control(
    "KW-W051", "Object in the default namespace", "low", "workload",
    frameworks=("cis-5.7.4",),
    remediation="Create a namespace per application and set metadata.namespace; keep `default` empty.",
    shape="object", kinds=NAMESPACED_KINDS,
)
def default_namespace(res: Resource) -> Iterator[Hit]:
    if res.namespace != "default" or (res.kind == "Service" and res.name == "kubernetes"):
        return  # the apiserver's own kubernetes Service always lives there
    if res.metadata.get("namespace"):
        yield "/metadata/namespace", f"{res.kind} is in the default namespace"
    else:
        yield "/metadata", f"{res.kind} has no namespace and lands in default (or the current context's)"


PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@control(
    "KW-W052", "Namespace without Pod Security enforcement", "medium", "workload",
    frameworks=("nsa", "cis-5.2.1"),
    remediation="Label the namespace pod-security.kubernetes.io/enforce=restricted (or baseline).",
    shape="object", kinds=("Namespace",),
)
def namespace_no_psa(res: Resource) -> Iterator[Hit]:
    # Pod Security Admission reads the enforce label; absent means the cluster default (privileged unless the
    # admission configuration says otherwise).
    if res.name in SYSTEM_NAMESPACES:
        return
    level = res.labels.get(PSA_ENFORCE)
    if level is None:
        yield ("/metadata/labels" if res.labels else "/metadata"), f"namespace {res.name} has no {PSA_ENFORCE} label"
    elif level == "privileged":
        yield f"/metadata/labels/{PSA_ENFORCE.replace('/', '~1')}", f"namespace {res.name} enforces the privileged level"


def _namespaces_missing(kind: str) -> Any:
    def check(snap: Snapshot) -> Iterator[tuple[Resource, str, str]]:
        for ns in snap.of_kind("Namespace"):
            if ns.name in SYSTEM_NAMESPACES or any(r.kind == kind for r in snap.in_namespace(ns.name)):
                continue
            if any(r.pod() is not None for r in snap.in_namespace(ns.name)):
                yield ns, "/metadata", f"namespace {ns.name} runs workloads but has no {kind}"
    return check


control(
    "KW-W053", "Namespace without ResourceQuota", "low", "workload",
    frameworks=("nsa", "mitre-T1496"),
    remediation="Add a ResourceQuota to each application namespace to cap CPU, memory and object counts.",
    shape="snapshot", kinds=("Namespace",), reads=("ResourceQuota",),
)(_namespaces_missing("ResourceQuota"))
control(
    "KW-W054", "Namespace without LimitRange", "low", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Add a LimitRange with default container limits to each application namespace.",
    shape="snapshot", kinds=("Namespace",), reads=("LimitRange",),
)(_namespaces_missing("LimitRange"))
