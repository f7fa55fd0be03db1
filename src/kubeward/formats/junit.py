"""JUnit XML: how CI systems (GitLab, Jenkins, Azure DevOps, GitHub test reporters) display pass/fail per check.

One <testsuite> per control, one <testcase> per object that control judged: it fails when the object has active
findings for the control, is skipped when all its findings were suppressed (the reason is the skip message), and
passes otherwise. Input errors are their own suite of errored testcases, so a CI view never shows a file that
could not be read as green. Follows the de-facto schema Jenkins and pytest use (testsuites/testsuite/testcase with
failure/error/skipped children and tests/failures/errors/skipped counts).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from ..findings import ControlMeta, Finding, ObjectRef, Report

# XML 1.0 §2.2 Char: tab, LF, CR and U+0020 upward, minus surrogates and U+FFFE/U+FFFF. Finding messages quote
# user manifests, so anything else is replaced rather than producing a file no parser accepts.
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_safe(str(v)) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = xml_safe(text)
    return el


def _suite(root: ET.Element, name: str, **attrs: Any) -> ET.Element:
    return _el(root, "testsuite", name=name, **attrs)


def _close(suite: ET.Element) -> tuple[int, int, int, int]:
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    for key, val in (("tests", len(cases)), ("failures", failures), ("errors", errors), ("skipped", skipped)):
        suite.set(key, str(val))
    suite.set("time", "0")
    return len(cases), failures, errors, skipped


def _detail(f: Finding) -> str:
    where = str(f.location) or "-"
    return f"{where} {f.path or '/'}: {f.message}"


def _control_suite(root: ET.Element, meta: ControlMeta, objects: list[ObjectRef],
                   active: dict[ObjectRef, list[Finding]], suppressed: dict[ObjectRef, list[Finding]]) -> None:
    suite = _suite(root, f"{meta.id} {meta.title}")
    props = _el(suite, "properties")
    _el(props, "property", name="severity", value=meta.severity.label)
    _el(props, "property", name="category", value=meta.category)
    _el(props, "property", name="frameworks", value=",".join(meta.frameworks))
    seen: set[ObjectRef] = set()
    judged = set(objects)
    # Objects the control judged, then any object it reported on without listing (cross-object controls).
    ordered = [*objects, *(o for o in (*active, *suppressed) if o not in judged)]
    for obj in ordered:
        if obj in seen:
            continue
        seen.add(obj)
        found = active.get(obj, [])
        silenced = suppressed.get(obj, [])
        first: Finding | None = (found or silenced)[0] if (found or silenced) else None
        file = first.location.file if first is not None else None
        line = first.location.line if first is not None else None
        case = _el(suite, "testcase", name=str(obj), classname=f"kubeward.{meta.id}", file=file, line=line, time="0")
        if found:
            more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
            body = "\n".join(_detail(f) for f in found)
            if meta.remediation:
                body += f"\n\nRemediation: {meta.remediation}"
            _el(case, "failure", body, message=f"{found[0].message}{more}", type=meta.severity.label)
        elif silenced:
            reasons = sorted({f.suppressed_by or "" for f in silenced})
            _el(case, "skipped", message="suppressed: " + "; ".join(reasons))
    _close(suite)


def document(report: Report) -> ET.Element:
    root = ET.Element("testsuites", {"name": "kubeward"})
    metas: dict[str, ControlMeta] = {cid: res.meta for cid, res in report.controls.items()}
    active: dict[str, dict[ObjectRef, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    silenced: dict[str, dict[ObjectRef, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in report.findings:
        metas.setdefault(f.control.id, f.control)
        active[f.control.id][f.object].append(f)
    for f in report.suppressed:
        metas.setdefault(f.control.id, f.control)
        silenced[f.control.id][f.object].append(f)
    for cid in sorted(metas, key=lambda c: (-metas[c].severity, c)):
        _control_suite(root, metas[cid], report.evaluated_objects.get(cid, []), active[cid], silenced[cid])

    if report.errors:
        suite = _suite(root, "input errors")
        for e in report.errors:
            case = _el(suite, "testcase", name=e.file, classname="kubeward.input", file=e.file, time="0")
            _el(case, "error", str(e), message=e.message, type="InputError")
        _close(suite)
    if report.skipped:
        suite = _suite(root, "not Kubernetes objects")
        for e in report.skipped:
            case = _el(suite, "testcase", name=e.file, classname="kubeward.input", file=e.file, time="0")
            _el(case, "skipped", message=f"skipped: {e.message}")
        _close(suite)
    if report.not_assessed:
        suite = _suite(root, "not assessed")
        for n in report.not_assessed:
            case = _el(suite, "testcase", name=n.what, classname="kubeward.coverage", time="0")
            _el(case, "skipped", message=f"NOT ASSESSED: {n.reason}")
        _close(suite)
    if report.expired_exceptions:
        suite = _suite(root, "expired exceptions")
        for x in report.expired_exceptions:
            case = _el(suite, "testcase", name=x, classname="kubeward.exceptions", time="0")
            _el(case, "skipped", message="expired exception no longer applies")
        _close(suite)

    totals = [0, 0, 0, 0]
    for suite in root.findall("testsuite"):
        for i, key in enumerate(("tests", "failures", "errors", "skipped")):
            totals[i] += int(suite.get(key, "0"))
    for key, val in zip(("tests", "failures", "errors", "skipped"), totals, strict=True):
        root.set(key, str(val))
    root.set("time", "0")
    return root


def render(report: Report, **_: Any) -> str:
    root = document(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
