"""The monitor's credential expiry gauge: computed from the cluster's objects at a full resync, per credential."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from kubeward.monitor.credentials import CredentialExpiries
from kubeward.monitor.loop import Monitor
from kubeward.monitor.metrics import MonitorMetrics
from kubeward.pki.issue import new_ca, new_key
from kubeward.scan import ScanOptions, plan
from kubeward.sources.cluster import SCAN_TYPES, ResourceType

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _ca_b64(days: int) -> str:
    cert = new_ca("webhook-ca", new_key("ecdsa"), days=days, now=NOW)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


class FakeClient:
    context = "test"

    def __init__(self, bundles: dict[str, list[dict[str, Any]]]) -> None:
        self.bundles, self.lists = bundles, 0

    def list_raw(self, rtype: ResourceType) -> tuple[list[dict[str, Any]], int, str]:
        self.lists += 1
        if rtype.kind == "APIService":
            return [], 403, "forbidden"
        return [dict(o) for o in self.bundles.get(rtype.kind, [])], 200, ""


def _series(metrics: MonitorMetrics) -> dict[tuple[str, str], float]:
    out = {}
    for fam in text_string_to_metric_families(metrics.render().decode()):
        if fam.name == "kubeward_credential_expiry_seconds":
            for s in fam.samples:
                out[(s.labels["credential"], s.labels["owner"])] = s.value
    return out


def test_gauge_is_seconds_left_and_omits_never_expiring() -> None:
    c = CredentialExpiries(now=lambda: NOW)
    c.update([("a", "x", NOW + dt.timedelta(hours=1)), ("b", "y", None), ("c", "z", NOW - dt.timedelta(seconds=5))])
    samples = {s.labels["credential"]: s.value for fam in c.collect() for s in fam.samples}
    assert samples == {"a": 3600.0, "c": -5.0}


def test_monitor_exports_webhook_bundle_expiry_once_per_full_resync() -> None:
    webhook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "guard"}, "webhooks": [{"name": "guard.example.com", "clientConfig": {
                   "caBundle": _ca_b64(30), "service": {"namespace": "g", "name": "g"}}}]}
    client = FakeClient({"ValidatingWebhookConfiguration": [webhook]})
    problems: list[str] = []
    metrics = MonitorMetrics()
    options = ScanOptions()
    mon = Monitor(client, options, plan(options), metrics=metrics, on_problem=problems.append)  # type: ignore[arg-type]
    token = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
             "metadata": {"name": "old", "namespace": "ns", "annotations": {
                 "kubernetes.io/service-account.name": "builder"}}}
    secrets = next(t for t in SCAN_TYPES if t.kind == "Secret")
    mon.state.apply(secrets, "ADDED", token)
    mon._listed = {path: 100.0 for path in mon.state.types}
    mon._credentials()
    got = _series(metrics)
    assert len(got) == 1, got  # the legacy token never expires: no series
    (cred, _owner), left = next(iter(got.items()))
    assert "guard" in cred
    now = dt.datetime.now(dt.UTC)
    expected = (NOW + dt.timedelta(days=30) - now).total_seconds()
    assert abs(left - expected) < 120
    assert any(p.startswith("apiservices.") and "forbidden" in p for p in problems), problems
    lists = client.lists
    mon._credentials()  # no type listed afresh since: not computed again
    assert client.lists == lists
    mon._listed[next(iter(mon.state.types))] = 200.0  # one type relisted: still not a full resync
    mon._credentials()
    assert client.lists == lists
    mon._listed = {path: 300.0 for path in mon.state.types}
    client.bundles = {}
    mon._credentials()
    assert client.lists > lists and _series(metrics) == {}  # the webhook is gone: so is its series


