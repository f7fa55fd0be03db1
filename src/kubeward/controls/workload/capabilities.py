"""Linux capabilities added and kept (check_capabilities_baseline.go, check_capabilities_restricted.go)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...engines.pss.baseline import (
    CAPABILITIES_ALLOWED_1_0,
)
from ...engines.pss.restricted import drops_all
from ...resource import PodView
from ..pss import pss_frameworks
from ..registry import Hit, control
from .common import (
    _caps,
    _containers,
    _d,
    _deepest,
    _name,
    _norm_cap,
    _windows,
    pss_input,
)

# ------------------------------------------------------------------------------------------ capabilities

# check_capabilities_baseline.go: the container runtime default set, the only ones baseline allows to add.
BASELINE_CAPS = CAPABILITIES_ALLOWED_1_0


def _added(cap_set: frozenset[str], what: str) -> Any:
    def check(pod: PodView) -> Iterator[Hit]:
        for c, path, _ in _containers(pod):
            for i, cap in enumerate(_caps(c, "add")):
                if _norm_cap(cap) in cap_set:
                    yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds {cap}{what}'
    return check


@control(
    "KW-W010", "Capability added beyond the runtime default set", "medium", "workload",
    frameworks=("nsa", "cis-5.2.9", *pss_frameworks("capabilities_baseline")),
    remediation="Add only capabilities from the default runtime set (ideally only NET_BIND_SERVICE).",
)
def extra_capabilities(pod: PodView) -> Iterator[Hit]:
    for c, path, _ in _containers(pod):
        for i, cap in enumerate(_caps(c, "add")):
            # pss compares the literal string, so "CAP_CHOWN" or "chown" are not in the allowed set either
            if cap not in BASELINE_CAPS:
                yield f"{path}/securityContext/capabilities/add/{i}", f'container "{_name(c)}" adds capability {cap}'


control(
    "KW-W011", "CAP_SYS_ADMIN added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Remove SYS_ADMIN from capabilities.add; it is nearly equivalent to privileged.",
)(_added(frozenset({"SYS_ADMIN"}), " (near-root on the node: mount, namespaces, BPF)"))
control(
    "KW-W012", "CAP_NET_ADMIN added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1557"),
    remediation="Remove NET_ADMIN from capabilities.add; leave network configuration to the CNI plugin.",
)(_added(frozenset({"NET_ADMIN"}), " (can reconfigure interfaces, routes and iptables)"))
control(
    "KW-W013", "CAP_NET_RAW added", "medium", "workload",
    frameworks=("nsa", "cis-5.2.8", "mitre-T1040"),
    remediation="Remove NET_RAW from capabilities.add; it enables ARP/DNS spoofing inside the cluster network.",
)(_added(frozenset({"NET_RAW"}), " (raw sockets: spoofing and sniffing)"))
control(
    "KW-W014", "CAP_SYS_PTRACE added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1055"),
    remediation="Remove SYS_PTRACE from capabilities.add.",
)(_added(frozenset({"SYS_PTRACE"}), " (can trace and inject into other processes)"))
control(
    "KW-W015", "CAP_SYS_MODULE added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611", "mitre-T1547.006"),
    remediation="Remove SYS_MODULE from capabilities.add; loading kernel modules is a node takeover.",
)(_added(frozenset({"SYS_MODULE"}), " (can load kernel modules)"))
control(
    "KW-W016", "All capabilities added", "critical", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Never add ALL; add only the specific capability the process needs.",
)(_added(frozenset({"ALL"}), ""))
control(
    "KW-W017", "Other dangerous capability added", "high", "workload",
    frameworks=("nsa", "cis-5.2.9", "mitre-T1611"),
    remediation="Remove DAC_READ_SEARCH, SYS_RAWIO, BPF, PERFMON, SYS_BOOT, SYS_TIME, MAC_ADMIN, MAC_OVERRIDE, "
    "SYSLOG and similar from capabilities.add.",
)(_added(frozenset({
    "DAC_READ_SEARCH", "SYS_RAWIO", "BPF", "PERFMON", "SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE",
    "SYSLOG", "LINUX_IMMUTABLE", "SYS_RESOURCE", "CHECKPOINT_RESTORE", "WAKE_ALARM", "BLOCK_SUSPEND",
}), " (host-level kernel privilege)"))


def _drops(c: dict[str, Any], cap: str) -> bool:
    # the runtimes compare "ALL" case-insensitively when dropping
    return any(_norm_cap(d) in ("ALL", cap) for d in _caps(c, "drop"))


@control(
    "KW-W018", "Capabilities not dropped", "medium", "workload",
    frameworks=("nsa", "cis-5.2.9", *pss_frameworks("capabilities_restricted")),
    remediation="Set securityContext.capabilities.drop: [ALL] and add back only what is needed.",
)
def not_drop_all(pod: PodView) -> Iterator[Hit]:
    # check_capabilities_restricted.go: every container must drop the literal "ALL" (Windows pods exempt since
    # 1.25); with KW-W056 (the add half) this is the PSS capabilities_restricted check.
    if pss_input(pod).windows:
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
    if _windows(pod):
        return
    for c, path, _ in _containers(pod):
        if _d(c.get("securityContext")).get("privileged") is True:
            continue  # KW-W001 reports it
        if _drops(c, "NET_RAW"):
            continue
        if not any(_norm_cap(a) == "NET_RAW" for a in _caps(c, "add")):
            yield (_deepest(path, c, ("securityContext", "capabilities", "drop")),
                   f'container "{_name(c)}" keeps the default NET_RAW capability')
