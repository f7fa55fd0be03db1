"""Which host paths a hostPath volume must not expose: one predicate for the scan controls and the audit rules.

Paths are compared after lexical cleaning (Go `path.Clean`, which the kubelet applies to hostPath paths before
mounting: `//etc`, `/etc/`, `/etc/.` and `/var/../etc` all mean `/etc`), so a spelling cannot hide a mount. The
sensitive prefixes are what an attacker needs to take the node (NSA-CISA hardening guide, "Pod security"); the
container runtime sockets give full control of every container on the node.
"""

from __future__ import annotations

RUNTIME_SOCKETS = frozenset({
    "/var/run/docker.sock", "/run/docker.sock", "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock", "/run/cri-dockerd.sock", "/var/run/dockershim.sock", "/run/k3s/containerd/containerd.sock",
    "/var/run/containerd", "/run/containerd", "/var/run/crio", "/run/crio", "/var/run", "/run", "/var/run/docker",
})
SENSITIVE_HOST_PATHS = (
    "/", "/etc", "/proc", "/sys", "/root", "/home", "/boot", "/dev", "/lib/modules", "/usr", "/bin", "/sbin",
    "/var/lib/kubelet", "/var/lib/docker", "/var/lib/containerd", "/var/lib/etcd", "/etc/kubernetes", "/var/log",
    "/var/lib/rancher", "/opt/cni", "/etc/cni",
)
_SOCKET_SUFFIXES = ("docker.sock", "containerd.sock", "crio.sock", "cri-dockerd.sock", "dockershim.sock")
_SENSITIVE_EXACT = frozenset({"/", "/var", "/var/lib"})
_PREFIXES = tuple(s + "/" for s in SENSITIVE_HOST_PATHS if s != "/")
_EXACT = frozenset(SENSITIVE_HOST_PATHS) | _SENSITIVE_EXACT


def clean(path: str) -> str:
    """Lexical cleaning as Go's path.Clean for an absolute path: no empty, `.` or `..` elements, no trailing slash
    (`..` at the root stays at the root). A relative path is read from the root, as the mount would be."""
    parts: list[str] = []
    for p in path.split("/"):
        if p == "..":
            if parts:
                parts.pop()
        elif p and p != ".":
            parts.append(p)
    return "/" + "/".join(parts)


def is_runtime_socket(p: str) -> bool:
    """A container runtime socket or its directory (p already cleaned)."""
    return p in RUNTIME_SOCKETS or p.endswith(_SOCKET_SUFFIXES)


def is_sensitive(p: str) -> bool:
    """A node system directory or anything under one (p already cleaned)."""
    return p in _EXACT or p.startswith(_PREFIXES)
