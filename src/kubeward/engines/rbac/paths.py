"""Privilege-escalation paths as a graph search towards full authority (cluster-admin / system:masters).

Nodes are subjects (User, Group, ServiceAccount) and "any service account of namespace N" hubs. Edges:
- membership: a service account is in system:serviceaccounts, system:serviceaccounts:NS and
  system:authenticated; a user is in system:authenticated (serviceaccount/util.go, authenticated_group_adder.go);
- pod-create-as-SA: create pods, or create/update workloads, in N → run a pod as any service account of N
  (the ServiceAccount admission plugin only checks the account exists);
- token-create: create serviceaccounts/token in N (resourceNames narrow the targets);
- token-secret: get/list secrets in N where a kubernetes.io/service-account-token Secret of an account exists;
- impersonate: users/groups/serviceaccounts (endpoints/filters/impersonation.go); impersonating the group
  system:masters is full authority;
- bind: bind on clusterroles plus create clusterrolebindings → bind a full-authority ClusterRole
  (pkg/registry/rbac/escalation_check.go BindingAuthorized);
- escalate: escalate plus update/patch on clusterroles → rewrite a role beyond one's own rules;
- CSR: create + approve certificatesigningrequests and approve signers → a client certificate in system:masters.
A reverse breadth-first search from the full-authority holders gives every subject its shortest path.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from ...records import record
from ...snapshot import Changes, Snapshot
from .index import RBACIndex, paused_gc, role_label
from .model import ALL_SERVICE_ACCOUNTS, AUTHENTICATED, MASTERS, SA_PREFIX, Binding, Rule
from .risks import Probe, RoleProbes
from .risks import probes as probes_of
from .workloads import pods_by_service_account

TARGET = "cluster-admin"
RBAC = "rbac.authorization.k8s.io"
POD_CREATE = (*probes_of("create", "", "pods"),
              *probes_of("create,update,patch", "apps", "deployments,daemonsets,statefulsets,replicasets"),
              *probes_of("create,update,patch", "batch", "jobs,cronjobs"),
              *probes_of("create,update,patch", "", "replicationcontrollers"))
TOKEN = probes_of("create", "", "serviceaccounts/token")[0]
IMP_USERS, IMP_GROUPS = probes_of("impersonate", "", "users,groups")
IMP_SA = probes_of("impersonate", "", "serviceaccounts")[0]
BIND_CR = probes_of("bind", RBAC, "clusterroles")[0]
CREATE_CRB = probes_of("create", RBAC, "clusterrolebindings")[0]
ESCALATE_CR = probes_of("escalate", RBAC, "clusterroles")[0]
WRITE_CR = probes_of("update,patch", RBAC, "clusterroles")
CSR = (probes_of("create", "certificates.k8s.io", "certificatesigningrequests")[0],
       probes_of("update", "certificates.k8s.io", "certificatesigningrequests/approval")[0],
       probes_of("approve", "certificates.k8s.io", "signers")[0])
FULL = probes_of("*", "*", "*")[0]
SECRET_GET, SECRET_LIST = probes_of("get,list", "", "secrets")
EXTRA_PROBES = (*POD_CREATE, TOKEN, IMP_USERS, IMP_GROUPS, IMP_SA, BIND_CR, CREATE_CRB, ESCALATE_CR, *WRITE_CR,
                *CSR, FULL, SECRET_GET, SECRET_LIST)
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"  # core/v1 SecretTypeServiceAccountToken
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


@record(frozen=True)
class Step:
    node: str
    label: str  # how the previous node reaches this one
    binding: Binding | None = None  # the binding that grants the step (None for membership and run-as)


@record(frozen=True)
class EscalationPath:
    start: str
    steps: tuple[Step, ...]

    @property
    def first_binding(self) -> Binding | None:
        return next((s.binding for s in self.steps if s.binding is not None), None)

    def __str__(self) -> str:
        parts = [self.start]
        for s in self.steps:
            parts.append(f"-[{s.label}]-> {s.node}")
        return " ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {"from": self.start, "steps": [{"to": s.node, "via": s.label} for s in self.steps]}


def sa_node(ns: str, name: str) -> str:
    return f"ServiceAccount {ns}/{name}"


Claim = tuple[Probe, str, str]


class EscalationGraph:
    """The subject graph the search runs over, kept for other readers (the attack-path graph of
    `kubeward.paths`): edges, and what each subject holds per scope ("" = cluster-wide)."""

    def __init__(self) -> None:
        # u → {v: (label, binding)}; the first edge found between two nodes is kept
        self.edges: dict[str, dict[str, tuple[str, Binding | None]]] = defaultdict(dict)
        # subject node → scope → probe → (binding, rule): the grants behind every edge
        self.held: dict[str, dict[str, dict[object, tuple[Binding, Rule]]]] = defaultdict(lambda: defaultdict(dict))
        self.service_accounts: dict[str, set[str]] = defaultdict(set)  # namespace → service accounts known
        self.token_secrets: dict[str, list[tuple[str, str]]] = defaultdict(list)  # namespace → [(secret, sa)]
        self.groups: set[str] = set()
        self.users: set[str] = set()
        # (u, v) → the requests the edge's grant allows, as (probe, namespace or "", name or ""): what a
        # SubjectAccessReview for u must allow for the step to hold (tests/e2e/cluster/test_live_paths.py)
        self.claims: dict[tuple[str, str], tuple[Claim, ...]] = {}
        # what `updated_escalation_graph` patches from: the index (and its generation) built on, its role probes,
        # the full-authority ClusterRoles, each subject node's index key, the (namespace, account) pairs pods use
        self.index: RBACIndex | None = None
        self.generation = 0
        self.probes: RoleProbes | None = None
        self.full_roles: list[str] = []
        self.keys: dict[str, tuple[str, str]] = {}
        self.pod_accounts: list[tuple[str, str]] = []
        self.ambiguous: set[str] = set()

    def add(self, u: str, v: str, label: str | tuple[str, Binding], *claims: Claim) -> None:
        edge = label if isinstance(label, tuple) else (label, None)
        if u != v and v not in self.edges[u]:
            self.edges[u][v] = edge
            if claims:
                self.claims[(u, v)] = claims


def escalation_paths(index: RBACIndex, snapshot: Snapshot, start: str | None = None,
                     collapse_members: bool = True, include_defaults: bool = False,
                     graph: EscalationGraph | None = None) -> list[EscalationPath]:
    """See `_escalation_paths`; runs with the cyclic collector paused (many small acyclic objects).

    Without `include_defaults`, paths whose first grant is the bootstrap policy's own (controllers in
    kube-system hold escalate, pod creation and token rights by design) are left out. `graph`: the
    `escalation_graph(index, snapshot)` the caller already built (the scan shares one per snapshot)."""
    with paused_gc():
        found = _escalation_paths(index, snapshot, start, collapse_members, graph)
    if not include_defaults:
        found = [p for p in found if p.first_binding is None or not p.first_binding.bootstrap]
    return found


def escalation_graph(index: RBACIndex, snapshot: Snapshot) -> EscalationGraph:
    """The edges of the module docstring between every subject of the snapshot; built with the cyclic collector
    paused."""
    with paused_gc():
        return _escalation_graph(index, snapshot)


def updated_escalation_graph(before: EscalationGraph, index: RBACIndex, snapshot: Snapshot,
                             changes: Changes) -> EscalationGraph | None:
    """`before` (the graph of the monitor's previous snapshot) patched to equal `escalation_graph(index,
    snapshot)` when `index` is `before`'s index, as it was or patched once (RBACIndex.updated: bindings replaced
    in place, roles the same), and nothing else the graph reads changed (ServiceAccounts, Secrets, the accounts pods run
    as), each replaced binding naming the same subjects: then only those subjects' grants (`held`) and the
    edges that leave them are made again. None otherwise (the caller builds afresh)."""
    if before.index is not index or before.probes is None:
        return None
    if index.generation not in (before.generation, before.generation + 1):
        return None
    if changes.kinds() & {"ServiceAccount", "Secret"}:
        return None
    if list(pods_by_service_account(snapshot)) != before.pod_accounts:
        return None
    touched: dict[str, None] = {}
    for old, new in index.replaced if index.generation != before.generation else ():
        nodes = _subject_nodes(new)
        if set(_subject_nodes(old)) != set(nodes):
            return None  # other subjects: the users, groups and accounts known may differ
        touched.update(dict.fromkeys(nodes))
    if before.ambiguous.intersection(touched):
        return None
    with paused_gc():
        for node in touched:
            if not _regrant(before, index, node):
                return None
    before.generation = index.generation
    return before


def _subject_nodes(b: Binding) -> list[str]:
    out = []
    for s in b.subjects:
        k = s.key(b.namespace)
        if k is not None:
            out.append(_node_of(k))
    return out


def _node_of(k: tuple[str, str]) -> str:
    """The graph node of an index subject key (RBAC subjects match by user name or group name)."""
    if k[0] == "group":
        return f"Group {k[1]}"
    if k[1].startswith(SA_PREFIX):
        ns, _, name = k[1][len(SA_PREFIX):].partition(":")
        return sa_node(ns, name)
    return f"User {k[1]}"


def _regrant(g: EscalationGraph, index: RBACIndex, node: str) -> bool:
    """A subject's grants from the index's bindings, in binding order as the build takes them, and the edges
    that leave it; False when that would add a node the build would have placed elsewhere in `edges`."""
    probes, k = g.probes, g.keys[node]
    assert probes is not None
    scopes = g.held[node]
    for scope in scopes:  # the same scopes: the subjects of every binding are the same
        ids = index._crb_by_subject.get(k, ()) if not scope else index._rb_by_subject.get((scope, *k), ())
        have: dict[object, tuple[Binding, Rule]] = {}
        for i in ids:
            b = index.bindings[i]
            for p, rule in probes.of(b.role_key).items():
                have.setdefault(p, (b, rule))
        scopes[scope] = have
    had = g.edges.get(node)
    if had is None:
        _subject_edges(g, node, scopes)
        return node not in g.edges
    for v, (_, by) in had.items():
        if by is not None:
            g.claims.pop((node, v), None)
    # the edges no binding grants (membership) came first, in the build's order; the granted ones follow
    g.edges[node] = {v: e for v, e in had.items() if e[1] is None}
    _subject_edges(g, node, scopes)
    return True


def _escalation_graph(index: RBACIndex, snapshot: Snapshot) -> EscalationGraph:
    g = EscalationGraph()
    probes = RoleProbes(index, extra=EXTRA_PROBES)
    full_roles = sorted(k[2] for k in index.roles if k[0] == "ClusterRole" and FULL in probes.of(k))
    g.index, g.generation, g.probes, g.full_roles = index, index.generation, probes, full_roles
    sas = g.service_accounts
    for r in snapshot.of_kind("ServiceAccount"):
        sas[r.namespace or "default"].add(r.name)
    g.pod_accounts = list(pods_by_service_account(snapshot))
    for ns, name in g.pod_accounts:
        sas[ns].add(name)
    # Long-lived token Secrets (created by hand since v1.24, automatically before): reading one is being the SA.
    token_secrets = g.token_secrets
    for r in snapshot.of_kind("Secret"):
        sa_name = r.annotations.get(SA_NAME_ANNOTATION)
        if r.obj.get("type") == SA_TOKEN_TYPE and isinstance(sa_name, str) and sa_name:
            token_secrets[r.namespace or "default"].append((r.name, sa_name))
            sas[r.namespace or "default"].add(sa_name)
    users, groups, held, keys = g.users, g.groups, g.held, g.keys
    for b in index.bindings:
        scope = "" if b.kind == "ClusterRoleBinding" else b.namespace
        granted = probes.of(b.role_key)
        for s in b.subjects:
            k = s.key(b.namespace)
            if k is None:
                continue
            node = _node_of(k)
            if k[0] == "group":
                groups.add(k[1])
            elif k[1].startswith(SA_PREFIX):
                if b.resource is not None:  # a bootstrap binding's subject is no sign the account exists
                    ns, _, name = k[1][len(SA_PREFIX):].partition(":")
                    sas[ns].add(name)
            else:
                users.add(k[1])
            if keys.setdefault(node, k) != k:
                g.ambiguous.add(node)  # two subject keys, one node (names no apiserver accepts): not patched
            have = held[node][scope]
            for p, rule in granted.items():
                have.setdefault(p, (b, rule))
    # membership edges
    for ns, names in sas.items():
        for name in names:
            node = sa_node(ns, name)
            for grp in (f"{ALL_SERVICE_ACCOUNTS}:{ns}", ALL_SERVICE_ACCOUNTS, AUTHENTICATED):
                if grp in groups:
                    g.add(node, f"Group {grp}", "member of")
    for u in users:
        if AUTHENTICATED in groups and not u.startswith("system:anonymous"):
            g.add(f"User {u}", f"Group {AUTHENTICATED}", "member of")
    for ns, names in sas.items():
        for name in names:
            g.add(f"any service account in {ns}", sa_node(ns, name), "run as / act as")
            g.add("any service account in any namespace", sa_node(ns, name), "run as / act as")
    if MASTERS in groups:
        g.add(f"Group {MASTERS}", TARGET, "privileged group (before RBAC)")

    for node, scopes in held.items():
        _subject_edges(g, node, scopes)
    return g


def _via(b: Binding, what: str) -> tuple[str, Binding]:
    return f"{what} ({b.describe()})", b


def _hub(scope: str) -> str:
    return f"any service account in {scope}" if scope else "any service account in any namespace"


def _subject_edges(g: EscalationGraph, node: str, scopes: Any) -> None:
    """The edges one subject's grants give it (the module docstring's list), in the build's order."""
    sas, token_secrets, groups, users, full_roles = g.service_accounts, g.token_secrets, g.groups, g.users, \
        g.full_roles
    via, hub = _via, _hub
    cluster = scopes.get("", {})
    for scope, have in scopes.items():
        where = f"in {scope}" if scope else "in every namespace"
        if FULL in have:
            b, _ = have[FULL]
            if not scope:
                g.add(node, TARGET, via(b, "full authority"), (FULL, "", ""))
            elif scope in sas:
                g.add(node, hub(scope), via(b, f"full authority {where}"), (FULL, scope, ""))
        for p in POD_CREATE:
            if p in have:
                b, _ = have[p]
                g.add(node, hub(scope), via(b, f"{p} {where}"), (p, scope, ""))
                break
        for p, what in ((TOKEN, "create tokens"), (IMP_SA, "impersonate service accounts")):
            if p in have:
                b, rule = have[p]
                if not rule.names:
                    g.add(node, hub(scope), via(b, f"{what} {where}"), (p, scope, ""))
                else:
                    for ns in ([scope] if scope else sorted(sas)):
                        for name in sorted(rule.names & sas.get(ns, set())):
                            g.add(node, sa_node(ns, name), via(b, f"{what} for {ns}/{name}"), (p, ns, name))
        if SECRET_GET in have or SECRET_LIST in have:
            listing = have.get(SECRET_LIST)
            getting = have.get(SECRET_GET)
            for ns in ([scope] if scope else sorted(token_secrets)):
                for secret, sa in token_secrets.get(ns, ()):
                    # list never carries a name, so a names-limited list rule lists nothing
                    if listing is not None and not listing[1].names:
                        b, claim = listing[0], (SECRET_LIST, ns, "")
                    elif getting is not None and (not getting[1].names or secret in getting[1].names):
                        b, claim = getting[0], (SECRET_GET, ns, secret)
                    else:
                        continue
                    g.add(node, sa_node(ns, sa), via(b, f"read token Secret {ns}/{secret}"), claim)
    if IMP_GROUPS in cluster:
        b, rule = cluster[IMP_GROUPS]
        if not rule.names or MASTERS in rule.names:
            g.add(node, TARGET, via(b, f"impersonate group {MASTERS}"), (IMP_GROUPS, "", MASTERS))
        for name in sorted(rule.names & groups if rule.names else groups):
            g.add(node, f"Group {name}", via(b, f"impersonate group {name}"), (IMP_GROUPS, "", name))
    if IMP_USERS in cluster:
        b, rule = cluster[IMP_USERS]
        for name in sorted(rule.names & users if rule.names else users):
            g.add(node, f"User {name}", via(b, f"impersonate user {name}"), (IMP_USERS, "", name))
    if BIND_CR in cluster and CREATE_CRB in cluster:
        b, rule = cluster[BIND_CR]
        bindable = [n for n in full_roles if not rule.names or n in rule.names]
        if not rule.names:
            g.add(node, TARGET, via(b, "bind any ClusterRole (cluster-admin) with a new ClusterRoleBinding"),
                  (BIND_CR, "", TARGET), (CREATE_CRB, "", ""))
        elif bindable:
            g.add(node, TARGET, via(b, f"bind {role_label(('ClusterRole', '', bindable[0]))}"),
                  (BIND_CR, "", bindable[0]), (CREATE_CRB, "", ""))
    if ESCALATE_CR in cluster and any(p in cluster for p in WRITE_CR):
        b, _ = cluster[ESCALATE_CR]
        write = next(p for p in WRITE_CR if p in cluster)
        g.add(node, TARGET, via(b, "escalate: rewrite a ClusterRole beyond its own rules"), (ESCALATE_CR, "", ""),
              (write, "", ""))
    if all(p in cluster for p in CSR):
        b, _ = cluster[CSR[1]]
        g.add(node, TARGET, via(b, f"issue and approve a client certificate in {MASTERS}"),
              *((p, "", "") for p in CSR))


def _escalation_paths(index: RBACIndex, snapshot: Snapshot, start: str | None,
                      collapse_members: bool, graph: EscalationGraph | None = None) -> list[EscalationPath]:
    """Shortest path from every subject that does not already hold full authority (itself or through a
    group) to full authority. With `collapse_members`, a subject whose path starts by joining a group that
    has its own path is left out: the group's line stands for its members (`start` lists it anyway)."""
    g = graph if graph is not None else _escalation_graph(index, snapshot)
    held = g.held
    # reverse BFS from the target
    rev: dict[str, list[tuple[str, tuple[str, Binding | None]]]] = defaultdict(list)
    for u, outs in g.edges.items():
        for v, edge in outs.items():
            rev[v].append((u, edge))
    nxt: dict[str, tuple[str, tuple[str, Binding | None]]] = {}
    dist = {TARGET: 0}
    queue = deque([TARGET])
    while queue:
        v = queue.popleft()
        for u, edge in sorted(rev.get(v, ()), key=lambda e: (e[0], e[1][0])):
            if u not in dist:
                dist[u] = dist[v] + 1
                nxt[u] = (v, edge)
                queue.append(u)
    def full(node: str) -> bool:
        """Holds full authority itself, or through a group it is a member of: nothing to escalate."""
        if node == f"Group {MASTERS}" or FULL in held.get(node, {}).get("", {}):
            return True
        return any(label == "member of" and full(v) for v, (label, _) in g.edges.get(node, {}).items())

    starts = [n for n in dist if n != TARGET and not n.startswith("any service account") and not full(n)]
    if start is not None:
        starts = [n for n in starts if n == start]
    listed = set(starts)
    out = []
    for begin in starts:
        first, (label, _) = nxt[begin]
        if collapse_members and label == "member of" and first in listed and start is None:
            continue  # the group's own path stands for all of its members
        steps = []
        cur = begin
        while cur != TARGET:
            cur, (label, binding) = nxt[cur]
            steps.append(Step(cur, label, binding))
        out.append(EscalationPath(begin, tuple(steps)))
    out.sort(key=lambda p: (len(p.steps), p.start))
    return out
