"""The node checks' run loop: each chosen check over one NodeConfig, a check whose component or file is absent
reported as not assessed (never passed)."""

from __future__ import annotations

from ...findings import ControlResult, Finding, NotAssessed, Report
from ...sources.files import display_path
from ...sources.node import NodeConfig
from ..registry import Control, Shape, registered
from .base import CONTROL_PLANE, LIVE_ONLY, OFFLINE, K, NotRead


def node_checks() -> dict[str, Control]:
    """Every registered node check, by id (the pool `node check` selects from)."""
    return registered(Shape.NODE)  # this package registers them all on import


def needs(c: Control) -> str:
    """The component a node check reads ("" when it reads only files)."""
    return next(iter(c.kinds), "")


def run(cfg: NodeConfig, controls: list[Control] | None = None) -> Report:
    """Judge the node with `controls` (default: every node check)."""
    chosen = list(node_checks().values()) if controls is None else controls
    report = Report(objects=len(cfg.components) + (1 if cfg.kubelet else 0), findings=[], errors=list(cfg.errors))
    for ctl in chosen:
        res = report.controls.setdefault(ctl.meta.id, ControlResult(ctl.meta))
        if ctl.meta.id in LIVE_ONLY and not cfg.live:
            report.not_assessed.append(NotAssessed(ctl.meta.id, OFFLINE + LIVE_ONLY[ctl.meta.id]))
            continue
        need = needs(ctl)
        if need == K and cfg.kubelet is None:
            continue
        if need and need != K and need not in cfg.components:
            continue
        try:
            hits = list(ctl.func(cfg))
        except NotRead as exc:
            report.not_assessed.append(NotAssessed(ctl.meta.id, exc.reason))
            continue
        res.evaluated += 1
        res.failed += 1 if hits else 0
        report.findings += [Finding(ctl.meta, ref, loc, path, msg) for ref, loc, path, msg in hits]
    missing = [c for c in CONTROL_PLANE if c not in cfg.components]
    where = display_path(str(cfg.manifests_dir))
    for c in missing:  # none at all: a worker node, one reason for every control-plane check
        if cfg.live:
            why = "no control-plane component running" if len(missing) == len(CONTROL_PLANE) else "not running"
            report.not_assessed.append(NotAssessed(c, f"{why} on this node (or not chosen with --pid)"))
            continue
        why = "no control-plane static-pod manifests" if len(missing) == len(CONTROL_PLANE) else "no static-pod manifest"
        report.not_assessed.append(NotAssessed(c, f"{why} in {where}"))
    if cfg.kubelet is None:
        why = ("no kubelet process running (or not chosen with --pid)" if cfg.kubelet_process is None
               else "the configuration the kubelet names could not be read") if cfg.live else "no KubeletConfiguration file"
        report.not_assessed.append(NotAssessed("kubelet", why))
    report.findings.sort(key=lambda f: (-f.severity, f.control.id))
    return report


def live_only() -> frozenset[str]:
    """Ids of the checks only a running node answers (MANUAL when reading files)."""
    return frozenset(LIVE_ONLY)
