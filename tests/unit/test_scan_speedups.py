"""The scan speed-ups change nothing a user sees: the run order, the JSON bytes and the file:line stay exact."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.common import load_snapshot
from kubeward.controls.registry import Control, Selection, Shape, _finding_order, all_controls, gc_paused, run
from kubeward.exceptions import load_exceptions
from kubeward.findings import (
    ControlMeta,
    Finding,
    InputError,
    Location,
    NotAssessed,
    ObjectRef,
    Report,
    Severity,
)
from kubeward.formats import json as json_format
from kubeward.formats.json import document, render
from kubeward.resource import POD_KINDS, PodView, Resource
from kubeward.snapshot import Snapshot
from kubeward.sources.files import load_paths
from vendored import pss_fixtures

DEMO = Path("src/kubeward/demo")
PSS = pss_fixtures()


def reference_render(report: Report) -> str:
    """The JSON format as one plain dump of the whole document: what `render` must reproduce byte for byte."""
    return orjson.dumps(document(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def reference_run(snapshot: Snapshot, controls: list[Control]) -> list[tuple[str, str, str | None, int | None, str, str]]:
    """Every hit through the plain loop (one Location per finding, no sharing), sorted once as a whole."""
    found: list[Finding] = []
    for c in controls:
        targets = [r for k in sorted(c.kinds) for r in snapshot.of_kind(k)]
        if c.shape == "snapshot":
            hits = list(c.func(snapshot))
        elif c.shape == "pod":
            hits = [(r, p, m) for r in targets if (pod := PodView.of(r)) is not None for p, m in c.func(pod)]
        else:
            hits = [(r, p, m) for r in targets for p, m in c.func(r)]
        for res, path, message in hits:
            loc = Location(file=res.file, line=res.line_of(path) if path else res.line)
            found.append(Finding(c.meta, res.ref(), loc, path, message))
    found.sort(key=_finding_order)
    return [_flat(f) for f in found]


def _flat(f: Finding) -> tuple[str, str, str | None, int | None, str, str]:
    return (f.control.id, str(f.object), f.location.file, f.location.line, f.path, f.message)


def test_demo_run_matches_the_plain_loop() -> None:
    snap = load_snapshot([str(DEMO)])
    chosen = Selection().choose(all_controls())
    report = run(snap, chosen)
    assert len(report.findings) > 100
    assert [_flat(f) for f in report.findings] == reference_run(load_snapshot([str(DEMO)]), chosen)


def test_pss_fixture_sample_run_and_json_match_the_plain_path() -> None:
    files = sorted(PSS.rglob("*.yaml"))[::40]  # ~115 fixtures across every check, kept fast
    snap = load_snapshot([str(f) for f in files])
    chosen = Selection().choose(all_controls())
    report = run(snap, chosen)
    assert len(report.findings) > 1000
    assert [_flat(f) for f in report.findings] == reference_run(load_snapshot([str(f) for f in files]), chosen)
    assert render(report) == reference_render(report)


def test_demo_json_with_exceptions_matches_one_plain_dump(tmp_path: Path) -> None:
    exc = tmp_path / "exc.yaml"
    exc.write_text(
        "exceptions:\n"
        "- controls: [KW-W036, KW-W037]\n  reason: limits come from the LimitRange\n"
        "- controls: [KW-W042]\n  namespaces: [monitoring]\n  reason: mirrored registry\n",
        encoding="utf-8",
    )
    report = run(load_snapshot([str(DEMO)]), Selection().choose(all_controls()), load_exceptions(str(exc)))
    assert report.suppressed and report.findings
    assert render(report) == reference_render(report)


def test_exclude_namespaces_still_counts_only_kept_objects() -> None:
    snap = load_snapshot([str(DEMO)])
    chosen = Selection().choose(all_controls())
    report = run(snap, chosen, exclude_namespaces=["payments"])
    assert report.findings
    assert all(f.object.namespace != "payments" for f in report.findings)
    assert all(r.namespace != "payments" for refs in report.evaluated_objects.values() for r in refs)


def test_findings_of_one_object_share_locations_per_line() -> None:
    res = next(r for r in load_paths([str(DEMO / "payments.yaml")]).resources if r.pod() is not None)
    pod = res.pod()
    assert pod is not None
    path = pod.containers()[0][1]
    first, again = res.location(path), res.location(path + "/no/such/field")
    assert first is again  # the missing field resolves to its deepest present parent: same line, same object
    assert first == Location(file=res.file, line=res.line_of(path))
    assert res.location("") == Location(file=res.file, line=res.line)


def test_cluster_objects_keep_their_source() -> None:
    res = Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, cluster="prod")
    assert res.location("/spec") == Location(cluster="prod")
    assert res.location("/spec") is res.location("/metadata")


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller that disabled it keeps it disabled
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


# ----------------------------------------------------------------------------------- property tests

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
metas = st.builds(
    ControlMeta,
    id=st.sampled_from(["A-1", "B-2", "C-3"]),
    title=text,
    severity=st.sampled_from(list(Severity)),
    category=st.just("workload"),
    frameworks=st.lists(st.sampled_from(["nsa", "cis-5.2.2"]), unique=True).map(tuple),
    remediation=text,
)
refs = st.builds(ObjectRef, api_version=st.just("v1"), kind=st.just("Pod"),
                 namespace=st.one_of(st.none(), text), name=text)
locations = st.one_of(
    st.builds(Location, file=st.sampled_from(["a.yaml", "b/c.yaml", "ü.yaml"]),
              line=st.one_of(st.none(), st.integers(0, 10**6))),
    st.builds(Location, cluster=text),
    st.just(Location()),
)
findings = st.builds(Finding, control=metas, object=refs, location=locations, path=text, message=text,
                     suppressed_by=st.one_of(st.none(), text))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(findings, max_size=12),
    st.lists(findings, max_size=4),
    st.lists(st.builds(InputError, file=text, message=st.one_of(text, st.just("\x00findings"))), max_size=3),
    st.lists(st.builds(NotAssessed, what=text, reason=text), max_size=2),
    st.integers(1, 5),
)
def test_render_is_byte_identical_to_one_plain_dump(
    found: list[Finding], suppressed: list[Finding], errors: list[InputError], not_assessed: list[NotAssessed],
    chunk: int,
) -> None:
    report = Report(objects=len(found), findings=found, suppressed=suppressed, errors=errors,
                    not_assessed=not_assessed)
    naive = {s.label: 0 for s in sorted(Severity, reverse=True) if s != Severity.INFO}
    for f in found:
        if f.severity != Severity.INFO:
            naive[f.severity.label] += 1
    assert report.by_severity() == naive
    saved = json_format._CHUNK
    json_format._CHUNK = chunk  # small chunks exercise the seams between dumps
    try:
        expected = reference_render(report)
        assert render(report) == expected
        assert b"".join(json_format.pieces(report)) == expected.encode()  # what `scan -o json` writes
    finally:
        json_format._CHUNK = saved


def _pod(name: str, line: int) -> Resource:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [{"name": "c"}]}}
    spec = obj["spec"]
    key_lines = {id(obj): {"apiVersion": line, "kind": line + 1, "metadata": line + 2, "spec": line + 4},
                 id(spec): {"containers": line + 5}}
    return Resource(obj, file=f"f{line % 3}.yaml", line=line, key_lines=key_lines)


hit_lists = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(["", "/spec", "/spec/containers", "/metadata", "/spec/x/y"]),
              st.sampled_from(["m1", "m2"])),
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(metas, hit_lists), max_size=4, unique_by=lambda t: t[0].id),
       st.lists(st.integers(1, 60), min_size=6, max_size=6, unique=True))
def test_run_order_equals_one_global_sort(spec: list[tuple[ControlMeta, list[tuple[int, str, str]]]],
                                          lines: list[int]) -> None:
    pods = [_pod(f"p{i}", line) for i, line in enumerate(lines)]
    snap = Snapshot(pods)

    def make(meta: ControlMeta, hits: list[tuple[int, str, str]]) -> Control:
        def func(s: Snapshot) -> Iterator[tuple[Resource, str, str]]:
            for i, path, message in hits:
                yield pods[i], path, message
        return Control(meta, Shape.SNAPSHOT, func, POD_KINDS)

    controls = [make(meta, hits) for meta, hits in spec]
    report = run(snap, controls)
    expected = []
    for c in controls:
        for res, path, message in c.func(snap):
            loc = Location(file=res.file, line=res.line_of(path) if path else res.line)
            expected.append(Finding(c.meta, res.ref(), loc, path, message))
    expected.sort(key=_finding_order)
    assert [_flat(f) for f in report.findings] == [_flat(f) for f in expected]
    for c in controls:
        assert report.controls[c.meta.id].failed == len({id(r) for r, _, _ in c.func(snap)})


def test_inline_ignore_without_rules_still_silences(tmp_path: Path) -> None:
    """With no exceptions file the runner skips the per-finding lookup, except for annotated objects."""
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: quiet, namespace: a}\n"
        "spec:\n  template:\n    metadata:\n      annotations:\n        kubeward.io/ignore: KW-W001\n"
        "        kubeward.io/ignore-reason: lab node\n"
        "    spec:\n      containers:\n      - {name: c, image: x, securityContext: {privileged: true}}\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: loud, namespace: a}\n"
        "spec:\n  containers:\n  - {name: c, image: x, securityContext: {privileged: true}}\n",
        encoding="utf-8",
    )
    snap = load_snapshot([str(manifest)])
    report = run(snap, Selection(include=("KW-W001", "KW-W025")).choose(all_controls()),
                 load_exceptions(None, cwd=tmp_path))
    assert [(f.control.id, f.object.name) for f in report.suppressed] == [("KW-W001", "quiet")]
    assert report.suppressed[0].suppressed_by == "annotation: lab node"
    assert [(f.control.id, f.object.name) for f in report.findings] == [
        ("KW-W001", "loud"), ("KW-W025", "quiet"), ("KW-W025", "loud"),  # file order within a control
    ]
    assert report.controls["KW-W001"].failed == 1


def test_cli_json_bytes_equal_the_text_renderer(tmp_path: Path) -> None:
    """`scan -o json` writes bytes directly; stdout and --output carry exactly what `render` gives."""
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    runner = CliRunner()
    to_stdout = runner.invoke(cli, ["scan", str(DEMO), "-o", "json"])
    out = tmp_path / "r.json"
    to_file = runner.invoke(cli, ["scan", str(DEMO), "-o", "json", "--output", str(out)])
    assert to_stdout.exit_code == to_file.exit_code == 1  # the demo has high findings
    expected = render(run(load_snapshot([str(DEMO)]), Selection().choose(all_controls()), load_exceptions(None)))
    assert to_stdout.stdout_bytes.decode() == expected
    assert out.read_text(encoding="utf-8") == expected
    bad = runner.invoke(cli, ["scan", str(DEMO), "-o", "json", "--output", str(tmp_path / "no" / "r.json")])
    assert bad.exit_code == 2
    assert "No such file or directory" in bad.output
    assert "Traceback" not in bad.output


def test_control_shape_is_a_closed_set():
    """A misspelt shape is refused at registration (it would otherwise run as the wrong grain), and the enum
    compares equal to the strings the control modules pass."""
    from kubeward.controls.registry import control

    with pytest.raises(ValueError, match="unknown control shape 'snapshots'"):
        control("KW-T999", "t", "low", "test", shape="snapshots")
    shapes = {c.shape for c in all_controls().values()}
    assert shapes == {Shape.POD, Shape.OBJECT, Shape.SNAPSHOT} == {"pod", "object", "snapshot"}
    assert all(isinstance(c.shape, Shape) for c in all_controls().values())


def test_json_render_cache_lives_in_the_format_not_on_the_domain_objects():
    """The bytes a control, object or location takes in the JSON document are cached by formats/json.Parts for
    one document; the domain objects carry no render state, and rendering the same findings with one shared
    Parts, in several calls, gives the bytes of rendering each alone."""
    meta = ControlMeta("KW-T1", "t", Severity.HIGH, "test", ("nsa",), "fix")
    obj = ObjectRef("v1", "Pod", "ns", "p")
    loc = Location("a.yaml", 3)
    assert not {"_rendered"} & {*ControlMeta.__slots__, *ObjectRef.__slots__, *Location.__slots__}
    findings = [Finding(meta, obj, loc, f"/spec/{i}", f"m{i}") for i in range(3)]
    alone = [json_format.item_bytes([f]) for f in findings]
    parts = json_format.Parts()
    shared = [json_format.item_bytes([f], parts) for f in findings]
    assert shared == alone
    assert len(parts.objects) == len(parts.locations) == len(parts.controls) == 1
    assert json_format.item_bytes(findings) == b",\n".join(alone)
