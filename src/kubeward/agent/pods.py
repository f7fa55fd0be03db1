"""Pod lookup for attribution: pod UID → namespace/name, container ID → container name and image.

Pod objects carry `metadata.uid` and, in `status.containerStatuses` (also init/ephemeral), each container's
`containerID` as `<runtime>://<id>` (core/v1 ContainerStatus), which is the id the runtime puts in the cgroup path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..snapshot import Snapshot

_STATUS_FIELDS = ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")
_SPEC_FIELDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    containers: dict[str, tuple[str, str]]  # container id -> (container name, image)
    images: dict[str, str]  # container name -> image from the spec


class PodIndex:
    """Built once from a snapshot; lookups are dict hits."""

    def __init__(self, pods: dict[str, PodInfo] | None = None) -> None:
        self.by_uid: dict[str, PodInfo] = pods or {}

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> PodIndex:
        out: dict[str, PodInfo] = {}
        for r in snap.of_kind("Pod"):
            uid = str(r.metadata.get("uid") or "").lower()
            if not uid:
                continue
            spec, status = _dict(r.obj.get("spec")), _dict(r.obj.get("status"))
            images = {str(c.get("name")): str(c.get("image") or "") for f in _SPEC_FIELDS
                      for c in _dicts(spec.get(f))}
            containers: dict[str, tuple[str, str]] = {}
            for f in _STATUS_FIELDS:
                for cs in _dicts(status.get(f)):
                    cid = str(cs.get("containerID") or "")
                    if "://" in cid:
                        cid = cid.split("://", 1)[1]
                    name = str(cs.get("name") or "")
                    if cid:
                        containers[cid.lower()] = (name, str(cs.get("image") or images.get(name, "")))
            out[uid] = PodInfo(r.namespace or "default", r.name, uid, containers, images)
        return cls(out)

    def pod(self, uid: str | None) -> PodInfo | None:
        return self.by_uid.get(uid) if uid else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
