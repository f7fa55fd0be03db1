"""Privilege and host access: privileged containers, host namespaces, host ports, hostPath volumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ... import hostpaths
from ...engines.pss.baseline import (
    HOST_NAMESPACES,
    host_namespace,
    host_port,
)
from ...engines.pss.baseline import host_path as pss_host_path
from ...resource import PodView
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    _containers,
    _d,
    _deepest,
    _name,
    family,
    pss_control,
)

# ------------------------------------------------------------------------------------- privilege, host

PSS = "kubernetes.io/docs/concepts/security/pod-security-standards/"


control(
    "KW-W001", "Privileged container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.2", "mitre-T1611", *pss_frameworks("privileged")),
    remediation="Remove securityContext.privileged or set it to false.",
    description=(
        "Fails for each init, regular or ephemeral container that sets securityContext.privileged: true. A "
        "privileged container holds every capability and the node's devices, so leaving it for the node is "
        "trivial. Upstream: Pod Security Standards, baseline 'Privileged Containers' "
        f"({PSS}); pod-security-admission policy/check_privileged.go; CIS 5.2.2."
    ),
)(pss_control("privileged"))


def _host_ns(field: str, what: str) -> Any:
    assert field in HOST_NAMESPACES

    def check(pod: PodView) -> Iterator[Hit]:
        # check_hostNamespaces.go, one field each: together they are the PSS hostNamespaces check
        if host_namespace(pod.spec, field):
            yield f"{pod.spec_path}/{field}", f"pod shares the host's {what} namespace ({field}: true)"
    check.__name__ = f"host_{field}"
    return check


_NS = pss_frameworks("hostNamespaces")
family(_host_ns, (
    ("KW-W002", "Host PID namespace shared", "high", ("nsa", "cis-5.2.3", "mitre-T1611", *_NS),
     "Remove spec.hostPID or set it to false; use a debug container instead of host process access.",
     "Fails when the pod sets spec.hostPID: true. The containers then see every process of the node, can signal "
     "or ptrace them (with the capability) and read their environment and /proc. Upstream: Pod Security "
     f"Standards, baseline 'Host Namespaces' ({PSS}); pod-security-admission policy/check_hostNamespaces.go; "
     "CIS 5.2.3.", "hostPID", "process ID"),
    ("KW-W003", "Host IPC namespace shared", "high", ("nsa", "cis-5.2.4", "mitre-T1611", *_NS),
     "Remove spec.hostIPC or set it to false.",
     "Fails when the pod sets spec.hostIPC: true. The containers then share the node's System V IPC and POSIX "
     "message queues and shared memory (/dev/shm) with every process on the node. Upstream: Pod Security "
     f"Standards, baseline 'Host Namespaces' ({PSS}); pod-security-admission policy/check_hostNamespaces.go; "
     "CIS 5.2.4.", "hostIPC", "IPC"),
    ("KW-W004", "Host network namespace shared", "high", ("nsa", "cis-5.2.5", "mitre-T1557", *_NS),
     "Remove spec.hostNetwork or set it to false; expose the workload through a Service.",
     "Fails when the pod sets spec.hostNetwork: true. The pod then uses the node's interfaces: it can sniff the "
     "node's traffic, reach services bound to localhost (the kubelet's, etcd's on a control-plane node) and "
     "NetworkPolicies no longer select it. Upstream: Pod Security Standards, baseline 'Host Namespaces' "
     f"({PSS}); pod-security-admission policy/check_hostNamespaces.go; CIS 5.2.5.", "hostNetwork", "network"),
))


@control(
    "KW-W005", "Container binds a host port", "medium", "workload",
    frameworks=("nsa", "cis-5.2.12", *pss_frameworks("hostPorts")),
    remediation="Remove ports[].hostPort (or set it to 0) and expose the container through a Service.",
)
def host_ports(pod: PodView) -> Iterator[Hit]:
    """Fails for each ports[] entry of an init, regular or ephemeral container with a non-zero hostPort. A host
    port opens the node's own address to the container, past the Service and NetworkPolicy layers, and pins
    the pod to nodes where the port is free. Upstream: Pod Security Standards, baseline 'Host Ports'
    (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_hostPorts.go (the optional allowed list is empty by default); CIS 5.2.12."""
    # check_hostPorts.go: any non-zero integer hostPort fails baseline (the engine's predicate).
    for c, path, _ in _containers(pod):
        ports = c.get("ports")
        if not isinstance(ports, list):
            continue
        for i, p in enumerate(ports):
            if (hp := host_port(p)) is not None:
                yield f"{path}/ports/{i}/hostPort", f'container "{_name(c)}" binds host port {hp}'


# hostPath: one predicate for the scan and the audit rules (kubeward.hostpaths).


def _host_paths(pod: PodView) -> Iterator[tuple[dict[str, Any], str, str]]:
    for v, vpath in pod.volumes():
        hp = pss_host_path(v)  # check_hostPathVolumes.go's predicate
        if hp is not None:
            yield v, vpath, hostpaths.clean(str(hp.get("path", "")))


@control(
    "KW-W006", "hostPath volume", "medium", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611", *pss_frameworks("hostPathVolumes", "restrictedVolumes")),
    remediation="Replace the hostPath volume with emptyDir, a ConfigMap/Secret, or a PersistentVolumeClaim.",
)
def host_path(pod: PodView) -> Iterator[Hit]:
    """Fails for each volume of type hostPath, whatever its path. A hostPath volume exposes the node's filesystem
    to the pod: node credentials, other pods' data and, when writable, a way onto the node. Upstream: Pod
    Security Standards, baseline 'HostPath Volumes' and restricted 'Volume Types'
    (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_hostPathVolumes.go and check_restrictedVolumes.go; CIS 5.2.11."""
    # check_hostPathVolumes.go, and the hostPath type of check_restrictedVolumes.go (which leaves it to this one)
    for v, vpath, p in _host_paths(pod):
        yield f"{vpath}/hostPath", f'volume "{v.get("name")}" mounts host path {p}'


@control(
    "KW-W007", "Container runtime socket mounted", "critical", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611", "mitre-T1610"),
    remediation="Do not mount docker/containerd/CRI-O sockets into pods; they grant control of the node.",
)
def runtime_socket(pod: PodView) -> Iterator[Hit]:
    """Fails for each hostPath volume whose path, cleaned as Go's path.Clean, is a container runtime socket or
    its directory (docker.sock, containerd.sock, crio.sock, cri-dockerd.sock, dockershim.sock under /run or
    /var/run, k3s's containerd socket, /run, /var/run and the runtime directories) or ends in one of those socket
    names. Whoever reaches the runtime socket starts privileged containers on the node. Upstream: the hostPath
    warning of kubernetes.io/docs/concepts/storage/volumes/#hostpath; NSA-CISA Kubernetes Hardening Guide;
    MITRE ATT&CK T1610 (Deploy Container)."""
    for v, vpath, p in _host_paths(pod):
        if hostpaths.is_runtime_socket(p):
            yield f"{vpath}/hostPath/path", f'volume "{v.get("name")}" mounts the container runtime socket {p}'


@control(
    "KW-W008", "Sensitive host path mounted", "high", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611", "mitre-T1552.001"),
    remediation="Do not mount node system directories (/, /etc, /proc, /sys, /root, /var/lib/kubelet, "
    "/etc/kubernetes, /var/log...) into pods.",
)
def sensitive_host_path(pod: PodView) -> Iterator[Hit]:
    """Fails for each hostPath volume whose cleaned path is /, /var or /var/lib, or is or lies under a node system
    directory: /etc, /proc, /sys, /root, /home, /boot, /dev, /lib/modules, /usr, /bin, /sbin, /var/lib/kubelet,
    /var/lib/docker, /var/lib/containerd, /var/lib/etcd, /var/lib/rancher, /etc/kubernetes, /var/log, /opt/cni
    and /etc/cni (a runtime socket or directory listed by KW-W007 is that control's). These hold the node's
    credentials (kubelet and control-plane keys, etcd data) and its kernel interfaces. Upstream: the hostPath
    warning of kubernetes.io/docs/concepts/storage/volumes/#hostpath; NSA-CISA Kubernetes Hardening Guide; CIS
    5.2.11; MITRE ATT&CK T1552.001."""
    for v, vpath, p in _host_paths(pod):
        if p in hostpaths.RUNTIME_SOCKETS:
            continue  # KW-W007 reports it
        if hostpaths.is_sensitive(p):
            yield f"{vpath}/hostPath/path", f'volume "{v.get("name")}" mounts sensitive host path {p}'


@control(
    "KW-W009", "hostPath volume mounted writable", "high", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611"),
    remediation="Set readOnly: true on every volumeMount of a hostPath volume.",
)
def host_path_writable(pod: PodView) -> Iterator[Hit]:
    """Fails for each volumeMounts[] entry of an init, regular or ephemeral container that names a hostPath
    volume without readOnly: true. A writable hostPath lets the pod change files on the node (binaries, static
    pod manifests, cron jobs). Upstream: kubernetes.io/docs/concepts/storage/volumes/#hostpath ("mount it
    read-only"); CIS 5.2.11; MITRE ATT&CK T1611."""
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
