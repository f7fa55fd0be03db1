"""One copy of each thing: no module reaches into the registry's private table, no test manifest is pasted twice."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_registry_touches_its_private_table() -> None:
    readers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "kubeward").rglob("*.py")
               if "_REGISTRY" in p.read_text() and p.name != "registry.py"]
    assert readers == []


def test_registered_lists_the_workload_controls_without_loading_the_rest() -> None:
    from kubeward.audit.podfacts import PRIVILEGED, _control
    from kubeward.controls import registry

    assert callable(_control(PRIVILEGED[0]))
    assert registry.registered(registry.Shape.POD)[PRIVILEGED[0]].shape == "pod"


def test_the_privileged_deployment_is_defined_once() -> None:
    from sample_manifests import PRIV

    body = PRIV.split("spec:", 1)[1]  # the template, whatever the variable is called
    defining = sorted(p.name for p in (ROOT / "tests").rglob("*.py") if body in p.read_text())
    assert defining == ["sample_manifests.py"]
