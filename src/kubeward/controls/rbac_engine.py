"""RBAC controls backed by the RBAC engine (effective permissions, aggregation, escalation paths).

The simple per-rule checks live in controls/rbac.py (KW-R0xx); these need the whole picture: which subjects
a binding really reaches, what aggregation injects into bound roles, which pods inherit a service account's
grants, and how one grant chains into full authority.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Severity
from ..resource import Resource
from ..snapshot import Snapshot
from .registry import control

# The engine is loaded when one of these controls first runs, not when the controls are listed: a two-process
# scan forks after listing them, and only the process running the cross-object controls needs it.
if TYPE_CHECKING:
    from ..engines.rbac import RBACIndex
    from ..engines.rbac.paths import EscalationGraph


def _index(snapshot: Snapshot) -> RBACIndex:
    """One compiled index per snapshot, shared by the controls of one scan."""
    from ..engines.rbac import RBACIndex
    from .settings import current

    version = current().rbac_data_version  # scan --k8s-version: the bootstrap policy merged is that version's
    return snapshot.derived(f"rbac.index@{version}", lambda s: RBACIndex.from_snapshot(s, k8s_version=version),
                            update=RBACIndex.updated)  # the monitor patches the index per binding changed


BINDINGS = ("RoleBinding", "ClusterRoleBinding")


def _no_input(snapshot: Snapshot, *kinds: str) -> bool:
    """True when the inputs hold none of `kinds`: then every binding (or role) in the index is the bootstrap
    policy's (resource None), which these controls never report, so the index need not be compiled."""
    return not snapshot.of_kind(*kinds)


def _escalations(snapshot: Snapshot) -> EscalationGraph:
    """The escalation graph of the snapshot's index, built once and shared by KW-R101 and the attack graph
    (kubeward.paths): it is the costliest part of both."""
    from ..engines.rbac.paths import escalation_graph, updated_escalation_graph
    from .settings import current

    version = current().rbac_data_version
    return snapshot.derived(f"rbac.escalations@{version}", lambda s: escalation_graph(_index(s), s),
                            update=lambda g, s, changes: updated_escalation_graph(g, _index(s), s, changes))


