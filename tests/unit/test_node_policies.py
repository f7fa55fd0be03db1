"""node check's section 5: each CIS 1.12 policy check answered by the registry controls carrying its framework,
MANUAL where none does, WARN (never PASS) where they judged nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubeward.controls.node.policies import BY_HAND, POLICIES, policy_checks
from kubeward.controls.registry import all_controls
from kubeward.exceptions import Exceptions
from kubeward.scan import ScanOptions, scan


def _states(tmp: Path, docs: list[dict]) -> dict[str, str]:
    (tmp / "objects.yaml").write_text(yaml.safe_dump_all(docs))
    registry = all_controls()
    metas = registry.values() if isinstance(registry, dict) else registry
    wanted = tuple(sorted({fw for c in metas for fw in c.meta.frameworks if fw.removeprefix("cis-") in POLICIES}))
    report = scan([str(tmp / "objects.yaml")], ScanOptions(frameworks=wanted, exceptions=Exceptions()))
    return {c.number: c.state for c in policy_checks(report)}


def _pod(name: str, **security: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "apps"},
            "spec": {"containers": [{"name": "c", "image": "registry.example/app@sha256:" + "0" * 64,
                                     "securityContext": security}]}}


def test_every_check_listed_and_manual_ones_say_how(tmp_path: Path) -> None:
    states = _states(tmp_path, [_pod("ok", privileged=False)])
    assert list(states) == list(POLICIES)
    assert {n for n, s in states.items() if s == "MANUAL"} == set(BY_HAND)
    assert all(states[n] == "MANUAL" for n in BY_HAND)


def test_privileged_pod_fails_and_a_clean_one_passes(tmp_path: Path) -> None:
    assert _states(tmp_path, [_pod("p", privileged=True)])["5.2.2"] == "FAIL"
    assert _states(tmp_path, [_pod("ok", privileged=False)])["5.2.2"] == "PASS"


def test_nothing_to_judge_is_warn_not_pass(tmp_path: Path) -> None:
    states = _states(tmp_path, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert states["5.2.2"] == "WARN" and states["5.2.3"] == "WARN"
