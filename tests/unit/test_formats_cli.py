"""Each format through `kubeward scan -o FORMAT --output FILE`: what a CI job actually runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kubeward.cli.main import cli

MANIFESTS = "tests/data/formats/manifests"
SCHEMA = json.loads(Path("tests/data/formats/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def scan(tmp_path: Path, fmt: str, *extra: str) -> tuple[int, str]:
    out = tmp_path / f"report.{fmt}"
    # The corpus holds one unreadable file on purpose (broken.yaml): the findings decide the exit code here.
    result = CliRunner().invoke(cli, ["scan", MANIFESTS, "-o", fmt, "--output", str(out), "--allow-input-errors",
                                      *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, out.read_text(encoding="utf-8")


def test_the_unreadable_file_alone_fails_the_gate(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", MANIFESTS, "-o", "sarif", "--output", str(tmp_path / "r.sarif")])
    assert result.exit_code == 2 and "broken.yaml" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "sarif", "junit", "html"])
def test_scan_writes_each_format(tmp_path: Path, fmt: str) -> None:
    code, text = scan(tmp_path, fmt)
    assert code == 1  # the manifests hold a critical finding
    assert "Deployment/shop/web" in text


def test_sarif_file_is_schema_valid(tmp_path: Path) -> None:
    _, text = scan(tmp_path, "sarif")
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(text))


def test_junit_file_parses_and_counts(tmp_path: Path) -> None:
    _, text = scan(tmp_path, "junit")
    root = ET.fromstring(text)
    assert int(root.get("failures", "0")) > 0
    assert int(root.get("errors", "0")) == 1  # broken.yaml
    assert int(root.get("tests", "0")) == len(root.findall("testsuite/testcase"))


def test_table_to_file_has_no_ansi(tmp_path: Path) -> None:
    _, text = scan(tmp_path, "table")
    assert "\x1b[" not in text
    assert "Summary" in text and "Input errors" in text
