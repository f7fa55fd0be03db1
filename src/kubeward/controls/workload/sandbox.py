"""Kernel sandboxing: seccomp, AppArmor, SELinux, /proc, sysctls, HostProcess, probe hosts, volumes."""

from __future__ import annotations

from collections.abc import Iterator

from ...engines.pss.baseline import (
    SYSCTLS_LATEST,
    sysctl_names,
)
from ...engines.pss.baseline import host_path as pss_host_path
from ...engines.pss.restricted import restricted_volume_type
from ...resource import PodView
from ...textsafe import printable
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    family,
    pss_control,
    pss_input,
)

# ------------------------------------------------------------------------------------ kernel sandboxing

PSS = "kubernetes.io/docs/concepts/security/pod-security-standards/"

_SECCOMP = ("nsa", "cis-5.6.2", "mitre-T1611")
family(pss_control, (
    # a seccomp type set to anything but RuntimeDefault/Localhost fails both levels: KW-W027's; KW-W026 is the
    # restricted remainder, no profile set
    ("KW-W026", "Seccomp profile not RuntimeDefault or Localhost", "medium",
     (*_SECCOMP, *pss_frameworks("seccompProfile_restricted")),
     "Set securityContext.seccompProfile.type: RuntimeDefault (pod level) or a Localhost profile.",
     "Fails for each init, regular or ephemeral container with no seccompProfile of its own when the pod "
     "securityContext sets none either (a profile of another type is KW-W027's); Windows pods are exempt. With no "
     "profile it runs Unconfined (unless the kubelet sets seccompDefault): every system call reaches the "
     "kernel. Upstream: Pod "
     f"Security Standards, restricted 'Seccomp' ({PSS}); pod-security-admission "
     "policy/check_seccompProfile_restricted.go; CIS 5.6.2.", "seccompProfile_restricted", "seccompProfile_baseline"),
    ("KW-W027", "Seccomp Unconfined", "high",
     (*_SECCOMP, *pss_frameworks("seccompProfile_baseline", "seccompProfile_restricted")),
     "Use seccompProfile.type RuntimeDefault or Localhost, never Unconfined.",
     "Fails when the pod securityContext or an init, regular or ephemeral container sets seccompProfile.type to "
     "anything but RuntimeDefault or Localhost (Unconfined). Unconfined turns the kernel's syscall filter off, "
     f"which many kernel exploits need. Upstream: Pod Security Standards, baseline 'Seccomp' ({PSS}); "
     "pod-security-admission policy/check_seccompProfile_baseline.go (the v1.19+ fields; the alpha annotations "
     "only count for older policy versions); CIS 5.6.2.", "seccompProfile_baseline"),
    ("KW-W028", "AppArmor Unconfined", "high", ("nsa", "mitre-T1611", *pss_frameworks("appArmorProfile")),
     "Use appArmorProfile.type RuntimeDefault or Localhost (or drop the 'unconfined' annotation).",
     "Fails when the pod securityContext or an init, regular or ephemeral container sets appArmorProfile.type to "
     "anything but RuntimeDefault or Localhost, or a container.apparmor.security.beta.kubernetes.io/ annotation is "
     "not empty, runtime/default or localhost/<profile>. Unconfined removes the runtime's AppArmor confinement "
     f"of mounts, /proc and /sys writes. Upstream: Pod Security Standards, baseline 'AppArmor' ({PSS}); "
     "pod-security-admission policy/check_appArmorProfile.go.", "appArmorProfile"),
    ("KW-W029", "Custom SELinux type, user or role", "medium", ("nsa", "mitre-T1611",
                                                                  *pss_frameworks("seLinuxOptions")),
     "Remove seLinuxOptions.user/role and use only container_t, container_init_t or container_kvm_t types.",
     "Fails when seLinuxOptions on the pod securityContext or an init, regular or ephemeral container sets a "
     "user or a role, or a type other than empty, container_t, container_init_t, container_kvm_t or "
     "container_engine_t (the latter allowed from policy v1.31). Another type or role can lift SELinux's "
     f"separation of containers from the node. Upstream: Pod Security Standards, baseline 'SELinux' ({PSS}); "
     "pod-security-admission policy/check_seLinuxOptions.go.", "seLinuxOptions"),
    ("KW-W030", "Unmasked /proc mount", "high", ("nsa", "mitre-T1611",
                                                 *pss_frameworks("procMount", "procMount_restricted")),
     "Remove securityContext.procMount or set it to Default.",
     "Fails for each init, regular or ephemeral container that sets securityContext.procMount to anything but "
     "Default (Unmasked); at the latest policy version baseline allows it for user-namespaced pods (hostUsers: "
     "false), which restricted still forbids (KW-PSS-procMount_restricted). An unmasked /proc exposes the "
     f"kernel paths the runtime hides (/proc/sys, /proc/kcore...). Upstream: Pod Security Standards, baseline and "
     f"restricted '/proc Mount Type' ({PSS}); pod-security-admission policy/check_procMount.go, check_procMount_baseline.go.", "procMount"),
    ("KW-W032", "Windows HostProcess container", "critical", ("nsa", "cis-5.2.10", "mitre-T1611",
                                                               *pss_frameworks("windowsHostProcess")),
     "Remove windowsOptions.hostProcess (pod and containers).",
     "Fails when the pod securityContext or an init, regular or ephemeral container sets "
     "windowsOptions.hostProcess: true. A HostProcess container runs as a process on the Windows node with the "
     f"node's network and file system: it is the Windows equivalent of privileged. Upstream: Pod Security "
     f"Standards, baseline 'HostProcess' ({PSS}); pod-security-admission policy/check_windowsHostProcess.go; CIS "
     "5.2.10.", "windowsHostProcess"),
    ("KW-W033", "Probe or lifecycle hook targets another host", "medium", ("mitre-T1090",
                                                                          *pss_frameworks("hostProbesAndHostLifecycle")),
     "Remove the host field from httpGet/tcpSocket probes and lifecycle hooks; the kubelet should only contact the "
     "pod itself.",
     "Fails when an init, regular or ephemeral container sets a non-empty host in the httpGet or tcpSocket "
     "action of its livenessProbe, readinessProbe or startupProbe, or of its postStart or preStop lifecycle "
     "hook. The kubelet makes those requests from the node, so the pod can aim them at any address the node "
     f"reaches (a server-side request forgery). Upstream: Pod Security Standards, baseline 'Probes / Lifecycle "
     f"Hooks' (policy v1.34+, {PSS}); pod-security-admission policy/check_hostProbesAndhostLifecycle.go.",
     "hostProbesAndHostLifecycle"),
))


