"""The benchmark view of a node report (kube-bench's layout): every CIS check with a state, the checks node files
cannot settle as MANUAL."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...findings import Finding, Report
from .base import CONTROL_PLANE, OFFLINE
from .runner import needs, node_checks

# Section names and the checks kubeward does not judge from node files: kube-bench cfg/cis-1.12/master.yaml,
# etcd.yaml and node.yaml. Their titles are the benchmark's requirement text without "(Automated)"/"(Manual)".

SECTIONS = {
    "1": "Control Plane Security Configuration", "1.1": "Control Plane Node Configuration Files",
    "1.2": "API Server", "1.3": "Controller Manager", "1.4": "Scheduler",
    "2": "Etcd Node Configuration",
    "4": "Worker Node Security Configuration", "4.1": "Worker Node Configuration Files", "4.2": "Kubelet",
    "4.3": "kube-proxy",
}
TARGETS = {"1": "master", "2": "etcd", "4": "node"}  # kube-bench's `== Summary <target> ==` names

# id -> (requirement, how to check it by hand: why node files alone cannot settle it)
MANUAL: dict[str, tuple[str, str]] = {
    "1.1.9": ("Ensure that the Container Network Interface file permissions are set to 600 or more restrictive",
              "the CNI configuration directory is the kubelet's or runtime's choice: stat -c %a <cni-conf-dir>/*"),
    "1.1.10": ("Ensure that the Container Network Interface file ownership is set to root:root",
               "stat -c %U:%G <cni-conf-dir>/*"),
    "1.1.12": ("Ensure that the etcd data directory ownership is set to etcd:etcd",
               "the etcd user is the node's own (kubeadm runs etcd as root): stat -c %U:%G /var/lib/etcd"),
    "1.2.3": ("Ensure that the --DenyServiceExternalIPs is set",
              "whether Services may set externalIPs is a cluster decision (CVE-2020-8554)"),
    "1.2.20": ("Ensure that the --request-timeout argument is set as appropriate",
               "the right timeout depends on the workload (default 60s)"),
    "1.3.1": ("Ensure that the --terminated-pod-gc-threshold argument is set as appropriate",
              "the right threshold depends on the cluster size (default 12500)"),
}

PASS, FAIL, WARN, MANUAL_STATE, SKIP = "PASS", "FAIL", "WARN", "MANUAL", "SKIP"
STATES = (PASS, FAIL, WARN, MANUAL_STATE, SKIP)


@dataclass(frozen=True, slots=True)
class BenchmarkCheck:
    """One line of the benchmark view: a CIS id (or a kubeward id beyond the benchmark) and its state."""

    number: str
    title: str
    state: str
    section: str  # "1.2"; a kubeward check sits in the section of the component it judges
    details: tuple[str, ...] = ()
    remediation: str = ""


def _number_key(number: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", number))


def _section(number: str) -> str:
    """`1.2.7` is in 1.2; etcd's checks (`2.1`) have one level."""
    parts = number.split(".")
    return parts[0] if parts[0] == "2" else ".".join(parts[:2])


def _cis_number(cid: str) -> str | None:
    return cid.removeprefix("KW-CIS-") if cid.startswith("KW-CIS-") else None


def benchmark(report: Report, *, manual: bool = True) -> list[BenchmarkCheck]:
    """Every check the report ran with its state, from a report `run` built (after exceptions were applied), and
    with `manual` the benchmark checks node files cannot settle.

    FAIL: findings remain. SKIP: every finding was excepted. WARN: not assessed (its component or input was not
    found or not readable): never PASS. PASS: judged, nothing found. MANUAL: not decidable from node files.
    """
    registered = node_checks()
    unread = {n.what: n.reason for n in report.not_assessed}
    worker = all(c in unread for c in CONTROL_PLANE)  # no control plane at all: the reason needs no component
    failing: dict[str, list[Finding]] = {}
    for f in report.findings:
        failing.setdefault(f.control.id, []).append(f)
    excepted: dict[str, list[Finding]] = {}
    for f in report.suppressed:
        excepted.setdefault(f.control.id, []).append(f)
    out: list[BenchmarkCheck] = []
    for cid, res in report.controls.items():
        ctl = registered.get(cid)
        if ctl is None:
            continue
        meta, number, need = ctl.meta, _cis_number(cid), needs(ctl)
        section = _section(number) if number else "1.2"  # KW-NODE-001 judges the API server's audit policy
        shown = number or meta.id
        if meta.id in failing:
            details = tuple(f"{f.message} ({f.location})" if str(f.location) else f.message for f in failing[meta.id])
            out.append(BenchmarkCheck(shown, meta.title, FAIL, section, details, meta.remediation))
        elif meta.id in excepted:
            reasons = sorted({f.suppressed_by or "" for f in excepted[meta.id]})
            out.append(BenchmarkCheck(shown, meta.title, SKIP, section, tuple(f"excepted: {r}" for r in reasons)))
        elif res.evaluated:
            out.append(BenchmarkCheck(shown, meta.title, PASS, section))
        elif unread.get(meta.id, "").startswith(OFFLINE):
            out.append(BenchmarkCheck(shown, meta.title, MANUAL_STATE, section,
                                      ("check by hand: " + unread[meta.id].removeprefix(OFFLINE),)))
        else:
            if meta.id in unread:
                reason = unread[meta.id]
            elif need in unread:
                reason = unread[need] if worker and need in CONTROL_PLANE else f"{need}: {unread[need]}"
            else:
                reason = "not evaluated"
            out.append(BenchmarkCheck(shown, meta.title, WARN, section, (f"not assessed: {reason}",)))
    for number, (title, how) in MANUAL.items() if manual else ():
        out.append(BenchmarkCheck(number, title, MANUAL_STATE, _section(number), (f"check by hand: {how}",)))
    out.sort(key=lambda c: (_number_key(c.section), not c.number[0].isdigit(), _number_key(c.number)))
    return out
