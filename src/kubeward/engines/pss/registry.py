"""The check registry and the evaluator: which check function runs at each level and version.

Upstream: policy/registry.go (NewEvaluator, populate, inflateVersions, EvaluatePod) and policy/checks.go. A check
has versions, each with a MinimumVersion; at version v the newest one at or below v applies. Baseline checks run at
baseline and restricted; at restricted, a restricted check's OverrideCheckIDs remove the baseline checks it
replaces. Results are ordered as upstream registers the checks: by check file name, baseline before restricted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ...records import field, record
from . import baseline as b
from . import restricted as r
from .messages import render
from .pod import PodInput
from .versions import LATEST, MAX_MINOR, Level, Version

CheckFn = Callable[[PodInput], "tuple[str, str] | None"]


@record(frozen=True)
class VersionedCheck:
    minimum: int  # the minor of MinimumVersion (major is always 1)
    check: CheckFn
    overrides: tuple[str, ...] = ()


@record(frozen=True)
class Check:
    id: str
    level: Level
    versions: tuple[VersionedCheck, ...]
    title: str
    fields: tuple[str, ...] = ()  # the pod fields the check reads, for documentation and controls

    def at(self, minor: int) -> VersionedCheck | None:
        """The versioned check in force at policy v1.<minor>; None before the first MinimumVersion."""
        found = None
        for vc in self.versions:
            if vc.minimum <= minor:
                found = vc
        return found


def _c(id: str, level: Level, title: str, fields: tuple[str, ...], *versions: VersionedCheck) -> Check:
    return Check(id, level, tuple(versions), title, fields)


B, R, V = Level.BASELINE, Level.RESTRICTED, VersionedCheck

# Ordered by upstream file name (Go initialises package files in that order, so addCheck registers in it).
CHECKS: tuple[Check, ...] = (
    _c("allowPrivilegeEscalation", R, "Privilege escalation", ("containers[*].securityContext.allowPrivilegeEscalation",),
       V(8, r.allow_privilege_escalation_1_8), V(25, r.allow_privilege_escalation_1_25)),
    _c("appArmorProfile", B, "AppArmor", ("securityContext.appArmorProfile.type", "metadata.annotations[container.apparmor…]"),
       V(0, b.app_armor_profile_1_0)),
    _c("capabilities_baseline", B, "Capabilities", ("containers[*].securityContext.capabilities.add",),
       V(0, b.capabilities_baseline_1_0)),
    _c("capabilities_restricted", R, "Capabilities", ("containers[*].securityContext.capabilities.drop/add",),
       V(22, r.capabilities_restricted_1_22, ("capabilities_baseline",)),
       V(25, r.capabilities_restricted_1_25, ("capabilities_baseline",))),
    _c("hostNamespaces", B, "Host namespaces", ("hostNetwork", "hostPID", "hostIPC"), V(0, b.host_namespaces_1_0)),
    _c("hostPathVolumes", B, "HostPath volumes", ("volumes[*].hostPath",), V(0, b.host_path_volumes_1_0)),
    _c("hostPorts", B, "Host ports", ("containers[*].ports[*].hostPort",), V(0, b.host_ports_1_0)),
    _c("hostProbesAndHostLifecycle", B, "Host probes and lifecycle hooks",
       ("containers[*].*Probe.{httpGet,tcpSocket}.host", "containers[*].lifecycle.*.{httpGet,tcpSocket}.host"),
       V(34, b.host_probes_and_host_lifecycle_1_34)),
    _c("privileged", B, "Privileged containers", ("containers[*].securityContext.privileged",), V(0, b.privileged_1_0)),
    _c("procMount", B, "/proc mount type", ("containers[*].securityContext.procMount",),
       V(0, b.proc_mount_1_0), V(35, b.proc_mount_1_35)),
    _c("procMount_restricted", R, "/proc mount type", ("containers[*].securityContext.procMount",),
       V(35, r.proc_mount_restricted_1_35, ("procMount",))),
    _c("restrictedVolumes", R, "Volume types", ("volumes[*]",), V(0, r.restricted_volumes_1_0, ("hostPathVolumes",))),
    _c("runAsNonRoot", R, "Running as non-root", ("securityContext.runAsNonRoot",),
       V(0, r.run_as_non_root_1_0), V(35, r.run_as_non_root_1_35)),
    _c("runAsUser", R, "Running as non-root user", ("securityContext.runAsUser",),
       V(23, r.run_as_user_1_23), V(35, r.run_as_user_1_35)),
    _c("seLinuxOptions", B, "SELinux", ("securityContext.seLinuxOptions",),
       V(0, b.se_linux_options_1_0), V(31, b.se_linux_options_1_31)),
    _c("seccompProfile_baseline", B, "Seccomp", ("securityContext.seccompProfile.type", "metadata.annotations[seccomp…]"),
       V(0, b.seccomp_profile_baseline_1_0), V(19, b.seccomp_profile_baseline_1_19)),
    _c("seccompProfile_restricted", R, "Seccomp", ("securityContext.seccompProfile.type",),
       V(19, r.seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
       V(25, r.seccomp_profile_restricted_1_25, ("seccompProfile_baseline",))),
    _c("sysctls", B, "Sysctls", ("securityContext.sysctls[*].name",),
       V(0, b.sysctls_1_0), V(27, b.sysctls_1_27), V(29, b.sysctls_1_29), V(32, b.sysctls_1_32), V(37, b.sysctls_1_37)),
    _c("windowsHostProcess", B, "HostProcess", ("securityContext.windowsOptions.hostProcess",),
       V(0, b.windows_host_process_1_0)),
)
CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}
assert max(vc.minimum for c in CHECKS for vc in c.versions) == MAX_MINOR


@record(frozen=True)
class Violation:
    check: str  # upstream check id
    reason: str  # PSA ForbiddenReason
    detail: str  # PSA ForbiddenDetail (may be empty)

    @property
    def message(self) -> str:
        return render(self.reason, self.detail)

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message}


@record(frozen=True)
class Result:
    level: Level
    version: Version
    violations: tuple[Violation, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return not self.violations

    @property
    def message(self) -> str:
        """PSA's aggregate: `reason (detail), reason (detail)`."""
        return ", ".join(v.message for v in self.violations)


