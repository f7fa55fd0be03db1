"""Prometheus metrics of `admission serve`, through prometheus_client, in a registry of the server's own.

A per-server CollectorRegistry (never the process-wide default) so that several servers in one process, and the
tests, each count only their own reviews. Label values are bounded: decisions are a fixed set, controls are the
registry's ids, modes deny / warn, error reasons a fixed set.

Names (unchanged from the earlier hand-written exposition): kubeward_admission_reviews_total{decision},
kubeward_admission_findings_total{control,mode}, kubeward_admission_bad_requests_total{reason} and the histogram
kubeward_admission_review_duration_seconds. prometheus_client adds a `<name>_created` sample (the series' start
time, Unix seconds) beside each counter and histogram, as it does for every such metric.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from .decide import Decision

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AdmissionMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reviews = Counter("kubeward_admission_reviews", "AdmissionReviews answered, by decision.",
                                ("decision",), registry=self.registry)
        self._findings = Counter("kubeward_admission_findings", "Reviews a control denied or warned on.",
                                 ("control", "mode"), registry=self.registry)
        self._errors = Counter("kubeward_admission_bad_requests",
                               "Bodies that were not an AdmissionReview v1, and reviews that failed internally.",
                               ("reason",), registry=self.registry)
        self._latency = Histogram("kubeward_admission_review_duration_seconds", "Time to decide one review.",
                                  buckets=BUCKETS, registry=self.registry)

        # The labelled children, looked up once per label set: labels() takes the family's lock on every call.
        self._decisions: dict[str, Any] = {}
        self._modes: dict[tuple[str, str], Any] = {}
        self._reasons: dict[str, Any] = {}

    def observe(self, decision: Decision, seconds: float) -> None:
        child = self._decisions.get(decision.reason)
        if child is None:
            child = self._decisions.setdefault(decision.reason, self._reviews.labels(decision.reason))
        child.inc()
        modes = self._modes
        for mode, fs in (("deny", decision.denied), ("warn", decision.warned)):
            for key in {(f.control.id, mode) for f in fs}:
                child = modes.get(key)
                if child is None:
                    child = modes.setdefault(key, self._findings.labels(*key))
                child.inc()
        self._latency.observe(seconds)

    def error(self, reason: str) -> None:
        child = self._reasons.get(reason)
        if child is None:
            child = self._reasons.setdefault(reason, self._errors.labels(reason))
        child.inc()

    def render(self) -> bytes:
        """The text exposition format (0.0.4), as /metrics serves it."""
        return generate_latest(self.registry)

    def _totals(self, counter: Counter, label: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for family in counter.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[s.labels[label]] = out.get(s.labels[label], 0) + int(s.value)
        return out

    @property
    def reviews(self) -> dict[str, int]:
        """Reviews answered so far, by decision (for the summary at exit)."""
        return self._totals(self._reviews, "decision")

    @property
    def errors(self) -> dict[str, int]:
        return self._totals(self._errors, "reason")
