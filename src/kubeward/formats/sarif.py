"""SARIF 2.1.0: the format code-scanning services (GitHub, Azure DevOps, IDE viewers) ingest.

One run; every control that ran is a rule (so a clean rule still shows as evaluated), every finding a result.
Suppressed findings stay in the log as results carrying `suppressions` (SARIF §3.27.23, §3.35), so viewers show
them as dismissed instead of losing them. Input errors become `toolExecutionNotifications` (SARIF §3.20.21).
Spec: https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/sarif-v2.1.0-errata01-os-complete.html
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any
from urllib.parse import quote

import orjson

from .. import __version__
from ..findings import ControlMeta, Finding, Report, Severity

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"  # GitHub resolves this base against the repository root

# SARIF §3.27.10 result.level: error/warning/note/none. Critical and high break a build, medium warns.
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

# GitHub code scanning reads rule `properties.security-severity` (a number 0.0-10.0, written as a string) and
# buckets it: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low. We pick a value inside each bucket.
# See "SARIF support for code scanning" (docs.github.com, reportingDescriptor object).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}

FINGERPRINT_KEY = "kubewardFinding/v1"
MAX_TAGS = 10


def rule_name(title: str) -> str:
    """SARIF §3.49.7 recommends an identifier-like name; PascalCase of the title ("Privileged container")."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def _rule(meta: ControlMeta) -> dict[str, Any]:
    frameworks = ", ".join(meta.frameworks) or "none"
    help_text = f"{meta.remediation or 'No remediation recorded.'}\n\nFrameworks: {frameworks}"
    help_md = f"**Remediation:** {meta.remediation or 'No remediation recorded.'}\n\n**Frameworks:** {frameworks}"
    return {
        "id": meta.id,
        "name": rule_name(meta.title),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.description or meta.title},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {
            # GitHub keeps only the first 10 tags of a rule (hard limit 20): "security" must be among them.
            "tags": ["security", "kubernetes", meta.category, *meta.frameworks][:MAX_TAGS],
            "security-severity": SECURITY_SEVERITY[meta.severity],
            "precision": "very-high",  # deterministic checks of declared configuration
            "problem.severity": "recommendation" if meta.severity <= Severity.LOW else "error",
        },
    }


def artifact_location(file: str) -> dict[str, Any]:
    """Relative paths resolve against %SRCROOT% (SARIF §3.4.4); absolute ones become file:// URIs."""
    posix = file.replace(os.sep, "/") if os.sep != "/" else file
    if os.path.isabs(file):
        return {"uri": "file://" + quote(posix if posix.startswith("/") else "/" + posix)}
    return {"uri": quote(posix), "uriBaseId": SRCROOT}


def suppression_kind(reason: str) -> str:
    """`inSource` for the object's own kubeward.io/ignore annotation, `external` for an exceptions file (§3.35.2)."""
    return "inSource" if reason.startswith("annotation") else "external"


def fingerprint(f: Finding) -> str:
    """Stable across line moves: control, object identity and JSON pointer, not the line number."""
    o = f.object
    key = "\x1f".join((f.control.id, o.api_version, o.kind, o.namespace or "", o.name, f.path))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _result(f: Finding, index: int) -> dict[str, Any]:
    o = f.object
    logical: dict[str, Any] = {
        "name": o.name,
        "fullyQualifiedName": str(o),
        "kind": "resource",
    }
    location: dict[str, Any] = {"logicalLocations": [logical]}
    loc = f.location
    if loc.file:
        physical: dict[str, Any] = {"artifactLocation": artifact_location(loc.file)}
        if loc.line:
            physical["region"] = {"startLine": loc.line}
        location["physicalLocation"] = physical
    props: dict[str, Any] = {"object": o.to_json(), "path": f.path, "severity": f.severity.label}
    if loc.cluster:
        props["cluster"] = loc.cluster
    if f.risk is not None:
        props["risk"] = f.risk.to_json()
    result: dict[str, Any] = {
        "ruleId": f.control.id,
        "ruleIndex": index,
        "kind": "fail",
        "level": LEVELS[f.severity],
        "message": {"text": f"{o}: {f.message}"},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f)},
        "properties": props,
    }
    if f.suppressed_by is not None:
        result["suppressions"] = [
            {"kind": suppression_kind(f.suppressed_by), "status": "accepted", "justification": f.suppressed_by}
        ]
    return result


def _notification(text: str, level: str, file: str | None = None) -> dict[str, Any]:
    n: dict[str, Any] = {"level": level, "message": {"text": text}}
    if file and file != "-":
        n["locations"] = [{"physicalLocation": {"artifactLocation": artifact_location(file)}}]
    return n


def document(report: Report) -> dict[str, Any]:
    metas: dict[str, ControlMeta] = {cid: res.meta for cid, res in report.controls.items()}
    for f in (*report.findings, *report.suppressed):  # hand-built reports may omit report.controls
        metas.setdefault(f.control.id, f.control)
    ids = sorted(metas)
    index = {cid: i for i, cid in enumerate(ids)}
    results = [_result(f, index[f.control.id]) for f in (*report.findings, *report.suppressed)]

    notifications = [_notification(e.message, "error", e.file) for e in report.errors]
    notifications += [_notification(f"not assessed: {n.what}: {n.reason}", "warning") for n in report.not_assessed]
    notifications += [_notification(f"skipped: {e.message}", "note", e.file) for e in report.skipped]
    invocation: dict[str, Any] = {
        # The scan succeeded when it judged something; errors on single files are notifications, not failure.
        "executionSuccessful": report.objects > 0 or not report.errors,
        "toolExecutionNotifications": notifications,
    }
    if report.expired_exceptions or report.exception_notes:
        invocation["toolConfigurationNotifications"] = [
            _notification(f"expired exception no longer applies: {e}", "warning") for e in report.expired_exceptions
        ] + [_notification(f"exception note: {n}", "warning") for n in report.exception_notes]
    run_props: dict[str, Any] = {
        "objects": report.objects,
        "skipped": len(report.skipped),
        "bySeverity": report.by_severity(),
        "frameworkScores": report.framework_scores(),
    }
    if report.coverage is not None:
        run_props["coverage"] = {"typesRead": report.coverage[0], "typesWanted": report.coverage[1]}
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kubeward",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(metas[cid]) for cid in ids],
                    }
                },
                "invocations": [invocation],
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": run_props,
            }
        ],
    }


def render(report: Report, **_: Any) -> str:
    return orjson.dumps(document(report), option=orjson.OPT_INDENT_2).decode() + "\n"
