"""The control catalog: complete metadata, docs/controls.md kept current, the kubectl plugin entry point."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kubeward.controls.catalog import render_catalog
from kubeward.controls.registry import all_controls


def test_docs_controls_md_is_current() -> None:
    from kubeward.cli.scan import catalog_metas

    expected = render_catalog(catalog_metas(), "markdown")
    current = Path("docs/controls.md").read_text()
    assert current == expected, "docs/controls.md is stale: run `kubeward controls -o markdown > docs/controls.md`"


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
