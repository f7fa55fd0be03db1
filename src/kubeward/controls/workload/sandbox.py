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

_SECCOMP = ("nsa", "cis-5.6.2", "mitre-T1611")
family(pss_control, (
    # a seccomp type set to anything but RuntimeDefault/Localhost fails both levels: KW-W027's; KW-W026 is the
    # restricted remainder, no profile set
    ("KW-W026", "Seccomp profile not RuntimeDefault or Localhost", "medium",
     (*_SECCOMP, *pss_frameworks("seccompProfile_restricted")),
     "Set securityContext.seccompProfile.type: RuntimeDefault (pod level) or a Localhost profile.",
     "seccompProfile_restricted", "seccompProfile_baseline"),
    ("KW-W027", "Seccomp Unconfined", "high",
     (*_SECCOMP, *pss_frameworks("seccompProfile_baseline", "seccompProfile_restricted")),
     "Use seccompProfile.type RuntimeDefault or Localhost, never Unconfined.", "seccompProfile_baseline"),
    ("KW-W028", "AppArmor Unconfined", "high", ("nsa", "mitre-T1611", *pss_frameworks("appArmorProfile")),
     "Use appArmorProfile.type RuntimeDefault or Localhost (or drop the 'unconfined' annotation).",
     "appArmorProfile"),
    ("KW-W029", "Custom SELinux type, user or role", "medium", ("nsa", "mitre-T1611",
                                                                  *pss_frameworks("seLinuxOptions")),
     "Remove seLinuxOptions.user/role and use only container_t, container_init_t or container_kvm_t types.",
     "seLinuxOptions"),
    ("KW-W030", "Unmasked /proc mount", "high", ("nsa", "mitre-T1611",
                                                 *pss_frameworks("procMount", "procMount_restricted")),
     "Remove securityContext.procMount or set it to Default.", "procMount"),
    ("KW-W032", "Windows HostProcess container", "critical", ("nsa", "cis-5.2.10", "mitre-T1611",
                                                               *pss_frameworks("windowsHostProcess")),
     "Remove windowsOptions.hostProcess (pod and containers).", "windowsHostProcess"),
    ("KW-W033", "Probe or lifecycle hook targets another host", "medium", ("mitre-T1090",
                                                                          *pss_frameworks("hostProbesAndHostLifecycle")),
     "Remove the host field from httpGet/tcpSocket probes and lifecycle hooks; the kubelet should only contact the "
     "pod itself.", "hostProbesAndHostLifecycle"),
))


@control(
    "KW-W031", "Unsafe sysctl", "high", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("sysctls")),
    remediation="Set only the safe, namespaced sysctls listed by the Pod Security Standards.",
)
def unsafe_sysctls(pod: PodView) -> Iterator[Hit]:
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
    for v, vpath in pod.volumes():
        kind = restricted_volume_type(v)
        if kind is None or pss_host_path(v) is not None or _gitrepo(v):
            continue
        where = f"{vpath}/{kind}" if kind in v else vpath
        yield where, f'volume "{v.get("name")}" uses volume type {kind} directly in the pod'
