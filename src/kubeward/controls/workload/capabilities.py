"""Linux capabilities added and kept (check_capabilities_baseline.go, check_capabilities_restricted.go).

Each added capability is one finding: a dangerous one by its own control (KW-W011..W017), any other outside the
runtime default set by KW-W010 (both fail baseline and restricted), one of the default set other than
NET_BIND_SERVICE by KW-W056 (restricted only). Together they are exactly the two PSS checks' add halves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...engines.pss.baseline import (
    CAPABILITIES_ALLOWED_1_0,
    privileged,
)
from ...engines.pss.restricted import drops_all, restricted_add_allowed
from ...resource import PodView
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    _caps,
    _containers,
    _deepest,
    _name,
    _norm_cap,
    _windows,
)

# ------------------------------------------------------------------------------------------ capabilities

# check_capabilities_baseline.go: the container runtime default set, the only ones baseline allows to add.
BASELINE_CAPS = CAPABILITIES_ALLOWED_1_0
# Every capability outside the default set fails both levels (check_capabilities_restricted.go allows only
# NET_BIND_SERVICE), so the controls reporting one carry both.
_PSS_ADD = pss_frameworks("capabilities_baseline", "capabilities_restricted")


def _adds(pod: PodView) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(container, pointer, name as written) of every capabilities.add entry."""
    for c, path, _ in _containers(pod):
        for i, cap in enumerate(_caps(c, "add")):
            yield c, f"{path}/securityContext/capabilities/add/{i}", cap


# Normalised name (the runtimes upper-case and strip CAP_) -> the control reporting it, filled by `_added`.
SPECIFIC_CAPS: dict[str, str] = {}


def _added(cid: str, cap_set: frozenset[str], what: str) -> Any:
    SPECIFIC_CAPS.update(dict.fromkeys(cap_set, cid))

    def check(pod: PodView) -> Iterator[Hit]:
        for c, ptr, cap in _adds(pod):
            if _norm_cap(cap) in cap_set:
                yield ptr, f'container "{_name(c)}" adds {cap}{what}'
    return check


@control(
    "KW-W010", "Capability added beyond the runtime default set", "medium", "workload",
    frameworks=("nsa", "cis-5.2.9", *_PSS_ADD),
    remediation="Add only capabilities from the default runtime set (ideally only NET_BIND_SERVICE).",
)
def extra_capabilities(pod: PodView) -> Iterator[Hit]:
    """Fails for each capabilities.add entry of an init, regular or ephemeral container that is not, as written,
    in the container runtime default set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
    NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT), and not one of the dangerous capabilities
    KW-W011..W017 report. The comparison is literal as upstream's, so "CAP_CHOWN" or "chown" fail too. Each
    extra capability widens what a compromised process may do to the kernel. Upstream: Pod Security Standards,
    baseline 'Capabilities' (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_capabilities_baseline.go; CIS 5.2.9."""
    for c, ptr, cap in _adds(pod):
        # pss compares the literal string, so "CAP_CHOWN" or "chown" are not in the allowed set either; a
        # dangerous capability is its own control's finding
        if cap not in BASELINE_CAPS and _norm_cap(cap) not in SPECIFIC_CAPS:
            yield ptr, f'container "{_name(c)}" adds capability {cap}'


_MATCH = ("Fails for each capabilities.add entry of an init, regular or ephemeral container naming {} (compared "
          "upper-cased, CAP_ prefix optional, as the container runtimes read it).")
_UP = ("Upstream: Pod Security Standards, baseline 'Capabilities' "
       "(kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission "
       "policy/check_capabilities_baseline.go; capabilities(7); {}.")
