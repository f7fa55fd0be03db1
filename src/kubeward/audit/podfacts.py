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
        # Only the workload module: these controls live there, and loading every control module (RBAC, netpol
        # engines) would cost every `audit analyze` start-up for nothing.
        from ..controls import registry, workload  # noqa: F401 - importing registers the workload controls

        _funcs.update({k: c.func for k, c in registry._REGISTRY.items() if c.shape == "pod"})
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


_last: list[Any] = [None, None]  # the event last unwrapped and its view: six pod rules judge each pod create


def _containers(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(key)
        if isinstance(items, list):
            yield from (c for c in items if isinstance(c, dict))


def _sc_has(spec: dict[str, Any], key: str) -> bool:
    for c in _containers(spec):
        sc = c.get("securityContext")
        if isinstance(sc, dict) and key in sc:
            return True
    return False


# Cheap gates on the raw pod spec, never narrower than the controls they guard (each reads only that field), so
# most pod bodies cost a few key lookups instead of building a PodView and calling thirteen controls.
GATES: dict[tuple[str, ...], Callable[[dict[str, Any]], bool]] = {
    PRIVILEGED: lambda spec: _sc_has(spec, "privileged"),
    HOST_PID: lambda spec: "hostPID" in spec,
    HOST_IPC: lambda spec: "hostIPC" in spec,
    HOST_NETWORK: lambda spec: "hostNetwork" in spec,
    SENSITIVE_MOUNT: lambda spec: "volumes" in spec,
    DANGEROUS_CAPABILITIES: lambda spec: _sc_has(spec, "capabilities"),
}

# The event last judged and its results per control group: six pod rules judge each pod create.
_last: list[Any] = [None, None]


def _judge(ev: dict[str, Any]) -> dict[tuple[str, ...], list[tuple[str, str]]]:
    obj = ev.get("requestObject")
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict) or (isinstance(obj, dict) and obj.get("kind") not in (None, "Pod")):
        spec = None  # not a plain pod body: build the view and run every group
    groups = [ids for ids, gate in GATES.items() if spec is None or gate(spec)]
    if not groups:
        return {}
    view = pod_view(ev)
    if view is None:
        return {}
    return {ids: [(f"/requestObject{ptr}", msg) for cid in ids for ptr, msg in _control(cid)(view)] for ids in groups}


def hits(ev: dict[str, Any], ids: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field under the event, control message) for each finding the named controls make on the body."""
    if _last[0] is not ev:
        _last[0], _last[1] = ev, _judge(ev)
    found: list[tuple[str, str]] = _last[1].get(ids, [])
    return found
