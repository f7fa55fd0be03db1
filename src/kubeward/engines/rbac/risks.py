"""Risky permissions per subject, with the binding path that grants them and the pods that inherit them.

Categories are the union of what rbac-police (lib/*.rego) and KubiScan (risky_roles.yaml) detect, but every
check uses the exact rule matching of the authorizer (matching.py), not a literal subset test: `*` in a
rule covers a probe, a probe never needs a literal `*`. A RoleBinding grants only namespaced probes in its
namespace (cluster-scoped resources carry namespace "" in rule.go VisitRulesFor).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ...findings import Severity
from ...records import field, record
from .index import RBACIndex, RoleKey, paused_gc, role_label
from .matching import rule_allows
from .model import ALL_SERVICE_ACCOUNTS, AUTHENTICATED, MASTERS, UNAUTHENTICATED, Binding, Request, Rule
from .workloads import PodRef

RBAC_GROUP = "rbac.authorization.k8s.io"
PRIVILEGED_NAMESPACE = "kube-system"  # rbac-police treats it as privileged; a grant there is cluster-wide in effect


@record(frozen=True)
class Probe:
    verb: str
    group: str
    resource: str
    sub: str = ""
    cluster_only: bool = False  # a cluster-scoped resource: only ClusterRoleBindings grant it

    def request(self, name: str = "") -> Request:
        return Request(self.verb, self.resource, self.sub, self.group, "", name)

    def __str__(self) -> str:
        res = f"{self.resource}/{self.sub}" if self.sub else self.resource
        return f"{self.verb} {res}" + (f".{self.group}" if self.group else "")


def probes(verbs: str, group: str, resources: str, cluster_only: bool = False) -> list[Probe]:
    out = []
    for v in verbs.split(","):
        for r in resources.split(","):
            res, _, sub = r.partition("/")
            out.append(Probe(v, group, res, sub, cluster_only))
    return out


@record(frozen=True)
class Category:
    id: str
    severity: Severity
    title: str
    any_of: tuple[tuple[Probe, ...], ...]  # satisfied when every probe of one alternative is granted
    source: str


def _cat(id: str, sev: str, title: str, source: str, *alternatives: list[Probe], combine: bool = False) -> Category:
    alts: tuple[tuple[Probe, ...], ...]
    if combine:  # all probes together form one alternative
        alts = (tuple(p for a in alternatives for p in a),)
    else:
        alts = tuple((p,) for a in alternatives for p in a)
    return Category(id, Severity.parse(sev), title, alts, source)


WORKLOADS_APPS = "deployments,daemonsets,statefulsets,replicasets"
CATEGORIES: tuple[Category, ...] = (
    _cat("cluster-admin", "critical", "full control of every resource (verbs, groups and resources all *)",
         "rbac-police cluster_admin; KubiScan */*/*", [Probe("*", "*", "*")]),
    _cat("secrets-read", "critical", "can read secrets", "rbac-police retrieve_secrets; KubiScan get/list secrets",
         probes("get,list,watch", "", "secrets")),
    _cat("bind", "critical", "can bind roles (grant permissions it does not hold)", "rbac-police bind_roles; KubiScan",
         probes("bind", RBAC_GROUP, "roles,clusterroles")),
    _cat("escalate", "critical", "can escalate roles (edit roles beyond its own permissions)",
         "rbac-police escalate_roles", probes("escalate", RBAC_GROUP, "roles,clusterroles")),
    _cat("impersonate", "critical", "can impersonate users, groups or service accounts",
         "rbac-police impersonate; KubiScan impersonate",
         probes("impersonate", "", "users,groups", cluster_only=True), probes("impersonate", "", "serviceaccounts"),
         probes("impersonate", "authentication.k8s.io", "uids", cluster_only=True)),
    _cat("token-request", "critical", "can mint service account tokens (serviceaccounts/token)",
         "rbac-police token_request", probes("create", "", "serviceaccounts/token")),
    _cat("token-secrets", "critical", "can create secrets (service-account-token secrets are filled in)",
         "rbac-police issue_token_secrets", probes("create", "", "secrets")),
    _cat("csr-approve", "critical", "can approve certificate signing requests (mint client certificates)",
         "rbac-police approve_csrs",
         probes("update", "certificates.k8s.io", "certificatesigningrequests/approval", cluster_only=True),
         probes("approve", "certificates.k8s.io", "signers", cluster_only=True), combine=True),
    _cat("pods-create", "high", "can create pods (and so run as any service account of the namespace)",
         "rbac-police assign_sa; KubiScan create pods", probes("create", "", "pods")),
    _cat("workload-write", "high", "can create or update workloads (their pods run as any service account)",
         "KubiScan create/update workloads",
         probes("create,update,patch", "apps", WORKLOADS_APPS), probes("create,update,patch", "batch", "jobs,cronjobs"),
         probes("create,update,patch", "", "replicationcontrollers")),
    _cat("pods-exec", "high", "can exec into or attach to pods", "rbac-police pods_exec; KubiScan pods/exec",
         probes("create,get", "", "pods/exec,pods/attach")),
    _cat("ephemeral-containers", "high", "can add ephemeral containers to pods", "rbac-police pods_ephemeral_ctrs",
         probes("update,patch", "", "pods/ephemeralcontainers")),
    _cat("modify-pods", "high", "can update pods (swap images of running pods)", "rbac-police modify_pods",
         probes("update,patch", "", "pods")),
    _cat("nodes-proxy", "high", "can reach the kubelet API through nodes/proxy", "rbac-police nodes_proxy",
         probes("get,create", "", "nodes/proxy", cluster_only=True)),
    _cat("webhooks", "high", "controls admission webhooks (can intercept or mutate every request)",
         "rbac-police control_webhooks",
         probes("create,update,patch,delete", "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations,validatingwebhookconfigurations", cluster_only=True)),
    _cat("bindings-write", "medium", "can create or change role bindings", "KubiScan rolebindings",
         probes("create,update,patch", RBAC_GROUP, "rolebindings"),
         probes("create,update,patch", RBAC_GROUP, "clusterrolebindings", cluster_only=True)),
    _cat("service-status", "medium", "can modify service status (CVE-2020-8554 traffic interception)",
         "rbac-police modify_service_status_cve_2020_8554", probes("update,patch", "", "services/status")),
    _cat("csr-create", "low", "can request certificates (certificatesigningrequests)", "KubiScan CSR",
         probes("create", "certificates.k8s.io", "certificatesigningrequests", cluster_only=True)),
    _cat("node-status", "low", "can modify node status", "rbac-police modify_node_status",
         probes("update,patch", "", "nodes/status", cluster_only=True)),
    _cat("pod-status", "low", "can modify pod status", "rbac-police modify_pod_status",
         probes("update,patch", "", "pods/status")),
)
ALL_PROBES: tuple[Probe, ...] = tuple(dict.fromkeys(p for c in CATEGORIES for a in c.any_of for p in a))
# Groups every service account is in: pods of these namespaces inherit a grant to the group.
BROAD_GROUPS = (AUTHENTICATED, UNAUTHENTICATED, ALL_SERVICE_ACCOUNTS)


@record(frozen=True)
class Path:
    """One step of a binding path: binding → role → rule."""

    binding: Binding
    role: str
    rule: Rule
    probe: Probe

    def describe(self) -> str:
        names = f" (only {', '.join(sorted(self.rule.names))})" if self.rule.names else ""
        return f"{self.binding.describe()} → {self.probe}{names}"

    def to_json(self) -> dict[str, object]:
        return {"binding": self.binding.ref(), "role": self.role, "rule": self.rule.to_json(),
                "permission": str(self.probe)}


@record
class Risk:
    subject: tuple[str, str, str]  # (kind, namespace, name)
    namespace: str  # "" cluster-wide, else the RoleBinding namespace
    category: Category
    severity: Severity
    paths: list[Path]
    pods: list[PodRef] = field(default_factory=list)

    @property
    def subject_text(self) -> str:
        kind, ns, name = self.subject
        return f"{kind} {ns}/{name}" if kind == "ServiceAccount" else f"{kind} {name}"

    def to_json(self) -> dict[str, object]:
        kind, ns, name = self.subject
        subj = {"kind": kind, "name": name, **({"namespace": ns} if kind == "ServiceAccount" else {})}
        return {"subject": subj, "scope": self.namespace or "cluster", "category": self.category.id,
                "severity": self.severity.label, "title": self.category.title,
                "via": [p.to_json() for p in self.paths], "pods": [p.to_json() for p in self.pods]}


def _lower(sev: Severity) -> Severity:
    return Severity(max(int(Severity.LOW), int(sev) - 1))


class RoleProbes:
    """Per role, which probes its rules grant (first rule, names ignored), as a dict and as a bitmask.

    Computed once per role; a rule is only tried against probes whose resource it can match at all.
    """

    def __init__(self, index: RBACIndex, extra: tuple[Probe, ...] = ()) -> None:
        self.index = index
        self.probes = tuple(dict.fromkeys((*ALL_PROBES, *extra)))
        self.bit = {p: 1 << i for i, p in enumerate(self.probes)}
        self._by_resource: dict[str, list[Probe]] = defaultdict(list)
        self._by_sub: dict[str, list[Probe]] = defaultdict(list)
        for p in self.probes:
            self._by_resource[f"{p.resource}/{p.sub}" if p.sub else p.resource].append(p)
            if p.sub:
                self._by_sub[p.sub].append(p)
        self._cache: dict[RoleKey, tuple[dict[Probe, Rule], int]] = {}

    def _candidates(self, rule: Rule) -> list[Probe] | tuple[Probe, ...]:
        if "*" in rule.resources:
            return self.probes
        out: list[Probe] = []
        for r in rule.resources:
            if r.startswith("*/"):
                out.extend(self._by_sub.get(r[2:], ()))
            else:
                out.extend(self._by_resource.get(r, ()))
        return out

    def _compute(self, key: RoleKey) -> tuple[dict[Probe, Rule], int]:
        got = self._cache.get(key)
        if got is None:
            found: dict[Probe, Rule] = {}
            for rule in self.index.roles.get(key, ()):
                name = next(iter(rule.names)) if rule.names else ""  # judge the rule as if the name matched
                for p in self._candidates(rule):
                    if p not in found and rule_allows(p.request(name), rule):
                        found[p] = rule
            mask = 0
            for p in found:
                mask |= self.bit[p]
            got = self._cache[key] = (found, mask)
        return got

    def of(self, key: RoleKey) -> dict[Probe, Rule]:
        return self._compute(key)[0]

    def mask(self, key: RoleKey) -> int:
        return self._compute(key)[1]


def _mask(probes: tuple[Probe, ...]) -> int:
    return sum(1 << ALL_PROBES.index(p) for p in set(probes))


CATEGORY_MASKS: tuple[tuple[Category, tuple[tuple[int, tuple[Probe, ...]], ...]], ...] = tuple(
    (c, tuple((_mask(a), a) for a in c.any_of)) for c in CATEGORIES)
CLUSTER_ONLY = _mask(tuple(p for p in ALL_PROBES if p.cluster_only))
FULL_MASK = CATEGORY_MASKS[0][1][0][0]


def find_risks(index: RBACIndex, snapshot_pods: dict[tuple[str, str], list[PodRef]] | None = None, *,
               include_defaults: bool = True, min_severity: Severity = Severity.LOW) -> list[Risk]:
    """See `_find_risks`; runs with the cyclic collector paused (it allocates many small acyclic objects)."""
    with paused_gc():
        return _find_risks(index, snapshot_pods, include_defaults=include_defaults, min_severity=min_severity)


def _find_risks(index: RBACIndex, snapshot_pods: dict[tuple[str, str], list[PodRef]] | None = None, *,
                include_defaults: bool = True, min_severity: Severity = Severity.LOW) -> list[Risk]:
    """Every (subject, scope, category) whose grants satisfy a category, strongest first.

    `include_defaults=False` skips bindings labelled kubernetes.io/bootstrapping=rbac-defaults (the
    apiserver's own bootstrap policy) and the system:masters group, whose power is by design.
    """
    rp = RoleProbes(index)
    # (subject, scope) → [probes held (bitmask), bindings that contribute, in order]
    held: dict[tuple[tuple[str, str, str], str], list[Any]] = {}
    for b in index.bindings:
        if not include_defaults and b.bootstrap:
            continue
        mask = rp.mask(b.role_key)
        if not mask:
            continue
        scope = "" if b.kind == "ClusterRoleBinding" else b.namespace
        if scope:
            mask &= ~CLUSTER_ONLY  # rule.go: namespace "" requests only reach ClusterRoleBindings
            if not mask:
                continue
        for s in b.subjects:
            if s.kind == "ServiceAccount":
                ns = s.namespace or b.namespace
                if not ns:
                    continue
                subj = ("ServiceAccount", ns, s.name)
            elif s.kind in ("User", "Group"):
                if not include_defaults and s.kind == "Group" and s.name == MASTERS:
                    continue
                subj = (s.kind, "", s.name)
            else:
                continue
            entry = held.get((subj, scope))
            if entry is None:
                held[(subj, scope)] = [mask, [b]]
            elif mask & ~entry[0]:
                entry[0] |= mask
                entry[1].append(b)
    pods = _PodLookup(snapshot_pods or {})
    out: list[Risk] = []
    for (subj, scope), (have, contributors) in held.items():
        cluster = held[(subj, "")][0] if scope and (subj, "") in held else 0
        if scope and cluster & FULL_MASK == FULL_MASK:
            continue  # full authority cluster-wide already covers every namespace grant
        for cat, alts in CATEGORY_MASKS:
            chosen = next(((m, a) for m, a in alts if have & m == m), None)
            if chosen is None or (scope and any(cluster & m == m for m, _ in alts)):
                continue  # a namespace grant adds nothing when the same category holds cluster-wide
            sev = cat.severity if not scope or scope == PRIVILEGED_NAMESPACE else _lower(cat.severity)
            if sev < min_severity:
                continue
            out.append(Risk(subj, scope, cat, sev, _paths(rp, contributors, chosen[1]), pods.of(subj)))
            if cat is CATEGORIES[0]:
                break  # full authority implies every other category: report it alone
    out.sort(key=lambda r: (-r.severity, r.category.id, r.subject, r.namespace))
    return out


def _paths(rp: RoleProbes, contributors: list[Binding], probes_needed: tuple[Probe, ...]) -> list[Path]:
    out = []
    for p in probes_needed:
        bit = rp.bit[p]
        for b in contributors:
            if rp.mask(b.role_key) & bit:
                out.append(Path(b, role_label(b.role_key), rp.of(b.role_key)[p], p))
                break
    return out


class _PodLookup:
    def __init__(self, pods: dict[tuple[str, str], list[PodRef]]) -> None:
        self.pods = pods
        self.by_ns: dict[str, list[PodRef]] = defaultdict(list)
        for (ns, _), lst in pods.items():
            self.by_ns[ns].extend(lst)
        self.all = [p for lst in pods.values() for p in lst]

    def of(self, subj: tuple[str, str, str]) -> list[PodRef]:
        """Pods that hold the subject's permissions: its own pods, or every pod of a service-account group."""
        kind, ns, name = subj
        if kind == "ServiceAccount":
            return list(self.pods.get((ns, name), ()))
        if kind == "Group" and name.startswith(ALL_SERVICE_ACCOUNTS + ":"):
            return list(self.by_ns.get(name[len(ALL_SERVICE_ACCOUNTS) + 1:], ()))
        if kind == "Group" and name in (AUTHENTICATED, ALL_SERVICE_ACCOUNTS):
            return self.all
        return []
