"""The engines the monitor's cross-object lane patches (RBAC index per binding, escalation graph per subject)
equal a fresh build after any sequence of changes, and so do the lane's findings: random creates, updates and
deletes of pods, NetworkPolicies, RoleBindings, ClusterRoleBindings, Roles, ClusterRoles, Services and
ServiceAccounts, each step followed by a lane run and compared to a from-scratch evaluation of the same objects."""

from __future__ import annotations

import copy
import importlib
import random
from typing import Any

import pytest

from kubeward.engines.netpol import lint
from kubeward.engines.netpol.cluster import from_snapshot
from kubeward.engines.rbac import RBACIndex
from kubeward.engines.rbac import paths as rbac_paths
from kubeward.engines.rbac.paths import EscalationGraph, escalation_graph
from kubeward.monitor.state import ClusterState, Incremental, finding_key
from kubeward.paths.build import build
from kubeward.resource import Resource
from kubeward.scan import ScanOptions, plan, scan
from kubeward.scan import settings as scan_settings
from kubeward.snapshot import Snapshot, Verdicts
from kubeward.sources.cluster import SCAN_TYPES, ClusterSnapshot

paths_build = importlib.import_module("kubeward.paths.build")  # the module: the package exports `build`, the function
TYPES = {t.kind: t for t in SCAN_TYPES}
NS = ("a", "b", "c")
ROLES = ("view", "edit", "admin", "cluster-admin", "pod-maker", "secret-reader", "impersonator", "token-maker",
         "missing-role")
RULES = {
    "pod-maker": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
    "secret-reader": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    "impersonator": [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"],
                      "verbs": ["impersonate"]}],
    "token-maker": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                     "resourceNames": ["sa-1"]}],
}


def _subject(rnd: random.Random, ns: str) -> dict[str, Any]:
    kind = rnd.choice(["ServiceAccount", "ServiceAccount", "User", "Group"])
    if kind == "ServiceAccount":
        return {"kind": kind, "name": f"sa-{rnd.randrange(3)}", "namespace": rnd.choice([ns, *NS])}
    name = rnd.choice(["alice", "bob", "system:authenticated", "system:serviceaccounts", "devs"])
    return {"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def _binding(rnd: random.Random, kind: str, i: int, rv: int) -> dict[str, Any]:
    ns = NS[i % len(NS)]
    role_kind = "ClusterRole" if kind == "ClusterRoleBinding" or rnd.random() < 0.7 else "Role"
    meta: dict[str, Any] = {"name": f"{kind.lower()}-{i}", "resourceVersion": str(rv)}
    if kind == "RoleBinding":
        meta["namespace"] = ns
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": rnd.choice(ROLES) if role_kind == "ClusterRole" else rnd.choice(["r-0", "r-1"])},
            "subjects": [_subject(rnd, ns) for _ in range(rnd.randrange(1, 3))]}


def _role(rnd: random.Random, kind: str, i: int, rv: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": ROLES[4 + i % 4] if kind == "ClusterRole" else f"r-{i % 2}",
                            "resourceVersion": str(rv)}
    if kind == "Role":
        meta["namespace"] = NS[i % len(NS)]
    rules = copy.deepcopy(RULES[rnd.choice(sorted(RULES))])
    if rnd.random() < 0.2:
        rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}


def _pod(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "registry.example/app:1", "ports": [{"containerPort": 8080}],
                         "securityContext": {"privileged": rnd.random() < 0.3}}
    if rnd.random() < 0.2:
        c["ports"][0]["hostPort"] = 8080
    spec: dict[str, Any] = {"serviceAccountName": f"sa-{rnd.randrange(3)}", "containers": [c]}
    if rnd.random() < 0.2:
        spec["automountServiceAccountToken"] = False
    if rnd.random() < 0.3:  # the attack graph's other RUNS_AS edges and the named port a Service may target
        c["ports"][0]["name"] = "http"
        spec["volumes"] = [{"name": "tok", "secret": {"secretName": f"tok-{rnd.randrange(3)}"}},
                           {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]
    if rnd.random() < 0.1:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i}", "namespace": NS[i % len(NS)], "resourceVersion": str(rv),
                         "labels": {"app": f"app-{rnd.randrange(3)}", "tier": rnd.choice(["web", "db"])}},
            "spec": spec}


