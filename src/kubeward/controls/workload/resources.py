"""CPU, memory and ephemeral-storage requests and limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...resource import PodView
from ..registry import Hit, control
from .common import (
    RUNNABLE,
    _containers,
    _d,
    _deepest,
    _name,
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


control(
    "KW-W036", "No memory limit", "medium", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Set resources.limits.memory on every container (or a namespace LimitRange default).",
)(_resource_check("limits", "memory"))
control(
    "KW-W037", "No CPU limit", "low", "workload",
    frameworks=("nsa", "mitre-T1496"),
    remediation="Set resources.limits.cpu on every container (or a namespace LimitRange default).",
)(_resource_check("limits", "cpu"))
control(
    "KW-W038", "No memory request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.memory so the scheduler can place the pod and evictions are predictable.",
)(_resource_check("requests", "memory"))
control(
    "KW-W039", "No CPU request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.cpu so the scheduler can place the pod fairly.",
)(_resource_check("requests", "cpu"))

control(
    "KW-W059", "No ephemeral-storage request", "low", "workload",
    frameworks=("nsa",),
    remediation="Set resources.requests.ephemeral-storage so the scheduler counts the container's scratch space "
    "and logs.",
)(_resource_check("requests", "ephemeral-storage"))
control(
    "KW-W060", "No ephemeral-storage limit", "low", "workload",
    frameworks=("nsa", "mitre-T1499"),
    remediation="Set resources.limits.ephemeral-storage (or a LimitRange default) so one container cannot fill the "
    "node's disk; the kubelet evicts a pod that exceeds it.",
)(_resource_check("limits", "ephemeral-storage"))
