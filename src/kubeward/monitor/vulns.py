"""The versions and CVE controls of `kubeward vulns --cluster` kept current by the monitor.

The inputs are `vulns --cluster`'s: the apiserver's `GET /version`, the Nodes' status.nodeInfo and the images of
the Pods (what runs, static pods as their mirror pods), plus the image reports given with `--images`; the
findings are built by the same code (vulns.report.build, add_images, rank_order) and join the scan's findings in
the monitor's report, so they reach the findings metrics, the alerts and the PolicyReports like any other. They
are judged again only when what they read changed: Nodes or Pods, the kinds the risk ranking reads (Services,
Ingresses, NetworkPolicies, RBAC), the apiserver's version (polled once per resync period; a version changes
without any watch event), or the date (an exception's expiry). `vulns_metrics` exports
`kubeward_vulnerabilities{severity,fixable,source}` and `kubeward_vuln_feed_age_days`, the age taken when scraped.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..exceptions import Exceptions
from ..findings import Finding, NotAssessed, Report, Severity
from ..sources.cluster import ClusterError
from ..vulns.components import Found, from_resources, from_version_info
from ..vulns.feed import Feed
from ..vulns.images import ImageReport
from ..vulns.risk import EXPOSURE_KINDS, RBAC_KINDS, RiskContext
from ..vulns.update import Official
from .state import ClusterState, FindingKeyT, finding_key

RUNS = ("Node", "Pod")  # where versions and images are read (not the controllers' templates: a pod is what runs)
READS = frozenset((*RUNS, *EXPOSURE_KINDS, *RBAC_KINDS, "Namespace"))
FEED, IMAGE = "k8s-cve-feed", "image-report"  # the `source` label: the Kubernetes CVE feed, an image report

VersionGet = Callable[[], tuple[int, Any]]  # GET /version: (HTTP status, body)
Scope = str | None


@dataclass(frozen=True, slots=True)
class VulnOptions:
    """`monitor`'s options that are `vulns`' (--images, --min-risk) and the scan selection that applies."""

    feed: Feed
    official: Official | None = None
    reports: tuple[ImageReport, ...] = ()
    min_risk: int = 0
    min_severity: Severity = Severity.INFO
    exclude_namespaces: frozenset[str] = frozenset()

    def describe(self) -> str:
        """The data and its date (the shipped snapshot said as such), the official list and the reports."""
        from ..vulns.feed import shipped

        return (self.feed.describe() + (" (the shipped snapshot)" if self.feed is shipped() else "")
                + (f"; official CVE list: {self.official.describe()}" if self.official is not None else "")
                + (f"; {len(self.reports)} image report(s)" if self.reports else ""))


class VulnMetrics(Collector):
    """The vulnerability findings of the last evaluation by severity, fixable and source, and the data's age."""

    def __init__(self, feed_date: dt.date, today: Callable[[], dt.date] = dt.date.today) -> None:
        self._date, self._today = feed_date, today
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def update(self, findings: Iterable[Finding]) -> None:
        counts = Counter((f.control.severity.label, _fixable(f), _source(f)) for f in findings if is_vulnerability(f))
        with self._lock:
            self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("kubeward_vulnerabilities", "Vulnerability findings (a CVE on a component or a "
                              "container) not suppressed, by severity, whether a fix exists and source "
                              f"({FEED}: Kubernetes CVE feed; {IMAGE}: --images).",
                              labels=["severity", "fixable", "source"])
        with self._lock:
            rows = sorted(self._counts.items())
        for labels, n in rows:
            g.add_metric(list(labels), n)
        yield g
        yield GaugeMetricFamily("kubeward_vuln_feed_age_days", "Age in days of the vulnerability data the CVE "
                                "findings are judged with (older than 90: KW-V001).",
                                value=(self._today() - self._date).days)


def is_vulnerability(f: Finding) -> bool:
    """A CVE finding (feed or image report), not one of the data's own findings (KW-V000..)."""
    return f.control.category in ("vulns", "image-vulns") and not f.control.id.startswith("KW-")


def _source(f: Finding) -> str:
    return IMAGE if f.control.category == "image-vulns" else FEED


def _fixable(f: Finding) -> str:
    fix = next((x for x in f.risk.factors if x.name == "fix"), None) if f.risk is not None else None
    return "unknown" if fix is None or fix.present is None else str(fix.present).lower()