def _policy(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"np-{i}", "namespace": NS[i % len(NS)], "resourceVersion": str(rv)},
            "spec": {"podSelector": {"matchLabels": {"app": f"app-{rnd.randrange(4)}"}},
                     "policyTypes": rnd.choice([["Ingress"], ["Ingress", "Egress"]]),
                     "ingress": [{"from": [rnd.choice([{"podSelector": {"matchLabels": {"tier": rnd.choice(["web", "db"])}}},
                                                       {"namespaceSelector": {"matchLabels": {"team": "x"}}},
                                                       {"ipBlock": {"cidr": "0.0.0.0/0"}}])],
                                  "ports": [{"port": rnd.choice([8080, 9090, "http"])}]}]}}


def _service(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": NS[i % len(NS)], "resourceVersion": str(rv)},
            "spec": {"type": rnd.choice(["ClusterIP", "LoadBalancer", "NodePort"]),
                     "selector": {"app": f"app-{rnd.randrange(3)}"}, "ports": [{"port": 80, "targetPort": rnd.choice([8080, 9090, "http"])}]}}


def _account(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": f"sa-{i % 3}", "namespace": NS[i % len(NS)],
                                        "resourceVersion": str(rv)}}
    if rnd.random() < 0.3:
        obj["automountServiceAccountToken"] = False
    return obj


def _namespace(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    labels = {"team": rnd.choice(["x", "y"])}
    if rnd.random() < 0.3:
        labels["pod-security.kubernetes.io/enforce"] = "baseline"
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS[i % len(NS)], "resourceVersion": str(rv), "labels": labels}}


def _token(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": f"tok-{i % 4}", "namespace": NS[i % len(NS)], "resourceVersion": str(rv),
                         "annotations": {"kubernetes.io/service-account.name": f"sa-{rnd.randrange(3)}"}}}


def _ingress(rnd: random.Random, i: int, rv: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": f"ing-{i}", "namespace": NS[i % len(NS)], "resourceVersion": str(rv)},
            "spec": {"defaultBackend": {"service": {"name": f"svc-{rnd.randrange(4)}", "port": {"number": 80}}}}}


MAKERS = {
    "Namespace": (_namespace, 3), "Secret": (_token, 4), "Ingress": (_ingress, 2),
    "Pod": (_pod, 12), "NetworkPolicy": (_policy, 6), "Service": (_service, 4), "ServiceAccount": (_account, 9),
    "RoleBinding": (lambda r, i, v: _binding(r, "RoleBinding", i, v), 14),
    "ClusterRoleBinding": (lambda r, i, v: _binding(r, "ClusterRoleBinding", i, v), 6),
    "Role": (lambda r, i, v: _role(r, "Role", i, v), 6),
    "ClusterRole": (lambda r, i, v: _role(r, "ClusterRole", i, v), 4),
}
# updates of bindings dominate, as in a cluster's churn: those are what the engines patch
WEIGHTS = {"RoleBinding": 6, "ClusterRoleBinding": 3, "Pod": 4, "NetworkPolicy": 2, "Service": 1,
           "ServiceAccount": 1, "Role": 1, "ClusterRole": 1, "Namespace": 1, "Secret": 1, "Ingress": 1}


def _world(rnd: random.Random) -> ClusterState:
    state = ClusterState(SCAN_TYPES, "ctx")
    lists: dict[str, list[dict[str, Any]]] = {}
    for kind, (make, count) in MAKERS.items():
        lists[kind] = [make(rnd, i, 1) for i in range(count)]
    for t in SCAN_TYPES:
        state.replace(t, lists.get(t.kind, []))
    return state


def _change(state: ClusterState, rnd: random.Random, serial: int) -> None:
    kind = rnd.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    make, count = MAKERS[kind]
    t = TYPES[kind]
    held = list(state.types[t.path].objects.values())
    op = rnd.choices(["update", "create", "delete"], weights=[8, 1, 1])[0]
    if op == "delete" and held:
        state.apply(t, "DELETED", copy.deepcopy(rnd.choice(held).obj))
    elif op == "update" and held:
        before = rnd.choice(held)
        i = int(before.name.rsplit("-", 1)[-1]) if before.name.rsplit("-", 1)[-1].isdigit() else serial
        obj = make(rnd, i, serial + 100)
        obj["metadata"]["name"] = before.name  # the same object, another version
        if before.namespace is not None:
            obj["metadata"]["namespace"] = before.namespace
        if "subjects" in obj and rnd.random() < 0.6:  # another role for the same subjects (the patched case)
            obj["subjects"] = copy.deepcopy(before.obj.get("subjects"))
        state.apply(t, "MODIFIED", obj)
    else:
        state.apply(t, "ADDED", make(rnd, count + serial, serial + 100))


