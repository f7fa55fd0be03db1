"""Every registered check says what it checks, why, and where the rule comes from (docs/controls.md is built from
these descriptions, as Checkov's and ruff's rule pages are from theirs)."""

from __future__ import annotations

import re

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

