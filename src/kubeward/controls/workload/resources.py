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


family(_resource_check, (
    ("KW-W036", "No memory limit", "medium", ("nsa", "mitre-T1499"),
     "Set resources.limits.memory on every container (or a namespace LimitRange default).", "limits", "memory"),
    ("KW-W037", "No CPU limit", "low", ("nsa", "mitre-T1496"),
     "Set resources.limits.cpu on every container (or a namespace LimitRange default).", "limits", "cpu"),
    ("KW-W038", "No memory request", "low", ("nsa",),
     "Set resources.requests.memory so the scheduler can place the pod and evictions are predictable.",
     "requests", "memory"),
    ("KW-W039", "No CPU request", "low", ("nsa",),
     "Set resources.requests.cpu so the scheduler can place the pod fairly.", "requests", "cpu"),
    ("KW-W059", "No ephemeral-storage request", "low", ("nsa",),
     "Set resources.requests.ephemeral-storage so the scheduler counts the container's scratch space and logs.",
     "requests", "ephemeral-storage"),
    ("KW-W060", "No ephemeral-storage limit", "low", ("nsa", "mitre-T1499"),
     "Set resources.limits.ephemeral-storage (or a LimitRange default) so one container cannot fill the node's "
     "disk; the kubelet evicts a pod that exceeds it.", "limits", "ephemeral-storage"),
))