class VulnWatch:
    """Adds the versions/CVE findings to each monitor evaluation, judged again only when their inputs changed."""

    def __init__(self, options: VulnOptions, exceptions: Exceptions, version: VersionGet, *, poll_every: float,
                 context: str, today: Callable[[], dt.date] = dt.date.today,
                 on_problem: Callable[[str], None] = lambda _m: None) -> None:
        self.options, self.exceptions, self._get_version = options, exceptions, version
        self.poll_every = poll_every if poll_every > 0 else 600.0  # --resync-period 0: still poll /version
        self.context, self._today, self.on_problem = context, today, on_problem
        self.metrics = VulnMetrics(options.feed.date, today)
        self.report: Report | None = None  # the vulnerability report of the last judgement
        self.judged = 0  # how many times the findings were built (tests)
        self._version: list[Found] = []
        self._version_problem = ""
        self._polled: float | None = None
        self._day: dt.date | None = None
        self._keys: dict[Scope, frozenset[Any]] = {}
        self._by_key: dict[FindingKeyT, Finding] = {}  # the last judgement's findings by key (the next one's delta)
        self._by_scope: dict[Scope, list[Finding]] = {}  # and per scope (the PolicyReport bodies)
        # the findings that came and went at the last add_to (the incremental loop's delta takes them in)
        self.delta: tuple[list[Finding], list[Finding]] = ([], [])
        self._said: set[str] = set()

    def add_to(self, report: Report, state: ClusterState, changed: Iterable[str]) -> set[Scope] | None:
        """Put the vulnerability findings into `report` (the scan's of this evaluation). Returns the scopes
        (namespaces, None: cluster) whose vulnerability results differ from the last evaluation's, for the
        PolicyReport writer; None on the first judgement (every scope)."""
        today = self._today()
        moved = self._poll_version()
        if self.report is None or moved or today != self._day or READS & set(changed):
            first = self.report is None
            was = self._by_key
            self.report = self._judge(state, today)
            now = self._by_key = {finding_key(f): f for f in self.report.findings}
            self.delta = ([f for k, f in now.items() if k not in was], [f for k, f in was.items() if k not in now])
            self._day = today
            self.judged += 1
            self._by_scope = {}
            for f in self.report.findings:
                self._by_scope.setdefault(f.object.namespace, []).append(f)
            keys = _keys_by_scope(now, self.report.not_assessed)
            dirty = {s for s in keys.keys() | self._keys.keys() if keys.get(s) != self._keys.get(s)}
            self._keys = keys
            self.metrics.update(self.report.findings)
            result: set[Scope] | None = None if first else dirty
        else:
            result = set()
            self.delta = ([], [])
        _merge(report, self.report)
        return result

    def index(self, index: Any) -> WithVulns:
        """The incremental loop's findings per scope (policyreport.ScopeIndex) with the vulnerability findings
        after them, as they follow the scan's in the merged report."""
        return WithVulns(index, self._by_scope)

    def _poll_version(self) -> bool:
        """GET /version once per poll period; True when the apiserver's version is not what it was."""
        now = time.monotonic()
        if self._polled is not None and now - self._polled < self.poll_every:
            return False
        self._polled = now
        try:
            status, info = self._get_version()
        except ClusterError as exc:
            found: list[Found] = []
            problem = f"/version: {exc}: the apiserver's version is not assessed"
        else:
            found, problem = from_version_info(status, info, self.context or "cluster")
        if problem and problem not in self._said:
            self._said.add(problem)
            self.on_problem(problem)
        if problem and self._version:  # a failed poll keeps the version last read
            return False
        was = [(f.text, f.version) for f in self._version]
        self._version, self._version_problem = found, problem
        return was != [(f.text, f.version) for f in found]

    def _judge(self, state: ClusterState, today: dt.date) -> Report:
        from ..vulns.report import add_images, build, rank_order

        o = self.options
        snap = state.snapshot()
        runs = [r for r in snap.of_kind(*RUNS) if r.namespace not in o.exclude_namespaces]
        found: list[Found] = list(self._version)
        not_assessed: list[NotAssessed] = []
        if self._version_problem:
            not_assessed.append(NotAssessed("kube-apiserver version", self._version_problem))
        for item in from_resources(runs):
            (found if isinstance(item, Found) else not_assessed).append(item)  # type: ignore[arg-type]
        kinds = {t.rtype.name: t.rtype.kind for t in state.types.values()}
        unread = frozenset(kinds[n.what] for n in state.not_assessed() if n.what in kinds)
        rank = RiskContext(snap, unread)
        vr = build(o.feed, found, not_assessed, (), today, rank, o.official, dated=False)
        if o.reports:
            add_images(vr, runs, o.reports, rank)
        rank_order(vr, o.min_risk)
        if o.min_severity > Severity.INFO:
            vr.findings = [f for f in vr.findings if f.control.severity >= o.min_severity]
        return self.exceptions.as_of(today).apply(vr)


def _keys_by_scope(by_key: dict[FindingKeyT, Finding], not_assessed: Iterable[NotAssessed]
                   ) -> dict[Scope, frozenset[Any]]:
    """What the PolicyReports show of these findings, per scope (a changed risk is a changed result)."""
    by: dict[Scope, set[Any]] = {}
    for k, f in by_key.items():
        by.setdefault(f.object.namespace, set()).add((k, f.risk.score if f.risk else None))
    by.setdefault(None, set()).update(("not-assessed", n.what, n.reason) for n in not_assessed)
    return {s: frozenset(v) for s, v in by.items()}


class WithVulns:
    """A ScopeIndex (monitor.policyreport) over the scan's findings per scope and the vulnerability findings."""

    def __init__(self, index: Any, by_scope: dict[Scope, list[Finding]]) -> None:
        self._index, self._by_scope = index, by_scope

    def finding_scopes(self) -> set[Scope]:
        return {*self._index.finding_scopes(), *self._by_scope}

    def in_scopes(self, wanted: set[Scope]) -> dict[Scope, list[Finding]]:
        out = dict(self._index.in_scopes(wanted))
        for scope in wanted & self._by_scope.keys():
            out[scope] = [*out.get(scope, []), *self._by_scope[scope]]
        return out


def _merge(report: Report, vr: Report) -> None:
    """The vulnerability report's findings, counts and notes added to the scan's, in place: Incremental._report
    builds each report's lists and dict afresh (they share nothing it keeps), so the scan's tens of thousands of
    findings are not copied at every evaluation."""
    report.findings += vr.findings
    report.suppressed += vr.suppressed
    report.controls.update(vr.controls)
    report.not_assessed += vr.not_assessed
    report.expired_exceptions += [e for e in vr.expired_exceptions if e not in report.expired_exceptions]