@control(
    "KW-R101", "Privilege-escalation path to cluster-admin", "critical", "rbac",
    frameworks=("nsa", "mitre-T1078", "mitre-T1098"),
    remediation="Break the first link: narrow or remove the binding that grants it (pod creation in a "
                "namespace with powerful service accounts, token creation, impersonation, bind or escalate).",
    description="A graph search over effective permissions (kubeward rbac paths) from every subject to "
                "cluster-admin through pod creation, token creation, impersonation, bind and escalate; the finding "
                "points at the binding that grants the first step. Upstream: "
                "kubernetes.io/docs/concepts/security/rbac-good-practices/ (privilege escalation risks); "
                "kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-"
                "bootstrapping.",
    shape="snapshot",
)
def escalation_path(snapshot: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    if _no_input(snapshot, *BINDINGS):
        return  # every first binding would be a bootstrap one, skipped below
    from ..engines.rbac.paths import escalation_paths

    idx = _index(snapshot)
    for path in escalation_paths(idx, snapshot, graph=_escalations(snapshot)):
        b = path.first_binding
        if b is None or b.resource is None or b.bootstrap:
            continue
        yield b.resource, "/roleRef", f"{path.start} reaches cluster-admin: {path}"


@control(
    "KW-R102", "Pod runs as a service account with critical RBAC permissions", "high", "rbac",
    frameworks=("nsa", "cis-5.1.6", "mitre-T1528"),
    remediation="Run the pod as a dedicated service account with only what it needs, or set "
                "automountServiceAccountToken: false when it does not call the API.",
    description="Fails for each pod that mounts its service account token when the token's effective "
                "permissions (its own bindings and the service-account groups) include a critical category: a "
                "compromised container inherits them. Upstream: "
                "kubernetes.io/docs/concepts/security/rbac-good-practices/; CIS 5.1.6.",
    shape="snapshot",
)
def pod_inherits_critical(snapshot: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    if _no_input(snapshot, *BINDINGS):
        return  # find_risks(include_defaults=False) skips every bootstrap binding
    from ..engines.rbac.risks import find_risks
    from ..engines.rbac.workloads import pods_by_service_account

    idx = _index(snapshot)
    risks = find_risks(idx, pods_by_service_account(snapshot), include_defaults=False,
                       min_severity=Severity.CRITICAL)
    per_pod: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in risks:
        for pod in r.pods:
            if pod.token_mounted:
                per_pod[(pod.kind, pod.namespace, pod.name)].append(
                    f"{r.category.id} via {r.subject_text} ({r.paths[0].binding.describe()})")
    for (kind, ns, name), why in sorted(per_pod.items()):
        res = snapshot.get(kind, ns, name)
        if res is None:
            continue
        view = res.pod()
        base = view.spec_path if view is not None else "/spec"
        yield res, f"{base}/serviceAccountName", "its service account token holds " + "; ".join(sorted(set(why)))


@control(
    "KW-R105", "RBAC object defined twice in the inputs", "medium", "rbac",
    frameworks=("nsa",),
    remediation="Keep one definition per kind, namespace and name; to change a binding's roleRef, delete the "
                "binding and create it anew.",
    shape="snapshot", kinds=("Role", "ClusterRole", *BINDINGS),
)
def duplicate_rbac_object(snapshot: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    """No Role, ClusterRole, RoleBinding or ClusterRoleBinding is defined twice in the inputs. The cluster holds
    one object per name: `kubectl apply` of the inputs in order leaves the last copy, except that a later
    binding copy changing roleRef is refused (the roleRef of a binding is immutable) and the earlier stays. The
    RBAC answers follow that copy; the one reported here grants nothing in the cluster, whatever a reader of
    the files believes. Upstream: apiserver registry/generic/registry/store.go (one object per namespace and
    name); pkg/apis/rbac/validation/validation.go ValidateRoleBindingUpdate (roleRef immutable)."""
    if _no_input(snapshot, "Role", "ClusterRole", *BINDINGS):
        return
    for d in _index(snapshot).duplicates:
        yield d.copy, "/metadata/name", d.message()


@control(
    "KW-R103", "Binding references a role that does not exist", "low", "rbac",
    frameworks=("cis-5.1",),
    remediation="Delete the binding or create the role it names; a later role with that name is granted "
                "silently to the binding's subjects.",
    shape="snapshot",
)
def dangling_binding(snapshot: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    """Every RoleBinding and ClusterRoleBinding names a role that exists (in the input or among the bootstrap
    ClusterRoles of --k8s-version): a binding to a missing role grants nothing now, but a role created later
    with that name is granted silently to the binding's subjects. Upstream: the RBAC docs (roleRef;
    kubernetes.io/docs/reference/access-authn-authz/rbac/); CIS 5.1."""
    if not snapshot.of_kind("Role", "ClusterRole") or _no_input(snapshot, *BINDINGS):
        return  # bindings scanned without any roles: nothing to judge against; or no binding in the inputs
    idx = _index(snapshot)
    for b in idx.bindings:  # built-in bootstrap ClusterRoles count as present (every cluster has them)
        if b.role_key not in idx.roles and b.resource is not None:
            yield b.resource, "/roleRef/name", idx._missing_message(b)


@control(
    "KW-R104", "ClusterRole aggregates critical permissions into a bound role", "high", "rbac",
    frameworks=("nsa", "cis-5.1.3", "mitre-T1098"),
    remediation="Remove the aggregate-to-* label from the ClusterRole, or narrow its rules: aggregation "
                "adds them to every subject of the aggregating role (admin, edit, view…).",
    description="Computed like the clusterroleaggregation controller (pkg/controller/clusterroleaggregation): "
                "the labelled role's critical rules end up in the aggregating role, which is bound to subjects "
                "who never see this role. Upstream: "
                "kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles; CIS 5.1.3.",
    shape="snapshot",
)
def aggregation_injects(snapshot: Snapshot) -> Iterator[tuple[Resource, str, str]]:
    if _no_input(snapshot, "ClusterRole"):
        return  # only an input ClusterRole is reported (bootstrap ones have no resource or the bootstrap label)
    from ..engines.rbac.risks import CATEGORIES, RoleProbes

    critical = [c for c in CATEGORIES if c.severity >= Severity.CRITICAL]
    idx = _index(snapshot)
    rp = RoleProbes(idx)
    bound = {b.role_name for b in idx.bindings if b.role_kind == "ClusterRole"}
    for target, sources in sorted(idx.aggregated_from.items()):
        if target not in bound:
            continue
        for src in sources:
            res = idx.role_objects.get(("ClusterRole", "", src))
            if res is None or res.labels.get("kubernetes.io/bootstrapping") == "rbac-defaults":
                continue
            granted = rp.of(("ClusterRole", "", src))
            hit = [c.id for c in critical if any(all(p in granted for p in alt) for alt in c.any_of)]
            if hit:
                yield res, "/metadata/labels", (f'rules aggregated into bound ClusterRole "{target}" grant: '
                                                f"{', '.join(hit)}")
