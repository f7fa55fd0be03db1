"""Prometheus metrics of `admission serve`, in the text exposition format (version 0.0.4).

prometheus_client is not a dependency of kubeward; these are three counter families and one histogram, written
out here. Label values are bounded: decisions are a fixed set, controls are the registry's ids.
"""

from __future__ import annotations

import threading
from bisect import bisect_left

from .decide import Decision

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AdmissionMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reviews: dict[str, int] = {}  # by decision reason
        self.findings: dict[tuple[str, str], int] = {}  # by (control, mode): deny / warn
        self.errors: dict[str, int] = {}  # bad requests by reason
        self._counts = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0

    def observe(self, decision: Decision, seconds: float) -> None:
        with self._lock:
            self.reviews[decision.reason] = self.reviews.get(decision.reason, 0) + 1
            for mode, fs in (("deny", decision.denied), ("warn", decision.warned)):
                for cid in {f.control.id for f in fs}:
                    self.findings[cid, mode] = self.findings.get((cid, mode), 0) + 1
            self._counts[bisect_left(BUCKETS, seconds)] += 1
            self._sum += seconds

    def error(self, reason: str) -> None:
        with self._lock:
            self.errors[reason] = self.errors.get(reason, 0) + 1

    def render(self) -> bytes:
        with self._lock:
            lines = ["# HELP kubeward_admission_reviews_total AdmissionReviews answered, by decision.",
                     "# TYPE kubeward_admission_reviews_total counter"]
            lines += [f'kubeward_admission_reviews_total{{decision="{k}"}} {v}' for k, v in sorted(self.reviews.items())]
            lines += ["# HELP kubeward_admission_findings_total Reviews a control denied or warned on.",
                      "# TYPE kubeward_admission_findings_total counter"]
            lines += [f'kubeward_admission_findings_total{{control="{c}",mode="{m}"}} {v}'
                      for (c, m), v in sorted(self.findings.items())]
            lines += ["# HELP kubeward_admission_bad_requests_total Bodies that were not an AdmissionReview v1.",
                      "# TYPE kubeward_admission_bad_requests_total counter"]
            lines += [f'kubeward_admission_bad_requests_total{{reason="{k}"}} {v}' for k, v in sorted(self.errors.items())]
            lines += ["# HELP kubeward_admission_review_duration_seconds Time to decide one review.",
                      "# TYPE kubeward_admission_review_duration_seconds histogram"]
            total = 0
            for bound, n in zip((*BUCKETS, float("inf")), self._counts, strict=True):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'kubeward_admission_review_duration_seconds_bucket{{le="{le}"}} {total}')
            lines.append(f"kubeward_admission_review_duration_seconds_sum {self._sum!r}")
            lines.append(f"kubeward_admission_review_duration_seconds_count {total}")
        return ("\n".join(lines) + "\n").encode()
