"""For every upstream pod-security-admission fixture and every demo object: the webhook's decision on the object
alone equals `kubeward scan`'s verdict on the whole input (a finding at or above high, from the same per-object
controls), so enforcing and reporting cannot drift apart. Agreement must be 100%."""

from __future__ import annotations

from pathlib import Path

from kubeward.admission.config import AdmissionConfig
from kubeward.admission.decide import Decider
from kubeward.cli.common import load_snapshot
from kubeward.controls.registry import run
from kubeward.exceptions import load_exceptions
from kubeward.findings import Severity
from vendored import pss_fixtures

REPO = Path(__file__).resolve().parents[2]


def _agreement(paths: list[str]) -> tuple[int, int, list[str]]:
    snap = load_snapshot(paths)
    # inline kubeward.io/ignore annotations count, as in scan (the webhook's default leaves them out)
    decider = Decider(AdmissionConfig(inline_ignores=True), load_exceptions(None, cwd=Path("/nonexistent")))
    report = run(snap, decider.controls, decider.exceptions)
    failing = {(f.location.file, f.object) for f in report.findings if f.control.severity >= Severity.HIGH}
    wrong: list[str] = []
    denied = 0
    for i, res in enumerate(snap.resources):
        request = {"uid": str(i), "operation": "CREATE", "namespace": res.namespace or "", "object": res.obj,
                   "userInfo": {"username": "u"}}
        decision = decider.decide(request, origin=res)
        denied += not decision.allowed
        if decision.allowed is ((res.file, res.ref()) in failing):
            wrong.append(f"{res.file}:{res.line} {res.ref()}: webhook {'allowed' if decision.allowed else 'denied'}")
    return len(snap.resources), denied, wrong


def test_pss_fixtures_webhook_equals_scan() -> None:
    n, denied, wrong = _agreement([str(pss_fixtures())])
    assert n == 4537 and 0 < denied < n
    assert not wrong, wrong[:5]


def test_demo_webhook_equals_scan() -> None:
    n, denied, wrong = _agreement([str(REPO / "src" / "kubeward" / "demo")])
    assert n > 20 and denied > 0
    assert not wrong, wrong[:5]
