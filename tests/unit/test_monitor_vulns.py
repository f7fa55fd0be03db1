"""The monitor's versions/CVE findings (monitor/vulns.py): in the findings metrics and the vulnerability gauges,
in the PolicyReports with their risk, judged again only when what they read changed, exceptions expiring while
the monitor runs."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

from tests.unit.test_vulns_images import TRIVY

from kubeward.findings import Report
from kubeward.monitor.metrics import MonitorMetrics
from kubeward.monitor.policyreport import desired
from kubeward.monitor.state import ClusterState, Incremental
from kubeward.monitor.vulns import FEED, IMAGE, VulnOptions, VulnWatch
from kubeward.scan import ScanOptions, plan
from kubeward.sources.cluster import SCAN_TYPES
from kubeward.vulns.feed import parse_feed
from kubeward.vulns.images import parse_report

TYPES = {t.kind: t for t in SCAN_TYPES}
HIGH = "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"  # 8.8
FEED_DOC = {"source": "fixture", "commit": "test", "date": "2026-11-01", "records": [
    {"id": "CVE-2099-0001", "summary": "apiserver issue", "modified": "2026-11-01T00:00:00Z",
     "affected": [{"package": {"ecosystem": "kubernetes", "name": "k8s.io/apiserver"},
                   "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.30.0"}, {"fixed": "1.30.5"}]}],
                   "severity": [{"type": "CVSS_V3", "score": HIGH}]}]},
    {"id": "CVE-2099-0002", "summary": "kubelet issue", "modified": "2026-11-01T00:00:00Z",
     "affected": [{"package": {"ecosystem": "kubernetes", "name": "k8s.io/kubelet"},
                   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "1.30.2"}]}]}]}]}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "resourceVersion": "1"},
        "status": {"nodeInfo": {"kubeletVersion": "v1.30.1"}}}
WEB = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
       "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25.3"}]}}


class Clock:
    def __init__(self) -> None:
        self.day = dt.date.today()  # the exceptions file is read as of today, as the monitor reads it

    def __call__(self) -> dt.date:
        return self.day


class Version:
    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def __call__(self) -> tuple[int, Any]:
        self.calls += 1
        return 200, {"gitVersion": self.text, "major": "1", "minor": "30"}


def _setup(tmp_path: Path, exceptions: str = "") -> tuple[ClusterState, Incremental, VulnWatch, Version, Clock]:
    state = ClusterState(SCAN_TYPES, "ctx")
    for t in SCAN_TYPES:
        state.replace(t, copy.deepcopy({"Node": [NODE], "Pod": [WEB]}.get(t.kind, [])))
    ex = tmp_path / "ex.yaml"
    ex.write_text(exceptions or "exceptions: []\n")
    options = ScanOptions(exceptions_file=str(ex))
    chosen = plan(options)
    version, clock = Version("v1.30.2"), Clock()
    vo = VulnOptions(parse_feed(FEED_DOC), reports=(parse_report(TRIVY, "trivy.json"),))
    watch = VulnWatch(vo, chosen.exceptions, version, poll_every=1e-9, context="ctx", today=clock)
    return state, Incremental(state, chosen, options), watch, version, clock


def _ids(report: Report) -> set[tuple[str, str]]:
    return {(f.control.id, f.object.name) for f in report.findings}


def test_cves_reach_the_findings_metrics_the_gauges_and_the_reports(tmp_path: Path) -> None:
    state, inc, watch, _v, clock = _setup(tmp_path)
    clock.day = dt.date(2026, 12, 1)
    report = inc.evaluate()
    assert watch.add_to(report, state, ()) is None  # the first judgement: every scope
    assert {("CVE-2099-0001", "ctx"), ("CVE-2099-0002", "n1"), ("CVE-2023-44487", "web"),
            ("KW-V000", "k8s-cve-feed-osv")} <= _ids(report)
    metrics = MonitorMetrics()
    metrics.registry.register(watch.metrics)
    metrics.observe_report(report, state.count(), 0.01)
    text = metrics.render().decode()
    assert 'kubeward_monitor_findings{control="CVE-2099-0001",namespace="",severity="high"} 1.0' in text
    assert 'kubeward_monitor_findings{control="CVE-2023-44487",namespace="shop",severity="high"} 1.0' in text
    assert f'kubeward_vulnerabilities{{fixable="true",severity="high",source="{FEED}"}} 1.0' in text
    assert f'kubeward_vulnerabilities{{fixable="false",severity="medium",source="{FEED}"}} 1.0' in text  # last_affected
    assert f'kubeward_vulnerabilities{{fixable="true",severity="high",source="{IMAGE}"}} 1.0' in text
    assert "kubeward_vuln_feed_age_days 30.0" in text
    bodies = desired(report, state.namespaces())
    cluster = [r for r in bodies[None]["results"] if r["policy"] == "CVE-2099-0001"]
    assert cluster and cluster[0]["resources"][0]["kind"] == "KubernetesRelease"
    assert "v1.30.2" in cluster[0]["message"] and "risk" in cluster[0]["properties"]
    assert any(r["policy"] == "CVE-2023-44487" for r in bodies["shop"]["results"])


def test_judged_again_only_when_its_inputs_change(tmp_path: Path) -> None:
    state, inc, watch, version, _c = _setup(tmp_path)
    watch.add_to(inc.evaluate(), state, ())
    state.replace(TYPES["ConfigMap"], [{"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "x", "namespace": "shop", "resourceVersion": "1"}}])
    report = inc.evaluate()
    assert watch.add_to(report, state, {"ConfigMap"}) == set() and watch.judged == 1
    assert ("CVE-2099-0001", "ctx") in _ids(report)  # the held findings, still in every report
    node = copy.deepcopy(NODE)
    node["status"]["nodeInfo"]["kubeletVersion"], node["metadata"]["resourceVersion"] = "v1.30.3", "2"
    state.apply(TYPES["Node"], "MODIFIED", node)
    report = inc.evaluate()
    assert watch.add_to(report, state, {"Node"}) == {None} and watch.judged == 2
    assert ("CVE-2099-0002", "n1") not in _ids(report)
    version.text = "v1.30.5"  # an upgrade of the apiserver: no watch event, seen at the next poll
    report = inc.evaluate()
    assert watch.add_to(report, state, ()) == {None} and watch.judged == 3
    assert ("CVE-2099-0001", "ctx") not in _ids(report) and version.calls == 4


def test_an_accepted_cve_comes_back_the_day_after_it_expires(tmp_path: Path) -> None:
    today = dt.date.today()
    state, inc, watch, _v, clock = _setup(tmp_path, "exceptions:\n- controls: [CVE-2023-44487]\n  names: [web]\n"
                                          f"  reason: HTTP/2 off at the proxy\n  expires: {today.isoformat()}\n")
    report = inc.evaluate()
    watch.add_to(report, state, ())
    assert ("CVE-2023-44487", "web") not in _ids(report)
    assert ("CVE-2023-44487", "web") in {(f.control.id, f.object.name) for f in report.suppressed}
    clock.day = today + dt.timedelta(days=1)  # the monitor still runs the next day
    report = inc.evaluate()
    assert watch.add_to(report, state, ()) == {"shop"}
    assert ("CVE-2023-44487", "web") in _ids(report)
    assert any("CVE-2023-44487" in e for e in report.expired_exceptions)
