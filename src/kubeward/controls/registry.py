"""The control registry: one function per check plus its metadata, selection and the run loop.

Three shapes of control, so each check is written at its natural grain:
- `pod`: receives a PodView (Pods and every workload's pod template, unwrapped once per object);
- `object`: receives a Resource of the listed kinds;
- `snapshot`: receives the Snapshot and yields (resource, path, message), for cross-object checks.
A control yields (path, message) pairs; the runner turns them into Findings with locations.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..findings import ControlMeta, ControlResult, Finding, ObjectRef, Report, Severity, framework_family
from ..resource import POD_KINDS, Resource
from ..snapshot import Snapshot

Hit = tuple[str, str]  # (JSON pointer, message)

# Modules that register controls; imported on first use so `kubeward --help` stays fast.
CONTROL_MODULES = (
    "kubeward.controls.workload",
    "kubeward.controls.network",
    "kubeward.controls.rbac",
    "kubeward.controls.secrets",
    "kubeward.controls.pss",
    "kubeward.controls.rbac_engine",
    "kubeward.controls.netpol",
)


@dataclass(slots=True)
class Control:
    meta: ControlMeta
    shape: str  # "pod" | "object" | "snapshot"
    func: Callable[..., Iterable[Any]]
    kinds: frozenset[str]


_REGISTRY: dict[str, Control] = {}
_loaded = False


def control(
    id: str,
    title: str,
    severity: str,
    category: str,
    *,
    frameworks: Iterable[str] = (),
    remediation: str = "",
    description: str = "",
    shape: str = "pod",
    kinds: Iterable[str] | None = None,
) -> Callable[[Callable[..., Iterable[Any]]], Callable[..., Iterable[Any]]]:
    """Register a check. `kinds` defaults to every pod-carrying kind for pod controls."""
    if shape not in ("pod", "object", "snapshot"):
        raise ValueError(f"unknown control shape {shape!r}")
    meta = ControlMeta(
        id=id,
        title=title,
        severity=Severity.parse(severity),
        category=category,
        frameworks=tuple(frameworks),
        remediation=remediation,
        description=description,
    )
    kind_set = frozenset(kinds) if kinds is not None else (POD_KINDS if shape == "pod" else frozenset())

    def register(func: Callable[..., Iterable[Any]]) -> Callable[..., Iterable[Any]]:
        if id in _REGISTRY:
            raise ValueError(f"duplicate control id {id}")
        _REGISTRY[id] = Control(meta, shape, func, kind_set)
        return func

    return register


def all_controls() -> dict[str, Control]:
    global _loaded
    if not _loaded:
        for mod in CONTROL_MODULES:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:  # a real import error inside the module must surface
                    raise
        _loaded = True
    return dict(sorted(_REGISTRY.items()))


class SelectionError(ValueError):
    """Bad control selection from the user (unknown id, unknown framework): exit 2."""


@dataclass(slots=True)
class Selection:
    frameworks: tuple[str, ...] = ("all",)
    min_severity: Severity = Severity.INFO
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_namespaces: frozenset[str] = field(default_factory=frozenset)

    def choose(self, controls: dict[str, Control]) -> list[Control]:
        unknown = [c for c in (*self.include, *self.exclude) if c not in controls]
        if unknown:
            raise SelectionError(f"unknown control id(s): {', '.join(unknown)} (see `kubeward controls`)")
        known_fw = {framework_family(f) for c in controls.values() for f in c.meta.frameworks}
        known_fw |= {f for c in controls.values() for f in c.meta.frameworks}
        bad_fw = [f for f in self.frameworks if f != "all" and f not in known_fw]
        if bad_fw:
            raise SelectionError(f"unknown framework(s): {', '.join(bad_fw)}")
        chosen = []
        for cid, c in controls.items():
            if self.include and cid not in self.include:
                continue
            if cid in self.exclude or c.meta.severity < self.min_severity:
                continue
            if not self.include and not any(c.meta.in_framework(f) for f in self.frameworks):
                continue
            chosen.append(c)
        return chosen


def run(snapshot: Snapshot, controls: list[Control], exceptions: Any = None, exclude_namespaces: Iterable[str] = ()) -> Report:
    """Run the chosen controls over the snapshot; exceptions decide what is suppressed (counted, not dropped)."""
    skip_ns = frozenset(exclude_namespaces)
    report = Report(objects=len(snapshot), findings=[], errors=list(snapshot.errors), not_assessed=list(snapshot.not_assessed))
    # Controls with the same kinds share one target list and one list of refs (most pod controls: POD_KINDS).
    targets_for: dict[frozenset[str], tuple[list[Resource], list[ObjectRef]]] = {}
    findings, suppressed = report.findings, report.suppressed
    for c in controls:
        shared = targets_for.get(c.kinds)
        if shared is None:
            targets = [r for k in sorted(c.kinds) for r in snapshot.of_kind(k) if not skip_ns or r.namespace not in skip_ns]
            shared = targets_for[c.kinds] = (targets, [r.ref() for r in targets])
        targets, refs = shared
        meta = c.meta
        result = report.controls[meta.id] = ControlResult(meta, evaluated=len(targets))
        report.evaluated_objects[meta.id] = refs
        failed: set[int] = set()
        for res, path, message in _hits(c, snapshot, targets):
            if skip_ns and res.namespace in skip_ns:
                continue
            finding = Finding(meta, res.ref(), res.location(path), path, message)
            reason = exceptions.reason_for(finding, res) if exceptions is not None else None
            if reason is not None:
                finding.suppressed_by = reason
                suppressed.append(finding)
            else:
                findings.append(finding)
                failed.add(id(res))
        result.failed = len(failed)
    if exceptions is not None:
        report.expired_exceptions = list(exceptions.expired)
    findings.sort(key=_finding_order)
    return report


def _finding_order(f: Finding) -> tuple[int, str, str, int, str]:
    loc = f.location
    return (-f.control.severity, f.control.id, loc.file or "", loc.line or 0, f.path)


def _hits(c: Control, snapshot: Snapshot, targets: list[Resource]) -> Iterator[tuple[Resource, str, str]]:
    if c.shape == "snapshot":
        yield from c.func(snapshot)
        return
    func = c.func
    if c.shape == "pod":
        for res in targets:
            pod = res.pod()
            if pod is not None:
                for path, message in func(pod):
                    yield res, path, message
    else:
        for res in targets:
            for path, message in func(res):
                yield res, path, message
