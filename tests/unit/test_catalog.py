"""The control catalog: complete metadata, docs/controls.md kept current, the kubectl plugin entry point."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kubeward.controls.catalog import render_catalog
from kubeward.controls.registry import aliases, all_controls


def test_docs_controls_md_is_current() -> None:
    from kubeward.cli.scan import catalog_metas

    expected = render_catalog(catalog_metas(), "markdown", aliases())
    current = Path("docs/controls.md").read_text()
    assert current == expected, "docs/controls.md is stale: run `kubeward controls -o markdown > docs/controls.md`"


def test_controls_lists_retired_ids() -> None:
    from click.testing import CliRunner

    from kubeward.cli.main import cli

    table = CliRunner().invoke(cli, ["controls"]).stdout
    line = next(x for x in table.splitlines() if x.startswith("KW-PSS-restrictedVolumes "))
    assert line.split()[1:] == ["alias", "now", "reported", "by", "KW-W006,", "KW-W035,", "KW-W055"]
    import json

    doc = json.loads(CliRunner().invoke(cli, ["controls", "-o", "json"]).stdout)
    w011 = next(c for c in doc if c["id"] == "KW-W011")
    assert w011["aliases"] == ["KW-PSS-capabilities_baseline", "KW-PSS-capabilities_restricted"]
    assert "aliases" not in next(c for c in doc if c["id"] == "KW-W034")


def test_every_control_has_metadata() -> None:
    controls = all_controls()
    assert len(controls) >= 60
    for cid, c in controls.items():
        m = c.meta
        assert cid.startswith("KW-"), cid
        assert m.title and m.category and m.remediation, cid
        assert m.frameworks, f"{cid} maps to no framework"


def test_installed_as_kubectl_plugin() -> None:
    exe = shutil.which("kubectl-ward")
    assert exe, "kubectl-ward is not on PATH (pip install .)"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("kubeward, version")


def test_vendored_upstream_fixtures_are_complete() -> None:
    """The suite needs nothing beside the clone: the PSS fixtures and the audit sample travel with their notices."""
    from vendored import AUDIT_SAMPLE, DATA, PSS_FIXTURE_COUNT, pss_fixtures

    root = pss_fixtures()
    assert len(list(root.glob("*/v1.*/*/*.yaml"))) == PSS_FIXTURE_COUNT
    assert "Apache License 2.0" in (root / "NOTICE").read_text()
    assert (DATA / "pod-security.NOTICE").read_text() == (root / "NOTICE").read_text()
    assert AUDIT_SAMPLE.stat().st_size > 10_000 and "audit2rbac" in (AUDIT_SAMPLE.parent / "NOTICE").read_text()
    assert "Apache License" in (DATA / "LICENSE-Apache-2.0").read_text()
