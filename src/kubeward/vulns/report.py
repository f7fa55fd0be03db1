"""Findings for the component versions found: one per (CVE, object), plus the data's own date (always) and its
age (a finding when older than STALE_DAYS), through the normal Report so every format, exception and exit code
works as for a scan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..findings import (
    ControlMeta,
    ControlResult,
    Finding,
    InputError,
    Location,
    NotAssessed,
    ObjectRef,
    Report,
    Severity,
)
from ..resource import Resource
from .components import Found
from .cvss import CVSSError, base_score, severity
from .feed import STALE_DAYS, Feed
from .images import ImageReport
from .osv import Affected, Record
from .risk import RiskContext
from .update import Official

DATA_DATE = ControlMeta(
    "KW-V000", "Vulnerability data used", Severity.INFO, "vulns",
    remediation="Nothing to do: says which snapshot of the Kubernetes CVE feed judged the versions.",
    description="Every vulns report names its data and the data's date.")
DATA_STALE = ControlMeta(
    "KW-V001", "Vulnerability data is older than 90 days", Severity.MEDIUM, "vulns",
    remediation="Use a kubeward release with newer vulnerability data; CVEs published after the snapshot's "
                "date are not in this report.",
    description="An old snapshot misses the newest CVEs, so a clean report from it is not a clean bill.")
UNRANGED = ControlMeta(
    "KW-V002", "CVE in the official feed without version data", Severity.MEDIUM, "vulns",
    remediation="Read the CVE's announcement and check the versions you run by hand; update the OSV data "
                "(kubeward vulns update --from …) when it has the record.",
    description="The official Kubernetes CVE feed lists the CVE but the OSV data has no record (no version "
                "ranges): whether it affects these versions is not judged, and said rather than skipped.")
OFFICIAL_REF = ObjectRef("kubeward.io/v1", "VulnerabilityData", None, "official-cve-feed")
DATA_REF = ObjectRef("kubeward.io/v1", "VulnerabilityData", None, "k8s-cve-feed-osv")


@dataclass(slots=True)
class _Hit:
    record: Record
    found: Found
    entries: list[Affected] = field(default_factory=list)


def cve_control(record: Record, entry: Affected) -> ControlMeta:
    try:
        score = base_score(entry.cvss_v3) if entry.cvss_v3 else None
    except CVSSError:
        score = None
    sev = severity(score) if score is not None else Severity.MEDIUM  # unscored: neither hidden nor inflated
    scored = f"CVSS v3 {score} ({entry.cvss_v3})" if score is not None else "no CVSS v3 score in the record"
    refs = "; ".join(record.references[:3])
    return ControlMeta(record.id, record.summary or record.id, sev, "vulns", (),
                       remediation="Upgrade the component to a fixed release.",
                       description=f"{scored}. {refs}".strip())


def build(feed: Feed, found: Iterable[Found], not_assessed: Iterable[NotAssessed] = (),
          errors: Iterable[InputError] = (), today: dt.date | None = None, rank: RiskContext | None = None,
          official: Official | None = None, *, dated: bool = True) -> Report:
    """`rank`: attach each CVE finding's risk where the component runs (vulns/risk.py); `official`: the official
    feed's CVE list, whose CVEs the OSV data lacks are each a KW-V002 finding. `dated`: the data findings say
    their age on `today` (not for the monitor, whose findings must not change with the date alone: it exports
    the age as a gauge)."""
    today = today or dt.date.today()
    found = list(found)
    hits: dict[tuple[str, ObjectRef, str, str], _Hit] = {}
    for f in found:
        for record in feed.records:
            for entry in record.affected:
                if entry.package in f.packages and entry.includes(f.version):
                    key = (record.id, f.object, f.path, f.component)
                    hits.setdefault(key, _Hit(record, f)).entries.append(entry)
    findings: list[Finding] = []
    controls: dict[str, ControlResult] = {}
    age = feed.age_days(today)
    data_loc = Location()
    findings.append(Finding(DATA_DATE, DATA_REF, data_loc, "/date",
                            f"{feed.describe()}" + (f"; {age} days old on {today.isoformat()}" if dated else "")))
    controls[DATA_DATE.id] = ControlResult(DATA_DATE, 1, 1)
    stale = age > STALE_DAYS
    if stale:
        when = f"{age} days before {today.isoformat()}" if dated else "older than that"
        findings.append(Finding(DATA_STALE, DATA_REF, data_loc, "/date",
                                f"the snapshot is dated {feed.date.isoformat()}, {when} (more than {STALE_DAYS}): "
                                "newer CVEs are not in this report"))
    controls[DATA_STALE.id] = ControlResult(DATA_STALE, 1, int(stale))
    if official is not None:
        known = {r.id for r in feed.records} | {a for r in feed.records for a in r.aliases}
        missing = [(i, s, u) for i, s, u in official.items if i not in known]
        findings[0].message += f"; official CVE list: {official.describe()}"
        for cve, summary, url in missing:
            findings.append(Finding(UNRANGED, OFFICIAL_REF, data_loc, f"/items/{cve}",
                                    f"{cve}: {summary or 'no summary'} ({url or 'no URL'}) is in the official feed "
                                    f"({official.describe()}) but not in the OSV data: not judged"))
        controls[UNRANGED.id] = ControlResult(UNRANGED, len(official.items), len(missing))
    for (_rid, _obj, _path, component), hit in sorted(hits.items(), key=lambda kv: (kv[0][0], str(kv[0][1]),
                                                                                     kv[0][2], kv[0][3])):
        entry = hit.entries[0]
        meta = cve_control(hit.record, entry)
        fixes = sorted({v for e in hit.entries for v in e.fixed_versions(hit.found.version)}, key=lambda v: v.key)
        fix = (f"fixed in {fixes[0]}" + (f" (also {', '.join(str(v) for v in fixes[1:])})" if fixes[1:] else "")
               if fixes else "no fixed release in the record")
        packages = ", ".join(sorted({e.package for e in hit.entries}))
        note = f"; {hit.found.note}" if hit.found.note else ""
        msg = (f"{component} {hit.found.text} ({hit.found.how}) is affected ({packages}): {fix}{note}")
        finding = Finding(meta, hit.found.object, hit.found.location, hit.found.path, msg)
        if rank is not None:
            finding.risk = rank.risk(meta.severity, bool(fixes), rank.resource_of(hit.found.object),
                                     _not_a_workload(hit.found))
        findings.append(finding)
        res = controls.setdefault(meta.id, ControlResult(meta))
        res.evaluated += 1
        res.failed += 1
    return Report(objects=len({(f.object, f.path, f.component) for f in found}), findings=findings,
                  errors=list(errors), not_assessed=list(not_assessed), controls=controls)


def _not_a_workload(f: Found) -> str:
    if f.object.kind == "Node":
        return "the kubelet of a Node (a host component)"
    if f.object.kind == "KubernetesRelease":
        return f"a release named by {f.how}, not a workload"
    return ""


def add_images(report: Report, resources: Sequence[Resource], reports: Sequence[ImageReport],
               rank: RiskContext | None) -> list[str]:
    """The image reports' findings on the workloads that run each image, added to `report` with their counts (a
    VEX not_affected/resolved/false_positive one as suppressed); the names of the reports no workload runs."""
    from .images import container_images, image_findings, runs

    hits = list(image_findings(resources, list(reports), rank))
    report.findings += [f for f in hits if f.suppressed_by is None]
    report.suppressed += [f for f in hits if f.suppressed_by is not None]
    for f in hits:
        res = report.controls.setdefault(f.control.id, ControlResult(f.control))
        res.evaluated, res.failed = res.evaluated + 1, res.failed + (f.suppressed_by is None)
    running = container_images(resources)
    return [r.name for r in reports if not any(runs(image, r) for image in running)]


def rank_order(report: Report, min_risk: int) -> int:
    """Ranked findings highest risk first (the data findings lead, ties keep their order); those below
    `min_risk` left out and uncounted. Returns how many were left out."""
    below = [f for f in report.findings if f.risk is not None and f.risk.score < min_risk]
    if below:
        report.findings = [f for f in report.findings if f.risk is None or f.risk.score >= min_risk]
        for f in below:
            res = report.controls.get(f.control.id)
            if res is not None:
                res.evaluated, res.failed = res.evaluated - 1, res.failed - 1
        report.controls = {k: v for k, v in report.controls.items() if v.evaluated > 0 or k.startswith("KW-")}
    report.findings.sort(key=lambda f: -99 if f.risk is None else -f.risk.score)
    return len(below)
