"""Pod facts in audit rules judged by the scan's own controls (controls/workload/), so one pod is judged the
same way by `scan`, admission and `audit analyze`: the request body of a pod (or workload) create is wrapped as a
Resource and handed to the registered control functions; their JSON pointers become the alert's triggering field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..engines.pss.baseline import capabilities, host_namespace, host_path, privileged
from ..resource import PodView, Resource

# objectRef.resource -> kind, for request bodies sent without `kind` (the apiserver knows it from the URL).
KIND_BY_RESOURCE = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob", "replicationcontrollers": "ReplicationController",
    "podtemplates": "PodTemplate",
}

Group = tuple[str, ...]
PRIVILEGED: Group = ("KW-W001",)
HOST_PID: Group = ("KW-W002",)
HOST_IPC: Group = ("KW-W003",)
HOST_NETWORK: Group = ("KW-W004",)
SENSITIVE_MOUNT: Group = ("KW-W007", "KW-W008")  # runtime sockets, then node system directories
DANGEROUS_CAPABILITIES: Group = ("KW-W011", "KW-W012", "KW-W013", "KW-W014", "KW-W015", "KW-W016", "KW-W017")

_funcs: dict[str, Callable[[PodView], Iterable[tuple[str, str]]]] = {}


def _control(cid: str) -> Callable[[PodView], Iterable[tuple[str, str]]]:
    if not _funcs:
        # Only the workload module: these controls live there, and loading every control module (RBAC, netpol
        # engines) would cost every `audit analyze` start-up for nothing.
        from ..controls import registry, workload  # noqa: F401 - importing registers the workload controls

        _funcs.update({k: c.func for k, c in registry.registered(registry.Shape.POD).items()})
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


# Cheap gates on the raw pod spec, with the PSS engine's predicates the controls themselves read: each control
# fires only on a true host-namespace field, a hostPath volume, `privileged: true` or a non-empty
# `capabilities.add`, so a body without any of these skips the PodView and the thirteen control calls (most pod
# creates; `privileged: false` and `capabilities: {drop: [ALL]}` included).
_SPEC_GATES: tuple[tuple[Group, str], ...] = ((HOST_PID, "hostPID"), (HOST_IPC, "hostIPC"),
                                               (HOST_NETWORK, "hostNetwork"))
ALL_GROUPS: tuple[Group, ...] = (HOST_PID, HOST_IPC, HOST_NETWORK, SENSITIVE_MOUNT, PRIVILEGED,
                                 DANGEROUS_CAPABILITIES)


# The event last judged and its results per control group, one tuple replaced whole (so a reader in another
# thread never pairs one event with another's results): six pod rules judge each pod create.
_last: list[tuple[Any, dict[Group, list[tuple[str, str]]]]] = [(None, {})]


def _groups(obj: Any) -> tuple[Group, ...]:
    """The control groups that could find something in this body (all of them when it is not a plain pod)."""
    spec = obj.get("spec") if obj.__class__ is dict else None
    if spec.__class__ is not dict or obj.get("kind") not in (None, "Pod"):
        return ALL_GROUPS
    found = [g for g, key in _SPEC_GATES if host_namespace(spec, key)]
    vols = spec.get("volumes")
    if vols.__class__ is list and any(v.__class__ is dict and host_path(v) is not None for v in vols):
        found.append(SENSITIVE_MOUNT)
    priv = caps = False
    for field in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(field)
        if items.__class__ is list:
            for c in items:
                if c.__class__ is dict and c.get("securityContext").__class__ is dict:
                    priv = priv or privileged(c)
                    caps = caps or bool(capabilities(c, "add"))
    if priv:
        found.append(PRIVILEGED)
    if caps:
        found.append(DANGEROUS_CAPABILITIES)
    return tuple(found)


def _judge(ev: dict[str, Any]) -> dict[tuple[str, ...], list[tuple[str, str]]]:
    groups = _groups(ev.get("requestObject"))
    if not groups:
        return {}
    view = pod_view(ev)
    if view is None:
        return {}
    return {ids: [(f"/requestObject{ptr}", msg) for cid in ids for ptr, msg in _control(cid)(view)] for ids in groups}


def hits(ev: dict[str, Any], ids: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field under the event, control message) for each finding the named controls make on the body."""
    return _results(ev).get(ids, [])


def _results(ev: dict[str, Any]) -> dict[Group, list[tuple[str, str]]]:
    seen, results = _last[0]
    if seen is not ev:
        results = _judge(ev)
        _last[0] = (ev, results)
    return results


def any_hits(ev: dict[str, Any]) -> bool:
    """Whether any pod control finds anything on the body (judged once; hits() then reads the result)."""
    return any(_results(ev).values())
