"""Shared helpers of the workload controls: container walks, securityContext precedence and the PSS
engine's facts (engines/pss/facts.py) turned into hits with JSON pointers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ...engines.pss.baseline import (
    capabilities,
)
from ...resource import PodView
from ..pss import pss_hits, pss_input
from ..registry import Hit, control

# ---------------------------------------------------------------------------------------------- helpers


# Read-only stand-in for an absent or wrong-typed mapping: the checks only read, so one shared instance serves
# the ~700k lookups of a large scan without allocating a dict each time.
_EMPTY: dict[str, Any] = {}


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _name(c: dict[str, Any]) -> str:
    return str(c.get("name", "?"))


# (container, JSON pointer, field) for init, regular and ephemeral containers, built once per pod by PodView.
_containers = PodView.containers


def _psc(pod: PodView) -> dict[str, Any]:
    sc = pod.spec.get("securityContext")
    return sc if isinstance(sc, dict) else _EMPTY


def _deepest(base: str, node: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The JSON pointer of the field, or of its deepest present parent when it is missing."""
    path = base
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return path
        path = f"{path}/{k}"
        node = node[k]
    return path


def _effective(pod: PodView, c: dict[str, Any], key: str) -> Any:
    """A securityContext field with container-over-pod precedence (None when neither sets it)."""
    sc = c.get("securityContext")
    if isinstance(sc, dict) and (value := sc.get(key)) is not None:
        return value
    psc = pod.spec.get("securityContext")
    if isinstance(psc, dict) and (value := psc.get(key)) is not None:
        return value
    return None


def _effective_at(pod: PodView, c: dict[str, Any], cpath: str, key: str) -> str:
    """The pointer to where `_effective` found the field (or to its deepest present parent): built only for a
    finding, as most containers yield none."""
    if _d(c.get("securityContext")).get(key) is not None:
        return f"{cpath}/securityContext/{key}"
    if _effective(pod, c, key) is not None:  # not the container's: the pod's
        return f"{pod.spec_path}/securityContext/{key}"
    return _deepest(cpath, c, ("securityContext", key))


def _user_namespaced(pod: PodView) -> bool:
    # hostUsers: false runs the pod in a user namespace; uid 0 inside maps to an unprivileged host uid
    # (KEP-127; the PSS engine's predicate, pod-security-admission policy/helpers.go).
    return pss_input(pod).user_namespace


def _windows(pod: PodView) -> bool:
    # spec.os.name: windows exempts Linux-only fields (the PSS engine's predicate, 1.25 Windows exemptions)
    return pss_input(pod).windows


def _norm_cap(cap: Any) -> str:
    # the container runtimes (containerd, CRI-O) upper-case capability names and add the CAP_ prefix if missing
    text = str(cap).upper()
    return text[4:] if text.startswith("CAP_") else text


# capabilities.add/drop as the PSS checks read them (Go strings)
_caps = capabilities

RUNNABLE = ("initContainers", "containers")  # ephemeral containers may not set resources or probes


def pss_control(check_id: str, beyond: str | None = None) -> Callable[[PodView], Iterator[Hit]]:
    """A workload control function reporting a PSS check's faults (controls.pss.pss_hits)."""
    def check(pod: PodView) -> Iterator[Hit]:
        return pss_hits(check_id, pod, beyond)
    check.__name__ = f"pss_{check_id}"
    check.__doc__ = f"The PSS check {check_id} at the latest version (policy/check_{check_id}.go)."
    return check


def family(make: Callable[..., Callable[[PodView], Iterator[Hit]]], rows: Iterable[tuple[Any, ...]],
           **options: Any) -> None:
    """Register one workload control per row (id, title, severity, frameworks, remediation, description,
    *arguments of `make`): controls that differ only in what they look for are one function and a table, not one
    copy each. The shared function has no docstring of its own to describe each row, so each row carries its
    description (what it checks, why, the upstream reference)."""
    for cid, title, severity, frameworks, remediation, description, *args in rows:
        control(cid, title, severity, "workload", frameworks=frameworks, remediation=remediation,
                description=description, **options)(make(*args))


__all__ = ["RUNNABLE", "family", "pss_control", "pss_hits", "pss_input"]