@control(
    "KW-W031", "Unsafe sysctl", "high", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("sysctls")),
    remediation="Set only the safe, namespaced sysctls listed by the Pod Security Standards.",
)
def unsafe_sysctls(pod: PodView) -> Iterator[Hit]:
    """Fails for each spec.securityContext.sysctls[] name that is not, as written, in the safe set of the latest
    policy version (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, ip_local_reserved_ports,
    tcp_syncookies, ping_group_range, ip_unprivileged_port_start, tcp_keepalive_time, tcp_fin_timeout,
    tcp_keepalive_intvl, tcp_keepalive_probes, tcp_rmem, tcp_wmem, tcp_slow_start_after_idle,
    tcp_notsent_lowat); the slash form (net/ipv4/...) fails too, as upstream compares the literal name. Other
    sysctls can change the whole node's kernel or starve its neighbours. Upstream: Pod Security Standards,
    baseline 'Sysctls' (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_sysctls.go; kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/."""
    # check_sysctls.go at the latest version: the name as written must be in the safe set; the `/` form
    # (net/ipv4/tcp_syncookies), which the kubelet would normalize, is not (upstream compares the literal).
    for i, name in sysctl_names(pss_input(pod)):
        if name not in SYSCTLS_LATEST:
            yield f"{pod.spec_path}/securityContext/sysctls/{i}/name", f"pod sets unsafe sysctl {printable(name)}"


