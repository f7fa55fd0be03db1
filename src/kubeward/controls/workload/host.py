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


control(
    "KW-W001", "Privileged container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.2", "mitre-T1611", *pss_frameworks("privileged")),
    remediation="Remove securityContext.privileged or set it to false.",
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
     "Remove spec.hostPID or set it to false; use a debug container instead of host process access.", "hostPID",
     "process ID"),
    ("KW-W003", "Host IPC namespace shared", "high", ("nsa", "cis-5.2.4", "mitre-T1611", *_NS),
     "Remove spec.hostIPC or set it to false.", "hostIPC", "IPC"),
    ("KW-W004", "Host network namespace shared", "high", ("nsa", "cis-5.2.5", "mitre-T1557", *_NS),
     "Remove spec.hostNetwork or set it to false; expose the workload through a Service.", "hostNetwork", "network"),
))


@control(
    "KW-W005", "Container binds a host port", "medium", "workload",
    frameworks=("nsa", "cis-5.2.12", *pss_frameworks("hostPorts")),
    remediation="Remove ports[].hostPort (or set it to 0) and expose the container through a Service.",
)
def host_ports(pod: PodView) -> Iterator[Hit]:
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
    # check_hostPathVolumes.go, and the hostPath type of check_restrictedVolumes.go (which leaves it to this one)
    for v, vpath, p in _host_paths(pod):
        yield f"{vpath}/hostPath", f'volume "{v.get("name")}" mounts host path {p}'


@control(
    "KW-W007", "Container runtime socket mounted", "critical", "workload",
    frameworks=("nsa", "cis-5.2.11", "mitre-T1611", "mitre-T1610"),
    remediation="Do not mount docker/containerd/CRI-O sockets into pods; they grant control of the node.",
)
def runtime_socket(pod: PodView) -> Iterator[Hit]:
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
