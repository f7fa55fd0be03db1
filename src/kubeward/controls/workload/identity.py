"""Users and groups: root, low IDs, privilege escalation, writable root filesystems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...resource import PodView
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    _containers,
    _d,
    _deepest,
    _effective,
    _effective_at,
    _name,
    _psc,
    _user_namespaced,
    _windows,
    family,
    pss_control,
)

# ------------------------------------------------------------------------------------------ identities

PSS = "kubernetes.io/docs/concepts/security/pod-security-standards/"


family(pss_control, (
    ("KW-W020", "Container may run as root", "medium", ("nsa", "cis-5.2.7", "mitre-T1611",
                                                          *pss_frameworks("runAsNonRoot")),
     "Set runAsNonRoot: true (pod securityContext, or every container's).",
     "Fails unless runAsNonRoot is true on the pod securityContext or on every init, regular and ephemeral "
     "container that does not inherit it, and fails when the pod or a container sets it false; user-namespaced "
     "pods (hostUsers: false) are exempt at the latest policy version. Without it the image's USER decides, and "
     f"many images run as root. Upstream: Pod Security Standards, restricted 'Running as Non-root' ({PSS}); "
     "pod-security-admission policy/check_runAsNonRoot.go; CIS 5.2.7.", "runAsNonRoot"),
    ("KW-W021", "Container runs as UID 0", "high", ("nsa", "cis-5.2.7", "mitre-T1611", *pss_frameworks("runAsUser")),
     "Set runAsUser to a non-zero UID (and runAsNonRoot: true).",
     "Fails when the pod securityContext or any init, regular or ephemeral container sets runAsUser: 0; "
     "user-namespaced pods (hostUsers: false) are exempt at the latest policy version. UID 0 is the node's root "
     "once a process leaves the container. Upstream: Pod Security Standards, restricted 'Running as Non-root user' "
     f"({PSS}); pod-security-admission policy/check_runAsUser.go; CIS 5.2.7.", "runAsUser"),
    ("KW-W024", "Privilege escalation allowed", "medium", ("nsa", "cis-5.2.6", "mitre-T1548.001",
                                                             *pss_frameworks("allowPrivilegeEscalation")),
     "Set securityContext.allowPrivilegeEscalation: false on every container.",
     "Fails for each init, regular or ephemeral container whose securityContext.allowPrivilegeEscalation is not "
     "false (unset counts as allowed); Windows pods are exempt. Only false sets no_new_privs, which stops setuid "
     f"binaries and file capabilities from raising privilege. Upstream: Pod Security Standards, restricted "
     f"'Privilege Escalation' ({PSS}); pod-security-admission policy/check_allowPrivilegeEscalation.go; CIS 5.2.6.",
     "allowPrivilegeEscalation"),
))


def _is_zero(v: Any) -> bool:
    return v == 0 and not isinstance(v, bool)


@control(
    "KW-W022", "Container runs with GID 0", "medium", "workload",
    frameworks=("nsa", "mitre-T1611"),
    remediation="Set runAsGroup to a non-zero GID.",
)
def run_as_gid0(pod: PodView) -> Iterator[Hit]:
    """Fails for each init, regular or ephemeral container whose effective runAsGroup (the container's
    securityContext, else the pod's) is 0; user-namespaced pods (hostUsers: false) are exempt. GID 0 is the
    node's root group, which owns many system files, after an escape. Pod Security Standards do not check it.
    Upstream: NSA-CISA Kubernetes Hardening Guide (run as non-root); runAsGroup in k8s.io/api core/v1 types.go
    SecurityContext; MITRE ATT&CK T1611."""
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


family(_low_id, (
    ("KW-W057", "Container UID below 10000", "low", ("nsa", "mitre-T1611"),
     "Set runAsUser to 10000 or more (pod or container securityContext; the container's wins).",
     "Fails for each init, regular or ephemeral container whose effective runAsUser (the container's, else the "
     "pod's) is an integer from 1 to 9999; unset and 0 are KW-W020's and KW-W021's, and user-namespaced and Windows "
     "pods are exempt. Low UIDs are likely to match a node account, whose files an escaped process then owns. "
     "Upstream: NSA-CISA Kubernetes Hardening Guide (non-root users); MITRE ATT&CK T1611 (not in the Pod Security "
     "Standards).", "runAsUser", "UID"),
    ("KW-W058", "Container GID below 10000", "low", ("nsa", "mitre-T1611"),
     "Set runAsGroup to 10000 or more (pod or container securityContext; the container's wins).",
     "Fails for each init, regular or ephemeral container whose effective runAsGroup (the container's, else the "
     "pod's) is an integer from 1 to 9999; 0 is KW-W022's, and user-namespaced and Windows pods are exempt. Low "
     "GIDs are likely to match a node group, whose files an escaped process can then use. Upstream: NSA-CISA "
     "Kubernetes Hardening Guide (non-root users); MITRE ATT&CK T1611 (not in the Pod Security Standards).",
     "runAsGroup", "GID"),
))


@control(
    "KW-W023", "Pod adds the root group (fsGroup or supplementalGroups 0)", "low", "workload",
    frameworks=("nsa",),
    remediation="Use a non-zero fsGroup and remove 0 from supplementalGroups.",
)
def root_groups(pod: PodView) -> Iterator[Hit]:
    """Fails when the pod securityContext sets fsGroup: 0, and for each supplementalGroups entry that is 0 (user
    namespaces are not taken into account). fsGroup 0 makes the pod's volumes owned by the root group, and a
    supplemental group 0 gives every container root-group access to the node's files after an escape.
    Upstream: fsGroup and supplementalGroups in k8s.io/api core/v1 types.go PodSecurityContext; NSA-CISA
    Kubernetes Hardening Guide (non-root)."""
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
    "KW-W025", "Root filesystem is writable", "low", "workload",
    frameworks=("nsa", "mitre-T1525"),
    remediation="Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where writes are needed.",
)
def writable_root_fs(pod: PodView) -> Iterator[Hit]:
    """Fails for each init, regular or ephemeral container whose securityContext.readOnlyRootFilesystem is not
    true; Windows pods are exempt (the field is refused there). A writable root filesystem lets an intruder drop
    tools or change the application's binaries for the life of the container. Upstream: NSA-CISA Kubernetes
    Hardening Guide ("immutable container file systems"); readOnlyRootFilesystem in k8s.io/api core/v1 types.go
    SecurityContext; MITRE ATT&CK T1525."""
    if _windows(pod):
        return  # readOnlyRootFilesystem cannot be set on Windows (validation.go validateWindows)
    for c, path, _ in _containers(pod):
        sc = _d(c.get("securityContext"))
        if sc.get("readOnlyRootFilesystem") is not True:
            yield (_deepest(path, c, ("securityContext", "readOnlyRootFilesystem")),
                   f'container "{_name(c)}" has a writable root filesystem')
