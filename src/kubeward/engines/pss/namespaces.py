"""What PSA would do in each namespace: the policy its labels select, and how every workload fares under it.

Upstream: api/helpers.go PolicyToEvaluate (label parsing, defaults, fail closed for enforce and open for audit/warn),
api/constants.go (label keys) and admission/admission.go (exempt namespaces and runtime classes; Pods are enforced,
while workload templates only get warn and audit — the pods they create are enforced when created).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...records import field, record
from .pod import PodInput, text
from .registry import Evaluator, Result
from .versions import LATEST, Level, PolicyError, Version, parse_level, parse_version

LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")


@record(frozen=True)
class LevelVersion:
    level: Level
    version: Version

    def __str__(self) -> str:
        return f"{self.level.value}:{self.version}"

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "version": str(self.version)}


PRIVILEGED_LATEST = LevelVersion(Level.PRIVILEGED, LATEST)


@record(frozen=True)
class Policy:
    """Enforce, audit and warn for one namespace; the defaults are PSA's with no AdmissionConfiguration."""

    enforce: LevelVersion = PRIVILEGED_LATEST
    audit: LevelVersion = PRIVILEGED_LATEST
    warn: LevelVersion = PRIVILEGED_LATEST

    def mode(self, name: str) -> LevelVersion:
        return getattr(self, name)


DEFAULT_POLICY = Policy()


def policy_from_labels(labels: dict[str, Any], defaults: Policy = DEFAULT_POLICY) -> tuple[Policy, list[str]]:
    """Resolve the pod-security.kubernetes.io/* labels (api.PolicyToEvaluate).

    A bad enforce level reads as restricted (fail closed); a bad audit or warn level as privileged (fail open);
    a bad version as latest. Each bad label also gives one error line.
    """
    errors: list[str] = []
    modes = {m: defaults.mode(m) for m in MODES}
    for mode in MODES:
        level, version = modes[mode].level, modes[mode].version
        key = LABEL_PREFIX + mode
        if key in labels:
            raw = text(labels[key])
            try:
                level = parse_level(raw)
            except PolicyError as exc:
                errors.append(f"label {key}={raw!r}: {exc}")
                level = Level.RESTRICTED if mode == "enforce" else Level.PRIVILEGED
        key = f"{LABEL_PREFIX}{mode}-version"
        if key in labels:
            raw = text(labels[key])
            try:
                version = parse_version(raw)
            except PolicyError as exc:
                errors.append(f"label {key}={raw!r}: {exc}")
                version = LATEST
        modes[mode] = LevelVersion(level, version)
    return Policy(**modes), errors


@record
class WorkloadVerdict:
    """One pod or pod template judged under its namespace's policy, and at the next stricter level."""

    resource: Any  # kubeward.resource.Resource
    exempt: str | None  # why PSA would not evaluate it, e.g. "runtimeClassName kata"
    results: dict[str, Result]  # "enforce" / "audit" / "warn" / "next" (when there is a stricter level)

    @property
    def is_pod(self) -> bool:
        return bool(self.resource.kind == "Pod")

    def denied(self, mode: str) -> bool:
        r = self.results.get(mode)
        return r is not None and not r.allowed


@record
class NamespacePlan:
    name: str
    policy: Policy
    labelled: bool  # whether any pod-security label is set (else the defaults apply)
    declared: bool  # whether the input holds the Namespace object (else its labels are unknown: defaults assumed)
    errors: list[str]
    exempt: bool
    next_level: LevelVersion | None
    workloads: list[WorkloadVerdict] = field(default_factory=list)

    def count(self, mode: str) -> int:
        return sum(1 for w in self.workloads if w.denied(mode))


class _Cache:
    """Evaluators per level/version and results per (object, level, minor): each pod is judged once per level."""

    def __init__(self) -> None:
        self.evaluators: dict[tuple[Level, int], Evaluator] = {}
        self.results: dict[tuple[int, Level, int], Result] = {}

    def judge(self, pod: PodInput, key: int, lv: LevelVersion) -> Result:
        minor = lv.version.effective_minor
        hit = self.results.get((key, lv.level, minor))
        if hit is None:
            ev = self.evaluators.get((lv.level, minor))
            if ev is None:
                ev = self.evaluators[(lv.level, minor)] = Evaluator(lv.level, lv.version)
            hit = self.results[(key, lv.level, minor)] = ev.evaluate(pod)
        # Same checks, but report the version the namespace asked for.
        return hit if hit.version == lv.version else Result(hit.level, lv.version, hit.violations)


def plan_namespaces(
    snapshot: Any,
    *,
    defaults: Policy = DEFAULT_POLICY,
    exempt_namespaces: Iterable[str] = (),
    exempt_runtime_classes: Iterable[str] = (),
    namespaces: Iterable[str] | None = None,
) -> list[NamespacePlan]:
    """For each namespace of the snapshot: its policy and the verdict on every Pod and workload template."""
    skip_ns = frozenset(exempt_namespaces)
    skip_rc = frozenset(exempt_runtime_classes)
    wanted = set(namespaces) if namespaces is not None else None
    cache = _Cache()
    plans = []
    for ns in snapshot.namespaces():
        if wanted is not None and ns not in wanted:
            continue
        labels = snapshot.namespace_labels(ns)
        policy, errors = policy_from_labels(labels, defaults)
        stricter = policy.enforce.level.stricter()
        plan = NamespacePlan(
            name=ns, policy=policy, labelled=any(str(k).startswith(LABEL_PREFIX) for k in labels),
            declared=snapshot.get("Namespace", None, ns) is not None,
            errors=errors, exempt=ns in skip_ns,
            next_level=LevelVersion(stricter, policy.enforce.version) if stricter is not None else None,
        )
        workloads = [r for r in snapshot.in_namespace(ns) if r.pod() is not None]
        workloads.sort(key=lambda r: (r.file or "", r.line or 0, r.kind, r.name))
        for res in workloads:
            view = res.pod()
            pod = PodInput(view.meta, view.spec)
            rc = pod.spec.get("runtimeClassName")
            exempt = "namespace" if plan.exempt else (f"runtimeClassName {rc}" if isinstance(rc, str) and rc in skip_rc else None)
            results: dict[str, Result] = {}
            if exempt is None:
                for mode in MODES:
                    results[mode] = cache.judge(pod, id(res), policy.mode(mode))
                if plan.next_level is not None:
                    results["next"] = cache.judge(pod, id(res), plan.next_level)
            plan.workloads.append(WorkloadVerdict(res, exempt, results))
        plans.append(plan)
    return plans