# (id, title, severity, CIS section, MITRE techniques, capabilities, what adding one means, remediation,
#  description)
_DANGEROUS: tuple[tuple[str, str, str, str, tuple[str, ...], frozenset[str], str, str, str], ...] = (
    ("KW-W011", "CAP_SYS_ADMIN added", "critical", "cis-5.2.9", ("mitre-T1611",), frozenset({"SYS_ADMIN"}),
     " (near-root on the node: mount, namespaces, BPF)",
     "Remove SYS_ADMIN from capabilities.add; it is nearly equivalent to privileged.",
     " ".join((_MATCH.format("SYS_ADMIN"), "SYS_ADMIN permits mount, namespace, BPF and device administration: most "
               "container escapes need only it.", _UP.format("CIS 5.2.9")))),
    ("KW-W012", "CAP_NET_ADMIN added", "high", "cis-5.2.9", ("mitre-T1557",), frozenset({"NET_ADMIN"}),
     " (can reconfigure interfaces, routes and iptables)",
     "Remove NET_ADMIN from capabilities.add; leave network configuration to the CNI plugin.",
     " ".join((_MATCH.format("NET_ADMIN"), "NET_ADMIN reconfigures interfaces, routes and netfilter rules: the pod "
               "can redirect or intercept traffic and undo network isolation.", _UP.format("CIS 5.2.9")))),
    ("KW-W013", "CAP_NET_RAW added", "medium", "cis-5.2.8", ("mitre-T1040",), frozenset({"NET_RAW"}),
     " (raw sockets: spoofing and sniffing)",
     "Remove NET_RAW from capabilities.add; it enables ARP/DNS spoofing inside the cluster network.",
     " ".join((_MATCH.format("NET_RAW"), "NET_RAW opens raw and packet sockets: ARP and DNS spoofing and sniffing "
               "of the pod network.", _UP.format("CIS 5.2.8")))),
    ("KW-W014", "CAP_SYS_PTRACE added", "high", "cis-5.2.9", ("mitre-T1055",), frozenset({"SYS_PTRACE"}),
     " (can trace and inject into other processes)", "Remove SYS_PTRACE from capabilities.add.",
     " ".join((_MATCH.format("SYS_PTRACE"), "SYS_PTRACE traces and injects code into other processes it can see "
               "(all of the node's with hostPID).", _UP.format("CIS 5.2.9")))),
    ("KW-W015", "CAP_SYS_MODULE added", "critical", "cis-5.2.9", ("mitre-T1611", "mitre-T1547.006"),
     frozenset({"SYS_MODULE"}), " (can load kernel modules)",
     "Remove SYS_MODULE from capabilities.add; loading kernel modules is a node takeover.",
     " ".join((_MATCH.format("SYS_MODULE"), "SYS_MODULE loads kernel modules: code in the node's kernel.",
               _UP.format("CIS 5.2.9")))),
    ("KW-W016", "All capabilities added", "critical", "cis-5.2.9", ("mitre-T1611",), frozenset({"ALL"}), "",
     "Never add ALL; add only the specific capability the process needs.",
     " ".join((_MATCH.format("ALL"), "ALL grants every capability, which is most of what privileged: true grants.",
               _UP.format("CIS 5.2.9")))),
    ("KW-W017", "Other dangerous capability added", "high", "cis-5.2.9", ("mitre-T1611",), frozenset({
        "DAC_READ_SEARCH", "SYS_RAWIO", "BPF", "PERFMON", "SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE",
        "SYSLOG", "LINUX_IMMUTABLE", "SYS_RESOURCE", "CHECKPOINT_RESTORE", "WAKE_ALARM", "BLOCK_SUSPEND"}),
     " (host-level kernel privilege)",
     "Remove DAC_READ_SEARCH, SYS_RAWIO, BPF, PERFMON, SYS_BOOT, SYS_TIME, MAC_ADMIN, MAC_OVERRIDE, SYSLOG and "
     "similar from capabilities.add.",
     " ".join((_MATCH.format("DAC_READ_SEARCH, SYS_RAWIO, BPF, PERFMON, SYS_BOOT, SYS_TIME, MAC_ADMIN, MAC_OVERRIDE, "
                             "SYSLOG, LINUX_IMMUTABLE, SYS_RESOURCE, CHECKPOINT_RESTORE, WAKE_ALARM or BLOCK_SUSPEND"),
               "Each is host-level kernel privilege (reading any file by handle, raw I/O, BPF programs, the clock, "
               "security modules, rebooting).", _UP.format("CIS 5.2.9")))),
)
for _cid, _title, _sev, _cis, _mitre, _set, _what, _fix, _doc in _DANGEROUS:
    control(_cid, _title, _sev, "workload", frameworks=("nsa", _cis, *_mitre, *_PSS_ADD),
            remediation=_fix, description=_doc)(_added(_cid, _set, _what))
