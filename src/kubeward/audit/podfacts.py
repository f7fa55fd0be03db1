"""Pod facts in audit rules judged by the scan's own controls (controls/workload.py), so one pod is judged the
same way by `scan`, admission and `audit analyze`: the request body of a pod (or workload) create is wrapped as a
Resource and handed to the registered control functions; their JSON pointers become the alert's triggering field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..resource import PodView, Resource

# objectRef.resource -> kind, for request bodies sent without `kind` (the apiserver knows it from the URL).
KIND_BY_RESOURCE = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob", "replicationcontrollers": "ReplicationController",
    "podtemplates": "PodTemplate",
}

PRIVILEGED = ("KW-W001",)
HOST_PID, HOST_IPC, HOST_NETWORK = ("KW-W002",), ("KW-W003",), ("KW-W004",)
SENSITIVE_MOUNT = ("KW-W007", "KW-W008")  # runtime sockets, then node system directories
DANGEROUS_CAPABILITIES = ("KW-W011", "KW-W012", "KW-W013", "KW-W014", "KW-W015", "KW-W016", "KW-W017")

_funcs: dict[str, Callable[[PodView], Iterable[tuple[str, str]]]] = {}


def _control(cid: str) -> Callable[[PodView], Iterable[tuple[str, str]]]:
    if not _funcs:
        from ..controls.registry import all_controls

        _funcs.update({k: c.func for k, c in all_controls().items() if c.shape == "pod"})
    return _funcs[cid]


def pod_view(ev: dict[str, Any]) -> PodView | None:
    """The request body's pod (or pod template) as the controls see it; None without a body."""
    obj = ev.get("requestObject")
    if not isinstance(obj, dict):
        return None
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in KIND_BY_RESOURCE.values():
        resource = (ev.get("objectRef") or {}).get("resource")
        kind = KIND_BY_RESOURCE.get(resource) if isinstance(resource, str) else None
        if kind is None:
            return None
        obj = {**obj, "kind": kind}
    return PodView.of(Resource(obj))


def hits(ev: dict[str, Any], ids: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field under the event, control message) for each finding the named controls make on the body."""
    view = pod_view(ev)
    if view is None:
        return []
    return [(f"/requestObject{ptr}", msg) for cid in ids for ptr, msg in _control(cid)(view)]
