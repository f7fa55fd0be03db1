"""Which pod and container a process belongs to, read from its cgroup path (v1 and v2, both kubelet drivers).

Upstream naming (kubernetes pkg/kubelet/cm):
- pod_container_manager_linux.go: a pod's cgroup is named "pod" + UID under the QoS cgroup
  (qos_container_manager_linux.go: "kubepods", "kubepods/burstable", "kubepods/besteffort");
- cgroup_manager_linux.go (ConvertCgroupNameToSystemd): with the systemd driver each level becomes a slice whose
  name joins its ancestors with "-" and escapes "-" inside a component as "_", e.g.
  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b_3c4d.slice;
- runtimes put the container below the pod cgroup: containerd "cri-containerd-<id>.scope" (systemd driver) or
  "<id>" (cgroupfs), CRI-O "crio-<id>.scope" ("crio-conmon-<id>.scope" is its monitor, not the container),
  docker "docker-<id>.scope"; ids are 64 hex digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .procinfo import read_small

_HEX64 = r"[0-9a-f]{64}"
_CONTAINER_SEGMENT = re.compile(rf"^(?:(?:cri-containerd|crio|docker|cri-o)[-:])?({_HEX64})(?:\.scope)?$")
_CONMON_SEGMENT = re.compile(rf"^crio-conmon-({_HEX64})(?:\.scope)?$")
# cgroupfs: "pod<uid>"; systemd: "kubepods[-qos]-pod<uid with _>.slice".
# A nested kubelet (kind) prefixes every slice, e.g. "kubelet-kubepods-besteffort-pod<uid>.slice".
_POD_SEGMENT = re.compile(r"^(?:(?:[a-z0-9]+-)*kubepods(?:-[a-z]+)*-)?pod([0-9a-fA-F_-]{8,64})(?:\.slice)?$")


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where a process runs: the cgroup path, and the pod UID / container ID when it is in a pod."""

    cgroup: str
    pod_uid: str | None = None
    container_id: str | None = None
    conmon: bool = False  # CRI-O's per-container monitor: in the pod cgroup but not the container

    @property
    def in_pod(self) -> bool:
        return self.pod_uid is not None


def parse_cgroup_path(path: str) -> Attribution:
    """Attribute one cgroup path; the pod segment may sit anywhere (nested kubelets such as kind add a prefix)."""
    pod_uid: str | None = None
    container_id: str | None = None
    conmon = False
    segments = [s for s in path.split("/") if s]
    for i, seg in enumerate(segments):
        m = _POD_SEGMENT.match(seg)
        if m is None or not _under_kubepods(segments[: i + 1]):
            continue
        pod_uid = m.group(1).replace("_", "-").lower()
        rest = segments[i + 1 :]
        if rest:
            c = _CONTAINER_SEGMENT.match(rest[0])
            if c is not None:
                container_id = c.group(1)
            else:
                k = _CONMON_SEGMENT.match(rest[0])
                if k is not None:
                    container_id, conmon = k.group(1), True
        break
    return Attribution(path, pod_uid, container_id, conmon)


def _under_kubepods(segments: list[str]) -> bool:
    """A pod segment counts only inside the kubelet's hierarchy, so `/pod123` elsewhere is not a pod."""
    return any("kubepods" in re.split(r"[-.]", s) for s in segments)


def select_path(proc_cgroup: str) -> str:
    """Pick the path to attribute from /proc/<pid>/cgroup text (man 7 cgroups: `id:controllers:path` lines).

    The unified (v2) line `0::` wins when it is inside kubepods; otherwise the first v1 hierarchy whose path is
    (hybrid hosts keep pods in v1 controllers while `0::` stays at `/`); otherwise the v2 path, then the first line.
    """
    v2: str | None = None
    first: str | None = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, _controllers, path = parts
        if first is None:
            first = path
        if hid == "0" and parts[1] == "":
            v2 = path
            if "kubepods" in path:
                return path
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] != "0" and "kubepods" in parts[2]:
            return parts[2]
    return v2 if v2 is not None else (first or "/")


_MEMO: dict[bytes, Attribution] = {}


def attribute_pid(pid: int) -> Attribution | None:
    """Read /proc/<pid>/cgroup; None when the process is gone. Parsed forms are memoised by the file's bytes:
    a node has few distinct cgroups and this runs once per exec."""
    data = read_small(f"/proc/{pid}/cgroup", 65536)
    if not data:
        return None
    hit = _MEMO.get(data)
    if hit is None:
        if len(_MEMO) > 16384:
            _MEMO.clear()
        hit = _MEMO[data] = parse_cgroup_path(select_path(data.decode("utf-8", "replace")))
    return hit
