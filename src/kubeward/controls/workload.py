"""Workload hardening controls (NSA-CISA hardening guide, CIS Kubernetes Benchmark section 5)."""

from __future__ import annotations

from collections.abc import Iterator

from ..resource import PodView
from .registry import Hit, control


@control(
    "KW-W001", "Privileged container", "critical", "workload",
    frameworks=("nsa", "cis-5.2.2", "mitre-T1611", "pss-baseline"),
    remediation="Remove securityContext.privileged or set it to false.",
)
def privileged(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in pod.containers():
        sc = c.get("securityContext")
        if isinstance(sc, dict) and sc.get("privileged") is True:
            yield f"{path}/securityContext/privileged", f'container "{c.get("name")}" runs privileged'
