"""The scan table a person reads: summary first, controls by what to fix first, names and paths never cut,
paths relative to the working directory, the demo in about two screens ending with commands that work."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeward.cli.main import cli
from kubeward.cli.scan import DEMO_DIR, DEMO_NEXT
from kubeward.findings import ControlMeta, ControlResult, Finding, Location, ObjectRef, Report, Severity
from kubeward.formats import table

WIDTHS = (80, 100, 120, 160, 200)
LONG_NS = "payments-" + "x" * 50
LONG_NAMES = (
    "storefront",
    "a-very-long-deployment-name-that-teams-generate-from-helm-release-and-chart-names-" + "y" * 40,
    "z" * 253,  # the longest name the API accepts (DNS subdomain)
)
LONG_PATHS = (
    "deploy/web.yaml",
    "environments/production/eu-west-1/clusters/blue/namespaces/payments/workloads/storefront.deployment.yaml",
    "a" * 150 + ".yaml",
)


def meta(cid: str, sev: Severity, title: str = "A check title that is long enough to wrap at eighty") -> ControlMeta:
    return ControlMeta(cid, title, sev, "workload", ("nsa",), remediation=f"Fix {cid} by doing the right thing.")


def long_report() -> tuple[Report, list[str], list[str]]:
    """Findings on long names and paths across severities; returns the report, object texts, file:line texts."""
    findings, objects, places = [], [], []
    metas = [meta(f"KW-T{i:03d}", sev) for i, sev in enumerate(Severity)]
    for i, (name, path) in enumerate((n, p) for n in LONG_NAMES for p in LONG_PATHS):
        ref = ObjectRef("apps/v1", "Deployment", LONG_NS, name)
        loc = Location(path, 10 + i)
        m = metas[i % len(metas)]
        findings.append(Finding(m, ref, loc, "/spec", f"container \"app-{i}\" breaks the rule in a long message "
                                                      "that goes on and on about what is wrong with it " * 2))
        objects.append(str(ref))
        places.append(f"{path}:{10 + i}")
    controls = {m.id: ControlResult(m, evaluated=20) for m in metas}
    return Report(objects=20, findings=findings, controls=controls), objects, places


def _assert_whole(out: str, texts: list[str]) -> None:
    lines = out.splitlines()
    for text in texts:
        assert any(text in line for line in lines), f"{text[:60]}... is cut"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("first", [None, 3])
def test_names_and_paths_are_never_cut(width: int, first: int | None) -> None:
    report, objects, places = long_report()
    out = table.render(report, width=width, first=first)
    per_control: dict[str, int] = {}
    for f, obj, place in zip(report.findings, objects, places, strict=True):
        per_control[f.control.id] = per_control.get(f.control.id, 0) + 1
        if first is None or per_control[f.control.id] <= first:
            _assert_whole(out, [obj, place])
    # Lines wider than the terminal hold a single unit (a name or a path) and nothing else.
    units = set(objects) | set(places)
    for line in out.splitlines():
        if len(line) > width:
            assert line.strip() in units, line


@settings(max_examples=60, deadline=None)
@given(width=st.integers(80, 200),
       names=st.lists(st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,120}[a-z0-9])?", fullmatch=True), min_size=1, max_size=6),
       paths=st.lists(st.from_regex(r"[a-z0-9_]{1,30}(/[a-z0-9_.-]{1,40}){0,4}\.yaml", fullmatch=True),
                      min_size=1, max_size=6),
       message=st.from_regex(r"[a-z\"/:.=-]{1,20}( [a-z\"/:.=-]{1,20}){0,30}", fullmatch=True))
def test_property_every_name_and_place_whole_on_one_line(width: int, names: list[str], paths: list[str],
                                                         message: str) -> None:
    m = meta("KW-P001", Severity.HIGH)
    findings = [Finding(m, ObjectRef("v1", "Pod", "ns", n), Location(p, i + 1), "/spec", message)
                for i, (n, p) in enumerate(zip(names, paths * len(names), strict=False))]
    out = table.render(Report(objects=len(findings), findings=findings), width=width)
    shown = table.Paths()  # as the table shows them: "a/./b.yaml" is "a/b.yaml"
    _assert_whole(out, [str(f.object) for f in findings] + [shown.where(f.location) for f in findings])
    for word in message.split():  # messages wrap at spaces only
        assert any(word in line.split() for line in out.splitlines()), word


def test_summary_first_then_controls_by_severity_then_failed_count() -> None:
    sev_h, sev_c = meta("KW-H", Severity.HIGH), meta("KW-C", Severity.CRITICAL)
    few, many = meta("KW-A-FEW", Severity.HIGH), meta("KW-B-MANY", Severity.HIGH)

    def f(m: ControlMeta, name: str) -> Finding:
        return Finding(m, ObjectRef("v1", "Pod", "ns", name), Location("a.yaml", 1), "/spec", "bad")

    findings = [f(few, "p1"), f(many, "p1"), f(many, "p2"), f(many, "p3"), f(sev_h, "p1"), f(sev_h, "p2"),
                f(sev_c, "p9")]
    controls = {m.id: ControlResult(m, evaluated=10) for m in (sev_h, sev_c, few, many)}
    out = table.render(Report(objects=10, findings=findings, controls=controls), width=120)
    assert out.index("Summary") < out.index("Failed controls")
    order = [re.search(rf"^ \S+\s+{re.escape(c)}\s", out, re.M) for c in ("KW-C", "KW-B-MANY", "KW-H", "KW-A-FEW")]
    assert all(order) and [m.start() for m in order if m] == sorted(m.start() for m in order if m)
    assert re.search(r"^ HIGH\s+KW-B-MANY\s+3/10\s+A check title", out, re.M)


def test_first_findings_then_a_pointer_to_details() -> None:
    m = meta("KW-X", Severity.MEDIUM)
    findings = [Finding(m, ObjectRef("v1", "Pod", "ns", f"pod-{i}"), Location("a.yaml", i + 1), "/spec", "bad")
                for i in range(7)]
    report = Report(objects=7, findings=findings, controls={"KW-X": ControlResult(m, evaluated=7)})
    short = table.render(report, width=120, first=3, hint="--details")
    assert [f"pod-{i}" in short for i in range(7)] == [True] * 3 + [False] * 4
    assert "… 4 more finding(s) (--details for all)" in short
    assert "Fix:" not in short
    full = table.render(report, width=120)
    assert all(f"Pod/ns/pod-{i}" in full for i in range(7)) and "more finding" not in full
    assert "Fix: Fix KW-X" in full


def test_paths_under_the_working_directory_are_relative_others_as_given(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = table.Paths()
    assert paths.show(str(tmp_path / "k8s" / "app.yaml")) == os.path.join("k8s", "app.yaml")
    assert paths.show("k8s/./app.yaml") == os.path.join("k8s", "app.yaml")
    assert paths.show("/etc/kubernetes/app.yaml") == "/etc/kubernetes/app.yaml"
    assert paths.show("../elsewhere/app.yaml") == "../elsewhere/app.yaml"
    assert paths.show("-") == "-"
    assert paths.show(str(tmp_path) + "-sibling/app.yaml") == str(tmp_path) + "-sibling/app.yaml"
    assert table.Paths(str(tmp_path / "k8s")).show(str(tmp_path / "k8s" / "a.yaml")) == "a.yaml"


def test_scan_shows_an_absolute_input_relative_to_the_working_directory(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\n"
        "spec: {containers: [{name: c, image: nginx, securityContext: {privileged: true}}]}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "120"}).invoke(cli, ["scan", str(tmp_path / "k8s")])
    assert result.exit_code == 1, result.output
    assert "k8s/pod.yaml:" in result.output and str(tmp_path) not in result.output


def _demo(*args: str, columns: int = 120, cwd: Path | None = None) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, ["demo", *args])
    return result.exit_code, result.output


def test_demo_fits_two_screens_and_ends_with_next_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # far from the package, as for a pip user
    code, out = _demo()
    assert code == 1
    lines = out.splitlines()
    assert len(lines) <= 100, len(lines)
    assert max(len(line) for line in lines) <= 120
    assert lines[0] == "Summary"
    # The demo's own folder is named once; its files are shown relative to it.
    assert out.count(str(DEMO_DIR)) == 1 and re.search(rf"Files in\s+{re.escape(str(DEMO_DIR))}$", out, re.M)
    assert re.search(r"\bops-tools\.yaml:\d+", out)
    assert out.rstrip().splitlines()[-len(DEMO_NEXT) - 1] == "Next, try:"
    for cmd, _ in DEMO_NEXT:
        assert cmd in out
    assert "more failed control(s)" in out and "kubeward demo --details" in out


@pytest.mark.parametrize("columns", WIDTHS)
def test_demo_names_whole_at_every_width(columns: int) -> None:
    _, out = _demo("--details", columns=columns)
    from kubeward.controls.registry import Selection, all_controls, run
    from kubeward.exceptions import load_exceptions
    from kubeward.snapshot import Snapshot
    from kubeward.sources.files import load_paths

    loaded = load_paths([str(DEMO_DIR)])
    report = run(Snapshot(loaded.resources), Selection().choose(all_controls()), load_exceptions(None))
    paths = table.Paths(str(DEMO_DIR))
    _assert_whole(out, sorted({str(f.object) for f in report.findings}))
    _assert_whole(out, sorted({paths.where(f.location) for f in report.findings}))


def test_demo_details_lists_everything() -> None:
    _, short = _demo()
    _, full = _demo("--details")
    assert "more finding" not in full and "Fix:" in full and "Suppressed (4)" in full
    assert len(full.splitlines()) > 3 * len(short.splitlines())


def test_demo_path_prints_the_folder() -> None:
    code, out = _demo("--path")
    assert code == 0 and out == f"{DEMO_DIR}\n"


@pytest.mark.parametrize("command", [cmd for cmd, _ in DEMO_NEXT])
def test_each_suggested_command_works(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command.replace("$(kubeward demo --path)", str(DEMO_DIR)))
    assert argv[0] == "kubeward"
    result = CliRunner().invoke(cli, argv[1:])
    assert result.exit_code in (0, 1), result.output
    assert "Usage:" not in result.output and "Error" not in result.output
    if "--output" in argv:
        assert (tmp_path / argv[argv.index("--output") + 1]).stat().st_size > 0


def test_scan_demo_with_own_files_shows_both_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: mine, namespace: ns}\n"
        "spec: {containers: [{name: c, image: nginx, securityContext: {privileged: true}}]}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "160"}).invoke(cli, ["scan", "--demo", str(tmp_path / "pod.yaml")])
    assert result.exit_code == 1, result.output
    out = result.output
    assert re.search(r"Pod/ns/mine\s+pod\.yaml:\d+", out)
    assert re.search(r"\sops-tools\.yaml:\d+", out)
    assert out.count(str(DEMO_DIR)) == 1  # the "Files in" line only
    paths = table.Paths(str(DEMO_DIR))
    assert paths.show(str(DEMO_DIR / "payments.yaml")) == "payments.yaml"
    assert paths.show(str(tmp_path / "pod.yaml")) == "pod.yaml"


@pytest.mark.parametrize("width", WIDTHS)
def test_summary_values_are_never_cut(width: int) -> None:
    from kubeward.findings import NotAssessed

    base = "/usr/local/lib/python3.11/site-packages/" + "v" * 90 + "/kubeward/demo"
    long_file = "environments/production/" + "p" * 120 + ".yaml"
    report = Report(objects=1, findings=[], not_assessed=[NotAssessed(long_file, "403 Forbidden from the API")],
                    expired_exceptions=[f"{long_file}: exceptions[0] (controls=KW-W001 expired 2024-01-01): old"])
    out = table.render(report, width=width, base=base)
    _assert_whole(out, [base, f"{long_file}:", "403", "Forbidden", "KW-W001"])
    assert re.search(r"^Files in\s+/usr/local", out, re.M)
