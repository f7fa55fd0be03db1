"""The stable JSON finding contract (schemaVersion "1", see docs/architecture.md)."""

from __future__ import annotations

from typing import Any

import orjson

from .. import __version__
from ..findings import Report

SCHEMA_VERSION = "1"


def document(report: Report) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "objects": report.objects,
        "findings": len(report.findings),
        "bySeverity": report.by_severity(),
        "suppressed": len(report.suppressed),
        "controls": len(report.controls),
        "scores": report.framework_scores(),
    }
    if report.coverage is not None:
        summary["coverage"] = {"typesRead": report.coverage[0], "typesWanted": report.coverage[1]}
    doc: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "kubeward", "version": __version__},
        "summary": summary,
        "findings": [f.to_json() for f in report.findings],
        "suppressed": [f.to_json() for f in report.suppressed],
        "errors": [e.to_json() for e in report.errors],
        "notAssessed": [n.to_json() for n in report.not_assessed],
        "expiredExceptions": list(report.expired_exceptions),
    }
    return doc


def render(report: Report, **_: Any) -> str:
    return orjson.dumps(document(report), option=orjson.OPT_INDENT_2).decode() + "\n"
