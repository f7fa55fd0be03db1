"""The scan pipeline called as a library (kubeward.scan), without click: same findings as the CLI's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli
from kubeward.controls.registry import SelectionError
from kubeward.findings import Severity
from kubeward.scan import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    InputsError,
    ScanOptions,
    ScanResult,
    exit_code,
    load,
    render,
    scan,
    scan_for_output,
)
from kubeward.snapshot import Snapshot
from kubeward.sources.render import RenderOptions

DATA = Path(__file__).resolve().parent.parent / "data"
INPUTS = [str(DATA / "formats" / "manifests"), str(DATA / "controls"), str(DATA / "bad")]


@pytest.fixture(autouse=True)
def no_exceptions_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty exceptions file at NONE (and no ./.kubeward.yaml to pick up)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / NONE).write_text("")


NONE = "empty-exceptions.yaml"


def cli_json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["scan", "-o", "json", "--exceptions", NONE, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def test_library_findings_equal_the_cli_json() -> None:
    options = ScanOptions(exceptions_file=NONE, workers=1)
    report = scan(INPUTS, options)
    code, doc = cli_json(*INPUTS)
    assert report.findings, "the fixtures must give findings for this comparison to mean anything"
    assert [f.to_json() for f in report.findings] == doc["findings"]
    assert [e.to_json() for e in report.errors] == doc["errors"] and report.errors
    assert json.loads(render(report, "json")) == doc
    assert exit_code(report, "high") == code == EXIT_USAGE  # an unreadable manifest fails the gate
    assert exit_code(report, "high", allow_input_errors=True) == EXIT_FINDINGS
    assert exit_code(report, "none", allow_input_errors=True) == EXIT_OK
    assert [e.to_json() for e in report.skipped] == doc.get("skipped", [e.to_json() for e in report.skipped])


def test_options_narrow_like_the_flags() -> None:
    options = ScanOptions(frameworks=("nsa",), min_severity=Severity.HIGH, exceptions_file=NONE)
    report = scan(INPUTS, options)
    _, doc = cli_json("--framework", "nsa", "--severity-threshold", "high", *INPUTS)
    assert [f.to_json() for f in report.findings] == doc["findings"]
    assert all(f.severity >= Severity.HIGH for f in report.findings)


def test_a_snapshot_already_built_and_the_namespace_option(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: nginx}\n")
    snapshot = load([str(tmp_path)], namespace="shop")
    report = scan(snapshot, ScanOptions(exceptions_file=NONE))
    assert report.objects == 1 and {f.object.namespace for f in report.findings} == {"shop"}
    assert scan([str(tmp_path)], ScanOptions(exceptions_file=NONE, namespace="shop")).findings[0].object \
        == report.findings[0].object


def test_nothing_read_is_exit_2_and_bad_options_raise(tmp_path: Path) -> None:
    empty = scan(Snapshot([]), ScanOptions(exceptions_file=NONE))
    assert exit_code(empty, "info") == EXIT_USAGE
    with pytest.raises(SelectionError):
        scan(INPUTS, ScanOptions(include_controls=("KW-NOPE",), exceptions_file=NONE))
    with pytest.raises(InputsError):  # helm flags with no chart among the inputs
        load([str(tmp_path)], render_opts=RenderOptions(values=("v.yaml",)))


def test_both_runners_give_one_result_type(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"p{i}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers:\n"
            "  - {name: c, image: nginx, securityContext: {privileged: true}}\n")
    options = ScanOptions(exceptions_file=NONE)
    serial = scan_for_output([str(tmp_path)], ScanOptions(exceptions_file=NONE, workers=1), "json")
    forked = scan_for_output([str(tmp_path)], ScanOptions(exceptions_file=NONE, workers=2), "json")
    assert isinstance(serial, ScanResult) and serial.report is not None
    assert forked.report is None and forked.rendered_json is not None  # the two-process runner ran
    assert b"".join(serial.json_pieces()) == b"".join(forked.json_pieces())
    assert (forked.objects, forked.failing) == (serial.objects, serial.failing)
    assert forked.objects == 3 and Severity.CRITICAL in forked.failing
    assert exit_code(forked, "critical") == exit_code(serial, "critical") == EXIT_FINDINGS
    assert orjson.loads(b"".join(forked.json_pieces()))["summary"] == json.loads(render(scan([str(tmp_path)],
                                                                                       options)))["summary"]
