"""JUnit XML: parsable, one testcase per control x object, counts that add up."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.findings import Finding, Location
from kubeward.formats import junit, render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "formats"))
import formats_reports as reports


def parse(report: reports.Report) -> ET.Element:
    text = render(report, "junit", color=False)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.findall("testsuite")}


def check_counts(root: ET.Element) -> None:
    """Every suite's attributes equal what its children say, and the root sums the suites."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for s in root.findall("testsuite"):
        cases = s.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        for k, v in counted.items():
            assert int(s.get(k, "-1")) == v, (s.get("name"), k)
            totals[k] += v
    for k, v in totals.items():
        assert int(root.get(k, "-1")) == v


def test_pipeline_one_testcase_per_control_and_object() -> None:
    report = reports.pipeline_report()
    root = parse(report)
    check_counts(root)
    by_name = suites(root)
    for cid, objs in report.evaluated_objects.items():
        suite = next(s for n, s in by_name.items() if n.startswith(cid + " "))
        names = [c.get("name") for c in suite.findall("testcase")]
        assert names[: len(objs)] == [str(o) for o in objs]
    w001 = next(s for n, s in by_name.items() if n.startswith("KW-W001 "))
    cases = {c.get("name"): c for c in w001.findall("testcase")}
    web = cases["Deployment/shop/web"]
    failure = web.find("failure")
    assert failure is not None and failure.get("type") == "critical"
    assert "(+1 more)" in failure.get("message", "")
    assert "tests/data/formats/manifests/web.yaml:29" in (failure.text or "")
    assert web.get("file") == "tests/data/formats/manifests/web.yaml" and web.get("line") == "29"
    agent = cases["DaemonSet/ops/node-agent"].find("skipped")
    assert agent is not None and "reviewed by security" in agent.get("message", "")
    assert cases["Pod/legacy/old-app"].find("skipped") is not None
    # objects without findings pass: no child element at all
    passing = [c for c in cases.values() if len(c) == 0]
    assert len(passing) == len(cases) - 4  # web, backup fail; node-agent, old-app skipped
    errors = by_name["input errors"].findall("testcase")
    assert len(errors) == 1 and errors[0].find("error") is not None
    assert errors[0].get("name", "").endswith("broken.yaml")


def test_edge_report_counts_and_sections() -> None:
    report = reports.edge_report()
    root = parse(report)
    check_counts(root)
    by_name = suites(root)
    assert int(root.get("failures", "0")) == len({(f.control.id, f.object) for f in report.findings})
    assert by_name["not assessed"].find("testcase/skipped").get("message", "").startswith("NOT ASSESSED")
    assert len(by_name["expired exceptions"].findall("testcase")) == 1
    # suites are ordered most severe first
    control_suites = [n for n in by_name if n.startswith("T-")]
    assert control_suites[0].startswith("T-CRIT") and control_suites[-1].startswith("T-INFO")
    # a cluster object fails like any other, without a file attribute
    low = by_name["T-LOW Image pull policy"]
    proxy = next(c for c in low.findall("testcase") if c.get("name") == "Pod/kube-system/kube-proxy-x1")
    assert proxy.find("failure") is not None and proxy.get("file") is None


def test_hostile_name_is_escaped_and_round_trips() -> None:
    text = render(reports.edge_report(), "junit")
    assert "<script>" not in text
    root = ET.fromstring(text)
    names = [c.get("name") for c in root.iter("testcase")]
    assert f"Deployment/apps/{reports.HOSTILE_NAME}" in names


def test_empty_and_clean_reports() -> None:
    root = parse(reports.empty_report())
    assert root.get("tests") == "0" and root.findall("testsuite") == []
    root = parse(reports.clean_report())
    check_counts(root)
    assert root.get("tests") == "1" and root.get("failures") == "0"


def test_errors_only() -> None:
    root = parse(reports.errors_only_report())
    check_counts(root)
    assert root.get("errors") == "3" and root.get("tests") == "3"


def test_finding_on_unlisted_object_gets_a_testcase() -> None:
    """Cross-object controls may report objects outside evaluated_objects; they must still fail visibly."""
    report = reports.clean_report()
    report.findings.append(Finding(reports.CRIT, reports.ref("ghost"), Location("g.yaml", 1), "", "ghost"))
    root = parse(report)
    check_counts(root)
    assert root.get("tests") == "2" and root.get("failures") == "1"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_message_text_yields_parsable_xml(text: str) -> None:
    report = reports.clean_report()
    obj = reports.ref("x" + text)
    report.findings.append(Finding(reports.CRIT, obj, Location(f"f{text}.yaml", 3), "/p", text))
    report.evaluated_objects[reports.CRIT.id].append(obj)
    root = parse(report)
    check_counts(root)
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == junit.xml_safe(text)
