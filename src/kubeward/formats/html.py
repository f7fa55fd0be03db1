"""A single self-contained HTML report: summary, SVG charts, filterable findings, suppressed, not assessed, errors.

Self-contained means no external URL at all (no CDN, fonts or images): CSS, SVG and the small filter script are
inline, and a Content-Security-Policy forbids the page from loading anything, so the file can be mailed,
archived as a CI artifact or opened offline. Finding text quotes user manifests, so the template is rendered with
autoescaping on and no value is ever marked safe.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..findings import ControlMeta, Finding, Report, Severity

TEMPLATES = Path(__file__).resolve().parent / "templates"

SEVERITY_COLOURS = {
    Severity.CRITICAL: "#b42318",
    Severity.HIGH: "#e8590c",
    Severity.MEDIUM: "#d4a017",
    Severity.LOW: "#1f6feb",
    Severity.INFO: "#8a94a6",
}

# Browsers handle a few thousand table rows well and tens of megabytes badly: large reports keep every count and
# chart exact but list at most this many findings per control (the JSON and SARIF formats carry them all).
CAP_ABOVE = 5000
CAPPED_ROWS = 500
SUPPRESSED_CAP = 2000
VULNS_CAP = 500  # ranked vulnerability rows listed (the top of the ranking; every one stays under its control)

DONUT_R = 54.0
DONUT_C = 2 * math.pi * DONUT_R


@dataclass(frozen=True, slots=True)
class Slice:
    label: str
    count: int
    colour: str
    dash: float  # stroke length of this slice on the donut ring
    offset: float  # where it starts (negative dash offset)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    score: float
    colour: str


@dataclass(slots=True)
class ControlGroup:
    meta: ControlMeta
    findings: list[Finding]  # the ones listed (all, unless the report is capped)
    evaluated: int | None
    total: int  # every finding of this control
    failed_objects: int

    @property
    def more(self) -> int:
        return self.total - len(self.findings)


def severity_slices(report: Report) -> list[Slice]:
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    total = sum(counts.values())
    slices: list[Slice] = []
    start = 0.0
    for sev in sorted(Severity, reverse=True):
        n = counts[sev]
        dash = DONUT_C * n / total if total else 0.0
        slices.append(Slice(sev.label, n, SEVERITY_COLOURS[sev], round(dash, 3), round(-start, 3)))
        start += dash
    return slices


def score_colour(score: float) -> str:
    return "#2f9e44" if score >= 80 else "#d4a017" if score >= 50 else "#b42318"


def framework_bars(report: Report) -> list[Bar]:
    return [Bar(fw, score, score_colour(score)) for fw, score in report.framework_scores().items()]


def ranked_vulns(report: Report) -> list[Finding]:
    """The vulnerability findings with a risk rank, highest first (ties: severity, then id)."""
    ranked = [f for f in report.findings if f.risk is not None]
    ranked.sort(key=lambda f: (-f.risk.score if f.risk else 0, -f.severity, f.control.id))
    return ranked


def control_groups(report: Report, max_rows: int | None = None) -> list[ControlGroup]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    metas: dict[str, ControlMeta] = {}
    for f in report.findings:
        grouped[f.control.id].append(f)
        metas[f.control.id] = f.control
    groups = []
    for cid in sorted(grouped, key=lambda c: (-metas[c].severity, c)):
        res = report.controls.get(cid)
        found = grouped[cid]
        listed = found if max_rows is None else found[:max_rows]
        failed = len({f.object for f in found})
        groups.append(ControlGroup(metas[cid], listed, res.evaluated if res else None, len(found), failed))
    return groups


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every .j2 here is HTML; escape all values, including in attributes
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(report: Report, *, title: str = "kubeward report", max_rows: int | None = None, **_: Any) -> str:
    if max_rows is None and len(report.findings) > CAP_ABOVE:
        max_rows = CAPPED_ROWS
    counts = report.by_severity()
    counts["info"] = sum(1 for f in report.findings if f.severity == Severity.INFO)
    groups = control_groups(report, max_rows)
    vulns = ranked_vulns(report)
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        version=__version__,
        report=report,
        counts=counts,
        severities=[s.label for s in sorted(Severity, reverse=True)],
        colours={s.label: SEVERITY_COLOURS[s] for s in Severity},
        slices=severity_slices(report),
        donut_r=DONUT_R,
        donut_c=round(DONUT_C, 3),
        bars=framework_bars(report),
        groups=groups,
        listed=sum(len(g.findings) for g in groups),
        suppressed=report.suppressed[:SUPPRESSED_CAP],
        vulns=vulns[:VULNS_CAP],
        vulns_total=len(vulns),
    )
