"""The monitor's Prometheus metrics, on a registry of its own (prometheus_client.CollectorRegistry), so two
monitors in one process (tests) never share a series and nothing else in the process is exported by accident.

Label values are bounded: severities and control ids come from the registry, namespaces and kinds from the
cluster (one series per namespace that has findings), watch-restart reasons are a fixed set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..findings import Report
from .credentials import CredentialExpiries

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.findings = Gauge("kubeward_monitor_findings", "Current findings, by severity, control and namespace "
                              "(empty namespace: cluster-scoped objects).", ["severity", "control", "namespace"],
                              registry=r)
        self.objects = Gauge("kubeward_monitor_objects_watched", "Objects held from the watches, by kind.",
                             ["kind"], registry=r)
        self.not_assessed = Gauge("kubeward_monitor_not_assessed", "1 for each resource type that could not be "
                                  "read (its controls are not assessed).", ["resource"], registry=r)
        self.evaluation = Histogram("kubeward_monitor_evaluation_seconds", "Time of one (incremental) evaluation.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.change_to_report = Histogram("kubeward_monitor_change_to_report_seconds",
                                          "From a watch event received to the reports written that show it.",
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.watch_restarts = Counter("kubeward_monitor_watch_restarts_total", "Watches started again, by "
                                      "resource and reason (gone: 410 relist, resync, timeout, forbidden, error).",
                                      ["resource", "reason"], registry=r)
        self.last_resync = Gauge("kubeward_monitor_last_full_resync_timestamp_seconds",
                                 "When every type was last listed afresh (Unix time).", registry=r)
        self.events = Counter("kubeward_monitor_finding_events_total", "Findings that appeared (new) or went "
                              "away (resolved).", ["change"], registry=r)
        self.report_writes = Counter("kubeward_monitor_report_writes_total", "PolicyReport writes, by verb and "
                                     "outcome.", ["verb", "outcome"], registry=r)
        self.leader = Gauge("kubeward_monitor_leader", "1 while this process holds the leader Lease.", registry=r)
        self.synced = Gauge("kubeward_monitor_synced", "1 once every type was listed and evaluated.", registry=r)
        self.credentials = CredentialExpiries()  # kubeward_credential_expiry_seconds{credential,owner}
        r.register(self.credentials)
        self._lock = threading.Lock()
        self._series: set[tuple[str, str, str]] = set()

    def observe_report(self, report: Report, objects: dict[str, int], seconds: float) -> None:
        """Findings and coverage of one evaluation: series that dropped to zero are removed, not left at 0."""
        labels = {cid: r.meta.severity.label for cid, r in report.controls.items()}
        counts = Tally((labels[f.control.id], f.control.id, f.object.namespace or "") for f in report.findings)
        with self._lock:
            for gone in self._series - counts.keys():
                self.findings.remove(*gone)
            for series, n in counts.items():
                self.findings.labels(*series).set(n)
            self._series = set(counts)
            self.objects.clear()
            for kind, n in objects.items():
                self.objects.labels(kind).set(n)
            self.not_assessed.clear()
            for na in report.not_assessed:
                self.not_assessed.labels(na.what).set(1)
        self.evaluation.observe(seconds)

    def resynced(self) -> None:
        self.last_resync.set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)
