"""Every registered check says what it checks, why, and where the rule comes from (docs/controls.md is built from
these descriptions, as Checkov's and ruff's rule pages are from theirs)."""

from __future__ import annotations

import re

import pytest

from kubeward.controls.registry import every_control

MIN_LENGTH = 120  # a title restated is not a description: what (fields, values), why, and the reference

# A Kubernetes doc or source path, or a benchmark / guide / matrix the rule comes from.
UPSTREAM = re.compile(
    r"kubernetes\.io/|k8s\.io/|\b[\w./-]+\.go\b|\bpkg/|\bplugin/|\bstaging/|\bCIS\b|NSA|Pod Security Standards"
    r"|\bPSS\b|MITRE|\bKEP-\d+|\bRFC ?\d+|\bNIST\b|\bCVE-\d{4}-\d+|kubernetes/kubernetes#\d+|client-go"
)


def test_every_control_has_a_description() -> None:
    short = [cid for cid, c in every_control().items() if len(c.meta.description.strip()) < MIN_LENGTH]
    assert short == [], f"controls without a description (what, why, upstream): {short}"


def test_every_description_names_its_upstream_reference() -> None:
    missing = [cid for cid, c in every_control().items() if not UPSTREAM.search(c.meta.description)]
    assert missing == [], f"descriptions naming no upstream reference (Kubernetes doc or source, CIS, NSA, PSS, MITRE): {missing}"


def test_table_controls_get_their_own_description() -> None:
    """Controls registered from one function and a table (workload.common.family) are not described alike."""
    controls = every_control()
    family = ["KW-W002", "KW-W003", "KW-W004", "KW-W020", "KW-W021", "KW-W024", "KW-W036", "KW-W037", "KW-W040",
              "KW-W041", "KW-W048", "KW-W049", "KW-W057", "KW-W058"]
    texts = [controls[cid].meta.description for cid in family]
    assert len(set(texts)) == len(texts)
    assert "spec.hostPID: true" in controls["KW-W002"].meta.description
    assert "policy/check_runAsNonRoot.go" in controls["KW-W020"].meta.description


def test_uncovered_pattern_is_rejected() -> None:
    assert not UPSTREAM.search("Fails when the container is bad, because bad containers are bad for everyone.")


def _controls(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    r = CliRunner().invoke(cli, ["controls", *args])
    return r.exit_code, r.stdout, r.stderr


def test_controls_id_prints_one_page() -> None:
    code, out, _ = _controls("KW-W001")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "KW-W001  Privileged container"
    assert "severity     critical" in lines and "aliases      KW-PSS-privileged" in lines
    assert "frameworks   nsa, cis-5.2.2, mitre-T1611, pss-baseline, pss-restricted" in lines
    assert "policy/check_privileged.go" in out and out.rstrip().endswith(
        "Remediation: Remove securityContext.privileged or set it to false.")
    assert "KW-W002" not in out
    assert _controls("--explain", "KW-W001")[1] == out


def test_controls_id_documents() -> None:
    import json

    import yaml

    from kubeward.controls.registry import every_control

    meta = every_control()["KW-W044"].meta
    code, out, _ = _controls("KW-W044", "-o", "json")
    assert code == 0
    page = json.loads(out)
    assert page == {"id": "KW-W044", "title": meta.title, "severity": "medium", "category": "workload",
                    "frameworks": list(meta.frameworks), "aliases": [], "description": meta.description,
                    "remediation": meta.remediation}
    assert yaml.safe_load(_controls("KW-W044", "-o", "yaml")[1]) == page
    # a standalone command's check has a page too
    assert json.loads(_controls("KW-C004", "-o", "json")[1])["id"] == "KW-C004"


def test_controls_retired_id_prints_its_successors() -> None:
    import json

    code, out, _ = _controls("KW-PSS-restrictedVolumes", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["retired"] is True and [p["id"] for p in doc["reported_by"]] == ["KW-W006", "KW-W035", "KW-W055"]
    table = _controls("KW-PSS-restrictedVolumes")[1]
    assert table.splitlines()[0].startswith("KW-PSS-restrictedVolumes  retired id, now reported by KW-W006")
    assert "KW-W035  gitRepo volume" in table


def test_controls_unknown_id_is_a_user_error() -> None:
    code, out, err = _controls("KW-X999")
    assert code == 2 and out == ""
    assert "unknown control id: KW-X999" in err and "Traceback" not in err
    assert _controls("KW-W001", "--framework", "nsa")[0] == 2
    assert _controls("KW-W001", "--explain", "KW-W002")[0] == 2


def test_cis_sections_named_in_a_description_are_the_controls_own() -> None:
    """A description citing a CIS Kubernetes section cites one the control maps to (its `cis-*` frameworks), so a
    renumbering of the benchmark cannot leave the text behind."""
    wrong = {}
    for cid, c in every_control().items():
        cited = set(re.findall(r"CIS (5(?:\.\d+)+)", c.meta.description))
        mapped = {f.removeprefix("cis-") for f in c.meta.frameworks if f.startswith("cis-")}
        if cited - mapped:
            wrong[cid] = sorted(cited - mapped)
    assert wrong == {}


def test_a_control_page_fits_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = _controls("KW-W001")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    monkeypatch.setenv("COLUMNS", "160")
    assert max(len(line) for line in _controls("KW-W001")[1].splitlines()) > 80  # wider when there is room