# No dangerous name is in the default set, so a capability they report fails baseline as KW-W010's would.
assert not {c for c in SPECIFIC_CAPS if c in BASELINE_CAPS}


@control(
    "KW-W056", "Capability added other than NET_BIND_SERVICE", "low", "workload",
    frameworks=("nsa", "cis-5.2.9", *pss_frameworks("capabilities_restricted")),
    remediation="Add no capabilities except NET_BIND_SERVICE (drop ALL first).",
)
def restricted_capabilities(pod: PodView) -> Iterator[Hit]:
    """Fails for each capabilities.add entry of an init, regular or ephemeral container that is in the runtime
    default set but is not, literally, NET_BIND_SERVICE (entries outside that set are KW-W010's and KW-W011..W017's);
    Windows pods (spec.os.name: windows) are exempt. Restricted lets a process keep only the right to bind low
    ports. Upstream: Pod Security Standards, restricted 'Capabilities'
    (kubernetes.io/docs/concepts/security/pod-security-standards/); pod-security-admission
    policy/check_capabilities_restricted.go; CIS 5.2.9."""
    # check_capabilities_restricted.go: add may contain only NET_BIND_SERVICE (literal); Windows pods exempt.
    # What is outside the default set is reported above (it fails baseline too): here the rest of that set.
    if not _windows(pod):
        yield from ((ptr, f'container "{_name(c)}" adds {cap}') for c, ptr, cap in _adds(pod)
                    if cap in BASELINE_CAPS and not restricted_add_allowed(cap))


def _drops(c: dict[str, Any], cap: str) -> bool:
    # the runtimes compare "ALL" case-insensitively when dropping
    return any(_norm_cap(d) in ("ALL", cap) for d in _caps(c, "drop"))


@control(
    "KW-W018", "Capabilities not dropped", "medium", "workload",
    frameworks=("nsa", "cis-5.2.9", *pss_frameworks("capabilities_restricted")),
    remediation="Set securityContext.capabilities.drop: [ALL] and add back only what is needed.",
)
def not_drop_all(pod: PodView) -> Iterator[Hit]:
    """Fails for each init, regular or ephemeral container whose securityContext.capabilities.drop does not
    contain the literal "ALL"; Windows pods (spec.os.name: windows) are exempt. Without it the container keeps
    the runtime's default capabilities (CHOWN, DAC_OVERRIDE, SETUID, NET_RAW on most runtimes...). Upstream: Pod
    Security Standards, restricted 'Capabilities' (kubernetes.io/docs/concepts/security/pod-security-standards/);
    pod-security-admission policy/check_capabilities_restricted.go; CIS 5.2.9."""
    # check_capabilities_restricted.go: every container must drop the literal "ALL" (Windows pods exempt since
    # 1.25); with the add controls above this is the PSS capabilities_restricted check.
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        if not drops_all(c):
            yield (_deepest(path, c, ("securityContext", "capabilities", "drop")),
                   f'container "{_name(c)}" does not drop ALL capabilities')


@control(
    "KW-W019", "NET_RAW not dropped", "low", "workload",
    frameworks=("cis-5.2.8", "mitre-T1040"),
    remediation="Drop NET_RAW (or ALL) in securityContext.capabilities.drop.",
)
def net_raw_kept(pod: PodView) -> Iterator[Hit]:
    """Fails for each init, regular or ephemeral container that is not privileged (KW-W001), drops neither
    NET_RAW nor ALL (upper-cased, CAP_ prefix optional) and does not add NET_RAW itself (KW-W013); Windows pods
    are exempt. Docker and containerd grant NET_RAW by default: raw sockets allow ARP and DNS spoofing of
    neighbouring pods. Upstream: CIS Kubernetes Benchmark 5.2.8 (minimize containers with NET_RAW); the
    capabilities of kubernetes.io/docs/tasks/configure-pod-container/security-context/; MITRE ATT&CK T1040."""
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        if privileged(c):
            continue  # KW-W001 reports it
        if _drops(c, "NET_RAW"):
            continue
        if not any(_norm_cap(a) == "NET_RAW" for a in _caps(c, "add")):
            yield (_deepest(path, c, ("securityContext", "capabilities", "drop")),
                   f'container "{_name(c)}" keeps the default NET_RAW capability')
