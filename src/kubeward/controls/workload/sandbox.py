"""Kernel sandboxing: seccomp, AppArmor, SELinux, /proc, sysctls, HostProcess, probe hosts, volumes."""

from __future__ import annotations

from collections.abc import Iterator

from ...engines.pss.baseline import (
    SYSCTLS_LATEST,
    sysctl_names,
)
from ...engines.pss.restricted import restricted_adds
from ...resource import PodView
from ...textsafe import printable
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    _containers,
    _name,
    _pss_control,
    pss_input,
)

# ------------------------------------------------------------------------------------ kernel sandboxing



control(
    "KW-W026", "Seccomp profile not RuntimeDefault or Localhost", "medium", "workload",
    frameworks=("nsa", "cis-5.6.2", "mitre-T1611", *pss_frameworks("seccompProfile_restricted")),
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault (pod level) or a Localhost profile.",
)(_pss_control("seccompProfile_restricted"))


control(
    "KW-W027", "Seccomp Unconfined", "high", "workload",
    frameworks=("nsa", "cis-5.6.2", "mitre-T1611", *pss_frameworks("seccompProfile_baseline")),
    remediation="Use seccompProfile.type RuntimeDefault or Localhost, never Unconfined.",
)(_pss_control("seccompProfile_baseline"))


control(
    "KW-W028", "AppArmor Unconfined", "high", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("appArmorProfile")),
    remediation="Use appArmorProfile.type RuntimeDefault or Localhost (or drop the 'unconfined' annotation).",
)(_pss_control("appArmorProfile"))


control(
    "KW-W029", "Custom SELinux type, user or role", "medium", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("seLinuxOptions")),
    remediation="Remove seLinuxOptions.user/role and use only container_t, container_init_t or container_kvm_t types.",
)(_pss_control("seLinuxOptions"))


control(
    "KW-W030", "Unmasked /proc mount", "high", "workload",
    frameworks=("nsa", "mitre-T1611", *pss_frameworks("procMount")),
    remediation="Remove securityContext.procMount or set it to Default.",
)(_pss_control("procMount"))


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


control(
    "KW-W032", "Windows HostProcess container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.10", "mitre-T1611", *pss_frameworks("windowsHostProcess")),
    remediation="Remove windowsOptions.hostProcess (pod and containers).",
)(_pss_control("windowsHostProcess"))


control(
    "KW-W033", "Probe or lifecycle hook targets another host", "medium", "workload",
    frameworks=("mitre-T1090", *pss_frameworks("hostProbesAndHostLifecycle")),
    remediation="Remove the host field from httpGet/tcpSocket probes and lifecycle hooks; the kubelet should "
    "only contact the pod itself.",
)(_pss_control("hostProbesAndHostLifecycle"))



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
    frameworks=("nsa", "cis-5.2.9", *pss_frameworks("capabilities_restricted")),
    remediation="Add no capabilities except NET_BIND_SERVICE (drop ALL first).",
)
def restricted_capabilities(pod: PodView) -> Iterator[Hit]:
    # check_capabilities_restricted.go: add may contain only NET_BIND_SERVICE (literal); Windows pods exempt.
    if pss_input(pod).windows:
        return
    for c, path, _ in _containers(pod):
        for i, cap in restricted_adds(c):
            yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds {cap}'