def _fresh(state: ClusterState) -> ClusterSnapshot:
    return ClusterSnapshot([Resource(copy.deepcopy(r.obj), cluster=state.context) for r in state.snapshot().resources],
                           context=state.context, coverage=state.coverage(), not_assessed=state.not_assessed())


def _index_shape(idx: RBACIndex) -> tuple[Any, ...]:
    """Everything an index answers from, with the objects named by key (a fresh build holds fresh objects)."""
    def b(x: Any) -> Any:
        return (x.index, x.kind, x.namespace, x.name, x.role_kind, x.role_name, x.subjects, x.bootstrap,
                None if x.resource is None else (x.resource.kind, x.resource.namespace, x.resource.name))
    return ([b(x) for x in idx.bindings], dict(idx._crb_by_subject), dict(idx._rb_by_subject),
            dict(idx._crb_by_role), dict(idx._rb_by_role), list(idx._missing.items()), idx.problems,
            [(b(g.binding), g.role) for g in idx._grants], idx._subject_pairs, sorted(idx.roles))


def _edges(g: Any) -> tuple[Any, ...]:
    return (list(g.nodes.items()), [(e.src, e.dst, e.kind, e.engine, e.evidence, e.fix, e.cost, e.obj, e.file, e.line,
                                     e.claims) for e in g.edges()], g.notes)


def _lint_shape(found: dict[str, list[Any]]) -> list[Any]:
    return [(code, [(i.resource and (i.resource.kind, i.resource.namespace, i.resource.name), i.path, i.message)
                    for i in issues]) for code, issues in found.items()]


# the per-workload verdicts the lane keeps (snapshot.judged_each): KW-N008/N009, KW-W044, pods per account
VERDICTS = ("network.unselected.ingress", "network.unselected.egress", "workload.sa_token_automount",
            "rbac.pods_by_sa.each")


def _verdicts_shape(v: Verdicts) -> list[Any]:
    def plain(x: Any) -> Any:
        return (x.kind, x.namespace, x.name) if isinstance(x, Resource) else x
    return [tuple(map(plain, r)) for r in v.results]


def _graph_shape(g: EscalationGraph) -> tuple[Any, ...]:
    def edge(e: tuple[str, Any]) -> Any:
        return e[0], None if e[1] is None else e[1].index
    return ([(u, [(v, edge(e)) for v, e in outs.items()]) for u, outs in g.edges.items() if outs],
            sorted((k, v) for k, v in g.claims.items()),
            [(n, [(s, [(p, h[0].index, h[1]) for p, h in have.items()]) for s, have in scopes.items()])
             for n, scopes in g.held.items()],
            {k: sorted(v) for k, v in g.service_accounts.items()}, sorted(g.groups), sorted(g.users))


