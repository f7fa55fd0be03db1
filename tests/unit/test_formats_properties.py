"""Property tests: for any report, every format stays valid and agrees with the report's counts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeward.findings import (
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
from kubeward.formats import render

SCHEMA = json.loads(Path("tests/data/formats/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.<>&\"'", min_size=1, max_size=12)

metas = st.builds(
    ControlMeta,
    id=st.sampled_from(["A-1", "B-2", "C-3", "D-4"]),
    title=text,
    severity=st.sampled_from(list(Severity)),
    category=st.sampled_from(["workload", "network", "rbac"]),
    frameworks=st.lists(st.sampled_from(["nsa", "cis-5.2.2", "mitre-T1611", "pss-baseline"]), unique=True).map(tuple),
    remediation=text,
)
objects = st.builds(
    ObjectRef,
    api_version=st.sampled_from(["v1", "apps/v1"]),
    kind=st.sampled_from(["Pod", "Deployment", "Namespace"]),
    namespace=st.one_of(st.none(), names),
    name=st.one_of(names, names.map(lambda n: f"<x-evil>{n}")),
)
locations = st.one_of(
    st.builds(Location, file=names.map(lambda n: f"dir/{n}.yaml"), line=st.one_of(st.none(), st.integers(1, 10_000))),
    st.builds(Location, cluster=names),
    st.just(Location()),
)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    chosen = {m.id: m for m in draw(st.lists(metas, max_size=4))}  # one meta per id, as the registry guarantees
    findings: list[Finding] = []
    suppressed: list[Finding] = []
    evaluated: dict[str, list[ObjectRef]] = {}
    for cid, meta in chosen.items():
        objs = draw(st.lists(objects, max_size=4, unique=True))
        evaluated[cid] = objs
        for obj in objs:
            for _ in range(draw(st.integers(0, 2))):
                f = Finding(meta, obj, draw(locations), draw(st.sampled_from(["", "/spec", "/spec/containers/0"])),
                            draw(text))
                reason = draw(st.one_of(st.none(), text.map(lambda t: "annotation: " + t), text.filter(bool)))
                if reason is None:
                    findings.append(f)
                else:
                    f.suppressed_by = reason
                    suppressed.append(f)
    controls = {
        cid: ControlResult(m, evaluated=len(evaluated[cid]),
                           failed=len({f.object for f in findings if f.control.id == cid}))
        for cid, m in chosen.items()
    }
    return Report(
        objects=draw(st.integers(0, 50)),
        findings=findings,
        suppressed=suppressed,
        errors=draw(st.lists(st.builds(InputError, file=names, message=text), max_size=2)),
        not_assessed=draw(st.lists(st.builds(NotAssessed, what=names, reason=text), max_size=2)),
        controls=controls,
        expired_exceptions=draw(st.lists(text, max_size=2)),
        evaluated_objects=evaluated,
    )


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(reports())
def test_sarif_always_schema_valid_and_complete(report: Report) -> None:
    doc = json.loads(render(report, "sarif"))
    VALIDATOR.validate(doc)
    run = doc["runs"][0]
    assert len(run["results"]) == len(report.findings) + len(report.suppressed)
    assert sum("suppressions" in r for r in run["results"]) == len(report.suppressed)
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])
    assert len(run["invocations"][0]["toolExecutionNotifications"]) == len(report.errors) + len(report.not_assessed)


@SETTINGS
@given(reports())
def test_junit_counts_match_report(report: Report) -> None:
    root = ET.fromstring(render(report, "junit"))
    failed_pairs = {(f.control.id, f.object) for f in report.findings}
    assert int(root.get("failures", "-1")) == len(failed_pairs)
    assert int(root.get("errors", "-1")) == len(report.errors)
    assert int(root.get("tests", "-1")) == len(root.findall("testsuite/testcase"))


@SETTINGS
@given(reports())
def test_table_plain_never_has_ansi(report: Report) -> None:
    out = render(report, "table", color=False, width=100)
    assert "\x1b" not in out
    assert "Summary" in out


@SETTINGS
@given(reports())
def test_html_never_leaks_raw_markup(report: Report) -> None:
    out = render(report, "html")
    assert out.count("<script>") == 1  # the report's own script only
    assert "<x-evil>" not in out
    if any("<x-evil>" in f.object.name for f in (*report.findings, *report.suppressed)):
        assert "&lt;x-evil&gt;" in out
