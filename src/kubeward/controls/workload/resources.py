"""CPU, memory and ephemeral-storage requests and limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...resource import PodView
from ..registry import Hit
from .common import (
    RUNNABLE,
    _containers,
    _d,
    _deepest,
    _name,
    family,
)

# ---------------------------------------------------------------------------------------------- resources


def _resource_check(section: str, res: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        for c, path, fld in _containers(pod):
            if fld not in RUNNABLE:
                continue
            resources = _d(c.get("resources"))
            values = _d(resources.get(section))
            # an unset request defaults to the limit (core/v1 defaults.go SetDefaults_Pod), so a limit suffices
            if values.get(res) is None and not (section == "requests" and _d(resources.get("limits")).get(res) is not None):
                yield (_deepest(path, c, ("resources", section)),
                       f'container "{_name(c)}" has no {res} {section[:-1]}')
    return check


MR = ("Upstream: kubernetes.io/docs/concepts/configuration/manage-resources-containers/; NSA-CISA Kubernetes "
      "Hardening Guide (resource policies).")


def _limit_doc(res: str, why: str) -> str:
    return (f"Fails for each init or regular container without resources.limits.{res} (ephemeral containers may not "
            f"set resources); a LimitRange default is not consulted. {why} {MR}")


def _request_doc(res: str, why: str) -> str:
    return (f"Fails for each init or regular container with neither resources.requests.{res} nor resources.limits."
            f"{res} (an unset request defaults to the limit); a LimitRange default is not consulted. {why} {MR}")


family(_resource_check, (
    ("KW-W036", "No memory limit", "medium", ("nsa", "mitre-T1499"),
     "Set resources.limits.memory on every container (or a namespace LimitRange default).",
     _limit_doc("memory", "Without one a leaking or hostile container takes the node's memory until the kernel "
                "kills its neighbours."), "limits", "memory"),
    ("KW-W037", "No CPU limit", "low", ("nsa", "mitre-T1496"),
     "Set resources.limits.cpu on every container (or a namespace LimitRange default).",
     _limit_doc("cpu", "Without one the container may take every idle CPU of the node (cryptomining, noisy "
                "neighbours)."), "limits", "cpu"),
    ("KW-W038", "No memory request", "low", ("nsa",),
     "Set resources.requests.memory so the scheduler can place the pod and evictions are predictable.",
     _request_doc("memory", "Without one the scheduler places the pod as if it used no memory, and it is among "
                  "the first evicted under memory pressure."), "requests", "memory"),
    ("KW-W039", "No CPU request", "low", ("nsa",),
     "Set resources.requests.cpu so the scheduler can place the pod fairly.",
     _request_doc("cpu", "Without one the scheduler places the pod as if it used no CPU, and it gets the smallest "
                  "share under contention."), "requests", "cpu"),
    ("KW-W059", "No ephemeral-storage request", "low", ("nsa",),
     "Set resources.requests.ephemeral-storage so the scheduler counts the container's scratch space and logs.",
     _request_doc("ephemeral-storage", "Without one the scheduler does not count the container's scratch space, "
                  "logs and writable layer."), "requests", "ephemeral-storage"),
    ("KW-W060", "No ephemeral-storage limit", "low", ("nsa", "mitre-T1499"),
     "Set resources.limits.ephemeral-storage (or a LimitRange default) so one container cannot fill the node's "
     "disk; the kubelet evicts a pod that exceeds it.",
     _limit_doc("ephemeral-storage", "Without one a container can fill the node's disk (logs, writable layer, "
                "emptyDir) until the kubelet evicts other pods."), "limits", "ephemeral-storage"),
))