@pytest.mark.parametrize("seed", range(40))
def test_the_lane_patched_engines_and_findings_equal_a_fresh_evaluation(seed: int, monkeypatch: Any) -> None:
    rnd = random.Random(seed)
    options = ScanOptions()
    patched = {"index": 0, "graph": 0, "pods": 0, "exposure": 0, "ports": 0}
    real_index, real_graph = RBACIndex.updated, rbac_paths.updated_escalation_graph

    def count_index(before: RBACIndex, snapshot: Snapshot, changes: Any) -> RBACIndex | None:
        out = real_index(before, snapshot, changes)
        patched["index"] += out is not None
        return out

    def count_graph(*a: Any) -> EscalationGraph | None:
        out = real_graph(*a)
        patched["graph"] += out is not None
        return out

    monkeypatch.setattr(RBACIndex, "updated", staticmethod(count_index))
    monkeypatch.setattr(rbac_paths, "updated_escalation_graph", count_graph)
    kept_verdicts: dict[str, Verdicts] = {}
    made = {"identity": 0, "exposed": 0, "declared": 0}  # the attack graph's pod pieces made, not taken from the graph before

    def counting(name: str) -> Any:
        real = getattr(paths_build, f"_{name}")

        def count(*a: Any) -> Any:
            made[name] += 1
            return real(*a)
        return count

    for name in made:
        monkeypatch.setattr(paths_build, f"_{name}", counting(name))
    graph_before = None
    with scan_settings(options):
        state = _world(rnd)
        inc = Incremental(state, plan(options), options)  # lane off: every evaluation runs the lane's work
        inc.evaluate()
        for serial in range(1, 31):
            for _ in range(rnd.choice([1, 1, 2, 3])):
                _change(state, rnd, serial)
            made.update(identity=0, exposed=0, declared=0)
            report = inc.evaluate()
            now = {k.split("@")[0]: v for k, (v, _) in inc._derived.items()}.get("paths.graph")
            if now is not None and graph_before is not None and now is not graph_before:  # built on the one before
                pods = len(now.parts.pods)
                patched["pods"] += pods - made["identity"]
                patched["exposure"] += pods - made["exposed"]
                patched["ports"] += len(now.parts.declared) - made["declared"]
            graph_before = now
            fresh = _fresh(state)
            full = scan(fresh, options)
            assert [finding_key(f) for f in report.findings] == [finding_key(f) for f in full.findings]
            assert sorted(map(finding_key, report.suppressed)) == sorted(map(finding_key, full.suppressed))
            # the engines themselves, not only what the controls make of them
            kept = {k.split("@")[0]: v for k, (v, _) in inc._derived.items()}
            if "rbac.index" in kept:
                assert _index_shape(kept["rbac.index"]) == _index_shape(RBACIndex.from_snapshot(fresh))
            if "paths.graph" in kept:
                patched["paths"] = patched.get("paths", 0) + 1
                fresh_index = RBACIndex.from_snapshot(fresh)
                assert _edges(kept["paths.graph"]) == _edges(build(
                    fresh, fresh_index, escalations=escalation_graph(fresh_index, fresh), cluster=from_snapshot(fresh)))
            if "netpol.lint" in kept:
                assert _lint_shape(kept["netpol.lint"]) == _lint_shape(lint.by_code(from_snapshot(fresh)))
            for key in VERDICTS:  # equal to a fresh scan's, and an unchanged workload's verdict kept, not made again
                if key in kept and key in fresh._derived:
                    assert _verdicts_shape(kept[key]) == _verdicts_shape(fresh._derived[key])
                    before = kept_verdicts.get(key)
                    if before is not None and kept[key] is not before:
                        reused = sum(e is before.each.get(i) for i, e in kept[key].each.items())
                        patched[key] = patched.get(key, 0) + reused
                    kept_verdicts[key] = kept[key]
            if "rbac.escalations" in kept:
                assert _graph_shape(kept["rbac.escalations"]) == \
                    _graph_shape(escalation_graph(RBACIndex.from_snapshot(fresh), fresh))
    assert patched["index"] > 0 and patched["graph"] > 0  # the patches ran, not only the fallbacks
    assert patched.get("paths", 0) > 0  # and the attack graph was compared
    assert all(patched.get(k, 0) > 0 for k in VERDICTS), patched  # verdicts kept across lane runs
    # its pods' pieces were taken from the graph before
    assert patched["pods"] > 0 and patched["exposure"] > 0 and patched["ports"] > 0


def test_the_lane_snapshot_laid_out_from_the_held_objects_has_a_plain_snapshots_tables() -> None:
    rnd = random.Random(7)
    state = _world(rnd)
    for serial in range(20):
        _change(state, rnd, serial)
    layout = [(ts.rtype.kind, list(ts.objects.items())) for ts in state.types.values()]
    resources = [r for _, items in layout for _, r in items]
    laid = Snapshot(resources, layout=layout)
    plain = Snapshot(resources)
    assert laid._by_kind == plain._by_kind and list(laid._by_kind) == list(plain._by_kind)
    assert laid._by_ns == plain._by_ns and laid._by_key == plain._by_key
    assert laid.namespaces() == plain.namespaces() and laid.namespaces()
    # an object whose kind is not its type's: the tables are made the plain way
    odd = Resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "a"}})
    mixed = [("Pod", [(("a", "x"), odd)])]
    assert Snapshot([odd], layout=mixed)._by_kind == {"ConfigMap": [odd]}
