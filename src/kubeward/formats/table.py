"""Human-readable table (placeholder until the rich renderer lands)."""

from __future__ import annotations

from typing import Any

from ..findings import Report


def render(report: Report, **_: Any) -> str:
    lines = [f"{f.severity.label:<8} {f.control.id:<10} {f.object} {f.location} {f.message}" for f in report.findings]
    counts = ", ".join(f"{k} {v}" for k, v in report.by_severity().items())
    lines.append(f"{report.objects} objects, {len(report.findings)} findings ({counts}), {len(report.suppressed)} suppressed")
    return "\n".join(lines) + "\n"