def _plan(level: Level, minor: int) -> tuple[tuple[str, CheckFn], ...]:
    """The (check id, function) list upstream runs at level and v1.<minor>, in its order."""
    if level is Level.PRIVILEGED:
        return ()
    base = [(c.id, vc) for c in CHECKS if c.level is Level.BASELINE and (vc := c.at(minor)) is not None]
    if level is Level.BASELINE:
        return tuple((cid, vc.check) for cid, vc in base)
    restricted = [(c.id, vc) for c in CHECKS if c.level is Level.RESTRICTED and (vc := c.at(minor)) is not None]
    overridden = {o for _, vc in restricted for o in vc.overrides}
    return tuple((cid, vc.check) for cid, vc in base + restricted if cid not in overridden)


# Compiled on first use: a scan asks for one or two of the (level, minor) plans, not all of them at start-up.
_PLANS: dict[tuple[Level, int], tuple[tuple[str, CheckFn], ...]] = {}


class Evaluator:
    """Compiled once for a level and version; `evaluate` many pods with it."""

    __slots__ = ("level", "plan", "version")

    def __init__(self, level: Level, version: Version = LATEST) -> None:
        self.level = level
        self.version = version
        key = (level, version.effective_minor)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = _plan(*key)
        self.plan = plan

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(cid for cid, _ in self.plan)

    def evaluate(self, pod: Any) -> Result:
        p = PodInput.of(pod)
        out = []
        for cid, fn in self.plan:
            hit = fn(p)
            if hit is not None:
                out.append(Violation(cid, hit[0] or "unknown forbidden reason", hit[1]))
        return Result(self.level, self.version, tuple(out))


def evaluate(pod: Any, level: Level | str, version: Version | str = LATEST) -> Result:
    """Judge one pod (dict, PodView or Resource) as PSA would at `level` and `version`."""
    from .versions import parse_level, parse_version

    lv = parse_level(level) if isinstance(level, str) else level
    ver = parse_version(version) if isinstance(version, str) else version
    return Evaluator(lv, ver).evaluate(pod)


def checks_at(level: Level, version: Version = LATEST) -> Sequence[str]:
    return Evaluator(level, version).check_ids


def overriding(check_id: str, minor: int) -> Iterable[str]:
    """The restricted checks that replace `check_id` at v1.<minor> (for conformance and docs)."""
    for c in CHECKS:
        vc = c.at(minor) if c.level is Level.RESTRICTED else None
        if vc is not None and check_id in vc.overrides:
            yield c.id
