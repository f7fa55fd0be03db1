"""`kubeward versions`: what runs where (one info finding per component version found) and the version skew
policy between them (vulns/skew.py), through the normal Report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..findings import ControlMeta, ControlResult, Finding, InputError, NotAssessed, Report, Severity
from .components import Found
from .skew import SKEW_CONTROLS, skew_findings
from .support import SUPPORT_CONTROLS, TABLE_DATE, TABLE_STALE, support_findings

VERSION_FOUND = ControlMeta("KW-V100", "Component version", Severity.INFO, "versions",
                            remediation="Nothing to do: an inventory line.",
                            description="A Kubernetes component and the version it runs, and where that was read.")


def build_versions(found: Iterable[Found], not_assessed: Iterable[NotAssessed] = (),
                   errors: Iterable[InputError] = (), today: dt.date | None = None) -> Report:
    """The inventory, the skew policy's rules and each Kubernetes minor's support window on `today`."""
    found = list(found)
    support = list(support_findings(found, today or dt.date.today()))
    inventory = [Finding(VERSION_FOUND, f.object, f.location, f.path,
                         f"{f.component} {f.text} ({f.how})" + (f"; {f.note}" if f.note else "")) for f in found]
    skew = list(skew_findings(found))
    controls = {VERSION_FOUND.id: ControlResult(VERSION_FOUND, len(found), len(found))}
    judged = len({(f.object, f.path, f.component) for f in found})
    for meta in SKEW_CONTROLS:
        controls[meta.id] = ControlResult(meta, judged, sum(1 for x in skew if x.control is meta))
    windows = sum(1 for x in support if x.control not in (TABLE_DATE, TABLE_STALE))
    for meta in SUPPORT_CONTROLS:
        evaluated = 1 if meta in (TABLE_DATE, TABLE_STALE) else windows
        controls[meta.id] = ControlResult(meta, evaluated, sum(1 for x in support if x.control is meta))
    return Report(objects=judged, findings=[*skew, *support, *inventory], errors=list(errors), not_assessed=list(not_assessed),
                  controls=controls)
