"""The monitor's Prometheus metrics, on a registry of its own (prometheus_client.CollectorRegistry), so two
monitors in one process (tests) never share a series and nothing else in the process is exported by accident.

Label values are bounded: severities and control ids come from the registry, namespaces and kinds from the
cluster (one series per namespace that has findings), watch-restart reasons are a fixed set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..findings import Finding, Report
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
        self.cross_seconds = Histogram("kubeward_monitor_cross_object_evaluation_seconds", "Time of one run of "
                                       "the cross-object lane (attack paths, RBAC escalation, NetworkPolicy "
                                       "analyses), whose findings follow the objects' own by about that much.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.cross_last = Gauge("kubeward_monitor_cross_object_last_evaluation_timestamp_seconds", "When the "
                                "cross-object lane's last run was merged into the reports (Unix time).",
                                registry=r)
        self.synced = Gauge("kubeward_monitor_synced", "1 once every type was listed and evaluated.", registry=r)
        self.credentials = CredentialExpiries()  # kubeward_credential_expiry_seconds{credential,owner}
        r.register(self.credentials)
        self._lock = threading.Lock()
        self._counts: Tally[tuple[str, str, str]] = Tally()

    def observe_report(self, report: Report, objects: dict[str, int], seconds: float,
                       delta: tuple[list[Finding], list[Finding]] | None = None) -> None:
        """Findings and coverage of one evaluation: series that dropped to zero are removed, not left at 0.
        `delta` (the findings that came and went, monitor.state.Incremental.delta): only those are counted."""
        if delta is None:
            counts = Tally(_series(f) for f in report.findings)
            touched = set(counts) | set(self._counts)
        else:
            counts = self._counts
            touched = set()
            for f in delta[1]:
                touched.add(s := _series(f))
                counts[s] -= 1
            for f in delta[0]:
                touched.add(s := _series(f))
                counts[s] += 1
        with self._lock:
            for series in touched:
                n = counts.get(series, 0)
                if n > 0:
                    self.findings.labels(*series).set(n)
                else:
                    counts.pop(series, None)
                    with suppress(KeyError):  # a series never set (came and went within one delta)
                        self.findings.remove(*series)
            self._counts = counts
            self.objects.clear()
            for kind, n in objects.items():
                self.objects.labels(kind).set(n)
            self.not_assessed.clear()
            for na in report.not_assessed:
                self.not_assessed.labels(na.what).set(1)
        self.evaluation.observe(seconds)

    def cross_object(self, seconds: float) -> None:
        """A run of the cross-object lane was merged."""
        self.cross_seconds.observe(seconds)
        self.cross_last.set(time.time())

    def resynced(self) -> None:
        self.last_resync.set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _series(f: Finding) -> tuple[str, str, str]:
    return f.control.severity.label, f.control.id, f.object.namespace or ""
