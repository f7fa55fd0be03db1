"""CIS 1.12 section 5 (Kubernetes Policies) in the node benchmark view, answered from the API (`node check
--cluster`) by the registry's controls that carry the check's `cis-5.x.y` framework.

Ids and requirement texts are kube-bench's cfg/cis-1.12/policies.yaml. A check no registered control answers is
MANUAL with how to check it by hand; one whose controls judged nothing (no object of their kinds was read) is
WARN, never PASS.
"""

from __future__ import annotations

from ...findings import Finding, Report
from .benchmark import FAIL, MANUAL_STATE, PASS, SKIP, WARN, BenchmarkCheck

SECTIONS = {
    "5": "Kubernetes Policies", "5.1": "RBAC and Service Accounts", "5.2": "Pod Security Standards",
    "5.3": "Network Policies and CNI", "5.4": "Secrets Management", "5.5": "Extensible Admission Control",
    "5.6": "General Policies",
}

POLICIES: dict[str, str] = {
    "5.1.1": "Ensure that the cluster-admin role is only used where required",
    "5.1.2": "Minimize access to secrets",
    "5.1.3": "Minimize wildcard use in Roles and ClusterRoles",
    "5.1.4": "Minimize access to create pods",
    "5.1.5": "Ensure that default service accounts are not actively used",
    "5.1.6": "Ensure that Service Account Tokens are only mounted where necessary",
    "5.1.7": "Avoid use of system:masters group",
    "5.1.8": "Limit use of the Bind, Impersonate and Escalate permissions in the Kubernetes cluster",
    "5.1.9": "Minimize access to create persistent volumes",
    "5.1.10": "Minimize access to the proxy sub-resource of nodes",
    "5.1.11": "Minimize access to the approval sub-resource of certificatesigningrequests objects",
    "5.1.12": "Minimize access to webhook configuration objects",
    "5.1.13": "Minimize access to the service account token creation",
    "5.2.1": "Ensure that the cluster has at least one active policy control mechanism in place",
    "5.2.2": "Minimize the admission of privileged containers",
    "5.2.3": "Minimize the admission of containers wishing to share the host process ID namespace",
    "5.2.4": "Minimize the admission of containers wishing to share the host IPC namespace",
    "5.2.5": "Minimize the admission of containers wishing to share the host network namespace",
    "5.2.6": "Minimize the admission of containers with allowPrivilegeEscalation",
    "5.2.7": "Minimize the admission of root containers",
    "5.2.8": "Minimize the admission of containers with the NET_RAW capability",
    "5.2.9": "Minimize the admission of containers with capabilities assigned",
    "5.2.10": "Minimize the admission of Windows HostProcess containers",
    "5.2.11": "Minimize the admission of HostPath volumes",
    "5.2.12": "Minimize the admission of containers which use HostPorts",
    "5.3.1": "Ensure that the CNI in use supports NetworkPolicies",
    "5.3.2": "Ensure that all Namespaces have NetworkPolicies defined",
    "5.4.1": "Prefer using Secrets as files over Secrets as environment variables",
    "5.4.2": "Consider external secret storage",
    "5.5.1": "Configure Image Provenance using ImagePolicyWebhook admission controller",
    "5.6.1": "Create administrative boundaries between resources using namespaces",
    "5.6.2": "Ensure that the seccomp profile is set to docker/default in your Pod definitions",
    "5.6.3": "Apply SecurityContext to your Pods and Containers",
    "5.6.4": "The default namespace should not be used",
}

# Checks no API object answers: how to check them by hand.
BY_HAND = {
    "5.1.7": "system:masters is a certificate's organisation, not an API object: `kubeward pki check` and the "
             "audit log's user groups show who holds it",
    "5.3.1": "whether the CNI plugin enforces NetworkPolicy is the plugin's property (kubeward netpol's "
             "differential tests show what enforcement means)",
    "5.4.2": "an external secret store is an architecture decision",
    "5.5.1": "ImagePolicyWebhook is an apiserver admission plugin: --enable-admission-plugins and its "
             "--admission-control-config-file",
    "5.6.3": "which securityContext a workload needs is the workload's; 5.2.x and the scan's workload controls "
             "judge the settings that matter",
}
DETAILS = 5


def policy_checks(report: Report) -> list[BenchmarkCheck]:
    """One line per section-5 check from a report that holds the registry's run over a cluster snapshot."""
    controls: dict[str, list[str]] = {}
    for cid, res in report.controls.items():
        for fw in res.meta.frameworks:
            if fw.startswith("cis-5."):
                controls.setdefault(fw.removeprefix("cis-"), []).append(cid)
    failing: dict[str, list[Finding]] = {}
    for f in report.findings:
        failing.setdefault(f.control.id, []).append(f)
    excepted = {f.control.id for f in report.suppressed}
    out: list[BenchmarkCheck] = []
    for number, title in POLICIES.items():
        section = ".".join(number.split(".")[:2])
        ids = controls.get(number, [])
        if not ids:
            how = BY_HAND.get(number, "no kubeward control answers it from the API")
            out.append(BenchmarkCheck(number, title, MANUAL_STATE, section, (f"check by hand: {how}",)))
            continue
        found = [f for cid in ids for f in failing.get(cid, [])]
        if found:
            details = tuple(f"{f.control.id} {f.object.kind} {f.object.namespace + '/' if f.object.namespace else ''}"
                            f"{f.object.name}: {f.message}" for f in found)
            out.append(BenchmarkCheck(number, title, FAIL, section, details,
                                      f"see {', '.join(sorted(set(f.control.id for f in found)))}"))
        elif any(cid in excepted for cid in ids):
            out.append(BenchmarkCheck(number, title, SKIP, section, ("every finding excepted",)))
        elif any(report.controls[cid].evaluated for cid in ids):
            out.append(BenchmarkCheck(number, title, PASS, section))
        else:
            out.append(BenchmarkCheck(number, title, WARN, section,
                                      (f"not assessed: {', '.join(ids)} found no object to judge in the cluster",)))
    return out


def cluster_report(kubeconfig: str | None, context: str | None) -> Report:
    """The registry's section-5 controls over the live cluster (read as `scan --cluster` reads it); exceptions
    are applied once, to the merged node report, by the caller."""
    from ...cli.live import load_cluster_cli
    from ...exceptions import Exceptions
    from ...scan import ScanOptions, scan
    from ..registry import all_controls

    registry = all_controls()
    metas = registry.values() if isinstance(registry, dict) else registry
    wanted = sorted({fw for c in metas for fw in c.meta.frameworks if fw.removeprefix("cis-") in POLICIES})
    snapshot = load_cluster_cli(kubeconfig, context)
    return scan(snapshot, ScanOptions(frameworks=tuple(wanted), exceptions=Exceptions()))


def merge(node: Report, cluster: Report) -> Report:
    """One report: the node's checks and the cluster's section-5 controls (every format renders it)."""
    node.objects += cluster.objects
    node.findings += cluster.findings
    node.suppressed += cluster.suppressed
    node.errors += cluster.errors
    node.not_assessed += cluster.not_assessed
    node.controls.update(cluster.controls)
    node.evaluated_objects.update(cluster.evaluated_objects)
    node.findings.sort(key=lambda f: (-f.severity, f.control.id))
    return node
