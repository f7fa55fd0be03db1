"""Findings: the single currency every judging command produces and every format renders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from .records import field, record


class Severity(IntEnum):
    """Ordered so that comparisons (`>= Severity.HIGH`) express thresholds."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in sorted(cls, reverse=True))
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def framework_family(framework_id: str) -> str:
    """`cis-5.2.2` → `cis`, `mitre-T1611` → `mitre`; the PSS levels stay distinct (`pss-baseline`)."""
    return framework_id if framework_id.startswith("pss-") else framework_id.split("-", 1)[0]


@record(frozen=True)
class ControlMeta:
    """What a check is, independent of any object: rendered by every format and docs/controls.md."""

    id: str
    title: str
    severity: Severity
    category: str
    frameworks: tuple[str, ...] = ()
    remediation: str = ""
    description: str = ""
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def in_framework(self, name: str) -> bool:
        """`nsa` matches `nsa`; `cis` matches every `cis-…` id; an exact id matches itself."""
        if name == "all":
            return True
        return any(f == name or f.startswith(name + "-") for f in self.frameworks)

    def to_json(self) -> dict[str, Any]:
        """The same dict for every finding of this control (serialised many times, built once)."""
        if self._json is not None:
            return self._json
        d = {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.label,
            "category": self.category,
            "frameworks": list(self.frameworks),
        }
        object.__setattr__(self, "_json", d)
        return d


@record(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        if self._json is not None:
            return self._json
        d: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind}
        if self.namespace is not None:
            d["namespace"] = self.namespace
        d["name"] = self.name
        object.__setattr__(self, "_json", d)
        return d

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@record(frozen=True)
class Location:
    """Where a user goes to fix it: a file and line, or a cluster context for live objects."""

    file: str | None = None
    line: int | None = None
    cluster: str | None = None
    _json: tuple[str, dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    def json_entry(self) -> tuple[str, dict[str, Any]] | None:
        """("location", {...}) or ("source", {...}) for a finding's JSON; built once, shared by the findings at
        this place (the runner hands out one Location per object and line)."""
        if self._json is not None:
            return self._json
        if self.file is not None:
            entry = ("location", {"file": self.file, "line": self.line} if self.line else {"file": self.file})
        elif self.cluster is not None:
            entry = ("source", {"cluster": self.cluster})
        else:
            return None
        object.__setattr__(self, "_json", entry)
        return entry

    def __str__(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return f"cluster:{self.cluster}" if self.cluster else ""


@record(frozen=True)
class RiskFactor:
    """One fact that makes a vulnerability matter more (or not) where it runs, and the engine that decided it.

    `present` is None when the input cannot tell; the score then counts the factor (never a wrong "no")."""

    name: str  # exposed | privileged | service-account | fix
    present: bool | None
    points: int  # what it adds to the score (0 when absent)
    engine: str  # the engine or source that supplied the fact (netpol, pss, rbac, services, feed, report)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"factor": self.name, "present": self.present, "points": self.points, "engine": self.engine,
                "detail": self.detail}


@record(frozen=True)
class Risk:
    """A vulnerability finding's rank where it runs (docs/vulns.md#risk-ranking): severity plus factors."""

    score: int
    severity_points: int
    factors: tuple[RiskFactor, ...]

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "severityPoints": self.severity_points,
                "factors": [f.to_json() for f in self.factors]}

    def summary(self) -> str:
        said = [f"{f.name}{'?' if f.present is None else ''} +{f.points} ({f.detail})" for f in self.factors
                if f.points]
        return f"risk {self.score}/10: " + ("; ".join(said) if said else "no factor")


@record
class Finding:
    control: ControlMeta
    object: ObjectRef
    location: Location
    path: str
    message: str
    suppressed_by: str | None = None  # the reason, when an exception silenced it
    risk: Risk | None = None  # vulnerability findings only: the rank where the object runs

    @property
    def severity(self) -> Severity:
        return self.control.severity

    def to_json(self) -> dict[str, Any]:
        """The contract's finding record; the control, object and location parts are shared, prebuilt dicts."""
        control, obj = self.control, self.object
        d: dict[str, Any] = {
            "control": control._json or control.to_json(),
            "object": obj._json or obj.to_json(),
        }
        where = self.location._json or self.location.json_entry()
        if where is not None:
            d[where[0]] = where[1]
        d["path"] = self.path
        d["message"] = self.message
        d["remediation"] = control.remediation
        if self.risk is not None:
            d["risk"] = self.risk.to_json()
        if self.suppressed_by is not None:
            d["suppressed"] = {"reason": self.suppressed_by}
        return d


@record(frozen=True)
class InputError:
    """One input that could not be read; recorded, shown, never counted as passed."""

    file: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "message": self.message}

    def __str__(self) -> str:
        return f"kubeward: {self.file}: {self.message}"


@record(frozen=True)
class NotAssessed:
    """A resource type (or area) that could not be read, e.g. 403 from the API: unknown, not passed."""

    what: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "reason": self.reason}


@record
class ControlResult:
    """Per control: how many objects it judged and how many failed (for scores and junit)."""

    meta: ControlMeta
    evaluated: int = 0
    failed: int = 0


def count_by_severity(tallies: Iterable[tuple[Severity, int]]) -> dict[str, int]:
    """`summary.bySeverity`: findings per severity label, highest first, info left out. Takes (severity, count)
    pairs, so a report whose findings are already rendered (the two-process scan) tallies them the same way."""
    counts = {s.label: 0 for s in sorted(Severity, reverse=True) if s != Severity.INFO}
    for severity, n in tallies:
        if severity != Severity.INFO:
            counts[severity.label] += n
    return counts


@record
class Report:
    """Everything a scan produced; formats render it, the CLI derives the exit code from it."""

    objects: int
    findings: list[Finding]
    suppressed: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    not_assessed: list[NotAssessed] = field(default_factory=list)
    controls: dict[str, ControlResult] = field(default_factory=dict)
    expired_exceptions: list[str] = field(default_factory=list)
    # Exceptions the reader must know about: entries that silence every control, inline ignores naming unknown ids.
    exception_notes: list[str] = field(default_factory=list)
    evaluated_objects: dict[str, list[ObjectRef]] = field(default_factory=dict)
    coverage: tuple[int, int] | None = None  # (types read, types wanted) for live scans
    states: dict[str, int] | None = None  # node check: checks per benchmark state (PASS, FAIL, WARN, MANUAL, SKIP)
    skipped: list[InputError] = field(default_factory=list)  # input documents that are no Kubernetes object
    # the attack paths behind KW-P101's findings (kubeward.paths.rank.Path), for the HTML report's graph view
    attack_paths: list[Any] = field(default_factory=list)

    def by_severity(self) -> dict[str, int]:
        # Tallied per control first (C-level counting of ids): 100k findings share a hundred-odd controls.
        controls = {id(f.control): f.control for f in self.findings}
        return count_by_severity(
            (controls[key].severity, n) for key, n in Counter(id(f.control) for f in self.findings).items())

    def framework_scores(self) -> dict[str, float]:
        """Kubescape-style compliance: per control passed/evaluated, framework = mean over its controls."""
        per: dict[str, list[float]] = {}
        for res in self.controls.values():
            if res.evaluated == 0:
                continue
            score = 100.0 * (res.evaluated - res.failed) / res.evaluated
            for fw in {framework_family(f) for f in res.meta.frameworks}:
                per.setdefault(fw, []).append(score)
        return {fw: round(sum(v) / len(v), 1) for fw, v in sorted(per.items())}