@control(
    "KW-W034", "Process namespace shared between containers", "medium", "workload",
    frameworks=("nsa", "mitre-T1055"),
    remediation="Remove spec.shareProcessNamespace unless a sidecar truly needs to see the other processes.",
)
def share_process_namespace(pod: PodView) -> Iterator[Hit]:
    """Fails when the pod sets spec.shareProcessNamespace: true. Every container then sees the others'
    processes, and through /proc/<pid>/root and /proc/<pid>/environ their files and secrets. Not in the Pod
    Security Standards. Upstream: kubernetes.io/docs/tasks/configure-pod-container/share-process-namespace/
    (its security notes); NSA-CISA Kubernetes Hardening Guide; MITRE ATT&CK T1055."""
    if pod.spec.get("shareProcessNamespace") is True:
        yield f"{pod.spec_path}/shareProcessNamespace", "containers share one process namespace (can read each other's /proc and secrets)"


# check_restrictedVolumes.go: each volume restricted forbids is one finding, under the first of these that fits:
# hostPath (KW-W006, also baseline's), gitRepo (KW-W035), any other type (KW-W055). A volume with only a name
# defaults to emptyDir.
def _gitrepo(v: dict[str, object]) -> bool:
    return v.get("gitRepo") is not None and pss_host_path(v) is None


@control(
    "KW-W035", "gitRepo volume", "high", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("restrictedVolumes")),
    remediation="Replace the deprecated gitRepo volume with an init container that clones into an emptyDir.",
)
def git_repo_volume(pod: PodView) -> Iterator[Hit]:
    """Fails for each volume with a gitRepo source (a volume that is also hostPath is KW-W006's). The kubelet
    runs git on the node as root with the pod's arguments (CVE-2018-11235, CVE-2024-10220); the type is
    deprecated. Upstream: Pod Security Standards, restricted 'Volume Types'
    (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_restrictedVolumes.go; kubernetes.io/docs/concepts/storage/volumes/#gitrepo."""
    # gitRepo runs git on the node as root (CVE-2018-11235, CVE-2024-10220); deprecated in core/v1 types.go.
    for v, vpath in pod.volumes():
        if _gitrepo(v):
            yield f"{vpath}/gitRepo", f'volume "{v.get("name")}" is a gitRepo volume (git runs on the node)'


@control(
    "KW-W055", "Node-attached or network volume in the pod spec", "low", "workload",
    frameworks=("nsa", *pss_frameworks("restrictedVolumes")),
    remediation="Use a PersistentVolumeClaim (the volume itself is then managed by the cluster admin) or a "
    "projected/configMap/secret/emptyDir volume.",
)
def restricted_volume(pod: PodView) -> Iterator[Hit]:
    """Fails for each volume whose source restricted forbids (not configMap, csi, downwardAPI, emptyDir,
    ephemeral, image, persistentVolumeClaim, projected or secret; a volume with only a name defaults to emptyDir),
    named by the first forbidden source in upstream's order (nfs, iscsi, rbd, cephfs, awsElasticBlockStore...,
    else "unknown"); hostPath and gitRepo are KW-W006's and KW-W035's. Such volumes attach node or network
    storage that the cluster administrator does not control through a PersistentVolume. Upstream: Pod Security
    Standards, restricted 'Volume Types' (kubernetes.io/docs/concepts/security/pod-security-standards/);
    pod-security-admission policy/check_restrictedVolumes.go."""
    for v, vpath in pod.volumes():
        kind = restricted_volume_type(v)
        if kind is None or pss_host_path(v) is not None or _gitrepo(v):
            continue
        where = f"{vpath}/{kind}" if kind in v else vpath
        yield where, f'volume "{v.get("name")}" uses volume type {kind} directly in the pod'
