"""The monitor's main loop: reflectors feed changes, which are applied in small batches (a burst of events is one
evaluation), each batch evaluated incrementally, its new and resolved findings alerted and the PolicyReports
brought up to date.

A restarted monitor reads its own PolicyReports first: the findings they hold are the "before" of its first
evaluation, so what appeared or went away while it was down is announced once and nothing already reported is
announced again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..findings import Report, Severity
from ..gcpause import freeze_long_lived
from ..scan import Plan, ScanOptions, settings
from ..sources.cluster import SCAN_TYPES, Client, ResourceType
from . import events as ev
from .credentials import bundle_types, expiries, resync_snapshot
from .metrics import MonitorMetrics
from .policyreport import ReportWriter, desired, scopes
from .state import ClusterState, FindingKeyT, Incremental, finding_key
from .watch import Change, Reflector

if TYPE_CHECKING:
    from .vulns import VulnWatch

# how often the frozen objects are collected again (one full collection, ~1 s at 60,000 objects): what a reference
# cycle among them left as garbage waits at most that long
REFREEZE = 600.0


class Monitor:
    def __init__(self, client: Client, options: ScanOptions, plan: Plan, *, types: Sequence[ResourceType] = SCAN_TYPES,
                 alerting: Any = None, reports: bool = True, metrics: MonitorMetrics | None = None,
                 batch_window: float = 0.2, watch_timeout: int = 300, resync: float = 600.0,
                 on_problem: Callable[[str], None] = lambda _m: None, vulns: VulnWatch | None = None) -> None:
        self.client, self.options, self.plan = client, options, plan
        self.vulns = vulns  # the versions/CVE findings joined to each evaluation (monitor/vulns.py)
        self.state = ClusterState(types, client.context)
        self.alerting, self.metrics = alerting, metrics or MonitorMetrics()
        self.reports = reports
        self.batch_window, self.watch_timeout, self.resync = batch_window, watch_timeout, resync
        self.on_problem = on_problem
        self.queue: queue.Queue[Change] = queue.Queue()
        self.synced = threading.Event()  # first evaluation done (readiness)
        self.report: Report | None = None  # the last evaluation
        self.evaluations = 0
        self._listed: dict[str, float] = {}  # type path -> Unix time of its last list
        self._reflectors: list[Reflector] = []
        self._credentials_at = 0.0  # the full resync the credential expiries were last computed from
        self._frozen_at = 0.0  # when the long-lived objects were last frozen (gcpause.freeze_long_lived)
        self._credential_problems: set[str] = set()  # said once each, not at every resync

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: watch, evaluate, alert, write reports."""
        with settings(self.options):
            self._run(stop)

    def _run(self, stop: threading.Event) -> None:
        inc = Incremental(self.state, self.plan, self.options, lane=True)
        current: Counter[FindingKeyT] = Counter()  # the findings reported now, by key (events follow the delta)
        writer = self._writer()
        before = self._known(writer)
        if not self.reports:  # the reports could not be read: none are written either
            writer = None
        for rtype in self.state.types.values():
            r = Reflector(self.client, rtype.rtype, self.queue, stop, watch_timeout=self.watch_timeout,
                          resync=self.resync, on_restart=self._restarted, on_problem=self.on_problem)
            self._reflectors.append(r)
            r.start()
        try:
            while not stop.is_set():
                # while the cross-object lane runs, its end is looked for often: its results are merged at once
                batch = self._drain(stop, 0.05 if not inc.wait_cross(0) else 0.5)
                if not batch and not inc.cross_pending():
                    continue
                watched = [c.at for c in batch if c.what in ("ADDED", "MODIFIED", "DELETED")]
                for change in batch:
                    self._apply(change)
                if not self.state.synced:
                    continue
                started = time.monotonic()
                report = inc.evaluate()
                vuln_scopes = (self.vulns.add_to(report, self.state, {c.rtype.kind for c in batch})
                               if self.vulns is not None else set())
                delta = inc.delta
                if delta is not None and self.vulns is not None:
                    delta = (delta[0] + self.vulns.delta[0], delta[1] + self.vulns.delta[1])
                self.metrics.observe_report(report, self.state.count(), time.monotonic() - started, delta)
                if inc.cross_started is not None and inc.cross_seconds is not None:
                    self.metrics.cross_object(inc.cross_seconds)
                if delta is None:
                    after = {finding_key(f): (f.control.severity, f.control.title) for f in report.findings}
                    changes = ev.diff(before or {}, after)
                    current = Counter(map(finding_key, report.findings))
                else:
                    changes = ev.follow(current, *delta)
                if self.alerting is not None:
                    ev.emit(self.alerting, changes)
                for e in changes:
                    self.metrics.events.labels(e.change).inc()
                if writer is not None:
                    namespaces = self.state.namespaces()
                    only = None if inc.dirty is None or vuln_scopes is None else (
                        inc.dirty | writer.pending | vuln_scopes)
                    index = self.vulns.index(inc) if self.vulns is not None else inc
                    writer.sync(desired(report, namespaces, only=only, index=index),
                                keep=scopes(report, namespaces, index))
                if watched:
                    done = time.monotonic()
                    for at in watched:
                        self.metrics.change_to_report.observe(done - at)
                self._credentials()
                if self.evaluations == 0 or time.monotonic() - self._frozen_at > REFREEZE:
                    # the objects held (and their findings) live long: out of the cyclic collector's walks
                    freeze_long_lived()
                    self._frozen_at = time.monotonic()
                self.report = report
                self.evaluations += 1
                self.synced.set()
                self.metrics.synced.set(1)
        finally:
            for r in self._reflectors:
                r.close()

    def _credentials(self) -> None:
        """The credential expiry gauge, once per full resync (every type listed afresh since the last time)."""
        if len(self._listed) < len(self.state.types) or min(self._listed.values()) <= self._credentials_at:
            return
        self._credentials_at = min(self._listed.values())
        held = [r for ts in self.state.types.values() for r in ts.objects.values()]

        def problem(message: str) -> None:
            if message not in self._credential_problems:
                self._credential_problems.add(message)
                self.on_problem(message)

        snap = resync_snapshot(self.client, held, bundle_types(self.state.types), problem)
        self.metrics.credentials.update(expiries(snap))

    def _writer(self) -> ReportWriter | None:
        if not self.reports:
            return None
        return ReportWriter(self.client, on_write=lambda v, o: self.metrics.report_writes.labels(v, o).inc(),
                            on_problem=self.on_problem)

    def _known(self, writer: ReportWriter | None) -> dict[FindingKeyT, tuple[Severity, str]] | None:
        """What our reports in the cluster say now (None: no reports, or they could not be read)."""
        if writer is None:
            return None
        keys = writer.load()
        if keys is None:
            self.on_problem("PolicyReports could not be read (are the wgpolicyk8s.io CRDs installed? see "
                            "deploy/crds/); reports are not written")
            self.reports = False
            return None
        from ..controls.registry import all_controls

        controls = all_controls()
        out: dict[FindingKeyT, tuple[Severity, str]] = {}
        for k in keys:
            c = controls.get(k[0])
            out[k] = (c.meta.severity, c.meta.title) if c is not None else (Severity.INFO, "")
        return out

    def _drain(self, stop: threading.Event, timeout: float = 0.5) -> list[Change]:
        """At least one change (or none after `timeout`), then whatever arrives within the batch window."""
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        end = time.monotonic() + self.batch_window
        while not stop.is_set():
            left = end - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait())
            except queue.Empty:
                break
            if len(batch) >= 100_000:
                break
        return batch

    def _apply(self, change: Change) -> None:
        if change.what == "list":
            self.state.replace(change.rtype, change.items)
            self._listed[change.rtype.path] = time.time()
            if len(self._listed) == len(self.state.types):
                self.metrics.last_resync.set(min(self._listed.values()))
        elif change.what == "unreadable":
            ts = self.state.types[change.rtype.path]
            was = (ts.status, ts.reason)
            self.state.unreadable(change.rtype, change.status, change.reason)
            if (ts.status, ts.reason) != was and ts.status == "unreadable":
                self.on_problem(f"{change.rtype.name}: not assessed: {change.reason}")
            self._listed[change.rtype.path] = time.time()
        elif change.obj is not None:
            self.state.apply(change.rtype, change.what, change.obj)

    def _restarted(self, rtype: ResourceType, reason: str) -> None:
        if reason != "stopped":
            self.metrics.watch_restarts.labels(rtype.name, reason).inc()
