"""Every upstream pod-security-admission fixture, judged at exactly its level and version (must be 100%).

Fixtures: tests/data/upstream/pod-security.tar.xz, <level>/v1.N/{pass,fail}/<checkid><i>.yaml (generated upstream by
staging/src/k8s.io/pod-security-admission/test/fixtures_test.go). A pass pod must be allowed; a fail pod denied with
the check named in its file name among the violations, or the restricted check that overrides it there.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from kubeward.engines.pss import CHECKS, Evaluator, parse_level, parse_version
from kubeward.engines.pss.registry import overriding
from vendored import pss_fixtures

ROOT = pss_fixtures()
EXPECTED_FIXTURES = 4537
_IDS = {c.id.lower(): c.id for c in CHECKS}


def _fixtures() -> list[Path]:
    return sorted(ROOT.glob("*/v1.*/*/*.yaml"))


@cache
def _evaluator(level: str, version: str) -> Evaluator:
    return Evaluator(parse_level(level), parse_version(version))


def _judge(path: Path) -> str | None:
    """None when the fixture agrees with the engine, else why not."""
    level, version, outcome = path.parts[-4], path.parts[-3], path.parts[-2]
    pod = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    result = _evaluator(level, version).evaluate(pod)
    if outcome == "pass":
        return None if result.allowed else f"expected allowed, got: {result.message}"
    stem = re.sub(r"\d+$", "", path.stem)
    check = _IDS.get(stem)
    if check is None:
        return f"no check named {stem!r}"
    wanted = {check}
    if level == "restricted":
        wanted |= set(overriding(check, parse_version(version).effective_minor))
    got = {v.check for v in result.violations}
    return None if wanted & got else f"expected one of {sorted(wanted)}, got {sorted(got) or 'allowed'}"


def test_fixture_tree_is_complete() -> None:
    assert len(_fixtures()) == EXPECTED_FIXTURES


def test_conformance_agreement() -> None:
    fixtures = _fixtures()
    failures = {str(p): why for p in fixtures if (why := _judge(p)) is not None}
    agreed = len(fixtures) - len(failures)
    print(f"\nPSS conformance: {agreed}/{len(fixtures)} fixtures agree ({100.0 * agreed / len(fixtures):.2f}%)")
    assert not failures, "\n".join(f"{k}: {v}" for k, v in list(failures.items())[:40])


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_every_version_folder_is_covered(level: str) -> None:
    minors = sorted(int(p.name.split(".")[1]) for p in (ROOT / level).iterdir() if p.is_dir())
    assert minors == list(range(38))
